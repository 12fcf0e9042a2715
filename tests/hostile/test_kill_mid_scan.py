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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hostile.procs import HAVE_PROC, alive, attempts, children, lock_free, wait_for

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
    depth: int = 1,
    **popen: Any,
) -> None:
    """Start ``argv``, freeze it once it has scan workers, kill it, check what is left.

    ``prepare(home)`` sets up the data dir before each attempt (default: empty). ``depth``
    2: the scan workers are grandchildren (a child process does the scan); every process
    between is frozen too, and all of them must be gone after the kill.
    """
    env = {**env, "TOKMON_SCAN_POOL": "process"}  # forked workers (native: threads)
    for _attempt in attempts():  # a fast machine may finish a scan before we see a worker
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
            if not wait_for(lambda p=proc: _level(p.pid, depth) or p.poll() is not None, 60, 0.001):
                pytest.fail("no scan worker appeared within 60 s")
            os.kill(proc.pid, signal.SIGSTOP)
            for mid in _level(proc.pid, depth - 1) if depth > 1 else []:
                os.kill(mid, signal.SIGSTOP)  # a frozen scanner starts no new worker
            workers = [w for d in range(1, depth + 1) for w in _level(proc.pid, d)]
            if depth > 1 and not _level(proc.pid, depth):
                workers = []  # its scan had ended: try again
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
    pytest.fail("could not catch the scan in progress in 5 minutes of attempts")


def _level(pid: int, depth: int) -> list[int]:
    """The descendants of ``pid`` ``depth`` generations down."""
    level = [pid]
    for _ in range(depth):
        level = [c for p in level for c in children(p)]
    return level


def _report_is_exact(env: dict[str, str], truth: dict[str, Any]) -> None:
    """The next report is exact and did not wait out a lock the killed process held (a held
    ledger lock ends, after FileLock's timeout, in a "cannot lock" warning: the outcome is
    asserted, not the report's wall-clock time)."""
    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "cannot lock" not in r.stderr
    assert _totals(r.stdout) == _expected(truth)


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


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_server_killed_while_its_index_child_scans(
    big_corpus: tuple[Path, dict[str, Any]], env: dict[str, str], tokmon_home: Path, sig: int
) -> None:
    """A big first index runs in a child process of `serve` (service._index_in_child) whose
    own scan workers are the server's grandchildren: killing the server leaves neither the
    child nor its workers (each dies with its parent) and no ledger lock held."""
    corpus, truth = big_corpus
    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus), "TOKMON_CHILD_INDEX_BYTES": "1"}
    _kill_mid_scan(
        [sys.executable, "-m", "tokmon", "serve", "--jsonl"],
        e,
        tokmon_home,
        sig,
        [],
        depth=2,
        stdin=subprocess.PIPE,
    )
    for lock in tokmon_home.rglob("*.lock"):
        assert lock_free(lock), lock.name
    _report_is_exact(env | {"CLAUDE_CONFIG_DIR": str(corpus)}, truth)
