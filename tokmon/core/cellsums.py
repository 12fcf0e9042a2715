"""A cold build's rows summed per stored-sums cell as they come (see ``ledger.Stage``).

The stored sums' cells (``rollup_cell``: per 15-minute bucket, model, session and project)
are, for a cold build, a ``GROUP BY`` over every record: ~50 ms of the build's serial tail at
500 MB, most of it SQLite sorting ~32,000 wide rows. But a record is a row the scan read: so
the cells are summed from the rows as they come (``CellSums``, in C, or :class:`CellSumsPy`),
and what the build's dedup deletes (a resumed session's copied lines: ~1,000 of ~33,000 rows
at 500 MB) is taken back out at the end: its counts read from the records, its time and
cost from what the adds gave; a cell whose first or last time was a deleted row's gets them
from the rows it keeps (each row's cell is remembered: 4 bytes a row). The dedup finds its
candidates by a 32-bit hash of each row's key (:func:`dup_rows`); two keys that share one
only cost a comparison. docs/performance.md, fourteenth and nineteenth sessions.

Both give what tokmon.core.rollups' SQL gives (``_BUCKET_SQL``, ``_PICO_SQL``: the same float
operations in the same order; integer sums, so a deleted row is taken out exactly), or None
for a row they cannot sum that way (the caller then sums every cell in SQL).
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Callable
from typing import Any, Protocol

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


DupRows = Callable[[bytes | bytearray], "tuple[set[int], list[int]]"]
#: a row deleted by a build's dedup: (rowid, input, output, cc, c1h, cr, session, project,
#: model)
Gone = tuple[int, int, int, int, int, int, str, str, str]
#: a finished cell whose first or last time was a deleted row's: (its index, bucket, model,
#: session, project), for set_times
Marked = tuple[int, int, str, str, str]


class Sums(Protocol):
    """A build's cells summed as its rows come (:class:`CellSumsPy`, or the native
    ``CellSums``)."""

    def add(self, rows: list[list[Any]], /) -> tuple[bytes, bytes] | None: ...
    def finish(
        self, gone: list[Gone], times: bytes | bytearray, /
    ) -> tuple[int, list[Marked]] | None: ...
    def set_times(self, index: int, first: float, last: float, /) -> None: ...
    def args(self, agent: str, start: int, k: int, /) -> list[Any]: ...
    def derive(self) -> bool: ...
    def count(self, table: str, /) -> int: ...
    def table_args(self, table: str, agent: str, start: int, k: int, /) -> list[Any]: ...
    def block_sums(self, lo: int, hi: int, /) -> list[tuple[Any, ...]] | None: ...
    def rows(self) -> int: ...


#: the tables derive() makes from the cells, and their widths (agent first)
DERIVED = {
    "rollup_project": 3,
    "rollup_bucket": 12,
    "rollup_total": 11,
    "rollup_session_model": 12,
    "rollup_session": 6,
}


def summers() -> tuple[Callable[[], Sums], DupRows]:
    """(a maker of :class:`Sums`, :func:`dup_rows`), native when the native scanner is in
    use: looked up once by a build (a build's key hashes all come from one of them)."""
    native = _native()
    if native is not None:
        return native.CellSums, native.dup_rows
    return CellSumsPy, dup_rows_py


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


class CellSumsPy:
    """The native ``CellSums`` in Python (no native scanner). ``add(rows)`` sums the rows
    (lists in record field order, priced) into their cells (by the values of bucket, model,
    session and project) and gives a 32-bit hash of each row's key (Python's own: consistent
    within a process, which is all a build compares) and its time and cost (two doubles a
    row, native order: :mod:`tokmon.core.blockspans` makes a build's blocks from them); None
    once a row does not fit these sums. ``finish(gone, times)`` takes the rows the build's
    dedup deleted back out (:data:`Gone` each) and says how many cells the records have and
    which lost their first or last time with a deleted row (None: they do not add up); the
    caller gives those their times (``set_times``, from the records); ``args(agent, start,
    k)`` gives the cells in key order as one INSERT's parameters (rollup_cell's columns)."""

    def __init__(self) -> None:
        self._cells: dict[tuple[Any, ...], list[Any]] = {}
        self._n = 0
        self._unfit = False
        self._kept: list[tuple[Any, ...]] | None = None
        self._order: list[list[Any]] = []
        self._derived: dict[str, list[tuple[Any, ...]]] | None = None

    def rows(self) -> int:
        return self._n

    def add(self, rows: list[list[Any]]) -> tuple[bytes, bytes] | None:
        if self._unfit:
            return None
        got = self._add(rows)
        if got is None:
            self._drop()
        return got

    def _drop(self) -> None:
        self._unfit = True
        self._cells, self._kept, self._order = {}, None, []

    def _add(self, rows: list[list[Any]]) -> tuple[bytes, bytes] | None:
        cells = self._cells
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
            t, c = float(ts), float(cost)
            b, pico = _bucket(t), _pico(c)
            if b is None or pico is None:
                return None
            k = (b, model, session, project)
            cell = cells.get(k)
            if cell is None:
                cell = cells[k] = [0, 0, 0, 0, 0, 0, 0, t, t]
            for j in range(5):
                cell[j] += counts[j]
            cell[5] += pico
            cell[6] += 1
            if not all(-_I64 <= x < _I64 for x in cell[:7]):
                return None  # (SQLite's sum() would fail: the SQL path says so)
            cell[7], cell[8] = min(cell[7], t), max(cell[8], t)
            hashes.append(hash(key) & 0xFFFFFFFF)
            times += array("d", (t, c))
        self._n += len(rows)
        return hashes.tobytes(), times.tobytes()

    def finish(self, gone: list[Gone], times: bytes | bytearray) -> tuple[int, list[Marked]] | None:
        got = self._finish(gone, times)
        if got is None:
            self._drop()
        return got

    def _finish(
        self, gone: list[Gone], times: bytes | bytearray
    ) -> tuple[int, list[Marked]] | None:
        if self._unfit or len(times) != 16 * self._n:
            return None
        tv = array("d")
        tv.frombytes(bytes(times))
        cells = self._cells
        marked: set[tuple[int, str, str, str]] = set()
        for rowid, i, o, cc, c1h, cr, session, project, model in gone:
            if not 1 <= rowid <= self._n:
                return None
            ts, cost = tv[2 * rowid - 2], tv[2 * rowid - 1]
            b, pico = _bucket(ts), _pico(cost)
            if b is None or pico is None:
                return None
            k = (b, model, session, project)
            cell = cells.get(k)
            if cell is None:
                return None
            for j, v in enumerate((i, o, cc, c1h, cr, pico, 1)):
                cell[j] -= v
            if ts in (cell[7], cell[8]):
                marked.add(k)
        kept: list[tuple[int, str, str, str]] = sorted(k for k, c in cells.items() if c[6])
        for c in cells.values():
            if c[6] < 0 or (c[6] == 0 and any(c[:6])):
                return None
            if not all(-_I64 <= x < _I64 for x in c[:7]):
                return None
        self._kept, self._order = kept, [cells[k] for k in kept]
        out: list[Marked] = []
        for i, k in enumerate(kept):
            if k in marked:
                out.append((i, *k))
                self._order[i][7:9] = [math.inf, -math.inf]  # (until set_times)
        return len(kept), out

    def set_times(self, index: int, first: float, last: float) -> None:
        if self._kept is None or not 0 <= index < len(self._order):
            raise ValueError("set_times: not a cell finish() kept")
        self._order[index][7:9] = [first, last]

    def derive(self) -> bool:
        """rollup_project, rollup_bucket, rollup_total, rollup_session_model and rollup_session
        from the finished cells, as tokmon.core.rollups' SQL makes them from rollup_cell;
        False when a sum is past 64 bits."""
        if self._kept is None or self._derived is not None:
            raise ValueError("derive: once, after finish()")
        if any(c[7] > c[8] for c in self._order):
            raise ValueError("derive: a cell without its times")
        groups: dict[str, dict[tuple[Any, ...], list[Any]]] = {t: {} for t in DERIVED}
        projects: dict[str, dict[str, float]] = {}  # per session: its projects' latest times
        for (b, model, session, project), c in zip(self._kept, self._order, strict=True):
            for t, key in (
                ("rollup_project", (project,)),
                ("rollup_bucket", (b, model)),
                ("rollup_total", (model,)),
                ("rollup_session_model", (session, model)),
            ):
                g = groups[t].get(key)
                if g is None:
                    groups[t][key] = list(c)
                else:
                    for j in range(7):
                        g[j] += c[j]
                    g[7], g[8] = min(g[7], c[7]), max(g[8], c[8])
            if project:
                seen = projects.setdefault(session, {})
                seen[project] = max(seen.get(project, -math.inf), c[8])
        out: dict[str, list[tuple[Any, ...]]] = {}
        for t in ("rollup_bucket", "rollup_total", "rollup_session_model"):
            out[t] = [(*k, *v) for k, v in sorted(groups[t].items())]
        out["rollup_project"] = [(k[0], v[6]) for k, v in sorted(groups["rollup_project"].items())]
        sessions: dict[str, list[float]] = {}
        for (session, _), v in sorted(groups["rollup_session_model"].items()):
            f = sessions.setdefault(session, [v[7], v[8]])
            f[0], f[1] = min(f[0], v[7]), max(f[1], v[8])
        out["rollup_session"] = []
        for session, (first, last) in sessions.items():
            best = max(((t, p) for p, t in projects.get(session, {}).items()), default=(0.0, ""))
            out["rollup_session"].append((session, best[1], best[0], first, last))
        for rows in out.values():
            for r in rows:
                if not all(-_I64 <= x < _I64 for x in r if type(x) is int):
                    return False
        self._derived = out
        return True

    def count(self, table: str) -> int:
        if self._derived is None or table not in self._derived:
            raise ValueError("count: a table derive() made, after it")
        return len(self._derived[table])

    def table_args(self, table: str, agent: str, start: int, k: int) -> list[Any]:
        rows = (self._derived or {}).get(table)
        if rows is None or not 0 <= start <= start + k <= len(rows):
            raise ValueError("table_args: not rows derive() made")
        return [x for r in rows[start : start + k] for x in (agent, *r)]

    def block_sums(self, lo: int, hi: int) -> list[tuple[Any, ...]] | None:
        """Per model, the sums of the finished cells of buckets ``lo <= b < hi``: (model,
        input, output, cc, c1h, cr, pico, rows, last, first); None past 64 bits."""
        if self._kept is None:
            raise ValueError("block_sums: after finish()")
        per: dict[str, list[Any]] = {}
        at = bisect.bisect_left(self._kept, (lo,))
        for key, c in zip(self._kept[at:], self._order[at:], strict=True):
            if key[0] >= hi:
                break
            p = per.get(key[1])
            if p is None:
                per[key[1]] = list(c)
            else:
                for j in range(7):
                    p[j] += c[j]
                p[7], p[8] = min(p[7], c[7]), max(p[8], c[8])
        out = [(m, *p[:7], p[8], p[7]) for m, p in per.items()]
        if not all(-_I64 <= x < _I64 for r in out for x in r[1:8]):
            return None
        return out

    def args(self, agent: str, start: int, k: int) -> list[Any]:
        kept = self._kept
        if kept is None or not 0 <= start <= start + k <= len(kept):
            raise ValueError("args: not cells finish() kept")
        return [
            x
            for key, c in zip(kept[start : start + k], self._order[start : start + k], strict=True)
            for x in (agent, *key, *c)
        ]
