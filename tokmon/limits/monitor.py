"""The language server's watcher of limits: pushes ``tokmon/limitsChanged`` and ``tokmon/alert``.

A daemon thread checks the history database (``limits.sqlite`` and its WAL: a ``stat``)
and the engine's data version when poked (:meth:`LimitsMonitor.poke`: the live surfaces' file
watcher pokes it after each refresh and when the database's directory changes) and otherwise
at each :data:`RESCAN` boundary (the clock's changes: a figure turning stale, a window
resetting; Codex's unwatched files; a writer no watcher sees), never twice within
:data:`INTERVAL` seconds.  When either moved, or a RESCAN boundary passed, it runs one
evaluation (:func:`tokmon.limits.run.evaluate`: ingest, status, budgets, fire-once
alerts), pushes ``tokmon/limitsChanged`` with the status when the figures changed, and
one ``tokmon/alert`` per alert row it has not pushed yet (fired by any process).

What an evaluation reads does not grow with the history: the ingest lists every Claude
transcript on the first pass only, then reads those the file watcher reported
(:meth:`LimitsMonitor.hint`); the status and budgets read the records from the oldest
official window or budget period on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from tokmon.limits.history import file_stamp, stamp_files

log = logging.getLogger(__name__)
INTERVAL = 1.0  # the shortest time between two checks (a burst of pokes: one check a second)
RESCAN = 30.0  # an evaluation at least this often (monotonic boundaries), changed or not
# Without a poke the thread sleeps to the next RESCAN boundary: each wake-up of an idle thread
# costs 1-5 ms of CPU on a VM, and a check a second was most of an idle server's CPU
# (docs/performance.md, 13th session); a check between two boundaries finds nothing the pokes
# would not have brought.


def _figures(st: dict[str, Any]) -> Any:
    return [
        (
            w["source"],
            w["window"],
            w["basis"],
            round(w["usedPercent"], 3),
            w.get("resetsAt"),
            bool(w.get("stale")),
        )  # a figure turning stale changes what every surface shows
        for w in st.get("windows", [])
    ] + [m["resetsAt"] for m in st.get("limitReached", [])]


class LimitsMonitor:
    """Polls and pushes (see module doc); ``emit(notes)`` is called from this thread."""

    def __init__(
        self,
        service: Any,
        emit: Callable[[list[tuple[str, Any]]], None],
        interval: float = INTERVAL,
        fallback: float | None = None,
    ) -> None:
        """``fallback``: the longest sleep without a poke, in seconds, instead of the next
        RESCAN boundary (default: ``TOKMON_LIMITS_FALLBACK`` in the service's environment,
        else the boundary; tests set an hour so that only a poke can wake the thread)."""
        self.service = service
        self.emit = emit
        self.interval = interval
        self.fallback = (
            _fallback(getattr(service, "env", None) or {}) if fallback is None else fallback
        )
        self.stop_event = threading.Event()
        self._poked = threading.Event()
        self._paths: Any = None  # tokmon's paths and the database's two files, looked up once
        self._stamp_files: tuple[str, str] = ("", "")
        self._last_stamp: Any = None
        self._last_figures: Any = None
        self._last_alert = -1
        self.status: dict[str, Any] | None = None
        # transcripts a file watcher saw change (None: list every file, as at the start)
        self._hinted: set[Any] | None = None
        self._hints = 0
        self._hint_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="tokmon-limits", daemon=True)

    def start(self) -> LimitsMonitor:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self._poked.set()

    def poke(self) -> None:
        """Something may have changed (a refresh, a write next to the database): check soon
        (within :attr:`interval` of the last check)."""
        self._poked.set()

    def hint(self, paths: Any) -> None:
        """Changed paths seen by a watcher: the next check reads only those transcripts
        (before the first check, or after a directory changed, every transcript once)."""
        import os

        paths = list(paths)
        # a directory (moved in, or named by a polling watcher): list every file again, as
        # the engine rescans everything then
        full = any(not str(p).endswith(".jsonl") and os.path.isdir(p) for p in paths)
        with self._hint_lock:
            self._hints += 1
            if full:
                self._hinted = None
            elif self._hinted is not None:
                self._hinted.update(paths)

    def _take_hints(self) -> Any:
        with self._hint_lock:
            got = self._hinted
            self._hinted = set()
        return got

    def _run(self) -> None:
        while not self.stop_event.is_set():
            checked = time.monotonic()
            try:
                self.poll()
            except Exception:
                log.exception("limits check failed")
            # wake just past the next RESCAN boundary, or sooner when poked
            wait = self.fallback
            if wait is None:
                wait = RESCAN - time.monotonic() % RESCAN + 0.01
            self._poked.wait(wait)
            self._poked.clear()
            left = checked + self.interval - time.monotonic()
            if left > 0:
                self.stop_event.wait(left)

    def poll(self) -> None:
        """One check (public for tests)."""
        svc = self.service
        if self._paths is None:
            from tokmon.paths import get_paths

            self._paths = get_paths(svc.env)
            self._stamp_files = stamp_files(self._paths)
        paths = self._paths
        eng = svc.engine_if_started
        # agents' files (Codex) are not watched: look at them at least every RESCAN seconds
        stamp = (
            tuple(map(file_stamp, self._stamp_files)),
            getattr(eng, "version", None),
            int(time.monotonic() // RESCAN),
            self._hints,
        )
        if stamp == self._last_stamp:
            return
        self._last_stamp = stamp
        from tokmon.limits import alerts, ingest
        from tokmon.limits.run import evaluate, fire_alerts

        files = self._take_hints()  # Claude transcripts: the watcher's, never all again
        try:  # file reading and delivery happen outside the service lock
            ingest.ingest(paths, svc.env, list(getattr(eng, "roots", [])), files)
        except Exception as exc:
            log.warning("could not read agents' limit figures: %s", exc)
            with self._hint_lock:  # read them again next time
                if files is None:
                    self._hinted = None
                elif self._hinted is not None:
                    self._hinted |= files
        with svc.lock:
            ev = evaluate(paths, svc.env, paths.config_file, eng, fire=False, read_agents=False)
        fire_alerts(paths, svc.env, paths.config_file, ev)
        for w in ev.warnings:
            log.warning("%s", w)
        notes: list[tuple[str, Any]] = []
        figures = _figures(ev.status)
        self.status = {**ev.status, "budgets": ev.budgets}
        if figures != self._last_figures or self._last_alert < 0:  # first poll: initial status
            self._last_figures = figures
            notes.append(("tokmon/limitsChanged", self.status))
        if self._last_alert < 0:  # first run: only alerts from now on
            rows = alerts.log(paths, limit=1)
            self._last_alert = rows[0]["id"] if rows else 0
            rows = [a for a in alerts.log(paths, limit=50) if a["key"] in
                    {f["key"] for f in ev.fired}]  # fmt: skip
        else:
            rows = alerts.log(paths, after_id=self._last_alert)
        for a in rows:
            self._last_alert = max(self._last_alert, a["id"])
            notes.append(("tokmon/alert", a))
        if notes:
            self.emit(notes)


def _fallback(env: Any) -> float | None:
    """``TOKMON_LIMITS_FALLBACK`` seconds (0 < s <= a day), else None (the RESCAN boundary)."""
    try:
        v = float(env.get("TOKMON_LIMITS_FALLBACK") or 0)
    except ValueError:
        return None
    return v if 0 < v <= 86400 else None


def start(service: Any, loop: Any, emit: Callable[[list[tuple[str, Any]]], None]) -> LimitsMonitor:
    """Start the monitor; notes reach ``emit`` on ``loop``'s thread."""
    import contextlib

    def push(notes: list[tuple[str, Any]]) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: shutting down
            loop.call_soon_threadsafe(emit, notes)

    return LimitsMonitor(service, push).start()
