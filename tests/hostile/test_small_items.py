"""Issue 10 item 13 (hsurface's part): install-statusline edge cases, project directories
that cannot be listed or are symlinks, the JSON-lines reader on a huge line, and
``line --claude`` with stdin closed."""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from hostile.hs_support import assistant, hs_env, run, tokmon_argv, write_transcript

# --------------------------------------------------------------------------- install-statusline


def _install(env: dict[str, str], settings: Path) -> subprocess.CompletedProcess[str]:
    return run([*tokmon_argv(), "install-statusline"], env, settings.parent)


def _backups(settings: Path) -> list[Path]:
    return sorted(settings.parent.glob("settings.json.tokmon-backup-*"))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"a": 1e400, "b": 1}', "Infinity"),
        ('{"a": 1, "a": 2}', "twice"),
        ('{"a": NaN}', "NaN"),
    ],  # fmt: skip
)
def test_settings_a_rewrite_would_change_are_left_alone(
    tmp_path: Path, content: str, why: str
) -> None:
    env = hs_env(tmp_path)
    settings = Path(env["CLAUDE_CONFIG_DIR"]) / "settings.json"
    settings.write_text(content)
    r = _install(env, settings)
    assert r.returncode != 0 and why in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert settings.read_text() == content and _backups(settings) == []


def test_read_only_settings_are_respected(tmp_path: Path) -> None:
    env = hs_env(tmp_path)
    settings = Path(env["CLAUDE_CONFIG_DIR"]) / "settings.json"
    settings.write_text('{"theme": "dark"}\n')
    settings.chmod(0o444)
    r = _install(env, settings)
    assert r.returncode != 0 and "read-only" in r.stderr, r.stderr
    assert settings.read_text() == '{"theme": "dark"}\n' and _backups(settings) == []


def test_lone_surrogate_is_kept_exactly(tmp_path: Path) -> None:
    env = hs_env(tmp_path)
    settings = Path(env["CLAUDE_CONFIG_DIR"]) / "settings.json"
    settings.write_text('{"a": "\\ud800"}')
    r = _install(env, settings)
    assert r.returncode == 0, r.stderr
    data = json.loads(settings.read_text(encoding="utf-8"))
    assert data["a"] == "\ud800" and "line --claude" in data["statusLine"]["command"]
    assert len(_backups(settings)) == 1


# --------------------------------------------------------------------------- project dirs


def _totals(env: dict[str, str]) -> tuple[int, int, str]:
    r = run([*tokmon_argv(), "daily", "--json"], env, Path(env["HOME"]))
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["totals"]
    return t["inputTokens"], t["outputTokens"], r.stderr


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_symlinked_project_dirs_are_followed_once_and_loops_end(tmp_path: Path) -> None:
    env = hs_env(tmp_path)
    write_transcript(env, "-here", "a.jsonl", [assistant("h1", inp=10, out=5)])
    elsewhere = tmp_path / "data" / "-there"
    elsewhere.mkdir(parents=True)
    (elsewhere / "b.jsonl").write_text(assistant("t1", inp=100, out=50) + "\n")
    projects = Path(env["CLAUDE_CONFIG_DIR"]) / "projects"
    (projects / "-there").symlink_to(elsewhere)  # a project stored behind a symlink
    (projects / "-there-again").symlink_to(elsewhere)  # the same target twice
    (elsewhere / "loop").symlink_to(elsewhere)  # a loop inside the target
    (elsewhere / "up").symlink_to(tmp_path / "data")  # and one to its parent
    (projects / "self").symlink_to(projects)  # a loop inside the root
    inp, out, err = _totals(env)
    assert (inp, out) == (110, 55), err


