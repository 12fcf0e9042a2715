"""Stored sums for reports that cost the answer, not the history (issue #12, item 2).

:class:`Rollups` keeps, in tables of a caller-owned :class:`sqlite3.Connection`, sums updated
from record deltas ``(replaced, new)``:

* ``rollup_cell``: per (agent, 15-minute UTC bucket, model, session, project) token sums, cost,
  count and first/last time. Every zone offset is a multiple of 15 minutes, so a day, week or
  month of any zone is a union of buckets; session and project filters read these cells.
* ``rollup_bucket``: the cells of one (agent, bucket, model) summed (unfiltered reports read
  these: at most 96 rows a day and model, whatever the history); ``rollup_total``: all time
  per (agent, model).
* ``rollup_session`` / ``rollup_session_model``: per session first/last time, project (the cwd
  of its latest record that has one) and per-model sums.
* ``rollup_block`` / ``rollup_block_model``: Claude Code's 5-hour blocks (see
  :mod:`tokmon.core.blocks`), regrouped from the records only around what changed.
* ``rollup_project``: record counts per (agent, project), for the project filter.

Minima and maxima cannot be subtracted: when a removed record was a cell's first or last, the
cell asks the caller's ``records_between(agent, t0, t1, session_id)`` (records with
``t0 <= ts < t1``, after the change) for its bucket; sessions and buckets recompute theirs from
the cells. Blocks are always regrouped from ``records_between``.

Cost sums are exact integers in picodollars (1e-12 USD), so sums do not depend on the order in
which records arrive or are replaced: feeding deltas in any order yields the very state of one
bulk build. A report's cost differs from the record path's float sum (in record order) by at most
half a picodollar per record (a stored sum holds up to 9.2 million USD). Block costs are float sums in (ts, key) order, as
:func:`~tokmon.core.blocks.make_block` sums its entries.

The class never commits: the caller's transaction holds a record change and its rollup change
(a write transaction, ``BEGIN IMMEDIATE``, so two processes never interleave read-modify-writes).
A store uses it like this::

    ru = Rollups(conn, store.records_between)
    if ru.fresh:  # new tables, or a new schema version (derived data: dropped, rebuilt)
        ru.rebuild({"claude": store.records("claude"), ...})
    # per refresh, in the transaction that writes the records:
    ru.apply("claude", [(replaced_or_None, new), ...])
    # reports: the same groups as aggregate.group over the filtered records
    rows = aggregate.period_rows(ru.daily("claude", tz, since=s, until=u), "date", "daily")
    groups, projects = ru.sessions("claude", tz)
    sessions = aggregate.session_rows_of(groups, projects, titles, now)
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

from tokmon.core.aggregate import Acc, project_name
from tokmon.core.blocks import BLOCK_SECONDS, group_blocks, make_gap
from tokmon.core.cellsums import DERIVED, Sums
from tokmon.core.ledger import CellSource, SpanSource, insert_batches, loose_tables
from tokmon.core.model import JSON, JSONObject, UsageRecord
from tokmon.core.records import SYNTHETIC_MODEL, TS_MAX, TS_MIN
from tokmon.core.rows_json import breakdown_json, session_row_json, totals_json
from tokmon.core.timeutil import WEEKDAYS, DateKeyer, parse_day, resolve_tz

if TYPE_CHECKING:  # (imported where a block is made, tokmon.core.model_blocks)
    from tokmon.core.model_blocks import Block, TokenCounts

SCHEMA_VERSION = 2  # 2: STRICT tables (a value of the wrong type is refused on write)
BUCKET = 900  # seconds: 15 minutes, the finest zone offset step
PICO = 10**12  # cost unit: picodollars
_NO_PROJECT = (float("-inf"), "")
_CELL_KEY = ("agent", "bucket", "model", "session_id", "project")


class RecordsBetween(Protocol):
    """The caller's record source: ``agent``'s records with ``t0 <= ts < t1`` (of one session
    when ``session_id`` is given), as stored after the change being applied."""

    def __call__(
        self, agent: str, t0: float, t1: float, session_id: str | None = None
    ) -> Iterable[UsageRecord]: ...


Delta = tuple[UsageRecord | None, UsageRecord | None]

_TABLES = (
    "rollup_meta",
    "rollup_cell",
    "rollup_bucket",
    "rollup_total",
    "rollup_session",
    "rollup_session_model",
    "rollup_block",
    "rollup_block_model",
    "rollup_project",
)

# rollup_cell's indexes
_CELL_INDEXES = {
    name: f"CREATE INDEX IF NOT EXISTS {name} ON rollup_cell ({cols})"
    for name, cols in (
        ("rollup_cell_session", "agent, session_id, bucket"),
        ("rollup_cell_project", "agent, project, bucket"),
    )
}
_CELL_INDEX_SQL = ";\n".join(_CELL_INDEXES.values())
_SUMS = ", ".join(f"{c} INTEGER NOT NULL" for c in ("i", "o", "cc", "c1h", "cr", "cost", "n"))

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS rollup_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS rollup_cell (
  agent TEXT NOT NULL, bucket INTEGER NOT NULL, model TEXT NOT NULL, session_id TEXT NOT NULL,
  project TEXT NOT NULL, {_SUMS}, first REAL NOT NULL, last REAL NOT NULL,
  PRIMARY KEY (agent, bucket, model, session_id, project)) STRICT, WITHOUT ROWID;
{_CELL_INDEX_SQL};
CREATE TABLE IF NOT EXISTS rollup_bucket (
  agent TEXT NOT NULL, bucket INTEGER NOT NULL, model TEXT NOT NULL, {_SUMS},
  first REAL NOT NULL, last REAL NOT NULL,
  PRIMARY KEY (agent, bucket, model)) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_total (
  agent TEXT NOT NULL, model TEXT NOT NULL, {_SUMS}, first REAL NOT NULL, last REAL NOT NULL,
  PRIMARY KEY (agent, model)) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_session (
  agent TEXT NOT NULL, session_id TEXT NOT NULL, project TEXT NOT NULL,
  project_ts REAL NOT NULL, first REAL NOT NULL, last REAL NOT NULL,
  PRIMARY KEY (agent, session_id)) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_session_model (
  agent TEXT NOT NULL, session_id TEXT NOT NULL, model TEXT NOT NULL, {_SUMS},
  first REAL NOT NULL, last REAL NOT NULL,
  PRIMARY KEY (agent, session_id, model)) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_block (
  agent TEXT NOT NULL, first REAL NOT NULL, start REAL NOT NULL, last REAL NOT NULL,
  n INTEGER NOT NULL, i INTEGER NOT NULL, o INTEGER NOT NULL, cc INTEGER NOT NULL,
  cr INTEGER NOT NULL, cost REAL NOT NULL, models TEXT NOT NULL,
  PRIMARY KEY (agent, first)) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_block_model (
  agent TEXT NOT NULL, first REAL NOT NULL, model TEXT NOT NULL, {_SUMS},
  PRIMARY KEY (agent, first, model)) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_project (
  agent TEXT NOT NULL, project TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (agent, project)) STRICT, WITHOUT ROWID;
"""

# sums of one group: i, o, cc, c1h, cr, cost (picodollars), n, first, last
_Sums = list[float]


def _pico(cost: float) -> int:
    return round(cost * PICO)


# _pico in SQL: the same product, rounded half to even like Python's round: its truncation t,
# moved by one toward the product when the rest d is over a half, to the even side on a tie
_PICO_T = f"CAST(cost * {PICO}.0 AS INTEGER)"
_PICO_D = f"(cost * {PICO}.0 - {_PICO_T})"
_PICO_SQL = (
    f"({_PICO_T} + CASE WHEN abs({_PICO_D}) < 0.5 THEN 0"
    f" WHEN abs({_PICO_D}) > 0.5 THEN ({_PICO_D} > 0) - ({_PICO_D} < 0)"
    f" ELSE {_PICO_T} % 2 END)"
)
# int(ts // BUCKET) in SQL (ts >= 0): the truncated float quotient, one less where it
# rounded up onto an integer (a ts just below a bucket boundary)
_BUCKET_Q = f"CAST(ts / {BUCKET} AS INTEGER)"
_BUCKET_SQL = f"({_BUCKET_Q} - ({_BUCKET_Q} * {BUCKET} > ts))"


# a row of sums added to the row of its key (an upsert: the sums' columns of every table)
_ADD_UP = (
    "ON CONFLICT DO UPDATE SET i = i + excluded.i, o = o + excluded.o, cc = cc + excluded.cc,"
    " c1h = c1h + excluded.c1h, cr = cr + excluded.cr, cost = cost + excluded.cost,"
    " n = n + excluded.n, first = min(first, excluded.first), last = max(last, excluded.last)"
)


