"""The pieces the surfaces share: each window's ``history`` in the limits status, and the
watch dashboard's weekly row (end-of-day figures, sparkline, one-line priority layout)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tokmon.limits import history, status
from tokmon.paths import get_paths
from tokmon.watch.weekly import WeeklyView, daily_figures, render_weekly, sparkline, weekly_view

DAY = 86400.0
WEEK = 7 * DAY
NOW = datetime(2026, 1, 16, 12, 30, tzinfo=timezone.utc).timestamp()


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


def test_status_windows_carry_their_last_eight_days(tmp_path: Path) -> None:
    paths = get_paths({"TOKMON_HOME": str(tmp_path / "home")})
    reset = NOW + 4 * DAY
    rows = [
        history.Obs(NOW - 10 * DAY, "claude", "seven_day", 3.0, reset - 2 * WEEK, WEEK),  # too old
        history.Obs(NOW - 6 * DAY, "claude", "seven_day", 20.0, reset - WEEK, WEEK),
        history.Obs(NOW - 2 * DAY, "claude", "seven_day", 5.0, reset, WEEK),
        history.Obs(NOW - 2 * DAY, "claude", "five_hour", 50.0, NOW - 2 * DAY + 3600, 18000.0),
        history.Obs(NOW - 60, "claude", "seven_day", 30.0, reset, WEEK),
        history.Obs(NOW + 60, "claude", "seven_day", 99.0, reset, WEEK),  # after `now`
    ]
    with history.opened(paths) as con:
        history.append(con, rows)
    st = status.build(paths, [], now=NOW, use_official_file=False)
    by = {w["window"]: w for w in st["windows"]}
    assert by["seven_day"]["history"] == [[NOW - 6 * DAY, 20.0], [NOW - 2 * DAY, 5.0],
                                          [NOW - 60, 30.0]]  # fmt: skip
    assert by["five_hour"]["history"] == [[NOW - 2 * DAY, 50.0]]


def test_daily_figures_follow_the_zone() -> None:
    hist = [[_at("2026-01-10T10:00"), 5.0], [_at("2026-01-12T20:00"), 20.0],
            [_at("2026-01-16T11:00"), 61.0]]  # fmt: skip
    utc = daily_figures(hist, NOW, timezone.utc)
    assert utc == [5.0, 5.0, 20.0, 20.0, 20.0, 20.0, 61.0]  # Jan 10 .. Jan 16
    # 20:00 UTC on Jan 12 is already Jan 13 in Kolkata (UTC+5:30)
    assert daily_figures(hist, NOW, ZoneInfo("Asia/Kolkata")) == [5.0, 5.0, 5.0, 20.0, 20.0,
                                                                  20.0, 61.0]  # fmt: skip
    assert daily_figures(hist, NOW, timezone.utc, days=9)[:2] == [None, None]
    assert sparkline([None, 0.0, 50.0, 100.0, 140.0]) == " ▁▅██"


def _view(**kw: object) -> WeeklyView:
    base: dict[str, object] = dict(label="Claude 7-day", used=61.0, basis="official",
                                   stale=False, pace=1.4233, eta=NOW + 1.9 * DAY,
                                   resets_at=NOW + 4 * DAY, days=[None, 5.0, 61.0],
                                   models=[("Claude 7-day opus", 7.0)])  # fmt: skip
    base.update(kw)
    return WeeklyView(**base)  # type: ignore[arg-type]


def test_weekly_row_keeps_the_figure_and_drops_what_does_not_fit() -> None:
    tz = timezone.utc
    wide = render_weekly(_view(), 120, NOW, tz).plain
    # Jan 16 2026 is a Friday: ETA 1.9 days later is Sunday 10:06, reset Tuesday 12:30;
    # 5 % -> block 0 of 8, 61 % -> round(0.61 * 7) = 4
    assert wide == "Week 61%  pace 1.42x  100% Sun 10:06   ▁▅  resets Tue 12:30  opus 7%"
    narrow = render_weekly(_view(), 24, NOW, tz).plain
    assert narrow.startswith("Week 61%  pace 1.42x") and len(narrow) <= 24
    tiny = render_weekly(_view(), 5, NOW, tz).plain
    assert tiny == "Week 61%"  # the figure itself is never dropped
    est = render_weekly(_view(basis="estimate", pace=None, eta=None), 80, NOW, tz).plain
    assert est.startswith("Week ~61% ESTIMATE")
    later = render_weekly(_view(eta=None), 120, NOW, tz).plain
    assert "100% not before reset" in later


@pytest.mark.parametrize(
    ("windows", "label"),
    [
        ([{"source": "codex", "window": "secondary", "length": WEEK, "label": "Codex 7-day"},
          {"source": "claude", "window": "seven_day", "length": WEEK, "label": "Claude 7-day"}],
         "Claude 7-day"),
        ([{"source": "codex", "window": "primary", "length": 18000.0, "label": "Codex 5-hour"},
          {"source": "codex", "window": "secondary", "length": WEEK, "label": "Codex 7-day"}],
         "Codex 7-day"),
        ([{"source": "claude", "window": "five_hour", "length": 18000.0, "label": "x"}], None),
    ],
)  # fmt: skip
def test_weekly_view_picks_the_week(windows: list[dict[str, object]], label: str | None) -> None:
    for w in windows:
        w.update(basis="official", usedPercent=10.0, history=[])
    v = weekly_view({"windows": windows}, NOW, timezone.utc)
    assert (v.label if v else None) == label
    assert weekly_view(None, NOW, timezone.utc) is None
    assert weekly_view({"windows": "bad"}, NOW, timezone.utc) is None


def test_daily_figures_cross_a_dst_change() -> None:
    # Europe/Berlin leaves DST on 2026-10-25: that day is 25 hours long
    tz = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 10, 27, 12, 0, tzinfo=tz).timestamp()
    late = datetime(2026, 10, 25, 23, 30, tzinfo=tz).timestamp()
    days = daily_figures([[late, 42.0]], now, tz, days=4)
    assert days == [None, 42.0, 42.0, 42.0]  # Oct 24 .. 27: 23:30 counts for the 25th


def test_watch_weekly_status_learns_codex_windows_from_the_dashboards_engine(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The `watch` Week row's status is built with the dashboard engine's Codex records, so
    Codex windows get their calibration there too (computed here at published prices)."""
    from datetime import datetime, timezone

    from limits_support import CodexRollout

    from tokmon.core.engine import Engine
    from tokmon.limits import ingest
    from tokmon.paths import get_paths
    from tokmon.watch.weekly import WeeklyPoller

    t0 = datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp()
    env = {**env, "CODEX_HOME": str(tmp_path / "codex")}
    paths = get_paths(env)
    roll = CodexRollout(tmp_path / "codex" / "sessions" / "2026" / "03" / "02" / "rollout-w.jsonl")
    reset = t0 + 5 * 3600
    roll.turn(
        t0 + 3600, "gpt-5-codex", 300_000, 200_000, 5_000, (20.0, reset), (2.0, t0 + 7 * 86400)
    )
    eng = Engine(roots=[tmp_path / "none"], paths=paths, env=env, agents=True)
    eng.refresh()
    ingest.ingest(paths, env, [])

    class App:
        refresher = type("R", (), {"engine": eng, "paths": paths})()

        def call_from_thread(self, fn: Any, *a: Any) -> None:
            fn(*a)

    poller = WeeklyPoller(App(), paths)
    poller._load()
    assert poller.status is not None
    cal = poller.status["calibration"]["primary"]
    assert cal["source"] == "codex"
    assert cal["dollarsPerPercent"] == pytest.approx(roll.between(t0, t0 + 3600)[1] / 20.0)
