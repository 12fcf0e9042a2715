"""Roll records up per day / week / month / session / project / model (ccusage shapes)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

from tokmon.records import SYNTHETIC_MODEL, UsageRecord
from tokmon.timeutil import iso


class Acc:
    """Running token and cost sums for one group."""

    __slots__ = ("i", "o", "cc", "cr", "cost", "n", "models", "first", "last")

    def __init__(self) -> None:
        self.i = self.o = self.cc = self.cr = self.n = 0
        self.cost = 0.0
        self.models: dict[str, Acc] | None = None
        self.first = float("inf")
        self.last = float("-inf")

    def add(self, r: UsageRecord, by_model: bool = True) -> None:
        self.i += r.input_tokens
        self.o += r.output_tokens
        self.cc += r.cache_creation_tokens
        self.cr += r.cache_read_tokens
        self.cost += r.cost
        self.n += 1
        if r.ts < self.first:
            self.first = r.ts
        if r.ts > self.last:
            self.last = r.ts
        if by_model:
            if self.models is None:
                self.models = {}
            m = self.models.get(r.model)
            if m is None:
                m = self.models[r.model] = Acc()
            m.add(r, False)

    @property
    def total(self) -> int:
        return self.i + self.o + self.cc + self.cr

    def tokens(self) -> dict[str, object]:
        return {
            "inputTokens": self.i,
            "outputTokens": self.o,
            "cacheCreationTokens": self.cc,
            "cacheReadTokens": self.cr,
            "totalTokens": self.total,
            "totalCost": self.cost,
        }

    def model_names(self) -> list[str]:
        return [m for m in (self.models or {}) if m != SYNTHETIC_MODEL]

    def breakdowns(self) -> list[dict[str, object]]:
        rows = [
            {
                "modelName": name,
                "inputTokens": a.i,
                "outputTokens": a.o,
                "cacheCreationTokens": a.cc,
                "cacheReadTokens": a.cr,
                "cost": a.cost,
            }
            for name, a in (self.models or {}).items()
            if name != SYNTHETIC_MODEL
        ]
        rows.sort(key=lambda r: -r["cost"])  # type: ignore[operator]
        return rows

    def row(self) -> dict[str, object]:
        d = self.tokens()
        d["modelsUsed"] = self.model_names()
        d["modelBreakdowns"] = self.breakdowns()
        return d


def group(records: Iterable[UsageRecord], key: Callable[[UsageRecord], str]) -> dict[str, Acc]:
    out: dict[str, Acc] = {}
    for r in records:
        k = key(r)
        a = out.get(k)
        if a is None:
            a = out[k] = Acc()
        a.add(r)
    return out


def totals(records: Iterable[UsageRecord]) -> Acc:
    a = Acc()
    for r in records:
        a.add(r, False)
    return a


def totals_dict(a: Acc) -> dict[str, object]:
    return {
        "inputTokens": a.i,
        "outputTokens": a.o,
        "cacheCreationTokens": a.cc,
        "cacheReadTokens": a.cr,
        "totalCost": a.cost,
        "totalTokens": a.total,
    }


def period_report(
    records: Sequence[UsageRecord],
    key: Callable[[UsageRecord], str],
    label: str,
    list_name: str,
    order: str = "asc",
) -> dict[str, object]:
    """``{list_name: [{label: k, ...}], "totals": {...}}`` like ``ccusage claude daily``."""
    groups = group(records, key)
    rows = []
    for k in sorted(groups, reverse=(order == "desc")):
        row: dict[str, object] = {label: k}
        row.update(groups[k].row())
        rows.append(row)
    return {list_name: rows, "totals": totals_dict(totals(records))}


def project_name(path: str) -> str:
    base = os.path.basename(path.rstrip("/\\")) if path else ""
    return base or path or "unknown"


def session_rows(
    records: Sequence[UsageRecord],
    titles: dict[str, str] | None = None,
    now: float | None = None,
    active_seconds: float = 5 * 3600,
) -> list[dict[str, object]]:
    """One SessionRow per session id (subagents roll up by their parent's sessionId)."""
    groups = group(records, lambda r: r.session_id)
    projects: dict[str, str] = {}
    for r in records:  # the session's project is the cwd of its latest line that has one
        if r.project:
            projects[r.session_id] = r.project
    titles = titles or {}
    rows = []
    for sid, a in groups.items():
        proj = projects.get(sid, "")
        row: dict[str, object] = {"sessionId": sid, "projectPath": proj}
        row.update(a.tokens())
        row.update(
            {
                "firstActivity": iso(a.first),
                "lastActivity": iso(a.last),
                "modelsUsed": a.model_names(),
                "modelBreakdowns": a.breakdowns(),
                "projectName": project_name(proj),
                "entries": a.n,
                "title": titles.get(sid),
                "isActive": now is not None and now - a.last < active_seconds,
            }
        )
        rows.append(row)
    return rows
