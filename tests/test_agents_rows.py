"""The other agents' saved state in the ledger grows by what changed (issue #12, item 1).

An append to one agent log changes a few hundred bytes of the database, not the agent's whole
state (the one-blob-per-agent ``agent_state`` rows of older versions rewrote ~730 KB per Codex
append); what the rows hold reads back exactly what the live engine has; and a ledger of the
blob design moves into rows with every record, here the only copy (the logs are gone).
Measured on copies of the real agents corpus; the bytes are counted from the database's rows,
whatever the tables are.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import agents_corpus
from test_agents_incremental import copytree, tc_line
from test_core_agents import blob_bodies, opencode_row

from tokmon.core.engine import Engine
from tokmon.core.ledger import LedgerDB
from tokmon.paths import get_paths
from tokmon.sources.base import AgentUsage

AGENTS = ("codex", "gemini", "opencode")
DIRS = {"CODEX_HOME": "codex", "GEMINI_DATA_DIR": "gemini/tmp", "OPENCODE_DATA_DIR": "opencode"}


@pytest.fixture(scope="module")
def corpus() -> Path:
    p = agents_corpus()
    if not (p / "codex").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"agents corpus not found at {p}")
        pytest.skip(f"agents corpus not found at {p}")
    return p


def _env(corpus: Path, tmp: Path) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    for var, sub in DIRS.items():
        env[var] = str(copytree(corpus / sub, tmp / sub.split("/")[0]))
    return env


def _engine(env: dict[str, str], tmp: Path) -> Engine:
    paths = get_paths({"TOKMON_HOME": str(tmp / "tokmon")})
    return Engine(roots=[tmp / "no-claude"], paths=paths, env=env, agents=list(AGENTS))


def _rows(db: Path) -> Counter[str]:
    """Every row of every table of the database, as text (a multiset)."""
    con = sqlite3.connect(db)
    try:
        tables = [
            t
            for (t,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return Counter(f"{t}:{row!r}" for t in tables for row in con.execute(f"SELECT * FROM {t}"))
    finally:
        con.close()


def _changed_bytes(before: Counter[str], after: Counter[str]) -> int:
    """The size of the rows a save wrote (new or rewritten)."""
    return sum(len(r) * n for r, n in (after - before).items())


def _usage(eng: Engine) -> dict[str, list[AgentUsage]]:
    assert eng.agents is not None
    return {a: list(eng.agents.usage(a)) for a in AGENTS}


def test_an_append_writes_the_size_of_the_change_not_the_agents_state(
    corpus: Path, tmp_path: Path
) -> None:
    env = _env(corpus, tmp_path)
    eng = _engine(env, tmp_path)
    eng.refresh()
    db = eng.ledger_file
    whole = _rows(db)
    saved = {a: sum(len(r) for r in whole if f"'{a}'" in r) for a in AGENTS}
    assert saved["codex"] > 500_000 and saved["gemini"] > 300_000  # the real corpus's size

    # Codex: a token_count event appended to its largest rollout
    rollout = max(Path(env["CODEX_HOME"]).rglob("rollout-*.jsonl"), key=lambda p: p.stat().st_size)
    line = tc_line("2026-04-09T01:00:00.000Z", 10**9, 1234)
    # Gemini: a message appended to a JSONL chat
    chat = sorted(Path(env["GEMINI_DATA_DIR"]).rglob("session-*.jsonl"))[-1]
    msg = {
        "id": "rows-test-1",
        "timestamp": "2026-04-25T06:00:00.000Z",
        "type": "gemini",
        "model": "gemini-2.5-flash",
        "tokens": {"input": 321, "output": 7, "cached": 0, "thoughts": 0, "tool": 0, "total": 328},
    }
    changes = {
        "codex": (rollout, line),
        "gemini": (chat, json.dumps(msg) + "\n"),
    }
    for agent, (path, text) in changes.items():
        total = eng.report("daily", agent=agent).to_json()["totals"]["totalTokens"]
        before = _rows(db)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
        got = eng.refresh(paths=[path])
        assert got.agents == {agent}
        now = eng.report("daily", agent=agent).to_json()["totals"]["totalTokens"]
        assert now > total  # the append was counted
        wrote = _changed_bytes(before, _rows(db))
        # one record and one file state (plus the generation): a few KB at most, where the
        # agent's saved state is hundreds of KB
        assert 0 < wrote < 8_000, (agent, wrote)
        assert wrote * 50 < saved[agent], (agent, wrote, saved[agent])

    # OpenCode: a new message row in its database
    oc = Path(env["OPENCODE_DATA_DIR"]) / "opencode.db"
    before = _rows(db)
    opencode_row(oc, 55)
    assert eng.refresh(paths=[oc]).agents == {"opencode"}
    assert 0 < _changed_bytes(before, _rows(db)) < 8_000

    # A Gemini chat document rewritten (a message's tokens grow, one message goes): its
    # records are replaced; the rows follow exactly
    def gemini_msgs(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [m for m in body["messages"] if m.get("type") == "gemini" and m.get("tokens")]

    docs = sorted(Path(env["GEMINI_DATA_DIR"]).rglob("session-*.json"))
    doc = next(p for p in docs if len(gemini_msgs(json.loads(p.read_bytes()))) >= 2)
    body = json.loads(doc.read_text(encoding="utf-8"))
    msgs = gemini_msgs(body)
    msgs[0]["tokens"]["output"] += 1000
    body["messages"].remove(msgs[-1])
    doc.write_text(json.dumps(body), encoding="utf-8")
    assert eng.refresh(paths=[doc]).agents == {"gemini"}

    live = _usage(eng)
    eng.close()
    again = _engine(env, tmp_path)  # from the rows alone: nothing is read again
    assert again.refresh().bytes_read == 0
    assert _usage(again) == live
    again.close()


def test_a_ledger_of_the_blob_design_moves_into_rows_with_every_record(
    corpus: Path, tmp_path: Path
) -> None:
    env = _env(corpus, tmp_path)
    eng = _engine(env, tmp_path)
    eng.refresh()
    want = _usage(eng)
    totals = {a: eng.report("daily", agent=a).to_json()["totals"] for a in AGENTS}
    assert all(want[a] for a in AGENTS)
    db = eng.ledger_file
    eng.close()

    # the ledger as the versions before the rows wrote it: one blob per agent
    bodies = blob_bodies(db)
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("DROP TABLE agent_files")
        con.execute("DROP TABLE agent_records")
        con.executemany(
            "INSERT INTO agent_state VALUES (?, ?)",
            [(a, json.dumps(b).encode()) for a, b in bodies.items()],
        )
    finally:
        con.close()
    ro = LedgerDB(db, readonly=True)  # an older database read as it is: its blobs
    try:
        assert {a: r.blob is not None for a, r in ro.agent_rows().items()} == dict.fromkeys(
            AGENTS, True
        )
    finally:
        ro.close()
    for var in DIRS:  # every log goes: the blobs are the only copy of the history
        shutil.rmtree(env[var])

    moved = _engine(env, tmp_path)
    moved.refresh()
    assert _usage(moved) == want
    assert {a: moved.report("daily", agent=a).to_json()["totals"] for a in AGENTS} == totals
    moved.close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM agent_state").fetchone()[0] == 0  # moved
        per_agent = dict(
            con.execute("SELECT agent, count(DISTINCT key) FROM agent_records GROUP BY agent")
        )
    finally:
        con.close()
    assert per_agent == {a: len({r.key for r in want[a]}) for a in AGENTS}
    third = _engine(env, tmp_path)  # from the rows
    third.refresh()
    assert _usage(third) == want
    third.close()


def test_rows_that_do_not_read_are_skipped_not_the_agents_history(
    corpus: Path, tmp_path: Path
) -> None:
    """A record row that does not parse costs that record only (its file's other records
    and every other file's stay)."""
    env = _env(corpus, tmp_path)
    eng = _engine(env, tmp_path)
    eng.refresh()
    agent = "codex"
    want = _usage(eng)[agent]
    db = eng.ledger_file
    eng.close()
    con = sqlite3.connect(db, isolation_level=None)
    try:
        path, key = con.execute(  # a record no other file holds
            "SELECT path, key FROM agent_records WHERE agent=? GROUP BY key HAVING count(*) = 1"
            " LIMIT 1",
            (agent,),
        ).fetchone()
        con.execute(
            "UPDATE agent_records SET body=? WHERE agent=? AND path=? AND key=?",
            (b"{not json", agent, path, key),
        )
    finally:
        con.close()
    shutil.rmtree(env["CODEX_HOME"])
    after = _engine(env, tmp_path)
    after.refresh()
    got = _usage(after)[agent]
    assert len(got) == len(want) - 1 and set(got) < set(want)
    after.close()
