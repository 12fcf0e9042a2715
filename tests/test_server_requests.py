"""LSP end to end on the real corpus: every tokmon/* request through a real pytest-lsp client."""

from __future__ import annotations

import pytest
import pytest_asyncio
from pygls.exceptions import JsonRpcException
from test_server_support import (
    REF_BLOCKS,
    REF_COST,
    REF_SESSIONS,
    REF_TOTALS,
    corpus_path,
    request,
    server_env,
    start_lsp,
    stop_lsp,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

COUNTERS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("lsp-requests")
    c = await start_lsp(server_env(home, corpus_path()), workspace="file:///src")
    yield c
    await stop_lsp(c)


async def test_version(client) -> None:
    import tokmon

    assert await request(client, "tokmon/version", {}) == {
        "version": tokmon.__version__,
        "protocol": 1,
    }


async def test_summary_totals_match_reference(client) -> None:
    s = await request(client, "tokmon/summary", {})
    for k, v in REF_TOTALS.items():
        assert s["totals"][k] == v, k
    assert s["totals"]["totalTokens"] == sum(REF_TOTALS.values())
    assert s["totals"]["totalCost"] == pytest.approx(REF_COST, abs=0.01)
    for key in (
        "generatedAt",
        "today",
        "week",
        "month",
        "activeBlock",
        "tokenLimit",
        "official",
        "activeSessions",
        "workspaceSession",
        "workspaceProject",
    ):
        assert key in s
    # the corpus is old: nothing is active now
    assert s["activeBlock"] is None and s["workspaceSession"] is None


async def test_workspace_folder_maps_to_project(client) -> None:
    # default folder from initialize: file:///src -> the most recent session below /src
    s = await request(client, "tokmon/summary", {})
    assert s["workspaceProject"] is not None and s["workspaceProject"].startswith("/src/")
    s2 = await request(client, "tokmon/summary", {"workspaceFolder": "/nowhere/at/all"})
    assert s2["workspaceProject"] is None
    rows = await request(client, "tokmon/sessions", {"workspaceFolder": "file:///src"})
    assert rows["sessions"] and all(r["projectPath"].startswith("/src/") for r in rows["sessions"])
    assert rows["workspaceProject"] == s["workspaceProject"]
    assert rows["workspaceProject"] == rows["sessions"][0]["projectPath"]  # most recent first


async def test_sessions_all_sorted_with_metadata(client) -> None:
    res = await request(client, "tokmon/sessions", {})
    rows = res["sessions"]
    assert len(rows) == REF_SESSIONS
    assert sum(r["totalCost"] for r in rows) == pytest.approx(REF_COST, abs=0.01)
    for k, v in REF_TOTALS.items():
        assert sum(r[k] for r in rows) == v
    last = [r["lastActivity"] for r in rows]
    assert last == sorted(last, reverse=True)
    for r in rows:
        assert {"name", "tags", "description", "sessionId", "projectPath", "isActive"} <= set(r)
        assert isinstance(r["tags"], list)


async def test_sessions_sort_limit_and_filters(client) -> None:
    top = (await request(client, "tokmon/sessions", {"sort": "cost", "limit": 3}))["sessions"]
    assert len(top) == 3
    everything = (await request(client, "tokmon/sessions", {}))["sessions"]
    by_cost = sorted((r["totalCost"] for r in everything), reverse=True)
    assert [r["totalCost"] for r in top] == by_cost[:3]
    asc = (await request(client, "tokmon/sessions", {"sort": "tokens", "order": "asc"}))["sessions"]
    assert [r["totalTokens"] for r in asc] == sorted(r["totalTokens"] for r in everything)
    names = (await request(client, "tokmon/sessions", {"sort": "name"}))["sessions"]
    keys = [str(r["name"] or r["title"] or r["sessionId"]).lower() for r in names]
    assert keys == sorted(keys)
    # project filter: by name and by path give the same sessions
    proj = everything[0]["projectPath"]
    by_path = (await request(client, "tokmon/sessions", {"project": proj}))["sessions"]
    assert by_path and all(
        r["projectPath"] == proj or r["projectPath"].startswith(proj + "/") for r in by_path
    )
    by_name = (await request(client, "tokmon/sessions", {"project": everything[0]["projectName"]}))[
        "sessions"
    ]
    name = everything[0]["projectName"]
    assert by_name and all(r["projectName"] == name for r in by_name)
    assert {r["sessionId"] for r in everything if r["projectName"] == name} == {
        r["sessionId"] for r in by_name
    }
    # date filter: only usage on that day counts
    day = everything[0]["lastActivity"][:10]
    on_day = (await request(client, "tokmon/sessions", {"since": day, "until": day}))["sessions"]
    assert on_day and all(r["lastActivity"][:10] == day for r in on_day)
    daily = await request(client, "tokmon/daily", {"since": day, "until": day, "timezone": "UTC"})
    assert sum(r["totalTokens"] for r in on_day) == daily["totals"]["totalTokens"]


async def test_session_detail(client) -> None:
    rows = (await request(client, "tokmon/sessions", {"sort": "cost", "limit": 1}))["sessions"]
    row = rows[0]
    d = await request(client, "tokmon/session", {"sessionId": row["sessionId"][:8]})
    assert d["sessionId"] == row["sessionId"]
    assert sum(m["totalTokens"] for m in d["models"]) == row["totalTokens"]
    assert sum(m["cost"] for m in d["models"]) == pytest.approx(row["totalCost"])
    for m in d["models"]:
        assert m["totalTokens"] == sum(
            m[k] for k in ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
        )
    assert sum(h["totalTokens"] for h in d["timeline"]) == row["totalTokens"]
    hours = [h["hour"] for h in d["timeline"]]
    assert hours == sorted(hours) and all(h.endswith(":00:00.000Z") for h in hours)
    assert d["blocks"], "a session with usage lies in at least one block"
    for b in d["blocks"]:
        assert not b["isGap"] and b["startTime"] <= row["lastActivity"]
        assert b["endTime"] >= row["firstActivity"]


async def test_session_unknown_and_ambiguous_ids(client) -> None:
    with pytest.raises(JsonRpcException) as exc:
        await request(client, "tokmon/session", {"sessionId": "no-such-session"})
    assert exc.value.code == -32602 and "no-such-session" in exc.value.message
    with pytest.raises(JsonRpcException) as exc:
        await request(client, "tokmon/session", {"sessionId": ""})
    assert exc.value.code == -32602
    # a one-character prefix shared by several sessions is ambiguous
    rows = (await request(client, "tokmon/sessions", {}))["sessions"]
    firsts: dict[str, int] = {}
    for r in rows:
        firsts[r["sessionId"][0]] = firsts.get(r["sessionId"][0], 0) + 1
    prefix = max(firsts, key=lambda k: firsts[k])
    assert firsts[prefix] > 1
    with pytest.raises(JsonRpcException) as exc:
        await request(client, "tokmon/session", {"sessionId": prefix})
    assert exc.value.code == -32602 and "ambiguous" in exc.value.message


async def test_blocks(client) -> None:
    res = await request(client, "tokmon/blocks", {})
    real = [b for b in res["blocks"] if not b["isGap"]]
    assert len(real) == REF_BLOCKS
    assert sum(b["totalTokens"] for b in real) == sum(REF_TOTALS.values())
    active = await request(client, "tokmon/blocks", {"active": True, "tokenLimit": "max"})
    assert active == {"blocks": []}  # nothing active in an old corpus
    recent = await request(client, "tokmon/blocks", {"recent": True, "tokenLimit": 1000})
    assert recent == {"blocks": []}


async def test_daily(client) -> None:
    res = await request(client, "tokmon/daily", {"timezone": "UTC"})
    for k, v in REF_TOTALS.items():
        assert res["totals"][k] == v
    dates = [d["date"] for d in res["daily"]]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    some = dates[len(dates) // 2]
    part = await request(client, "tokmon/daily", {"since": some.replace("-", "")})
    assert [d["date"] for d in part["daily"]] == [d for d in dates if d >= some]


async def test_refresh_returns_summary(client) -> None:
    s = await request(client, "tokmon/refresh", {})
    assert s["totals"]["inputTokens"] == REF_TOTALS["inputTokens"]
    assert "workspaceProject" in s


async def test_stdout_clean_and_server_alive_after_errors(client) -> None:
    for method, params in [
        ("tokmon/sessions", {"limit": -1}),
        ("tokmon/daily", {"since": "x"}),
        ("tokmon/blocks", {"tokenLimit": "lots"}),
    ]:
        with pytest.raises(JsonRpcException) as exc:
            await request(client, method, params)
        assert exc.value.code == -32602 and exc.value.message
    assert (await request(client, "tokmon/version"))["protocol"] == 1
