"""The warm change check: what a report's refresh costs when (almost) nothing changed.

A refresh must find every transcript that grew, shrank, was rewritten, appeared or went,
which takes one ``stat`` per transcript (:func:`~tokmon.core.discovery.transcript_stats`,
with the kept directory listings). Comparing those against the ledger's file states used to
load all of them first (~8,000 rows at 2 GB). Instead, :class:`Checked` keeps, beside the
listings, what the ledger's ``files`` table says of each transcript's identity and size
(``[size, mtime_ns, ino, dev]``: the fields of the reader's "untouched" test), stamped with
the database it mirrors (its id, its generation, which every committed write bumps, and the
file's inode and device). While the stamp is the database's, a transcript whose ``stat``
equals its entry is untouched, exactly as the ledger's own state would say; only the others
(changed, new) get their state from the database, by path, and are read as before. When a
transcript of the mirror is not found any more (deleted, moved), or the stamp, the file or
any entry is not what it should be, the full check runs (:meth:`Ingest._plan`) and writes a
new mirror. ``TOKMON_NO_LISTING_CACHE=1`` switches this off with the listings.
"""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokmon.core.discovery import Known, transcript_stats
from tokmon.core.engine.state import Changes, EngineState, ProgressFn
from tokmon.core.reader import FileState, needs_read

log = logging.getLogger("tokmon.core.engine")

_NEVER = [-1, -1, -1, -1]  # a state the reader would read again: no stat equals it


class Checked:
    """The ledger's file states as ``{directory: {name: [size, mtime_ns, ino, dev]}}`` (a
    :class:`~tokmon.core.discovery.Known`), valid for the database ``stamp`` (see the module
    docstring); saved as ``cache/ledger-*.checked.json``."""

    def __init__(self, stamp: list[Any], dirs: dict[str, Any]) -> None:
        self.stamp = stamp
        self.dirs = dirs

    @classmethod
    def of_files(cls, stamp: list[Any], files: dict[str, FileState]) -> Checked:
        """The mirror of ``files`` (the ledger's file states by path)."""
        dirs: dict[str, Any] = {}
        sep = os.sep
        for key, st in files.items():
            d, _, name = key.rpartition(sep)
            dirs.setdefault(d, {})[name] = state_sig(st)
        return cls(stamp, dirs)

    def count(self) -> int | None:
        """How many file states it holds (None: not of our making)."""
        n = 0
        for v in self.dirs.values():
            if type(v) is not dict:
                return None
            n += len(v)
        return n

    def put(self, key: str, st: FileState | None) -> bool:
        """Set (None: drop) the state of the transcript ``key``; whether that changed it."""
        d, _, name = key.rpartition(os.sep)
        sig = None if st is None else state_sig(st)
        names = self.dirs.get(d)
        if names is None:
            if sig is None:
                return False
            names = self.dirs[d] = {}
        if names.get(name) == sig:
            return False
        if sig is None:
            del names[name]
            if not names:
                del self.dirs[d]
        else:
            names[name] = sig
        return True

    @classmethod
    def load(cls, path: Path, stamp: list[Any] | None = None) -> Checked | None:
        """The mirror saved at ``path``; None when missing, torn or not ours (a cache), or,
        with ``stamp``, of another database state (told from the file's first bytes, before
        parsing the rest: a stale mirror costs no parse)."""
        import orjson

        from tokmon.fsutil import read_regular

        try:
            raw = read_regular(path)
            if stamp is not None and not raw.startswith(_head(stamp)):
                return None
            data = orjson.loads(raw)
        except (OSError, ValueError, TypeError):
            return None
        if (
            type(data) is not dict
            or data.get("v") != 1
            or type(data.get("db")) is not list
            or type(data.get("dirs")) is not dict
            or (stamp is not None and data["db"] != stamp)
        ):
            return None
        return cls(data["db"], data["dirs"])

    def save(self, path: Path) -> None:
        """Write to ``path`` (0600, atomically; no fsync: a lost or torn one costs one full
        check, never a hidden change, since it is used only under its database's stamp)."""
        import orjson

        from tokmon.fsutil import atomic_write

        data = {"v": 1, "db": self.stamp, "dirs": self.dirs}
        atomic_write(path, orjson.dumps(data), fsync=False)


def _head(stamp: list[Any]) -> bytes:
    """How a mirror saved under ``stamp`` begins (:meth:`Checked.save`'s key order)."""
    import orjson

    return b'{"v":1,"db":' + orjson.dumps(stamp) + b","


def state_sig(st: FileState) -> list[int]:
    """A file state's entry: what the reader's "untouched" test compares a ``stat`` with."""
    if st.offset > st.size:  # the reader reads it again: never untouched
        return _NEVER
    return [st.size, st.mtime_ns, st.ino, st.dev]


