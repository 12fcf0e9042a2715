"""`tokmon pick` driven in a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

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


def spawn(env: dict[str, str], shell_cmd: str, columns: int = 120) -> pexpect.spawn:
    """``shell_cmd`` in bash on a pty of 30 rows and ``columns`` columns (COLUMNS set too)."""
    return pexpect.spawn(
        "bash",
        ["--norc", "--noprofile", "-c", shell_cmd],
        env={**env, "COLUMNS": str(columns)} if columns != 120 else env,
        encoding="utf-8",
        timeout=30,
        dimensions=(30, columns),
    )


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
    child = spawn(pick_env, pick_cmd(), columns=60)
    child.expect(r"Session \(4")
    # 60 columns: the pointer (4), the figures and the id (36), a space: 19 for the label
    child.expect(r"alpha-api · Paymen…\s+450\s+\$0\.00\s+1d ago\s+aaaa1111")
    child.send(CTRL_C)
    child.expect(pexpect.EOF)


CODEX_UUID = "019d0000-0000-7000-8000-00000000beef"


def write_codex_rollout(codex_home: Path, hours_ago: float) -> None:
    """One Codex turn (gpt-5: 12,345 tokens) ``hours_ago``, in project /work/codex-proj."""
    t = NOW - timedelta(hours=hours_ago)
    folder = codex_home / "sessions" / t.strftime("%Y/%m/%d")
    folder.mkdir(parents=True, exist_ok=True)
    iso = t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    usage = {"input_tokens": 12000, "cached_input_tokens": 2000, "output_tokens": 345,
             "reasoning_output_tokens": 0, "total_tokens": 12345}  # fmt: skip
    lines = [
        {"timestamp": iso, "type": "session_meta",
         "payload": {"id": CODEX_UUID, "timestamp": iso, "cwd": "/work/codex-proj"}},
        {"timestamp": iso, "type": "turn_context",
         "payload": {"model": "gpt-5", "cwd": "/work/codex-proj"}},
        {"timestamp": iso, "type": "event_msg",
         "payload": {"type": "token_count",
                     "info": {"total_token_usage": usage, "last_token_usage": usage}}},
    ]  # fmt: skip
    name = f"rollout-{t.strftime('%Y-%m-%dT%H-%M-%S')}-{CODEX_UUID}.jsonl"
    (folder / name).write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


@pytest.fixture(scope="module")
def mixed_env(tmp_path_factory: pytest.TempPathFactory, pick_env: dict[str, str]) -> dict[str, str]:
    """The four Claude sessions (their names and tags as in ``pick_env``) and one Codex
    session 5.5 hours old (second most recent), in a store of their own."""
    root = tmp_path_factory.mktemp("mixed")
    write_codex_rollout(root / "codex", 5.5)
    env = {**pick_env, "TOKMON_HOME": str(root / "tokmon"), "CODEX_HOME": str(root / "codex")}
    store = MetadataStore(paths=get_paths(env))
    store.update(SESSIONS[0][0], name="Payments refactor", tags=["backend"])
    return env


def test_other_agents_sessions_say_their_agent_and_agent_filters(
    mixed_env: dict[str, str],
) -> None:
    child = spawn(mixed_env, pick_cmd())
    child.expect(r"Session \(5, most recent first\)")
    # 12,345 tokens; gpt-5: 10,000 x $1.25/M + 2,000 cached x $0.125/M + 345 x $10/M = $0.0162
    child.expect(r"\[codex\] codex-proj\s+12\.3k\s+\$0\.02\s+5h ago\s+019d0000")
    child.expect(r"alpha-api · Payments refactor #backend\s+450\s+\$0\.00\s+1d ago\s+aaaa1111")
    child.send("codex")  # the agent is in the line: the filter finds it
    child.expect(filter_line("codex"))
    child.send(ENTER)
    child.expect(r"GOT:\[(.*?)\] RC:(\d+)")
    got = child.match.group(1)
    assert got.endswith(CODEX_UUID) and "rollout-" in got  # the whole session id
    assert child.match.group(2) == "0"

    child = spawn(mixed_env, pick_cmd("--agent codex"))
    child.expect(r"Session \(1, most recent first\)")
    child.send(ENTER)
    child.expect(r"GOT:\[(.*?)\] RC:(\d+)")
    assert child.match.group(1).endswith(CODEX_UUID)

    child = spawn(mixed_env, pick_cmd("--agent claude"))
    child.expect(r"Session \(4, most recent first\)")
    child.send(ENTER)  # the most recent Claude session, not the Codex one before it
    child.expect(r"GOT:\[(.*?)\] RC:(\d+)")
    assert child.match.group(1) == BY_RECENCY[0]


def test_agent_filter_errors_need_no_terminal(mixed_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tokmon", "pick", "--agent", "nosuch"],
        env=mixed_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("tokmon: error: unknown agent 'nosuch' (known: claude, codex")
    assert proc.stderr.rstrip().endswith(", all)")


def test_an_agent_without_sessions_is_a_clear_message(mixed_env: dict[str, str]) -> None:
    child = spawn(mixed_env, pick_cmd("--agent amp"))
    child.expect(r"no amp sessions to pick from")
    child.expect(r"GOT:\[\] RC:1")


def test_a_narrow_terminal_keeps_the_agent(mixed_env: dict[str, str]) -> None:
    child = spawn(mixed_env, pick_cmd(), columns=60)
    child.expect(r"Session \(5")
    # 60 columns: 19 for the label (see above); "[codex] codex-proj" is 18
    child.expect(r"\[codex\] codex-proj\s+12\.3k\s+\$0\.02\s+5h ago\s+019d0000")
    child.expect(r"alpha-api · Paymen…\s+450")
    child.send(CTRL_C)
    child.expect(pexpect.EOF)
