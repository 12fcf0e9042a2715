"""`tokmon pick` driven in a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from conftest import assistant_line, write_lines

from tokmon.metadata.store import MetadataStore
from tokmon.paths import get_paths

pexpect = pytest.importorskip("pexpect")
# slow: a real pty per test
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name == "nt", reason="pexpect.spawn needs a POSIX pty"),
]

NOW = datetime.now(timezone.utc).replace(microsecond=0)
# (session id, project, hours ago): newest first once sorted by last activity
SESSIONS = [
    ("aaaa1111-0000-4000-8000-000000000001", "/work/alpha-api", 30),
    ("bbbb2222-0000-4000-8000-000000000002", "/work/beta-web", 2),
    ("cccc3333-0000-4000-8000-000000000003", "/work/alpha-cli", 50),
    ("dddd4444-0000-4000-8000-000000000004", "/work/gamma", 10),
]
BY_RECENCY = [s[0] for s in sorted(SESSIONS, key=lambda s: s[2])]  # b, d, a, c
DOWN, ENTER, CTRL_C = "\x1b[B", "\r", "\x03"


@pytest.fixture(scope="module")
def pick_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("pick")
    claude = root / "claude"
    for n, (sid, cwd, hours) in enumerate(SESSIONS):
        t0 = NOW - timedelta(hours=hours)
        lines = [
            assistant_line(
                t0 + timedelta(minutes=k),
                msg_id=f"msg_{n}_{k}",
                req_id=f"req_{n}_{k}",
                session=sid,
                cwd=cwd,
                inp=100 * (n + 1),
                out=50,
            )
            for k in range(3)
        ]
        write_lines(claude / "projects" / cwd.replace("/", "-") / f"{sid}.jsonl", lines)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    home = root / "home"
    home.mkdir()
    env.update(
        {
            "TOKMON_HOME": str(root / "tokmon"),
            "CLAUDE_CONFIG_DIR": str(claude),
            "HOME": str(home),
            "NO_COLOR": "1",
            "TERM": "xterm",
            "COLUMNS": "120",
            "LINES": "30",
            "TZ": "UTC",
        }
    )
    store = MetadataStore(paths=get_paths(env))
    store.update(SESSIONS[0][0], name="Payments refactor", tags=["backend"])
    store.update(SESSIONS[2][0], name="CLI polish", tags=["backend", "ux"])
    return env


def filter_line(text: str) -> str:
    """The menu's filter line "/ <text>" (prompt_toolkit puts style codes in between)."""
    return r"/ (?:\x1b\[[0-9;]*m)*" + re.escape(text)


def spawn(env: dict[str, str], shell_cmd: str) -> pexpect.spawn:
    child = pexpect.spawn(
        "bash",
        ["--norc", "--noprofile", "-c", shell_cmd],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(30, 120),
    )
    return child


def pick_cmd(extra: str = "") -> str:
    return f'out=$("{sys.executable}" -m tokmon pick {extra}); rc=$?; echo "GOT:[$out] RC:$rc"'


def test_filter_then_enter_prints_the_matching_id(pick_env: dict[str, str]) -> None:
    child = spawn(pick_env, pick_cmd())
    child.expect(r"Session \(4, most recent first\)")
    # each line: project · name #tags, tokens, cost, last activity, id prefix
    child.expect(r"alpha-api · Payments refactor #backend\s+450\s+\$0\.00\s+1d ago\s+aaaa1111")
    child.send("payments")
    child.expect(filter_line("payments"))  # the filter line
    child.send(ENTER)
    child.expect(r"GOT:\[(.*?)\] RC:(\d+)")
    assert child.match.group(1) == SESSIONS[0][0]  # only the id reached stdout
    assert child.match.group(2) == "0"
    child.expect(pexpect.EOF)


def test_arrow_keys_follow_recency_order(pick_env: dict[str, str]) -> None:
    child = spawn(pick_env, pick_cmd())
    child.expect(r"Session \(4")
    child.send(DOWN)
    child.send(DOWN)
    child.send(ENTER)
    child.expect(r"GOT:\[(.*?)\] RC:(\d+)")
    assert child.match.group(1) == BY_RECENCY[2]
    assert child.match.group(2) == "0"


def test_filter_by_tag_and_project_then_arrow(pick_env: dict[str, str]) -> None:
    child = spawn(pick_env, pick_cmd())
    child.expect(r"Session \(4")
    child.send("alpha")  # project names alpha-api (30 h ago) and alpha-cli (50 h ago)
    child.expect(filter_line("alpha"))
    child.send(DOWN)
    child.send(ENTER)
    child.expect(r"GOT:\[(.*?)\] RC:(\d+)")
    assert child.match.group(1) == SESSIONS[2][0]


def test_ctrl_c_exits_cleanly(pick_env: dict[str, str]) -> None:
    child = spawn(pick_env, pick_cmd())
    child.expect(r"Session \(4")
    child.send(CTRL_C)
    child.expect(r"GOT:\[(.*?)\] RC:(\d+)")
    assert child.match.group(1) == ""  # nothing on stdout
    assert child.match.group(2) == "130"
    rest = child.before + child.read()
    assert "Traceback" not in rest


def test_action_tag_updates_the_store(pick_env: dict[str, str]) -> None:
    child = spawn(pick_env, f'"{sys.executable}" -m tokmon pick --action tag')
    child.expect(r"Session \(4")
    child.send("gamma")
    child.expect(filter_line("gamma"))
    child.send(ENTER)
    child.expect("Tags")
    child.send("urgent Review\r")
    child.expect(r"tags: review urgent")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    store = MetadataStore(paths=get_paths(pick_env))
    assert store.get(SESSIONS[3][0])["tags"] == ["review", "urgent"]


def test_action_show(pick_env: dict[str, str]) -> None:
    child = spawn(pick_env, f'"{sys.executable}" -m tokmon pick -a show')
    child.expect(r"Session \(4")
    child.send("CLI polish")
    child.expect(filter_line("CLI polish"))
    child.send(ENTER)
    child.expect(f"Session {SESSIONS[2][0]}")
    child.expect("Tokens by type")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_without_a_tty_is_a_clear_error(pick_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tokmon", "pick"],
        env=pick_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("tokmon: error: tokmon pick needs an interactive terminal")
    assert proc.stderr.count("\n") == 1


def test_a_narrow_terminal_cuts_the_label_never_the_id(pick_env: dict[str, str]) -> None:
    env = {**pick_env, "COLUMNS": "60"}
    child = pexpect.spawn(
        "bash",
        ["--norc", "--noprofile", "-c", pick_cmd()],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(30, 60),
    )
    child.expect(r"Session \(4")
    # 60 columns: the pointer (4), the figures and the id (36), a space: 19 for the label
    child.expect(r"alpha-api · Paymen…\s+450\s+\$0\.00\s+1d ago\s+aaaa1111")
    child.send(CTRL_C)
    child.expect(pexpect.EOF)
