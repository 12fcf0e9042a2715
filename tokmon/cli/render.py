"""Shared terminal rendering: one width rule for every table, numbers via :mod:`tokmon.fmt`.

Tables are never cut and never wider than the terminal: a terminal narrower than the full
table gets the compact layout (fewer columns and a one-line hint), then narrower ones, else one
line saying how many columns the table needs; pipes and files get the full layout with no
width limit.  Text columns (models, projects) may wrap; numbers, dates and ids never do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from tokmon import fmt, jsontext

if TYPE_CHECKING:
    from tokmon.cli.context import Context

UNLIMITED = 100_000  # "no width limit" for pipes and files
LAYOUT = 3  # the tables' layout rules: part of a kept session table's key (reports.SessionCache)


def dump_json(data: Any) -> str:
    """A report's JSON: indented by two spaces, as orjson writes it (:mod:`tokmon.jsontext`)."""
    return jsontext.indented(data) + "\n"


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
        cols = os.get_terminal_size(ctx.stdout.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80
    return cols if cols > 0 else 80  # 0: a terminal whose size was never set (unknown)


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


MIN_WRAP = 12  # a text column (models, projects, paths) is never squeezed below this


def wrapped(text: str, width: int | None) -> str:
    """``text`` and a newline, broken at spaces into lines of at most ``width`` columns
    (None: a pipe, one line); a number or a word is never split."""
    if width is None or len(text) <= width:
        return text + "\n"
    import textwrap

    keep = text.replace("less -S", "less\xa0-S")  # one piece: textwrap breaks at ASCII spaces
    # a word wider than the terminal (a long path) stays whole on a line of its own: the
    # terminal folds it, and copying it still gives the whole word
    lines = textwrap.wrap(keep, max(width, 8), break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines or [""]).replace("\xa0", " ") + "\n"


def write_wrapped(ctx: Context, text: str, width: int | None) -> None:
    """A line of text (a hint, a message) on ``ctx.stdout``, :func:`wrapped` to ``width``."""
    ctx.stdout.write(wrapped(text, width))


def fit_table(con: Any, table: Any, width: int, minimum: int = MIN_WRAP) -> bool:
    """Narrow the text columns of a rich ``table`` (those that may wrap) so it fits ``width``
    columns, each down to ``minimum`` (or its own width if smaller); False when it cannot
    fit: its other columns (numbers, dates, ids: never wrapped or cut) need more. The widest
    text columns give way first."""
    # rich's own measures (Table._measure_column, _extra_width, _get_padding_width: private,
    # the same since rich 10), so the widths set here are the ones rich lays out
    opts = con.options.update_width(UNLIMITED)
    cols = table.columns
    ranges = [table._measure_column(con, opts, c) for c in cols]  # padding included
    widths = [int(r.maximum) for r in ranges]
    extra = int(table._extra_width)
    if sum(widths) + extra <= width:
        return True
    pads = [int(table._get_padding_width(c._index)) for c in cols]
    wrap = [j for j, c in enumerate(cols) if not c.no_wrap and c.width is None]
    floor = {j: min(widths[j], minimum + pads[j]) for j in wrap}
    fixed = sum(w for j, w in enumerate(widths) if j not in floor)
    if fixed + sum(floor.values()) + extra > width:
        return False
    lo, hi = 0, max(widths[j] for j in wrap)  # the widest cap that fits: a binary search

    def total(cap: int) -> int:
        return fixed + extra + sum(max(floor[j], min(widths[j], cap)) for j in wrap)

    while lo < hi:
        mid = (lo + hi + 1) // 2
        if total(mid) <= width:
            lo = mid
        else:
            hi = mid - 1
    for j in wrap:
        w = max(floor[j], min(widths[j], lo))
        if w < widths[j]:
            cols[j].width = w - pads[j]
    return True


def table_minimum(con: Any, table: Any, minimum: int = MIN_WRAP) -> int:
    """The narrowest ``table`` can be (text columns at ``minimum``): what the too-narrow
    message asks for."""
    opts = con.options.update_width(UNLIMITED)
    out = int(table._extra_width)
    for c in table.columns:
        w = int(table._measure_column(con, opts, c).maximum)
        if not c.no_wrap and c.width is None:
            w = min(w, minimum + int(table._get_padding_width(c._index)))
        out += w
    return out


def too_narrow_text(command: str, need: int, width: int | None) -> str:
    """The one message printed instead of a table that no layout fits into the terminal."""
    return wrapped(f"Too narrow: {command} needs {need} columns (pipe to less -S, or --json)",
                   width)  # fmt: skip


Layout = tuple[Callable[[], Any], str]  # a table's builder and what it leaves out


def print_fitted(
    ctx: Context,
    full: Callable[[], Any],
    compact: Callable[[], Any],
    hidden: str,
    command: str,
    force_compact: bool = False,
    narrower: Sequence[Layout] = (),
    fit_full: bool = False,
) -> bool:
    """Print ``full()`` if it fits the terminal (always in pipes), else the first of
    ``compact()`` and the ``narrower`` layouts that fits (text columns wrapped narrower as
    needed) and a hint, else one line saying the terminal is too narrow: never a table wider
    than the terminal, never a number cut.

    ``hidden`` (and each narrower layout's text) names what the layout leaves out,
    ``command`` the report; ``fit_full``: the full layout's text columns may wrap narrower
    too (else it is printed only at its natural width). Returns True when the full layout
    was not printed.
    """
    width = terminal_width(ctx)
    con = console(ctx, width)
    need: int | None = None
    if not force_compact:
        table = full()
        need = table_width(con, table)
        if width is None or need <= width or (fit_full and fit_table(con, table, width)):
            con.print(table)
            return False
    narrowest = 0
    for build, left_out in [(compact, hidden), *narrower]:
        table = build()
        if width is not None and not fit_table(con, table, width):
            narrowest = table_minimum(con, table)
            continue
        con.print(table)
        if need is None:
            hint = f"Compact layout (--compact): {left_out} not shown"
        else:
            hint = f"Compact layout ({left_out} need {need} cols; or pipe to less -S)"
        write_wrapped(ctx, hint, width)
        return True
    ctx.stdout.write(too_narrow_text(command, narrowest, width))
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
