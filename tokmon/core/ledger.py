"""The persistent ledger: one SQLite database (WAL) per set of roots in tokmon's data dir.

It holds the transcripts' read offsets (:class:`~tokmon.core.reader.FileState`), every
deduplicated record ever seen (history survives Claude Code deleting old transcripts: this
is the only copy of it), Claude's session titles, the price signature the costs were
computed with and the other agents' reader state. A save is one short ``BEGIN IMMEDIATE``
transaction that writes only what changed (:meth:`LedgerDB.merge`); the dedup rule (largest
output wins, ties keep the first) is decided against the database inside it, so two
processes that read the same new bytes count nothing twice. Queries load records by index
(time range, session), never the whole history unless asked.

Values are checked on the way in (``STRICT`` tables and ``CHECK`` constraints: the poison
guards of :mod:`tokmon.core.records`) and on the way out (the same guards in every record
query's ``WHERE``: a row that slipped in some other way is skipped, never counted). A file that is not a database raises
:class:`LedgerError` (the engine keeps it aside and rebuilds from transcripts); a database of
a newer schema raises :class:`LedgerNewer` (never written). The JSON ledgers of older tokmon
versions (:mod:`tokmon.core.ledger_json`) are imported by :meth:`LedgerDB.import_json`.
See docs/architecture.md, "Data safety".
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import itertools
import operator
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tokmon.core import blockspans
from tokmon.core.cellsums import BUCKET, Gone, Sums, summers
from tokmon.core.digest import ledger_stem
from tokmon.core.model import UsageRecord
from tokmon.core.reader import FileState
from tokmon.core.records import MAX_TOKENS, TS_MAX, TS_MIN
from tokmon.core.spill import Spill
from tokmon.leanclass import dataclass, field

SCHEMA_VERSION = 1
LEDGER_VERSION = SCHEMA_VERSION  # what `tokmon doctor` shows
BUSY_TIMEOUT_MS = 5000  # how long a statement waits for another process's write transaction
CLAUDE = "claude"

_TOKENS = f"BETWEEN 0 AND {MAX_TOKENS}"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value ANY) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, off INTEGER NOT NULL, fp TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    ts REAL NOT NULL CHECK (ts >= {TS_MIN} AND ts < {TS_MAX}),
    session TEXT NOT NULL, project TEXT NOT NULL, model TEXT NOT NULL,
    input INTEGER NOT NULL CHECK (input {_TOKENS}),
    output INTEGER NOT NULL CHECK (output {_TOKENS}),
    cc INTEGER NOT NULL CHECK (cc {_TOKENS}),
    c1h INTEGER NOT NULL CHECK (c1h {_TOKENS}),
    cr INTEGER NOT NULL CHECK (cr {_TOKENS}),
    key TEXT NOT NULL,
    cost REAL NOT NULL CHECK (abs(cost) < 1e300),
    display_cost REAL CHECK (display_cost IS NULL OR abs(display_cost) < 1e300),
    agent TEXT NOT NULL DEFAULT '{CLAUDE}'
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS records_key ON records (key);
CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
CREATE INDEX IF NOT EXISTS records_session ON records (session);
CREATE TABLE IF NOT EXISTS changes (gen INTEGER NOT NULL, session TEXT NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS changes_gen ON changes (gen);
CREATE TABLE IF NOT EXISTS titles (
    session TEXT NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL, PRIMARY KEY (session, kind)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_state (agent TEXT PRIMARY KEY, body BLOB NOT NULL)
    STRICT, WITHOUT ROWID;
"""
#: a direct build's cells for the stored sums, finished (Stage.cell_source: its sums and how
#: many cells they have; or a function that gives them or None when called), or None
BuildCells = tuple[Sums, int]
CellSource = BuildCells | Callable[[], "BuildCells | None"] | None
#: a direct build's blocks' spans (Stage.block_spans: called with block_seconds and whether
#: they are aligned to the cells' buckets; None when it has none), or None
SpanSource = Callable[[float, bool], "list[blockspans.Span] | None"] | None
# A record's columns in UsageRecord field order (a fetched row is a record's tuple).
COLS = "ts, session, project, model, input, output, cc, c1h, cr, key, cost, display_cost"
_UPSERT = (
    f"INSERT INTO records ({COLS}, agent) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (key) DO UPDATE SET ts=excluded.ts, session=excluded.session, "
    "project=excluded.project, model=excluded.model, input=excluded.input, "
    "output=excluded.output, cc=excluded.cc, c1h=excluded.c1h, cr=excluded.cr, "
    "cost=excluded.cost, display_cost=excluded.display_cost, agent=excluded.agent"
)
# The poison guards again on the way out (C speed): a row that slipped past the constraints
# (a database written by something else) is skipped, never counted.
_VALID = (
    f"ts >= {TS_MIN} AND ts < {TS_MAX} AND typeof(ts) = 'real'"
    + "".join(
        f" AND {c} {_TOKENS} AND typeof({c}) = 'integer'"
        for c in ("input", "output", "cc", "c1h", "cr")
    )
    + " AND abs(cost) < 1e300 AND typeof(cost) = 'real'"
    + " AND (display_cost IS NULL OR (abs(display_cost) < 1e300 AND typeof(display_cost) = 'real'))"
    + " AND typeof(session) = 'text' AND typeof(project) = 'text' AND typeof(model) = 'text'"
    + " AND typeof(key) = 'text'"
)
# A file state FileState.from_list accepts: non-negative integers and a text fingerprint.
# The types need no typeof(): the table is STRICT with NOT NULL columns (a database whose
# tables are not STRICT is refused at open, see loose_tables), so only the sign is checked.
_VALID_FILE = " AND ".join(f"{c} >= 0" for c in ("dev", "ino", "size", "mtime_ns", "off"))
_INSERT = _UPSERT.split(" ON CONFLICT")[0]
# A bulk load's dedup in SQL: a later row replaces a stored one only with a larger output.
_UPSERT_LARGER = (
    "ON CONFLICT" + _UPSERT.split(" ON CONFLICT")[1] + " WHERE excluded.output > output"
)
#: a build's load (see Stage): every stream straight into records while the scan runs, the
#: dedup after it (Stage.settle); the time and session indexes built once after the load
#: (else kept up row by row: the key's is always made after, by settle's caller)
DIRECT_LOAD = True
DIRECT_INDEXES_AFTER = True
#: ... and the blocks' spans of its stored sums read on a second connection while the first
#: builds the cells (see Rollups.rebuild_sql); that connection's page cache (KiB, negative)
SIDE_READER = True
SIDE_READER_CACHE = -500
#: ... unless the spans are made from the load's rows (their times and costs, as they came:
#: tokmon.core.blockspans), which needs no reads: the native scanner's build only
SPANS_FROM_ROWS = True
#: ... and a build's rows' key hashes, times and costs kept in files while the scan runs
#: (tokmon.core.spill), not in memory
SPILL = True
#: a build's page cache (KiB, negative), at least: 1/256 of the bytes to scan, up to 16 MB
#: (see build_cache: the peak RSS of a cold scan; docs/performance.md, ninth session)
BUILD_CACHE = -2000
#: a direct build's stored cells summed from its rows as they come, the rows its dedup
#: deletes taken back out (Stage.cell_source)
CELLS_FROM_ROWS = True
STAGE_CACHE = -256  # the stage's (KiB): its tables are only appended to and read in order
BULK_ROWS = 5000  # a merge into an empty ledger bigger than this builds the indexes after
_IN_CHUNK = 500
#: a row of the change log that names a write (its random id), not a session: session ids
#: never hold a NUL (control characters are stripped where they enter)
WRITE_MARK = "\x00"
KEEP_CHANGES = 10_000  # generations whose changed sessions are kept (for other processes)  # keys per ``IN (...)`` lookup (SQLite's variable limit is 999 on old builds)


