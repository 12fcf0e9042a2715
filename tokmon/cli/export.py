"""``tokmon export prometheus|otlp``: team metrics from the ledger (see docs/team.md)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from tokmon.cli.context import CLIError, Context


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "export",
        parents=[parent],
        help="metrics for Prometheus or OpenTelemetry",
        description="Export usage metrics computed from tokmon's ledger "
        "(cumulative: re-running never counts anything twice).",
    )
    s = p.add_subparsers(dest="export_command", metavar="TARGET")
    pr = s.add_parser(
        "prometheus",
        parents=[parent],
        help="print the Prometheus exposition, or serve it with --listen",
    )
    pr.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve /metrics on this loopback address (bearer token required)",
    )
    pr.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --listen address (the token still applies)",
    )
    pr.add_argument(
        "--per-session",
        action="store_true",
        help="add per-session token series (sessions of the last 7 days)",
    )
    pr.set_defaults(handler=handle_prometheus)
    ot = s.add_parser(
        "otlp",
        parents=[parent],
        help="send the ledger's totals to an OTLP/HTTP endpoint (backfill; --follow to keep going)",
    )
    ot.add_argument(
        "--endpoint",
        required=True,
        metavar="URL",
        help="OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318 (/v1/metrics is added to a bare host)",
    )
    add_otlp_options(ot)
    ot.add_argument(
        "--follow",
        action="store_true",
        help="keep exporting every --interval seconds (Ctrl-C stops)",
    )
    ot.add_argument(
        "--interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="export interval with --follow (default 60)",
    )
    ot.add_argument("--per-session", action="store_true", help="add per-session token series")
    ot.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up on an unreachable endpoint after this long (default 30)",
    )
    ot.set_defaults(handler=handle_otlp)
    p.set_defaults(
        handler=lambda a, c: (_ for _ in ()).throw(
            CLIError("choose a target: tokmon export prometheus|otlp (see --help)")
        )
    )


def add_otlp_options(p: argparse.ArgumentParser) -> None:
    """``--header`` and ``--resource-attr`` (shared with ``serve --otlp-endpoint``)."""
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="HTTP header for the OTLP endpoint (repeatable), e.g. an API key",
    )
    p.add_argument(
        "--resource-attr",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra resource attribute (repeatable), e.g. team=infra; also config "
        "export.resource_attributes and OTEL_RESOURCE_ATTRIBUTES",
    )


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """The exporter flags of ``tokmon serve``."""
    g = p.add_argument_group("team export (docs/team.md)")
    g.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="also serve Prometheus /metrics on this loopback address "
        "(bearer token in the state dir's metrics-token)",
    )
    g.add_argument(
        "--metrics-allow-remote",
        action="store_true",
        help="allow a non-loopback --metrics address (the token still applies)",
    )
    g.add_argument(
        "--metrics-per-session",
        action="store_true",
        help="add per-session series (sessions of the last 7 days)",
    )
    g.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="also export OTLP/HTTP metrics to URL every --otlp-interval seconds",
    )
    g.add_argument(
        "--otlp-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="OTLP export interval (default 60)",
    )
    g.add_argument(
        "--otlp-header",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="HTTP header for the OTLP endpoint (repeatable)",
    )
    g.add_argument(
        "--resource-attr",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra OTLP resource attribute (repeatable), e.g. team=infra",
    )


def start_for_serve(service: Any, args: argparse.Namespace, ctx: Context) -> Any:
    """Start the exporters ``serve`` was asked for (None when none)."""
    if not getattr(args, "metrics", None) and not getattr(args, "otlp_endpoint", None):
        return None
    from tokmon.export.live import ExportOptions, start_exporters

    if args.otlp_interval <= 0:
        raise CLIError("--otlp-interval must be positive")
    opts = ExportOptions(
        metrics=args.metrics,
        allow_remote=args.metrics_allow_remote,
        per_session=args.metrics_per_session,
        otlp_endpoint=args.otlp_endpoint,
        otlp_interval=args.otlp_interval,
        headers=headers(args.otlp_header),
        resource_attrs=resource_attrs(ctx, args.resource_attr),
        refresh_on_scrape=bool(getattr(args, "no_watch", False)),
    )
    try:
        return start_exporters(service, opts, ctx.stderr)
    except (ValueError, OSError) as exc:
        msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        flag = "--metrics" if args.metrics else "--otlp-endpoint"
        raise CLIError(f"{flag}: {msg}") from None


def resource_attrs(ctx: Context, items: list[str]) -> dict[str, str]:
    """Config ``export.resource_attributes`` overlaid with ``--resource-attr``."""
    from tokmon.export.otlp import parse_pairs

    try:
        cfg = parse_pairs(
            [ctx.config.get("export.resource_attributes") or ""], "export.resource_attributes"
        )
        return {**cfg, **parse_pairs(items, "--resource-attr")}
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def headers(items: list[str]) -> dict[str, str]:
    from tokmon.export.otlp import parse_pairs

    try:
        return parse_pairs(items, "--header")
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _source(ctx: Context, per_session: bool, lasting: bool = False) -> Any:
    from tokmon.export.series import SeriesSource

    engine = ctx.engine(agents=True, lasting=lasting)  # every agent's usage, by agent
    _restore(ctx, engine)
    return SeriesSource(engine, per_session=per_session, env=ctx.env)


def _restore(ctx: Context, engine: Any) -> None:
    """Stored imports a rebuilt ledger lost go back in before anything is counted."""
    if not engine.persist:
        return
    from tokmon.core.machines import restore

    if restore(engine):
        engine.refresh()


def handle_prometheus(args: argparse.Namespace, ctx: Context) -> int:
    if args.listen:
        return _serve_metrics(args, ctx)
    from tokmon.export.prometheus import exposition

    ctx.stdout.write(exposition(_source(ctx, args.per_session)).decode("utf-8"))
    return 0


def _serve_metrics(args: argparse.Namespace, ctx: Context) -> int:
    """A metrics-only daemon: no protocol client; each scrape refreshes the ledger first."""
    from tokmon.cli.web import make_service
    from tokmon.export.live import ExportOptions, start_exporters

    service = make_service(ctx)
    opts = ExportOptions(
        metrics=args.listen,
        allow_remote=args.allow_remote,
        remote_flag="--allow-remote",
        per_session=args.per_session,
        refresh_on_scrape=True,
    )
    try:
        running = start_exporters(service, opts, ctx.stderr)
    except (ValueError, OSError) as exc:
        msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CLIError(f"--listen: {msg}") from None
    _stop_on_sigterm()
    try:
        service.start()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        running.stop()


def _stop_on_sigterm() -> None:
    """SIGTERM (service managers) ends the daemon like Ctrl-C, through the cleanup."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, stop)
    except (ValueError, OSError, AttributeError):  # not the main thread / no SIGTERM
        pass


