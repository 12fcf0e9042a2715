"""Pieces both transports share: logging setup and the watcher-to-notification bridge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from tokmon.core.live import DeferredSaver
from tokmon.core.watcher import Watcher, usage_filter
from tokmon.server.service import Notification, Service

log = logging.getLogger("tokmon.server")

LEVELS = ("debug", "info", "warning", "error")


def setup_logging(level: str = "warning", log_file: str | None = None) -> None:
    """Send logs to stderr (or ``log_file``), never stdout: stdout carries the protocol."""
    handler: logging.Handler
    if log_file:
        from tokmon.paths import ensure_dir

        p = Path(log_file).expanduser()
        ensure_dir(p.parent)
        handler = logging.FileHandler(p, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))
    # pygls logs every message body at INFO; keep it quiet unless debugging
    if level != "debug":
        logging.getLogger("pygls").setLevel(max(logging.WARNING, root.level))
        handler.addFilter(_one_line)  # bad client input: one line each, tracebacks at debug
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_drop_expected_errors)


def _one_line(record: logging.LogRecord) -> bool:
    """Cut a record to the first line of its message, without a traceback."""
    if record.exc_info or record.exc_text or "\n" in str(record.msg):
        first = record.getMessage().splitlines()[:1]
        exc = record.exc_info[1] if record.exc_info else None
        text = first[0] if first else ""
        if exc is not None:
            text = f"{text} ({type(exc).__name__}: {str(exc)[:120]})"
        record.msg, record.args = text, None
        record.exc_info = record.exc_text = None
        record.stack_info = None
    return True


def _drop_expected_errors(record: logging.LogRecord) -> bool:
    """pygls logs a traceback for every error response; ours (bad params) are expected."""
    exc = record.exc_info[1] if record.exc_info else None
    code = getattr(exc, "code", None)
    return not (isinstance(code, int) and code != -32603 and -32700 <= code <= -32000)


def attach_watcher(
    service: Service,
    loop: asyncio.AbstractEventLoop,
    emit: Callable[[list[Notification]], None],
    *,
    debounce_ms: int = 50,
    force_polling: bool | None = None,
) -> Watcher:
    """Watch the service's roots; refresh in the watcher thread, ``emit`` on the loop thread."""
    meta = service.metadata_path
    agents = getattr(service.engine, "agents", None)
    logs = usage_filter(agents.roots() if agents is not None else [])

    def keep(path: Path, deleted: bool) -> bool:
        if meta is not None and path.parent == meta.parent:
            return path.name == meta.name
        return logs(path, deleted)

    def on_change(paths: set[Path]) -> None:
        log.debug("changed: %s", sorted(map(str, paths))[:20])
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
        service.watch_roots, on_change, debounce_ms=debounce_ms,
        force_polling=force_polling, path_filter=keep,
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

