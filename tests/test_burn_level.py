"""The burn level and the rate shown beside it agree, and a block projected over its limit is
never "low" (issue 13 item 3), on every surface: stats, watch and line.

The scenario is the one users hit: a cache-heavy block (millions of cache-read tokens, few
input/output tokens) whose projection is far above the token limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import assistant_line
from line_support import make_env, refresh_now, run_line

from tokmon.core.blocks import burn_level


def expected_level(indicator: float, projected_pct: float | None) -> str:
    """The documented rule, written out independently of tokmon.core.blocks."""
    if projected_pct is not None and projected_pct > 100:
        return "high"
    rate = "high" if indicator > 1000 else "medium" if indicator > 500 else "low"
    if projected_pct is not None and projected_pct > 80 and rate == "low":
        return "medium"
    return rate


@pytest.mark.parametrize(
    ("indicator", "pct"),
    [(None, None), (400, None), (501, None), (1001, None), (400, 50), (400, 85), (400, 101),
     (800, 85), (1200, 10), (0, 224)],
)  # fmt: skip
def test_level_rule(indicator: float | None, pct: float | None) -> None:
    want = expected_level(indicator or 0.0, pct)
    assert burn_level(indicator, pct) == want
    if pct is not None and pct > 100:
        assert want == "high"


@pytest.fixture(scope="module")
def cache_heavy(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], float]:
    tmp = tmp_path_factory.mktemp("burn")
    env = make_env(tmp, copy_corpus=False)
    env["NO_COLOR"] = "1"
    env["TZ"] = "UTC"
    now = time.time()
    t0, t1 = now - 50 * 60, now - 5 * 60
    proj = Path(env["CLAUDE_CONFIG_DIR"]) / "projects" / "-home-u-proj"
    proj.mkdir(parents=True)
    lines = [
        assistant_line(datetime.fromtimestamp(t, timezone.utc), msg_id=f"m{i}", req_id=f"r{i}",
                       inp=100, out=100, cr=2_000_000)
        for i, t in enumerate((t0, t1))
    ]  # fmt: skip
    (proj / "11111111-2222-3333-4444-555555555555.jsonl").write_text("\n".join(lines) + "\n")
    subprocess.run([sys.executable, "-m", "tokmon", "config", "set", "token_limit", "5000000"],
                   env=env, check=True, capture_output=True, timeout=60)  # fmt: skip
    indicator = 400 / ((t1 - t0) / 60)  # input + output tokens per minute
    return env, indicator


def stats(env: dict[str, str], *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "tokmon", "stats", *args], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_stats_level_agrees_with_its_number(cache_heavy: tuple[dict[str, str], float]) -> None:
    env, indicator = cache_heavy
    data: dict[str, Any] = json.loads(stats(env, "--json"))
    b = data["activeBlock"]
    assert b["burnRate"]["tokensPerMinuteForIndicator"] == pytest.approx(indicator)
    projected_pct = b["projection"]["totalTokens"] / 5_000_000 * 100
    assert projected_pct > 100 and indicator < 500  # slow by rate, over the limit by projection
    assert b["burnLevel"] == "high"
    text = stats(env)
    line = next(ln for ln in text.splitlines() if "Burn rate" in ln)
    shown = int(line.split("Burn rate high: ")[1].split()[0].replace(",", ""))
    assert shown == round(indicator)
    assert "input+output tokens/min" in line
    assert expected_level(shown, projected_pct) == "high"
    assert f"({round(projected_pct)}% of the limit)" in text


def test_watch_shows_the_same_level_and_basis(cache_heavy: tuple[dict[str, str], float]) -> None:
    pytest.importorskip("textual")
    from tokmon.watch.app import render_block
    from tokmon.watch.model import DashboardState, Snapshot

    env, indicator = cache_heavy
    summary = json.loads(stats(env, "--json"))
    now = time.time()
    view = DashboardState().view(Snapshot(summary=summary, taken_at=now), now)
    text = render_block(view, 60).plain
    burn = next(ln for ln in text.splitlines() if ln.startswith("Burn"))
    assert " HIGH " in burn and f" {round(indicator)} in+out tok/min" in burn
    for ln in text.splitlines():
        assert len(ln) <= 60


def test_line_shows_the_high_glyph(cache_heavy: tuple[dict[str, str], float]) -> None:
    env, _ = cache_heavy
    refresh_now(env)
    res = run_line([], env)
    assert res.returncode == 0, res.stderr
    assert "█" in res.stdout.split(" | ")[0]  # the high-burn glyph on the block segment
