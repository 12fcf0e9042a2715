"""`tokmon web` end to end: a real server process, a real headless Chromium (selenium).

One server and one browser for the module. Each test sets up what it reads (an append of its
own for the current block, figures read back from the API rather than the module's first
payloads) and the SIGTERM test stops a server of its own, so the tests pass in any order
(checked in reverse and shuffled orders, docs/review/terminal-eighth-session.md). Screenshots go to
``$TOKMON_SCREENSHOTS`` (or a temp dir) and are meant to be looked at.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from test_server_support import (
    REF_COST,
    REF_SESSIONS,
    append,
    corpus_path,
    server_env,
    session_of,
    usage_line,
)

# published Sonnet 4.5 prices: $3 / M input, $15 / M output
SONNET_IN, SONNET_OUT = 3e-6, 15e-6

pytestmark = pytest.mark.slow

OFFICIAL = [("official-a", 17.0, 33.0), ("official-b", 42.0, 35.0)]  # (session, 5 h %, 7 d %)
OPUS_7D = 12.0  # the per-model weekly window of the last payload
WEEK = 7 * 86400.0
BUDGET_USD = 750.0
EARLIER_7D = [(6.5, 48.0), (4.5, 71.0), (1.5, 22.0)]  # (days ago, 7-day %) before the payloads
ALERT_AT = 65.0  # the [alerts] official threshold (crossed by the alert test's 5-hour figure)
APPENDED: list[float] = []  # the cost of each response a test appended to the module's corpus


def append_priced(path: Path, sid: str, cwd: str, inp: int, out: int) -> float:
    """Append one Sonnet 4.5 response to the module's corpus, its cost (published prices)
    counted for :func:`ref_cost`; the ``append`` clock."""
    t0 = append(path, usage_line(sid, cwd, inp=inp, out=out))
    APPENDED.append(inp * SONNET_IN + out * SONNET_OUT)
    return t0


def ref_cost() -> float:
    """The module corpus' total now: ccusage's for the corpus plus what the tests appended."""
    return REF_COST + sum(APPENDED)


def _chromedriver() -> str | None:
    return shutil.which("chromedriver")


def _need_browser() -> None:
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if not _chromedriver() or not (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    ):
        missing.append("chromium + chromium-driver (.ci/steps/70-web.sh)")
    if missing:
        msg = "web tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


class WebServer:
    """``python -m tokmon web --no-open --port 0`` and what it printed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tokmon", "web", "--no-open", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        try:
            first = lines.get(timeout=60)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError("tokmon web printed no URL within 60 s") from None
        assert first.startswith("tokmon web: http://127.0.0.1:"), first
        self.url = first.split(": ", 1)[1].strip()
        parts = urlsplit(self.url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.port = parts.port
        self.token = parts.query.split("token=", 1)[1]
        # wait for the first scan: the API answers once the service is ready
        self.get("/api/summary", timeout=120)

    def get(self, path: str, timeout: float = 30) -> Any:
        req = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def raw(
        self,
        path: str,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("web") / "claude"
    shutil.copytree(corpus_path(), dest)
    return dest


def statusline(env: dict[str, str], payload: dict[str, Any]) -> None:
    """Hand ``payload`` to ``tokmon line --claude`` as Claude Code's statusLine does."""
    res = subprocess.run(
        [sys.executable, "-m", "tokmon", "line", "--claude"],
        env=env,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def env(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return official_env(corpus, tmp_path_factory.mktemp("web-home"))


def official_env(corpus: Path, home: Path) -> dict[str, str]:
    """A server's environment over ``corpus``: the module's official figures and their
    history recorded, a budget and an alert threshold configured."""
    e = server_env(home, corpus)
    # official 5 h / 7 d figures as Claude Code's statusLine hands them over (two sessions,
    # so the history has two points)
    now = time.time()
    e["TOKMON_TEST_SEVEN_DAY_RESET"] = str(now + 5 * 86400)  # read back by the limits tests
    # earlier 7-day figures, as statusline runs on earlier days recorded them
    from tokmon.limits import history
    from tokmon.paths import get_paths

    reset = now + 5 * 86400
    with history.opened(get_paths(e)) as con:
        history.append(con, [
            history.Obs(now - d * 86400, "claude", "seven_day", used,
                        reset if now - d * 86400 >= reset - WEEK else reset - WEEK, WEEK)
            for d, used in EARLIER_7D
        ])  # fmt: skip
    for sid, five, seven in OFFICIAL:
        payload = {
            "session_id": sid,
            "rate_limits": {
                "five_hour": {"used_percentage": five, "resets_at": now + 3600},
                "seven_day": {"used_percentage": seven, "resets_at": now + 5 * 86400},
                "seven_day_opus": {"used_percentage": OPUS_7D, "resets_at": now + 5 * 86400},
            },
        }
        statusline(e, payload)
        time.sleep(0.01)  # distinct observedAt
    # a budget, so the limits card has one to show
    cfg = subprocess.run(
        [sys.executable, "-m", "tokmon", "config", "path"],
        env=e,
        capture_output=True,
        text=True,
        timeout=60,
    )
    cfg_path = Path(cfg.stdout.strip())
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    with cfg_path.open("a", encoding="utf-8") as f:
        f.write(f'\n[[budgets]]\nname = "monthly"\nperiod = "month"\nusd = {BUDGET_USD}\n')
        # one official threshold that only test_alert_banner_from_the_live_stream crosses
        f.write(
            f"\n[alerts]\nofficial = [{ALERT_AT}]\nprojected = []\nbudgets = []\n"
            "terminal = false\ndesktop = false\n"
        )
    return e


@pytest.fixture(scope="module")
def server(env: dict[str, str]) -> Iterator[WebServer]:
    s = WebServer(env)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = os.environ.get("TOKMON_SCREENSHOTS")
    p = Path(d) if d else tmp_path_factory.mktemp("screenshots")
    p.mkdir(parents=True, exist_ok=True)
    return p


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    opts = webdriver.ChromeOptions()
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,800",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-extensions",
        "--lang=en-US",
    ):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        opts.binary_location = binary
    drv = webdriver.Chrome(options=opts, service=DriverService(executable_path=_chromedriver()))
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()


def wait_for(pred: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``pred`` until truthy (generous timeouts; CI is a loaded 2-core machine)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except Exception as exc:  # element not there yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}"[:1000])


def dom_value(drv: Any, elem_id: str) -> float:
    return float(drv.find_element("id", elem_id).get_attribute("data-value"))


def goto(drv: Any, server: WebServer, route: str) -> None:
    """Show the view ``route`` names, opening the dashboard first when the browser is not on
    it (so a test passes alone, not only after the one that loads the page)."""
    if not drv.current_url.startswith(server.base + "/"):
        drv.get(server.url)
    drv.execute_script("location.hash = arguments[0]", route)
    view = route.strip("#/").split("/")[0] or "overview"
    try:
        wait_for(
            lambda: (
                drv.execute_script("return document.body.dataset.view") == view
                and not drv.find_element("id", f"view-{view}").get_attribute("hidden")
            ),
            what=f"view {view}",
        )
    except AssertionError as exc:
        shown = drv.execute_script(
            "return [location.hash, document.body.dataset.view,"
            " document.getElementById('error').textContent]"
        )
        raise AssertionError(f"{exc}; page state {shown}") from None


# -- the secret and the Host header -----------------------------------------------------------


def test_requests_without_the_secret_get_403(server: WebServer) -> None:
    host = {"Host": f"127.0.0.1:{server.port}"}
    for path in ("/", "/api/summary", "/api/events", "/static/app.js", "/nope"):
        status, body = server.raw(path, host)
        assert status == 403, (path, status)
        assert b"secret" in body
    assert server.raw("/api/summary?token=wrong", host)[0] == 403
    assert server.raw("/", {**host, "Cookie": f"tokmon-web-{server.port}=wrong"})[0] == 403
    assert (
        server.raw(
            "/api/setSessionMetadata",
            {**host, "Content-Type": "application/json"},
            "POST",
            b'{"sessionId": "x", "name": "y"}',
        )[0]
        == 403
    )
    # the right secret works: URL token (traded for a cookie), cookie, bearer
    status, _ = server.raw(f"/?token={server.token}", host)
    assert status == 303
    assert server.raw("/", {**host, "Cookie": f"tokmon-web-{server.port}={server.token}"})[0] == 200
    assert server.raw("/api/version", {**host, "Authorization": f"Bearer {server.token}"})[0] == 200


def test_foreign_host_header_gets_403_even_with_the_secret(server: WebServer) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}
    for host in (
        "evil.example",
        f"evil.example:{server.port}",
        "127.0.0.1:1",
        f"127.0.0.1.nip.io:{server.port}",
    ):
        status, body = server.raw("/api/version", {**auth, "Host": host})
        assert status == 403, host
        assert b"Host" in body
    assert server.raw("/api/version", {**auth, "Host": f"localhost:{server.port}"})[0] == 200


def test_cookie_is_httponly_and_samesite_strict(server: WebServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", f"/?token={server.token}")
    resp = conn.getresponse()
    cookie = resp.getheader("set-cookie") or ""
    conn.close()
    assert resp.status == 303 and resp.getheader("location") == "/"
    assert f"tokmon-web-{server.port}={server.token}" in cookie
    low = cookie.lower()
    assert "httponly" in low and "samesite=strict" in low


def test_api_shapes_and_errors(server: WebServer) -> None:
    # independent reference: ccusage's total for this corpus (corpus README), plus the
    # responses other tests appended (published prices), once the server has read them
    s = wait_for(
        lambda: (
            (x := server.get("/api/summary"))["totals"]["totalCost"]
            == pytest.approx(ref_cost(), abs=1e-4)
            and x
        ),
        what="the corpus' total",
    )
    assert s["totals"]["totalCost"] == pytest.approx(ref_cost(), abs=1e-4)
    sessions = server.get("/api/sessions")["sessions"]
    assert len(sessions) == REF_SESSIONS
    daily = server.get("/api/daily")
    series = server.get("/api/series?period=week&by=project")
    assert sum(x["totalCost"] for x in series["series"]) == pytest.approx(
        daily["totals"]["totalCost"], abs=1e-6
    )
    per_bucket = [
        sum(x["cost"][i] for x in series["series"]) for i in range(len(series["buckets"]))
    ]
    assert sum(per_bucket) == pytest.approx(ref_cost(), abs=1e-3)
    status, body = server.raw(
        "/api/sessions?limit=zero",
        {"Authorization": f"Bearer {server.token}", "Host": f"127.0.0.1:{server.port}"},
    )
    assert status == 400 and json.loads(body)["error"]["code"] == -32602
    status, body = server.raw(
        "/api/nothing",
        {"Authorization": f"Bearer {server.token}", "Host": f"127.0.0.1:{server.port}"},
    )
    assert status == 404 and json.loads(body)["error"]["code"] == -32601
    # capabilities are per event stream (/api/events?activeDeltas=1), not per server
    status, body = server.raw(
        "/api/hello",
        {"Authorization": f"Bearer {server.token}", "Host": f"127.0.0.1:{server.port}"},
    )
    assert status == 404 and b"activeDeltas" in body
    # state changes: POST with a JSON body only
    auth = {"Authorization": f"Bearer {server.token}", "Host": f"127.0.0.1:{server.port}"}
    sid = sessions[0]["sessionId"]
    status, body = server.raw(f"/api/setSessionMetadata?sessionId={sid}&name=x", auth)
    assert status == 405 and b"POST" in body
    status, _ = server.raw(
        "/api/setSessionMetadata",
        {**auth, "Content-Type": "text/plain"},
        "POST",
        json.dumps({"sessionId": sid, "name": "x"}).encode(),
    )
    assert status == 415
    assert server.get(f"/api/session?sessionId={sid}")["name"] != "x"


# -- the page ---------------------------------------------------------------------------------


def test_page_loads_and_numbers_equal_the_api(server: WebServer, browser: Any) -> None:
    browser.get(server.url)
    wait_for(
        lambda: browser.execute_script("return document.body.dataset.ready") == "1",
        what="first render",
    )
    assert "token=" not in browser.current_url  # traded for the cookie
    api = server.get("/api/summary")
    for key in ("today", "week", "month"):
        assert dom_value(browser, f"{key}-cost") == api[key]["totalCost"]
        assert dom_value(browser, f"{key}-tokens") == api[key]["totalTokens"]
    assert dom_value(browser, "total-cost") == api["totals"]["totalCost"]
    assert dom_value(browser, "total-tokens") == api["totals"]["totalTokens"]
    assert browser.find_element("id", "total-cost").text == f"${api['totals']['totalCost']:,.2f}"
    wait_for(
        lambda: browser.execute_script(
            "return document.getElementById('live').classList.contains('on')"
        ),
        what="SSE open",
    )
    # no request left the machine
    hosts = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).host)"
    )
    assert set(hosts) <= {f"127.0.0.1:{server.port}"}, hosts
    # and the page does not poll: while nothing is pushed, no API request follows the first
    # render (updates come over the one event stream; a push may re-read a figure)
    probe = (
        "const d = document.body.dataset;"
        "return [performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)"
        ".filter(p => p.startsWith('/api/') && p !== '/api/events').length,"
        " [d.updates, d.limitUpdates, d.alerts].join('/')]"
    )
    wait_for(  # the first render's requests have all answered
        lambda: browser.execute_script(
            "return !!Chart.getChart(document.getElementById('official-chart'))"
            " && document.querySelectorAll('#limits-windows .win').length > 0"
        ),
        what="the official chart and the limits card",
    )
    requests, pushes = browser.execute_script(probe)
    assert requests > 0
    time.sleep(4)
    requests_after, pushes_after = browser.execute_script(probe)
    if pushes_after == pushes:
        assert requests_after == requests, "the page made API requests with nothing pushed"


def test_spend_chart_totals_equal_the_api(server: WebServer, browser: Any) -> None:
    goto(browser, server, "#/spend")
    browser.find_element("css selector", "#spend-range button[data-v='all']").click()
    browser.find_element("css selector", "#spend-by button[data-v='project']").click()

    def table() -> list[float]:
        cells = browser.find_elements("css selector", "#spend-table tbody td.num")
        return [float(c.get_attribute("data-value")) for c in cells]

    series = server.get("/api/series?period=day&by=project")["series"]
    want = [s["totalCost"] for s in series]
    # (by model, shown between the two clicks, can have as many rows)
    got = wait_for(lambda: (t := table()) == pytest.approx(want) and t, what="daily by project")
    assert got == pytest.approx(want)
    assert sum(got) == pytest.approx(ref_cost(), abs=1e-3)
    assert browser.execute_script("return !!Chart.getChart(document.getElementById('spend-chart'))")
    # weekly by model: other buckets and keys, same money
    browser.find_element("css selector", "#spend-period button[data-v='week']").click()
    browser.find_element("css selector", "#spend-by button[data-v='model']").click()
    weekly = server.get("/api/series?period=week&by=model")["series"]
    want = [s["totalCost"] for s in weekly]
    # (weekly by project, shown between the two clicks, has as many rows: top 7 + other)
    got = wait_for(lambda: (t := table()) == pytest.approx(want) and t, what="weekly by model")
    assert got == pytest.approx(want)
    assert sum(got) == pytest.approx(ref_cost(), abs=1e-3)
    labels = browser.execute_script(
        "return Chart.getChart(document.getElementById('spend-chart')).data.datasets"
        ".map(d => d.label)"
    )
    assert labels == [s["label"] for s in weekly]


def test_blocks_view_shows_the_limit_line(server: WebServer, browser: Any) -> None:
    goto(browser, server, "#/blocks")
    browser.find_element("css selector", "#blocks-range button[data-v='all']").click()
    blocks = [b for b in server.get("/api/blocks")["blocks"] if not b["isGap"]]
    limit = server.get("/api/summary")["tokenLimit"]["tokens"]
    info = wait_for(
        lambda: browser.execute_script(
            "const c = Chart.getChart(document.getElementById('blocks-chart'));"
            "return c && c.data.labels.length === arguments[0] ? c.data.datasets.map("
            "d => [d.label, d.data[0], d.data.length]) : null",
            len(blocks),
        ),
        what="blocks chart",
    )
    assert info[0] == ["tokens", blocks[0]["totalTokens"], len(blocks)]
    assert info[1] == ["limit", limit, len(blocks)]


def test_sessions_table_sort_and_filter(server: WebServer, browser: Any) -> None:
    goto(browser, server, "#/sessions")
    rows = lambda: browser.find_elements("css selector", "#sessions-table tbody tr")  # noqa: E731
    wait_for(lambda: len(rows()) == REF_SESSIONS, what="all session rows")
    browser.find_element("css selector", "th[data-sort='totalCost']").click()
    api = server.get("/api/sessions?sort=cost")["sessions"]
    first = wait_for(lambda: rows()[0].get_attribute("data-session-id"), what="sorted")
    costs = [
        float(c.get_attribute("data-value"))
        for c in browser.find_elements("css selector", "#sessions-table td.cost")
    ]
    assert costs == sorted(costs, reverse=True)
    assert first == api[0]["sessionId"] and costs[0] == api[0]["totalCost"]
    project = api[0]["projectName"]
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "f-project")).select_by_value(project)
    want = server.get(f"/api/sessions?project={project}")["sessions"]
    wait_for(lambda: len(rows()) == len(want), what="project filter")
    assert {r.get_attribute("data-session-id") for r in rows()} == {r["sessionId"] for r in want}
    Select(browser.find_element("id", "f-project")).select_by_value("")
    wait_for(lambda: len(rows()) == REF_SESSIONS, what="filter cleared")


