"""What a new user hits first: output that fits narrow terminals, `| head`, clear errors.

The CLI runs in-process (``run`` with a stdout that claims to be a terminal of COLUMNS
columns, as tests/test_budgets_reports.py does) or as a real process for pipes.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import assistant_line, write_lines

from tokmon.cli.pick import POINTER, choice_title, label_width

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def run_tty(env: dict[str, str], columns: int, *argv: str) -> tuple[int, str, str]:
    """The CLI in-process, its stdout a terminal of ``columns`` columns."""
    from tokmon.cli.main import run

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = Tty(), io.StringIO()
    e = {**env, "COLUMNS": str(columns)}
    code = run(list(argv), env=e, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def claude_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Three sessions in projects with long names, the newest a few minutes old."""
    root = tmp_path / "claude"
    for n, proj in enumerate(("payments-service-backend", "marketing-site", "tools")):
        sid = f"{n + 1}{n + 1}{n + 1}{n + 1}aaaa-0000-4000-8000-00000000000{n}"
        t0 = NOW - timedelta(hours=n * 30, minutes=5)
        lines = [
            assistant_line(
                t0 + timedelta(seconds=k),
                msg_id=f"m{n}{k}",
                req_id=f"r{n}{k}",
                session=sid,
                cwd=f"/home/u/{proj}",
                inp=1000 * (n + 1),
                out=100,
            )
            for k in range(2)
        ]
        write_lines(root / "projects" / f"-home-u-{proj}" / f"{sid}.jsonl", lines)
    return {**env, "CLAUDE_CONFIG_DIR": str(root)}


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_stats_fits_the_terminal_and_never_wraps_a_project_name(
    claude_env: dict[str, str], columns: int
) -> None:
    code, out, err = run_tty(claude_env, columns, "stats")
    assert code == 0, err
    recent = out[out.index("Recent sessions") :]
    assert all(len(line) <= columns for line in recent.splitlines()), recent
    for proj in ("payments-service-backend", "marketing-site"):
        assert proj in recent  # whole, on one line (a squeezed column folds it)
    newest = NOW - timedelta(minutes=5) + timedelta(seconds=1)  # last activity (claude_env)
    has_time = newest.strftime("%Y-%m-%d") in recent  # its date, also just after midnight
    compact = "Compact layout: last activity not shown" in recent
    assert has_time != compact  # the time column, or the line saying it is hidden
    assert compact == (columns < 80)


def test_pick_lines_fit_the_terminal_and_keep_the_whole_id() -> None:
    now = time.time()
    rows = [
        {
            "sessionId": f"{n:08d}-1111-4222-8333-444455556666",
            "projectName": "a-project-with-a-rather-long-name",
            "name": "Refactor the payment retry loop" if n else None,
            "tags": ["backend", "urgent"] if n == 2 else [],
            "totalTokens": 12_345_678 * n,
            "totalCost": 1234.5 * n,
            "lastActivity": "2026-01-02T03:04:05.000Z",
        }
        for n in range(3)
    ]
    for width in (40, 50, 60, 72, 80, 100, 160):
        w = label_width(rows, now, width)
        for r in rows:
            line = choice_title(r, now, width, w)
            assert len(line) + POINTER <= width, (width, line)
            assert f"${1234.5 * int(r['sessionId'][:8]):,.2f}" in line  # the cost, whole
            assert line.endswith(r["sessionId"][:8])
            assert line.startswith("a-project") or w < len("a-project")
    wide = choice_title(rows[2], now, 200, label_width(rows, now, 200))
    assert (
        "a-project-with-a-rather-long-name · Refactor the payment retry loop #backend #urgent"
        in wide
    )


def test_pick_lines_say_another_agents_name_even_when_cut() -> None:
    from tokmon.cli.pick import label

    now = time.time()
    codex = {
        "sessionId": "2026/04/08/rollout-2026-04-08T10-00-00-019d1234-0000-7000-8000-00000000beef",
        "agent": "codex",
        "projectName": "a-project-with-a-rather-long-name",
        "name": "Port the parser",
        "tags": ["rust"],
        "totalTokens": 12_345,
        "totalCost": 0.0162,
        "lastActivity": "2026-01-02T03:04:05.000Z",
    }
    claude = {**codex, "sessionId": "aaaa1111-0000-4000-8000-000000000001", "agent": "claude"}
    assert label(codex) == "[codex] a-project-with-a-rather-long-name · Port the parser #rust"
    assert label(claude) == "a-project-with-a-rather-long-name · Port the parser #rust"
    assert label({**claude, "agent": None}) == label(claude)  # rows without an agent: Claude's
    rows = [codex, claude]
    for width in (40, 50, 60, 80, 200):
        w = label_width(rows, now, width)
        line = choice_title(codex, now, width, w)
        assert len(line) + POINTER <= width, (width, line)
        assert line.startswith("[codex] ")  # the label is cut at its end: the agent stays
        assert line.endswith("  019d1234")  # the Codex uuid's prefix, not "2026/04/"
        assert choice_title(claude, now, width, w).endswith("  aaaa1111")
    # 50 columns: the pointer (4) and all the figures and the id (36) would leave the label
    # fewer than 12 columns: the tokens go (28 left for the cost, the age and the id)
    line = choice_title(codex, now, 50, label_width(rows, now, 50))
    assert line.startswith("[codex] a-projec… ") and "12.3k" not in line and "$0.02" in line


