"""A cold build's blocks' spans from the rows' times and costs, without reading the records.

The stored sums' blocks (:meth:`tokmon.core.rollups.Rollups._store_blocks_sql`) start from
their spans: one pass over every record in (ts, key) order (block edges, counts, costs summed
in that order). A build read those records back on a second connection while it summed the
cells (~40-60 ms of Python at 500 MB on the other core, beside the cells' SQL it slowed). But
the build saw every row as it came: ``CellSums.add`` (:mod:`tokmon.core.cellsums`) gives
each row's time and cost, in the order the rows were appended (rowid order), and the dedup
(``ledger.Stage.settle``) knows which it deleted. So the survivors are sorted by time here
(in C, without the GIL, while the build's connection makes its indexes), each run of equal
times put in key order (the keys read by rowid: ~200 of 32,000 rows at 500 MB), and the
spans made in C as :meth:`~tokmon.core.rollups.Rollups._block_spans` makes them (the same
float operations in the same order). docs/performance.md, nineteenth session.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Iterable
from typing import Any

#: a block's span: first time, start, the next block's first time (None: the last), whether
#: a record sits on its end (when aligned), its record count, its costs summed in order
Span = tuple[float, float, "float | None", bool, int, float]
KeysOf = Callable[[list[int]], dict[int, str]]


def native() -> Any:
    """The native module when the native scanner is in use, else None (the build then reads
    the spans from its records)."""
    from tokmon.core.cellsums import _native

    return _native()


class SpanOrder:
    """The survivors of a build's rows sorted by time, begun on a thread now; :meth:`spans`
    waits for it and makes the spans. ``times``: two doubles a row (ts, cost) in rowid order
    (rowid = index + 1); ``gone``: the indexes of the rows the dedup deleted."""

    def __init__(self, mod: Any, times: bytes | bytearray, gone: Iterable[int]) -> None:
        self._mod = mod
        self._times = times
        self._got: list[Any] = []
        gone_ix = array("I", gone)

        def run() -> None:
            try:
                self._got.append(mod.ts_order(times, gone_ix))
            except BaseException as exc:  # raised again by spans()
                self._got.append(exc)

        self._thread = threading.Thread(target=run, name="tokmon-span-order", daemon=True)
        self._thread.start()

    def spans(self, keys_of: KeysOf, block_seconds: float, aligned: bool) -> list[Span]:
        """The blocks' spans (see Rollups._block_spans); ``keys_of`` gives the keys of rowids
        (those of each run of equal times, to order it as SQL's ``ORDER BY ts, key``)."""
        self._thread.join()
        got = self._got[0]
        if isinstance(got, BaseException):
            raise got
        order_bytes, ties = got
        order = array("I")
        order.frombytes(order_bytes)
        if ties:
            keys = keys_of([order[i] + 1 for lo, hi in ties for i in range(lo, hi)])
            for lo, hi in ties:
                order[lo:hi] = array("I", sorted(order[lo:hi], key=lambda i: keys[i + 1]))
        out: list[Span] = self._mod.spans(order, self._times, block_seconds, aligned)
        self._times = b""
        return out
