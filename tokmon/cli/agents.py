"""`tokmon <agent> daily|monthly|session` for other coding agents, and `tokmon agents`.

``--json`` prints ccusage's shape for that agent (``ccusage <agent> <report> --json``).
"""

from __future__ import annotations

import argparse
from typing import Any

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json, fmt_cost, fmt_int

# Agent name -> label; kept here so building the parser imports no reader (the readers and
# sqlite3 load only when an agent command runs). tests check it against tokmon.sources.
AGENTS = {
    "codex": "OpenAI Codex CLI",
    "gemini": "Gemini CLI",
    "opencode": "OpenCode",
    "qwen": "Qwen Code",
    "copilot": "GitHub Copilot CLI",
    "amp": "Amp",
}
REPORTS = {"daily": "usage per day", "monthly": "usage per month", "session": "usage per session"}


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    for agent, label in AGENTS.items():
        p = sub.add_parser(
            agent,
            parents=[parent],
            help=f"{label} usage (daily|monthly|session)",
            description=f"{label} usage reports",
        )
        rs = p.add_subparsers(dest="report", metavar="REPORT")
        for kind, text in REPORTS.items():
            r = rs.add_parser(kind, parents=[parent], help=text, description=f"{label}: {text}")
            _report_options(r)
            r.set_defaults(handler=lambda a, c, ag=agent, k=kind: run_agent_report(ag, k, a, c))
        p.set_defaults(handler=lambda a, c, ag=agent: run_agent_report(ag, "daily", a, c))
    p = sub.add_parser(
        "agents",
        parents=[parent],
        help="every coding agent (Claude Code first): found or not, with totals",
        description="every supported coding agent, Claude Code first: whether its logs were "
        "found, where, and its totals (Claude Code's are `tokmon daily`'s)",
    )
    p.set_defaults(handler=run_agents)
    rs = p.add_subparsers(dest="report", metavar="REPORT")
    for kind in ("daily", "monthly"):
        text = (
            f"the other agents' {REPORTS[kind]}, one entry per agent (ccusage --by-agent "
            "shape; Claude Code is not in it yet: `tokmon " + kind + "`)"
        )
        r = rs.add_parser(kind, parents=[parent], help=text, description=text)
        _report_options(r)
        r.set_defaults(handler=lambda a, c, k=kind: run_unified(k, a, c))


def _report_options(r: argparse.ArgumentParser) -> None:
    r.add_argument("-s", "--since", help="from date (YYYYMMDD or YYYY-MM-DD)")
    r.add_argument("-u", "--until", help="until date (YYYYMMDD or YYYY-MM-DD)")
    r.add_argument(
        "-z",
        "--timezone",
        help="time zone for dates (IANA name or UTC; default: config timezone, else system)",
    )
    r.add_argument("-o", "--order", choices=["asc", "desc"], default="asc")
    r.add_argument("-O", "--offline", action="store_true", help=argparse.SUPPRESS)


def _dates(args: argparse.Namespace, ctx: Context) -> tuple[str | None, str | None, str | None]:
    """``--since``, ``--until`` and the zone: ``-z``, else the config's ``timezone`` (as the
    Claude reports), else the system's."""
    from tokmon.core.timeutil import TimezoneError, parse_day, resolve_tz

    try:
        since = parse_day(args.since) if getattr(args, "since", None) else None
        until = parse_day(args.until) if getattr(args, "until", None) else None
        tz = getattr(args, "timezone", None) or ctx.config.get("timezone")
        resolve_tz(tz)
    except (ValueError, TimezoneError) as exc:
        raise CLIError(str(exc)) from exc
    return since, until, tz


def _prices(ctx: Context) -> Any:
    from tokmon.core.pricing import PriceTable, PricingError

    try:
        return PriceTable.load(ctx.paths.prices_override_file)
    except PricingError as exc:
        raise CLIError(str(exc)) from exc


def agent_store(ctx: Context, agents: list[str]) -> Any:
    """The agents' :class:`~tokmon.core.agents.AgentStore`, loaded from tokmon's store (the
    ledger database, where an agent's history outlives its logs) and refreshed with only what
    is new in their logs. Only the agents' folders are read: Claude Code's transcripts are not
    scanned for these reports (unless the ledger has never seen any). ``--demo`` keeps no
    store: the logs are read in memory."""
    from tokmon.core.agents import AgentStore
    from tokmon.core.engine import Engine
    from tokmon.core.pricing import PricingError

    if ctx.demo:
        store = AgentStore(ctx.env, _prices(ctx), None, agents)
        store.refresh()
        return store
    try:
        eng = Engine(paths=ctx.paths, config=ctx.config, env=ctx.env, agents=agents)
    except PricingError as exc:
        raise CLIError(str(exc)) from exc
    got = eng.agents
    assert got is not None
    eng.on_warning = ctx.warn
    try:
        changes = eng.refresh(paths=got.roots())  # the agents' folders: only their new bytes
        got.agents_with_data()  # loads what is stored, also for an agent with no folder left
    finally:
        eng.close()
    for w in changes.warnings:
        ctx.warn(w)
    return got


