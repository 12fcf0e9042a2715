"""Process and lock probes for the hostile tests (Linux /proc; callers skip elsewhere)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HAVE_PROC = Path("/proc/self/stat").exists()


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's), via /proc."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(x) for x in fh.read().split()]
        except OSError:
            continue
    return out


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def lock_free(path: Path) -> bool:
    """Whether nobody holds the flock on ``path`` (probe and release at once)."""
    import fcntl

    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def wait_for(pred: Callable[[], object], timeout: float, step: float = 0.005) -> bool:
    """Poll ``pred`` until true or ``timeout`` seconds passed."""
    end = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(step)


def attempts(least: int = 8, seconds: float = 300.0) -> Iterator[int]:
    """Attempt numbers for catching a process inside a short phase: at least ``least`` of
    them, and more while ``seconds`` have not passed (on a loaded machine the poller may
    miss the phase many times in a row; how often is the scheduler's business, not the
    test's)."""
    end = time.monotonic() + seconds
    n = 0
    while n < least or time.monotonic() < end:
        yield n
        n += 1


def exact_daily(env: dict[str, str], truth: dict[str, int]) -> None:
    """After a kill: ``tokmon daily --json`` in a fresh process exits 0, says nothing about
    the ledger or a lock, and its input and output totals are ``truth``'s."""
    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert not [ln for ln in r.stderr.splitlines() if "ledger" in ln or "lock" in ln], r.stderr
    t = json.loads(r.stdout)["totals"]
    assert (t["inputTokens"], t["outputTokens"]) == (truth["input_tokens"], truth["output_tokens"])
