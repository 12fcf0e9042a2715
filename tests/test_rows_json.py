"""The typed rows' serializers: ccusage's key names and key order, on hand-written values.

The byte-for-byte comparison with ccusage itself is in test_ccusage_parity.py and
test_real_corpus.py; here every shape is written out by hand, key order included (json.dumps
keeps insertion order, so comparing the dumped text checks it).
"""

from __future__ import annotations

import json
from dataclasses import replace

from tokmon.core import aggregate
from tokmon.core.model import Block, BurnRate, Projection, TokenCounts
from tokmon.core.rows import (
    BlocksReport,
    ModelBreakdown,
    PeriodReport,
    PeriodRow,
    SessionReport,
    SessionRow,
    Totals,
    Usage,
)
from tokmon.core.summary_rows import (
    ActiveBlock,
    AgentToday,
    ContextWindow,
    Official,
    OfficialWindow,
    PeriodUsage,
    Summary,
    TokenLimit,
)

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def same(got: object, want: object) -> None:
    """Equal values *and* the same key order everywhere."""
    assert json.dumps(got) == json.dumps(want)


OPUS = ModelBreakdown("claude-opus-4-5", 10, 20, 30, 40, 1.5)
OPUS_JSON = {
    "modelName": "claude-opus-4-5",
    "inputTokens": 10,
    "outputTokens": 20,
    "cacheCreationTokens": 30,
    "cacheReadTokens": 40,
    "cost": 1.5,
}


def test_usage_and_totals_orders_differ_as_in_ccusage() -> None:
    u = Usage(1, 2, 3, 4, 0.25)
    assert u.total_tokens == 10
    same(
        u.to_json(),
        {
            "inputTokens": 1,
            "outputTokens": 2,
            "cacheCreationTokens": 3,
            "cacheReadTokens": 4,
            "totalTokens": 10,
            "totalCost": 0.25,
        },
    )
    same(
        Totals(1, 2, 3, 4, 0.25).to_json(),
        {
            "inputTokens": 1,
            "outputTokens": 2,
            "cacheCreationTokens": 3,
            "cacheReadTokens": 4,
            "totalCost": 0.25,
            "totalTokens": 10,
        },
    )


def test_period_row_with_and_without_agent() -> None:
    row = PeriodRow("date", "2026-01-01", Usage(10, 20, 30, 40, 1.5), ("claude-opus-4-5",), (OPUS,))
    want = {
        "date": "2026-01-01",
        "inputTokens": 10,
        "outputTokens": 20,
        "cacheCreationTokens": 30,
        "cacheReadTokens": 40,
        "totalTokens": 100,
        "totalCost": 1.5,
        "modelsUsed": ["claude-opus-4-5"],
        "modelBreakdowns": [OPUS_JSON],
    }
    same(row.to_json(), want)
    assert (row.total_tokens, row.total_cost) == (100, 1.5)
    week = PeriodRow("week", "2025-12-28", Usage(), agent="codex")
    same(
        week.to_json(),
        {
            "week": "2025-12-28",
            "agent": "codex",
            "inputTokens": 0,
            "outputTokens": 0,
            "cacheCreationTokens": 0,
            "cacheReadTokens": 0,
            "totalTokens": 0,
            "totalCost": 0.0,
            "modelsUsed": [],
            "modelBreakdowns": [],
        },
    )


def _session(agent: str | None = None) -> SessionRow:
    return SessionRow(
        session_id="s-1",
        project_path="/src/app",
        usage=Usage(10, 20, 30, 40, 1.5),
        first_activity=T0,
        last_activity=T0 + 90.5,
        models_used=("claude-opus-4-5",),
        model_breakdowns=(OPUS,),
        project_name="app",
        entries=3,
        title=None,
        is_active=True,
        agent=agent,
    )


