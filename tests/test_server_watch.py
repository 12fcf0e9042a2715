"""LSP end to end with a live watcher: appends, new project dirs, truncation, deletion.

Works on a copy of the real corpus; pushes must carry the new totals.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from test_server_support import (
    REF_TOTALS,
    append,
    corpus_path,
    request,
    server_env,
    session_of,
    start_lsp,
    stop_lsp,
    usage_line,
    wait_note,
)

# slow: a real language server watching files
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

# published Sonnet 4.5 prices: $3 / M input, $15 / M output
SONNET_IN, SONNET_OUT = 3e-6, 15e-6


def _main_transcripts(root: Path) -> list[Path]:
    return sorted(
        p for p in (root / "projects").glob("*/*.jsonl") if not p.name.startswith("agent-")
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("watch") / "claude"
    shutil.copytree(corpus_path(), dest)
    return dest


@pytest.fixture(scope="module")
def target(corpus: Path) -> tuple[Path, str, str]:
    path = _main_transcripts(corpus)[0]
    sid, cwd = session_of(path)
    return path, sid, cwd


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(corpus: Path, target, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("watch-home")
    _, _, cwd = target
    c = await start_lsp(server_env(home, corpus), workspace=Path(cwd).as_uri())
    await request(c, "tokmon/version")  # the first scan is done once requests answer
    assert (await request(c, "tokmon/summary"))["totals"]["inputTokens"] == REF_TOTALS[
        "inputTokens"
    ]
    yield c
    await stop_lsp(c)


async def _totals(client) -> dict:
    return (await request(client, "tokmon/summary"))["totals"]


async def test_append_pushes_usage_changed_with_new_totals(client, target) -> None:
    path, sid, cwd = target
    before = await _totals(client)
    start = len(client.notes["tokmon/usageChanged"])
    append(path, usage_line(sid, cwd, inp=1000, out=2000))
    note = await wait_note(
        client,
        "tokmon/usageChanged",
        start=start,
        pred=lambda p: p["summary"]["totals"]["inputTokens"] == before["inputTokens"] + 1000,
    )
    assert note["changedSessions"] == [sid]
    t = note["summary"]["totals"]
    assert t["outputTokens"] == before["outputTokens"] + 2000
    assert t["cacheReadTokens"] == before["cacheReadTokens"]
    assert t["totalCost"] == pytest.approx(
        before["totalCost"] + 1000 * SONNET_IN + 2000 * SONNET_OUT, abs=1e-6
    )
    today = note["summary"]["today"]
    assert today["inputTokens"] >= 1000 and today["outputTokens"] >= 2000
    # the session is active now and belongs to the workspace folder
    ws = note["summary"]["workspaceSession"]
    assert ws is not None and ws["sessionId"] == sid and ws["isActive"] is True
    assert note["summary"]["workspaceProject"] == cwd
    assert note["summary"]["activeBlock"] is not None
    assert (await _totals(client))["inputTokens"] == before["inputTokens"] + 1000


async def test_partial_line_counts_once_complete(client, target) -> None:
    path, sid, cwd = target
    before = await _totals(client)
    start = len(client.notes["tokmon/usageChanged"])
    line = usage_line(sid, cwd, inp=7, out=11)
    append(path, line[:40])
    await request(client, "tokmon/refresh", {})
    assert (await _totals(client))["inputTokens"] == before["inputTokens"]  # not counted yet
    append(path, line[40:])
    note = await wait_note(
        client,
        "tokmon/usageChanged",
        start=start,
        pred=lambda p: p["summary"]["totals"]["inputTokens"] == before["inputTokens"] + 7,
    )
    assert note["summary"]["totals"]["outputTokens"] == before["outputTokens"] + 11


async def test_new_project_dir_and_file(client, corpus: Path) -> None:
    before = await _totals(client)
    start = len(client.notes["tokmon/usageChanged"])
    sid = str(uuid.uuid4())
    proj = corpus / "projects" / "-tmp-brand-new-project"
    proj.mkdir()
    append(proj / f"{sid}.jsonl", usage_line(sid, "/tmp/brand/new-project", inp=5, out=6))
    note = await wait_note(
        client, "tokmon/usageChanged", start=start, pred=lambda p: sid in p["changedSessions"]
    )
    assert note["summary"]["totals"]["inputTokens"] == before["inputTokens"] + 5
    rows = (await request(client, "tokmon/sessions", {"project": "new-project"}))["sessions"]
    assert [r["sessionId"] for r in rows] == [sid]
    assert rows[0]["projectPath"] == "/tmp/brand/new-project"


async def test_truncation_then_append(client, corpus: Path) -> None:
    path = _main_transcripts(corpus)[1]
    sid, cwd = session_of(path)
    before = await _totals(client)
    start = len(client.notes["tokmon/usageChanged"])
    with open(path, "r+b") as fh:
        fh.truncate(0)
    await request(client, "tokmon/refresh", {})
    # history survives a truncated transcript (the ledger keeps counted usage)
    assert (await _totals(client))["inputTokens"] == before["inputTokens"]
    append(path, usage_line(sid, cwd, inp=3, out=4))
    note = await wait_note(
        client,
        "tokmon/usageChanged",
        start=start,
        pred=lambda p: p["summary"]["totals"]["inputTokens"] == before["inputTokens"] + 3,
    )
    assert sid in note["changedSessions"]


async def test_deletion_keeps_history_and_server(client, corpus: Path) -> None:
    before = await _totals(client)
    victims = _main_transcripts(corpus)[2:4]
    for v in victims:
        os.unlink(v)
    shutil.rmtree(corpus / "projects" / "-tmp-brand-new-project", ignore_errors=True)
    s = await request(client, "tokmon/refresh", {})
    assert s["totals"]["inputTokens"] == before["inputTokens"]
    assert (await request(client, "tokmon/version"))["protocol"] == 1
