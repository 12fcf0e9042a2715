"""`tokmon daily|weekly|monthly|blocks` (and the bare `tokmon session` report).

Tables by default; ``--json`` is a drop-in for ``ccusage claude <report> --json``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json, resolve_zone

if TYPE_CHECKING:
    from tokmon.core.engine import Engine
    from tokmon.core.rows import JSON, PeriodKind, PeriodLabel, PeriodRow, Usage

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
    if getattr(args, "session_length", None):
        if args.session_length <= 0:
            raise CLIError("--session-length must be positive")
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
    do), with the metadata merged in; its text is kept in a :class:`SessionCache`."""
    import orjson

    from tokmon.sessions import PLAIN_META, merge_over_plain

    now = opts.get("now") or time.time()
    cache = SessionCache(ctx, engine, opts)
    body = cache.get(now)
    if body is None:
        try:
            data = engine.session_report_json(extra=PLAIN_META, **{**opts, "now": now})
        except ValueError as exc:  # an unknown agent name
            raise CLIError(str(exc)) from exc
        if data is None:
            return False
        meta, read = _read_metadata(ctx)
        merge_over_plain(data["sessions"], meta)  # type: ignore[arg-type]
        body = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        until = engine.session_report_until(now)
        if read and until is not None:
            cache.put_until(body, now, until)
    use = report_budgets(ctx, "session", opts)
    if use is None:
        write_bytes(ctx, body)
    else:
        ctx.stdout.write(with_budgets(body.decode(), use))
    return True


def write_bytes(ctx: Context, body: bytes) -> None:
    """``ctx.stdout.write(body.decode())`` without the text in between where stdout is a
    UTF-8 stream over a binary buffer that does not translate newlines (a large report is
    neither decoded nor encoded again)."""
    out = ctx.stdout
    buf = getattr(out, "buffer", None)
    enc = str(getattr(out, "encoding", "") or "").lower().replace("_", "-")
    if buf is None or enc not in ("utf-8", "utf8") or sys.platform == "win32":
        out.write(body.decode())
        return
    out.flush()  # what was written as text goes first
    buf.write(body)
    buf.flush()


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

    def __init__(self, ctx: Context, engine: Engine, kind: str, opts: dict[str, Any]) -> None:
        from tokmon.core.digest import sha1_hex
        from tokmon.core.timeutil import resolve_tz

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
            return read_regular(self.path).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def put(self, text: str) -> None:
        if self.path is None:
            return
        from tokmon.fsutil import atomic_write

        try:
            atomic_write(self.path, text.encode("utf-8"), fsync=False)
            with os.scandir(self.dir) as it:
                old = sorted(
                    (e for e in it if e.name.endswith(".json")), key=lambda e: e.stat().st_mtime
                )
            for e in old[: -self.KEEP]:
                os.unlink(e.path)
        except OSError:
            pass  # a cache is optional


def _metadata(ctx: Context) -> dict[str, dict[str, Any]]:
    """Every session's metadata; an unreadable store is a warning, never a lost report."""
    return _read_metadata(ctx)[0]


def _read_metadata(ctx: Context) -> tuple[dict[str, dict[str, Any]], bool]:
    """:func:`_metadata` and whether the store was read (False: it warned)."""
    from tokmon.metadata.store import MetadataStore

    try:
        return MetadataStore(paths=ctx.paths).all(), True
    except Exception as exc:  # metadata is decoration: never lose the report over it
        ctx.warn(f"session metadata unavailable: {exc}")
        return {}, False


class SessionCache(ReportCache):
    """``session --json`` as printed (metadata merged, no budgets), keyed like a
    :class:`ReportCache` and by the block length (``isActive``) and the metadata store's
    content (its digest). The file starts with a line ``<built> <until>``: the text is the
    answer from the time it was built until the first session it shows as active turns
    inactive (``Engine.session_report_until``); a clock set back before ``built`` is a miss
    too. Only the latest :attr:`KEEP_SESSION` are kept (thousands of sessions: megabytes)."""

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
        from tokmon.metadata.store import MetadataStore

        try:  # a FIFO in its place is refused, not waited on
            meta: str | None = sha1_hex(read_regular(MetadataStore(paths=ctx.paths).path))
        except OSError:
            meta = None  # missing (or unreadable: then never put)
        key = {k: v for k, v in opts.items() if k != "now"}
        key["~block_seconds"] = engine.block_seconds
        key["~metadata"] = meta
        if shape is not None:
            key["~shape"] = shape
        super().__init__(ctx, engine, kind, key)

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

    def put_until(self, body: bytes, built: float, until: float) -> None:
        """Keep ``body``, the answer from ``built`` until (a second before) ``until``."""
        if self.path is None:
            return
        from tokmon.fsutil import atomic_write

        try:
            atomic_write(self.path, f"{built!r} {until - 1.0!r}\n".encode() + body, fsync=False)
            with os.scandir(self.dir) as it:
                old = sorted(
                    (e for e in it if e.name.startswith("session-") and e.name.endswith(".json")),
                    key=lambda e: e.stat().st_mtime,
                )
            for e in old[: -self.KEEP_SESSION]:
                os.unlink(e.path)
        except OSError:
            pass  # a cache is optional


def merge_metadata(ctx: Context, rows: list[dict[str, Any]]) -> None:
    """Merge names, tags and descriptions into SessionRows in place (:mod:`tokmon.sessions`)."""
    from tokmon.sessions import merge

    rows[:] = merge(rows, _metadata(ctx))


def merge_metadata_into(ctx: Context, rows: list[dict[str, Any]]) -> None:
    """:func:`merge_metadata` into rows of our own (fresh dicts: changed, not copied)."""
    from tokmon.sessions import merge_into

    merge_into(rows, _metadata(ctx))
