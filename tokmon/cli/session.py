"""`tokmon session`: the per-session report, and naming/tagging/inspecting sessions.

``tokmon session`` alone is the ccusage-compatible session report (``--json`` is a
drop-in for ``ccusage claude session --json``); the subcommands work on one session
given as REF: a full id, a unique id prefix, a name, or Claude's own title.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tokmon.cli.context import CLIError, Context
from tokmon.leanclass import dataclass  # (the standard library's imports inspect: ~5 ms a run)

if TYPE_CHECKING:
    from tokmon.core.engine import Engine
    from tokmon.metadata.store import MetadataStore

SORT_KEYS = {
    "last": ("lastActivity", True),
    "first": ("firstActivity", True),
    "tokens": ("totalTokens", True),
    "cost": ("totalCost", True),
    "name": ("name", False),
}


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    from tokmon.cli.reports import add_report_options

    p = sub.add_parser(
        "session",
        parents=[parent],
        help="usage per session; list, name, tag, describe and export sessions",
        description="Without a subcommand: the ccusage-compatible session report. "
        "REF is a session id, a unique id prefix, a name or Claude's title.",
    )
    add_report_options(p, "session")
    p.set_defaults(handler=_bare_report)
    ss = p.add_subparsers(dest="session_command", metavar="SUBCOMMAND")

    lp = ss.add_parser("list", parents=[parent], help="sessions with names, tags and usage")
    lp.add_argument("-p", "--project", help="only this project (cwd path or its last component)")
    lp.add_argument(
        "-t",
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="only sessions with this tag (repeat: all must match)",
    )
    lp.add_argument("-s", "--since", help="count usage from this day (YYYYMMDD or YYYY-MM-DD)")
    lp.add_argument("-u", "--until", help="count usage until this day (inclusive)")
    lp.add_argument(
        "--min-tokens",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="only sessions with at least N tokens (default 1: 0-token sessions need --all)",
    )
    lp.add_argument(
        "--all", dest="include_empty", action="store_true", help="also list sessions with 0 tokens"
    )
    lp.add_argument(
        "--sort",
        choices=list(SORT_KEYS),
        default="last",
        help="sort order (default: last activity, most recent first)",
    )
    lp.add_argument("-r", "--reverse", action="store_true", help="reverse the sort order")
    lp.add_argument(
        "-n",
        "--limit",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="show at most N sessions",
    )
    lp.add_argument("-z", "--timezone", help="time zone for dates (IANA name or UTC)")
    lp.add_argument(
        "--agent",
        metavar="NAME",
        help="only this agent's sessions (claude, codex, gemini, opencode, qwen, copilot, amp; "
        "default: every agent)",
    )
    lp.set_defaults(handler=handle_list)

    sp = ss.add_parser("show", parents=[parent], help="one session in detail")
    sp.add_argument("ref", metavar="REF")
    sp.add_argument("-z", "--timezone", help="time zone for times (IANA name or UTC)")
    sp.set_defaults(handler=handle_show)

    np_ = ss.add_parser("name", parents=[parent], help="name a session (unique)")
    np_.add_argument("ref", metavar="REF")
    np_.add_argument("name", nargs="?", metavar="NAME")
    np_.add_argument("--clear", action="store_true", help="remove the name")
    np_.set_defaults(handler=handle_name)

    tp = ss.add_parser("tag", parents=[parent], help="add tags to a session")
    tp.add_argument("ref", metavar="REF")
    tp.add_argument("tags", nargs="+", metavar="TAG")
    tp.set_defaults(handler=handle_tag)

    up = ss.add_parser("untag", parents=[parent], help="remove tags from a session")
    up.add_argument("ref", metavar="REF")
    up.add_argument("tags", nargs="*", metavar="TAG")
    up.add_argument("--all", action="store_true", help="remove every tag")
    up.set_defaults(handler=handle_untag)

    dp = ss.add_parser("describe", parents=[parent], help="set a session's description")
    dp.add_argument("ref", metavar="REF")
    dp.add_argument("text", nargs="?", metavar="TEXT", help="the description ('-' reads stdin)")
    dp.add_argument("--clear", action="store_true", help="remove the description")
    dp.set_defaults(handler=handle_describe)

    xp = ss.add_parser(
        "delete", parents=[parent], help="delete a session's metadata (never its transcripts)"
    )
    xp.add_argument("ref", metavar="REF")
    xp.set_defaults(handler=handle_delete)

    ep = ss.add_parser("export", parents=[parent], help="export one session")
    ep.add_argument("ref", metavar="REF")
    ep.add_argument("-f", "--format", choices=["json", "csv", "md"], default="json")
    ep.add_argument("-o", "--output", metavar="PATH", help="write to PATH instead of stdout")
    ep.add_argument("-z", "--timezone", help="time zone for times (IANA name or UTC)")
    ep.set_defaults(handler=handle_export)


def _non_negative_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return n


def _bare_report(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.cli.reports import run_report

    return run_report("session", args, ctx)


# --------------------------------------------------------------------------- shared


@dataclass
class Sessions:
    """Everything the session commands need, loaded once."""

    engine: Engine
    rows: list[dict[str, Any]]  # merged SessionRows of every agent, most recent first
    store: MetadataStore
    meta: dict[str, dict[str, Any]]

    def resolve(self, ref: str) -> str:
        """The session REF names, among every agent's sessions (:func:`tokmon.sessions.resolve`)."""
        from tokmon.sessions import RefError, agents_of, resolve

        try:
            return resolve(
                ref,
                (r["sessionId"] for r in self.rows),
                self.meta,
                self.engine.titles,
                agents_of(self.rows),
            )
        except RefError as exc:
            raise CLIError(str(exc)) from None

    def row(self, sid: str) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["sessionId"] == sid), None)

    def agent_of(self, sid: str) -> str:
        """The agent of session ``sid`` (Claude Code for a session known only from metadata)."""
        return str((self.row(sid) or {}).get("agent") or "claude")

    def records(self, sid: str) -> list[Any]:
        """The usage records of session ``sid``, of its own agent, oldest first."""
        from tokmon.sessions import session_records

        return session_records(self.engine, sid, self.agent_of(sid))


