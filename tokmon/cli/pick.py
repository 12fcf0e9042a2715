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
        "--agent",
        metavar="NAME",
        help="only this agent's sessions (claude, codex, gemini, opencode, qwen, copilot, amp; "
        "default: all, every agent's; other agents' sessions show their agent: [codex])",
    )
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


POINTER = 4  # questionary's " » " before each line, and a column to spare


def label(row: dict[str, Any]) -> str:
    """Project · name (the user's name, else Claude's title) #tags, as `tokmon stats` shows;
    another agent's session starts with its agent (``[codex] ``): first, so a cut label keeps
    it, and the menu's filter finds it."""
    name = row.get("name") or ""  # merged: the user's name, else Claude's title
    tags = " ".join(f"#{t}" for t in row.get("tags") or [])
    agent = str(row.get("agent") or "claude")
    parts = (
        "" if agent == "claude" else f"[{agent}]",
        str(row.get("projectName") or ""),
        name and f"· {name}",
        tags,
    )
    return " ".join(x for x in parts if x)


def _fixed(row: dict[str, Any], now: float, level: int = 0) -> str:
    """Tokens, cost, last activity and the id prefix: never cut (a Codex session's id is
    its file, ``2026/04/08/rollout-…-<uuid>``: its uuid's). A narrow terminal drops the
    tokens (``level`` 1), then the last activity (2), rather than squeeze the label."""
    from tokmon.cli.agents import _display_id
    from tokmon.cli.render import fmt_cost, fmt_tokens_short
    from tokmon.cli.session import fmt_ago

    parts = [f"{fmt_tokens_short(row['totalTokens']):>7}"] if level == 0 else []
    parts.append(f"{fmt_cost(row['totalCost']):>8}")
    if level <= 1:
        parts.append(f"{fmt_ago(row['lastActivity'], now):>9}")
    return " ".join(parts) + f"  {_display_id(str(row['sessionId']))[:8]}"


LABEL_MIN = 12  # the label is cut to no fewer columns than this


def fixed_level(rows: list[dict[str, Any]], now: float, width: int) -> int:
    """How much of the figures fits ``width`` beside a label of :data:`LABEL_MIN` and the
    menu's pointer: 0 all, 1 no tokens, 2 cost and id only."""
    for level in (0, 1):
        fixed = max((len(_fixed(r, now, level)) for r in rows), default=0)
        if POINTER + LABEL_MIN + 1 + fixed <= width:
            return level
    return 2


def label_width(rows: list[dict[str, Any]], now: float, width: int) -> int:
    """The label column: as wide as the longest label, at most what leaves every line
    within ``width`` with the menu's pointer (at least :data:`LABEL_MIN`)."""
    level = fixed_level(rows, now, width)
    longest = max((len(label(r)) for r in rows), default=0)
    fixed = max((len(_fixed(r, now, level)) for r in rows), default=0)
    return min(longest, max(LABEL_MIN, width - POINTER - fixed - 1))


def choice_title(
    row: dict[str, Any],
    now: float,
    width: int,
    label_w: int | None = None,
    level: int | None = None,
) -> str:
    """One menu line: project · name #tags, tokens, cost, last activity, id prefix; it fits
    ``width`` with the menu's pointer (the numbers and the id are never cut, the label is;
    a narrow terminal drops tokens, then the last activity: ``level``, see
    :func:`fixed_level`); ``label_w``: the label column's width for every line
    (:func:`label_width`)."""
    text = label(row)
    if level is None:
        level = fixed_level([row], now, width)
    n = label_width([row], now, width) if label_w is None else label_w
    if len(text) > n:
        text = text[: max(0, n - 1)] + "…"
    return f"{text:<{n}} {_fixed(row, now, level)}"


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
    from tokmon.cli.agents import AGENTS

    agent = args.agent or "all"
    known = ["claude", *AGENTS]
    if agent != "all" and agent not in known:
        raise CLIError(f"unknown agent {agent!r} (known: {', '.join(known)}, all)")
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
    if agent != "all":
        rows = [r for r in rows if (r.get("agent") or "claude") == agent]
    if not rows:
        which = "" if agent == "all" else f"{agent} "
        raise CLIError(f"no {which}sessions to pick from", code=1)
    rows.sort(key=lambda r: r["lastActivity"], reverse=True)

    import questionary

    now = time.time()
    width = shutil.get_terminal_size((100, 24)).columns
    label_w = label_width(rows, now, width)
    level = fixed_level(rows, now, width)
    choices = [
        questionary.Choice(title=choice_title(r, now, width, label_w, level), value=r["sessionId"])
        for r in rows
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
