"""Background data for the dashboard: one refresher thread fed by a file watcher.

The engine is only touched from the refresher thread (refresh, summary, records) and, for
the deferred ledger write, from the core's saver under the same lock, so the UI thread never
blocks on disk. A change reported by the watcher wakes the refresher at once and only the
changed files are read (the core live loop, :mod:`tokmon.core.live`, as in ``tokmon serve``);
otherwise it wakes every ``idle_s`` seconds for a full incremental refresh (a safety net and
to roll time-dependent figures such as "today"), never busy-polling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokmon.core.live import DeferredSaver, PendingPaths, save_engine
from tokmon.watch.model import SPARK_MINUTES, Snapshot, bucket_usage, session_totals

if TYPE_CHECKING:
    from tokmon.core.engine import Engine

log = logging.getLogger("tokmon.watch")

STEP_MS = 100  # watcher wake-up period while idle (latency floor after an append)
NO_ROOTS_S = 2.0  # while no transcript dir exists yet, look for one this often (a few stats)


class FileWatch:
    """Adapter over the core's file watcher (tokmon.core.watcher)."""

    def __init__(
        self,
        roots: Iterable[Path],
        on_change: Callable[[set[Path]], None],
        *,
        debounce_ms: int = 50,
        agent_roots: Iterable[Path] = (),
    ) -> None:
        from tokmon.core.watcher import Watcher, usage_filter

        self._impl = Watcher(
            roots, on_change, debounce_ms=debounce_ms, path_filter=usage_filter(agent_roots)
        )
        # The notify loop wakes every `step_ms` to look for events; 10 ms (100 wake-ups/s)
        # costs ~0.15 s CPU per idle 30 s, 100 ms keeps the latency well under a second.
        self._impl.step_ms = max(self._impl.step_ms, STEP_MS)

    def start(self) -> FileWatch:
        self._impl.start()
        return self

    def stop(self) -> None:
        self._impl.stop()


def load_metadata(paths: Any) -> dict[str, dict[str, Any]]:
    """Session names/tags/descriptions from the metadata store."""
    from tokmon.metadata.store import MetadataStore

    return MetadataStore(paths=paths).all()


def update_tags(paths: Any, session_id: str, add: list[str], remove: list[str]) -> dict[str, Any]:
    """Add/remove tags of one session (locked read-modify-write in the store)."""
    from tokmon.metadata.store import MetadataStore

    return MetadataStore(paths=paths).update(session_id, add_tags=add, remove_tags=remove)


