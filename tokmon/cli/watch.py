"""`tokmon watch`: the live terminal dashboard."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "watch",
        parents=[parent],
        help="live terminal dashboard (block, burn rate, sessions)",
        description=(
            "Full-screen live dashboard: the current 5-hour block, burn rate and projection, "
            "today and this week, active sessions. Updates when transcripts change. "
            "Keys: q quit, r reset, up/down or j/k select, enter detail, t tag, / filter, ? help."
        ),
    )
    p.add_argument(
        "--compact", action="store_true", help="single-line mode (also used for tiny terminals)"
    )
    p.add_argument(
        "--interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="refresh at least this often even without file changes (default 60)",
    )
    p.add_argument(
        "-z",
        "--timezone",
        help="time zone for clock times (IANA name or UTC; default: config, else the system's)",
    )
    p.add_argument(
        "--no-watch",
        action="store_true",
        help="do not watch transcript files; refresh only every --interval seconds",
    )
    p.set_defaults(handler=handle)


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def handle(args: argparse.Namespace, ctx: Any) -> int:
    from tokmon.cli.context import CLIError

    if getattr(ctx, "json_output", False):
        raise CLIError("watch is interactive and has no JSON output; try `tokmon stats --json`")
    from tokmon.cli.render import resolve_zone

    tz = resolve_zone(ctx, getattr(args, "timezone", None))
    interval = float(args.interval)
    if not (0.5 <= interval <= 3600):
        raise CLIError(f"--interval must be between 0.5 and 3600 seconds, got {args.interval}")
    # Textual draws on the real terminal (stderr) and reads keys from stdin.
    if not (_is_tty(sys.__stdin__) and (_is_tty(sys.__stdout__) or _is_tty(sys.__stderr__))):
        raise CLIError(
            "watch needs an interactive terminal; for plain output use `tokmon blocks --active` "
            "or `tokmon stats`"
        )
    if not getattr(ctx, "color", True):
        os.environ["NO_COLOR"] = "1"

    try:
        import textual  # noqa: F401
    except ImportError:
        raise CLIError("watch needs the 'textual' package: pip install 'textual>=8.0,<9'") from None
    from tokmon.watch.app import WatchApp
    from tokmon.watch.source import Refresher, update_tags

    paths = ctx.paths
    # The first (possibly long) scan runs before the full screen starts, so its progress
    # bar and warnings print on the normal terminal; later refreshes are incremental.
    engine = ctx.engine(agents=True, lasting=True)

    def start(app: WatchApp) -> Refresher:
        return Refresher(
            lambda: engine, app.deliver, paths=paths, idle_s=interval, watch=not args.no_watch
        ).start()

    app = WatchApp(
        start,
        compact=bool(args.compact),
        tag_writer=lambda sid, add, remove: update_tags(paths, sid, add, remove),
        tz=tz,
    )
    inline = bool(args.compact) and os.name != "nt"  # Textual's inline mode is POSIX-only
    with _quiet_terminal_logging():
        result = app.run(inline=inline, mouse=False)
    if result is None and app.return_code:  # Textual already reported the crash
        return int(app.return_code)
    return int(result or 0)


@contextlib.contextmanager
def _quiet_terminal_logging() -> Iterator[None]:
    """Mute log handlers writing to the terminal while the dashboard owns it."""
    root = logging.getLogger()
    muted = []
    for h in root.handlers:
        if isinstance(h, logging.StreamHandler) and _is_tty(getattr(h, "stream", None)):
            muted.append((h, h.level))
            h.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for h, level in muted:
            h.setLevel(level)
