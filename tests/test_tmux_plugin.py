"""The TPM plugin in a real tmux: an inner server with the plugin loaded, read through an
outer server whose pane runs a client attached to it (so the status line is really drawn)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid

import pytest
from line_support import REPO, append_assistant, project_env, wait_for

# slow: a real tmux server
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]

PLUGIN = REPO / "integrations" / "tmux" / "tokmon.tmux"


class Tmux:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        tag = uuid.uuid4().hex[:8]
        self.inner, self.outer = f"tokmon-in-{tag}", f"tokmon-out-{tag}"

    def run(self, sock: str, *args: str) -> str:
        res = subprocess.run(["tmux", "-L", sock, *args], env=self.env, capture_output=True,
                             text=True, timeout=30)  # fmt: skip
        assert res.returncode == 0, res.stderr
        return res.stdout

    def status(self, escapes: bool = False) -> str:
        """The inner client's status line as the outer pane shows it (last row)."""
        args = ["capture-pane", "-p", "-t", "outer"] + (["-e"] if escapes else [])
        rows = self.run(self.outer, *args).rstrip("\n").splitlines()
        return rows[-1] if rows else ""

    def until(
        self, needle: str, escapes: bool = False, timeout: float = 60.0, also: tuple[str, ...] = ()
    ) -> str:
        """Wait until the status line contains ``needle`` (and every one of ``also``: tmux runs
        each #() job on its own schedule, so one segment may show before another); return it."""

        def check() -> str | None:
            line = self.status(escapes)
            return line if needle in line and all(a in line for a in also) else None

        return wait_for(check, timeout=timeout)

    def kill(self) -> None:
        for sock in (self.inner, self.outer):
            subprocess.run(["tmux", "-L", sock, "kill-server"], env=self.env,
                           capture_output=True, timeout=30)  # fmt: skip


@pytest.fixture(scope="module")
def tmux(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tmux")
    env, project = project_env(tmp, "[line]\nstale_seconds = 1\n")
    env.pop("TMUX", None)
    conf = tmp / "tmux.conf"
    conf.write_text(
        "set -g status-interval 1\n"
        "set -g status-right-length 200\n"
        "set -g status-left ''\n"
        "set -g status-right 'R[#{tokmon}] T[#{tokmon_today}]'\n"
        "set -g @tokmon_critical_percent 5\n"  # 800k of the corpus's largest block (8.9M)
        "set -g @tokmon_critical_style 'fg=red'\n"
        f"run-shell '{PLUGIN}'\n",
        encoding="utf-8",
    )
    t = Tmux(env)
    t.run(t.inner, "-f", str(conf), "new-session", "-d", "-s", "in", "-x", "200", "-y", "10",
          "-c", str(project))  # fmt: skip
    t.run(t.outer, "-f", os.devnull, "new-session", "-d", "-s", "outer", "-x", "200", "-y", "12",
          f"env -u TMUX tmux -L {t.inner} attach -t in")  # fmt: skip
    t.project = project  # type: ignore[attr-defined]
    try:
        yield t
    finally:
        t.kill()


def test_plugin_rewrites_placeholders_into_jobs(tmux):
    right = tmux.run(tmux.inner, "show-option", "-gv", "status-right")
    assert "#{tokmon}" not in right and "#(" in right
    assert "line --format tmux --cwd #{q:pane_current_path}" in right
    assert "--critical '5'" in right and "--template '{today}'" in right


def test_status_line_shows_the_segment(tmux):
    # the pane's directory is the project of the appended line: its session is shown (tmux may
    # know the pane's path only from the second job run on, hence the wait)
    line = tmux.until(f"| {tmux.project.name} $", also=("T[today $",))
    right = line[line.index("R[") :]
    # 800k in the corpus; 1.00M once test_status_updates_after_a_transcript_append has run
    assert re.match(r"R\[5h (800k|1\.00M) \$", right) and "T[today $" in right, right


def test_critical_colour_uses_tmux_styles(tmux):
    raw = tmux.until("R[", escapes=True, also=("5h ",))  # (800k, or 1.00M after the append:
    before = raw[: raw.index("5h ")]  # critical either way, over 5% of 8.9M)
    assert before.endswith("\x1b[31m"), repr(raw[-300:])  # fg=red right before the block
    assert "\x1b[31mtoday" not in raw  # the today segment is not critical


def test_status_updates_after_a_transcript_append(tmux):
    tmux.until("R[5h 800k")
    append_assistant(tmux.env, input_tokens=150_000, output_tokens=50_000,
                     cwd=str(tmux.project))  # fmt: skip
    # stale after 1 s -> the job starts the background refresher -> the next interval shows it
    line = tmux.until("R[5h 1.00M $")
    assert "T[today $" in line
