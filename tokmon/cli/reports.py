"""`tokmon daily|weekly|monthly|blocks` (and the bare `tokmon session` report).

Tables by default; ``--json`` is a drop-in for ``ccusage claude <report> --json``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import operator
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json, resolve_zone

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from tokmon.core.engine import Engine
    from tokmon.core.rollups import SessionPart
    from tokmon.core.rows import JSON, PeriodKind, PeriodLabel, PeriodRow, Usage
    from tokmon.filespans import Part, Source

HELP = {
    "daily": "usage per day",
    "weekly": "usage per week",
    "monthly": "usage per month",
    "session": "usage per session",
    "blocks": "usage per 5-hour billing block",
}


def add_report_options(p: argparse.ArgumentParser, kind: str) -> None:
    """The ccusage-compatible options of one report."""
    p.add_argument("-s", "--since", help="from date (YYYYMMDD or YYYY-MM-DD)")
    p.add_argument("-u", "--until", help="until date (YYYYMMDD or YYYY-MM-DD)")
    p.add_argument(
        "-z", "--timezone", help="time zone for dates (IANA name or UTC; default: system)"
    )
    p.add_argument("-o", "--order", choices=["asc", "desc"], default="asc")
    p.add_argument("-b", "--breakdown", action="store_true", help="per-model rows")
    p.add_argument("-p", "--project", help="only this project (cwd path or its last component)")
    p.add_argument(
        "-m",
        "--mode",
        choices=["calculate", "display", "auto"],
        help="cost mode (default: config cost_mode)",
    )
    p.add_argument("--machine", help="only records from this machine (see `tokmon ledger`)")
    if kind != "blocks":  # 5-hour blocks are Claude Code's
        p.add_argument(
            "--agent",
            metavar="NAME",
            help="one agent (claude, codex, gemini, opencode, qwen, copilot, amp) or "
            "'all': every agent with an agent column (default: claude)",
        )
    p.add_argument(
        "-j", dest="json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    p.add_argument("-O", "--offline", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--compact",
        action="store_true",
        help="the narrow layout (fewer columns), whatever the terminal width",
    )
    p.add_argument(
        "--project-aliases",
        metavar="ALIASES",
        help="display names for projects: 'dir=Name,other=Other Name'",
    )
    if kind in ("daily", "weekly", "monthly"):
        p.add_argument(
            "-i",
            "--instances",
            action="store_true",
            help="one section per project (JSON: {projects: {name: rows}})",
        )
    if kind == "weekly":
        p.add_argument(
            "-w",
            "--start-of-week",
            default="sunday",
            choices=["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"],
        )
    if kind == "session":
        p.add_argument(
            "-i",
            "--id",
            dest="session_id",
            help="only this session: a full id or a unique prefix (as tables show it)",
        )
        p.add_argument(
            "--all",
            dest="include_empty",
            action="store_true",
            help="also list sessions with 0 tokens (hidden by default)",
        )
    if kind == "blocks":
        p.add_argument("-a", "--active", action="store_true", help="only the active block")
        p.add_argument("-r", "--recent", action="store_true", help="blocks of the last 3 days")
        p.add_argument("-t", "--token-limit", help="token limit: a number or 'max'")
        p.add_argument("-n", "--session-length", type=float, help="block length in hours (5)")


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    for kind in ("daily", "weekly", "monthly", "blocks", "claude"):
        register_command(sub, parent, kind)


def register_command(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    parent: argparse.ArgumentParser,
    kind: str,
) -> None:
    """One command of this group (a run of ``tokmon daily`` builds only its own parser)."""
    if kind != "claude":
        p = sub.add_parser(kind, parents=[parent], help=HELP[kind], description=HELP[kind])
        add_report_options(p, kind)
        p.set_defaults(handler=lambda a, c, k=kind: run_report(k, a, c))
        return
    # `tokmon claude daily` etc.: ccusage's agent-prefixed spelling of the same reports.
    cp = sub.add_parser(
        "claude",
        parents=[parent],
        help="the reports, spelled as ccusage's `claude` commands",
        description="Same as `tokmon daily|weekly|monthly|session|blocks` "
        "(ccusage's `ccusage claude <report>`).",
    )
    csub = cp.add_subparsers(dest="claude_command", metavar="REPORT", required=True)
    for report in ("daily", "weekly", "monthly", "session", "blocks"):
        p = csub.add_parser(report, parents=[parent], help=HELP[report], description=HELP[report])
        add_report_options(p, report)
        p.set_defaults(handler=lambda a, c, k=report: run_report(k, a, c))


# the longest --session-length (hours) whose blocks' times stay within datetime's range
MAX_SESSION_HOURS = 1e6


def _opts(kind: str, args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from tokmon.core.timeutil import TimezoneError, parse_day, resolve_tz

    opts: dict[str, Any] = {"order": args.order, "project": args.project}
    try:
        opts["since"] = parse_day(args.since) if args.since else None
        opts["until"] = parse_day(args.until) if args.until else None
        if opts["since"] and opts["until"] and opts["since"] > opts["until"]:
            raise CLIError(f"--since {args.since} is after --until {args.until}")
        if args.timezone:
            resolve_tz(args.timezone)
        opts["timezone"] = args.timezone
    except (ValueError, TimezoneError) as exc:
        raise CLIError(str(exc)) from exc
    if getattr(args, "agent", None):
        opts["agent"] = args.agent
    for name in ("start_of_week", "session_id", "active", "recent", "include_empty"):
        if hasattr(args, name):
            opts[name] = getattr(args, name)
    if getattr(args, "token_limit", None):
        from tokmon.config import ConfigError, parse_value

        try:
            opts["token_limit"] = parse_value("token_limit", args.token_limit)
        except ConfigError as exc:
            raise CLIError(
                f"invalid --token-limit {args.token_limit!r}: expected a number or 'max'"
            ) from exc
    if args.mode:
        ctx.config.values["cost_mode"] = args.mode
    if getattr(args, "session_length", None) is not None:
        # (nan, inf and 1e9 hours passed a `<= 0` test and ended the run in a traceback)
        if not 0 < args.session_length <= MAX_SESSION_HOURS:
            raise CLIError(f"--session-length must be positive, at most {MAX_SESSION_HOURS:,.0f}")
        ctx.config.values["session_hours"] = args.session_length
    return opts


def run_report(kind: str, args: argparse.Namespace, ctx: Context) -> int:
    """Compute one report and print it as a table or ccusage-compatible JSON."""
    opts = _opts(kind, args, ctx)
    aliases = parse_aliases(getattr(args, "project_aliases", None))
    engine = ctx.engine(agents="agent" in opts)
    if getattr(args, "machine", None):
        from tokmon.core.machines import machine_filter

        opts["machine"] = args.machine
        engine.record_filter = machine_filter(engine, args.machine, ctx.env, ctx.config)
    if kind == "session" and opts.get("session_id"):
        opts["session_id"] = _resolve_session(ctx, engine, opts["session_id"], opts.get("agent"))
        if ctx.json_output:  # ccusage's shape (an object or null): no budgets key
            ctx.stdout.write(dump_json(session_entries(engine, opts)))
            return 0
    if getattr(args, "instances", False):
        return _instances(kind, args, ctx, engine, opts, aliases)
    cache = ReportCache(ctx, engine, kind, opts) if ctx.json_output and kind in CACHEABLE else None
    if cache is not None:
        hit = cache.get()
        if hit is not None:
            ctx.stdout.write(with_budgets(hit, report_budgets(ctx, kind, opts)))
            return 0
    if kind == "session" and ctx.json_output and _session_json(ctx, engine, opts):
        return 0  # the common case: from the stored sums
    table_cache: SessionCache | None = None
    if kind == "session" and not ctx.json_output:  # the table's text is kept too
        from tokmon.cli.render import LAYOUT, terminal_width, zone_title

        tz = resolve_zone(ctx, opts.get("timezone"))
        shape = (
            LAYOUT,  # a table kept by an older layout is not this one's
            getattr(args, "project_aliases", None),
            bool(getattr(args, "breakdown", False)),
            bool(getattr(args, "compact", False)),
            terminal_width(ctx),
            zone_title(tz),  # the zone's name and its offset now
            ctx.color,
            str(getattr(ctx.stdout, "encoding", None)),
        )
        if _session_table(ctx, engine, opts, args, aliases, tz, shape):
            budget_lines_of(ctx, kind, opts, tz)
            return 0
        table_cache = SessionCache(ctx, engine, opts, "session-table", shape)
        kept = table_cache.get(time.time())
        if kept is not None:
            write_bytes(ctx, kept)
            budget_lines_of(ctx, kind, opts, tz)
            return 0
    # the typed rows (~5 ms of dataclasses) only where built: a cached or stored answer never
    # needs them, a blocks report only its BlocksReport
    from tokmon.core.rows_blocks import BlocksReport

    try:
        report = engine.report(kind, **opts)
    except ValueError as exc:  # an unknown agent name
        raise CLIError(str(exc)) from exc
    merged: list[dict[str, Any]] = []
    meta_read = False  # the metadata was read (a table kept only then)
    if isinstance(report, BlocksReport):
        data = report.to_json()  # the edge
    else:
        from tokmon.core.rows import SessionReport

        if isinstance(report, SessionReport) and not ctx.json_output:
            # a table shows the names and tags: merged into the rows of sessions with metadata
            # (any other row's label is its title, as merged)
            from tokmon.sessions import merge_one

            meta, meta_read = _read_metadata(ctx)
            merged = [
                merge_one(r.to_json(), meta[r.session_id])
                for r in report.rows
                if r.session_id in meta
            ]
            data = {}
        elif isinstance(report, SessionReport):  # session rows get their names and tags merged in
            merged = [r.to_json() for r in report.rows]  # one serialisation per row
            merge_metadata_into(ctx, merged)
            rows_json: list[JSON] = list(merged)
            data = {"sessions": rows_json, "totals": report.totals.to_json()}
            if report.agents is not None:
                data["agents"] = {name: t.to_json() for name, t in report.agents.items()}
        else:
            data = report.to_json()  # the edge
    if ctx.json_output:
        text = dump_json(data)
        if cache is not None:
            cache.put(text)  # the report alone: budget use depends on the clock
        ctx.stdout.write(with_budgets(text, report_budgets(ctx, kind, opts)))
        return 0
    from tokmon.cli.tables import blocks_table, period_table

    tz = resolve_zone(ctx, opts.get("timezone"))
    if isinstance(report, BlocksReport):
        from tokmon.cli.render import terminal_width, write_wrapped

        if not report.blocks:  # one line, not an empty table and a compact-layout hint
            write_wrapped(
                ctx,
                "No active 5-hour block (no usage in the last 5 hours)."
                if opts.get("active")
                else "No blocks in this range.",
                terminal_width(ctx),
            )
            return 0
        narrow = blocks_table(ctx, report.blocks, tz, compact=args.compact)
        if narrow and opts.get("active"):  # what --active is for: burn rate and projection
            from tokmon.cli.tables import burn_text

            for b in report.blocks:
                line = burn_text(b) if b.is_active and not b.is_gap else ""
                if line:
                    write_wrapped(ctx, f"Burn / projection: {line}", terminal_width(ctx))
    elif not report.rows and kind != "session":
        ctx.stdout.write("No usage in this range.\n")
        budget_lines_of(ctx, kind, opts, tz)
    else:
        shown = period_table(
            ctx,
            kind,
            report.rows,
            report.totals,
            tz,
            merged={str(m["sessionId"]): m for m in merged},
            breakdown=args.breakdown,
            compact=args.compact,
            aliases=aliases,
        )
        if table_cache is not None and shown is not None and meta_read:
            table_cache.put_until(shown.encode(), time.time(), math.inf)
        budget_lines_of(ctx, kind, opts, tz)
    return 0


def budget_lines_of(ctx: Context, kind: str, opts: dict[str, Any], tz: Any) -> None:
    """The budget lines under a report's table (none without budgets)."""
    from tokmon.cli.tables import budget_lines

    budget_lines(ctx, report_budgets(ctx, kind, opts) or [], tz)


