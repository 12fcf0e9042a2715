"""`tokmon stats` (also bare `tokmon`): today, the current block and the top sessions."""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from tokmon import fmt
from tokmon.cli.context import Context
from tokmon.cli.render import console, dump_json, resolve_zone, table_width, terminal_width
from tokmon.core.summary_rows import ActiveBlock, Official, Summary, TokenLimit
from tokmon.textsafe import NAME_MAX, clip

if TYPE_CHECKING:
    from rich.table import Table


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
    summary = replace(summary, timezone=fmt.zone_name(tz))  # the real zone, never "local"
    rows = engine.session_rows()
    recent = sorted(rows, key=lambda r: r.last_activity, reverse=True)[:top_n]
    from tokmon.cli.reports import merge_metadata

    top = [r.to_json() for r in recent]  # merged with names and tags: the sessions' wire rows
    merge_metadata(ctx, top)
    from tokmon.cli.budgets import stats_lines, stats_rows  # budget use (docs/limits.md)

    budgets = stats_rows(ctx)
    if ctx.json_output:
        out = {**summary.to_json(), "demo": ctx.demo}  # generated numbers must say so
        ctx.stdout.write(dump_json({**out, "topSessions": top, "budgets": budgets}))
        return 0
    _render(ctx, summary, top, tz)
    stats_lines(ctx, budgets)
    return 0


BURN_COLOURS = {"low": "green", "medium": "yellow", "high": "red"}


def block_lines(
    active: ActiveBlock, lim: TokenLimit, official: Official | None, tz: tzinfo
) -> list[str]:
    """The current block's state, most important first (rich markup)."""
    b = active.block
    lines = [
        f"[b]{fmt.integer(b.total_tokens)}[/b] tokens  ·  {fmt.cost(b.cost)}  ·  "
        f"{fmt.duration(active.remaining_minutes)} left (ends {fmt.clock_zoned(b.end, tz)})",
    ]
    br = b.burn_rate
    if br:
        level = active.burn_level or "low"
        colour = BURN_COLOURS.get(level, "white")
        lines.append(
            f"Burn rate [{colour}]{level}[/{colour}]: "
            f"{fmt.integer(br.tokens_per_minute_for_indicator)} input+output tokens/min "
            f"({fmt.integer(br.tokens_per_minute)} with cache), {fmt.cost(br.cost_per_hour)}/h"
        )
    p = b.projection
    if p:
        text = f"Projection at block end: {fmt.integer(p.total_tokens)} tokens, {fmt.cost(p.total_cost)}"
        if lim.tokens:
            pct = p.total_tokens / lim.tokens * 100
            colour = "red" if pct > 100 else "yellow" if pct > 80 else "green"
            text += f" ([{colour}]{fmt.percent(pct)}[/{colour}] of the limit)"
        lines.append(text)
    if lim.tokens:
        src = "configured" if lim.source == "config" else "largest past block"
        lines.append(
            f"Limit {fmt.integer(lim.tokens)} ({src}): {fmt.percent(active.limit_percent)} used"
        )
    five = official.five_hour if official else None
    if five:
        text = (
            f"Official 5-hour utilisation: {fmt.percent(five.used_percentage)} (from Claude Code)"
        )
        resets = five.resets_at
        if resets:
            text += f", resets {fmt.clock_zoned(resets, tz)}"
        lines.append(text)
    return lines


def _render(ctx: Context, s: Summary, top: list[dict[str, Any]], tz: tzinfo) -> None:
    from rich import box
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    width = terminal_width(ctx)
    con = console(ctx, width)
    d = s.today.usage
    con.print(
        Panel(
            f"[b]{fmt.cost(d.total_cost)}[/b]  ·  {fmt.integer(d.total_tokens)} tokens  "
            f"(in {fmt.integer(d.input_tokens)}, out {fmt.integer(d.output_tokens)}, "
            f"cache create {fmt.integer(d.cache_creation_tokens)}, "
            f"cache read {fmt.integer(d.cache_read_tokens)})\n"
            f"This week {fmt.cost(s.week.usage.total_cost)}  ·  this month {fmt.cost(s.month.usage.total_cost)}"
            f"  ·  all time {fmt.cost(s.totals.total_cost)}",
            title=f"Today {s.today.label} ({s.timezone})",
            box=box.ROUNDED,
            expand=False,
        )
    )
    if s.agents:  # other coding agents have data: today and all time per agent
        at = Table(title="Per agent", box=box.SIMPLE)
        for col in ("Agent", "Today tokens", "Today cost", "All-time tokens", "All-time cost"):
            at.add_column(col, justify="left" if col == "Agent" else "right")
        for name, a in s.agents.items():
            at.add_row(
                name,
                fmt.integer(a.today.usage.total_tokens),
                fmt.cost(a.today.usage.total_cost),
                fmt.integer(a.totals.total_tokens),
                fmt.cost(a.totals.total_cost),
            )
        con.print(at)
    b = s.active_block
    if b is None:
        body = "No active 5-hour block (no usage in the last 5 hours)."
    else:
        body = "\n".join(block_lines(b, s.token_limit, s.official, tz))
    con.print(
        Panel(
            body,
            title="Current block" + (" (estimate)" if b else ""),
            box=box.ROUNDED,
            expand=False,
        )
    )

    def sessions_table(name_width: int, with_time: bool) -> Table:
        caption = f"times in {s.timezone}" if with_time else None
        t = Table(title="Recent sessions", box=box.SIMPLE, caption=caption)
        t.add_column("Session", no_wrap=True)
        t.add_column("Project / name", overflow="fold", max_width=name_width)
        if with_time:
            t.add_column("Last activity", no_wrap=True)
        t.add_column("Tokens", justify="right", no_wrap=True)
        t.add_column("Cost", justify="right", no_wrap=True)
        for r in top:
            label = r.get("name") or ""  # merged: the user's name, else Claude's title
            tags = " ".join(f"#{x}" for x in r.get("tags") or [])
            proj = clip(r["projectName"], NAME_MAX)  # a transcript's cwd can be megabytes
            name = " ".join(x for x in (proj, label and f"· {label}", tags) if x)
            cells = [r["sessionId"][:8], escape(name)]
            if with_time:
                cells.append(fmt.date_time(fmt.epoch(r["lastActivity"]), tz))
            cells += [fmt.integer(r["totalTokens"]), fmt.cost(r["totalCost"])]
            t.add_row(*cells, style="bold" if r["isActive"] else None)
        return t

    # The names wrap (up to NAME_WIDTH wide); a terminal that leaves them fewer than
    # MIN_NAME columns drops the last-activity column instead, and says so.
    with_time = width is None or table_width(con, sessions_table(MIN_NAME, True)) <= width
    con.print(sessions_table(NAME_WIDTH, with_time))
    if not with_time:
        ctx.stdout.write("Compact layout: last activity not shown\n")


NAME_WIDTH = 30  # the recent sessions' "Project / name" column, at most
MIN_NAME = 16  # ... and at least, else the compact layout
