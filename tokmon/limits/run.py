"""One evaluation pass, shared by ``tokmon limits``/``check``/``alerts run`` and the server:
ingest agents' figures, build the status, compute budgets, fire new alerts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokmon.limits import alerts, ingest, status


@dataclass
class Evaluation:
    status: dict[str, Any]
    budgets: list[dict[str, Any]] = field(default_factory=list)
    block: dict[str, Any] | None = None
    fired: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def evaluate(
    paths: Any,
    env: Mapping[str, str],
    config_path: Path | None,
    engine: Any = None,
    *,
    now: float | None = None,
    fire: bool = True,
    metadata: Mapping[str, Any] | None = None,
    read_agents: bool = True,
) -> Evaluation:
    """Everything the limit surfaces need; ``engine=None`` skips local usage (fast)."""
    from tokmon import budgets as budgets_mod

    warnings: list[str] = []
    if engine is not None:
        roots = list(engine.roots)
    else:
        from tokmon.core.discovery import claude_roots

        roots = [r for r in claude_roots(env) if r.is_dir()]
    try:
        if read_agents:
            ingest.ingest(paths, env, roots)
    except Exception as exc:  # unreadable agent dir: the rest still works
        warnings.append(f"could not read agents' limit figures: {exc}")
    blist: list[Any] = []
    if engine is not None:
        try:
            blist = budgets_mod.load(config_path)
        except budgets_mod.BudgetError as exc:
            warnings.append(str(exc))
    records = _records_needed(paths, engine, blist, now) if engine is not None else []
    st = status.build(paths, records, now, others=agent_records(engine, ("codex",)))
    bud: list[dict[str, Any]] = []
    block = None
    if engine is not None:
        if blist:
            bud = budgets_mod.engine_usage(
                engine, blist, now, env=env, records=records, metadata=metadata, paths=paths
            )
        block = alerts.block_input(engine, now)
    ev = Evaluation(st, bud, block, [], warnings)
    if fire:
        fire_alerts(paths, env, config_path, ev, now)
    return ev


def agent_records(engine: Any, agents: tuple[str, ...]) -> dict[str, Any]:
    """Other agents' records an engine holds (from its store: they outlive the logs), for
    the agents among ``agents`` it reads; empty without an engine or agents."""
    store = getattr(engine, "agents", None) if engine is not None else None
    if store is None:
        return {}
    return {a: engine.records_of(a) for a in agents if a in store.readers}


def _records_needed(paths: Any, engine: Any, blist: list[Any], now: float | None) -> list[Any]:
    """Claude records from the earliest time the status and the budgets read: the oldest
    Claude window instance (calibration) or budget period, by the engine's time index; no
    records without either (a server re-evaluates after every append: never the history)."""
    import time

    from tokmon.limits import history

    lo = float("inf")
    with history.opened(paths) as con:
        obs = history.observations(con, source="claude")
    for inst in history.instances(obs):
        for t in (inst.start, inst.last.ts, inst.resets_at):
            if t is not None:
                lo = min(lo, t)
    if blist:
        from tokmon import budgets as budgets_mod
        from tokmon.core.timeutil import resolve_tz

        at = time.time() if now is None else now
        tz = resolve_tz(engine.config.get("timezone"))
        for b in blist:
            lo = min(lo, budgets_mod.period_bounds(b.period, at, tz, b.week_start)[0])
    if lo == float("inf"):
        return []
    since = getattr(engine, "records_since", None)
    if since is None:  # an engine without the time index: every record
        return list(engine.records)
    return list(since(lo - 1.0))


def fire_alerts(
    paths: Any,
    env: Mapping[str, str],
    config_path: Path | None,
    ev: Evaluation,
    now: float | None = None,
) -> None:
    """Fire (and deliver) the new crossings of an evaluation into ``ev.fired``."""
    try:
        cfg = alerts.load(config_path)
    except alerts.AlertConfigError as exc:
        ev.warnings.append(str(exc))
        return
    if cfg.enabled:
        ev.fired = alerts.fire(
            paths, cfg, alerts.candidates(cfg, ev.status, ev.budgets, ev.block), env, now
        )
