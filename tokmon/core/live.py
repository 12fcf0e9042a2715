"""The live loop shared by ``serve``, ``web`` and ``watch``: path-hinted refresh, deferred save.

A long-running surface keeps one :class:`~tokmon.core.engine.Engine` current while files change:

1. a :class:`~tokmon.core.watcher.Watcher` reports the changed paths;
2. the surface calls ``engine.refresh(paths=changed, save=False)``: only those files are
   read, and what they added is merged into the ledger database in one short transaction
   (only the changed rows are written);
3. it pushes the new figures. The :class:`DeferredSaver` / :func:`save_engine` protocol
   (snapshot under the lock, write outside it) stays for surfaces that use it, but with the
   database a refresh leaves nothing to save, so it writes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokmon.core.engine import Engine

log = logging.getLogger("tokmon.live")

SAVE_DELAY = 3.0  # seconds a burst of appends is coalesced into one ledger write


def save_engine(engine: Engine, lock: Any) -> list[str]:
    """Persist what ``refresh(save=False)`` left unsaved: snapshot under ``lock`` (the lock
    that guards every other use of ``engine``), serialise and write outside it, commit under
    it again. Returns the warnings."""
    with lock:
        job = engine.snapshot()
    if job is None:
        return []
    warnings = engine.write(job)
    with lock:
        engine.commit(job)
    return warnings


class DeferredSaver:
    """Calls ``save`` after bursts of changes, on its own thread, so that neither the push
    nor the next file event waits for it. At most one write per ``delay`` seconds."""

    def __init__(self, save: Callable[[], object], delay: float = SAVE_DELAY) -> None:
        self.save = save
        self.delay = delay
        self._event = threading.Event()
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="tokmon-saver", daemon=True)
        self.thread.start()

    def request(self) -> None:
        """Save soon (a no-op when a save is already pending)."""
        self._event.set()

    def flush(self) -> None:
        """Save now if a save is pending (on shutdown), then stop the thread."""
        self._stop.set()
        pending = self._event.is_set()
        self._event.set()  # wake the thread so it exits
        if pending:
            self._save()

    def _save(self) -> None:
        with self._busy:
            try:
                self.save()
            except Exception:
                log.exception("saving the ledger failed")

    def _run(self) -> None:
        while True:
            self._event.wait()
            if self._stop.wait(self.delay):  # coalesce a burst of appends into one write
                return
            self._event.clear()
            self._save()


class PendingPaths:
    """Changed paths collected from a watcher thread until the consumer takes them.

    ``take()`` returns the paths since the last take, or ``None`` when a full scan is due
    (nothing was reported, e.g. an idle-timer wake-up)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[Path] = set()

    def add(self, paths: Iterable[Path]) -> None:
        with self._lock:
            self._paths.update(paths)

    def take(self) -> set[Path] | None:
        with self._lock:
            got, self._paths = self._paths, set()
        return got or None
