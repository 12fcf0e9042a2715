"""Issue 10, item 10: when the ledger cannot be saved, no report cache stands for it.

The save is made to fail for real: the tokmon process runs with a file-size limit
(RLIMIT_FSIZE, SIGXFSZ ignored), so writing the ledger fails with EFBIG like a full disk,
while the small report cache file would still fit. `daily --json` used to serve the
cached report of the last saved ledger while `session --json` showed the new data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assistant_line, write_lines

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")

LIMIT = 24 * 1024  # bytes: the ledger (~60 KB) does not fit, a report (~2 KB) does


def _limited() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _run(args: list[str], env: dict[str, str], limited: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokmon", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited if limited else None,
    )


def _input(r: subprocess.CompletedProcess[str]) -> int:
    assert r.returncode == 0, r.stderr
    return int(json.loads(r.stdout)["totals"]["inputTokens"])


def test_unsaved_data_is_never_hidden_by_the_report_cache(
    tmp_path: Path, env: dict[str, str]
) -> None:
    f = tmp_path / "claude" / "projects" / "p" / "a.jsonl"
    write_lines(
        f,
        [
            assistant_line(
                "2026-11-01T10:00:00.000Z", msg_id=f"m{i}", req_id=f"r{i}", inp=10, out=1
            )
            for i in range(300)
        ],
    )
    e = {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    assert _input(_run(["daily", "--json"], e, False)) == 3000  # saved, and cached
    write_lines(
        f,
        [
            assistant_line(
                "2026-11-01T11:00:00.000Z", msg_id=f"n{i}", req_id=f"q{i}", inp=20, out=1
            )
            for i in range(200)
        ],
    )
    for _ in range(2):
        r = _run(["daily", "--json"], e, True)
        assert "cannot save the ledger" in r.stderr  # the fault is real
        assert _input(r) == 3000 + 4000
        assert _input(_run(["session", "--json"], e, True)) == 7000
    assert _input(_run(["daily", "--json"], e, False)) == 7000  # space again: saved
    assert _input(_run(["daily", "--json"], e, False)) == 7000
