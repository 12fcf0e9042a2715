"""The watcher on real files: appends, new dirs, truncation, deletion, late roots, asyncio."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from tokmon.core.watcher import Watcher, default_filter, want_polling

# slow: real file watchers
pytestmark = pytest.mark.slow


class Collector:
    def __init__(self) -> None:
        self.batches: list[set[Path]] = []
        self.threads: set[int] = set()
        self.cond = threading.Condition()

    def __call__(self, paths: set[Path]) -> None:
        with self.cond:
            self.batches.append(paths)
            self.threads.add(threading.get_ident())
            self.cond.notify_all()

    def covered(self, path: Path) -> bool:
        """``path`` or a directory above it was reported (a polling settle pass names roots)."""
        return any(p == path or p in path.parents for b in self.batches for p in b)

    def wait_for(self, path: Path, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.covered(path):
                left = deadline - time.monotonic()
                assert left > 0, f"{path} never reported; got {self.batches}"
                self.cond.wait(left)

    def seen(self) -> set[Path]:
        with self.cond:
            return set().union(*self.batches) if self.batches else set()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "projects"
    (r / "-home-u-proj").mkdir(parents=True)
    return r


@pytest.mark.parametrize("polling", [False, True])
def test_append_new_dir_truncate_delete(root: Path, polling: bool) -> None:
    got = Collector()
    f = root / "-home-u-proj" / "s1.jsonl"
    f.write_text("{}\n")
    with Watcher([root], got, debounce_ms=20, force_polling=polling, poll_delay_ms=50) as w:
        assert w.running and w.watched == [root]
        time.sleep(0.2)
        with open(f, "a") as fh:
            fh.write("{}\n")
        got.wait_for(f)
        newdir = root / "-home-u-other"
        newdir.mkdir()
        g = newdir / "s2.jsonl"
        g.write_text("{}\n")
        got.wait_for(g)
        with open(f, "r+") as fh:
            fh.truncate(0)
        n = len(got.batches)
        deadline = time.monotonic() + 60
        while len(got.batches) == n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got.covered(f)
        os.unlink(g)
        shutil.rmtree(newdir)
        got.wait_for(newdir)
        # noise is filtered: temp files and non-transcript files never show up
        (root / "-home-u-proj" / ".x.jsonl.tmp").write_text("x")
        (root / "-home-u-proj" / "notes.txt").write_text("x")
        time.sleep(0.5 if polling else 0.2)
        assert not any(p.name in (".x.jsonl.tmp", "notes.txt") for p in got.seen())
    assert not w.running


def test_missing_root_is_watched_once_it_appears(tmp_path: Path) -> None:
    got = Collector()
    present = tmp_path / "a" / "projects"
    present.mkdir(parents=True)
    late = tmp_path / "b" / "projects"
    w = Watcher([present, late], got, debounce_ms=20)
    w.recheck_ms = 200
    with w:
        assert w.watched == [present]
        (late / "p").mkdir(parents=True)
        deadline = time.monotonic() + 60
        while late not in w.watched:
            assert time.monotonic() < deadline, "late root never watched"
            time.sleep(0.05)
        f = late / "p" / "s.jsonl"  # (``watched`` names a root once its OS watch is in place)
        f.write_text("{}\n")
        got.wait_for(f)


def test_failing_callback_does_not_kill_the_watcher(root: Path) -> None:
    calls: list[set[Path]] = []
    errors: list[BaseException] = []

    def boom(paths: set[Path]) -> None:
        calls.append(paths)
        if len(calls) == 1:
            raise RuntimeError("callback failed")

    f = root / "-home-u-proj" / "s.jsonl"
    with Watcher([root], boom, debounce_ms=20, on_error=errors.append) as w:
        f.write_text("{}\n")
        deadline = time.monotonic() + 60
        while not errors and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        with open(f, "a") as fh:
            fh.write("{}\n")
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert w.running
    assert len(calls) >= 2 and isinstance(errors[0], RuntimeError)


async def test_asyncio_mode_runs_callbacks_on_the_loop(root: Path) -> None:
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    got: asyncio.Queue[tuple[int, set[Path]]] = asyncio.Queue()

    async def on_change(paths: set[Path]) -> None:  # coroutine callbacks are scheduled
        await got.put((threading.get_ident(), paths))

    f = root / "-home-u-proj" / "s.jsonl"
    w = Watcher([root], on_change, debounce_ms=20, loop=loop)
    await asyncio.to_thread(w.start)
    try:
        f.write_text("{}\n")
        tid, paths = await asyncio.wait_for(got.get(), 60)
        assert tid == loop_thread and f in paths
    finally:
        await asyncio.to_thread(w.stop)


def test_polling_choice() -> None:
    assert want_polling(True, {}) is True
    assert want_polling(False, {"TOKMON_FORCE_POLLING": "1"}) is False
    assert want_polling(None, {"TOKMON_FORCE_POLLING": "1"}) is True
    assert want_polling(None, {"TOKMON_FORCE_POLLING": "0"}) is False
    assert want_polling(None, {"WATCHFILES_FORCE_POLLING": "yes"}) is True
    assert want_polling(None, {"WATCHFILES_FORCE_POLLING": "disabled"}) is False


def test_default_filter(tmp_path: Path) -> None:
    d = tmp_path / "proj"
    d.mkdir()
    assert default_filter(tmp_path / "x.jsonl", False)
    assert default_filter(d, False)
    assert default_filter(tmp_path / "gone-dir", True)
    assert not default_filter(tmp_path / "x.json", False)
    assert not default_filter(tmp_path / ".x.jsonl.tmp", False)
