"""A real Prometheus (Debian's package) scrapes ``tokmon serve --metrics`` on loopback.

One Prometheus and one tokmon per module (1 s scrape interval). PromQL totals are compared
with ``tokmon daily --json``; a transcript append must show up as exactly its tokens; a
restart must not make any counter go backwards; every Grafana panel's query returns data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, assistant_line, corpus_path, run_tokmon, write_lines

PROMETHEUS = shutil.which("prometheus")
pytestmark = [pytest.mark.slow]
if not (corpus_path() / "projects").is_dir() and not os.environ.get("CI"):
    pytestmark.append(pytest.mark.skip(reason=f"real corpus not found at {corpus_path()}"))
if PROMETHEUS is None:
    if os.environ.get("CI"):
        raise RuntimeError("prometheus is not installed (.ci/steps/80-export.sh installs it)")
    pytestmark.append(pytest.mark.skip(reason="Debian's prometheus package is not installed"))

TIMEOUT = 90.0
BUDGET_USD = 1000.0  # the [[budgets]] entry of the test config (monthly)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(fn: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Stack:
    """tokmon serve --metrics plus a Prometheus scraping it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.claude = root / "claude"
        shutil.copytree(corpus_path(), self.claude)
        self.home = root / "tokmon-home"
        fake_home = root / "home"
        fake_home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
        env.update(
            {
                "TOKMON_HOME": str(self.home),
                "HOME": str(fake_home),
                "TZ": "UTC",
                "CLAUDE_CONFIG_DIR": str(self.claude),
                "NO_COLOR": "1",
                "TOKMON_MACHINE": "ci-box",
                "TOKMON_METRICS_PROVIDERS": "export_budget_provider:gauges",
                "TOKMON_CONFIG": str(root / "config.toml"),
                "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)]),
            }
        )
        self.env = env
        (root / "config.toml").write_text(
            f'[[budgets]]\nname = "monthly"\nperiod = "month"\nusd = {BUDGET_USD}\n'
        )
        self.port = free_port()
        self.prom_port = free_port()
        self.tokmon: subprocess.Popen[bytes] | None = None
        self.prom: subprocess.Popen[bytes] | None = None
        self.appended = 0  # responses appended (dated now) by the tests so far
        self._seed_official()

    def _seed_official(self) -> None:
        from tokmon.core import official
        from tokmon.paths import get_paths

        now = time.time()
        official.record(
            get_paths(self.env),
            {
                "session_id": "official-seed",
                "rate_limits": {
                    "five_hour": {"used_percentage": 42.5, "resets_at": now + 3600},
                    "seven_day": {"used_percentage": 17.0, "resets_at": now + 86400},
                },
            },
            now,
        )

    def start_tokmon(self) -> None:
        log = open(self.root / "tokmon.log", "ab")  # noqa: SIM115 - closed with the process
        self.tokmon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tokmon",
                "serve",
                "--jsonl",
                "--metrics",
                f"127.0.0.1:{self.port}",
            ],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        wait_for(lambda: self.scrape_direct() is not None, "tokmon's /metrics")

    def stop_tokmon(self) -> None:
        p = self.tokmon
        if p is None:
            return
        assert p.stdin is not None
        p.stdin.close()  # EOF ends the JSON-lines service
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
        self.tokmon = None

    @property
    def token_file(self) -> Path:
        return self.home / "state" / "metrics-token"

    def scrape_direct(self, token: str | None = None) -> str | None:
        if token is None:
            if not self.token_file.is_file():
                return None
            token = self.token_file.read_text().strip()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/metrics", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode()  # type: ignore[no-any-return]

    def start_prometheus(self) -> None:
        cfg = self.root / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: tokmon\n    scrape_timeout: 1s\n"
            f"    authorization:\n      credentials_file: {self.token_file}\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{self.port}']\n"
            "        labels: {user: tester}\n"
        )
        log = open(self.root / "prometheus.log", "ab")  # noqa: SIM115
        self.prom = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={cfg}",
                f"--storage.tsdb.path={self.root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.prom_port}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        wait_for(self._ready, "Prometheus to be ready")

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.prom_port}/-/ready", timeout=5) as r:
            return r.status == 200

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.prom_port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        with urllib.request.urlopen(url, timeout=30) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        return doc["data"]["result"]  # type: ignore[no-any-return]

    def scalar(self, expr: str) -> float | None:
        res = self.query(expr)
        if not res:
            return None
        assert len(res) == 1, res
        return float(res[0]["value"][1])

    def stop(self) -> None:
        self.stop_tokmon()
        if self.prom is not None:
            self.prom.terminate()
            try:
                self.prom.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.prom.kill()
                self.prom.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("prom"))
    try:
        s.start_tokmon()
        s.start_prometheus()
        wait_for(lambda: s.scalar('up{job="tokmon"}') == 1.0, "Prometheus to scrape tokmon")
        yield s
    finally:
        s.stop()


