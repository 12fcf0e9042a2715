"""Typed report rows, reports and the Summary, with one JSON serializer each.

Queries return these objects; every surface reads their attributes and calls ``to_json()``
only at its edge (CLI ``--json``, LSP / JSON-lines messages, the web API). ``to_json``
yields today's wire shapes: ccusage's camelCase key names *and key order* (``tokmon daily
--json`` is compared with ccusage's byte for byte by the parity tests).

Two key orders exist for the same sums: rows and Summary periods say ``totalTokens`` before
``totalCost`` (:class:`Usage`), a report's ``totals`` says ``totalCost`` first
(:class:`Totals`), as ccusage does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tokmon.core.model import JSON, Block, JSONObject
from tokmon.core.timeutil import iso

#: a period row's label key
PeriodLabel = Literal["date", "week", "month"]
#: a period report's list key
PeriodKind = Literal["daily", "weekly", "monthly"]

__all__ = [
    "JSON",
    "ActiveBlock",
    "AgentToday",
    "BlocksReport",
    "ContextWindow",
    "JSONObject",
    "ModelBreakdown",
    "Official",
    "OfficialWindow",
    "PeriodKind",
    "PeriodLabel",
    "PeriodReport",
    "PeriodRow",
    "PeriodUsage",
    "Report",
    "SessionReport",
    "SessionRow",
    "Summary",
    "TokenLimit",
    "Totals",
    "Usage",
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
        return {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "cacheCreationTokens": self.cache_creation_tokens,
            "cacheReadTokens": self.cache_read_tokens,
            "totalCost": self.total_cost,
            "totalTokens": self.total_tokens,
        }


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
        return {
            "modelName": self.model_name,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "cacheCreationTokens": self.cache_creation_tokens,
            "cacheReadTokens": self.cache_read_tokens,
            "cost": self.cost,
        }


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
        d: JSONObject = {"sessionId": self.session_id}
        if self.agent is not None:
            d["agent"] = self.agent
        d["projectPath"] = self.project_path
        d.update(self.usage.to_json())
        d["firstActivity"] = iso(self.first_activity)
        d["lastActivity"] = iso(self.last_activity)
        d["modelsUsed"] = list(self.models_used)
        d["modelBreakdowns"] = _breakdowns_json(self.model_breakdowns)
        d["projectName"] = self.project_name
        d["entries"] = self.entries
        d["title"] = self.title
        d["isActive"] = self.is_active
        return d


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


@dataclass(frozen=True, slots=True)
class BlocksReport:
    """``blocks``: 5-hour billing blocks, gaps included."""

    blocks: list[Block]

    def to_json(self) -> JSONObject:
        """``{blocks: [...]}`` (ccusage's ``blocks --json``)."""
        return {"blocks": [b.to_json() for b in self.blocks]}


Report = PeriodReport | SessionReport | BlocksReport


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    """A Summary period: today, this week or this month, with its label."""

    label_kind: PeriodLabel
    label: str
    usage: Usage

    def to_json(self) -> JSONObject:
        """``{date|week|month, inputTokens, ..., totalTokens, totalCost}``."""
        d: JSONObject = {self.label_kind: self.label}
        d.update(self.usage.to_json())
        return d


@dataclass(frozen=True, slots=True)
class ActiveBlock:
    """The current 5-hour block as the Summary shows it."""

    block: Block
    remaining_minutes: float
    burn_level: str
    limit_percent: float | None

    def to_json(self) -> JSONObject:
        """The block's JSON plus ``remainingMinutes``, ``burnLevel``, ``limitPercent``."""
        d: JSONObject = self.block.to_json()
        d["remainingMinutes"] = self.remaining_minutes
        d["burnLevel"] = self.burn_level
        d["limitPercent"] = self.limit_percent
        return d


@dataclass(frozen=True, slots=True)
class TokenLimit:
    """The block token limit and where it came from (``config``, ``max-completed-block``)."""

    tokens: int | None
    source: str | None

    def to_json(self) -> JSONObject:
        return {"tokens": self.tokens, "source": self.source}


def _opt_float(v: object) -> float | None:
    # kept as stored (an int stays an int): the Summary shows the record as written
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _opt_str(v: object) -> str | None:
    return v if isinstance(v, str) else None


@dataclass(frozen=True, slots=True)
class OfficialWindow:
    """Claude Code's 5-hour or 7-day utilisation (epoch seconds)."""

    used_percentage: float
    resets_at: float | None
    observed_at: float | None

    @classmethod
    def parse(cls, raw: object) -> OfficialWindow | None:
        """From a stored ``fiveHour`` / ``sevenDay`` object (None if it has no percentage)."""
        if not isinstance(raw, dict):
            return None
        used = _opt_float(raw.get("usedPercentage"))
        if used is None:
            return None
        return cls(used, _opt_float(raw.get("resetsAt")), _opt_float(raw.get("observedAt")))

    def to_json(self) -> JSONObject:
        return {
            "usedPercentage": self.used_percentage,
            "resetsAt": self.resets_at,
            "observedAt": self.observed_at,
        }


@dataclass(frozen=True, slots=True)
class ContextWindow:
    """The session's context window use, as Claude Code reported it."""

    used_percentage: float | None
    remaining_percentage: float | None
    size: int | None
    total_input_tokens: float | None
    total_output_tokens: float | None

    @classmethod
    def parse(cls, raw: object) -> ContextWindow | None:
        """From a stored ``contextWindow`` object."""
        if not isinstance(raw, dict):
            return None
        size = _opt_float(raw.get("size"))
        return cls(
            _opt_float(raw.get("usedPercentage")),
            _opt_float(raw.get("remainingPercentage")),
            None if size is None else int(size),
            _opt_float(raw.get("totalInputTokens")),
            _opt_float(raw.get("totalOutputTokens")),
        )

    def to_json(self) -> JSONObject:
        return {
            "usedPercentage": self.used_percentage,
            "remainingPercentage": self.remaining_percentage,
            "size": self.size,
            "totalInputTokens": self.total_input_tokens,
            "totalOutputTokens": self.total_output_tokens,
        }


@dataclass(frozen=True, slots=True)
class Official:
    """The latest official figures (:func:`tokmon.core.official.latest`): the record shape of
    :mod:`tokmon.core.official`, values checked when read back from the store."""

    session_id: str | None
    session_name: str | None
    observed_at: float | None
    model: str | None
    cwd: str | None
    cost_usd: float | None
    five_hour: OfficialWindow | None
    seven_day: OfficialWindow | None
    context_window: ContextWindow | None

    @classmethod
    def parse(cls, rec: object) -> Official | None:
        """From a stored record (None if it is not an object)."""
        if not isinstance(rec, dict):
            return None
        return cls(
            _opt_str(rec.get("sessionId")),
            _opt_str(rec.get("sessionName")),
            _opt_float(rec.get("observedAt")),
            _opt_str(rec.get("model")),
            _opt_str(rec.get("cwd")),
            _opt_float(rec.get("costUSD")),
            OfficialWindow.parse(rec.get("fiveHour")),
            OfficialWindow.parse(rec.get("sevenDay")),
            ContextWindow.parse(rec.get("contextWindow")),
        )

    def to_json(self) -> JSONObject:
        """The record shape (``sessionId, sessionName, observedAt, ..., contextWindow``)."""
        return {
            "sessionId": self.session_id,
            "sessionName": self.session_name,
            "observedAt": self.observed_at,
            "model": self.model,
            "cwd": self.cwd,
            "costUSD": self.cost_usd,
            "fiveHour": None if self.five_hour is None else self.five_hour.to_json(),
            "sevenDay": None if self.seven_day is None else self.seven_day.to_json(),
            "contextWindow": (
                None if self.context_window is None else self.context_window.to_json()
            ),
        }


@dataclass(frozen=True, slots=True)
class AgentToday:
    """One agent's today and all-time sums (the Summary's ``agents``)."""

    today: PeriodUsage
    totals: Usage

    def to_json(self) -> JSONObject:
        return {"today": self.today.to_json(), "totals": self.totals.to_json()}


@dataclass(frozen=True, slots=True)
class Summary:
    """What every live surface shows: periods, the current block, limits, official figures,
    active sessions. ``agents`` is set only when other agents than Claude Code have data
    (a Claude-only summary keeps its shape)."""

    generated_at: float
    timezone: str
    today: PeriodUsage
    week: PeriodUsage
    month: PeriodUsage
    totals: Usage
    active_block: ActiveBlock | None
    token_limit: TokenLimit
    official: Official | None
    active_sessions: list[SessionRow]
    project_session: SessionRow | None
    agents: dict[str, AgentToday] | None = None

    def to_json(self) -> JSONObject:
        """The Summary object of docs/protocol.md."""
        d: JSONObject = {
            "generatedAt": iso(self.generated_at),
            "timezone": self.timezone,
            "today": self.today.to_json(),
            "week": self.week.to_json(),
            "month": self.month.to_json(),
            "totals": self.totals.to_json(),
            "activeBlock": None if self.active_block is None else self.active_block.to_json(),
            "tokenLimit": self.token_limit.to_json(),
            "official": None if self.official is None else self.official.to_json(),
            "activeSessions": [r.to_json() for r in self.active_sessions],
            "projectSession": (
                None if self.project_session is None else self.project_session.to_json()
            ),
        }
        if self.agents is not None:
            d["agents"] = {name: a.to_json() for name, a in self.agents.items()}
        return d
