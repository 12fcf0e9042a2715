"""The limits monitor's thread: it checks when poked, at its fallback otherwise, never twice
within its interval, and ends when stopped; the server's active-set expiry ends with its
watcher. (What a check reads and pushes: tests/test_server_push.py.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tokmon.core.watcher import Watcher
from tokmon.limits import monitor
from tokmon.limits.monitor import LimitsMonitor

HOUR = 3600.0


class Counted(LimitsMonitor):
    """A monitor whose check only counts (the loop is what is tested)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(None, lambda notes: None, **kw)
        self.checks: list[float] = []
        self.cond = threading.Condition()

    def poll(self) -> None:
        with self.cond:
            self.checks.append(time.monotonic())
            self.cond.notify_all()

    def wait_checks(self, n: int, timeout: float = 60) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.checks) >= n, timeout), self.checks


def test_checks_once_then_only_when_poked() -> None:
    mon = Counted(interval=0.01, fallback=HOUR).start()
    try:
        mon.wait_checks(1)
        time.sleep(0.3)
        assert len(mon.checks) == 1  # nothing poked it, the fallback is an hour away
        for n in (2, 3):
            mon.poke()
            mon.wait_checks(n)
        time.sleep(0.3)
        assert len(mon.checks) == 3
    finally:
        mon.stop()
        mon.thread.join(60)
    assert not mon.thread.is_alive()


def test_a_burst_of_pokes_checks_at_most_once_an_interval() -> None:
    mon = Counted(interval=0.5, fallback=HOUR).start()
    try:
        mon.wait_checks(1)
        t0 = time.monotonic()
        pokes = 0
        while time.monotonic() - t0 < 1.6:
            mon.poke()
            pokes += 1
            time.sleep(0.002)
        mon.wait_checks(2)
        elapsed = time.monotonic() - t0
        during = len(mon.checks) - 1
    finally:
        mon.stop()
        mon.thread.join(60)
    # one check per interval at most (a load only makes fewer); unbounded, one per poke
    assert 1 <= during <= elapsed / 0.5 + 2, (during, elapsed, pokes)


def test_the_fallback_checks_without_a_poke() -> None:
    mon = Counted(interval=0.01, fallback=0.2).start()
    try:
        mon.wait_checks(3)
    finally:
        mon.stop()
        mon.thread.join(60)


def test_without_a_fallback_it_wakes_at_each_rescan_boundary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default: one wake-up per RESCAN period (the evaluation the boundary calls for),
    not one a second."""
    monkeypatch.setattr(monitor, "RESCAN", 0.3)
    mon = Counted(interval=0.01).start()
    assert mon.fallback is None
    t0 = time.monotonic()
    try:
        mon.wait_checks(4)
    finally:
        mon.stop()
        mon.thread.join(60)
    elapsed = time.monotonic() - t0
    n = len(mon.checks)
    assert n <= elapsed / 0.3 + 2, (n, elapsed)
    # each wake-up past a boundary: no two checks in one period
    periods = [int(t // 0.3) for t in mon.checks]
    assert len(set(periods)) == len(periods), mon.checks


def test_stop_ends_a_thread_waiting_for_its_fallback() -> None:
    mon = Counted(interval=0.01, fallback=HOUR).start()
    mon.wait_checks(1)
    mon.stop()
    mon.thread.join(60)
    assert not mon.thread.is_alive()


@pytest.mark.parametrize(
    ("value", "want"), [("3600", 3600.0), ("0.5", 0.5), ("", None),
                        ("x", None), ("-1", None), ("nan", None),
                        ("inf", None), ("1e9", None)],
)  # fmt: skip
def test_the_fallback_from_the_environment(value: str, want: float) -> None:
    class Svc:
        env = {"TOKMON_LIMITS_FALLBACK": value}

    assert LimitsMonitor(Svc(), lambda notes: None).fallback == want


def test_the_active_set_expiry_ends_with_its_watcher(tmp_path: Path) -> None:
    """It sleeps up to ActiveExpiry.CHECK (30 s) while no departure is due; the watcher's
    end wakes it."""
    import asyncio

    from tokmon.service_watch import ActiveExpiry

    class Svc:
        def next_expiry(self) -> None:
            return None

    (tmp_path / "p").mkdir()
    w = Watcher([tmp_path], lambda paths: None, debounce_ms=20, force_polling=False).start()
    loop = asyncio.new_event_loop()
    try:
        exp = ActiveExpiry(Svc(), loop, lambda notes: None)  # type: ignore[arg-type]
        exp.start(w)
        time.sleep(0.2)  # (asleep on its CHECK now, or about to be: both must end)
        w.stop(timeout=60)
        assert exp.thread is not None
        exp.thread.join(ActiveExpiry.CHECK / 2)
        assert not exp.thread.is_alive()
    finally:
        loop.close()
