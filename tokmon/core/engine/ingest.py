"""Ingest: plan, read and merge every source's new bytes into the in-memory ledger."""

from __future__ import annotations

import bisect
import operator
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokmon.core.discovery import Listings, file_stat, transcript_stats
from tokmon.core.model import UsageRecord
from tokmon.core.parser import LineStats
from tokmon.core.reader import FileState, needs_read
from tokmon.fsutil import LockTimeout

if TYPE_CHECKING:
    from tokmon.core.agents import AgentChanges

from tokmon import lazylog
from tokmon.core.engine.state import Changes, EngineState, ProgressFn
from tokmon.core.engine.store import _Rebuild
from tokmon.core.ledger import is_corrupt

log = lazylog.getLogger("tokmon.core.engine")

CLAUDE = "claude"
FUTURE_SLACK = 86400.0  # records dated further ahead than this are "far future" (flagged)


class Ingest(EngineState):
    """Plan, read and merge: Claude transcripts through the parallel scanner, other agents
    through their sources; repricing and derived-data invalidation."""

    def refresh(
        self,
        progress: ProgressFn | None = None,
        paths: Iterable[Path] | None = None,
        save: bool = True,
    ) -> Changes:
        """Read new bytes from every transcript and merge them into the ledger.

        ``paths`` (from a file watcher) limits the scan to those files when the ledger is
        already loaded; a directory among them means a full scan. Reading takes no lock;
        the merge is one short database transaction (``save`` is kept for callers: every
        refresh saves what it read, and costs what changed).
        """
        if self._refreshing:
            raise RuntimeError("Engine.refresh() is not re-entrant")
        self._refreshing = True
        changes = Changes()
        if self._dir_warning is not None:  # once per engine
            changes.warnings.append(self._dir_warning)
            self._dir_warning = None
        try:
            t0 = t1 = time.perf_counter()
            for attempt in range(3):
                try:
                    self._sync(changes)
                    self._reprice(changes)
                    t1 = time.perf_counter()
                    self._scan(changes, progress, paths)
                    self._publish_build(changes)
                    self._keep_checked()  # after the publish: a build's ledger file is new
                    break
                except _Rebuild:  # found corrupt while merging: moved aside, scan again
                    changes.new_records = changes.files_read = changes.bytes_read = 0
                except sqlite3.DatabaseError as exc:
                    if self.db is not None and self.db.build and attempt < 2:
                        # a first scan's private build failed (a full disk?): dropped, and
                        # the usual way next, which saves what it can or says why not
                        log.debug("the build failed (%s): scanning again the usual way", exc)
                        self._drop_build()
                        self._no_build = True
                        changes.new_records = changes.files_read = changes.bytes_read = 0
                    elif attempt == 2 or self._mem or not is_corrupt(exc):
                        raise
                    else:
                        self._corrupt(exc, changes)
                paths = None
                self._invalidate()
            t2 = time.perf_counter()
        finally:
            self._refreshing = False
            if self.db is not None and self.db.build:  # not published (an error): dropped
                self._drop_build()
        log.debug(
            "refresh: load %.1f ms, scan+merge %.1f ms (%d files, %.1f MB)",
            (t1 - t0) * 1e3,
            (t2 - t1) * 1e3,
            changes.files_read,
            changes.bytes_read / 1e6,
        )
        unknown = self.prices.unknown - self._warned_unknown
        if unknown:
            self._warned_unknown |= unknown
            changes.warnings.append(
                f"unknown model(s) {', '.join(sorted(unknown))}: cost counted as $0 "
                f"(add prices in {self.paths.prices_override_file})"
            )
        if changes.rebuilt:
            self._invalidate()
        elif changes.changed:
            self._invalidate(incremental=True)
        if changes.rebuilt and self.persist and save:  # put other machines' records back
            from tokmon.core.machines import restore_after_rebuild

            restore_after_rebuild(self, changes)
        return changes

    def pending_bytes(self) -> int:
        """Bytes of Claude transcripts a full refresh would read now (stat only, no reading):
        lets a caller decide where a big first index should run."""
        changes = Changes()
        self._sync(changes)
        for w in changes.warnings:
            log.warning("%s", w)
        todo, _ = self._plan()
        return sum(st.st_size - off for _, st, off in todo)

    def _refresh_agents(self, changes: Changes, paths: Iterable[Path] | None) -> list[Path] | None:
        """Read the other agents (only those owning a hinted path); returns the hinted paths
        that are left for the Claude scan."""
        store = self.agents
        assert store is not None
        rest: list[Path] | None = None
        got: AgentChanges | None
        if paths is None:
            got = store.refresh(None)
        else:
            hinted = [Path(p) for p in paths]
            mine = [p for p in hinted if store.owns(p)]
            rest = [p for p in hinted if not store.owns(p)]
            got = store.refresh(mine) if mine else None
        if got is not None:
            changes.new_records += got.new_records
            changes.changed_sessions |= got.changed_sessions
            changes.agents |= got.agents
            changes.files_read += got.files_read
            changes.bytes_read += got.bytes_read
        return rest

    def _cost(self, r: UsageRecord) -> float:
        return self.prices.cost_in_mode(r, str(self.config.get("cost_mode")))

    def _reprice(self, changes: Changes) -> None:
        db = self.db
        assert db is not None
        if self.ledger.price_signature == self._price_key():
            if not self._models_checked:  # register unknown models for the warning, once
                for model in self._models():
                    self.prices.lookup(model)
                self._models_checked = True
            return
        if self.agents is not None:
            self.agents.reprice()
        self._roll()  # the stored sums are rebuilt inside the reprice transaction
        if db.count() == 0:
            self._commit(changes, [], {}, [], [], None, prices=self._price_key())
            return
        if not self._mem:
            try:
                with self._lock():
                    self._seen_gen = db.reprice(self._cost, self._price_key())
                    self.ledger.price_signature = self._price_key()
            except (OSError, LockTimeout, sqlite3.OperationalError) as exc:
                db = self._fallback(changes, f"cannot save the ledger: {exc}")
        if self._mem:
            self._seen_gen = db.reprice(self._cost, self._price_key())
            self.ledger.price_signature = self._price_key()
        self._models_checked = False
        self._invalidate()

    def _models(self) -> set[str]:
        """Every Claude model in the ledger: from the stored sums' per-model totals (a few
        rows) when they are there, else from the records."""
        db = self.db
        assert db is not None
        roll = self._roll()
        if roll is not None:
            with db.lock():
                rows = db.conn.execute(
                    "SELECT DISTINCT model FROM rollup_total WHERE agent=?", (CLAUDE,)
                ).fetchall()
            return {r[0] for r in rows}
        return db.models()

    def _scan(
        self, changes: Changes, progress: ProgressFn | None, paths: Iterable[Path] | None = None
    ) -> None:
        agents_paths: Iterable[Path] | None = paths
        if self.agents is not None:
            paths = self._refresh_agents(changes, agents_paths)
        if paths is not None and self.ledger.files:
            hinted = self._plan_paths(paths)
            if hinted is not None:
                todo, gone = hinted
                changes.files_checked = len(todo)
                present = set(self.ledger.files) - gone
                self._read(todo, present, changes, progress)
                return
        if self._quick_scan(changes, progress):  # engine/check.py
            return
        todo, present = self._plan()
        changes.files_checked = len(present)
        self._read(todo, present, changes, progress)

    def _plan(self) -> tuple[list[tuple[str, os.stat_result, int]], set[str]]:
        files = self.ledger.files
        todo: list[tuple[str, os.stat_result, int]] = []
        present: set[str] = set()
        listings = self._listings_cache()
        for root in self.roots:
            found = transcript_stats(root, listings)
            present.update(key for key, _ in found)
            for key, st in found:
                prev = files.get(key)
                if (  # untouched (needs_read's first answer, without the call)
                    prev is not None
                    and st.st_size == prev.size
                    and st.st_mtime_ns == prev.mtime_ns
                    and st.st_ino == prev.ino
                    and st.st_dev == prev.dev
                    and prev.offset <= prev.size
                ):
                    continue
                need, off = needs_read(st, prev)
                if need:
                    todo.append((key, st, off))
        if listings is not None and listings.changed and self.persist:
            try:
                listings.save(self._listings_file())
            except OSError as exc:  # a cache: the next run lists again
                log.debug("cannot save the directory listings: %s", exc)
        return todo, present

    def _listings_file(self) -> Path:
        return self.paths.cache_dir / f"{self.ledger_file.stem}.listings.json"

    def _listings_cache(self) -> Listings | None:
        """The directory listings the change check reuses (loaded once; see
        :class:`~tokmon.core.discovery.Listings`), or None when switched off."""
        if self._listings is None and self._keeps_listings():
            self._listings = Listings.load(self._listings_file()) if self.persist else Listings()
        return self._listings

    def _plan_paths(
        self, paths: Iterable[Path]
    ) -> tuple[list[tuple[str, os.stat_result, int]], set[str]] | None:
        """Plan for the watcher's changed paths only; None means "do a full scan"."""
        import stat as stat_mod

        todo: list[tuple[str, os.stat_result, int]] = []
        gone: set[str] = set()
        roots = [os.fspath(r) for r in self.candidate_roots]
        for p in paths:
            key = os.fspath(p)
            if not key.endswith(".jsonl"):
                return None  # a directory appeared or went: rescan everything
            if not any(key.startswith(r + os.sep) for r in roots):
                continue
            try:
                st = file_stat(key)
            except OSError:
                if key in self.ledger.files:
                    gone.add(key)
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                continue
            need, off = needs_read(st, self.ledger.files.get(key))
            if need:
                todo.append((key, st, off))
        return todo, gone

    def _read(
        self,
        todo: list[tuple[str, os.stat_result, int]],
        present: set[str],
        changes: Changes,
        progress: ProgressFn | None,
    ) -> None:
        """Read the planned bytes (no lock held), then merge them in one transaction."""
        led = self.ledger
        stats = LineStats()
        far = time.time() + FUTURE_SLACK
        future: list[float] = []
        gone = [k for k in led.files if k not in present]  # its records stay: history
        todo.sort()
        total = sum(st.st_size - off for _, st, off in todo)
        done = 0
        bad_files = 0
        files = led.files
        items = [
            (key, off, st.st_size - off, files[key].fp if off and key in files else "")
            for key, st, off in todo
        ]
        # (dev, ino, size, mtime_ns) only: the stat results go (~650 bytes a file, all held
        # through the scan: the peak RSS of a cold scan of thousands of files)
        stat_of = {key: (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) for key, st, _ in todo}
        reading = bool(todo)
        todo.clear()
        override = self.paths.prices_override_file
        pricing = (str(override) if override.is_file() else None, str(self.config.get("cost_mode")))
        lookup = self.prices.lookup  # registers unknown models for the warning
        recs: list[UsageRecord] = []
        new_files: dict[str, FileState] = {}
        found: dict[tuple[int, int], list[tuple[str, str, str]]] = {}  # titles per scan part
        from_row = UsageRecord.from_row
        models: set[str] = set()
        # A first scan into an empty ledger: rows go to a temporary database as they come (not
        # kept in this process) and are loaded in bulk by SQL at the end.
        db = self.db
        stage = db.stage(total) if db is not None and reading and db.is_empty() else None
        try:
            for res in scan_all(items, pricing=pricing, ordered=stage is None):
                st = stat_of[res.key]
                if res.error is not None:
                    if res.key not in self._warned_files:
                        self._warned_files.add(res.key)
                        changes.warnings.append(f"cannot read {res.key}: {res.error}")
                    continue
                rows = res.rows
                if rows:  # (C loops: this thread's time is the scan's critical path)
                    models.update(map(_model_of, rows))
                    if max(map(_ts_of_row, rows)) > far:
                        future += [ts for ts in map(_ts_of_row, rows) if ts > far]
                part = (res.part, res.seq)  # merge order (see scan_all(ordered=False))
                if stage is not None:
                    stage.add(part, rows)
                else:
                    recs += map(from_row, rows)
                if res.titles:
                    found.setdefault(part, []).extend(res.titles)
                self._file_read(res, st, stats, changes, new_files)
                if res.malformed or res.invalid_utf8 or res.huge:
                    bad_files += 1
                done += st[2] - res.start
                if progress is not None:
                    progress(done, total)
            titles: list[tuple[str, str, str]] = []
            seen_titles: dict[tuple[str, str], str] = {}
            for sid, kind, title in (t for k in sorted(found) for t in found[k]):  # file order
                if seen_titles.get((sid, kind), led.titles.get(sid, {}).get(kind)) != title:
                    seen_titles[(sid, kind)] = title
                    titles.append((sid, kind, title))
                    changes.changed_sessions.add(sid)
            for model in models:
                lookup(model)
            agents = self.agents.payloads() if self.agents is not None else None
            self._commit(changes, recs, new_files, gone, titles, agents, stage=stage)
        finally:
            if stage is not None:
                stage.close()
        self._read_warnings(changes, stats, bad_files, future)

    def _file_read(
        self,
        res: Any,
        st: tuple[int, int, int, int],
        stats: LineStats,
        changes: Changes,
        new_files: dict[str, FileState],
    ) -> None:
        """Count one scanned file (``st``: its dev, ino, size and mtime_ns before the read):
        skipped lines, its new state, bytes read."""
        stats.malformed += res.malformed
        stats.invalid_utf8 += res.invalid_utf8
        stats.huge += res.huge
        if (res.malformed or res.invalid_utf8 or res.huge) and log.isEnabledFor(lazylog.DEBUG):
            log.debug("%s", _bad_lines_note(res))  # --log-level debug: one line per file
        dev, ino, size, mtime_ns = st
        new_state = FileState(dev, ino, max(size, res.end), mtime_ns, res.end, res.fp)
        if self.ledger.files.get(res.key) != new_state:
            new_files[res.key] = new_state
        changes.files_read += 1
        changes.bytes_read += res.end - res.start

    @staticmethod
    def _read_warnings(
        changes: Changes, stats: LineStats, bad_files: int, future: list[float]
    ) -> None:
        """The skipped-lines and far-future warnings of one read."""
        if stats.total():
            parts = [
                f"{n} {what}"
                for n, what in (
                    (stats.malformed, "malformed"),
                    (stats.invalid_utf8, "non-UTF-8"),
                    (stats.huge, f"oversized (>{16} MiB)"),
                )
                if n
            ]
            changes.warnings.append(
                f"skipped {' + '.join(parts)} line(s) in {bad_files} file(s); the rest was counted"
            )
        if future:
            from tokmon.core.timeutil import iso

            changes.warnings.append(
                f"{len(future)} record(s) dated more than a day in the future (latest "
                f"{iso(max(future))[:10]}): counted on their own dates, not in today, this "
                "week, this month or the current block"
            )

    def _invalidate(self, incremental: bool = False) -> None:
        """Drop derived data; ``incremental`` keeps what the pending deltas can update."""
        self.version += 1
        self._cache.clear()
        new_deltas, self._new_deltas = self._new_deltas, []
        if incremental and new_deltas:
            self._blocks.invalidate(
                min(min(n[0], o[0] if o is not None else n[0]) for o, n in new_deltas)
            )
        elif not incremental:
            self._blocks.invalidate()
        if incremental and self._sorted is not None and len(new_deltas) <= 1000:
            srt = self._sorted
            for old, new in new_deltas:
                if old is not None:
                    i = bisect.bisect_left(srt, old[0], key=_ts_of)
                    while i < len(srt) and srt[i].key != old.key:
                        i += 1
                    if i < len(srt):
                        del srt[i]
                bisect.insort(srt, new, key=_ts_of)
        else:
            self._sorted = None
        if incremental and self._periods is not None and len(self._deltas) < 100_000:
            self._deltas.extend(new_deltas)
        else:
            self._periods = None
            self._deltas = []


