"""Logging for the server transports (stdout carries the protocol; the watcher-to-notification
bridge every live surface shares is :mod:`tokmon.service_watch`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

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