class Refresher:
    """Owns the engine; produces :class:`Snapshot` objects on a background thread."""

    def __init__(
        self,
        engine_factory: Callable[[], Engine],
        deliver: Callable[[Snapshot], None],
        *,
        paths: Any = None,
        idle_s: float = 60.0,
        watch: bool = True,
        tz: Any = None,
    ) -> None:
        self.engine_factory = engine_factory
        self.deliver = deliver
        self.paths = paths
        self.idle_s = idle_s
        self.watch = watch
        self.tz = tz
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._want_totals = True
        self._thread: threading.Thread | None = None
        self._watch: FileWatch | None = None
        self._pending = PendingPaths()
        self._engine_lock = threading.Lock()
        self._saver: DeferredSaver | None = None
        self.engine: Engine | None = None
        self.refreshes = 0
        self.last_changes: Any = None  # what the last refresh read (files_read, bytes_read)
        self._roots_seen: tuple[str, ...] | None = None
        self._roots_changed_at = -1e9

    def start(self) -> Refresher:
        self._thread = threading.Thread(target=self._run, name="tokmon-watch-refresh", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._watch is not None:
            self._watch.stop()
        if self._saver is not None:
            self._saver.flush()  # what refreshes left unsaved reaches the ledger now

    def _changed(self, paths: set[Path]) -> None:
        """Watcher callback: remember the paths, wake the refresher."""
        self._pending.add(paths)
        self._wake.set()

    def _save(self) -> None:
        if self.engine is None:  # the saver exists only once the engine does
            return
        for w in save_engine(self.engine, self._engine_lock):
            log.warning("%s", w)

    def poke(self, *, reset: bool = False) -> None:
        """Refresh now (``reset`` also computes per-session totals for a new baseline)."""
        if reset:
            self._want_totals = True
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            snap = self._snapshot()
            if self._stop.is_set():
                return
            self.deliver(snap)
            self._wake.wait(self._next_wait())

    def _next_wait(self) -> float:
        """Idle timer; short while no transcript dir exists or one just appeared.

        The watcher needs a moment to start watching a new root, so files created
        together with it are caught by these few extra stats instead.
        """
        recent = time.monotonic() - self._roots_changed_at < 3 * NO_ROOTS_S
        if not self._roots_seen or recent:
            return min(self.idle_s, NO_ROOTS_S)
        return self.idle_s

    def _note_roots(self) -> None:
        """Remember which roots exist as a refresh starts; note when that set changes."""
        try:
            roots = tuple(str(r) for r in self.engine.roots) if self.engine is not None else ()
        except Exception:  # noqa: BLE001
            roots = ()
        if self._roots_seen is not None and roots != self._roots_seen:
            self._roots_changed_at = time.monotonic()
        self._roots_seen = roots

    def _has_roots(self) -> bool:
        try:
            return bool(self.engine is not None and self.engine.roots)
        except Exception:  # noqa: BLE001
            return False

    def _start_watch(self) -> None:
        """Watch the transcript roots (before the next refresh, so no append is missed)."""
        if not self.watch or self._watch is not None or self.engine is None:
            return
        roots = list(getattr(self.engine, "watch_roots", None) or getattr(self.engine, "roots", []))
        try:
            agents = getattr(self.engine, "agents", None)
            agent_roots = agents.roots() if agents is not None else []
            self._watch = FileWatch(roots, self._changed, agent_roots=agent_roots).start()
        except Exception as exc:  # noqa: BLE001 - keep the timer fallback
            log.warning("file watching unavailable: %s", exc)
            self.watch = False

    def _snapshot(self) -> Snapshot:
        now = time.time()
        warnings: list[str] = []
        try:
            if self.engine is None:
                self.engine = self.engine_factory()
                self._start_watch()
                self._saver = DeferredSaver(self._save)
            self._note_roots()  # before the refresh: whatever exists now gets scanned
            # the watcher's paths: read only those files (None: full incremental refresh)
            hint = self._pending.take()
            with self._engine_lock:
                changes = self.engine.refresh(paths=hint, save=False)
                self.last_changes = changes
                warnings = [str(w) for w in (getattr(changes, "warnings", None) or [])]
                if not self._has_roots():
                    warnings.append("no Claude Code transcripts yet: waiting for them")
                now = time.time()
                summ = self.engine.summary(tz=self.tz) if self.tz else self.engine.summary()
                summary = summ.to_json()  # the edge: the dashboard model reads the wire shape
                records = self.engine.records
                minute_usage = bucket_usage(records, now, SPARK_MINUTES)
                totals = None
                if self._want_totals:
                    totals = session_totals(records)
                    self._want_totals = False
            if self._saver is not None:
                self._saver.request()  # the ledger write happens later, off this thread
        except Exception as exc:  # noqa: BLE001 - shown in the dashboard, retried later
            log.debug("refresh failed", exc_info=True)
            return Snapshot(summary={}, taken_at=now, error=f"{type(exc).__name__}: {exc}")
        try:
            metadata = load_metadata(self.paths)
        except Exception as exc:  # noqa: BLE001 - names are optional
            metadata = {}
            warnings.append(f"session metadata unavailable: {exc}")
        self.refreshes += 1
        return Snapshot(
            summary=summary,
            taken_at=now,
            minute_usage=minute_usage,
            metadata=metadata,
            session_totals=totals,
            warnings=warnings,
        )
