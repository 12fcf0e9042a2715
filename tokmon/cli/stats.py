"""`tokmon stats` (also bare `tokmon`): today, the current block and the top sessions."""

from __future__ import annotations

import argparse
from datetime import tzinfo
from typing import Any

from tokmon import fmt
from tokmon.cli.context import Context
from tokmon.cli.render import console, dump_json, resolve_zone, terminal_width


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "stats", parents=[parent], help="one screen: today, current block, top sessions"
    )
    p.add_argument("-n", "--top", type=int, default=5, help="how many sessions (default 5)")
    p.add_argument("--cwd", help="show the session of this directory's project")
    p.add_argument(
        "-z",
        "--timezone",
        help="time zone for dates and times (IANA name or UTC; default: config, else the system's)",
    )
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, ctx: Context) -> int:
    tz_arg = getattr(args, "timezone", None)
    tz = resolve_zone(ctx, tz_arg)
    engine = ctx.engine(auto_demo=True, agents=True)
    top_n = max(0, getattr(args, "top", 5) or 5)
    summary = engine.summary(cwd=getattr(args, "cwd", None), tz=tz_arg)
    summary["timezone"] = fmt.zone_name(tz)  # the real zone, never "local"
    rows = engine.session_rows()
    top = sorted(rows, key=lambda r: r["lastActivity"], reverse=True)[:top_n]
    from tokmon.cli.reports import merge_metadata

    merge_metadata(ctx, top)
    from tokmon.cli.budgets import stats_lines, stats_rows  # budget use (docs/limits.md)

    budgets = stats_rows(ctx)
    summary = {**summary, "demo": ctx.demo}  # generated numbers must say so
    if ctx.json_output:
        ctx.stdout.write(dump_json({**summary, "topSessions": top, "budgets": budgets}))
        return 0
    _render(ctx, summary, top, tz)
    stats_lines(ctx, budgets)
    return 0


BURN_COLOURS = {"low": "green", "medium": "yellow", "high": "red"}


def block_lines(b: dict[str, Any], lim: dict[str, Any], official: Any, tz: tzinfo) -> list[str]:
    """The current block's state, most important first (rich markup)."""
    end = fmt.epoch(b["endTime"])
    lines = [
        f"[b]{fmt.integer(b['totalTokens'])}[/b] tokens  ·  {fmt.cost(b['costUSD'])}  ·  "
        f"{fmt.duration(b['remainingMinutes'])} left (ends {fmt.clock_zoned(end, tz)})",
    ]
    br = b.get("burnRate")
    if br:
        level = str(b.get("burnLevel") or "low")
        colour = BURN_COLOURS.get(level, "white")
        lines.append(
            f"Burn rate [{colour}]{level}[/{colour}]: "
            f"{fmt.integer(br['tokensPerMinuteForIndicator'])} input+output tokens/min "
            f"({fmt.integer(br['tokensPerMinute'])} with cache), {fmt.cost(br['costPerHour'])}/h"
        )
    p = b.get("projection")
    if p:
        text = f"Projection at block end: {fmt.integer(p['totalTokens'])} tokens, {fmt.cost(p['totalCost'])}"
        if lim.get("tokens"):
            pct = p["totalTokens"] / lim["tokens"] * 100
            colour = "red" if pct > 100 else "yellow" if pct > 80 else "green"
            text += f" ([{colour}]{fmt.percent(pct)}[/{colour}] of the limit)"
        lines.append(text)
    if lim.get("tokens"):
        src = "configured" if lim["source"] == "config" else "largest past block"
        lines.append(
            f"Limit {fmt.integer(lim['tokens'])} ({src}): {fmt.percent(b['limitPercent'])} used"
        )
    if official and official.get("fiveHour"):
        five = official["fiveHour"]
        text = f"Official 5-hour utilisation: {fmt.percent(five.get('usedPercentage'))} (from Claude Code)"
        resets = fmt.epoch(five.get("resetsAt"))
        if resets:
            text += f", resets {fmt.clock_zoned(resets, tz)}"
        lines.append(text)
    return lines


def _render(ctx: Context, s: dict[str, Any], top: list[dict[str, Any]], tz: tzinfo) -> None:
    from rich import box
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    width = terminal_width(ctx)
    con = console(ctx, width)
    d = s["today"]
    con.print(
        Panel(
            f"[b]{fmt.cost(d['totalCost'])}[/b]  ·  {fmt.integer(d['totalTokens'])} tokens  "
            f"(in {fmt.integer(d['inputTokens'])}, out {fmt.integer(d['outputTokens'])}, "
            f"cache create {fmt.integer(d['cacheCreationTokens'])}, "
            f"cache read {fmt.integer(d['cacheReadTokens'])})\n"
            f"This week {fmt.cost(s['week']['totalCost'])}  ·  this month {fmt.cost(s['month']['totalCost'])}"
            f"  ·  all time {fmt.cost(s['totals']['totalCost'])}",
            title=f"Today {d['date']} ({s['timezone']})",
            box=box.ROUNDED,
            expand=False,
        )
    )
    agents = s.get("agents")
    if agents:  # other coding agents have data: today and all time per agent
        at = Table(title="Per agent", box=box.SIMPLE)
        for col in ("Agent", "Today tokens", "Today cost", "All-time tokens", "All-time cost"):
            at.add_column(col, justify="left" if col == "Agent" else "right")
        for name, a in agents.items():
            at.add_row(
                name,
                fmt.integer(a["today"]["totalTokens"]),
                fmt.cost(a["today"]["totalCost"]),
                fmt.integer(a["totals"]["totalTokens"]),
                fmt.cost(a["totals"]["totalCost"]),
            )
        con.print(at)
    b = s["activeBlock"]
    if b is None:
        body = "No active 5-hour block (no usage in the last 5 hours)."
    else:
        body = "\n".join(block_lines(b, s["tokenLimit"], s.get("official"), tz))
    con.print(
        Panel(
            body,
            title="Current block" + (" (estimate)" if b else ""),
            box=box.ROUNDED,
            expand=False,
        )
    )
    t = Table(title="Recent sessions", box=box.SIMPLE, caption=f"times in {s['timezone']}")
    t.add_column("Session", no_wrap=True)
    t.add_column("Project / name", overflow="fold", max_width=30)
    t.add_column("Last activity", no_wrap=True)
    t.add_column("Tokens", justify="right", no_wrap=True)
    t.add_column("Cost", justify="right", no_wrap=True)
    for r in top:
        label = r.get("name") or ""  # merged: the user's name, else Claude's title
        tags = " ".join(f"#{x}" for x in r.get("tags") or [])
        name = " ".join(x for x in (r["projectName"], label and f"· {label}", tags) if x)
        t.add_row(
            r["sessionId"][:8],
            escape(name),
            fmt.date_time(fmt.epoch(r["lastActivity"]), tz),
            fmt.integer(r["totalTokens"]),
            fmt.cost(r["totalCost"]),
            style="bold" if r["isActive"] else None,
        )
    con.print(t)
