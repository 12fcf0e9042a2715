"""The types of 5-hour billing blocks (:mod:`tokmon.core.blocks`), with their JSON
(ccusage's ``blocks --json`` shapes).

Apart from :mod:`tokmon.core.model`, which names them too (``tokmon.core.model.Block``), so
that a report that makes no block does not define them: five dataclasses cost a start-up
~2 ms of CPU to define (with the standard library's ``dataclasses``, which also imports
``inspect``: ~5 ms more; :mod:`tokmon.leanclass` makes them now).
"""

from __future__ import annotations

from tokmon.core.model import JSONObject
from tokmon.core.timeutil import iso
from tokmon.leanclass import dataclass, field


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """The four token counters of a block (ccusage's ``tokenCounts``)."""

    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_creation + self.cache_read

    def to_json(self) -> JSONObject:
        return {
            "inputTokens": self.input,
            "outputTokens": self.output,
            "cacheCreationInputTokens": self.cache_creation,
            "cacheReadInputTokens": self.cache_read,
        }


@dataclass(frozen=True, slots=True)
class BurnRate:
    """Tokens and cost per minute/hour of an active block."""

    tokens_per_minute: float
    tokens_per_minute_for_indicator: float
    cost_per_hour: float

    def to_json(self) -> JSONObject:
        return {
            "tokensPerMinute": self.tokens_per_minute,
            "tokensPerMinuteForIndicator": self.tokens_per_minute_for_indicator,
            "costPerHour": self.cost_per_hour,
        }


@dataclass(frozen=True, slots=True)
class Projection:
    """Where an active block ends at its current burn rate."""

    total_tokens: int
    total_cost: float
    remaining_minutes: int

    def to_json(self) -> JSONObject:
        return {
            "totalTokens": self.total_tokens,
            "totalCost": self.total_cost,
            "remainingMinutes": self.remaining_minutes,
        }


@dataclass(frozen=True, slots=True)
class TokenLimitStatus:
    """ccusage's ``tokenLimitStatus`` of an active block."""

    limit: int
    projected_usage: int
    percent_used: float
    status: str

    def to_json(self) -> JSONObject:
        return {
            "limit": self.limit,
            "projectedUsage": self.projected_usage,
            "percentUsed": self.percent_used,
            "status": self.status,
        }


@dataclass(slots=True)
class Block:
    """A 5-hour billing block (or the gap between two): times are epoch seconds."""

    start: float
    end: float
    last: float | None  # the last entry's time (None for a gap)
    is_active: bool
    is_gap: bool
    entries: int
    tokens: TokenCounts
    cost: float
    models: list[str] = field(default_factory=list)
    burn_rate: BurnRate | None = None
    projection: Projection | None = None
    token_limit_status: TokenLimitStatus | None = None

    @property
    def total_tokens(self) -> int:
        return self.tokens.total

    def to_json(self) -> JSONObject:
        """ccusage's block JSON (``blocks --json``), key order included."""
        gap = self.is_gap
        d: JSONObject = {
            "id": f"gap-{iso(self.start)}" if gap else iso(self.start),
            "startTime": iso(self.start),
            "endTime": iso(self.end),
            "actualEndTime": None if self.last is None else iso(self.last),
            "isActive": self.is_active,
            "isGap": gap,
            "entries": self.entries,
            "tokenCounts": self.tokens.to_json(),
            "totalTokens": self.tokens.total,
            "costUSD": 0 if gap else self.cost,
            "models": list(self.models),
            "burnRate": None if self.burn_rate is None else self.burn_rate.to_json(),
            "projection": None if self.projection is None else self.projection.to_json(),
        }
        if self.token_limit_status is not None:
            d["tokenLimitStatus"] = self.token_limit_status.to_json()
        return d
