"""Spending budgets from the config file: ``[[budgets]]`` (or ``[budgets.<name>]``).

::

    [[budgets]]
    name = "daily"        # optional (default: "<period> <filters>")
    period = "day"        # day | week | month (calendar, in the config's time zone)
    usd = 20.0            # a dollar budget ... or: tokens = 5_000_000
    project = "myapp"     # optional filters: project (path or its last component),
    tag = "client-x"      #   session tag (tokmon session metadata), agent, model
    agent = "claude"      #   (model: a substring of the model id, e.g. "opus")
    model = "opus"
    week_start = "monday" # for period = "week" (default monday)

Usage is counted from the engine's records (the same figures as the reports): cost in
the configured cost mode, tokens = input + output + cache writes + cache reads.  The
projection carries the average rate since the period began to its end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

PERIODS = ("day", "week", "month")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# "claude" (the engine's records) and the agents of tokmon.sources (their own logs); kept
# literal so parsing a config imports no reader (a test checks it against tokmon.sources).
AGENTS = ("claude", "codex", "gemini", "opencode", "qwen", "copilot", "amp")
_KEYS = {"name", "period", "usd", "tokens", "project", "tag", "agent", "model", "week_start"}


class BudgetError(ValueError):
    """An invalid ``[[budgets]]`` entry (one-line message)."""


@dataclass(frozen=True)
class Budget:
    """One budget: a limit in dollars or tokens over a calendar period, with filters."""

    name: str
    period: str
    unit: str  # "usd" | "tokens"
    limit: float
    project: str | None = None
    tag: str | None = None
    agent: str | None = None
    model: str | None = None
    week_start: int = 0
    filters: dict[str, str] = field(default_factory=dict)


def read_sections(path: Path | None) -> dict[str, Any]:
    """The raw TOML document of the config file ({} when absent); raises BudgetError."""
    if path is None:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # (a Windows editor's BOM)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise BudgetError(f"cannot read config {path}: {exc}") from exc
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data: dict[str, Any] = tomllib.loads(text)
        return data
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"{path}: invalid TOML: {exc}") from exc


def _str(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    v = entry.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        raise BudgetError(f"{where}: {key} must be a non-empty string")
    return v.strip()


def parse(raw: Any) -> list[Budget]:
    """Validate the ``budgets`` value of the config document."""
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        items = [({**v, "name": v.get("name", k)} if isinstance(v, Mapping) else v, f"budgets.{k}")
                 for k, v in raw.items()]  # fmt: skip
    elif isinstance(raw, list):
        items = [(v, f"budgets[{i}]") for i, v in enumerate(raw)]
    else:
        raise BudgetError("budgets must be an array of tables ([[budgets]]) or a table")
    out: list[Budget] = []
    names: set[str] = set()
    for entry, where in items:
        if not isinstance(entry, Mapping):
            raise BudgetError(f"{where}: expected a table")
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise BudgetError(
                f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
            )
        period = entry.get("period", "day")
        if period not in PERIODS:
            raise BudgetError(f"{where}: period must be one of {', '.join(PERIODS)}")
        has_usd, has_tok = "usd" in entry, "tokens" in entry
        if has_usd == has_tok:
            raise BudgetError(f"{where}: give exactly one of usd or tokens")
        unit = "usd" if has_usd else "tokens"
        limit = entry[unit]
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
            raise BudgetError(f"{where}: {unit} must be a positive number")
        filters = {k: v for k in ("project", "tag", "agent", "model")
                   if (v := _str(entry, k, where)) is not None}  # fmt: skip
        if "agent" in filters and filters["agent"] not in AGENTS:
            raise BudgetError(
                f"{where}: unknown agent {filters['agent']!r} (known: {', '.join(AGENTS)})"
            )
        ws = entry.get("week_start", "monday")
        if ws not in WEEKDAYS:
            raise BudgetError(f"{where}: week_start must be a weekday name")
        name = _str(entry, "name", where) or " ".join(
            [period, *(f"{k}={v}" for k, v in filters.items())]
        )
        if name in names:
            raise BudgetError(f"{where}: duplicate budget name {name!r}")
        names.add(name)
        out.append(Budget(name, period, unit, float(limit), filters.get("project"),
                          filters.get("tag"), filters.get("agent"), filters.get("model"),
                          WEEKDAYS.index(ws), filters))  # fmt: skip
    return out


def load(config_path: Path | None) -> list[Budget]:
    """The budgets configured in ``config_path``."""
    return parse(read_sections(config_path).get("budgets"))


def period_bounds(
    period: str, now: float, tz: Any, week_start: int = 0
) -> tuple[float, float, str]:
    """``(start, end, key)`` of the calendar period containing ``now`` in ``tz``."""
    d = datetime.fromtimestamp(now, tz)
    day = d.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
        key = start.strftime("%Y-%m-%d")
    elif period == "week":
        start = day - timedelta(days=(day.weekday() - week_start) % 7)
        end = start + timedelta(days=7)
        key = "week-" + start.strftime("%Y-%m-%d")
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        key = start.strftime("%Y-%m")

    def epoch(x: datetime) -> float:  # wall-clock midnight, DST-safe
        return datetime(x.year, x.month, x.day, tzinfo=tz).timestamp()

    return epoch(start), epoch(end), key


def _project_ok(path: str, wanted: str) -> bool:
    from tokmon.core.aggregate import project_name

    return (
        path == wanted or project_name(path) == wanted or path.rstrip("/\\") == wanted.rstrip("/\\")
    )


def matches(b: Budget, r: Any, tagged: set[str] | None) -> bool:
    """Does record ``r`` count against budget ``b`` (``tagged``: sessions with b's tag)?"""
    if b.project and not _project_ok(r.project, b.project):
        return False
    if b.tag is not None and (tagged is None or r.session_id not in tagged):
        return False
    if b.agent and getattr(r, "agent", "claude") != b.agent:
        return False
    return not (b.model and b.model.lower() not in str(r.model).lower())


def tagged_sessions(metadata: Mapping[str, Mapping[str, Any]], tag: str) -> set[str]:
    """Session ids whose metadata tags include ``tag``."""
    want = tag.lower()
    return {sid for sid, m in metadata.items()
            if any(str(t).lower() == want for t in (m.get("tags") or []))}  # fmt: skip


@dataclass(frozen=True)
class AgentRecord:
    """One priced usage record of another agent, shaped like the engine's for ``matches``."""

    ts: float
    session_id: str
    project: str
    model: str
    cost: float
    total_tokens: int
    agent: str


def agent_records(agent: str, env: Mapping[str, str] | None, prices: Any) -> list[AgentRecord]:
    """Another agent's records from its own logs (the figures of ``tokmon <agent> daily``)."""
    from tokmon.sources import source_for
    from tokmon.sources.collect import collect
    from tokmon.sources.report import record_cost

    src = source_for(agent, env)
    if not src.roots():
        return []
    out = [AgentRecord(r.ts, r.session_id, r.project, r.model, record_cost(r, prices),
                       r.total_tokens, agent) for r in collect(src)]  # fmt: skip
    out.sort(key=lambda r: r.ts)
    return out


def stored_agent_records(engine: Any, agent: str) -> list[AgentRecord] | None:
    """Another agent's records from an engine that reads it (its store: they outlive the
    logs), or None when the engine does not read that agent."""
    store = getattr(engine, "agents", None)
    if store is None or agent not in store.readers:
        return None
    out = [AgentRecord(r.ts, r.session_id, r.project, r.model, r.cost, r.total_tokens, agent)
           for r in engine.records_of(agent)]  # fmt: skip
    out.sort(key=lambda r: r.ts)
    return out


def usage(
    budgets: Iterable[Budget],
    records: Sequence[Any],
    now: float | None = None,
    tz: Any = None,
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    prices: Any = None,
    engine: Any = None,
    until: float | None = None,
) -> list[dict[str, Any]]:
    """Use of every budget in its current period (see module doc).

    ``records`` are Claude Code's (the engine's); a budget with ``agent`` set to another
    agent counts that agent's records: from ``engine``'s store when it reads that agent,
    else from the agent's own logs (found through ``env``, priced with ``prices``).
    ``until`` (epoch seconds) leaves out records from then on (a report's last day)."""
    import bisect

    from tokmon.core.timeutil import resolve_tz

    now = time.time() if now is None else now
    tz = tz if tz is not None else resolve_tz(None)
    by_agent: dict[str, tuple[Sequence[Any], list[float]]] = {
        "claude": (records, [r.ts for r in records])
    }
    out = []
    for b in budgets:
        agent = b.agent if b.agent in AGENTS else "claude"
        if agent not in by_agent:
            stored = stored_agent_records(engine, agent) if engine is not None else None
            agent_recs = stored if stored is not None else agent_records(agent, env, prices)
            by_agent[agent] = (agent_recs, [r.ts for r in agent_recs])
        recs, times = by_agent[agent]
        start, end, key = period_bounds(b.period, now, tz, b.week_start)
        tagged = tagged_sessions(metadata or {}, b.tag) if b.tag is not None else None
        used = 0.0
        stop = end if until is None else min(end, until)
        for r in recs[bisect.bisect_left(times, start) : bisect.bisect_left(times, stop)]:
            if matches(b, r, tagged):
                used += r.cost if b.unit == "usd" else r.total_tokens
        elapsed = max(min(now, end) - start, 1.0)
        projected = used * (end - start) / elapsed
        out.append({
            "name": b.name, "period": b.period, "periodKey": key, "periodStart": start,
            "periodEnd": end, "unit": b.unit, "limit": b.limit, "used": used,
            "percent": used * 100.0 / b.limit, "projected": projected,
            "projectedPercent": projected * 100.0 / b.limit, "filters": dict(b.filters),
            "exceeded": used >= b.limit,
        })  # fmt: skip
    return out


def for_context(ctx: Any, now: float | None = None) -> list[dict[str, Any]]:
    """Budget use for a CLI run (engine records, config time zone, session tags)."""
    path = ctx.config_path or ctx.paths.config_file
    budgets = load(path)
    if not budgets:
        return []
    return _use(ctx, budgets, now, None)


def _use(
    ctx: Any, budgets: list[Budget], now: float | None, tz: Any, until: float | None = None
) -> list[dict[str, Any]]:
    """:func:`usage` of ``budgets`` for a CLI run; ``tz`` None: the config's zone."""
    engine = ctx.engine(agents=any(b.agent in AGENTS and b.agent != "claude" for b in budgets))
    return engine_usage(engine, budgets, now, env=ctx.env, tz=tz, until=until)


def engine_usage(
    engine: Any,
    budgets: list[Budget],
    now: float | None,
    *,
    env: Mapping[str, str] | None,
    records: Sequence[Any] | None = None,
    tz: Any = None,
    metadata: Mapping[str, Any] | None = None,
    paths: Any = None,
    until: float | None = None,
) -> list[dict[str, Any]]:
    """:func:`usage` of ``budgets`` over ``engine``'s Claude records (or ``records``) and its
    other agents' store, priced with its prices; ``tz`` None: the config's zone;
    ``metadata`` None: the metadata store's (of ``paths``, default the engine's), read only
    when a budget filters on a tag."""
    if tz is None:
        from tokmon.core.timeutil import resolve_tz

        tz = resolve_tz(engine.config.get("timezone"))
    if metadata is None:
        metadata = {}
        if any(b.tag for b in budgets):
            from tokmon.metadata.store import MetadataStore

            metadata = MetadataStore(paths=paths or engine.paths).all()
    recs = engine.records if records is None else records
    return usage(budgets, recs, now, tz, metadata, env=env, prices=engine.prices,
                 engine=engine, until=until)  # fmt: skip


REPORT_PERIOD = {"daily": "day", "weekly": "week", "monthly": "month"}


def applicable(budgets: Iterable[Budget], kind: str, agent: str | None) -> list[Budget]:
    """The budgets a report shows: ``daily``/``weekly``/``monthly`` those of its period,
    ``session`` those with a ``tag`` (tags are per session); of the report's agent
    (``agent``: None is Claude Code; ``"all"`` every agent; a budget without ``agent``
    counts Claude Code's records)."""
    want = agent or "claude"

    def agent_ok(b: Budget) -> bool:
        return want == "all" or (b.agent or "claude") == want

    if kind == "session":
        return [b for b in budgets if b.tag is not None and agent_ok(b)]
    period = REPORT_PERIOD.get(kind)
    return [b for b in budgets if b.period == period and agent_ok(b)]


def for_report(
    ctx: Any,
    kind: str,
    tz: Any,
    agent: str | None = None,
    until_day: str | None = None,
    now: float | None = None,
) -> list[dict[str, Any]] | None:
    """Budget use under a report (docs/limits.md): None when no budget is configured, else
    the use of the :func:`applicable` budgets in the report's zone ``tz``, in the period
    containing now, or the end of ``until_day`` (``YYYY-MM-DD``, ``--until``) if earlier
    (usage after that day left out).  Raises :class:`BudgetError` for a bad config."""
    path = ctx.config_path or ctx.paths.config_file
    budgets = load(path)
    if not budgets:
        return None
    chosen = applicable(budgets, kind, agent)
    if not chosen:
        return []
    now = time.time() if now is None else now
    until: float | None = None
    if until_day:
        d = datetime.strptime(until_day[:10].replace("-", ""), "%Y%m%d")
        nxt = d + timedelta(days=1)
        until = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp()
        if until > now:
            until = None  # the period of now, as without --until
        else:
            now = until - 0.001  # as of the end of the report's last day
    return _use(ctx, chosen, now, tz, until)
