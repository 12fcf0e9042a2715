"""The dashboard's pieces without a browser: CLI refusals, query params, the guard, the series
method against the daily report, the export's escaping."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_server_support import REF_COST, corpus_path, server_env

from tokmon.service import InvalidParams, Service
from tokmon.web.app import Guard, query_params
from tokmon.web.export import render


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Service:
    root = tmp_path_factory.mktemp("webapi")
    corpus = root / "claude"
    shutil.copytree(corpus_path(), corpus)
    svc = Service(env=server_env(root, corpus))
    svc.start()
    return svc


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["web", "--no-open", "--host", "0.0.0.0"], "--host: refusing to listen on 0.0.0.0"),
        (["web", "--no-open", "--host", "192.168.1.10"], "only loopback"),
        (["web", "--no-open", "--host", "example.com"], "not a loopback"),
        (["web", "--no-open", "--port", "70000"], "--port"),
    ],
)
def test_web_refuses_non_loopback_and_bad_ports(cli: Any, argv: list[str], msg: str) -> None:
    res = cli(*argv)
    assert res.code == 2
    assert msg in res.err and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1


def test_report_needs_a_file(cli: Any) -> None:
    res = cli("report")
    assert res.code == 2 and "--html" in res.err


def test_report_into_a_missing_folder_is_refused(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "typo" / "dir" / "r.html"
    res = cli("report", "--html", str(out))
    assert res.code == 2 and "no folder" in res.err and "Traceback" not in res.err
    assert not (tmp_path / "typo").exists()


def test_query_params_types() -> None:
    got = query_params(
        [
            ("limit", "5"),
            ("active", "true"),
            ("recent", "0"),
            ("tag", "42"),
            ("tokenLimit", "max"),
            ("token", "secret"),
            ("project", "a b"),
        ]
    )
    assert got == {
        "limit": 5,
        "active": True,
        "recent": False,
        "tag": "42",
        "tokenLimit": "max",
        "project": "a b",
    }
    assert query_params([("tokenLimit", "1000")]) == {"tokenLimit": 1000}
    assert query_params([("limit", "x")]) == {"limit": "x"}  # the service rejects it


def test_guard_hosts_and_secret() -> None:
    g = Guard("s3cret", 8123)
    for ok in ("127.0.0.1:8123", "localhost:8123", "LOCALHOST:8123", "[::1]:8123"):
        assert g.host_ok(ok)
    for bad in (None, "", "127.0.0.1", "127.0.0.1:8124", "evil.com:8123", "127.0.0.1:8123.evil"):
        assert not g.host_ok(bad)
    assert g.matches("s3cret") and not g.matches("s3cre") and not g.matches(None)
    assert g.cookie == "tokmon-web-8123"


@pytest.mark.parametrize("tz", ["UTC", "Pacific/Kiritimati", "America/Adak"])
def test_series_by_model_equals_the_daily_report(service: Service, tz: str) -> None:
    """Every (day, model) cell equals the daily report's model breakdown (another code path)."""
    series, _ = service.call(
        "tokmon/series", {"period": "day", "by": "model", "limit": 50, "timezone": tz}
    )
    daily, _ = service.call("tokmon/daily", {"timezone": tz})
    want: dict[tuple[str, str], float] = {}
    for d in daily["daily"]:
        for b in d["modelBreakdowns"]:
            want[(d["date"], b["modelName"])] = b["cost"]
    got: dict[tuple[str, str], float] = {}
    for s in series["series"]:
        for day, cost in zip(series["buckets"], s["cost"], strict=True):
            if cost:
                got[(day, s["key"])] = cost
    assert set(got) == {k for k, v in want.items() if v}
    for k, v in got.items():
        assert v == pytest.approx(want[k], abs=1e-9), k
    assert sum(s["totalCost"] for s in series["series"]) == pytest.approx(REF_COST, abs=1e-3)


def test_series_weeks_other_and_ranges(service: Service) -> None:
    full, _ = service.call("tokmon/series", {"period": "week", "by": "project"})
    buckets = full["buckets"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", b) for b in buckets)
    # consecutive weeks, no gaps
    from datetime import date

    steps = {
        (date.fromisoformat(b) - date.fromisoformat(a)).days
        for a, b in zip(buckets, buckets[1:], strict=False)
    }
    assert steps == {7}
    two, _ = service.call("tokmon/series", {"period": "week", "by": "project", "limit": 2})
    assert len(two["series"]) == 2 and two["series"][1]["key"] is None
    assert two["series"][1]["label"].startswith("other (")
    assert sum(s["totalCost"] for s in two["series"]) == pytest.approx(
        sum(s["totalCost"] for s in full["series"])
    )
    first_day = service.call("tokmon/daily")[0]["daily"][0]["date"]
    one, _ = service.call("tokmon/series", {"since": first_day, "until": first_day})
    assert one["buckets"] == [first_day]
    empty, _ = service.call("tokmon/series", {"since": "2001-01-01", "until": "2001-01-02"})
    assert empty["buckets"] == [] and empty["series"] == []
    for bad in (
        {"period": "month"},
        {"by": "session"},
        {"limit": 0},
        {"since": "yesterday"},
        {"colour": "red"},
    ):
        with pytest.raises(InvalidParams):
            service.call("tokmon/series", bad)


def test_official_without_figures(service: Service) -> None:
    assert service.call("tokmon/official")[0] == {"latest": None, "history": []}


def test_export_escapes_untrusted_text_and_inlines_everything() -> None:
    evil = "</script><script>window.__xss=1</script>\u2028"
    data = {
        "generatedAt": "2026-01-01T00:00:00.000Z",
        "summary": {"title": evil},
        "sessions": {"sessions": [{"name": evil}]},
        "series": {},
        "sessionDetails": {},
    }
    html = render(data)
    assert html.count("<script>") == 3 and html.count("</script>") == 3
    assert evil not in html and "\\u003c/script>\\u003cscript>" in html
    assert not re.findall(r'(?:src|href)="(?!data:|#)', html)
    assert "Chart.js v4" in html or "Chart.js" in html


def test_export_file_is_private(cli: Any, tmp_path: Path) -> None:
    corpus_copy = tmp_path / "claude"
    shutil.copytree(corpus_path(), corpus_copy)
    out = tmp_path / "r.html"
    res = cli("report", "--html", str(out), extra_env={"CLAUDE_CONFIG_DIR": str(corpus_copy)})
    assert res.code == 0, res.err
    text = out.read_text(encoding="utf-8")
    assert "window.TOKMON_EMBED=" in text

    if os.name != "nt":
        assert out.stat().st_mode & 0o777 == 0o600


def test_busy_port_is_one_line(cli: Any) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        res = cli("web", "--no-open", "--port", str(port))
    assert res.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in res.err
    assert len(res.err.strip().splitlines()) == 1
