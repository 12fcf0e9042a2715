"""OTLP/HTTP metrics export (opentelemetry-sdk), cumulative temporality.

Every counter is an observable counter whose callback reports the ledger's total, so each
export carries the same absolute values until new usage arrives: a second backfill, a restart
or two exporters never add anything. Data points share a stable start time (the ledger's
first record, kept in the state dir), so a backend sees one cumulative stream across runs
rather than a reset per process. Metric names are tokmon's own (``tokmon.*``), apart from
Claude Code's native ``claude_code.*`` metrics (see docs/team.md).
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter, ObservableGauge
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

import tokmon
from tokmon.export.series import Series

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import CardinalityLimits

log = logging.getLogger("tokmon.export")

CUMULATIVE: dict[type, AggregationTemporality] = {
    ObservableCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}
LIMITS: CardinalityLimits = {ObservableCounter: 100_000, ObservableGauge: 10_000}
SCOPE = "tokmon"
EPOCH_FILE = "otlp-epoch"


class OTLPError(Exception):
    """The export could not be delivered (one-line message)."""


def metrics_endpoint(url: str) -> str:
    """A full OTLP/HTTP metrics URL: a bare ``http://host:4318`` gets ``/v1/metrics``."""
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    if u.path in ("", "/"):
        return url.rstrip("/") + "/v1/metrics"
    return url


def parse_pairs(items: Iterable[str], what: str) -> dict[str, str]:
    """``k=v`` items (also comma-separated) as a dict; raises ValueError."""
    out: dict[str, str] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in str(item).split(","))):
            k, sep, v = part.partition("=")
            if not sep or not k.strip():
                raise ValueError(f"{what}: expected KEY=VALUE, got {part!r}")
            out[k.strip()] = v.strip()
    return out


def resource_attributes(machine: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """service.name=tokmon, version, host, user and machine, then the user-set ones."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (containers, Windows services)
        user = os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    attrs = {
        "service.name": "tokmon",
        "service.version": tokmon.__version__,
        "host.name": socket.gethostname(),
        "user.name": user,
        "tokmon.machine": machine,
    }
    attrs.update(extra or {})
    return attrs


def stable_start_ns(state_dir: Path | None, first_ts: float | None) -> int:
    """The start time of every cumulative point: kept in the state dir once chosen."""
    path = state_dir / EPOCH_FILE if state_dir is not None else None
    if path is not None:
        try:
            return int(path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            pass
    start = min(first_ts or time.time(), time.time())
    ns = int(start * 1e9)
    if path is not None:
        from tokmon.fsutil import atomic_write

        try:
            atomic_write(path, f"{ns}\n".encode(), fsync=False)
        except OSError:
            pass
    return ns


class _StableStart(MetricExporter):
    """Wraps an exporter: rewrites counters' start time, remembers the last result."""

    def __init__(self, inner: MetricExporter, start_ns: Callable[[], int]) -> None:
        super().__init__(preferred_temporality=CUMULATIVE)
        self.inner = inner
        self.start_ns = start_ns
        self.last: MetricExportResult | None = None
        self.exports = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        data = restart(metrics_data, self.start_ns())
        try:
            res = self.inner.export(data, timeout_millis=timeout_millis)
        except Exception as exc:
            log.warning("OTLP export failed: %s", exc)
            res = MetricExportResult.FAILURE
        self.last = res
        self.exports += 1
        return res

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis)


def restart(data: MetricsData, start_ns: int) -> MetricsData:
    """``data`` with every sum point's start time set to ``start_ns``."""
    rms = []
    for rm in data.resource_metrics:
        sms = []
        for sm in rm.scope_metrics:
            ms = []
            for m in sm.metrics:
                md: Any = m.data  # Sum | Gauge | Histogram | ...: replaced by field name
                pts = getattr(md, "data_points", None)
                if pts is not None and hasattr(md, "aggregation_temporality"):
                    pts = [dataclasses.replace(p, start_time_unix_nano=start_ns) for p in pts]
                    m = dataclasses.replace(m, data=dataclasses.replace(md, data_points=pts))
                ms.append(m)
            sms.append(dataclasses.replace(sm, metrics=ms))
        rms.append(dataclasses.replace(rm, scope_metrics=sms))
    return MetricsData(resource_metrics=rms)


class _Memo:
    """One Series per collection cycle (the callbacks of one cycle share it)."""

    def __init__(self, fn: Callable[[], Series]) -> None:
        self.fn = fn
        self.lock = threading.Lock()
        self.value: Series | None = None
        self.at = 0.0

    def get(self) -> Series:
        with self.lock:
            now = time.monotonic()
            if self.value is None or now - self.at > 1.0:
                self.value = self.fn()
                self.at = now
            return self.value


