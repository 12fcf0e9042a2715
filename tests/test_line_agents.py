"""`tokmon line`'s ``agents`` segment: the agents active in the last 5 hours with today's cost,
and Codex's official rate limits (``[age]`` = official, as for Claude's 5-hour figure).

Unit cases build snapshots by hand; the end-to-end case runs the real refresher and
``tokmon line`` on copies of the Claude and Codex corpora plus a fresh Codex rollout whose
figures the test wrote itself.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import need_agents_corpus, run_tokmon
from line_support import make_env, refresh_now, run_line

from tokmon.statusline import formats

H = 3600.0
NOW = 1_780_000_000.0


def snap(agents: dict | None = None, limits: dict | None = None) -> dict:
    return {
        "v": 1,
        "settings": {},
        "today": {"date": "x", "until": NOW + H, "totalCost": 1.0, "totalTokens": 10},
        "agents": agents,
        "agentLimits": limits,
    }


def agents_text(s: dict) -> str | None:
    seg = formats.agents_segment(s, NOW)
    return None if seg is None else seg["text"]


def test_lists_only_agents_active_in_the_last_five_hours() -> None:
    s = snap(
        {
            "claude": {"todayCost": 2.5, "todayTokens": 5, "lastActivity": NOW - 60},
            "codex": {"todayCost": 0.25, "todayTokens": 7, "lastActivity": NOW - 4.9 * H},
            "amp": {"todayCost": 9.0, "todayTokens": 9, "lastActivity": NOW - 5.1 * H},
        }
    )
    assert agents_text(s) == "claude $2.50 · codex $0.25"
    # Claude Code alone is no news: the `today` segment already shows its cost
    s["agents"] = {"claude": {"todayCost": 2.5, "todayTokens": 5, "lastActivity": NOW - 60}}
    assert agents_text(s) is None
    # nothing active and no official figure: no segment at all
    s["agents"] = {"amp": {"todayCost": 9.0, "lastActivity": NOW - 6 * H}}
    assert agents_text(s) is None
    assert agents_text(snap()) is None  # a Claude-only snapshot


def test_codex_limits_are_marked_official_and_drop_once_the_window_resets() -> None:
    limits = {
        "codex": {
            "primary": {"usedPercent": 42.0, "resetsAt": NOW + H, "length": 18000.0,
                        "observedAt": NOW - 120},
            "secondary": {"usedPercent": 85.0, "resetsAt": NOW - 1, "length": 604800.0,
                          "observedAt": NOW - 120},
        }
    }  # fmt: skip
    seg = formats.agents_segment(snap(None, limits), NOW)
    assert seg is not None
    assert seg["text"] == "codex 5h 42%[2m]"  # the reset 7-day figure is gone
    assert "official" in seg["explain"] and seg["level"] == "normal"
    limits["codex"]["secondary"]["resetsAt"] = NOW + 3 * 24 * H
    seg = formats.agents_segment(snap(None, limits), NOW)
    assert seg is not None and seg["text"] == "codex 5h 42%[2m] 7d 85%[2m]"
    assert seg["level"] == "warning"  # 85 % against the default 80 % warning threshold
    # the costs beside them are estimates, said so
    seg = formats.agents_segment(
        snap({"codex": {"todayCost": 1.0, "lastActivity": NOW}}, limits), NOW
    )
    assert seg is not None and seg["text"] == "codex $1.00 · codex 5h 42%[2m] 7d 85%[2m]"
    assert "estimate" in seg["explain"]


def test_segment_is_dropped_first_to_fit_and_usable_in_templates() -> None:
    s = snap({"codex": {"todayCost": 1.0, "lastActivity": NOW}})
    segs = formats.build_segments(s, NOW)
    assert [x["key"] for x in segs] == ["block", "today", "agents"]
    full = formats.render(segs, "plain")
    assert full == "5h idle | today $1.00 | codex $1.00"
    assert formats.render(formats.fit(segs, len(full) - 1), "plain") == "5h idle | today $1.00"
    assert formats.render(segs, "plain", template="[{agents_list}]") == "[codex $1.00]"


# --------------------------------------------------------------------------- end to end


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def fresh_rollout(codex_home: Path, now: float) -> tuple[int, float, float]:
    """A Codex rollout of one turn a minute ago; returns (tokens, primary %, secondary %)."""
    day = datetime.fromtimestamp(now, tz=timezone.utc)
    folder = codex_home / "sessions" / day.strftime("%Y/%m/%d")
    folder.mkdir(parents=True, exist_ok=True)
    sid = "019d0000-0000-7000-8000-00000000beef"
    usage = {"input_tokens": 12000, "cached_input_tokens": 2000, "output_tokens": 345,
             "reasoning_output_tokens": 0, "total_tokens": 12345}  # fmt: skip
    rate = {"primary": {"used_percent": 37.0, "window_minutes": 300, "resets_at": now + 2 * H},
            "secondary": {"used_percent": 12.0, "window_minutes": 10080,
                          "resets_at": now + 4 * 24 * H}}  # fmt: skip
    lines = [
        {"timestamp": _iso(now - 90), "type": "session_meta",
         "payload": {"id": sid, "timestamp": _iso(now - 90), "cwd": "/tmp/proj"}},
        {"timestamp": _iso(now - 80), "type": "turn_context",
         "payload": {"model": "gpt-5", "cwd": "/tmp/proj"}},
        {"timestamp": _iso(now - 60), "type": "event_msg",
         "payload": {"type": "token_count", "rate_limits": rate,
                     "info": {"total_token_usage": usage, "last_token_usage": usage}}},
    ]  # fmt: skip
    (folder / f"rollout-{day.strftime('%Y-%m-%dT%H-%M-%S')}-{sid}.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8"
    )
    return 12345, 37.0, 12.0


@pytest.mark.slow
def test_line_shows_active_codex_with_its_cost_and_official_limits(tmp_path: Path) -> None:
    corpus = need_agents_corpus()
    env = make_env(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    codex = tmp_path / "codex"
    shutil.copytree(corpus / "codex", codex)
    env.update(HOME=str(home), CODEX_HOME=str(codex), TZ="UTC")
    now = datetime.now(tz=timezone.utc).timestamp()
    tokens, primary, secondary = fresh_rollout(codex, now)

    refresh_now(env)
    from tokmon.paths import get_paths

    public = json.loads(get_paths(env).snapshot_file.read_text(encoding="utf-8"))
    row = public["agents"]["codex"]
    assert row["todayTokens"] == tokens  # input (cached included) + output, as written
    # today's cost equals the report's (the engine's daily row for today, --agent codex)
    daily = json.loads(run_tokmon(["daily", "--agent", "codex", "--json", "-z", "UTC"], env).stdout)
    today = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%d")
    want = [d for d in daily["daily"] if d.get("date", d.get("period")) == today]
    assert len(want) == 1 and abs(want[0]["totalCost"] - row["todayCost"]) < 1e-9
    assert public["agentLimits"]["codex"]["primary"]["usedPercent"] == primary

    res = run_line(["--no-refresh", "-f", "json"], env)
    assert res.returncode == 0, res.stderr
    seg = {s["key"]: s for s in json.loads(res.stdout)["segments"]}["agents"]
    cost = formats.fmt_cost(row["todayCost"])
    assert seg["text"].startswith(f"codex {cost} · codex 5h {primary:.0f}%[")
    assert f" 7d {secondary:.0f}%[" in seg["text"]
    assert seg["fields"]["codex_primary"] == f"{primary:.0f}%"
    # the Claude corpus is months old: Claude Code is not listed as active
    assert "claude" not in seg["text"]


@pytest.mark.parametrize(
    "damaged",
    [
        {"agents": {"codex": {"lastActivity": "soon", "todayCost": None}}},
        {"agents": ["codex"], "agentLimits": {"codex": ["primary"]}},
        {"agents": {"codex": None}, "agentLimits": "x"},
        {"agentLimits": {"codex": {"primary": {"usedPercent": "9", "observedAt": "z"}}}},
        {"agentLimits": {"codex": {"primary": {"usedPercent": 9.0, "observedAt": "z",
                                               "resetsAt": "later", "length": "5h"}}}},
    ],
)  # fmt: skip
def test_a_damaged_snapshot_never_raises(damaged: dict) -> None:
    s = {"v": 1, **damaged}
    segs = formats.build_segments(s, NOW)  # no exception
    text = formats.render(segs, "plain")
    assert "Traceback" not in text
    limits = damaged.get("agentLimits")
    codex = limits.get("codex") if isinstance(limits, dict) else None
    if isinstance(codex, dict) and isinstance(codex["primary"]["usedPercent"], float):
        assert "codex ? 9%[now]" in text  # unknown window length, figure still shown