_ts_of_row: Any = operator.itemgetter(0)  # of a scanned row (record field order)
_model_of: Any = operator.itemgetter(3)


def _ts_of(r: UsageRecord) -> float:
    return r.ts


def scan_all(items: list[tuple[str, int, int, str]], **kw: Any) -> Iterator[Any]:
    """:func:`tokmon.core.scan.scan_all`, imported only when there is something to read (a
    warm report reads nothing: the scanner's modules stay out of its process). Called by
    its module name, so that a test or bench can wrap it here."""
    if not items:
        return iter(())
    from tokmon.core.scan import scan_all

    return scan_all(items, **kw)


def _bad_lines_note(res: Any) -> str:
    """``<file>: skipped N line(s) (...) at line(s) 3, 7 (first 20 listed)`` for the debug log."""
    n = res.malformed + res.invalid_utf8 + res.huge
    kinds = ", ".join(
        f"{k} {what}"
        for k, what in (
            (res.malformed, "malformed"),
            (res.invalid_utf8, "non-UTF-8"),
            (res.huge, "oversized"),
        )
        if k
    )
    where = ""
    if res.bad_lines:
        more = res.malformed + res.invalid_utf8 > len(res.bad_lines)
        where = f" at line(s) {', '.join(map(str, res.bad_lines))}" + (
            f" (first {len(res.bad_lines)} listed)" if more else ""
        )
    return f"{res.key}: skipped {n} line(s) ({kinds}){where}"
