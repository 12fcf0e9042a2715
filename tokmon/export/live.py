"""Exporters attached to a running :class:`tokmon.service.Service`.

The metrics endpoint and the OTLP reader read the service's engine under the service lock;
the service's file watcher keeps the engine current, so each scrape sees the latest ledger.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from tokmon.export.series import Series, SeriesSource

log = logging.getLogger("tokmon.export")

READY_TIMEOUT = 8.0  # below Prometheus' default 10 s scrape timeout


@dataclass
class ExportOptions:
    """What ``serve --metrics/--otlp-endpoint`` (or ``export prometheus --listen``) asked for."""

    metrics: str | None = None
    allow_remote: bool = False
    remote_flag: str = "--metrics-allow-remote"  # the option that sets allow_remote (errors)
    per_session: bool = False
    otlp_endpoint: str | None = None
    otlp_interval: float = 60.0
    headers: dict[str, str] = field(default_factory=dict)
    resource_attrs: dict[str, str] = field(default_factory=dict)
    refresh_on_scrape: bool = False


class ServiceSeries:
    """A Series function over a service's engine (waits for the first scan)."""

    def __init__(self, service: Any, per_session: bool) -> None:
        self.service = service
        self.per_session = per_session
        self.source: SeriesSource | None = None
        self._seen: Any = None

    def engine_ready(self) -> Any:
        svc = self.service
        if not svc.ready.wait(READY_TIMEOUT):
            from tokmon.export.prometheus import NotReady

            raise NotReady(
                "tokmon has not indexed transcripts yet (an LSP server starts when "
                "its editor connects)"
            )
        eng = svc.engine_if_started
        if eng is None:
            raise RuntimeError(svc.start_error or "tokmon engine unavailable")
        return eng

    def __call__(self) -> Series:
        eng = self.engine_ready()
        self._catch_up(eng)
        with self.service.lock:
            if self.source is None:
                self.source = SeriesSource(eng, per_session=self.per_session)
            return self.source.collect()

    def _catch_up(self, eng: Any) -> None:
        """Another process rewrote the ledger (e.g. ``tokmon ledger import``): reload it.

        The file watcher only follows transcripts, so one look at the database's generation
        per scrape spots this.
        """
        if not getattr(eng, "persist", False):
            return
        with self.service.lock:
            if not eng.store_changed():
                return
        try:
            self.service.refresh()
        except Exception as exc:  # a scrape must still answer
            log.warning("refresh before a scrape failed: %s", exc)


@dataclass
class Exporters:
    """Running exporters; :meth:`stop` ends them."""

    metrics: Any = None
    otlp: Any = None
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for fn in self.stoppers:
            try:
                fn()
            except Exception as exc:  # stopping must not raise
                log.debug("stopping exporter: %s", exc)


def start_exporters(service: Any, opts: ExportOptions, stderr: IO[str] | None = None) -> Exporters:
    """Start what ``opts`` asks for; raises ValueError/OSError with a one-line message."""
    out = Exporters()
    if not opts.metrics and not opts.otlp_endpoint:
        return out
    err = stderr or sys.stderr
    series = ServiceSeries(service, opts.per_session)
    paths = _paths(service)
    if opts.metrics:
        from tokmon.export.prometheus import MetricsServer, load_or_create_token, parse_listen

        host, port = parse_listen(opts.metrics, opts.allow_remote, opts.remote_flag)
        token, tpath = load_or_create_token(paths.state_dir)
        before = None
        if opts.refresh_on_scrape:

            def before() -> None:
                series.engine_ready()
                service.refresh()

        srv = MetricsServer(series, host, port, token, before_scrape=before).start()
        out.metrics = srv
        out.stoppers.append(srv.stop)
        shown = f"[{srv.host}]" if ":" in srv.host else srv.host
        err.write(
            f"tokmon: metrics on http://{shown}:{srv.port}/metrics (bearer token in {tpath})\n"
        )
        err.flush()
    if opts.otlp_endpoint:
        import threading

        from tokmon.core.machines import local_machine
        from tokmon.export.otlp import Continuous, metrics_endpoint, resource_attributes

        metrics_endpoint(opts.otlp_endpoint)  # validate now
        machine = local_machine(service.env)
        attrs = resource_attributes(machine, opts.resource_attrs)

        def start_otlp() -> None:
            try:
                eng = series.engine_ready()
                start = _start_fn(paths, eng)
                out.otlp = Continuous(
                    series,
                    opts.otlp_endpoint or "",
                    attrs=attrs,
                    start_ns=start,
                    headers=opts.headers,
                    interval=opts.otlp_interval,
                )
                out.stoppers.append(out.otlp.stop)
            except Exception as exc:
                log.warning("OTLP export not started: %s", exc)

        threading.Thread(target=start_otlp, name="tokmon-otlp", daemon=True).start()
    return out


def _paths(service: Any) -> Any:
    from tokmon.paths import get_paths

    return get_paths(service.env)


def _start_fn(paths: Any, engine: Any) -> Callable[[], int]:
    from tokmon.export.otlp import stable_start_ns

    cache: list[int] = []

    def start() -> int:
        if not cache:
            recs = engine.records
            cache.append(
                stable_start_ns(
                    paths.state_dir if engine.persist else None, recs[0].ts if recs else None
                )
            )
        return cache[0]

    return start
