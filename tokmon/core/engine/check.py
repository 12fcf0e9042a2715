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

In front of both, :class:`Flat` (``cache/ledger-*.flat``) holds the last walk flattened:
every directory with its kept listing's stat and every transcript with its mirror entry, for
the same stamp. A run whose directories all ``stat`` as recorded is answered from it alone
(two C-level passes of ``os.stat`` and one compare; changed transcripts read as above), and
it is updated in place of the mirror; any directory change runs the walk, which saves a new
one. (Two threads sharing the ``stat`` calls were slower, in CPU and wall time: each call
hands the GIL over and back.)
"""

from __future__ import annotations

import gc
import os
import sqlite3
from array import array
from collections.abc import Callable, Iterable, Iterator
from itertools import compress, count
from operator import attrgetter, ne
from pathlib import Path
from stat import S_ISREG
from typing import Any

from tokmon import lazylog
from tokmon.core import flatfile
from tokmon.core.discovery import Known, file_stat, transcript_stats
from tokmon.core.engine.state import Changes, EngineState, ProgressFn
from tokmon.core.parser import _native_disabled
from tokmon.core.reader import FileState, needs_read
from tokmon.jsontext import compact

log = lazylog.getLogger("tokmon.core.engine")

_NEVER = [-1, -1, -1, -1]  # a state the reader would read again: no stat equals it

# --- the native stat check (tokmon._native._stat, optional, POSIX only) -----------------------
_native_check: Any = False  # the extension's check(); False: not looked up yet, None: not in use
_THREADS = 2  # threads of the native check (the second is CPU-neutral; see docs/performance.md)


def native_stat_check() -> Any:
    """The native flat-walk check (``tokmon._native._stat.check``), or None: not built, not
    POSIX (Windows' ``os.stat`` makes its own ``st_ino``), or disabled by ``TOKMON_NO_NATIVE``."""
    global _native_check
    found = _native_check
    if found is False:
        found = None  # set once below: see parser.native_scanner
        if os.name == "posix" and not _native_disabled():
            try:
                from tokmon._native import _stat
            except ImportError:
                pass
            else:
                if _stat.API_VERSION == 1:
                    found = _stat.check
        _native_check = found
    return found


def native_check_status() -> str:
    """Which stat calls the warm check makes, for ``tokmon doctor``."""
    if native_stat_check() is not None:
        return "native"
    if os.name != "posix":
        return "Python (os.stat: the native one is POSIX only)"
    if _native_disabled():
        return "Python (TOKMON_NO_NATIVE is set)"
    return "Python (the native extension is not built)"


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
        return cls.of_sigs(stamp, ((key, state_sig(st)) for key, st in files.items()))

    @classmethod
    def of_sigs(cls, stamp: list[Any], sigs: Iterable[tuple[str, list[int]]]) -> Checked:
        """The mirror of ``(path, entry)`` pairs."""
        dirs: dict[str, Any] = {}
        sep = os.sep
        for key, sig in sigs:
            d, _, name = key.rpartition(sep)
            dirs.setdefault(d, {})[name] = sig
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
        import json  # (not orjson: its import alone costs more than this file's parse)

        from tokmon.fsutil import read_regular

        try:
            raw = read_regular(path)
            if stamp is not None and not raw.startswith(_head(stamp)):
                return None
            data = json.loads(raw)
        except (OSError, ValueError, TypeError, RecursionError):  # (json: a deep one recurses)
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
        from tokmon.fsutil import atomic_write

        data = {"v": 1, "db": self.stamp, "dirs": self.dirs}
        atomic_write(path, compact(data), fsync=False)


def _head(stamp: list[Any]) -> bytes:
    """How a mirror saved under ``stamp`` begins (:meth:`Checked.save`'s key order)."""
    return b'{"v":1,"db":' + compact(stamp) + b","


_DIR_SIG = attrgetter("st_mtime_ns", "st_ctime_ns", "st_ino", "st_dev")  # a listing's head
_FILE_SIG = attrgetter("st_size", "st_mtime_ns", "st_ino", "st_dev")  # a Checked entry


class Flat:
    """The whole walk of a quiet tree, flattened: every directory the walk reaches with the
    ``[mtime_ns, ctime_ns, ino, dev]`` its kept listing was taken at, and every transcript
    in them with its :class:`Checked` entry, for the database ``stamp`` and the ``roots``
    (saved as ``cache/ledger-*.flat``). While the stamp is the database's, a tree whose
    directories all ``stat`` as recorded holds exactly the recorded transcripts (each
    listing is still what ``scandir`` would give), and a transcript whose ``stat`` equals
    its entry is untouched: :meth:`check` makes the walk's ``stat`` calls in two C-level
    passes and compares all of them at once, with no per-path Python and without loading
    the listings or the mirror. Built only from a walk whose every directory had a kept
    listing, every transcript an entry and no symbolic link (those keep the walk); it then
    holds every transcript of the mirror, so it stands in for a stale mirror
    (:meth:`checked`). Paths are kept as ``os.fsencode`` gives them (no decoding on load).
    """

    def __init__(
        self,
        stamp: list[Any],
        roots: list[str],
        dirs: list[bytes] | None,
        dsig: array[int],
        files: list[bytes] | None,
        fsig: array[int],
        blob: bytes | memoryview | None = None,
    ) -> None:
        self.stamp = stamp
        self.roots = roots
        self._dirs = dirs  # None: still in ``blob`` (split when first asked for)
        self.dsig = dsig
        self._files = files
        self.fsig = fsig
        self._blob = blob  # the paths as saved (the native check and a rewrite use them)
        self._early: Any = None  # the check begun early for these bytes (flatfile.start_check)
        self._found: dict[bytes, int] = {}  # the paths check() flagged: their indexes

    @property
    def dirs(self) -> list[bytes]:
        """The directories' paths (``os.fsencode``'d)."""
        if self._dirs is None:
            self._split()
        assert self._dirs is not None
        return self._dirs

    @property
    def files(self) -> list[bytes]:
        """The transcripts' paths (``os.fsencode``'d)."""
        if self._files is None:
            self._split()
        assert self._files is not None
        return self._files

    @property
    def nfiles(self) -> int:
        """How many transcripts it holds."""
        return len(self.fsig) // 4

    def _split(self) -> None:
        assert self._blob is not None
        names = bytes(self._blob).split(b"\0")
        nd = len(self.dsig) // 4
        self._dirs, self._files = names[:nd], names[nd:]

    def _paths(self) -> bytes | memoryview:
        """All the paths, joined by NUL bytes (as saved)."""
        if self._blob is None:
            self._blob = b"\0".join(self.dirs + self.files)
        return self._blob

    @classmethod
    def build(
        cls, stamp: list[Any], roots: list[str], listed: dict[str, Any], known: dict[str, Any]
    ) -> Flat | None:
        """The flat walk of ``roots`` from the kept listings ``listed`` (:class:`Listings`'
        ``dirs``) and the mirror's ``known`` entries; None when the walk is not all kept
        listings, entries and plain transcripts (the walk then runs as before)."""
        dirs: list[str] = []
        files: list[str] = []
        dsig: array[int] = array("q")
        fsig: array[int] = array("q")
        no_sigs: dict[str, Any] = {}
        try:
            for top in roots:
                stack = [top]
                while stack:
                    d = stack.pop()
                    entry = listed.get(d)
                    if entry is None:  # listed afresh every time (racy, or not whole)
                        return None
                    dirs.append(d)
                    dsig.extend(entry[:4])
                    sigs = known.get(d, no_sigs)
                    prefix = os.path.join(d, "")  # the walk's paths, character for character
                    for kind, name in zip(entry[4], entry[5], strict=True):
                        if kind == "d":
                            stack.append(prefix + name)
                        elif kind == "f":
                            sig = sigs.get(name)
                            if type(sig) is not list or len(sig) != 4:
                                return None
                            files.append(prefix + name)
                            fsig.extend(sig)
                        else:  # a symbolic link: where it leads is the walk's to decide
                            return None
            fs = os.fsencode
            bdirs, bfiles = list(map(fs, dirs)), list(map(fs, files))
        except (TypeError, ValueError, OverflowError, IndexError):  # not of our making
            return None
        if len(dsig) != 4 * len(dirs) or len(set(files)) != len(files):
            return None
        return cls(stamp, roots, bdirs, dsig, bfiles, fsig)

    def check(self) -> list[tuple[str, os.stat_result]] | None:
        """``(path, stat)`` of the transcripts that are not untouched (as the walk returns
        them), or None when a directory changed, a path is gone or a changed path is no
        regular file: the walk must run."""
        stat_of = file_stat
        native = native_stat_check()
        try:
            early, self._early = self._early, None
            if native is not None:
                # the same stat calls and compares in C, the GIL released (see _stat.c):
                # every path it flags (differs, failed, out of range) is looked at below;
                # the check begun early on these bytes (flatfile.start_check) gave the same
                taken, diff = _early_result(early)
                if taken:
                    log.debug("the flat walk's check begun early (%s flagged)", diff)
                else:
                    blob, nd = self._paths(), len(self.dsig) // 4
                    diff = native(blob, nd, self.dsig, self.fsig, _THREADS)
                if diff is None:
                    return None
            else:
                if any(map(ne, map(_DIR_SIG, map(stat_of, self.dirs)), _fours(self.dsig))):
                    return None
                # one pass in C; each stat and expected entry is dropped once compared (no
                # lists of them: touching less memory is faster), only the indexes are kept
                diff = list(
                    compress(
                        count(),
                        map(ne, map(_FILE_SIG, map(stat_of, self.files)), _fours(self.fsig)),
                    )
                )
            out = []
            if diff and self._files is None and native is not None:
                # the few flagged paths out of the saved ones, not all of them split (~1.5 ms
                # at 8,000 transcripts); put() finds them by these indexes
                nd = len(self.dsig) // 4
                found = native_paths_at(self._paths(), [nd + i for i in diff])
                self._found = dict(zip(found, diff, strict=True))
                flagged = list(zip(diff, found, strict=True))
            else:
                files = self.files if diff else []
                flagged = [(i, files[i]) for i in diff]
            for i, path in flagged:
                st = stat_of(path)  # again: the first one was not kept
                if not S_ISREG(st.st_mode):
                    return None
                if list(_FILE_SIG(st)) != self.fsig[4 * i : 4 * i + 4].tolist():
                    out.append((os.fsdecode(path), st))
        except (OSError, OverflowError, ValueError, IndexError):  # gone meanwhile, out of range
            return None
        return out

    def put(self, key: str, sig: list[int] | None) -> bool:
        """Set the entry of the transcript ``key`` (one of :attr:`files`) to ``sig``; False
        when it cannot be (no entry any more: rebuild instead)."""
        if sig is None:
            return False
        try:
            path = os.fsencode(key)
            i = self._found.get(path)
            if i is None:
                i = self.files.index(path)
            self.fsig[4 * i : 4 * i + 4] = array("q", sig)
        except (ValueError, OverflowError, TypeError):
            return False
        return True

    def checked(self) -> Checked:
        """The mirror this flat walk holds (every transcript of the database at its stamp)."""
        sigs = self.fsig.tolist()
        return Checked.of_sigs(
            self.stamp,
            (
                (path, sigs[4 * i : 4 * i + 4])
                for i, path in enumerate(map(os.fsdecode, self.files))
            ),
        )

    @classmethod
    def load(cls, path: Path, stamp: list[Any], roots: list[str]) -> Flat | None:
        """The flat walk saved at ``path`` for the database ``stamp`` and ``roots``; None
        when missing, torn, of another machine's byte order, stamp or roots. Where
        :func:`tokmon.core.flatfile.start_check` began its check early, the bytes it read
        are the ones loaded, and :meth:`check` takes that check's result."""
        from tokmon.fsutil import read_regular

        early = flatfile.take(os.fspath(path))
        try:
            # a FIFO or device in its place is refused, not read
            data = early[0] if early is not None else read_regular(path)
        except OSError:
            return None
        parsed = flatfile.parse(data)
        if parsed is None:
            return None
        head, _, _, paths, dbytes, fbytes = parsed
        if head.get("db") != stamp or head.get("roots") != roots:
            return None
        dsig: array[int] = array("q")
        fsig: array[int] = array("q")
        dsig.frombytes(dbytes)
        fsig.frombytes(fbytes)
        # the paths stay in the file's bytes (split only if asked for: the native check
        # and a rewrite take them as they are)
        flat = cls(stamp, roots, None, dsig, None, fsig, paths)
        flat._early = early[1] if early is not None else None
        return flat

    def save(self, path: Path) -> None:
        """Write to ``path`` (0600, atomically, no fsync: used only under its stamp)."""
        from tokmon.fsutil import atomic_write

        data = flatfile.encode(self.stamp, self.roots, self._paths(), self.dsig, self.fsig)
        atomic_write(path, data, fsync=False)


def native_paths_at(blob: bytes | memoryview, indexes: list[int]) -> list[bytes]:
    """The paths at ``indexes`` (ascending) of ``blob`` (``_stat.paths_at``)."""
    from tokmon._native import _stat

    got: list[bytes] = _stat.paths_at(blob, indexes)
    return got


def _early_result(handle: Any) -> tuple[bool, list[int] | None]:
    """``(True, what the check begun early gave)`` (``_stat.check_take``), or ``(False,
    None)``: none was begun, or it has nothing to give (no thread could start): the check
    runs now."""
    if handle is None:
        return False, None
    from tokmon._native import _stat

    try:
        return True, _stat.check_take(handle)
    except RuntimeError:
        return False, None


def _fours(a: array[int]) -> Iterator[tuple[int, ...]]:
    """``a``'s items four by four (what the stat getters give), made one at a time in C."""
    it = iter(a)
    return zip(it, it, it, it, strict=False)  # its length is a multiple of 4


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
            st = file_stat(os.fspath(self.ledger_file))
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
            or not self._keeps_listings()
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
        root_paths = self.roots
        roots = [os.fspath(r) for r in root_paths]
        flat = Flat.load(self._flat_file(), stamp, roots)
        changed = flat.check() if flat is not None else None
        if flat is not None and changed == []:  # nothing changed: no listing, no mirror
            changes.files_checked = flat.nfiles
            return True
        checked: Checked | None = None
        derived = False  # the mirror comes from the flat walk (its own file is stale)
        if flat is not None and changed is not None:
            found = flat.nfiles  # every transcript of the mirror, some changed in place
        else:
            checked = Checked.load(self._checked_file(), stamp)
            if checked is None and flat is not None:  # stale: the flat walk holds it
                checked, derived = flat.checked(), True
            flat = None
            if checked is None:
                return False
            total = checked.count()
            if total is None:
                return False
            known = Known(checked.dirs)
            listings = self._listings_cache()
            changed = []
            try:
                for root in root_paths:
                    changed += transcript_stats(root, listings, known)
            except (TypeError, IndexError, KeyError, AttributeError):  # not of our making
                return False
            if listings is not None and listings.changed:
                try:
                    listings.save(self._listings_file())
                except OSError as exc:  # a cache: the next run lists again
                    log.debug("cannot save the directory listings: %s", exc)
            if known.seen != total:  # a transcript of the ledger is gone: the full check
                return False
            found = known.same + len(changed)
        db = self.db
        assert db is not None
        prev = db.file_states((k for k, _ in changed), self._dropped_states(changes))
        todo = []
        for key, st in changed:
            need, off = needs_read(st, prev.get(key))
            if need:
                todo.append((key, st, off))
        changes.files_checked = found  # every transcript found
        with led.partial(prev) as part:
            self._read(todo, {k for k, _ in changed}, changes, progress)
        if self.ledger is not led:
            return True  # reloaded (another process wrote meanwhile): the next run checks all
        if checked is None:  # changed in place: the flat walk is the mirror now
            assert flat is not None
            for key, _ in changed:
                state = part.get(key)
                if not flat.put(key, None if state is None else state_sig(state)):
                    flat = None
                    break
            if flat is None:  # cannot say what this refresh left: the next run checks
                self._drop_flat()
                return True
            self._save_flat(flat, roots, None)
            return True
        dirty = derived  # its file is stale: save it
        for key, _ in changed:
            dirty |= checked.put(key, part.get(key))
        if dirty or self._check_stamp() != stamp:
            self._save_checked(checked)
        self._save_flat(None, roots, checked)
        return True

    def _flat_file(self) -> Path:
        return self.paths.cache_dir / f"{self.ledger_file.stem}.flat"

    def _drop_flat(self) -> None:
        try:
            self._flat_file().unlink(missing_ok=True)
        except OSError as exc:  # its stamp will not be the database's: ignored
            log.debug("cannot remove the flat walk: %s", exc)

    def _save_flat(self, flat: Flat | None, roots: list[str], checked: Checked | None) -> None:
        """Keep the flat walk (:class:`Flat`) for the database's state now: ``flat``
        updated by this refresh, else built from the listings and ``checked``; removed
        when it cannot be built (a stale one would only be ignored, but cost a read)."""
        stamp = self._check_stamp()
        if stamp is None:
            return
        if flat is None:
            listings = self._listings_cache()
            if listings is not None and checked is not None:
                flat = Flat.build(stamp, roots, listings.dirs, checked.dirs)
            if flat is None:
                self._drop_flat()
                return
        elif flat.stamp == stamp:
            return  # the one on disk: nothing changed
        flat.stamp = stamp
        try:
            flat.save(self._flat_file())
        except (OSError, TypeError, ValueError) as exc:  # a cache: the next run walks
            log.debug("cannot save the flat walk: %s", exc)
            self._drop_flat()

    def _keep_checked(self) -> None:
        """After a refresh (once its database is in place) whose full check loaded the
        ledger's file states: save them as the next run's mirror. A quick check leaves the
        states unloaded and saved its own mirror: nothing to do then."""
        led = self.ledger
        if (
            not self.short_lived  # its states change with every write it makes: not worth it
            or not led.files_loaded
            or not self._keeps_listings()
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
