"""`tokmon pick`: choose a session interactively (type to filter, arrows, enter).

The menu is drawn on stderr, so ``$(tokmon pick)`` captures only the chosen id.
"""

from __future__ import annotations

import argparse
import shutil
from typing import Any, TextIO, cast

from tokmon.cli.context import CLIError, Context

ACTIONS = ["print", "show", "tag", "describe"]


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "pick",
        parents=[parent],
        help="choose a session interactively and print its id (or show/tag/describe it)",
        description="Pick a session (most recent first; type to filter by name, tags, project "
        "or id). Prints the chosen id, so `tokmon session show $(tokmon pick)` composes.",
    )
    p.add_argument(
        "-a",
        "--action",
        choices=ACTIONS,
        default="print",
        help="what to do with the chosen session (default: print its id)",
    )
    p.add_argument("-p", "--project", help="only sessions of this project")
    p.add_argument(
        "-t",
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="only sessions with this tag (repeatable)",
    )
    p.set_defaults(handler=handle)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def choice_title(row: dict[str, Any], now: float, width: int) -> str:
    """One menu line: name, tags, project, tokens, cost, last activity, id prefix."""
    from tokmon.cli.render import fmt_cost, fmt_tokens_short
    from tokmon.cli.session import fmt_ago

    def cut(text: str, n: int) -> str:
        return text if len(text) <= n else text[: max(0, n - 1)] + "…"

    fixed = (
        f"{fmt_tokens_short(row['totalTokens']):>7} {fmt_cost(row['totalCost']):>8} "
        f"{fmt_ago(row['lastActivity'], now):>9}  {row['sessionId'][:8]}"
    )
    room = max(20, width - len(fixed) - 8)
    name_w = max(10, room * 45 // 100)
    tags_w = max(6, room * 25 // 100)
    proj_w = max(6, room - name_w - tags_w - 2)
    name = row.get("name") or "(unnamed)"
    tags = " ".join(f"#{t}" for t in row.get("tags") or [])
    return (
        f"{cut(name, name_w):<{name_w}} {cut(tags, tags_w):<{tags_w}} "
        f"{cut(row.get('projectName') or '', proj_w):<{proj_w}} {fixed}"
    )


def _io(ctx: Context) -> dict[str, Any]:
    """prompt_toolkit input/output on the terminal (menu on stderr), colour honoured."""
    from prompt_toolkit.input import create_input
    from prompt_toolkit.output import ColorDepth, create_output

    # the Context streams are the process's text streams (typed IO[str] for tests' StringIO)
    kw: dict[str, Any] = {
        "input": create_input(cast(TextIO, ctx.stdin)),
        "output": create_output(cast(TextIO, ctx.stderr)),
    }
    if not ctx.color:
        kw["color_depth"] = ColorDepth.DEPTH_1_BIT
    return kw


def handle(args: argparse.Namespace, ctx: Context) -> int:
    if not (_isatty(ctx.stdin) and _isatty(ctx.stderr)):
        raise CLIError(
            "tokmon pick needs an interactive terminal (stdin and stderr must be a "
            "TTY); use `tokmon session list` and a session id instead",
            code=2,
        )
    import time

    from tokmon.cli import session as sess
    from tokmon.metadata.schema import normalise_tag
    from tokmon.metadata.store import MetadataError

    try:
        wanted = [normalise_tag(t) for t in args.tag]
    except MetadataError as exc:
        raise CLIError(str(exc)) from None
    s = sess.load_sessions(ctx, strict=args.action in ("tag", "describe"), project=args.project)
    rows = [r for r in s.rows if all(t in r["tags"] for t in wanted)]
    if not rows:
        raise CLIError("no sessions to pick from", code=1)
    rows.sort(key=lambda r: r["lastActivity"], reverse=True)

    import questionary

    now = time.time()
    width = shutil.get_terminal_size((100, 24)).columns
    choices = [
        questionary.Choice(title=choice_title(r, now, width), value=r["sessionId"]) for r in rows
    ]
    sid = questionary.select(
        f"Session ({len(rows)}, most recent first):",
        choices=choices,
        use_search_filter=True,
        use_jk_keys=False,
        use_shortcuts=False,
        use_emacs_keys=True,
        **_io(ctx),
    ).unsafe_ask()
    if sid is None:  # pragma: no cover - questionary returns None only on abort
        return 130

    if args.action == "print":
        ctx.stdout.write(sid + "\n")
        return 0
    if args.action == "show":
        return sess.handle_show(argparse.Namespace(ref=sid, timezone=None), ctx)
    meta = s.meta.get(sid) or {}
    if args.action == "tag":
        current = " ".join(meta.get("tags") or [])
        text = questionary.text(
            "Tags (space-separated; '-tag' removes):",
            default="",
            instruction=f"[{current}]",
            **_io(ctx),
        ).unsafe_ask()
        words = (text or "").split()
        add = [w for w in words if not w.startswith("-")]
        remove = [w[1:] for w in words if w.startswith("-") and len(w) > 1]
        rec = sess._update(ctx, s, sid, add_tags=add, remove_tags=remove)
        return sess._done(ctx, rec, f"{sid} tags: {' '.join(rec['tags']) or '(none)'}")
    text = questionary.text(
        "Description:", default=meta.get("description") or "", **_io(ctx)
    ).unsafe_ask()
    rec = sess._update(ctx, s, sid, description=text or None)
    msg = f"described {sid}" if rec["description"] else f"cleared the description of {sid}"
    return sess._done(ctx, rec, msg)
