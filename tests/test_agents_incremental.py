"""Incremental reads: appends and new database rows are read alone on the next refresh; the
agents' folders get no new files; the CLI surface answers end to end."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, need_agents_corpus  # noqa: E402

from tokmon.sources import SOURCES
from tokmon.sources.collect import SourceReader


@pytest.fixture(scope="module")
def corpus() -> Path:
    return need_agents_corpus()


def copytree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o700 if p.is_dir() else 0o600)
    return dst


def tc_line(ts: str, total: int, last: int) -> str:
    def u(n: int) -> dict[str, int]:
        return {
            "input_tokens": n,
            "cached_input_tokens": 0,
            "output_tokens": 7,
            "reasoning_output_tokens": 0,
            "total_tokens": n + 7,
        }

    return (
        json.dumps(
            {
                "timestamp": ts,
                "type": "event_msg",
                "payload": {
                    "type": "token_count",
                    "info": {"total_token_usage": u(total), "last_token_usage": u(last)},
                },
            }
        )
        + "\n"
    )


def test_codex_append_reads_only_the_new_bytes(corpus: Path, tmp_path: Path) -> None:
    home = copytree(corpus / "codex", tmp_path / "codex")
    reader = SourceReader(SOURCES["codex"]({"CODEX_HOME": str(home)}))
    reader.refresh()
    before = sum(r.input_tokens for r in reader.usage())
    f = sorted(home.rglob("rollout-2026-04-09T00-16-48-*.jsonl"))[0]
    state = reader.states[str(f)]
    assert state.offset == f.stat().st_size
    line = tc_line("2026-04-09T01:00:00.000Z", 10**9, 1234)
    partial = tc_line("2026-04-09T01:00:01.000Z", 10**9 + 5, 5)
    with open(f, "a", encoding="utf-8") as fh:
        fh.write(line + partial[:20])  # a half-written line waits for its end
    stats = reader.refresh()
    assert stats.files_read == 1 and stats.bytes_read == len(line.encode())
    assert reader.states[str(f)].offset == state.offset + len(line.encode())
    assert stats.new_records == 1
    assert sum(r.input_tokens for r in reader.usage()) == before + 1234
    with open(f, "a", encoding="utf-8") as fh:
        fh.write(partial[20:])
    stats = reader.refresh()
    assert stats.bytes_read == len(partial.encode()) and stats.new_records == 1
    assert reader.refresh().bytes_read == 0  # nothing new: nothing read


def test_gemini_append_reads_only_the_new_bytes(corpus: Path, tmp_path: Path) -> None:
    tmp = copytree(corpus / "gemini" / "tmp", tmp_path / "tmp")
    reader = SourceReader(SOURCES["gemini"]({"GEMINI_DATA_DIR": str(tmp)}))
    reader.refresh()
    total = sum(r.total_tokens for r in reader.usage())
    f = sorted(tmp.rglob("session-2026-04-25T13-04-16a02704.jsonl"))[0]
    msg = {
        "id": "new-1",
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
    line = json.dumps(msg) + "\n"
    with open(f, "a", encoding="utf-8") as fh:
        fh.write(line)
    stats = reader.refresh()
    assert stats.files_read == 1 and stats.bytes_read == len(line.encode())
    assert sum(r.total_tokens for r in reader.usage()) == total + 510
    # the same message re-appended with more tokens replaces the first copy (last wins)
    msg["tokens"] = {
        "input": 600,
        "output": 19,
        "cached": 100,
        "thoughts": 1,
        "tool": 0,
        "total": 620,
    }
    with open(f, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(msg) + "\n")
    reader.refresh()
    assert sum(r.total_tokens for r in reader.usage()) == total + 620


def test_opencode_new_row_is_read_alone_and_no_files_appear(corpus: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in (corpus / "opencode").iterdir())
    root = copytree(corpus / "opencode", tmp_path / "opencode")
    reader = SourceReader(SOURCES["opencode"]({"OPENCODE_DATA_DIR": str(root)}))
    reader.refresh()
    assert sorted(p.name for p in (corpus / "opencode").iterdir()) == before
    assert sorted(p.name for p in root.iterdir()) == before  # no -wal/-shm created
    n0 = len(reader.usage())
    db = root / "opencode.db"
    mark = reader.states[str(db)].mark
    con = sqlite3.connect(db)
    sid = con.execute("SELECT session_id FROM message LIMIT 1").fetchone()[0]
    data = {
        "role": "assistant",
        "time": {"created": 1781700000000},
        "modelID": "m",
        "cost": 0.01,
        "tokens": {"input": 77, "output": 3, "reasoning": 0, "cache": {"read": 0, "write": 0}},
    }
    con.execute(
        "INSERT INTO message VALUES (?,?,?,?,?)",
        ("msg_new", sid, 1781700000000, mark + 1, json.dumps(data)),
    )
    con.commit()
    con.close()
    stats = reader.refresh()
    assert stats.bytes_read == 1  # one row read (the row above the watermark)
    assert len(reader.usage()) == n0 + 1
    assert [r.input_tokens for r in reader.usage() if r.key == "opencode:msg_new"] == [77]


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokmon", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )


def test_cli_reports_and_agents(corpus: Path, tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("TOKMON_", "CODEX_", "GEMINI_", "OPENCODE_", "QWEN_", "AMP_", "COPILOT_")
        )
    }
    home = tmp_path / "home"
    home.mkdir()
    env.update(HOME=str(home), TOKMON_HOME=str(tmp_path / "th"), NO_COLOR="1")
    p = run_cli(["agents", "--json"], env)
    assert p.returncode == 0, p.stderr
    assert not any(a["detected"] for a in json.loads(p.stdout)["agents"])  # nothing installed
    env["AMP_DATA_DIR"] = str(corpus / "amp")
    env["COPILOT_HOME"] = str(corpus / "copilot")
    p = run_cli(["copilot", "session", "--json", "-z", "UTC"], env)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["totals"]["totalTokens"] == 1433343  # README
    assert len(data["sessions"]) == 4
    p = run_cli(["agents", "--json"], env)
    found = {a["agent"]: a for a in json.loads(p.stdout)["agents"] if a["detected"]}
    assert set(found) == {"amp", "copilot"}
    assert found["amp"]["totalTokens"] == 114201 and found["amp"]["totalCost"] == pytest.approx(
        0.0685599
    )
    p = run_cli(["amp", "daily", "-z", "Nowhere/Zone"], env)
    assert p.returncode != 0 and "Traceback" not in p.stderr


def test_cli_bad_files_give_one_line_each(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("TOKMON_", "CODEX_", "GEMINI_", "OPENCODE_", "QWEN_", "AMP_", "COPILOT_")
        )
    }
    day = tmp_path / "codex" / "sessions" / "2026" / "01" / "01"
    day.mkdir(parents=True)
    (day / "rollout-x.jsonl").write_text('{"type": bad token_count\n')
    (tmp_path / "oc").mkdir()
    (tmp_path / "oc" / "opencode.db").write_text("junk")
    env.update(
        HOME=str(tmp_path),
        TOKMON_HOME=str(tmp_path / "th"),
        CODEX_HOME=str(tmp_path / "codex"),
        OPENCODE_DATA_DIR=str(tmp_path / "oc"),
    )
    p = run_cli(["agents"], env)
    assert p.returncode == 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in p.stderr
    assert "rollout-x.jsonl" in lines[0] and "opencode.db" in lines[1]


def test_a_rewritten_rollout_is_read_again_from_the_start(tmp_path: Path) -> None:
    day = tmp_path / "codex" / "sessions" / "2026" / "01" / "01"
    day.mkdir(parents=True)
    f = day / "rollout-x.jsonl"
    meta = (
        json.dumps(
            {
                "timestamp": "2026-01-01T00:00:00.000Z",
                "type": "session_meta",
                "payload": {"id": "x", "cwd": "/a"},
            }
        )
        + "\n"
    )
    f.write_text(meta + tc_line("2026-01-01T00:00:01.000Z", 100, 100))
    reader = SourceReader(SOURCES["codex"]({"CODEX_HOME": str(tmp_path / "codex")}))
    reader.refresh()
    assert sum(r.input_tokens for r in reader.usage()) == 100
    # rewritten in place (same first line length, other content), now longer than before
    meta2 = meta.replace('"/a"', '"/b"')
    f.write_text(
        meta2
        + tc_line("2026-01-01T00:00:01.000Z", 300, 300)
        + tc_line("2026-01-01T00:00:02.000Z", 350, 50)
    )
    stats = reader.refresh()
    assert stats.bytes_read == f.stat().st_size
    assert sum(r.input_tokens for r in reader.usage()) == 350
    assert {r.project for r in reader.usage()} == {"/b"}


def test_a_running_copilot_session_counts_its_output_until_the_shutdown_replaces_it(
    corpus: Path, tmp_path: Path
) -> None:
    """A real Copilot session cut before its ``session.shutdown`` (a process still running)
    shows its per-message output tokens and message count as a lower bound; the shutdown,
    appended later, replaces them with the exact totals (ccusage 20.0.24's figures for that
    session), nothing counted twice, also through tokmon's store after a restart."""
    from test_agents_corpus import CCUSAGE

    from tokmon.core.engine import Engine
    from tokmon.paths import get_paths

    home = copytree(corpus / "copilot", tmp_path / "copilot")
    sid = "3cc3555e-5462-44f9-95de-c67b1cb220b9"
    events = home / "session-state" / sid / "events.jsonl"
    raw = events.read_bytes().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(raw) if b'"session.shutdown"' in line)
    head, rest = b"".join(raw[:cut]), b"".join(raw[cut:])
    events.write_bytes(head)
    # independent: the output tokens and count of the assistant messages before the cut
    msgs = [json.loads(x)["data"] for x in raw[:cut] if b'"assistant.message"' in x]
    out = sum(m["outputTokens"] for m in msgs if "outputTokens" in m)
    n = sum(1 for m in msgs if "outputTokens" in m)
    assert out > 0 and n > 1

    env = {"COPILOT_HOME": str(home), "HOME": str(tmp_path / "h")}
    reader = SourceReader(SOURCES["copilot"](env))
    reader.refresh()

    def session(recs: list) -> tuple[int, ...]:
        mine = [r for r in recs if r.session_id == sid]
        return (
            sum(r.input_tokens for r in mine),
            sum(r.output_tokens for r in mine),
            sum(r.cache_read_tokens for r in mine),
            sum(r.cache_write_tokens for r in mine),
            sum(r.requests for r in mine),
        )

    want = CCUSAGE["copilot"]["session"][sid]  # (input, output, cache read, write, total)
    assert session(reader.usage()) == (0, out, 0, 0, n)
    assert out <= want[1]
    others = [r for r in reader.usage() if r.session_id != sid]
    assert sum(r.total_tokens for r in others) == 1_433_343 - want[4]  # the README's total

    with open(events, "ab") as fh:
        fh.write(rest)
    stats = reader.refresh()
    assert stats.bytes_read == len(rest)
    got = session(reader.usage())
    assert got[:4] == want[:4]
    assert sum(r.total_tokens for r in reader.usage()) == 1_433_343

    # the same through the engine's store: cut, scanned, then the shutdown, then a restart
    events.write_bytes(head)
    paths = get_paths({"TOKMON_HOME": str(tmp_path / "tokmon")})

    def engine() -> Engine:
        e = Engine(roots=[tmp_path / "none"], paths=paths, env=env, agents=["copilot"])
        e.refresh()
        return e

    part = engine().report("session", agent="copilot").to_json()
    row = next(r for r in part["sessions"] if r["sessionId"] == sid)
    assert (row["inputTokens"], row["outputTokens"], row["cacheReadTokens"]) == (0, out, 0)
    with open(events, "ab") as fh:
        fh.write(rest)
    engine()  # reads the shutdown, saves
    after = engine().report("session", agent="copilot").to_json()
    assert after["totals"]["totalTokens"] == 1_433_343
    row = next(r for r in after["sessions"] if r["sessionId"] == sid)
    assert row["totalTokens"] == want[4] and row["outputTokens"] == want[1]


@pytest.mark.slow
def test_bench_agents_push_runs_and_reports_every_kind(corpus: Path) -> None:
    """bench/bench_agents_push.py end to end (one round): every kind of change reached a
    ``tokmon/usageChanged`` with its new total (no timing asserts: the bench prints those)."""
    res = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "bench_agents_push.py"),
            "--appends",
            "2",
            "--gap",
            "0",
            "--json",
            "--agents-corpus",
            str(corpus),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(res.stdout)
    for kind in ("claude", "codex", "gemini", "opencode"):
        assert data[kind]["max_ms"] >= data[kind]["median_ms"] > 0, kind
    assert data["claude"]["vs_claude"] == 1.0
