"""The ledger database under kill -9: a process killed inside a write transaction loses
nothing that was committed before, leaves no lock behind, and the next report is exact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hostile.procs import HAVE_PROC, attempts, exact_daily, lock_free, wait_for
from tokmon.core.ledger import LedgerDB
from tokmon.core.model import UsageRecord

LINUX = pytest.mark.skipif(not HAVE_PROC or sys.platform != "linux", reason="/proc probes")


def _rec(i: int, out: int = 5) -> UsageRecord:
    return UsageRecord(1.7e9 + i, f"s{i % 7}", "/p", "m", 10, out, 0, 0, 0, f"k{i}", 0.5, None)


HELPER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tokmon.core.ledger import LedgerDB
    from tokmon.core.model import UsageRecord

    def rec(i, out):
        return UsageRecord(1.7e9 + i, f"s{i % 7}", "/p", "m", 10, out, 0, 0, 0, f"k{i}", 0.5, None)

    db = LedgerDB(Path(sys.argv[1]))
    db.merge([rec(i, 5) for i in range(1000)])  # committed
    with db.write() as conn:  # this one never commits: killed inside it
        conn.executemany(
            "UPDATE records SET output = 999 WHERE key = ?", [(f"k{i}",) for i in range(1000)]
        )
        conn.execute("DELETE FROM records WHERE key = 'k7'")
        print("inside", flush=True)
        time.sleep(600)
    """
)


@LINUX
def test_kill_9_inside_a_transaction_loses_nothing_committed(tmp_path: Path) -> None:
    db_path = tmp_path / "data" / "ledger-x.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", HELPER, str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the helper is inside its transaction
        assert line.strip() == "inside", proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    db = LedgerDB(db_path)  # opens, recovers the WAL, writes again at once
    try:
        got = db.records()
        assert len(got) == 1000 and {r.output_tokens for r in got} == {5}
        deltas, _ = db.merge([_rec(3, out=6), _rec(2000)])
        assert [(o is not None, n.key) for o, n in deltas] == [(True, "k3"), (False, "k2000")]
        assert db.dropped == 0
    finally:
        db.close()


@LINUX
@pytest.mark.slow
def test_report_killed_during_its_merge(
    big_corpus: tuple[Path, dict[str, Any]], env: dict[str, str], tokmon_home: Path
) -> None:
    """Kill -9 a cold `daily` while it holds the ledger lock (its merge transaction): the
    next report is exact and says nothing about the ledger (no rebuild, no lock)."""
    corpus, truth = big_corpus
    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus)}
    data = tokmon_home / "data"
    for _attempt in attempts():
        for p in data.glob("ledger-*") if data.is_dir() else []:
            if not p.name.endswith(".lock"):
                p.unlink()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tokmon", "daily", "--json"],
            env=e,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def merging() -> bool:
                locks = list(data.glob("ledger-*.lock")) if data.is_dir() else []
                return bool(locks) and not lock_free(locks[0])

            caught = wait_for(lambda p=proc: merging() or p.poll() is not None, 120, 0.0005)
            if not caught or proc.poll() is not None:
                continue  # finished before we saw the merge: try again
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            break
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    else:
        pytest.fail("could not catch the merge in progress in 5 minutes of attempts")
    exact_daily(e, truth)
