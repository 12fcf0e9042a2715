"""Issue 10, item 1: killing tokmon during a first scan that forks workers never wedges
later runs (workers die with their parent and never hold inherited lock descriptors).

Each trial freezes the tokmon process (SIGSTOP) the moment it has scan workers, so the
kill lands mid-scan by construction, checks that the locks it must hold at that point are
held (the status line's refresh lock; the ledger lock is taken only for the short merge
after the scan, see test_store_kill.py), then kills it with SIGKILL or SIGTERM and asserts the outcome: no worker survives, no lock
stays held, and the next report finishes promptly with the generator's exact totals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hostile.procs import HAVE_PROC, alive, children, lock_free, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAVE_PROC or sys.platform != "linux",
        reason="parallel scans fork workers on Linux only; probes use /proc",
    ),
]


def _totals(stdout: str) -> dict[str, int]:
    t = json.loads(stdout)["totals"]
    return {
        k: t[k] for k in ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
    }


def _expected(t: dict[str, Any]) -> dict[str, int]:
    return {
        "inputTokens": t["input_tokens"],
        "outputTokens": t["output_tokens"],
        "cacheCreationTokens": t["cache_creation_tokens"],
        "cacheReadTokens": t["cache_read_tokens"],
    }


def _fresh_home(home: Path) -> None:
    for p in home.rglob("*"):
        if p.is_file() and not p.name.endswith(".lock"):
            p.unlink()


def _kill_mid_scan(
    argv: list[str],
    env: dict[str, str],
    home: Path,
    sig: int,
    locks: list[str],
    prepare: Callable[[Path], None] = _fresh_home,
    **popen: Any,
) -> None:
    """Start ``argv``, freeze it once it has scan workers, kill it, check what is left.

    ``prepare(home)`` sets up the data dir before each attempt (default: empty).
    """
    for _attempt in range(8):  # a fast machine may finish a scan before we see a worker
        prepare(home)
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **popen,
        )
        workers: list[int] = []
        try:
            if not wait_for(lambda p=proc: children(p.pid) or p.poll() is not None, 60, 0.001):
                pytest.fail("no scan worker appeared within 60 s")
            os.kill(proc.pid, signal.SIGSTOP)
            workers = children(proc.pid)
            held = [p for pat in locks for p in home.rglob(pat)]
            if not workers or (locks and (not held or any(lock_free(p) for p in held))):
                os.kill(proc.pid, signal.SIGKILL)  # too late: it finished its scan
                proc.wait(30)
                continue
            os.kill(proc.pid, sig)
            os.kill(proc.pid, signal.SIGCONT)
            assert proc.wait(30) == -sig
            gone = wait_for(lambda ws=workers: not any(alive(w) for w in ws), 20, 0.05)
            assert gone, f"scan workers outlived their parent: {[w for w in workers if alive(w)]}"
            for p in held:
                assert wait_for(lambda p=p: lock_free(p), 20, 0.05), f"{p.name} is still held"
            return
        finally:
            for w in workers:  # never leave our own orphans behind, even when failing
                if alive(w):
                    os.kill(w, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    pytest.fail("could not catch the scan in progress in 8 attempts")


def _report_is_exact(env: dict[str, str], truth: dict[str, Any]) -> None:
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "cannot lock" not in r.stderr
    assert _totals(r.stdout) == _expected(truth)
    assert elapsed < 10, f"the next report took {elapsed:.1f} s"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_report_killed_mid_scan(
    big_corpus: tuple[Path, dict[str, Any]], env: dict[str, str], tokmon_home: Path, sig: int
) -> None:
    corpus, truth = big_corpus
    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus)}
    _kill_mid_scan([sys.executable, "-m", "tokmon", "daily", "--json"], e, tokmon_home, sig, [])
    _report_is_exact(e, truth)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_line_refresher_killed_mid_scan(
    big_corpus: tuple[Path, dict[str, Any]], env: dict[str, str], tokmon_home: Path, sig: int
) -> None:
    """The status line's background refresher holds refresh.lock while it scans."""
    corpus, truth = big_corpus
    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus)}
    _kill_mid_scan(
        [sys.executable, "-m", "tokmon.statusline.refresher"],
        e,
        tokmon_home,
        sig,
        ["refresh.lock"],
        cwd=str(tokmon_home),
    )
    _report_is_exact(e, truth)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_server_killed_mid_scan(
    big_corpus: tuple[Path, dict[str, Any]], env: dict[str, str], tokmon_home: Path, sig: int
) -> None:
    """An editor stopping `tokmon serve` during its first scan."""
    corpus, truth = big_corpus
    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus)}
    _kill_mid_scan(
        [sys.executable, "-m", "tokmon", "serve", "--jsonl"],
        e,
        tokmon_home,
        sig,
        [],
        stdin=subprocess.PIPE,
    )
    _report_is_exact(e, truth)
