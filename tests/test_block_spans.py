"""tokmon.core.blockspans: a cold build's blocks' spans made from its rows' times and costs
(native sort and walk) equal the spans SQL reads from the records in (ts, key) order: equal
times put in key order, the dedup's deleted rows left out, costs summed in that order to the
last bit, block ends hit exactly; and a whole build's stored sums with them equal those read
from the records."""

from __future__ import annotations

import random
import sqlite3
from array import array
from pathlib import Path
from typing import Any

import pytest
from rollups_support import build_streams, stored_sums

from tokmon.core import blockspans, ledger, rollups
from tokmon.core.ledger import LedgerDB, Stage
from tokmon.core.parser import native_scanner

NATIVE = native_scanner() is not None
pytestmark = pytest.mark.skipif(not NATIVE, reason="the native scanner is not built")

T0 = 1_772_000_000.0 - 1_772_000_000.0 % 3600


def _rows(rng: random.Random, n: int, block_seconds: float) -> list[list[Any]]:
    """Rows in no time order with what spans must get right: many equal times (whose keys
    are not in rowid order), times exactly on a block's end, gaps longer than a block, costs
    whose sum depends on their order."""
    out: list[list[Any]] = []
    t = T0
    for i in range(n):
        kind = rng.random()
        if kind < 0.25:
            ts = T0 + 60.0 * rng.randrange(40)  # shared by many rows
        elif kind < 0.35:
            ts = T0 + block_seconds * rng.randrange(1, 4)  # on a block's end
        elif kind < 0.4:
            t += block_seconds * 2 + rng.uniform(0, 5000)  # a gap past a block
            ts = t
        else:
            ts = t + rng.uniform(0, 40000)
        cost = rng.choice((0.1, 0.2, 0.3, 1e-17, rng.uniform(0, 3), 7e-13))
        key = f"k{rng.randrange(10**9):09d}-{i}"
        out.append([ts, f"s{i % 7}", "/p", "claude-opus-4-5", 1, 2, 3, 0, 5, key, cost, None])
    return out


def _sql_spans(rows: list[list[Any]], block_seconds: float) -> list[Any]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE r (ts REAL, key TEXT, cost REAL)")
    conn.executemany("INSERT INTO r VALUES (?, ?, ?)", [(r[0], r[9], r[10]) for r in rows])
    roll = rollups.Rollups(conn, lambda *a, **k: [], block_seconds)
    return roll._block_spans(conn, "SELECT ts, key, cost FROM r")


def _times(rows: list[list[Any]]) -> bytes:
    return array("d", [x for r in rows for x in (float(r[0]), float(r[10]))]).tobytes()