def run_agent_report(agent: str, kind: str, args: argparse.Namespace, ctx: Context) -> int:
    """One agent's report as a table or ccusage-compatible JSON."""
    from tokmon.sources.report import agent_report

    since, until, tz = _dates(args, ctx)
    records = agent_store(ctx, [agent]).usage(agent)
    data = agent_report(
        agent,
        kind,
        records,
        _prices(ctx),
        timezone=tz,
        since=since,
        until=until,
        order=getattr(args, "order", "asc"),
    )
    from tokmon.cli.reports import report_budgets, with_budgets

    # the agent's budgets, as under `tokmon daily --agent <agent>` (docs/limits.md)
    use = report_budgets(ctx, kind, {"timezone": tz, "agent": agent, "until": until})
    if ctx.json_output:
        ctx.stdout.write(with_budgets(dump_json(data), use))
        return 0
    rows = data["sessions" if kind == "session" else kind]
    _period_table(ctx, AGENTS[agent], kind, rows, data["totals"], tz,
                  cost_key="costUSD" if agent == "codex" else "totalCost")  # fmt: skip
    if use:
        from tokmon.cli.render import resolve_zone
        from tokmon.cli.tables import budget_lines

        budget_lines(ctx, use, resolve_zone(ctx, tz))
    return 0


TOKEN_COLS = (
    ("Input", "inputTokens"),
    ("Output", "outputTokens"),
    ("Cache\ncreate", "cacheCreationTokens"),
    ("Cache\nread", "cacheReadTokens"),
    ("Total\ntokens", "totalTokens"),
)  # fmt: skip  (as the Claude reports)
COMPACT_COLS = (("Input", "inputTokens"), ("Output", "outputTokens"))
TOTAL_COLS = (("Total\ntokens", "totalTokens"),)  # the narrowest layouts


def _display_id(sid: str) -> str:
    """Codex names a session after its file (``2025/10/06/rollout-...-<uuid>``): show the uuid
    (:func:`tokmon.metadata.refs.short_id`; ``session --id`` accepts a prefix of it)."""
    from tokmon.metadata.refs import short_id

    return short_id(sid)


def _models(r: dict[str, Any]) -> str:
    from tokmon.cli.render import short_model

    names = r.get("modelsUsed") or list(r.get("models") or {})
    return ", ".join(short_model(str(m)) for m in names)


def _unpriced_note(ctx: Context, totals: dict[str, Any]) -> None:
    unpriced = totals.get("unpricedModels") or []
    if unpriced:
        from tokmon.cli.render import terminal_width, write_wrapped

        write_wrapped(ctx, f"No price for {', '.join(unpriced)}: counted as $0.00.",
                      terminal_width(ctx))  # fmt: skip


def _period_table(
    ctx: Context,
    label: str,
    kind: str,
    rows: list[dict[str, Any]],
    totals: dict[str, Any],
    tz: str | None,
    cost_key: str,
) -> None:
    """One agent's daily / monthly / session rows, laid out like the Claude reports."""
    from tokmon import fmt
    from tokmon.cli.render import id_length, print_fitted, zone_title

    key, title = {"daily": ("date", "Date"), "monthly": ("month", "Month"),
                  "session": ("sessionId", "Session")}[kind]  # fmt: skip
    ids = [_display_id(str(r[key])) for r in rows] if kind == "session" else []
    id_len = id_length(ids)
    zone = fmt.zone(tz)

    def build(level: int) -> Any:
        """Level 0: every column; 1: compact (no cache, no models in a session table); 2:
        total tokens and cost (and a session's last activity); 3: total tokens and cost."""
        from rich import box
        from rich.markup import escape
        from rich.table import Table

        t = Table(title=f"{label} token usage: {kind}", box=box.SIMPLE_HEAVY, show_footer=True)
        t.add_column(title, footer="Total", no_wrap=True)
        models = level == 0 or (level == 1 and kind != "session")
        if models:
            t.add_column("Models", overflow="fold", max_width=16)
        cols = TOKEN_COLS if level == 0 else COMPACT_COLS if level == 1 else TOTAL_COLS
        for col, k in cols:
            t.add_column(col, justify="right", footer=fmt.integer(totals[k]), no_wrap=True)
        t.add_column("Cost\n(USD)", justify="right", footer=fmt.cost(totals[cost_key]),
                     no_wrap=True)  # fmt: skip
        activity = kind == "session" and level <= 2
        if activity:
            t.add_column("Last activity", no_wrap=True)
        for i, r in enumerate(rows):
            first = ids[i][:id_len] if kind == "session" else str(r[key])
            cells = [first, escape(_models(r))] if models else [first]
            cells += [fmt.integer(r[k]) for _, k in cols]
            cells.append(fmt.cost(r[cost_key]))
            if activity:
                cells.append(fmt.date_time(fmt.epoch(r.get("lastActivity")), zone))
            t.add_row(*cells)
        t.caption = zone_title(zone) if activity or kind != "session" else None
        return t

    if kind == "session":
        hidden = "cache, total tokens, models"
        narrower = [(lambda: build(2), "token types and models"),
                    (lambda: build(3), "token types, models and last activity")]  # fmt: skip
    else:
        hidden = "cache and total tokens"
        narrower = [(lambda: build(2), "models and token types")]
    print_fitted(ctx, lambda: build(0), lambda: build(1), hidden, f"tokmon {kind}",
                 narrower=narrower)  # fmt: skip
    if not rows:
        ctx.stdout.write("No usage in this range.\n")
    _unpriced_note(ctx, totals)


