"""A big first index runs in a short-lived child process (issue #12), then the server reads
only what the child did not; a failing child falls back to indexing in the server.

``TOKMON_CHILD_INDEX_BYTES=1`` makes the shared corpus "big"; totals are checked against the
CLI's own ``daily --json`` run in a separate tokmon home.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_server_support import JsonlProc, corpus_path, server_env

from tokmon.service import Service

KEYS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")


def cli_totals(tmp_path: Path) -> dict[str, Any]:
    env = server_env(tmp_path / "cli", corpus_path())
    out = subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--json"],
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    totals: dict[str, Any] = json.loads(out)["totals"]
    return totals


@pytest.mark.slow
def test_jsonl_server_first_index_in_a_child(tmp_path: Path) -> None:
    expected = cli_totals(tmp_path)
    env = server_env(tmp_path / "srv", corpus_path(), TOKMON_CHILD_INDEX_BYTES="1")
    proc = JsonlProc(env, ("--log-level", "info", "--no-watch"))
    try:
        s = proc.call("tokmon/summary", timeout=180)["result"]
        assert {k: s["totals"][k] for k in KEYS} == {k: expected[k] for k in KEYS}
        assert s["totals"]["totalCost"] == pytest.approx(expected["totalCost"], abs=1e-6)
    finally:
        assert proc.close() == 0
    err = proc.stderr.decode(errors="replace")
    assert "done by a child process" in err, err[-3000:]
    assert "'bytesRead': 0" in err, err[-3000:]  # the server itself read nothing
    assert "Traceback" not in err


def test_service_index_child_and_fallback(tmp_path: Path) -> None:
    base = {"CLAUDE_CONFIG_DIR": str(corpus_path()), "TZ": "UTC", "TOKMON_CHILD_INDEX_BYTES": "1"}
    # the default engine: the hidden `serve --index-only` child does the index
    ok = Service(env={**base, "TOKMON_HOME": str(tmp_path / "a")})
    stats = ok.start()
    assert stats["childIndex"]["ok"] is True and stats["childIndex"]["bytes"] > 0
    assert stats["bytesRead"] == 0
    want = ok.call("tokmon/summary", None)[0]["totals"]
    # a child that fails (an unknown option): one warning, then the server indexes itself
    bad = Service(
        env={**base, "TOKMON_HOME": str(tmp_path / "b")},
        index_child=("serve", "--no-such-option"),
    )
    stats = bad.start()
    assert stats["childIndex"]["ok"] is False and "exit code" in stats["childIndex"]["error"]
    assert stats["bytesRead"] == stats["childIndex"]["bytes"]
    assert bad.call("tokmon/summary", None)[0]["totals"] == want
    # under the threshold nothing is started
    small = Service(
        env={**base, "TOKMON_HOME": str(tmp_path / "c"), "TOKMON_CHILD_INDEX_BYTES": str(2**40)}
    )
    assert "childIndex" not in small.start()
