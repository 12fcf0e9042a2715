"""A staged batch's INSERT parameters (ledger.Stage._flush): ``_scan.batch_args`` gives what
its Python version gives, whatever the rows hold, and a build stages the same records with
either."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tokmon.core import ledger
from tokmon.core.ledger import LedgerDB, _batch_args


def _row(i: int, display: float | None) -> list[Any]:
    return [
        1.7e9 + i,
        f"s{i % 3}",
        "/p",
        "claude-opus-4-5",
        i,
        2 * i,
        0,
        0,
        7,
        f"k{i}",
        i / 3,
        display,
    ]


@pytest.mark.parametrize("displays", ["none", "one", "all"])
def test_batch_args_native_equals_python(native_scanner: Any, displays: str) -> None:
    rng = random.Random(displays)
    rows = [_row(i, None) for i in range(40)]
    if displays == "one":
        rows[rng.randrange(5, 16)][11] = 0.5  # (in the batches from 0 and from 5)
    if displays == "all":
        for r in rows:
            r[11] = rng.random()
    for start, k in ((0, 16), (5, 16), (24, 16), (0, 0)):
        got = native_scanner.batch_args(rows, start, k)
        assert got == _batch_args(rows, start, k)
        assert all(a is b for a, b in zip(got[0], _batch_args(rows, start, k)[0], strict=True))
    for start in (0, 5, 24):
        nulls = all(r[11] is None for r in rows[start : start + 16])
        assert native_scanner.batch_args(rows, start, 16)[1] is nulls
        assert len(native_scanner.batch_args(rows, start, 16)[0]) == 16 * (11 if nulls else 12)
    assert displays == "none" or not all(r[11] is None for r in rows)


def test_batch_args_leaves_odd_rows_to_python(native_scanner: Any) -> None:
    rows: list[Any] = [_row(i, None) for i in range(4)]
    assert native_scanner.batch_args([*rows, tuple(_row(9, None))], 0, 5) is None
    assert native_scanner.batch_args([*rows, _row(9, None)[:11]], 0, 5) is None
    with pytest.raises(ValueError):
        native_scanner.batch_args(rows, 2, 3)
    with pytest.raises(ValueError):
        native_scanner.batch_args(rows, -1, 1)


@pytest.mark.parametrize("native", [True, False])
def test_a_build_stages_the_same_records_either_way(
    native_scanner: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """Rows through a direct stage (the first stream into records, a later one staged and
    merged), some with a display cost: the records are the rows, with or without the native
    batches (and the native batches really ran)."""
    calls: list[int] = []
    if native:
        real = native_scanner.batch_args
        monkeypatch.setattr(ledger, "_native_batch", lambda: lambda *a: calls.append(1) or real(*a))
    else:
        monkeypatch.setattr(ledger, "_native_batch", lambda: None)
    monkeypatch.setattr(ledger.Stage, "BATCH", 8)
    db = LedgerDB(tmp_path / "b.sqlite3", build=True)
    st = db.stage(10**9)
    rows = [_row(i, 0.25 if i % 50 == 7 else None) for i in range(300)]
    st.add((0, 0), [list(r) for r in rows[:170]])
    st.add((1, 0), [list(r) for r in rows[170:]])
    assert db.merge_staged(st) is not None
    st.close()
    got = sorted(
        db.conn.execute(f"SELECT {ledger.COLS} FROM records").fetchall(), key=lambda r: r[9]
    )
    assert got == sorted(map(tuple, rows), key=lambda r: r[9])
    assert bool(calls) == native
    db.close()
