"""Per-agent reports in ccusage's JSON shapes (``ccusage <agent> daily|monthly|session --json``).

Token meanings follow ccusage's per-agent columns: ``inputTokens`` is input net of the cache,
Codex's ``outputTokens`` includes reasoning (with ``reasoningOutputTokens`` beside it), Gemini's
``outputTokens`` leaves the thoughts out (they are in ``totalTokens``). Costs: what the agent
recorded (OpenCode, Amp credits / 100, Copilot nano-AIU), else the offline price table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokmon.core.model import UsageRecord
from tokmon.core.pricing import PriceTable
from tokmon.core.timeutil import DateKeyer, iso, resolve_tz
from tokmon.sources.base import AgentUsage

# Agents whose ccusage outputTokens leave reasoning out (it is added to totalTokens only).
OUTPUT_WITHOUT_REASONING = {"gemini"}


def usage_record(r: AgentUsage, key: str | None = None) -> UsageRecord:
    """The engine's record of one agent usage (cache writes as cache creation), unpriced."""
    return UsageRecord(
        r.ts,
        r.session_id,
        r.project,
        r.model,
        r.input_tokens,
        r.output_tokens,
        r.cache_write_tokens,
        0,
        r.cache_read_tokens,
        r.key if key is None else key,
    )


def record_cost(r: AgentUsage, prices: PriceTable | None, rec: UsageRecord | None = None) -> float:
    """USD of one record: the agent's own figure, else the price table (0 when unknown).

    ``rec``: the record already built by :func:`usage_record`, when the caller has one."""
    if r.cost is not None:
        return r.cost
    if prices is None:
        return 0.0
    return prices.cost(rec if rec is not None else usage_record(r))


@dataclass
class Sums:
    """Token, cost and count sums of one group of records."""

    i: int = 0
    o: int = 0
    cr: int = 0
    cw: int = 0
    rs: int = 0
    cost: float = 0.0
    credits: float = 0.0
    has_credits: bool = False
    n: int = 0
    requests: int = 0
    first: float = float("inf")
    last: float = float("-inf")
    project: str = ""
    models: dict[str, Sums] = field(default_factory=dict)

    def add(self, r: AgentUsage, cost: float, by_model: bool = True) -> None:
        self.i += r.input_tokens
        self.o += r.output_tokens
        self.cr += r.cache_read_tokens
        self.cw += r.cache_write_tokens
        self.rs += r.reasoning_tokens
        self.cost += cost
        if r.credits is not None:
            self.credits += r.credits
            self.has_credits = True
        self.n += 1
        self.requests += r.requests
        self.first = min(self.first, r.ts)
        self.last = max(self.last, r.ts)
        if r.project:
            self.project = r.project
        if by_model:
            self.models.setdefault(r.model, Sums()).add(r, cost, False)

    @property
    def total(self) -> int:
        return self.i + self.o + self.cr + self.cw

    def tokens(self, agent: str, generic: bool = False) -> dict[str, Any]:
        out = self.o - self.rs if agent in OUTPUT_WITHOUT_REASONING else self.o
        d: dict[str, Any] = {
            "inputTokens": self.i,
            "outputTokens": out,
            "cacheCreationTokens": self.cw,
            "cacheReadTokens": self.cr,
            "totalTokens": self.total,
        }
        if agent == "codex" and not generic:
            d["reasoningOutputTokens"] = self.rs
            d["costUSD"] = self.cost
        else:
            d["totalCost"] = self.cost
        if agent == "amp" or self.has_credits:
            d["credits"] = self.credits
        if agent == "copilot":
            d["messageCount"] = self.requests
        return d

    def row(self, agent: str, generic: bool = False) -> dict[str, Any]:
        d = self.tokens(agent, generic)
        if agent == "codex" and not generic:
            d["models"] = {
                m: {
                    **{k: v for k, v in s.tokens(agent).items() if k != "costUSD"},
                    "isFallback": False,
                }
                for m, s in sorted(self.models.items())
            }
        else:
            d["modelsUsed"] = sorted(self.models)
            d["modelBreakdowns"] = sorted(
                (
                    {
                        "modelName": m,
                        "inputTokens": s.i,
                        "outputTokens": s.o - s.rs if agent in OUTPUT_WITHOUT_REASONING else s.o,
                        "cacheCreationTokens": s.cw,
                        "cacheReadTokens": s.cr,
                        "cost": s.cost,
                    }
                    for m, s in self.models.items()
                ),
                key=lambda b: -b["cost"],
            )
        return d


def _group(
    records: Iterable[AgentUsage], key: Callable[[AgentUsage], str], prices: PriceTable | None
) -> dict[str, Sums]:
    out: dict[str, Sums] = {}
    for r in records:
        out.setdefault(key(r), Sums()).add(r, record_cost(r, prices))
    return out


