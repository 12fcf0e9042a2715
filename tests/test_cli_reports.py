"""Report commands through the real CLI: filters, time zones, blocks options, errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import assistant_line, write_lines


def corpus(tmp_path: Path) -> Path:
    """Two projects; one response at 23:30 UTC (the next day in Tokyo)."""
    root = tmp_path / "claude"
    p1 = root / "projects" / "-home-u-alpha"
    p2 = root / "projects" / "-home-u-beta"
    d = datetime(2026, 3, 10, 23, 30, tzinfo=timezone.utc)
    write_lines(
        p1 / "a.jsonl",
        [
            assistant_line(
                d, msg_id="m1", req_id="r1", inp=100, out=10, session="A", cwd="/home/u/alpha"
            ),
            assistant_line(
                d + timedelta(days=2),
                msg_id="m2",
                req_id="r2",
                inp=200,
                out=20,
                session="A",
                cwd="/home/u/alpha",
                model="claude-opus-4-5-20251101",
            ),
        ],
    )
    write_lines(
        p2 / "b.jsonl",
        [
            assistant_line(
                d + timedelta(days=5),
                msg_id="m3",
                req_id="r3",
                inp=400,
                out=40,
                session="B",
                cwd="/home/u/beta",
            ),
        ],
    )
    return root


def test_daily_timezone_since_until_project(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e = {"CLAUDE_CONFIG_DIR": str(corpus(tmp_path))}
    utc = cli("daily", "--json", "-z", "UTC", extra_env=e).json()
    assert [r["date"] for r in utc["daily"]] == ["2026-03-10", "2026-03-12", "2026-03-15"]
    tokyo = cli("daily", "--json", "--timezone", "Asia/Tokyo", extra_env=e).json()
    assert [r["date"] for r in tokyo["daily"]] == ["2026-03-11", "2026-03-13", "2026-03-16"]
    rng = cli(
        "daily", "--json", "-z", "UTC", "--since", "20260311", "--until", "2026-03-14", extra_env=e
    ).json()
    assert [r["date"] for r in rng["daily"]] == ["2026-03-12"]
    assert rng["totals"]["inputTokens"] == 200
    proj = cli("daily", "--json", "-z", "UTC", "--project", "beta", extra_env=e).json()
    assert proj["totals"]["inputTokens"] == 400
    desc = cli("daily", "--json", "-z", "UTC", "--order", "desc", extra_env=e).json()
    assert desc["daily"][0]["date"] == "2026-03-15"
    mon = cli("monthly", "--json", "-z", "UTC", extra_env=e).json()
    assert mon["monthly"][0]["month"] == "2026-03" and mon["totals"]["inputTokens"] == 700
    wk = cli("weekly", "--json", "-z", "UTC", extra_env=e).json()
    assert [r["week"] for r in wk["weekly"]] == ["2026-03-08", "2026-03-15"]  # Sundays
    wk_mon = cli("weekly", "--json", "-z", "UTC", "-w", "monday", extra_env=e).json()
    assert [r["week"] for r in wk_mon["weekly"]] == ["2026-03-09"]


def test_tables_render_and_honour_no_color(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e = {"CLAUDE_CONFIG_DIR": str(corpus(tmp_path))}
    r = cli("daily", "-z", "UTC", "--breakdown", extra_env=e)
    assert r.code == 0
    assert "2026-03-12" in r.out and "700" in r.out and "\x1b[" not in r.out
    assert "opus-4-5" in r.out  # the breakdown row
    r = cli("blocks", "-z", "UTC", extra_env=e)
    assert r.code == 0 and "gap" in r.out


def test_blocks_active_recent_and_token_limit(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = corpus(tmp_path)
    now = datetime.now(timezone.utc)
    write_lines(
        root / "projects" / "-home-u-beta" / "b.jsonl",
        [
            assistant_line(
                now - timedelta(minutes=20),
                msg_id="n1",
                req_id="q1",
                inp=1000,
                out=100,
                session="B",
                cwd="/home/u/beta",
            ),
            assistant_line(
                now - timedelta(minutes=5),
                msg_id="n2",
                req_id="q2",
                inp=1000,
                out=100,
                session="B",
                cwd="/home/u/beta",
            ),
        ],
    )
    e = {"CLAUDE_CONFIG_DIR": str(root)}
    act = cli("blocks", "--json", "--active", "--token-limit", "1000", extra_env=e).json()["blocks"]
    assert len(act) == 1 and act[0]["isActive"] and act[0]["totalTokens"] == 2200
    st = act[0]["tokenLimitStatus"]
    assert st["limit"] == 1000 and st["status"] == "exceeds"
    assert act[0]["burnRate"]["tokensPerMinute"] > 0
    rec = cli("blocks", "--json", "--recent", extra_env=e).json()["blocks"]
    assert [b["isActive"] for b in rec if not b["isGap"]] == [True]
    mx = cli("blocks", "--json", "--active", "-t", "max", extra_env=e).json()["blocks"]
    assert mx[0]["tokenLimitStatus"]["limit"] == 440  # the largest finished block (m3)
    stats = cli("stats", "--json", extra_env=e).json()
    assert stats["activeBlock"]["totalTokens"] == 2200
    assert stats["activeSessions"][0]["sessionId"] == "B"


def test_user_errors_are_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e = {"CLAUDE_CONFIG_DIR": str(corpus(tmp_path))}
    for args in (
        ["daily", "--since", "2026-13-45"],
        ["daily", "-z", "Mars/Olympus"],
        ["blocks", "--token-limit", "lots"],
        ["nonsense"],
        ["daily", "--order", "up"],
    ):
        r = cli(*args, extra_env=e)
        assert r.code == 2, args
        assert r.err.count("\n") == 1 and r.err.startswith("tokmon: error:"), r.err
        assert "Traceback" not in r.err


def test_config_commands(cli, tmp_path: Path, tokmon_home: Path) -> None:  # type: ignore[no-untyped-def]
    path = cli("config", "path").out.strip()
    assert path.startswith(str(tokmon_home))
    assert cli("config", "set", "token_limit", "500000").code == 0
    assert cli("config", "set", "line.warning_percent", "70").code == 0
    shown = cli("config", "show", "--json").json()
    assert (
        shown["values"]["token_limit"] == 500000 and shown["values"]["line.warning_percent"] == 70
    )
    assert "token_limit = 500000" in Path(path).read_text()
    bad = cli("config", "set", "token_limit", "-5")
    assert bad.code == 2 and "token_limit" in bad.err
    assert cli("config", "set", "no.such", "1").code == 2
    assert cli("config", "validate").code == 0
    assert cli("config", "reset", "token_limit").code == 0
    assert cli("config", "show", "--json").json()["values"]["token_limit"] == "max"
    Path(path).write_text("token_limit = [oops\n")
    r = cli("config", "validate")
    assert r.code == 1 and "invalid TOML" in r.out
    r = cli("daily", extra_env={"CLAUDE_CONFIG_DIR": str(corpus(tmp_path))})
    assert r.code == 2 and r.err.count("\n") == 1
    assert cli("config", "reset", "--all").code == 0
    other = tmp_path / "other.toml"
    other.write_text('cost_mode = "display"\n')
    assert (
        cli("--config", str(other), "config", "show", "--json").json()["values"]["cost_mode"]
        == "display"
    )
    assert (
        cli("config", "show", "--json", extra_env={"TOKMON_CONFIG": str(other)}).json()["values"][
            "cost_mode"
        ]
        == "display"
    )
