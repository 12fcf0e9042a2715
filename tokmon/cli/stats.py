"""`tokmon stats` (also bare `tokmon`): today, the current block and the top sessions."""

from __future__ import annotations

import argparse
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from tokmon import fmt
from tokmon.cli.context import Context
from tokmon.cli.render import (
    console,
    dump_json,
    fit_table,
    print_fitted,
    resolve_zone,
    terminal_width,
    write_wrapped,
)
from tokmon.core.summary_rows import ActiveBlock, Official, Summary, TokenLimit
from tokmon.leanclass import replace
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
    avail = None if width is None else width - 4  # a panel's borders and padding
    today = [
        f"[b]{fmt.cost(d.total_cost)}[/b]  ·  {fmt.integer(d.total_tokens)} tokens  "
        f"(in {fmt.integer(d.input_tokens)}, out {fmt.integer(d.output_tokens)}, "
        f"cache create {fmt.integer(d.cache_creation_tokens)}, "
        f"cache read {fmt.integer(d.cache_read_tokens)})",
        f"This week {fmt.cost(s.week.usage.total_cost)}  ·  this month "
        f"{fmt.cost(s.month.usage.total_cost)}  ·  all time {fmt.cost(s.totals.total_cost)}",
    ]
    con.print(
        Panel(
            "\n".join(x for line in today for x in flow(line, avail)),
            title=f"Today {s.today.label} ({s.timezone})",
            box=box.ROUNDED,
            expand=False,
        )
    )
    if s.agents:  # other coding agents have data: today and all time per agent
        agents = s.agents

        def per_agent(tokens: bool) -> Table:
            at = Table(title="Per agent", box=box.SIMPLE)
            at.add_column("Agent", no_wrap=True)
            cols = ["Today\ntokens", "Today\ncost", "All-time\ntokens", "All-time\ncost"]
            for col in cols if tokens else cols[1::2]:
                at.add_column(col, justify="right", no_wrap=True)
            for name, a in agents.items():
                t, all_ = a.today.usage, a.totals
                cells = [fmt.integer(t.total_tokens), fmt.cost(t.total_cost),
                         fmt.integer(all_.total_tokens), fmt.cost(all_.total_cost)]  # fmt: skip
                at.add_row(name, *(cells if tokens else cells[1::2]))
            return at

        print_fitted(ctx, lambda: per_agent(True), lambda: per_agent(False), "token counts",
                     "the per-agent table")  # fmt: skip
    b = s.active_block
    if b is None:
        lines = ["No active 5-hour block (no usage in the last 5 hours)."]
    else:
        lines = block_lines(b, s.token_limit, s.official, tz)
    con.print(
        Panel(
            "\n".join(x for line in lines for x in flow(line, avail)),
            title="Current block" + (" (estimate)" if b else ""),
            box=box.ROUNDED,
            expand=False,
        )
    )

    def sessions_table(level: int) -> Table:
        """Level 0: with the last activity; 1: without; 2: without the project either."""
        caption = f"times in {s.timezone}" if level == 0 else None
        t = Table(title="Recent sessions", box=box.SIMPLE, caption=caption)
        t.add_column("Session", no_wrap=True)
        if level <= 1:
            t.add_column("Project / name", overflow="fold", max_width=NAME_WIDTH)
        if level == 0:
            t.add_column("Last activity", no_wrap=True)
        t.add_column("Tokens", justify="right", no_wrap=True)
        t.add_column("Cost", justify="right", no_wrap=True)
        for r in top:
            label = r.get("name") or ""  # merged: the user's name, else Claude's title
            tags = " ".join(f"#{x}" for x in r.get("tags") or [])
            proj = clip(r["projectName"], NAME_MAX)  # a transcript's cwd can be megabytes
            name = " ".join(x for x in (proj, label and f"· {label}", tags) if x)
            cells = [r["sessionId"][:8]] + ([escape(name)] if level <= 1 else [])
            if level == 0:
                cells.append(fmt.date_time(fmt.epoch(r["lastActivity"]), tz))
            cells += [fmt.integer(r["totalTokens"]), fmt.cost(r["totalCost"])]
            t.add_row(*cells, style="bold" if r["isActive"] else None)
        return t

    # The names wrap (up to NAME_WIDTH wide); a terminal that leaves them fewer than
    # MIN_NAME columns drops the last-activity column, then the names, and says so.
    hints = ["", "last activity not shown", "last activity and project not shown"]
    for level, hint in enumerate(hints):
        t = sessions_table(level)
        if width is None or fit_table(con, t, width, minimum=MIN_NAME):
            con.print(t)
            if hint:
                write_wrapped(ctx, f"Compact layout: {hint}", width)
            return
    write_wrapped(ctx, "Too narrow for the recent sessions (or --json)", width)


def flow(line: str, width: int | None) -> list[str]:
    """A line of rich markup as lines of at most ``width`` visible columns (None: as it
    is), broken between its phrases (before a parenthesis, at ``  ·  ``, after a comma, then
    at a space): a figure is never split, a phrase only when it alone is too wide."""
    from rich.text import Text

    def size(x: str) -> int:
        return Text.from_markup(x).cell_len

    if width is None or size(line) <= width:
        return [line]
    seps = (("  (", "  "), ("  ·  ", "  ·  "), (", ", " "), (" ", " "))
    # outside parentheses first: "(72,094 with cache)" stays one piece where it can
    for sep, joiner, outside in [(a, b, True) for a, b in seps] + [(a, b, False) for a, b in seps]:
        parts = _split(line, sep, outside)
        if len(parts) == 1:
            continue
        # the separator's visible part stays: "(" opens the next piece, "," ends this one
        pieces = (
            [parts[0], *("(" + p for p in parts[1:])]
            if sep == "  ("
            else [p + "," for p in parts[:-1]] + [parts[-1]]
            if sep == ", "
            else parts
        )
        out: list[str] = []
        for piece in pieces:
            for k, sub in enumerate(flow(piece, width)):
                glue = joiner if k == 0 else " "  # a piece's first line may join the last
                if out and size(out[-1] + glue + sub) <= width:
                    out[-1] += glue + sub
                else:
                    out.append(sub)
        return out
    return [line]  # one word wider than the terminal: the panel folds it


def _split(line: str, sep: str, outside: bool) -> list[str]:
    """``line.split(sep)``; ``outside``: only where no parenthesis is open."""
    if not outside:
        return line.split(sep)
    parts, depth, start, k = [], 0, 0, 0
    while k < len(line):
        if depth == 0 and line.startswith(sep, k):
            parts.append(line[start:k])
            k = start = k + len(sep)
            continue
        depth += {"(": 1, ")": -1}.get(line[k], 0)
        k += 1
    parts.append(line[start:])
    return parts


NAME_WIDTH = 30  # the recent sessions' "Project / name" column, at most
MIN_NAME = 16  # ... and at least, else the compact layout