def _cell_rows(source: str, where: str = "") -> str:
    """Each record of ``source`` as its cell's share (the rows the cells' ``GROUP BY`` sums:
    bucket, model, session, project, token sums, picodollars, a count, first and last time);
    a cold build's cells summed from its rows (tokmon.core.cellsums) are the same sums."""
    return (
        f"SELECT {_BUCKET_SQL} AS b, model, session, project, input AS i, output AS o, cc, c1h,"
        f" cr, {_PICO_SQL} AS pico, 1 AS n, ts AS first, ts AS last FROM ({source}){where}"
    )


# one block read from the records: first, start, the next block's first (None: the last),
# a record exactly on its end, its record count and its costs summed in (ts, key) order
_Span = tuple[float, float, "float | None", bool, int, float]


def _span_where(first: float, nxt: float | None) -> tuple[str, tuple[float, ...]]:
    """The records of the block that starts at ``first`` (the next one at ``nxt``)."""
    return ("ts >= ?", (first,)) if nxt is None else ("ts >= ? AND ts < ?", (first, nxt))


def _new_sums() -> _Sums:
    return [0, 0, 0, 0, 0, 0, 0, float("inf"), float("-inf")]


def _add(s: _Sums, r: UsageRecord, sign: int) -> None:
    s[0] += sign * r.input_tokens
    s[1] += sign * r.output_tokens
    s[2] += sign * r.cache_creation_tokens
    s[3] += sign * r.cache_1h_tokens
    s[4] += sign * r.cache_read_tokens
    s[5] += sign * _pico(r.cost)
    s[6] += sign
    if sign > 0:
        if r.ts < s[7]:
            s[7] = r.ts
        if r.ts > s[8]:
            s[8] = r.ts


class _Fold:
    """Per-key, per-model integer sums folded into :class:`Acc` groups at the end."""

    def __init__(self) -> None:
        self.cells: dict[str, dict[str, list[Any]]] = {}

    def add(
        self,
        key: str,
        model: str,
        i: int,
        o: int,
        cc: int,
        cr: int,
        cost: int,
        n: int,
        first: float,
        last: float,
    ) -> None:
        per = self.cells.get(key)
        if per is None:
            per = self.cells[key] = {}
        c = per.get(model)
        if c is None:
            per[model] = [i, o, cc, cr, cost, n, first, last]
            return
        c[0] += i
        c[1] += o
        c[2] += cc
        c[3] += cr
        c[4] += cost
        c[5] += n
        if first < c[6]:
            c[6] = first
        if last > c[7]:
            c[7] = last

    def groups(self) -> dict[str, Acc]:
        """The groups, keys and models in order of first appearance like ``aggregate.group``
        (a tie at the same first time goes by name)."""
        out: dict[str, Acc] = {}
        for key, per in self.cells.items():
            a = Acc()
            models: dict[str, Acc] = {}
            a.models = models
            pico = 0
            items = per.items() if len(per) == 1 else sorted(per.items(), key=_by_first)
            for model, c in items:
                m = Acc()
                m.i, m.o, m.cc, m.cr, mp, m.n, m.first, m.last = c
                m.cost = mp / PICO
                models[model] = m
                a.i += m.i
                a.o += m.o
                a.cc += m.cc
                a.cr += m.cr
                a.n += m.n
                pico += mp
                if m.first < a.first:
                    a.first = m.first
                if m.last > a.last:
                    a.last = m.last
            a.cost = pico / PICO
            out[key] = a
        return dict(sorted(out.items(), key=lambda ka: (ka[1].first, ka[0])))


def _by_first(mc: tuple[str, list[Any]]) -> tuple[float, str]:
    return (mc[1][6], mc[0])


_KEY0 = operator.itemgetter(0)
_KEY8 = operator.itemgetter(8)
_KEY01 = operator.itemgetter(0, 1)

# One session of the session report (:meth:`Rollups.session_parts`): its first time, id,
# cost, token sums (input, output, cache creation, cache read), whether it is active and its
# JSON row.
SessionPart = tuple[float, str, float, tuple[int, int, int, int], bool, JSONObject]


def session_rows_of_parts(parts: Sequence[SessionPart], include_empty: bool) -> list[JSONObject]:
    """The report's rows of ``parts`` (in (first, id) order): most expensive first (ties in
    that order), 0-token sessions only with ``include_empty``."""
    rows = [(-p[2], p[5]) for p in parts if include_empty or any(p[3])]
    rows.sort(key=_KEY0)
    return [r for _, r in rows]


def session_totals_of_parts(parts: Sequence[SessionPart]) -> JSONObject:
    """The report's totals over every session of ``parts`` (0-token ones too): the cost a
    float sum in the parts' (first, id) order."""
    ti = to = tcc = tcr = 0
    tcost = 0.0
    for p in parts:
        i, o, cc, cr = p[3]
        ti += i
        to += o
        tcc += cc
        tcr += cr
        tcost += p[2]
    return totals_json(ti, to, tcc, tcr, tcost)


