"""`tokmon watch` shows the weekly limit window: official %, pace, ETA and a 7-day sparkline.

A real dashboard in tmux at 80x24 over a copy of the real corpus. The history holds figures
recorded on earlier days (written through the history module, as an earlier statusline run
would have) and today's figure comes from the real `tokmon line --claude` with a payload on
stdin. Expected values are computed here from the payloads, not read back from tokmon.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
pytest.importorskip("textual", reason="tokmon watch needs textual")

from test_watch_tmux import REPO, Dashboard, corpus_source  # noqa: E402

DAY = 86400.0
WEEK = 7 * DAY
SPARK = "▁▂▃▄▅▆▇█"
# earlier figures of the 7-day window: (days ago at noon UTC, %)
EARLIER = [(5, 10.0), (3, 25.0), (1, 40.0)]
TODAY = 61.0
OPENED_DAYS_AGO = 3.0  # the current week opened 3 days ago


def _line(env: dict[str, str], week: float, reset: float) -> None:
    payload = {
        "session_id": "weekly-test",
        "rate_limits": {
            "five_hour": {"used_percentage": 20, "resets_at": int(time.time()) + 3600},
            "seven_day": {"used_percentage": week, "resets_at": reset},
            "seven_day_opus": {"used_percentage": 7, "resets_at": reset},
        },
    }
    subprocess.run([sys.executable, "-m", "tokmon", "line", "--claude"], cwd=REPO, timeout=60,
                   input=json.dumps(payload), capture_output=True, text=True, check=True,
                   env={**os.environ, **env})  # fmt: skip


@pytest.fixture(scope="module")
def weekly_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    src = corpus_source()
    if not src.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"test corpus not found at {src}")
        pytest.skip(f"test corpus not found at {src}")
    root = tmp_path_factory.mktemp("watch-weekly")
    corpus = root / "claude"
    shutil.copytree(src, corpus)
    env = {"TOKMON_HOME": str(root / "home"), "CLAUDE_CONFIG_DIR": str(corpus), "TZ": "UTC"}
    now = time.time()
    reset = now + (7 - OPENED_DAYS_AGO) * DAY
    # the figures of earlier days, as earlier statusline runs recorded them
    from tokmon.limits import history
    from tokmon.paths import get_paths

    today = datetime.fromtimestamp(now, timezone.utc).replace(hour=12, minute=0, second=0,
                                                              microsecond=0)  # fmt: skip
    rows = []
    for days_ago, used in EARLIER:
        ts = (today - timedelta(days=days_ago)).timestamp()
        inst_reset = reset if ts >= reset - WEEK else reset - WEEK
        rows.append(history.Obs(ts, "claude", "seven_day", used, inst_reset, WEEK))
    with history.opened(get_paths(env)) as con:
        history.append(con, rows)
    _line(env, TODAY, reset)
    env["_RESET"] = str(reset)
    env["_NOW"] = str(now)
    return env


def _expected_spark(now: float, figures: list[tuple[float, float]]) -> str:
    """End-of-day figure for each of the last 7 UTC days (today: now), as 8-level blocks."""
    out = []
    today = datetime.fromtimestamp(now, timezone.utc).date()
    for i in range(6, -1, -1):
        d = today - timedelta(days=i)
        end = (
            now
            if i == 0
            else datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() + DAY - 1
        )
        vals = [u for ts, u in sorted(figures) if ts <= end]
        out.append(" " if not vals else SPARK[round(vals[-1] / 100 * 7)])
    return "".join(out)


def test_watch_shows_the_weekly_window_with_pace_eta_and_history(
    weekly_env: dict[str, str],
) -> None:
    env = {k: v for k, v in weekly_env.items() if not k.startswith("_")}
    now, reset = float(weekly_env["_NOW"]), float(weekly_env["_RESET"])
    d = Dashboard(env, width=80, height=24)
    try:
        d.wait_text("Week 61%")
        row = d.row("Week 61%")
        # pace: 61 % after 3 of 7 days
        pace = TODAY / (OPENED_DAYS_AGO / 7 * 100)
        assert f"pace {pace:.2f}x" in row, row
        # 100 % at: the window's start + elapsed * 100 / used (before the reset)
        start = reset - WEEK
        eta = start + (now - start) * 100 / TODAY
        assert eta < reset
        shown = {
            datetime.fromtimestamp(t, timezone.utc).strftime("%a %H:%M")
            for t in (eta - 60, eta, eta + 60)
        }
        assert any(f"100% {s}" in row for s in shown), (row, shown)
        # the 7-day sparkline of end-of-day figures
        today = datetime.fromtimestamp(now, timezone.utc).replace(hour=12, minute=0, second=0,
                                                                  microsecond=0)  # fmt: skip
        figures = [((today - timedelta(days=a)).timestamp(), u) for a, u in EARLIER]
        figures.append((now, TODAY))
        spark = _expected_spark(now, figures)
        assert spark.strip() in row, (row, spark)
        assert "ESTIMATE" not in row
        scr = d.screen()
        for line in scr.splitlines():
            assert len(line) <= 80
        # the panels keep their places: the weekly row sits between sparkline and sessions
        lines = scr.splitlines()
        at = next(i for i, ln in enumerate(lines) if "Week 61%" in ln)
        assert "Last " in lines[at - 1] and "Active sessions" in lines[at + 1], scr
        # a new statusLine figure reaches the open dashboard
        _line(env, 70.0, reset)
        d.wait_text("Week 70%")
        assert "pace" in d.row("Week 70%")
    finally:
        d.close()


def test_weekly_row_stays_hidden_without_figures(tmp_path: Path) -> None:
    src = corpus_source()
    if not src.is_dir():
        pytest.skip(f"test corpus not found at {src}")
    corpus = tmp_path / "claude"
    shutil.copytree(src, corpus)
    env = {"TOKMON_HOME": str(tmp_path / "home"), "CLAUDE_CONFIG_DIR": str(corpus), "TZ": "UTC"}
    d = Dashboard(env, width=80, height=24)
    try:
        d.wait_text("Current block")
        d.wait(lambda s: "Last " in s, what="sparkline row")
        scr = d.screen()
        assert not re.search(r"Week ~?\d+%", scr), scr
        lines = scr.splitlines()
        at = next(i for i, ln in enumerate(lines) if "Last " in ln)
        assert "Active sessions" in lines[at + 1], scr  # no empty row where it would be
    finally:
        d.close()
