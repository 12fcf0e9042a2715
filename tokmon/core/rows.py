"""Typed report rows and reports, one JSON serializer each (the Summary: summary_rows.py).

Queries return these objects; every surface reads their attributes and calls ``to_json()``
only at its edge (CLI ``--json``, LSP / JSON-lines messages, the web API). ``to_json``
yields today's wire shapes: ccusage's camelCase key names *and key order* (``tokmon daily
--json`` is compared with ccusage's byte for byte by the parity tests).

Two key orders exist for the same sums: rows and Summary periods say ``totalTokens`` before
``totalCost`` (:class:`Usage`), a report's ``totals`` says ``totalCost`` first
(:class:`Totals`), as ccusage does.
"""

from __future__ import annotations

from typing import Literal

from tokmon.core.model import JSON, JSONObject
from tokmon.core.rows_blocks import BlocksReport
from tokmon.core.rows_json import breakdown_json, session_row_json, totals_json
from tokmon.leanclass import dataclass

#: a period row's label key
PeriodLabel = Literal["date", "week", "month"]
#: a period report's list key
PeriodKind = Literal["daily", "weekly", "monthly"]

__all__ = [
    "JSON",
    "BlocksReport",
    "JSONObject",
    "ModelBreakdown",
    "PeriodKind",
    "PeriodLabel",
    "PeriodReport",
    "PeriodRow",
    "Report",
    "SessionReport",
    "SessionRow",
    "Totals",
    "Usage",
    "breakdown_json",
    "session_row_json",
]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token and cost sums of a group (a period, a session, all time)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    total_cost: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Input + output + cache creation + cache read."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )

    def to_json(self) -> JSONObject:
        """``inputTokens ... totalTokens, totalCost`` (row order)."""
        return {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "cacheCreationTokens": self.cache_creation_tokens,
            "cacheReadTokens": self.cache_read_tokens,
            "totalTokens": self.total_tokens,
            "totalCost": self.total_cost,
        }


@dataclass(frozen=True, slots=True)
class Totals(Usage):
    """A report's ``totals``: the same sums, ``totalCost`` before ``totalTokens``."""

    def to_json(self) -> JSONObject:
        """``inputTokens ... totalCost, totalTokens`` (ccusage's totals order)."""
        return totals_json(
            self.input_tokens,
            self.output_tokens,
            self.cache_creation_tokens,
            self.cache_read_tokens,
            self.total_cost,
        )


@dataclass(frozen=True, slots=True)
class ModelBreakdown:
    """One model's sums inside a row (ccusage's ``modelBreakdowns`` item)."""

    model_name: str
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_read_tokens: int
    cost: float

    def to_json(self) -> JSONObject:
        return breakdown_json(
            self.model_name,
            self.input_tokens,
            self.output_tokens,
            self.cache_creation_tokens,
            self.cache_read_tokens,
            self.cost,
        )


def _breakdowns_json(items: tuple[ModelBreakdown, ...]) -> list[JSON]:
    return [b.to_json() for b in items]


@dataclass(frozen=True, slots=True)
class PeriodRow:
    """One day, week or month of a period report.

    ``label`` names the period (``2026-01-31``, ``2026-W05``'s Sunday date, ``2026-01``);
    ``label_kind`` is its JSON key. ``agent`` is set in ``--agent all`` reports only.
    """

    label_kind: PeriodLabel
    label: str
    usage: Usage
    models_used: tuple[str, ...] = ()
    model_breakdowns: tuple[ModelBreakdown, ...] = ()
    agent: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.usage.total_tokens

    @property
    def total_cost(self) -> float:
        return self.usage.total_cost

    def to_json(self) -> JSONObject:
        """``{date|week|month, [agent,] inputTokens, ..., modelsUsed, modelBreakdowns}``."""
        d: JSONObject = {self.label_kind: self.label}
        if self.agent is not None:
            d["agent"] = self.agent
        d.update(self.usage.to_json())
        d["modelsUsed"] = list(self.models_used)
        d["modelBreakdowns"] = _breakdowns_json(self.model_breakdowns)
        return d


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session's sums (subagents roll up into their parent's session id).

    Times are epoch seconds. ``title`` is Claude's own title (None if it has none);
    ``agent`` is set when rows of every agent are mixed (``--agent all``).
    """

    session_id: str
    project_path: str
    usage: Usage
    first_activity: float
    last_activity: float
    models_used: tuple[str, ...]
    model_breakdowns: tuple[ModelBreakdown, ...]
    project_name: str
    entries: int
    title: str | None
    is_active: bool
    agent: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.usage.total_tokens

    @property
    def total_cost(self) -> float:
        return self.usage.total_cost

    def to_json(self) -> JSONObject:
        """The SessionRow of docs/architecture.md (``agent`` right after ``sessionId``)."""
        u = self.usage
        return session_row_json(
            self.session_id,
            self.agent,
            self.project_path,
            u.input_tokens,
            u.output_tokens,
            u.cache_creation_tokens,
            u.cache_read_tokens,
            u.total_cost,
            self.first_activity,
            self.last_activity,
            list(self.models_used),
            _breakdowns_json(self.model_breakdowns),
            self.project_name,
            self.entries,
            self.title,
            self.is_active,
        )


def _agents_json(agents: dict[str, Totals] | None, d: JSONObject) -> JSONObject:
    if agents is not None:
        d["agents"] = {name: t.to_json() for name, t in agents.items()}
    return d


@dataclass(frozen=True, slots=True)
class PeriodReport:
    """``daily`` / ``weekly`` / ``monthly``: rows, totals and (``--agent all``) per-agent totals."""

    kind: PeriodKind
    rows: list[PeriodRow]
    totals: Totals
    agents: dict[str, Totals] | None = None

    def to_json(self) -> JSONObject:
        """``{daily|weekly|monthly: [...], totals: {...}[, agents: {name: totals}]}``."""
        d: JSONObject = {
            self.kind: [r.to_json() for r in self.rows],
            "totals": self.totals.to_json(),
        }
        return _agents_json(self.agents, d)


@dataclass(frozen=True, slots=True)
class SessionReport:
    """``session``: rows (most expensive first), totals and per-agent totals."""

    rows: list[SessionRow]
    totals: Totals
    agents: dict[str, Totals] | None = None

    def to_json(self) -> JSONObject:
        """``{sessions: [...], totals: {...}[, agents: {name: totals}]}``."""
        d: JSONObject = {
            "sessions": [r.to_json() for r in self.rows],
            "totals": self.totals.to_json(),
        }
        return _agents_json(self.agents, d)


Report = PeriodReport | SessionReport | BlocksReport
