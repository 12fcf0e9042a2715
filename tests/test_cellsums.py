"""tokmon.core.cellsums: a build's rows summed per cell as they come, natively and in Python,
equal to tokmon.core.rollups' SQL over the same rows as records, also once the dedup's
deleted rows are taken back out; rows these sums cannot take give None; the duplicate key
hashes; and a cold build whose keys all collide still sums exactly."""

from __future__ import annotations

import random
import sqlite3
from array import array
from pathlib import Path
from typing import Any

import pytest
from rollups_support import build_streams, stored_sums

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


def _makers() -> list[Any]:
    """Every implementation of the sums: Python's, and the native one where it is built."""
    out: list[Any] = [cellsums.CellSumsPy]
    if NATIVE:
        from tokmon._native import _scan

        out.append(_scan.CellSums)
    return out


def _sum(make: Any, rows: list[list[Any]], gone: list[int] = ()) -> Any:  # type: ignore[assignment]
    """``rows`` added 37 at a time (a call per "file"), ``gone`` (indexes) taken back out
    with their counts as the records give them: the cells, the hashes, the times."""
    sums = make()
    hashes, times = bytearray(), bytearray()
    for i in range(0, len(rows), 37):
        got = sums.add(rows[i : i + 37])
        if got is None:
            return None
        hashes += got[0]
        times += got[1]
    out = [(i + 1, *rows[i][4:9], rows[i][1], rows[i][2], rows[i][3]) for i in gone]
    got = sums.finish(out, times)
    assert got is not None
    n, marked = got
    left = set(range(len(rows))) - set(gone)
    for at, b, model, session, project in marked:  # what the records say (Stage.cell_source)
        ts = [
            float(rows[i][0])
            for i in left
            if rows[i][1:4] == [session, project, model] and b * 900 <= rows[i][0] < b * 900 + 900
        ]
        sums.set_times(at, min(ts), max(ts))
    args = sums.args("a", 0, n)
    assert len(args) == 14 * n and set(args[::14]) <= {"a"}
    cells = [tuple(args[i + 1 : i + 14]) for i in range(0, len(args), 14)]
    assert cells == sorted(cells)  # (in key order)
    return cells, bytes(hashes), bytes(times)


@pytest.mark.parametrize("seed", range(12))
def test_cells_equal_the_sql_sums(seed: int) -> None:
    rows = _rows(random.Random(seed), 400)
    want = _cells_sql(rows)
    # each row's time and cost, in order (the blocks' spans of a build: blockspans)
    times = array("d", [x for r in rows for x in (float(r[0]), float(r[10]))]).tobytes()
    for make in _makers():
        got = _sum(make, rows)
        assert got is not None
        assert sorted(got[0]) == want
        assert len(got[1]) == 4 * len(rows)
        assert got[2] == times
    if NATIVE:
        from tokmon._native import _scan

        nat = _sum(_scan.CellSums, rows)
        # equal keys hash alike, whatever their objects
        again = [[*r[:9], "".join(["k", str(i)]), *r[10:]] for i, r in enumerate(rows)]
        keyed = [[*r[:9], f"k{i}", *r[10:]] for i, r in enumerate(rows)]
        assert _sum(_scan.CellSums, again)[1] == _sum(_scan.CellSums, keyed)[1] == nat[1]


@pytest.mark.parametrize("seed", range(12))
def test_rows_taken_out_leave_the_sums_of_the_others(seed: int) -> None:
    """What a build's dedup deletes, taken back out: the cells of the rows kept, as SQL sums
    them; cells left with no row are gone; first and last times of the rows kept (the
    deleted rows include cells' first and last ones, and every row of some cells)."""
    rng = random.Random(seed)
    rows = _rows(rng, 400)
    by_cell: dict[Any, list[int]] = {}
    for i, r in enumerate(rows):
        by_cell.setdefault((cellsums._bucket(float(r[0])), r[3], r[1], r[2]), []).append(i)
    gone = set(rng.sample(range(len(rows)), 60))
    for ix in list(by_cell.values())[:: 3 + seed % 3]:
        gone.add(min(ix, key=lambda i: rows[i][0]))  # a cell's first row
        gone.add(max(ix, key=lambda i: rows[i][0]))  # its last
    whole = next(ix for ix in by_cell.values() if len(ix) > 1)
    gone |= set(whole)  # every row of a cell
    kept = [r for i, r in enumerate(rows) if i not in gone]
    want = _cells_sql(kept)
    assert len(want) < len(_cells_sql(rows))
    for make in _makers():
        got = _sum(make, rows, sorted(gone, key=lambda _: rng.random()))
        assert got is not None and sorted(got[0]) == want


