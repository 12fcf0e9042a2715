"""Other agents inside the engine: reports per agent and across agents, the ledger beside
Claude's, incremental refresh, and pushes from the real ``tokmon serve --jsonl``.

Expected figures come from the agents corpus README (ccusage 20.0.24 reference totals, where
tokmon and ccusage agree) and docs/agents/README.md (Codex, recounted from the raw files in
tests/test_agents_corpus.py); the all-agent view is checked against the per-agent reports.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from conftest import CLIResult, agents_corpus
from test_agents_incremental import copytree, tc_line
from test_server_support import JsonlProc, corpus_path, server_env

from tokmon.core.engine import Engine
from tokmon.paths import get_paths

# README of the agents corpus: total tokens = input + output + cache read + cache write
README_TOTALS = {"amp": 114_201, "copilot": 1_433_343, "opencode": 2_046_116}
CODEX_TOTAL = 71_217_150  # docs/agents/README.md: tokmon's exact Codex count


@pytest.fixture(scope="module")
def corpus() -> Path:
    p = agents_corpus()
    if not (p / "codex").is_dir() or not corpus_path().is_dir():
        msg = f"agents corpus ({p}) or Claude corpus ({corpus_path()}) not found"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return p


def agent_env(corpus: Path, tmp: Path) -> dict[str, str]:
    """Environment naming copies of four agents' folders (never the real home)."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {
        "HOME": str(home),
        "CODEX_HOME": str(copytree(corpus / "codex", tmp / "codex")),
        "OPENCODE_DATA_DIR": str(copytree(corpus / "opencode", tmp / "opencode")),
        "AMP_DATA_DIR": str(copytree(corpus / "amp", tmp / "amp")),
        "COPILOT_HOME": str(copytree(corpus / "copilot", tmp / "copilot")),
    }


def blob_bodies(ledger: Path) -> dict[str, dict[str, dict[str, object]]]:
    """Each agent's saved state (its rows in the ledger) as the one body per agent of the
    versions before those rows (``agent_state``, and the JSON store's ``agents``)."""
    out: dict[str, dict[str, dict[str, object]]] = {}
    con = sqlite3.connect(ledger)
    try:
        for agent, path, state in con.execute("SELECT agent, path, state FROM agent_files"):
            out.setdefault(agent, {"states": {}, "records": {}})["states"][path] = json.loads(state)
        for agent, path, rec in con.execute("SELECT agent, path, body FROM agent_records"):
            recs = out.setdefault(agent, {"states": {}, "records": {}})["records"]
            got = recs.setdefault(path, [])
            assert isinstance(got, list)
            got.append(json.loads(rec))
    finally:
        con.close()
    return out


def make_engine(env: dict[str, str], tmp: Path, agents: bool = True) -> Engine:
    paths = get_paths({"TOKMON_HOME": str(tmp / "tokmon")})
    return Engine(roots=[corpus_path() / "projects"], paths=paths, env=env, agents=agents)


