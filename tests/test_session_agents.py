"""`tokmon session list|show|name|tag|describe|export` on every agent's sessions (the real
agents corpus beside the real Claude corpus): REFs resolve across agents, ambiguity is
reported with each candidate's agent, metadata set from the CLI shows on every surface."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CLIResult, agents_env, need_agents_corpus

# The corpus README's session counts (ccusage 20.0.24, sessions with usage)
SESSIONS = {"codex": 19, "gemini": 36, "opencode": 5, "copilot": 4, "amp": 3}
AMP_TOTAL = 114_201  # the README's Amp total over its 3 threads
# Codex's 2025-10-06 17:28 rollout: the corpus README's per-session figure (ccusage)
CODEX_SID = "2025/10/06/rollout-2025-10-06T17-28-05-0199ba23-1445-7403-9975-b3c8aad1c0df"
CODEX_TOKENS = 15_667_405


@pytest.fixture(scope="module")
def agent_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    src = need_agents_corpus()
    tmp = tmp_path_factory.mktemp("agents")
    names = ("codex", "gemini", "opencode", "copilot", "amp")
    for name in names:
        shutil.copytree(src / name, tmp / name)
    return agents_env(tmp, *names)


Run = Callable[..., CLIResult]


@pytest.fixture
def run(cli: Run, real_corpus: Path, agent_dirs: dict[str, str]) -> Run:
    def _run(*argv: str, stdin: str = "") -> CLIResult:
        extra = {**agent_dirs, "CLAUDE_CONFIG_DIR": str(real_corpus)}
        return cli(*argv, extra_env=extra, stdin=stdin)

    return _run


def ok(r: Any) -> Any:
    assert r.code == 0, (r.out, r.err)
    assert "Traceback" not in r.err
    return r


def amp_thread_totals(root: Path) -> dict[str, int]:
    """Per thread: ledger tokens plus the cache tokens of the message each event points to
    (docs/agents/amp.md), counted here from the JSON documents."""
    out: dict[str, int] = {}
    for f in sorted((root / "threads").glob("T-*.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        msgs = {m.get("messageId"): m for m in doc.get("messages") or [] if isinstance(m, dict)}
        total = 0
        for ev in (doc.get("usageLedger") or {}).get("events") or []:
            t = ev.get("tokens") or {}
            u = (msgs.get(ev.get("toMessageId")) or {}).get("usage") or {}
            total += (t.get("input") or 0) + (t.get("output") or 0)
            total += (u.get("cacheCreationInputTokens") or 0) + (u.get("cacheReadInputTokens") or 0)
        out[doc.get("id") or f.stem] = total
    return out


def test_list_has_every_agents_sessions(run: Run, real_corpus: Path) -> None:
    rows = ok(run("session", "list", "--json")).json()["sessions"]
    per_agent: dict[str, int] = {}
    for r in rows:
        per_agent[r["agent"]] = per_agent.get(r["agent"], 0) + 1
    for agent, n in SESSIONS.items():
        assert per_agent.get(agent) == n, (agent, per_agent)
    claude_ids = {
        m.decode()
        for p in (real_corpus / "projects").rglob("*.jsonl")
        for m in re.findall(rb'"sessionId":\s*"([^"]+)"', p.read_bytes())
    }
    assert per_agent["claude"] > 0
    assert {r["sessionId"] for r in rows if r["agent"] == "claude"} <= claude_ids
    amp = ok(run("session", "list", "--agent", "amp", "--json")).json()["sessions"]
    assert {r["agent"] for r in amp} == {"amp"} and len(amp) == 3
    bad = run("session", "list", "--agent", "nope")
    assert bad.code == 2 and "unknown agent 'nope'" in bad.err


def test_table_ids_resolve_to_their_own_sessions(run: Run) -> None:
    """Every id the list table prints (80 columns or a pipe) is accepted by `session show`."""
    table = ok(run("session", "list", "--agent", "codex")).out
    by_id = {r["sessionId"]: r for r in ok(run("session", "list", "--json")).json()["sessions"]}
    shown = re.findall(r"^\s+(\S+)\s+codex\s", table, flags=re.M)
    assert len(shown) == SESSIONS["codex"], table
    for prefix in shown:
        d = ok(run("session", "show", prefix.rstrip("*"), "--json")).json()
        # a prefix of the id, or of a Codex rollout's uuid (its name's last 36 characters)
        sid = d["sessionId"]
        assert sid.startswith(prefix.rstrip("*")) or sid[-36:].startswith(prefix.rstrip("*"))
        assert d["agent"] == "codex"
        assert d["totalTokens"] == by_id[d["sessionId"]]["totalTokens"]


def test_name_tag_describe_another_agents_session(run: Run, agent_dirs: dict[str, str]) -> None:
    # a unique id prefix of a Codex rollout, then the name, across agents
    ok(run("session", "name", CODEX_SID[:40], "lms spec"))
    ok(run("session", "tag", "lms spec", "Client X", "codex-work"))
    ok(run("session", "describe", "lms spec", "-", stdin="spec-driven LMS\n"))
    d = ok(run("session", "show", "LMS  Spec", "--json")).json()
    assert d["sessionId"] == CODEX_SID and d["agent"] == "codex"
    assert d["name"] == "lms spec" and d["nameSource"] == "user"
    assert d["tags"] == ["client-x", "codex-work"] and d["description"] == "spec-driven LMS"
    assert d["totalTokens"] == CODEX_TOKENS
    assert sum(m["totalTokens"] for m in d["models"]) == CODEX_TOKENS
    text = ok(run("session", "show", "lms spec")).out
    assert re.search(r"Agent\s+codex", text) and f"{CODEX_TOKENS:,}" in text
    # the name and tags show in the list and in the report of every agent's sessions
    listed = ok(run("session", "list", "--tag", "client-x", "--json")).json()["sessions"]
    assert [(r["sessionId"], r["agent"], r["name"]) for r in listed] == [
        (CODEX_SID, "codex", "lms spec")
    ]
    report = ok(run("session", "--agent", "codex", "--json")).json()["sessions"]
    assert [r["name"] for r in report if r["sessionId"] == CODEX_SID] == ["lms spec"]
    # an Amp thread and a Gemini session by id prefix; untag; delete the metadata only
    amp = sorted(amp_thread_totals(Path(agent_dirs["AMP_DATA_DIR"])))
    ok(run("session", "tag", amp[0][:10], "client-x"))
    gem = ok(run("session", "list", "--agent", "gemini", "--json")).json()["sessions"][0]
    ok(run("session", "tag", gem["sessionId"][:13], "client-x"))
    listed = ok(run("session", "list", "--tag", "client-x", "--json")).json()["sessions"]
    assert {(r["sessionId"], r["agent"]) for r in listed} == {
        (CODEX_SID, "codex"),
        (amp[0], "amp"),
        (gem["sessionId"], "gemini"),
    }
    ok(run("session", "untag", amp[0][:10], "client-x"))
    ok(run("session", "delete", gem["sessionId"][:13]))
    listed = ok(run("session", "list", "--tag", "client-x", "--json")).json()["sessions"]
    assert [r["sessionId"] for r in listed] == [CODEX_SID]


def test_ambiguous_and_unknown_refs_across_agents(run: Run) -> None:
    r = run("session", "show", "2025/10/06/rollout")
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert "is ambiguous: it is an id prefix of" in r.err and "[codex]" in r.err
    r = run("session", "tag", "T-", "x")  # the three Amp threads
    assert r.code == 2 and "id prefix of 3 sessions" in r.err and r.err.count("[amp]") == 3
    r = run("session", "name", "no-such-session-anywhere", "x")
    assert r.code == 2 and "no session matches" in r.err


def test_export_counts_each_agents_own_records(run: Run, agent_dirs: dict[str, str]) -> None:
    want = amp_thread_totals(Path(agent_dirs["AMP_DATA_DIR"]))
    assert sum(want.values()) == AMP_TOTAL  # the independent count agrees with the README
    for sid, total in want.items():
        rows = list(csv.DictReader(io.StringIO(ok(run("session", "export", sid[:12])).out)))
        text = ok(run("session", "export", sid, "--format", "csv")).out
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows and {r["sessionId"] for r in rows} == {sid}
        assert sum(int(r["totalTokens"]) for r in rows) == total
    md = ok(run("session", "export", CODEX_SID, "--format", "md")).out
    assert "- **Agent:** codex" in md and f"{CODEX_TOKENS:,}" in md
    full = ok(run("session", "export", CODEX_SID)).json()
    assert sum(r["totalTokens"] for r in full["requests"]) == CODEX_TOKENS


def test_session_report_id_resolves_in_the_reports_agent(run: Run) -> None:
    """`session --id REF --agent X`: REF resolved among X's sessions; ccusage's entry shape."""
    for agent in ("codex", "all"):
        rep = ok(run("session", "--agent", agent, "--id", CODEX_SID[:40], "--json")).json()
        assert rep["sessionId"] == CODEX_SID and rep["totalTokens"] == CODEX_TOKENS
        assert (
            sum(
                e["inputTokens"]
                + e["outputTokens"]
                + e["cacheCreationTokens"]
                + e["cacheReadTokens"]
                for e in rep["entries"]
            )
            == CODEX_TOKENS
        )
    table = ok(run("session", "--agent", "codex", "--id", CODEX_SID[:40])).out
    assert f"{CODEX_TOKENS:,}" in table
    # Claude's own report still resolves only Claude's sessions: unknown there, as in ccusage
    assert ok(run("session", "--id", CODEX_SID[:40], "--json")).json() is None
