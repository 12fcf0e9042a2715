"""Kill -9 a first scan while it builds its private database (no ledger yet): no half ledger
is left, only the build file, which the next run removes; that run is exact."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hostile.procs import HAVE_PROC, attempts, exact_daily, wait_for
from tokmon.core.ledger import BUILD_INFIX

LINUX = pytest.mark.skipif(not HAVE_PROC or sys.platform != "linux", reason="/proc probes")


def _builds(data: Path) -> list[Path]:
    return [p for p in data.iterdir() if BUILD_INFIX in p.name] if data.is_dir() else []


@LINUX
@pytest.mark.slow
def test_first_scan_killed_mid_build(
    big_corpus: tuple[Path, dict[str, Any]], env: dict[str, str], tokmon_home: Path
) -> None:
    corpus, truth = big_corpus
    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus)}
    data = tokmon_home / "data"
    for _attempt in attempts():
        for p in data.iterdir() if data.is_dir() else []:
            p.unlink()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tokmon", "daily", "--json"],
            env=e,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            caught = wait_for(lambda p=proc: bool(_builds(data)) or p.poll() is not None, 120, 5e-4)
            if not caught or proc.poll() is not None:
                continue  # finished before we saw the build: try again
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            if not list(data.glob("ledger-*.sqlite3")):
                break
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    else:
        pytest.fail("could not catch the build in progress in 5 minutes of attempts")
    left = _builds(data)
    assert left  # the killed build's file, and no ledger
    exact_daily(e, truth)
    assert _builds(data) == []
    (ledger,) = data.glob("ledger-*.sqlite3")
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
