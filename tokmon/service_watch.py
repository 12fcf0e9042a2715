"""Watch a :class:`~tokmon.service.Service`'s roots: the watcher-to-notification bridge that
every live surface shares (the JSON-lines and LSP servers, the web page)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tokmon.core.live import DeferredSaver
from tokmon.core.watcher import Watcher, usage_filter
from tokmon.service import Notification, Service

log = logging.getLogger("tokmon.server")

#: the watcher's wake-up period (ms) for live surfaces where it has no doorbell (macOS,
#: Windows, polling): an append is seen ~1-2 periods after it lands (the push latency's floor);
#: idle cost ~0.05 s CPU per 10 s at 4 ms (0.04 at 10). With the doorbell (Linux) it blocks
#: while idle and steps min(this, Watcher.bell_step_ms) only after an event.
LIVE_STEP_MS = 4


def attach_watcher(
    service: Service,
    loop: asyncio.AbstractEventLoop,
    emit: Callable[[list[Notification]], None],
    *,
    debounce_ms: int = 50,
    force_polling: bool | None = None,
    step_ms: int = LIVE_STEP_MS,
) -> Watcher:
    """Watch the service's roots; refresh in the watcher thread, ``emit`` on the loop thread."""
    meta = service.metadata_path
    eng = service.engine_if_started
    agents = eng.agents if eng is not None else None
    logs = usage_filter(agents.roots() if agents is not None else [])
    from tokmon.limits.history import db_path, is_history_file
    from tokmon.paths import get_paths

    history_dir = db_path(get_paths(service.env)).parent

    def keep(path: Path, deleted: bool) -> bool:
        if meta is not None and path.parent == meta.parent:
            if path.parent == history_dir and is_history_file(path.name):
                # another process (Claude Code's statusLine running `tokmon line --claude`)
                # wrote official figures: the limits monitor looks now, not at its fallback
                mon = service.limits_monitor
                if mon is not None:
                    mon.poke()
            return path.name == meta.name
        return logs(path, deleted)

    def on_change(paths: set[Path]) -> None:
        log.debug("changed: %s", sorted(map(str, paths))[:20])
        mon = service.limits_monitor
        if mon is not None:  # before the refresh: it reads the changed transcripts' markers
            mon.hint(paths)
        try:
            notes = service.on_files_changed(paths)
        except Exception:
            log.exception("refresh after a file change failed")
            return
        finally:
            if mon is not None:  # the refresh bumped the engine's version: check it
                mon.poke()
        if notes:
            try:
                loop.call_soon_threadsafe(emit, notes)
            except RuntimeError:  # loop closed: shutting down
                pass
            expiry.poke()  # the active set changed: its first departure may be sooner
        saver.request()  # the ledger write happens later, on another thread

    saver = DeferredSaver(service.save)
    expiry = ActiveExpiry(service, loop, emit)
    watcher = Watcher(
        service.watch_roots,
        on_change,
        debounce_ms=debounce_ms,
        step_ms=min(step_ms, debounce_ms),
        force_polling=force_polling,
        path_filter=keep,
    ).start()
    # catch up with whatever changed between the first scan and the OS watch being in place
    try:
        notes = service.catch_up()
    except Exception:
        log.exception("catch-up refresh failed")
        notes = []
    if notes:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(emit, notes)
    expiry.start(watcher)
    from tokmon.limits import monitor  # official limits, budgets, alerts (docs/limits.md)

    service.limits_monitor = monitor.start(service, loop, emit)
    return watcher


class ActiveExpiry:
    """Push when a session leaves the active set by the clock (its last activity is a block
    length old, no new record): a thread that sleeps until the first such departure
    (:meth:`Service.next_expiry`), then asks :meth:`Service.expire` for the push. It ends
    with the watcher it was started with."""

    #: the longest sleep while no departure is due (seconds): pushes poke the thread and the
    #: watcher's end wakes it (each wake-up of an idle thread costs ~1 ms of CPU on a VM)
    CHECK = 30.0

    def __init__(
        self,
        service: Service,
        loop: asyncio.AbstractEventLoop,
        emit: Callable[[list[Notification]], None],
    ) -> None:
        self.service = service
        self.loop = loop
        self.emit = emit
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, watcher: Watcher) -> None:
        watcher.when_ended(self.poke)
        self.thread = threading.Thread(
            target=self._run, args=(watcher,), name="tokmon-active-expiry", daemon=True
        )
        self.thread.start()

    def poke(self) -> None:
        """A push went out: look at the next departure again."""
        self.wake.set()

    def _run(self, watcher: Watcher) -> None:
        while watcher.running:
            at = self.service.next_expiry()
            delay = self.CHECK if at is None else max(0.0, at - time.time())
            if delay > 0:
                # a little past the departure: the summary must see it gone
                self.wake.wait(min(self.CHECK, delay + 0.01))
                self.wake.clear()
                continue
            try:
                notes = self.service.expire()
            except Exception:
                log.exception("pushing the sessions that left the active set failed")
                self.wake.wait(self.CHECK)
                self.wake.clear()
                continue
            if notes:
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(self.emit, notes)
            else:
                self.wake.wait(0.05)  # the clock lags the timer a little: look again soon
                self.wake.clear()
