"""5-hour billing blocks (the same algorithm as ccusage), burn rate and projection."""

from __future__ import annotations

from collections.abc import Sequence

from tokmon.records import SYNTHETIC_MODEL, UsageRecord
from tokmon.timeutil import iso

BLOCK_SECONDS = 5 * 3600


def _floor_hour(ts: float) -> float:
    return float(int(ts // 3600) * 3600)


def group_blocks(
    records: Sequence[UsageRecord], block_seconds: float = BLOCK_SECONDS
) -> list[tuple[float, list[UsageRecord]]]:
    """Split time-sorted records into (start, entries) blocks."""
    out: list[tuple[float, list[UsageRecord]]] = []
    start: float | None = None
    cur: list[UsageRecord] = []
    for r in records:
        if start is None:
            start, cur = _floor_hour(r.ts), [r]
            continue
        if r.ts - start > block_seconds or r.ts - cur[-1].ts > block_seconds:
            out.append((start, cur))
            start, cur = _floor_hour(r.ts), [r]
        else:
            cur.append(r)
    if start is not None:
        out.append((start, cur))
    return out


def _tokens(entries: Sequence[UsageRecord]) -> dict[str, int]:
    i = o = cc = cr = 0
    for r in entries:
        i += r.input_tokens
        o += r.output_tokens
        cc += r.cache_creation_tokens
        cr += r.cache_read_tokens
    return {
        "inputTokens": i,
        "outputTokens": o,
        "cacheCreationInputTokens": cc,
        "cacheReadInputTokens": cr,
    }


def block_dict(
    start: float,
    entries: Sequence[UsageRecord],
    now: float,
    block_seconds: float = BLOCK_SECONDS,
) -> dict[str, object]:
    """One ccusage-shaped block, with burn rate and projection when active."""
    end = start + block_seconds
    last = entries[-1].ts
    tc = _tokens(entries)
    total = sum(tc.values())
    cost = 0.0
    models: list[str] = []
    for r in entries:
        cost += r.cost
        if r.model not in models and r.model != SYNTHETIC_MODEL:
            models.append(r.model)
    active = start <= now < end and now - last < block_seconds  # a future block is not active
    burn = None
    proj = None
    if active:
        minutes = (last - entries[0].ts) / 60
        if minutes > 0:
            burn = {
                "tokensPerMinute": total / minutes,
                "tokensPerMinuteForIndicator": (tc["inputTokens"] + tc["outputTokens"]) / minutes,
                "costPerHour": cost / minutes * 60,
            }
            remaining = max(0.0, (end - now) / 60)
            proj = {
                "totalTokens": round(total + burn["tokensPerMinute"] * remaining),
                "totalCost": round((cost + burn["costPerHour"] / 60 * remaining) * 100) / 100,
                "remainingMinutes": round(remaining),
            }
    return {
        "id": iso(start),
        "startTime": iso(start),
        "endTime": iso(end),
        "actualEndTime": iso(last),
        "isActive": active,
        "isGap": False,
        "entries": len(entries),
        "tokenCounts": tc,
        "totalTokens": total,
        "costUSD": cost,
        "models": models,
        "burnRate": burn,
        "projection": proj,
    }


def gap_dict(last_ts: float, next_ts: float, block_seconds: float = BLOCK_SECONDS) -> dict[str, object]:
    start = last_ts + block_seconds
    return {
        "id": f"gap-{iso(start)}",
        "startTime": iso(start),
        "endTime": iso(next_ts),
        "actualEndTime": None,
        "isActive": False,
        "isGap": True,
        "entries": 0,
        "tokenCounts": _tokens(()),
        "totalTokens": 0,
        "costUSD": 0,
        "models": [],
        "burnRate": None,
        "projection": None,
    }


def compute_blocks(
    records: Sequence[UsageRecord],
    now: float,
    block_seconds: float = BLOCK_SECONDS,
    include_gaps: bool = True,
) -> list[dict[str, object]]:
    """All blocks (ccusage JSON shape) for time-sorted records."""
    out: list[dict[str, object]] = []
    prev_last: float | None = None
    for start, entries in group_blocks(records, block_seconds):
        if include_gaps and prev_last is not None and entries[0].ts - prev_last > block_seconds:
            out.append(gap_dict(prev_last, entries[0].ts, block_seconds))
        out.append(block_dict(start, entries, now, block_seconds))
        prev_last = entries[-1].ts
    return out


def max_completed_tokens(blocks: Sequence[dict[str, object]]) -> int | None:
    """The largest total of a finished, non-gap block (ccusage's ``--token-limit max``)."""
    vals = [int(b["totalTokens"]) for b in blocks if not b["isGap"] and not b["isActive"]]  # type: ignore[call-overload]
    return max(vals) if vals else None


def burn_level(
    tokens_per_minute_indicator: float | None, projected_percent: float | None = None
) -> str:
    """How fast the block burns: ccusage's thresholds on non-cache (input + output) tokens
    per minute (> 500 medium, > 1000 high), raised by the projection against the token
    limit: a block projected over its limit is "high", over 80 % at least "medium".

    Surfaces show this level next to the same non-cache rate, so the two always agree.
    """
    level = "low"
    if tokens_per_minute_indicator is not None:
        if tokens_per_minute_indicator > 1000:
            level = "high"
        elif tokens_per_minute_indicator > 500:
            level = "medium"
    if projected_percent is not None:
        if projected_percent > 100:
            return "high"
        if projected_percent > 80 and level == "low":
            return "medium"
    return level


def limit_status(block: dict[str, object], limit: int) -> dict[str, object]:
    """ccusage's ``tokenLimitStatus`` for an active block."""
    proj = block.get("projection") or {}
    projected = int(proj.get("totalTokens", block["totalTokens"]))  # type: ignore[union-attr,arg-type]
    pct = projected / limit * 100 if limit > 0 else 0.0
    status = "exceeds" if pct > 100 else "warning" if pct > 80 else "ok"
    return {"limit": limit, "projectedUsage": projected, "percentUsed": pct, "status": status}


class BlockIndex:
    """Blocks of a growing, time-sorted record list, regrouped only from the last block on.

    Finished blocks never change when records are appended after them, so their dicts are
    built once; a change older than the last block's start rebuilds everything.
    """

    def __init__(self, block_seconds: float = BLOCK_SECONDS) -> None:
        self.block_seconds = block_seconds
        self.groups: list[tuple[float, list[UsageRecord]]] | None = None
        self.done: list[dict[str, object]] = []  # dicts of groups[:-1] (with gaps), finished

    def invalidate(self, from_ts: float | None = None) -> None:
        """Records at or after ``from_ts`` changed (None: anything may have changed)."""
        if self.groups and from_ts is not None and from_ts >= self.groups[-1][0]:
            self._stale_tail = True
            return
        self.groups = None
        self.done = []

    _stale_tail = False

    def blocks(self, records: Sequence[UsageRecord], now: float) -> list[dict[str, object]]:
        """All blocks with gaps, like :func:`compute_blocks`."""
        if records and records[-1].ts > now:
            return compute_blocks(records, now, self.block_seconds)  # future-dated entries
        bs = self.block_seconds
        if self.groups is None:
            self.groups = group_blocks(records, bs)
            self.done = self._dicts(self.groups[:-1], None, now)
            self._stale_tail = False
        elif self._stale_tail:
            import bisect

            start = self.groups[-1][0]
            i = bisect.bisect_left(records, start, key=lambda r: r.ts)
            tail = group_blocks(records[i:], bs)
            prev = self.groups[-2][1][-1].ts if len(self.groups) > 1 else None
            self.groups = self.groups[:-1] + tail
            self.done += self._dicts(tail[:-1], prev, now)
            self._stale_tail = False
        if not self.groups:
            return []
        out = list(self.done)
        start, entries = self.groups[-1]
        if len(self.groups) > 1:
            prev_last = self.groups[-2][1][-1].ts
            if entries[0].ts - prev_last > bs:
                out.append(gap_dict(prev_last, entries[0].ts, bs))
        out.append(block_dict(start, entries, now, bs))
        return out

    def _dicts(
        self, groups: list[tuple[float, list[UsageRecord]]], prev_last: float | None, now: float
    ) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for start, entries in groups:
            if prev_last is not None and entries[0].ts - prev_last > self.block_seconds:
                out.append(gap_dict(prev_last, entries[0].ts, self.block_seconds))
            out.append(block_dict(start, entries, now, self.block_seconds))
            prev_last = entries[-1].ts
        return out
