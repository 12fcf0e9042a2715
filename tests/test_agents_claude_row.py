"""`tokmon agents`: Claude Code's row, first, with `tokmon daily --json`'s totals."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CLIResult,
    assistant_line,
    corpus_path,
    need_corpus,
    run_tokmon,
    write_lines,
)

AGENT_ORDER = ["claude", "codex", "gemini", "opencode", "qwen", "copilot", "amp"]
TOKEN_KEYS = ("inputTokens", "outputTokens", "cacheReadTokens", "cacheCreationTokens",
              "totalTokens", "totalCost")  # fmt: skip
T0 = datetime(2026, 3, 4, 10, 0, tzinfo=timezone.utc)


def write_claude(root: Path) -> None:
    """Two sessions, three distinct messages (one written twice), claude-sonnet-4-5."""
    a, b = "aaaa1111-0000-4000-8000-000000000001", "bbbb2222-0000-4000-8000-000000000002"
    m1 = assistant_line(T0, msg_id="m1", req_id="r1", session=a, cwd="/home/u/alpha",
                        inp=1000, out=2000, cc=10_000, cr=100_000)  # fmt: skip
    m2 = assistant_line(T0 + timedelta(minutes=1), msg_id="m2", req_id="r2", session=a,
                        cwd="/home/u/alpha", inp=500, out=100)  # fmt: skip
    m3 = assistant_line(T0 + timedelta(days=1), msg_id="m3", req_id="r3", session=b,
                        cwd="/home/u/beta", inp=3000, out=400)  # fmt: skip
    write_lines(root / "projects" / "-home-u-alpha" / f"{a}.jsonl", [m1, m1, m2])
    write_lines(root / "projects" / "-home-u-beta" / f"{b}.jsonl", [m3])


# by hand: input 1000+500+3000, output 2000+100+400, cache write 10,000, cache read 100,000;
# cost at $3 / $15 / $3.75 / $0.30 per million: 0.0135 + 0.0375 + 0.0375 + 0.03
HAND = {
    "inputTokens": 4500,
    "outputTokens": 2500,
    "cacheReadTokens": 100_000,
    "cacheCreationTokens": 10_000,
    "totalTokens": 117_000,
    "totalCost": 0.1185,
}


def rows(r: CLIResult) -> list[dict[str, Any]]:
    assert r.code == 0, r.err
    got: list[dict[str, Any]] = r.json()["agents"]
    return got


def test_claude_row_first_with_hand_computed_totals(
    cli: Callable[..., CLIResult], env: dict[str, str], tmp_path: Path
) -> None:
    write_claude(tmp_path / "claude")
    extra = {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    got = rows(cli("agents", "--json", extra_env=extra))
    assert [a["agent"] for a in got] == AGENT_ORDER
    claude = got[0]
    assert claude["name"] == "Claude Code"
    assert claude["detected"] is True
    assert claude["roots"] == [str(tmp_path / "claude" / "projects")]
    assert (claude["sessions"], claude["records"]) == (2, 3)  # the repeated line counted once
    for k, v in HAND.items():
        assert claude[k] == pytest.approx(v, abs=1e-9), k
    assert list(claude) == [k for k in got[1] if k != "official"]  # the other rows' fields
    assert not any(a["detected"] for a in got[1:])  # no other agent in this HOME
    daily = cli("daily", "--json", extra_env=extra)
    assert daily.code == 0, daily.err
    assert {k: claude[k] for k in TOKEN_KEYS} == {k: daily.json()["totals"][k] for k in TOKEN_KEYS}

    # the table: Claude Code's row first
    from tokmon.cli.main import run

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = Tty(), io.StringIO()
    tty_env = {**env, **extra, "COLUMNS": "100"}
    assert run(["agents"], env=tty_env, stdin=io.StringIO(), stdout=out, stderr=err) == 0
    assert err.getvalue() == ""
    lines = [x.split() for x in out.getvalue().splitlines() if x.strip()]
    listed = [x for x in lines if x[0] in AGENT_ORDER]  # (a long path folds onto more lines)
    assert listed[0][:5] == ["claude", "yes", "2", "117,000", "$0.12"]
    assert [x[0] for x in listed] == AGENT_ORDER


def test_claude_row_equals_daily_on_the_real_corpus(
    cli: Callable[..., CLIResult], tmp_path: Path
) -> None:
    corpus = corpus_path()
    if not (corpus / "projects").is_dir():
        need_corpus(corpus)
    shutil.copytree(corpus, tmp_path / "claude")
    extra = {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    claude = rows(cli("agents", "--json", extra_env=extra))[0]
    daily = cli("daily", "--json", extra_env=extra)
    assert daily.code == 0, daily.err
    totals = daily.json()["totals"]
    assert claude["agent"] == "claude" and claude["detected"] is True
    assert totals["totalTokens"] > 0
    assert {k: claude[k] for k in TOKEN_KEYS} == {k: totals[k] for k in TOKEN_KEYS}
    session = cli("session", "list", "--agent", "claude", "--all", "--json",
                  extra_env=extra)  # fmt: skip
    assert session.code == 0, session.err
    ids = {s["sessionId"] for s in session.json()["sessions"]}
    assert claude["sessions"] == len(ids)
    # once scanned, the history outlives the transcripts, as in `tokmon daily`
    for f in (tmp_path / "claude" / "projects").rglob("*.jsonl"):
        f.unlink()
    again = rows(cli("agents", "--json", extra_env=extra))[0]
    assert again == claude
    assert cli("daily", "--json", extra_env=extra).json()["totals"] == totals


def test_no_claude_dir_is_a_row_saying_no(env: dict[str, str]) -> None:
    """A HOME without ~/.claude (a real process: the default dirs follow its HOME): Claude
    Code not found, zeros, nothing on stderr."""
    r = run_tokmon(["agents", "--json"], env)
    assert (r.returncode, r.stderr) == (0, "")
    claude = json.loads(r.stdout)["agents"][0]
    assert claude == {"agent": "claude", "name": "Claude Code", "detected": False, "roots": [],
                      "sessions": 0, "records": 0, **dict.fromkeys(TOKEN_KEYS, 0)}  # fmt: skip
    table = run_tokmon(["agents"], env)
    assert (table.returncode, table.stderr) == (0, "")
    line = next(x for x in table.stdout.splitlines() if x.strip().startswith("claude"))
    assert line.split()[:5] == ["claude", "no", "0", "0", "$0.00"]


def test_a_mistyped_claude_config_dir_is_a_warning_here(
    cli: Callable[..., CLIResult], tmp_path: Path
) -> None:
    extra = {"CLAUDE_CONFIG_DIR": str(tmp_path / "no-such-dir")}
    r = cli("agents", "--json", extra_env=extra)
    claude = rows(r)[0]
    assert claude["detected"] is False and claude["totalTokens"] == 0
    assert r.err.startswith("tokmon: warning: CLAUDE_CONFIG_DIR: ")
    assert "no-such-dir does not exist" in r.err and r.err.count("\n") == 1
    assert cli("daily", "--json", extra_env=extra).code == 2  # the reports keep the error


def test_demo_has_the_demo_claude_totals(cli: Callable[..., CLIResult]) -> None:
    claude = rows(cli("--demo", "agents", "--json"))[0]
    daily = cli("--demo", "daily", "--json")
    assert daily.code == 0, daily.err
    totals = daily.json()["totals"]
    assert claude["detected"] is True and claude["totalTokens"] > 0
    assert {k: claude[k] for k in TOKEN_KEYS} == {k: totals[k] for k in TOKEN_KEYS}


def test_a_warm_run_reads_the_stored_sums_not_the_records(
    cli: Callable[..., CLIResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated corpus: Claude Code's row equals `daily --json` and the generator's own
    ground truth; once the store is built, `agents` loads no record (it costs what `daily`
    costs, not the history)."""
    from tokmon.core.ledger import LedgerDB
    from tokmon.demo import generate

    end = datetime(2026, 3, 1, 17, 0, tzinfo=timezone.utc)
    expected = generate(tmp_path / "claude", size_mb=2, seed=5, end=end, days=6)
    extra = {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    daily = cli("daily", "--json", extra_env=extra)  # builds the store
    assert daily.code == 0, daily.err

    def no_records(*args: Any, **kw: Any) -> Any:
        raise AssertionError("`agents` loaded records: its cost grows with the history")

    monkeypatch.setattr(LedgerDB, "records", no_records)
    monkeypatch.setattr(LedgerDB, "records_of_sessions", no_records)
    claude = rows(cli("agents", "--json", extra_env=extra))[0]
    monkeypatch.undo()
    totals = daily.json()["totals"]
    assert {k: claude[k] for k in TOKEN_KEYS} == {k: totals[k] for k in TOKEN_KEYS}
    assert claude["totalTokens"] == expected.totals.total_tokens
    assert claude["sessions"] == expected.session_count
    # a `<synthetic>` line (0 tokens) is a record too, as `session --json`'s entries count it
    assert claude["records"] == expected.totals.entries + expected.synthetic_lines
