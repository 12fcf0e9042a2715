"""The dashboard's refresher thread over a real Engine and real file watching (no terminal)."""

from __future__ import annotations

import queue
import shutil
import time
from pathlib import Path

import pytest
from test_watch_tmux import ALPHA, append_assistant, corpus_source

from tokmon.core.engine import Engine
from tokmon.paths import get_paths
from tokmon.watch.model import DashboardState, Snapshot
from tokmon.watch.source import Refresher


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    src = corpus_source()
    if not src.is_dir():
        pytest.skip(f"test corpus not found at {src}")
    dst = tmp_path / "claude"
    shutil.copytree(src, dst)
    return dst


def _next(q: queue.Queue[Snapshot], pred, timeout: float = 30.0) -> tuple[Snapshot, float]:
    start = time.monotonic()
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            raise AssertionError("no matching snapshot in time")
        snap = q.get(timeout=left)
        if pred(snap):
            return snap, time.monotonic() - start


def _total(snap: Snapshot) -> int:
    return int(snap.summary["totals"]["totalTokens"])


def test_refresher_delivers_appends_new_sessions_and_reset_totals(corpus: Path, tmp_path: Path):
    paths = get_paths({"TOKMON_HOME": str(tmp_path / "home")})
    engine = Engine(roots=[corpus / "projects"], paths=paths)
    engine.refresh()
    q: queue.Queue[Snapshot] = queue.Queue()
    # a long idle timer: only the file watcher can explain a prompt second snapshot
    r = Refresher(lambda: engine, q.put, paths=paths, idle_s=600).start()
    try:
        first, _ = _next(q, lambda s: True, timeout=30)
        assert first.error is None
        assert first.session_totals is not None  # the initial "since start" baseline
        assert sum(t for t, _ in first.session_totals.values()) == _total(first)
        assert len(first.minute_usage) == 360

        append_assistant(corpus, ALPHA, inp=7, out=3, cache_write=0, cache_read=0)
        snap, _ = _next(q, lambda s: _total(s) == _total(first) + 10)
        assert snap.session_totals is None  # totals are only computed for a reset
        assert snap.minute_usage[-1] >= 10
        assert ALPHA in [row["sessionId"] for row in snap.summary["activeSessions"]]

        # a brand-new project dir and session file (what `claude` does in a new repo)
        new_dir = corpus / "projects" / "-tmp-newproj"
        new_dir.mkdir()
        sid = "11111111-2222-3333-4444-555555555555"
        src = corpus / "projects" / "sample-project" / f"{ALPHA}.jsonl"
        line = src.read_text(encoding="utf-8").splitlines()[-1]
        (new_dir / f"{sid}.jsonl").write_text(
            line.replace(ALPHA, sid).replace("msg_", "msg_new").replace("req_", "req_new") + "\n",
            encoding="utf-8",
        )
        snap, _ = _next(q, lambda s: sid in [x["sessionId"] for x in s.summary["activeSessions"]])

        state = DashboardState()
        state.apply_snapshot(first)
        assert state.view(snap, time.time()).since_reset_tokens == _total(snap) - _total(first)
        r.poke(reset=True)
        snap, _ = _next(q, lambda s: s.session_totals is not None)
        state.request_reset()
        state.apply_snapshot(snap)
        assert state.view(snap, time.time()).since_reset_tokens == 0
    finally:
        r.stop()


def test_refresher_reports_engine_errors_instead_of_dying(tmp_path: Path):
    calls = {"n": 0}

    class Broken:
        roots: list[Path] = []

        def refresh(self, paths=None, save=True):  # Engine.refresh's signature
            calls["n"] += 1
            raise OSError("disk on fire")

    q: queue.Queue[Snapshot] = queue.Queue()
    r = Refresher(
        Broken, q.put, paths=get_paths({"TOKMON_HOME": str(tmp_path)}), idle_s=0.2, watch=False
    ).start()
    try:
        snap, _ = _next(q, lambda s: True)
        assert snap.error == "OSError: disk on fire"
        _next(q, lambda s: True)  # it keeps retrying on its timer
        assert calls["n"] >= 2
    finally:
        r.stop()


def test_refresher_waits_for_transcript_dirs_that_do_not_exist_yet(corpus: Path, tmp_path: Path):
    paths = get_paths({"TOKMON_HOME": str(tmp_path / "home")})
    late = tmp_path / "late-claude" / "projects"
    engine = Engine(roots=[late], paths=paths)
    engine.refresh()
    q: queue.Queue[Snapshot] = queue.Queue()
    r = Refresher(lambda: engine, q.put, paths=paths, idle_s=600).start()
    try:
        first, _ = _next(q, lambda s: True, timeout=30)
        assert any("no Claude Code transcripts" in w for w in first.warnings)
        assert first.summary["activeSessions"] == []
        # Claude Code creates its projects dir and the first transcript
        shutil.copytree(corpus / "projects" / "sample-project", late / "sample-project")
        append_assistant(late.parent, ALPHA, inp=5, out=5, cache_write=0, cache_read=0)
        snap, _ = _next(q, lambda s: ALPHA in [x["sessionId"] for x in s.summary["activeSessions"]])
        assert not any("no Claude Code transcripts" in w for w in snap.warnings)
    finally:
        r.stop()


def test_refresher_reads_only_the_appended_file_and_saves_later(corpus: Path, tmp_path: Path):
    """The dashboard uses the core live loop: the watcher's paths, not a full scan, and the
    ledger write is deferred (it still reaches disk: a new engine reads nothing again)."""
    n_files = len(list((corpus / "projects").rglob("*.jsonl")))
    assert n_files > 1  # otherwise a full scan and a hinted one look alike
    paths = get_paths({"TOKMON_HOME": str(tmp_path / "home")})
    engine = Engine(roots=[corpus / "projects"], paths=paths)
    q: queue.Queue[Snapshot] = queue.Queue()
    r = Refresher(lambda: engine, q.put, paths=paths, idle_s=600).start()
    try:
        first, _ = _next(q, lambda s: True, timeout=60)
        assert r.last_changes.files_checked == n_files  # the first refresh plans every file
        append_assistant(corpus, ALPHA, inp=5, out=4, cache_write=0, cache_read=0)
        _next(q, lambda s: _total(s) == _total(first) + 9, timeout=30)
        assert r.last_changes.files_checked == 1
        assert r.last_changes.files_read == 1
    finally:
        r.stop()
    again = Engine(roots=[corpus / "projects"], paths=paths)
    changes = again.refresh()
    assert changes.files_read == 0  # the deferred save wrote the ledger with the append
    assert sum(x.total_tokens for x in again.records) == _total(first) + 9
