"""`tokmon line --claude`: Claude Code's statusLine command, fed realistic and hostile stdin."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid

import pytest
from line_support import append_assistant, make_env, refresh_now, run_line, tokmon_cmd, wait_for

from tokmon.core import official
from tokmon.paths import get_paths

NOW = time.time()
SID = "0b9d6c1e-5f7a-4c1e-9a57-6f1f2b3c4d5e"


def payload(**over):
    """Shaped like Claude Code 2.1's statusLine input."""
    base = {
        "hook_event_name": "Status",
        "session_id": SID,
        "session_name": "Refactor the parser",
        "transcript_path": "/home/u/.claude/projects/-home-u-proj/" + SID + ".jsonl",
        "cwd": "/home/u/proj",
        "model": {"id": "claude-opus-4-5-20251101", "display_name": "Opus 4.5"},
        "workspace": {"current_dir": "/home/u/proj", "project_dir": "/home/u/proj"},
        "version": "2.1.140",
        "output_style": {"name": "default"},
        "cost": {"total_cost_usd": 1.2345, "total_duration_ms": 45000,
                 "total_api_duration_ms": 2300, "total_lines_added": 156,
                 "total_lines_removed": 23},
        "context_window": {"total_input_tokens": 15234, "total_output_tokens": 4521,
                           "context_window_size": 200000, "used_percentage": 42,
                           "remaining_percentage": 58,
                           "current_usage": {"input_tokens": 8500, "output_tokens": 1200,
                                             "cache_creation_input_tokens": 5000,
                                             "cache_read_input_tokens": 2000}},
        "exceeds_200k_tokens": False,
        "rate_limits": {"five_hour": {"used_percentage": 63.5, "resets_at": NOW + 5400},
                        "seven_day": {"used_percentage": 21, "resets_at": NOW + 86400 * 3}},
    }  # fmt: skip
    base.update(over)
    return base


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = make_env(tmp_path_factory.mktemp("claude"))
    append_assistant(env, input_tokens=300_000, output_tokens=100_000)
    refresh_now(env)
    return env


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def claude(env, stdin: bytes | str, *args: str) -> subprocess.CompletedProcess[str]:
    data = stdin.decode("utf-8", "replace") if isinstance(stdin, bytes) else stdin
    return run_line(["--claude", *args], env, input=data, timeout=20)


def test_full_payload_line_and_recorded_figures(env):
    res = claude(env, json.dumps(payload()))
    assert res.returncode == 0 and res.stderr == ""
    line = res.stdout.rstrip("\n")
    assert "\n" not in line
    # official 5 h utilisation replaces the estimate; the local block figures stay
    assert "5h 400k $" in line and "64%[now]" in line and "~" not in line
    assert "7d 21%[now]" in line
    assert "Refactor the parser $1.23" in line
    assert "ctx 42%" in line
    rec = official.for_session(get_paths(env), SID)
    assert rec["sessionName"] == "Refactor the parser"
    assert rec["fiveHour"]["usedPercentage"] == 63.5
    assert rec["fiveHour"]["resetsAt"] == pytest.approx(NOW + 5400)
    assert rec["sevenDay"]["usedPercentage"] == 21
    assert rec["contextWindow"]["usedPercentage"] == 42 and rec["contextWindow"]["size"] == 200000
    assert official.latest(get_paths(env))["sessionId"] == SID


def test_warning_colours_in_claude_output(env):
    res = claude(env, json.dumps(payload(rate_limits={"five_hour": {"used_percentage": 96}})))
    assert "\x1b[31;1m5h 400k" in res.stdout  # critical: red bold ANSI for Claude Code's row


@pytest.mark.parametrize(
    "data",
    [
        {"session_id": SID},
        {"session_id": SID, "model": None, "cost": None, "context_window": None,
         "rate_limits": None, "workspace": None, "session_name": None},
        {"session_id": SID, "rate_limits": {"five_hour": None, "seven_day": {}},
         "context_window": {"used_percentage": None, "current_usage": None}},
        {"session_id": SID, "cost": {"total_cost_usd": "1.5"},
         "rate_limits": {"five_hour": {"used_percentage": "high", "resets_at": "soon"}},
         "context_window": {"used_percentage": float("nan")}},
        {"session_id": None},
        {},
    ],
)  # fmt: skip
def test_missing_null_and_wrongly_typed_fields(env, data):
    if data.get("session_id") == SID:
        data = {**data, "session_id": str(uuid.uuid4())}  # no figures kept from other tests
    res = claude(env, json.dumps(data).replace("NaN", "1e999"))
    assert res.returncode == 0 and res.stderr == ""
    line = plain(res.stdout.strip())
    assert line.startswith("5h 400k $") and "today $" in line
    assert "Traceback" not in res.stdout