def metadata_store(ctx: Context) -> MetadataStore:
    from tokmon.metadata.store import MetadataStore

    return MetadataStore(paths=ctx.paths)


def load_sessions(ctx: Context, *, strict: bool = True, **filters: Any) -> Sessions:
    """Refresh the engine and merge metadata into the session rows of every agent.

    With ``strict=False`` (read-only commands) an unreadable metadata store is a warning
    and the sessions are shown without metadata.
    """
    from tokmon.metadata.store import MetadataError
    from tokmon.sessions import agent_rows, merge

    engine = ctx.engine(agents=True)  # every agent's sessions (docs/sessions.md)
    try:
        rows = agent_rows(engine, **filters)
    except ValueError as exc:  # bad date or time zone
        raise CLIError(str(exc)) from None
    store = metadata_store(ctx)
    try:
        meta = store.all()
    except MetadataError as exc:
        if strict:
            raise CLIError(str(exc)) from None
        ctx.warn(f"session metadata unavailable: {exc}")
        meta = {}
    # the edge: session commands show and print the wire rows merged with their metadata
    return Sessions(engine, merge([r.to_json() for r in rows], meta), store, meta)


def _update(ctx: Context, s: Sessions, sid: str, **changes: Any) -> dict[str, Any]:
    from tokmon.metadata.store import MetadataError

    try:
        return s.store.update(sid, **changes)
    except MetadataError as exc:
        raise CLIError(str(exc)) from None


def _tz(args: argparse.Namespace, ctx: Context) -> Any:
    from tokmon.cli.render import resolve_zone

    return resolve_zone(ctx, getattr(args, "timezone", None))


def fmt_time(value: str | None, tz: Any) -> str:
    from tokmon import fmt

    return fmt.date_time(fmt.epoch(value), tz)


def fmt_ago(value: str | None, now: float | None = None) -> str:
    from tokmon import fmt

    ts = fmt.epoch(value)
    if ts is None:
        return fmt.MISSING
    age = fmt.age((now or time.time()) - ts)
    return "just now" if age == "now" else f"{age} ago"


def _print_json(ctx: Context, data: Any) -> None:
    from tokmon.cli.render import dump_json

    ctx.stdout.write(dump_json(data))


# --------------------------------------------------------------------------- list