def daily_totals(stack: Stack) -> dict[str, Any]:
    r = run_tokmon(["daily", "--json"], stack.env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


TYPES = {
    "input": "inputTokens",
    "output": "outputTokens",
    "cacheCreation": "cacheCreationTokens",
    "cacheRead": "cacheReadTokens",
}


def prom_tokens(stack: Stack) -> dict[str, float]:
    """The four token totals from one moment at which Prometheus holds all of them (a scrape
    that failed under load marks the series stale until the next one)."""

    def sample() -> dict[str, float] | None:
        got = {t: stack.scalar(f'sum(tokmon_tokens_total{{type="{t}"}})') for t in TYPES}
        return {t: v for t, v in got.items() if v is not None} if None not in got.values() else None

    return wait_for(sample, "the four token series")  # type: ignore[no-any-return]


def test_unauthenticated_scrape_is_refused(stack: Stack) -> None:
    import urllib.error

    assert stack.token_file.stat().st_mode & 0o777 == 0o600 or os.name == "nt"
    with pytest.raises(urllib.error.HTTPError) as ei:
        stack.scrape_direct(token="wrong")
    assert ei.value.code == 401
    req = urllib.request.Request(f"http://127.0.0.1:{stack.port}/metrics")
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=30)
    assert ei.value.code == 401


def test_promql_totals_equal_daily_json(stack: Stack) -> None:
    daily = daily_totals(stack)
    tot = daily["totals"]
    assert tot["totalTokens"] > 0
    got = prom_tokens(stack)
    for t, k in TYPES.items():
        assert got[t] == tot[k], (t, got[t], tot[k])
    cost = stack.scalar("sum(tokmon_cost_USD_total)")
    assert cost == pytest.approx(tot["totalCost"], rel=1e-9, abs=1e-6)
    # per model, summed over the days of the report
    want: dict[str, float] = {}
    for day in daily["daily"]:
        for m in day["modelBreakdowns"]:
            want[m["modelName"]] = want.get(m["modelName"], 0) + m["outputTokens"]
    rows = stack.query('sum by (model) (tokmon_tokens_total{type="output"})')
    got_m = {r["metric"]["model"]: float(r["value"][1]) for r in rows}
    assert {k: v for k, v in got_m.items() if v} == {k: v for k, v in want.items() if v}
    # bounded labels: one agent, one machine, at most top_projects (20) + other
    assert {r["metric"]["agent"] for r in stack.query("tokmon_tokens_total")} == {"claude"}
    assert {r["metric"]["machine"] for r in stack.query("tokmon_tokens_total")} == {"ci-box"}
    projects = {r["metric"]["project"] for r in stack.query("tokmon_tokens_total")}
    assert len(projects) <= 21


def append_response(stack: Stack, target: Path) -> None:
    """Append one response dated now (123 + 456 + 789 + 1011 tokens, ids unique per call)."""
    stack.appended += 1
    n = stack.appended
    line = assistant_line(datetime.now(timezone.utc), msg_id=f"msg_export_append_{n}",
                          req_id=f"req_export_append_{n}", inp=123, out=456, cc=789, cr=1011,
                          cwd="/home/u/appended-project")  # fmt: skip
    write_lines(target, [line])


