"""Demo data says so (at the top, and in JSON); a mistyped CLAUDE_CONFIG_DIR is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assistant_line, run_tokmon, write_lines


def _corpus(root: Path) -> Path:
    write_lines(
        root / "projects" / "-home-u-proj" / "s.jsonl",
        [assistant_line("2026-03-01T10:00:00.000Z", msg_id="m1", req_id="r1")],
    )
    return root


def test_no_data_shows_demo_with_a_notice_at_the_top(env: dict[str, str]) -> None:
    r = run_tokmon([], env)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("DEMO DATA - no Claude Code data in ")
    assert "generated" in first
    assert "demo" in r.stderr
    # the demo corpus's deliberate bad lines are no news to the user: no warning about them
    assert r.stderr.count("\n") == 1 and "warning" not in r.stderr, r.stderr
    j = run_tokmon(["--json"], env)
    assert j.returncode == 0
    doc = json.loads(j.stdout)  # the JSON stays pure JSON: no banner in it
    assert doc["demo"] is True


def test_real_data_is_not_flagged_as_demo(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "CLAUDE_CONFIG_DIR": str(_corpus(tmp_path / "claude"))}
    r = run_tokmon([], env)
    assert r.returncode == 0 and "DEMO" not in r.stdout and "demo" not in r.stderr
    assert json.loads(run_tokmon(["--json"], env).stdout)["demo"] is False


@pytest.mark.parametrize("kind", ["missing", "no-projects", "a-file"])
@pytest.mark.parametrize("argv", [[], ["--json"], ["daily", "--json"], ["blocks"]])
def test_mistyped_claude_config_dir_is_an_error(
    env: dict[str, str], tmp_path: Path, kind: str, argv: list[str]
) -> None:
    bad = tmp_path / "cluade"
    if kind == "no-projects":
        (bad / "todos").mkdir(parents=True)
    elif kind == "a-file":
        bad.write_text("x")
    r = run_tokmon(argv, {**env, "CLAUDE_CONFIG_DIR": str(bad)})
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("tokmon: error: CLAUDE_CONFIG_DIR: ")
    assert str(bad) in r.stderr and "Traceback" not in r.stderr


def test_one_bad_entry_among_good_ones_is_a_warning(env: dict[str, str], tmp_path: Path) -> None:
    good = _corpus(tmp_path / "claude")
    r = run_tokmon(["daily", "--json"], {**env, "CLAUDE_CONFIG_DIR": f"{good},{tmp_path / 'typo'}"})
    assert r.returncode == 0
    assert json.loads(r.stdout)["totals"]["inputTokens"] == 10
    assert "typo does not exist" in r.stderr
