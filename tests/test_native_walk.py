"""The first scan's walk begun early on a native thread (``tokmon._native._stat.walk_start``,
:func:`tokmon.core.discovery.start_walks`): exactly the transcripts, order, stats and listings
of :func:`~tokmon.core.discovery.transcript_stats`' own walk, or nothing (Python walks)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import daily_json_logged

from tokmon.core import discovery
from tokmon.core.discovery import Known, Listings, start_walks, transcript_stats

try:
    from tokmon._native import _stat
except ImportError:  # (Windows, or a pure-Python install)
    _stat = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(
    _stat is None or not hasattr(_stat, "walk_start"), reason="no native walk here"
)

REPO = Path(__file__).resolve().parents[1]
_TIMES = ("st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")


def _tree(root: Path) -> Path:
    """Projects with sessions, subagent dirs, files that are not transcripts, an empty dir, a
    directory named like a transcript, a FIFO named like one and names that are not ASCII."""
    projects = root / "projects"
    for p in range(4):
        d = projects / f"-home-u-src-p{p}"
        d.mkdir(parents=True)
        for s in range(5):
            (d / f"s{p}-{s}.jsonl").write_text("x" * (p * 10 + s))
        (d / "notes.txt").write_text("not a transcript")
        (d / ".hidden.jsonl").write_text("{}")
        sub = d / f"s{p}-0" / "subagents"
        sub.mkdir(parents=True)
        (sub / "agent-a.jsonl").write_text("y")
    (projects / "empty").mkdir()
    (projects / "dir.jsonl").mkdir()
    (projects / "dir.jsonl" / "inside.jsonl").write_text("z")
    (projects / "-home-u-src-é").mkdir()
    (projects / "-home-u-src-é" / "naïve ☃.jsonl").write_text("u")
    if hasattr(os, "mkfifo"):
        os.mkfifo(projects / "pipe.jsonl")
    if sys.platform.startswith("linux"):  # a name that is not UTF-8: os.fsdecode's escapes
        raw = os.fsencode(projects / "-home-u-src-p0") + b"/bad-\xff.jsonl"
        with open(raw, "wb") as fh:
            fh.write(b"w")
    return projects


def _same_stats(a: list[tuple[str, os.stat_result]], b: list[tuple[str, os.stat_result]]) -> None:
    assert [p for p, _ in a] == [p for p, _ in b]  # the same transcripts, in the same order
    for (_, x), (_, y) in zip(a, b, strict=True):
        assert tuple(x) == tuple(y)
        assert all(getattr(x, f) == getattr(y, f) for f in _TIMES)


def _walk_early(root: Path) -> Any:
    start_walks([root])
    return discovery._EARLY.get(os.fspath(root))


@pytest.fixture(autouse=True)
def _no_leftovers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "_EARLY", {})
    monkeypatch.delenv("TOKMON_NO_NATIVE", raising=False)


def test_the_early_walk_finds_what_python_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path)
    monkeypatch.setattr(discovery, "RACY_NS", -(10**18))  # every listing kept: compare them all
    want_listings = Listings()
    want = transcript_stats(root, want_listings)
    assert len(want) == 4 * 5 + 4 * 2 + 1 + 1 + (1 if sys.platform.startswith("linux") else 0)
    assert _walk_early(root) is not None
    got_listings = Listings()
    got = transcript_stats(root, got_listings)
    assert discovery._EARLY == {}  # taken
    _same_stats(got, want)
    assert got_listings.dirs == want_listings.dirs
    assert list(got_listings.dirs) == list(want_listings.dirs)  # (the saved file's order)
    assert got_listings.changed and want_listings.changed
    kinds = got_listings.dirs[os.fspath(root)][4]
    assert set(kinds) == {"d", "f"} and "l" not in kinds  # pipe.jsonl listed, not returned
    assert not any(p.endswith("pipe.jsonl") for p, _ in got)


def test_racy_directories_are_not_kept_either_way(tmp_path: Path) -> None:
    root = _tree(tmp_path)  # just made: within RACY_NS of the listing
    want_listings = Listings()
    want = transcript_stats(root, want_listings)
    _walk_early(root)
    got_listings = Listings()
    _same_stats(transcript_stats(root, got_listings), want)
    assert got_listings.dirs == want_listings.dirs == {}


def test_other_roots_listings_are_kept(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    other = {"/elsewhere/projects": [1, 2, 3, 4, "f", ["a.jsonl"]]}
    listings = Listings(dict(other))
    discovery._EARLY[os.fspath(root)] = _stat.walk_start(os.fsencode(root))
    # a listing to reuse: the early walk is not taken (the Python walk reuses it)
    transcript_stats(root, listings)
    assert os.fspath(root) in discovery._EARLY
    assert listings.dirs["/elsewhere/projects"] == other["/elsewhere/projects"]


def test_a_symbolic_link_sends_the_walk_to_python(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    target = tmp_path / "shared"
    target.mkdir()
    (target / "linked.jsonl").write_text("l")
    (root / "-home-u-src-p1" / "link").symlink_to(target)
    (root / "-home-u-src-p2" / "alias.jsonl").symlink_to(root / "-home-u-src-p2" / "s2-1.jsonl")
    handle = _stat.walk_start(os.fsencode(root))
    assert _stat.walk_take(handle, os.stat_result) is None  # gave up: links are Python's
    assert _stat.walk_take(handle, os.stat_result) is None  # (and taken once)
    want = transcript_stats(root, Listings())
    _walk_early(root)
    got = transcript_stats(root, Listings())
    _same_stats(got, want)
    assert any(p.endswith("linked.jsonl") for p, _ in got)


def test_a_missing_root_gives_nothing(tmp_path: Path) -> None:
    handle = _stat.walk_start(os.fsencode(tmp_path / "nowhere"))
    assert _stat.walk_take(handle, os.stat_result) is None
    _walk_early(tmp_path / "nowhere")
    assert transcript_stats(tmp_path / "nowhere", Listings()) == []


def test_a_known_walk_takes_no_early_result(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    _walk_early(root)
    transcript_stats(root, Listings(), Known({}))
    assert os.fspath(root) in discovery._EARLY  # (the warm check walks its own way)


def test_a_handle_dropped_untaken_is_joined(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    for _ in range(20):
        handle = _stat.walk_start(os.fsencode(root))
        del handle  # (its capsule waits for the thread, then frees the walk)
    handle = _stat.walk_start(os.fsencode(root))
    with pytest.raises(TypeError):
        _stat.walk_take(handle, tuple)  # not os.stat_result's shape
    got = _stat.walk_take(handle, os.stat_result)
    assert got is not None and len(got[0]) == len(transcript_stats(root, Listings()))
    with pytest.raises(ValueError):
        _stat.walk_start(b"a\0b")


def test_no_native_means_no_early_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKMON_NO_NATIVE", "1")
    start_walks([tmp_path])
    assert discovery._EARLY == {}


def _corpus(tmp_path: Path) -> Path:
    """A small corpus of real-looking usage lines (two sessions, a resumed copy)."""
    corpus = tmp_path / "claude"
    d = corpus / "projects" / "-home-u-src-app"
    d.mkdir(parents=True)
    for s in range(3):
        lines = []
        for i in range(4):
            lines.append(
                json.dumps(
                    {
                        "type": "assistant",
                        "timestamp": f"2026-11-0{s + 1}T10:0{i}:00.000Z",
                        "sessionId": f"sess-{s}",
                        "cwd": "/home/u/src/app",
                        "requestId": f"req_{s}_{i}",
                        "message": {
                            "id": f"msg_{s}_{i}",
                            "model": "claude-sonnet-4-5-20250929",
                            "usage": {"input_tokens": 10 + i, "output_tokens": 100 * (s + 1)},
                        },
                    }
                )
            )
        (d / f"sess-{s}.jsonl").write_text("\n".join(lines) + "\n")
    return corpus


def test_a_cold_report_walks_early_and_counts_the_same(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    got, log = daily_json_logged(corpus, tmp_path / "a")
    assert "the walk begun early" in log
    want, plain = daily_json_logged(corpus, tmp_path / "b", ("TOKMON_NO_NATIVE", "1"))
    assert "the walk begun early" not in plain
    assert got == want
    assert got["totals"]["outputTokens"] == 4 * (100 + 200 + 300)
    again, warm = daily_json_logged(corpus, tmp_path / "a")  # a ledger now: no walk begun early
    assert "the walk begun early" not in warm
    assert again == got


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_neither_takes_nor_joins_the_parents_walk(tmp_path: Path) -> None:
    """A child forked while a walk runs has no such thread: it gets no result and its exit
    does not wait on it; the parent still takes the walk whole."""
    root = _tree(tmp_path)
    handle = _stat.walk_start(os.fsencode(root))
    pid = os.fork()
    if pid == 0:  # the child: exits 0 when the walk is not its own
        code = 1
        try:
            code = 0 if _stat.walk_take(handle, os.stat_result) is None else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    got = _stat.walk_take(handle, os.stat_result)
    assert got is not None and [p for p, _ in got[0]] == [
        p for p, _ in transcript_stats(root, Listings())
    ]