def report_budgets(ctx: Context, kind: str, opts: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The use of the budgets a report shows (:func:`tokmon.budgets.for_report`), None when
    none is configured; a bad budget config is a warning here, never a lost report."""
    if kind not in ("daily", "weekly", "monthly", "session"):
        return None
    tz = resolve_zone(ctx, opts.get("timezone"))
    path = ctx.config_path or ctx.paths.config_file
    try:  # no config file: no budget (as budgets.load reads it), without importing budgets
        os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        pass  # budgets.load says what is wrong
    from tokmon import budgets
    from tokmon.metadata.store import MetadataError

    try:
        return budgets.for_report(ctx, kind, tz, opts.get("agent"), opts.get("until"))
    except (budgets.BudgetError, MetadataError) as exc:
        ctx.warn(str(exc))
        return None


def _session_json(ctx: Context, engine: Engine, opts: dict[str, Any]) -> bool:
    """``session --json`` from the stored sums (False: they cannot answer it, the typed rows
    do), with the metadata merged in. Its text is kept (:class:`SessionParts`) with each
    session's piece: the same data is the kept text; after a change only the sessions that
    changed since are read and spliced in. The kept rows are printed and copied from the
    kept file (:mod:`tokmon.filespans`), not read."""
    if any(opts.get(k) for k in ("since", "until", "project", "session_id")):
        return False
    if engine.record_filter is not None or opts.get("agent") not in (None, "claude"):
        return False
    from tokmon.filespans import Short

    now = opts.get("now") or time.time()
    cache = SessionParts(ctx, engine, opts)
    kept = cache.open_ranges()
    try:
        use = report_budgets(ctx, "session", opts)
        try:
            body = _session_json_kept(ctx, engine, cache, kept, now)
            if body is not None:
                _print_session_json(ctx, body, kept, use)
                return True
        except Short as short:  # the kept file cut short in place: the answer built whole
            done = short.written
        else:
            done = 0
        body = _session_json_whole(ctx, engine, cache, opts, now)
        if body is None:
            return False
        if done:  # the same bytes: the rest of them
            from tokmon.filespans import joined

            write_bytes(ctx, memoryview(joined(body, None))[done:])
        else:
            _print_session_json(ctx, body, None, use)
        return True
    finally:
        if kept is not None:
            kept.close()


def _session_json_kept(
    ctx: Context, engine: Engine, cache: SessionParts, kept: KeptSessions | None, now: float
) -> list[Part] | None:
    """The answer from the kept one (as kept, or spliced); None: build it whole."""
    if kept is None:
        return None
    if kept.holds(cache, now):
        return kept.piece(0, kept.length)
    if cache.gen is not None and kept.built <= now:
        return _session_json_spliced(ctx, engine, cache, kept, now)
    return None


def _session_json_whole(
    ctx: Context, engine: Engine, cache: SessionParts, opts: dict[str, Any], now: float
) -> list[Part] | None:
    """The answer built whole from the stored sums (and kept); None: they cannot answer."""
    from tokmon.sessions import PLAIN_META

    parts = engine.session_report_parts(now, PLAIN_META, agent=opts.get("agent"))
    if parts is None:
        return None
    meta, read = _read_metadata(ctx, cache.meta_raw)
    return cache.build(parts, meta, bool(opts.get("include_empty")), now, read)


def _print_session_json(
    ctx: Context, body: list[Part], kept: KeptSessions | None, use: list[dict[str, Any]] | None
) -> None:
    """Print ``body`` (its spans from ``kept``'s file), with the budgets' use when any."""
    from tokmon.filespans import joined

    src = None if kept is None else kept.src
    if use is None:
        write_parts(ctx, body, src)
    else:
        ctx.stdout.write(with_budgets(joined(body, src).decode(), use))


# a kept answer whose sessions changed more than this share is built whole instead
SPLICE_SHARE = 0.25


def _session_table(
    ctx: Context,
    engine: Engine,
    opts: dict[str, Any],
    args: argparse.Namespace,
    aliases: dict[str, str],
    tz: Any,
    shape: tuple[Any, ...],
) -> bool:
    """The unfiltered session table, kept with its pieces (:class:`TableParts`): printed as
    kept for the same data; after a change, the rows of the sessions changed since are made
    and spliced into the kept text where the layout and its column widths stay; else built
    whole (and kept). False: a filter, another agent: the caller builds it."""
    if any(opts.get(k) for k in ("since", "until", "project", "session_id")):
        return False
    if engine.record_filter is not None or opts.get("agent") not in (None, "claude"):
        return False
    now = opts.get("now") or time.time()
    breakdown = bool(getattr(args, "breakdown", False))
    compact = bool(getattr(args, "compact", False))
    from tokmon.filespans import Short

    cache = TableParts(ctx, engine, opts, "session-table", (*shape, "parts"))
    kept = cache.open_ranges()
    done = 0  # the bytes printed from a kept file cut short in place while printed
    try:
        if _table_kept(ctx, engine, cache, kept, now, tz, breakdown, compact, aliases):
            return True
    except Short as short:  # the table built whole (the same bytes): the rest of them
        done = short.written
    finally:
        if kept is not None:
            kept.close()
    out = ctx.stdout
    if done:
        ctx.stdout = _Rest(out, done)  # type: ignore[assignment]
    try:
        _table_built(ctx, engine, cache, opts, now, tz, breakdown, compact, aliases)
    finally:
        ctx.stdout = out
    return True


def _table_built(
    ctx: Context,
    engine: Engine,
    cache: TableParts,
    opts: dict[str, Any],
    now: float,
    tz: Any,
    breakdown: bool,
    compact: bool,
    aliases: dict[str, str],
) -> None:
    """The session table built whole (and kept, when printed plain)."""
    from tokmon.cli.tables import session_table
    from tokmon.core.rows import SessionReport
    from tokmon.sessions import merge_one

    # every session (the 0-token ones too: the totals' cost is summed over all of them);
    # the rows shown filtered here, as the report filters them before its stable sort
    report = engine.report("session", **{**opts, "include_empty": True})
    assert isinstance(report, SessionReport)
    include_empty = bool(opts.get("include_empty"))
    rows = [r for r in report.rows if include_empty or r.total_tokens]
    meta, read = _read_metadata(ctx, cache.meta_raw)
    merged = {r.session_id: merge_one(r.to_json(), meta[r.session_id])
              for r in rows if r.session_id in meta}  # fmt: skip
    table = session_table(
        ctx, rows, report.totals, tz, merged=merged, breakdown=breakdown, compact=compact,
        aliases=aliases,
    )  # fmt: skip
    if read and table.text is not None and rows and not table.by_agent:
        shown = {r.session_id for r in rows}
        hidden = [[r.session_id, r.first_activity, r.total_cost, 0, 0]
                  for r in report.rows if r.session_id not in shown]  # fmt: skip
        cache.keep_built(table, rows, hidden, report.totals, now)


class _Rest:
    """A text stream past its first ``skip`` bytes (written to its binary buffer): what a
    print cut short printed already is not printed again (the table built whole is the
    same bytes). Anything else is the stream's."""

    def __init__(self, stream: Any, skip: int) -> None:
        self.stream, self.skip = stream, skip

    def write(self, text: str) -> int:
        data = text.encode()
        cut = min(self.skip, len(data))
        self.skip -= cut
        if cut < len(data):
            self.stream.flush()
            self.stream.buffer.write(data[cut:])
            self.stream.buffer.flush()
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _table_kept(
    ctx: Context,
    engine: Engine,
    cache: TableParts,
    kept: KeptTable | None,
    now: float,
    tz: Any,
    breakdown: bool,
    compact: bool,
    aliases: dict[str, str],
) -> bool:
    """Print the table from ``kept`` (as kept, or spliced; its kept text printed from the
    file: :func:`write_parts`). False: build it whole; also when the file was cut short in
    place before anything was printed (:class:`~tokmon.filespans.Short` when some was)."""
    from tokmon.filespans import Short

    if kept is None:
        return False
    try:
        if cache.holds(kept.gen, kept.wid):
            write_parts(ctx, kept.text.piece(0, kept.text.length), kept.src)
            return True
        body: list[Part] | None = None
        if cache.gen is not None:
            try:
                body = _table_spliced(
                    ctx, engine, cache, kept, now, tz, breakdown, compact, aliases
                )
            except (TypeError, ValueError, KeyError, IndexError):  # kept data of a wrong shape
                return False
        if body is None:
            return False
        write_parts(ctx, body, kept.src)
    except Short as short:
        if not short.written:
            return False
        raise
    return True


def _table_spliced(
    ctx: Context,
    engine: Engine,
    cache: TableParts,
    kept: KeptTable,
    now: float,
    tz: Any,
    breakdown: bool,
    compact: bool,
    aliases: dict[str, str],
) -> list[Part] | None:
    """The session table from ``kept`` and the rows of the sessions changed since (None:
    they cannot be told, too many changed, a row the plain writer cannot print, another
    layout or other column widths or id length: build it whole)."""
    import bisect
    import functools
    import itertools

    import orjson

    from tokmon.cli.plain_table import plain_output, plain_text, plan_plain
    from tokmon.cli.render import id_length, terminal_width, zone_title
    from tokmon.cli.tables import (
        SESSION_HIDDEN,
        SESSION_NARROWER,
        fill_session_grid,
        session_cells,
        session_footers,
        session_layout,
    )
    from tokmon.sessions import merge_one
    from tokmon.textsafe import ID_MAX, clip

    assert cache.lineage is not None
    if not plain_output(ctx):
        return None
    changed = engine.sessions_changed_since(cache.lineage, kept.gen, kept.wid)
    if changed is None or not kept.parse():
        return None
    entries, n = kept.entries, kept.shown
    if len(changed) > max(SPLICE_SHARE * len(entries), 100):
        return None
    rows = engine.session_rows(only=changed, now=now) if changed else []
    include_empty = cache.include_empty
    new_rows = [r for r in rows if include_empty or r.total_tokens]
    # the shown rows changed (C-level passes: no Python step a session)
    hit = list(map(changed.__contains__, map(_ID, itertools.islice(entries, n))))
    out = list(itertools.compress(itertools.count(), hit))
    if not new_rows and len(out) == n:
        return None  # no rows: "No usage", built
    if {entries[k][0] for k in out} != {r.session_id for r in new_rows}:  # other ids shown
        ids = [e[0] for e in entries[:n] if e[0] not in changed]
        ids += [r.session_id for r in new_rows]
        if id_length([clip(i, ID_MAX) for i in ids]) != kept.id_len:
            return None
    id_len = kept.id_len
    meta, read = _read_metadata(ctx, cache.meta_raw) if new_rows else ({}, True)
    if not read:
        return None
    models: dict[tuple[str, ...], str] = {}
    cells = [
        session_cells(
            r,
            merge_one(r.to_json(), meta[r.session_id]) if r.session_id in meta else None,
            aliases, id_len, tz, breakdown, False, models,
        )
        for r in new_rows
    ]  # fmt: skip
    if not all(plain_text(" ".join([*m, *itertools.chain.from_iterable(b)])) for m, b in cells):
        return None
    hist, bhist, tokens = kept.hist, kept.bhist, list(kept.tokens)
    text_at = list(itertools.accumulate(map(_TEXT_LEN, entries[:n]), initial=kept.head))
    cells_at = list(itertools.accumulate(map(_LEN, entries[:n]), initial=0))
    if text_at[n] > kept.text.length or cells_at[n] != kept.cells.length:
        return None  # lengths that do not add up: damaged
    if min(itertools.chain(map(_TEXT_LEN, entries[:n]), map(_LEN, entries[:n])), default=0) < 0:
        return None  # a negative length
    events: list[tuple[int, int, Any, Any]] = []  # (old position, 0 insert / 1 drop, ...)
    for k in out:
        main, subs, sums = orjson.loads(kept.cells.read(cells_at[k], cells_at[k + 1]))
        _count(hist, main, -1)  # the lengths of its cells
        for b in subs:
            _count(bhist, b, -1)
        for j in range(4):
            tokens[j] -= sums[j]
        events.append((k, 1, None, None))
    made: list[list[Any]] = []  # each new row's entry, lengths' bytes and (below) lines
    for r, (main, subs) in zip(new_rows, cells, strict=True):
        main_lens = list(map(len, main))
        subs_lens = [list(map(len, b)) for b in subs]
        _count(hist, main_lens, 1)
        for b in subs_lens:
            _count(bhist, b, 1)
        u = r.usage
        sums = [u.input_tokens, u.output_tokens, u.cache_creation_tokens, u.cache_read_tokens]
        for j in range(4):
            tokens[j] += sums[j]
        blob = orjson.dumps([main_lens, subs_lens, sums])
        made.append([[r.session_id, r.first_activity, r.total_cost, 0, len(blob)], blob])
    hidden = [e for e in entries[n:] if e[0] not in changed]
    hidden += [[r.session_id, r.first_activity, r.total_cost, 0, 0]
               for r in rows if not (include_empty or r.total_tokens)]  # fmt: skip
    kept_rows = itertools.compress(entries, map(operator.not_, hit))
    tcost = _totals_cost(itertools.chain(kept_rows, (m[0] for m in made), hidden))
    footers = session_footers(tokens, tcost)
    caption = zone_title(tz)
    layouts = {}
    for level in range(4):
        g, main_k, sub_k = session_layout(level, breakdown, False, footers, caption)
        hmax = [max((x for x, c in h.items() if c > 0), default=0) for h in hist]
        bmax = [max((x for x, c in h.items() if c > 0), default=0) for h in bhist]
        g.set_longest(
            [max(hmax[m], 0 if b is None else bmax[b]) for m, b in zip(main_k, sub_k, strict=True)]
        )
        layouts[level] = (g, main_k, sub_k)
    plan = plan_plain(
        terminal_width(ctx),
        lambda: layouts[0][0],
        lambda: layouts[1][0],
        SESSION_HIDDEN,
        compact,
        [(functools.partial(lambda k: layouts[k][0], k), what) for k, what in SESSION_NARROWER],
        "tokmon session",
    )
    if plan is None or plan.level != kept.level:
        return None
    head = tail = b""
    if plan.table is not None:
        if plan.table.widths() != kept.widths:
            return None
        g, main_k, sub_k = layouts[plan.level]
        fill_session_grid(g, main_k, sub_k, cells)
        parts = g.render_parts()
        if parts is None:
            return None
        head, lines = parts[0].encode(), iter(parts[1])
        tail = parts[2].encode()
        for m, (_, subs) in zip(made, cells, strict=True):
            m.append("".join(itertools.islice(lines, 1 + len(subs))).encode())
            m[0][3] = len(m[2])
    for m in made:
        e = m[0]
        at = bisect.bisect_right(entries, _doc_key(e), 0, n, key=_doc_key)
        events.append((at, 0, _doc_key(e), m))
    events.sort(key=_event_key)
    text: list[Part] = [head]
    blobs: list[Part] = []
    listed: list[list[Any]] = []
    a = 0  # the first old row of the run being copied
    for at, kind, _, new in events:
        if a < at:  # the run [a, at) of kept rows, as ranges of the kept file
            text += kept.text.piece(text_at[a], text_at[at])
            blobs += kept.cells.piece(cells_at[a], cells_at[at])
            listed += entries[a:at]
        if kind:
            a = at + 1
        else:
            a = max(a, at)
            text.append(new[2] if len(new) > 2 else b"")
            blobs.append(new[1])
            listed.append(new[0])
    if a < n:
        text += kept.text.piece(text_at[a], text_at[n])
        blobs += kept.cells.piece(cells_at[a], cells_at[n])
        listed += entries[a:n]
    text += [tail, plan.suffix.encode()]
    cache.keep(text, blobs, listed, hidden, tokens, hist, bhist, plan, id_len, len(head), now, kept)
    return text


def _count(hist: list[dict[int, int]], lengths: list[int], by: int) -> None:
    """Count a row's cells' ``lengths`` in (``by`` 1) or out of (-1) each kind's histogram."""
    for h, n in zip(hist, lengths, strict=True):
        h[n] = h.get(n, 0) + by


def _session_json_spliced(
    ctx: Context, engine: Engine, cache: SessionParts, kept: KeptSessions, now: float
) -> list[Part] | None:
    """``session --json`` at ``now`` from ``kept`` and the rows of the sessions changed since
    (None: they cannot be told, or too many changed: build it whole)."""
    from tokmon.sessions import PLAIN_META

    assert cache.lineage is not None
    changed = engine.sessions_changed_since(cache.lineage, kept.gen, kept.wid)
    if changed is None or not kept.parse():
        return None
    if now >= kept.until:  # a session shown active may not be any more: read those again
        changed |= kept.active()
    if len(changed) > max(SPLICE_SHARE * len(kept.entries), 100):
        return None
    parts = engine.session_report_parts(now, PLAIN_META, only=changed)
    if parts is None:
        return None
    meta, read = _read_metadata(ctx, cache.meta_raw) if parts else ({}, True)
    try:
        return cache.splice(kept, changed, parts, meta, now, read)
    except (TypeError, ValueError, KeyError, IndexError):  # an index of the wrong shape
        return None


Piece = bytes | memoryview  # a part of an answer's bytes (see write_bytes)


def write_bytes(ctx: Context, body: Piece | list[Piece]) -> None:
    """``ctx.stdout.write(body.decode())`` without the text in between where stdout is a
    UTF-8 stream over a binary buffer that does not translate newlines (a large report is
    neither decoded nor encoded again); ``body`` may be a list of pieces, written one after
    the other."""
    out = ctx.stdout
    buf = getattr(out, "buffer", None)
    enc = str(getattr(out, "encoding", "") or "").lower().replace("_", "-")
    if buf is None or enc not in ("utf-8", "utf8") or sys.platform == "win32":
        out.write(_joined(body).decode())
        return
    out.flush()  # what was written as text goes first
    if isinstance(body, list):
        buf.writelines(body)
    else:
        buf.write(body)
    buf.flush()


def write_parts(ctx: Context, body: list[Part], src: Source | None) -> None:
    """:func:`write_bytes` of parts that may be spans of the kept file ``src``
    (:func:`tokmon.filespans.write_parts`: printed from the file, not read first)."""
    from tokmon.filespans import Span, joined
    from tokmon.filespans import write_parts as write_spans

    if src is None or not any(isinstance(p, Span) for p in body):
        write_bytes(ctx, body)  # type: ignore[arg-type]
        return
    out = ctx.stdout
    buf = getattr(out, "buffer", None)
    enc = str(getattr(out, "encoding", "") or "").lower().replace("_", "-")
    if buf is None or enc not in ("utf-8", "utf8") or sys.platform == "win32":
        out.write(joined(body, src).decode())  # read whole first: Short before any output
        return
    write_spans(out, buf, body, src)


def _joined(body: Piece | list[Piece]) -> bytes:
    return b"".join(body) if isinstance(body, list) else bytes(body)


def with_budgets(text: str, use: list[dict[str, Any]] | None) -> str:
    """A report's JSON text with a top-level ``budgets`` key added (unchanged for None: the
    ccusage shapes stay byte-identical without budgets)."""
    if use is None:
        return text
    import orjson

    data = orjson.loads(text)
    if not isinstance(data, dict):
        return text
    data["budgets"] = use
    return dump_json(data)


def parse_aliases(text: str | None) -> dict[str, str]:
    """``'dir=Name,other=Other'`` -> {"dir": "Name", "other": "Other"} (ccusage's --project-aliases)."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CLIError(
                f"invalid --project-aliases entry {part.strip()!r} (expected name=Display Name)"
            )
        out[key.strip()] = value.strip()
    return out


def project_key(cwd: str) -> str:
    """Claude Code's directory name for a project cwd (``/src/app`` -> ``-src-app``), as ccusage keys it."""
    import re

    return re.sub(r"[^A-Za-z0-9]", "-", cwd) if cwd else "unknown"


def _resolve_session(ctx: Context, engine: Engine, ref: str, agent: str | None = None) -> str:
    """``--id REF``: the session REF names (:func:`tokmon.sessions.resolve`: id, name, unique
    prefix, Claude title) among the report's agent's sessions (``--agent``; every agent's
    for ``all``); an unknown REF stays as given under ``--json`` (null, as in ccusage) and is
    one error line for a table."""
    from tokmon.sessions import RefError, resolve

    ids = {r.session_id for r in _agent_records(engine, agent, strict=False)}
    try:
        return resolve(ref, ids, _metadata(ctx), engine.titles)
    except RefError as exc:
        if exc.ambiguous:
            raise CLIError(str(exc)) from None
        parent = _subagent_parent(engine, ref)
        if parent is None and not ctx.json_output:  # JSON: ccusage's null; a table: say so
            raise CLIError(str(exc)) from None
        if parent is not None:
            ctx.warn(
                f"{ref} is a subagent's transcript (ccusage names a session after its file); "
                f"tokmon counts it in the session that started it: tokmon session --id {parent}"
            )
        return ref


def _agent_records(engine: Engine, agent: str | None, *, strict: bool) -> list[Any]:
    """The records of a report's ``--agent`` (None: Claude Code; ``all``: every agent with
    data); an unknown agent name is a :class:`CLIError` when ``strict``, else no records."""
    out: list[Any] = []
    for name in engine.agent_names() if agent == "all" else [agent]:
        try:
            out += engine.records_of(name)
        except ValueError as exc:
            if strict:
                raise CLIError(str(exc)) from None
    return out


def _subagent_parent(engine: Engine, ref: str) -> str | None:
    """The session a ccusage ``agent-…`` id (a subagent transcript's file name, flat or under
    ``<session>/subagents/``) belongs to: the ``sessionId`` its lines carry."""
    import re

    from tokmon.textsafe import safe_text

    if not re.fullmatch(r"agent-[A-Za-z0-9]{1,64}", ref):
        return None
    name = f"{ref}.jsonl"
    for root in engine.roots:
        base = Path(root)
        try:
            files = [*base.glob(f"*/{name}"), *base.glob(f"*/*/subagents/{name}")]
        except OSError:
            continue
        for f in files:
            try:
                with open(f, "rb") as fh:
                    for _, line in zip(range(50), fh, strict=False):
                        m = re.search(rb'"sessionId":"([^"\\]{1,200})"', line)
                        if m:
                            return safe_text(m.group(1).decode("utf-8", "replace"))
            except OSError:
                continue
    return None


def session_entries(engine: Engine, opts: dict[str, Any]) -> dict[str, Any] | None:
    """ccusage's ``session --id X --json``: the session's totals and its entries (null if unknown)."""
    from tokmon.core.timeutil import iso

    sid = opts["session_id"]
    # --agent: that agent's session (ccusage's shape for every agent)
    recs = [
        r for r in _agent_records(engine, opts.get("agent"), strict=True) if r.session_id == sid
    ]
    recs.sort(key=lambda r: r.ts)
    if not recs:
        return None
    entries = [
        {
            "timestamp": iso(r.ts),
            "inputTokens": r.input_tokens,
            "outputTokens": r.output_tokens,
            "cacheCreationTokens": r.cache_creation_tokens,
            "cacheReadTokens": r.cache_read_tokens,
            "model": r.model,
            "costUSD": float(r.display_cost or 0.0),
        }
        for r in recs
    ]
    return {
        "sessionId": sid,
        "totalCost": sum(r.cost for r in recs),
        "totalTokens": sum(r.total_tokens for r in recs),
        "entries": entries,
    }


def session_dirs(engine: Engine) -> dict[str, str]:
    """Session id -> the name of its directory under ``projects/`` (ccusage's project key)."""
    out: dict[str, str] = {}
    for root in engine.roots:
        try:
            dirs = [d for d in Path(root).iterdir() if d.is_dir()]
        except OSError:
            continue
        for d in dirs:
            try:
                for f in d.rglob("*.jsonl"):
                    if not f.name.startswith("agent-"):
                        out.setdefault(f.stem, d.name)
            except OSError:
                continue
    return out


def _instances(
    kind: str,
    args: argparse.Namespace,
    ctx: Context,
    engine: Engine,
    opts: dict[str, Any],
    aliases: dict[str, str],
) -> int:
    """``-i/--instances``: one report per project, keyed like ccusage's ``projects`` object
    (the transcript's directory under ``projects/``)."""
    from tokmon.core import aggregate
    from tokmon.core.timeutil import WEEKDAYS, DateKeyer

    dirs = session_dirs(engine)
    recs = engine._filtered(
        opts.get("since"), opts.get("until"), opts.get("project"), opts.get("timezone")
    )
    keyer = DateKeyer(resolve_tz_name(engine, opts.get("timezone")))
    sow = WEEKDAYS.index(opts.get("start_of_week") or "sunday")
    key_fn = {"daily": keyer.day, "monthly": keyer.month, "weekly": lambda ts: keyer.week(ts, sow)}[
        kind
    ]
    labels: dict[str, tuple[PeriodLabel, PeriodKind]] = {
        "daily": ("date", "daily"),
        "weekly": ("week", "weekly"),
        "monthly": ("month", "monthly"),
    }
    label, list_name = labels[kind]
    by_cwd: dict[str, str] = {}  # sessions without a transcript of their own (resumed ones)
    for r in engine.records:  # go where other sessions of the same cwd are
        if r.session_id in dirs and r.project:
            by_cwd.setdefault(r.project, dirs[r.session_id])
    groups: dict[str, list[Any]] = {}
    for r in recs:
        key = dirs.get(r.session_id) or by_cwd.get(r.project) or project_key(r.project)
        groups.setdefault(key, []).append(r)
    projects: dict[str, list[PeriodRow]] = {}
    for key in sorted(groups):
        rep = aggregate.period_report(
            groups[key], key_fn, label, list_name, opts.get("order") or "asc"
        )
        projects[key] = rep.rows
    totals = aggregate.totals_of(aggregate.totals(recs))
    if ctx.json_output:
        wire = {
            key: [{**row.to_json(), "project": key} for row in rows]
            for key, rows in projects.items()
        }
        text = dump_json({"projects": wire, "totals": totals.to_json()})
        ctx.stdout.write(with_budgets(text, report_budgets(ctx, kind, opts)))
        return 0
    from tokmon.cli.tables import period_table

    tz = resolve_zone(ctx, opts.get("timezone"))
    for key, rows in projects.items():
        from tokmon.cli.render import terminal_width, write_wrapped

        ctx.stdout.write("\n")
        write_wrapped(ctx, f"Project: {aliases.get(key, key)}", terminal_width(ctx))
        period_table(
            ctx,
            kind,
            rows,
            _sum_rows(rows),
            tz,
            breakdown=args.breakdown,
            compact=args.compact,
            aliases=aliases,
        )
    if not projects:
        ctx.stdout.write("No usage in this range.\n")
    budget_lines_of(ctx, kind, opts, tz)
    return 0


def resolve_tz_name(engine: Engine, name: str | None) -> Any:
    from tokmon.core.timeutil import resolve_tz

    return resolve_tz(engine._tz_name(name))


def _sum_rows(rows: list[PeriodRow]) -> Usage:
    """The rows' sums, added in row order."""
    from tokmon.core.rows import Usage

    i = o = cc = cr = 0
    cost = 0.0
    for r in rows:
        u = r.usage
        i, o, cc, cr = (
            i + u.input_tokens,
            o + u.output_tokens,
            cc + u.cache_creation_tokens,
            cr + u.cache_read_tokens,
        )
        cost += u.total_cost
    return Usage(i, o, cc, cr, cost)


# Reports that do not depend on the current time: their JSON is cached per data version.
CACHEABLE = {"daily", "weekly", "monthly"}


class ReportCache:
    """Rendered JSON of a report, keyed by the ledger's data version and the options."""

    KEEP = 16

    def __init__(
        self,
        ctx: Context,
        engine: Engine,
        kind: str,
        opts: dict[str, Any],
        version: str | None | Literal[True] = True,
    ) -> None:
        """``version``: what of the data keys the text (True: ``engine.data_version()``;
        None: nothing is kept)."""
        from tokmon.core.digest import sha1_hex
        from tokmon.core.timeutil import resolve_tz

        if version is True:
            version = engine.data_version()
        self.path = None
        if version is None:
            return
        tz = opts.get("timezone") or engine.config.get("timezone") or str(resolve_tz(None))
        key = repr(
            (
                kind,
                sorted(opts.items(), key=lambda kv: kv[0]),
                tz,
                version,
                [str(r) for r in engine.candidate_roots],
            )
        )
        digest = sha1_hex(key.encode())[:20]
        self.dir = ctx.paths.cache_dir / "reports"
        self.path = self.dir / f"{kind}-{digest}.json"

    def get(self) -> str | None:
        if self.path is None:
            return None
        from tokmon.fsutil import read_regular

        try:
            data = read_regular(self.path)
        except OSError:
            return None
        if b"\0" in data:  # cut in place and grown again (no report holds a NUL): a miss
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def put(self, text: str) -> None:
        if self.path is None:
            return
        from tokmon.fsutil import atomic_write

        try:
            atomic_write(self.path, text.encode("utf-8"), fsync=False)
            with os.scandir(self.dir) as it:
                old = sorted(
                    (e for e in it if e.name.endswith(".json") or _torn(e)),
                    key=lambda e: e.stat().st_mtime,
                )
            for e in [e for e in old if _torn(e)] + old[: -self.KEEP]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(e.path)
        except OSError:
            pass  # a cache is optional


def _metadata(ctx: Context) -> dict[str, dict[str, Any]]:
    """Every session's metadata; an unreadable store is a warning, never a lost report."""
    return _read_metadata(ctx)[0]


def _read_metadata(
    ctx: Context, raw: bytes | None = None
) -> tuple[dict[str, dict[str, Any]], bool]:
    """:func:`_metadata` and whether the store was read (False: it warned); ``raw``: the
    store's bytes when already read (None: read them)."""
    if raw is not None and not raw.strip():  # no store (or an empty one): no metadata, and
        return {}, True  # neither the store's module nor orjson (and its uuid) imported
    from tokmon.metadata.store import MetadataStore

    try:
        return MetadataStore(paths=ctx.paths).all(raw), True
    except Exception as exc:  # metadata is decoration: never lose the report over it
        ctx.warn(f"session metadata unavailable: {exc}")
        return {}, False


class SessionCache(ReportCache):
    """``session --json`` as printed (metadata merged, no budgets), keyed like a
    :class:`ReportCache` and by the block length (``isActive``) and the metadata store's
    content (its digest). The file starts with a line ``<built> <until>``: the text is the
    answer from the time it was built until the first session it shows as active turns
    inactive (``Engine.session_report_until``); a clock set back before ``built`` is a miss
    too. Only the latest :attr:`KEEP_SESSION` of a kind (the JSON, the table) are kept
    (thousands of sessions: megabytes)."""

    KEEP_SESSION = 4

    def __init__(
        self,
        ctx: Context,
        engine: Engine,
        opts: dict[str, Any],
        kind: str = "session",
        shape: object = None,
    ) -> None:
        """``kind`` "session-table" with the table's ``shape`` (options, width, zone) keeps
        the table's text: it does not show ``isActive``, it is kept until the data change."""
        from tokmon.core.digest import sha1_hex
        from tokmon.fsutil import read_regular

        # the metadata store's bytes, read once: their digest keys the answer, their
        # records are merged into it (meta_raw; None: read again, and warn, when merging)
        self.meta_raw: bytes | None = None
        try:  # a FIFO in its place is refused, not waited on (MetadataStore's own path)
            self.meta_raw = read_regular(ctx.paths.metadata_file)
            meta: str | None = sha1_hex(self.meta_raw)
        except FileNotFoundError:
            self.meta_raw, meta = b"", None
        except OSError:
            meta = None  # unreadable: then never put
        self.engine, self.opts, self.kind = engine, opts, kind
        key = {k: v for k, v in opts.items() if k != "now"}
        key["~block_seconds"] = engine.block_seconds
        key["~metadata"] = meta
        if shape is not None:
            key["~shape"] = shape
        super().__init__(ctx, engine, kind, key, self._version(engine))

    def _version(self, engine: Engine) -> str | None:
        """The data version in the key (all of it: the text is of this version only)."""
        return engine.data_version()

    def get(self, now: float) -> bytes | None:  # type: ignore[override]
        """The kept answer at ``now`` (None: none, or not valid at ``now``)."""
        if self.path is None:
            return None
        from tokmon.fsutil import read_regular

        try:
            data = read_regular(self.path)
            nl = data.find(b"\n", 0, 100)
            built, until = (float(x) for x in data[: max(nl, 0)].split())
            if not built <= now < until:
                return None
            return data[nl + 1 :]
        except (OSError, ValueError):
            return None

    def put_until(
        self,
        body: bytes | list[Piece] | list[Part],
        built: float,
        until: float,
        src: Source | None = None,
    ) -> None:
        """Keep ``body`` (or its pieces), the answer from ``built`` until (a second before)
        ``until``; ``src``: the kept file its spans are copied from (:class:`Short` when it
        ends early: nothing is kept)."""
        if self.path is None:
            return
        from tokmon.fsutil import atomic_write

        head = f"{built!r} {until - 1.0!r}\n".encode()
        try:
            if src is not None:
                from tokmon.filespans import write_file

                write_file(self.path, [head, *body], src)
            else:
                atomic_write(
                    self.path,
                    [head, body] if isinstance(body, bytes) else [head, *body],
                    fsync=False,
                )
            self.prune()
        except OSError:
            pass  # a cache is optional

    def prune(self) -> None:
        """Remove the temporary files killed writers left and all but the latest
        :attr:`KEEP_SESSION` kept answers of this kind."""
        try:
            with os.scandir(self.dir) as it:
                here = list(it)
            torn = [e for e in here if _torn(e)]
            old = sorted(
                (e for e in here if _family(e.name) == self.kind and e.name.endswith(".json")),
                key=lambda e: e.stat().st_mtime,
            )
            for e in torn + old[: -self.KEEP_SESSION]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(e.path)
        except OSError:
            pass  # a cache is optional


# a temporary file of the reports' dir older than this was left by a killed writer
TORN_SECONDS = 600.0


def _torn(e: os.DirEntry[str]) -> bool:
    """Whether ``e`` is a kept answer's temporary file (``fsutil.atomic_write``) whose writer
    was killed (SIGKILL, power loss) before it could remove it: one per kill, megabytes for
    a kept session answer, never read."""
    from tokmon.fsutil import TMP_SUFFIX

    if not (e.name.startswith(".") and e.name.endswith(TMP_SUFFIX)):
        return False
    try:
        return time.time() - e.stat(follow_symlinks=False).st_mtime > TORN_SECONDS
    except OSError:
        return False


def _family(name: str) -> str:
    """The kind of a kept session answer from its file name ("session-table-<key>.json":
    "session-table", "session-<key>.json": "session")."""
    return "session-table" if name.startswith("session-table-") else name.split("-", 1)[0]


# The indented document of ``session --json`` (orjson's OPT_INDENT_2, as dump_json writes
# it): a row of "sessions" is its own indented dump moved in by four spaces (a JSON string
# holds no raw newline), the totals by two.
_DOC_HEAD = b'{\n  "sessions": [\n    '
_ROW_SEP = b",\n    "
_DOC_MID = b'\n  ],\n  "totals": '
_DOC_EMPTY = b'{\n  "sessions": [],\n  "totals": '
_DOC_TAIL = b"\n}\n"
# b"%012d %020d %16s %s\n": the index's length, the generation, the id of its write (16 hex
# digits; 16 "-" when the ledger has none) and the index's digest, at the end
_TRAILER = 92
_NO_WID = b"-" * 16


def _row_bytes(row: dict[str, Any]) -> bytes:
    """A session row as it stands in the indented document (orjson's text, without its
    import: :func:`tokmon.jsontext.indented`)."""
    from tokmon.jsontext import indented

    return indented(row).encode().replace(b"\n", b"\n    ")


def _totals_bytes(totals: dict[str, Any]) -> bytes:
    from tokmon.jsontext import indented

    return indented(totals).encode().replace(b"\n", b"\n  ")


def _loads(raw: bytes | memoryview) -> Any:
    """A kept answer's JSON (its index, a row of it, a change's plan) as ``orjson.loads``
    reads it, by the standard library: orjson's import costs a run ~15 ms (it imports
    dataclasses, inspect, uuid, platform), more than the whole splice after an append. What
    orjson refuses is refused (ValueError): NaN and the infinities, bytes that are not UTF-8;
    an integer outside 64 bits is a float, as orjson makes it. Lone surrogate escapes are
    read (nothing here writes them back as text). By orjson itself when the process has
    imported it already (its parse is ~3x faster)."""
    if "orjson" in sys.modules:
        import orjson

        return orjson.loads(raw)
    import json

    return json.loads(bytes(raw), parse_constant=_refused, parse_int=_int64)


def _dumps(data: Any) -> bytes:
    """A kept answer's index or plan as compact JSON: orjson's when the process has imported
    it already (~15x faster than the standard library's encoder: 0.4 against 7 ms for the
    index of 4,400 sessions), else :func:`tokmon.jsontext.compact` (its import costs more)."""
    if "orjson" in sys.modules:
        import orjson

        with contextlib.suppress(TypeError):  # (a lone surrogate: JSON escapes it below)
            return orjson.dumps(data)
    from tokmon.jsontext import compact

    return compact(data)


#: A kept session answer's index, in columns (the JSON one took 7 ms to write and 4 ms to
#: read at 4,400 sessions with the standard library, and orjson's import ~15 ms): this line,
#: then in hex digits (a kept file holds no NUL byte: filespans.checked) seven little-endian
#: int64 (the four token totals, the rows shown, the entries, the ids' bytes) and per entry
#: its first time and cost (float64), whether active (one byte), its row's length (int64);
#: a newline, then the ids in UTF-8, one a line.
_INDEX_MAGIC = b"tokmon-index 1\n"
_INDEX_HEAD = "<7q"


def _index_bytes(tokens: list[int], shown: int, entries: list[list[Any]]) -> bytes:
    """The index of a kept answer (:data:`_INDEX_MAGIC`); as JSON (:func:`_dumps`) when an
    entry does not fit it (an id holding a NUL or a newline, a lone surrogate, a number of
    another kind)."""
    import struct
    from array import array

    try:
        if not entries:
            ids: tuple[Any, ...] = ()
            firsts = costs = actives = lens = ids
        else:
            ids, firsts, costs, actives, lens = zip(*entries, strict=True)
        if any(type(v) is not str or "\0" in v or "\n" in v for v in ids):
            raise ValueError("an id that is no one-line string")
        text = "\n".join(ids).encode()
        cols = [
            array("d", firsts),
            array("d", costs),
            array("b", [1 if a else 0 for a in actives]),
            array("q", lens),
        ]
        head = struct.pack(_INDEX_HEAD, *tokens, shown, len(entries), len(text))
    except (TypeError, ValueError, OverflowError, struct.error):  # (UnicodeEncodeError too)
        return _dumps({"tokens": tokens, "shown": shown, "entries": entries})
    if sys.byteorder != "little":
        for col in cols:
            col.byteswap()
    binary = b"".join([head, *(c.tobytes() for c in cols)])
    return b"".join([_INDEX_MAGIC, binary.hex().encode(), b"\n", text])


def _index_of(raw: bytes | memoryview) -> tuple[list[int], int, list[list[Any]]]:
    """(tokens, shown, entries) of an index :func:`_index_bytes` wrote; ValueError when its
    sizes are not its own or it is not such an index."""
    import struct
    from array import array

    data = bytes(raw)
    at = len(_INDEX_MAGIC)
    nl = data.find(b"\n", at)
    if nl < 0:
        raise ValueError("no index")
    binary = bytes.fromhex(data[at:nl].decode("ascii"))
    size = struct.calcsize(_INDEX_HEAD)
    if len(binary) < size:
        raise ValueError("a short index")
    *tokens, shown, n, nid = struct.unpack_from(_INDEX_HEAD, binary)
    if min(n, nid, shown) < 0 or len(binary) != size + 25 * n or len(data) != nl + 1 + nid:
        raise ValueError("an index of another size")
    cols = []
    at = size
    for code, width in (("d", 8), ("d", 8), ("b", 1), ("q", 8)):
        col = array(code)
        col.frombytes(binary[at : at + width * n])
        if sys.byteorder != "little":
            col.byteswap()
        cols.append(col.tolist())
        at += width * n
    ids = data[nl + 1 :].decode().split("\n") if n else []
    if len(ids) != n:
        raise ValueError("an index whose ids are not its entries")
    firsts, costs, actives, lens = cols
    entries = [
        [i, f, c, a == 1, k]
        for i, f, c, a, k in zip(ids, firsts, costs, actives, lens, strict=True)
    ]
    return tokens, shown, entries


def _refused(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _int64(text: str) -> int | float:
    v = int(text)
    return v if -(2**63) <= v < 2**64 else float(v)


class LineageCache(SessionCache):
    """A :class:`SessionCache` keyed by the data's lineage (database, change log skew,
    prices, cost mode) instead of its version: one file per options and metadata, whatever
    the generation; the file's trailer names the generation and the write it was made at."""

    def _version(self, engine: Engine) -> str | None:
        lineage = engine.data_lineage()
        self.lineage: str | None = None if lineage is None else lineage[0]
        self.gen: int | None = None if lineage is None else lineage[1]
        self.wid: str | None = None if lineage is None else lineage[2]
        return self.lineage

    @property
    def include_empty(self) -> bool:
        return bool(self.opts.get("include_empty"))

    def holds(self, gen: int, wid: str | None) -> bool:
        """A kept file of generation ``gen`` written by the write ``wid`` is of the data now
        (a ledger put back to an older copy repeats generations, not write ids)."""
        return self.gen is not None and gen == self.gen and wid is not None and wid == self.wid

    def wid_field(self) -> bytes | None:
        """The write id as a trailer holds it (16 bytes; None: it cannot be kept)."""
        wid = _NO_WID if self.wid is None else self.wid.encode("ascii", "replace")
        return wid if len(wid) == len(_NO_WID) else None


class KeptSessions:
    """A kept ``session --json`` (see :class:`SessionParts`): the document, the generation
    it shows, the clock span it holds for and (:meth:`parse`) its index: the token totals
    and per session an entry ``[id, first, cost, active, length]``, the ``shown`` ones
    first in the document's order (``length``: of the row's bytes there), then the others
    (0-token sessions without ``--all``; length 0).

    The document is ``plan``: ranges of the kept file (``src``), in order (one range; more
    once changes were appended to the file). :meth:`piece` gives the document's bytes as
    parts (spans of the file, or the bytes of a file read whole: :meth:`SessionParts.load`),
    :meth:`read` as bytes; ``body``: the whole document, only for a file read whole."""

    def __init__(
        self,
        src: Source,
        plan: list[tuple[int, int]],
        gen: int,
        wid: str | None,
        built: float,
        until: float,
        index: tuple[int, int],
        sig: str,
        patched: bool = False,
    ) -> None:
        from tokmon.filespans import Doc

        self.src = src
        self.doc = Doc(src, plan)
        self.plan = plan
        self.gen = gen
        self.wid = wid
        self.built = built
        self.until = until
        self._index = index
        self._sig = sig
        self.patched = patched  # changes appended to the file (else one document, as written)
        self.length = self.doc.length
        self.tokens: list[int] = []
        self.entries: list[list[Any]] = []
        self.shown = 0

    @property
    def body(self) -> bytes | memoryview:
        """The whole document (read)."""
        return self.read(0, self.length)

    def holds(self, cache: LineageCache, now: float) -> bool:
        """Whether the body is the answer at ``now`` for the data ``cache`` is of."""
        return cache.holds(self.gen, self.wid) and self.built <= now < self.until

    def piece(self, start: int, end: int) -> list[Part]:
        """The document's bytes ``[start, end)`` as parts (:meth:`~tokmon.filespans.Doc.piece`)."""
        return self.doc.piece(start, end)

    def read(self, start: int, end: int) -> bytes | memoryview:
        """The document's bytes ``[start, end)`` (:class:`~tokmon.filespans.Short` when the
        file ends before)."""
        return self.doc.read(start, end)

    def close(self) -> None:
        self.src.close()

    def parse(self) -> bool:
        """Read the index (False: damaged; its digest is checked, and its shape)."""
        from tokmon.filespans import Short

        try:
            raw = self.src.read(*self._index)
            if _index_sig(raw) != self._sig:
                return False
            if bytes(raw[: len(_INDEX_MAGIC)]) == _INDEX_MAGIC:
                tokens, shown, entries = _index_of(raw)
            else:  # (JSON: a kept answer written before the binary index)
                index = _loads(raw)
                tokens, entries, shown = index["tokens"], index["entries"], index["shown"]
            if not (
                type(shown) is int
                and 0 <= shown <= len(entries)
                and type(tokens) is list
                and len(tokens) == 4
                and all(type(t) is int for t in tokens)
                and type(entries) is list
                and _entries_ok(entries, 5)
            ):
                return False
        except (ValueError, KeyError, TypeError, Short):
            return False
        self.tokens, self.entries, self.shown = tokens, entries, shown
        return True

    def active(self) -> set[str]:
        """The sessions it shows as active (an id that is not a string is no session: the
        splice that reads it fails on it and builds the answer whole)."""
        return {e[0] for e in self.entries if e[3] and type(e[0]) is str}


class SessionParts(LineageCache):
    """``session --json`` as printed (metadata merged, no budgets) with its pieces, keyed
    by the data's lineage (:class:`LineageCache`). The file is the line ``<built> <until>``,
    the document, an index (binary, :func:`_index_bytes`: the token totals and each session's entry,
    :class:`KeptSessions`) and a trailer (the index's length, the generation, the write id,
    the index's digest). Holding for that generation, write and clock span, the document is printed as kept; for a later generation (or past the span),
    the sessions changed since (and those shown active) are read again and spliced in."""

    def load(self) -> KeptSessions | None:
        """The kept answer read whole (None: none, damaged or of another format); its index
        is checked only when asked (:meth:`KeptSessions.parse`)."""
        if self.path is None:
            return None
        from tokmon.filespans import Source

        try:
            data = _kept_bytes(self.path)
        except OSError:
            return None
        return _kept_of(Source(-1, len(data), memoryview(data)))

    def open_ranges(self) -> KeptSessions | None:
        """:meth:`load` without reading the document nor the index: ranges of the file,
        open (the caller closes it: :meth:`KeptSessions.close`); only the first line, the
        trailer (and the plan of appended changes) are read (:func:`_open_kept`)."""
        return _open_kept(self.path, _kept_of)

    def build(
        self,
        parts: list[SessionPart],
        meta: dict[str, dict[str, Any]],
        include_empty: bool,
        now: float,
        keep: bool,
    ) -> list[Part]:
        """The document of every session's ``parts`` with ``meta`` merged; kept (when
        ``keep``) with its index."""
        from tokmon.core.rollups import session_totals_of_parts

        merged = _merge_parts(parts, meta)
        shown = sorted(
            (-p[2], k) for k, p in enumerate(parts) if include_empty or any(p[3])
        )  # most expensive first, ties in (first, id) order (k)
        rows = [_row_bytes(merged[k]) for _, k in shown]
        totals = session_totals_of_parts(parts)
        body = _document([_ROW_SEP.join(rows)] if rows else [], totals)
        if keep:
            entries = [[parts[k][1], parts[k][0], parts[k][2], parts[k][4], len(b)]
                       for (_, k), b in zip(shown, rows, strict=True)]  # fmt: skip
            listed = {k for _, k in shown}
            entries += [[p[1], p[0], p[2], p[4], 0] for k, p in enumerate(parts) if k not in listed]
            tokens = [int(totals[k]) for k in _TOKEN_KEYS]  # type: ignore[arg-type]
            self._keep(body, now, tokens, len(rows), entries)
        return body

    def splice(
        self,
        kept: KeptSessions,
        changed: set[str],
        parts: list[SessionPart],
        meta: dict[str, dict[str, Any]],
        now: float,
        keep: bool,
    ) -> list[Part]:
        """The document at ``now``: ``kept`` with the sessions of ``changed`` replaced by
        their ``parts`` (a changed session without a part is gone); kept when ``keep``.
        The kept rows are copied in runs (one piece per run between two changes), the
        index's entries moved in slices: a Python step per changed session, none per row."""
        import bisect
        import itertools

        from tokmon.core.rows_json import totals_json

        entries, n = kept.entries, kept.shown
        tokens = list(kept.tokens)
        # where each kept row starts in the old document (its entries hold the lengths)
        sep = len(_ROW_SEP)
        starts = list(
            itertools.accumulate(
                map(operator.add, map(_LEN, entries[:n]), itertools.repeat(sep)),
                initial=len(_DOC_HEAD),
            )
        )
        events: list[tuple[int, int, Any, Any]] = []  # (old position, 0 insert / 1 drop, ...)
        hit = map(changed.__contains__, map(_ID, entries))
        for k in list(itertools.compress(itertools.count(), hit)):
            if k < n:  # a shown row: out of the document and its sums out of the totals
                row = _loads(kept.read(starts[k], starts[k] + entries[k][4]))
                for j, key in enumerate(_TOKEN_KEYS):
                    tokens[j] -= int(row[key])
                events.append((k, 1, None, None))
        include_empty = self.include_empty
        hidden = [e for e in entries[n:] if e[0] not in changed]
        for p, row in zip(parts, _merge_parts(parts, meta), strict=True):
            for j in range(4):
                tokens[j] += p[3][j]
            if include_empty or any(p[3]):
                b = _row_bytes(row)
                e = [p[1], p[0], p[2], p[4], len(b)]
                # before the first kept row that comes after it (most expensive first, ties
                # by (first, id))
                at = bisect.bisect_right(entries, _doc_key(e), 0, n, key=_doc_key)
                events.append((at, 0, _doc_key(e), (e, b)))
            else:
                hidden.append([p[1], p[0], p[2], p[4], 0])
        events.sort(key=_event_key)
        pieces: list[Part | list[Part]] = []
        listed: list[list[Any]] = []
        a = 0  # the first old row of the run being copied
        for at, kind, _, new in events:
            if a < at:  # the run [a, at) of kept rows, as one piece
                pieces.append(kept.piece(starts[a], starts[at] - len(_ROW_SEP)))
                listed += entries[a:at]
            if kind:
                a = at + 1
            else:
                a = max(a, at)
                pieces.append(new[1])
                listed.append(new[0])
        if a < n:
            pieces.append(kept.piece(starts[a], starts[n] - len(_ROW_SEP)))
            listed += entries[a:n]
        tcost = _totals_cost(itertools.chain(listed, hidden))
        totals = totals_json(tokens[0], tokens[1], tokens[2], tokens[3], tcost)
        body = _document(pieces, totals)
        if keep:
            self._keep(body, now, tokens, len(listed), listed + hidden, kept)
        return body

    def _keep(
        self,
        body: list[Part],
        now: float,
        tokens: list[int],
        shown: int,
        entries: list[list[Any]],
        kept: KeptSessions | None = None,
    ) -> None:
        """Keep ``body`` and its index from ``now`` until the first session it shows as
        active turns inactive: appended to ``kept``'s file as a change (:func:`_append`)
        while that file holds less than twice its document, else written whole (its spans
        copied from that file)."""
        until = self.engine.session_report_until(now)
        if self.gen is None or until is None:
            return
        index = _index_bytes(tokens, shown, entries)
        wid = self.wid_field()
        if wid is None:
            return
        if kept is not None and kept.src.mem is None and self.path is not None:
            if _append(self.path, kept.src, kept.length, [body], index, self.gen, wid, now, until):
                self.prune()
                return
        trailer = b"%012d %020d %s %s\n" % (len(index), self.gen, wid, _index_sig(index).encode())
        self.put_until([*body, index, trailer], now, until, None if kept is None else kept.src)


class KeptTable:
    """A kept session table (see :class:`TableParts`): two documents of ranges of its file
    (``src``): its ``text`` and each shown row's ``cells`` (one JSON array a row: the
    lengths of its cells, as :func:`~tokmon.cli.tables.session_cells` makes them, its
    breakdown rows' and the token sums); the generation, write id and clock it was made at
    and (:meth:`parse`) its index: the token totals, each cell kind's histogram of lengths
    (``hist``, ``bhist``: the main and the breakdown rows'), the layout printed (``level``,
    ``widths``), the ids' length, the length of the text above the rows (``head``) and per
    session an entry ``[id, first, cost, text length, cells length]``, the ``shown`` ones
    first in the table's order, then the others (0-token sessions without ``--all``)."""

    def __init__(
        self,
        src: Source,
        text: list[tuple[int, int]],
        cells: list[tuple[int, int]],
        gen: int,
        wid: str | None,
        built: float,
        index: tuple[int, int],
        sig: str,
        patched: bool = False,
    ) -> None:
        from tokmon.filespans import Doc

        self.src, self.gen, self.wid, self.built = src, gen, wid, built
        self.text, self.cells = Doc(src, text), Doc(src, cells)
        self._index, self._sig = index, sig
        self.patched = patched  # changes appended to the file (else written whole)
        self.entries: list[list[Any]] = []
        self.shown = self.level = self.id_len = self.head = 0
        self.tokens: list[int] = []
        self.hist: list[dict[int, int]] = []
        self.bhist: list[dict[int, int]] = []
        self.widths: list[int] | None = None

    @property
    def length(self) -> int:
        """The size of both documents."""
        return self.text.length + self.cells.length

    def close(self) -> None:
        self.src.close()

    def parse(self) -> bool:
        """Read the index (False: damaged; its digest, and its shape). The digest of a file
        written whole covers its cells too; a change appended covers its new bytes (checked
        when opened: :func:`_patch_of`), and its index."""
        import orjson

        from tokmon.filespans import Short

        try:
            raw = self.src.read(*self._index)
            more = () if self.patched else (self.cells.read(0, self.cells.length),)
            if _index_sig(raw, *more) != self._sig:
                return False
            x = orjson.loads(raw)
            entries, shown, tokens = x["entries"], x["shown"], x["tokens"]
            hist = [{int(k): int(v) for k, v in h} for h in x["hist"]]
            bhist = [{int(k): int(v) for k, v in h} for h in x["bhist"]]
            level, widths, id_len, head = x["level"], x["widths"], x["id_len"], x["head"]
            if not (
                type(shown) is int
                and type(entries) is list
                and 0 <= shown <= len(entries)
                and _entries_ok(entries, 5)
                and type(tokens) is list
                and len(tokens) == 4
                and all(type(t) is int for t in tokens)
                and len(hist) == 11
                and len(bhist) == 7
                and type(level) is int
                and (widths is None or all(type(w) is int for w in widths))
                and type(id_len) is int
                and type(head) is int
            ):
                return False
        except (ValueError, KeyError, TypeError, Short):
            return False
        self.entries, self.shown, self.tokens = entries, shown, tokens
        self.hist, self.bhist, self.level, self.widths = hist, bhist, level, widths
        self.id_len, self.head = id_len, head
        return True


class TableParts(LineageCache):
    """The unfiltered session table as printed (no budgets) with its pieces, keyed like a
    :class:`SessionParts` (:class:`LineageCache`) and by the table's shape. The file is the
    line ``<built> <until>``, the text, each shown row's cell lengths and token sums, an
    index (:class:`KeptTable`) and a trailer (the sizes of both, the generation, its write
    id, the digest of both); after a splice, changes appended to it as to a kept
    ``session --json`` (:func:`_append`: the new bytes, the plan of both documents, the
    index, a ``_PATCH`` trailer). For that generation and write the text is printed as
    kept, from the file; for a later one the rows of the sessions changed since are made
    and spliced in (:func:`_table_spliced`)."""

    _TRAILER = 105  # b"%012d %012d %020d %16s %s\n"
    # a change is appended while the file stays under this many times its documents (the
    # index, a third of the text's size, is written with each change)
    CAP = 4.0

    def open_ranges(self) -> KeptTable | None:
        """The kept table open for reading by ranges (None: none, damaged, or made later
        than now by the clock); only its first line and its trailer (and the last change's
        plan) are read (:func:`_open_kept`)."""
        return _open_kept(self.path, _table_of)

    def keep_built(
        self, table: Any, rows: list[Any], hidden: list[list[Any]], totals: Any, now: float
    ) -> None:
        """Keep a table built whole (:class:`~tokmon.cli.tables.SessionTable`) of ``rows``
        (``hidden``: the entries of the sessions not shown) with its ``totals``."""
        import collections
        import itertools

        import orjson

        plan = table.plan
        if plan is None:
            return
        head = b""
        body = b""  # the rows' lines, and each session's length of them
        sizes = [0] * len(rows)
        tail = plan.suffix.encode()
        if table.parts is not None:
            head = table.parts[0].encode()
            lines = table.parts[1]
            body = "".join(lines).encode()
            sizes = list(map(len, map(str.encode, lines)))  # a grid row's lines
            if len(lines) != len(rows):  # breakdown rows: a session's rows together
                at = list(itertools.accumulate(sizes, initial=0))
                ends = list(itertools.accumulate((1 + len(subs) for _, subs in table.cells)))
                sizes = [at[hi] - at[lo] for lo, hi in zip([0, *ends], ends, strict=False)]
            tail = (table.parts[2] + plan.suffix).encode()
        # (C-level loops where they can be: thousands of rows)
        sums = list(map(operator.attrgetter(*(f"usage.{k}" for k in _USAGE_KEYS)), rows))
        # each kind's cells' lengths: the rows' cells transposed
        lens = [list(map(len, col)) for col in zip(*(m for m, _ in table.cells), strict=True)]
        hist = [dict(collections.Counter(col)) for col in lens]
        subs_of: list[list[list[int]]] = [[]] * len(rows)  # each row's breakdown rows' lengths
        if any(subs for _, subs in table.cells):
            subs_of = [[list(map(len, b)) for b in subs] for _, subs in table.cells]
        bs = list(zip(*(b for subs in subs_of for b in subs), strict=True)) or [()] * 7
        bhist = [dict(collections.Counter(col)) for col in bs]
        blobs: list[Part] = list(
            map(orjson.dumps, zip(zip(*lens, strict=True), subs_of, sums, strict=True))
        )
        ids = map(operator.attrgetter("session_id", "first_activity", "usage.total_cost"), rows)
        entries = [[*x, t, len(b)] for x, t, b in zip(ids, sizes, blobs, strict=True)]
        u = totals
        tokens = [u.input_tokens, u.output_tokens, u.cache_creation_tokens, u.cache_read_tokens]
        self.keep(
            [head, body, tail], blobs, entries, hidden, tokens, hist, bhist, plan,
            table.id_len, len(head), now,
        )  # fmt: skip

    def keep(
        self,
        text: list[Part],
        cells: list[Part],
        listed: list[list[Any]],
        hidden: list[list[Any]],
        tokens: list[int],
        hist: list[dict[int, int]],
        bhist: list[dict[int, int]],
        plan: Any,
        id_len: int,
        head: int,
        now: float,
        kept: KeptTable | None = None,
    ) -> None:
        """Keep the table's ``text`` (parts) with its rows' cell lengths (``cells``) and
        the index: appended to ``kept``'s file as a change (:func:`_append`) while that
        file stays under :attr:`CAP` times its documents, else written whole (spans of
        ``kept``'s file copied from it)."""
        import orjson

        from tokmon.filespans import joined, size_of

        if self.gen is None:
            return
        index = orjson.dumps(
            {
                "shown": len(listed),
                "entries": listed + hidden,
                "tokens": tokens,
                "hist": [[[k, v] for k, v in h.items() if v] for h in hist],
                "bhist": [[[k, v] for k, v in h.items() if v] for h in bhist],
                "level": plan.level,
                "widths": None if plan.table is None else plan.table.widths(),
                "id_len": id_len,
                "head": head,
            }
        )
        wid = self.wid_field()
        if wid is None:
            return
        src = None if kept is None else kept.src
        if kept is not None and kept.src.mem is None and self.path is not None:
            if _append(
                self.path, kept.src, kept.length, [text, cells], index, self.gen, wid, now,
                math.inf, self.CAP,
            ):  # fmt: skip
                self.prune()
                return
        from tokmon.filespans import Short

        try:  # the digest of a file written whole covers its cells
            sig = _index_sig(index, joined(cells, src))
        except Short:
            return
        trailer = b"%012d %012d %020d %s %s\n" % (
            size_of(cells), len(index), self.gen, wid, sig.encode()
        )  # fmt: skip
        self.put_until([*text, *cells, index, trailer], now, math.inf, src)


def _table_of(src: Source) -> KeptTable | None:
    """The kept session table of the file ``src`` (None: damaged, of another format, or
    made later than now by the clock): as written whole (``<built> <until>``, the text, the
    cells, the index, a trailer of ``TableParts._TRAILER`` bytes), or with changes appended
    (the last one is the table: :func:`_patch_of`)."""
    from tokmon.filespans import Short

    size, t = src.size, TableParts._TRAILER
    try:
        tail = bytes(src.read(max(0, size - _PATCH_LEN), size))
        if tail.endswith(b" P\n") and len(tail) == _PATCH_LEN:
            p = _patch_of(src, tail, 2)
            if p is None or not p.built <= time.time():
                return None
            text, cells = p.plans
            return KeptTable(src, text, cells, p.gen, p.wid, p.built, p.index_at, p.sig, True)
        first = bytes(src.read(0, min(100, size)))
        nl = first.find(b"\n")
        if nl < 0 or size < nl + 1 + t or tail[-1:] != b"\n":
            return None
        built = float(first[:nl].split()[0])
        nc, ni, gen, wid, sig = tail[-t:-1].split()
        end = size - t - int(ni)
        mid = end - int(nc)
        if not (nl + 1 <= mid <= end and math.isfinite(built) and built <= time.time()):
            return None
        if len(sig) != 40:
            return None
        return KeptTable(
            src,
            [(nl + 1, mid)],
            [(mid, end)],
            int(gen),
            None if wid == _NO_WID else wid.decode("ascii"),
            built,
            (end, size - t),
            sig.decode("ascii"),
        )
    except (OSError, ValueError, TypeError, UnicodeDecodeError, IndexError, Short):
        return None


_K = TypeVar("_K")  # a kept answer read from its file (_open_kept)

_TOKEN_KEYS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
_FIRST_ID = operator.itemgetter(1, 0)
_FIRST = operator.itemgetter(1)
_COST = operator.itemgetter(2)
_ID = operator.itemgetter(0)
_LEN = operator.itemgetter(4)
_TEXT_LEN = operator.itemgetter(3)


def _totals_cost(entries: Iterable[list[Any]]) -> float:
    """The totals' cost: the sessions' costs (entries ``[id, first, cost, ...]``) summed as
    floats in the sessions' (first, id) order; sorted by first alone when no two firsts are
    equal (the same order, without a key tuple per session)."""
    import functools

    items = list(entries)
    firsts = list(map(_FIRST, items))
    key = _FIRST if len(set(firsts)) == len(firsts) else _FIRST_ID
    return float(functools.reduce(operator.add, map(_COST, sorted(items, key=key)), 0.0))


def _entries_ok(entries: list[Any], size: int) -> bool:
    """Whether ``entries`` are lists of ``size`` items (C-level passes: no Python step a
    session)."""
    return set(map(type, entries)) <= {list} and set(map(len, entries)) <= {size}


def _index_sig(index: bytes | memoryview, *more: Piece) -> str:
    """The digest a kept index is written with (a blake2b of 20 bytes: 40 hex digits), over
    ``more`` pieces too (a kept table's cells)."""
    from tokmon.core.digest import blake2b

    h = blake2b(20)
    for piece in more:
        h.update(piece)
    h.update(index)
    return str(h.hexdigest())


def _doc_key(e: list[Any]) -> tuple[float, float, str]:
    """An entry's place in the document: most expensive first, ties by (first, id)."""
    return (-e[2], e[1], e[0])


def _event_key(ev: tuple[int, int, Any, Any]) -> tuple[int, int, Any]:
    return ev[:3]


def _open_kept(path: Path | None, parse: Callable[[Source], _K | None]) -> _K | None:
    """The kept file at ``path`` as ``parse`` reads it from a :class:`~tokmon.filespans.Source`
    open on it (the result holds it open: its ``close`` closes it; closed here when
    ``parse`` refuses the file); None when there is no such file. Read by ranges; where no
    range can be read (no ``pread``: Windows), read whole (:func:`_kept_bytes`)."""
    if path is None:
        return None
    from tokmon.filespans import Source
    from tokmon.fsutil import open_regular

    try:
        if hasattr(os, "pread"):
            fd, st = open_regular(path)
            src = Source(fd, st.st_size)
        else:
            data = _kept_bytes(path)
            src = Source(-1, len(data), memoryview(data))
    except OSError:
        return None
    got = parse(src)
    if got is None:
        src.close()
    return got


def _kept_bytes(path: Path) -> bytes:
    """The bytes of the kept file at ``path``, read (:func:`read_regular`), not mapped: a
    mapped file truncated in place by another process ends the reader with SIGBUS, which
    Python cannot catch; a read sees the old bytes or the short ones, which the trailer and
    digest checks then refuse (docs/security.md). A file that holds a NUL byte is refused
    (OSError) too: no kept answer does; one cut in place and grown again does where it was
    cut (:func:`tokmon.filespans.checked`)."""
    from tokmon.filespans import Short, checked
    from tokmon.fsutil import read_regular

    data = read_regular(path)
    try:
        return checked(data) if data else data
    except Short:
        raise OSError(f"{path}: changed in place while read") from None


# The trailer of a change appended to a kept session answer (:func:`_append`): the lengths
# of its new bytes, its plan and its index, the generation, the write id, the clock span
# and two digests (the index's; the new bytes' and the plan's), then " P"
_PATCH = b"%012d %012d %012d %020d %16s %24s %24s %s %s P\n"
_PATCH_LEN = len(_PATCH % (0, 0, 0, 0, _NO_WID, b"", b"", b"0" * 40, b"0" * 40))


class _Patch(NamedTuple):
    """The last change appended to a kept file (:func:`_patch_of`)."""

    plans: list[list[tuple[int, int]]]  # each document's ranges of the file
    gen: int
    wid: str | None
    built: float
    until: float
    index_at: tuple[int, int]  # the range of its index
    sig: str  # the index's digest


def _patch_of(src: Source, tail: bytes, docs: int) -> _Patch | None:
    """The last change appended to the kept file ``src`` whose last bytes are ``tail``
    (None: damaged): its ``_PATCH`` trailer read, its new bytes and plan checked against
    their digest and its plan's ranges against the file (inside what came before the change,
    or inside its new bytes). A plan is the ranges of one document (``docs`` 1: a
    ``session --json``), or a list of ``docs`` such lists (a session table: its text and
    its cells)."""
    f = tail[:-3].split()
    if len(f) != 9:
        return None
    nb, npl, ni, gen = int(f[0]), int(f[1]), int(f[2]), int(f[3])
    wid, built, until, sig, psig = f[4], float(f[5]), float(f[6]), f[7], f[8]
    end = src.size - _PATCH_LEN
    at = end - ni - npl - nb  # where this change starts
    if min(nb, npl, ni) < 0 or at < 0 or not math.isfinite(built):
        return None
    if len(sig) != 40 or len(psig) != 40:
        return None
    new, plan_raw = src.read(at, at + nb), src.read(at + nb, at + nb + npl)
    if _index_sig(plan_raw, new).encode() != psig:
        return None
    raw = _loads(plan_raw)
    if docs != 1 and (type(raw) is not list or len(raw) != docs):
        return None
    plans: list[list[tuple[int, int]]] = []
    for doc in [raw] if docs == 1 else raw:
        plan: list[tuple[int, int]] = []
        for a, b in doc:
            if type(a) is not int or type(b) is not int:
                return None
            if a < 0:  # in this change's new bytes
                a, b = at + (-a - 1), at + (-a - 1) + b
                if not (at <= a <= b <= at + nb):
                    return None
            elif not 0 <= a <= b <= at:
                return None
            plan.append((a, b))
        plans.append(plan)
    return _Patch(
        plans,
        gen,
        None if wid == _NO_WID else wid.decode("ascii"),
        built,
        until,
        (end - ni, end),
        sig.decode("ascii"),
    )


def _kept_of(src: Source) -> KeptSessions | None:
    """The kept session answer of the file ``src`` (None: damaged or of another format):
    as written whole (``<built> <until>``, the document, the index, a trailer of
    ``_TRAILER`` bytes), or with changes appended (each: its new bytes, its plan, its
    index and a ``_PATCH`` trailer; the last one is the answer: :func:`_patch_of`)."""
    from tokmon.filespans import Short

    size = src.size
    try:
        tail = bytes(src.read(max(0, size - _PATCH_LEN), size))
        if tail.endswith(b" P\n") and len(tail) == _PATCH_LEN:
            p = _patch_of(src, tail, 1)
            if p is None:
                return None
            return KeptSessions(
                src, p.plans[0], p.gen, p.wid, p.built, p.until, p.index_at, p.sig, patched=True
            )
        first = bytes(src.read(0, min(100, size)))
        nl = first.find(b"\n")
        if nl < 0 or size < nl + 1 + _TRAILER or tail[-1:] != b"\n":
            return None
        built, until = (float(x) for x in first[:nl].split())
        n, gen_b, wid, sig = tail[-_TRAILER:-1].split()
        end = size - _TRAILER - int(n)
        if not (nl + 1 <= end and math.isfinite(built) and len(sig) == 40):
            return None
        return KeptSessions(
            src,
            [(nl + 1, end)],
            int(gen_b),
            None if wid == _NO_WID else wid.decode("ascii"),
            built,
            until,
            (end, size - _TRAILER),
            sig.decode("ascii"),
        )
    except (OSError, ValueError, TypeError, UnicodeDecodeError, Short):
        return None


def _append(
    path: Path,
    src: Source,
    length: int,
    docs: list[list[Part]],
    index: bytes,
    gen: int,
    wid: bytes,
    built: float,
    until: float,
    cap: float = 2.0,
) -> bool:
    """Append ``docs`` (each a document's parts: spans of the file ``src``, a kept answer
    of ``length`` bytes, and new bytes) to that file as a change: the new bytes, the plan
    (each document's ranges, a new byte's range counted from where the change starts:
    ``[-1 - offset, length]``; one document's as a list, more as a list of such lists) and
    ``index``, then the trailer, in one ``write`` (a reader sees the file as it was, or the
    change whole: else its digests fail, and the answer is built whole). Not done (False:
    write it whole) when the file would hold ``cap`` times the documents or more, or is no
    longer the file at ``path``."""
    from tokmon.filespans import Span

    new: list[bytes | memoryview] = []
    plans: list[list[list[int]]] = []
    nb = 0
    for body in docs:
        plan: list[list[int]] = []
        for p in body:
            if isinstance(p, Span):
                if p.end > p.start:
                    plan.append([p.start, p.end])
            elif len(p):
                plan.append([-1 - nb, len(p)])
                new.append(p)
                nb += len(p)
        plans.append(plan)
    plan_raw = _dumps(plans[0] if len(plans) == 1 else plans)
    grown = src.size + nb + len(plan_raw) + len(index) + _PATCH_LEN
    if grown > cap * length:
        return False
    newb = b"".join(new)
    trailer = _PATCH % (
        nb,
        len(plan_raw),
        len(index),
        gen,
        wid,
        repr(built).encode(),
        repr(until - 1.0).encode(),
        _index_sig(index).encode(),
        _index_sig(plan_raw, newb).encode(),
    )
    if len(trailer) != _PATCH_LEN:
        return False
    # (non-blocking, not through a link: a FIFO or a link put in its place is refused below,
    # never waited on)
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return False
    try:
        st, mine = os.fstat(fd), os.fstat(src.fd)
        if (st.st_ino, st.st_dev, st.st_size) != (mine.st_ino, mine.st_dev, src.size):
            return False  # replaced, or appended to by another process since it was read
        data = b"".join([newb, plan_raw, index, trailer])
        return os.write(fd, data) == len(data)
    except OSError:
        return False
    finally:
        os.close(fd)


def _merge_parts(parts: list[SessionPart], meta: dict[str, dict[str, Any]]) -> list[Any]:
    """The parts' rows with ``meta`` merged (:func:`tokmon.sessions.merge_over_plain`)."""
    from tokmon.sessions import merge_over_plain

    rows = [p[5] for p in parts]
    merge_over_plain(rows, meta)
    return rows


def _document(rows: Sequence[Part | list[Part]], totals: Any) -> list[Part]:
    """The indented ``{"sessions": [...], "totals": {...}}`` of these rows (each piece one
    row or a run of rows; a list: the parts of one), as parts."""
    if not rows:
        return [_DOC_EMPTY, _totals_bytes(totals), _DOC_TAIL]
    out: list[Part] = [_DOC_HEAD]
    for k, r in enumerate(rows):
        if k:
            out.append(_ROW_SEP)
        if isinstance(r, list):
            out += r
        else:
            out.append(r)
    out += [_DOC_MID, _totals_bytes(totals), _DOC_TAIL]
    return out


def merge_metadata(ctx: Context, rows: list[dict[str, Any]]) -> None:
    """Merge names, tags and descriptions into SessionRows in place (:mod:`tokmon.sessions`)."""
    from tokmon.sessions import merge

    rows[:] = merge(rows, _metadata(ctx))


def merge_metadata_into(ctx: Context, rows: list[dict[str, Any]]) -> None:
    """:func:`merge_metadata` into rows of our own (fresh dicts: changed, not copied)."""
    from tokmon.sessions import merge_into

    merge_into(rows, _metadata(ctx))
