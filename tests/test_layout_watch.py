"""`tokmon watch` in real tmux panes of 80x24 and 100x30: the block's state always shows.

At these sizes the dashboard used to hide its Burn, Projection and Official rows (they
wrapped out of the block panel) while the sessions panel showed empty rows.  The block
panel now lays out by priority: every row on one line, decorations dropped first.
"""

from __future__ import annotations

import shutil
import time

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
pytest.importorskip("textual", reason="tokmon watch needs textual")

from test_watch_tmux import ALPHA, Dashboard, run_env  # noqa: E402
from test_watch_tmux import env as env  # noqa: E402,F401 - the dashboard corpus fixture

from tokmon.fmt import epoch  # noqa: E402


@pytest.fixture(scope="module")
def burn_env(env: dict[str, str]) -> dict[str, str]:
    """The dashboard corpus plus an earlier response in the block, so it has a burn rate."""
    import json
    import uuid
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    path = Path(env["_CORPUS"]) / "projects" / "sample-project" / f"{ALPHA}.jsonl"
    last = json.loads(path.read_text(encoding="utf-8").splitlines()[-1])
    assert epoch(last["timestamp"]) is not None
    last["timestamp"] = (
        (datetime.now(timezone.utc) - timedelta(minutes=20))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
    last["uuid"] = str(uuid.uuid4())
    last["requestId"] = f"req_{uuid.uuid4().hex}"
    last["message"]["id"] = f"msg_{uuid.uuid4().hex}"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(last, separators=(",", ":")) + "\n")
    return env


ROWS = ("Time", "Burn", "Proj.", "Official", "Limit", "Tokens")


def block_rows(screen: str) -> dict[str, str]:
    """Each block-panel row's text (the left panel, between its borders)."""
    out: dict[str, str] = {}
    for line in screen.splitlines():
        if not line.startswith("│"):
            continue
        cell = line[1:].split("│", 1)[0].strip()
        for key in ROWS:
            if cell.startswith(key) and key not in out:
                out[key] = cell
    return out


@pytest.mark.parametrize(("width", "height"), [(80, 24), (100, 30)])
def test_block_state_always_shows(burn_env: dict[str, str], width: int, height: int) -> None:
    d = Dashboard(run_env(burn_env), width=width, height=height)
    try:
        d.wait_text("Current block")
        d.wait(lambda s: "Official" in s and "tok/min" in s, what="block rows")
        scr = d.screen()
        rows = block_rows(scr)
        for key in ("Time", "Burn", "Proj.", "Official"):
            assert key in rows, (key, scr)
        assert "left" in rows["Time"]
        assert any(level in rows["Burn"] for level in (" LOW ", " MEDIUM ", " HIGH ")), scr
        assert "tok/min" in rows["Burn"]
        assert rows["Proj."].split()[1][0].isdigit(), rows["Proj."]  # a projected figure
        assert "5h 42%" in rows["Official"]
        for line in scr.splitlines():
            assert len(line) <= width
        # no empty rows in the sessions table: every line between its header and its
        # bottom border is a session (2 active sessions in the fixture)
        lines = scr.splitlines()
        head = next(i for i, ln in enumerate(lines) if "Session" in ln and "Tokens" in ln)
        body = []
        for ln in lines[head + 1 :]:
            if ln.startswith("╰"):
                break
            body.append(ln.strip("│ "))
        assert len(body) == 2 and all(body), f"empty rows in the sessions panel:\n{scr}"
    finally:
        d.close()
        time.sleep(0)
