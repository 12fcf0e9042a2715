"""The report tables (daily, weekly, monthly, session, blocks) in a full, a compact and
narrower layouts.

The full layout is printed when it fits the terminal, and always to pipes and files; a
narrower terminal (or ``--compact``) gets fewer columns and a one-line hint, like ccusage, and
one narrower than every layout a line saying so (docs/terminal.md).
Numbers, dates and ids are never wrapped or cut (ids and project names longer than
:mod:`tokmon.textsafe`'s display limits are clipped with an ellipsis); only text columns
(models, projects) wrap.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from tokmon import fmt
from tokmon.cli.plain_table import Col, Grid, Plan, plain_output, plan_plain, print_plain_fitted
from tokmon.cli.render import id_length, print_fitted, short_model, terminal_width, zone_title
from tokmon.core.rows import SessionRow
from tokmon.metadata.refs import short_id
from tokmon.textsafe import ID_MAX, NAME_MAX, clip

if TYPE_CHECKING:
    from tokmon.cli.context import Context
    from tokmon.core.model import Block
    from tokmon.core.rows import ModelBreakdown, PeriodRow, Usage

TITLE = {"daily": "Date", "weekly": "Week", "monthly": "Month", "session": "Session"}
SHORT_ID = 8  # session ids print as their first 8 characters; `session --id` accepts them


def _tokens(u: Usage | ModelBreakdown) -> tuple[int, int, int, int, int]:
    i, o, cc, cr = u.input_tokens, u.output_tokens, u.cache_creation_tokens, u.cache_read_tokens
    return i, o, cc, cr, i + o + cc + cr


Cols = tuple[tuple[str, Callable[[tuple[int, int, int, int, int]], int]], ...]
# Two-line headers (like ccusage's) keep the full table narrow enough for 100 columns.
TOKEN_COLS: Cols = (("Input", lambda t: t[0]), ("Output", lambda t: t[1]),
                    ("Cache\ncreate", lambda t: t[2]), ("Cache\nread", lambda t: t[3]),
                    ("Total\ntokens", lambda t: t[4]))  # fmt: skip
COMPACT_COLS: Cols = (("Input", lambda t: t[0]), ("Output", lambda t: t[1]))
TOTAL_COLS: Cols = (("Total\ntokens", lambda t: t[4]),)  # the narrowest layouts


def _integer(n: int) -> str:
    """:func:`tokmon.fmt.integer` (a token count: an int below 2**53 in practice, printed
    as it is; anything else as fmt says)."""
    return f"{n:,}" if type(n) is int and 0 <= n < 2**53 else fmt.integer(n)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _project_label(r: SessionRow, meta: Mapping[str, Any] | None, aliases: dict[str, str]) -> str:
    """Project (or its alias), the session's name (else Claude's title) and tags; ``meta``
    is the row merged with its metadata (:func:`tokmon.sessions.merge_one`)."""
    meta = meta or {}
    proj = clip(r.project_name, NAME_MAX)
    if aliases:
        from tokmon.cli.reports import project_key

        proj = aliases.get(r.project_name) or aliases.get(project_key(r.project_path)) or proj
    label = meta.get("name") or r.title or ""
    tags = " ".join(f"#{x}" for x in meta.get("tags") or [])
    return " ".join(x for x in (proj, label and f"· {label}", tags) if x)


def period_table(
    ctx: Context,
    kind: str,
    rows: Sequence[PeriodRow] | Sequence[SessionRow],
    totals: Usage,
    tz: tzinfo,
    *,
    merged: Mapping[str, Mapping[str, Any]] | None = None,
    breakdown: bool = False,
    compact: bool = False,
    aliases: dict[str, str] | None = None,
) -> str | None:
    """daily / weekly / monthly / session rows with a totals footer; ``merged``: session id
    -> the row merged with its metadata (names, tags). Returns the text printed when
    :func:`~tokmon.cli.plain_table.print_plain_fitted` printed it (None: rich did)."""
    aliases = aliases or {}
    merged = merged or {}
    if kind == "session":
        sessions_only = [r for r in rows if isinstance(r, SessionRow)]
        return session_table(
            ctx, sessions_only, totals, tz, merged=merged, breakdown=breakdown,
            compact=compact, aliases=aliases,
        ).text  # fmt: skip
    periods = [r for r in rows if not isinstance(r, SessionRow)]
    by_agent = bool(periods) and periods[0].agent is not None  # --agent all: an agent column
    tot = _tokens(totals)

    grids: dict[int, Grid] = {}
    shown: dict[tuple[str, ...], str] = {}  # models used -> their short names (a few combinations)

    def grid(level: int) -> Grid:
        """Level 0: the full table; 1: compact (no cache); 3: totals only; 4 (``--agent
        all``): totals only, each agent under its date (a row over two lines)."""
        if level in grids:
            return grids[level]
        models = level <= 1
        stacked = level == 4
        # a breakdown's "└ model" rows go under the models; else under the date, which then
        # wraps (never narrower than a date: Grid.fit's floor)
        first_wraps = breakdown and not models
        who = "All agents'" if by_agent else "Claude Code"
        head = f"{TITLE[kind]} /\nagent" if stacked else TITLE[kind]
        g = grids[level] = Grid(
            f"{who} token usage: {kind}", [Col(head, "Total", wrap=first_wraps)]
        )
        if by_agent and not stacked:
            g.cols.append(Col("Agent"))
        if models:
            g.cols.append(Col("Models", wrap=True, max_width=16))
        cols = TOKEN_COLS if level == 0 else COMPACT_COLS if level == 1 else TOTAL_COLS
        for col, k in cols:
            g.cols.append(Col(col, _integer(k(tot)), right=True))
        g.cols.append(Col("Cost\n(USD)", fmt.cost(totals.total_cost), right=True))
        for r in periods:
            cells = [f"{r.label}\n{r.agent}" if stacked else r.label]
            if by_agent and not stacked:
                cells.append(str(r.agent))
            if models:
                used = tuple(r.models_used)
                names = shown.get(used)
                if names is None:
                    names = shown[used] = ", ".join(short_model(m) for m in used)
                cells.append(names)
            toks = _tokens(r.usage)
            cells += [_integer(k(toks)) for _, k in cols]
            cells.append(fmt.cost(r.usage.total_cost))
            g.add_row(cells)
            if breakdown:
                for m in r.model_breakdowns:
                    sub = ["" for _ in g.cols]
                    sub[0 if first_wraps else 1 + (by_agent and not stacked)] = (
                        f"└ {short_model(m.model_name)}"
                    )
                    m_toks = _tokens(m)
                    at = len(g.cols) - len(cols) - 1
                    sub[at:] = [_integer(k(m_toks)) for _, k in cols] + [fmt.cost(m.cost)]
                    g.add_row(sub, dim=True)
        return g

    def build(level: int) -> Any:
        return rich_table(grid(level))

    hidden = "cache and total tokens"
    levels = [(3, "models and token types")]
    if by_agent:
        levels.append((4, "models and token types"))  # the agent under the date
    command = f"tokmon {kind}"
    text = print_plain_fitted(
        ctx,
        lambda: grid(0),
        lambda: grid(1),
        hidden,
        compact,
        narrower=[(functools.partial(grid, k), what) for k, what in levels],
        command=command,
    )
    if text is None:
        print_fitted(
            ctx,
            lambda: build(0),
            lambda: build(1),
            hidden,
            command,
            force_compact=compact,
            narrower=[(functools.partial(build, k), what) for k, what in levels],
        )
    if not rows:
        ctx.stdout.write("No usage in this range.\n")
        if text is not None:
            text += "No usage in this range.\n"
    return text


# A session's cells whatever the layout (:func:`session_cells`): the main row's ...
M_ID, M_AGENT, M_LABEL, M_MODELS, M_I, M_O, M_CC, M_CR, M_TOT, M_COST, M_LAST = range(11)
M_STACK = -1  # (not a cell of its own: the id over the agent, made by fill_session_grid)
# ... and each breakdown row's
B_NAME, B_I, B_O, B_CC, B_CR, B_TOT, B_COST = range(7)
SessionCells = tuple[list[str], list[list[str]]]
_TOKEN_HEADERS = ("Input", "Output", "Cache\ncreate", "Cache\nread", "Total\ntokens")
# the token columns of each session layout (indexes into _tokens' five)
_LEVEL_TOKENS = {0: (0, 1, 2, 3, 4), 1: (0, 1), 2: (4,), 3: (4,), 4: (4,)}
SESSION_HIDDEN = "cache, total tokens, models"
SESSION_NARROWER = ((2, "token types, models, last activity"),
                    (3, "project, token types, models, last activity"))  # fmt: skip
# --agent all: then each agent under its session's id (a row over two lines)
SESSION_STACKED = ((4, "project, token types, models, last activity"),)


def session_cells(
    r: SessionRow,
    meta: Mapping[str, Any] | None,
    aliases: dict[str, str],
    id_len: int,
    tz: tzinfo,
    breakdown: bool,
    by_agent: bool,
    models: dict[tuple[str, ...], str],
) -> SessionCells:
    """Every cell of a session's rows in any layout (indexed by ``M_*`` and ``B_*``);
    ``models``: the short names of each combination of models, filled as they are met."""
    used = tuple(r.models_used)
    names = models.get(used)
    if names is None:
        names = models[used] = ", ".join(short_model(m) for m in used)
    u = r.usage
    sid = clip(short_id(r.session_id), ID_MAX)[:id_len]
    main = [
        sid,
        str(r.agent) if by_agent else "",
        _project_label(r, meta, aliases),
        names,
        *[_integer(x) for x in _tokens(u)],
        fmt.cost(u.total_cost),
        fmt.date_time(r.last_activity, tz),
    ]
    subs = (
        [
            [f"└ {short_model(m.model_name)}", *[_integer(x) for x in _tokens(m)], fmt.cost(m.cost)]
            for m in r.model_breakdowns
        ]
        if breakdown
        else []
    )
    return main, subs


def session_layout(
    level: int,
    breakdown: bool,
    by_agent: bool,
    footers: Sequence[str],
    caption: str,
) -> tuple[Grid, list[int], list[int | None]]:
    """The empty :class:`Grid` of a session table's layout ``level`` (0: full, 1: compact,
    2: totals and project, 3: totals, 4: totals with the agent under the id) and, per
    column, the kind of cell it shows of a main row (``M_*``) and of a breakdown row
    (``B_*``; None: blank). ``footers``: the five token totals and the cost, as shown."""
    models = level == 0
    project = level <= 2
    # a breakdown's "└ model" rows go under the project or models; else under the id, which
    # then wraps (never narrower than an id: Grid.fit's floor)
    first_wraps = breakdown and not models and not project
    who = "All agents'" if by_agent else "Claude Code"
    stacked = level == 4
    head = "Session /\nagent" if stacked else "Session"
    g = Grid(f"{who} token usage: session", [Col(head, "Total", wrap=first_wraps)])
    main: list[int] = [M_STACK if stacked else M_ID]
    sub: list[int | None] = [B_NAME if first_wraps else None]
    if by_agent and not stacked:
        g.cols.append(Col("Agent"))
        main.append(M_AGENT)
        sub.append(None)
    if project:
        g.cols.append(Col("Project / name", wrap=True, max_width=18 if level == 1 else 40))
        main.append(M_LABEL)
        sub.append(None if models else B_NAME)
    if models:
        g.cols.append(Col("Models", wrap=True, max_width=16))
        main.append(M_MODELS)
        sub.append(B_NAME)
    for t in _LEVEL_TOKENS[level]:
        g.cols.append(Col(_TOKEN_HEADERS[t], footers[t], right=True))
        main.append(M_I + t)
        sub.append(B_I + t)
    g.cols.append(Col("Cost\n(USD)", footers[5], right=True))
    main.append(M_COST)
    sub.append(B_COST)
    if level <= 1:
        g.cols.append(Col("Last activity"))
        main.append(M_LAST)
        sub.append(None)
    g.caption = caption
    return g, main, sub


def session_footers(tokens: Sequence[int], cost: float) -> list[str]:
    """The footer cells of a session table: the four token totals, their sum, the cost."""
    i, o, cc, cr = tokens
    return [*[_integer(x) for x in (i, o, cc, cr, i + o + cc + cr)], fmt.cost(cost)]


class SessionTable:
    """A printed session table: its ``text`` (None: rich printed it), each row's ``cells``,
    the layout ``plan`` and the text's ``parts`` (:meth:`Grid.render_parts`; None: no rows
    were laid out) when the plain writer printed it, and the ids' shown length."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.cells: list[SessionCells] = []
        self.plan: Plan | None = None
        self.parts: tuple[str, list[str], str] | None = None
        self.id_len = SHORT_ID
        self.by_agent = False


