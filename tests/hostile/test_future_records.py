"""Issue 10, item 11: records dated in the future (clock skew, bad data).

Today / this week / this month are bounded at their end, a block that starts in the future
is never the current one, and records more than a day ahead (``engine.FUTURE_SLACK``) are
flagged with one warning line; they still count on their own dates and in all-time totals.
Expected sums are computed here from the record dates, independently of the engine.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import assistant_line, run_tokmon, write_lines

from tokmon.core.engine import Engine
from tokmon.paths import get_paths

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
RECORDS = [  # (time, input tokens)
    (NOW - timedelta(hours=1), 5),  # today, current block
    (NOW + timedelta(minutes=30), 7),  # slight skew: still today, not flagged
    (NOW + timedelta(hours=14), 11),  # tomorrow: not today, not flagged (< 1 day ahead)
    (datetime(2100, 1, 1, tzinfo=timezone.utc), 13),  # far future: flagged
    (datetime(2150, 6, 1, tzinfo=timezone.utc), 17),  # far future: flagged
]


def _write(root: Path) -> None:
    lines = [
        assistant_line(t, msg_id=f"m{i}", req_id=f"r{i}", inp=n, out=0)
        for i, (t, n) in enumerate(RECORDS)
    ]
    write_lines(root / "p" / "a.jsonl", lines)


def _sum(lo: datetime, hi: datetime) -> int:
    return sum(n for t, n in RECORDS if lo <= t < hi)


def test_periods_are_bounded_and_far_future_flagged(tmp_path: Path) -> None:
    root = tmp_path / "claude" / "projects"
    _write(root)
    eng = Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(tmp_path / "home")}))
    changes = eng.refresh()

    s = eng.summary(now=NOW.timestamp(), tz="UTC").to_json()
    day0 = NOW.replace(hour=0)
    week0 = day0 - timedelta(days=(day0.weekday() + 1) % 7)  # weeks start on Sunday
    month0 = day0.replace(day=1)
    month1 = month0.replace(month=12)
    assert s["today"]["inputTokens"] == _sum(day0, day0 + timedelta(days=1)) == 12
    assert s["week"]["inputTokens"] == _sum(week0, week0 + timedelta(days=7))
    assert s["month"]["inputTokens"] == _sum(month0, month1)
    assert s["totals"]["inputTokens"] == sum(n for _, n in RECORDS)
    block = s["activeBlock"]
    assert block is not None and block["startTime"].startswith("2026-11-29T11:00")
    assert 0 < block["remainingMinutes"] <= 5 * 60  # not "355048d left"
    flagged = [w for w in changes.warnings if "future" in w]
    assert len(flagged) == 1 and flagged[0].startswith("2 record(s)") and "2150-06-01" in flagged[0]


def test_cli_warns_once(tmp_path: Path, env: dict[str, str]) -> None:
    _write(tmp_path / "claude" / "projects")
    e = {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    r = run_tokmon(["daily", "--json"], e)
    assert r.returncode == 0
    assert len([ln for ln in r.stderr.splitlines() if "future" in ln]) == 1
    r = run_tokmon(["daily", "--json"], e)
    assert "future" not in r.stderr  # flagged when first read, not on every run
