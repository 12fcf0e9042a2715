"""Budgets per project and per tag on the real corpus, against an independent sum of the
transcripts (dedup by message id + request id, largest output wins, counted globally)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import run_tokmon

from tokmon.budgets import BudgetError, parse, period_bounds


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def independent_records(root: Path) -> list[dict[str, Any]]:
    """Every billable response of the corpus (transcript-format.md counting rules)."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    plain: list[dict[str, Any]] = []
    for f in sorted(root.rglob("*.jsonl")):
        for raw in f.read_bytes().splitlines():
            try:
                o = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(o, dict) or o.get("type") != "assistant":
                continue
            msg = o.get("message") or {}
            u = msg.get("usage") if isinstance(msg, dict) else None
            if not isinstance(u, dict) or "timestamp" not in o:
                continue
            rec = {"ts": _ts(o["timestamp"]), "session": o.get("sessionId"), "cwd": o.get("cwd"),
                   "out": u.get("output_tokens") or 0,
                   "tokens": sum(u.get(k) or 0 for k in ("input_tokens", "output_tokens",
                                 "cache_creation_input_tokens", "cache_read_input_tokens"))}  # fmt: skip
            mid, rid = msg.get("id"), o.get("requestId")
            if mid is None:
                plain.append(rec)
                continue
            key = (mid, rid)
            if key not in best or rec["out"] > best[key]["out"]:
                best[key] = rec
    return plain + list(best.values())


def test_project_and_tag_budgets_on_the_real_corpus(
    corpus_copy: Path, env: dict[str, str], tmp_path: Path
) -> None:
    recs = [r for r in independent_records(corpus_copy / "projects") if r["tokens"] > 0]
    months = Counter(datetime.fromtimestamp(r["ts"], timezone.utc).strftime("%Y-%m") for r in recs)
    month = months.most_common(1)[0][0]
    y, m = (int(x) for x in month.split("-"))
    lo = datetime(y, m, 1, tzinfo=timezone.utc).timestamp()
    hi = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=timezone.utc).timestamp()
    in_month = [r for r in recs if lo <= r["ts"] < hi]
    project = Counter(r["cwd"] for r in in_month).most_common(1)[0][0]
    sessions = [s for s, _n in Counter(r["session"] for r in in_month).most_common(3)[1:]]
    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus_copy)}
    from tokmon.metadata.store import MetadataStore
    from tokmon.paths import get_paths

    store = MetadataStore(paths=get_paths(e))
    for sid in sessions:
        store.update(sid, tags=["client-x"])
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[[budgets]]\nname = "proj"\nperiod = "month"\ntokens = 1000000\nproject = {json.dumps(project)}\n'
        '[[budgets]]\nname = "client"\nperiod = "month"\ntokens = 1000000\ntag = "client-x"\n'
        '[[budgets]]\nname = "everything"\nperiod = "month"\ntokens = 1000000\n'
    )
    e["TOKMON_CONFIG"] = str(cfg)
    at = datetime.fromtimestamp(hi - 60, timezone.utc).isoformat()
    r = run_tokmon(["budgets", "--at", at, "--json"], e)
    assert r.returncode == 0, r.stderr
    got = {b["name"]: b for b in json.loads(r.stdout)["budgets"]}
    assert got["proj"]["used"] == sum(r["tokens"] for r in in_month if r["cwd"] == project)
    assert got["client"]["used"] == sum(r["tokens"] for r in in_month if r["session"] in sessions)
    assert got["everything"]["used"] == sum(r["tokens"] for r in in_month)
    assert 0 < got["client"]["used"] < got["everything"]["used"]
    assert got["client"]["percent"] == pytest.approx(got["client"]["used"] / 1e4)
    # the table renders, and `stats` shows budget use too
    table = run_tokmon(["budgets", "--at", at], {**e, "COLUMNS": "150"})
    assert table.returncode == 0 and "client" in table.stdout and "tag=client-x" in table.stdout
    stats = json.loads(run_tokmon(["stats", "--json"], e).stdout)
    assert {b["name"] for b in stats["budgets"]} == {"proj", "client", "everything"}
    text = run_tokmon(["stats"], e)
    assert text.returncode == 0 and "Budget client:" in text.stdout


def test_budget_validation_messages() -> None:
    assert parse(None) == []
    with pytest.raises(BudgetError, match="exactly one of usd or tokens"):
        parse([{"period": "day"}])
    with pytest.raises(BudgetError, match="unknown key 'limit'"):
        parse([{"usd": 3, "limit": 4}])
    with pytest.raises(BudgetError, match="positive"):
        parse([{"usd": -1}])
    with pytest.raises(BudgetError, match="duplicate budget name"):
        parse([{"usd": 1}, {"usd": 2}])
    b = parse({"w": {"period": "week", "tokens": 10, "week_start": "sunday", "model": "opus"}})[0]
    assert (b.name, b.unit, b.week_start, b.model) == ("w", "tokens", 6, "opus")


def test_period_bounds_are_calendar_periods() -> None:
    wed = datetime(2026, 3, 4, 15, 0, tzinfo=timezone.utc).timestamp()
    s, e, key = period_bounds("week", wed, timezone.utc, 0)
    assert (datetime.fromtimestamp(s, timezone.utc).day, (e - s) / 86400, key) == (
        2,
        7,
        "week-2026-03-02",
    )
    s, e, key = period_bounds("month", wed, timezone.utc)
    assert key == "2026-03" and (e - s) / 86400 == 31


def test_an_agent_budget_counts_its_stored_records_after_the_logs_are_gone(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A budget with ``agent = "codex"`` counts Codex's records on the real logs (the corpus
    README: 17,373,265 tokens on 2025-10-06, Codex's only day that October), and still does
    once the rollouts are deleted (tokmon's store keeps them)."""
    import shutil

    from conftest import need_agents_corpus

    codex = tmp_path / "codex"
    shutil.copytree(need_agents_corpus() / "codex", codex)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[[budgets]]\nname = "codex-oct"\nperiod = "month"\ntokens = 20000000\nagent = "codex"\n'
        '[[budgets]]\nname = "claude-oct"\nperiod = "month"\ntokens = 1000\n'
        '[[budgets]]\nname = "codex-client"\nperiod = "month"\ntokens = 1000\n'
        'agent = "codex"\ntag = "client-x"\n'
    )
    e = {**env, "CODEX_HOME": str(codex), "TOKMON_CONFIG": str(cfg)}
    from tokmon.metadata.store import MetadataStore
    from tokmon.paths import get_paths

    # one Codex session tagged: 15,667,405 tokens in the README's per-session figures
    sid = "2025/10/06/rollout-2025-10-06T17-28-05-0199ba23-1445-7403-9975-b3c8aad1c0df"
    MetadataStore(paths=get_paths(e)).update(sid, tags=["client-x"])
    at = "2025-10-31T12:00:00+00:00"

    def used() -> dict[str, float]:
        r = run_tokmon(["budgets", "--at", at, "--json"], e)
        assert r.returncode == 0, r.stderr
        return {b["name"]: b["used"] for b in json.loads(r.stdout)["budgets"]}

    want = {"codex-oct": 17_373_265, "claude-oct": 0, "codex-client": 15_667_405}
    assert used() == want
    shutil.rmtree(codex / "sessions")
    assert used() == want
