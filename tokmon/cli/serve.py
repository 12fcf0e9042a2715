"""``tokmon serve``: the language server (stdio or loopback TCP) or the JSON-lines service."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Any

from tokmon.cli.context import CLIError, add_watcher_options, watcher_settings

LOOPBACK_NAMES = {"localhost"}


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "serve",
        parents=[parent],
        help="language server (LSP over stdio) or JSON-lines service for editors and scripts",
        description="Serve the tokmon protocol (docs/protocol.md). stdout carries protocol "
        "messages only; logs go to stderr or --log-file.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--jsonl", action="store_true", help="JSON lines on stdin/stdout instead of LSP"
    )
    mode.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="LSP over TCP on a loopback address (e.g. 127.0.0.1:2087) for one "
        "client, whose initialize must carry initializationOptions.tokmonToken "
        "(the per-launch token written to <state>/serve-tcp-PORT.token)",
    )
    mode.add_argument(
        "--stdio",
        action="store_true",
        help="LSP over stdio (the default; accepted for LSP clients)",
    )
    p.add_argument(
        "--workspace", metavar="DIR", help="default workspace folder when the client sends none"
    )
    add_watcher_options(p)
    p.add_argument(
        "--no-watch",
        action="store_true",
        help="no file watcher: data changes only on tokmon/refresh",
    )
    p.add_argument("--log-file", metavar="PATH", help="write logs to PATH instead of stderr")
    p.add_argument("--clientProcessId", help=argparse.SUPPRESS)  # sent by some LSP clients
    # internal: the server's big first index runs here (tokmon.service._run_index_child)
    p.add_argument("--index-only", type=int, metavar="PARENT_PID", help=argparse.SUPPRESS)
    from tokmon.cli.export import add_serve_options

    add_serve_options(p)  # --metrics, --otlp-endpoint (docs/team.md)
    p.set_defaults(handler=handle)


def parse_tcp(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) on a loopback address only; port 0 takes a
    free port, named on the listening line."""
    host, sep, port_s = value.rpartition(":")
    if not sep or not host:
        raise CLIError(f"--tcp expects HOST:PORT, got {value!r}")
    host = host.strip("[]")
    try:
        port = int(port_s)
    except ValueError:
        raise CLIError(f"--tcp: invalid port {port_s!r}") from None
    if not 0 <= port <= 65535:
        raise CLIError(f"--tcp: port must be 0-65535 (0: any free port), got {port}")
    if host.lower() in LOOPBACK_NAMES:
        return "127.0.0.1", port
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise CLIError(
            f"--tcp: {host!r} is not a loopback address (use 127.0.0.1 or ::1)"
        ) from None
    if not ip.is_loopback:
        raise CLIError(f"--tcp: refusing to listen on {host}: only loopback addresses are allowed")
    return str(ip), port


def handle(args: argparse.Namespace, ctx: Any) -> int:
    from tokmon.server.runtime import setup_logging
    from tokmon.service import Service

    if args.index_only is not None:
        return _index_only(args.index_only, ctx)
    tcp = parse_tcp(args.tcp) if args.tcp else None
    debounce, force_polling = watcher_settings(args, ctx)
    cfg = ctx.config
    setup_logging(getattr(ctx, "log_level", "warning") or "warning", args.log_file)

    roots = ctx.roots()

    def factory() -> Any:
        from tokmon.core.engine import Engine

        return Engine(roots=roots, paths=ctx.paths, config=cfg, env=ctx.env, agents=True)

    index_child = None
    if not ctx.demo:  # the child rebuilds the same engine from the same env and --config
        cfg_args = ["--config", str(ctx.config_path)] if ctx.config_path else []
        index_child = ["serve", *cfg_args, "--index-only"]
    try:
        service = Service(
            env=ctx.env, engine_factory=factory, workspace=args.workspace, index_child=index_child
        )
    except ValueError as exc:
        raise CLIError(f"--workspace: {exc}") from None
    opts: dict[str, Any] = {
        "watch": not args.no_watch,
        "debounce_ms": debounce,
        "force_polling": force_polling,
    }
    from tokmon.cli.export import start_for_serve

    start_for_serve(service, args, ctx)
    if tcp is None:
        proto_in, proto_out = _protocol_streams()
    if args.jsonl:
        from tokmon.server.jsonl import serve_jsonl

        return serve_jsonl(service, stdin=proto_in, stdout=proto_out, **opts)
    from tokmon.server.framing import serve_stdio
    from tokmon.server.lsp import build_server

    server = build_server(service, **opts)
    if tcp is not None:
        return _serve_tcp(server, tcp, args.tcp, ctx)
    serve_stdio(server, proto_in, proto_out)
    return 0


