"""5-hour billing blocks (the same algorithm as ccusage), burn rate and projection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from tokmon.core.model import UsageRecord
from tokmon.core.records import SYNTHETIC_MODEL

if TYPE_CHECKING:  # (imported where a block is made: a report that makes none never defines them)
    from tokmon.core.model_blocks import Block, TokenCounts, TokenLimitStatus

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


def _tokens(entries: Sequence[UsageRecord]) -> TokenCounts:
    i = o = cc = cr = 0
    for r in entries:
        i += r.input_tokens
        o += r.output_tokens
        cc += r.cache_creation_tokens
        cr += r.cache_read_tokens
    from tokmon.core.model_blocks import TokenCounts

    return TokenCounts(i, o, cc, cr)


def make_block(
    start: float,
    entries: Sequence[UsageRecord],
    now: float,
    block_seconds: float = BLOCK_SECONDS,
) -> Block:
    """One block, with burn rate and projection when active."""
    from tokmon.core.model_blocks import Block, BurnRate, Projection

    end = start + block_seconds
    last = entries[-1].ts
    tc = _tokens(entries)
    total = tc.total
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
            burn = BurnRate(total / minutes, (tc.input + tc.output) / minutes, cost / minutes * 60)
            remaining = max(0.0, (end - now) / 60)
            proj = Projection(
                round(total + burn.tokens_per_minute * remaining),
                round((cost + burn.cost_per_hour / 60 * remaining) * 100) / 100,
                round(remaining),
            )
    return Block(start, end, last, active, False, len(entries), tc, cost, models, burn, proj)


def make_gap(last_ts: float, next_ts: float, block_seconds: float = BLOCK_SECONDS) -> Block:
    """The idle stretch between two blocks (ccusage's gap block)."""
    from tokmon.core.model_blocks import Block, TokenCounts

    return Block(last_ts + block_seconds, next_ts, None, False, True, 0, TokenCounts(), 0.0)


def compute_blocks(
    records: Sequence[UsageRecord],
    now: float,
    block_seconds: float = BLOCK_SECONDS,
    include_gaps: bool = True,
) -> list[Block]:
    """All blocks for time-sorted records."""
    out: list[Block] = []
    prev_last: float | None = None
    for start, entries in group_blocks(records, block_seconds):
        if include_gaps and prev_last is not None and entries[0].ts - prev_last > block_seconds:
            out.append(make_gap(prev_last, entries[0].ts, block_seconds))
        out.append(make_block(start, entries, now, block_seconds))
        prev_last = entries[-1].ts
    return out


def blocks_json(blocks: Iterable[Block]) -> list[dict[str, Any]]:
    """ccusage's ``blocks --json`` list."""
    return [b.to_json() for b in blocks]


def max_completed_tokens(blocks: Iterable[Block]) -> int | None:
    """The largest total of a finished, non-gap block (ccusage's ``--token-limit max``)."""
    vals = [b.total_tokens for b in blocks if not b.is_gap and not b.is_active]
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


def limit_status(block: Block, limit: int) -> TokenLimitStatus:
    """ccusage's ``tokenLimitStatus`` for an active block."""
    from tokmon.core.model_blocks import TokenLimitStatus

    proj = block.projection
    projected = proj.total_tokens if proj is not None else block.total_tokens
    pct = projected / limit * 100 if limit > 0 else 0.0
    status = "exceeds" if pct > 100 else "warning" if pct > 80 else "ok"
    return TokenLimitStatus(limit, projected, pct, status)


class BlockIndex:
    """Blocks of a growing, time-sorted record list, regrouped only from the last block on.

    Finished blocks never change when records are appended after them, so their blocks are
    built once; a change older than the last block's start rebuilds everything.
    """

    def __init__(self, block_seconds: float = BLOCK_SECONDS) -> None:
        self.block_seconds = block_seconds
        self.groups: list[tuple[float, list[UsageRecord]]] | None = None
        self.done: list[Block] = []  # blocks of groups[:-1] (with gaps), finished

    def invalidate(self, from_ts: float | None = None) -> None:
        """Records at or after ``from_ts`` changed (None: anything may have changed)."""
        if self.groups and from_ts is not None and from_ts >= self.groups[-1][0]:
            self._stale_tail = True
            return
        self.groups = None
        self.done = []

    _stale_tail = False

    def blocks(self, records: Sequence[UsageRecord], now: float) -> list[Block]:
        """All blocks with gaps, like :func:`compute_blocks`."""
        if records and records[-1].ts > now:
            return compute_blocks(records, now, self.block_seconds)  # future-dated entries
        bs = self.block_seconds
        if self.groups is None:
            self.groups = group_blocks(records, bs)
            self.done = self._build(self.groups[:-1], None, now)
            self._stale_tail = False
        elif self._stale_tail:
            import bisect

            start = self.groups[-1][0]
            i = bisect.bisect_left(records, start, key=lambda r: r.ts)
            tail = group_blocks(records[i:], bs)
            prev = self.groups[-2][1][-1].ts if len(self.groups) > 1 else None
            self.groups = self.groups[:-1] + tail
            self.done += self._build(tail[:-1], prev, now)
            self._stale_tail = False
        if not self.groups:
            return []
        out = list(self.done)
        start, entries = self.groups[-1]
        if len(self.groups) > 1:
            prev_last = self.groups[-2][1][-1].ts
            if entries[0].ts - prev_last > bs:
                out.append(make_gap(prev_last, entries[0].ts, bs))
        out.append(make_block(start, entries, now, bs))
        return out

    def _build(
        self, groups: list[tuple[float, list[UsageRecord]]], prev_last: float | None, now: float
    ) -> list[Block]:
        out: list[Block] = []
        for start, entries in groups:
            if prev_last is not None and entries[0].ts - prev_last > self.block_seconds:
                out.append(make_gap(prev_last, entries[0].ts, self.block_seconds))
            out.append(make_block(start, entries, now, self.block_seconds))
            prev_last = entries[-1].ts
        return out
