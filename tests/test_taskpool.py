"""The cold scan's thread pool (tokmon.core.taskpool): what the scan relies on from it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tokmon.core.taskpool import ThreadPool


def test_results_in_order_of_submission_and_exceptions_raised_by_result() -> None:
    with ThreadPool(2, "t") as pool:
        tasks = [pool.submit(lambda n: n * n, n) for n in range(50)]
        bad = pool.submit(lambda: 1 / 0)
        assert [t.result() for t in tasks] == [n * n for n in range(50)]
        with pytest.raises(ZeroDivisionError):
            bad.result()
    assert all(t.done() and not t.running() for t in tasks)


def test_one_worker_starts_tasks_in_submission_order() -> None:
    order: list[int] = []
    with ThreadPool(1, "t") as pool:
        for n in range(30):
            pool.submit(order.append, n)
    assert order == list(range(30))  # leaving the block waited for every task


def test_cancel_takes_back_a_pending_task_only() -> None:
    gate, started = threading.Event(), threading.Event()

    def block() -> str:
        started.set()
        assert gate.wait(60)
        return "ran"

    with ThreadPool(1, "t") as pool:
        first = pool.submit(block)
        assert started.wait(60)
        later = [pool.submit(lambda n: n, n) for n in range(3)]
        assert first.running() and not first.cancel()  # started: it runs on
        assert later[2].cancel() and later[2].done() and not later[2].running()
        assert later[2].cancel()  # (a second time: still cancelled)
        gate.set()
        assert first.result() == "ran"
        assert [t.result() for t in later[:2]] == [0, 1]
        with pytest.raises(RuntimeError):
            later[2].result()
        assert not later[0].cancel()  # done: nothing to take back


def test_leaving_the_block_runs_pending_tasks_and_ends_the_threads() -> None:
    ran: list[int] = []
    gate = threading.Event()
    pool = ThreadPool(2, "tokmon-test-pool")
    with pool:
        pool.submit(gate.wait, 60)
        for n in range(10):
            pool.submit(ran.append, n)
        gate.set()
    assert sorted(ran) == list(range(10))
    assert not any(t.name.startswith("tokmon-test-pool") for t in threading.enumerate())
    with pytest.raises(RuntimeError):
        pool.submit(ran.append, 99)


def test_a_pool_that_got_nothing_starts_no_thread() -> None:
    before = threading.active_count()
    with ThreadPool(3, "t"):
        assert threading.active_count() == before


def test_importing_it_imports_neither_logging_nor_concurrent_futures() -> None:
    root = str(Path(__file__).resolve().parents[1])
    code = (
        f"import sys; sys.path.insert(0, {root!r}); import tokmon.core.taskpool; "
        "print(sorted(m for m in ('logging', 'concurrent.futures', 'queue', 'traceback') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
