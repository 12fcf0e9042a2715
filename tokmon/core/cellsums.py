"""A file's rows summed per stored-sums cell, for a cold build (see ``ledger.Stage``).

The stored sums' cells (``rollup_cell``: per 15-minute bucket, model, session and project)
are, for a cold build, a ``GROUP BY`` over every record: ~50 ms of the build's serial tail at
500 MB, most of it SQLite sorting ~32,000 wide rows. But a record is a row the scan read, and
a row whose key no other file has is its own record: so the cells can be summed from each
file's rows as they come (:func:`row_cells`, in C), and only the sessions of the files that
hold a row whose key came more than once (a resumed session's copied lines: 169 of 1,106
sessions at 500 MB) are summed again from the records, where the dedup has decided. The
keys are compared by a 32-bit hash (:func:`dup_rows`); two keys that share one only send
more sessions to the records. docs/performance.md, fourteenth session.

Both functions give what tokmon.core.rollups' SQL gives (``_BUCKET_SQL``, ``_PICO_SQL``: the
same float operations in the same order), or None for a row they cannot sum that way (the
caller then sums every cell in SQL).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

BUCKET = 900  # tokmon.core.rollups.BUCKET (checked by the tests)
_LIMIT = 9.0e18  # beyond it SQLite's CAST saturates: not summed here
_I64 = 1 << 63

Cell = tuple[Any, ...]  # bucket, model, session, project, i, o, cc, c1h, cr, pico, n, first, last


def _native() -> Any:
    """The native scanner's module when it is in use (parser.native_scanner), else None."""
    from tokmon.core.parser import native_scanner

    if native_scanner() is None:
        return None
    from tokmon._native import _scan

    return _scan


RowCells = Callable[[list[list[Any]]], "tuple[list[Cell], bytes, bytes] | None"]


DupRows = Callable[[bytes | bytearray], "tuple[set[int], list[int]]"]


def summers() -> tuple[RowCells, DupRows]:
    """(:func:`row_cells`, :func:`dup_rows`), native when the native scanner is in use:
    looked up once by a build (a build's key hashes all come from one of them)."""
    native = _native()
    if native is not None:
        return native.cells, native.dup_rows
    return row_cells_py, dup_rows_py


def row_cells(rows: list[list[Any]]) -> tuple[list[Cell], bytes, bytes] | None:
    """``rows`` (lists in record field order, priced) summed per cell, a 32-bit hash of
    each row's key (native byte order) and each row's time and cost (two doubles, native
    order: :mod:`tokmon.core.spans` makes the blocks of a build from them); None when a row
    does not fit these sums."""
    return summers()[0](rows)


def dup_rows(hashes: bytes | bytearray) -> tuple[set[int], list[int]]:
    """The values of ``hashes`` (32-bit, native order) found more than once, and the
    indexes of all their places, in ascending order."""
    return summers()[1](hashes)


def dup_rows_py(hashes: bytes | bytearray) -> tuple[set[int], list[int]]:
    """:func:`dup_rows` in Python."""
    seen: set[int] = set()
    out: set[int] = set()
    values = array("I", bytes(hashes))
    for h in values:
        if h in seen:
            out.add(h)
        seen.add(h)
    return out, [i for i, h in enumerate(values) if h in out]


def _bucket(ts: float) -> int | None:
    if not ts >= 0.0:
        return None
    q = ts / BUCKET
    if not q < 9.0e15:
        return None
    b = int(q)
    return b - (b * BUCKET > ts)


def _pico(cost: float) -> int | None:
    p = cost * 1e12
    if not -_LIMIT < p < _LIMIT:
        return None
    t = int(p)
    d = p - t
    ad = abs(d)
    if ad < 0.5:
        return t
    if ad > 0.5:
        return t + (d > 0) - (d < 0)
    return t + (-((-t) % 2) if t < 0 else t % 2)  # SQL's % keeps the dividend's sign


def row_cells_py(rows: list[list[Any]]) -> tuple[list[Cell], bytes, bytes] | None:
    """:func:`row_cells` in Python (no native scanner); its key hashes are Python's own
    (consistent within a process, which is all a build compares)."""
    cells: dict[tuple[Any, ...], list[Any]] = {}
    hashes = array("I")
    times = array("d")
    for r in rows:
        if type(r) is not list or len(r) < 11:
            return None
        ts, session, project, model, key, cost = r[0], r[1], r[2], r[3], r[9], r[10]
        if type(ts) not in (float, int) or type(cost) not in (float, int):
            return None
        if not all(type(x) is str for x in (session, project, model, key)):
            return None
        counts = r[4:9]
        if not all(type(x) is int and -_I64 <= x < _I64 for x in counts):
            return None
        b, pico = _bucket(float(ts)), _pico(float(cost))
        if b is None or pico is None:
            return None
        t = float(ts)
        k = (b, model, session, project)
        c = cells.get(k)
        if c is None:
            cells[k] = [*counts, pico, 1, t, t]
        else:
            for j in range(5):
                c[j] += counts[j]
            c[5] += pico
            c[6] += 1
            c[7] = min(c[7], t)
            c[8] = max(c[8], t)
        hashes.append(hash(key) & 0xFFFFFFFF)
        times += array("d", (t, float(cost)))
    out: list[Cell] = []
    for k, v in cells.items():
        if not all(-_I64 <= x < _I64 for x in v[:7]):
            return None  # (SQLite's sum() would fail: the SQL path says so)
        out.append((*k, *v))
    return out, hashes.tobytes(), times.tobytes()
