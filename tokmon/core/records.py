"""The unit of accounting: one deduplicated API response."""

from __future__ import annotations

import math
from typing import Any

SYNTHETIC_MODEL = "<synthetic>"

# Poison guards shared by the parser and the ledger: a usage count above MAX_TOKENS, or a
# timestamp outside [TS_MIN, TS_MAX), is malformed input. Real responses stay far below
# 10^9 tokens; 1970..2200 keeps every local date of every zone representable (and avoids
# negative timestamps, which Windows cannot convert).
MAX_TOKENS = 10**9
MAX_COST = 1e6  # USD per response: beyond it a figure is poison, not a price
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
