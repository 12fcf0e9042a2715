"""The Summary (what every live surface shows) and its parts, with one JSON serializer each
(key names and order as :mod:`tokmon.core.rows` describes). Apart from rows.py so a report,
which never builds a Summary, does not pay for these dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from tokmon.core.model import Block, JSONObject
from tokmon.core.rows import PeriodLabel, SessionRow, Usage
from tokmon.core.timeutil import iso

__all__ = [
    "ActiveBlock",
    "AgentToday",
    "ContextWindow",
    "Official",
    "OfficialWindow",
    "PeriodUsage",
    "Summary",
    "TokenLimit",
]


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