def test_reports_per_agent_and_across_agents(corpus: Path, tmp_path: Path) -> None:
    env = agent_env(corpus, tmp_path)
    eng = make_engine(env, tmp_path)
    eng.refresh()
    assert eng.agent_names() == ["claude", "codex", "opencode", "copilot", "amp"]
    for agent, total in README_TOTALS.items():
        assert eng.report("session", agent=agent).to_json()["totals"]["totalTokens"] == total, agent
    assert eng.report("daily", agent="codex").to_json()["totals"]["totalTokens"] == CODEX_TOTAL

    # the default report is Claude Code's alone, byte for byte what an agent-less engine says
    plain = make_engine({"HOME": env["HOME"]}, tmp_path / "plain", agents=False)
    plain.refresh()
    for kind in ("daily", "monthly", "session"):
        want = orjson.dumps(plain.report(kind, timezone="UTC", now=2e9).to_json())
        assert orjson.dumps(eng.report(kind, timezone="UTC", now=2e9).to_json()) == want
        assert (
            orjson.dumps(eng.report(kind, timezone="UTC", now=2e9, agent="claude").to_json())
            == want
        )

    # all agents: one row per (day, agent), sums per agent equal each agent's own report
    every = eng.report("daily", agent="all", timezone="UTC").to_json()
    rows = every["daily"]
    assert [list(r)[:2] for r in rows[:1]] == [["date", "agent"]]
    assert rows == sorted(rows, key=lambda r: r["date"])
    per_agent: dict[str, int] = {}
    for r in rows:
        per_agent[r["agent"]] = per_agent.get(r["agent"], 0) + r["totalTokens"]
    claude_total = plain.report("daily").to_json()["totals"]["totalTokens"]
    assert per_agent == {"claude": claude_total, "codex": CODEX_TOTAL, **README_TOTALS}
    assert every["totals"]["totalTokens"] == sum(per_agent.values())
    claude_rows = [
        {k: v for k, v in r.items() if k != "agent"} for r in rows if r["agent"] == "claude"
    ]
    assert claude_rows == plain.report("daily", timezone="UTC").to_json()["daily"]

    sessions = eng.report("session", agent="all", now=2e9).to_json()["sessions"]
    assert {r["agent"] for r in sessions} == set(per_agent)
    assert sum(r["totalTokens"] for r in sessions) == sum(per_agent.values())
    assert len([r for r in sessions if r["agent"] == "copilot"]) == 4  # README: 4 sessions

    summary = eng.summary(now=2e9).to_json()
    assert {a: s["totals"]["totalTokens"] for a, s in summary["agents"].items()} == per_agent
    assert "agents" not in plain.summary(now=2e9).to_json()  # a Claude-only summary keeps its shape

    with pytest.raises(ValueError, match="Claude Code's"):
        eng.report("blocks", agent="codex")
    with pytest.raises(ValueError, match="unknown agent"):
        eng.report("daily", agent="nope")


def test_agents_are_incremental_persisted_and_keep_history(corpus: Path, tmp_path: Path) -> None:
    env = agent_env(corpus, tmp_path)
    first = make_engine(env, tmp_path)
    first.refresh()  # saves the Claude ledger and the agents' state, in one database
    con = sqlite3.connect(first.ledger_file)
    try:
        saved = {a for (a,) in con.execute("SELECT agent FROM agent_records")}
    finally:
        con.close()
    assert "codex" in saved
    again = make_engine(env, tmp_path)
    changes = again.refresh()
    assert changes.files_read == 0 and changes.bytes_read == 0  # nothing read twice
    assert again.report("daily", agent="codex").to_json()["totals"]["totalTokens"] == CODEX_TOTAL

    f = sorted(Path(env["CODEX_HOME"]).rglob("rollout-2026-04-09T00-16-48-*.jsonl"))[0]
    line = tc_line("2026-04-09T01:00:00.000Z", 10**9, 1234)
    with open(f, "a", encoding="utf-8") as fh:
        fh.write(line)
    changes = again.refresh(paths=[f], save=False)  # the watcher's hint: that file only
    assert changes.agents == {"codex"} and changes.files_read == 1
    assert changes.bytes_read == len(line.encode())
    want = CODEX_TOTAL + 1234 + 7
    assert again.report("daily", agent="codex").to_json()["totals"]["totalTokens"] == want
    assert again.save() == []

    f.unlink()  # the agent's log goes away: its history stays in tokmon's ledger
    third = make_engine(env, tmp_path)
    third.refresh()
    assert third.report("daily", agent="codex").to_json()["totals"]["totalTokens"] == want


