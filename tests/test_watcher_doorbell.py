"""The watcher's doorbell (Linux inotify): what rings it, directories it learns, stop, fallback.

The bell is what lets an idle watcher block instead of waking every step; the watcher tests
below run with ``recheck_ms`` far beyond the tests' length, so the periodic look cannot stand
in for a ring that did not come."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_server_watcher import Collector
from tokmon.core import doorbell
from tokmon.core.doorbell import Doorbell, open_doorbell
from tokmon.core.watcher import Watcher, default_filter

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
NEVER_MS = 3_600_000  # recheck_ms: no periodic look within a test


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "projects"
    (r / "-home-u-proj").mkdir(parents=True)
    return r


@pytest.fixture
def bell(root: Path):  # type: ignore[no-untyped-def]
    b = open_doorbell([root], default_filter)
    assert b is not None
    yield b
    b.close()


# -- the bell alone (the kernel queues an event at the syscall: wait(0) sees it) -----------
@linux
def test_rings_for_kept_paths_only(root: Path, bell: Doorbell) -> None:
    proj = root / "-home-u-proj"
    (proj / "notes.txt").write_text("x")
    (proj / ".s.jsonl.tmp").write_text("x")
    assert not bell.wait(0) and bell.take() == set()
    f = proj / "s.jsonl"
    f.write_text("{}\n")
    (proj / "notes.txt").write_text("y")
    assert bell.wait(0)
    assert bell.take() == {str(f)}
    with open(f, "a") as fh:
        fh.write("{}\n")
    assert bell.wait(0) and bell.take() == {str(f)}
    f.unlink()
    assert bell.wait(0) and bell.take() == {str(f)}


@linux
def test_watches_directories_created_later(root: Path, bell: Doorbell) -> None:
    new = root / "-home-u-new"
    new.mkdir()
    assert bell.wait(0) and bell.take() == {str(new)}
    f = new / "s.jsonl"
    f.write_text("{}\n")
    assert bell.wait(0) and bell.take() == {str(f)}
    # a tree made in one go: the parent's event finds the children already there
    deep = root / "-home-u-deep" / "s1" / "subagents"
    deep.mkdir(parents=True)
    assert bell.wait(0)
    bell.take()
    g = deep / "agent-1.jsonl"
    g.write_text("{}\n")
    assert bell.wait(0) and bell.take() == {str(g)}


@linux
def test_a_watched_directory_going_away_rings_without_a_path(root: Path, bell: Doorbell) -> None:
    shutil.rmtree(root)
    assert bell.wait(0)
    assert "" in bell.take()


@linux
def test_ring_wakes_a_wait_in_another_thread(bell: Doorbell) -> None:
    threading.Timer(0.05, bell.ring).start()
    assert bell.wait(60)  # a timeout would say False
    assert bell.take() == set()


def test_no_bell_where_there_is_no_inotify_or_when_disabled(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKMON_NO_DOORBELL", "1")
    assert open_doorbell([root]) is None
    monkeypatch.delenv("TOKMON_NO_DOORBELL")
    for plat in ("darwin", "win32"):
        monkeypatch.setattr(doorbell.sys, "platform", plat)
        assert open_doorbell([root]) is None


def _out_of_watches(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on inotify_add_watch fails as at the watch limit (ENOSPC)."""

    def add(self: Doorbell, path: str) -> bool:
        ctypes.set_errno(errno.ENOSPC)
        self.ok = False
        return False

    monkeypatch.setattr(Doorbell, "_add", add)


@linux
def test_out_of_watches_means_no_bell(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _out_of_watches(monkeypatch)
    assert open_doorbell([root]) is None


@linux
def test_a_second_close_leaves_a_reused_descriptor_open(root: Path) -> None:
    # the watcher closes a bell it gave up (out of watches) and again when its OS watch ends
    b = open_doorbell([root])
    assert b is not None
    numbers = {b.fd, b._wake_r, b._wake_w}
    b.close()
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(3)]  # the lowest free numbers
    try:
        assert numbers <= set(held)  # (reused: the case that matters)
        b.close()
        for fd in held:
            os.fstat(fd)  # still open
    finally:
        for fd in held:
            os.close(fd)