@pytest.mark.parametrize(
    "data",
    [b"", b"not json at all", b"[1, 2, 3]", b'"just a string"', b"{\"session_id\": ",
     b"\xff\xfe\x00\x01 binary", b"{}" * 100_000, b" " * (2 << 20)],
)  # fmt: skip
def test_garbage_stdin_still_prints_a_line(env, data):
    res = claude(env, data, "--verbose")
    assert res.returncode == 0
    assert plain(res.stdout).startswith("5h 400k $")
    assert "Traceback" not in res.stderr


def _open_stdin_run(env, data: bytes) -> tuple[str, str, float]:
    """Run `line --claude --timings --verbose` on a pipe that holds ``data`` before the
    process starts and is never closed; returns the output, the verbose notes and the
    milliseconds the process spent reading stdin (from its own --timings)."""
    rfd, wfd = os.pipe()
    try:
        if data:
            os.write(wfd, data)  # there before the process reads: no race with its start
        proc = subprocess.Popen([*tokmon_cmd(), "line", "--claude", "--timings", "--verbose"],
                                env=env, stdin=rfd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip
        try:
            out, err = proc.communicate(timeout=60)  # it exits although stdin is still open
        finally:
            proc.kill()
        assert proc.returncode == 0, err
    finally:
        os.close(rfd)
        os.close(wfd)
    text = out.decode()
    match = re.search(r"read statusLine stdin\s+([0-9.]+) ms", text)
    assert match, text
    return text, err.decode(), float(match.group(1))


def test_stdin_that_never_closes_after_a_payload(env):
    payload_bytes = json.dumps(payload(session_name="open pipe")).encode() + b"\n"
    out, notes, _ = _open_stdin_run(env, payload_bytes)
    assert "open pipe $1.23" in out.splitlines()[0]
    # answered on the complete object, not at the 1 s read deadline (the reader's own note;
    # how long that took is bench/ business, not a test's)
    assert "tokmon line: statusLine payload read" in notes.splitlines(), notes
    assert "still open" not in notes


def test_stdin_that_never_sends_anything(env):
    out, notes, read_ms = _open_stdin_run(env, b"")
    assert plain(out).startswith("5h 400k $")
    assert "stdin still open after 1.0s" in notes, notes
    assert read_ms >= 900  # gave up at the deadline, not before it


@pytest.mark.slow
def test_official_figures_reach_other_surfaces_labelled_with_age(env):
    claude(env, json.dumps(payload(rate_limits={"five_hour": {"used_percentage": 55,
                                                              "resets_at": NOW + 3600}})))  # fmt: skip
    # official.json is watched: the next plain/tmux call starts a refresh that copies it
    time.sleep(1.1)

    def tmux_line() -> str | None:
        out = run_line(["-f", "tmux", "--cwd", "/nowhere"], env).stdout
        return out if "55%[" in out else None

    out = wait_for(tmux_line)
    assert "5h 400k $" in out and "~" not in out.split(" | ")[0]


def test_session_name_reaches_the_metadata_store(env):
    claude(env, json.dumps(payload(session_name="Named by Claude")))
    from tokmon.metadata.store import MetadataStore

    store = MetadataStore(paths=get_paths(env))
    refresh_now(env)  # the refresher, not the statusLine call, writes the store
    wait_for(lambda: (store.get(SID) or {}).get("claudeTitle") == "Named by Claude")


def test_unwritable_state_dir_still_prints(tmp_path):
    env = make_env(tmp_path, copy_corpus=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    env["TOKMON_HOME"] = str(blocker / "home")
    res = claude(env, json.dumps(payload()))
    assert res.returncode == 0 and res.stderr == ""
    assert "64%[now]" in res.stdout and "Refactor the parser $1.23" in res.stdout
    res = claude(env, json.dumps(payload()), "--verbose")
    assert "could not record official figures" in res.stderr


def test_extract_is_pure_and_lenient():
    rec = official.extract(payload(context_window={"context_window_size": 200000,
                                                   "current_usage": {"input_tokens": 50000,
                                                                     "cache_read_input_tokens":
                                                                     50000}}), now=100.0)  # fmt: skip
    assert rec["contextWindow"]["usedPercentage"] == 50.0  # (50k + 50k) / 200k
    assert rec["observedAt"] == 100.0
    ms = official.extract(payload(rate_limits={"five_hour": {"used_percentage": 5,
                                                             "resets_at": 1_800_000_000_000}}))  # fmt: skip
    assert ms["fiveHour"]["resetsAt"] == 1_800_000_000.0
    assert official.extract(["not", "a", "dict"]) is None
    assert official.extract({"session_id": ""}) is None


def test_columns_limits_the_width(env):
    wide = plain(claude(env, json.dumps(payload())).stdout.strip())
    assert "today $" in wide and "7d " in wide
    narrow_env = {**env, "COLUMNS": str(len(wide) - 1)}
    narrow = plain(run_line(["--claude"], narrow_env, input=json.dumps(payload())).stdout.strip())
    assert "today $" not in narrow and narrow.startswith("5h ") and len(narrow) < len(wide)