def test_agents_json_store_migrates_with_its_history(corpus: Path, tmp_path: Path) -> None:
    """The agents' JSON store of an older tokmon moves into the database with every record
    (here the only copy: the agent's logs are gone), and is kept renamed."""
    from tokmon.core.agents import agents_store_path

    env = agent_env(corpus, tmp_path)
    first = make_engine(env, tmp_path)
    first.refresh()
    before = first.report("daily", agent="codex").to_json()["totals"]
    assert before["totalTokens"] == CODEX_TOTAL
    bodies = blob_bodies(first.ledger_file)
    store = agents_store_path(first.ledger_file, env)
    first.close()
    for p in first.ledger_file.parent.glob(first.ledger_file.name + "*"):
        p.unlink()  # the database goes; an older tokmon's JSON store stands in its place
    store.write_text(json.dumps({"version": 1, "agents": bodies}))
    for f in Path(env["CODEX_HOME"]).rglob("*.jsonl"):
        f.unlink()
    second = make_engine(env, tmp_path)
    second.refresh()
    assert second.report("daily", agent="codex").to_json()["totals"] == before
    kept = list(store.parent.glob(store.name + ".migrated-*"))
    assert len(kept) == 1 and not store.exists()
    third = make_engine(env, tmp_path)  # from the database now
    third.refresh()
    assert third.report("daily", agent="codex").to_json()["totals"] == before


def opencode_row(db: Path, tokens: int) -> None:
    con = sqlite3.connect(db)
    try:
        sid, mark = con.execute("SELECT session_id, MAX(time_updated) FROM message").fetchone()
        data = {
            "role": "assistant",
            "time": {"created": 1781700000000},
            "modelID": "m",
            "cost": 0.01,
            "tokens": {
                "input": tokens,
                "output": 3,
                "reasoning": 0,
                "cache": {"read": 0, "write": 0},
            },
        }
        con.execute(
            "INSERT INTO message VALUES (?,?,?,?,?)",
            ("msg_pushed", sid, 1781700000000, mark + 1, json.dumps(data)),
        )
        con.commit()
    finally:
        con.close()


@pytest.mark.slow
def test_serve_jsonl_pushes_codex_gemini_and_opencode_changes(corpus: Path, tmp_path: Path) -> None:
    claude = tmp_path / "claude"
    shutil.copytree(corpus_path(), claude)
    gemini = copytree(corpus / "gemini" / "tmp", tmp_path / "gemini")
    codex = copytree(corpus / "codex", tmp_path / "codex")
    opencode = copytree(corpus / "opencode", tmp_path / "opencode")
    env = server_env(
        tmp_path,
        claude,
        CODEX_HOME=str(codex),
        GEMINI_DATA_DIR=str(gemini),
        OPENCODE_DATA_DIR=str(opencode),
    )
    for k in ("QWEN_DATA_DIR", "COPILOT_HOME", "AMP_DATA_DIR"):
        env.pop(k, None)
    svc = JsonlProc(env)
    try:
        s = svc.call("tokmon/summary", {}, timeout=120)["result"]
        base = {a: v["totals"]["totalTokens"] for a, v in s["agents"].items()}
        assert base["codex"] == CODEX_TOTAL
        rows = svc.call("tokmon/sessions", {})["result"]
        rows = rows["sessions"] if isinstance(rows, dict) else rows
        assert {"claude", "codex", "gemini", "opencode"} <= {r["agent"] for r in rows}

        def pushed(agent: str, total: int, start: int) -> dict:
            return svc.wait_note(
                "tokmon/usageChanged",
                lambda p: (
                    agent in p.get("agents", [])
                    and p["summary"]["agents"][agent]["totals"]["totalTokens"] == total
                ),
                timeout=60,
                start=start,
            )

        start = len(svc.notes)
        f = sorted(codex.rglob("rollout-2026-04-09T00-16-48-*.jsonl"))[0]
        with open(f, "a", encoding="utf-8") as fh:
            fh.write(tc_line("2026-04-09T01:00:00.000Z", 10**9, 1234))
        pushed("codex", base["codex"] + 1234 + 7, start)

        start = len(svc.notes)
        g = sorted(gemini.rglob("session-2026-04-25T13-04-16a02704.jsonl"))[0]
        msg = {
            "id": "pushed-1",
            "timestamp": "2026-04-25T14:00:00.000Z",
            "type": "gemini",
            "model": "gemini-2.5-flash",
            "tokens": {
                "input": 500,
                "output": 9,
                "cached": 100,
                "thoughts": 1,
                "tool": 0,
                "total": 510,
            },
        }
        with open(g, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(msg) + "\n")
        pushed("gemini", base["gemini"] + 510, start)

        start = len(svc.notes)
        opencode_row(opencode / "opencode.db", 77)
        pushed("opencode", base["opencode"] + 77 + 3, start)
    finally:
        if svc.proc.poll() is None:
            assert svc.close() == 0