class Check(EngineState):
    """The change check of a refresh without loading the ledger's file states."""

    def _checked_file(self) -> Path:
        return self.paths.cache_dir / f"{self.ledger_file.stem}.checked.json"

    def _check_stamp(self) -> list[Any] | None:
        """The database the in-memory state reflects: ``[dbid, generation, ino, dev]`` (None
        when there is no saved database to mirror)."""
        db = self.db
        if db is None or self._mem or not self.persist or self._seen_gen is None:
            return None
        try:
            st = os.stat(self.ledger_file)
            return [db.dbid(), self._seen_gen, st.st_ino, st.st_dev]
        except (OSError, sqlite3.Error):
            return None

    def _dropped_states(self, changes: Changes) -> Callable[[int], None]:
        """The ``on_dropped`` of a lazily loaded ledger: one warning (in this refresh's
        changes while it runs, else through :meth:`_late_warning`)."""

        def note(n: int) -> None:
            msg = (
                f"dropped {n} invalid file state(s) from the ledger at {self.ledger_file}: "
                "re-reading those transcripts"
            )
            if self._refreshing:
                changes.warnings.append(msg)
            else:
                self._late_warning(msg)

        return note

    def _quick_scan(self, changes: Changes, progress: ProgressFn | None) -> bool:
        """The full refresh's check and read with the mirror (see the module docstring);
        False, having read nothing, when the full check must run instead."""
        led = self.ledger
        if (
            not self.short_lived  # a long-lived engine keeps the states loaded
            or led.files_loaded
            or self.env.get("TOKMON_NO_LISTING_CACHE", "") not in ("", "0")
        ):
            return False
        stamp = self._check_stamp()
        if stamp is None:
            return False
        gc_on = gc.isenabled()
        gc.disable()  # the mirror and the stats are acyclic: no collection passes over them
        try:
            return self._quick_scan_with(changes, progress, stamp)
        finally:
            if self.freeze_after_check:
                # the process exits after this answer: what exists now (the imports, the
                # listings) lives until then; no later collection, nor the one at exit, walks
                # it again
                gc.freeze()
            if gc_on:
                gc.enable()

    def _quick_scan_with(
        self, changes: Changes, progress: ProgressFn | None, stamp: list[Any]
    ) -> bool:
        led = self.ledger
        checked = Checked.load(self._checked_file(), stamp)
        if checked is None:
            return False
        total = checked.count()
        if total is None:
            return False
        known = Known(checked.dirs)
        listings = self._listings_cache()
        changed: list[tuple[str, os.stat_result]] = []
        try:
            for root in self.roots:
                changed += transcript_stats(root, listings, known)
        except (TypeError, IndexError, KeyError, AttributeError):  # an entry not of our making
            return False
        if listings is not None and listings.changed:
            try:
                listings.save(self._listings_file())
            except OSError as exc:  # a cache: the next run lists again
                log.debug("cannot save the directory listings: %s", exc)
        if known.seen != total:  # a transcript of the ledger is gone: the full check says which
            return False
        db = self.db
        assert db is not None
        prev = db.file_states((k for k, _ in changed), self._dropped_states(changes))
        todo = []
        for key, st in changed:
            need, off = needs_read(st, prev.get(key))
            if need:
                todo.append((key, st, off))
        changes.files_checked = known.same + len(changed)  # every transcript found
        with led.partial(prev) as part:
            self._read(todo, {k for k, _ in changed}, changes, progress)
        if self.ledger is not led:
            return True  # reloaded (another process wrote meanwhile): the next run checks all
        dirty = False
        for key, _ in changed:
            dirty |= checked.put(key, part.get(key))
        if dirty or self._check_stamp() != stamp:
            self._save_checked(checked)
        return True

    def _keep_checked(self) -> None:
        """After a refresh (once its database is in place) whose full check loaded the
        ledger's file states: save them as the next run's mirror. A quick check leaves the
        states unloaded and saved its own mirror: nothing to do then."""
        led = self.ledger
        if (
            not self.short_lived  # its states change with every write it makes: not worth it
            or not led.files_loaded
            or self.env.get("TOKMON_NO_LISTING_CACHE", "") not in ("", "0")
        ):
            return
        stamp = self._check_stamp()
        if stamp is None or stamp == self._checked_saved:
            return
        self._save_checked(Checked.of_files(stamp, led.files))

    def _save_checked(self, checked: Checked) -> None:
        stamp = self._check_stamp()  # after the commit: the generation this state is at
        if stamp is None:
            return
        checked.stamp = stamp
        try:
            checked.save(self._checked_file())
        except OSError as exc:  # a cache: the next run checks everything
            log.debug("cannot save the checked file states: %s", exc)
            return
        self._checked_saved = stamp
