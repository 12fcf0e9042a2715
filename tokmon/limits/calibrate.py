"""How many tokens / dollars one percent of each window costs, learned from history.

For every past or current window instance (Claude's windows against Claude Code's records,
Codex's ``primary`` / ``secondary`` against Codex's records) whose latest official figure is
at least :data:`MIN_USED` %, the local usage of that agent in
``[window start, time of that figure]`` (engine records) is set against the figure:

* ``dollarsPerPercent`` = sum of local cost / sum of the figures
* ``tokensPerPercent``  = sum of local tokens / sum of the figures (today's model mix)
* per model ``m``: ``tokensPerPercent[m] = dollarsPerPercent * tokens_m / cost_m``, the
  tokens of ``m`` alone that would cost one percent, assuming the plan meters usage in
  proportion to API prices (Anthropic's limits are priced-usage based).

Usage from other machines, the web or the desktop app is invisible locally, so the
ratios are lower bounds of what one percent really takes; they are estimates. Codex's
records are priced with the offline table (OpenAI API prices): its plans meter in their own
units, so its ``dollarsPerPercent`` is API-equivalent dollars per percent.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from tokmon.limits.history import WindowInstance

MIN_USED = 1.0


def usage_between(
    records: Sequence[Any], times: Sequence[float], lo: float, hi: float
) -> tuple[float, int, dict[str, list[float]]]:
    """``(cost, tokens, {model: [tokens, cost]})`` of records with ``lo <= ts <= hi``."""
    i = bisect.bisect_left(times, lo)
    j = bisect.bisect_right(times, hi)
    cost = 0.0
    tokens = 0
    models: dict[str, list[float]] = {}
    for r in records[i:j]:
        t = r.total_tokens
        cost += r.cost
        tokens += t
        acc = models.setdefault(r.model, [0.0, 0.0])
        acc[0] += t
        acc[1] += r.cost
    return cost, tokens, models


def calibrate(
    insts: Sequence[WindowInstance],
    records: Sequence[Any],
    others: Mapping[str, Sequence[Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """``window -> {"source", "windows", "percent", "cost", "tokens", "dollarsPerPercent",
    "tokensPerPercent", "models": {model: {"tokens", "cost", "tokensPerPercent"}}}``.

    ``records``: Claude Code's, sorted by time; ``others``: other sources' (``codex``), the
    same way. Window names of different sources never collide (``five_hour``, ``seven_day*``
    are Claude's, ``primary`` / ``secondary`` Codex's)."""
    by_source: dict[str, tuple[Sequence[Any], list[float]]] = {
        "claude": (records, [r.ts for r in records])
    }
    for source, recs in (others or {}).items():
        by_source[source] = (recs, [r.ts for r in recs])
    acc: dict[str, dict[str, Any]] = {}
    for inst in insts:
        got = by_source.get(inst.source)
        if got is None or inst.start is None:
            continue
        last = inst.last
        if last.used < MIN_USED:
            continue
        cost, tokens, models = usage_between(got[0], got[1], inst.start, last.ts)
        if cost <= 0:
            continue  # nothing local in this window: it says nothing about local usage
        a = acc.setdefault(inst.window, {"source": inst.source, "windows": 0, "percent": 0.0,
                                         "cost": 0.0, "tokens": 0, "models": {}})  # fmt: skip
        a["windows"] += 1
        a["percent"] += last.used
        a["cost"] += cost
        a["tokens"] += tokens
        for m, (t, c) in models.items():
            mm = a["models"].setdefault(m, {"tokens": 0, "cost": 0.0})
            mm["tokens"] += int(t)
            mm["cost"] += c
    for a in acc.values():
        dpp = a["cost"] / a["percent"]
        a["dollarsPerPercent"] = dpp
        a["tokensPerPercent"] = a["tokens"] / a["percent"]
        for mm in a["models"].values():
            mm["tokensPerPercent"] = dpp * mm["tokens"] / mm["cost"] if mm["cost"] > 0 else None
    return acc