def test_append_shows_exactly_the_new_tokens(stack: Stack) -> None:
    before = prom_tokens(stack)
    cost_before = stack.scalar("sum(tokmon_cost_USD_total)") or 0.0
    transcripts = sorted((stack.claude / "projects").rglob("*.jsonl"))
    target = transcripts[0]
    append_response(stack, target)
    delta = {"input": 123, "output": 456, "cacheCreation": 789, "cacheRead": 1011}

    def arrived() -> bool:
        return (stack.scalar('sum(tokmon_tokens_total{type="input"})') or 0) != before["input"]

    wait_for(arrived, "the appended tokens in Prometheus")
    wait_for(
        lambda: all(v == before[t] + delta[t] for t, v in prom_tokens(stack).items()),
        "all four token types",
    )
    after = prom_tokens(stack)
    assert {t: after[t] - before[t] for t in TYPES} == delta
    # and still equal to the JSON report
    tot = daily_totals(stack)["totals"]
    assert {t: after[t] for t in TYPES} == {t: float(tot[k]) for t, k in TYPES.items()}
    assert (stack.scalar("sum(tokmon_cost_USD_total)") or 0) > cost_before
    # the new project got its own label (the sticky set had room) or went to "other"
    rows = stack.query('tokmon_responses_total{project=~"appended-project|other"}')
    assert rows


def test_gauges_official_and_budget(stack: Stack) -> None:
    rows = stack.query("tokmon_official_used_percent")
    assert {r["metric"]["window"]: float(r["value"][1]) for r in rows} == {"5h": 42.5, "7d": 17.0}
    # the responses appended now (test_append_shows_exactly_the_new_tokens', or one made here
    # when that test has not run) opened an active block holding exactly their tokens
    if not stack.appended:
        append_response(stack, sorted((stack.claude / "projects").rglob("*.jsonl"))[0])
    wait_for(lambda: stack.scalar("tokmon_block_active") == 1.0, "the active block")
    want = stack.appended * (123 + 456 + 789 + 1011)
    wait_for(lambda: stack.scalar("tokmon_block_tokens") == want, f"the block's {want} tokens")
    # a plugin's gauge (TOKMON_METRICS_PROVIDERS) next to the built-in ones
    spent = stack.scalar("sum(tokmon_cost_USD_total)") or 0.0
    ratio = stack.scalar("tokmon_plugin_spend_ratio")
    assert ratio == pytest.approx(spent / 1000.0, rel=1e-6)
    # the configured budget: this month's spend (the monthly report) against its limit
    monthly = run_tokmon(["monthly", "--json"], stack.env)
    assert monthly.returncode == 0, monthly.stderr
    this_month = datetime.now(timezone.utc).strftime("%Y-%m")
    month = next(m for m in json.loads(monthly.stdout)["monthly"] if m["month"] == this_month)
    assert month["totalCost"] > 0  # the appended response
    rows = wait_for(
        lambda: (
            (r := stack.query("tokmon_budget_used_ratio"))
            and float(r[0]["value"][1]) == pytest.approx(month["totalCost"] / BUDGET_USD, rel=1e-9)
            and r
        ),
        "the budget gauge",
        timeout=30,
    )
    assert len(rows) == 1
    assert {k: rows[0]["metric"][k] for k in ("budget", "period", "unit", "machine")} == {
        "budget": "monthly",
        "period": "month",
        "unit": "usd",
        "machine": "ci-box",
    }
    assert stack.scalar("tokmon_budget_limit") == BUDGET_USD
    assert stack.scalar("tokmon_budget_used") == pytest.approx(month["totalCost"], rel=1e-9)


def substitute(expr: str) -> str:
    """Grafana's template variables as the dashboard's defaults would resolve them."""
    subs = {
        "$__rate_interval": "1m",
        "$__range": "10m",
        "$__interval": "15s",
        "${datasource}": "prom",
        "$person": "user",
        "$user": ".*",
        "$machine": ".*",
    }
    for k in sorted(subs, key=len, reverse=True):
        expr = expr.replace(k, subs[k])
    assert "$" not in expr, expr
    return expr