def session_table(
    ctx: Context,
    rows: Sequence[SessionRow],
    totals: Usage,
    tz: tzinfo,
    *,
    merged: Mapping[str, Mapping[str, Any]] | None = None,
    breakdown: bool = False,
    compact: bool = False,
    aliases: dict[str, str] | None = None,
) -> SessionTable:
    """The session report's table (rows in the order shown) with a totals footer; ``merged``:
    session id -> the row merged with its metadata (names, tags)."""
    aliases = aliases or {}
    merged = merged or {}
    out = SessionTable()
    # ids as shown: clipped first (a transcript's id can be megabytes; the ledger keeps it whole)
    if rows:
        out.id_len = id_length([clip(short_id(r.session_id), ID_MAX) for r in rows])
    by_agent = out.by_agent = bool(rows) and rows[0].agent is not None  # --agent all
    models: dict[tuple[str, ...], str] = {}
    out.cells = cells = [
        session_cells(r, merged.get(r.session_id), aliases, out.id_len, tz, breakdown, by_agent,
                      models)
        for r in rows
    ]  # fmt: skip
    footers = session_footers(_tokens(totals)[:4], totals.total_cost)
    caption = zone_title(tz)
    grids: dict[int, Grid] = {}

    def grid(level: int) -> Grid:
        g = grids.get(level)
        if g is None:
            g, main, sub = session_layout(level, breakdown, by_agent, footers, caption)
            fill_session_grid(g, main, sub, cells)
            grids[level] = g
        return g

    def rich_of(level: int) -> Any:
        return rich_table(grid(level))

    levels = SESSION_NARROWER + (SESSION_STACKED if by_agent else ())
    narrower = [(functools.partial(grid, k), what) for k, what in levels]
    command = "tokmon session"
    if plain_output(ctx):
        out.plan = plan_plain(
            terminal_width(ctx), lambda: grid(0), lambda: grid(1), SESSION_HIDDEN, compact,
            narrower, command,
        )  # fmt: skip
    if out.plan is not None:
        if out.plan.table is None:
            out.text = out.plan.suffix
        else:
            out.parts = out.plan.table.render_parts()
            if out.parts is not None:
                head, lines, tail = out.parts
                out.text = head + "".join(lines) + tail + out.plan.suffix
    if out.text is None:
        out.plan = out.parts = None
        print_fitted(
            ctx,
            functools.partial(rich_of, 0),
            functools.partial(rich_of, 1),
            SESSION_HIDDEN,
            command,
            force_compact=compact,
            narrower=[(functools.partial(rich_of, k), what) for k, what in levels],
        )
    else:
        ctx.stdout.write(out.text)
    if not rows:
        ctx.stdout.write("No usage in this range.\n")
        if out.text is not None:
            out.text += "No usage in this range.\n"
    return out


