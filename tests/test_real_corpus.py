"""The accuracy contract on real transcripts: the corpus README's reference figures."""

from __future__ import annotations

from pathlib import Path

from tokmon.core.engine import Engine
from tokmon.paths import get_paths

# From ../shared/corpus/README.md (ccusage 20.0.24 on the same files).
REF = {
    "inputTokens": 61_872,
    "outputTokens": 237_878,
    "cacheCreationTokens": 2_663_638,
    "cacheReadTokens": 41_046_263,
}
REF_COST = 36.2335


def _engine(real_corpus: Path, tokmon_home: Path) -> Engine:
    e = Engine(roots=[real_corpus / "projects"], paths=get_paths({"TOKMON_HOME": str(tokmon_home)}))
    e.refresh()
    return e


def test_totals_sessions_and_blocks_match_reference(real_corpus: Path, tokmon_home: Path) -> None:
    e = _engine(real_corpus, tokmon_home)
    rep = e.report("session", timezone="UTC").to_json()
    for k, v in REF.items():
        assert rep["totals"][k] == v, k
    assert abs(rep["totals"]["totalCost"] - REF_COST) < 0.01
    assert len(rep["sessions"]) == 46
    assert sum(s["totalTokens"] for s in rep["sessions"]) == sum(REF.values())
    blocks = e.report("blocks", timezone="UTC").to_json()["blocks"]
    assert sum(1 for b in blocks if not b["isGap"]) == 32
    assert sum(b["totalTokens"] for b in blocks) == sum(REF.values())


def test_daily_weekly_monthly_totals_agree(real_corpus: Path, tokmon_home: Path) -> None:
    e = _engine(real_corpus, tokmon_home)
    for kind in ("daily", "weekly", "monthly"):
        rep = e.report(kind, timezone="UTC").to_json()
        rows = rep[kind]
        for k, v in REF.items():
            assert sum(r[k] for r in rows) == v, (kind, k)
            assert rep["totals"][k] == v
        for r in rows:  # per-model breakdowns add up to the row
            assert sum(m["inputTokens"] for m in r["modelBreakdowns"]) == r["inputTokens"]
            assert "<synthetic>" not in r["modelsUsed"]


def test_subagents_roll_up_into_parent_session(real_corpus: Path, tokmon_home: Path) -> None:
    e = _engine(real_corpus, tokmon_home)
    ids = {s.session_id for s in e.session_rows()}
    assert not any(i.startswith("agent-") for i in ids)
    # New-layout subagent file: its lines carry the parent's sessionId.
    parent = "29ccd257-68b1-427f-ae5f-6524b7cb6f20"
    assert parent in ids


def test_cli_json_is_ccusage_shaped(real_corpus: Path, cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("daily", "--json", "-z", "UTC", extra_env={"CLAUDE_CONFIG_DIR": str(real_corpus)})
    assert r.code == 0, r.err
    d = r.json()
    assert set(d) == {"daily", "totals"}
    row = d["daily"][0]
    assert {
        "date",
        "inputTokens",
        "outputTokens",
        "cacheCreationTokens",
        "cacheReadTokens",
        "totalTokens",
        "totalCost",
        "modelsUsed",
        "modelBreakdowns",
    } <= set(row)
    assert d["totals"]["cacheReadTokens"] == REF["cacheReadTokens"]
    b = cli(
        "blocks", "--json", "-z", "UTC", extra_env={"CLAUDE_CONFIG_DIR": str(real_corpus)}
    ).json()
    blk = b["blocks"][0]
    assert {
        "id",
        "startTime",
        "endTime",
        "actualEndTime",
        "isActive",
        "isGap",
        "entries",
        "tokenCounts",
        "totalTokens",
        "costUSD",
        "models",
        "burnRate",
        "projection",
    } <= set(blk)