# The other agents' saved reader state, a row per file and a row per record, so a save
# writes only what changed (``agent_state``: one blob per agent, of versions before them;
# read until that agent's first save here moves it, in the same transaction).
_AGENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_files (
    agent TEXT NOT NULL, path TEXT NOT NULL, state BLOB NOT NULL, PRIMARY KEY (agent, path)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_records (
    agent TEXT NOT NULL, path TEXT NOT NULL, key TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (agent, path, key)
) STRICT, WITHOUT ROWID;
"""
_AGENT_TABLES = ("agent_files", "agent_records")
_CORE_TABLES = ("meta", "files", "records", "changes", "titles", "agent_state", *_AGENT_TABLES)


@dataclass
class AgentRows:
    """One agent's saved reader state as rows: per file its state, per file and record key
    the record (serialised by :mod:`tokmon.core.agents`). To save: ``None`` deletes a row,
    ``full`` first deletes every row of the agent (and its blob); loaded from a version
    before these rows: ``blob`` (its whole state, one body)."""

    states: dict[str, bytes | None] = field(default_factory=dict)
    records: dict[str, dict[str, bytes | None]] = field(default_factory=dict)
    full: bool = False
    blob: bytes | None = None


def loose_tables(conn: sqlite3.Connection, names: Iterable[str]) -> list[str]:
    """Which of the tables ``names`` exist but are not ``STRICT`` (SQLite then stores a value
    of any type in any column: not a table tokmon created; its values cannot be trusted)."""
    want = set(names)
    return sorted(
        row[1]
        for row in conn.execute("PRAGMA table_list")
        if row[1] in want and row[2] == "table" and not row[5]
    )


class LedgerError(Exception):
    """The ledger file is unreadable or not a tokmon database."""

    kind = "corrupt"  # names the kept-aside copy: ledger-X.sqlite3.<kind>-<time>


class LedgerUnreadable(LedgerError):
    kind = "unreadable"


class LedgerUnavailable(Exception):
    """The database cannot be opened for writing now (I/O error, no space, locked, no
    permission): nothing says it is broken, so it is never moved aside."""


class LedgerNewer(LedgerError):
    """Written by a newer tokmon: read nothing from it, never write it."""

    kind = "newer"

    def __init__(self, version: int) -> None:
        super().__init__(
            f"ledger written by a newer tokmon (schema {version}, this one reads {SCHEMA_VERSION})"
        )
        self.version = version


def ledger_path(data_dir: Path, roots: list[Path]) -> Path:
    """The database of this set of transcript roots."""
    return data_dir / f"{ledger_stem(roots)}.sqlite3"


def json_ledger_path(db_path: Path) -> Path:
    """Where tokmon before the database kept the same ledger (imported on first run)."""
    return db_path.with_suffix(".json")


def side_files(path: Path) -> list[Path]:
    """SQLite's companions of the database at ``path`` (they move with it)."""
    return [path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


BUILD_INFIX = ".build-"  # ledger-X.sqlite3.build-<pid>-<random>: a first scan's database
STALE_BUILD_SECONDS = 86400.0  # a build file this old is removed whatever its process


def build_path(path: Path) -> Path:
    """A new name for a first scan's private database beside the ledger ``path``."""
    return path.with_name(f"{path.name}{BUILD_INFIX}{os.getpid()}-{os.urandom(4).hex()}")


def remove_stale_builds(path: Path) -> None:
    """Remove the build databases of the ledger ``path`` left by processes that are gone
    (killed mid-scan): never a live process's (POSIX: its pid answers; Windows: the file
    cannot be deleted while it is open), and any older than a day."""
    import time

    prefix = path.name + BUILD_INFIX
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        f = path.parent / name
        pid_text = name[len(prefix) :].split("-", 1)[0]
        pid = int(pid_text) if pid_text.isdigit() else 0
        if pid == os.getpid():
            continue
        try:
            old = time.time() - f.stat().st_mtime > STALE_BUILD_SECONDS
        except OSError:
            continue
        if old or os.name == "nt" or not _pid_alive(pid):
            with contextlib.suppress(OSError):
                os.unlink(f)  # (Windows: refused while its process has it open)


def _pid_alive(pid: int) -> bool:
    """POSIX: whether a process ``pid`` exists (never called on Windows, where os.kill
    would terminate it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # (EPERM: it exists, another user's)
        return True
    return True


class Ledger:
    """The small in-memory part of the ledger: file states, titles, price signature.

    Built by :meth:`LedgerDB.load_state` with ``lazy``, the file states and the titles are
    read from the database on first use (a warm report whose change check needs none of them,
    :mod:`tokmon.core.engine.check`, never loads the ~8,000 file states of a 2 GB history).
    """

    def __init__(
        self,
        load_files: Callable[[], dict[str, FileState]] | None = None,
        load_titles: Callable[[], dict[str, dict[str, str]]] | None = None,
    ) -> None:
        self._files: dict[str, FileState] | None = None if load_files is not None else {}
        self._titles: dict[str, dict[str, str]] | None = None if load_titles is not None else {}
        self._load_files = load_files
        self._load_titles = load_titles
        self.price_signature = ""

    @property
    def files(self) -> dict[str, FileState]:
        """Each transcript's :class:`~tokmon.core.reader.FileState` by path."""
        if self._files is None:
            assert self._load_files is not None
            self._files = self._load_files()
        return self._files

    @files.setter
    def files(self, value: dict[str, FileState]) -> None:
        self._files = value

    @property
    def files_loaded(self) -> bool:
        """Whether :attr:`files` is in memory (else read from the database on first use)."""
        return self._files is not None

    @property
    def titles(self) -> dict[str, dict[str, str]]:
        """Claude's session titles: session id -> {kind: title}."""
        if self._titles is None:
            assert self._load_titles is not None
            self._titles = self._load_titles()
        return self._titles

    @titles.setter
    def titles(self, value: dict[str, dict[str, str]]) -> None:
        self._titles = value

    @contextlib.contextmanager
    def partial(self, files: dict[str, FileState]) -> Iterator[dict[str, FileState]]:
        """Within the block :attr:`files` is ``files`` (the states of the few transcripts a
        refresh reads; they get its updates); after it, the states are read from the
        database again on first use. Only for a ledger whose file states are not loaded."""
        if self._files is not None or self._load_files is None:
            raise RuntimeError("Ledger.partial: the file states are loaded already")
        self._files = files
        try:
            yield files
        finally:
            self._files = None


def _touch_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (SQLite gives its -wal/-shm the same mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
    os.close(fd)


class LedgerDB:
    """One connection to the ledger database (``path`` None: a private in-memory one).

    Thread-safe (one lock around the connection). Raises LedgerError / LedgerNewer on open.
    """

    def __init__(self, path: Path | None, readonly: bool = False, build: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self.build = build  # a new private file, published by publish() (see build_path)
        self.dropped = 0  # invalid rows dropped on the way out (since open)
        # Called inside merge / reprice transactions (the engine's stored sums follow them):
        # on_merge(deltas, was_empty), on_reprice().
        self.on_merge: Callable[[list[tuple[UsageRecord | None, UsageRecord]], bool], None] | None
        self.on_merge = None
        self.on_reprice: Callable[[], None] | None = None
        # The stored sums after a bulk load, called inside merge_staged's transaction (every
        # record is new) with a second connection that reads the records committed (a
        # build) or None, a build's cells (CellSource: Stage.cell_source, to call)
        # or None, and its blocks' spans (SpanSource: Stage.block_spans) or None.
        self.on_bulk: Callable[[sqlite3.Connection | None, CellSource, SpanSource], None] | None
        self.on_bulk = None
        self._mu = threading.RLock()
        self.conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        if path is None:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            conn.executescript(_SCHEMA + _AGENT_SCHEMA)
            self._init_meta(conn)
            return conn
        try:
            exists = path.exists()
        except OSError as exc:  # (a data dir this user cannot search)
            raise LedgerUnavailable(f"cannot open {path}: {exc.strerror or exc}") from exc
        if exists and not path.is_file():
            raise LedgerUnreadable(f"unreadable ledger ({path} is not a file)")
        if exists:
            self._check_version(path)
        if self.readonly:
            return self._open_ro(path)
        from tokmon.paths import ensure_dir

        try:
            ensure_dir(path.parent)
            if self.build:
                return self._connect_build(path)
            if not exists:
                _touch_private(path)
        except OSError as exc:  # (a file in the data dir's place, a read-only parent)
            raise LedgerUnavailable(f"cannot create {path}: {exc.strerror or exc}") from exc
        try:
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1e3
            )
        except sqlite3.Error as exc:
            raise LedgerUnavailable(str(exc)) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA cache_size=-16000")  # KiB: bulk merges stay in memory
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
                raise LedgerUnreadable("unreadable ledger (cannot use WAL mode)")
            conn.execute("PRAGMA synchronous=NORMAL")
            if (
                conn.execute("SELECT count(*) FROM sqlite_master WHERE name='meta'").fetchone()[0]
                == 0
            ):
                conn.execute("BEGIN IMMEDIATE")
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                self._init_meta(conn)
                conn.execute("COMMIT")
            self._check_meta(conn)
            self._agent_tables(conn)
        except LedgerError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            if is_corrupt(exc):
                raise LedgerError(f"corrupt ledger ({exc})") from exc
            raise LedgerUnavailable(str(exc)) from exc
        return conn

    def _connect_build(self, path: Path) -> sqlite3.Connection:
        """A new private database file for a first scan: no WAL (each page written once),
        the rollback journal in memory (a failed transaction still rolls back) and no
        fsync until :meth:`publish`. A killed process leaves it behind, never the ledger:
        :func:`remove_stale_builds` removes it later."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        os.close(fd)
        try:
            # no busy wait: only this process's own reader (Stage, SIDE_READER) ever holds a
            # lock on it, and then a cache spill that would wait for it is skipped instead
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
            conn.execute(f"PRAGMA cache_size={BUILD_CACHE}")
            conn.execute("PRAGMA journal_mode=MEMORY")
            conn.execute("PRAGMA synchronous=OFF")
            conn.executescript(_SCHEMA + _AGENT_SCHEMA)
            self._init_meta(conn)
        except sqlite3.Error as exc:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise LedgerUnavailable(str(exc)) from exc
        return conn

    def publish(self, dest: Path) -> bool:
        """Close this build database and move it to ``dest`` if nothing is there yet (synced
        to disk first; atomic: another process sees no ledger or the whole one). False,
        with the build file removed, when ``dest`` exists by now (another process made it)
        or the file cannot be moved: the caller opens ``dest`` and merges there instead."""
        path = self.path
        assert self.build and path is not None
        self._to_wal()
        self.close()
        try:
            if any(p.exists() for p in side_files(path)):  # (never seen) its -wal would stay
                raise OSError("the build left its write-ahead log")
            fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            if os.name == "nt":  # pragma: no cover - Windows: rename never replaces a file
                os.rename(path, dest)
            else:  # link: fails if dest exists (rename would replace it)
                os.link(path, dest)
                os.unlink(path)
                with contextlib.suppress(OSError):
                    dfd = os.open(dest.parent, os.O_RDONLY)
                    try:
                        os.fsync(dfd)
                    finally:
                        os.close(dfd)
        except OSError:
            for f in (path, *side_files(path)):
                with contextlib.suppress(OSError):
                    os.unlink(f)
            return False
        return True

    def _to_wal(self) -> None:
        """Mark a finished build's file as a WAL database (its header's two version bytes),
        still without a sync: the ledger's open (:meth:`_connect`) then finds it in WAL mode
        already, instead of switching there itself with a sync of the whole file (~10-25 ms
        at 500 MB; publish syncs it once). The empty log is removed when the connection
        closes. Failing that (a file system without WAL), the open switches as before."""
        with self._mu, contextlib.suppress(sqlite3.Error):
            if not self.conn.in_transaction:
                self.conn.execute("PRAGMA journal_mode=WAL").fetchone()

    def discard(self) -> None:
        """Close and delete a build database (never published)."""
        assert self.build and self.path is not None
        self.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _open_ro(self, path: Path) -> sqlite3.Connection:
        """Read-only; ``immutable`` when even the -shm cannot be made (a full disk: the last
        process closed the database cleanly, so its WAL was folded in)."""
        for mode in ("mode=ro", "immutable=1"):
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?{mode}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1e3,
            )
            try:
                self._check_meta(conn)
                return conn
            except sqlite3.DatabaseError as exc:
                conn.close()
                if is_corrupt(exc):
                    raise LedgerError(f"corrupt ledger ({exc})") from exc
                if mode == "immutable=1":
                    raise LedgerUnavailable(str(exc)) from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _check_version(path: Path) -> None:
        """Raise LedgerNewer before anything could write a newer database."""
        row = None
        for mode in ("mode=ro", "immutable=1"):  # immutable: no -shm can be made (no space)
            try:
                conn = sqlite3.connect(
                    f"{path.resolve().as_uri()}?{mode}", uri=True, timeout=BUSY_TIMEOUT_MS / 1e3
                )
            except sqlite3.Error as exc:
                raise LedgerUnavailable(str(exc)) from exc
            try:
                row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                break
            except sqlite3.DatabaseError as exc:
                if "no such table" in str(exc):
                    return  # an empty (new) file, or one without our tables: checked after open
                if is_corrupt(exc):
                    raise LedgerError(f"corrupt ledger ({exc})") from exc
                if mode == "immutable=1":
                    raise LedgerUnavailable(str(exc)) from exc
            finally:
                conn.close()
        if row is not None and type(row[0]) is int and row[0] > SCHEMA_VERSION:
            raise LedgerNewer(row[0])

    @staticmethod
    def _init_meta(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO meta VALUES (?, ?)",
            [
                ("schema", SCHEMA_VERSION),
                ("dbid", os.urandom(16).hex()),  # (a random id: uuid4 without importing uuid)
                ("gen", 0),
                ("logged", 0),
                ("prices", ""),
            ],
        )

    @staticmethod
    def _check_meta(conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or type(row[0]) is not int:
            raise LedgerError("corrupt ledger (no schema version)")
        if row[0] > SCHEMA_VERSION:
            raise LedgerNewer(row[0])
        if conn.execute("SELECT value FROM meta WHERE key='dbid'").fetchone() is None:
            raise LedgerError("corrupt ledger (no id)")
        loose = loose_tables(conn, _CORE_TABLES)
        if loose:  # tokmon creates them STRICT: something else rewrote the schema
            raise LedgerError(f"corrupt ledger (table {', '.join(loose)} not STRICT)")

    def close(self) -> None:
        with self._mu:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()

    # -- transactions -----------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self, begun: bool = False) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction (committed on success, else rolled back) that
        bumps the generation (:meth:`generation`). ``begun``: the caller opened it already
        (a build's direct load, see :class:`Stage`)."""
        if self.readonly:
            raise sqlite3.OperationalError("the ledger is read-only")
        with self._mu:
            conn = self.conn
            if not begun:
                conn.execute("BEGIN IMMEDIATE")
            elif not conn.in_transaction:
                raise sqlite3.OperationalError("the build's load transaction is not open")
            try:
                conn.execute("UPDATE meta SET value = value + 1 WHERE key='gen'")
                # counted by the writers that log every change (see log_skew)
                conn.execute(
                    "INSERT INTO meta VALUES ('logged', 1)"
                    " ON CONFLICT (key) DO UPDATE SET value = value + 1"
                )
                # a random id of this write, logged under its generation: a ledger put back
                # to an older copy of itself repeats generations, never these (write_id)
                wid = os.urandom(8).hex()
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('wid', ?)", (wid,))
                conn.execute(
                    "INSERT INTO changes SELECT value, ? FROM meta WHERE key='gen'",
                    (WRITE_MARK + wid,),
                )
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    def lock(self) -> threading.RLock:
        """The lock around this connection (for callers that use :attr:`conn` directly)."""
        return self._mu

    def _meta(self, key: str) -> object:
        with self._mu:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def generation(self) -> int:
        """Bumped by every committed write (of any process)."""
        v = self._meta("gen")
        return v if type(v) is int else 0

    def log_skew(self) -> int | None:
        """The generations not counted in ``logged``: written by a tokmon of before the
        change log was complete (which did not log a changed title or the old session of a
        moved record). It stays the same while every writer logs every change; None: not
        known (no count yet)."""
        with self._mu:
            rows = dict(
                self.conn.execute("SELECT key, value FROM meta WHERE key IN ('gen', 'logged')")
            )
        gen, logged = rows.get("gen"), rows.get("logged")
        if type(gen) is not int or type(logged) is not int:
            return None
        return gen - logged

    def write_id(self) -> str | None:
        """The random id of the last write (None: none since a tokmon that gives them)."""
        v = self._meta("wid")
        return v if type(v) is str else None

    def dbid(self) -> str:
        """A random id given at creation: a rebuilt database never repeats a version."""
        return str(self._meta("dbid"))

    def meta(self, key: str) -> object:
        """A value of the meta table (None if unset)."""
        return self._meta(key)

    # -- the small state ---------------------------------------------------------------------

    def load_state(
        self, lazy: bool = False, on_dropped: Callable[[int], None] | None = None
    ) -> Ledger:
        """File states, titles and the price signature (invalid file states are dropped).

        ``lazy``: the file states and titles are read on first use (:class:`Ledger`), from
        this database or, once it is closed, from a read-only connection to its file;
        ``on_dropped(n)`` is told when invalid file states were dropped (n > 0)."""
        if lazy:
            led = Ledger(lambda: self._load_files(on_dropped), self._load_titles)
        else:
            led = Ledger()
            led.files = self._load_files(on_dropped)
            led.titles = self._load_titles()
        with self._mu:
            sig = self.conn.execute("SELECT value FROM meta WHERE key='prices'").fetchone()
        led.price_signature = sig[0] if sig is not None and type(sig[0]) is str else ""
        return led

    def _state_db(self) -> tuple[LedgerDB, bool]:
        """This database, or (closed since a lazy :class:`Ledger` was made) a read-only
        connection to its file; and whether that one is to be closed after use."""
        try:
            with self._mu:
                self.conn.execute("SELECT 1")
            return self, False
        except sqlite3.ProgrammingError:  # closed
            if self.path is None:
                raise
            return LedgerDB(self.path, readonly=True), True

    def _load_files(self, on_dropped: Callable[[int], None] | None = None) -> dict[str, FileState]:
        db, close = self._state_db()
        try:
            with db._mu:
                # checked in SQL (C speed): invalid rows (a database written by something
                # else) are counted, then dropped
                rows = db.conn.execute(
                    "SELECT path, dev, ino, size, mtime_ns, off, fp FROM files WHERE " + _VALID_FILE
                ).fetchall()
                n = db.conn.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            if close:
                db.close()
        self._dropped(n - len(rows), on_dropped)
        return {p: FileState(d, i, s, m, o, fp) for p, d, i, s, m, o, fp in rows}

    def _dropped(self, n: int, on_dropped: Callable[[int], None] | None) -> None:
        if n:
            self.dropped += n
            if on_dropped is not None:
                on_dropped(n)

    def _load_titles(self) -> dict[str, dict[str, str]]:
        db, close = self._state_db()
        try:
            with db._mu:
                rows = db.conn.execute("SELECT session, kind, title FROM titles").fetchall()
        finally:
            if close:
                db.close()
        titles: dict[str, dict[str, str]] = {}
        for sid, kind, title in rows:
            titles.setdefault(sid, {})[kind] = title
        return titles

    def titles_of(self, sessions: Iterable[str]) -> dict[str, dict[str, str]]:
        """The titles (kind -> title) of these sessions only (by the primary key)."""
        sids = list(sessions)
        out: dict[str, dict[str, str]] = {}
        with self._mu:
            for i in range(0, len(sids), _IN_CHUNK):
                part = sids[i : i + _IN_CHUNK]
                for sid, kind, title in self.conn.execute(
                    "SELECT session, kind, title FROM titles"
                    f" WHERE session IN ({','.join('?' * len(part))})",
                    part,
                ):
                    out.setdefault(sid, {})[kind] = title
        return out

    def file_states(
        self, paths: Iterable[str], on_dropped: Callable[[int], None] | None = None
    ) -> dict[str, FileState]:
        """The valid file states of ``paths``, by the primary key (what a refresh that reads
        a few transcripts needs, without :meth:`load_state`'s whole table)."""
        keys = list(paths)
        out: dict[str, FileState] = {}
        bad = 0
        with self._mu:
            for at in range(0, len(keys), _IN_CHUNK):
                part = keys[at : at + _IN_CHUNK]
                rows = self.conn.execute(
                    f"SELECT path, dev, ino, size, mtime_ns, off, fp, ({_VALID_FILE}) "
                    f"FROM files WHERE path IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                for p, d, i, s, m, o, fp, ok in rows:
                    if ok:
                        out[p] = FileState(d, i, s, m, o, fp)
                    else:
                        bad += 1
        self._dropped(bad, on_dropped)
        return out

    # -- the merge ---------------------------------------------------------------------------

    def merge(
        self,
        recs: Iterable[UsageRecord],
        files: dict[str, FileState] | None = None,
        gone: Iterable[str] = (),
        titles: Iterable[tuple[str, str, str]] = (),
        prices: str | None = None,
        agents: dict[str, AgentRows] | None = None,
        agent: str = CLAUDE,
    ) -> tuple[list[tuple[UsageRecord | None, UsageRecord]], int]:
        """Merge records, file states, titles (and the agents' state) in one transaction.

        Returns the (replaced record or None, new record) pairs of the records that changed
        and the new generation. Within ``recs`` and against the database: the largest output
        wins, ties keep the first.
        """
        batch: dict[str, UsageRecord] = {}
        for r in recs:
            o = batch.get(r.key)
            if o is None or r.output_tokens > o.output_tokens:
                batch[r.key] = r
        deltas: list[tuple[UsageRecord | None, UsageRecord]] = []
        with self.write() as conn:
            gen = conn.execute("SELECT value FROM meta WHERE key='gen'").fetchone()[0]
            was_empty = conn.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None
            old = self._existing(conn, list(batch)) if batch and not was_empty else {}
            rows = []
            for key, r in batch.items():
                o = old.get(key)
                if o is None or r.output_tokens > o.output_tokens:
                    deltas.append((o, r))
                    rows.append((*r, agent))
            if rows:
                rows.sort(key=_ts)  # time order: appends to the time index, ranges read in order
                if was_empty and len(rows) > BULK_ROWS:  # a first scan: index once, at the end
                    conn.execute("DROP INDEX IF EXISTS records_ts")
                    conn.execute("DROP INDEX IF EXISTS records_session")
                    conn.executemany(_INSERT, rows)
                    conn.execute("CREATE INDEX records_ts ON records (ts)")
                    conn.execute("CREATE INDEX records_session ON records (session)")
                else:
                    conn.executemany(_UPSERT, rows)
                # both sessions of a record that moved (its key upserted with another session)
                moved = {o.session_id for o, _ in deltas if o is not None}
                self._log_changes(conn, gen, {r.session_id for _, r in deltas} | moved)
                if self.on_merge is not None and agent == CLAUDE:
                    self.on_merge(deltas, was_empty)
                else:  # the stored sums did not follow: rebuilt on their next use
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('sums', 0)")
            self._merge_state(conn, files, gone, titles, prices, agents, gen)
        return deltas, gen

    @staticmethod
    def _merge_state(
        conn: sqlite3.Connection,
        files: dict[str, FileState] | None,
        gone: Iterable[str],
        titles: Iterable[tuple[str, str, str]],
        prices: str | None,
        agents: dict[str, AgentRows] | None,
        gen: int | None = None,
    ) -> None:
        """Write file states, titles, the price signature and the agents' state; the
        sessions whose title changes are logged under generation ``gen`` (None: not logged,
        a new database)."""
        if files:  # (in key order, many a statement: a first scan's 2,000 in half the time)
            rows = sorted([(k, *s.to_list()) for k, s in files.items()])
            insert_many(conn, "INSERT OR REPLACE INTO files VALUES ", 7, rows)
        conn.executemany("DELETE FROM files WHERE path=?", [(k,) for k in gone])
        titles = list(titles)
        if gen is not None and titles:  # a title is part of its session's rows
            had = conn.execute
            LedgerDB._log_changes(
                conn,
                gen,
                {
                    s
                    for s, kind, title in titles
                    if had(
                        "SELECT 1 FROM titles WHERE session=? AND kind=? AND title=?",
                        (s, kind, title),
                    ).fetchone()
                    is None
                },
            )
        conn.executemany("INSERT OR REPLACE INTO titles VALUES (?,?,?)", titles)
        if prices is not None:
            conn.execute("UPDATE meta SET value=? WHERE key='prices'", (prices,))
        if agents:
            LedgerDB._save_agents(conn, agents)

    def is_empty(self) -> bool:
        """Whether the ledger holds no record (of any agent)."""
        with self._mu:
            return self.conn.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None

    def stage(self, size: int = 0) -> Stage:
        """Temporary tables to stage a bulk load of ``size`` bytes of transcripts in (see
        :class:`Stage`; into a build file, a ``direct`` one, whose page cache is then
        half of :func:`build_cache` of it while the scan loads it, see :meth:`merge_staged`)."""
        stage = Stage(self, direct=self.build and DIRECT_LOAD)
        if self.build:
            stage.cache = build_cache(size)
            with self._mu:
                self.conn.execute(f"PRAGMA main.cache_size={stage.cache // 2}")
        return stage

    def merge_staged(
        self,
        stage: Stage,
        files: dict[str, FileState] | None = None,
        gone: Iterable[str] = (),
        titles: Iterable[tuple[str, str, str]] = (),
        prices: str | None = None,
        agents: dict[str, AgentRows] | None = None,
    ) -> tuple[int, set[str], int] | None:
        """Load a ledger that holds no record from ``stage`` (Claude records), with file
        states, titles (and the agents' state), in one transaction: SQLite does the dedup (the
        largest output wins, ties keep the first staged; a direct stage's rows are in
        ``records`` already and :meth:`Stage.settle` does it), the indexes are built once at
        the end and :attr:`on_bulk` rebuilds the stored sums. Returns (records added, their
        sessions, the new generation), or None, having written nothing, when the ledger holds
        records by then (another process merged meanwhile: use :meth:`merge`)."""
        # Every staged row into its table first, outside the transaction: rows inserted
        # inside it would go with its rollback (a full disk, another process's records)
        # while already gone from the stage's memory. (A direct stage's transaction is open
        # since the scan began: a rollback loses it all, and the caller scans again.)
        stage.flush()
        try:
            with self.write(begun=stage.direct) as conn:
                gen = conn.execute("SELECT value FROM meta WHERE key='gen'").fetchone()[0]
                if (
                    not stage.direct
                    and conn.execute("SELECT 1 FROM records LIMIT 1").fetchone() is not None
                ):
                    raise _NotEmpty()
                sessions: set[str] = set()
                # A build's page cache: half of build_cache while the scan loads it, for the
                # indexes and the stored sums (~1 MB of the peak RSS at 500 MB less than all
                # of it; docs/performance.md, eleventh session); all of it only where the
                # later streams go into the key's index row by row (random inserts: with
                # half, +10 ms of CPU at 500 MB), not in a direct load, which appends them
                # and sorts the key's index once
                full = (
                    f"PRAGMA main.cache_size={stage.cache}"
                    if stage.cache and not stage.direct
                    else ""
                )
                if full:
                    conn.execute(full)
                if stage.rows:
                    if not stage.direct:  # (a direct load dropped them when it began)
                        conn.execute("DROP INDEX IF EXISTS records_ts")
                        conn.execute("DROP INDEX IF EXISTS records_session")
                    for table in stage.tables:  # in staging order: ties keep the first
                        conn.execute(
                            f"INSERT INTO records ({COLS}, agent) SELECT {COLS}, '{CLAUDE}' FROM"
                            f" {table} WHERE 1 ORDER BY rowid {_UPSERT_LARGER}"
                        )
                if full:
                    conn.execute(f"PRAGMA main.cache_size={stage.cache // 2}")
                kept = -1
                if stage.direct:
                    kept = stage.settle()
                    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS records_key ON records (key)")
                if not stage.direct or DIRECT_INDEXES_AFTER:  # dropped before the load
                    conn.execute("CREATE INDEX IF NOT EXISTS records_ts ON records (ts)")
                    conn.execute("CREATE INDEX IF NOT EXISTS records_session ON records (session)")
                n = 0
                if stage.rows:
                    n = kept  # (a direct load knows how many rows it kept)
                    if n < 0:
                        n = int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
                    sessions = {r[0] for r in conn.execute("SELECT DISTINCT session FROM records")}
                    if not self.build:  # (a new database: no process has seen it before)
                        self._log_changes(conn, gen, sessions)
                    if self.on_bulk is not None:
                        reader = syncer = None
                        spans = stage.block_spans if stage.spans_begun else None
                        if stage.direct and SIDE_READER:
                            # A private build: the records (and their indexes) committed now,
                            # so a second connection reads them while this one sums them,
                            # and the disk gets them meanwhile (publish then syncs the rest).
                            conn.execute("COMMIT")
                            conn.execute("BEGIN IMMEDIATE")
                            if spans is None:  # (else made from the load's rows: no reads)
                                reader = self._side_reader()
                            syncer = self._sync_behind()
                        try:
                            # (the cells' source made by the callee, once its reads began)
                            cells = stage.cell_source if stage.direct else None
                            self.on_bulk(reader, cells, spans)
                        finally:
                            if reader is not None:
                                reader.close()
                            if syncer is not None:
                                syncer.join()
                    else:  # the stored sums did not follow: rebuilt on their next use
                        conn.execute("INSERT OR REPLACE INTO meta VALUES ('sums', 0)")
                self._merge_state(
                    conn, files, gone, titles, prices, agents, None if self.build else gen
                )
        except _NotEmpty:
            return None
        return n, sessions, gen

    def _side_reader(self) -> sqlite3.Connection | None:
        """A second, read-only connection to this build file (what it has committed), for
        reads beside this connection's work; None where there is none to be had."""
        if not self.build or self.path is None or sqlite3.threadsafety == 0:
            return None
        try:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
        except (sqlite3.Error, ValueError, OSError):
            return None
        try:
            conn.execute(f"PRAGMA cache_size={SIDE_READER_CACHE}")
            # one read transaction, its shared lock taken now and held to the end: a cache
            # spill of the writer then waits for nothing (it is skipped, see _connect_build)
            # and never keeps this reader out between two statements
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            conn.close()
            return None
        return conn

    def _sync_behind(self) -> threading.Thread | None:
        """A thread that writes this build file's committed pages to disk (an fsync, whose
        wait needs no CPU) while the caller goes on; :meth:`publish` syncs what follows."""
        path = self.path
        if not self.build or path is None:
            return None

        def sync() -> None:
            with contextlib.suppress(OSError):  # (publish syncs, and says so, anyway)
                fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

        thread = threading.Thread(target=sync, name="tokmon-build-sync", daemon=True)
        thread.start()
        return thread

    def records_sql(self, agent: str = CLAUDE, checked: bool = True) -> str:
        """A SELECT of ``agent``'s valid records (ts, session, project, model, input, output,
        cc, c1h, cr, key, cost) for SQL over them (the stored sums' bulk build).
        ``checked=False`` leaves out the poison guards (about 1 us a row): for records this
        connection has just written through the tables' constraints (the same guards)."""
        if not agent.isidentifier():
            raise ValueError(f"not an agent name: {agent!r}")
        valid = f" AND {_VALID}" if checked else ""
        return (
            "SELECT ts, session, project, model, input, output, cc, c1h, cr, key, cost"
            f" FROM records WHERE agent='{agent}'{valid}"
        )

    @staticmethod
    def _log_changes(conn: sqlite3.Connection, gen: int, sessions: set[str]) -> None:
        """Which sessions generation ``gen`` changed (other processes ask; old ones pruned)."""
        conn.executemany("INSERT INTO changes VALUES (?, ?)", [(gen, s) for s in sessions])
        if gen % 1000 == 0:
            conn.execute("DELETE FROM changes WHERE gen <= ?", (gen - KEEP_CHANGES,))

    def _existing(self, conn: sqlite3.Connection, keys: list[str]) -> dict[str, UsageRecord]:
        out: dict[str, UsageRecord] = {}
        new = tuple.__new__
        for i in range(0, len(keys), _IN_CHUNK):
            part = keys[i : i + _IN_CHUNK]
            q = f"SELECT {COLS} FROM records WHERE key IN ({','.join('?' * len(part))})"
            for row in conn.execute(q, part):
                out[row[9]] = new(UsageRecord, row)
        return out

    def reprice(self, fn: Callable[[UsageRecord], float], prices: str) -> int:
        """Recompute every Claude record's cost with ``fn(record)``; returns the generation."""
        with self.write() as conn:
            gen = conn.execute("SELECT value FROM meta WHERE key='gen'").fetchone()[0]
            recs = self._select(conn, "agent=?", (CLAUDE,))
            conn.executemany(
                "UPDATE records SET cost=? WHERE key=?", [(fn(r), r.key) for r in recs]
            )
            self._log_changes(conn, gen, {r.session_id for r in recs})
            conn.execute("UPDATE meta SET value=? WHERE key='prices'", (prices,))
            if self.on_reprice is not None:
                self.on_reprice()
            else:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('sums', 0)")
        return int(gen)

    # -- reading records ---------------------------------------------------------------------

    def _select(
        self, conn: sqlite3.Connection, where: str, args: tuple[object, ...] | list[object]
    ) -> list[UsageRecord]:
        new = tuple.__new__
        rec = UsageRecord
        rows = conn.execute(f"SELECT {COLS} FROM records WHERE ({where}) AND {_VALID}", args)
        out = [new(rec, row) for row in rows]
        out.sort(key=_ts)
        return out

    def records(self, where: str = "1", args: tuple[object, ...] = ()) -> list[UsageRecord]:
        """Claude records matching an SQL condition, oldest first (invalid rows dropped)."""
        with self._mu:
            return self._select(self.conn, f"agent='{CLAUDE}' AND ({where})", args)

    def records_between(self, lo: float, hi: float) -> list[UsageRecord]:
        """Records with ``lo <= ts < hi`` (by the time index)."""
        return self.records("ts >= ? AND ts < ?", (lo, hi))

    def records_of_sessions(self, sessions: Iterable[str]) -> list[UsageRecord]:
        """Every record of these sessions (by the session index), oldest first."""
        sids = list(sessions)
        out: list[UsageRecord] = []
        for i in range(0, len(sids), _IN_CHUNK):
            part = sids[i : i + _IN_CHUNK]
            out += self.records(f"session IN ({','.join('?' * len(part))})", tuple(part))
        if len(sids) > _IN_CHUNK:
            out.sort(key=lambda r: r.ts)
        return out

    def last_before(self, ts: float) -> float | None:
        """The time of the latest record before ``ts`` (None: there is none)."""
        with self._mu:
            row = self.conn.execute(
                f"SELECT ts FROM records WHERE agent='{CLAUDE}' AND ts < ? AND {_VALID} "
                "ORDER BY ts DESC LIMIT 1",  # backwards on the time index, first valid row
                (ts,),
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def sums(
        self, lo: float = float("-inf"), hi: float = float("inf")
    ) -> tuple[int, int, int, int, int, float]:
        """(records, input, output, cache creation, cache read, cost) of ``lo <= ts < hi``."""
        with self._mu:
            row = self.conn.execute(
                "SELECT count(*), total(input), total(output), total(cc), total(cr), total(cost) "
                f"FROM records WHERE agent='{CLAUDE}' AND ts >= ? AND ts < ? AND {_VALID}",
                (lo, hi),
            ).fetchone()
        return (
            int(row[0]),
            int(row[1]),
            int(row[2]),
            int(row[3]),
            int(row[4]),
            float(row[5]),
        )

    def sessions_changed_since(self, gen: int) -> set[str]:
        """Sessions whose records a write after generation ``gen`` touched."""
        with self._mu:
            return {
                r[0]
                for r in self.conn.execute(
                    "SELECT DISTINCT session FROM changes WHERE gen > ?", (gen,)
                )
                if r[0][:1] != WRITE_MARK
            }

    def sessions_changed_after(self, gen: int, wid: str | None = None) -> set[str] | None:
        """Sessions whose records or titles a write after generation ``gen`` of this
        database changed (what a kept answer of generation ``gen`` must read again); None
        when the log cannot tell: ``gen`` is not of this database's past (with ``wid``: the
        last write up to generation ``gen`` was not the write ``wid``, as after the ledger
        was put back to an older copy and written again), its changes may have been pruned,
        or the stored sums were rebuilt since (``sums_gen``)."""
        with self._mu:
            conn = self.conn
            conn.execute("BEGIN")  # one snapshot for the generation and the log
            try:
                now = conn.execute("SELECT value FROM meta WHERE key='gen'").fetchone()
                sums = conn.execute("SELECT value FROM meta WHERE key='sums_gen'").fetchone()
                if (
                    now is None
                    or type(now[0]) is not int
                    or not 0 <= gen <= now[0]
                    or now[0] - gen >= KEEP_CHANGES
                    or (sums is not None and (type(sums[0]) is not int or sums[0] > gen))
                    or (wid is not None and self._last_write(conn, gen) != wid)
                ):
                    return None
                return {
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT session FROM changes WHERE gen > ?", (gen,)
                    )
                    if r[0][:1] != WRITE_MARK
                }
            finally:
                conn.execute("COMMIT")

    @staticmethod
    def _last_write(conn: sqlite3.Connection, gen: int) -> str | None:
        """The id of the last write at or before generation ``gen`` that logged one (a
        tokmon of before logs none: the one before it, as ``meta.wid`` still names)."""
        row = conn.execute(
            "SELECT session FROM changes WHERE gen <= ? AND session >= ? AND session < ?"
            " ORDER BY gen DESC LIMIT 1",
            (gen, WRITE_MARK, "\x01"),
        ).fetchone()
        return None if row is None else str(row[0])[len(WRITE_MARK) :]

    def count(self) -> int:
        """How many records (all agents) the ledger holds."""
        with self._mu:
            return int(self.conn.execute("SELECT count(*) FROM records").fetchone()[0])

    def models(self) -> set[str]:
        """Every Claude model name in the ledger."""
        with self._mu:
            return {
                r[0]
                for r in self.conn.execute(
                    f"SELECT DISTINCT model FROM records WHERE agent='{CLAUDE}'"
                )
            }

    def has_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` the ledger holds."""
        ks = list(keys)
        got: set[str] = set()
        with self._mu:
            for i in range(0, len(ks), _IN_CHUNK):
                part = ks[i : i + _IN_CHUNK]
                q = f"SELECT key FROM records WHERE key IN ({','.join('?' * len(part))})"
                got.update(r[0] for r in self.conn.execute(q, part))
        return got

    def agent_state(self) -> dict[str, bytes]:
        """The other agents' saved reader state as one blob per agent (versions before
        :meth:`agent_rows`)."""
        with self._mu:
            rows = self.conn.execute("SELECT agent, body FROM agent_state").fetchall()
        # (a body of another type: written around the schema; that agent's logs are re-read)
        return {a: bytes(b) for a, b in rows if type(a) is str and type(b) is bytes}

    def agent_rows(self) -> dict[str, AgentRows]:
        """The other agents' saved reader state, per agent: its rows, else (saved by a version
        before them) its blob."""
        out: dict[str, AgentRows] = {}
        with self._mu:
            conn = self.conn
            have = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'agent_%'"
                )
            }
            files: list[tuple[object, ...]] = []
            records: list[tuple[object, ...]] = []
            if have.issuperset(_AGENT_TABLES):  # (a read-only open of an older database)
                files = conn.execute("SELECT agent, path, state FROM agent_files").fetchall()
                records = conn.execute(
                    "SELECT agent, path, key, body FROM agent_records"
                ).fetchall()
        for a, p, st in files:
            if type(a) is str and type(p) is str and type(st) is bytes:
                out.setdefault(a, AgentRows()).states[p] = st
        for a, p, k, body in records:
            if type(a) is str and type(p) is str and type(k) is str and type(body) is bytes:
                out.setdefault(a, AgentRows()).records.setdefault(p, {})[k] = body
        for a, blob in self.agent_state().items():
            if a not in out:
                out[a] = AgentRows(blob=blob)
        return out

    @staticmethod
    def _agent_tables(conn: sqlite3.Connection) -> None:
        """Add the agents' row tables to a database made before them."""
        if conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name IN (?, ?)", _AGENT_TABLES
        ).fetchone()[0] == len(_AGENT_TABLES):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _AGENT_SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _save_agents(conn: sqlite3.Connection, agents: dict[str, AgentRows]) -> None:
        """Write what changed of each agent's state (inside the merge's transaction)."""
        for agent, rows in agents.items():
            if rows.full:  # its blob moves into rows here: never in neither place
                for table in ("agent_files", "agent_records", "agent_state"):
                    conn.execute(f"DELETE FROM {table} WHERE agent=?", (agent,))
            put = [(agent, p, st) for p, st in rows.states.items() if st is not None]
            drop = [(agent, p) for p, st in rows.states.items() if st is None]
            conn.executemany("INSERT OR REPLACE INTO agent_files VALUES (?,?,?)", put)
            conn.executemany("DELETE FROM agent_files WHERE agent=? AND path=?", drop)
            recs = [(agent, p, k, b) for p, rs in rows.records.items() for k, b in rs.items()]
            conn.executemany(
                "INSERT OR REPLACE INTO agent_records VALUES (?,?,?,?)",
                [r for r in recs if r[3] is not None],
            )
            conn.executemany(
                "DELETE FROM agent_records WHERE agent=? AND path=? AND key=?",
                [r[:3] for r in recs if r[3] is None],
            )

    # -- copies ------------------------------------------------------------------------------

    def memory_copy(self) -> LedgerDB:
        """A private in-memory copy (to go on with when this database cannot be written)."""
        mem = LedgerDB(None)
        with self._mu:
            self.conn.backup(mem.conn)
        return mem


class _NotEmpty(Exception):
    """merge_staged found records: roll back, the caller merges the usual way."""


def _batch_args(rows: list[list[object]], start: int, k: int) -> tuple[list[object], bool]:
    """``rows[start:start + k]`` as one INSERT's parameters: without each row's last value
    (display_cost) when all of them are None (then True). ``_scan.batch_args`` in Python."""
    args = list(itertools.chain.from_iterable(rows[start : start + k]))
    if args[11::12].count(None) == k:  # no display_cost: 11 values a row
        del args[11::12]
        return args, True
    return args, False


def insert_batches(
    conn: sqlite3.Connection, head: str, width: int, n: int, args: Callable[[int, int], Any]
) -> None:
    """``n`` rows of ``width`` values by ``head`` ("INSERT ... VALUES "), 64 a statement (a
    statement a row costs its step and reset: ~2-3 us a row more): ``args(start, k)`` gives
    rows start to start + k as one statement's parameters."""
    one = f"({','.join('?' * width)})"
    many = head + ",".join([one] * 64)
    for i in range(0, n, 64):
        k = min(64, n - i)
        conn.execute(many if k == 64 else head + ",".join([one] * k), args(i, k))


def insert_many(
    conn: sqlite3.Connection, head: str, width: int, rows: list[tuple[Any, ...]]
) -> None:
    """:func:`insert_batches` of ``rows`` (tuples of ``width`` values)."""
    chain = itertools.chain.from_iterable
    insert_batches(conn, head, width, len(rows), lambda i, k: list(chain(rows[i : i + k])))


def _native_batch() -> Any:
    """The native scanner's ``batch_args`` when it is in use, else None."""
    from tokmon.core.parser import native_parse

    native = native_parse()
    return getattr(native, "batch_args", None) if native is not None else None


class Stage:
    """Claude records staged, while a big first scan runs, in tables of a private temporary
    database attached to the ledger connection (SQLite's temporary file: nothing held in
    Python, no lock taken; detached at the end, which drops it whole instead of freeing its
    pages one by one), for :meth:`LedgerDB.merge_staged`. Rows go to a table per stream (a
    sortable key: merge order is the order of the keys), each read back in the order they
    were added.

    ``direct`` (a private build file, see :func:`build_path`: no other process reads or
    writes it): the load's transaction opens here and stays open while the scan runs, and
    every stream's rows are appended to ``records`` as they come (without the key's index:
    no lookup, no random insert), so the load is done when the scan is; :meth:`settle` then
    applies the dedup rule (the largest output wins, ties keep the first in merge order)
    to the rows whose key came more than once, and the key's index is sorted once. If
    anything fails, the transaction rolls back whole: the caller drops the build and scans
    the usual way."""

    SCHEMA = "tokmon_stage"

    BATCH = 64  # rows per INSERT (64 x 12 parameters: below SQLite's old limit of 999)
    #: batches of a stream held before they are inserted (16: ~0.6 MB more of a cold scan's
    #: peak RSS at 500 MB for no measured gain; fifteenth session)
    HOLD = 4
    FIRST = (0, 0)  # the stream that comes first in merge order (scan_all's part 0)

    def __init__(self, db: LedgerDB, direct: bool = False) -> None:
        self.db = db
        self.rows = 0
        self.direct = direct
        self.cache = 0  # a build's page cache for the merge (KiB, negative; see LedgerDB.stage)
        self.loaded = 0  # rows sent straight to ``records`` (direct)
        # direct: every stream's rows held in one list (pending[()]): per run of one
        # stream's rows inserted into records (rowids follow on from 1), its stream, the
        # index in that stream of its first row and how many rows; the same of the runs
        # held; rows of each stream so far
        self._flushes: list[tuple[tuple[int, ...], int, int]] = []
        self._held: collections.deque[list[Any]] = collections.deque()
        self._count: dict[tuple[int, ...], int] = {}
        self._tables: dict[tuple[int, ...], str] = {}
        self._pending: dict[tuple[int, ...], list[list[object]]] = {}
        self._batch = _native_batch()
        # a direct build's cells summed as the rows come (see cell_source), every row's key
        # hash and its time and cost, in rowid order (= add order); the rows settle deleted
        # (with their counts) and the sort of the others it begins (tokmon.core.blockspans)
        self._cells_ok = direct and CELLS_FROM_ROWS
        self._sums: Any = None
        self._dups: Any = None
        if self._cells_ok:
            make, self._dups = summers()
            self._sums = make()
        # (in files beside the build's while the scan runs: its end is the peak RSS)
        beside = db.path if direct and db.build and SPILL else None
        self._hashes = Spill(beside, "hashes")
        self._times: Spill | None = Spill(beside, "times") if self._cells_ok else None
        self._times_read: bytes | bytearray | None = None  # (read back by settle)
        self._gone: list[Gone] = []
        self._span_mod: Any = blockspans.native() if SPANS_FROM_ROWS else None
        self._order: blockspans.SpanOrder | None = None
        with db._mu:
            conn = db.conn
            with contextlib.suppress(sqlite3.Error):  # (one a failed refresh left attached)
                conn.execute(f"DETACH DATABASE {self.SCHEMA}")
            conn.execute(f"ATTACH DATABASE '' AS {self.SCHEMA}")  # on disk, not in RAM
            conn.execute(f"PRAGMA {self.SCHEMA}.cache_size={STAGE_CACHE}")
            if direct:
                conn.execute("BEGIN IMMEDIATE")
                # rows appended as they come, the dedup after the load (settle) and the key's
                # index built then, by one sort (kept up row by row, it cost ~1.5 us a row
                # of the calling thread's time while the scan runs)
                conn.execute("DROP INDEX IF EXISTS records_key")
                if DIRECT_INDEXES_AFTER:  # built once, after the load (merge_staged)
                    conn.execute("DROP INDEX IF EXISTS records_ts")
                    conn.execute("DROP INDEX IF EXISTS records_session")
        # statements: (many, many with display_cost NULL, one) for a stage table ("{}") and
        # for records (appended: the dedup comes after the load), each of BATCH rows of 12
        # values. A batch without display_cost (nearly all) has NULL in the statement:
        # binding None costs Python's sqlite3 an adapter lookup that fails (~0.27 us, a third
        # of a row's binding), a literal nothing.
        k = self.BATCH
        marks = "(" + ",".join("?" * 12) + ")"
        nulls = "(" + ",".join("?" * 11) + ",NULL)"
        head = "INSERT INTO {} VALUES "
        self._staged = (head + ",".join([marks] * k), head + ",".join([nulls] * k), head + marks)
        rec = f"(?,?,?,?,?,?,?,?,?,?,?,?,'{CLAUDE}')"
        rec_null = f"(?,?,?,?,?,?,?,?,?,?,?,NULL,'{CLAUDE}')"
        head = f"INSERT INTO records ({COLS}, agent) VALUES "
        self._direct = (head + ",".join([rec] * k), head + ",".join([rec_null] * k), head + rec)

    @property
    def tables(self) -> list[str]:
        """The stream tables in merge order (none in a direct load)."""
        return [self._tables[k] for k in sorted(self._tables)]

    @property
    def streams(self) -> list[tuple[int, ...]]:
        """The streams that had rows, in merge order."""
        return sorted(self._count if self.direct else self._pending)

    def add(self, stream: tuple[int, ...], rows: list[list[object]]) -> None:
        """Append rows (lists in record field order, priced) to the table of ``stream``
        (``direct``: to ``records``)."""
        if not rows:
            return
        if self._cells_ok:
            self._sum_cells(rows)
        if self.direct:  # (one list: the streams' rows go to one table)
            at = self._count.get(stream, 0)
            self._held.append([stream, at, len(rows)])
            self._count[stream] = at + len(rows)
            stream = ()
        pending = self._pending.get(stream)
        if pending is None:
            if not self.direct:
                table = f"{self.SCHEMA}.t{len(self._tables)}"
                with self.db._mu:
                    self.db.conn.execute(f"CREATE TABLE {table} ({COLS})")
                self._tables[stream] = table
            pending = self._pending[stream] = []
        pending += rows
        self.rows += len(rows)
        if len(pending) >= self.HOLD * self.BATCH:
            self._flush(stream, len(pending) - len(pending) % self.BATCH)

    def _flush(self, stream: tuple[int, ...], n: int) -> None:
        """Insert the first ``n`` pending rows of ``stream`` (all when ``n`` is -1)."""
        pending = self._pending[stream]
        if n < 0:
            n = len(pending)
        table = self._tables.get(stream)
        if table is None:  # direct: appended to records, their places noted for settle
            many, many_null, one = self._direct
            left = n
            flushes = self._flushes
            while left:
                run = self._held[0]
                take = min(run[2], left)
                last = flushes[-1] if flushes else None
                if last is not None and last[0] == run[0] and last[1] + last[2] == run[1]:
                    flushes[-1] = (last[0], last[1], last[2] + take)  # (one run on from it)
                else:
                    flushes.append((run[0], run[1], take))
                if take == run[2]:
                    self._held.popleft()
                else:
                    run[1] += take
                    run[2] -= take
                left -= take
            self.loaded += n
        else:
            many, many_null, one = (s.format(table) for s in self._staged)
        k = self.BATCH
        full = n - n % k
        batch = self._batch
        with self.db._mu:
            conn = self.db.conn
            for i in range(0, full, k):  # (outside ``direct``: each its own transaction)
                got = batch(pending, i, k) if batch is not None else None
                if got is None:
                    got = _batch_args(pending, i, k)
                args, nulls = got
                conn.execute(many_null if nulls else many, args)
            if full < n:
                conn.executemany(one, pending[full:n])
        del pending[:n]

    def _sum_cells(self, rows: list[list[object]]) -> None:
        got = self._sums.add(rows)
        if got is None:  # a row these sums do not fit: every cell summed in SQL
            self._cells_ok = False
            self._hashes.close()
            if self._times is not None:
                self._times.close()
            self._sums, self._times = None, None
            return
        hashes, times = got
        self._hashes.add(hashes)
        if self._times is not None:
            self._times.add(times)

    def cell_source(self) -> BuildCells | None:
        """A settled direct load's cells for the stored sums (see Rollups.rebuild_sql): its
        rows summed as they came, the rows settle deleted taken back out (tokmon.core.
        cellsums), and how many cells that makes. None when the rows did not fit these sums
        (every cell is summed from the records)."""
        sums, self._sums = self._sums, None
        times, self._times_read = self._times_read, None
        gone, self._gone = self._gone, []
        if not self._cells_ok or sums is None or times is None:
            return None
        got = sums.finish(gone, times)
        if got is None:
            return None
        n, marked = got
        conn = self.db.conn
        for i, b, model, session, project in marked:  # their first and last times kept
            lo, hi = conn.execute(
                "SELECT min(ts), max(ts) FROM records WHERE session=? AND ts >= ? AND ts < ?"
                " AND model=? AND project=?",
                (session, b * float(BUCKET), (b + 1) * float(BUCKET), model, project),
            ).fetchone()
            if lo is None:
                return None
            sums.set_times(i, lo, hi)
        return sums, n

    def settle(self) -> int:
        """A direct load's dedup, once every row is in ``records`` (appended as each stream's
        rows came, the streams interleaved): of the rows of one key, the first of the
        largest output in merge order (by stream, then in the stream's order) stays, the
        others are deleted (the rule of :meth:`LedgerDB.merge`). The rows whose key hash
        came more than once are found by their rowids (the inserts' hashes in their order)
        and ranked here; without the hashes (a row the cells from the rows did not fit), every
        row is ranked. Returns how many rows stay."""
        conn = self.db.conn
        flushes = self._flushes
        try:  # (in rowid order: the rows were appended as they were added)
            hashes = self._hashes.take()
            self._times_read = self._times.take() if self._times is not None else None
        except OSError:  # (the spill files could not be read back: every row ranked, cells
            hashes, self._cells_ok = b"", False  # summed from the records)
        self._times = None
        # (rowids 1..rows: the table was empty, every row was appended, none deleted)
        last = conn.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()[0]
        if last != self.rows or sum(n for _, _, n in flushes) != self.rows:
            raise sqlite3.OperationalError(f"a build's load: {last} rows, {self.rows} added")
        q = "SELECT rowid, key, output FROM records"
        found: Iterable[tuple[int, str, int]]
        if self._cells_ok and len(hashes) == 4 * self.rows:
            dups, places = self._dups(hashes)
            ids = [i + 1 for i in places]
            found = itertools.chain.from_iterable(
                conn.execute(f"{q} WHERE rowid IN ({','.join('?' * len(c))})", c)
                for c in (ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK))
            )
        else:
            found = conn.execute(q)  # every row a candidate
        # a rowid's place in merge order: its insert's stream, then the rowid (a stream's
        # inserts came in its order)
        rank = {st: j for j, st in enumerate(sorted({st for st, _, _ in flushes}))}
        starts: list[int] = []
        at = 1
        for _, _, n in flushes:
            starts.append(at)
            at += n
        rows: list[tuple[int, int, str, int]] = []
        for rowid, key, output in found:
            st = flushes[bisect.bisect_right(starts, rowid) - 1][0]
            rows.append((rank[st], rowid, key, output))
        rows.sort()
        best: dict[str, tuple[int, int]] = {}
        gone: list[tuple[int]] = []
        for _, rowid, key, output in rows:
            b = best.get(key)
            if b is None:
                best[key] = (rowid, output)
            elif output > b[1]:
                gone.append((b[0],))
                best[key] = (rowid, output)
            else:
                gone.append((rowid,))
        ids = [r for (r,) in gone]
        chunks = [ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK)]
        if self._cells_ok:  # what the cells take back out (tokmon.core.cellsums)
            self._gone = [
                row
                for c in chunks
                for row in conn.execute(
                    "SELECT rowid, input, output, cc, c1h, cr, session, project, model FROM"
                    f" records WHERE rowid IN ({','.join('?' * len(c))})",
                    c,
                )
            ]
        for c in chunks:  # (a statement a row cost ~2 us each)
            conn.execute(f"DELETE FROM records WHERE rowid IN ({','.join('?' * len(c))})", c)
        times = self._times_read
        if times is not None and len(times) == 16 * self.rows and self._span_mod is not None:
            # the survivors sorted by time on a thread while the indexes are built
            self._order = blockspans.SpanOrder(self._span_mod, times, [r - 1 for (r,) in gone])
        return self.rows - len(gone)

    @property
    def spans_begun(self) -> bool:
        """Whether :meth:`block_spans` has the blocks (settle began their sort)."""
        return self._order is not None

    def block_spans(self, block_seconds: float, aligned: bool) -> list[blockspans.Span] | None:
        """A settled direct load's blocks' spans (see :mod:`tokmon.core.blockspans`) made
        from its rows' times and costs, without reading the records; None when settle did
        not begin them."""
        order, self._order = self._order, None
        if order is None:
            return None
        return order.spans(self._keys_of, block_seconds, aligned)

    def _keys_of(self, rowids: list[int]) -> dict[int, str]:
        conn = self.db.conn
        out: dict[int, str] = {}
        for i in range(0, len(rowids), _IN_CHUNK):
            part = rowids[i : i + _IN_CHUNK]
            q = f"SELECT rowid, key FROM records WHERE rowid IN ({','.join('?' * len(part))})"
            out.update(conn.execute(q, part))
        return out

    def flush(self) -> None:
        """Insert every row still held (before the tables are read)."""
        for stream, pending in self._pending.items():
            if pending:
                self._flush(stream, -1)

    def records(self) -> list[UsageRecord]:
        """The staged rows as records, in merge order (for :meth:`LedgerDB.merge`; not for a
        ``direct`` stage, whose rows are in ``records`` already)."""
        assert not self.direct
        new = tuple.__new__
        self.flush()
        with self.db._mu:
            return [
                new(UsageRecord, row)
                for t in self.tables
                for row in self.db.conn.execute(f"SELECT {COLS} FROM {t} ORDER BY rowid")
            ]

    def close(self) -> None:
        """Drop the staging database (ignored when the connection is gone; when a transaction
        is still open, the next Stage drops it). A ``direct`` load not merged by now is
        rolled back (the caller drops the build)."""
        self._hashes.close()
        if self._times is not None:
            self._times.close()
        self._times_read = None
        with self.db._mu, contextlib.suppress(sqlite3.Error):
            conn = self.db.conn
            if self.direct and conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute(f"DETACH DATABASE {self.SCHEMA}")


def build_cache(size: int) -> int:
    """A build's page cache (``PRAGMA cache_size``: KiB, negative) for a first scan of
    ``size`` bytes: 1/256 of it, from -:data:`BUILD_CACHE` up to 16 MB. Its pages come back
    from the OS's cache when needed; below ~1/256 the merge of the later scan streams into
    the key index rereads them often (+0.1-0.2 s at 2 GB with 2 MB), above it the cache
    only adds to the peak RSS (docs/performance.md, ninth session)."""
    return -min(max(size // (256 * 1024), -BUILD_CACHE), 16000)


def is_corrupt(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the file itself is broken (not busy, full or unreadable now)."""
    msg = str(exc)
    if not isinstance(exc, sqlite3.OperationalError):
        return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
            exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)
        )
    return "not a database" in msg or "malformed" in msg or "no such table" in msg


_ts = operator.itemgetter(0)
