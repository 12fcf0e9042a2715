"""`tokmon limits`: official plan limits with pace, forecast, history and calibration."""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import Any

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json, fmt_cost, fmt_tokens_short, resolve_zone, short_model


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "limits",
        parents=[parent],
        help="official 5-hour / weekly limits: pace, forecast, history",
        description="The official limit windows (Claude Code's 5-hour and 7-day utilisation as "
        "`tokmon line --claude` records it, Codex's rate limits): the figure and its age, time "
        "to reset, pace, projected % at reset; the learned cost of one percent; past windows "
        "with their peak (docs/limits.md).",
    )
    p.add_argument(
        "--past",
        type=int,
        default=10,
        metavar="N",
        help="how many past windows to list (default 10)",
    )
    p.add_argument("--no-alerts", action="store_true", help="do not fire configured alerts")
    p.add_argument("-z", "--timezone", help="time zone for times (IANA name or UTC; default: "
                   "config timezone, else system)")  # fmt: skip
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

    engine = ctx.engine(agents=True) if local else None  # Codex's records: its calibration
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
    render(ctx, st, resolve_zone(ctx, getattr(args, "timezone", None)))
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


def fmt_when(ts: float | None, now: float, tz: tzinfo | None = None) -> str:
    """``HH:MM`` within 20 hours of ``now``, else ``Sat 07 Feb 08:18``, in ``tz`` (the
    system zone when None)."""
    if ts is None:
        return "-"
    from datetime import datetime

    from tokmon import fmt as tfmt

    d = datetime.fromtimestamp(ts, tz or tfmt.local_zone())
    return d.strftime("%H:%M" if abs(ts - now) < 20 * 3600 else "%a %d %b %H:%M")


def _fix_min_widths(table: Any) -> None:
    from rich.text import Text

    for col in table.columns:  # a no-wrap column is as wide as its widest cell, never cut
        if col.no_wrap:
            cells = [col.header, *col.cells]
            col.min_width = max(
                (
                    max(Text.from_markup(x).cell_len for x in c.split("\n"))
                    if isinstance(c, str)
                    else 0
                )
                for c in cells
            )


def print_table(
    ctx: Context,
    table: Any,
    narrower: Sequence[tuple[Callable[[], Any], str]] = (),
    name: str = "this table",
) -> None:
    """Print a table at the terminal's width (none for pipes), its text columns wrapped
    narrower as needed; figures are never cut. A table that still does not fit gives way to
    the first of ``narrower`` (a builder and what it leaves out) that does, with a hint,
    else to one line saying the terminal is too narrow: never a table wider than the
    terminal."""
    from tokmon.cli.render import (
        console,
        fit_table,
        table_minimum,
        table_width,
        terminal_width,
        too_narrow_text,
        write_wrapped,
    )

    _fix_min_widths(table)
    width = terminal_width(ctx)
    con = console(ctx, width)
    if width is None or fit_table(con, table, width):
        con.print(table)
        return
    need = table_width(con, table)
    least = table_minimum(con, table)
    for build, left_out in narrower:
        t = build()
        _fix_min_widths(t)
        if fit_table(con, t, width):
            con.print(t)
            write_wrapped(ctx, f"Compact layout ({left_out} need {need} cols; or pipe to less -S)",
                          width)  # fmt: skip
            return
        least = table_minimum(con, t)
    ctx.stdout.write(too_narrow_text(name, least, width))


def _windows_table(st: dict[str, Any], now: float, tz: tzinfo, level: int) -> Any:
    """Level 0: every column; 1: without the figures' age; 2: without pace and the time
    100% is reached either; 3: as 2, the use under the window's name (two lines a row)."""
    from rich import box
    from rich.table import Table

    from tokmon import fmt as tfmt
    from tokmon.cli.render import zone_title

    cols = ["window", "used", "age", "resets", "pace", "at reset", "100% at"]
    if level >= 1:
        cols.remove("age")
    if level >= 2:
        cols.remove("pace")
        cols.remove("100% at")
    stacked = level >= 3
    if stacked:
        cols.remove("used")
    t = Table(title="Official limits", box=box.SIMPLE, caption=zone_title(tz), pad_edge=False)
    for col in cols:
        head = "window,\nused" if stacked and col == "window" else col
        t.add_column(head, justify="left" if col == "window" else "right", no_wrap=True)
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
            fmt_when(w["eta"], now, tz)
            if w["eta"]
            else ("-" if w["pace"] is None else "after reset")
        )
        cells = {
            "window": f"{w['label']}\n{used}" if stacked else w["label"],
            "used": used,
            "age": tfmt.age(w["ageSeconds"]),
            "resets": fmt_span(w["resetsInSeconds"]) if (w["resetsInSeconds"] or 0) > 0 else "-",
            "pace": pace,
            "at reset": proj,
            "100% at": eta,
        }
        t.add_row(*(cells[c] for c in cols))
    return t


