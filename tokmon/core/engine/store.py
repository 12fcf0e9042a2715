"""Store: the ledger database (open, migrate, move aside, merge in short transactions).

Reading transcripts needs no lock; each refresh merges what it read in one ``BEGIN
IMMEDIATE`` transaction (:meth:`tokmon.core.ledger.LedgerDB.merge`) under a file lock taken
for that transaction only (its 5 s bound and the message naming the holder are for
interactive commands: a held lock costs a report a few seconds, never its figures). When the
database cannot be written (lock held, disk full, newer schema) the engine goes on with a
private in-memory copy and says so; the next refresh tries the file again.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tokmon import lazylog
from tokmon.core.engine.state import Changes, EngineState
from tokmon.core.ledger import (
    AgentRows,
    Ledger,
    LedgerDB,
    LedgerError,
    LedgerNewer,
    LedgerUnavailable,
    Stage,
    build_path,
    is_corrupt,
    json_ledger_path,
    remove_stale_builds,
    side_files,
)
from tokmon.core.model import UsageRecord
from tokmon.core.reader import FileState
from tokmon.fsutil import FileLock, LockTimeout
from tokmon.leanclass import dataclass

if TYPE_CHECKING:
    from tokmon.core.rollups import Rollups

log = lazylog.getLogger("tokmon.core.engine")

LOCK_TIMEOUT = 5.0  # seconds a refresh waits for the ledger lock, then goes on without saving
REBUILD_DELTAS = 20_000  # more changed records than this: rebuild the stored sums in bulk
CLAUDE = "claude"


@dataclass
class SaveJob:
    """Kept for the live loops' deferred-save protocol: every refresh now writes its own
    short transaction, so there is never anything left to write later."""

    version: int


def _present(path: Path) -> bool:
    """Whether ``path`` exists; True when that cannot be told (a data dir this user cannot
    search): the usual open then says why, and the report goes on without the ledger."""
    try:
        return path.exists()
    except OSError:
        return True


class _Rebuild(Exception):
    """The database turned out corrupt mid-refresh: it was moved aside; scan again."""


class Store(EngineState):
    """The ledger database: opening, migrating, moving broken files aside, merging."""

    _no_build = False  # set when a first scan's build could not be published (no hard links?)

    def _price_key(self) -> str:
        return f"{self.prices.signature}|{self.config.get('cost_mode')}"

    def _lock(self) -> FileLock:
        return FileLock(self.ledger_file.with_suffix(".lock"), timeout=self.lock_timeout)

    def _aside_path(self, src: Path, kind: str) -> Path:
        when = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = src.with_name(f"{src.name}.{kind}-{when}")
        if dest.exists():
            dest = dest.with_name(f"{dest.name}-{os.getpid()}")
        return dest

    def _move_aside(self, kind: str) -> Path:
        """Move the database (with its -wal/-shm) aside; returns where it went."""
        dest = self._aside_path(self.ledger_file, kind)
        os.replace(self.ledger_file, dest)
        for side, suffix in zip(side_files(self.ledger_file), ("-wal", "-shm"), strict=True):
            if side.exists():
                with contextlib.suppress(OSError):
                    os.replace(side, dest.with_name(dest.name + suffix))
        return dest

    def _late_warning(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)
        else:
            log.warning("%s", message)

    # -- opening -------------------------------------------------------------------------------

    def _open(self, changes: Changes, retry: bool = False) -> LedgerDB:
        """The database to read and write (opened, migrated or rebuilt on first use).

        ``retry`` (at the start of a refresh): after an in-memory fallback, try the file again.
        """
        if self.db is not None and self.db.build and retry and self.ledger_file.exists():
            self._drop_build()  # another process made the ledger meanwhile: use it
        if self.db is not None:
            if not retry or not self._mem or not self.persist or self._readonly is not None:
                return self.db
            self.db.close()  # an in-memory fallback: try the file again
            self.db, self._mem, self._seen_gen = None, False, None
        if not self.persist:
            self.db, self._mem = LedgerDB(None), True
            return self.db
        remove_stale_builds(self.ledger_file)
        if (
            self._refreshing
            and not self._no_build
            and not _present(self.ledger_file)
            and not _present(json_ledger_path(self.ledger_file))
        ):  # a first scan: built in a private file, published once complete (_publish_build)
            try:
                self.db = LedgerDB(build_path(self.ledger_file), build=True)
                return self.db
            except (OSError, LedgerError, LedgerUnavailable):
                pass  # the usual way
        try:
            self.db = LedgerDB(self.ledger_file)
        except LedgerNewer as exc:
            self._readonly = (
                f"{exc} at {self.ledger_file}: not changing it (upgrade tokmon); "
                "results come from the transcripts only and are not saved"
            )
            changes.warnings.append(self._readonly)
            self.db, self._mem = LedgerDB(None), True
            changes.rebuilt = True
            return self.db
        except LedgerError as exc:
            self.db = self._rebuild_after(exc, changes)
            return self.db
        except LedgerUnavailable as exc:
            self.db = self._read_only_copy(exc, changes)
            return self.db
        self._migrate_json(changes)
        return self.db

    def _read_only_copy(self, exc: LedgerUnavailable, changes: Changes) -> LedgerDB:
        """The database cannot be written now: go on with an in-memory copy of it."""
        self._mem = True
        try:
            ro = LedgerDB(self.ledger_file, readonly=True)
        except (LedgerError, LedgerUnavailable, sqlite3.Error) as exc2:
            changes.warnings.append(
                f"cannot open the ledger {self.ledger_file} ({exc}; {exc2}): results come from "
                "the transcripts only and are not saved"
            )
            changes.rebuilt = True
            return LedgerDB(None)
        try:
            mem = ro.memory_copy()
        finally:
            ro.close()
        changes.warnings.append(f"cannot save the ledger: {exc}; results not saved")
        return mem

    def _corrupt(self, exc: Exception, changes: Changes) -> None:
        """The open database turned out corrupt: keep it aside, start an empty one."""
        if self.db is not None:
            self.db.close()
        self.db = self._rebuild_after(LedgerError(f"corrupt ledger ({exc})"), changes)
        self._seen_gen = None
        self.ledger = Ledger()

    def _rebuild_after(self, exc: LedgerError, changes: Changes) -> LedgerDB:
        """Keep a broken database aside and start an empty one (one warning)."""
        try:
            with self._lock():
                dest = self._move_aside(exc.kind)
                db = LedgerDB(self.ledger_file)
        except (OSError, LockTimeout, LedgerError) as exc2:
            self._readonly = (
                f"{exc} at {self.ledger_file}, and it cannot be kept aside ({exc2}): not "
                "overwriting it; results come from the transcripts only and are not saved"
            )
            changes.warnings.append(self._readonly)
            self._mem = True
            changes.rebuilt = True
            return LedgerDB(None)
        changes.warnings.append(
            f"{exc} at {self.ledger_file}: rebuilding it from transcripts; the old file is "
            f"kept as {dest.name} (it holds the usage of transcripts deleted since)"
        )
        changes.rebuilt = True
        self._mem = False
        return db

    def _migrate_json(self, changes: Changes) -> None:
        """Import the JSON ledger of an older tokmon (every record), then rename it."""
        src = json_ledger_path(self.ledger_file)
        if not src.exists() or self.db is None:
            return
        from tokmon.core import ledger_json

        try:
            with self._lock():
                if not src.exists():
                    return  # another process imported it meanwhile
                try:
                    old = ledger_json.load(src)
                except ledger_json.LedgerNewer as exc:
                    changes.warnings.append(
                        f"{exc} at {src}: not importing it (upgrade tokmon); it is left as is"
                    )
                    return
                except ledger_json.LedgerError as exc:
                    dest = self._aside_path(src, exc.kind)
                    os.replace(src, dest)
                    changes.warnings.append(
                        f"{exc} at {src}: rebuilding it from transcripts; the old file is "
                        f"kept as {dest.name} (it holds the usage of transcripts deleted since)"
                    )
                    changes.rebuilt = True
                    return
                titles = [(s, k, v) for s, t in old.titles.items() for k, v in t.items()]
                self.db.merge(
                    old.records.values(), old.files, (), titles, prices=old.price_signature
                )
                dest = self._aside_path(src, "migrated")
                os.replace(src, dest)
                idx = ledger_json.index_path(src)
                if idx.exists():
                    os.replace(idx, self._aside_path(idx, "migrated"))
        except (OSError, LockTimeout, sqlite3.Error) as exc:
            changes.warnings.append(f"cannot import the old ledger {src} yet: {exc}")
            return
        note = (
            f"dropped {old.dropped} invalid value(s) (re-reading transcripts); "
            if old.dropped
            else ""
        )
        changes.warnings.append(
            f"moved the ledger into {self.ledger_file.name} ({len(old.records):,} records); "
            f"{note}the old file is kept as {dest.name}"
        )

    def _publish_build(self, changes: Changes) -> None:
        """Move a first scan's database (complete, committed) into place as the ledger and go
        on with it; when another process made the ledger meanwhile, drop it and raise
        :class:`_Rebuild` (the refresh then reads what that ledger lacks)."""
        db = self.db
        if db is None or not db.build:
            return
        if db.publish(self.ledger_file):
            self.db = None
            self._open(changes)  # (the same generation: self.ledger stays as it is)
            return
        self._drop_build()
        self._no_build = True  # (a ledger exists by now, or the file system cannot link)
        raise _Rebuild()

    def _drop_build(self) -> None:
        """Delete an unpublished build database and forget what was loaded from it."""
        if self.db is not None and self.db.build:
            self.db.discard()
        self.db, self._mem, self._seen_gen = None, False, None
        self.ledger = Ledger()

    # -- syncing -------------------------------------------------------------------------------

    def _sync(self, changes: Changes) -> None:
        """Load the small state again when another process (or a first open) wrote."""
        db = self._open(changes, retry=True)
        gen = db.generation()
        if gen == self._seen_gen:
            return
        if self._seen_gen is not None:
            changes.changed_sessions |= db.sessions_changed_since(self._seen_gen)
        # the file states and titles are read on first use (a warm change check, see
        # engine/check.py, may need none of them)
        self.ledger = db.load_state(lazy=True, on_dropped=self._dropped_states(changes))
        self._seen_gen = gen
        self._invalidate()

    def _fallback(self, changes: Changes, why: str) -> LedgerDB:
        """Go on with an in-memory copy of the database (results not saved)."""
        assert self.db is not None
        changes.warnings.append(why)
        mem = self.db.memory_copy()
        if self.db.build:  # an unpublished first scan's file: nothing in it is kept
            self.db.discard()
        elif not self._mem:
            self.db.close()
        self.db, self._mem = mem, True
        self._roll()
        return mem

    def _commit(
        self,
        changes: Changes,
        recs: list[UsageRecord],
        files: dict[str, FileState],
        gone: list[str],
        titles: list[tuple[str, str, str]],
        agents: dict[str, AgentRows] | None,
        prices: str | None = None,
        stage: Stage | None = None,
    ) -> None:
        """Merge what one refresh read: one short transaction; deltas into the engine.

        With ``stage`` (a first scan into an empty ledger) the records are in its tables
        instead of ``recs``: loaded in bulk by SQL (:meth:`LedgerDB.merge_staged`)."""
        if not (recs or files or gone or titles or agents or prices is not None or stage):
            return
        db = self.db if self.db is not None else self._open(changes)
        self._roll()
        lock: FileLock | None = None
        bulk: tuple[int, set[str], int] | None = None
        deltas: list[tuple[UsageRecord | None, UsageRecord]]
        if not self._mem:
            lock = self._lock()
            try:
                lock.acquire()
            except (OSError, LockTimeout) as exc:
                lock = None
                if db.build:  # a private file (see publish): it needs no lock
                    log.debug("building without the ledger lock: %s", exc)
                else:
                    if stage is not None:  # read back before the connection is left
                        recs, stage = stage.records(), None
                    db = self._fallback(
                        changes, f"cannot lock the ledger ({exc}); results not saved"
                    )
        try:
            try:
                if stage is not None:
                    warm = _import_beside(REPORT_MODULES) if db.build else None
                    try:
                        bulk = db.merge_staged(stage, files, gone, titles, prices, agents)
                    finally:
                        if warm is not None:
                            warm.join()
                    if bulk is None:  # records arrived meanwhile: the usual merge
                        recs, stage = stage.records(), None
                if bulk is not None:
                    deltas, gen = [], bulk[2]
                else:
                    deltas, gen = db.merge(recs, files, gone, titles, prices=prices, agents=agents)
            except sqlite3.OperationalError as exc:
                if self._mem or db.build:  # (a failed build: dropped, see Ingest.refresh)
                    raise
                if stage is not None:
                    recs, stage = stage.records(), None
                db = self._fallback(changes, f"cannot save the ledger: {exc}")
                deltas, gen = db.merge(recs, files, gone, titles, prices=prices, agents=agents)
            except sqlite3.DatabaseError as exc:
                if self._mem or not is_corrupt(exc):
                    raise
                if lock is not None:
                    lock.release()
                    lock = None
                self._corrupt(exc, changes)
                raise _Rebuild() from exc
        finally:
            if lock is not None:
                lock.release()
        stale = self._seen_gen is not None and gen != self._seen_gen + 1
        if stale:  # another process wrote since our last look: its sessions changed too
            changes.changed_sessions |= db.sessions_changed_since(self._seen_gen or 0)
        self._seen_gen = gen
        for k, st in files.items():
            self.ledger.files[k] = st
        for k in gone:
            self.ledger.files.pop(k, None)
        for sid, kind, title in titles:
            self.ledger.titles.setdefault(sid, {})[kind] = title
        if prices is not None:
            self.ledger.price_signature = prices
        if agents and self.agents is not None:
            self.agents.saved_to_db()
        for old, new in deltas:
            changes.new_records += old is None
            changes.changed_sessions.add(new.session_id)
        self._new_deltas.extend(deltas)
        if bulk is not None:  # no deltas to follow: derived data is dropped
            changes.new_records += bulk[0]
            changes.changed_sessions |= bulk[1]
            self._invalidate()
        if stale:
            self.ledger = db.load_state()
            self._invalidate()

    # -- stored sums ---------------------------------------------------------------------------

    def _roll(self) -> Rollups | None:
        """The stored sums (:mod:`tokmon.core.rollups`) in the current database, kept inside
        its merge and reprice transactions (built on first use; None if that fails: queries
        then read records)."""
        db = self.db
        if db is None:
            return None
        if self._roll_db is db:
            return self._rollups
        from tokmon.core.rollups import Rollups

        def between(
            agent: str, t0: float, t1: float, session_id: str | None = None
        ) -> list[UsageRecord]:
            if session_id is None:
                return db.records_between(t0, t1)
            return db.records("ts >= ? AND ts < ? AND session = ?", (t0, t1, session_id))

        self._roll_db, self._rollups = db, None
        try:
            with db.lock():
                roll = Rollups(db.conn, between, self.block_seconds)
            if roll.fresh or db.meta("sums") != 1:  # new, or a write that did not follow
                with db.write() as conn:
                    roll.rebuild_sql(CLAUDE, db.records_sql())
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('sums', 1)")
                    # sums rebuilt without a change log: no kept answer reaches past this
                    conn.execute(
                        "INSERT OR REPLACE INTO meta SELECT 'sums_gen', value FROM meta"
                        " WHERE key='gen'"
                    )
        except sqlite3.Error as exc:
            log.warning("stored sums unavailable (%s): reports read records", exc)
            return None

        def rebuild() -> None:  # in SQL from the records table (no record in Python)
            roll.rebuild_sql(CLAUDE, db.records_sql())

        def on_merge(deltas: list[tuple[UsageRecord | None, UsageRecord]], empty: bool) -> None:
            if empty or len(deltas) > REBUILD_DELTAS:
                rebuild()
            else:
                roll.apply(CLAUDE, deltas)

        db.on_merge = on_merge
        db.on_reprice = rebuild
        # a bulk load into an empty ledger: every record passed the table's guards just now
        db.on_bulk = lambda reader, cells, spans: roll.rebuild_sql(
            CLAUDE, db.records_sql(checked=False), reader, cells, spans
        )
        self._rollups = roll
        return roll

    # -- the deferred-save protocol (live loops) ---------------------------------------------

    def snapshot(self) -> SaveJob | None:
        """Nothing is ever left to save: every refresh committed its own changes."""
        return None

    def write(self, job: SaveJob) -> list[str]:
        """(See :meth:`snapshot`.)"""
        return []

    def commit(self, job: SaveJob) -> None:
        """(See :meth:`snapshot`.)"""

    def save(self) -> list[str]:
        """Every refresh saves what it read (one short transaction): nothing to do."""
        return []

    def data_version(self) -> str | None:
        """Identifies the persisted data state (for caches of derived output), or None when
        the in-memory data is not exactly the saved database (in-memory fallback, read-only)."""
        state = self._data_state(False)
        if state is None:
            return None
        dbid, gen, _, wid = state
        return f"{dbid}:{gen}:{wid}|{self._price_key()}"

    def data_lineage(self) -> tuple[str, int, str | None] | None:
        """:meth:`data_version` in parts: what stays while only the data grow (the
        database id, the change log's skew, the price signature and the cost mode), the
        generation and the id of its write (see :meth:`sessions_changed_since`); None as for
        :meth:`data_version`. The skew (:meth:`LedgerDB.log_skew`) moves when a writer that
        does not log every change (a tokmon of before) wrote: a kept answer of before is not
        spliced then."""
        state = self._data_state(True)
        if state is None:
            return None
        dbid, gen, skew, wid = state
        return f"{dbid}|{skew}|{self._price_key()}", gen, wid

    def _data_state(self, skew: bool) -> tuple[str, int, int | None, str | None] | None:
        """The database id, generation, (``skew``) change log skew and last write's id of
        the persisted data (None: the in-memory data is not exactly the saved database)."""
        if not self.persist or self._mem or self._readonly is not None or self.db is None:
            return None
        try:
            db = self.db
            # (the id after the generation: a write in between makes a pair that matches
            # nothing, a miss, never a pair that matches the wrong data)
            state = (db.dbid(), db.generation(), db.log_skew() if skew else None, db.write_id())
        except sqlite3.Error:
            return None
        if self.agents is not None and self.agents.dirty:
            return None
        return state

    def sessions_changed_since(
        self, lineage: str, gen: int, wid: str | None = None
    ) -> set[str] | None:
        """The sessions whose stored sums or title changed after generation ``gen`` (whose
        write had the id ``wid``) of :meth:`data_lineage` ``lineage`` (None: not known, e.g.
        another database, other prices, a writer that did not log, a pruned log, sums
        rebuilt since, or a ledger put back to an older copy and written again: read
        everything)."""
        now = self.data_lineage()
        if now is None or now[0] != lineage or self.db is None or "|None|" in lineage:
            return None
        if wid is None:
            return None
        try:
            return self.db.sessions_changed_after(gen, wid)
        except sqlite3.Error:
            return None

    def store_changed(self) -> bool:
        """Whether another process wrote the ledger since this engine last looked (cheap)."""
        if self.db is None or self._mem:
            return False
        try:
            return self.db.generation() != self._seen_gen
        except sqlite3.Error:
            return False

    def close(self) -> None:
        """Close the database connection (a later refresh opens it again)."""
        if self.db is not None and self.db.build:
            self._drop_build()
        if self.db is not None:
            self.db.close()
            self.db, self._mem, self._seen_gen = None, False, None


#: what a report imports after a first scan's build (see _import_beside)
REPORT_MODULES = ("tokmon.core.rows",)


def _import_beside(names: tuple[str, ...]) -> threading.Thread | None:
    """Import ``names`` on a thread while the caller runs a build's SQL, which releases the
    GIL (the build's serial tail leaves a core free): the report that follows a first scan
    finds them imported (``tokmon.core.rows``: ~5 ms of dataclass set-up). None when they
    are imported already."""
    todo = [n for n in names if n not in sys.modules]
    if not todo:
        return None

    def load() -> None:
        for name in todo:
            with contextlib.suppress(ImportError):  # (the report says so itself)
                importlib.import_module(name)

    thread = threading.Thread(target=load, name="tokmon-import", daemon=True)
    thread.start()
    return thread