@pytest.mark.parametrize("block_seconds", [18000.0, 3600.0, 3600.5])
@pytest.mark.parametrize("seed", range(4))
def test_spans_equal_the_records_in_ts_key_order(block_seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    rows = _rows(rng, 3000, block_seconds)
    gone = sorted(rng.sample(range(len(rows)), 300))  # the dedup's deleted rows
    kept = [r for i, r in enumerate(rows) if i not in set(gone)]
    want = _sql_spans(kept, block_seconds)
    asked: list[list[int]] = []

    def keys_of(rowids: list[int]) -> dict[int, str]:
        asked.append(rowids)
        return {i: rows[i - 1][9] for i in rowids}

    mod = blockspans.native()
    aligned = block_seconds % rollups.BUCKET == 0
    got = blockspans.SpanOrder(mod, _times(rows), gone).spans(keys_of, block_seconds, aligned)
    assert got == want
    assert [s[3] for s in got].count(True) >= (1 if block_seconds % rollups.BUCKET == 0 else 0)
    assert len(want) > 5
    # only the rows of equal times were looked up, none of them gone
    assert asked and 0 < len(asked[0]) < len(kept) and not set(asked[0]) & {g + 1 for g in gone}
    # in rowid order the equal times' costs sum otherwise: the key order matters here
    order, ties = mod.ts_order(_times(rows), array("I", gone))
    assert ties
    assert mod.spans(order, _times(rows), block_seconds, aligned) != want


def test_costs_summed_in_order_to_the_last_bit() -> None:
    """(1e16 + 1) + 1 is not 1e16 + (1 + 1) in doubles: the walk adds in (ts, key) order."""
    rows = [
        [T0 + 10, "s", "/p", "m", 0, 0, 0, 0, 0, "b", 1.0, None],
        [T0, "s", "/p", "m", 0, 0, 0, 0, 0, "z", 1e16, None],
        [T0 + 10, "s", "/p", "m", 0, 0, 0, 0, 0, "a", 1.0, None],
    ]
    want = _sql_spans(rows, 18000.0)
    mod = blockspans.native()
    got = blockspans.SpanOrder(mod, _times(rows), []).spans(
        lambda ids: {i: rows[i - 1][9] for i in ids}, 18000.0, True
    )
    assert got == want == [(T0, T0, None, False, 3, 1e16 + 1.0 + 1.0)]


def test_empty_and_bad_input() -> None:
    mod = blockspans.native()
    order, ties = mod.ts_order(b"", b"")
    assert (order, ties) == (b"", [])
    assert mod.spans(order, b"", 18000.0, True) == []
    with pytest.raises(ValueError):
        mod.ts_order(b"\0" * 15, b"")
    with pytest.raises(ValueError):
        mod.ts_order(b"\0" * 16, array("I", [1]))  # a gone row past the rows
    with pytest.raises(ValueError):
        mod.spans(array("I", [1]), b"\0" * 16, 18000.0, True)
    with pytest.raises(TypeError):
        mod.ts_order("text", b"")


def _build(
    tmp_path: Path, name: str, streams: dict[tuple[int, int], list[list[Any]]], bs: float
) -> tuple[dict[str, Any], list[Any]]:
    db, made = build_streams(tmp_path / f"{name}.sqlite3", streams, bs)
    return stored_sums(db.conn), [(m[0], m[2]) for m in made]


@pytest.mark.parametrize("block_seconds", [18000.0, 3600.5])
def test_build_with_spans_from_rows_equals_the_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_seconds: float
) -> None:
    """A direct build whose later streams repeat keys (the dedup deletes rows, ties kept
    first, larger outputs win): its stored sums with the spans made from its rows equal
    those with the spans read by a second connection, and the Python build's."""
    rng = random.Random(5)
    base = _rows(rng, 900, block_seconds)
    copies = []
    for r in rng.sample(base, 120):  # a resumed session's copied lines
        c = list(r)
        c[1], c[5] = "resumed", r[5] + rng.choice((-1, 0, 1))
        copies.append(c)
    streams = {(0, 0): base[:450], (1, 0): base[450:], (2, 0): copies}
    sums, made = _build(tmp_path, "rows", streams, block_seconds)
    assert made == [(False, True)]  # no second connection: the spans came from the rows
    monkeypatch.setattr(ledger, "SPANS_FROM_ROWS", False)
    read, made = _build(tmp_path, "read", streams, block_seconds)
    assert made == [(True, False)]
    assert len(sums["rollup_block"]) > 5
    assert sums == read
    # and the records of the build, summed in Python
    db = LedgerDB(tmp_path / "read.sqlite3")
    py = sqlite3.connect(tmp_path / "py.sqlite3")
    rollups.Rollups(py, lambda *a, **k: [], block_seconds).rebuild({"claude": db.records()})
    assert stored_sums(py) == sums


def test_no_spans_begun_when_the_rows_do_not_fit(tmp_path: Path) -> None:
    """A row the cells from the rows cannot take (a NaN cost is refused by the table anyway; here a
    cost past SQLite's CAST) leaves the spans to the records' reads."""
    rows = _rows(random.Random(9), 80, 18000.0)
    rows[40][10] = 2e10  # cells(): unfit
    db = LedgerDB(tmp_path / "unfit.sqlite3", build=True)
    stage = db.stage()
    assert isinstance(stage, Stage) and stage.direct
    stage.add((0, 0), rows)
    stage.flush()
    with db.write(begun=True):
        stage.settle()
    assert not stage.spans_begun and stage.block_spans(18000.0, True) is None
    stage.close()
