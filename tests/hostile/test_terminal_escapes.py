"""Issue 10 item 5: control characters from transcripts never reach the terminal.

A session title (``custom-title``), the working directory (the project name), the model
name, Claude Code's statusLine ``session_name`` and a restored backup carry OSC 52
(clipboard), OSC 2 (window title), hidden / blinking text, a C1 CSI and a bidi override.
Every surface's output must be free of them: ``line`` in every format, ``line --claude``,
report tables and their JSON, ``session list`` / ``show``, the JSON-lines service and the
``watch`` dashboard (raw bytes read from a pty).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from hostile.hs_support import ESCAPES, assistant, hs_env, run, tokmon_argv, write_transcript

SID = "e5c0e5c0-0000-4000-8000-000000000001"
EVIL_CWD = "/work/evil" + "\x1b]2;HACKED\x07\x1b[8m\u202e" + "proj"
TITLE = "EVIL" + ESCAPES + "TITLE"
FORMATS = ["plain", "tmux", "starship", "bash", "zsh", "fish", "json", "claude"]
#: what must never appear, raw or JSON-escaped (tokmon's own colour codes are allowed)
FORBIDDEN = ["\x1b]52", "\x1b]2;", "\x07", "\x9b", "\u202e", "\x1b[5m", "\x1b[8m",
             "\\u001b", "\\u0007", "\\u009b", "\\u202e", "\\u202E"]  # fmt: skip


def _clean(text: str, where: str) -> None:
    bad = [f for f in FORBIDDEN if f in text]
    assert not bad, f"{where}: {bad!r} in {text[:600]!r}"


@pytest.fixture
def evil_env(tmp_path: Path) -> dict[str, str]:
    env = hs_env(tmp_path)
    title = json.dumps({"type": "custom-title", "sessionId": SID, "customTitle": TITLE})
    write_transcript(env, "-work-evil", f"{SID}.jsonl", [
        assistant("m1", sid=SID, cwd=EVIL_CWD, model="claude-sonnet-4-20250514\x1b]2;M\x07"),
        assistant("m2", sid=SID, cwd=EVIL_CWD),
        title,
    ])  # fmt: skip
    return env


def _ok(argv: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    r = run([*tokmon_argv(), *argv], env, Path(env["HOME"]), stdin=stdin)
    assert r.returncode == 0, (argv, r.stderr)
    _clean(r.stderr, f"{argv} stderr")
    return r.stdout


@pytest.mark.slow
def test_line_every_format_and_claude_mode(evil_env: dict[str, str]) -> None:
    for fmt in FORMATS:
        out = _ok(["line", "--sync", "--format", fmt, "--cwd", EVIL_CWD], evil_env)
        _clean(out, f"line --format {fmt}")
        assert "EVIL" in out, (fmt, out)  # the session segment is there, cleaned
    payload = json.dumps({"session_id": SID, "session_name": "\x1b]2;X\x07name\u202e",
                          "workspace": {"current_dir": EVIL_CWD},
                          "model": {"display_name": "Opus\x1b[8m"},
                          "cost": {"total_cost_usd": 1.5}})  # fmt: skip
    out = _ok(["line", "--claude"], evil_env, stdin=payload)
    _clean(out, "line --claude")
    assert "name" in out
    official = Path(evil_env["TOKMON_HOME"]) / "state" / "official.json"
    _clean(official.read_text(encoding="utf-8"), "official.json")
    out = _ok(["line", "--sync", "--explain", "--cwd", EVIL_CWD], evil_env)
    _clean(out, "line --explain")


@pytest.mark.slow
def test_reports_tables_json_and_session_commands(evil_env: dict[str, str]) -> None:
    for argv in (["daily"], ["daily", "--breakdown"], ["session"], ["stats"], ["blocks"],
                 ["monthly"], ["session", "list"], ["session", "show", SID]):  # fmt: skip
        _clean(_ok(argv, evil_env), " ".join(argv))
        _clean(_ok(["--json", *argv], evil_env), "--json " + " ".join(argv))
    table = _ok(["session", "list"], evil_env)
    assert "EVIL" in table  # the title is shown, only without its control characters
    r = run([*tokmon_argv(), "serve", "--jsonl"], evil_env, Path(evil_env["HOME"]),
            stdin='{"id":1,"method":"tokmon/sessions","params":{}}\n'
                  '{"id":2,"method":"tokmon/summary","params":{}}\n')  # fmt: skip
    assert r.returncode == 0 and '"id":2' in r.stdout.replace(" ", "")
    _clean(r.stdout, "serve --jsonl")


@pytest.mark.slow
def test_restored_backup_titles_are_cleaned(evil_env: dict[str, str], tmp_path: Path) -> None:
    backup = tmp_path / "evil-backup.json"
    backup.write_text(json.dumps({"_meta": {"1": {"schemaVersion": 2}}, "sessions": {"1": {
        "sessionId": SID, "name": None, "tags": [], "description": "line1\n\x1b]52;c;eA==\x07x",
        "claudeTitle": "\x1b]2;OWNED\x07\x1b[8mhidden", "createdAt": "2025-06-01T10:00:00.000Z",
        "updatedAt": "2025-06-01T10:00:00.000Z"}}}))  # fmt: skip
    _ok(["backup", "restore", str(backup)], evil_env)
    for argv in (["session", "list"], ["session", "show", SID], ["stats"]):
        _clean(_ok(argv, evil_env), " ".join(argv))
    stored = next((Path(evil_env["TOKMON_HOME"]) / "data").glob("sessions.json")).read_text()
    _clean(stored, "sessions.json")
    assert "hidden" in stored and "line1" in stored


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="pty")
def test_watch_dashboard_bytes(evil_env: dict[str, str]) -> None:
    pexpect = pytest.importorskip("pexpect")
    pytest.importorskip("textual")
    _ok(["daily"], evil_env)  # index first
    child = pexpect.spawn(tokmon_argv()[0] if len(tokmon_argv()) == 1 else sys.executable,
                          [*tokmon_argv()[1:], "watch"], env={**evil_env, "TERM": "xterm-256color"},
                          dimensions=(40, 200), timeout=60, encoding="utf-8",
                          codec_errors="replace")  # fmt: skip
    seen = ""
    try:
        child.expect("TITLE", timeout=90)
        seen = child.before + child.after
        try:
            child.expect(pexpect.TIMEOUT, timeout=2)
        except pexpect.EOF:
            pass
        seen += child.before or ""
    finally:
        child.sendline("q")
        child.close(force=True)
    bad = [f for f in ("\x1b]52", "\x1b]2;HACKED", "\x9b", "\u202e", "\x1b[8m") if f in seen]
    assert not bad, bad


@pytest.mark.slow
def test_other_agents_logs_are_cleaned_too(tmp_path: Path) -> None:
    """A Codex rollout is untrusted text like a Claude transcript: its working directory,
    model and file name (the session id) reach the reports without their escapes."""
    env = hs_env(tmp_path)
    codex = tmp_path / "codex"
    day = codex / "sessions" / "2026" / "11" / "01"
    day.mkdir(parents=True)
    name = "rollout-2026-11-01T10-00-00-evil\x1b]2;F\x07name.jsonl"
    ts = "2026-11-01T10:00:00.000Z"
    usage = {"input_tokens": 90, "cached_input_tokens": 0, "output_tokens": 7,
             "reasoning_output_tokens": 0, "total_tokens": 97}  # fmt: skip
    lines = [
        {"timestamp": ts, "type": "session_meta",
         "payload": {"id": "s-1", "cwd": EVIL_CWD, "timestamp": ts}},
        {"timestamp": ts, "type": "turn_context",
         "payload": {"model": "gpt-5\x1b]52;c;cHduZWQ=\x07", "cwd": EVIL_CWD}},
        {"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count",
         "info": {"total_token_usage": usage, "last_token_usage": usage}}},
    ]  # fmt: skip
    (day / name).write_text("".join(json.dumps(x) + "\n" for x in lines))
    env["CODEX_HOME"] = str(codex)
    out = ""
    for argv in (
        ["session", "--agent", "codex"],
        ["session", "--agent", "codex", "--json"],
        ["daily", "--agent", "all", "--breakdown"],
        ["monthly", "--agent", "all", "--json"],
    ):
        got = _ok(argv, env)
        _clean(got, " ".join(argv))
        out += got
    assert "97" in out and "evil" in out and "proj" in out  # the session is there, cleaned
