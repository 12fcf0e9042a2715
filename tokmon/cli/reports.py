"""`tokmon daily|weekly|monthly|blocks` (and the bare `tokmon session` report).

Tables by default; ``--json`` is a drop-in for ``ccusage claude <report> --json``.
"""

from __future__ import annotations

import argparse
from typing import Any

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json, fmt_cost, fmt_int, short_model

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
    p.add_argument("-z", "--timezone", help="time zone for dates (IANA name or UTC; default: system)")
    p.add_argument("-o", "--order", choices=["asc", "desc"], default="asc")
    p.add_argument("-b", "--breakdown", action="store_true", help="per-model rows")
    p.add_argument("-p", "--project", help="only this project (cwd path or its last component)")
    p.add_argument("-m", "--mode", choices=["calculate", "display", "auto"],
                   help="cost mode (default: config cost_mode)")
    p.add_argument("--machine", help="only records from this machine (see `tokmon ledger`)")
    if kind != "blocks":  # 5-hour blocks are Claude Code's
        p.add_argument("--agent", metavar="NAME",
                       help="one agent (claude, codex, gemini, opencode, qwen, copilot, amp) or "
                            "'all': every agent with an agent column (default: claude)")
    p.add_argument("-j", dest="json", action="store_true", default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)
    p.add_argument("-O", "--offline", action="store_true", help=argparse.SUPPRESS)
    if kind == "weekly":
        p.add_argument("-w", "--start-of-week", default="sunday",
                       choices=["sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
                                "saturday"])
    if kind == "session":
        p.add_argument("-i", "--id", dest="session_id", help="only this session id")
        p.add_argument("--all", dest="include_empty", action="store_true",
                       help="also list sessions with 0 tokens (hidden by default)")
    if kind == "blocks":
        p.add_argument("-a", "--active", action="store_true", help="only the active block")
        p.add_argument("-r", "--recent", action="store_true", help="blocks of the last 3 days")
        p.add_argument("-t", "--token-limit", help="token limit: a number or 'max'")
        p.add_argument("-n", "--session-length", type=float, help="block length in hours (5)")


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    for kind in ("daily", "weekly", "monthly", "blocks"):
        p = sub.add_parser(kind, parents=[parent], help=HELP[kind], description=HELP[kind])
        add_report_options(p, kind)
        p.set_defaults(handler=lambda a, c, k=kind: run_report(k, a, c))


