"""File watcher over usage-log roots (Claude transcripts and other agents) (watchfiles / Rust notify), debounced.

``Watcher(roots, on_change)`` runs one background thread; ``on_change(paths)`` is called in that
thread with the set of changed paths (or on an asyncio loop when ``loop=`` is given). It reports
new project dirs, new files, appends, truncation and deletion. Roots that do not exist yet are
re-checked every few seconds (no busy polling) and watched once they appear. Polling (for network
or WSL filesystems) is chosen with ``force_polling=True`` or env ``TOKMON_FORCE_POLLING`` /
``WATCHFILES_FORCE_POLLING``. Polling sees mtimes at one-second granularity, so in polling mode
every batch is re-delivered about a second later and the first batch after start names the roots:
consumers should treat a directory in a batch as "something below it changed".

While idle the thread blocks on a :class:`~tokmon.core.doorbell.Doorbell` where there is one
(Linux inotify, not polling): no periodic wake-ups, and an event wakes it at once. Elsewhere
watchfiles' loop wakes every ``step_ms`` to look for events (see ``step_ms`` below).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import platform
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tokmon.core.doorbell import Doorbell, open_doorbell

log = logging.getLogger("tokmon.watcher")

PathFilter = Callable[[Path, bool], bool]
"""``filter(path, deleted) -> keep?``"""

_FALSY = {"", "0", "false", "no", "off", "disable", "disabled"}


def default_filter(path: Path, deleted: bool) -> bool:
    """Keep transcript files and directories (new/removed project dirs); drop temp files."""
    name = path.name
    if name.endswith(".jsonl"):
        return True
    if name.startswith(".") or name.endswith((".tmp", ".swp", "~")):
        return False
    if deleted:
        return "." not in name  # a removed dir (we cannot stat it any more)
    try:
        return path.is_dir()
    except OSError:
        return False


def agent_log_filter(path: Path, deleted: bool) -> bool:
    """Like :func:`default_filter`, for other agents' folders: also Gemini/Amp/Qwen ``.json``
    documents and OpenCode's SQLite ``.db`` with its ``-wal``."""
    name = path.name
    if name.endswith((".json", ".db", ".db-wal")) and not name.startswith("."):
        return True
    return default_filter(path, deleted)


def usage_filter(agent_roots: Iterable[Path]) -> PathFilter:
    """:func:`agent_log_filter` below ``agent_roots``, :func:`default_filter` elsewhere."""
    roots = [os.path.abspath(r) for r in agent_roots]

    def keep(path: Path, deleted: bool) -> bool:
        p = os.path.abspath(path)
        if any(p == r or p.startswith(r + os.sep) for r in roots):
            return agent_log_filter(path, deleted)
        return default_filter(path, deleted)

    return keep


def want_polling(force_polling: bool | None, env: Mapping[str, str] | None = None) -> bool:
    """Resolve the polling choice: explicit flag, then env vars, then auto (WSL)."""
    if force_polling is not None:
        return force_polling
    env = os.environ if env is None else env
    for var in ("TOKMON_FORCE_POLLING", "WATCHFILES_FORCE_POLLING"):
        val = env.get(var)
        if val is not None and val.strip() != "":
            return val.strip().lower() not in _FALSY
    uname = platform.uname()
    return uname.system.lower() == "linux" and "microsoft" in uname.release.lower()