def fill_session_grid(
    g: Grid, main: Sequence[int], sub: Sequence[int | None], cells: Sequence[SessionCells]
) -> None:
    """Add each session's rows (its main row, then its breakdown rows) to ``g``, the cells
    of the kinds :func:`session_layout` gave."""
    add = g.add_row
    if M_STACK in main:
        for m, subs in cells:
            add([f"{m[M_ID]}\n{m[M_AGENT]}" if k == M_STACK else m[k] for k in main])
            for b in subs:
                add(["" if k is None else b[k] for k in sub], dim=True)
        return
    for m, subs in cells:
        add([m[k] for k in main])
        for b in subs:
            add(["" if k is None else b[k] for k in sub], dim=True)


def rich_table(g: Grid) -> Any:
    """The rich Table of a report's :class:`Grid` (what prints it where
    :func:`~tokmon.cli.plain_table.print_plain_fitted` cannot): the project column's cells
    are text, escaped as markup."""
    from rich import box
    from rich.table import Table

    t = Table(title=g.title, box=box.SIMPLE_HEAVY, show_footer=True)
    markup = -1
    for j, c in enumerate(g.cols):
        if c.wrap:
            t.add_column(c.header, overflow="fold", max_width=c.max_width)
            if c.header == "Project / name":
                markup = j
        else:
            t.add_column(
                c.header, justify="right" if c.right else "left", footer=c.footer, no_wrap=True
            )
    for cells, dim in zip(g.rows, g.dim, strict=True):
        if 0 <= markup and not dim:  # breakdown rows were never escaped
            cells = [*cells[:markup], _esc(cells[markup]), *cells[markup + 1 :]]
        t.add_row(*cells, style="dim" if dim else None)
    if g.caption is not None:
        t.caption = g.caption
    return t