def handle_list(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.metadata.schema import normalise_tag
    from tokmon.metadata.store import MetadataError

    try:
        wanted_tags = [normalise_tag(t) for t in args.tag]
    except MetadataError as exc:
        raise CLIError(str(exc)) from None
    tz = _tz(args, ctx)
    s = load_sessions(
        ctx,
        strict=False,
        since=args.since,
        until=args.until,
        project=args.project,
        tz=getattr(args, "timezone", None),
    )
    rows = [r for r in s.rows if all(t in r["tags"] for t in wanted_tags)]
    agent = getattr(args, "agent", None)
    if agent and agent != "all":
        known = s.engine.known_agents()
        if agent not in known:
            raise CLIError(f"unknown agent {agent!r} (known: {', '.join(known)}, all)")
        rows = [r for r in rows if (r.get("agent") or "claude") == agent]
    floor = args.min_tokens if args.min_tokens is not None else (0 if args.include_empty else 1)
    rows = [r for r in rows if r["totalTokens"] >= floor]
    key, descending = SORT_KEYS[args.sort]
    if key == "name":
        rows.sort(key=lambda r: ((r.get("name") or "~").casefold(), r["sessionId"]))
    else:
        rows.sort(key=lambda r: r[key], reverse=descending)
    if args.reverse:
        rows.reverse()
    if args.limit:
        rows = rows[: args.limit]
    if ctx.json_output:
        _print_json(ctx, {"sessions": rows})
        return 0
    if not rows:
        ctx.stdout.write("No sessions match.\n")
        return 0
    _list_table(ctx, rows, tz)
    return 0


def _list_table(ctx: Context, rows: list[dict[str, Any]], tz: Any) -> None:
    """The session list: every column when it fits (always in pipes), else the first of
    the narrower layouts that fits the terminal, with a hint; ids and figures are never cut
    (an id over 200 characters is clipped with an ellipsis, :func:`short_ids`)."""
    from tokmon.cli.render import id_length, print_fitted

    shown = short_ids([r["sessionId"] for r in rows], [r.get("agent") for r in rows], id_length)
    now = time.time()
    print_fitted(
        ctx,
        lambda: _list_build(rows, tz, shown, 0, now),
        lambda: _list_build(rows, tz, shown, 1, now),
        "tags and project",
        "tokmon session list",
        narrower=[
            (lambda: _list_build(rows, tz, shown, 2, now), "tags, project and activity time"),
            (
                lambda: _list_build(rows, tz, shown, 3, now),
                "agent, name, tags, project and last activity",
            ),
        ],  # fmt: skip
    )


def _list_build(
    rows: list[dict[str, Any]], tz: Any, shown: dict[str, str], level: int, now: float
) -> Any:
    """Level 0: every column; 1: no tags or project; 2: the last activity as an age
    (``3d ago``); 3: id, tokens and cost."""
    from rich import box
    from rich.table import Table

    from tokmon.cli.render import fmt_cost, fmt_tokens_short, zone_title
    from tokmon.textsafe import NAME_MAX, clip

    caption = zone_title(tz) if level <= 1 else None  # an age or no time: no zone
    t = Table(box=box.SIMPLE_HEAVY, title=f"{len(rows)} sessions", caption=caption)
    by_agent = level < 3 and any((r.get("agent") or "claude") != "claude" for r in rows)
    named = level < 3
    t.add_column("ID", no_wrap=True)
    if by_agent:  # other agents' sessions listed: say whose each one is
        t.add_column("Agent", no_wrap=True)
    if named:  # a name wraps at spaces (a longer word ends with an ellipsis)
        t.add_column("Name", overflow="ellipsis", max_width=34 if level == 0 else 16)
    if level == 0:
        t.add_column("Tags", overflow="fold", max_width=24)
        t.add_column("Project", overflow="fold", max_width=22)
    t.add_column("Tokens", justify="right", no_wrap=True)
    t.add_column("Cost", justify="right", no_wrap=True)
    if level <= 1:
        t.add_column("Last activity", no_wrap=True)
    elif level == 2:
        t.add_column("Last", no_wrap=True)
    for r in rows:
        cells = [shown[r["sessionId"]] + ("*" if r.get("isActive") else "")]
        if by_agent:
            cells.append(str(r.get("agent") or "claude"))
        if named:
            name = r.get("name") or ""
            if name and r.get("nameSource") == "claude":
                name = f"[italic]{_esc(name)}[/italic]"
            else:
                name = _esc(name)
            cells.append(name)
        if level == 0:
            project = clip(r.get("projectName") or "", NAME_MAX)
            cells += [_esc(" ".join(r["tags"])), _esc(project)]
        cells += [fmt_tokens_short(r["totalTokens"]), fmt_cost(r["totalCost"])]
        if level <= 1:
            cells.append(fmt_time(r["lastActivity"], tz))
        elif level == 2:
            cells.append(fmt_ago(r["lastActivity"], now))
        t.add_row(*cells)
    return t


def short_ids(
    ids: list[str], agents: list[str | None], id_length: Callable[[list[str]], int]
) -> dict[str, str]:
    """Id -> the prefix a table shows: Claude's ids all at the length that tells them apart
    (``id_length``), every other id at least as long and unique among all (so `session
    show` accepts each). A Codex session (``2026/04/08/rollout-…-<uuid>``) shows a prefix of
    its uuid, as the session report does (:func:`tokmon.metadata.refs.short_id`).
    Ids are compared clipped to 200 characters: two longer ones that agree that far both show
    their first 199 characters and an ellipsis."""
    from tokmon.metadata.refs import short_id
    from tokmon.textsafe import ID_MAX, clip

    # compared and shown clipped: a transcript's id can be megabytes (the ledger keeps it whole)
    shown = {i: clip(short_id(i), ID_MAX) for i in ids}
    claude = [shown[i] for i, a in zip(ids, agents, strict=True) if (a or "claude") == "claude"]
    base = id_length(claude) if claude else 8
    order = sorted(set(ids), key=lambda i: shown[i])
    out: dict[str, str] = {}
    for k, sid in enumerate(order):
        need = 0
        mine = shown[sid]
        for other in order[max(0, k - 1) : k] + order[k + 1 : k + 2]:  # sorted: neighbours
            theirs = shown[other]
            common = 0
            while common < min(len(mine), len(theirs)) and mine[common] == theirs[common]:
                common += 1
            need = max(need, common + 1)
        out[sid] = mine[: max(base, need)]
    return out


def _zone(tz: Any) -> str:
    from tokmon import fmt

    return fmt.zone_name(tz)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# --------------------------------------------------------------------------- show / export


def session_detail(s: Sessions, sid: str) -> dict[str, Any]:
    """The one session-detail object (:func:`tokmon.sessions.detail`)."""
    from tokmon.sessions import detail_for

    return detail_for(s.engine, sid, s.row(sid), s.meta.get(sid))


def detail_json(s: Sessions, sid: str, with_requests: bool) -> dict[str, Any]:
    """The detail object, plus every request (``requests``) for ``session export``."""
    from tokmon.sessions import request_json

    out = session_detail(s, sid)
    if with_requests:
        out["requests"] = [request_json(r) for r in s.records(sid)]
    return out


def handle_show(args: argparse.Namespace, ctx: Context) -> int:
    tz = _tz(args, ctx)
    s = load_sessions(ctx, strict=False)
    sid = s.resolve(args.ref)
    if ctx.json_output:
        _print_json(ctx, detail_json(s, sid, with_requests=False))
        return 0
    _show_text(ctx, s, sid, tz)
    return 0


def _show_text(ctx: Context, s: Sessions, sid: str, tz: Any) -> None:
    """The session's details and tables, each fitted to the terminal (figures never cut:
    a narrow terminal gets fewer columns, see :func:`tokmon.cli.limits.print_table`)."""
    from rich import box
    from rich.table import Table

    from tokmon.cli.limits import print_table
    from tokmon.cli.render import console, fmt_cost, fmt_int, short_model, terminal_width
    from tokmon.sessions import activity
    from tokmon.textsafe import ID_MAX, PATH_MAX, clip

    width = terminal_width(ctx)
    con = console(ctx, width)
    d = session_detail(s, sid)
    records = s.records(sid)
    row, meta = (d if "entries" in d else {}), d["metadata"] or {}
    name, source = d["name"], d["nameSource"]
    con.print(
        f"[bold]Session {_esc(clip(d['sessionId'], ID_MAX))}[/bold]"
        + (" [green](active)[/green]" if row.get("isActive") else "")
    )
    lines = [
        ("Agent", s.agent_of(sid)),
        (
            "Name",
            f"{_esc(name)}" + (" (Claude's title)" if source == "claude" else "") if name else "-",
        ),
        ("Tags", _esc(" ".join(meta.get("tags") or [])) or "-"),
        ("Description", _esc(meta.get("description") or "-")),
        ("Project", _esc(clip(row.get("projectPath") or "-", PATH_MAX))),
        (
            "Activity",
            f"{fmt_time(row.get('firstActivity'), tz)} → "
            f"{fmt_time(row.get('lastActivity'), tz)} {_zone(tz)} ({fmt_ago(row.get('lastActivity'))})"
            if row
            else "no usage found in the transcripts",
        ),
        ("Requests", fmt_int(row.get("entries", 0))),
        (
            "Metadata",
            f"created {fmt_time(meta.get('createdAt'), tz)}, updated "
            f"{fmt_time(meta.get('updatedAt'), tz)}"
            if meta
            else "none",
        ),
    ]
    # label and value side by side; a long value wraps under itself, not under the label
    details = Table.grid(padding=(0, 1), pad_edge=True)
    details.add_column(no_wrap=True, style="dim")
    details.add_column(overflow="fold")
    for label, value in lines:
        details.add_row(f" {label}", value)
    con.print(details)
    if not records:
        return

    t = Table(title="Tokens by type", box=box.SIMPLE, title_justify="left")
    t.add_column("Type", no_wrap=True)
    t.add_column("Tokens", justify="right", no_wrap=True)
    for label, key in (
        ("Input", "inputTokens"),
        ("Output", "outputTokens"),
        ("Cache create", "cacheCreationTokens"),
        ("  of which 1 h", "cacheCreation1hTokens"),
        ("Cache read", "cacheReadTokens"),
        ("Total", "totalTokens"),
    ):
        t.add_row(label, fmt_int(d[key]), style="bold" if key == "totalTokens" else None)
    t.add_row("Cost (USD)", fmt_cost(d["totalCost"]), style="bold")
    print_table(ctx, t, name="the tokens table")

    def models_table(level: int) -> Any:
        """Level 0: every token type; 1: requests and totals; 2: totals."""
        t = Table(
            title="By model", box=box.SIMPLE, title_justify="left", padding=(0, 1), pad_edge=False
        )
        keys = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
        cols = ["Model"] + (["Req"] if level <= 1 else [])
        cols += ["Input", "Output", "Cache wr", "Cache rd"] if level == 0 else []
        for col in [*cols, "Total", "Cost"]:
            t.add_column(col, justify="left" if col == "Model" else "right", no_wrap=True)
        for m in d["models"]:
            cells = [short_model(m["modelName"])]
            cells += [fmt_int(m["requests"])] if level <= 1 else []
            cells += [fmt_int(m[k]) for k in keys] if level == 0 else []
            t.add_row(*cells, fmt_int(m["totalTokens"]), fmt_cost(m["cost"]))
        return t

    print_table(
        ctx,
        models_table(0),
        [(lambda: models_table(1), "token types"),
         (lambda: models_table(2), "requests and token types")],
        "the models table",
    )  # fmt: skip

    def blocks_table(level: int) -> Any:
        """Level 0: every column; 1: no end, no requests; 2: start, tokens and cost."""
        t = Table(
            title=f"5-hour billing blocks (times in {_zone(tz)})",
            box=box.SIMPLE,
            title_justify="left",
        )
        cols = ["Start", "End", "Requests"] if level == 0 else ["Start"]
        cols += ["Tokens", "Cost"] + (["Status"] if level <= 1 else [])
        for col in cols:
            right = col in ("Requests", "Tokens", "Cost")
            t.add_column(col, justify="right" if right else "left", no_wrap=True)
        for b in d["blocks"]:
            cells = [fmt_time(b["startTime"], tz)]
            if level == 0:
                cells += [fmt_time(b["actualEndTime"], tz), fmt_int(b["entries"])]
            cells += [fmt_int(b["totalTokens"]), fmt_cost(b["costUSD"])]
            if level <= 1:
                cells.append("ACTIVE" if b["isActive"] else "done")
            t.add_row(*cells)
        return t

    print_table(
        ctx,
        blocks_table(0),
        [(lambda: blocks_table(1), "end and requests"),
         (lambda: blocks_table(2), "end, requests and status")],
        "the blocks table",
    )  # fmt: skip

    tl = activity(records, tz)
    unit = {10: "10 min", 60: "hour", 1440: "day"}[tl["bucketMinutes"]]
    top = max(b["tokens"] for b in tl["buckets"]) or 1

    def activity_table(bar_width: int, requests: bool = True) -> Any:
        t = Table(title=f"Activity (tokens per {unit})", box=box.SIMPLE, title_justify="left")
        cols = ["From"] + (["Requests"] if requests else []) + ["Tokens"]
        for col in cols + ([""] if bar_width else []):
            t.add_column(
                col, justify="right" if col in ("Requests", "Tokens") else "left", no_wrap=True
            )
        for b in tl["buckets"]:
            start = datetime.fromisoformat(b["start"]).strftime("%Y-%m-%d %H:%M")
            cells = [start] + ([fmt_int(b["requests"])] if requests else [])
            cells.append(fmt_int(b["tokens"]))
            if bar_width:
                cells.append(
                    "█" * max(1, round(b["tokens"] / top * bar_width)) if b["tokens"] else ""
                )
            t.add_row(*cells)
        return t

    bar = 30  # the bars scale down to the room the terminal leaves (at least 5 blocks)
    if width is not None:
        from tokmon.cli.render import table_width

        bar = min(30, width - table_width(con, activity_table(0)) - 3)
        bar = bar if bar >= 5 else 0
    print_table(
        ctx,
        activity_table(bar),
        [(lambda: activity_table(0, requests=False), "requests and bars")],
        "the activity table",
    )


def handle_export(args: argparse.Namespace, ctx: Context) -> int:
    tz = _tz(args, ctx)
    s = load_sessions(ctx, strict=False)
    sid = s.resolve(args.ref)
    if args.format == "json":
        from tokmon.cli.render import dump_json

        text = dump_json(detail_json(s, sid, with_requests=True))
    elif args.format == "csv":
        text = _export_csv(s, sid)
    else:
        text = _export_md(s, sid, tz)
    if args.output:
        from pathlib import Path

        from tokmon.fsutil import atomic_write

        dest = Path(args.output).expanduser()
        if not dest.parent.is_dir():
            raise CLIError(f"directory {dest.parent} does not exist")
        try:
            atomic_write(dest, text.encode("utf-8"))
        except OSError as exc:
            raise CLIError(f"cannot write {dest}: {exc.strerror or exc}") from None
        ctx.stderr.write(f"tokmon: exported session {sid} to {dest}\n")
    else:
        ctx.stdout.write(text)
    return 0


CSV_FIELDS = [
    "timestamp",
    "model",
    "project",
    "inputTokens",
    "outputTokens",
    "cacheCreationTokens",
    "cacheCreation1hTokens",
    "cacheReadTokens",
    "totalTokens",
    "cost",
]


def _export_csv(s: Sessions, sid: str) -> str:
    import csv
    import io

    from tokmon.sessions import request_json

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["sessionId", *CSV_FIELDS], lineterminator="\n")
    w.writeheader()
    for r in s.records(sid):
        w.writerow({"sessionId": sid, **request_json(r)})
    return buf.getvalue()


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _export_md(s: Sessions, sid: str, tz: Any) -> str:
    from tokmon.cli.render import fmt_cost, fmt_int
    from tokmon.sessions import activity

    d = session_detail(s, sid)
    row, meta = (d if "entries" in d else {}), d["metadata"] or {}
    name = d["name"]
    out = [f"# Session {_md_cell(name) if name else d['sessionId']}", ""]
    out += [
        f"- **Session id:** `{d['sessionId']}`",
        f"- **Agent:** {s.agent_of(sid)}",
        f"- **Project:** `{row.get('projectPath') or '-'}`",
        f"- **Tags:** {', '.join(meta.get('tags') or []) or '-'}",
        f"- **First activity:** {fmt_time(row.get('firstActivity'), tz)} {_zone(tz)}",
        f"- **Last activity:** {fmt_time(row.get('lastActivity'), tz)} {_zone(tz)}",
        f"- **Requests:** {fmt_int(row.get('entries', 0))}",
        f"- **Total tokens:** {fmt_int(d.get('totalTokens', 0))}",
        f"- **Cost:** {fmt_cost(d.get('totalCost', 0.0))}",
        "",
    ]
    if meta.get("description"):
        out += ["## Description", "", meta["description"], ""]
    out += ["## Tokens by type", "", "| Type | Tokens |", "|---|---:|"]
    for label, key in (
        ("Input", "inputTokens"),
        ("Output", "outputTokens"),
        ("Cache create", "cacheCreationTokens"),
        ("Cache read", "cacheReadTokens"),
        ("Total", "totalTokens"),
    ):
        out.append(f"| {label} | {fmt_int(d.get(key, 0))} |")
    out += ["", "## By model", "", "| Model | Requests | Tokens | Cost |", "|---|---:|---:|---:|"]
    for m in d["models"]:
        out.append(
            f"| {m['modelName']} | {m['requests']} | {fmt_int(m['totalTokens'])} | "
            f"{fmt_cost(m['cost'])} |"
        )
    out += [
        "",
        f"## 5-hour billing blocks (times in {_zone(tz)})",
        "",
        "| Start | Requests | Tokens | Cost |",
        "|---|---:|---:|---:|",
    ]
    for b in d["blocks"]:
        out.append(
            f"| {fmt_time(b['startTime'], tz)} | {b['entries']} | "
            f"{fmt_int(b['totalTokens'])} | {fmt_cost(b['costUSD'])} |"
        )
    out += ["", "## Activity", "", "| From | Requests | Tokens |", "|---|---:|---:|"]
    for b in activity(s.records(sid), tz)["buckets"]:
        out.append(
            f"| {b['start'][:16].replace('T', ' ')} | {b['requests']} | {fmt_int(b['tokens'])} |"
        )
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- edits