class Watcher:
    """Watch ``roots`` recursively and report debounced batches of changed paths."""

    #: how often missing roots are re-checked (ms); idle cost is one stat per root per period
    recheck_ms = 2000
    #: polling only: re-deliver a batch this long after it was seen (mtime granularity is 1 s)
    settle_ms = 1100
    #: with a doorbell: how long the notify loop waits for the change that rang it (ms); it
    #: returns as soon as the change is there (a step or two); a ring whose change the last
    #: batch already carried costs this long of stepping, once
    bell_wait_ms = 1000
    #: with a doorbell: the notify loop's step once it rang (ms), if shorter than ``step_ms``:
    #: the batch closes a step after its last new path; idle costs nothing either way
    bell_step_ms = 2
    #: with a doorbell and every root present: the idle thread's look at what notify holds
    #: (ms; never shorter than ``recheck_ms``). The bell rings for every kept change, a new
    #: directory included, so this is a safety net; each look costs 3-9 ms of CPU (notify's
    #: call with what it holds; docs/performance.md, thirteenth session)
    idle_recheck_ms = 60000

    def __init__(
        self,
        roots: Iterable[Path | str],
        on_change: Callable[[set[Path]], Any],
        *,
        debounce_ms: int = 50,
        step_ms: int | None = None,
        force_polling: bool | None = None,
        poll_delay_ms: int = 300,
        path_filter: PathFilter | None = default_filter,
        loop: asyncio.AbstractEventLoop | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> None:
        self.roots = [Path(r) for r in roots]
        self.on_change = on_change
        self.debounce_ms = max(1, int(debounce_ms))
        # step: the notify loop's wake-up period and how long to wait for more events once one
        # arrived (latency ~ 1-2 steps). Without a doorbell it also wakes every step while idle
        # (idle CPU ~ 0.13 s per 30 s at 10 ms, 0.02 s at 100 ms); with one, only after events
        self.step_ms = max(1, int(step_ms) if step_ms else min(10, self.debounce_ms))
        self.force_polling = want_polling(force_polling)
        self.poll_delay_ms = poll_delay_ms
        self.path_filter = path_filter
        self.loop = loop
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._when_ended: list[Callable[[], Any]] = []
        self._ended = False  # the thread is past its loop (running says False from then on)
        self.watched: list[Path] = []
        self._bell: Doorbell | None = None  # the current OS watch's doorbell, if any
        self._bell_lock = threading.Lock()  # stop() rings it; _run closes it

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Watcher:
        """Start the background thread; returns once the OS watch is in place."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="tokmon-watcher", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (idempotent)."""
        self._stop.set()
        with self._bell_lock:
            if self._bell is not None:
                self._bell.ring()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    close = stop

    def when_ended(self, fn: Callable[[], Any]) -> None:
        """Call ``fn`` (on the watcher's thread) when the thread ends, stopped or failed; a
        thread that waits for as long as the watcher runs needs no periodic look."""
        self._when_ended.append(fn)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._ended

    @property
    def idle_wait(self) -> str:
        """How the thread waits while nothing changes: ``"doorbell"`` (blocked on the OS
        until an event) or ``"step"`` (watchfiles' loop wakes every ``step_ms``)."""
        return "doorbell" if self._bell is not None else "step"

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------
    def _existing(self) -> list[Path]:
        out = []
        for r in self.roots:
            try:
                if r.is_dir():
                    out.append(r)
            except OSError:
                continue
        return out

    def _deliver(self, paths: set[Path]) -> None:
        if self.loop is None:
            self.on_change(paths)
            return

        def call() -> None:
            res = self.on_change(paths)
            if inspect.isawaitable(res):
                asyncio.ensure_future(res)

        with contextlib.suppress(RuntimeError):  # loop closed
            self.loop.call_soon_threadsafe(call)

    def _report(self, exc: BaseException) -> None:
        log.warning("watcher: %s", exc)
        if self.on_error is not None:
            with contextlib.suppress(Exception):
                self.on_error(exc)

    def _run(self) -> None:
        from watchfiles._rust_notify import RustNotify

        try:
            while not self._stop.is_set():
                watched = self._existing()
                missing = len(watched) < len(self.roots)
                if not watched:
                    self.watched = []
                    self._ready.set()
                    self._stop.wait(self.recheck_ms / 1000)
                    continue
                try:
                    notify = RustNotify(
                        [str(p) for p in watched],
                        False,
                        self.force_polling,
                        self.poll_delay_ms,
                        True,
                        True,
                    )
                except Exception as exc:  # e.g. a root vanished in between
                    self.watched = []
                    self._report(exc)
                    self._stop.wait(self.recheck_ms / 1000)
                    continue
                # the bell's watches go in after notify's: whatever happens in between is
                # notify's to report, and _watch's first look collects it
                bell = None if self.force_polling else open_doorbell(watched, self.path_filter)
                with self._bell_lock:
                    self._bell = bell
                log.debug(
                    "watching %s (polling=%s, doorbell=%s)", watched, self.force_polling, bool(bell)
                )
                self.watched = watched  # published once the OS watch is in place, not before
                self._ready.set()
                try:
                    self._watch(notify, missing, bell)
                finally:
                    with self._bell_lock:
                        self._bell = None
                    if bell is not None:
                        bell.close()
                    notify.close()
        finally:
            self._ended = True  # before the callbacks: what they wake sees the watcher ended
            self._ready.set()
            for fn in self._when_ended:
                with contextlib.suppress(Exception):
                    fn()

    def _watch(self, notify: Any, missing: bool, bell: Doorbell | None = None) -> None:
        # With every root present we wait without timeout (0); otherwise wake up now and then
        # to see whether a missing root appeared, then rebuild the OS watch.
        # Polling compares mtimes at one-second granularity, so a second write within the same
        # second as a detected one goes unseen: re-deliver each polled batch once, a second
        # later ("settle"), so the consumer re-reads whatever landed meanwhile.
        import time

        base_timeout = self.recheck_ms if missing else 0
        idle_wait = (
            self.recheck_ms if missing else max(self.recheck_ms, self.idle_recheck_ms)
        ) / 1000
        # the poller's first snapshot can itself hide a write made in the same second
        settle: set[Path] = set(self.watched) if self.force_polling else set()
        settle_at = time.monotonic() + self.settle_ms / 1000
        # with a bell: the paths whose change rang it and notify has not reported yet ("" for
        # "any change"), and until when to step for them
        expect: set[str] = set()
        expect_until = 0.0
        first = True  # look once before the first wait
        while not self._stop.is_set():
            timeout = base_timeout
            step = self.step_ms
            if settle:
                left = max(1, int((settle_at - time.monotonic()) * 1000))
                timeout = left if timeout == 0 else min(timeout, left)
            if bell is not None and not bell.ok:  # out of inotify watches: step from now on
                log.debug("watcher: doorbell lost a watch; stepping instead")
                with self._bell_lock:
                    self._bell = None
                bell.close()
                bell = None
            if bell is not None:
                if not expect and not first:
                    # idle: sleep until the OS reports a change. Every recheck_ms anyway
                    # while a root is missing, else every idle_recheck_ms, to collect what
                    # notify holds that the bell did not ring for (a change notify saw before
                    # the bell's watch was in place)
                    if bell.wait(idle_wait):
                        expect = bell.take()
                        expect_until = time.monotonic() + self.bell_wait_ms / 1000
                    if self._stop.is_set():
                        return
                # step until notify reported every path that rang (its thread may lag behind
                # the bell's; a batch of other paths can come first); a quick look otherwise
                left = int((expect_until - time.monotonic()) * 1000)
                timeout = max(1, left) if expect else 1
                step = min(self.step_ms, self.bell_step_ms)
                first = False
            try:
                raw = notify.watch(self.debounce_ms, step, timeout, self._stop)
            except Exception as exc:
                self._report(exc)
                return
            if raw == "stop":
                return
            if raw in ("timeout", "signal"):
                expect = set()  # waited long enough: notify saw no such change
                if settle and time.monotonic() >= settle_at - 0.001:
                    batch, settle = settle, set()
                    self._safe_deliver(batch)
                if missing and len(self._existing()) != len(self.watched):
                    return
                continue
            paths = self._filter(raw)
            if expect:
                expect.difference_update([p for _, p in raw], map(str, paths), [""])
            if any(p in self.roots and not _exists(p) for p in paths):
                # a root was removed: rebuild the watch over what is left
                self._safe_deliver(paths)
                return
            if paths:
                self._safe_deliver(paths)
                if self.force_polling:
                    settle |= paths
                    settle_at = time.monotonic() + self.settle_ms / 1000

    def _filter(self, raw: set[tuple[int, str]]) -> set[Path]:
        out: set[Path] = set()
        for change, p in raw:
            path = Path(p)
            deleted = change == 3
            if self.path_filter is None or self.path_filter(path, deleted):
                out.add(path)
            if change == 1:
                # files created right after their directory can beat the OS watch on it
                out |= self._files_in_new_dir(path)
        return out

    def _files_in_new_dir(self, path: Path, limit: int = 1000) -> set[Path]:
        found: set[Path] = set()
        try:
            if not path.is_dir():
                return found
            for dirpath, _dirs, files in os.walk(path):
                for name in files:
                    f = Path(dirpath) / name
                    if self.path_filter is None or self.path_filter(f, False):
                        found.add(f)
                        if len(found) >= limit:
                            return found
        except OSError:
            pass
        return found

    def _safe_deliver(self, paths: set[Path]) -> None:
        try:
            self._deliver(paths)
        except Exception as exc:  # a failing callback must not kill the watcher
            log.exception("watcher callback failed")
            self._report(exc)


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:
        return False
