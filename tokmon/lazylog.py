"""The report path's log, without importing :mod:`logging` until a record could pass.

``logging`` (with ``traceback``, ``textwrap``, ``string``) costs a warm report ~2 ms of its
start-up, and a report that goes well logs nothing at the default level. Until ``logging`` is
imported nobody can have configured it: the only configuration is the CLI's own
(:func:`configure`, kept until needed), else Python's default (the root at WARNING). So a
:class:`Logger` call below that level is dropped without the import; any other call imports
``logging``, applies the kept configuration first, and goes to ``logging.getLogger(name)``
exactly as a direct call would. Once ``logging`` is imported (by anyone: a test, a library),
every call is passed on; and whoever imports it while a configuration is kept (a library, a
module that logs through ``logging`` itself), the configuration is applied as soon as
``logging`` has run, before any record of theirs (:class:`_WhenImported`).
"""

from __future__ import annotations

import sys
import types

TYPE_CHECKING = False  # (typing is not imported by a warm report)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec

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
    elif _WhenImported not in sys.meta_path:
        sys.meta_path.insert(0, _WhenImported)


def _logging() -> types.ModuleType:
    import logging

    if _kept:
        level, stream = _kept.pop()
        logging.basicConfig(level=level, stream=stream, format=FORMAT)  # type: ignore[call-overload]
    if _WhenImported in sys.meta_path:
        sys.meta_path.remove(_WhenImported)
    return logging


class _WhenImported:
    """First on ``sys.meta_path`` while a configuration is kept: the import of ``logging``
    (by anyone) runs as usual, then applies the kept configuration."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != "logging":
            return None
        sys.meta_path.remove(_WhenImported)
        for finder in sys.meta_path:  # the spec the import would have found
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        run = getattr(spec.loader, "exec_module", None)
        if run is not None:

            def exec_module(module: types.ModuleType) -> None:
                run(module)
                _logging()  # (logging is in sys.modules, run: its basicConfig with the kept)

            spec.loader.exec_module = exec_module  # type: ignore[union-attr,method-assign]
        return spec


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
