"""`tokmon line` shows when the official window reaches 100% at the current pace."""

from __future__ import annotations

import json
import time

from conftest import run_tokmon
from limits_support import payload

from tokmon.statusline import formats

H = 3600.0


def test_eta_shown_beside_the_official_percent_only_when_it_comes_before_the_reset() -> None:
    now = 1_780_000_000.0
    # 60% one hour into the window: 300% by the reset; 100% after 1h40m
    fast = {"observedAt": now, "fiveHour": {"usedPercentage": 60.0, "resetsAt": now + 4 * H,
                                            "observedAt": now}}  # fmt: skip
    segs = formats.build_segments({}, now, claude={"official": fast})
    eta = time.strftime("%H:%M", time.localtime(now - H + H * 100 / 60))
    assert formats.render(segs, "plain") == f"5h 60%[now] 100%@{eta}"
    # 30% four hours in: 37.5% by the reset, nothing to add
    slow = {"observedAt": now, "fiveHour": {"usedPercentage": 30.0, "resetsAt": now + H,
                                            "observedAt": now}}  # fmt: skip
    assert (
        formats.render(formats.build_segments({}, now, claude={"official": slow}), "plain")
        == "5h 30%[now]"
    )
    # the weekly window: 50% after two days of seven: 100% on day four
    week = {"observedAt": now, "sevenDay": {"usedPercentage": 50.0, "resetsAt": now + 5 * 24 * H,
                                            "observedAt": now}}  # fmt: skip
    text = formats.render(formats.build_segments({}, now, claude={"official": week}), "plain")
    eta7 = time.strftime("%H:%M", time.localtime(now + 2 * 24 * H))
    assert text == f"7d 50%[now] 100%@{eta7}"


def test_statusline_prints_the_eta(env: dict[str, str], tmp_path) -> None:
    e = {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "none")}
    p = payload("s-eta", {"five_hour": (50.0, time.time() + 4.5 * H)})
    r = run_tokmon(["line", "--claude"], e, input=json.dumps(p))
    assert r.returncode == 0 and "100%@" in r.stdout, r.stdout
