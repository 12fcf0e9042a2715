"""The official-limit time series: ``<data_dir>/limits.sqlite`` (0600, WAL).

One row per *change* of an official figure (identical consecutive observations of
a window are not stored again), so years of history stay small.  Tables:

``obs``      ``ts, source, window, used, resets_at, length`` - one official figure
``last``     the newest figure per ``(source, window)`` (dedup of consecutive values)
``markers``  ``Claude AI usage limit reached|<epoch>`` (and similar) events
``alerts``   one row per fired alert; ``key`` is unique, so concurrent processes
             (server, CLI, statusline) can never fire the same crossing twice
``ingest``   read offsets of agent files already scanned for limits

Sources are ``claude`` and ``codex``; windows are ``five_hour``, ``seven_day``,
``seven_day_opus``, ``seven_day_sonnet`` ... for Claude and ``primary`` /
``secondary`` for Codex.  All figures are account-wide.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DB_NAME = "limits.sqlite"
#: resets_at values closer than this belong to the same window instance (jitter of
#: figures derived from ``resets_in_seconds``)
SAME_WINDOW_SECONDS = 600.0
#: a figure equal to the stored one within this tolerance is the same figure
EPSILON = 1e-6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS obs(
  id INTEGER PRIMARY KEY, ts REAL NOT NULL, source TEXT NOT NULL, window TEXT NOT NULL,
  used REAL NOT NULL, resets_at REAL, length REAL);
CREATE INDEX IF NOT EXISTS obs_sw ON obs(source, window, ts);
CREATE TABLE IF NOT EXISTS last(
  source TEXT NOT NULL, window TEXT NOT NULL, ts REAL NOT NULL, used REAL NOT NULL,
  resets_at REAL, length REAL, PRIMARY KEY(source, window));
CREATE TABLE IF NOT EXISTS markers(
  source TEXT NOT NULL, ts REAL NOT NULL, resets_at REAL NOT NULL,
  PRIMARY KEY(source, resets_at));
CREATE TABLE IF NOT EXISTS alerts(
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, ts REAL NOT NULL, kind TEXT NOT NULL,
  subject TEXT NOT NULL, threshold REAL NOT NULL, value REAL, message TEXT NOT NULL,
  status TEXT NOT NULL, channels TEXT, owner INTEGER);
CREATE TABLE IF NOT EXISTS ingest(
  path TEXT PRIMARY KEY, ident TEXT, offset INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Obs:
    """One official figure: ``used`` percent of ``window`` at ``ts`` (epoch seconds)."""

    ts: float
    source: str
    window: str
    used: float
    resets_at: float | None
    length: float | None


def db_path(paths: Any) -> Path:
    """Where the history lives (in the data dir: it is kept for years)."""
    return Path(paths.data_dir) / DB_NAME


def stamp_files(paths: Any) -> tuple[str, str]:
    """The history database and its WAL: the files :func:`db_stamp` looks at."""
    db = str(db_path(paths))
    return db, db + "-wal"


def file_stamp(path: str) -> tuple[int, int] | None:
    """(mtime_ns, size) of a file, None when absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def db_stamp(paths: Any) -> tuple[tuple[int, int] | None, ...]:
    """(mtime_ns, size) of the history database and its WAL (None where absent): a cheap
    "has anything been written" check for pollers."""
    return tuple(map(file_stamp, stamp_files(paths)))


def is_history_file(name: str) -> bool:
    """Whether a file name is the history database or one of its SQLite files."""
    return name.startswith(DB_NAME)


def _create_private(path: Path) -> None:
    from tokmon.paths import ensure_dir

    ensure_dir(path.parent)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    except FileExistsError:
        pass


def connect(paths: Any) -> sqlite3.Connection:
    """Open (creating if needed) the history database; ``autocommit`` style connection."""
    path = db_path(paths)
    if not path.exists():
        _create_private(path)
    con = sqlite3.connect(str(path), timeout=15.0, isolation_level=None)
    con.execute("PRAGMA busy_timeout=15000")
    try:
        con.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:  # pragma: no cover - e.g. network filesystems
        pass
    con.executescript(_SCHEMA)
    for extra in ("-wal", "-shm"):  # SQLite copies the db's mode, but be sure
        p = Path(str(path) + extra)
        if p.exists():
            try:
                os.chmod(p, 0o600)
            except OSError:  # pragma: no cover
                pass
    return con


