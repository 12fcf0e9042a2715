"""tokmon.core.cellsums: a file's rows summed per cell, natively and in Python, equal to
tokmon.core.rollups' SQL over the same rows as records; rows these sums cannot take give None;
the duplicate key hashes; and a cold build whose keys all collide still sums exactly."""

from __future__ import annotations

import random
import sqlite3
from array import array
from pathlib import Path
from typing import Any

import pytest

from tokmon.core import cellsums, ledger, rollups
from tokmon.core.ledger import LedgerDB, Stage
from tokmon.core.parser import native_scanner

NATIVE = native_scanner() is not None
needs_native = pytest.mark.skipif(not NATIVE, reason="the native scanner is not built")


def _cells_sql(rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    """The rows as records, summed by rollups' own SQL (what a cold build did before)."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE records (ts REAL, session TEXT, project TEXT, model TEXT, input INTEGER,"
        " output INTEGER, cc INTEGER, c1h INTEGER, cr INTEGER, key TEXT, cost REAL)"
    )
    conn.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?)", [r[:11] for r in rows])
    got = conn.execute(
        "SELECT b, model, session, project, sum(input), sum(output), sum(cc), sum(c1h), sum(cr),"
        " sum(pico), count(*), min(ts), max(ts) FROM (SELECT"
        f" {rollups._BUCKET_SQL} AS b, model, session, project, input, output, cc, c1h, cr,"
        f" {rollups._PICO_SQL} AS pico, ts FROM records) GROUP BY b, model, session, project"
    ).fetchall()
    return sorted(got)


def _grouped(cells: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Partial cells summed by value (strings equal but distinct objects make two partials)."""
    acc: dict[tuple[Any, ...], list[Any]] = {}
    for c in cells:
        a = acc.setdefault(c[:4], [0] * 7 + [c[11], c[12]])
        for j in range(7):
            a[j] += c[4 + j]
        a[7], a[8] = min(a[7], c[11]), max(a[8], c[12])
    return sorted((*k, *v) for k, v in acc.items())


def _rows(rng: random.Random, n: int) -> list[list[Any]]:
    edge = 1_772_000_000 - 1_772_000_000 % 900  # a bucket boundary
    models = ["claude-opus-4-1", "claude-sonnet-4-5"]
    out = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.15:
            ts = float(edge + 900 * rng.randrange(5))  # on a boundary
        elif kind < 0.3:
            ts = float(edge + 900 * rng.randrange(5)) - rng.choice((1e-6, 0.5, 1e-3))
        else:
            ts = edge + rng.uniform(0, 9000)
        cost = rng.choice(
            (
                rng.uniform(0, 5),
                rng.randrange(-5, 6) / 2 * 1e-12,  # ties at half a picodollar, both signs
                (rng.randrange(1, 10**6) + 0.5) / 1e12,
                -rng.uniform(0, 1),
                0.0,
                0,
                rng.randrange(0, 3),  # an int cost
            )
        )
        # strings equal to others but built anew (not the same objects)
        session = "".join(["sess-", str(rng.randrange(3))])
        project = "".join(["/p/", str(rng.randrange(2))])
        counts = [rng.randrange(0, 10**9) for _ in range(5)]
        out.append([ts, session, project, rng.choice(models), *counts, f"k{i}", cost, None])
    return out


@pytest.mark.parametrize("seed", range(12))
def test_partial_cells_equal_the_sql_sums(seed: int) -> None:
    rows = _rows(random.Random(seed), 400)
    want = _cells_sql(rows)
    py = cellsums.row_cells_py(rows)
    assert py is not None
    assert _grouped(py[0]) == want
    assert len(py[1]) == 4 * len(rows)
    # each row's time and cost, in order (the blocks' spans of a build: blockspans)
    times = array("d", [x for r in rows for x in (float(r[0]), float(r[10]))]).tobytes()
    assert py[2] == times
    if NATIVE:
        from tokmon._native import _scan

        nat = _scan.cells(rows)
        assert nat is not None
        assert _grouped(nat[0]) == want
        assert len(nat[1]) == 4 * len(rows)
        assert nat[2] == times
        # equal keys hash alike, whatever their objects
        again = _scan.cells([[*r[:9], "".join(["k", str(i)]), *r[10:]] for i, r in enumerate(rows)])
        assert again is not None and again[1] == nat[1]


def test_types_of_the_sums_are_sqlites() -> None:
    rows = _rows(random.Random(99), 50)
    for got in filter(None, (cellsums.row_cells_py(rows), cellsums.row_cells(rows))):
        for c in got[0]:
            assert [type(x) for x in c] == [int, str, str, str, *[int] * 7, float, float]


@pytest.mark.parametrize(
    "bad",
    [
        lambda r: r.__setitem__(10, float("nan")),
        lambda r: r.__setitem__(10, 1e10),  # a cost SQLite's CAST would saturate
        lambda r: r.__setitem__(0, -1.0),
        lambda r: r.__setitem__(0, float("inf")),
        lambda r: r.__setitem__(4, True),
        lambda r: r.__setitem__(5, 1.0),
        lambda r: r.__setitem__(6, 1 << 70),
        lambda r: r.__setitem__(1, None),
        lambda r: r.__setitem__(9, b"k"),
        lambda r: r.__setitem__(0, "1772000000"),
        lambda r: r.__delitem__(slice(5, None)),
    ],
)
def test_rows_these_sums_do_not_fit_give_none(bad: Any) -> None:
    rows = _rows(random.Random(5), 10)
    bad(rows[7])
    assert cellsums.row_cells_py(rows) is None
    if NATIVE:
        from tokmon._native import _scan

        assert _scan.cells(rows) is None
    assert cellsums.row_cells_py([]) == ([], b"", b"")


def test_sums_past_64_bits_give_none() -> None:
    rows = _rows(random.Random(6), 3)
    for r in rows:
        r[1], r[2], r[3], r[0] = "s", "/p", "m", 1_772_000_000.0
        r[4] = (1 << 62) + 1
    assert cellsums.row_cells_py(rows) is None
    if NATIVE:
        from tokmon._native import _scan

        assert _scan.cells(rows) is None


def test_dup_rows() -> None:
    """The values found more than once and every place of each, ascending (a value three
    times counted once in the set; the largest 32-bit value; nothing)."""
    blob = array("I", [5, 3, 5, 7, 3, 3, 9, 2**32 - 1, 2**32 - 1]).tobytes()
    want = ({3, 5, 2**32 - 1}, [0, 1, 2, 4, 5, 7, 8])
    assert cellsums.dup_rows_py(blob) == want
    assert cellsums.dup_rows(blob) == want
    assert cellsums.dup_rows(b"") == (set(), [])
    if NATIVE:
        from tokmon._native import _scan

        rng = random.Random(3)
        values = [rng.randrange(2**32) for _ in range(20000)]
        big = array("I", values + values[::-3] + [1, 2, 3]).tobytes()
        got = _scan.dup_rows(big)
        assert got == cellsums.dup_rows_py(big)
        assert len(got[0]) == len(values[::-3]) and len(got[1]) == 2 * len(got[0])


def test_bucket_of_rollups() -> None:
    assert cellsums.BUCKET == rollups.BUCKET


def _build(tmp_path: Path, name: str, streams: dict[tuple[int, int], list[list[Any]]]) -> Any:
    db = LedgerDB(tmp_path / f"{name}.sqlite3", build=True)
    roll = rollups.Rollups(db.conn, lambda *a, **k: [])
    db.on_bulk = lambda reader, cells, spans: roll.rebuild_sql(
        "claude", db.records_sql(checked=False), reader, cells, spans
    )
    stage = db.stage()
    for s in sorted(streams, reverse=True):  # later streams first
        rows = streams[s]
        for i in range(0, len(rows), 37):  # one call per "file"
            stage.add(s, [list(r) for r in rows[i : i + 37]])
    assert db.merge_staged(stage) is not None
    dirty = stage.dirty
    stage.close()
    cells = sorted(db.conn.execute("SELECT * FROM rollup_cell").fetchall())
    sums = {
        t: sorted(db.conn.execute(f"SELECT * FROM {t}").fetchall())
        for t in ("rollup_bucket", "rollup_total", "rollup_session", "rollup_session_model")
    }
    return cells, sums, dirty


def _dup_streams() -> dict[tuple[int, int], list[list[Any]]]:
    rng = random.Random(11)
    base = _rows(rng, 600)
    for i, r in enumerate(base[300:]):  # sessions no key of which is read twice
        r[1] = f"clean-{i % 5}"
    streams: dict[tuple[int, int], list[list[Any]]] = {(0, 0): base[:300], (2, 0): base[300:]}
    # a resumed session: some keys again in a later stream, with other values and sessions
    copies = []
    for r in rng.sample(base[:300], 40):
        c = list(r)
        c[1], c[4], c[5] = "resumed", c[4] + 1, rng.choice((c[5], c[5] + 1, max(0, c[5] - 1)))
        copies.append(c)
    streams[(1, 0)] = copies
    return streams


def test_a_build_sums_its_cells_from_the_rows_and_the_dirty_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partial cells against every cell summed from the records (PARTIAL_CELLS off): the
    same stored sums; only the sessions with a key read twice come from the records."""
    streams = _dup_streams()
    cells, sums, dirty = _build(tmp_path, "partial", streams)
    monkeypatch.setattr(ledger, "PARTIAL_CELLS", False)
    want_cells, want_sums, off = _build(tmp_path, "sql", streams)
    assert cells == want_cells and sums == want_sums
    assert off == -1
    assert dirty == 4  # "resumed" and the sessions its keys came from, not the clean ones


def test_colliding_hashes_only_cost_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every key hashed alike: every session is summed from the records, still exactly."""
    streams = _dup_streams()

    def same_hash(rows: list[list[Any]]) -> Any:
        got = cellsums.row_cells_py(rows)
        assert got is not None
        return got[0], bytes(4 * len(rows)), got[2]

    monkeypatch.setattr(cellsums, "summers", lambda: (same_hash, cellsums.dup_rows_py))
    monkeypatch.setattr(ledger, "summers", cellsums.summers)
    cells, sums, dirty = _build(tmp_path, "collide", streams)
    monkeypatch.setattr(ledger, "PARTIAL_CELLS", False)
    want_cells, want_sums, _ = _build(tmp_path, "sql", streams)
    assert cells == want_cells and sums == want_sums
    assert dirty == 9  # every session


def test_a_row_that_does_not_fit_sends_every_cell_to_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = _dup_streams()
    streams[(2, 0)][100][10] = 9.1e6  # past the partial sums' picodollars, not SQLite's
    cells, sums, dirty = _build(tmp_path, "unfit", streams)
    monkeypatch.setattr(ledger, "PARTIAL_CELLS", False)
    want_cells, want_sums, _ = _build(tmp_path, "sql", streams)
    assert cells == want_cells and sums == want_sums
    assert dirty == -1  # no partial cells used
    assert isinstance(Stage.BATCH, int)
