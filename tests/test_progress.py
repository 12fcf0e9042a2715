"""The first-scan progress bar: on a terminal only, on stderr only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pexpect
import pytest
from conftest import run_tokmon


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_progress_bar_on_a_tty_and_not_in_pipes(corpus_copy: Path, env: dict[str, str]) -> None:
    e = {k: v for k, v in env.items() if k != "CI"}
    e.update(CLAUDE_CONFIG_DIR=str(corpus_copy), TOKMON_PROGRESS_AFTER="0")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "tokmon", "daily", "--json", "-z", "UTC"],
        env=e,
        encoding="utf-8",
        timeout=60,
    )
    child.expect(r"scanning transcripts \[#*\s*\]\s+\d+\.\d%")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    # Piped (as scripts use it): no bar at all, stdout stays pure JSON.
    e2 = dict(e, TOKMON_HOME=str(Path(env["TOKMON_HOME"]) / "second"))
    r = run_tokmon(["daily", "--json", "-z", "UTC"], e2)
    assert r.returncode == 0 and "scanning" not in r.stderr
    assert json.loads(r.stdout)["totals"]["inputTokens"] == 61_872
