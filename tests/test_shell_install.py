"""`tokmon init <shell>` scripts and `tokmon install-statusline` on real settings files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from line_support import make_env, tokmon_cmd

# slow: real shells and a CLI process per step
pytestmark = pytest.mark.slow

SETTINGS = {
    "model": "opus",
    "env": {"FOO": "1"},
    "permissions": {"allow": ["Bash(ls:*)"], "deny": []},
    "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "echo done"}]}]},
    "includeCoAuthoredBy": False,
    "cleanupPeriodDays": 99,
    "unicode": "café ✓",
}


def tokmon(env, *args):
    return subprocess.run([*tokmon_cmd(), *args], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


@pytest.fixture
def env(tmp_path):
    return make_env(tmp_path, copy_corpus=False)


def write_settings(path, data=SETTINGS):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return path


def backups(path):
    return sorted(path.parent.glob(path.name + ".tokmon-backup-*"))


def test_install_keeps_every_other_key_and_backs_up(env, tmp_path):
    path = write_settings(tmp_path / "s" / "settings.json")
    original = path.read_bytes()
    res = tokmon(env, "install-statusline", "--settings", str(path))
    assert res.returncode == 0, res.stderr
    data = json.loads(path.read_text(encoding="utf-8"))
    assert {k: v for k, v in data.items() if k != "statusLine"} == SETTINGS
    assert list(data)[: len(SETTINGS)] == list(SETTINGS)  # key order kept
    sl = data["statusLine"]
    assert sl["type"] == "command" and sl["padding"] == 0
    assert sl["command"].endswith(" line --claude") and "tokmon" in sl["command"]
    [backup] = backups(path)
    assert backup.read_bytes() == original
    # the installed command really works as Claude Code would run it (through a shell)
    run = subprocess.run(sl["command"], shell=True, input="{}", env=env, capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert run.returncode == 0 and run.stdout.strip()


def test_install_is_idempotent(env, tmp_path):
    path = write_settings(tmp_path / "settings.json")
    assert tokmon(env, "install-statusline", "--settings", str(path)).returncode == 0
    first = path.read_bytes()
    res = tokmon(env, "install-statusline", "--settings", str(path))
    assert res.returncode == 0 and "already installed" in res.stdout
    assert path.read_bytes() == first and len(backups(path)) == 1


def test_foreign_statusline_needs_force_and_comes_back_on_uninstall(env, tmp_path):
    theirs = {"type": "command", "command": "~/bin/my-statusline.sh", "padding": 1}
    path = write_settings(tmp_path / "settings.json", {**SETTINGS, "statusLine": theirs})
    before = path.read_bytes()
    res = tokmon(env, "install-statusline", "--settings", str(path))
    assert res.returncode == 1 and "--force" in res.stderr and res.stderr.count("\n") == 1
    assert path.read_bytes() == before and backups(path) == []
    assert tokmon(env, "install-statusline", "--settings", str(path), "--force").returncode == 0
    assert "tokmon" in json.loads(path.read_text())["statusLine"]["command"]
    res = tokmon(env, "install-statusline", "--settings", str(path), "--uninstall")
    assert res.returncode == 0 and "restored" in res.stdout
    assert json.loads(path.read_text()) == {**SETTINGS, "statusLine": theirs}


def test_uninstall_removes_only_ours(env, tmp_path):
    path = write_settings(tmp_path / "settings.json")
    tokmon(env, "install-statusline", "--settings", str(path))
    assert tokmon(env, "install-statusline", "--settings", str(path), "--uninstall").returncode == 0
    assert json.loads(path.read_text()) == SETTINGS
    res = tokmon(env, "install-statusline", "--settings", str(path), "--uninstall")
    assert res.returncode == 0 and "nothing to do" in res.stdout
    other = write_settings(tmp_path / "o.json", {"statusLine": {"command": "x"}})
    res = tokmon(env, "install-statusline", "--settings", str(other), "--uninstall")
    assert res.returncode == 1 and "not tokmon's" in res.stderr


def test_invalid_json_is_left_untouched(env, tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"model": "opus",, }', encoding="utf-8")
    res = tokmon(env, "install-statusline", "--settings", str(path))
    assert res.returncode != 0 and "not valid JSON" in res.stderr
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1
    assert path.read_text() == '{"model": "opus",, }' and backups(path) == []


def test_default_path_honours_claude_config_dir_first_entry(env, tmp_path):
    first, second = tmp_path / "cfg1", tmp_path / "cfg2"
    env["CLAUDE_CONFIG_DIR"] = f"{first},{second}"
    env["HOME"] = str(tmp_path / "home")
    assert tokmon(env, "install-statusline").returncode == 0
    assert "statusLine" in json.loads((first / "settings.json").read_text())
    assert not (second / "settings.json").exists()
    del env["CLAUDE_CONFIG_DIR"]
    assert tokmon(env, "install-statusline").returncode == 0
    assert (tmp_path / "home" / ".claude" / "settings.json").exists()


@pytest.mark.skipif(os.name == "nt", reason="symlinks")
def test_symlinked_settings_stay_a_symlink(env, tmp_path):
    real = write_settings(tmp_path / "dotfiles" / "settings.json")
    link = tmp_path / "claude-cfg" / "settings.json"
    link.parent.mkdir()
    link.symlink_to(real)
    assert tokmon(env, "install-statusline", "--settings", str(link)).returncode == 0
    assert link.is_symlink() and "statusLine" in json.loads(real.read_text())


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_init_scripts_parse_in_their_shell(env, shell, tmp_path):
    res = tokmon(env, "init", shell)
    assert res.returncode == 0 and "tokmon" in res.stdout
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} not installed")
    script = tmp_path / f"init.{shell}"
    script.write_text(res.stdout, encoding="utf-8")
    check = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash")
def test_bash_init_is_idempotent_and_keeps_prompt_command(env):
    init = " ".join(tokmon_cmd()) + " init bash"
    script = (f'PS1="u$ "; PROMPT_COMMAND="history -a"; eval "$({init})"; eval "$({init})"; '
              'printf "%s\\n" "$PS1" "$PROMPT_COMMAND"')  # fmt: skip
    res = subprocess.run(["bash", "--norc", "-c", script], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    ps1, pc = res.stdout.splitlines()
    assert ps1 == "${TOKMON_LINE:+$TOKMON_LINE }u$ "
    assert pc == "_tokmon_prompt;history -a"


def test_init_rejects_unknown_shell(env):
    res = tokmon(env, "init", "tcsh")
    assert res.returncode == 2 and "tcsh" in res.stderr and "Traceback" not in res.stderr


def test_an_explicit_settings_path_in_a_missing_folder_is_refused(env, tmp_path):
    """A typo in --settings makes no folder tree (the default ~/.claude is still created)."""
    path = tmp_path / "no" / "such" / "settings.json"
    res = tokmon(env, "install-statusline", "--settings", str(path))
    assert res.returncode == 2 and "no folder" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()