def burn_text(b: Block) -> str:
    """The burn rate, projection and limit status of one block, as the full table shows it."""
    parts = []
    br, p = b.burn_rate, b.projection
    if br and p:
        parts.append(f"{fmt.integer(br.tokens_per_minute)} tok/min → "
                     f"{fmt.integer(p.total_tokens)} ({fmt.cost(p.total_cost)}), "
                     f"{fmt.duration(p.remaining_minutes)} left")  # fmt: skip
    s = b.token_limit_status
    if s:
        parts.append(f"[{fmt.percent(s.percent_used)} of {fmt.integer(s.limit)}: "
                     f"{s.status}]")  # fmt: skip
    return " ".join(parts)


def blocks_table(ctx: Context, blocks: list[Block], tz: tzinfo, *, compact: bool = False) -> bool:
    """5-hour blocks (at least one: an empty report is one line, the caller's); start and end
    in the chosen zone, named in the caption; True when the compact layout (no models,
    entries, burn rate) was printed."""

    def build(level: int) -> Any:
        """Level 0: every column; 1: no models, entries, burn rate; 2: no end either (a
        block's end is its start + 5 h, a gap's the next row's start); 3: as 2, each row
        over two lines (the start's date, then its time and the status)."""
        from rich import box
        from rich.markup import escape
        from rich.table import Table

        t = Table(
            title="Claude Code 5-hour billing blocks", box=box.SIMPLE_HEAVY, caption=zone_title(tz)
        )
        full = level == 0
        stacked = level == 3
        if stacked:
            cols = ["Start,\nstatus", "Tokens", "Cost\n(USD)"]
        else:
            cols = ["Start"] + (["End"] if level <= 1 else []) + ["Status"]
            cols += (["Models", "Entries"] if full else []) + ["Tokens", "Cost (USD)"]
        cols += ["Burn / projection"] if full else []
        for col in cols:
            right = col in ("Entries", "Tokens", "Cost (USD)", "Cost\n(USD)")
            wrap = col in ("Models", "Burn / projection")
            t.add_column(
                col,
                justify="right" if right else "left",
                no_wrap=not wrap,
                overflow="fold",
                max_width=36 if col == "Burn / projection" else None,
            )
        for b in blocks:
            start, end = b.start, b.end
            status = "gap" if b.is_gap else "ACTIVE" if b.is_active else "done"
            if stacked:  # "2025-06-14" over "23:00 done"
                cells = [fmt.date_time(start, tz).replace(" ", "\n", 1) + f" {status}"]
                cells += ["", ""] if b.is_gap else [fmt.integer(b.total_tokens), fmt.cost(b.cost)]
                style = "dim" if b.is_gap else "bold" if b.is_active else None
                t.add_row(*cells, style=style)
                continue
            cells = [fmt.date_time(start, tz)] + ([fmt.date_time(end, tz)] if level <= 1 else [])
            if b.is_gap:
                cells.append("gap")
                cells += [""] * (len(cols) - len(cells))
                t.add_row(*cells, style="dim")
                continue
            cells.append("ACTIVE" if b.is_active else "done")
            if full:
                cells += [", ".join(short_model(m) for m in b.models), fmt.integer(b.entries)]
            cells += [fmt.integer(b.total_tokens), fmt.cost(b.cost)]
            if full:
                cells.append(escape(burn_text(b)))
            t.add_row(*cells, style="bold" if b.is_active else None)
        return t

    narrow = print_fitted(
        ctx,
        lambda: build(0),
        lambda: build(1),
        "models, entries and burn rate",
        "tokmon blocks",
        force_compact=compact,
        narrower=[
            (lambda: build(2), "end, models, entries and burn rate"),
            (lambda: build(3), "end, models, entries and burn rate"),
        ],  # fmt: skip
    )
    return narrow


