"""5-hour blocks: hour-floor starts, strict > 5 h rules, gaps, activity, burn rate, projection."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tokmon.core.blocks import blocks_json, burn_level, compute_blocks, max_completed_tokens
from tokmon.core.model import UsageRecord

T0 = datetime(2026, 3, 1, 10, 17, 30, tzinfo=timezone.utc)


def rec(dt: datetime, i: int = 100, o: int = 50, cost: float = 0.01) -> UsageRecord:
    return UsageRecord(dt.timestamp(), "s", "/p", "claude-sonnet-4-5", i, o, 0, 0, 0, str(dt), cost)


def test_block_starts_at_utc_hour_floor_and_splits_after_five_hours() -> None:
    rs = [
        rec(T0),
        rec(T0 + timedelta(hours=4, minutes=40)),  # 14:57:30: same block (start 10:00)
        rec(T0 + timedelta(hours=4, minutes=43)),
    ]  # 15:00:30: > 5 h after 10:00 -> new
    bl = blocks_json(compute_blocks(rs, now=(T0 + timedelta(days=2)).timestamp()))
    assert [b["startTime"] for b in bl] == ["2026-03-01T10:00:00.000Z", "2026-03-01T15:00:00.000Z"]
    assert [b["entries"] for b in bl] == [2, 1]
    assert bl[0]["endTime"] == "2026-03-01T15:00:00.000Z"
    assert not any(b["isGap"] for b in bl)


def test_entry_exactly_at_block_end_stays_in_block() -> None:
    start = datetime(2026, 3, 1, 10, 0, 0, tzinfo=timezone.utc)
    rs = [rec(start), rec(start + timedelta(hours=2)), rec(start + timedelta(hours=5))]
    bl = blocks_json(compute_blocks(rs, now=(start + timedelta(days=1)).timestamp()))
    assert len(bl) == 1 and bl[0]["entries"] == 3


def test_gap_block_between_idle_periods() -> None:
    rs = [rec(T0), rec(T0 + timedelta(hours=11))]
    bl = blocks_json(compute_blocks(rs, now=(T0 + timedelta(days=1)).timestamp()))
    assert [b["isGap"] for b in bl] == [False, True, False]
    gap = bl[1]
    assert gap["startTime"] == "2026-03-01T15:17:30.000Z"  # last entry + 5 h
    assert gap["endTime"] == "2026-03-01T21:17:30.000Z"  # next entry
    assert gap["totalTokens"] == 0 and gap["entries"] == 0


def test_active_block_burn_rate_and_projection() -> None:
    rs = [rec(T0, 1000, 200, 0.10), rec(T0 + timedelta(minutes=30), 3000, 800, 0.30)]
    now = T0 + timedelta(minutes=40)
    b = blocks_json(compute_blocks(rs, now=now.timestamp()))[-1]
    assert b["isActive"]
    total = 1000 + 200 + 3000 + 800
    assert b["burnRate"]["tokensPerMinute"] == pytest.approx(total / 30)
    assert b["burnRate"]["tokensPerMinuteForIndicator"] == pytest.approx(total / 30)
    assert b["burnRate"]["costPerHour"] == pytest.approx(0.40 / 30 * 60)
    end = datetime(2026, 3, 1, 15, 0, tzinfo=timezone.utc)
    remaining = (end - now).total_seconds() / 60
    assert b["projection"]["remainingMinutes"] == round(remaining)
    assert b["projection"]["totalTokens"] == round(total + total / 30 * remaining)
    # Inactive once 5 h have passed since the last entry or the block ended.
    later = blocks_json(compute_blocks(rs, now=(end + timedelta(seconds=1)).timestamp()))[-1]
    assert not later["isActive"] and later["burnRate"] is None and later["projection"] is None


def test_max_completed_and_burn_levels() -> None:
    rs = [
        rec(T0, 10, 10),
        rec(T0 + timedelta(hours=7), 500, 500),
        rec(T0 + timedelta(hours=14), 1, 1),
    ]
    now = T0 + timedelta(hours=14, minutes=1)
    bl = blocks_json(compute_blocks(rs, now=now.timestamp()))
    assert bl[-1]["isActive"]
    assert (
        max_completed_tokens(compute_blocks(rs, now=now.timestamp())) == 1000
    )  # the active block does not count
    assert burn_level(None) == "low"
    assert burn_level(400) == "low"
    assert burn_level(501) == "medium"
    assert burn_level(1001) == "high"
