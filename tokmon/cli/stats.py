"""`tokmon stats` (also bare `tokmon`): today, the current block and the top sessions."""

from __future__ import annotations

import argparse
from typing import Any

from tokmon.cli.context import Context
from tokmon.cli.render import dump_json, fmt_cost, fmt_int, fmt_minutes, fmt_tokens_short


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("stats", parents=[parent], help="one screen: today, current block, top sessions")
    p.add_argument("-n", "--top", type=int, default=5, help="how many sessions (default 5)")
    p.add_argument("--cwd", help="show the session of this directory's project")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.engine(auto_demo=True, agents=True)
    top_n = max(0, getattr(args, "top", 5) or 5)
    summary = engine.summary(cwd=getattr(args, "cwd", None))
    rows = engine.session_rows()
    top = sorted(rows, key=lambda r: r["lastActivity"], reverse=True)[:top_n]
    from tokmon.cli.reports import _merge_metadata

    _merge_metadata(ctx, top)
    from tokmon.cli.budgets import stats_lines, stats_rows  # budget use (docs/limits.md)

    budgets = stats_rows(ctx)
    summary = {**summary, "demo": ctx.demo}  # generated numbers must say so
    if ctx.json_output:
        ctx.stdout.write(dump_json({**summary, "topSessions": top, "budgets": budgets}))
        return 0
    _render(ctx, summary, top)
    stats_lines(ctx, budgets)
    return 0


def _render(ctx: Context, s: dict[str, Any], top: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.panel import Panel
    from rich.table import Table

    con = ctx.console()
    d = s["today"]
    con.print(
        Panel(
            f"[b]{fmt_cost(d['totalCost'])}[/b]  ·  {fmt_int(d['totalTokens'])} tokens  "
            f"(in {fmt_int(d['inputTokens'])}, out {fmt_int(d['outputTokens'])}, "
            f"cache write {fmt_int(d['cacheCreationTokens'])}, cache read {fmt_int(d['cacheReadTokens'])})\n"
            f"This week {fmt_cost(s['week']['totalCost'])}  ·  this month {fmt_cost(s['month']['totalCost'])}"
            f"  ·  all time {fmt_cost(s['totals']['totalCost'])}",
            title=f"Today {d['date']}",
            box=box.ROUNDED,
        )
    )
    agents = s.get("agents")
    if agents:  # other coding agents have data: today and all time per agent
        at = Table(title="Per agent", box=box.SIMPLE)
        for col in ("Agent", "Today tokens", "Today cost", "All-time tokens", "All-time cost"):
            at.add_column(col, justify="left" if col == "Agent" else "right")
        for name, a in agents.items():
            at.add_row(name, fmt_tokens_short(a["today"]["totalTokens"]),
                       fmt_cost(a["today"]["totalCost"]), fmt_tokens_short(a["totals"]["totalTokens"]),
                       fmt_cost(a["totals"]["totalCost"]))
        con.print(at)
    b = s["activeBlock"]
    lim = s["tokenLimit"]
    if b is None:
        body = "No active 5-hour block (no usage in the last 5 hours)."
    else:
        lines = [
            f"[b]{fmt_tokens_short(b['totalTokens'])}[/b] tokens  ·  {fmt_cost(b['costUSD'])}  ·  "
            f"{fmt_minutes(b['remainingMinutes'])} left (ends {b['endTime'][11:16]} UTC)",
        ]
        br = b.get("burnRate")
        if br:
            colour = {"low": "green", "medium": "yellow", "high": "red"}[b["burnLevel"]]
            lines.append(
                f"Burn rate [{colour}]{b['burnLevel']}[/{colour}]: {fmt_int(br['tokensPerMinute'])} tokens/min, "
                f"{fmt_cost(br['costPerHour'])}/h"
            )
        if b.get("projection"):
            p = b["projection"]
            lines.append(f"Projection at block end: {fmt_tokens_short(p['totalTokens'])} tokens, {fmt_cost(p['totalCost'])}")
        if lim["tokens"]:
            src = "configured" if lim["source"] == "config" else "largest past block"
            lines.append(f"Limit {fmt_tokens_short(lim['tokens'])} ({src}): {b['limitPercent']:.0f}% used")
        off = s.get("official")
        if off and off.get("fiveHour"):
            lines.append(f"Official 5-hour utilisation: {off['fiveHour'].get('usedPercentage')}% (from Claude Code)")
        body = "\n".join(lines)
    con.print(Panel(body, title="Current block" + (" (estimate)" if b else ""), box=box.ROUNDED))
    t = Table(title="Recent sessions", box=box.SIMPLE)
    for col in ("Session", "Project / name", "Last activity (UTC)", "Tokens", "Cost"):
        t.add_column(col, justify="right" if col in ("Tokens", "Cost") else "left")
    for r in top:
        label = r.get("name") or r.get("title") or ""
        tags = " ".join(f"#{x}" for x in r.get("tags") or [])
        t.add_row(r["sessionId"][:8], " ".join(x for x in (r["projectName"], label and f"· {label}", tags) if x),
                  r["lastActivity"][:16].replace("T", " "), fmt_tokens_short(r["totalTokens"]),
                  fmt_cost(r["totalCost"]), style="bold" if r["isActive"] else None)
    con.print(t)
