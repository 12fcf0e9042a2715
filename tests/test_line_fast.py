"""The `python -S` launcher that integrations use for `tokmon line`."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from line_support import append_assistant, make_env, refresh_now, run_line


def fast_argv(env: dict[str, str]) -> list[str]:
    r = run_line(["--fast-command"], env)
    assert r.returncode == 0, r.stderr
    argv = shlex.split(r.stdout)
    assert argv[1] == "-S" and argv[2].endswith(str(Path("tokmon", "statusline", "fast.py")))
    return argv


def test_fast_command_prints_what_tokmon_line_prints(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    append_assistant(env, input_tokens=120_000, output_tokens=30_000)
    refresh_now(env)
    argv = fast_argv(env)
    for args in (["--format", "plain"], ["--format", "tmux"], ["--template", "{block_tokens}"]):
        want = run_line(args, env)
        got = subprocess.run(
            [*argv, "line", *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert got.returncode == 0 and want.returncode == 0, got.stderr
        assert got.stdout == want.stdout and got.stdout.strip()
    # `line` may be left out, and the directory it runs in does not matter
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "formats.py").write_text("raise SystemExit('shadowed!')\n")
    got = subprocess.run(
        [*argv, "--format", "plain"], env=env, capture_output=True, text=True, timeout=60, cwd=other
    )
    assert got.returncode == 0 and got.stdout == run_line(["--format", "plain"], env).stdout


def test_fast_launcher_works_without_site(tmp_path: Path) -> None:
    """With site disabled (as the -S in the command does) and no PYTHONPATH, the launcher
    still finds its package."""
    env = make_env(tmp_path, copy_corpus=False)
    env.pop("PYTHONPATH", None)  # the launcher finds the package by its own location
    argv = fast_argv(env)
    probe = (
        "import sys, runpy; sys.argv = [sys.argv[1], '--help']; "
        "assert sys.flags.no_site; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    r = subprocess.run(
        [sys.executable, "-S", "-c", probe, argv[2]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "usage: tokmon line" in r.stdout