def _claude_and_store(ctx: Context, agents: list[str]) -> tuple[Any, Any]:
    """Tokmon's engine over Claude Code's transcripts (None when CLAUDE_CONFIG_DIR names
    nothing usable: a warning here, not an error, as the other agents are still listed) and
    the other agents' store."""
    if ctx.demo:  # the generated Claude corpus; the agents' logs read in memory (as before)
        return ctx.engine(), agent_store(ctx, agents)
    from tokmon.core.discovery import claude_dir_problem, claude_dir_usable

    problem = claude_dir_problem(ctx.env)
    if problem and not claude_dir_usable(ctx.env):
        ctx.warn(f"{problem}: Claude Code is listed as not found (see `tokmon doctor`)")
        return None, agent_store(ctx, agents)
    # the engine `tokmon daily` uses, reading the agents' logs too (`daily --agent all`);
    # no transcripts is no error here: the row says "no"
    eng = ctx.engine(agents=True, missing_ok=True)
    store = eng.agents
    assert store is not None
    store.agents_with_data()  # loads what is stored, also for an agent with no folder left
    return eng, store


def _claude_row(eng: Any) -> dict[str, Any]:
    """Claude Code's row of ``tokmon agents``: its totals are ``tokmon daily --json``'s."""
    keys = ("inputTokens", "outputTokens", "cacheReadTokens", "cacheCreationTokens",
            "totalTokens", "totalCost")  # fmt: skip
    if eng is None:
        return {"agent": "claude", "name": "Claude Code", "detected": False, "roots": [],
                "sessions": 0, "records": 0, **dict.fromkeys(keys, 0)}  # fmt: skip
    # `daily`'s totals and the counts, both from the stored sums when they answer (a warm run
    # loads no record: it costs what `tokmon daily` costs, not the history)
    totals = eng.report("daily").totals.to_json()
    counts = eng.stored_counts()
    if counts is None:
        recs = eng.records
        counts = len({r.session_id for r in recs}), len(recs)
    return {
        "agent": "claude",
        "name": "Claude Code",
        "detected": bool(eng.roots),
        "roots": [str(r) for r in eng.roots],
        "sessions": counts[0],
        "records": counts[1],
        **{k: totals[k] for k in keys},
    }


