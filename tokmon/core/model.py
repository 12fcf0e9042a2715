"""Typed domain objects of the engine, with one JSON serializer each (camelCase, ccusage shapes).

Times are epoch seconds (UTC floats) inside the core; ISO strings appear only in ``to_json``.

:class:`UsageRecord` is a :class:`typing.NamedTuple`: a plain tuple underneath, so the ledger
loads a million stored rows with ``tuple.__new__`` and no per-field Python work, and the
field getters are C-level descriptors (measured as fast as ``r[4]`` on CPython 3.11), while
every reader uses names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tokmon.core.timeutil import iso

#: JSON values (what ``to_json`` returns, what orjson and json.dumps write)
JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]
JSONObject = dict[str, JSON]


class UsageRecord(NamedTuple):
    """One API response's usage, attributed to a session, project and model.

    ``ts`` (epoch seconds, UTC), ``session_id``, ``project`` (cwd), ``model``, the four token
    counters (``cache_creation_tokens`` includes ``cache_1h_tokens``), ``key`` (the dedup key),
    ``cost`` (USD) and ``display_cost`` (legacy ``costUSD`` or None).
    """

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
    cost: float = 0.0
    display_cost: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> UsageRecord:
        """Build from a stored row in field order (no per-field Python work)."""
        return tuple.__new__(cls, row)

    def with_cost(self, cost: float) -> UsageRecord:
        """The same record priced at ``cost``."""
        return tuple.__new__(UsageRecord, (*self[:10], cost, self[11]))

    @property
    def total_tokens(self) -> int:
        """Input + output + cache creation + cache read."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )

    def __repr__(self) -> str:
        return (
            f"UsageRecord({self.key!r}, ts={self.ts}, session={self.session_id!r}, "
            f"model={self.model!r}, in={self.input_tokens}, out={self.output_tokens}, "
            f"cc={self.cache_creation_tokens}, cr={self.cache_read_tokens})"
        )


FIELDS: tuple[str, ...] = UsageRecord._fields

# Positions in a raw row (the parser's list, a stored ledger row), for the two hot loops that
# work on rows before they become records (the scanner's dedup, the scanner's pricing).
ROW_OUTPUT = FIELDS.index("output_tokens")
ROW_KEY = FIELDS.index("key")
ROW_COST = FIELDS.index("cost")


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