@pytest.mark.parametrize("argv", [["daily"], ["blocks"], ["stats"], ["daily", "--json"]])
def test_a_reader_that_stops_early_is_no_error(claude_env: dict[str, str], argv: list[str]) -> None:
    """`tokmon daily | head -1`: the pipe's reader is gone before tokmon writes; exit 0,
    nothing on stderr (rich's own handler exits 1)."""
    r, w = os.pipe()
    os.close(r)  # every write gets EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tokmon", *argv],
            env=claude_env,
            stdout=w,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
    finally:
        os.close(w)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""


def test_line_explain_says_just_now_not_now_ago(claude_env: dict[str, str]) -> None:
    """A snapshot built moments ago: `built just now`, never `built now ago`."""
    sync = subprocess.run(
        [sys.executable, "-m", "tokmon", "line", "--sync"],
        env=claude_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sync.returncode == 0, sync.stderr
    assert sync.stdout.startswith("5h ")  # a real line, the snapshot exists
    proc = subprocess.run(
        [sys.executable, "-m", "tokmon", "line", "--explain", "--no-refresh"],
        env=claude_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    snap = next(x for x in proc.stdout.splitlines() if x.startswith("snapshot: "))
    assert "built just now from the transcripts, last verified just now" in snap, snap
    assert "now ago" not in proc.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["dialy"], "invalid choice: 'dialy' (did you mean 'daily'? choose from 'line', "),
        (["session", "lsit"], "(did you mean 'list'? choose from "),
        (["daily", "--bogus"], "unrecognized arguments: --bogus (see `tokmon daily --help`)"),
        (["--json", "blocks", "-x"], "unrecognized arguments: -x (see `tokmon blocks --help`)"),
    ],
)
def test_a_mistyped_command_or_option_gets_one_line_that_helps(
    cli: Any, argv: list[str], expected: str
) -> None:
    r = cli(*argv)
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1 and r.err.startswith("tokmon: error: "), r.err
    assert expected in r.err, r.err