def _done(ctx: Context, record: dict[str, Any] | None, message: str) -> int:
    if ctx.json_output:
        _print_json(ctx, record)
    else:
        ctx.stdout.write(message + "\n")
    return 0


def handle_name(args: argparse.Namespace, ctx: Context) -> int:
    if args.clear == (args.name is not None):
        raise CLIError("give either NAME or --clear")
    s = load_sessions(ctx)
    sid = s.resolve(args.ref)
    rec = _update(ctx, s, sid, name=None if args.clear else args.name)
    msg = f"named {sid} {rec['name']!r}" if rec["name"] else f"cleared the name of {sid}"
    return _done(ctx, rec, msg)


def handle_tag(args: argparse.Namespace, ctx: Context) -> int:
    s = load_sessions(ctx)
    sid = s.resolve(args.ref)
    rec = _update(ctx, s, sid, add_tags=args.tags)
    return _done(ctx, rec, f"{sid} tags: {' '.join(rec['tags'])}")


def handle_untag(args: argparse.Namespace, ctx: Context) -> int:
    if args.all == bool(args.tags):
        raise CLIError("give TAG... or --all")
    s = load_sessions(ctx)
    sid = s.resolve(args.ref)
    rec = (
        _update(ctx, s, sid, tags=None) if args.all else _update(ctx, s, sid, remove_tags=args.tags)
    )
    return _done(ctx, rec, f"{sid} tags: {' '.join(rec['tags']) or '(none)'}")


def handle_describe(args: argparse.Namespace, ctx: Context) -> int:
    if args.clear == (args.text is not None):
        raise CLIError("give either TEXT or --clear")
    text = args.text
    if text == "-":
        text = ctx.stdin.read(64 * 1024)
    s = load_sessions(ctx)
    sid = s.resolve(args.ref)
    rec = _update(ctx, s, sid, description=None if args.clear else text)
    msg = f"described {sid}" if rec["description"] else f"cleared the description of {sid}"
    return _done(ctx, rec, msg)


def handle_delete(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.metadata.store import MetadataError

    s = load_sessions(ctx)
    sid = s.resolve(args.ref)
    try:
        removed = s.store.delete(sid)
    except MetadataError as exc:
        raise CLIError(str(exc)) from None
    if not removed:
        raise CLIError(f"session {sid} has no metadata to delete", code=1)
    return _done(
        ctx,
        {"sessionId": sid, "deleted": True},
        f"deleted the metadata of {sid} (transcripts untouched)",
    )
