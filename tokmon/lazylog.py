"""The report path's log, without importing :mod:`logging` until a record could pass.

``logging`` (with ``traceback``, ``textwrap``, ``string``) costs a warm report ~2 ms of its
start-up, and a report that goes well logs nothing at the default level. Until ``logging`` is
imported nobody can have configured it: the only configuration is the CLI's own
(:func:`configure`, kept until needed), else Python's default (the root at WARNING). So a
:class:`Logger` call below that level is dropped without the import; any other call imports
``logging``, applies the kept configuration first, and goes to ``logging.getLogger(name)``
exactly as a direct call would. Once ``logging`` is imported (by anyone: a test, a library),
every call is passed on.
"""

from __future__ import annotations

import sys
import types

DEBUG = 10
INFO = 20
WARNING = 30
#: the CLI's format (tokmon.cli.context.setup_logging)
FORMAT = "tokmon: %(levelname)s: %(message)s"

_kept: list[tuple[int, object]] = []  # configure()'s (level, stream), not applied yet


def configure(level: int, stream: object, now: bool = False) -> None:
    """``logging.basicConfig(level=level, stream=stream, format=FORMAT)``: at once when
    ``logging`` is imported already or ``now``, else when a record could first pass."""
    _kept[:] = [(level, stream)]
    if now or "logging" in sys.modules:
        _logging()


def _logging() -> types.ModuleType:
    import logging

    if _kept:
        level, stream = _kept.pop()
        logging.basicConfig(level=level, stream=stream, format=FORMAT)  # type: ignore[call-overload]
    return logging


def _dropped(level: int) -> bool:
    """Whether a record at ``level`` cannot pass (``logging`` not imported, so only the kept
    configuration's level or the default's, WARNING, applies)."""
    return "logging" not in sys.modules and level < (_kept[0][0] if _kept else WARNING)


class Logger:
    """``logging.getLogger(name)``'s ``debug``, ``info``, ``warning`` and ``isEnabledFor``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        if _dropped(level):
            return False
        return bool(_logging().getLogger(self.name).isEnabledFor(level))

    def debug(self, msg: str, *args: object) -> None:
        if not _dropped(DEBUG):
            _logging().getLogger(self.name).debug(msg, *args, stacklevel=2)

    def info(self, msg: str, *args: object) -> None:
        if not _dropped(INFO):
            _logging().getLogger(self.name).info(msg, *args, stacklevel=2)

    def warning(self, msg: str, *args: object) -> None:
        if not _dropped(WARNING):
            _logging().getLogger(self.name).warning(msg, *args, stacklevel=2)


def getLogger(name: str) -> Logger:  # noqa: N802 (logging's name)
    return Logger(name)