def _index_only(parent: int, ctx: Any) -> int:
    """Refresh the ledger database the way the server's engine would, print progress lines
    and exit: the server's big first index, in a process whose heap goes away after."""
    import time

    from tokmon.core.engine import Engine
    from tokmon.core.scan import _worker_init
    from tokmon.service import PROGRESS_PREFIX

    _worker_init(parent)  # never outlive the server (Linux: SIGKILL; else a watch thread)
    out = sys.stdout
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= 0.2:
            last[0] = now
            out.write(f"{PROGRESS_PREFIX}{done} {total}\n")
            out.flush()

    eng = Engine(roots=ctx.roots(), paths=ctx.paths, config=ctx.config, env=ctx.env, agents=True)
    changes = eng.refresh(progress)
    for w in changes.warnings:
        sys.stderr.write(f"tokmon: {w}\n")
    try:  # the limits monitor's first read of every transcript too (its offsets are stored)
        from tokmon.limits import ingest

        ingest.ingest(ctx.paths, ctx.env, eng.roots)
    except Exception as exc:  # the server's monitor reads them itself then
        sys.stderr.write(f"tokmon: could not read the agents' limit figures: {exc}\n")
    return 0


def _serve_tcp(server: Any, tcp: tuple[str, int], spec: str, ctx: Any) -> int:
    """One authenticated client on a loopback port; the per-launch token goes to a 0600 file
    in the state dir (or comes from ``TOKMON_SERVE_TOKEN``) and is removed at exit."""
    import secrets
    from pathlib import Path

    from tokmon.fsutil import atomic_write
    from tokmon.paths import ensure_dir
    from tokmon.server.framing import TOKEN_OPTION, serve_tcp

    token = str(ctx.env.get("TOKMON_SERVE_TOKEN") or "")
    if token and len(token) < 16:
        raise CLIError("TOKMON_SERVE_TOKEN must be at least 16 characters")
    token = token or secrets.token_urlsafe(32)
    host, port = tcp
    written: list[Path] = []

    def listening(h: str, p: int) -> None:
        # the file is named after the bound port (port 0 takes a free one) and written before
        # the line: once a client sees the line, the file is there
        token_file = ctx.paths.state_dir / f"serve-tcp-{p}.token"
        try:
            ensure_dir(ctx.paths.state_dir)
            atomic_write(token_file, (token + "\n").encode("ascii"))
            written.append(token_file)
            os.chmod(token_file, 0o600)
        except OSError as exc:
            raise CLIError(f"cannot write the token file {token_file}: {exc.strerror or exc}",
                           code=1) from None  # fmt: skip
        sys.stderr.write(f"tokmon serve: listening on {h}:{p}; one client, whose initialize "
                         f"must carry initializationOptions.{TOKEN_OPTION} = the token in "
                         f"{token_file}\n")  # fmt: skip
        sys.stderr.flush()

    import signal

    def stop(signum: int, frame: Any) -> None:  # a terminated server removes its token file too
        raise SystemExit(0)

    try:
        signal.signal(signal.SIGTERM, stop)
    except (ValueError, OSError):  # not the main thread (in-process runs)
        pass
    try:
        serve_tcp(server, host, port, token, on_listening=listening)
    except OSError as exc:
        raise CLIError(f"--tcp: cannot listen on {spec}: {exc.strerror or exc}") from None
    finally:
        for f in written:
            try:
                f.unlink()
            except OSError:
                pass
    return 0


def _protocol_streams() -> tuple[Any, Any]:
    """Private binary streams on duplicated fds 0/1 for the protocol.

    ``sys.stdout`` then points at stderr, so a stray print can never corrupt the protocol, and
    the std stream objects are never locked by our reader thread (the engine's forked scan
    workers close/flush them at start-up, which deadlocks on a lock held at fork time).
    """
    try:
        proto_in = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
        proto_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    except (AttributeError, OSError, ValueError):  # no real fds (embedded use)
        return sys.stdin.buffer, sys.stdout.buffer
    sys.stdout.flush()
    sys.stdout = sys.stderr
    return proto_in, proto_out