SESSION_JSON = {
    "sessionId": "s-1",
    "projectPath": "/src/app",
    "inputTokens": 10,
    "outputTokens": 20,
    "cacheCreationTokens": 30,
    "cacheReadTokens": 40,
    "totalTokens": 100,
    "totalCost": 1.5,
    "firstActivity": "2026-01-01T00:00:00.000Z",
    "lastActivity": "2026-01-01T00:01:30.500Z",
    "modelsUsed": ["claude-opus-4-5"],
    "modelBreakdowns": [OPUS_JSON],
    "projectName": "app",
    "entries": 3,
    "title": None,
    "isActive": True,
}


def test_session_row_shape_and_agent_after_the_id() -> None:
    same(_session().to_json(), SESSION_JSON)
    with_agent = _session("claude").to_json()
    assert list(with_agent)[:3] == ["sessionId", "agent", "projectPath"]
    assert with_agent["agent"] == "claude"


def test_reports_wrap_rows_totals_and_agents() -> None:
    rows = [PeriodRow("month", "2026-01", Usage(1, 0, 0, 0, 0.5))]
    rep = PeriodReport("monthly", rows, Totals(1, 0, 0, 0, 0.5))
    assert list(rep.to_json()) == ["monthly", "totals"]
    assert rep.to_json()["monthly"] == [rows[0].to_json()]
    every = PeriodReport(
        "monthly", rows, Totals(1, 0, 0, 0, 0.5), {"codex": Totals(1, 0, 0, 0, 0.5)}
    )
    j = every.to_json()
    assert list(j) == ["monthly", "totals", "agents"]
    same(j["agents"], {"codex": Totals(1, 0, 0, 0, 0.5).to_json()})
    sess = SessionReport([_session()], Totals(10, 20, 30, 40, 1.5)).to_json()
    same(sess, {"sessions": [SESSION_JSON], "totals": Totals(10, 20, 30, 40, 1.5).to_json()})
    assert BlocksReport([]).to_json() == {"blocks": []}


def test_period_rows_from_groups() -> None:
    """aggregate.period_rows over hand-made sums: sorted labels, models by cost, the
    synthetic model left out of the rows but not of the sums."""
    day1, day2 = aggregate.Acc(), aggregate.Acc()
    for acc, parts in (
        (day1, {"claude-opus-4-5": (1, 2, 3, 4, 1.0), "<synthetic>": (5, 0, 0, 0, 0.0)}),
        (day2, {"claude-haiku-4-5": (1, 1, 1, 1, 0.1), "claude-opus-4-5": (2, 2, 2, 2, 2.0)}),
    ):
        acc.models = {}
        for name, (i, o, cc, cr, cost) in parts.items():
            m = aggregate.Acc()
            m.i, m.o, m.cc, m.cr, m.cost = i, o, cc, cr, cost
            acc.models[name] = m
            acc.i, acc.o, acc.cc, acc.cr = acc.i + i, acc.o + o, acc.cc + cc, acc.cr + cr
            acc.cost += cost
    rep = aggregate.period_rows({"2026-01-02": day2, "2026-01-01": day1}, "date", "daily")
    j = rep.to_json()
    assert [r["date"] for r in j["daily"]] == ["2026-01-01", "2026-01-02"]
    assert j["daily"][0]["modelsUsed"] == ["claude-opus-4-5"]
    assert j["daily"][0]["inputTokens"] == 6  # the synthetic model's tokens count
    assert [b["modelName"] for b in j["daily"][1]["modelBreakdowns"]] == [
        "claude-opus-4-5",
        "claude-haiku-4-5",
    ]
    same(
        j["totals"],
        {
            "inputTokens": 9,
            "outputTokens": 5,
            "cacheCreationTokens": 6,
            "cacheReadTokens": 7,
            "totalCost": 3.1,
            "totalTokens": 27,
        },
    )
    desc = aggregate.period_rows({"2026-01-02": day2, "2026-01-01": day1}, "date", "daily", "desc")
    assert [r.label for r in desc.rows] == ["2026-01-02", "2026-01-01"]


