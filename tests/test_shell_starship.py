"""The starship snippet in integrations/shell: its command and format, through real starship."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from line_support import REPO, project_env

SNIPPET = REPO / "integrations" / "shell" / "starship.toml"


def starship_bin() -> str | None:
    found = shutil.which("starship")
    beside = Path(sys.executable).parent / "starship"
    return found or (str(beside) if beside.is_file() else None)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("starship")
    env, project = project_env(
        tmp, "[line]\nwarning_percent = 3\ncritical_percent = 5\n"
    )  # 9 %: critical
    config = tmp / "starship.toml"
    config.write_text('format = "${custom.tokmon}"\nadd_newline = false\n\n'
                      + SNIPPET.read_text(encoding="utf-8"), encoding="utf-8")  # fmt: skip
    env["STARSHIP_CONFIG"] = str(config)
    env["STARSHIP_CACHE"] = str(tmp / "starship-cache")
    return env, project


def test_snippet_is_valid_toml_with_the_fast_settings():
    mod = tomllib.loads(SNIPPET.read_text(encoding="utf-8"))["custom"]["tokmon"]
    assert mod["command"] == "tokmon line --format starship"
    assert mod["when"] is True  # boolean: a string `when` would spawn a shell per prompt
    assert mod["shell"] == ["sh"]
    assert "$output" in mod["format"]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_real_starship_renders_the_segment(setup, shell):
    env, project = setup
    exe = starship_bin()
    if exe is None:
        pytest.skip("starship not installed (see test_snippet_command_and_format_without_starship)")
    res = subprocess.run([exe, "prompt"], env={**env, "STARSHIP_SHELL": shell}, cwd=project,
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = res.stdout
    # critical (red bold) ANSI from tokmon, wrapped by starship in the shell's non-printing marks
    if shell == "bash":
        assert "\\[\x1b[31;1m\\]5h 800k $" in out.replace("\\$", "$")
    else:
        assert "%{\x1b[31;1m%}5h 800k $" in out
    text = re.sub(r"\\\[|\\\]|%\{|%\}|\x1b\[[0-9;]*m", "", out).replace("\\$", "$")
    assert f"| {project.name} $" in text and "today $" in text
    assert "timed out" not in res.stderr


def test_snippet_command_and_format_without_starship(setup):
    """What starship does with the snippet, done by hand: run `command` with `shell`, put the
    output into `format`.  Runs whether or not starship is installed."""
    env, project = setup
    mod = tomllib.loads(SNIPPET.read_text(encoding="utf-8"))["custom"]["tokmon"]
    res = subprocess.run([*mod["shell"], "-c", mod["command"]], env=env, cwd=project,
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert res.returncode == 0 and res.stderr == ""
    output = res.stdout.strip()
    assert output.startswith("\x1b[31;1m5h 800k $")
    shown = mod["format"].replace("$output", output)
    assert re.fullmatch(r"\[.*5h 800k \$.*\]\(\$style\) ", shown, re.S)
