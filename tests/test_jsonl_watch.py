"""JSON-lines pushes: appends reach the client as usageChanged lines (OS events and polling)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_server_support import (
    JsonlProc,
    append,
    corpus_path,
    server_env,
    session_of,
    usage_line,
)

# slow: JSONL server processes watching files
pytestmark = pytest.mark.slow


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    dest = tmp_path / "claude"
    shutil.copytree(corpus_path(), dest)
    return dest


def _first_main(corpus: Path) -> Path:
    return sorted(
        p for p in (corpus / "projects").glob("*/*.jsonl") if not p.name.startswith("agent-")
    )[0]


@pytest.mark.parametrize("mode", ["events", "polling-flag", "polling-env"])
def test_append_pushes_usage_changed(corpus: Path, tmp_path: Path, mode: str) -> None:
    extra = {"TOKMON_FORCE_POLLING": "1"} if mode == "polling-env" else {}
    args = ("--poll",) if mode == "polling-flag" else ()
    svc = JsonlProc(server_env(tmp_path, corpus, **extra), args)
    try:
        before = svc.call("tokmon/summary")["result"]["totals"]
        path = _first_main(corpus)
        sid, cwd = session_of(path)
        append(path, usage_line(sid, cwd, inp=321, out=654))
        note = svc.wait_note(
            "tokmon/usageChanged",
            pred=lambda p: p["summary"]["totals"]["inputTokens"] == before["inputTokens"] + 321,
        )
        assert note["changedSessions"] == [sid]
        assert note["summary"]["totals"]["outputTokens"] == before["outputTokens"] + 654
        # a second append: a second push with cumulative totals
        append(path, usage_line(sid, cwd, inp=1, out=1))
        svc.wait_note(
            "tokmon/usageChanged",
            pred=lambda p: p["summary"]["totals"]["inputTokens"] == before["inputTokens"] + 322,
        )
    finally:
        assert svc.close() == 0


def test_no_watch_only_refresh(corpus: Path, tmp_path: Path) -> None:
    svc = JsonlProc(server_env(tmp_path, corpus), ("--no-watch",))
    try:
        before = svc.call("tokmon/summary")["result"]["totals"]
        path = _first_main(corpus)
        sid, cwd = session_of(path)
        append(path, usage_line(sid, cwd, inp=10, out=10))
        import time

        time.sleep(0.5)
        assert svc.call("tokmon/summary")["result"]["totals"] == before  # nobody watched
        r = svc.call("tokmon/refresh")["result"]
        assert r["totals"]["inputTokens"] == before["inputTokens"] + 10
        note = svc.wait_note("tokmon/usageChanged")
        assert note["changedSessions"] == [sid]
    finally:
        assert svc.close() == 0