def _opts(kind: str, args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from tokmon.timeutil import TimezoneError, parse_day, resolve_tz

    opts: dict[str, Any] = {"order": args.order, "project": args.project}
    try:
        opts["since"] = parse_day(args.since) if args.since else None
        opts["until"] = parse_day(args.until) if args.until else None
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
            raise CLIError(f"invalid --token-limit {args.token_limit!r}: expected a number or 'max'") from exc
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
    engine = ctx.engine(agents="agent" in opts)
    if getattr(args, "machine", None):
        from tokmon.export.machines import machine_filter

        opts["machine"] = args.machine
        engine.record_filter = machine_filter(engine, args.machine, ctx.env, ctx.config)
    cache = ReportCache(ctx, engine, kind, opts) if ctx.json_output and kind in CACHEABLE else None
    if cache is not None:
        hit = cache.get()
        if hit is not None:
            ctx.stdout.write(hit)
            return 0
    try:
        data = engine.report(kind, **opts)
    except ValueError as exc:  # an unknown agent name
        raise CLIError(str(exc)) from exc
    if kind == "session":
        _merge_metadata(ctx, data["sessions"])
    if ctx.json_output:
        text = dump_json(data)
        if cache is not None:
            cache.put(text)
        ctx.stdout.write(text)
        return 0
    if kind == "blocks":
        _blocks_table(ctx, data["blocks"])
    else:
        _period_table(ctx, kind, data, args.breakdown)
    return 0


# Reports that do not depend on the current time: their JSON is cached per data version.
CACHEABLE = {"daily", "weekly", "monthly"}


class ReportCache:
    """Rendered JSON of a report, keyed by the ledger's data version and the options."""

    KEEP = 16

    def __init__(self, ctx: Context, engine: Any, kind: str, opts: dict[str, Any]) -> None:
        import hashlib

        from tokmon.timeutil import resolve_tz

        version = engine.data_version()
        self.path = None
        if version is None:
            return
        tz = opts.get("timezone") or engine.config.get("timezone") or str(resolve_tz(None))
        key = repr((kind, sorted(opts.items(), key=lambda kv: kv[0]), tz, version,
                    [str(r) for r in engine.candidate_roots]))
        digest = hashlib.sha1(key.encode()).hexdigest()[:20]
        self.dir = ctx.paths.cache_dir / "reports"
        self.path = self.dir / f"{kind}-{digest}.json"

    def get(self) -> str | None:
        if self.path is None:
            return None
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def put(self, text: str) -> None:
        if self.path is None:
            return
        from tokmon.fsutil import atomic_write

        try:
            atomic_write(self.path, text.encode("utf-8"), fsync=False)
            old = sorted(self.dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
            for p in old[: -self.KEEP]:
                p.unlink()
        except OSError:
            pass  # a cache is optional


def _merge_metadata(ctx: Context, rows: list[dict[str, Any]]) -> None:
    try:
        from tokmon.metadata.store import MetadataStore, merge_metadata
    except ImportError:
        return
    try:
        merged = merge_metadata(rows, MetadataStore(paths=ctx.paths).all())
    except Exception as exc:  # metadata is decoration: never lose the report over it
        ctx.warn(f"session metadata unavailable: {exc}")
        return
    rows[:] = merged


LABEL = {"daily": ("date", "Date"), "weekly": ("week", "Week"), "monthly": ("month", "Month"),
         "session": ("sessionId", "Session")}


def _period_table(ctx: Context, kind: str, data: dict[str, Any], breakdown: bool) -> None:
    from rich import box
    from rich.table import Table

    key, title = LABEL[kind]
    rows = data[{"daily": "daily", "weekly": "weekly", "monthly": "monthly", "session": "sessions"}[kind]]
    by_agent = bool(rows) and "agent" in rows[0]
    who = "All agents'" if by_agent else "Claude Code"
    t = Table(title=f"{who} token usage: {kind}", box=box.SIMPLE_HEAVY, show_footer=True)
    t.add_column(title, footer="Total", no_wrap=True)
    if by_agent:
        t.add_column("Agent", no_wrap=True)
    if kind == "session":
        t.add_column("Project / name", overflow="fold", max_width=28)
    t.add_column("Models", overflow="fold", max_width=22)
    tot = data["totals"]
    for col, k in (("Input", "inputTokens"), ("Output", "outputTokens"),
                   ("Cache create", "cacheCreationTokens"), ("Cache read", "cacheReadTokens"),
                   ("Total tokens", "totalTokens")):
        t.add_column(col, justify="right", footer=fmt_int(tot[k]), no_wrap=True)
    t.add_column("Cost (USD)", justify="right", footer=fmt_cost(tot["totalCost"]), no_wrap=True)
    for r in rows:
        cells = [str(r[key])[:8] if kind == "session" else str(r[key])]
        if by_agent:
            cells.append(str(r["agent"]))
        if kind == "session":
            label = r.get("name") or r.get("title") or ""
            tags = " ".join(f"#{x}" for x in r.get("tags") or [])
            cells.append(" ".join(x for x in (r.get("projectName", ""), label and f"· {label}", tags) if x))
        cells.append(", ".join(short_model(m) for m in r["modelsUsed"]))
        cells += [fmt_int(r[k]) for k in ("inputTokens", "outputTokens", "cacheCreationTokens",
                                           "cacheReadTokens", "totalTokens")]
        cells.append(fmt_cost(r["totalCost"]))
        t.add_row(*cells)
        if breakdown:
            for m in r["modelBreakdowns"]:
                sub = ["", ""] if kind == "session" else [""]
                if by_agent:
                    sub.append("")
                sub.append(f"  └ {short_model(m['modelName'])}")
                tot_m = m["inputTokens"] + m["outputTokens"] + m["cacheCreationTokens"] + m["cacheReadTokens"]
                sub += [fmt_int(m[k]) for k in ("inputTokens", "outputTokens", "cacheCreationTokens",
                                                 "cacheReadTokens")]
                sub += [fmt_int(tot_m), fmt_cost(m["cost"])]
                t.add_row(*sub, style="dim")
    ctx.console().print(t)
    if not rows:
        ctx.stdout.write("No usage in this range.\n")


def _blocks_table(ctx: Context, blocks: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.table import Table

    from tokmon.cli.render import fmt_minutes

    t = Table(title="Claude Code 5-hour billing blocks", box=box.SIMPLE_HEAVY)
    for col in ("Block start (UTC)", "Status", "Models", "Entries", "Tokens", "Cost (USD)",
                "Burn / projection"):
        t.add_column(col, justify="right" if col in ("Entries", "Tokens", "Cost (USD)") else "left",
                     no_wrap=col != "Burn / projection", overflow="fold")
    for b in blocks:
        if b["isGap"]:
            t.add_row(b["startTime"][:16].replace("T", " "), "gap", "", "", "", "", "", style="dim")
            continue
        status = "ACTIVE" if b["isActive"] else "done"
        extra = ""
        if b.get("burnRate") and b.get("projection"):
            p = b["projection"]
            extra = (f"{fmt_int(b['burnRate']['tokensPerMinute'])} tok/min → "
                     f"{fmt_int(p['totalTokens'])} ({fmt_cost(p['totalCost'])}), "
                     f"{fmt_minutes(p['remainingMinutes'])} left")
        if b.get("tokenLimitStatus"):
            s = b["tokenLimitStatus"]
            extra += f" [{s['percentUsed']:.0f}% of {fmt_int(s['limit'])}: {s['status']}]"
        t.add_row(b["startTime"][:16].replace("T", " "), status,
                  ", ".join(short_model(m) for m in b["models"]), str(b["entries"]),
                  fmt_int(b["totalTokens"]), fmt_cost(b["costUSD"]), extra,
                  style="bold" if b["isActive"] else None)
    ctx.console().print(t)
    if not blocks:
        ctx.stdout.write("No blocks in this range.\n")
