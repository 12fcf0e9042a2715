"""``tokmon report --html FILE``: the dashboard as one self-contained HTML file (docs/web.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tokmon.cli.context import CLIError


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "report",
        parents=[parent],
        help="export the dashboard as one HTML file",
        description="Write the web dashboard with its data and chart library inline: one file "
        "to share or archive, no network needed to view it.",
    )
    p.add_argument(
        "--html", required=True, type=Path, metavar="FILE", help="output file ('-' for stdout)"
    )
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, ctx: Any) -> int:
    if str(args.html) != "-":
        args.html = args.html.expanduser()
        if not args.html.parent.is_dir():  # a typo must not make a folder tree
            raise CLIError(f"no folder {args.html.parent}: create it first, or fix the path")
    from tokmon.cli.web import make_service
    from tokmon.web.export import collect, render

    service = make_service(ctx)
    try:
        service.start()
    except Exception as exc:
        raise CLIError(str(service.start_error or exc), 1) from None
    text = render(collect(service))
    if str(args.html) == "-":
        ctx.stdout.write(text)
        return 0
    from tokmon.fsutil import atomic_write

    try:
        atomic_write(args.html, text.encode("utf-8"))
    except OSError as exc:
        raise CLIError(f"cannot write {args.html}: {exc.strerror or exc}", 1) from None
    ctx.stderr.write(f"tokmon: wrote {args.html} ({len(text) // 1024} KB)\n")
    return 0
