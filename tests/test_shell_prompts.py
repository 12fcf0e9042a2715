"""bash, zsh and fish in real tmux panes, each with `tokmon init <shell>` in its rc file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid

import pytest
from line_support import append_assistant, project_env, tokmon_cmd, wait_for

SHELLS = [s for s in ("bash", "zsh", "fish") if shutil.which(s)]
# slow: real tmux panes running bash, zsh and fish
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]


class Panes:
    def __init__(self, env: dict[str, str], sock: str) -> None:
        self.env, self.sock = env, sock

    def tmux(self, *args: str) -> str:
        res = subprocess.run(["tmux", "-L", self.sock, *args], env=self.env, capture_output=True,
                             text=True, timeout=30)  # fmt: skip
        assert res.returncode == 0, res.stderr
        return res.stdout

    def screen(self, shell: str) -> list[str]:
        return [r for r in self.tmux("capture-pane", "-p", "-t", shell).splitlines() if r.strip()]

    def prompt(self, shell: str) -> str:
        """Press Enter and return the prompt row it produced."""
        self.tmux("send-keys", "-t", shell, "", "Enter")
        time.sleep(0.3)
        rows = self.screen(shell)
        return rows[-1] if rows else ""

    def until(self, shell: str, needle: str, timeout: float = 60.0) -> str:
        def check() -> str | None:
            row = self.prompt(shell)
            return row if needle in row else None

        return wait_for(check, timeout=timeout, step=0.2)


@pytest.fixture(scope="module")
def panes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shells")
    env, project = project_env(tmp, "[line]\nstale_seconds = 1\n")
    home = tmp / "home"
    (home / ".config" / "fish").mkdir(parents=True)
    init = " ".join(tokmon_cmd()) + " init"
    (home / ".bashrc").write_text(f'PS1="bash$ "\neval "$({init} bash)"\n', encoding="utf-8")
    (home / ".zshrc").write_text(f'PROMPT="zsh%% "\neval "$({init} zsh)"\n', encoding="utf-8")
    (home / ".config" / "fish" / "config.fish").write_text(
        f"function fish_prompt; echo -n 'fish> '; end\n{init} fish | source\n", encoding="utf-8"
    )
    env.update(HOME=str(home), TOKMON_REFRESH_SECONDS="1", TERM="screen")
    env.pop("TMUX", None)
    p = Panes(env, f"tokmon-sh-{uuid.uuid4().hex[:8]}")
    p.tmux("-f", os.devnull, "new-session", "-d", "-s", "main", "-n", "idle", "-x", "200", "-y", "15",
           "-c", str(tmp), "sleep 100000")  # fmt: skip
    commands = {"bash": "bash -i", "zsh": "zsh -i", "fish": "fish -i"}
    for shell in SHELLS:
        p.tmux("new-window", "-d", "-n", shell, "-c", str(tmp), commands[shell])
    p.project = project  # type: ignore[attr-defined]
    try:
        yield p
    finally:
        subprocess.run(["tmux", "-L", p.sock, "kill-server"], env=env, capture_output=True)


@pytest.mark.parametrize("shell", SHELLS)
def test_prompt_shows_the_segment_before_the_users_prompt(panes, shell):
    # 800k in the corpus; 1.00M once test_new_totals_appear_after_a_transcript_append has run
    row = panes.until(shell, " | today $")
    assert re.match(r"5h (800k|1\.00M) \$", row) and " | today $" in row, row
    assert row.rstrip().endswith({"bash": "bash$", "zsh": "zsh%", "fish": "fish>"}[shell])


@pytest.mark.parametrize("shell", SHELLS)
def test_cd_into_the_project_shows_its_session(panes, shell):
    panes.tmux("send-keys", "-t", shell, f"cd {panes.project}", "Enter")
    row = panes.until(shell, f"| {panes.project.name} $")
    assert row.startswith("5h ")
    panes.tmux("send-keys", "-t", shell, "cd ..", "Enter")


def test_new_totals_appear_after_a_transcript_append(panes):
    for shell in SHELLS:
        panes.until(shell, "5h 800k $")
    append_assistant(panes.env, input_tokens=100_000, output_tokens=100_000,
                     cwd=str(panes.project))  # fmt: skip
    for shell in SHELLS:  # the hook's background job refreshes; a later prompt shows it
        assert panes.until(shell, "5h 1.00M $").startswith("5h 1.00M $")


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")
@pytest.mark.parametrize("shell", SHELLS)
def test_no_process_spawned_per_prompt(panes, shell):
    """Inside the refresh interval the hook forks nothing: strace the shell over 10 prompts."""
    panes.until(shell, "5h ")
    pid = panes.tmux("display-message", "-p", "-t", shell, "#{pane_pid}").strip()
    setter = {"bash": "export TOKMON_REFRESH_SECONDS=100000",
              "zsh": "export TOKMON_REFRESH_SECONDS=100000",
              "fish": "set -gx TOKMON_REFRESH_SECONDS 100000"}[shell]  # fmt: skip
    panes.tmux("send-keys", "-t", shell, setter, "Enter")
    time.sleep(0.5)
    panes.prompt(shell)  # one prompt after the setting
    log = panes.env["HOME"] + f"/strace-{shell}.log"
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=fork,vfork,clone,clone3,execve",
                               "-o", log, "-p", pid])  # fmt: skip
    try:
        time.sleep(1.0)  # attached
        rows = [panes.prompt(shell) for _ in range(10)]
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)
    assert all(r.startswith("5h ") for r in rows), rows
    with open(log, encoding="utf-8", errors="replace") as fh:
        calls = [
            ln
            for ln in fh
            if any(c in ln for c in ("fork(", "clone(", "clone3(", "execve("))
            and "CLONE_THREAD" not in ln  # fish's own worker threads are not processes
        ]
    assert calls == [], calls[:5]
    reset = {"fish": "set -gx TOKMON_REFRESH_SECONDS 1"}.get(
        shell, "export TOKMON_REFRESH_SECONDS=1"
    )
    panes.tmux("send-keys", "-t", shell, reset, "Enter")