@contextmanager
def opened(paths: Any) -> Iterator[sqlite3.Connection]:
    """``with opened(paths) as con:`` - closes the connection afterwards."""
    con = connect(paths)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """An IMMEDIATE transaction (serialises writers across processes)."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _same(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tol


def append(con: sqlite3.Connection, observations: Iterable[Obs]) -> int:
    """Store observations that change their window's figure; returns how many were new.

    An observation older than the stored newest one of its window is ignored (files
    scanned out of order never rewrite the present).
    """
    added = 0
    with transaction(con):
        for o in observations:
            row = con.execute(
                "SELECT ts, used, resets_at FROM last WHERE source=? AND window=?",
                (o.source, o.window),
            ).fetchone()
            if row is not None:
                if o.ts < row[0]:
                    continue
                if _same(o.used, row[1], EPSILON) and _same(o.resets_at, row[2], 60.0):
                    continue
            con.execute(
                "INSERT INTO obs(ts, source, window, used, resets_at, length) VALUES(?,?,?,?,?,?)",
                (o.ts, o.source, o.window, o.used, o.resets_at, o.length),
            )
            con.execute(
                "INSERT OR REPLACE INTO last(source, window, ts, used, resets_at, length) "
                "VALUES(?,?,?,?,?,?)",
                (o.source, o.window, o.ts, o.used, o.resets_at, o.length),
            )
            added += 1
    return added


def add_markers(con: sqlite3.Connection, markers: Iterable[tuple[str, float, float]]) -> int:
    """Store ``(source, ts, resets_at)`` limit-reached markers (duplicates ignored)."""
    n = 0
    with transaction(con):
        for source, ts, resets in markers:
            cur = con.execute(
                "INSERT OR IGNORE INTO markers(source, ts, resets_at) VALUES(?,?,?)",
                (source, ts, resets),
            )
            n += cur.rowcount
    return n


def observations(
    con: sqlite3.Connection,
    source: str | None = None,
    window: str | None = None,
    since: float | None = None,
) -> list[Obs]:
    """Stored observations, oldest first."""
    sql = "SELECT ts, source, window, used, resets_at, length FROM obs WHERE 1=1"
    args: list[Any] = []
    if source:
        sql += " AND source=?"
        args.append(source)
    if window:
        sql += " AND window=?"
        args.append(window)
    if since is not None:
        sql += " AND ts>=?"
        args.append(since)
    return [Obs(*r) for r in con.execute(sql + " ORDER BY ts, id", args)]


def latest(con: sqlite3.Connection) -> list[Obs]:
    """The newest figure of every known window."""
    rows = con.execute(
        "SELECT ts, source, window, used, resets_at, length FROM last ORDER BY source, window"
    )
    return [Obs(*r) for r in rows]


def markers(con: sqlite3.Connection, since: float | None = None) -> list[tuple[str, float, float]]:
    sql = "SELECT source, ts, resets_at FROM markers"
    args: list[Any] = []
    if since is not None:
        sql += " WHERE resets_at>=?"
        args.append(since)
    return [tuple(r) for r in con.execute(sql + " ORDER BY ts", args)]  # type: ignore[misc]


@dataclass
class WindowInstance:
    """One window of one kind (e.g. the 5-hour window that reset at 14:00)."""

    source: str
    window: str
    resets_at: float | None
    length: float | None
    obs: list[Obs]

    @property
    def start(self) -> float | None:
        if self.resets_at is None or not self.length:
            return None
        return self.resets_at - self.length

    @property
    def peak(self) -> float:
        return max(o.used for o in self.obs)

    @property
    def last(self) -> Obs:
        return self.obs[-1]


def instances(obs: Iterable[Obs]) -> list[WindowInstance]:
    """Group observations (of one or many windows) into window instances, oldest first.

    A new instance starts when ``resets_at`` moves by more than
    :data:`SAME_WINDOW_SECONDS` (a reset moves it by at least the window length).
    """
    current: dict[tuple[str, str], WindowInstance] = {}
    out: list[WindowInstance] = []
    for o in sorted(obs, key=lambda o: o.ts):
        k = (o.source, o.window)
        inst = current.get(k)
        if inst is None or not _same(o.resets_at, inst.resets_at, SAME_WINDOW_SECONDS):
            inst = WindowInstance(o.source, o.window, o.resets_at, o.length, [])
            current[k] = inst
            out.append(inst)
        inst.obs.append(o)
    return out


def now() -> float:
    return time.time()