def handle_otlp(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.core.machines import local_machine
    from tokmon.export.otlp import (
        Continuous,
        OTLPError,
        backfill,
        metrics_endpoint,
        resource_attributes,
        stable_start_ns,
    )

    try:
        endpoint = metrics_endpoint(args.endpoint)
    except ValueError as exc:
        raise CLIError(f"--endpoint: {exc}") from None
    if args.interval <= 0 or args.timeout <= 0:
        raise CLIError("--interval and --timeout must be positive")
    hdrs = headers(args.header)
    attrs = resource_attributes(
        local_machine(ctx.env, ctx.config), resource_attrs(ctx, args.resource_attr)
    )
    source = _source(ctx, args.per_session, lasting=bool(args.follow))
    engine = source.engine
    recs = engine.records
    state = ctx.paths.state_dir if engine.persist else None
    start = stable_start_ns(state, recs[0].ts if recs else None)
    if not args.follow:
        try:
            n = backfill(
                source.collect,
                endpoint,
                attrs=attrs,
                start_ns=lambda: start,
                headers=hdrs,
                timeout=args.timeout,
            )
        except OTLPError as exc:
            raise CLIError(str(exc), code=1) from None
        if ctx.json_output:
            import json

            ctx.stdout.write(
                json.dumps({"endpoint": endpoint, "dataPoints": n, "responses": len(recs)}) + "\n"
            )
        else:
            ctx.stdout.write(f"exported {n} data points ({len(recs)} responses) to {endpoint}\n")
        return 0

    def collect() -> Any:
        engine.refresh()
        return source.collect()

    cont = Continuous(
        collect, endpoint, attrs=attrs, start_ns=lambda: start, headers=hdrs, interval=args.interval
    )
    ctx.stderr.write(f"tokmon: exporting to {endpoint} every {args.interval:g} s (Ctrl-C stops)\n")
    _stop_on_sigterm()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        cont.stop()