def _filter(
    records: Sequence[AgentUsage], keyer: DateKeyer, since: str | None, until: str | None
) -> list[AgentUsage]:
    if not since and not until:
        return list(records)
    return [
        r
        for r in records
        if (not since or keyer.day(r.ts) >= since) and (not until or keyer.day(r.ts) <= until)
    ]


def unpriced(records: Iterable[AgentUsage], prices: PriceTable | None) -> list[str]:
    """Models that cost 0 because neither the agent nor the price table gives a price."""
    if prices is None:
        return []
    return sorted({r.model for r in records if r.cost is None and prices.lookup(r.model) is None})


def agent_report(
    agent: str,
    kind: str,
    records: Sequence[AgentUsage],
    prices: PriceTable | None = None,
    timezone: str | None = None,
    since: str | None = None,
    until: str | None = None,
    order: str = "asc",
) -> dict[str, Any]:
    """``daily``, ``monthly`` or ``session`` report of one agent's records (ccusage shape)."""
    keyer = DateKeyer(resolve_tz(timezone))
    records = _filter(records, keyer, since, until)
    total = Sums()
    for r in records:
        total.add(r, record_cost(r, prices), False)
    totals = total.tokens(agent)
    missing = unpriced(records, prices)
    if missing:
        totals["unpricedModels"] = missing
    if kind == "session":
        groups = _group(records, lambda r: r.session_id, prices)
        rows = []
        for sid, s in sorted(groups.items(), key=lambda kv: kv[1].last, reverse=(order == "desc")):
            row: dict[str, Any] = {"sessionId": sid}
            if agent == "codex":
                head, _, tail = sid.rpartition("/")
                row.update(sessionFile=tail, directory=head)
            row.update(s.row(agent))
            row.update(projectPath=s.project, firstActivity=iso(s.first), lastActivity=iso(s.last))
            rows.append(row)
        return {"sessions": rows, "totals": totals}
    label, list_name, fn = {
        "daily": ("date", "daily", keyer.day),
        "monthly": ("month", "monthly", keyer.month),
    }[kind]
    groups = _group(records, lambda r: fn(r.ts), prices)
    rows = []
    for k in sorted(groups, reverse=(order == "desc")):
        row = {label: k}
        row.update(groups[k].row(agent))
        rows.append(row)
    return {list_name: rows, "totals": totals}


def unified_report(
    by_agent: Mapping[str, Sequence[AgentUsage]],
    kind: str,
    prices: PriceTable | None = None,
    timezone: str | None = None,
    since: str | None = None,
    until: str | None = None,
    order: str = "asc",
) -> dict[str, Any]:
    """All agents per period, like ``ccusage daily|monthly --by-agent --json``: one row per
    period with the period's sum (``agent: "all"``) and an ``agents`` list of per-agent rows."""
    keyer = DateKeyer(resolve_tz(timezone))
    fn = {"daily": keyer.day, "monthly": keyer.month}[kind]
    cells: dict[str, dict[str, Sums]] = {}
    missing: set[str] = set()
    for agent, records in by_agent.items():
        recs = _filter(records, keyer, since, until)
        missing.update(unpriced(recs, prices))
        for r in recs:
            cells.setdefault(fn(r.ts), {}).setdefault(agent, Sums()).add(r, record_cost(r, prices))
    fields = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
    totals: dict[str, Any] = {f: 0 for f in (*fields, "totalTokens")}
    totals["totalCost"] = 0.0
    rows = []
    for period in sorted(cells, reverse=(order == "desc")):
        entries = [
            {"agent": agent, **cells[period][agent].row(agent, generic=True)}
            for agent in by_agent
            if agent in cells[period]
        ]
        row: dict[str, Any] = {"period": period, "agent": "all", "agents": entries}
        for f in (*fields, "totalTokens", "totalCost"):
            row[f] = sum(e[f] for e in entries)
            totals[f] += row[f]
        models: dict[str, dict[str, Any]] = {}
        for e in entries:
            for b in e["modelBreakdowns"]:
                m = models.setdefault(b["modelName"], {"modelName": b["modelName"]})
                for f in (*fields, "cost"):
                    m[f] = m.get(f, 0) + b[f]
        row["modelBreakdowns"] = sorted(models.values(), key=lambda b: -b["cost"])
        row["modelsUsed"] = sorted(models)
        row["metadata"] = {"agents": [e["agent"] for e in entries]}
        rows.append(row)
    if missing:
        totals["unpricedModels"] = sorted(missing)
    return {"daily" if kind == "daily" else "monthly": rows, "totals": totals}
