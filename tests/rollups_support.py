"""A record store in SQLite standing in for the engine's store, for the rollups' tests and
bench (``tests/test_rollups.py``, ``bench/bench_rollups.py``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from tokmon.core.model import UsageRecord

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
