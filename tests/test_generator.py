"""The demo corpus generator: determinism, sizes, features, and ground truth vs a recount.

The recount below is written from the counting rules of transcript-format.md with the stdlib
``json`` module only (no tokmon code), so it checks the generator's own bookkeeping.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tokmon.demo import Expected, ensure_demo_corpus, generate
from tokmon.paths import get_paths

END = datetime(2026, 3, 1, 17, 0, tzinfo=timezone.utc)
SIZE_MB = 12.0
SEED = 7
SYNTH = "<synthetic>"


@dataclass
class Rec:
    session: str
    model: str
    ts: str
    inp: int
    out: int
    cc: int
    cc1h: int
    cr: int


@dataclass
class Recount:
    records: list[Rec] = field(default_factory=list)
    invalid_lines: int = 0
    titles: dict[str, str] = field(default_factory=dict)
    lines: list[tuple[Path, dict]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)


def recount(dest: Path) -> Recount:
    """Count the corpus the way transcript-format.md says, from scratch."""
    out = Recount()
    best: dict[tuple[str, str], Rec] = {}
    order: list[tuple[str, str]] = []
    custom: dict[str, str] = {}
    ai: dict[str, str] = {}
    for path in sorted((dest / "projects").rglob("*.jsonl")):
        chunks = path.read_bytes().split(b"\n")
        if chunks[-1]:
            out.invalid_lines += 1  # a last line still being written: not complete, not counted
        for raw in chunks[:-1]:
            out.sizes.append(len(raw) + 1)
            try:
                d = json.loads(raw)
            except ValueError:
                out.invalid_lines += 1
                continue
            out.lines.append((path, d))
            if d.get("type") == "custom-title":
                custom[d["sessionId"]] = d["customTitle"]
            elif d.get("type") == "ai-title":
                ai[d["sessionId"]] = d["aiTitle"]
            if d.get("type") != "assistant":
                continue
            msg = d["message"]
            u = msg["usage"]
            rec = Rec(
                d["sessionId"],
                msg["model"],
                d["timestamp"],
                u.get("input_tokens", 0),
                u.get("output_tokens", 0),
                u.get("cache_creation_input_tokens", 0),
                (u.get("cache_creation") or {}).get("ephemeral_1h_input_tokens", 0),
                u.get("cache_read_input_tokens", 0),
            )
            if msg.get("id") and d.get("requestId"):
                key = (msg["id"], d["requestId"])
                if key not in best:
                    order.append(key)
                    best[key] = rec
                elif rec.out > best[key].out:
                    best[key] = rec
            else:
                out.records.append(rec)
    out.records.extend(best[k] for k in order)
    out.titles = {**ai, **custom}
    return out


def _loads(raw: bytes) -> dict:
    try:
        d = json.loads(raw)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected, Recount]:
    dest = tmp_path_factory.mktemp("gen") / "claude"
    exp = generate(dest, size_mb=SIZE_MB, seed=SEED, end=END, days=30)
    return dest, exp, recount(dest)


def _totals(recs: list[Rec]) -> tuple[int, int, int, int, int, int]:
    real = [r for r in recs if r.model != SYNTH]
    return (
        sum(r.inp for r in recs),
        sum(r.out for r in recs),
        sum(r.cc for r in recs),
        sum(r.cc1h for r in recs),
        sum(r.cr for r in recs),
        len(real),
    )


def _exp_tuple(t) -> tuple[int, int, int, int, int, int]:
    return (
        t.input_tokens,
        t.output_tokens,
        t.cache_creation_tokens,
        t.cache_1h_tokens,
        t.cache_read_tokens,
        t.entries,
    )


def test_expected_matches_recount(corpus):
    _, exp, rc = corpus
    assert _exp_tuple(exp.totals) == _totals(rc.records)
    assert exp.totals.entries > 300
    by_session: dict[str, list[Rec]] = defaultdict(list)
    by_day: dict[str, list[Rec]] = defaultdict(list)
    by_model: dict[str, list[Rec]] = defaultdict(list)
    for r in rc.records:
        if r.model == SYNTH:
            continue
        by_session[r.session].append(r)
        by_day[r.ts[:10]].append(r)
        by_model[r.model].append(r)
    assert set(by_session) == exp.session_ids
    assert exp.session_count == len(by_session) >= 20
    for sid, recs in by_session.items():
        s = exp.sessions[sid]
        assert _exp_tuple(s.totals) == _totals(recs), sid
        assert s.models == sorted({r.model for r in recs})
        assert s.first_activity == min(r.ts for r in recs)
        assert s.last_activity == max(r.ts for r in recs)
    assert {d: _exp_tuple(t) for d, t in exp.daily.items()} == {
        d: _totals(v) for d, v in by_day.items()
    }
    assert {m: _exp_tuple(t) for m, t in exp.models.items()} == {
        m: _totals(v) for m, v in by_model.items()
    }
    assert exp.titles == rc.titles
    for sid, title in exp.titles.items():
        assert exp.sessions[sid].title == title


def test_files_and_sizes_listed(corpus):
    dest, exp, _ = corpus
    on_disk = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert on_disk == exp.files
    total = sum((dest / f).stat().st_size for f in exp.files)
    assert total == exp.total_bytes
    assert abs(total - SIZE_MB * 2**20) < 0.1 * SIZE_MB * 2**20
    for s in exp.sessions.values():
        assert s.files and all((dest / f).is_file() for f in s.files)


def test_models_projects_and_tiers(corpus):
    dest, exp, rc = corpus
    assert set(exp.models) == {
        "claude-opus-4-5-20251101",
        "claude-opus-4-1-20250805",
        "claude-sonnet-4-20250514",
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5-20251001",
    }
    assert len(exp.projects) >= 3
    cwds = {d["cwd"] for _, d in rc.lines if "cwd" in d}
    assert cwds == set(exp.projects)
    for path, d in rc.lines:
        if "cwd" in d:
            enc = re.sub(r"[/.]", "-", d["cwd"])
            assert enc in path.relative_to(dest / "projects").parts[0]
    over = [
        r
        for r in rc.records
        if r.model.startswith("claude-sonnet") and r.inp + r.cc + r.cr > 200_000
    ]
    assert over, "no sonnet request above 200k tokens"
    assert sorted({r.ts[:10] for r in over}) == exp.over_200k_days
    assert not [
        r
        for r in rc.records
        if not r.model.startswith("claude-sonnet") and r.inp + r.cc + r.cr > 200_000
    ]
    assert exp.totals.cache_1h_tokens > 0
    for _, d in rc.lines:
        u = d.get("message", {}).get("usage") if isinstance(d.get("message"), dict) else None
        if u and "cache_creation" in u:
            cc = u["cache_creation"]
            assert u["cache_creation_input_tokens"] == (
                cc["ephemeral_5m_input_tokens"] + cc["ephemeral_1h_input_tokens"]
            )


def test_streaming_groups(corpus):
    _, _, rc = corpus
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    seen_lines: set[str] = set()
    for _, d in rc.lines:
        if d.get("type") == "assistant" and d.get("requestId") and d["uuid"] not in seen_lines:
            seen_lines.add(d["uuid"])  # resumed copies repeat lines verbatim
            groups[(d["message"]["id"], d["requestId"])].append(d)
    sizes = [len(g) for g in groups.values()]
    assert max(sizes) <= 12 and min(sizes) == 1 and sum(s > 1 for s in sizes) > 100
    multi = [g for g in groups.values() if len(g) > 1]
    flat = 0
    for g in multi:
        outs = [x["message"]["usage"]["output_tokens"] for x in g]
        assert outs == sorted(outs) and outs[-1] == max(outs)
        flat += outs[0] == outs[-1]
        base = {
            k: v
            for k, v in g[0]["message"]["usage"].items()
            if k not in ("output_tokens", "iterations")
        }
        for x in g:
            u = {
                k: v
                for k, v in x["message"]["usage"].items()
                if k not in ("output_tokens", "iterations")
            }
            assert u == base
            assert x["message"]["model"] == g[0]["message"]["model"]
            assert x["sessionId"] == g[0]["sessionId"]
        assert [x["timestamp"] for x in g] == sorted(x["timestamp"] for x in g)
    # about a quarter of responses never record their final count
    assert 0.12 < flat / len(multi) < 0.40
    assert any("iterations" in d["message"]["usage"] for g in multi for d in g)


def test_subagents_both_layouts_and_progress_echoes(corpus):
    dest, exp, rc = corpus
    proj = dest / "projects"
    flat = [p for p in proj.glob("*/agent-*.jsonl")]
    nested = [p for p in proj.glob("*/*/subagents/agent-*.jsonl")]
    assert flat and nested
    assert all(re.fullmatch(r"agent-[0-9a-f]{8}\.jsonl", p.name) for p in flat)
    sub_keys: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for path, d in rc.lines:
        if path in flat or path in nested:
            assert d["isSidechain"] is True
            aid = path.stem[len("agent-") :]
            assert d["agentId"] == aid
            if path in nested:
                assert d["sessionId"] == path.parent.parent.name
            assert (
                (path.parent.parent.parent if path in nested else path.parent)
                .joinpath(d["sessionId"] + ".jsonl")
                .is_file()
            )
            assert d["sessionId"] in exp.session_ids
            if d["type"] == "assistant":
                sub_keys[(d["message"]["id"], d["requestId"])].append(d)
    echoes = [
        d
        for _, d in rc.lines
        if d.get("type") == "progress" and d["data"]["type"] == "agent_progress"
    ]
    assert echoes
    for e in echoes:
        inner = e["data"]["message"]
        key = (inner["message"]["id"], inner["requestId"])
        assert key in sub_keys, "echo of a response missing from the subagent file"
        assert inner["message"]["usage"] in [x["message"]["usage"] for x in sub_keys[key]]
        assert e["timestamp"] == inner["timestamp"]
    # subagent usage summaries on user lines exist and are not counted
    summaries = [
        d
        for _, d in rc.lines
        if d.get("type") == "user"
        and isinstance(d.get("toolUseResult"), dict)
        and "usage" in d["toolUseResult"]
    ]
    assert summaries
    assert all(
        sum(v for k, v in s["toolUseResult"]["usage"].items() if k.endswith("tokens")) > 0
        for s in summaries
    )


def test_resumed_sessions_copy_verbatim(corpus):
    dest, exp, rc = corpus
    assert exp.resumed
    for new_sid, src_sid in exp.resumed.items():
        new_file = next((dest / "projects").rglob(f"{new_sid}.jsonl"))
        src_file = next((dest / "projects").rglob(f"{src_sid}.jsonl"))
        assert new_file.parent == src_file.parent
        new_lines = new_file.read_bytes().split(b"\n")
        src_lines = src_file.read_bytes().split(b"\n")
        first = json.loads(new_lines[0])
        assert first.get("sessionId", src_sid) == src_sid
        k = 0
        while k < len(new_lines) and k < len(src_lines) and new_lines[k] == src_lines[k]:
            k += 1
        assert k >= 3
        later = [_loads(x) for x in new_lines[k:]]
        assert any(d.get("sessionId") == new_sid for d in later)
        assert new_sid in exp.session_ids


def test_synthetic_malformed_and_titles(corpus):
    _, exp, rc = corpus
    synth = [
        d for _, d in rc.lines if d.get("type") == "assistant" and d["message"]["model"] == SYNTH
    ]
    assert len(synth) == exp.synthetic_lines >= 1
    real_ts = {r.ts for r in rc.records if r.model != SYNTH}
    for d in synth:
        assert d["isApiErrorMessage"] is True and "requestId" not in d
        u = d["message"]["usage"]
        assert u["input_tokens"] == u["output_tokens"] == 0
        assert u["cache_creation_input_tokens"] == u["cache_read_input_tokens"] == 0
        assert d["timestamp"] in real_ts  # never alone at a block edge
    assert rc.invalid_lines == exp.malformed_lines >= 2
    kinds = {d.get("type") for _, d in rc.lines}
    assert {
        "assistant",
        "user",
        "summary",
        "system",
        "progress",
        "file-history-snapshot",
        "queue-operation",
        "attachment",
        "permission-mode",
        "last-prompt",
        "custom-title",
        "ai-title",
    } <= kinds
    both = [
        sid
        for sid in exp.titles
        if any(d.get("type") == "ai-title" and d["sessionId"] == sid for _, d in rc.lines)
        and any(d.get("type") == "custom-title" and d["sessionId"] == sid for _, d in rc.lines)
    ]
    assert both and all(exp.titles[sid].endswith("(renamed)") for sid in both)
    assert any(d.get("type") == "system" and d.get("subtype") is None for _, d in rc.lines)


def test_line_sizes_and_time_shape(corpus):
    _, exp, rc = corpus
    sizes = sorted(rc.sizes)
    n = len(sizes)
    assert 500 < sizes[n // 2] < 2500
    assert 2000 < sizes[int(n * 0.9)] < 20_000
    assert sum(s > 64 * 1024 for s in sizes) >= 3
    assert sizes[-1] > 900_000
    ts = sorted(r.ts for r in rc.records)
    start = (END - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
    assert ts[0] >= start and ts[-1] <= END.strftime("%Y-%m-%dT%H:%M:%S.999Z")
    last = datetime.strptime(ts[-1], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert END - last < timedelta(minutes=15)
    epoch = [datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() for t in ts]
    gaps = [b - a for a, b in zip(epoch, epoch[1:], strict=False)]
    assert sum(g > 5 * 3600 for g in gaps) >= 10  # idle nights: gap blocks
    assert len(exp.daily) >= 15


def test_deterministic(tmp_path, corpus):
    dest, exp, _ = corpus
    again = generate(tmp_path / "a", size_mb=SIZE_MB, seed=SEED, end=END, days=30)
    assert again.to_json() == exp.to_json()
    for f in exp.files:
        assert (tmp_path / "a" / f).read_bytes() == (dest / f).read_bytes(), f
    other = generate(tmp_path / "b", size_mb=1, seed=SEED + 1, end=END, days=30)
    assert other.session_ids.isdisjoint(exp.session_ids)


@pytest.mark.parametrize("size_mb", [1.0, 2.0, 30.0])
def test_sizes_within_tolerance(tmp_path, size_mb):
    exp = generate(tmp_path / "c", size_mb=size_mb, seed=3, end=END, days=10)
    total = sum(p.stat().st_size for p in (tmp_path / "c").rglob("*") if p.is_file())
    assert total == exp.total_bytes
    assert abs(total - size_mb * 2**20) <= 0.1 * size_mb * 2**20 + 30_000
    assert exp.session_count >= 8


def test_expected_json_roundtrip(corpus):
    _, exp, _ = corpus
    back = Expected.from_json(exp.to_json())
    assert back == exp
    assert back.session_ids == exp.session_ids
    assert back.totals.total_tokens == exp.totals.total_tokens > 0


def test_refuses_non_empty_destination_and_bad_sizes(tmp_path, corpus):
    dest, _, _ = corpus
    with pytest.raises(FileExistsError):
        generate(dest, size_mb=1)
    with pytest.raises(ValueError):
        generate(tmp_path / "x", size_mb=0)


def test_files_are_private(corpus):
    dest, exp, _ = corpus
    if os.name == "nt":
        pytest.skip("POSIX modes")
    for f in exp.files[:50]:
        assert stat.S_IMODE((dest / f).stat().st_mode) == 0o600


def test_ensure_demo_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKMON_HOME", str(tmp_path / "home"))
    paths = get_paths()
    demo = ensure_demo_corpus(paths)
    assert demo == paths.cache_dir / "demo"
    exp = Expected.from_json((demo / "expected.json").read_bytes())
    total = sum((demo / f).stat().st_size for f in exp.files)
    assert 2.5 * 2**20 < total < 3.5 * 2**20
    rc = recount(demo)
    now = datetime.now(timezone.utc)
    last = max(datetime.strptime(r.ts, "%Y-%m-%dT%H:%M:%S.%fZ") for r in rc.records)
    assert now - last.replace(tzinfo=timezone.utc) < timedelta(minutes=10)  # an active block
    today = now.strftime("%Y-%m-%d")
    assert today in exp.daily or (now - timedelta(minutes=10)).strftime("%Y-%m-%d") in exp.daily
    # fresh: reused as is
    mtime = (demo / "expected.json").stat().st_mtime_ns
    assert ensure_demo_corpus(paths) == demo
    assert (demo / "expected.json").stat().st_mtime_ns == mtime
    # stale (older than 6 h): regenerated in place
    old = time.time() - 7 * 3600
    os.utime(demo / "expected.json", (old, old))
    assert ensure_demo_corpus(paths) == demo
    assert (demo / "expected.json").stat().st_mtime > old + 3600
    assert sorted(p.name for p in paths.cache_dir.iterdir()) == ["demo", "demo.lock"]
    if os.name != "nt":
        assert stat.S_IMODE(demo.stat().st_mode) == 0o700