def test_grafana_dashboard_queries_return_data(stack: Stack) -> None:
    dash = json.loads((REPO / "integrations" / "grafana" / "tokmon.json").read_text())
    exprs = [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for word in ("person", "model", "project", "agent", "burn rate", "official", "budget"):
        assert word in titles, word
    # template variable queries too
    for var in dash["templating"]["list"]:
        q = var.get("query")
        if isinstance(q, dict):
            m = re.fullmatch(r"label_values\((\w+), *(\$?\w+)\)", q["query"])
            assert m, q
            label = substitute(m.group(2))
            assert stack.query(f"count by ({label}) ({m.group(1)})"), var["name"]
    # two scrapes at least 10 s apart exist for increase()/rate() over the ranges
    wait_for(
        lambda: (stack.scalar('count_over_time(up{job="tokmon"}[1m])') or 0) >= 10, "ten scrapes"
    )
    empty = [(title, e) for title, e in exprs if not stack.query(substitute(e))]
    assert not empty, f"panels without data: {empty}"


def test_restart_never_decreases_a_counter(stack: Stack) -> None:
    before = {
        json.dumps(r["metric"], sort_keys=True): float(r["value"][1])
        for r in stack.query('{__name__=~"tokmon_(tokens|cost_USD|responses)_total"}')
    }
    assert before
    scrapes = stack.scalar('count_over_time(up{job="tokmon"}[10m])') or 0
    stack.stop_tokmon()
    wait_for(lambda: stack.scalar('up{job="tokmon"}') == 0.0, "Prometheus to see tokmon down")
    stack.start_tokmon()
    wait_for(lambda: stack.scalar('up{job="tokmon"}') == 1.0, "Prometheus to see tokmon again")
    wait_for(
        lambda: (stack.scalar('count_over_time(up{job="tokmon"}[10m])') or 0) > scrapes + 3,
        "scrapes after the restart",
    )
    for name in ("tokmon_tokens_total", "tokmon_cost_USD_total", "tokmon_responses_total"):
        assert stack.query(f"resets({name}[10m])"), name  # the series exist over the restart
        assert stack.query(f"resets({name}[10m]) > 0") == [], name
    after = {
        json.dumps(r["metric"], sort_keys=True): float(r["value"][1])
        for r in stack.query('{__name__=~"tokmon_(tokens|cost_USD|responses)_total"}')
    }
    for k, v in before.items():
        assert after.get(k, -1.0) >= v, k
    assert sum(after.values()) == pytest.approx(sum(before.values()))


def test_imported_machine_shows_up_without_restart(stack: Stack) -> None:
    """`tokmon ledger import` into the running server's ledger: the next scrape has it."""
    doc = {
        "format": "tokmon-ledger-export",
        "version": 1,
        "records": [
            [
                time.time() - 60,
                "imported-session",
                "/remote/proj",
                "claude-sonnet-4-5-20250929",
                11,
                22,
                33,
                0,
                44,
                "msg_remote:req_remote",
                0.0,
                None,
                "remote-box",
            ]
        ],
    }
    f = stack.root / "remote.json"
    f.write_text(json.dumps(doc))
    r = run_tokmon(["ledger", "import", str(f)], stack.env)
    assert r.returncode == 0, r.stderr

    def remote() -> float:
        text = stack.scrape_direct() or ""
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("tokmon_tokens_total{") and 'machine="remote-box"' in line
        )

    assert wait_for(remote, "the imported machine's series") == 11 + 22 + 33 + 44


def _doc_yaml(heading: str) -> str:
    """The first ```yaml block after ``heading`` in docs/team.md."""
    text = (REPO / "docs" / "team.md").read_text(encoding="utf-8")
    start = text.index(heading)
    m = re.search(r"```yaml\n(.*?)```", text[start:], re.S)
    assert m, heading
    return m.group(1)


def test_documented_alerting_rules_load_and_evaluate(stack: Stack) -> None:
    """docs/team.md's example rules: Prometheus's own promtool accepts them, and every rule's
    expression's left side selects live series (a wrong metric name or label filter
    would select nothing)."""
    rules = stack.root / "rules.yml"
    rules.write_text(_doc_yaml("## Example alerting rules"))
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package"
    r = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    names = re.findall(r"- alert: (\w+)", rules.read_text())
    exprs = dict(zip(names, re.findall(r"expr: (.+)", rules.read_text()), strict=True))
    assert len(exprs) >= 5
    for name, expr in exprs.items():
        # the comparison dropped: the left side must select live series
        left = re.split(r"\s[<>=!]=?\s", expr)[0]
        assert stack.query(left), (name, left)