def test_unlistable_project_dir_gets_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Root can list any dir, so the refusal is simulated at os.scandir for one path (a real
    chmod 000 run follows when not root)."""
    from tokmon.core import discovery

    env = hs_env(tmp_path)
    write_transcript(env, "-ok", "a.jsonl", [assistant("o1")])
    locked = Path(env["CLAUDE_CONFIG_DIR"]) / "projects" / "-locked"
    locked.mkdir()
    real = os.scandir

    def scandir(path: str) -> object:
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real(path)

    monkeypatch.setattr(discovery.os, "scandir", scandir)
    with caplog.at_level(logging.WARNING, logger="tokmon.core.discovery"):
        found = [p for p, _ in discovery.transcript_stats(locked.parent)]
    assert [Path(p).name for p in found] == ["a.jsonl"]
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot list {locked}: Permission denied; its transcripts are not counted"
    ]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs non-root POSIX")
def test_unlistable_project_dir_warns_in_a_report(tmp_path: Path) -> None:
    env = hs_env(tmp_path)
    write_transcript(env, "-ok", "a.jsonl", [assistant("o1", inp=7, out=3)])
    locked = write_transcript(env, "-locked", "b.jsonl", [assistant("l1")]).parent
    locked.chmod(0)
    try:
        inp, out, err = _totals(env)
    finally:
        locked.chmod(0o700)
    assert (inp, out) == (7, 3) and "cannot list" in err and str(locked) in err


# --------------------------------------------------------------------------- JSON lines


@pytest.mark.slow
def test_jsonl_huge_line_gives_one_error_and_the_next_request_is_answered(tmp_path: Path) -> None:
    env = hs_env(tmp_path)
    p = subprocess.Popen([*tokmon_argv(), "serve", "--jsonl", "--no-watch"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=str(tmp_path))  # fmt: skip
    big = b'{"id":1,"method":"tokmon/version","x":"' + b"a" * (70 * 1024 * 1024) + b'"}\n'
    out, err = p.communicate(big + b'{"id":2,"method":"tokmon/version"}\n', timeout=300)
    replies = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [r.get("id") for r in replies] == [None, 2], replies
    assert "too long" in replies[0]["error"]["message"]
    assert p.returncode == 0 and b"Traceback" not in err


def test_jsonl_reader_splits_lines_exactly(tmp_path: Path) -> None:
    """Lines split across reads, empty lines and a final line without newline."""
    env = hs_env(tmp_path)
    lines = b"".join(b'{"id":%d,"method":"tokmon/version"}\n' % i for i in range(300))
    r = subprocess.run([*tokmon_argv(), "serve", "--jsonl", "--no-watch"], env=env,
                       input=lines + b"\n\n" + b'{"id":999,"method":"tokmon/version"}',
                       capture_output=True, timeout=120, cwd=str(tmp_path))  # fmt: skip
    ids = [json.loads(x)["id"] for x in r.stdout.splitlines() if x.strip()]
    assert sorted(ids) == [*range(300), 999]  # answers may overtake each other


# --------------------------------------------------------------------------- line --claude


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="closing fd 0 through sh")
def test_line_claude_with_stdin_closed_or_absurd_prints_the_line(tmp_path: Path) -> None:
    env = hs_env(tmp_path)
    write_transcript(env, "-p", "s.jsonl", [assistant("c1", inp=1000, out=500)])
    r = run([*tokmon_argv(), "line", "--sync"], env, tmp_path)
    assert "today" in r.stdout, r.stderr
    cmd = " ".join(shlex.quote(w) for w in tokmon_argv()) + " line --claude <&-"
    closed = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True,
                            timeout=60, cwd=str(tmp_path))  # fmt: skip
    deep = run([*tokmon_argv(), "line", "--claude"], env, tmp_path, stdin="[" * 5000)
    for res in (closed, deep):
        assert res.returncode == 0 and "today" in res.stdout and "…" not in res.stdout.split()[:2]


def test_line_claude_absurd_figures_are_clamped(tmp_path: Path) -> None:
    import re

    env = hs_env(tmp_path)
    payload = json.dumps({"session_id": "abs-1", "session_name": "absurd",
                          "cost": {"total_cost_usd": 1e308},
                          "rate_limits": {"five_hour": {"used_percentage": 1e308}}})  # fmt: skip
    r = run([*tokmon_argv(), "line", "--claude"], env, tmp_path, stdin=payload)
    assert r.returncode == 0 and "absurd" in r.stdout, r.stderr
    longest = max((len(m) for m in re.findall(r"[0-9][0-9,]*", r.stdout)), default=0)
    assert longest <= 12, r.stdout