def _budget_amount(b: Mapping[str, Any], value: float, compact: bool) -> str:
    if b["unit"] == "usd":
        return fmt.cost(value)
    return (fmt.tokens(value) if compact else fmt.integer(value)) + " tok"


def budget_lines(ctx: Context, use: Sequence[Mapping[str, Any]], tz: tzinfo) -> None:
    """Budget use under a report: a heading naming the zone of the periods, then one line
    per budget (name [filters] period: used of limit (%, projected %)).  A line wider than
    the terminal gets compact token counts, else its figures on a line of their own (full
    counts if they fit): a number is never cut (names and filters are text and may wrap)."""
    from tokmon.cli.render import terminal_width
    from tokmon.textsafe import safe_text

    if not use:
        return
    width = terminal_width(ctx)
    out = [f"Budgets (periods in {fmt.zone_name(tz)}):"]
    for b in use:
        filters = " ".join(f"{k}={v}" for k, v in (b.get("filters") or {}).items())
        label = str(b["name"]) + (f" [{filters}]" if filters and filters not in b["name"] else "")
        label = f"{safe_text(label)} {b['periodKey']}"
        line = ""
        for split, compact in ((False, False), (False, True), (True, False), (True, True)):
            figures = (
                f"{_budget_amount(b, b['used'], compact)} of "
                f"{_budget_amount(b, b['limit'], compact)} ({fmt.percent(b['percent'])}, "
                f"{fmt.percent(b['projectedPercent'])} projected)"
                + (", over" if b.get("exceeded") else "")
            )
            if split:  # the figures on a line of their own; the label wrapped at spaces
                import textwrap

                head = textwrap.wrap(
                    f"{label}:", max(width or 0, 20) - 2, subsequent_indent="  ",
                    break_on_hyphens=False,
                )  # fmt: skip
                line = "\n".join(f"  {x}" for x in head) + f"\n      {figures}"
                widest = len(figures) + 6
            else:
                line = f"  {label}: {figures}"
                widest = len(line)
            if width is None or widest <= width:
                break
        else:  # even the compact figures are wider: broken at spaces, indented as they are
            import textwrap

            assert width is not None  # a pipe took the first layout
            figures = "\n      ".join(
                textwrap.wrap(figures, max(width - 6, 12), break_long_words=False)
            )
            line = line[: line.rindex("\n      ") + 7] + figures
        out.append(line)
    ctx.stdout.write("\n".join(out) + "\n")