def test_an_empty_report_is_one_line_not_an_empty_table(
    env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "claude"
    old = NOW - timedelta(hours=30)
    write_lines(
        root / "projects" / "-home-u-p" / "s.jsonl",
        [assistant_line(old, msg_id="m1", req_id="r1", session="s-1", cwd="/home/u/p")],
    )
    e = {**env, "CLAUDE_CONFIG_DIR": str(root)}
    for argv, line in (
        (["blocks", "--active"], "No active 5-hour block (no usage in the last 5 hours).\n"),
        (["blocks", "--since", "20300101"], "No blocks in this range.\n"),
        (["daily", "--since", "20300101"], "No usage in this range.\n"),
        (["monthly", "--until", "20200101"], "No usage in this range.\n"),
    ):
        code, out, err = run_tty(e, 80, *argv)
        assert (code, out, err) == (0, line, ""), argv
    code, out, _ = run_tty(e, 80, "blocks")  # the block 30 h ago is still listed
    assert code == 0 and old.strftime("%Y-%m-%d") in out and "No blocks" not in out


def test_agents_table_shows_data_dirs_under_home_as_tilde(env: dict[str, str]) -> None:
    import shutil

    from conftest import need_agents_corpus

    corpus = need_agents_corpus()
    home = Path(env["HOME"])
    shutil.copytree(corpus / "codex", home / ".codex")
    (home / ".claude" / "projects").mkdir(parents=True)
    env = {**env, "CLAUDE_CONFIG_DIR": str(home / ".claude")}
    code, out, err = run_tty({**env, "CODEX_HOME": str(home / ".codex")}, 100, "agents")
    assert code == 0, err
    codex = next(x for x in out.splitlines() if x.strip().startswith("codex"))
    assert codex.rstrip().endswith(" ~/.codex"), codex
    claude = next(x for x in out.splitlines() if x.strip().startswith("claude"))
    assert claude.rstrip().endswith(" ~/.claude/projects"), claude
    assert str(home) not in out
    code, out, _ = run_tty(env, 100, "--json", "agents")  # JSON keeps the real path
    assert code == 0 and str(home / ".codex") in out


def test_small_messages_read_right(claude_env: dict[str, str], tmp_path: Path) -> None:
    code, _, err = run_tty(claude_env, 80, "config", "set", "nosuch", "1")
    assert code == 2 and err.startswith("tokmon: error: config set: unknown key 'nosuch'")
    code, _, err = run_tty(claude_env, 80, "config", "set", "token_limit", "lots")
    assert code == 2 and err.startswith("tokmon: error: config set token_limit: ")
    code, _, err = run_tty(claude_env, 80, "session", "name", "1111aaaa", "payments")
    assert code == 0, err
    code, out, err = run_tty(claude_env, 80, "backup", "create", str(tmp_path / "b.json"))
    assert code == 0 and out.startswith("backed up metadata of 1 session to "), out + err


def test_blocks_active_keeps_burn_rate_and_projection_in_the_compact_layout(
    claude_env: dict[str, str],
) -> None:
    code, wide, err = run_tty(claude_env, 200, "blocks", "--active")
    assert code == 0, err
    assert "Compact layout" not in wide and "tok/min" in wide  # the full table has them
    code, out, err = run_tty(claude_env, 80, "blocks", "--active")
    assert code == 0, err
    assert "Compact layout" in out
    burn = [x for x in out.splitlines() if x.startswith("Burn / projection: ")]
    assert len(burn) == 1 and "tok/min" in burn[0], out
    assert burn[0].removeprefix("Burn / projection: ").split(" → ")[0] in wide
    code, out, _ = run_tty(claude_env, 80, "blocks")  # every block: the table alone
    assert code == 0 and "Burn / projection: " not in out


def test_global_options_before_line_are_an_error_not_the_overview(
    claude_env: dict[str, str],
) -> None:
    def tokmon(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tokmon", *argv],
            env=claude_env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    for argv in (["--no-color", "line"], ["--json", "--config", "x.toml", "line", "-f", "tmux"]):
        r = tokmon(*argv)
        assert (r.returncode, r.stdout) == (2, ""), (argv, r.stdout)  # was: the stats screen
        assert r.stderr.count("\n") == 1 and "does not apply to `tokmon line`" in r.stderr
    r = tokmon("--json", "line", "--no-refresh")  # --json is the one that does
    assert r.returncode == 0 and r.stdout.startswith("{"), r.stderr


def test_swapped_dates_and_a_missing_config_file_are_said(
    claude_env: dict[str, str], tmp_path: Path
) -> None:
    code, out, err = run_tty(claude_env, 80, "daily", "--since", "20260301", "--until", "20260201")
    assert (code, out) == (2, "")
    assert err == "tokmon: error: --since 20260301 is after --until 20260201\n"
    missing = tmp_path / "typo.toml"
    code, out, err = run_tty(claude_env, 80, "--config", str(missing), "daily", "--json")
    assert code == 0 and out.startswith("{")
    assert err == f"tokmon: warning: --config {missing} does not exist; the defaults apply\n"
    code, out, err = run_tty(claude_env, 80, "--config", str(missing), "config", "path")
    assert (code, out.strip(), err) == (0, str(missing), "")  # `config set` may create it


def test_alerts_run_says_what_it_did(claude_env: dict[str, str], tmp_path: Path) -> None:
    """`alerts run` by hand: one line when alerts are off, one when nothing new fired."""
    code, out, err = run_tty(claude_env, 80, "alerts", "run")
    assert code == 0 and out.startswith("Alerts are off") and not err
    cfg = tmp_path / "alerts.toml"
    cfg.write_text("[alerts]\nofficial = [80]\n")
    code, out, err = run_tty(claude_env, 80, "--config", str(cfg), "alerts", "run")
    assert code == 0, err
    assert out.startswith("No new alert")


def test_session_id_that_matches_nothing(claude_env: dict[str, str]) -> None:
    """A table says so in one line (exit 2, as `session show`); --json keeps ccusage's null."""
    code, out, err = run_tty(claude_env, 80, "session", "--id", "deadbeef")
    assert code == 2 and "deadbeef" in err and len(err.strip().splitlines()) == 1, (out, err)
    assert "No usage" not in out
    code, out, err = run_tty(claude_env, 80, "session", "--id", "deadbeef", "--json")
    assert code == 0 and out.strip() == "null", (out, err)


def test_the_default_claude_folder_is_under_the_home_the_environment_names(
    env: dict[str, str], tmp_path: Path
) -> None:
    """No CLAUDE_CONFIG_DIR: ``~/.claude/projects`` of the injected environment's HOME (as
    the other agents' folders are found), not of the process running the CLI."""
    from tokmon.cli.main import run

    home = Path(env["HOME"])
    env = {k: v for k, v in env.items() if k != "XDG_CONFIG_HOME"}
    line = assistant_line(NOW - timedelta(minutes=3), msg_id="m1", req_id="r1", inp=1234, out=56)
    write_lines(home / ".claude" / "projects" / "-home-u-proj" / "s.jsonl", [line])
    out, err = io.StringIO(), io.StringIO()
    assert run(["daily", "--json"], env=env, stdin=io.StringIO(), stdout=out, stderr=err) == 0
    totals = json.loads(out.getvalue())["totals"]
    assert (totals["inputTokens"], totals["outputTokens"]) == (1234, 56), err.getvalue()