def test_cli_agent_filter_and_all_agents_view(corpus: Path, tmp_path: Path, cli) -> None:
    claude = {"CLAUDE_CONFIG_DIR": str(corpus_path())}
    plain = cli("daily", "--json", "-z", "UTC", extra_env=claude)
    assert plain.code == 0, plain.err
    agents = {
        **claude,
        "AMP_DATA_DIR": str(corpus / "amp"),
        "COPILOT_HOME": str(corpus / "copilot"),
    }
    same = cli("daily", "--json", "-z", "UTC", extra_env=agents)
    assert same.out == plain.out  # other agents' data never changes the default report
    amp = cli("session", "--agent", "amp", "--json", extra_env=agents).json()
    assert amp["totals"]["totalTokens"] == README_TOTALS["amp"]
    every = cli("monthly", "--agent", "all", "--json", "-z", "UTC", extra_env=agents).json()
    assert set(every["agents"]) == {"claude", "copilot", "amp"}
    assert every["agents"]["copilot"]["totalTokens"] == README_TOTALS["copilot"]
    assert every["totals"]["totalTokens"] == (
        plain.json()["totals"]["totalTokens"] + README_TOTALS["amp"] + README_TOTALS["copilot"]
    )
    table = cli("daily", "--agent", "all", extra_env=agents)
    assert table.code == 0 and "Agent" in table.out and "copilot" in table.out
    bad = cli("daily", "--agent", "nope", extra_env=agents)
    assert bad.code != 0 and "unknown agent 'nope'" in bad.err
    assert cli("blocks", "--agent", "amp", extra_env=agents).code != 0  # no such option


def test_claude_reader_implements_the_source_interface(tmp_path: Path) -> None:
    """Claude's source yields the same usage as the engine's fast scan, incrementally."""
    from tokmon.sources.claude import ClaudeSource
    from tokmon.sources.collect import SourceReader

    if not corpus_path().is_dir():
        pytest.skip(f"Claude corpus not found at {corpus_path()}")
    claude = tmp_path / "claude"
    shutil.copytree(corpus_path(), claude)
    src = ClaudeSource({"CLAUDE_CONFIG_DIR": str(claude), "HOME": str(tmp_path)})
    reader = SourceReader(src)
    reader.refresh()
    usage = reader.usage()
    assert {r.agent for r in usage} == {"claude"}
    eng = Engine(
        roots=[claude / "projects"],
        persist=False,
        paths=get_paths({"TOKMON_HOME": str(tmp_path / "t")}),
    )
    eng.refresh()
    assert len(usage) == len(eng.records)
    assert sum(r.total_tokens for r in usage) == sum(r.total_tokens for r in eng.records)
    assert reader.refresh().bytes_read == 0  # nothing new: nothing read


AGENT_DIRS_ORDER = ["codex", "gemini", "opencode", "qwen", "copilot", "amp"]
AGENT_DIRS = {  # variable -> folder of the corpus (as each agent lays out its data folder)
    "CODEX_HOME": "codex",
    "GEMINI_DATA_DIR": "gemini/tmp",
    "OPENCODE_DATA_DIR": "opencode",
    "QWEN_DATA_DIR": "qwen",
    "AMP_DATA_DIR": "amp",
    "COPILOT_HOME": "copilot",
}