def render(ctx: Context, st: dict[str, Any], tz: tzinfo | None = None) -> None:

    from tokmon.cli.render import console, terminal_width, zone_title

    tz = tz or resolve_zone(ctx, None)
    con = console(ctx, terminal_width(ctx))
    now = st["generatedAt"]
    if not st["windows"]:
        con.print(
            "No official limit figures yet. Claude Code hands them to its statusLine "
            "command (`tokmon line --claude`, see docs/limits.md); Codex writes its own."
        )
    else:
        print_table(
            ctx,
            _windows_table(st, now, tz, 0),
            [(lambda: _windows_table(st, now, tz, 1), "the figures' age"),
             (lambda: _windows_table(st, now, tz, 2), "age, pace and the 100% time"),
             (lambda: _windows_table(st, now, tz, 3), "age, pace and the 100% time")],
            "the limits table",
        )  # fmt: skip
    for m in st["limitReached"]:
        con.print(
            f"[b red]Limit reached[/b red] ({m['source']}): resets "
            f"{fmt_when(m['resetsAt'], now, tz)} ({zone_title(tz).removeprefix('times in ')})"
        )
    cal = st["calibration"]
    if cal:
        print_table(
            ctx,
            _calibration_table(cal, True),
            [
                (lambda: _calibration_table(cal, False), "the per-model figures"),
                (lambda: _calibration_table(cal, False, True), "the per-model figures"),
            ],
            "the one-percent table",
        )
    if st["past"]:
        print_table(
            ctx,
            _past_table(st, now, tz, True),
            [
                (lambda: _past_table(st, now, tz, False), "the start times"),
                (lambda: _past_table(st, now, tz, False, True), "the start times"),
            ],
            "the past-windows table",
        )


def _calibration_table(cal: dict[str, Any], per_model: bool, stacked: bool = False) -> Any:
    """``stacked``: the number of windows under the window's name (two lines a row)."""
    from rich import box
    from rich.table import Table

    t = Table(title="One percent costs (learned from history, estimate)", box=box.SIMPLE)
    cols: tuple[str, ...] = ("window", "windows", "$ / %", "tokens / %", "per model (tokens / %)")
    cols = cols if per_model else cols[:-1]
    if stacked:
        cols = tuple(c for c in cols if c != "windows")
    for col in cols:
        t.add_column(
            "window,\nwindows" if stacked and col == "window" else col,
            justify="left" if col in ("window", "per model (tokens / %)") else "right",
            no_wrap=col != "per model (tokens / %)",
        )
    for name, c in sorted(cal.items()):
        models = ", ".join(
            f"{short_model(m)} {fmt_tokens_short(v['tokensPerPercent'])}"
            for m, v in sorted(c["models"].items())
            if v["tokensPerPercent"]
        )
        source = str(c.get("source") or "claude")
        label = name if source == "claude" else f"{source} {name}"
        cells = [f"{label}\n{c['windows']} windows"] if stacked else [label, str(c["windows"])]
        cells += [fmt_cost(c["dollarsPerPercent"]), fmt_tokens_short(c["tokensPerPercent"])]
        t.add_row(*cells, *([models] if per_model else []))
    return t


def _past_table(
    st: dict[str, Any], now: float, tz: tzinfo, started: bool, stacked: bool = False
) -> Any:
    """``stacked``: the reset time under the window's name (two lines a row)."""
    from rich import box
    from rich.table import Table

    from tokmon.cli.render import zone_title

    t = Table(title="Past windows", box=box.SIMPLE, caption=zone_title(tz))
    if stacked:
        t.add_column("window,\nreset", no_wrap=True)
        t.add_column("peak", justify="right", no_wrap=True)
        for p in st["past"]:
            t.add_row(f"{p['label']}\n{fmt_when(p['resetsAt'], now, tz)}",
                      f"{p['peakPercent']:.0f}%")  # fmt: skip
        return t
    cols = ("window", "started", "reset", "peak") if started else ("window", "reset", "peak")
    for col in cols:
        t.add_column(col, justify="left" if col == "window" else "right", no_wrap=True)
    for p in st["past"]:
        cells = [p["label"]] + ([fmt_when(p["start"], now, tz)] if started else [])
        t.add_row(*cells, fmt_when(p["resetsAt"], now, tz), f"{p['peakPercent']:.0f}%")
    return t