def test_rows_taken_out_that_do_not_add_up_give_none() -> None:
    rows = _rows(random.Random(4), 40)

    def gone(i: int, *, rowid: int = 0, bump: int = 0, session: str = "") -> tuple[Any, ...]:
        r = rows[i]
        return (rowid or i + 1, r[4] + bump, *r[5:9], session or r[1], r[2], r[3])

    for make in _makers():
        sums = make()
        got = sums.add(rows)
        assert got is not None and sums.rows() == 40
        times = got[1]
        done = sums.finish([gone(3)], times)
        assert done is not None
        with pytest.raises(ValueError):
            sums.args("a", 0, done[0] + 1)
        for bad in (
            [gone(3, rowid=41)],  # past the rows
            [gone(3, rowid=-1)],
            [gone(3, session="elsewhere")],  # no such cell
            [gone(i) for i in range(40)] + [gone(0)],  # more rows than a cell has
            [gone(0, bump=1)] + [gone(i) for i in range(1, 40)],  # counts not the rows'
        ):
            again = make()
            again.add(rows)
            assert again.finish(bad, times) is None, bad[:1]
            assert again.finish([], times) is None  # (and always after)
        assert make().finish([], times) is None  # (no rows added: not these times)


def test_types_of_the_sums_are_sqlites() -> None:
    rows = _rows(random.Random(99), 50)
    for make in _makers():
        got = _sum(make, rows)
        assert got is not None
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
    for make in _makers():
        sums = make()
        assert sums.add(rows[:5]) is not None
        assert sums.add(rows[5:]) is None
        assert sums.add(rows[:5]) is None  # (and every add after it)
        assert sums.finish([], b"\0" * 16 * 5) is None
        assert make().add([]) == (b"", b"")


def test_sums_past_64_bits_give_none() -> None:
    rows = _rows(random.Random(6), 3)
    for r in rows:
        r[1], r[2], r[3], r[0] = "s", "/p", "m", 1_772_000_000.0
        r[4] = (1 << 62) + 1
    for make in _makers():
        assert make().add(rows) is None
        sums = make()  # past 64 bits only once added to the cell of another call
        assert sums.add(rows[:1]) is not None and sums.add(rows[1:]) is None


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
    """A direct build of ``streams``' rows: its cells, its other stored sums, and whether the
    cells came from the rows (not from the records)."""
    db, made = build_streams(tmp_path / f"{name}.sqlite3", streams)
    sums = stored_sums(db.conn)
    return sums.pop("rollup_cell"), sums, [m[1] for m in made] == [True]


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


def test_a_build_sums_its_cells_from_the_rows_less_the_deleted_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cells summed from the rows, the dedup's deleted rows taken out, against every
    cell summed from the records (CELLS_FROM_ROWS off): the same stored sums."""
    streams = _dup_streams()
    cells, sums, from_rows = _build(tmp_path, "partial", streams)
    monkeypatch.setattr(ledger, "CELLS_FROM_ROWS", False)
    want_cells, want_sums, off = _build(tmp_path, "sql", streams)
    assert cells == want_cells and sums == want_sums
    assert from_rows and not off
    assert any(c[3] == "resumed" for c in cells)  # (the copies that won stay)


class _SameHash(cellsums.CellSumsPy):
    """Every key hashed alike: every row a candidate of the dedup."""

    def add(self, rows: list[list[Any]]) -> Any:
        got = super().add(rows)
        return None if got is None else (bytes(4 * len(rows)), got[1])


def test_colliding_hashes_only_cost_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every key hashed alike: every row is ranked by its key, still exactly."""
    streams = _dup_streams()
    monkeypatch.setattr(cellsums, "summers", lambda: (_SameHash, cellsums.dup_rows_py))
    monkeypatch.setattr(ledger, "summers", cellsums.summers)
    cells, sums, from_rows = _build(tmp_path, "collide", streams)
    monkeypatch.setattr(ledger, "CELLS_FROM_ROWS", False)
    want_cells, want_sums, _ = _build(tmp_path, "sql", streams)
    assert cells == want_cells and sums == want_sums
    assert from_rows