def _instruments(provider: MeterProvider, memo: _Memo) -> None:
    meter = provider.get_meter(SCOPE, tokmon.__version__)

    def tokens(_: CallbackOptions) -> Iterable[Observation]:
        for (agent, model, typ, proj, mach), v in memo.get().tokens.items():
            yield Observation(
                v, {"agent": agent, "model": model, "type": typ, "project": proj, "machine": mach}
            )

    def cost(_: CallbackOptions) -> Iterable[Observation]:
        for (agent, model, proj, mach), v in memo.get().cost.items():
            yield Observation(v, {"agent": agent, "model": model, "project": proj, "machine": mach})

    def responses(_: CallbackOptions) -> Iterable[Observation]:
        for (agent, model, proj, mach), v in memo.get().responses.items():
            yield Observation(v, {"agent": agent, "model": model, "project": proj, "machine": mach})

    def sessions(_: CallbackOptions) -> Iterable[Observation]:
        for (sid, proj, mach), v in memo.get().session_tokens.items():
            yield Observation(v, {"session": sid, "project": proj, "machine": mach})

    meter.create_observable_counter(
        "tokmon.tokens",
        [tokens],
        unit="{token}",
        description="tokens used (cumulative, from tokmon's ledger)",
    )
    meter.create_observable_counter(
        "tokmon.cost",
        [cost],
        unit="USD",
        description="cost in USD (cumulative, from tokmon's ledger)",
    )
    meter.create_observable_counter(
        "tokmon.responses",
        [responses],
        unit="{response}",
        description="API responses (deduplicated)",
    )
    meter.create_observable_counter(
        "tokmon.session.tokens",
        [sessions],
        unit="{token}",
        description="tokens per session (opt-in)",
    )
    names = _gauge_names(memo)

    for name in names:

        def cb(_: CallbackOptions, name: str = name) -> Iterable[Observation]:
            for g in memo.get().gauges:
                if g.name == name:
                    yield Observation(g.value, dict(g.labels))

        meter.create_observable_gauge(f"tokmon.{name}", [cb], unit="")


def _gauge_names(memo: _Memo) -> list[str]:
    from tokmon.export.series import BUDGET_GAUGES, GAUGE_PROVIDERS

    base = [
        "block_active",
        "block_tokens",
        "block_cost_usd",
        "block_burn_rate_tokens_per_minute",
        "block_remaining_minutes",
        "block_limit_tokens",
        "block_limit_percent",
        "official_used_percent",
        "official_resets_at_seconds",
        "official_observed_at_seconds",
        "last_activity_timestamp_seconds",
        *BUDGET_GAUGES,
    ]
    extra: list[str] = []
    if GAUGE_PROVIDERS or os.environ.get("TOKMON_METRICS_PROVIDERS"):
        extra = [g.name for g in memo.get().gauges if g.name not in base]
    return base + sorted(set(extra))


def _exporter(endpoint: str, headers: Mapping[str, str] | None, timeout: float) -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(
        endpoint=metrics_endpoint(endpoint),
        headers=dict(headers or {}) or None,
        timeout=timeout,
        preferred_temporality=CUMULATIVE,
    )


def backfill(
    collect: Callable[[], Series],
    endpoint: str,
    *,
    attrs: Mapping[str, str],
    start_ns: Callable[[], int],
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> int:
    """Export the ledger's totals once; returns the number of data points sent.

    Raises :class:`OTLPError` when the endpoint does not accept them.
    """
    memo = _Memo(collect)
    reader = InMemoryMetricReader(preferred_temporality=CUMULATIVE, cardinality_limits=LIMITS)
    provider = MeterProvider(resource=Resource.create(dict(attrs)), metric_readers=[reader])
    try:
        _instruments(provider, memo)
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    if data is None:
        return 0
    url = metrics_endpoint(endpoint)
    problem = _unreachable(url, min(timeout, 10.0))
    if problem:  # one clear line now, not the SDK's retries and tracebacks for ~20 s
        raise OTLPError(f"cannot connect to the OTLP endpoint {url}: {problem}")
    exp = _StableStart(_exporter(endpoint, headers, timeout), start_ns)
    sdk_log = logging.getLogger("opentelemetry")
    kept = _KeepLast()
    propagate, sdk_log.propagate = sdk_log.propagate, False
    sdk_log.addHandler(kept)
    try:
        res = exp.export(data, timeout_millis=timeout * 1000)
    finally:
        exp.shutdown()
        sdk_log.removeHandler(kept)
        sdk_log.propagate = propagate
    if res is not MetricExportResult.SUCCESS:
        why = f": {kept.last}" if kept.last else ""
        raise OTLPError(f"the OTLP endpoint {url} did not accept the export{why}")
    return _points(data)


class _KeepLast(logging.Handler):
    """Keeps the first line of the SDK's last warning, for a one-line error."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.last = record.getMessage().splitlines()[0][:300]
        except Exception:  # a log record must never break the export
            pass


def _unreachable(url: str, timeout: float) -> str | None:
    """Why a TCP connection to ``url``'s host and port fails (None when it opens)."""
    import socket
    from urllib.parse import urlsplit

    try:
        u = urlsplit(url)
        host, port = u.hostname, u.port or (443 if u.scheme == "https" else 80)
    except ValueError as exc:
        return str(exc)
    if not host:
        return "no host in the URL"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return None


def _points(data: MetricsData) -> int:
    return sum(
        len(getattr(m.data, "data_points", ()))
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )


class Continuous:
    """Periodic export from a running process (``tokmon serve --otlp-endpoint``)."""

    def __init__(
        self,
        collect: Callable[[], Series],
        endpoint: str,
        *,
        attrs: Mapping[str, str],
        start_ns: Callable[[], int],
        headers: Mapping[str, str] | None = None,
        interval: float = 60.0,
    ) -> None:
        memo = _Memo(collect)
        self.exporter = _StableStart(_exporter(endpoint, headers, 10.0), start_ns)
        self.reader = PeriodicExportingMetricReader(
            self.exporter, export_interval_millis=interval * 1000, cardinality_limits=LIMITS
        )
        self.provider = MeterProvider(
            resource=Resource.create(dict(attrs)), metric_readers=[self.reader]
        )
        _instruments(self.provider, memo)

    def stop(self) -> None:
        self.provider.shutdown()


def split_headers(values: Sequence[str]) -> dict[str, str]:
    return parse_pairs(values, "--header")
