"""``tokmon web``: the local web dashboard (loopback HTTP, per-launch secret; docs/web.md)."""

from __future__ import annotations

import argparse
from typing import Any

from tokmon.cli.context import CLIError, add_watcher_options, watcher_settings


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "web",
        parents=[parent],
        help="local web dashboard (charts, blocks, sessions; live)",
        description="Serve the dashboard on a loopback address. The printed URL carries a "
        "per-launch secret; requests without it are refused (403).",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address to listen on (127.0.0.1, ::1 or localhost)",
    )
    p.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    p.add_argument("--no-open", action="store_true", help="do not open a browser")
    add_watcher_options(p)
    p.add_argument("--no-watch", action="store_true", help="no file watcher (no live updates)")
    p.set_defaults(handler=handle)


def make_service(ctx: Any, workspace: str | None = None) -> Any:
    """A :class:`Service` over this run's roots, paths and config (not started)."""
    from tokmon.service import Service

    roots = ctx.roots()
    cfg = ctx.config

    def factory() -> Any:
        from tokmon.core.engine import Engine

        return Engine(
            roots=roots,
            paths=ctx.paths,
            config=cfg,
            env=ctx.env,
            persist=not ctx.demo,
            agents=not ctx.demo,
        )

    return Service(env=ctx.env, engine_factory=factory, workspace=workspace)


def handle(args: argparse.Namespace, ctx: Any) -> int:
    from tokmon.cli.serve import parse_tcp

    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be 0-65535, got {args.port}")
    try:
        host, _ = parse_tcp(f"[{args.host.strip('[]')}]:{args.port or 1}")  # loopback only
    except CLIError as exc:
        raise CLIError(str(exc).replace("--tcp", "--host", 1)) from None
    debounce, force_polling = watcher_settings(args, ctx)
    from tokmon.web.server import serve_web

    try:
        return serve_web(
            make_service(ctx),
            host=host,
            port=args.port,
            open_browser=not args.no_open,
            out=ctx.stdout,
            err=ctx.stderr,
            watch=not args.no_watch,
            debounce_ms=debounce,
            force_polling=force_polling,
        )
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
