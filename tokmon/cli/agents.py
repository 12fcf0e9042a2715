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
        help="coding agents found, with totals",
        description="coding agents whose logs were found, with their totals",
    )
    p.set_defaults(handler=run_agents)
    rs = p.add_subparsers(dest="report", metavar="REPORT")
    for kind in ("daily", "monthly"):
        text = f"all agents {REPORTS[kind]}, one entry per agent (ccusage --by-agent shape)"
        r = rs.add_parser(kind, parents=[parent], help=text, description=text)
        _report_options(r)
        r.set_defaults(handler=lambda a, c, k=kind: run_unified(k, a, c))


def _report_options(r: argparse.ArgumentParser) -> None:
    r.add_argument("-s", "--since", help="from date (YYYYMMDD or YYYY-MM-DD)")
    r.add_argument("-u", "--until", help="until date (YYYYMMDD or YYYY-MM-DD)")
    r.add_argument("-z", "--timezone", help="time zone for dates (default: system)")
    r.add_argument("-o", "--order", choices=["asc", "desc"], default="asc")
    r.add_argument("-O", "--offline", action="store_true", help=argparse.SUPPRESS)


def _dates(args: argparse.Namespace) -> tuple[str | None, str | None, str | None]:
    from tokmon.timeutil import TimezoneError, parse_day, resolve_tz

    try:
        since = parse_day(args.since) if getattr(args, "since", None) else None
        until = parse_day(args.until) if getattr(args, "until", None) else None
        tz = getattr(args, "timezone", None)
        resolve_tz(tz)
    except (ValueError, TimezoneError) as exc:
        raise CLIError(str(exc)) from exc
    return since, until, tz


def _prices(ctx: Context) -> Any:
    from tokmon.pricing import PriceTable, PricingError

    try:
        return PriceTable.load(ctx.paths.prices_override_file)
    except PricingError as exc:
        raise CLIError(str(exc)) from exc


def run_agent_report(agent: str, kind: str, args: argparse.Namespace, ctx: Context) -> int:
    """One agent's report as a table or ccusage-compatible JSON."""
    from tokmon.sources import source_for
    from tokmon.sources.collect import collect
    from tokmon.sources.report import agent_report

    since, until, tz = _dates(args)
    records = collect(source_for(agent, ctx.env))
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
    if ctx.json_output:
        ctx.stdout.write(dump_json(data))
        return 0
    rows = data["sessions" if kind == "session" else kind]
    label = {"daily": "date", "monthly": "month", "session": "sessionId"}[kind]
    cost_key = "costUSD" if agent == "codex" else "totalCost"
    w = ctx.stdout.write
    w(
        f"{label:<40} {'input':>12} {'output':>10} {'cache read':>13} {'cache write':>12} "
        f"{'total':>13} {'cost':>10}\n"
    )
    for r in [*rows, {label: "Total", **data["totals"]}]:
        w(
            f"{str(r[label])[-40:]:<40} {fmt_int(r['inputTokens']):>12} "
            f"{fmt_int(r['outputTokens']):>10} {fmt_int(r['cacheReadTokens']):>13} "
            f"{fmt_int(r['cacheCreationTokens']):>12} {fmt_int(r['totalTokens']):>13} "
            f"{fmt_cost(r[cost_key]):>10}\n"
        )
    return 0


def run_agents(args: argparse.Namespace, ctx: Context) -> int:
    """Every supported agent: found or not, where, and its totals."""
    from tokmon.sources import SOURCES
    from tokmon.sources.codex import CodexSource
    from tokmon.sources.collect import SourceReader
    from tokmon.sources.report import record_cost

    prices = _prices(ctx)
    out: list[dict[str, Any]] = []
    for agent, cls in SOURCES.items():
        src = cls(ctx.env)
        roots = src.roots()
        reader = SourceReader(src)
        if roots:
            reader.refresh()
        recs = reader.usage()
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
            row["official"] = {"rateLimits": CodexSource.rate_limits(reader.states)}
        out.append(row)
    if ctx.json_output:
        ctx.stdout.write(dump_json({"agents": out}))
        return 0
    w = ctx.stdout.write
    w(f"{'agent':<10} {'found':<6} {'sessions':>8} {'total tokens':>14} {'cost':>10}  data\n")
    for a in out:
        w(
            f"{a['agent']:<10} {'yes' if a['detected'] else 'no':<6} {a['sessions']:>8} "
            f"{fmt_int(a['totalTokens']):>14} {fmt_cost(a['totalCost']):>10}  "
            f"{', '.join(a['roots']) or '-'}\n"
        )
    return 0


def run_unified(kind: str, args: argparse.Namespace, ctx: Context) -> int:
    """Every found agent per day or month, with one entry per agent."""
    from tokmon.sources import SOURCES
    from tokmon.sources.collect import collect
    from tokmon.sources.report import unified_report

    since, until, tz = _dates(args)
    by_agent = {}
    for agent, cls in SOURCES.items():
        src = cls(ctx.env)
        if src.roots():
            by_agent[agent] = collect(src)
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
    w = ctx.stdout.write
    w(
        f"{'period':<12} {'agent':<10} {'input':>12} {'output':>10} {'cache read':>13} "
        f"{'cache write':>12} {'total':>13} {'cost':>10}\n"
    )
    for row in data[kind]:
        for e in [*row["agents"], {**row, "agent": "all"}]:
            w(
                f"{row['period']:<12} {e['agent']:<10} {fmt_int(e['inputTokens']):>12} "
                f"{fmt_int(e['outputTokens']):>10} {fmt_int(e['cacheReadTokens']):>13} "
                f"{fmt_int(e['cacheCreationTokens']):>12} {fmt_int(e['totalTokens']):>13} "
                f"{fmt_cost(e['totalCost']):>10}\n"
            )
    t = data["totals"]
    w(
        f"{'Total':<12} {'':<10} {fmt_int(t['inputTokens']):>12} {fmt_int(t['outputTokens']):>10} "
        f"{fmt_int(t['cacheReadTokens']):>13} {fmt_int(t['cacheCreationTokens']):>12} "
        f"{fmt_int(t['totalTokens']):>13} {fmt_cost(t['totalCost']):>10}\n"
    )
    return 0