def test_a_row_that_does_not_fit_sends_every_cell_to_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = _dup_streams()
    streams[(2, 0)][100][10] = 9.1e6  # past the cells' picodollars, not SQLite's
    cells, sums, from_rows = _build(tmp_path, "unfit", streams)
    monkeypatch.setattr(ledger, "CELLS_FROM_ROWS", False)
    want_cells, want_sums, _ = _build(tmp_path, "sql", streams)
    assert cells == want_cells and sums == want_sums
    assert not from_rows  # no sums from the rows used
    assert isinstance(Stage.BATCH, int)


def _project_ties() -> dict[tuple[int, int], list[list[Any]]]:
    """Sessions whose projects tie on their latest time (the larger project wins), one
    whose latest cell has no project (it does not count), one with no project at all, and
    rows of several models and buckets."""
    t = 1_772_000_000.0 - 1_772_000_000.0 % 900
    rows: list[list[Any]] = []

    def row(ts: float, session: str, project: str, model: str = "m1") -> None:
        rows.append([ts, session, project, model, 1, 2, 3, 4, 5, f"k{len(rows)}", 0.25, None])

    row(t + 10, "tie", "/b")
    row(t + 500, "tie", "/a")
    row(t + 500, "tie", "/b", "m2")  # /a and /b both last at t + 500: /b
    row(t + 100, "tie", "/c")
    row(t + 10, "later-empty", "/x")
    row(t + 2000, "later-empty", "")  # latest, but no project: /x stays
    row(t + 30, "none", "")
    row(t + 40, "none", "", "m2")
    row(t + 950, "tie2", "/z")
    row(t + 950, "tie2", "/y")  # the same time: /z
    return {(0, 0): rows}


@pytest.mark.parametrize("native", [True, False])
def test_derived_sums_equal_the_sql_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """The sums made from a build's cells in C (or Python) equal those its SQL makes from
    rollup_cell, sessions' projects by the latest time then the larger name."""
    if native and not NATIVE:
        pytest.skip("the native scanner is not built")
    if not native:
        monkeypatch.setattr(ledger, "summers", lambda: (cellsums.CellSumsPy, cellsums.dup_rows_py))
    streams = _project_ties()
    for rows in (streams, _dup_streams()):
        cells, sums, from_rows = _build(tmp_path, f"rows{len(rows)}", rows)
        with monkeypatch.context() as m:
            m.setattr(ledger, "CELLS_FROM_ROWS", False)
            want_cells, want_sums, _ = _build(tmp_path, f"sql{len(rows)}", rows)
        assert from_rows and cells == want_cells and sums == want_sums
    db = LedgerDB(tmp_path / "rows1.sqlite3")
    got = dict(db.conn.execute("SELECT session_id, project FROM rollup_session"))
    assert got == {"tie": "/b", "later-empty": "/x", "none": "", "tie2": "/z"}
    projects = db.conn.execute("SELECT project, n FROM rollup_project ORDER BY project").fetchall()
    assert projects == [("", 3), ("/a", 1), ("/b", 2), ("/c", 1), ("/x", 1), ("/y", 1), ("/z", 1)]


@pytest.mark.skipif(not NATIVE, reason="the native scanner is not built")
@pytest.mark.parametrize("seed", range(4))
def test_dup_rows_native_equals_python(seed: int) -> None:
    """Many values of one low-bit pattern (one slot region of the native table), runs of
    one value, values three or more times, the largest and smallest values."""
    from tokmon._native import _scan

    rng = random.Random(seed)
    values = [k << 20 for k in range(4096)] + [rng.randrange(2**32) for _ in range(5000)]
    values += rng.sample(values, 700) + [7] * 5 + [0, 0, 2**32 - 1, 2**32 - 1, 2**32 - 1]
    rng.shuffle(values)
    for vs in (values, values[:1], [], [3, 3]):
        blob = array("I", vs).tobytes()
        assert _scan.dup_rows(blob) == cellsums.dup_rows_py(blob)