class Rollups:
    """Report sums kept in SQLite tables of ``conn`` (see the module docstring).

    ``records_between`` answers the rare recomputations (a removed first/last record, the
    blocks around a change). ``fresh`` is True when the tables were just created (or dropped
    for a new schema version): the caller must :meth:`rebuild` them from its records.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        records_between: RecordsBetween,
        block_seconds: float = BLOCK_SECONDS,
    ) -> None:
        self.conn = conn
        self.records_between = records_between
        self.block_seconds = block_seconds
        # Blocks are kept only when a block lasts at least an hour: a shorter one can end
        # before its first record's hour is out, and then group_blocks gives every record its
        # own block, two of them at one time. Reports group those from the records.
        self.keeps_blocks = block_seconds >= 3600
        self.fresh = self._ensure_schema()

    # ---- schema ---------------------------------------------------------------------------

    def _ensure_schema(self) -> bool:
        c = self.conn
        have = c.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='rollup_meta'"
        ).fetchone()
        if have:
            row = c.execute("SELECT value FROM rollup_meta WHERE key='schema'").fetchone()
            ok = (
                row is not None
                and row[0] == str(SCHEMA_VERSION)
                and self._meta("block_seconds") == repr(float(self.block_seconds))
                and not loose_tables(c, _TABLES)  # a schema rewritten around STRICT
            )
            if ok:
                return False
            for t in _TABLES:  # derived data only: dropped and rebuilt by the caller
                c.execute(f"DROP TABLE IF EXISTS {t}")
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                c.execute(stmt)
        c.execute(
            "INSERT OR REPLACE INTO rollup_meta VALUES ('schema', ?), ('block_seconds', ?)",
            (str(SCHEMA_VERSION), repr(float(self.block_seconds))),
        )
        return True

    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM rollup_meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def clear(self) -> None:
        """Empty every rollup table (the schema stays)."""
        for t in _TABLES[1:]:
            self.conn.execute(f"DELETE FROM {t}")

    # ---- building -------------------------------------------------------------------------

    def rebuild(self, records_by_agent: Mapping[str, Iterable[UsageRecord]]) -> None:
        """Replace every table's content by the sums of these records (bulk: after a reprice,
        a migration or a fresh schema)."""
        self.clear()
        c = self.conn
        for agent, recs in records_by_agent.items():
            recs = sorted(recs, key=_ts_key)
            cells: dict[tuple[int, str, str, str], _Sums] = {}
            projects: dict[str, int] = {}
            for r in recs:
                k = (int(r.ts // BUCKET), r.model, r.session_id, r.project)
                s = cells.get(k)
                if s is None:
                    s = cells[k] = _new_sums()
                _add(s, r, 1)
                projects[r.project] = projects.get(r.project, 0) + 1
            c.executemany(
                "INSERT INTO rollup_cell VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                ((agent, *k, *_ints(s), s[7], s[8]) for k, s in cells.items()),
            )
            c.executemany(
                "INSERT INTO rollup_project VALUES (?,?,?)",
                ((agent, p, n) for p, n in projects.items()),
            )
            self._sum_cells(agent)
            per_model: dict[tuple[str, str], _Sums] = {}
            latest: dict[str, tuple[float, str]] = {}
            for (_, model, sid, proj), s in cells.items():
                m = per_model.get((sid, model))
                if m is None:
                    per_model[(sid, model)] = list(s)
                else:
                    for j in range(7):
                        m[j] += s[j]
                    m[7], m[8] = min(m[7], s[7]), max(m[8], s[8])
                if proj and (s[8], proj) > latest.get(sid, (float("-inf"), "")):
                    latest[sid] = (s[8], proj)
            c.executemany(
                "INSERT INTO rollup_session_model VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                ((agent, sid, m, *_ints(s), s[7], s[8]) for (sid, m), s in per_model.items()),
            )
            spans: dict[str, tuple[float, float]] = {}
            for (sid, _), s in per_model.items():
                f, la = spans.get(sid, (float("inf"), float("-inf")))
                spans[sid] = (min(f, s[7]), max(la, s[8]))
            c.executemany(
                "INSERT INTO rollup_session VALUES (?,?,?,?,?,?)",
                (
                    (agent, sid, *(latest[sid][::-1] if sid in latest else ("", 0.0)), f, la)
                    for sid, (f, la) in spans.items()
                ),
            )
            self._store_blocks(agent, recs)

    def _sum_cells(self, agent: str) -> None:
        """Fill ``agent``'s per-bucket and per-model totals from its cells (a bulk build)."""
        self.conn.execute(
            "INSERT INTO rollup_bucket SELECT agent, bucket, model, sum(i), sum(o), sum(cc),"
            " sum(c1h), sum(cr), sum(cost), sum(n), min(first), max(last) FROM rollup_cell"
            " WHERE agent=? GROUP BY bucket, model",
            (agent,),
        )
        self.conn.execute(
            "INSERT INTO rollup_total SELECT agent, model, sum(i), sum(o), sum(cc), sum(c1h),"
            " sum(cr), sum(cost), sum(n), min(first), max(last) FROM rollup_bucket"
            " WHERE agent=? GROUP BY model",
            (agent,),
        )

    def _derive_sql(self, agent: str) -> None:
        """The stored sums made from ``agent``'s cells (a bulk build): per project, bucket
        and model, model, session and model, session."""
        c = self.conn
        c.execute(  # a record count per project: its cells' counts (fewer rows than records)
            "INSERT INTO rollup_project SELECT agent, project, sum(n) FROM rollup_cell"
            " WHERE agent=? GROUP BY project",
            (agent,),
        )
        self._sum_cells(agent)
        c.execute(  # (an upsert: a GROUP BY here sorts every cell)
            "INSERT INTO rollup_session_model SELECT agent, session_id, model, i, o, cc,"
            f" c1h, cr, cost, n, first, last FROM rollup_cell WHERE agent=? {_ADD_UP}",
            (agent,),
        )
        # a session's project: the cwd of its latest cell that has one (ties: the larger)
        c.execute(
            "INSERT INTO rollup_session SELECT s.agent, s.session_id, coalesce(p.project,"
            " ''), coalesce(p.t, 0.0), s.f, s.l FROM (SELECT agent, session_id, min(first)"
            " AS f, max(last) AS l FROM rollup_session_model WHERE agent=? GROUP BY"
            " session_id) AS s LEFT JOIN (SELECT session_id, project, t FROM (SELECT"
            " session_id, project, max(last) AS t, row_number() OVER (PARTITION BY"
            " session_id ORDER BY max(last) DESC, project DESC) AS rn FROM rollup_cell"
            " WHERE agent=? AND project != '' GROUP BY session_id, project) WHERE rn = 1)"
            " AS p ON p.session_id = s.session_id",
            (agent, agent),
        )

    def rebuild_sql(
        self,
        agent: str,
        source: str,
        reader: sqlite3.Connection | None = None,
        cells: CellSource = None,
        made: SpanSource = None,
    ) -> None:
        """:meth:`rebuild` with ``agent``'s records read by SQL: ``source`` is a SELECT (on
        this connection) of the columns ``ts, session, project, model, input, output, cc, c1h,
        cr, key, cost`` of every record. The sums are computed by SQLite (no Python object per
        record; the same values as :meth:`rebuild`: buckets are the floor of ``ts / BUCKET``,
        costs round half to even to picodollars, like Python's ``round``); only the blocks
        are grouped in Python, streaming the records in (ts, key) order.

        ``reader``: another connection to the same database whose committed content holds
        these records and their ``ts`` index (a private build, see
        :meth:`~tokmon.core.ledger.LedgerDB.merge_staged`): the blocks' spans and costs are
        read through it by a thread while this connection builds the cells (SQLite runs
        without the GIL: on two cores, the two take the time of the longer).

        ``cells``: a cold build's cells (``ledger.Stage.cell_source``: its rows summed as they
        came, the rows its dedup deleted taken back out, :mod:`tokmon.core.cellsums`): the
        same cells, without sorting every record. (Or a function that gives them or None.)

        ``made``: a cold build's blocks' spans made from its rows (``ledger.Stage.block_spans``,
        :mod:`tokmon.core.blockspans`): what the reader would read, read from nothing."""
        self.clear()
        c = self.conn
        spans: list[_Span] | None = None
        got: list[list[_Span] | BaseException] = []
        thread = None
        if reader is not None and self.keeps_blocks:
            thread, got = self._spans_thread(reader, source)
        elif made is not None and self.keeps_blocks:
            spans = made(self.block_seconds, self.block_seconds % BUCKET == 0)
        try:
            if callable(cells):
                cells = cells()
            # (the cells' indexes are kept up cell by cell: made after the cells by a sort,
            # their pages would be full, and the first new cells of the appends that follow
            # would split them up the tree: ~7 more pages a save; docs/performance.md,
            # eleventh session)
            if cells is None:
                c.execute(
                    "INSERT INTO rollup_cell SELECT ?, b, model, session, project, sum(i),"
                    " sum(o), sum(cc), sum(c1h), sum(cr), sum(pico), sum(n), min(first),"
                    f" max(last) FROM ({_cell_rows(source)}) GROUP BY b, model, session, project",
                    (agent,),
                )
                self._derive_sql(agent)
            else:  # a build's cells, made as its rows came: in key order, 64 a statement
                sums, n = cells
                insert_batches(
                    c, "INSERT INTO rollup_cell VALUES ", 14, n, lambda i, k: sums.args(agent, i, k)
                )
                if sums.derive():  # ... and the sums made from them, the same way
                    for table, width in DERIVED.items():

                        def rows(i: int, k: int, t: str = table) -> list[Any]:
                            return sums.table_args(t, agent, i, k)

                        insert_batches(
                            c, f"INSERT INTO {table} VALUES ", width, sums.count(table), rows
                        )
                else:  # (a sum past 64 bits: SQLite's sum() says so)
                    self._derive_sql(agent)
        finally:
            if thread is not None:
                thread.join()
        if got:
            if isinstance(got[0], BaseException):
                raise got[0]
            spans = got[0]
        self._store_blocks_sql(agent, source, spans, cells[0] if isinstance(cells, tuple) else None)

    def _spans_thread(self, reader: sqlite3.Connection, source: str) -> tuple[Any, list[Any]]:
        """A started thread that reads :meth:`_block_spans` on ``reader``, and the list it
        puts the spans (or the exception it met) in."""
        import threading

        got: list[list[_Span] | BaseException] = []

        def read() -> None:
            try:
                got.append(self._block_spans(reader, source))
            except BaseException as exc:  # raised again by the caller's thread
                got.append(exc)

        thread = threading.Thread(target=read, name="tokmon-block-spans", daemon=True)
        thread.start()
        return thread, got

    def _block_spans(self, conn: sqlite3.Connection, source: str) -> list[_Span]:
        """The blocks of the records of ``source``, read on ``conn`` from the records alone
        (see :meth:`_store_blocks_sql`): per block its first time, start, the next block's
        first time (None: the last), whether a record sits exactly on its end (when
        ``block_seconds`` is a multiple of BUCKET), its record count and its costs summed in
        (ts, key) order (one by one, as :func:`~tokmon.core.blocks.make_block` does, not
        compensated), from one pass over the records (no list of costs held: ~1 MB of floats
        at 500 MB)."""
        bs = self.block_seconds
        aligned = bs % BUCKET == 0
        out: list[_Span] = []
        # one pass over the records in (ts, key) order: a block ends before the first record
        # with ts - start > bs (the same float test as group_blocks)
        first = start = end = cost = 0.0
        n = 0
        edge = False
        for ts, c in conn.execute(f"SELECT ts, cost FROM ({source}) ORDER BY ts, key"):
            if n and ts - start > bs:
                out.append((first, start, ts, aligned and edge, n, cost))
                n = 0
            if not n:
                first = ts
                start = float(int(first // 3600) * 3600)
                end = start + bs
                cost = 0.0
                edge = False
            if ts == end:
                edge = True
            cost += c  # in order, not compensated (as sum() of floats is from Python 3.12)
            n += 1
        if n:
            out.append((first, start, None, aligned and edge, n, cost))
        return out

    def _store_blocks_sql(
        self,
        agent: str,
        source: str,
        spans: list[_Span] | None = None,
        sums: Sums | None = None,
    ) -> None:
        """Insert the blocks of the records of ``source`` (see :meth:`rebuild_sql`), a few
        queries per block instead of Python work per record. A block's records are those
        from its first up to its start (the hour of the first) plus ``block_seconds``: in
        that window no gap can exceed ``block_seconds``, so the next block starts at the
        first record after it (``group_blocks``' rule). Costs are summed in (ts, key)
        order, as :func:`~tokmon.core.blocks.make_block` does.

        When the block's end falls on a bucket edge (``block_seconds`` a multiple of
        BUCKET) and no record sits exactly on an edge, a block is a run of whole buckets:
        its per-model sums come from ``rollup_cell`` (built first), and only its costs are
        read record by record. ``spans``: what :meth:`_block_spans` read (on another
        connection, meanwhile); else it is read here."""
        if not self.keeps_blocks:
            return
        c = self.conn
        bs = self.block_seconds
        aligned = bs % BUCKET == 0
        if spans is None:
            spans = self._block_spans(c, source)
        out: list[tuple[Any, ...]] = []
        mout: list[tuple[Any, ...]] = []
        edge_hit = False  # a record exactly on the previous block's end
        for first, start, nxt, edge, n, cost in spans:
            where, args = _span_where(first, nxt)
            by_cells = aligned and not edge_hit and not edge
            edge_hit = edge
            per: list[Any] = []
            lo, hi = int(first // BUCKET), int((start + bs) // BUCKET)
            got = sums.block_sums(lo, hi) if by_cells and sums is not None else None
            if got is not None:  # (a build's cells, in C: what the query below reads)
                per = got
            elif by_cells:  # model, i, o, cc, c1h, cr, cost, n, last, first
                per = c.execute(
                    "SELECT model, sum(i), sum(o), sum(cc), sum(c1h), sum(cr), sum(cost),"
                    " sum(n), max(last), min(first) FROM rollup_cell WHERE agent=?"
                    " AND bucket >= ? AND bucket < ? GROUP BY model",
                    (agent, lo, hi),
                ).fetchall()
            # models in order of first appearance: by their first times when those differ
            # (else by the records, whose (ts, key) order breaks the tie)
            firsts = sorted((p[9], p[0]) for p in per)
            ordered = bool(per) and len({f for f, _ in firsts}) == len(firsts)
            if not per or sum(p[7] for p in per) != n:
                per = c.execute(
                    f"SELECT model, sum(input), sum(output), sum(cc), sum(c1h), sum(cr),"
                    f" sum({_PICO_SQL}), count(*), max(ts), min(ts) FROM ({source})"
                    f" WHERE {where} GROUP BY model",
                    args,
                ).fetchall()
                ordered = False
            if not ordered:
                sql = f"SELECT model FROM ({source}) WHERE {where} ORDER BY ts, key"
                ms = [r[0] for r in c.execute(sql, args)]
                models = [m for m in dict.fromkeys(ms) if m != SYNTHETIC_MODEL]
            else:
                models = [m for _, m in firsts if m != SYNTHETIC_MODEL]
            out.append(
                (
                    agent,
                    first,
                    start,
                    max(p[8] for p in per),
                    n,
                    sum(p[1] for p in per),
                    sum(p[2] for p in per),
                    sum(p[3] for p in per),
                    sum(p[5] for p in per),
                    cost,
                    json.dumps(models),
                )
            )
            mout += [(agent, first, *p[:8]) for p in per]
        c.executemany("INSERT INTO rollup_block VALUES (?,?,?,?,?,?,?,?,?,?,?)", out)
        c.executemany("INSERT INTO rollup_block_model VALUES (?,?,?,?,?,?,?,?,?,?)", mout)

    def apply(self, agent: str, deltas: Iterable[Delta]) -> None:
        """Apply record changes of ``agent``: each ``(replaced, new)`` removes ``replaced``
        (None: nothing) and adds ``new`` (None: nothing). Call after the caller's store holds
        the new records (``records_between`` must answer the state after the change)."""
        cells: dict[tuple[int, str, str, str], _Sums] = {}
        # net removals per time (removed minus added there): a first/last time whose count
        # did not drop is still there, one that did may be gone
        removed: dict[tuple[int, str, str, str], dict[float, int]] = {}
        projects: dict[str, int] = {}
        sm: dict[tuple[str, str], _Sums] = {}  # per (session, model)
        sm_removed: dict[tuple[str, str], dict[float, int]] = {}
        proj_added: dict[str, tuple[float, str]] = {}  # latest (ts, cwd) added per session
        proj_removed: dict[str, dict[tuple[float, str], int]] = {}
        tm: dict[str, _Sums] = {}  # per model (all-time totals)
        tm_removed: dict[str, dict[float, int]] = {}
        touched: list[float] = []
        pairs = _compose(deltas)
        for pair in pairs:
            for sign, r in ((-1, pair[0]), (1, pair[1])):
                if r is None:
                    continue
                sid = r.session_id
                k = (int(r.ts // BUCKET), r.model, sid, r.project)
                s = cells.get(k)
                if s is None:
                    s = cells[k] = _new_sums()
                _add(s, r, sign)
                s = sm.get((sid, r.model))
                if s is None:
                    s = sm[(sid, r.model)] = _new_sums()
                _add(s, r, sign)
                s = tm.get(r.model)
                if s is None:
                    s = tm[r.model] = _new_sums()
                _add(s, r, sign)
                _count(removed, k, r.ts, -sign)
                _count(tm_removed, r.model, r.ts, -sign)
                _count(sm_removed, (sid, r.model), r.ts, -sign)
                if r.project:
                    _count(proj_removed, sid, (r.ts, r.project), -sign)
                    if sign > 0 and (r.ts, r.project) > proj_added.get(sid, _NO_PROJECT):
                        proj_added[sid] = (r.ts, r.project)
                projects[r.project] = projects.get(r.project, 0) + sign
                touched.append(r.ts)
        if not cells:
            return
        c = self.conn
        buckets: set[tuple[int, str]] = set()
        for k, s in cells.items():
            buckets.add((k[0], k[1]))
            self._merge(
                "rollup_cell", _CELL_KEY, (agent, *k), s, removed.get(k),
                lambda k=k: self._cell_span(agent, k),  # type: ignore[misc]
            )  # fmt: skip
        for b, model in buckets:
            c.execute(
                "DELETE FROM rollup_bucket WHERE agent=? AND bucket=? AND model=?",
                (agent, b, model),
            )
            c.execute(
                "INSERT INTO rollup_bucket SELECT agent, bucket, model, sum(i), sum(o), sum(cc),"
                " sum(c1h), sum(cr), sum(cost), sum(n), min(first), max(last) FROM rollup_cell"
                " WHERE agent=? AND bucket=? AND model=? GROUP BY agent, bucket, model",
                (agent, b, model),
            )
        for m, s in tm.items():
            self._merge(
                "rollup_total", ("agent", "model"), (agent, m), s, tm_removed.get(m),
                lambda m=m: c.execute(  # type: ignore[misc]
                    "SELECT min(first), max(last) FROM rollup_bucket WHERE agent=? AND model=?",
                    (agent, m),
                ).fetchone(),
            )  # fmt: skip
        for p, dn in projects.items():
            if dn:
                c.execute(
                    "INSERT INTO rollup_project VALUES (?,?,?) ON CONFLICT (agent, project)"
                    " DO UPDATE SET n = n + excluded.n",
                    (agent, p, dn),
                )
        c.execute("DELETE FROM rollup_project WHERE agent=? AND n<=0", (agent,))
        self._update_sessions(agent, sm, sm_removed, proj_added, proj_removed)
        if not self.keeps_blocks:
            return
        if not any(r is not None for r, _ in pairs) and self._append_blocks(
            agent, [r for _, r in pairs if r is not None]
        ):
            return
        touched.sort()
        lo = hi = touched[0]
        for t in touched[1:]:  # far apart changes regroup their own blocks
            if t - hi > 2 * self.block_seconds:
                self._update_blocks(agent, lo, hi)
                lo = t
            hi = t
        self._update_blocks(agent, lo, hi)

    def _update_sessions(
        self,
        agent: str,
        sm: dict[tuple[str, str], _Sums],
        sm_removed: dict[tuple[str, str], dict[float, int]],
        proj_added: dict[str, tuple[float, str]],
        proj_removed: dict[str, dict[tuple[float, str], int]],
    ) -> None:
        """Add net per-(session, model) sums; a first/last time or a session's project that
        may have been removed is recomputed from the session's cells."""
        c = self.conn
        for (sid, model), s in sm.items():
            self._merge(
                "rollup_session_model", ("agent", "session_id", "model"), (agent, sid, model), s,
                sm_removed.get((sid, model)),
                lambda sid=sid, model=model: c.execute(  # type: ignore[misc]
                    "SELECT min(first), max(last) FROM rollup_cell"
                    " WHERE agent=? AND session_id=? AND model=?",
                    (agent, sid, model),
                ).fetchone(),
            )  # fmt: skip
        for sid in {sid for sid, _ in sm}:
            span = c.execute(
                "SELECT min(first), max(last) FROM rollup_session_model"
                " WHERE agent=? AND session_id=?",
                (agent, sid),
            ).fetchone()
            if span is None or span[0] is None:
                c.execute("DELETE FROM rollup_session WHERE agent=? AND session_id=?", (agent, sid))
                continue
            row = c.execute(
                "SELECT project_ts, project FROM rollup_session WHERE agent=? AND session_id=?",
                (agent, sid),
            ).fetchone()
            best = (row[0], row[1]) if row is not None and row[1] else _NO_PROJECT
            best = max(best, proj_added.get(sid, _NO_PROJECT))
            if proj_removed.get(sid, {}).get(best, 0) > 0:
                found = c.execute(
                    "SELECT max(last) AS t, project FROM rollup_cell WHERE agent=?"
                    " AND session_id=? AND project!='' GROUP BY project"
                    " ORDER BY t DESC, project DESC LIMIT 1",
                    (agent, sid),
                ).fetchone()
                best = (found[0], found[1]) if found is not None else _NO_PROJECT
            project_ts, project = best if best[1] else (0.0, "")
            c.execute(
                "INSERT OR REPLACE INTO rollup_session VALUES (?,?,?,?,?,?)",
                (agent, sid, project, project_ts, *span),
            )

    def _merge(
        self,
        table: str,
        cols: tuple[str, ...],
        key: tuple[object, ...],
        s: _Sums,
        gone: dict[float, int] | None,
        span: Callable[[], tuple[float, float]],
    ) -> None:
        """Add net sums ``s`` to one row; ``gone``: net removals per time (a first/last time
        with some is recomputed by ``span()``)."""
        c = self.conn
        where = " AND ".join(f"{col}=?" for col in cols)
        row = c.execute(
            f"SELECT i, o, cc, c1h, cr, cost, n, first, last FROM {table} WHERE {where}", key
        ).fetchone()
        old = list(row) if row is not None else _new_sums()
        new = [int(old[j] + s[j]) for j in range(7)]
        if new[6] <= 0:
            c.execute(f"DELETE FROM {table} WHERE {where}", key)
            return
        first, last = min(old[7], s[7]), max(old[8], s[8])
        stale = gone is not None and (gone.get(first, 0) > 0 or gone.get(last, 0) > 0)
        if stale:
            first, last = span()
        marks = ",".join("?" * (len(cols) + 9))
        c.execute(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", (*key, *new, first, last))

    def _cell_span(self, agent: str, k: tuple[int, str, str, str]) -> tuple[float, float]:
        b, model, sid, project = k
        first, last = float("inf"), float("-inf")
        for r in self.records_between(agent, b * BUCKET, (b + 1) * BUCKET, sid):
            if r.model == model and r.project == project and r.session_id == sid:
                first, last = min(first, r.ts), max(last, r.ts)
        return first, last

    # ---- blocks ---------------------------------------------------------------------------

    def _append_blocks(self, agent: str, added: list[UsageRecord]) -> bool:
        """Only new records, all after the last block's last one (the live case): extend the
        last block or open new ones without reading any record back. False if not so."""
        c = self.conn
        bs = self.block_seconds
        row = c.execute(
            "SELECT first, start, last, n, i, o, cc, cr, cost, models FROM rollup_block"
            " WHERE agent=? ORDER BY first DESC LIMIT 1",
            (agent,),
        ).fetchone()
        added.sort(key=_ts_key)
        if row is None:  # the agent's first records
            self._store_blocks(agent, added)
            return True
        if added[0].ts <= row[2]:
            return False
        cur: list[Any] = [*row[:9], json.loads(row[9])]
        per: dict[tuple[float, str], _Sums] = {}
        done: list[list[Any]] = []
        for r in added:
            if r.ts - cur[1] > bs or r.ts - cur[2] > bs:
                done.append(cur)
                cur = [r.ts, float(int(r.ts // 3600) * 3600), r.ts, 0, 0, 0, 0, 0, 0.0, []]
            cur[2] = r.ts
            cur[3] += 1
            cur[4] += r.input_tokens
            cur[5] += r.output_tokens
            cur[6] += r.cache_creation_tokens
            cur[7] += r.cache_read_tokens
            cur[8] += r.cost
            if r.model not in cur[9] and r.model != SYNTHETIC_MODEL:
                cur[9].append(r.model)
            s = per.get((cur[0], r.model))
            if s is None:
                s = per[(cur[0], r.model)] = _new_sums()
            _add(s, r, 1)
        c.executemany(  # the old last block (same key) grown, and the new ones
            "INSERT OR REPLACE INTO rollup_block VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            ((agent, *b[:9], json.dumps(b[9])) for b in (*done, cur)),
        )
        c.executemany(
            "INSERT INTO rollup_block_model VALUES (?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (agent, first, model) DO UPDATE SET i=i+excluded.i, o=o+excluded.o,"
            " cc=cc+excluded.cc, c1h=c1h+excluded.c1h, cr=cr+excluded.cr,"
            " cost=cost+excluded.cost, n=n+excluded.n",
            ((agent, first, m, *_ints(s)) for (first, m), s in per.items()),
        )
        return True

    def _store_blocks(self, agent: str, recs: Sequence[UsageRecord]) -> None:
        """Insert the blocks of time-sorted ``recs``."""
        if not self.keeps_blocks:
            return
        self._store_block_rows(
            agent,
            (
                (
                    r.ts,
                    r.model,
                    r.input_tokens,
                    r.output_tokens,
                    r.cache_creation_tokens,
                    r.cache_1h_tokens,
                    r.cache_read_tokens,
                    r.cost,
                )
                for r in recs
            ),
        )

    def _store_block_rows(self, agent: str, rows: Iterable[tuple[Any, ...]]) -> None:
        """Insert the blocks of ``(ts, model, i, o, cc, c1h, cr, cost)`` rows in (ts, key)
        order, one block in memory at a time (:func:`~tokmon.core.blocks.group_blocks`'
        rule; costs summed in row order, as :func:`~tokmon.core.blocks.make_block` does)."""
        bs = self.block_seconds
        out: list[tuple[Any, ...]] = []
        mout: list[tuple[Any, ...]] = []
        conn = self.conn
        start = prev = first = 0.0
        n = i = o = cc = cr = 0
        cost = 0.0
        models: list[str] = []
        per: dict[str, list[Any]] = {}

        def flush() -> None:
            out.append((agent, first, start, prev, n, i, o, cc, cr, cost, json.dumps(models)))
            mout.extend((agent, first, m, *v[:6], v[6]) for m, v in per.items())
            if len(out) >= 512:
                conn.executemany("INSERT INTO rollup_block VALUES (?,?,?,?,?,?,?,?,?,?,?)", out)
                conn.executemany(
                    "INSERT INTO rollup_block_model VALUES (?,?,?,?,?,?,?,?,?,?)", mout
                )
                out.clear()
                mout.clear()

        for ts, model, ri, ro, rcc, rc1h, rcr, rcost in rows:
            if n and (ts - start > bs or ts - prev > bs):
                flush()
                n = 0
            if not n:
                start, first = float(int(ts // 3600) * 3600), ts
                i = o = cc = cr = 0
                cost = 0.0
                models = []
                per = {}
            prev = ts
            n += 1
            i += ri
            o += ro
            cc += rcc
            cr += rcr
            cost += rcost
            v = per.get(model)
            if v is None:  # i, o, cc, c1h, cr, cost (picodollars), n
                per[model] = [ri, ro, rcc, rc1h, rcr, _pico(rcost), 1]
                if model != SYNTHETIC_MODEL:
                    models.append(model)
            else:
                v[0] += ri
                v[1] += ro
                v[2] += rcc
                v[3] += rc1h
                v[4] += rcr
                v[5] += _pico(rcost)
                v[6] += 1
        if n:
            flush()
        conn.executemany("INSERT INTO rollup_block VALUES (?,?,?,?,?,?,?,?,?,?,?)", out)
        conn.executemany("INSERT INTO rollup_block_model VALUES (?,?,?,?,?,?,?,?,?,?)", mout)

    def _update_blocks(self, agent: str, tmin: float, tmax: float) -> None:
        """Regroup the blocks around changes at ``tmin..tmax``: from the last block whose first
        record is older than ``tmin`` until a stored block newer than ``tmax`` still starts a
        block of its own (every later block is then unchanged)."""
        c = self.conn
        bs = self.block_seconds
        row = c.execute(
            "SELECT first FROM rollup_block WHERE agent=? AND first<? ORDER BY first DESC LIMIT 1",
            (agent, tmin),
        ).fetchone()
        t0 = row[0] if row is not None else TS_MIN
        later = c.execute(
            "SELECT first FROM rollup_block WHERE agent=? AND first>? ORDER BY first",
            (agent, tmax),
        )
        recs: list[UsageRecord] = []
        lo = t0
        stop: float | None = None
        for (nxt,) in later:
            recs += self.records_between(agent, lo, nxt)
            lo = nxt
            recs.sort(key=_ts_key)
            if not recs:
                stop = nxt
                break
            groups = group_blocks(recs, bs)
            start, entries = groups[-1]
            if nxt - start > bs or nxt - entries[-1].ts > bs:
                stop = nxt
                break
        later.close()
        if stop is None:
            recs += self.records_between(agent, lo, TS_MAX)
            recs.sort(key=_ts_key)
        hi = TS_MAX if stop is None else stop
        c.execute(
            "DELETE FROM rollup_block WHERE agent=? AND first>=? AND first<?", (agent, t0, hi)
        )
        c.execute(
            "DELETE FROM rollup_block_model WHERE agent=? AND first>=? AND first<?",
            (agent, t0, hi),
        )
        self._store_blocks(agent, recs)

    # ---- queries --------------------------------------------------------------------------

    def agents(self) -> list[str]:
        """Agents with records, sorted."""
        rows = self.conn.execute("SELECT DISTINCT agent FROM rollup_project ORDER BY agent")
        return [r[0] for r in rows]

    def recent_projects(self, agent: str) -> list[str]:
        """The projects (cwd) of ``agent``'s sessions, most recently active first (a session's
        project is the cwd of its latest record that has one)."""
        rows = self.conn.execute(
            "SELECT project FROM rollup_session WHERE agent=? AND project != ''"
            " GROUP BY project ORDER BY max(last) DESC, project",
            (agent,),
        )
        return [r[0] for r in rows]

    def projects(self, agent: str) -> list[str]:
        """Every record project (cwd) of ``agent``."""
        rows = self.conn.execute("SELECT project FROM rollup_project WHERE agent=?", (agent,))
        return [r[0] for r in rows]

    def periods(
        self,
        kind: str,
        agent: str,
        tz: str | None = None,
        since: str | None = None,
        until: str | None = None,
        project: str | None = None,
        session_id: str | None = None,
        start_of_week: str | None = None,
    ) -> dict[str, Acc]:
        """``aggregate.group`` of the filtered records by day, week or month of ``tz``
        (``kind``: daily / weekly / monthly); filters as ``Queries._filtered``."""
        keyer = DateKeyer(resolve_tz(tz))
        if kind == "daily":
            key: Callable[[float], str] = keyer.day
        elif kind == "monthly":
            key = keyer.month
        elif kind == "weekly":
            sow = WEEKDAYS.index(start_of_week or "sunday")
            key = lambda ts: keyer.week(ts, sow)  # noqa: E731
        else:
            raise ValueError(f"unknown period {kind!r}")
        lo = parse_day(since) if since else "0000-00-00"
        hi = parse_day(until) if until else "9999-99-99"
        table, where, args = self._source(agent, project, session_id)
        if table is None:
            return {}
        b0, b1 = _bucket_range(since, until)
        utc_days = [  # the days with data (a sparse or poisoned history plans only those)
            r[0]
            for r in self.conn.execute(
                f"SELECT DISTINCT t.bucket / {86400 // BUCKET} FROM {table} WHERE {where}"
                " AND t.bucket>=? AND t.bucket<?",
                (*args, b0, b1),
            )
        ]
        if not utc_days:
            return {}
        regular, irregular = _plan(keyer, utc_days)
        fold = _Fold()
        days = [(d, r0, r1) for d, r0, r1 in regular if lo <= d <= hi]
        sums = "sum(i), sum(o), sum(cc), sum(cr), sum(cost), sum(n), min(first), max(last)"
        for j in range(0, len(days), 300):  # one indexed range scan per day, summed by SQLite
            part = days[j : j + 300]
            keys = [key(r0 * BUCKET) for _, r0, _ in part]
            values = ",".join("(?,?,?)" for _ in part)
            flat = [v for x, (_, r0, r1) in enumerate(part) for v in (x, r0, r1)]
            for x, *row in self.conn.execute(
                f"WITH k(x, b0, b1) AS (VALUES {values}) SELECT k.x, t.model, {sums}"
                f" FROM k CROSS JOIN {table} WHERE {where}"
                " AND t.bucket>=k.b0 AND t.bucket<k.b1 GROUP BY k.x, t.model",
                (*flat, *args),
            ):
                fold.add(keys[x], *row)
        day_ok = _day_filter(keyer, since, until)
        for s0, s1 in irregular:  # days around a zone change: bucket by bucket
            for b, *row in self.conn.execute(
                f"SELECT t.bucket, t.model, {sums} FROM {table} WHERE {where}"
                " AND t.bucket>=? AND t.bucket<? GROUP BY t.bucket, t.model",
                (*args, s0, s1),
            ):
                if day_ok(b):
                    fold.add(key(b * BUCKET), *row)
        return fold.groups()

    def _source(
        self, agent: str, project: str | None, session_id: str | None
    ) -> tuple[str | None, str, list[object]]:
        """The table (aliased ``t``, with the index to use), condition and arguments of one
        agent's (filtered) sums; no table when no project matches."""
        t = "t."
        if not project and not session_id:
            return "rollup_bucket AS t", f"{t}agent=?", [agent]
        index = "rollup_cell_session" if session_id else "rollup_cell_project"
        where = [f"{t}agent=?"]
        args: list[object] = [agent]
        if session_id:
            where.append(f"{t}session_id=?")
            args.append(session_id)
        if project:
            ps = self._matching_projects(agent, project)
            if not ps:
                return None, "", []
            where.append(f"{t}project IN ({','.join('?' * len(ps))})")
            args += ps
        return f"rollup_cell AS t INDEXED BY {index}", " AND ".join(where), args

    def _matching_projects(self, agent: str, wanted: str) -> list[str]:
        return [p for p in self.projects(agent) if p == wanted or project_name(p) == wanted]

    def daily(self, agent: str, tz: str | None = None, **filters: str | None) -> dict[str, Acc]:
        """Groups per local day (``YYYY-MM-DD``)."""
        return self.periods("daily", agent, tz, **filters)

    def weekly(self, agent: str, tz: str | None = None, **filters: str | None) -> dict[str, Acc]:
        """Groups per week (its first day; ``start_of_week`` filter key, default sunday)."""
        return self.periods("weekly", agent, tz, **filters)

    def monthly(self, agent: str, tz: str | None = None, **filters: str | None) -> dict[str, Acc]:
        """Groups per local month (``YYYY-MM``)."""
        return self.periods("monthly", agent, tz, **filters)

    def sessions(
        self,
        agent: str,
        tz: str | None = None,
        since: str | None = None,
        until: str | None = None,
        project: str | None = None,
        only: Iterable[str] | None = None,
    ) -> tuple[dict[str, Acc], dict[str, str]]:
        """Per-session groups and each session's project, as ``aggregate.session_rows`` builds
        them from the filtered records (feed both to ``aggregate.session_rows_of``); ``only``:
        just these sessions, whole (no other filter then)."""
        fold = _Fold()
        projects: dict[str, str] = {}
        c = self.conn
        if only is not None:
            for sid in set(only):
                for row in c.execute(
                    "SELECT session_id, model, i, o, cc, cr, cost, n, first, last"
                    " FROM rollup_session_model WHERE agent=? AND session_id=?",
                    (agent, sid),
                ):
                    fold.add(*row)
                for (proj,) in c.execute(
                    "SELECT project FROM rollup_session WHERE agent=? AND session_id=?"
                    " AND project!=''",
                    (agent, sid),
                ):
                    projects[sid] = proj
            return fold.groups(), projects
        if not since and not until and not project:
            for row in c.execute(
                "SELECT session_id, model, i, o, cc, cr, cost, n, first, last"
                " FROM rollup_session_model WHERE agent=?",
                (agent,),
            ):
                fold.add(*row)
            for sid, proj in c.execute(
                "SELECT session_id, project FROM rollup_session WHERE agent=? AND project!=''",
                (agent,),
            ):
                projects[sid] = proj
            return fold.groups(), projects
        keyer = DateKeyer(resolve_tz(tz))
        day_ok = _day_filter(keyer, since, until)
        b0, b1 = _bucket_range(since, until)
        where = ["agent=?", "bucket>=?", "bucket<?"]
        args: list[object] = [agent, b0, b1]
        if project:
            ps = self._matching_projects(agent, project)
            if not ps:
                return {}, {}
            where.append(f"project IN ({','.join('?' * len(ps))})")
            args += ps
        latest: dict[str, tuple[float, str]] = {}
        for b, sid, model, proj, i, o, cc, cr, cost, n, first, last in c.execute(
            "SELECT bucket, session_id, model, project, i, o, cc, cr, cost, n, first, last"
            f" FROM rollup_cell WHERE {' AND '.join(where)}",
            args,
        ):
            if not day_ok(b):
                continue
            fold.add(sid, model, i, o, cc, cr, cost, n, first, last)
            if proj and (last, proj) > latest.get(sid, (float("-inf"), "")):
                latest[sid] = (last, proj)
        return fold.groups(), {sid: p for sid, (_, p) in latest.items()}

    def session_json(
        self,
        agent: str,
        titles: Mapping[str, str],
        now: float,
        active_seconds: float,
        include_empty: bool = False,
        extra: Mapping[str, JSON] | None = None,
    ) -> tuple[list[JSONObject], JSONObject]:
        """The unfiltered session report's JSON rows (most expensive first; 0-token sessions
        only with ``include_empty``) and totals, straight from ``rollup_session_model``: the
        very values of ``aggregate.session_rows_of(*self.sessions(agent), ...)`` serialised
        (same order, same float sums), without the groups and typed rows in between.
        ``extra``: keys added to every row after its own (a caller's defaults)."""
        parts = self.session_parts(agent, titles, now, active_seconds, extra)
        return session_rows_of_parts(parts, include_empty), session_totals_of_parts(parts)

    def session_parts(
        self,
        agent: str,
        titles: Mapping[str, str],
        now: float,
        active_seconds: float,
        extra: Mapping[str, JSON] | None = None,
        only: Iterable[str] | None = None,
    ) -> list[SessionPart]:
        """Each session's piece of :meth:`session_json` in the sessions' (first, id) order
        (which the totals' float sum follows): a :data:`SessionPart`. ``only``: just these
        sessions (an id without stored sums is left out)."""
        c = self.conn
        # each session's project, in the sessions' (first, id) order (the order _Fold.groups
        # gives them): rollup_session holds the span of its rows in rollup_session_model,
        # written in the same transaction
        if only is None:
            order: dict[str, str] = dict(
                c.execute(
                    "SELECT session_id, project FROM rollup_session WHERE agent=?"
                    " ORDER BY first, session_id",
                    (agent,),
                )
            )
            # the model rows in their primary key's order (no sort: grouped by session, each
            # session's models by name); a session's models are put in (first, name) order
            cur: Iterable[Any] = c.execute(
                "SELECT session_id, model, i, o, cc, cr, cost, n, first, last"
                " FROM rollup_session_model WHERE agent=?",
                (agent,),
            )
        else:
            ids = sorted(set(only))
            pairs: list[tuple[float, str, str]] = []
            model_rows: list[Any] = []
            for k in range(0, len(ids), 500):
                part = ids[k : k + 500]
                marks = ",".join("?" * len(part))
                pairs += c.execute(
                    "SELECT first, session_id, project FROM rollup_session WHERE agent=?"
                    f" AND session_id IN ({marks})",
                    (agent, *part),
                ).fetchall()
                model_rows += c.execute(
                    "SELECT session_id, model, i, o, cc, cr, cost, n, first, last"
                    f" FROM rollup_session_model WHERE agent=? AND session_id IN ({marks})"
                    " ORDER BY session_id, model",
                    (agent, *part),
                ).fetchall()
            pairs.sort()
            order = {sid: proj for _, sid, proj in pairs}
            cur = model_rows
        made: dict[str, SessionPart] = {}
        names: dict[str, str] = {}  # project path -> its name (a few distinct ones)
        synthetic = SYNTHETIC_MODEL
        for sid, group in itertools.groupby(cur, _KEY0):
            ms = list(group)
            if len(ms) == 1:
                _, model, si, so, scc, scr, pico, sn, first, last = ms[0]
                cost = pico / PICO
                if model == synthetic:
                    used: list[JSON] = []
                    bds: list[JSON] = []
                else:
                    used = [model]
                    bds = [breakdown_json(model, si, so, scc, scr, cost)]
            else:
                ms.sort(key=_KEY8)  # by first time (stable: ties keep the name order)
                si = so = scc = scr = sn = pico = 0
                first, last = ms[0][8], ms[0][9]
                used = []
                costed: list[tuple[float, JSONObject]] = []
                for _, model, i, o, cc, cr, mp, n, _f, mlast in ms:
                    si += i
                    so += o
                    scc += cc
                    scr += cr
                    sn += n
                    pico += mp
                    if mlast > last:
                        last = mlast
                    if model != synthetic:
                        used.append(model)
                        mc = mp / PICO
                        costed.append((-mc, breakdown_json(model, i, o, cc, cr, mc)))
                if len(costed) > 1:
                    costed.sort(key=_KEY0)  # most expensive first (stable: ties keep the order)
                bds = [b for _, b in costed]
                cost = pico / PICO
            proj = order.get(sid, "")
            pname = names.get(proj)
            if pname is None:
                pname = names[proj] = project_name(proj)
            active = now - last < active_seconds
            row = session_row_json(
                sid,
                None,
                proj,
                si,
                so,
                scc,
                scr,
                cost,
                first,
                last,
                used,
                bds,
                pname,
                sn,
                titles.get(sid),
                active,
            )
            if extra:
                row.update(extra)
            made[sid] = (first, sid, cost, (si, so, scc, scr), active, row)
        seen = [made.pop(sid) for sid in order if sid in made]
        if made:  # not in rollup_session (never so when both are kept together): by (first, id)
            seen += sorted(made.values(), key=_KEY01)
        return seen

    def active_until(self, agent: str, now: float, active_seconds: float) -> float:
        """The first time after ``now`` at which a session :meth:`session_json` shows as
        active at ``now`` (``now - last < active_seconds``) would not be (inf: none is); the
        others stay inactive as the clock moves on, until their sums change."""
        ends = [
            last + active_seconds
            for (last,) in self.conn.execute(
                "SELECT last FROM rollup_session WHERE agent=? AND last>?",
                (agent, now - active_seconds - 60.0),
            )
            if now - last < active_seconds
        ]
        return min(ends, default=math.inf)

    def active_sessions(self, agent: str, lo: float, hi: float) -> set[str]:
        """Sessions with a record at ``lo < ts <= hi`` (the summary's recent sessions: ``lo``
        is now minus the block length, ``hi`` now plus the future slack)."""
        if hi - lo < BUCKET:  # a cell could then straddle the window with nothing inside
            return {
                r.session_id for r in self.records_between(agent, lo, hi + 1) if lo < r.ts <= hi
            }
        # a cell (under 15 minutes wide) with last > lo and first <= hi has a record inside
        rows = self.conn.execute(
            "SELECT DISTINCT session_id FROM rollup_cell WHERE agent=? AND bucket>=? AND bucket<=?"
            " AND last>? AND first<=?",
            (agent, int(lo // BUCKET), int(hi // BUCKET), lo, hi),
        )
        return {r[0] for r in rows}

    def blocks(self, agent: str, now: float, since: float | None = None) -> list[Block]:
        """Every block of ``agent`` with the gaps between, as ``compute_blocks`` makes them;
        ``since``: only the blocks whose last record is later (the live ones)."""
        from tokmon.core.model_blocks import TokenCounts

        bs = self.block_seconds
        out: list[Block] = []
        prev_last: float | None = None
        where, args = (
            ("agent=?", (agent,)) if since is None else ("agent=? AND last>?", (agent, since))
        )
        for first, start, last, n, i, o, cc, cr, cost, models in self.conn.execute(
            "SELECT first, start, last, n, i, o, cc, cr, cost, models FROM rollup_block"
            f" WHERE {where} ORDER BY first",
            args,
        ):
            if prev_last is not None and first - prev_last > bs:
                out.append(make_gap(prev_last, first, bs))
            out.append(
                _block(
                    start,
                    first,
                    last,
                    n,
                    TokenCounts(i, o, cc, cr),
                    cost,
                    json.loads(models),
                    now,
                    bs,
                )
            )
            prev_last = last
        return out

    def max_completed_tokens(self, agent: str, now: float) -> int | None:
        """:func:`~tokmon.core.blocks.max_completed_tokens` of :meth:`blocks` at ``now`` in
        one aggregate (the token limit "max" is asked on every push): the largest token total
        of a block not active at ``now`` (``start <= now < start + bs`` and ``now - last <
        bs``, the same float tests as :func:`~tokmon.core.blocks.make_block`)."""
        bs = self.block_seconds
        row = self.conn.execute(
            "SELECT max(i + o + cc + cr) FROM rollup_block WHERE agent=?"
            " AND NOT (start <= ? AND ? < start + ? AND ? - last < ?)",
            (agent, now, now, bs, now, bs),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def period_sums(self, agent: str, bounds: Sequence[tuple[float, float]]) -> list[Acc]:
        """Sums of the records with ``lo <= ts < hi`` for each ``(lo, hi)`` (the summary's
        today / week / month / all-time); partial buckets at unaligned bounds are read from
        ``records_between``."""
        out = []
        for lo, hi in bounds:
            if lo <= TS_MIN and hi >= TS_MAX:
                out.append(self.totals(agent))
                continue
            out.append(self._period_fold(agent, lo, hi).groups().get("") or Acc())
        return out

    def period_ints(self, agent: str, lo: float, hi: float) -> list[int]:
        """``[input, output, cache creation, cache read, cost in picodollars, records]`` of
        the records with ``lo <= ts < hi``: exact integers a caller can keep current from
        record deltas (a record's cost counts as ``round(cost * 1e12)``, as stored)."""
        out = [0, 0, 0, 0, 0, 0]
        for c in self._period_fold(agent, lo, hi).cells.get("", {}).values():
            for k in range(6):
                out[k] += int(c[k])
        return out

    def _period_fold(self, agent: str, lo: float, hi: float) -> _Fold:
        """Per-model integer sums of ``lo <= ts < hi``: whole buckets from ``rollup_bucket``,
        the partial ones at unaligned bounds from ``records_between``."""
        lo_c, hi_c = max(lo, TS_MIN), min(hi, TS_MAX)
        fold = _Fold()
        if lo_c < hi_c:
            b0, b1 = math.ceil(lo_c / BUCKET), math.floor(hi_c / BUCKET)
            if b0 < b1:
                for row in self.conn.execute(
                    "SELECT model, sum(i), sum(o), sum(cc), sum(cr), sum(cost), sum(n),"
                    " min(first), max(last) FROM rollup_bucket WHERE agent=? AND bucket>=?"
                    " AND bucket<? GROUP BY model",
                    (agent, b0, b1),
                ):
                    fold.add("", *row)
            edges = [(lo_c, min(hi_c, b0 * BUCKET))]
            if b1 >= b0:
                edges.append((max(lo_c, b1 * BUCKET), hi_c))
            for e0, e1 in edges:
                if e0 < e1:
                    for r in self.records_between(agent, e0, e1):
                        if lo <= r.ts < hi:
                            fold.add(
                                "",
                                r.model,
                                r.input_tokens,
                                r.output_tokens,
                                r.cache_creation_tokens,
                                r.cache_read_tokens,
                                _pico(r.cost),
                                1,
                                r.ts,
                                r.ts,
                            )
        return fold

    def counts(self, agent: str) -> tuple[int, int]:
        """``(sessions, records)`` of ``agent``: sessions with at least one record (what
        ``len({r.session_id for r in records})`` counts) and records, from the stored sums."""
        c = self.conn
        (sessions,) = c.execute(
            "SELECT count(*) FROM rollup_session WHERE agent=?", (agent,)
        ).fetchone()
        (records,) = c.execute(
            "SELECT coalesce(sum(n), 0) FROM rollup_total WHERE agent=?", (agent,)
        ).fetchone()
        return int(sessions), int(records)

    def totals(self, agent: str) -> Acc:
        """All-time sums of ``agent`` (per-model sub-sums included)."""
        fold = _Fold()
        for row in self.conn.execute(
            "SELECT model, i, o, cc, cr, cost, n, first, last FROM rollup_total WHERE agent=?",
            (agent,),
        ):
            fold.add("", *row)
        return fold.groups().get("") or Acc()


def _compose(deltas: Iterable[Delta]) -> list[Delta]:
    """One net ``(first replaced, last new)`` per record key, no-ops dropped: a record added
    and replaced within one batch never counts (nor do its times)."""
    net: dict[str, list[UsageRecord | None]] = {}
    for old, new in deltas:
        steps: list[Delta] = [(old, new)]
        if old is not None and new is not None and old.key != new.key:
            steps = [(old, None), (None, new)]
        for o, n in steps:
            r = n if n is not None else o
            if r is None:
                continue
            cur = net.get(r.key)
            if cur is None:
                net[r.key] = [o, n]
            else:
                cur[1] = n
    return [(o, n) for o, n in net.values() if o != n]


def _count(d: dict[Any, dict[Any, int]], key: Any, at: Any, n: int) -> None:
    per = d.get(key)
    if per is None:
        per = d[key] = {}
    per[at] = per.get(at, 0) + n


def _ints(s: _Sums) -> tuple[int, ...]:
    return tuple(int(v) for v in s[:7])


def _ts_key(r: UsageRecord) -> tuple[float, str]:
    return (r.ts, r.key)


def _day_filter(keyer: DateKeyer, since: str | None, until: str | None) -> Callable[[int], bool]:
    """Whether a bucket's local day is within ``since..until`` (``Queries._filtered``)."""
    if not since and not until:
        return lambda b: True
    lo = parse_day(since) if since else "0000-00-00"
    hi = parse_day(until) if until else "9999-99-99"
    return lambda b: lo <= keyer.day(b * BUCKET) <= hi


def _plan(
    keyer: DateKeyer, utc_days: Iterable[int]
) -> tuple[list[tuple[str, int, int]], list[tuple[int, int]]]:
    """Cover the UTC days ``utc_days`` (days since the epoch) with local days of ``keyer``'s
    zone: ``(day, b0, b1)`` bucket ranges where the zone's offset is the same from the day
    before to the day after, and plain bucket ranges around every offset change (there a day
    need not be one range: a clock set back across midnight), to be keyed bucket by bucket."""
    tz = keyer.tz
    starts: dict[date, int] = {}
    offs: dict[date, timedelta | None] = {}

    def start(d: date) -> int:  # the first bucket whose local date is d or later
        b = starts.get(d)
        if b is None:
            midnight = datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()
            b = starts[d] = math.ceil(midnight / BUCKET)
        return b

    def off(d: date) -> timedelta | None:
        if d not in offs:
            offs[d] = datetime.fromtimestamp(start(d) * BUCKET, tz).utcoffset()
        return offs[d]

    one = timedelta(days=1)
    dates: set[date] = set()
    for u in utc_days:
        d0 = keyer.local(u * 86400).date()
        d1 = keyer.local(u * 86400 + 86400 - BUCKET).date()
        while d0 <= d1:
            dates.add(d0)
            d0 += one
    regular: list[tuple[str, int, int]] = []
    irregular: list[tuple[int, int]] = []
    for d in sorted(dates):
        r0, r1 = start(d), start(d + one)
        around = [off(d + k * one) for k in (-1, 0, 1, 2)]
        if around.count(around[0]) == 4:
            regular.append((d.isoformat(), r0, r1))
        elif irregular and irregular[-1][1] == r0:
            irregular[-1] = (irregular[-1][0], r1)
        else:
            irregular.append((r0, r1))
    return regular, irregular


def _bucket_range(since: str | None, until: str | None) -> tuple[int, int]:
    """A bucket range surely holding ``since..until`` in any zone (offsets within ±2 days);
    the exact test is :func:`_day_filter`."""
    b0, b1 = int(TS_MIN // BUCKET), int(TS_MAX // BUCKET) + 1
    if since:
        d = datetime.strptime(parse_day(since), "%Y-%m-%d").replace(tzinfo=timezone.utc)
        b0 = max(b0, int((d - timedelta(days=2)).timestamp() // BUCKET))
    if until:
        d = datetime.strptime(parse_day(until), "%Y-%m-%d").replace(tzinfo=timezone.utc)
        b1 = min(b1, int((d + timedelta(days=3)).timestamp() // BUCKET))
    return b0, b1


def _block(
    start: float,
    first: float,
    last: float,
    n: int,
    tc: TokenCounts,
    cost: float,
    models: list[str],
    now: float,
    bs: float,
) -> Block:
    """:func:`tokmon.core.blocks.make_block` from stored sums."""
    from tokmon.core.model_blocks import Block, BurnRate, Projection

    end = start + bs
    total = tc.total
    active = start <= now < end and now - last < bs
    burn = None
    proj = None
    if active:
        minutes = (last - first) / 60
        if minutes > 0:
            burn = BurnRate(total / minutes, (tc.input + tc.output) / minutes, cost / minutes * 60)
            remaining = max(0.0, (end - now) / 60)
            proj = Projection(
                round(total + burn.tokens_per_minute * remaining),
                round((cost + burn.cost_per_hour / 60 * remaining) * 100) / 100,
                round(remaining),
            )
    return Block(start, end, last, active, False, n, tc, cost, models, burn, proj)