def run_agents(args: argparse.Namespace, ctx: Context) -> int:
    """Every supported agent, Claude Code first: found or not, where, and its totals."""
    from tokmon.sources import SOURCES
    from tokmon.sources.codex import CodexSource
    from tokmon.sources.report import record_cost

    prices = _prices(ctx)
    eng, store = _claude_and_store(ctx, list(SOURCES))
    out: list[dict[str, Any]] = [_claude_row(eng)]
    for agent, cls in SOURCES.items():
        src = cls(ctx.env)
        roots = src.roots()
        recs = store.usage(agent)
        row: dict[str, Any] = {
            "agent": agent,
            "name": cls.label,
            "detected": bool(roots),
            "roots": [str(r) for r in roots],
            "sessions": len({r.session_id for r in recs}),
            "records": len(recs),
            "inputTokens": sum(r.input_tokens for r in recs),
            "outputTokens": sum(r.output_tokens for r in recs),
            "cacheReadTokens": sum(r.cache_read_tokens for r in recs),
            "cacheCreationTokens": sum(r.cache_write_tokens for r in recs),
            "totalTokens": sum(r.total_tokens for r in recs),
            "totalCost": sum(record_cost(r, prices) for r in recs),
        }
        if agent == "codex" and roots:  # Codex writes its official plan utilisation to disk
            states = store.readers[agent].states
            row["official"] = {"rateLimits": CodexSource.rate_limits(states)}
        out.append(row)
    if ctx.json_output:
        ctx.stdout.write(dump_json({"agents": out}))
        return 0
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from tokmon.cli.render import print_fitted
    from tokmon.paths import user_home

    home = (user_home(ctx.env) or "").rstrip("/\\")

    def short(root: str) -> str:  # ~/.codex: the table is for reading (--json has the path)
        if home and (root == home or root.startswith((home + "/", home + "\\"))):
            return "~" + root[len(home) :]
        return root

    def build(level: int) -> Any:
        """Level 0: every column (the data folders fold to fit); 1: no folders; 2: agent,
        tokens and cost."""
        t = Table(title="Coding agents", box=box.SIMPLE_HEAVY)
        t.add_column("Agent", no_wrap=True)
        if level <= 1:
            t.add_column("Found", no_wrap=True)
            t.add_column("Sessions", justify="right", no_wrap=True)
        t.add_column("Total tokens", justify="right", no_wrap=True)
        t.add_column("Cost (USD)", justify="right", no_wrap=True)
        if level == 0:
            t.add_column("Data", overflow="fold")
        for a in out:
            cells = [a["agent"]]
            if level <= 1:
                cells += ["yes" if a["detected"] else "no", fmt_int(a["sessions"])]
            cells += [fmt_int(a["totalTokens"]), fmt_cost(a["totalCost"])]
            if level == 0:
                cells.append(escape(", ".join(short(r) for r in a["roots"]) or "-"))
            t.add_row(*cells)
        return t

    print_fitted(
        ctx,
        lambda: build(0),
        lambda: build(1),
        "data folders",
        "tokmon agents",
        narrower=[(lambda: build(2), "found, sessions and data folders")],
        fit_full=True,
    )
    return 0


def run_unified(kind: str, args: argparse.Namespace, ctx: Context) -> int:
    """Every found agent per day or month, with one entry per agent."""
    from tokmon.sources import SOURCES
    from tokmon.sources.report import unified_report

    since, until, tz = _dates(args, ctx)
    store = agent_store(ctx, list(SOURCES))
    by_agent = {a: recs for a in SOURCES if (recs := store.usage(a))}
    data = unified_report(
        by_agent,
        kind,
        _prices(ctx),
        timezone=tz,
        since=since,
        until=until,
        order=getattr(args, "order", "asc"),
    )
    if ctx.json_output:
        ctx.stdout.write(dump_json(data))
        return 0
    _unified_table(ctx, kind, data, tz)
    return 0


def _unified_table(ctx: Context, kind: str, data: dict[str, Any], tz: str | None) -> None:
    from tokmon import fmt
    from tokmon.cli.render import print_fitted, zone_title

    totals = data["totals"]

    def build(level: int) -> Any:
        """Level 0: every column; 1: no cache; 2: total tokens and cost."""
        from rich import box
        from rich.table import Table

        t = Table(title=f"Other agents token usage: {kind} (Claude Code: tokmon {kind})",
                  box=box.SIMPLE_HEAVY,
                  show_footer=True, caption=zone_title(fmt.zone(tz)))  # fmt: skip
        t.add_column({"daily": "Date", "monthly": "Month"}[kind], footer="Total", no_wrap=True)
        t.add_column("Agent", no_wrap=True)
        cols = TOKEN_COLS if level == 0 else COMPACT_COLS if level == 1 else TOTAL_COLS
        for col, k in cols:
            t.add_column(col, justify="right", footer=fmt.integer(totals[k]), no_wrap=True)
        t.add_column("Cost\n(USD)", justify="right", footer=fmt.cost(totals["totalCost"]),
                     no_wrap=True)  # fmt: skip
        for row in data[kind]:
            entries = row["agents"]
            for e in [*entries, {**row, "agent": "all"}] if len(entries) > 1 else entries:
                style = "bold" if e["agent"] == "all" else None
                t.add_row(row["period"], e["agent"], *[fmt.integer(e[k]) for _, k in cols],
                          fmt.cost(e["totalCost"]), style=style)  # fmt: skip
        return t

    print_fitted(ctx, lambda: build(0), lambda: build(1), "cache and total tokens",
                 f"tokmon agents {kind}",
                 narrower=[(lambda: build(2), "token types")])  # fmt: skip
    if not data[kind]:
        ctx.stdout.write("No usage in this range.\n")
    _unpriced_note(ctx, totals)
