"""`tokmon watch` with other agents' data, in real tmux panes: one row per agent (today / all
time) under the sparkline, and the 80x24 priority layout still shows the block's state and
both active sessions.

The all-time figures are the agents corpus README's (Amp) and docs/agents/README.md's (Codex,
an independent recount); the Claude corpus copy is the dashboard fixture of
tests/test_watch_tmux.py (two sessions active now).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
pytest.importorskip("textual", reason="tokmon watch needs textual")

from conftest import agents_corpus, need_agents_corpus  # noqa: E402
from test_layout_watch import block_rows  # noqa: E402
from test_layout_watch import burn_env as burn_env  # noqa: E402,F401 - fixture
from test_watch_tmux import Dashboard, run_env  # noqa: E402
from test_watch_tmux import env as env  # noqa: E402,F401 - the dashboard corpus fixture

from tokmon.watch.model import AgentRow, agent_line, agent_rows, fmt_tokens  # noqa: E402

CODEX_TOTAL = 71_217_150  # docs/agents/README.md: the exact Codex count
AMP_TOTAL = 114_201  # agents corpus README


def test_agent_rows_from_the_summary() -> None:
    summary = {
        "agents": {
            "claude": {"today": {"totalTokens": 1500, "totalCost": 0.5},
                       "totals": {"totalTokens": 2_000_000, "totalCost": 3.0}},
            "codex": {"today": {"totalTokens": 0, "totalCost": 0.0},
                      "totals": {"totalTokens": CODEX_TOTAL, "totalCost": 20.92}},
            "broken": "not a mapping",
        }
    }  # fmt: skip
    rows = agent_rows(summary)
    assert [r.name for r in rows] == ["claude", "codex"]
    assert rows[1] == AgentRow("codex", 0, 0.0, CODEX_TOTAL, 20.92)
    line = agent_line(rows[1])
    assert line.split() == ["codex", "today", "0", "$0.00", "all", "time", "71.2M", "$20.92"]
    assert len(agent_line(rows[1], 30)) == 30
    assert agent_rows({"today": {}}) == []  # a Claude-only summary: no rows


@pytest.fixture(scope="module")
def agents_env(burn_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    src = need_agents_corpus()
    tmp = tmp_path_factory.mktemp("watch-agents")
    (tmp / "home").mkdir()
    shutil.copytree(src / "codex", tmp / "codex")
    shutil.copytree(src / "amp", tmp / "amp")
    return {
        **burn_env,
        "HOME": str(tmp / "home"),
        "CODEX_HOME": str(tmp / "codex"),
        "AMP_DATA_DIR": str(tmp / "amp"),
        "TOKMON_HOME": str(tmp / "tokmon"),  # its own ledger: the agents are read afresh
    }


def agent_screen_rows(screen: str) -> dict[str, list[str]]:
    out = {}
    for line in screen.splitlines():
        words = line.split()
        if len(words) >= 8 and words[1] == "today" and words[4:6] == ["all", "time"]:
            out[words[0]] = words
    return out


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40)])
def test_watch_shows_a_row_per_agent_and_keeps_the_layout(
    agents_env: dict[str, str], width: int, height: int
) -> None:
    d = Dashboard(run_env(agents_env), width=width, height=height)
    try:
        d.wait(lambda s: "codex" in s and "amp" in s, what="agent rows")
        d.wait(lambda s: "Official" in s and "tok/min" in s, what="block rows")
        scr = d.screen()
        rows = agent_screen_rows(scr)
        assert set(rows) == {"claude", "codex", "amp"}, scr
        assert rows["codex"][6] == fmt_tokens(CODEX_TOTAL)
        assert rows["amp"][6] == fmt_tokens(AMP_TOTAL)
        assert rows["codex"][2] == "0"  # the Codex logs are months old: nothing today
        blocks = block_rows(scr)
        for key in ("Time", "Burn", "Proj.", "Official"):
            assert key in blocks, (key, scr)
        for line in scr.splitlines():
            assert len(line) <= width
        # both active sessions still show, no empty rows
        lines = scr.splitlines()
        head = next(i for i, ln in enumerate(lines) if "Session" in ln and "Tokens" in ln)
        body = []
        for ln in lines[head + 1 :]:
            if ln.startswith("╰"):
                break
            body.append(ln.strip("│ "))
        assert len(body) == 2 and all(body), f"sessions panel:\n{scr}"
    finally:
        d.close()
        time.sleep(0)


def test_agent_corpus_paths_are_copies(agents_env: dict[str, str]) -> None:
    assert not Path(agents_env["CODEX_HOME"]).resolve().is_relative_to(agents_corpus().resolve())