def test_rename_tag_describe_from_the_page(
    server: WebServer, browser: Any, env: dict[str, str]
) -> None:
    goto(browser, server, "#/sessions")
    row = wait_for(
        lambda: browser.find_elements("css selector", "#sessions-table tbody tr")[0], what="a row"
    )
    sid = row.get_attribute("data-session-id")
    row.find_element("css selector", "button.edit").click()
    name = browser.find_element("id", "e-name")
    wait_for(name.is_displayed, what="edit dialog")
    name.clear()
    name.send_keys("renamed from the web")
    tags = browser.find_element("id", "e-tags")
    tags.clear()
    tags.send_keys("web-ui, Charts")
    browser.find_element("id", "e-desc").send_keys("described in a browser")
    browser.find_element("id", "e-save").click()
    wait_for(
        lambda: (
            "renamed from the web"
            in browser.find_element("css selector", f"tr[data-session-id='{sid}'] td.name").text
        ),
        what="renamed row",
    )
    out = subprocess.run(
        [sys.executable, "-m", "tokmon", "session", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    rows = listed["sessions"] if isinstance(listed, dict) else listed
    mine = next(r for r in rows if r["sessionId"] == sid)
    assert mine["name"] == "renamed from the web"
    assert mine["tags"] == ["charts", "web-ui"]  # normalised by the store
    assert mine["description"] == "described in a browser"
    text = subprocess.run(
        [sys.executable, "-m", "tokmon", "session", "list"],
        env={**env, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "renamed from the web" in text
    # the session page shows it too
    goto(browser, server, f"#/session/{sid}")
    wait_for(
        lambda: browser.find_element("id", "s-name").text == "renamed from the web",
        what="session page name",
    )
    assert dom_value(browser, "s-cost") == server.get(f"/api/session?sessionId={sid}")["totalCost"]
    # the new tag filters the table
    from selenium.webdriver.support.ui import Select

    goto(browser, server, "#/sessions")
    wait_for(
        lambda: (
            "web-ui"
            in [
                o.get_attribute("value")
                for o in browser.find_elements("css selector", "#f-tag option")
            ]
        ),
        what="tag option",
    )
    Select(browser.find_element("id", "f-tag")).select_by_value("web-ui")
    rows = wait_for(
        lambda: (
            [
                r.get_attribute("data-session-id")
                for r in browser.find_elements("css selector", "#sessions-table tbody tr")
            ]
            == [sid]
        ),
        what="tag filter",
    )
    assert rows
    assert [r["sessionId"] for r in server.get("/api/sessions?tag=web-ui")["sessions"]] == [sid]
    Select(browser.find_element("id", "f-tag")).select_by_value("")


def test_official_figures_and_history(server: WebServer, browser: Any) -> None:
    goto(browser, server, "#/")
    # the module's payloads first; other tests may have handed later ones over
    hist = server.get("/api/official")["history"]
    assert [h["fiveHour"]["usedPercentage"] for h in hist][: len(OFFICIAL)] == [
        o[1] for o in OFFICIAL
    ]
    latest = (hist[-1]["fiveHour"]["usedPercentage"], hist[-1]["sevenDay"]["usedPercentage"])
    wait_for(
        lambda: browser.find_element("id", "official-5h").get_attribute("data-value"),
        what="official figures",
    )
    assert dom_value(browser, "official-5h") == latest[0]
    assert dom_value(browser, "official-7d") == latest[1]
    assert browser.find_element("id", "official-5h").text == f"{latest[0]:.0f}%"
    points = wait_for(
        lambda: browser.execute_script(
            "const c = Chart.getChart(document.getElementById('official-chart'));"
            "return c ? c.data.datasets.map(d => d.data.map(p => [p.x, p.y])) : null"
        ),
        what="history chart",
    )
    assert [[y for _, y in line] for line in points] == [
        [h["fiveHour"]["usedPercentage"] for h in hist],
        [h["sevenDay"]["usedPercentage"] for h in hist],
    ]
    # on a time axis: x = when each figure was observed
    seen = [datetime.fromisoformat(h["observedAt"]).timestamp() * 1000 for h in hist]
    assert [x for x, _ in points[0]] == pytest.approx(seen, abs=1)
    # every observation lies within a second or two here: the axis labels must still differ
    # (with minute precision they all read the same time)
    assert max(seen) - min(seen) < 60_000
    labels = browser.execute_script(
        "return Chart.getChart(document.getElementById('official-chart'))"
        ".scales.x.ticks.map(t => t.label)"
    )
    shown = [lbl for lbl in labels if lbl]
    assert len(shown) >= 2, labels
    assert len(set(shown)) == len(shown), labels


# -- limits and budgets (issue #15) -----------------------------------------------------------


def _limits_cli(env: dict[str, str]) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-m", "tokmon", "limits", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def _cards(drv: Any) -> dict[str, dict[str, Any]]:
    """Every window card's figures as the page holds them (data-* attributes)."""
    return drv.execute_script(
        "const out = {};"
        "for (const c of document.querySelectorAll('#limits-windows .win')) {"
        "  const f = {};"
        "  for (const d of c.querySelectorAll('[data-field]')) f[d.dataset.field] = d.dataset.value;"
        "  out[c.dataset.window] = {basis: c.dataset.basis, used: Number(c.dataset.used),"
        "    label: c.querySelector('h3').textContent, fields: f,"
        "    text: c.textContent};"
        "}"
        "return out;"
    )


def _num(v: str | None) -> float | None:
    return None if v in (None, "", "null") else float(v)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[WebServer, dict[str, str]]]:
    """A server of its own, over its own copy of the corpus with only the module's first
    official figures: for a test that checks them against the payloads (other tests hand
    later figures over, or append usage that makes them estimates)."""
    corpus = tmp_path / "claude"
    shutil.copytree(corpus_path(), corpus)
    env = official_env(corpus, tmp_path / "home")
    web = WebServer(env)
    try:
        yield web, env
    finally:
        web.stop()


def test_limits_card_equals_the_api_and_the_cli(
    fresh: tuple[WebServer, dict[str, str]], browser: Any
) -> None:
    server, env = fresh
    goto(browser, server, "#/limits")
    cards = wait_for(lambda: len(_cards(browser)) >= 3 and _cards(browser), what="limit cards")
    api = server.get("/api/limits")
    cli = _limits_cli(env)
    keyed = {f"{w['source']}/{w['window']}": w for w in api["windows"]}
    assert set(cards) == set(keyed) == {f"{w['source']}/{w['window']}" for w in cli["windows"]}
    for key, w in keyed.items():
        c = cards[key]
        assert c["label"] == w["label"]
        assert c["basis"] == w["basis"]
        assert c["used"] == w["usedPercent"]
        assert _num(c["fields"]["official"]) == w["officialPercent"]
        assert _num(c["fields"]["pace"]) == w["pace"]
        assert _num(c["fields"]["projected"]) == w["projectedPercent"]
        assert _num(c["fields"]["eta"]) == w["eta"]
        assert _num(c["fields"]["resets"]) == w["resetsAt"]
        other = next(x for x in cli["windows"] if f"{x['source']}/{x['window']}" == key)
        for f in ("usedPercent", "basis", "pace", "projectedPercent", "eta", "resetsAt"):
            assert other[f] == w[f], (key, f)
        assert ("ESTIMATE" in c["text"]) is (w["basis"] == "estimate")
    # independent of tokmon: the last payload's figures, and the pace from its reset time
    # (window opened 2 days before the payload: elapsed share 2/7)
    week = keyed["claude/seven_day"]
    assert week["basis"] == "official" and week["usedPercent"] == OFFICIAL[-1][2]
    assert keyed["claude/seven_day_opus"]["usedPercent"] == OPUS_7D
    assert keyed["claude/five_hour"]["usedPercent"] == OFFICIAL[-1][1]
    reset = float(env["TOKMON_TEST_SEVEN_DAY_RESET"])
    elapsed = (week["observedAt"] - (reset - WEEK)) / WEEK * 100
    assert week["pace"] == pytest.approx(OFFICIAL[-1][2] / elapsed, rel=1e-3)
    assert week["projectedPercent"] == pytest.approx(OFFICIAL[-1][2] * 100 / elapsed, rel=1e-3)
    # the 7-day card reads as a person would: "35%", "pace 1.22x"
    assert f"{OFFICIAL[-1][2]:.0f}%" in cards["claude/seven_day"]["text"]
    assert f"{week['pace']:.2f}x" in cards["claude/seven_day"]["text"]
    # the history chart: one line per window, points = the recorded figures
    hist = wait_for(
        lambda: browser.execute_script(
            "const c = Chart.getChart(document.getElementById('limits-chart'));"
            "return c ? c.data.datasets.map(d => [d.label, d.data.map(p => p.y)]) : null"
        ),
        what="limits chart",
    )
    by_label = dict((lbl, ys) for lbl, ys in hist)
    assert by_label[week["label"]] == [u for _d, u in EARLIER_7D] + [o[2] for o in OFFICIAL]
    assert by_label[keyed["claude/five_hour"]["label"]] == [o[1] for o in OFFICIAL]
    # budgets: the configured one, its use equal to the API's
    rows = browser.find_elements("css selector", "#budgets-table tbody tr")
    assert [r.get_attribute("data-budget") for r in rows] == ["monthly"]
    b = api["budgets"][0]
    assert b["limit"] == BUDGET_USD
    used_td = rows[0].find_elements("css selector", "td")[1]
    assert float(used_td.get_attribute("data-value")) == b["used"]
    assert f"${BUDGET_USD:,.2f}" in rows[0].text
    # the same card sits on the overview
    goto(browser, server, "#/")
    wait_for(lambda: set(_cards(browser)) == set(keyed), what="limits card on the overview")


def test_statusline_payload_updates_limits_without_reload(
    server: WebServer, browser: Any, env: dict[str, str]
) -> None:
    goto(browser, server, "#/limits")
    wait_for(lambda: _cards(browser).get("claude/seven_day"), what="7-day card")
    browser.execute_script("window.__noReload = 7")
    before = int(browser.execute_script("return document.body.dataset.limitUpdates || '0'"))
    reset = float(env["TOKMON_TEST_SEVEN_DAY_RESET"])
    shown = _cards(browser)["claude/seven_day"]["used"]
    new_week = 61.0 if shown != 61.0 else 62.0  # (the alert test hands 61 over)
    payload = {
        "session_id": "official-c",
        "rate_limits": {
            "five_hour": {"used_percentage": 48.0, "resets_at": time.time() + 3000},
            "seven_day": {"used_percentage": new_week, "resets_at": reset},
        },
    }
    statusline(env, payload)
    card = wait_for(
        lambda: (c := _cards(browser).get("claude/seven_day")) and c["used"] == new_week and c,
        timeout=30,
        what="the new 7-day figure on the page",
    )
    assert browser.execute_script("return window.__noReload") == 7
    assert int(browser.execute_script("return document.body.dataset.limitUpdates")) > before
    assert f"{new_week:.0f}%" in card["text"]
    api = {f"{w['source']}/{w['window']}": w for w in server.get("/api/limits")["windows"]}
    assert api["claude/seven_day"]["usedPercent"] == new_week
    assert _num(card["fields"]["pace"]) == api["claude/seven_day"]["pace"]
    # the history chart gained the point
    ys = wait_for(
        lambda: (
            browser.execute_script(
                "const c = Chart.getChart(document.getElementById('limits-chart'));"
                "const d = c && c.data.datasets.find(d => d.label === arguments[0]);"
                "return d ? d.data.map(p => p.y) : null",
                api["claude/seven_day"]["label"],
            )[-1]
            == new_week
        ),
        what="history point",
    )
    assert ys


def test_alert_banner_from_the_live_stream(
    server: WebServer, browser: Any, env: dict[str, str], shots: Path
) -> None:
    """A statusline payload crosses the configured threshold: the alert the server fires
    reaches the open page as a banner (SSE ``tokmon/alert``), whatever the view."""
    goto(browser, server, "#/spend")
    browser.execute_script("window.__noReload = 9")
    assert not browser.find_elements("css selector", "#alerts .alert")
    five = ALERT_AT + 1
    payload = {
        "session_id": "official-d",
        "rate_limits": {
            "five_hour": {"used_percentage": five, "resets_at": time.time() + 2400},
            "seven_day": {
                "used_percentage": 61.0,
                "resets_at": float(env["TOKMON_TEST_SEVEN_DAY_RESET"]),
            },
        },
    }
    statusline(env, payload)
    banner = wait_for(
        lambda: browser.find_elements("css selector", "#alerts .alert"),
        timeout=30,
        what="the alert banner",
    )
    assert len(banner) == 1
    # the same alert the alert log holds (whichever process fired it)
    out = subprocess.run(
        [sys.executable, "-m", "tokmon", "alerts", "log", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    logged = json.loads(out.stdout)["alerts"]
    assert len(logged) == 1, logged
    alert = logged[0]
    assert alert["kind"] == "official" and alert["threshold"] == ALERT_AT
    assert alert["value"] == five
    row = banner[0]
    assert row.get_attribute("data-alert-id") == str(alert["id"])
    assert row.find_element("css selector", ".msg").text == alert["message"]
    assert f"{five:.0f}%" in alert["message"] and f"{ALERT_AT:g}%" in alert["message"]
    assert browser.execute_script("return window.__noReload") == 9
    # it stays across views, and goes when dismissed
    goto(browser, server, "#/")
    assert browser.find_element("id", "alerts").is_displayed()
    try:
        for w, h in ((1280, 800), (390, 844)):
            _emulate(browser, w, h, False)
            browser.execute_script("window.scrollTo(0, 0)")
            # (the charts follow the new width on their next resize callback)
            wait_for(
                lambda w=w: (
                    browser.execute_script("return document.documentElement.scrollWidth") <= w
                ),
                what=f"no horizontal overflow at {w}px with the banner",
            )
            browser.save_screenshot(str(shots / f"alert-{w}x{h}-light.png"))
    finally:
        _emulate(browser, 1280, 800, False)
    browser.find_element("css selector", "#alerts .alert button.dismiss").click()
    wait_for(
        lambda: not browser.find_elements("css selector", "#alerts .alert"),
        what="the dismissed banner gone",
    )
    # and the empty box takes no room
    box = "getComputedStyle(document.getElementById('alerts')).display"
    assert browser.execute_script(f"return {box}") == "none"


def test_cli_rename_reaches_the_open_page(
    server: WebServer, browser: Any, env: dict[str, str]
) -> None:
    goto(browser, server, "#/sessions")
    rows = wait_for(
        lambda: browser.find_elements("css selector", "#sessions-table tbody tr"), what="rows"
    )
    sid = rows[-1].get_attribute("data-session-id")
    browser.execute_script("window.__noReload = 7")
    res = subprocess.run(
        [sys.executable, "-m", "tokmon", "session", "name", sid, "named in a terminal"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    wait_for(
        lambda: (
            "named in a terminal"
            in browser.find_element("css selector", f"tr[data-session-id='{sid}'] td.name").text
        ),
        what="pushed rename",
    )
    assert browser.execute_script("return window.__noReload") == 7


def test_untrusted_names_stay_text(server: WebServer, browser: Any) -> None:
    goto(browser, server, "#/sessions")
    sid = server.get("/api/sessions?sort=cost&order=asc&limit=1")["sessions"][0]["sessionId"]
    evil = '<img src=x onerror="window.__xss=1">'
    status, body = server.raw(
        "/api/setSessionMetadata",
        {
            "Authorization": f"Bearer {server.token}",
            "Host": f"127.0.0.1:{server.port}",
            "Content-Type": "application/json",
        },
        "POST",
        json.dumps({"sessionId": sid, "name": evil}).encode(),
    )
    assert status == 200, body
    wait_for(
        lambda: (
            browser.find_element("css selector", f"tr[data-session-id='{sid}'] td.name a").text
            == evil
        ),
        what="literal name",
    )
    assert not browser.find_elements("css selector", "#sessions-table img")
    assert browser.execute_script("return window.__xss") is None


def test_transcript_append_updates_the_page_without_reload(
    server: WebServer, browser: Any, corpus: Path
) -> None:
    goto(browser, server, "#/")
    wait_for(
        lambda: browser.find_element("id", "today-cost").get_attribute("data-value"),
        what="overview",
    )
    before = dom_value(browser, "today-cost")
    browser.execute_script("window.__noReload = 42")
    path = sorted(
        p for p in (corpus / "projects").glob("*/*.jsonl") if not p.name.startswith("agent-")
    )[0]
    sid, cwd = session_of(path)
    inp, out = 120_000, 40_000
    t0 = append_priced(path, sid, cwd, inp=inp, out=out)
    after = wait_for(
        lambda: dom_value(browser, "today-cost") != before and dom_value(browser, "today-cost"),
        timeout=30,
        what="live update",
    )
    latency = time.monotonic() - t0
    assert after == pytest.approx(before + inp * SONNET_IN + out * SONNET_OUT, abs=1e-9)
    assert browser.execute_script("return window.__noReload") == 42
    assert browser.execute_script("return document.body.dataset.updates") >= "1"
    print(f"append -> DOM update: {latency * 1000:.0f} ms")


def test_a_push_updates_the_sessions_table_without_fetching_the_list(
    browser: Any, tmp_path: Path
) -> None:
    """Its own server on a small history: the sessions view is open, lines go to one session
    and to a new one; the table shows both (figures equal to a fresh /api/sessions) while the
    page fetches neither /api/sessions nor anything else for the table."""
    now = time.time()
    claude = tmp_path / "claude"
    files = {}
    for k in range(6):
        sid = f"5e5e5e5e-0000-4000-8000-{k:012x}"
        cwd = f"/w/web{k}"
        f = claude / "projects" / cwd.replace("/", "-") / f"{sid}.jsonl"
        f.parent.mkdir(parents=True)
        # half an hour off the 5 h edge: no session leaves the active set by the clock while
        # the page loads (such a push, sent before the page's stream is open, is a missed seq)
        append(f, usage_line(sid, cwd, inp=100 + k, out=10, ts=now - (k + 0.5) * 3600))
        files[sid] = (f, cwd)
    web = WebServer(server_env(tmp_path / "srv", claude))
    try:
        goto(browser, web, "#/sessions")
        rows = lambda: browser.find_elements("css selector", "#sessions-table tbody tr")  # noqa: E731
        wait_for(lambda: len(rows()) == 6, what="the six session rows")
        # the page's event stream is open (its hello came): a push is not sent before it is
        wait_for(
            lambda: browser.execute_script(
                "return document.getElementById('live').classList.contains('on')"
            ),
            what="the page's event stream",
        )
        # and the loads the first view started are over (the overview's limits, not awaited:
        # under load their answer could come in after the clear below and count as a fetch)
        wait_for(
            lambda: browser.execute_script("return document.body.dataset.inflight") == "0",
            what="the page's own requests",
        )
        browser.execute_script("performance.clearResourceTimings(); window.__noReload = 9")
        count = (
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)"
            ".filter(p => p.startsWith('/api/') && p !== '/api/events')"
        )
        loads = browser.execute_script("return document.body.dataset.listLoads")
        updates = int(browser.execute_script("return document.body.dataset.updates") or 0)
        old_sid = sorted(files)[3]
        f, cwd = files[old_sid]
        append(f, usage_line(old_sid, cwd, inp=200_000, out=1000))
        new_sid = "5e5e5e5e-0000-4000-8000-ffffffffffff"
        nf = claude / "projects" / "-w-webnew" / f"{new_sid}.jsonl"
        nf.parent.mkdir(parents=True)
        append(nf, usage_line(new_sid, "/w/webnew", inp=300_000, out=2000))
        cell = "#sessions-table tr[data-session-id='{}'] td.cost"

        def shown(sid: str) -> float | None:
            found = browser.find_elements("css selector", cell.format(sid))
            return float(found[0].get_attribute("data-value")) if found else None

        def fresh() -> dict[str, dict[str, Any]]:  # (urllib: not one of the page's requests)
            return {r["sessionId"]: r for r in web.get("/api/sessions")["sessions"]}

        want_in = 100 + 3 + 200_000
        wait_for(
            lambda: (
                (api := fresh())[old_sid]["inputTokens"] == want_in
                and new_sid in api
                and shown(old_sid) == api[old_sid]["totalCost"]
                and shown(new_sid) == api[new_sid]["totalCost"]
            ),
            what="both pushed rows in the table",
        )
        api = fresh()
        assert shown(new_sid) == api[new_sid]["totalCost"]
        assert shown(old_sid) == api[old_sid]["totalCost"]
        assert len(rows()) == 7
        first = rows()[0].get_attribute("data-session-id")
        assert first in (new_sid, old_sid)  # newest first: one of the two just written
        assert int(browser.execute_script("return document.body.dataset.updates")) > updates
        # the page asked the server for nothing: the rows came with the pushes
        assert browser.execute_script(count) == []
        assert browser.execute_script("return document.body.dataset.listLoads") == loads
        assert browser.execute_script("return window.__noReload") == 9
    finally:
        web.stop()


def test_the_overview_keeps_the_active_list_from_the_pushes(browser: Any, tmp_path: Path) -> None:
    """Its own server: the overview lists 3 active sessions; a line goes to an old session
    (it joins) and a line dated 5 h minus 8 s ago to a new one (it joins, then leaves by the
    clock). The list follows, equal to a fresh /api/summary each time, while the page fetches
    no summary: its event stream asked for active deltas, so no push carried the list."""
    now = time.time()
    claude = tmp_path / "claude"
    files = {}
    for k in range(6):
        sid = f"a7a7a7a7-0000-4000-8000-{k:012x}"
        cwd = f"/w/act{k}"
        f = claude / "projects" / cwd.replace("/", "-") / f"{sid}.jsonl"
        f.parent.mkdir(parents=True)
        ts = now - (k + 1) * 600 if k < 3 else now - k * 86400
        append(f, usage_line(sid, cwd, inp=100 + k, out=10, ts=ts))
        files[sid] = (f, cwd)
    web = WebServer(server_env(tmp_path / "srv", claude))
    try:
        goto(browser, web, "#/")

        def shown() -> list[str]:
            links = browser.find_elements("css selector", "#active-list li a")
            return [a.get_attribute("href").rsplit("/", 1)[-1] for a in links]

        def api_ids() -> list[str]:  # (urllib: not one of the page's requests)
            return [r["sessionId"] for r in web.get("/api/summary")["activeSessions"]]

        wait_for(lambda: len(shown()) == 3, what="the three active sessions")
        assert shown() == api_ids()
        # the page's event stream is open (a push is not sent before it is) and the loads the
        # page started are over (an answer coming in after the clear would count as a fetch)
        wait_for(
            lambda: browser.execute_script(
                "return document.getElementById('live').classList.contains('on')"
                " && document.body.dataset.inflight === '0'"
            ),
            what="the page's event stream and its own requests",
        )
        browser.execute_script("performance.clearResourceTimings(); window.__noReload = 7")
        loads = browser.execute_script("return document.body.dataset.summaryLoads")
        fetched = (
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)"
            ".filter(p => p === '/api/summary')"
        )
        old_sid = sorted(files)[4]
        f, cwd = files[old_sid]
        append(f, usage_line(old_sid, cwd, inp=7, out=1))
        brief = "a7a7a7a7-0000-4000-8000-ffffffffffff"
        nf = claude / "projects" / "-w-brief" / f"{brief}.jsonl"
        nf.parent.mkdir(parents=True)
        append(nf, usage_line(brief, "/w/brief", inp=9, out=1, ts=time.time() - 5 * 3600 + 8))
        wait_for(lambda: {old_sid, brief} <= set(shown()), what="both joined")
        assert shown()[0] == old_sid  # newest first
        # the brief one leaves when its line is 5 h old, with no new line
        wait_for(lambda: brief not in shown(), timeout=60, what="the brief session gone")
        wait_for(lambda: shown() == api_ids(), what="the list equal to /api/summary")
        assert len(shown()) == 4
        assert browser.execute_script(fetched) == []
        assert browser.execute_script("return document.body.dataset.summaryLoads") == loads
        assert browser.execute_script("return window.__noReload") == 7
        assert int(browser.execute_script("return document.body.dataset.activeDeltas")) >= 2
    finally:
        web.stop()


def test_block_card_limit_bar_and_projection_equal_the_api(
    server: WebServer, browser: Any, corpus: Path
) -> None:
    """The current block (a response appended first), plus a second one (so it has a burn
    rate): its cost, tokens, limit bar and projection on the page are the API's."""
    goto(browser, server, "#/")
    path = sorted(
        p for p in (corpus / "projects").glob("*/*.jsonl") if not p.name.startswith("agent-")
    )[0]
    sid, cwd = session_of(path)
    # a response of its own first: an active block whatever ran before (the corpus is old)
    pre = (server.get("/api/summary")["activeBlock"] or {}).get("totalTokens", 0)
    append_priced(path, sid, cwd, inp=1_000, out=100)
    before = wait_for(
        lambda: (
            (blk := server.get("/api/summary")["activeBlock"])
            and blk["totalTokens"] == pre + 1_100
            and dom_value(browser, "block-tokens") == blk["totalTokens"]
            and blk["totalTokens"]
        ),
        timeout=30,
        what="the active block on the page",
    )
    # (dated now: after every official figure, so the limits' calibration stays as it was)
    t0 = time.time()  # the page's summary was computed after this and before the API's
    append_priced(path, sid, cwd, inp=30_000, out=9_000)
    wait_for(
        lambda: dom_value(browser, "block-tokens") == before + 39_000,
        timeout=30,
        what="the block card to gain the response",
    )
    s = server.get("/api/summary")
    elapsed = time.time() - t0
    blk, limit = s["activeBlock"], s["tokenLimit"]["tokens"]
    assert blk["totalTokens"] == before + 39_000
    assert dom_value(browser, "block-cost") == blk["costUSD"]
    proj = blk["projection"]
    assert proj is not None and proj["totalTokens"] > blk["totalTokens"]

    def style(elem_id: str, prop: str) -> float:
        return float(browser.find_element("id", elem_id).value_of_css_property(prop)[:-2])

    bar = style("block-bar", "width")
    # the fill and the projection mark sit where the API's figures put them on the bar
    want_fill = min(100.0, blk["totalTokens"] / limit * 100) / 100 * bar
    want_mark = min(99.5, proj["totalTokens"] / limit * 100) / 100 * bar
    wait_for(
        lambda: abs(style("block-fill", "width") - want_fill) <= 1.5,  # after its transition
        what="the fill at the block's share of the limit",
    )
    assert abs(style("block-proj-mark", "left") - want_mark) <= 1.5
    assert browser.find_element("id", "block-proj-mark").is_displayed()
    text = browser.find_element("id", "block-proj").text
    shown = re.search(r"tokens, \$([\d,]+\.\d\d)", text)
    assert shown is not None, text
    # The projection falls by the burn rate as the clock runs (rate x the time left), and
    # the page's summary is up to ``elapsed`` seconds older than the API's: the page may
    # show more than the API by at most that drift, never less (cents rounded on both).
    drift = blk["burnRate"]["costPerHour"] / 3600 * elapsed
    page_cost = float(shown.group(1).replace(",", ""))
    assert -0.011 <= page_cost - proj["totalCost"] <= drift + 0.011, (text, proj, drift)
    limit_text = browser.find_element("id", "block-limit").text
    assert f"{blk['totalTokens'] / limit * 100:.0f}% of" in limit_text, limit_text


def test_limits_mark_a_figure_that_is_no_longer_current(
    server: WebServer, browser: Any, corpus: Path
) -> None:
    """Local usage after Claude Code's last figure (a response appended here): the 7-day
    window is an ESTIMATE (with a calibration) or marked stale (without), never plain."""
    goto(browser, server, "#/")
    path = sorted(
        p for p in (corpus / "projects").glob("*/*.jsonl") if not p.name.startswith("agent-")
    )[0]
    sid, cwd = session_of(path)
    time.sleep(0.01)  # after the last figure's observedAt
    append_priced(path, sid, cwd, inp=2_000, out=200)

    def week_now() -> dict[str, Any]:
        wins = server.get("/api/limits")["windows"]
        return next(w for w in wins if w["source"] == "claude" and w["window"] == "seven_day")

    # the server's limits monitor re-evaluates within about a second of the usage change
    week = wait_for(
        lambda: (w := week_now()) and (w["basis"] == "estimate" or w["stale"]) and w,
        timeout=30,
        what="the 7-day figure to be no longer current in /api/limits",
    )
    card = wait_for(
        lambda: (
            (c := _cards(browser).get("claude/seven_day"))
            and c["basis"] == week["basis"]
            and ("ESTIMATE" in c["text"] or "stale" in c["text"])
            and c
        ),
        what="the 7-day tile marked as not current",
    )
    if week["basis"] == "estimate":
        assert "ESTIMATE" in card["text"] and card["used"] == week["usedPercent"]
    else:
        assert "stale" in card["text"] and "ESTIMATE" not in card["text"]


def _emulate(drv: Any, width: int, height: int, dark: bool) -> None:
    drv.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    drv.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]},
    )


def test_screenshots_phone_and_desktop_light_and_dark(
    server: WebServer, browser: Any, shots: Path
) -> None:
    sid = server.get("/api/sessions?sort=cost&limit=1")["sessions"][0]["sessionId"]
    routes = {
        "overview": "#/",
        "spend": "#/spend",
        "blocks": "#/blocks",
        "sessions": "#/sessions",
        "session": f"#/session/{sid}",
        "limits": "#/limits",
    }
    written = []
    try:
        for w, h in ((1280, 800), (390, 844)):
            for dark in (False, True):
                _emulate(browser, w, h, dark)
                for name, route in routes.items():
                    goto(browser, server, route)
                    browser.execute_script("window.scrollTo(0, 0)")
                    bg = browser.execute_script(
                        "return getComputedStyle(document.body).backgroundColor"
                    )
                    # dark mode really switches the palette
                    assert (bg == "rgb(18, 21, 27)") is dark, (bg, dark)
                    overflow = browser.execute_script("return document.documentElement.scrollWidth")
                    assert overflow <= w, f"{name} at {w}px overflows to {overflow}px"
                    time.sleep(0.05)  # let the chart finish its first draw
                    f = shots / f"{name}-{w}x{h}-{'dark' if dark else 'light'}.png"
                    browser.save_screenshot(str(f))
                    written.append(f)
                    if name == "session":  # the edit dialog over it
                        browser.find_element("id", "s-edit").click()
                        wait_for(
                            browser.find_element("id", "e-name").is_displayed, what="edit dialog"
                        )
                        f = shots / f"edit-{w}x{h}-{'dark' if dark else 'light'}.png"
                        browser.save_screenshot(str(f))
                        written.append(f)
                        browser.find_element("id", "e-cancel").click()
                        wait_for(
                            lambda: not browser.find_element("id", "edit").is_displayed(),
                            what="dialog closed",
                        )
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    for f in written:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000


def test_no_console_errors_or_csp_violations(server: WebServer, browser: Any) -> None:
    """Everything the page did so far ran under the server's CSP without a console error
    (but requests to the servers other tests started and stopped, refused once they were
    gone), and so does a visit of every view made here (whatever ran before)."""
    port = f"127.0.0.1:{server.port}/"

    def severe() -> list[dict[str, Any]]:
        return [
            e
            for e in browser.get_log("browser")
            if e.get("level") == "SEVERE"
            and not (
                e.get("source") == "network"
                and "ERR_CONNECTION_REFUSED" in e.get("message", "")
                and port not in e.get("message", "")
            )
        ]

    bad = severe()
    assert not bad, bad
    browser.get(server.url)
    for route in ("#/", "#/spend", "#/sessions", "#/limits", "#/blocks", "#/"):
        goto(browser, server, route)
    wait_for(
        lambda: browser.execute_script(
            "return document.body.dataset.ready === '1'"
            " && document.getElementById('live').classList.contains('on')"
        ),
        what="the page rendered, its stream open",
    )
    bad = severe()
    assert not bad, bad


def test_html_export_is_self_contained(
    server: WebServer, browser: Any, env: dict[str, str], tmp_path: Path, shots: Path
) -> None:
    out = tmp_path / "report.html"
    res = subprocess.run(
        [sys.executable, "-m", "tokmon", "report", "--html", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    html = out.read_text(encoding="utf-8")
    assert not re.findall(r'(?:src|href)="(?!data:|#)', html)  # every asset inline
    if os.name != "nt":
        assert out.stat().st_mode & 0o777 == 0o600
    browser.get(out.as_uri())
    wait_for(
        lambda: browser.execute_script("return document.body.dataset.ready") == "1",
        what="export render",
    )
    assert dom_value(browser, "total-cost") == server.get("/api/summary")["totals"]["totalCost"]
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    goto(browser, server, "#/sessions")
    n = len(browser.find_elements("css selector", "#sessions-table tbody tr"))
    assert n == REF_SESSIONS
    # the limits card is in the export too (a snapshot of /api/limits)
    goto(browser, server, "#/limits")
    cards = wait_for(lambda: _cards(browser), what="limits in the export")
    api = {f"{w['source']}/{w['window']}": w for w in server.get("/api/limits")["windows"]}
    assert set(cards) == set(api)
    assert cards["claude/seven_day"]["used"] == api["claude/seven_day"]["usedPercent"]
    browser.save_screenshot(str(shots / "export-limits-1280x800.png"))
    goto(browser, server, "#/spend")
    browser.save_screenshot(str(shots / "export-spend-1280x800.png"))


@pytest.mark.skipif(os.name == "nt", reason="SIGTERM is POSIX")
def test_sigterm_ends_the_server_cleanly_with_a_page_open(
    server: WebServer, browser: Any, env: dict[str, str]
) -> None:
    """Stops a server of its own (the module's serves the other tests, in any order) while
    the page holds its event stream open."""
    own = WebServer(env)
    try:
        browser.get(own.url)
        wait_for(
            lambda: browser.execute_script(
                "return document.getElementById('live').classList.contains('on')"
            ),
            what="SSE open",
        )
        own.proc.terminate()
        assert own.proc.wait(30) == 0
        err = own.proc.stderr.read() if own.proc.stderr else ""
        assert "Traceback" not in err, err
    finally:
        own.stop()
        # cookies are per host, not per port: the module server's again, from its own URL
        browser.get(server.url)
