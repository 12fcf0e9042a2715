"""OTLP/HTTP export into a local receiver that decodes with the official protobuf definitions
(``opentelemetry-proto``): totals equal the JSON report, a second backfill adds nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus_path, run_tokmon
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

pytestmark = pytest.mark.skipif(
    not (corpus_path() / "projects").is_dir() and not os.environ.get("CI"),
    reason=f"real corpus not found at {corpus_path()}",
)

TYPES = {
    "input": "inputTokens",
    "output": "outputTokens",
    "cacheCreation": "cacheCreationTokens",
    "cacheRead": "cacheReadTokens",
}


class Receiver:
    """A minimal OTLP/HTTP metrics receiver (protobuf bodies on /v1/metrics)."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        self.paths: list[str] = []
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip

                    body = gzip.decompress(body)
                req = ExportMetricsServiceRequest()
                req.ParseFromString(body)
                recv.paths.append(self.path)
                recv.requests.append(req)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def points(req: ExportMetricsServiceRequest, name: str) -> list[Any]:
    out = []
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind)
                    if kind == "sum":
                        assert (
                            data.aggregation_temporality
                            == AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
                        )
                        assert data.is_monotonic
                    out.extend(data.data_points)
    return out


def attrs(kvs: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in kvs}


def value(p: Any) -> float:
    return float(p.as_int if p.WhichOneof("value") == "as_int" else p.as_double)


def series(req: ExportMetricsServiceRequest, name: str) -> dict[tuple[tuple[str, str], ...], Any]:
    return {tuple(sorted(attrs(p.attributes).items())): p for p in points(req, name)}


@pytest.fixture
def corpus_env(env: dict[str, str], corpus_copy: Path, tmp_path: Path) -> dict[str, str]:
    cfg = tmp_path / "otlp-config.toml"
    cfg.write_text('[[budgets]]\nname = "all-time-ish"\nperiod = "month"\nusd = 500.0\n')
    return {
        **env,
        "CLAUDE_CONFIG_DIR": str(corpus_copy),
        "TOKMON_MACHINE": "otlp-box",
        "TOKMON_CONFIG": str(cfg),
    }


def test_backfill_totals_and_idempotence(corpus_env: dict[str, str], receiver: Receiver) -> None:
    argv = ["export", "otlp", "--endpoint", receiver.url]
    argv += ["--resource-attr", "team=infra", "--resource-attr", "repo=tokmon"]
    r = run_tokmon(argv, corpus_env)
    assert r.returncode == 0, r.stderr
    assert len(receiver.requests) == 1
    assert receiver.paths == ["/v1/metrics"]
    req = receiver.requests[0]
    res = attrs(req.resource_metrics[0].resource.attributes)
    assert res["service.name"] == "tokmon"
    assert res["team"] == "infra" and res["repo"] == "tokmon"
    assert res["tokmon.machine"] == "otlp-box"
    assert res["host.name"] and res["user.name"]
    # no claude_code.* names: tokmon's own metrics only
    names = {m.name for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {"tokmon.tokens", "tokmon.cost", "tokmon.responses"} <= names
    assert not any(n.startswith("claude_code") for n in names)

    daily = run_tokmon(["daily", "--json"], corpus_env)
    assert daily.returncode == 0, daily.stderr
    tot = json.loads(daily.stdout)["totals"]
    by_type: dict[str, float] = {}
    for p in points(req, "tokmon.tokens"):
        t = attrs(p.attributes)["type"]
        by_type[t] = by_type.get(t, 0) + value(p)
    assert by_type == {t: float(tot[k]) for t, k in TYPES.items()}
    cost = sum(value(p) for p in points(req, "tokmon.cost"))
    assert cost == pytest.approx(tot["totalCost"], rel=1e-9, abs=1e-6)
    # the configured budget's gauges: this month's spend (the monthly report) and the limit
    monthly = json.loads(run_tokmon(["monthly", "--json"], corpus_env).stdout)["monthly"]
    from datetime import datetime, timezone

    this_month = datetime.now(timezone.utc).strftime("%Y-%m")
    spent = sum(m["totalCost"] for m in monthly if m["month"] == this_month)
    (limit,) = points(req, "tokmon.budget_limit")
    assert value(limit) == 500.0
    assert attrs(limit.attributes) == {
        "budget": "all-time-ish",
        "period": "month",
        "unit": "usd",
        "machine": "otlp-box",
    }
    (used,) = points(req, "tokmon.budget_used")
    assert value(used) == pytest.approx(spent, abs=1e-9)

    # a second backfill: the same cumulative values with the same start time, so a backend
    # computing increases sees none
    r2 = run_tokmon(argv, corpus_env)  # the same command again
    assert r2.returncode == 0, r2.stderr
    assert len(receiver.requests) == 2
    for name in ("tokmon.tokens", "tokmon.cost", "tokmon.responses"):
        first, second = series(receiver.requests[0], name), series(receiver.requests[1], name)
        assert first.keys() == second.keys()
        for k, p in first.items():
            q = second[k]
            assert value(q) - value(p) == 0, (name, k)
            assert q.start_time_unix_nano == p.start_time_unix_nano
            assert q.time_unix_nano >= p.time_unix_nano


def test_unreachable_endpoint_is_one_line(corpus_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:  # bound, never listening: refused, and no one else can take it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = run_tokmon(
            ["export", "otlp", "--endpoint", f"http://127.0.0.1:{port}", "--timeout", "2"],
            corpus_env,
            timeout=180,
        )
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "cannot connect to the OTLP endpoint" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    bad = run_tokmon(["export", "otlp", "--endpoint", "ftp://x"], corpus_env)
    assert bad.returncode == 2 and "http(s) URL" in bad.stderr


@pytest.mark.slow
def test_serve_exports_continuously(
    corpus_env: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tokmon",
            "serve",
            "--jsonl",
            "--otlp-endpoint",
            receiver.url,
            "--otlp-interval",
            "0.5",
            "--resource-attr",
            "team=x",
        ],
        env=corpus_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(receiver.requests) < 2:
            time.sleep(0.2)
        assert len(receiver.requests) >= 2, (tmp_path / "serve.log").read_text()
    finally:
        assert p.stdin is not None
        p.stdin.close()
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    tot = json.loads(run_tokmon(["daily", "--json"], corpus_env).stdout)["totals"]
    last = receiver.requests[-1]
    assert sum(value(q) for q in points(last, "tokmon.tokens")) == tot["totalTokens"]
    assert attrs(last.resource_metrics[0].resource.attributes)["team"] == "x"
