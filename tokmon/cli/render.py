"""Shared terminal rendering: one width rule for every table, numbers via :mod:`tokmon.fmt`.

Tables are never cut: a terminal narrower than the full table gets the compact layout
(fewer columns and a one-line hint); pipes and files get the full layout with no width
limit.  Text columns (models, projects) may wrap; numbers, dates and ids never do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

import orjson

from tokmon import fmt

if TYPE_CHECKING:
    from tokmon.cli.context import Context

UNLIMITED = 100_000  # "no width limit" for pipes and files


def dump_json(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


# The shared formatters, under the names the CLI modules use.
fmt_int = fmt.integer
fmt_cost = fmt.cost
fmt_tokens_short = fmt.tokens
fmt_minutes = fmt.duration


def short_model(name: str) -> str:
    """claude-sonnet-4-5-20250929 -> sonnet-4-5."""
    s = name.removeprefix("claude-")
    parts = s.split("-")
    if parts and len(parts[-1]) == 8 and parts[-1].isdigit():
        parts = parts[:-1]
    return "-".join(parts)


def id_length(ids: list[str], minimum: int = 8) -> int:
    """The shortest prefix length (at least ``minimum``) that tells ``ids`` apart, so every
    id a table prints is accepted by ``session --id`` / ``session show``."""
    n = minimum
    longest = max((len(i) for i in ids), default=minimum)
    while n < longest and len({i[:n] for i in ids}) < len(set(ids)):
        n += 1
    return n


def terminal_width(ctx: Context) -> int | None:
    """Columns of the terminal stdout writes to; None for a pipe or a file (no limit)."""
    try:
        tty = ctx.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        return None
    try:
        cols = int(ctx.env.get("COLUMNS", ""))
        if cols > 0:
            return cols
    except ValueError:
        pass
    try:
        return os.get_terminal_size(ctx.stdout.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


def console(ctx: Context, width: int | None) -> Any:
    """A rich console for ``ctx.stdout``; ``width`` None means no limit (pipes, files)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich exits 1 here; a reader that stopped early (`| head`) is no failure:
            # the CLI's BrokenPipeError handler ends the run with 0, as for JSON output
            self.quiet = True
            raise BrokenPipeError

    return _Console(
        file=ctx.stdout,
        no_color=not ctx.color,
        color_system="auto" if ctx.color else None,
        highlight=False,
        soft_wrap=False,
        width=width or UNLIMITED,
        force_terminal=None,
        legacy_windows=False,
    )


def table_width(con: Any, renderable: Any) -> int:
    """The width ``renderable`` wants when nothing is squeezed."""
    from rich.measure import Measurement

    return int(Measurement.get(con, con.options.update_width(UNLIMITED), renderable).maximum)


def print_fitted(
    ctx: Context,
    full: Callable[[], Any],
    compact: Callable[[], Any],
    hidden: str,
    command: str,
    force_compact: bool = False,
) -> bool:
    """Print ``full()`` if it fits the terminal (always in pipes), else ``compact()`` and a hint.

    ``hidden`` names what the compact layout leaves out, ``command`` the report; returns
    True when the compact layout was printed.
    """
    width = terminal_width(ctx)
    con = console(ctx, width)
    if force_compact:
        hint = f"Compact layout (--compact): {hidden} not shown"
    else:
        table = full()
        need = table_width(con, table)
        if width is None or need <= width:
            con.print(table)
            return False
        hint = f"Compact layout ({hidden} need {need} cols; or pipe to less -S)"
    table = compact()
    if width is not None:
        need = table_width(con, table)
        if need > width:  # narrower still: let the terminal wrap lines rather than cut cells
            con = console(ctx, need)
    con.print(table)
    ctx.stdout.write(hint + "\n")
    return True


def zone_title(tz: tzinfo) -> str:
    """``times in Pacific/Kiritimati (UTC+14)``."""
    import time

    name = fmt.zone_name(tz)
    off = fmt.offset_label(time.time(), tz)
    return f"times in {name}" + ("" if name == off else f" ({off})")


def resolve_zone(ctx: Context, name: str | None) -> tzinfo:
    """The zone chosen by ``-z``, else the config's ``timezone``, else the system's."""
    from tokmon.cli.context import CLIError

    chosen = name or ctx.config.get("timezone")
    try:
        return fmt.zone(chosen)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
