"""Prometheus exposition: a custom collector over :class:`SeriesSource` and a small HTTP
endpoint on loopback that requires a secret (bearer token or basic-auth password).

The secret lives in ``<state dir>/metrics-token`` (0600, created on first use); point
Prometheus at it with ``authorization: {credentials_file: ...}`` (see docs/team.md).
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from tokmon.export.series import Series, SeriesSource

log = logging.getLogger("tokmon.export")

PREFIX = "tokmon_"
TOKEN_FILE = "metrics-token"


class TokmonCollector(Collector):
    """Yields tokmon's metric families from a series function (called per scrape)."""

    def __init__(self, collect: Callable[[], Series]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Any]:
        s = self._collect()
        by_model = ["agent", "model", "project", "machine"]
        yield _counter(
            "tokens",
            "tokens used (cumulative, from the ledger)",
            ["agent", "model", "type", "project", "machine"],
            s.tokens.items(),
        )
        yield _counter(
            "cost_USD", "cost in USD (cumulative, from the ledger)", by_model, s.cost.items()
        )
        yield _counter("responses", "API responses (deduplicated)", by_model, s.responses.items())
        if s.session_tokens:
            yield _counter(
                "session_tokens",
                "tokens per session (opt-in; sessions of the last 7 days)",
                ["session", "project", "machine"],
                s.session_tokens.items(),
            )
        fams: dict[str, GaugeMetricFamily] = {}
        keys: dict[str, list[str]] = {}
        for g in s.gauges:
            fam = fams.get(g.name)
            if fam is None:
                keys[g.name] = sorted(g.labels)
                fam = fams[g.name] = GaugeMetricFamily(PREFIX + g.name, g.help, labels=keys[g.name])
            elif sorted(g.labels) != keys[g.name]:  # e.g. a plugin reusing a built-in name
                log.warning("metrics: skipping %s with other labels %s", g.name, sorted(g.labels))
                continue
            fam.add_metric([g.labels[k] for k in keys[g.name]], g.value)
        yield from fams.values()


def _counter(
    name: str, doc: str, labels: list[str], items: Iterable[tuple[tuple[str, ...], float]]
) -> CounterMetricFamily:
    """A counter family with one sample per (label values, value) of ``items``, sorted."""
    fam = CounterMetricFamily(PREFIX + name, doc, labels=labels)
    for k, v in sorted(items):
        fam.add_metric(list(k), float(v))
    return fam


def build_registry(collect: Callable[[], Series]) -> CollectorRegistry:
    """A registry holding only tokmon's collector (no process/platform defaults)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(TokmonCollector(collect))
    return reg


def exposition(source: SeriesSource) -> bytes:
    """The text exposition of ``source`` right now (for ``tokmon export prometheus``)."""
    return generate_latest(build_registry(source.collect))


# -- the secret ------------------------------------------------------------------------------


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE


def load_or_create_token(state_dir: Path) -> tuple[str, Path]:
    """The scrape secret and its file (created 0600 with 32 random bytes if missing)."""
    from tokmon.fsutil import atomic_write

    path = token_path(state_dir)
    try:
        tok = path.read_text(encoding="utf-8").strip()
        if tok:
            return tok, path
    except (OSError, UnicodeDecodeError):
        pass
    tok = secrets.token_urlsafe(32)
    atomic_write(path, (tok + "\n").encode())
    return tok, path


def authorized(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>`` or Basic with the token as password."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            user_pass = base64.b64decode(value, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        _, _, password = user_pass.partition(":")
        return hmac.compare_digest(password.encode(), token.encode())
    return False


# -- listener --------------------------------------------------------------------------------


class NotReady(RuntimeError):
    """The service has not finished its first scan (answered with 503)."""


class AddressError(ValueError):
    """A bad or non-loopback listen address (one-line message)."""


def parse_listen(
    value: str, allow_remote: bool = False, remote_flag: str = "--metrics-allow-remote"
) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT``); loopback only unless ``allow_remote``."""
    host, sep, port_s = value.rpartition(":")
    if not sep or not host:
        raise AddressError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]")
    try:
        port = int(port_s)
    except ValueError:
        raise AddressError(f"invalid port {port_s!r}") from None
    if not 0 <= port <= 65535:
        raise AddressError(f"port must be 0-65535, got {port}")
    if host.lower() == "localhost":
        return "127.0.0.1", port
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise AddressError(f"{host!r} is not an IP address") from None
    if not ip.is_loopback and not allow_remote:
        raise AddressError(
            f"refusing to listen on {host}: loopback only "
            f"(add {remote_flag} to expose it; the token still applies)"
        )
    return str(ip), port


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # quick restarts on POSIX; on Windows SO_REUSEADDR would let another process bind the
    # same port and receive the scrapes (with their bearer token)
    allow_reuse_address = os.name != "nt"


class MetricsServer:
    """Serves ``/metrics`` on a loopback address in a daemon thread."""

    def __init__(
        self,
        collect: Callable[[], Series],
        host: str,
        port: int,
        token: str,
        before_scrape: Callable[[], None] | None = None,
    ) -> None:
        registry = build_registry(collect)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            server_version = "tokmon"

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("metrics: " + fmt, *args)

            def _send(
                self,
                code: int,
                body: bytes,
                ctype: str = "text/plain; charset=utf-8",
                extra: dict[str, str] | None = None,
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self._send(404, b"not found: try /metrics\n")
                    return
                if not authorized(self.headers.get("Authorization"), token):
                    self._send(
                        401,
                        b"unauthorized: send the token from the metrics-token file\n",
                        extra={"WWW-Authenticate": 'Bearer realm="tokmon"'},
                    )
                    return
                try:
                    with lock:
                        if before_scrape is not None:
                            before_scrape()
                        body = generate_latest(registry)
                except NotReady as exc:
                    self._send(503, f"{exc}\n".encode())
                    return
                except Exception as exc:  # never kill the listener
                    log.warning("metrics scrape failed: %s", exc)
                    self._send(500, f"tokmon metrics failed: {exc}\n".encode())
                    return
                self._send(200, body, CONTENT_TYPE_LATEST)

            do_HEAD = do_GET  # noqa: N815

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class _S(_Server):
            address_family = family

        self.httpd = _S((host, port), Handler)
        self.host = host
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="tokmon-metrics", daemon=True
        )

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