@linux
def test_a_bell_that_fails_to_open_leaves_no_descriptor_open(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pipe() -> tuple[int, int]:
        raise OSError(errno.EMFILE, "too many open files")

    before = set(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(doorbell.os, "pipe", no_pipe)
    assert open_doorbell([root]) is None
    assert set(os.listdir("/proc/self/fd")) == before


# -- the watcher on its bell ---------------------------------------------------------------
def _wait_new(got: Collector, n: int, path: Path) -> None:
    """Wait until a batch after the first ``n`` names ``path``."""
    with got.cond:
        ok = got.cond.wait_for(lambda: any(path in b for b in got.batches[n:]), 60)
    assert ok, f"{path} not reported again; got {got.batches[n:]}"


def _watcher(roots: list[Path], got: Collector) -> Watcher:
    w = Watcher(roots, got, debounce_ms=20, force_polling=False)
    w.recheck_ms = NEVER_MS
    return w


@linux
@pytest.mark.slow
def test_idle_watcher_waits_on_the_bell_and_still_sees_every_change(root: Path) -> None:
    got = Collector()
    f = root / "-home-u-proj" / "s1.jsonl"
    f.write_text("{}\n")
    with _watcher([root], got) as w:
        assert w.idle_wait == "doorbell"
        for i in range(10):  # a live session's appends, each one on its own (each rings)
            # noise the filter drops, in notify's set before the change: never hides it
            n = len(got.batches)
            (root / "-home-u-proj" / f"n{i}.txt").write_text("x")
            with open(f, "a") as fh:
                fh.write("{}\n")
            _wait_new(got, n, f)
        new = root / "-home-u-other"
        new.mkdir()
        g = new / "s2.jsonl"
        g.write_text("{}\n")
        got.wait_for(g)
        os.unlink(g)
        shutil.rmtree(new)
        got.wait_for(new)
        assert w.idle_wait == "doorbell"
    assert not w.running


@linux
@pytest.mark.slow
def test_stop_wakes_the_idle_wait(root: Path) -> None:
    w = _watcher([root], Collector()).start()
    assert w.idle_wait == "doorbell"
    time.sleep(0.5)  # past its first look: blocked on the bell now
    w.stop(timeout=60)
    assert not w.running  # the join returned because the thread ended, not the timeout


@linux
@pytest.mark.slow
def test_a_removed_root_rebuilds_the_watch_with_a_new_bell(tmp_path: Path) -> None:
    got = Collector()
    a, b = tmp_path / "a" / "projects", tmp_path / "b" / "projects"
    (a / "p").mkdir(parents=True)
    (b / "p").mkdir(parents=True)
    with _watcher([a, b], got) as w:
        shutil.rmtree(a)
        got.wait_for(a)
        deadline = time.monotonic() + 60
        while w.watched != [b]:  # (set once the new OS watch is in place)
            assert time.monotonic() < deadline, "the watch was not rebuilt"
            time.sleep(0.02)
        f = b / "p" / "s.jsonl"
        f.write_text("{}\n")
        got.wait_for(f)
        assert w.watched == [b] and w.idle_wait == "doorbell"


@linux
@pytest.mark.slow
def test_out_of_watches_falls_back_to_stepping(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = Collector()
    with _watcher([root], got) as w:
        assert w.idle_wait == "doorbell"
        _out_of_watches(monkeypatch)  # the next new directory cannot be watched by the bell
        new = root / "-home-u-other"
        new.mkdir()
        got.wait_for(new)
        g = new / "s.jsonl"  # only notify watches this dir now: stepping must find it
        g.write_text("{}\n")
        got.wait_for(g)
        n = len(got.batches)
        with open(g, "a") as fh:
            fh.write("{}\n")
        _wait_new(got, n, g)
        assert w.idle_wait == "step"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["polling", "disabled"])
def test_without_a_bell_the_watcher_steps(
    root: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "disabled":
        monkeypatch.setenv("TOKMON_NO_DOORBELL", "1")
    got = Collector()
    f = root / "-home-u-proj" / "s.jsonl"
    w = Watcher([root], got, debounce_ms=20, force_polling=how == "polling", poll_delay_ms=50)
    with w:
        assert w.idle_wait == "step"
        f.write_text("{}\n")
        got.wait_for(f)
    assert not w.running


def _idle_waits(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Record the timeouts of every Doorbell.wait (the idle watcher's sleeps)."""
    waits: list[float | None] = []
    real = Doorbell.wait

    def wait(self: Doorbell, timeout: float | None) -> bool:
        waits.append(timeout)
        return real(self, timeout)

    monkeypatch.setattr(Doorbell, "wait", wait)
    return waits


@linux
@pytest.mark.parametrize("missing", [False, True])
def test_the_idle_look_is_rare_unless_a_root_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: bool
) -> None:
    """With every root present the idle thread sleeps ``idle_recheck_ms`` between looks (each
    wake-up costs CPU); while a root is missing, ``recheck_ms``, to see it appear."""
    waits = _idle_waits(monkeypatch)
    present = tmp_path / "a" / "projects"
    present.mkdir(parents=True)
    roots = [present, tmp_path / "b" / "projects"] if missing else [present]
    w = Watcher(roots, Collector(), debounce_ms=20, force_polling=False)
    w.recheck_ms, w.idle_recheck_ms = 50, NEVER_MS
    with w:
        deadline = time.monotonic() + 60
        while not waits:
            assert time.monotonic() < deadline, "the watcher never waited on its bell"
            time.sleep(0.01)
    assert waits[0] == (0.05 if missing else NEVER_MS / 1000)


@linux
def test_a_short_recheck_is_never_lengthened_for_the_idle_look(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits = _idle_waits(monkeypatch)
    w = Watcher([root], Collector(), debounce_ms=20, force_polling=False)
    w.recheck_ms, w.idle_recheck_ms = NEVER_MS, 50
    with w:
        deadline = time.monotonic() + 60
        while not waits:
            assert time.monotonic() < deadline, "the watcher never waited on its bell"
            time.sleep(0.01)
    assert waits[0] == NEVER_MS / 1000


def test_when_ended_runs_once_the_thread_ends(root: Path) -> None:
    """A thread that lives as long as the watcher (the server's active-set expiry) is woken
    by the watcher's end instead of looking every few seconds."""
    ended = threading.Event()
    w = Watcher([root], Collector(), debounce_ms=20, force_polling=False)
    w.recheck_ms = NEVER_MS
    w.when_ended(ended.set)
    w.start()
    assert not ended.is_set()
    w.stop(timeout=60)
    assert ended.wait(60)
    assert not w.running
