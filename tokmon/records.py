"""The unit of accounting: one deduplicated API response."""

from __future__ import annotations

import math
from operator import itemgetter
from typing import Any

SYNTHETIC_MODEL = "<synthetic>"

FIELDS = (
    "ts",
    "session_id",
    "project",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_1h_tokens",
    "cache_read_tokens",
    "key",
    "cost",
    "display_cost",
)


class UsageRecord(tuple):  # type: ignore[type-arg]
    """One API response's usage, attributed to a session, project and model.

    An immutable tuple (fast to build from a stored row) with named fields:
    ``ts`` (epoch seconds, UTC), ``session_id``, ``project`` (cwd), ``model``, the four
    token counters (``cache_creation_tokens`` includes ``cache_1h_tokens``), ``key``
    (the dedup key), ``cost`` (USD) and ``display_cost`` (legacy ``costUSD`` or None).
    """

    __slots__ = ()

    def __new__(
        cls,
        ts: float,
        session_id: str,
        project: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_creation_tokens: int,
        cache_1h_tokens: int,
        cache_read_tokens: int,
        key: str,
        cost: float = 0.0,
        display_cost: float | None = None,
    ) -> UsageRecord:
        return tuple.__new__(
            cls,
            (ts, session_id, project, model, input_tokens, output_tokens, cache_creation_tokens,
             cache_1h_tokens, cache_read_tokens, key, cost, display_cost),
        )

    @classmethod
    def from_row(cls, row: Any) -> UsageRecord:
        """Build from a stored row in field order (no per-field Python work)."""
        return tuple.__new__(cls, row)

    def with_cost(self, cost: float) -> UsageRecord:
        return tuple.__new__(UsageRecord, (*self[:10], cost, self[11]))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    @property
    def total_tokens(self) -> int:
        return self[4] + self[5] + self[6] + self[8]  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return (
            f"UsageRecord({self.key!r}, ts={self.ts}, session={self.session_id!r}, "
            f"model={self.model!r}, in={self.input_tokens}, out={self.output_tokens}, "
            f"cc={self.cache_creation_tokens}, cr={self.cache_read_tokens})"
        )

    ts: float
    session_id: str
    project: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_1h_tokens: int
    cache_read_tokens: int
    key: str
    cost: float
    display_cost: float | None


for _i, _name in enumerate(FIELDS):
    setattr(UsageRecord, _name, property(itemgetter(_i), doc=f"field {_i}: {_name}"))
del _i, _name


# Poison guards shared by the parser and the ledger: a usage count above MAX_TOKENS, or a
# timestamp outside [TS_MIN, TS_MAX), is malformed input. Real responses stay far below
# 10^9 tokens; 1970..2200 keeps every local date of every zone representable (and avoids
# negative timestamps, which Windows cannot convert).
MAX_TOKENS = 10**9
TS_MIN = 0.0
TS_MAX = 7258118400.0  # 2200-01-01T00:00:00Z


def valid_row(row: Any) -> bool:
    """Whether a stored row has the shape and types of a record (poison values rejected)."""
    if type(row) is not list or len(row) != 12:
        return False
    ts, sid, proj, model, i, o, cc, c1h, cr, key, cost, disp = row
    if type(ts) not in (int, float) or not TS_MIN <= ts < TS_MAX:
        return False
    if not (type(sid) is str and type(proj) is str and type(model) is str and type(key) is str):
        return False
    for n in (i, o, cc, c1h, cr):
        if type(n) is not int or not 0 <= n <= MAX_TOKENS:
            return False
    if type(cost) not in (int, float) or not math.isfinite(cost):
        return False
    return disp is None or (type(disp) in (int, float) and math.isfinite(disp))

