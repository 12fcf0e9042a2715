"""`tokmon limits`: official plan limits with pace, forecast, history and calibration."""

from __future__ import annotations

import argparse
import sqlite3
import time
from typing import Any

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json, fmt_cost, fmt_tokens_short, short_model


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "limits", parents=[parent], help="official 5-hour / weekly limits: pace, forecast, history"
    )
    p.add_argument(
        "--past",
        type=int,
        default=10,
        metavar="N",
        help="how many past windows to list (default 10)",
    )
    p.add_argument("--no-alerts", action="store_true", help="do not fire configured alerts")
    p.set_defaults(handler=handle)


def parse_at(value: str | None) -> float | None:
    """``--at`` (ISO date-time; UTC unless it has an offset) as epoch seconds."""
    if not value:
        return None
    from datetime import datetime, timezone

    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CLIError(f"invalid --at {value!r}: expected an ISO date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def evaluate(ctx: Context, fire: bool = True, local: bool = True, now: float | None = None) -> Any:
    """Run one evaluation for a CLI command (engine records when ``local``)."""
    from tokmon.limits.run import evaluate as run

    engine = ctx.engine() if local else None
    try:
        ev = run(
            ctx.paths, ctx.env, ctx.config_path or ctx.paths.config_file, engine, fire=fire, now=now
        )
    except (OSError, sqlite3.DatabaseError) as exc:
        from tokmon.limits.history import db_path

        raise CLIError(f"cannot use the limit history {db_path(ctx.paths)}: {exc}", 1) from exc
    for w in ev.warnings:
        ctx.warn(w)
    for a in ev.fired:
        ctx.stderr.write(f"tokmon: alert: {a['message']}\n")
    return ev


def handle(args: argparse.Namespace, ctx: Context) -> int:
    ev = evaluate(ctx, fire=not args.no_alerts)
    st = ev.status
    st["past"] = st["past"][: max(0, args.past)]
    if ctx.json_output:
        ctx.stdout.write(dump_json(st))
        return 0
    render(ctx, st)
    return 0


def fmt_span(seconds: float | None) -> str:
    """``3d 4h``, ``2h 05m``, ``7m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m:02d}m"
    return f"{m}m"


def fmt_when(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    fmt = "%H:%M" if abs(ts - now) < 20 * 3600 else "%a %d %b %H:%M"
    return time.strftime(fmt, time.localtime(ts))


def render(ctx: Context, st: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    con = ctx.console()
    now = st["generatedAt"]
    if not st["windows"]:
        con.print(
            "No official limit figures yet. Claude Code hands them to its statusLine "
            "command (`tokmon line --claude`, see docs/limits.md); Codex writes its own."
        )
    else:
        t = Table(title="Official limits", box=box.SIMPLE)
        for col in ("window", "used", "age", "resets in", "pace", "at reset", "100% at"):
            t.add_column(col, justify="left" if col == "window" else "right")
        for w in st["windows"]:
            used = f"{w['usedPercent']:.0f}%"
            if w["basis"] == "estimate":
                used = f"~{used} ESTIMATE"
            elif w["officialPercent"] is None:
                used = f"reset (was {used})"
            elif w["stale"]:
                used += " (stale)"
            pace = "-" if w["pace"] is None else f"{w['pace']:.2f}x"
            proj = "-" if w["projectedPercent"] is None else f"{w['projectedPercent']:.0f}%"
            eta = (
                fmt_when(w["eta"], now)
                if w["eta"]
                else ("-" if w["pace"] is None else "not before reset")
            )
            t.add_row(
                w["label"],
                used,
                fmt_span(w["ageSeconds"]),
                fmt_span(w["resetsInSeconds"]) if (w["resetsInSeconds"] or 0) > 0 else "-",
                pace,
                proj,
                eta,
            )
        con.print(t)
    for m in st["limitReached"]:
        con.print(
            f"[b red]Limit reached[/b red] ({m['source']}): resets {fmt_when(m['resetsAt'], now)}"
        )
    cal = st["calibration"]
    if cal:
        t = Table(title="One percent costs (learned from history, estimate)", box=box.SIMPLE)
        for col in ("window", "windows", "$ / %", "tokens / %", "per model (tokens / %)"):
            t.add_column(
                col, justify="left" if col in ("window", "per model (tokens / %)") else "right"
            )
        for name, c in sorted(cal.items()):
            models = ", ".join(
                f"{short_model(m)} {fmt_tokens_short(v['tokensPerPercent'])}"
                for m, v in sorted(c["models"].items())
                if v["tokensPerPercent"]
            )
            t.add_row(
                name,
                str(c["windows"]),
                fmt_cost(c["dollarsPerPercent"]),
                fmt_tokens_short(c["tokensPerPercent"]),
                models,
            )
        con.print(t)
    if st["past"]:
        t = Table(title="Past windows", box=box.SIMPLE)
        for col in ("window", "started", "reset", "peak"):
            t.add_column(col, justify="left" if col == "window" else "right")
        for p in st["past"]:
            t.add_row(
                p["label"],
                fmt_when(p["start"], now),
                fmt_when(p["resetsAt"], now),
                f"{p['peakPercent']:.0f}%",
            )
        con.print(t)
