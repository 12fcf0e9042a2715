"""Watch a :class:`~tokmon.service.Service`'s roots: the watcher-to-notification bridge that
every live surface shares (the JSON-lines and LSP servers, the web page)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from tokmon.core.live import DeferredSaver
from tokmon.core.watcher import Watcher, usage_filter
from tokmon.service import Notification, Service

log = logging.getLogger("tokmon.server")

#: the watcher's wake-up period (ms) for live surfaces: an append is seen ~1-2 periods after
#: it lands (the push latency's floor); idle cost ~0.05 s CPU per 10 s at 4 ms (0.04 at 10)
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

    def keep(path: Path, deleted: bool) -> bool:
        if meta is not None and path.parent == meta.parent:
            return path.name == meta.name
        return logs(path, deleted)

    def on_change(paths: set[Path]) -> None:
        log.debug("changed: %s", sorted(map(str, paths))[:20])
        mon = service.limits_monitor
        if mon is not None:  # before the refresh: the version it bumps wakes the monitor
            mon.hint(paths)
        try:
            notes = service.on_files_changed(paths)
        except Exception:
            log.exception("refresh after a file change failed")
            return
        if notes:
            try:
                loop.call_soon_threadsafe(emit, notes)
            except RuntimeError:  # loop closed: shutting down
                pass
        saver.request()  # the ledger write happens later, on another thread

    saver = DeferredSaver(service.save)
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
    from tokmon.limits import monitor  # official limits, budgets, alerts (docs/limits.md)

    service.limits_monitor = monitor.start(service, loop, emit)
    return watcher
