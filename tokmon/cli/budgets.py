"""`tokmon budgets`: use of the budgets configured in ``[[budgets]]``."""

from __future__ import annotations

import argparse
from typing import Any

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json, fmt_cost, fmt_int, fmt_tokens_short


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "budgets",
        parents=[parent],
        help="use of the configured [[budgets]]",
        description="Each [[budgets]] table of the config (a day, week or month limit in USD "
        "or tokens, optionally for one project, tag, agent or model): used, % and projected % "
        "of the current period (docs/limits.md).",
    )
    p.add_argument("--at", metavar="TIME", help="use as of this ISO time (past periods)")
    p.set_defaults(handler=handle)


def rows(ctx: Context, now: float | None = None) -> list[dict[str, Any]]:
    from tokmon import budgets

    try:
        return budgets.for_context(ctx, now)
    except budgets.BudgetError as exc:
        raise CLIError(str(exc)) from exc


def fmt_amount(b: dict[str, Any], value: float, compact: bool = False) -> str:
    """``$6.21``, ``15,095,337 tok`` (``compact``: ``15.1M tok``, for narrow terminals)."""
    if b["unit"] == "usd":
        return fmt_cost(value)
    return (fmt_tokens_short(value) if compact else fmt_int(value)) + " tok"


def lines(use: list[dict[str, Any]]) -> list[str]:
    """One plain line per budget (for `stats` and terminals)."""
    return [f"{b['name']}: {fmt_amount(b, b['used'])} of {fmt_amount(b, b['limit'])} "
            f"({b['percent']:.0f}%, {b['projectedPercent']:.0f}% projected)" for b in use]  # fmt: skip


def handle(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.cli.limits import parse_at

    use = rows(ctx, parse_at(getattr(args, "at", None)))
    if ctx.json_output:
        ctx.stdout.write(dump_json({"budgets": use}))
        return 0
    if not use:
        from tokmon.cli.render import terminal_width, write_wrapped

        write_wrapped(
            ctx,
            "No budgets configured: add [[budgets]] to the config (see docs/limits.md).",
            terminal_width(ctx),
        )
        return 0
    from tokmon.cli.limits import print_table

    print_table(
        ctx,
        _table(use, compact=False),
        [(lambda: _table(use, compact=True), "full token counts"),
         (lambda: _table(use, compact=True, narrow=True), "period, filters and projection")],
        "the budgets table",
    )  # fmt: skip
    return 0


def _table(use: list[dict[str, Any]], compact: bool, narrow: bool = False) -> Any:
    """``compact``: token counts as ``15.1M tok``; ``narrow``: budget, used, limit and %
    only."""
    from rich import box
    from rich.table import Table

    t = Table(title="Budgets", box=box.SIMPLE, pad_edge=False)
    cols = ["budget", "period", "filters", "used", "limit", "%", "projected"]
    if narrow:
        cols = ["budget", "used", "limit", "%"]
    for col in cols:
        text = col in ("budget", "filters")  # names and filters may wrap; figures never do
        t.add_column(col, justify="left" if col in ("budget", "period", "filters") else "right",
                     overflow="fold" if text else "ellipsis", no_wrap=not text)  # fmt: skip
    for b in use:
        filt = " ".join(f"{k}={v}" for k, v in b["filters"].items()) or "all"
        cells = {
            "budget": b["name"],
            "period": b["periodKey"],
            "filters": filt,
            "used": fmt_amount(b, b["used"], compact),
            "limit": fmt_amount(b, b["limit"], compact),
            "%": f"{b['percent']:.0f}%",
            "projected": fmt_amount(b, b["projected"], compact),
        }
        t.add_row(*(cells[c] for c in cols))
    return t


def stats_rows(ctx: Context) -> list[dict[str, Any]]:
    """Budget use for `stats` (a bad budget config is a warning there, not an error)."""
    try:
        return rows(ctx)
    except CLIError as exc:
        ctx.warn(str(exc))
        return []


def stats_lines(ctx: Context, use: list[dict[str, Any]]) -> None:
    """The budget lines under `stats`' panels."""
    from tokmon.cli.render import terminal_width, write_wrapped

    width = terminal_width(ctx)
    for line in lines(use):
        write_wrapped(ctx, f"Budget {line}", width)
