"""Unit tests of the dashboard view-model (tokmon.watch.model): no terminal involved."""

from __future__ import annotations

import ast
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tokmon.watch import model as m

NOW = 1_760_000_000.0  # fixed clock for every test


def iso(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class Rec:
    """Just the UsageRecord fields the view-model reads."""

    def __init__(self, ts: float, tokens: int, session: str = "s1", cost: float = 0.0) -> None:
        self.ts = ts
        self.total_tokens = tokens
        self.session_id = session
        self.cost = cost


def row(
    sid: str,
    total: int,
    *,
    title: str | None = None,
    project: str = "proj",
    cost=1.0,
    last: float = NOW - 60,
) -> dict:
    return {
        "sessionId": sid,
        "projectPath": f"/home/u/{project}",
        "projectName": project,
        "firstActivity": iso(last - 600),
        "lastActivity": iso(last),
        "inputTokens": 10,
        "outputTokens": 20,
        "cacheCreationTokens": 30,
        "cacheReadTokens": total - 60,
        "totalTokens": total,
        "totalCost": cost,
        "modelsUsed": ["claude-sonnet-4-5", "<synthetic>"],
        "entries": 2,
        "title": title,
        "isActive": True,
    }


def summary(
    rows: list[dict],
    *,
    totals: int = 10_000,
    block: dict | None = None,
    limit: int | None = None,
    official: dict | None = None,
) -> dict:
    return {
        "today": {
            "inputTokens": 1,
            "outputTokens": 2,
            "cacheCreationTokens": 3,
            "cacheReadTokens": 4,
            "totalTokens": 10,
            "totalCost": 0.5,
        },
        "week": {"totalTokens": 70, "totalCost": 3.5},
        "totals": {"totalTokens": totals, "totalCost": totals / 1000},
        "activeBlock": block,
        "tokenLimit": {"tokens": limit, "source": "config" if limit else None},
        "official": official,
        "activeSessions": rows,
    }


def test_the_view_model_imports_no_ui_library():
    src = Path(m.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"textual", "rich", "prompt_toolkit", "curses"}


@pytest.mark.parametrize(
    "n, text",
    [
        (None, "-"),
        (0, "0"),
        (950, "950"),
        (999.6, "1.00k"),
        (12_345, "12.3k"),
        (999_999, "1.00M"),
        (4_560_000, "4.56M"),
        (123_400_000, "123M"),
        (1.2e9, "1.20B"),
        (-2500, "-2.50k"),
    ],
)
def test_fmt_tokens(n, text):
    assert m.fmt_tokens(n) == text


def test_other_formatters():
    assert m.fmt_cost(0.041) == "$0.04"
    assert m.fmt_cost(1234.5) == "$1,234.50"  # the shared rule (tokmon/fmt.py)
    assert m.fmt_minutes(125) == "2h05m"
    assert m.fmt_minutes(7.4) == "7m"
    assert m.fmt_minutes(-3) == "0m"
    assert m.fmt_minutes(None) == "-"
    assert m.fmt_age(3) == "now"
    assert m.fmt_age(45) == "now"
    assert m.fmt_age(12 * 60 + 5) == "12m"
    assert m.fmt_age(3 * 3600) == "3h"
    assert m.bar(50, 10) == "█████░░░░░"
    assert m.bar(150, 4) == "████"
    assert m.bar(None, 3) == "░░░"
    assert m.parse_iso("2025-01-02T03:04:05.000Z") == 1735787045.0
    assert m.parse_iso("garbage") is None


def test_bucket_usage_only_counts_the_window_and_puts_records_in_their_minute():
    recs = [
        Rec(NOW - 7 * 3600, 999),  # outside the 3-minute window
        Rec(NOW - 150, 5),  # bucket 0: [now-180, now-120)
        Rec(NOW - 90, 200),  # bucket 1
        Rec(NOW - 30, 100),  # bucket 2
        Rec(NOW + 5, 7),  # clock skew: counted in the newest bucket
    ]
    assert m.bucket_usage(recs, NOW, minutes=3) == [5, 200, 107]
    assert m.bucket_usage([], NOW, minutes=2) == [0, 0]


def test_downsample_and_sparkline():
    assert m.downsample([1, 2, 3, 4, 5, 6], 3) == [3, 7, 11]
    assert m.downsample([1, 2], 5) == [1, 2]
    assert m.sparkline([0, 1, 7]) == "▁▂█"
    assert m.sparkline([0, 0]) == "▁▁"
    assert m.sparkline([]) == ""
    assert len(m.sparkline(list(range(40)))) == 40


def test_burn_level_uses_ccusage_thresholds():
    assert m.burn_level(None) == "low"
    assert m.burn_level(500) == "low"
    assert m.burn_level(501) == "medium"
    assert m.burn_level(1000) == "medium"
    assert m.burn_level(1000.5) == "high"


def _block(start: float, total: int, **extra) -> dict:
    b = {
        "startTime": iso(start),
        "endTime": iso(start + 5 * 3600),
        "tokenCounts": {
            "inputTokens": 1000,
            "outputTokens": 4000,
            "cacheCreationInputTokens": 45_000,
            "cacheReadInputTokens": total - 50_000,
        },
        "totalTokens": total,
        "costUSD": 1.25,
        "burnRate": {
            "tokensPerMinute": 2000.0,
            "tokensPerMinuteForIndicator": 600.0,
            "costPerHour": 0.9,
        },
        "projection": {"totalTokens": 900_000, "totalCost": 4.0, "remainingMinutes": 240},
        "models": ["claude-sonnet-4-5", "<synthetic>"],
        "burnLevel": "medium",
        "limitPercent": None,
    }
    b.update(extra)
    return b


def test_block_view_recomputes_time_figures_for_now_and_limit_percentages():
    start = NOW - 3600  # one hour into a five-hour block
    s = summary([], block=_block(start, 250_000), limit=1_000_000)
    b = m.block_view(s, NOW)
    assert b is not None
    assert b.time_pct == pytest.approx(20.0)
    assert b.remaining_minutes == pytest.approx(240.0)
    assert b.tokens == 250_000
    assert b.limit_pct == pytest.approx(25.0)  # computed: the summary gave no limitPercent
    assert b.projected_limit_pct == pytest.approx(90.0)
    assert b.burn_level == "medium"
    assert dict(b.by_type) == {
        "input": 1000,
        "output": 4000,
        "cache write": 45_000,
        "cache read": 200_000,
    }
    assert b.models == ["claude-sonnet-4-5"]
    # 30 minutes later the countdown moved without a new summary
    later = m.block_view(s, NOW + 1800)
    assert later.remaining_minutes == pytest.approx(210.0)
    assert later.time_pct == pytest.approx(30.0)


def test_block_view_handles_no_block_no_limit_and_missing_rates():
    assert m.block_view(summary([]), NOW) is None
    b = m.block_view(
        summary([], block=_block(NOW - 60, 60_000, burnRate=None, projection=None, burnLevel=None)),
        NOW,
    )
    assert b.limit_pct is None and b.projected_limit_pct is None
    assert b.burn_tpm is None and b.projected_tokens is None
    assert b.burn_level == "low"


def test_official_view_reads_the_official_store_shape():
    off = {
        "sessionId": "x",
        "observedAt": NOW - 120,
        "fiveHour": {"usedPercentage": 42.0, "resetsAt": NOW + 3600},
        "sevenDay": {"usedPercentage": 12.5, "resetsAt": NOW + 86400},
    }
    o = m.official_view(off, NOW)
    assert (o.five_hour_pct, o.seven_day_pct) == (42.0, 12.5)
    assert o.five_hour_resets == NOW + 3600
    assert o.age_s == pytest.approx(120)
    assert m.official_view({"fiveHour": None, "sevenDay": None}, NOW) is None
    assert m.official_view(None, NOW) is None


def test_session_label_prefers_user_name_then_title_then_project():
    r = row("abcdef123456", 100, title="Claude title", project="web")
    assert m.session_label(r, {"name": "my name"}) == "my name"
    assert m.session_label(r, {}) == "Claude title"
    assert m.session_label(row("abcdef123456", 100, project="web"), None) == "web"
    assert m.session_label({"sessionId": "abcdef123456"}, None) == "abcdef12"


def snap(rows, *, totals=10_000, taken=NOW, meta=None, with_totals=None, minute_usage=None):
    return m.Snapshot(
        summary=summary(rows, totals=totals),
        taken_at=taken,
        minute_usage=minute_usage or [],
        metadata=meta or {},
        session_totals=with_totals,
    )


def test_selection_moves_clamps_and_follows_the_session_across_refreshes():
    st = m.DashboardState()
    rows = [row("a", 100), row("b", 200), row("c", 300)]
    v = st.view(snap(rows), NOW)
    assert v.selected == 0 and v.selected_session.session_id == "a"
    st.move(1)
    st.move(1)
    st.move(1)  # clamps at the last row
    assert st.view(snap(rows), NOW).selected_session.session_id == "c"
    st.move(-1)
    assert st.selected_id == "b"
    # a new session arrives on top: the selection stays on "b", now at index 2
    v = st.view(snap([row("new", 5)] + rows), NOW)
    assert v.selected == 2 and v.selected_session.session_id == "b"
    # "b" disappears: the first row is selected
    v = st.view(snap([row("a", 100)]), NOW)
    assert v.selected == 0 and st.selected_id == "a"
    assert st.view(snap([]), NOW).selected is None


def test_filter_matches_words_names_projects_and_tags():
    st = m.DashboardState()
    rows = [
        row("a1", 100, project="api"),
        row("b2", 200, project="web"),
        row("c3", 300, title="Fix login bug", project="web"),
    ]
    meta = {
        "a1": {"name": "payments", "tags": ["urgent", "backend"]},
        "b2": {"name": None, "tags": ["frontend"]},
    }
    ids = lambda v: [s.session_id for s in v.sessions]  # noqa: E731
    st.set_filter("web")
    assert ids(st.view(snap(rows, meta=meta), NOW)) == ["b2", "c3"]
    st.set_filter("#front")
    assert ids(st.view(snap(rows, meta=meta), NOW)) == ["b2"]
    st.set_filter("#urgent PAY")
    assert ids(st.view(snap(rows, meta=meta), NOW)) == ["a1"]
    st.set_filter("login")
    v = st.view(snap(rows, meta=meta), NOW)
    assert ids(v) == ["c3"] and v.active_count == 3 and v.selected_session.session_id == "c3"
    st.set_filter("nomatch")
    v = st.view(snap(rows, meta=meta), NOW)
    assert v.sessions == [] and v.selected is None
    st.set_filter("")
    assert len(st.view(snap(rows, meta=meta), NOW).sessions) == 3


def test_reset_baselines_give_since_reset_deltas():
    st = m.DashboardState()
    first = snap(
        [row("a", 1000, cost=1.0)],
        totals=50_000,
        with_totals={"a": (1000, 1.0), "old": (49_000, 49.0)},
    )
    st.apply_snapshot(first)
    v = st.view(first, NOW)
    assert v.since_reset_tokens == 0 and v.sessions[0].delta_tokens == 0
    assert v.reset_at == NOW
    # 500 tokens more in "a", plus a brand-new session "b" with 300
    second = snap(
        [row("b", 300, cost=0.3), row("a", 1500, cost=1.5)], totals=50_800, taken=NOW + 10
    )
    st.apply_snapshot(second)
    v = st.view(second, NOW + 10)
    deltas = {s.session_id: s.delta_tokens for s in v.sessions}
    assert deltas == {"a": 500, "b": 300}
    assert v.since_reset_tokens == 800
    assert v.sessions[1].delta_cost == pytest.approx(0.5)
    # r: a snapshot without totals does not reset; the next one with totals does
    st.request_reset()
    st.apply_snapshot(second)
    assert st.view(second, NOW + 10).since_reset_tokens == 800
    third = snap(
        [row("b", 300), row("a", 1500)],
        totals=50_800,
        taken=NOW + 20,
        with_totals={"a": (1500, 1.5), "b": (300, 0.3), "old": (49_000, 49.0)},
    )
    st.apply_snapshot(third)
    v = st.view(third, NOW + 20)
    assert v.since_reset_tokens == 0 and v.reset_at == NOW + 20
    assert [s.delta_tokens for s in v.sessions] == [0, 0]


def test_sparkline_slides_with_the_clock_between_snapshots():
    st = m.DashboardState()
    s = snap([], minute_usage=[1, 2, 3, 4])
    assert st.view(s, NOW + 30).spark_values == [1, 2, 3, 4]
    assert st.view(s, NOW + 125).spark_values == [3, 4, 0, 0]
    assert st.view(s, NOW + 3600).spark_values == [0, 0, 0, 0]


def test_parse_tag_input():
    assert m.parse_tag_input("a, b -c #d") == (["a", "b", "d"], ["c"])
    assert m.parse_tag_input("  ") == ([], [])
    assert m.parse_tag_input("x x -y -y -") == (["x"], ["y"])


def test_compact_line_fits_the_width_and_drops_whole_parts():
    st = m.DashboardState()
    s = m.Snapshot(
        summary=summary([], block=_block(NOW - 3600, 250_000), limit=1_000_000),
        taken_at=NOW,
        minute_usage=[0, 5, 10],
    )
    v = st.view(s, NOW)
    wide = m.compact_line(v, 200)
    assert wide.startswith("blk 250k 25% │ 4h00m left │ 600/m medium │ →900k")  # in+out basis
    assert "today 10 $0.50" in wide
    narrow = m.compact_line(v, 40)
    assert len(narrow) <= 40
    assert narrow.startswith("blk 250k 25% │ 4h00m left")
    assert "tod" not in narrow or "today 10" in narrow  # never cut mid-part
    assert m.compact_line(m.DashboardState().view(snap([]), NOW), 80).startswith("no active block")


def test_session_totals_sum_tokens_and_cost_per_session():
    recs = [Rec(1, 10, "a", 0.1), Rec(2, 5, "b", 0.2), Rec(3, 7, "a", 0.3)]
    out = m.session_totals(recs)
    assert out["a"][0] == 17 and out["a"][1] == pytest.approx(0.4)
    assert out["b"] == (5, 0.2)


def test_sessions_with_the_same_label_get_their_short_id():
    rows = [
        row("aaaaaaaa-1", 10, project="notes"),
        row("bbbbbbbb-2", 20, project="notes"),
        row("cccccccc-3", 30, project="web"),
    ]
    labels = [x.label for x in m.DashboardState().view(snap(rows), NOW).sessions]
    assert labels == ["notes · aaaaaaaa", "notes · bbbbbbbb", "web"]


def test_sparkline_bars_cover_equal_time_and_the_caption_says_how_much():
    assert m.spark_cells(360, 108) == 90  # 4 minutes per bar
    assert m.spark_cells(360, 80) == 72
    assert m.spark_cells(360, 400) == 360
    assert m.spark_cells(7, 3) == 1
    minutes = [0] * 360
    minutes[-1] = 700  # the last 4-minute bar holds 700 + 500
    minutes[-4] = 500
    minutes[0] = 100
    v = m.DashboardState().view(snap([], minute_usage=minutes), NOW)
    line = v.spark(108)
    assert len(line) == 90 and line[-1] == "█" and line[0] == "▂" and line[1] == "▁"
    assert v.spark_caption(108) == "Last 6h · 4m/bar · peak 1.20k"


def test_a_redraw_of_the_same_snapshot_reuses_its_session_views():
    """The dashboard redraws every second: the session views of one snapshot are built once
    (they do not depend on the clock), and a new snapshot or a reset's baseline rebuilds them."""
    st = m.DashboardState()
    built: list[str] = []
    real = m.session_view

    def counted(r, meta, base):
        built.append(str(r.get("sessionId")))
        return real(r, meta, base)

    m.session_view = counted
    try:
        first = snap([row("a", 1000, cost=1.0)], with_totals={"a": (1000, 1.0)})
        st.apply_snapshot(first)
        for t in range(5):
            v = st.view(first, NOW + t)
            assert v.now == NOW + t and v.updated_age_s == t  # the clock still moves
        assert built == ["a"]
        second = snap([row("a", 1500, cost=1.5)], taken=NOW + 10)
        st.apply_snapshot(second)
        assert st.view(second, NOW + 10).sessions[0].delta_tokens == 500
        assert built == ["a", "a"]
        st.request_reset()
        third = snap([row("a", 1500, cost=1.5)], taken=NOW + 20, with_totals={"a": (1500, 1.5)})
        st.apply_snapshot(third)
        assert st.view(third, NOW + 20).sessions[0].delta_tokens == 0
        # the baseline changed with the same rows: rebuilt, not the kept views
        st.request_reset()
        st.apply_snapshot(third)
        assert st.view(third, NOW + 21).sessions[0].delta_tokens == 0
        assert built == ["a", "a", "a", "a"]
    finally:
        m.session_view = real