def test_official_reads_back_the_stored_record_and_drops_bad_values() -> None:
    stored = {
        "sessionId": "s-1",
        "sessionName": "work",
        "observedAt": T0,
        "model": "Opus",
        "cwd": "/src/app",
        "costUSD": 1.25,
        "fiveHour": {"usedPercentage": 42, "resetsAt": T0 + 3600, "observedAt": T0},
        "sevenDay": {"usedPercentage": "lots", "resetsAt": None, "observedAt": T0},
        "contextWindow": {
            "usedPercentage": 10.0,
            "remainingPercentage": 90.0,
            "size": 200000,
            "totalInputTokens": 5.0,
            "totalOutputTokens": True,
        },
    }
    off = Official.parse(stored)
    assert off is not None and off.five_hour == OfficialWindow(42, T0 + 3600, T0)
    assert off.seven_day is None  # no usable percentage
    assert off.context_window == ContextWindow(10.0, 90.0, 200000, 5.0, None)
    same(
        off.to_json(),
        {
            "sessionId": "s-1",
            "sessionName": "work",
            "observedAt": T0,
            "model": "Opus",
            "cwd": "/src/app",
            "costUSD": 1.25,
            "fiveHour": {"usedPercentage": 42, "resetsAt": T0 + 3600, "observedAt": T0},
            "sevenDay": None,
            "contextWindow": {
                "usedPercentage": 10.0,
                "remainingPercentage": 90.0,
                "size": 200000,
                "totalInputTokens": 5.0,
                "totalOutputTokens": None,
            },
        },
    )
    assert Official.parse(None) is None and Official.parse(["x"]) is None


def test_summary_shape() -> None:
    block = Block(
        start=T0,
        end=T0 + 5 * 3600,
        last=T0 + 600,
        is_active=True,
        is_gap=False,
        entries=2,
        tokens=TokenCounts(1, 2, 3, 4),
        cost=0.5,
        models=["claude-opus-4-5"],
        burn_rate=BurnRate(1.0, 0.3, 3.0),
        projection=Projection(100, 5.0, 290),
    )
    today = PeriodUsage("date", "2026-01-01", Usage(1, 2, 3, 4, 0.5))
    s = Summary(
        generated_at=T0 + 600,
        timezone="UTC",
        today=today,
        week=PeriodUsage("week", "2025-12-28", Usage(1, 2, 3, 4, 0.5)),
        month=PeriodUsage("month", "2026-01", Usage(1, 2, 3, 4, 0.5)),
        totals=Usage(1, 2, 3, 4, 0.5),
        active_block=ActiveBlock(block, 290.0, "low", 25.0),
        token_limit=TokenLimit(40, "config"),
        official=None,
        active_sessions=[_session()],
        project_session=_session(),
    )
    j = s.to_json()
    assert list(j) == [
        "generatedAt",
        "timezone",
        "today",
        "week",
        "month",
        "totals",
        "activeBlock",
        "tokenLimit",
        "official",
        "activeSessions",
        "projectSession",
    ]  # no "agents": a Claude-only summary keeps its shape
    assert j["generatedAt"] == "2026-01-01T00:10:00.000Z"
    same(j["today"], {"date": "2026-01-01", **Usage(1, 2, 3, 4, 0.5).to_json()})
    assert list(j["week"])[0] == "week" and list(j["month"])[0] == "month"
    active = j["activeBlock"]
    assert isinstance(active, dict)
    assert list(active)[-3:] == ["remainingMinutes", "burnLevel", "limitPercent"]
    assert (active["id"], active["totalTokens"], active["costUSD"]) == (
        "2026-01-01T00:00:00.000Z",
        10,
        0.5,
    )
    assert (active["remainingMinutes"], active["burnLevel"], active["limitPercent"]) == (
        290.0,
        "low",
        25.0,
    )
    same(j["tokenLimit"], {"tokens": 40, "source": "config"})
    same(j["activeSessions"], [SESSION_JSON])
    same(j["projectSession"], SESSION_JSON)
    with_agents = replace(
        s, active_block=None, agents={"codex": AgentToday(today, Usage(9, 0, 0, 0, 0.1))}
    ).to_json()
    assert with_agents["activeBlock"] is None
    same(
        with_agents["agents"],
        {
            "codex": {
                "today": today.to_json(),
                "totals": Usage(9, 0, 0, 0, 0.1).to_json(),
            }
        },
    )