def test_every_report_keeps_an_agents_history_after_its_logs_are_deleted(
    corpus: Path, tmp_path: Path, cli: Callable[..., CLIResult]
) -> None:
    """Every agent report (the per-agent namespaces, ``--agent NAME|all`` with filters,
    ``agents``) answers from tokmon's store: once scanned, deleting the agents' logs (files,
    or whole folders) changes no report, byte for byte."""
    env = {k: "" for k in AGENT_DIRS}  # no agent from the real environment
    (tmp_path / "claude" / "projects").mkdir(parents=True)  # nor Claude Code (`agents` reads it)
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    for var, sub in AGENT_DIRS.items():
        env[var] = str(copytree(corpus / sub, tmp_path / "logs" / sub.replace("/", "-")))
    commands = [
        *[
            [a, k, "--json", "-z", "UTC"]
            for a in ("codex", "gemini", "opencode", "qwen", "copilot", "amp")
            for k in ("daily", "session")
        ],
        ["codex", "monthly", "--json", "-z", "Asia/Tokyo", "-s", "20251101", "-u", "20260212"],
        *[["daily", "--agent", a, "--json", "-z", "UTC"] for a in ("codex", "gemini", "qwen")],
        ["daily", "--agent", "codex", "--json", "-z", "UTC", "-s", "20251101", "-u", "20260212"],
        ["session", "--agent", "opencode", "--json", "-z", "UTC", "-s", "20250101"],
        ["monthly", "--agent", "all", "--json", "-z", "UTC"],
        ["session", "--agent", "all", "--json", "-z", "UTC"],
        ["weekly", "--agent", "gemini", "--json", "-z", "UTC"],
        ["agents", "daily", "--json", "-z", "UTC"],
        ["agents", "monthly", "--json", "-z", "UTC"],
        ["gemini", "daily", "-z", "UTC"],  # a table too
    ]

    def answers() -> list[str]:
        out = []
        for argv in commands:
            r = cli(*argv, extra_env=env)
            assert r.code == 0, (argv, r.err)
            out.append(r.out)
        return out

    def found() -> dict[str, dict]:
        r = cli("agents", "--json", extra_env=env)
        assert r.code == 0, r.err
        return {a["agent"]: a for a in r.json()["agents"]}

    before = answers()
    # the stored records give what reading the logs gives (the path the ccusage parity tests
    # check in tests/test_agents_corpus.py), field for field
    from tokmon.core.pricing import PriceTable
    from tokmon.sources import SOURCES
    from tokmon.sources.collect import collect
    from tokmon.sources.report import agent_report

    for i, argv in enumerate(commands[:12]):
        agent, kind = argv[0], argv[1]
        logs = agent_report(agent, kind, collect(SOURCES[agent](env)), PriceTable.load(None),
                            timezone="UTC")  # fmt: skip
        assert json.loads(before[i]) == json.loads(json.dumps(logs)), argv
    # anchored on the corpus README / docs/agents/README.md, not on tokmon's own output
    codex = json.loads(before[0])
    assert codex["totals"]["totalTokens"] == CODEX_TOTAL
    every = json.loads(before[commands.index(["monthly", "--agent", "all", "--json", "-z", "UTC"])])
    assert every["agents"]["codex"]["totalTokens"] == CODEX_TOTAL
    assert every["agents"]["gemini"]["totalTokens"] == 13_198_647
    for a, total in README_TOTALS.items():
        assert every["agents"][a]["totalTokens"] == total
        assert (
            json.loads(before[commands.index([a, "session", "--json", "-z", "UTC"])])["totals"][
                "totalTokens"
            ]
            == total
        )
    # a date filter on --agent keeps exactly the rows of those days (ccusage's README days)
    daily = json.loads(before[commands.index(["daily", "--agent", "codex", "--json", "-z", "UTC"])])
    part = json.loads(
        before[
            commands.index(
                [
                    "daily",
                    "--agent",
                    "codex",
                    "--json",
                    "-z",
                    "UTC",
                    "-s",
                    "20251101",
                    "-u",
                    "20260212",
                ]  # fmt: skip
            )
        ]
    )
    want = ["2025-11-06", "2025-11-07", "2025-12-25", "2026-02-07", "2026-02-12"]
    assert [r["date"] for r in part["daily"]] == want
    assert part["daily"] == [r for r in daily["daily"] if r["date"] in want]
    assert part["totals"]["totalTokens"] == sum(r["totalTokens"] for r in part["daily"])
    listed = found()
    assert list(listed) == ["claude", *AGENT_DIRS_ORDER]  # Claude Code first
    assert all(listed[a]["detected"] for a in listed)
    assert listed["claude"]["totalTokens"] == 0  # an empty projects/ dir

    # the logs go: files (folders kept) for three agents, whole folders for the others
    logs = tmp_path / "logs"
    for sub in ("codex", "gemini-tmp", "qwen"):
        for f in (logs / sub).rglob("*"):
            if f.is_file():
                f.unlink()
    for sub in ("opencode", "amp", "copilot"):
        shutil.rmtree(logs / sub)
    assert not [f for f in logs.rglob("*") if f.is_file()]

    assert answers() == before
    after = found()
    for a, row in listed.items():
        keep = {k: v for k, v in row.items() if k not in ("detected", "roots", "official")}
        assert {k: v for k, v in after[a].items() if k in keep} == keep, a


