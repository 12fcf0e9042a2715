"""`tokmon web` with other agents' data: spend stacked by agent, the sessions table's Agent
column and filter, and the overview's per-agent totals (a real server, a real headless
Chromium, copies of the Claude, Codex and Amp corpora).

The figures on the page equal the API's, which equal ``tokmon daily --agent all --json``
summed per agent; the Codex and Amp token totals are the agents corpus README's /
docs/agents/README.md's (independent recounts).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_web_dashboard as dash
from conftest import need_both_corpora, sum_by_agent
from test_server_support import server_env
from test_web_dashboard import WebServer, goto, wait_for

pytestmark = pytest.mark.slow
browser = dash.browser  # the dashboard tests' headless Chromium (a module-scoped fixture)
shots = dash.shots  # where screenshots go ($TOKMON_SCREENSHOTS or a temp dir)

CODEX_TOTAL = 71_217_150  # docs/agents/README.md: the exact Codex count
AMP_TOTAL = 114_201  # agents corpus README (ccusage 20.0.24 agrees)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    claude_src, agents = need_both_corpora()
    tmp = tmp_path_factory.mktemp("web-agents")
    claude = tmp / "claude"
    shutil.copytree(claude_src, claude)
    codex, amp = tmp / "codex", tmp / "amp"
    shutil.copytree(agents / "codex", codex)
    shutil.copytree(agents / "amp", amp)
    return server_env(tmp, claude, CODEX_HOME=str(codex), AMP_DATA_DIR=str(amp))


@pytest.fixture(scope="module")
def server(env: dict[str, str]) -> Iterator[WebServer]:
    s = WebServer(env)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def report(env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per agent ``{cost, tokens}`` summed from the rows of ``tokmon daily --agent all --json``."""
    res = subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--agent", "all", "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return sum_by_agent(json.loads(res.stdout))


def test_report_has_the_three_agents(report: dict[str, dict[str, float]]) -> None:
    assert set(report) == {"claude", "codex", "amp"}
    assert report["codex"]["tokens"] == CODEX_TOTAL
    assert report["amp"]["tokens"] == AMP_TOTAL


def test_series_by_agent_equals_the_report(
    server: WebServer, report: dict[str, dict[str, float]]
) -> None:
    for period in ("day", "week"):
        series = server.get(f"/api/series?period={period}&by=agent")
        assert series["by"] == "agent"
        got = {s["key"]: s for s in series["series"]}
        assert set(got) == set(report)
        for name, want in report.items():
            assert got[name]["totalCost"] == pytest.approx(want["cost"], abs=1e-9)
            assert sum(got[name]["totalTokens"]) == want["tokens"]
    # by model stays Claude Code's (unchanged shape and money)
    by_model = server.get("/api/series?period=day&by=model")["series"]
    assert sum(s["totalCost"] for s in by_model) == pytest.approx(report["claude"]["cost"])


def test_overview_shows_per_agent_totals(
    server: WebServer, browser: Any, report: dict[str, dict[str, float]], shots: Path
) -> None:
    browser.get(server.url)
    wait_for(
        lambda: browser.execute_script("return document.body.dataset.ready") == "1",
        what="first render",
    )
    api = server.get("/api/summary")["agents"]
    assert set(api) == set(report)
    assert browser.find_element("id", "agents-card").is_displayed()

    def rows() -> dict[str, list[float]]:
        out = {}
        for tr in browser.find_elements("css selector", "#agents-table tbody tr"):
            tds = tr.find_elements("css selector", "td.num")
            out[tr.get_attribute("data-agent")] = [
                float(t.get_attribute("data-value")) for t in tds
            ]
        return out

    got = wait_for(lambda: rows() if len(rows()) == len(api) else None, what="agents table")
    for name, body in api.items():
        today, total = body["today"], body["totals"]
        assert got[name] == [today["totalCost"], today["totalTokens"], total["totalCost"],
                             total["totalTokens"]]  # fmt: skip
        assert total["totalCost"] == pytest.approx(report[name]["cost"], abs=1e-9)
        assert total["totalTokens"] == report[name]["tokens"]
    assert got["codex"][3] == CODEX_TOTAL and got["amp"][3] == AMP_TOTAL
    browser.save_screenshot(str(shots / "agents-overview-1280x800.png"))


def test_spend_stacked_by_agent_equals_the_api(
    server: WebServer, browser: Any, report: dict[str, dict[str, float]], shots: Path
) -> None:
    goto(browser, server, "#/spend")
    browser.find_element("css selector", "#spend-range button[data-v='all']").click()
    browser.find_element("css selector", "#spend-period button[data-v='day']").click()
    browser.find_element("css selector", "#spend-by button[data-v='agent']").click()
    series = server.get("/api/series?period=day&by=agent")["series"]

    def table() -> list[float]:
        cells = browser.find_elements("css selector", "#spend-table tbody td.num")
        return [float(c.get_attribute("data-value")) for c in cells]

    labels = lambda: browser.execute_script(  # noqa: E731
        "const c = Chart.getChart(document.getElementById('spend-chart'));"
        "return c ? c.data.datasets.map(d => [d.label, d.stack]) : null"
    )
    wait_for(lambda: labels() == [[s["label"], "cost"] for s in series], what="chart by agent")
    got = wait_for(lambda: table() if len(table()) == len(series) else None, what="spend table")
    assert got == pytest.approx([s["totalCost"] for s in series])
    assert got == pytest.approx([report[s["key"]]["cost"] for s in series])
    browser.save_screenshot(str(shots / "agents-spend-1280x800.png"))


def test_sessions_table_agent_column_and_filter(server: WebServer, browser: Any) -> None:
    from selenium.webdriver.support.ui import Select

    goto(browser, server, "#/sessions")
    api = server.get("/api/sessions")["sessions"]
    rows = lambda: browser.find_elements("css selector", "#sessions-table tbody tr")  # noqa: E731
    wait_for(lambda: len(rows()) == min(len(api), 200), what="session rows")
    header = [th.text for th in browser.find_elements("css selector", "#sessions-table th")]
    assert "Agent" in header
    for agent in ("codex", "amp", "claude"):
        want = {r["sessionId"] for r in api if r["agent"] == agent}
        assert want, agent
        Select(browser.find_element("id", "f-agent")).select_by_value(agent)
        wait_for(lambda w=want: len(rows()) == min(len(w), 200), what=f"{agent} filter")
        shown = rows()
        assert {r.get_attribute("data-session-id") for r in shown} <= want
        cells = {r.find_element("css selector", "td.agent").get_attribute("textContent")
                 for r in shown}  # fmt: skip
        assert cells == {agent}
    Select(browser.find_element("id", "f-agent")).select_by_value("")
    wait_for(lambda: len(rows()) == min(len(api), 200), what="filter cleared")


def test_export_embeds_the_agent_series(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    res = subprocess.run(
        [sys.executable, "-m", "tokmon", "report", "--html", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    html = out.read_text(encoding="utf-8")
    assert '"day/agent"' in html and '"week/agent"' in html
