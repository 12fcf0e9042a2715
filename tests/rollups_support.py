"""A record store in SQLite standing in for the engine's store, for the rollups' tests and
bench (``tests/test_rollups.py``, ``bench/bench_rollups.py``); a build's stored sums made
from rows, and every stored-sums table (the cold build's tests)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tokmon.core.ledger import LedgerDB
from tokmon.core.model import UsageRecord
from tokmon.core.rollups import Rollups

RECORD_COLS = (
    "ts, session_id, project, model, i, o, cc, c1h, cr, key, cost, display_cost"  # field order
)


class RecordTable:
    """A record store in SQLite (the stand-in for the engine's store): upsert by dedup key,
    the delta pairs it produces, and ``records_between`` by an indexed SELECT."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute(
            "CREATE TABLE IF NOT EXISTS rec (agent TEXT NOT NULL, ts REAL NOT NULL,"
            " session_id TEXT, project TEXT, model TEXT, i INT, o INT, cc INT, c1h INT, cr INT,"
            " key TEXT NOT NULL, cost REAL, display_cost REAL, PRIMARY KEY (agent, key))"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS rec_ts ON rec (agent, ts)")

    def get(self, agent: str, key: str) -> UsageRecord | None:
        row = self.conn.execute(
            f"SELECT {RECORD_COLS} FROM rec WHERE agent=? AND key=?", (agent, key)
        ).fetchone()
        return None if row is None else UsageRecord(*row)

    def put(self, agent: str, r: UsageRecord) -> None:
        self.conn.execute(
            f"INSERT OR REPLACE INTO rec (agent, {RECORD_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (agent, *r),
        )

    def delete(self, agent: str, key: str) -> None:
        self.conn.execute("DELETE FROM rec WHERE agent=? AND key=?", (agent, key))

    def between(
        self, agent: str, t0: float, t1: float, session_id: str | None = None
    ) -> Iterator[UsageRecord]:
        sql = f"SELECT {RECORD_COLS} FROM rec WHERE agent=? AND ts>=? AND ts<?"
        args: list[Any] = [agent, t0, t1]
        if session_id is not None:
            sql += " AND session_id=?"
            args.append(session_id)
        for row in self.conn.execute(sql + " ORDER BY ts", args).fetchall():
            yield UsageRecord(*row)

    def put_many(self, agent: str, recs: list[UsageRecord]) -> None:
        self.conn.executemany(
            f"INSERT OR REPLACE INTO rec (agent, {RECORD_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ((agent, *r) for r in recs),
        )


def stored_sums(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored-sums table (but rollup_meta), its rows sorted."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'rollup_%'"
            " AND name != 'rollup_meta'"
        )
    ]
    return {n: sorted(conn.execute(f"SELECT * FROM {n}").fetchall()) for n in sorted(names)}


def build_streams(
    path: Path, streams: dict[tuple[int, int], list[list[Any]]], block_seconds: float | None = None
) -> tuple[LedgerDB, list[tuple[bool, bool, bool]]]:
    """A direct build of ``streams``' rows into a new build file (later streams first, 37
    rows a call: one per "file"), its stored sums made as a first scan makes them: the
    database, and per stored-sums build (whether a second connection read the records, the
    cells came from the rows, the blocks' spans came from the rows)."""
    db = LedgerDB(path, build=True)
    roll = Rollups(
        db.conn, lambda *a, **k: [], *(() if block_seconds is None else (block_seconds,))
    )
    made: list[tuple[bool, bool, bool]] = []

    def on_bulk(reader: Any, cells: Any, spans: Any) -> None:
        got: list[bool] = []

        def source() -> Any:
            out = cells() if callable(cells) else cells
            got.append(out is not None)
            return out

        roll.rebuild_sql("claude", db.records_sql(checked=False), reader, source, spans)
        made.append((reader is not None, got == [True], spans is not None))

    db.on_bulk = on_bulk
    stage = db.stage()
    for s in sorted(streams, reverse=True):
        rows = streams[s]
        for i in range(0, len(rows), 37):
            stage.add(s, [list(r) for r in rows[i : i + 37]])
    assert db.merge_staged(stage) is not None
    stage.close()
    return db, made