def test_session_names_and_tags_work_for_every_agents_sessions(
    corpus: Path, tmp_path: Path
) -> None:
    """Over the real ``tokmon serve --jsonl``: a Codex and an Amp session (real logs) get a
    name and tags; the session list, the detail and the metadata notification carry them with
    the session's agent, and a REF by that name finds it."""
    claude = tmp_path / "claude"
    (claude / "projects").mkdir(parents=True)
    env = server_env(
        tmp_path,
        claude,
        CODEX_HOME=str(copytree(corpus / "codex", tmp_path / "codex")),
        AMP_DATA_DIR=str(copytree(corpus / "amp", tmp_path / "amp")),
    )
    for k in ("GEMINI_DATA_DIR", "OPENCODE_DATA_DIR", "QWEN_DATA_DIR", "COPILOT_HOME"):
        env.pop(k, None)
    svc = JsonlProc(env)
    try:
        rows = svc.call("tokmon/sessions", {}, timeout=120)["result"]["sessions"]
        by_agent: dict[str, list[dict]] = {}
        for r in rows:
            by_agent.setdefault(r["agent"], []).append(r)
        assert set(by_agent) == {"codex", "amp"}
        picked = {a: by_agent[a][0]["sessionId"] for a in ("codex", "amp")}
        for agent, sid in picked.items():
            start = len(svc.notes)
            got = svc.call(
                "tokmon/setSessionMetadata",
                {"sessionId": sid, "name": f"{agent} work", "addTags": ["client-x", agent]},
            )
            assert "result" in got, got
            res = got["result"]
            assert res["sessionId"] == sid and res["name"] == f"{agent} work"
            assert res["agent"] == agent and sorted(res["tags"]) == sorted(["client-x", agent])
            svc.wait_note("tokmon/metadataChanged", lambda p, s=sid: p["sessionId"] == s,
                          timeout=30, start=start)  # fmt: skip
        tagged = svc.call("tokmon/sessions", {"tag": "client-x"})["result"]["sessions"]
        assert {(r["agent"], r["sessionId"], r["name"]) for r in tagged} == {
            (a, s, f"{a} work") for a, s in picked.items()
        }
        detail = svc.call("tokmon/session", {"sessionId": "codex work"})["result"]
        assert detail["sessionId"] == picked["codex"] and detail["agent"] == "codex"
        assert detail["name"] == "codex work"
    finally:
        if svc.proc.poll() is None:
            assert svc.close() == 0


