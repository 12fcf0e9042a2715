"""`tokmon check` exit codes in each state (docs/limits.md): 0 ok, 3 warning, 4 projected,
5 crossed; official limits through the real statusline, budgets from real transcripts."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import run_tokmon
from limits_support import Usage, payload

# slow: statusline and `tokmon check` processes per state
pytestmark = pytest.mark.slow

H = 3600.0


def _home(env: dict[str, str], tmp_path: Path, name: str) -> dict[str, str]:
    home = tmp_path / name
    home.mkdir()
    claude = tmp_path / f"{name}-claude"
    (claude / "projects").mkdir(parents=True)
    return {**env, "TOKMON_HOME": str(home), "CLAUDE_CONFIG_DIR": str(claude)}


def _official(env: dict[str, str], used: float, resets_in: float) -> None:
    p = payload("sess-check", {"five_hour": (used, time.time() + resets_in)})
    r = run_tokmon(["line", "--claude"], env, input=json.dumps(p))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    ("used", "resets_in", "code", "state"),
    [
        (20.0, 1 * H, 0, "ok"),  # 20% after 4 h: 25% by the reset
        (85.0, 0.1 * H, 3, "warning"),  # 85% after 4.9 h: 87% by the reset
        (40.0, 4.5 * H, 4, "projected"),  # 40% after 0.5 h: 400% by the reset
        (100.0, 2 * H, 5, "crossed"),
    ],
)
def test_official_states(
    env: dict[str, str], tmp_path: Path, used: float, resets_in: float, code: int, state: str
) -> None:
    e = _home(env, tmp_path, "h")
    _official(e, used, resets_in)
    r = run_tokmon(["check", "--no-budgets", "--json"], e)
    assert r.returncode == code, r.stderr
    assert json.loads(r.stdout)["state"] == state
    assert run_tokmon(["check", "--no-budgets", "-q"], e).returncode == code


def test_no_figures_is_ok_and_a_limit_marker_is_crossed(
    env: dict[str, str], tmp_path: Path
) -> None:
    e = _home(env, tmp_path, "m")
    r = run_tokmon(["check"], e)
    assert r.returncode == 0 and r.stdout.startswith("ok:")
    use = Usage(Path(e["CLAUDE_CONFIG_DIR"]) / "projects")
    now = time.time()
    use.marker(now - 120, int(now + 1800))
    r = run_tokmon(["check"], e)
    assert r.returncode == 5 and "usage limit reached" in r.stdout
    use.marker(now - 7200, int(now - 60))  # an old marker whose reset has passed: no effect
    e2 = _home(env, tmp_path, "m2")
    Usage(Path(e2["CLAUDE_CONFIG_DIR"]) / "projects").marker(now - 7200, int(now - 60))
    assert run_tokmon(["check"], e2).returncode == 0


@pytest.mark.parametrize(
    ("at_hour", "limit_factor", "code"),
    [
        (12, 3.0, 0),  # 33% used, 67% projected
        (23, 1.1, 3),  # 91% used, 95% projected by midnight
        (12, 1.5, 4),  # 67% used, 133% projected
        (12, 0.9, 5),  # exceeded
    ],
)
def test_budget_states(
    env: dict[str, str], tmp_path: Path, at_hour: int, limit_factor: float, code: int
) -> None:
    e = _home(env, tmp_path, "b")
    use = Usage(Path(e["CLAUDE_CONFIG_DIR"]) / "projects")
    day = datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp()
    for h in (1, 3, 6):
        use.add(day + h * H)
    spent = use.cost_between(day, day + 24 * H)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[[budgets]]\nname = "daily"\nperiod = "day"\nusd = {spent * limit_factor!r}\n')
    e["TOKMON_CONFIG"] = str(cfg)
    at = f"2026-03-02T{at_hour:02d}:00:00Z"
    r = run_tokmon(["check", "--at", at, "--json"], e)
    assert r.returncode == code, (r.stdout, r.stderr)
    b = json.loads(run_tokmon(["budgets", "--at", at, "--json"], e).stdout)["budgets"][0]
    assert b["used"] == pytest.approx(spent)
    assert b["projected"] == pytest.approx(spent * 24 / at_hour)


def test_bad_budget_config_is_one_clear_line(env: dict[str, str], tmp_path: Path) -> None:
    e = _home(env, tmp_path, "c")
    cfg = tmp_path / "config.toml"
    cfg.write_text('[[budgets]]\nperiod = "fortnight"\nusd = 5\n')
    e["TOKMON_CONFIG"] = str(cfg)
    r = run_tokmon(["budgets"], e)
    assert r.returncode == 2
    assert r.stderr.strip() == "tokmon: error: budgets[0]: period must be one of day, week, month"


def test_a_corrupt_history_is_one_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    e = _home(env, tmp_path, "x")
    data = Path(e["TOKMON_HOME"]) / "data"
    data.mkdir(parents=True)
    (data / "limits.sqlite").write_bytes(b"this is not a database" * 100)
    r = run_tokmon(["check"], e)
    assert r.returncode == 1
    assert (
        r.stderr.startswith("tokmon: error: cannot use the limit history")
        and "Traceback" not in r.stderr
    )
    assert len(r.stderr.strip().splitlines()) == 1
    # the statusline still prints its line
    p = payload("sess-x", {"five_hour": (10.0, time.time() + H)})
    line = run_tokmon(["line", "--claude"], e, input=json.dumps(p))
    assert line.returncode == 0 and "10%" in line.stdout
