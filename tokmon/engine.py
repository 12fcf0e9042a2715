"""The engine facade: incremental refresh over every root, plus reports and summary.

Pure Python: no CLI, UI or server imports. Surfaces construct an :class:`Engine`, call
:meth:`Engine.refresh` and read reports from it.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokmon import aggregate
from tokmon.blocks import (
    BLOCK_SECONDS,
    BlockIndex,
    blocks_json,
    burn_level,
    compute_blocks,
    limit_status,
    max_completed_tokens,
)
from tokmon.config import Config, load_config
from tokmon.core.model import Block, UsageRecord

if TYPE_CHECKING:
    from tokmon.core.agents import AgentChanges, AgentStore
from tokmon.discovery import claude_roots, iter_transcript_stats
from tokmon.fsutil import FileLock, LockTimeout
from tokmon.ledger import (
    Ledger,
    LedgerError,
    LedgerNewer,
    file_stamp,
    index_path,
    ledger_path,
    load,
    load_index,
)
from tokmon.parser import LineStats
from tokmon.paths import TokmonPaths, get_paths
from tokmon.pricing import PriceTable
from tokmon.reader import FileState, needs_read
from tokmon.scan import scan_all
from tokmon.timeutil import WEEKDAYS, DateKeyer, parse_day, resolve_tz

ProgressFn = Callable[[int, int], None]
log = logging.getLogger("tokmon.engine")

ALL = "all"  # the agent filter that means every agent
CLAUDE = "claude"
LOCK_TIMEOUT = 5.0  # seconds a refresh waits for the ledger lock, then goes on without saving
FUTURE_SLACK = 86400.0  # records dated further ahead than this are "far future" (flagged)


@dataclass
class Changes:
    """What one refresh found."""

    new_records: int = 0
    changed_sessions: set[str] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)  # agents whose records changed
    files_checked: int = 0  # transcripts looked at (stat): all of them, or the watcher's hint
    files_read: int = 0
    bytes_read: int = 0
    warnings: list[str] = field(default_factory=list)
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.new_records or self.changed_sessions)


@dataclass
class SaveJob:
    """A ledger copy being written in the background (see Engine.snapshot)."""

    ledger: Ledger | None  # None: only the agents' store changed
    base_stamp: tuple[int, int] | None
    version: int
    new_stamp: tuple[int, int] | None = None
    superseded: bool = False
    agents_payload: bytes | None = None  # the other agents' store, serialised under the lock
    agents_version: int = 0


class Engine:
    """Discovers, tails and accounts Claude Code transcripts."""

    def __init__(
        self,
        roots: list[Path] | None = None,
        paths: TokmonPaths | None = None,
        config: Config | None = None,
        persist: bool = True,
        env: Mapping[str, str] | None = None,
        lock_timeout: float | None = None,
        agents: bool | Iterable[str] = False,
    ) -> None:
        """``agents``: also read the other coding agents' logs (True: every known agent, or
        the names to read); their records live beside the Claude ledger."""
        self.env = os.environ if env is None else env
        self.paths = paths or get_paths(self.env)
        self.config = config or load_config(self.paths)
        self.candidate_roots = [Path(r) for r in roots] if roots is not None else claude_roots(self.env)
        self.persist = persist
        self.prices = PriceTable.load(self.paths.prices_override_file)
        self.ledger = Ledger()
        self.ledger_file = ledger_path(self.paths.data_dir, self.candidate_roots)
        self.block_seconds = float(self.config.get("session_hours")) * 3600 or BLOCK_SECONDS
        self.version = 0
        self._sorted: list[UsageRecord] | None = None
        self._cache: dict[Any, Any] = {}
        self._warned_unknown: set[str] = set()
        self._warned_files: set[str] = set()
        self._pending = False  # file states loaded from the index, records not yet
        self._dirty = False  # the in-memory ledger has changes not yet saved
        self._own_stamps: set[tuple[int, int]] = set()  # ledger files this engine wrote
        self._models_checked = False
        # (replaced record or None, new record) pairs: of the last refresh, and not yet
        # folded into the period sums
        self._new_deltas: list[tuple[UsageRecord | None, UsageRecord]] = []
        self._deltas: list[tuple[UsageRecord | None, UsageRecord]] = []
        self._periods: dict[str, Any] | None = None  # incremental today/week/month/total sums
        self._blocks = BlockIndex(self.block_seconds)
        # Optional extra record filter for reports (e.g. one machine: tokmon.export.machines)
        self.record_filter: Callable[[UsageRecord], bool] | None = None
        self.lock_timeout = LOCK_TIMEOUT if lock_timeout is None else lock_timeout
        # A ledger file to move aside (path it goes to, stamp it had) before the next write:
        # corrupt, unreadable, migrated or with invalid values. Never overwritten in place.
        self._aside: tuple[Path, tuple[int, int]] | None = None
        self._readonly: str | None = None  # why the ledger must not be written (newer format)
        self._refreshing = False
        self._locked = False  # this engine holds the ledger lock (inside refresh)
        #: Where warnings found outside :meth:`refresh` go (default: the log).
        self.on_warning: Callable[[str], None] | None = None
        self.agents: AgentStore | None = None
        if agents:
            from tokmon.core.agents import AgentStore, agents_store_path  # only when asked

            self.agents = AgentStore(
                self.env,
                self.prices,
                agents_store_path(self.ledger_file, self.env) if persist else None,
                None if agents is True else agents,  # type: ignore[arg-type]
            )

    # -- discovery and refresh -------------------------------------------------------------

    @property
    def watch_roots(self) -> list[Path]:
        """What a file watcher should watch: every candidate Claude root (existing or not)
        and the other agents' data folders."""
        extra = self.agents.roots() if self.agents is not None else []
        return [*self.candidate_roots, *extra]

    @property
    def roots(self) -> list[Path]:
        """The ``projects/`` dirs that exist now."""
        return [r for r in self.candidate_roots if r.is_dir()]

    def refresh(
        self,
        progress: ProgressFn | None = None,
        paths: Iterable[Path] | None = None,
        save: bool = True,
    ) -> Changes:
        """Read new bytes from every transcript, merge them, and persist the ledger.

        ``paths`` (from a file watcher) limits the scan to those files when the ledger is
        already loaded; a directory among them means a full scan. With ``save=False`` the
        ledger is only marked dirty: call :meth:`save` later (long-running processes do
        this after pushing their update, off the latency path).
        """
        if self._refreshing:
            raise RuntimeError("Engine.refresh() is not re-entrant")
        self._refreshing = True
        changes = Changes()
        lock: FileLock | None = None
        try:
            write = self.persist and save and self._readonly is None
            if write:  # reading needs no lock (the ledger is replaced atomically)
                lock = FileLock(self.ledger_file.with_suffix(".lock"), timeout=self.lock_timeout)
                try:
                    lock.acquire()
                except (OSError, LockTimeout) as exc:
                    changes.warnings.append(f"cannot lock the ledger ({exc}); results not saved")
                    lock, write = None, False
            self._locked = lock is not None
            t0 = time.perf_counter()
            dirty = self._sync_from_disk(changes) if self.persist else False
            if self._locked and self._aside is not None:
                self._keep_aside(changes.warnings)  # a load outside the lock found it broken
            dirty |= self._reprice(changes)
            t1 = time.perf_counter()
            claude_paths = paths
            if self.agents is not None:
                claude_paths = self._refresh_agents(changes, paths)
            dirty |= self._scan(changes, progress, claude_paths)
            t2 = time.perf_counter()
            self._dirty |= dirty
            if self._dirty and write:
                self._save_locked(changes.warnings)
            if write and self.agents is not None and self._readonly is None:
                self._save_agents(changes.warnings)
        finally:
            if lock is not None:
                lock.release()
            self._locked = self._refreshing = False
        t3 = time.perf_counter()
        log.debug(
            "refresh: load %.1f ms, scan %.1f ms (%d files, %.1f MB), save %.1f ms",
            (t1 - t0) * 1e3, (t2 - t1) * 1e3, changes.files_read, changes.bytes_read / 1e6,
            (t3 - t2) * 1e3,
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
            from tokmon.export.machines import restore_after_rebuild

            restore_after_rebuild(self, changes)
        return changes

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

    def _save_agents(self, warnings: list[str]) -> None:
        assert self.agents is not None
        try:
            self.agents.save()
        except OSError as exc:
            warnings.append(f"cannot save the agents' ledger: {exc}")

    def _save_locked(self, warnings: list[str]) -> None:
        if self._readonly is not None or not self._keep_aside(warnings):
            return
        try:
            self.ledger.price_signature = self._price_key()
            self.ledger.save(self.ledger_file)
            self._dirty = False
        except OSError as exc:
            warnings.append(f"cannot save the ledger: {exc.strerror or exc}")
        except (TypeError, ValueError) as exc:  # orjson: a value JSON cannot hold
            warnings.append(f"cannot save the ledger: {exc}")

    def _keep_aside(self, warnings: list[str]) -> bool:
        """Move a broken/old ledger file aside before it would be overwritten (under the lock).

        False (and the engine turns read-only) if it cannot be moved: never overwrite it.
        """
        if self._aside is None:
            return True
        dest, stamp = self._aside
        if file_stamp(self.ledger_file) != stamp:
            self._aside = None  # gone or replaced meanwhile: nothing of ours to keep
            return True
        try:
            os.replace(self.ledger_file, dest)
        except OSError as exc:
            self._readonly = (f"cannot keep the ledger {self.ledger_file} aside "
                              f"({exc.strerror or exc}): not overwriting it; results not saved")
            warnings.append(self._readonly)
            return False
        with contextlib.suppress(OSError):
            os.unlink(index_path(self.ledger_file))
        self._aside = None
        return True

    def _aside_path(self, kind: str) -> Path:
        when = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = self.ledger_file.with_name(f"{self.ledger_file.name}.{kind}-{when}")
        if dest.exists():
            dest = dest.with_name(f"{dest.name}-{os.getpid()}")
        return dest

    def _late_warning(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)
        else:
            log.warning("%s", message)

    def snapshot(self) -> SaveJob | None:
        """A copy of the dirty ledger to write without holding up readers (cheap)."""
        if not self.persist or self._readonly is not None:
            return None
        payload = self.agents.payload() if self.agents is not None else None
        if not self._dirty:
            if payload is None:
                return None
            assert self.agents is not None
            return SaveJob(None, self.ledger.stamp, self.version, agents_payload=payload,
                           agents_version=self.agents.version)
        led = Ledger()
        led.files = dict(self.ledger.files)
        led.records = dict(self.ledger.records)
        led.titles = {k: dict(v) for k, v in self.ledger.titles.items()}
        led.price_signature = self._price_key()
        return SaveJob(led, self.ledger.stamp, self.version, agents_payload=payload,
                       agents_version=self.agents.version if self.agents is not None else 0)

    def write(self, job: SaveJob) -> list[str]:
        """The slow part of a save: serialise and write ``job`` (no engine state touched)."""
        warnings: list[str] = []
        if job.agents_payload is not None and self.agents is not None:
            try:
                self.agents.write(job.agents_payload)
            except OSError as exc:
                warnings.append(f"cannot save the agents' ledger: {exc}")
                job.agents_payload = None
        if job.ledger is None:
            return warnings
        try:
            with FileLock(self.ledger_file.with_suffix(".lock"), timeout=30):
                if self._readonly is not None or not self._keep_aside(warnings):
                    return warnings
                if file_stamp(self.ledger_file) not in (None, job.base_stamp):
                    job.superseded = True  # another process saved: its file is valid too
                    return warnings
                job.ledger.save(self.ledger_file)
                job.new_stamp = job.ledger.stamp
                self._own_stamps.add(job.new_stamp)  # set.add is atomic: safe from this thread
        except (OSError, LockTimeout, TypeError, ValueError) as exc:
            warnings.append(f"cannot save the ledger: {exc}")
        return warnings

    def commit(self, job: SaveJob) -> None:
        """Record that ``job`` was written (call under the same lock as refresh)."""
        if job.agents_payload is not None and self.agents is not None:
            self.agents.saved(job.agents_version)
        if job.ledger is None:
            return
        if job.new_stamp is not None and self.ledger.stamp == job.base_stamp:
            self.ledger.stamp = job.new_stamp
        if (job.new_stamp is not None or job.superseded) and self.version == job.version:
            self._dirty = False

    def save(self) -> list[str]:
        """Persist a ledger left dirty by ``refresh(save=False)``; returns warnings.

        If another process wrote the ledger meanwhile, its (equally valid) file is kept and
        the next refresh loads it.
        """
        warnings: list[str] = []
        if self.agents is not None and self.persist and self._readonly is None:
            self._save_agents(warnings)
        if not (self._dirty and self.persist):
            return warnings
        try:
            with FileLock(self.ledger_file.with_suffix(".lock"), timeout=30):
                if file_stamp(self.ledger_file) in (None, self.ledger.stamp):
                    self._save_locked(warnings)
                else:
                    self._dirty = False
        except (OSError, LockTimeout) as exc:
            warnings.append(f"cannot save the ledger: {exc}")
        return warnings

    def _price_key(self) -> str:
        return f"{self.prices.signature}|{self.config.get('cost_mode')}"

    def _cost(self, r: UsageRecord) -> float:
        return self.prices.cost_in_mode(r, str(self.config.get("cost_mode")))

    def _reprice(self, changes: Changes) -> bool:
        if self._pending and self.ledger.price_signature == self._price_key():
            return False
        self._ensure_records(changes)
        if self.ledger.price_signature == self._price_key():
            if not self._models_checked:  # register unknown models for the warning, once
                for model in {r.model for r in self.ledger.records.values()}:
                    self.prices.lookup(model)
                self._models_checked = True
            return False
        recs = self.ledger.records
        for k, r in recs.items():
            recs[k] = r.with_cost(self._cost(r))
        self.ledger.price_signature = self._price_key()
        self._invalidate()
        return True

    def _sync_from_disk(self, changes: Changes) -> bool:
        """Load the ledger if another process (or an earlier run) wrote a newer one."""
        stamp = file_stamp(self.ledger_file)
        if stamp is not None and stamp in self._own_stamps:
            self.ledger.stamp = stamp  # our own background save: nothing new in it
            return False
        if stamp is None or stamp == self.ledger.stamp:
            return stamp is None and bool(self.ledger.records)
        if self.version == 0 and not self.ledger.records:
            # First look in this process: the small index is enough to plan the scan.
            idx = load_index(self.ledger_file, stamp)
            if idx is not None:
                self.ledger, self._pending = idx, True
                return False
        return self._load_full(changes, stamp)

    def _ensure_records(self, changes: Changes | None = None) -> None:
        """Load the full ledger when only its index is loaded.

        Never re-enters :meth:`refresh` from inside one: a ledger that turns out broken
        leaves an empty state that the running scan fills. Outside a refresh (a report
        reading records) it runs one refresh to rebuild, and reports through on_warning.
        """
        if not self._pending:
            return
        ch = changes if changes is not None else Changes()
        self._load_full(ch, file_stamp(self.ledger_file))
        if changes is not None:
            return
        warnings = list(ch.warnings)
        if ch.rebuilt and not self._refreshing:
            warnings += self.refresh().warnings
        for w in warnings:
            self._late_warning(w)

    def _load_full(self, changes: Changes, stamp: tuple[int, int] | None) -> bool:
        self._pending = False
        if stamp is None:
            self.ledger = Ledger()
            return True
        try:
            fresh = load(self.ledger_file)
        except LedgerNewer as exc:
            self._readonly = (f"{exc} at {self.ledger_file}: not changing it (upgrade tokmon); "
                              "results come from the transcripts only and are not saved")
            changes.warnings.append(self._readonly)
            self._start_over(stamp)
            changes.rebuilt = True
            return False
        except LedgerError as exc:
            dest = self._aside_path(exc.kind)
            self._aside = (dest, stamp)
            changes.warnings.append(
                f"{exc} at {self.ledger_file}: rebuilding it from transcripts; the old file is "
                f"kept as {dest.name} (it holds the usage of transcripts deleted since)"
            )
            changes.rebuilt = True
            self._start_over(stamp)
            if self._locked:
                self._keep_aside(changes.warnings)
            return True
        dirty = False
        if fresh.migrated_from is not None or fresh.dropped:
            kind = f"v{fresh.migrated_from}" if fresh.migrated_from is not None else "invalid"
            dest = self._aside_path(kind)
            self._aside = (dest, stamp)
            if fresh.dropped:
                changes.warnings.append(
                    f"dropped {fresh.dropped} invalid value(s) from the ledger at "
                    f"{self.ledger_file} and re-reading transcripts; the old file is kept as "
                    f"{dest.name}"
                )
            else:
                changes.warnings.append(
                    f"migrated the ledger at {self.ledger_file} from format "
                    f"{fresh.migrated_from}; the old file is kept as {dest.name}"
                )
            if self._locked:
                self._keep_aside(changes.warnings)
            dirty = True
        old = self.ledger.records
        if old:
            for k, r in fresh.records.items():
                o = old.get(k)
                if o is None or o.output_tokens != r.output_tokens:
                    changes.changed_sessions.add(r.session_id)
                    changes.new_records += o is None
        self.ledger = fresh
        self._invalidate()
        return dirty

    def _start_over(self, stamp: tuple[int, int]) -> None:
        """After a ledger file we cannot use: keep full in-memory state, else start empty."""
        if not self.ledger.records:
            self.ledger = Ledger()
        self.ledger.stamp = stamp  # do not load the same bad file again
        self._dirty = True
        self._invalidate()

    def _scan(
        self, changes: Changes, progress: ProgressFn | None, paths: Iterable[Path] | None = None
    ) -> bool:
        if paths is not None and not self._pending and self.ledger.files:
            hinted = self._plan_paths(paths)
            if hinted is not None:
                todo, gone = hinted
                changes.files_checked = len(todo)
                present = set(self.ledger.files) - gone
                return self._read(todo, present, changes, progress)
        todo, present = self._plan()
        if self._pending and (todo or any(k not in present for k in self.ledger.files)):
            stamp = self.ledger.stamp
            self._ensure_records(changes)
            if self.ledger.stamp != stamp or not self.ledger.files:
                todo, present = self._plan()  # the full ledger differs from its index
        changes.files_checked = len(present)
        return self._read(todo, present, changes, progress)

    def _plan(self) -> tuple[list[tuple[str, os.stat_result, int]], set[str]]:
        led = self.ledger
        todo: list[tuple[str, os.stat_result, int]] = []
        present: set[str] = set()
        for root in self.roots:
            for key, st in iter_transcript_stats(root):
                present.add(key)
                need, off = needs_read(st, led.files.get(key))
                if need:
                    todo.append((key, st, off))
        return todo, present

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
                st = os.stat(key)
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
    ) -> bool:
        led = self.ledger
        stats = LineStats()
        dirty = False
        far = time.time() + FUTURE_SLACK
        future: list[float] = []
        for gone in [k for k in led.files if k not in present]:
            del led.files[gone]  # its records stay: history outlives the transcript
            dirty = True
        todo.sort()
        total = sum(st.st_size - off for _, st, off in todo)
        done = 0
        bad_files = 0
        files = led.files
        items = [(key, off, st.st_size - off, files[key].fp if off and key in files else "")
                 for key, st, off in todo]
        stat_of = {key: st for key, st, _ in todo}
        override = self.paths.prices_override_file
        pricing = (str(override) if override.is_file() else None, str(self.config.get("cost_mode")))
        lookup = self.prices.lookup  # registers unknown models for the warning
        for res in scan_all(items, pricing=pricing):
            st = stat_of[res.key]
            if res.error is not None:
                if res.key not in self._warned_files:
                    self._warned_files.add(res.key)
                    changes.warnings.append(f"cannot read {res.key}: {res.error}")
                continue
            recs = led.records
            deltas = self._new_deltas
            for row in res.rows:
                rec = UsageRecord.from_row(row)
                lookup(rec.model)
                if rec.ts > far:
                    future.append(rec.ts)
                old = recs.get(rec.key)
                if led.add(rec):
                    changes.new_records += old is None
                    changes.changed_sessions.add(rec.session_id)
                    deltas.append((old, rec))
            for sid, kind, title in res.titles:
                if led.titles.get(sid, {}).get(kind) != title:
                    led.titles.setdefault(sid, {})[kind] = title
                    changes.changed_sessions.add(sid)
            stats.malformed += res.malformed
            stats.invalid_utf8 += res.invalid_utf8
            stats.huge += res.huge
            if res.malformed or res.invalid_utf8 or res.huge:
                bad_files += 1
                if log.isEnabledFor(logging.DEBUG):  # --log-level debug: one line per file
                    log.debug("%s", _bad_lines_note(res))
            new_state = FileState(st.st_dev, st.st_ino, max(st.st_size, res.end), st.st_mtime_ns,
                                  res.end, res.fp)
            if led.files.get(res.key) != new_state:
                led.files[res.key] = new_state
                dirty = True
            changes.files_read += 1
            changes.bytes_read += res.end - res.start
            done += st.st_size - res.start
            if progress is not None:
                progress(done, total)
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
            from tokmon.timeutil import iso

            changes.warnings.append(
                f"{len(future)} record(s) dated more than a day in the future (latest "
                f"{iso(max(future))[:10]}): counted on their own dates, not in today, this "
                "week, this month or the current block"
            )
        return dirty

    def _invalidate(self, incremental: bool = False) -> None:
        """Drop derived data; ``incremental`` keeps what the pending deltas can update."""
        self.version += 1
        self._cache.clear()
        new_deltas, self._new_deltas = self._new_deltas, []
        if incremental and new_deltas:
            self._blocks.invalidate(min(min(n[0], o[0] if o is not None else n[0])
                                        for o, n in new_deltas))
        elif not incremental:
            self._blocks.invalidate()
        if incremental and self._sorted is not None and len(new_deltas) <= 1000:
            srt = self._sorted
            for old, new in new_deltas:
                if old is not None:
                    i = bisect.bisect_left(srt, old[0], key=_ts_of)
                    while i < len(srt) and srt[i] is not old:
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

    # -- data access -------------------------------------------------------------------------

    def data_version(self) -> str | None:
        """Identifies the persisted data state (for caches of derived output), or None when
        the in-memory data is not exactly the saved file (unsaved changes, read-only)."""
        if (not self.persist or self.ledger.stamp is None or self._dirty or self._aside is not None
                or self._readonly is not None):
            return None  # the engine holds data the file lacks: no cache may stand for it
        agents = ""
        if self.agents is not None:
            stamp = self.agents.stamp()
            if stamp is None:
                return None
            agents = f"|{stamp}"
        return f"{self.ledger.stamp[0]}:{self.ledger.stamp[1]}|{self._price_key()}{agents}"

    @property
    def records(self) -> list[UsageRecord]:
        """Deduplicated records sorted by time."""
        if self._pending:
            self._ensure_records()
        if self._sorted is None:
            self._sorted = sorted(self.ledger.records.values(), key=lambda r: r.ts)
        return self._sorted

    @property
    def titles(self) -> dict[str, str]:
        """Claude's own session titles: ``custom-title`` beats ``ai-title``."""
        self._ensure_records()
        out = {}
        for sid, t in self.ledger.titles.items():
            v = t.get("custom-title") or t.get("ai-title")
            if v:
                out[sid] = v
        return out

    def agent_names(self) -> list[str]:
        """``claude`` and every other agent that has records (registry order)."""
        return [CLAUDE] + (self.agents.agents_with_data() if self.agents is not None else [])

    def records_of(self, agent: str | None) -> list[UsageRecord]:
        """Records of one agent, oldest first (None: Claude Code)."""
        if agent is None or agent == CLAUDE:
            return self.records
        if self.agents is None or agent not in self.agents.readers:
            raise ValueError(f"unknown agent {agent!r} (known: {', '.join(self.known_agents())})")
        return self.agents.records(agent)

    def known_agents(self) -> list[str]:
        """Every agent name ``--agent`` accepts (besides ``all``)."""
        return [CLAUDE] + (list(self.agents.readers) if self.agents is not None else [])

    def _tz_name(self, tz: str | None) -> str | None:
        return tz if tz is not None else self.config.get("timezone")

    def _filtered(
        self,
        since: str | None = None,
        until: str | None = None,
        project: str | None = None,
        tz: str | None = None,
        session: str | None = None,
        agent: str | None = None,
    ) -> list[UsageRecord]:
        recs = self.records_of(agent)
        if self.record_filter is not None:
            recs = [r for r in recs if self.record_filter(r)]
        if project:
            recs = [r for r in recs if _project_matches(r.project, project)]
        if session:
            recs = [r for r in recs if r.session_id == session]
        if since or until:
            keyer = DateKeyer(resolve_tz(self._tz_name(tz)))
            lo = parse_day(since) if since else "0000-00-00"
            hi = parse_day(until) if until else "9999-99-99"
            recs = [r for r in recs if lo <= keyer.day(r.ts) <= hi]
        return recs

    def blocks(self, now: float | None = None) -> list[Block]:
        """All billing blocks (gaps included) of all records."""
        now = time.time() if now is None else now
        ck = ("blocks", int(now))
        if ck not in self._cache:
            self._cache[ck] = self._blocks.blocks(self.records, now)
        return self._cache[ck]  # type: ignore[no-any-return]

    def token_limit(self, now: float | None = None, override: int | str | None = None) -> tuple[int | None, str | None]:
        """The block token limit and where it came from."""
        lim = override if override is not None else self.config.token_limit
        if lim is None:
            return None, None
        if lim == "max":
            v = max_completed_tokens(self.blocks(now))
            return v, "max-completed-block" if v else None
        return int(lim), "config"

    def session_rows(
        self,
        since: str | None = None,
        until: str | None = None,
        project: str | None = None,
        tz: str | None = None,
        now: float | None = None,
        agent: str | None = None,
    ) -> list[dict[str, Any]]:
        """SessionRow dicts (see docs/architecture.md), most recent first.

        ``agent``: one agent's sessions (None: Claude Code's), or ``"all"``: every agent's,
        each row with its ``agent``."""
        now = time.time() if now is None else now
        rows: list[dict[str, Any]] = []
        for name in self.agent_names() if agent == ALL else [agent]:
            part = aggregate.session_rows(
                self._filtered(since, until, project, tz, agent=name), self.titles, now,
                self.block_seconds,
            )
            if agent == ALL:
                for r in part:
                    r["agent"] = name or CLAUDE
            rows += part
        rows.sort(key=lambda r: r["lastActivity"], reverse=True)
        return rows

    def report(self, kind: str, **opts: Any) -> dict[str, Any]:
        """A ccusage-compatible report: daily, weekly, monthly, session or blocks.

        ``agent``: one agent's report (default Claude Code: the ccusage shapes), or
        ``"all"``: every agent's rows, each with an ``agent`` column (blocks: Claude only).
        """
        agent = opts.get("agent")
        if agent == ALL:
            if kind == "blocks":
                raise ValueError("5-hour blocks are Claude Code's: use --agent claude")
            return self._all_agents_report(kind, opts)
        if kind == "blocks" and agent not in (None, CLAUDE):
            raise ValueError("5-hour blocks are Claude Code's: use --agent claude")
        tz = resolve_tz(self._tz_name(opts.get("timezone")))
        recs = self._filtered(opts.get("since"), opts.get("until"), opts.get("project"),
                              opts.get("timezone"), opts.get("session_id"), agent)
        keyer = DateKeyer(tz)
        order = opts.get("order") or "asc"
        if kind == "daily":
            return aggregate.period_report(recs, keyer.day, "date", "daily", order)
        if kind == "monthly":
            return aggregate.period_report(recs, keyer.month, "month", "monthly", order)
        if kind == "weekly":
            sow = WEEKDAYS.index(opts.get("start_of_week") or "sunday")
            return aggregate.period_report(recs, lambda ts: keyer.week(ts, sow), "week", "weekly",
                                           order)
        if kind == "session":
            now = opts.get("now") or time.time()
            rows = aggregate.session_rows(recs, self.titles, now, self.block_seconds)
            if not opts.get("include_empty") and not opts.get("session_id"):
                rows = [r for r in rows if r["totalTokens"]]  # 0-token sessions: only if asked
            rows.sort(key=lambda r: -r["totalCost"])
            return {"sessions": rows, "totals": aggregate.totals_dict(aggregate.totals(recs))}
        if kind == "blocks":
            return {"blocks": blocks_json(self._blocks_report(recs, opts))}
        raise ValueError(f"unknown report {kind!r}")

    def _all_agents_report(self, kind: str, opts: dict[str, Any]) -> dict[str, Any]:
        """Every agent's rows with an ``agent`` column (after the period or session id),
        sorted like the single-agent report; ``totals`` over all agents, per agent in
        ``agents``."""
        list_name = {"daily": "daily", "weekly": "weekly", "monthly": "monthly",
                     "session": "sessions"}[kind]
        label = {"daily": "date", "weekly": "week", "monthly": "month",
                 "session": "sessionId"}[kind]
        rows: list[dict[str, Any]] = []
        per_agent: dict[str, Any] = {}
        recs: list[UsageRecord] = []
        names = self.agent_names()
        for name in names:
            part = self.report(kind, **{**opts, "agent": name})
            for r in part[list_name]:
                row = {label: r[label], "agent": name}
                row.update((k, v) for k, v in r.items() if k != label)
                rows.append(row)
            per_agent[name] = part["totals"]
            recs += self._filtered(opts.get("since"), opts.get("until"), opts.get("project"),
                                   opts.get("timezone"), opts.get("session_id"), name)
        rank = {n: i for i, n in enumerate(names)}
        if kind == "session":
            rows.sort(key=lambda r: -r["totalCost"])
        else:
            rows.sort(key=lambda r: rank[r["agent"]])
            rows.sort(key=lambda r: r[label], reverse=opts.get("order") == "desc")
        totals = aggregate.totals_dict(aggregate.totals(recs))
        return {list_name: rows, "totals": totals, "agents": per_agent}

    def _blocks_report(self, recs: list[UsageRecord], opts: dict[str, Any]) -> list[Block]:
        now = opts.get("now") or time.time()
        blocks = compute_blocks(recs, now, self.block_seconds)
        limit, _ = self.token_limit(now, opts.get("token_limit"))
        if opts.get("active"):
            blocks = [b for b in blocks if b.is_active]
        elif opts.get("recent"):
            cutoff = now - 3 * 86400
            blocks = [b for b in blocks if b.is_active or b.end >= cutoff]
        if limit:
            for b in blocks:
                if b.is_active:
                    b.token_limit_status = limit_status(b, limit)
        if opts.get("order") == "desc":
            blocks.reverse()
        return blocks

    def _period_sums(self, key: tuple[Any, ...]) -> list[aggregate.Acc]:
        """[today, week, month, all-time] sums, kept up to date from record deltas.

        ``key`` is (zone, day start, week start, month start, day end, week end, month end):
        each period counts ``start <= ts < end`` (future-dated records stay out).
        """
        _, d0, w0, m0, d1, w1, m1 = key
        bounds = ((d0, d1), (w0, w1), (m0, m1), (float("-inf"), float("inf")))
        per = self._periods
        if per is not None and per["key"] == key:
            accs = per["accs"]
            for old, new in self._deltas:
                for sign, r in ((-1, old), (1, new)):
                    if r is None:
                        continue
                    ts = r.ts
                    for acc, (lo, hi) in zip(accs, bounds, strict=True):
                        if lo <= ts < hi:
                            _acc_apply(acc, r, sign)
            self._deltas = []
            return accs  # type: ignore[no-any-return]
        accs = [aggregate.Acc(), aggregate.Acc(), aggregate.Acc(), aggregate.Acc()]
        for r in self.records:
            ts = r.ts
            for acc, (lo, hi) in zip(accs, bounds, strict=True):
                if lo <= ts < hi:
                    _acc_apply(acc, r, 1)
        self._periods = {"key": key, "accs": accs}
        self._deltas = []
        return accs

    def summary(self, now: float | None = None, cwd: str | None = None, tz: str | None = None) -> dict[str, Any]:
        """The Summary dict every live surface shows (see docs/architecture.md)."""
        from tokmon.timeutil import iso

        now = time.time() if now is None else now
        tzname = self._tz_name(tz)
        tzinfo = resolve_tz(tzname)
        keyer = DateKeyer(tzinfo)
        today, week, month = keyer.day(now), keyer.week(now), keyer.month(now)
        from datetime import date as _date
        from datetime import datetime as _dt
        from datetime import timedelta as _td

        def _start(day: _date) -> float:
            return _dt(day.year, day.month, day.day, tzinfo=tzinfo).timestamp()

        dd, wd = _date.fromisoformat(today), _date.fromisoformat(week)
        md = _date.fromisoformat(month + "-01")
        next_month = _date(md.year + md.month // 12, md.month % 12 + 1, 1)
        bounds = (_start(dd), _start(wd), _start(md), _start(dd + _td(days=1)),
                  _start(wd + _td(days=7)), _start(next_month))
        acc_d, acc_w, acc_m, all_acc = self._period_sums((tzname, *bounds))
        recs = self.records
        blocks = self.blocks(now)
        current: Block | None = None
        for b in reversed(blocks):  # skip blocks that start in the future (clock skew)
            if b.is_active:
                current = b
                break
            if b.start <= now:
                break
        limit, source = self.token_limit(now)
        active: dict[str, Any] | None = None
        if current is not None:
            active = current.to_json()
            active["remainingMinutes"] = max(0.0, (current.end - now) / 60)
            br = current.burn_rate
            active["burnLevel"] = burn_level(br.tokens_per_minute_for_indicator if br else None)
            active["limitPercent"] = (current.total_tokens / limit * 100) if limit else None
        recent: set[str] = set()
        for i in range(len(recs) - 1, -1, -1):
            if now - recs[i].ts >= self.block_seconds:
                break
            if recs[i].ts <= now + FUTURE_SLACK:
                recent.add(recs[i].session_id)
        rows = aggregate.session_rows([r for r in recs if r.session_id in recent], self.titles,
                                      now, self.block_seconds) if recent else []
        rows.sort(key=lambda r: r["lastActivity"], reverse=True)
        active_rows = [r for r in rows if r["isActive"]]
        official = None
        try:
            from tokmon import official as official_mod

            official = official_mod.latest(self.paths)
        except Exception:  # the official store is optional; never break a summary
            official = None

        def period(acc: aggregate.Acc, **label: str) -> dict[str, Any]:
            d = dict(label)
            d.update(acc.tokens())
            return d

        out: dict[str, Any] = {
            "generatedAt": iso(now),
            "timezone": tzname or "local",
            "today": period(acc_d, date=today),
            "week": period(acc_w, week=week),
            "month": period(acc_m, month=month),
            "totals": all_acc.tokens(),
            "activeBlock": active,
            "tokenLimit": {"tokens": limit, "source": source},
            "official": official,
            "activeSessions": active_rows,
            "projectSession": project_session(active_rows, cwd) if cwd else None,
        }
        others = self.agent_names()[1:]
        if others:  # only with other agents' data: a Claude-only summary keeps its shape
            per_agent = {CLAUDE: {"today": period(acc_d, date=today),
                                  "totals": all_acc.tokens()}}
            for name in others:
                recs_a = self.records_of(name)
                day = aggregate.Acc()
                for r in recs_a:
                    if bounds[0] <= r.ts < bounds[3]:
                        _acc_apply(day, r, 1)
                per_agent[name] = {"today": period(day, date=today),
                                   "totals": aggregate.totals(recs_a).tokens()}
            out["agents"] = per_agent
        return out


def _acc_apply(acc: aggregate.Acc, r: UsageRecord, sign: int) -> None:
    acc.i += sign * r.input_tokens
    acc.o += sign * r.output_tokens
    acc.cc += sign * r.cache_creation_tokens
    acc.cr += sign * r.cache_read_tokens
    acc.cost += sign * r.cost
    acc.n += sign


def _ts_of(r: UsageRecord) -> float:
    return r.ts


def _project_matches(path: str, wanted: str) -> bool:
    return path == wanted or aggregate.project_name(path) == wanted


def _is_within(child: str, parent: str) -> bool:
    if not parent:
        return False
    try:
        c, p = os.path.normcase(os.path.abspath(child)), os.path.normcase(os.path.abspath(parent))
        return c == p or os.path.commonpath([c, p]) == p
    except ValueError:
        return False


def project_session(rows: list[dict[str, Any]], cwd: str) -> dict[str, Any] | None:
    """The most recent session whose project is ``cwd`` or contains it (rows sorted recent first)."""
    best = None
    for r in rows:
        proj = str(r.get("projectPath") or "")
        if _is_within(cwd, proj) and (best is None or len(proj) > len(str(best["projectPath"]))):
            best = r
    return best


def _bad_lines_note(res: Any) -> str:
    """``<file>: skipped N line(s) (...) at line(s) 3, 7 (first 20 listed)`` for the debug log."""
    n = res.malformed + res.invalid_utf8 + res.huge
    kinds = ", ".join(f"{k} {what}" for k, what in ((res.malformed, "malformed"),
                      (res.invalid_utf8, "non-UTF-8"), (res.huge, "oversized")) if k)
    where = ""
    if res.bad_lines:
        more = res.malformed + res.invalid_utf8 > len(res.bad_lines)
        where = (f" at line(s) {', '.join(map(str, res.bad_lines))}"
                 + (f" (first {len(res.bad_lines)} listed)" if more else ""))
    return f"{res.key}: skipped {n} line(s) ({kinds}){where}"