def test_a_new_database_gets_every_agents_history_not_only_the_changed_ones(
    corpus: Path, tmp_path: Path
) -> None:
    """Saves write only the agents that changed, but a save into another database (the
    ledger was rebuilt or replaced while the process ran) writes every agent's history."""
    env = agent_env(corpus, tmp_path)
    paths = get_paths({"TOKMON_HOME": str(tmp_path / "tokmon")})

    def engine() -> Engine:  # no Claude transcripts: only the agents matter here
        return Engine(roots=[tmp_path / "no-claude"], paths=paths, env=env, agents=True)

    eng = engine()
    eng.refresh()
    want = {a: eng.report("daily", agent=a).to_json()["totals"] for a in ("codex", "amp")}
    assert want["amp"]["totalTokens"] == README_TOTALS["amp"]
    # the database goes away under the running engine (a rebuild keeps the old one aside)
    eng.close()
    for p in eng.ledger_file.parent.glob(eng.ledger_file.name + "*"):
        p.unlink()
    f = sorted(Path(env["CODEX_HOME"]).rglob("rollout-2026-04-09T00-16-48-*.jsonl"))[0]
    with open(f, "a", encoding="utf-8") as fh:
        fh.write(tc_line("2026-04-09T01:00:00.000Z", 10**9, 1234))
    eng.refresh(paths=[f])  # only Codex changed
    eng.close()
    for d in ("CODEX_HOME", "AMP_DATA_DIR", "OPENCODE_DATA_DIR", "COPILOT_HOME"):
        shutil.rmtree(env[d])  # every log gone: the new database is the only copy
    again = engine()
    again.refresh()
    assert again.report("daily", agent="amp").to_json()["totals"] == want["amp"]
    codex = again.report("daily", agent="codex").to_json()["totals"]
    assert codex["totalTokens"] == want["codex"]["totalTokens"] + 1234 + 7
    assert (
        again.report("session", agent="copilot").to_json()["totals"]["totalTokens"]
        == (README_TOTALS["copilot"])
    )


def test_the_price_override_file_prices_other_agents_everywhere(
    corpus: Path, tmp_path: Path, env: dict[str, str], cli: Callable[..., CLIResult]
) -> None:
    """The user's ``prices.json`` prices OpenAI models for ``tokmon codex daily`` and
    ``--agent codex`` alike, also for records already stored (priced again when it changes);
    costs computed here from the override and ccusage's token columns of 2025-10-06."""
    from tokmon.paths import get_paths

    extra = {"CODEX_HOME": str(copytree(corpus / "codex", tmp_path / "codex"))}
    day = ["-s", "20251006", "-u", "20251006", "-z", "UTC", "--json"]
    before = cli("codex", "daily", *day, extra_env=extra).json()["totals"]["costUSD"]
    cli("daily", "--agent", "codex", *day, extra_env=extra)  # stored, priced with the table
    override = get_paths(env).prices_override_file
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text(json.dumps({"models": {
        "gpt-5-codex": {"input": 1.0, "output": 2.0, "cache_read": 0.5}}}))  # fmt: skip
    # 2025-10-06: input 1,259,186 (incl. nothing cached), output 112,543, cache read 16,001,536
    want = (1_259_186 * 1.0 + 112_543 * 2.0 + 16_001_536 * 0.5) / 1e6
    own = cli("codex", "daily", *day, extra_env=extra).json()["totals"]["costUSD"]
    eng = cli("daily", "--agent", "codex", *day, extra_env=extra).json()["totals"]["totalCost"]
    assert own == pytest.approx(want) and eng == pytest.approx(want)
    assert before != pytest.approx(want)
