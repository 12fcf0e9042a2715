"""Generated logs covering each agent's pitfalls; the generator knows the true totals.

Each pitfall is shown to change a naive total (so the case really tests something) while
tokmon's total equals the truth."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tokmon.sources import SOURCES
from tokmon.sources.base import AgentUsage
from tokmon.sources.collect import collect

T0 = "2026-03-01T10:00:"


def w_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def tot(recs: list[AgentUsage]) -> tuple[int, int, int, int]:
    return (
        sum(r.input_tokens for r in recs),
        sum(r.output_tokens for r in recs),
        sum(r.cache_read_tokens for r in recs),
        sum(r.cache_write_tokens for r in recs),
    )


# ---------------------------------------------------------------------------------- Codex


class CodexGen:
    """Builds rollouts turn by turn, tracking the running total and the truth."""

    def __init__(self) -> None:
        self.truth = [0, 0, 0]  # non-cached input, output, cached

    @staticmethod
    def tc(sec: int, total: list[int], last: list[int]) -> dict[str, Any]:
        def u(v: list[int]) -> dict[str, int]:
            return {
                "input_tokens": v[0],
                "cached_input_tokens": v[1],
                "output_tokens": v[2],
                "reasoning_output_tokens": v[3],
                "total_tokens": v[0] + v[2],
            }

        return {
            "timestamp": f"{T0}{sec:02d}.000Z",
            "type": "event_msg",
            "payload": {
                "type": "token_count",
                "info": {"total_token_usage": u(total), "last_token_usage": u(last)},
            },
        }

    def turns(
        self,
        start_sec: int,
        lasts: list[list[int]],
        running: list[int] | None = None,
        reemit: bool = True,
        count: bool = True,
    ) -> tuple[list[dict[str, Any]], list[int]]:
        rows: list[dict[str, Any]] = []
        total = list(running or [0, 0, 0, 0])
        for i, last in enumerate(lasts):
            total = [a + b for a, b in zip(total, last, strict=True)]
            rows.append(self.tc(start_sec + 2 * i, total, last))
            if reemit:  # Codex re-emits the unchanged total (UI / rate-limit refresh)
                rows.append(self.tc(start_sec + 2 * i + 1, total, last))
            if count:
                self.truth[0] += last[0] - last[1]
                self.truth[1] += last[2]
                self.truth[2] += last[1]
        return rows, total


def meta(sid: str, source: Any = "cli") -> dict[str, Any]:
    return {
        "timestamp": f"{T0}00.000Z",
        "type": "session_meta",
        "payload": {"id": sid, "cwd": "/w/p", "source": source},
    }


def ctx(model: str) -> dict[str, Any]:
    return {"timestamp": f"{T0}00.500Z", "type": "turn_context", "payload": {"model": model}}


def test_codex_pitfalls(tmp_path: Path) -> None:
    g = CodexGen()
    home = tmp_path / "codex"
    day = home / "sessions" / "2026" / "03" / "01"
    # 1. re-emitted totals + a reset of the running total inside the file
    rows_a, _ = g.turns(1, [[1000, 800, 50, 10], [1200, 1000, 60, 0]])
    rows_b, _ = g.turns(10, [[300, 0, 20, 5], [400, 300, 30, 0]])  # running total restarts
    parent = [meta("a"), ctx("gpt-5-codex"), *rows_a, *rows_b]
    w_jsonl(day / "rollout-a.jsonl", parent)
    # 2. a spawned subagent rollout that replays the parent's history at spawn time, then goes on
    spawn = {"subagent": {"thread_spawn": {"parent_thread_id": "a"}}}
    replay = [dict(r, timestamp=f"{T0}40.000Z") for r in rows_b]
    own, _ = g.turns(42, [[500, 100, 40, 0]], running=[700, 300, 50, 5])
    w_jsonl(
        day / "rollout-fork.jsonl",
        [meta("fork", spawn), meta("a"), ctx("gpt-5-codex"), *replay, *own],
    )
    # 2b. a branched rollout that copies the parent's first turns with their own timestamps
    own_b, _ = g.turns(45, [[600, 200, 30, 0]], running=[2200, 1800, 110, 10])
    w_jsonl(day / "rollout-branch.jsonl", [meta("branch"), ctx("gpt-5-codex"), *rows_a, *own_b])
    # 2c. two unrelated sessions whose only turn is identical: both count
    for i, sec in enumerate((52, 57)):
        twin, _ = g.turns(sec, [[100, 0, 9, 0]], reemit=False)
        w_jsonl(day / f"rollout-twin{i}.jsonl", [meta(f"twin{i}"), ctx("gpt-5-codex"), *twin])
    # 3. the same rollout also in archived_sessions/
    (home / "archived_sessions").mkdir(parents=True)
    (home / "archived_sessions" / "rollout-a.jsonl").write_bytes(
        (day / "rollout-a.jsonl").read_bytes()
    )
    # 4. an old log without turn_context (fallback model) and no re-emits
    old, _ = g.turns(50, [[100, 0, 10, 0]], reemit=False)
    w_jsonl(day / "rollout-old.jsonl", [meta("old"), *old])
    # 5. a /review: in the parent between entered/exited_review_mode and in its own rollout
    rev_rows, _ = g.turns(30, [[2000, 1000, 80, 20]], reemit=False, count=False)
    g.truth[0] += 1000
    g.truth[1] += 80
    g.truth[2] += 1000
    rv_parent_pre, run = g.turns(20, [[50, 0, 5, 0]])
    after = CodexGen.tc(35, run, [50, 0, 5, 0])  # parent's total re-emitted after the review
    w_jsonl(
        day / "rollout-p.jsonl",
        [
            meta("p"),
            ctx("gpt-5.2-codex"),
            *rv_parent_pre,
            {
                "timestamp": f"{T0}29.000Z",
                "type": "event_msg",
                "payload": {"type": "entered_review_mode"},
            },
            *rev_rows,
            {
                "timestamp": f"{T0}31.000Z",
                "type": "event_msg",
                "payload": {"type": "exited_review_mode"},
            },
            after,
        ],
    )
    w_jsonl(
        day / "rollout-review.jsonl",
        [meta("r", {"subagent": "review"}), ctx("gpt-5.1-codex-max"), *rev_rows],
    )

    recs = collect(SOURCES["codex"]({"CODEX_HOME": str(home), "HOME": str(tmp_path)}))
    got = tot(recs)
    assert (got[0], got[1], got[2]) == tuple(g.truth)
    assert {r.model for r in recs if r.session_id.endswith("rollout-old")} == {"gpt-5"}
    review = [r for r in recs if r.session_id.endswith("rollout-review")]
    assert review and all(r.model == "gpt-5.1-codex-max" for r in review)

    # Each pitfall changes a naive total: sum of every last_token_usage, in every file...
    def naive_sum(files: list[Path], skip_unchanged: bool) -> int:
        n = 0
        for f in files:
            prev = None
            for line in f.read_text().splitlines():
                p = json.loads(line)["payload"]
                if p.get("type") == "token_count":
                    t = p["info"]["total_token_usage"]
                    if not (skip_unchanged and t == prev):
                        n += p["info"]["last_token_usage"]["input_tokens"]
                    prev = t
        return n

    truth_in = g.truth[0] + g.truth[2]
    all_files = sorted(home.rglob("*.jsonl"))
    # Each pitfall on its own changes the naive total: leaving out one more kind of copy
    # lowers it every time, and only the full set of rules reaches the truth.
    no_archive = [f for f in all_files if "archived" not in str(f)]
    no_fork = [f for f in no_archive if "fork" not in f.name]
    no_branch = [f for f in no_fork if "branch" not in f.name]
    steps = [
        naive_sum(all_files, False),  # + re-emitted totals
        naive_sum(all_files, True),  # + archived copy
        naive_sum(no_archive, True),  # + spawned replay
        naive_sum(no_fork, True),  # + branch copy
        naive_sum(no_branch, True),  # + review counted in parent and review rollout
    ]
    assert steps == sorted(steps, reverse=True) and len(set(steps)) == len(steps)
    assert truth_in < steps[-1]
    # ...and taking the last running total of a file undercounts after a reset.
    last_total = json.loads((day / "rollout-a.jsonl").read_text().splitlines()[-1])
    a_truth = 1000 + 1200 + 300 + 400
    assert last_total["payload"]["info"]["total_token_usage"]["input_tokens"] != a_truth
    a = [r for r in recs if r.session_id.endswith("rollout-a")]
    assert sum(r.input_tokens + r.cache_read_tokens for r in a) == a_truth


# --------------------------------------------------------------------------------- Gemini


def gmsg(mid: str, sec: int, inp: int, cached: int, out: int, thoughts: int) -> dict[str, Any]:
    return {
        "id": mid,
        "timestamp": f"{T0}{sec:02d}.000Z",
        "type": "gemini",
        "model": "gemini-2.5-pro",
        "tokens": {
            "input": inp,
            "output": out,
            "cached": cached,
            "thoughts": thoughts,
            "tool": 0,
            "total": inp + out + thoughts,
        },
    }


def test_gemini_pitfalls(tmp_path: Path) -> None:
    tmp = tmp_path / "gemini" / "tmp"
    head = {"sessionId": "s1", "projectHash": "h", "startTime": f"{T0}00.000Z", "kind": "main"}
    rows = [
        head,
        {"id": "u1", "type": "user", "timestamp": f"{T0}01.000Z"},
        gmsg("m1", 2, 100, 0, 1, 0),  # streamed: updated below with the same id
        {"$set": {"lastUpdated": f"{T0}02.000Z"}},
        gmsg("m1", 2, 1000, 400, 50, 20),
        gmsg("m2", 5, 2000, 1500, 60, 0),
        {"$rewindTo": "m2"},  # hides m2 from the chat; its tokens were billed
        gmsg("m3", 8, 3000, 2000, 70, 10),
    ]
    w_jsonl(tmp / "hash123" / "chats" / "session-1.jsonl", rows)
    # the same session in a second (project-named) folder
    w_jsonl(tmp / "myproject" / "chats" / "session-1.jsonl", rows)
    # and a stale copy, saved while m1 was still streaming, in a folder that sorts first
    w_jsonl(tmp / "aaa-old" / "chats" / "session-1.jsonl", rows[:3])
    # a legacy one-document session
    legacy = {
        "sessionId": "s2",
        "projectHash": "h",
        "startTime": f"{T0}00.000Z",
        "messages": [gmsg("x1", 20, 500, 100, 5, 0)],
    }
    p = tmp / "hash123" / "chats" / "session-2.json"
    p.write_text(json.dumps(legacy))
    truth = (600 + 500 + 1000 + 400, 70 + 60 + 80 + 5, 400 + 1500 + 2000 + 100, 0)
    recs = collect(SOURCES["gemini"]({"GEMINI_DATA_DIR": str(tmp)}))
    assert tot(recs) == truth
    assert {r.session_id for r in recs} == {"s1", "s2"}
    # naive: every gemini line of every file
    naive_in = 0
    for f in tmp.rglob("*.jsonl"):
        for line in f.read_text().splitlines():
            d = json.loads(line)
            if d.get("type") == "gemini":
                naive_in += d["tokens"]["input"] - d["tokens"]["cached"]
    assert naive_in + 400 != truth[0]


# ----------------------------------------------------------------------------- Qwen, Amp, Copilot


def test_qwen_cached_inside_prompt_and_legacy(tmp_path: Path) -> None:
    root = tmp_path / "qwen"
    w_jsonl(
        root / "projects" / "p" / "chats" / "a.jsonl",
        [
            {
                "uuid": "u1",
                "sessionId": "q1",
                "timestamp": f"{T0}01.000Z",
                "type": "assistant",
                "model": "coder-model",
                "usageMetadata": {
                    "promptTokenCount": 1000,
                    "candidatesTokenCount": 50,
                    "thoughtsTokenCount": 10,
                    "totalTokenCount": 1050,
                    "cachedContentTokenCount": 800,
                },
            }
        ],
    )
    leg = root / "tmp" / "h" / "chats" / "session-x.json"
    leg.parent.mkdir(parents=True)
    leg.write_text(
        json.dumps(
            {
                "sessionId": "q2",
                "messages": [
                    {
                        "id": "m",
                        "type": "qwen",
                        "timestamp": f"{T0}02.000Z",
                        "model": "coder-model",
                        "tokens": {
                            "input": 300,
                            "output": 7,
                            "cached": 200,
                            "thoughts": 0,
                            "tool": 0,
                            "total": 307,
                        },
                    }
                ],
            }
        )
    )
    recs = collect(SOURCES["qwen"]({"QWEN_DATA_DIR": str(root)}))
    assert tot(recs) == (200 + 100, 57, 1000, 0)
    assert sum(r.total_tokens for r in recs) == 1050 + 307  # = totalTokenCount, cache once


def test_amp_ledger_not_added_to_messages(tmp_path: Path) -> None:
    th = tmp_path / "amp" / "threads"
    th.mkdir(parents=True)
    doc = {
        "id": "T-1",
        "messages": [
            {"role": "user", "messageId": 0},
            {
                "role": "assistant",
                "messageId": 1,
                "usage": {
                    "model": "claude-sonnet-4-5-20250929",
                    "inputTokens": 9,
                    "outputTokens": 80,
                    "cacheCreationInputTokens": 900,
                    "cacheReadInputTokens": 14000,
                    "credits": 0.9,
                },
            },
        ],
        "usageLedger": {
            "events": [
                {
                    "id": "e1",
                    "timestamp": f"{T0}01.000Z",
                    "model": "claude-sonnet-4-5-20250929",
                    "credits": 0.9,
                    "tokens": {"input": 9, "output": 80},
                    "toMessageId": 1,
                },
                {
                    "id": "e0",
                    "timestamp": f"{T0}00.000Z",
                    "model": "claude-3-5-haiku-20241022",
                    "credits": 0.05,
                    "tokens": {"input": 500, "output": 20},
                    "toMessageId": 0,
                },
            ]
        },
    }
    (th / "T-1.json").write_text(json.dumps(doc))
    recs = collect(SOURCES["amp"]({"AMP_DATA_DIR": str(tmp_path / "amp")}))
    assert tot(recs) == (509, 100, 14000, 900)
    assert sum(r.cost or 0 for r in recs) == pytest.approx(0.95 / 100)


def test_copilot_shutdown_totals_not_added_to_events(tmp_path: Path) -> None:
    sd = tmp_path / "copilot" / "session-state" / "c1"

    def shutdown(eid: str, inp: int, cr: int, cw: int, out: int) -> dict[str, Any]:
        return {
            "type": "session.shutdown",
            "id": eid,
            "timestamp": f"{T0}30.000Z",
            "data": {
                "modelMetrics": {
                    "claude-sonnet-4.6": {
                        "requests": {"count": 2},
                        "totalNanoAiu": 10**9,
                        "usage": {
                            "inputTokens": inp + cr + cw,
                            "outputTokens": out,
                            "cacheReadTokens": cr,
                            "cacheWriteTokens": cw,
                            "reasoningTokens": 3,
                        },
                    }
                }
            },
        }

    w_jsonl(
        sd / "events.jsonl",
        [
            {
                "type": "session.start",
                "id": "s",
                "timestamp": f"{T0}00.000Z",
                "data": {"sessionId": "c1", "context": {"cwd": "/w"}},
            },
            {
                "type": "assistant.message",
                "id": "a1",
                "timestamp": f"{T0}01.000Z",
                "data": {"model": "claude-sonnet-4.6", "outputTokens": 40},
            },
            shutdown("x1", 10, 1000, 100, 40),
            {
                "type": "session.start",
                "id": "s2",
                "timestamp": f"{T0}40.000Z",
                "data": {"sessionId": "c1"},
            },
            {
                "type": "assistant.message",
                "id": "a2",
                "timestamp": f"{T0}41.000Z",
                "data": {"model": "claude-sonnet-4.6", "outputTokens": 5},
            },
            shutdown("x2", 1, 200, 0, 5),  # a resumed run: its own snapshot, added
        ],
    )
    recs = collect(SOURCES["copilot"]({"COPILOT_HOME": str(tmp_path / "copilot")}))
    assert tot(recs) == (11, 45, 1200, 100)
    assert sum(r.cost or 0 for r in recs) == pytest.approx(2 * 10**9 / 1e11)


def test_opencode_db_row_wins_over_legacy_json(tmp_path: Path) -> None:
    root = tmp_path / "opencode"
    (root / "storage" / "message" / "ses_1").mkdir(parents=True)
    msg = {
        "id": "msg_1",
        "sessionID": "ses_1",
        "role": "assistant",
        "modelID": "m",
        "time": {"created": 1772359200000},
        "cost": 0.5,
        "tokens": {"input": 10, "output": 20, "reasoning": 5, "cache": {"read": 30, "write": 40}},
    }
    (root / "storage" / "message" / "ses_1" / "msg_1.json").write_text(json.dumps(msg))
    con = sqlite3.connect(root / "opencode.db")
    con.execute(
        "CREATE TABLE message (id text primary key, session_id text, time_created int, "
        "time_updated int, data text)"
    )
    con.execute(
        "INSERT INTO message VALUES (?,?,?,?,?)",
        (
            "msg_1",
            "ses_1",
            1,
            1,
            json.dumps({k: v for k, v in msg.items() if k not in ("id", "sessionID")}),
        ),
    )
    con.commit()
    con.close()
    recs = collect(SOURCES["opencode"]({"OPENCODE_DATA_DIR": str(root)}))
    assert len(recs) == 1 and recs[0].origin.endswith("opencode.db")
    assert tot(recs) == (10, 25, 30, 40) and recs[0].reasoning_tokens == 5


def test_codex_official_rate_limits_are_the_latest_written(tmp_path: Path) -> None:
    day = tmp_path / "codex" / "sessions" / "2026" / "03" / "01"

    def limits(sec: int, pct: float) -> dict[str, Any]:
        return {
            "timestamp": f"{T0}{sec:02d}.000Z",
            "type": "event_msg",
            "payload": {
                "type": "token_count",
                "info": None,
                "rate_limits": {
                    "primary": {"used_percent": pct, "window_minutes": 300, "resets_at": 1},
                    "secondary": {"used_percent": 1.0, "window_minutes": 10080, "resets_at": 2},
                },
            },
        }

    w_jsonl(day / "rollout-1.jsonl", [meta("1"), limits(5, 10.0), limits(9, 12.5)])
    w_jsonl(day / "rollout-2.jsonl", [meta("2"), limits(7, 11.0)])
    src = SOURCES["codex"]({"CODEX_HOME": str(tmp_path / "codex")})
    from tokmon.sources.codex import CodexSource
    from tokmon.sources.collect import SourceReader

    reader = SourceReader(src)
    reader.refresh()
    rl = CodexSource.rate_limits(reader.states)
    assert rl is not None and rl["primary"]["used_percent"] == 12.5
    assert rl["observedAt"] == f"{T0}09.000Z"
    assert reader.usage() == []  # info: null carries no usage


def test_bad_input_is_skipped_and_the_rest_counted(tmp_path: Path) -> None:
    """Broken lines, wrong types, a non-JSON document and a non-SQLite database: no
    exception; everything else is counted."""
    home = tmp_path / "codex"
    day = home / "sessions" / "2026" / "03" / "01"
    good = CodexGen.tc(5, [100, 0, 10, 0], [100, 0, 10, 0])
    bad_types = CodexGen.tc(6, [200, 0, 20, 0], [200, 0, 20, 0])
    bad_types["payload"]["info"]["last_token_usage"]["input_tokens"] = "lots"
    bad_types["payload"]["info"]["total_token_usage"]["input_tokens"] = "lots"
    day.mkdir(parents=True)
    (day / "rollout-x.jsonl").write_bytes(
        b'{"type": "token_count" not json\n\xff\xfe garbage token_count\n'
        + json.dumps(good).encode()
        + b"\n"
        + json.dumps(bad_types).encode()
        + b"\n[1, 2, 3]\n"
    )
    recs = collect(SOURCES["codex"]({"CODEX_HOME": str(home)}))
    assert [(r.input_tokens, r.output_tokens) for r in recs] == [(100, 10), (0, 20)]

    tmp = tmp_path / "gemini"
    (tmp / "p" / "chats").mkdir(parents=True)
    (tmp / "p" / "chats" / "session-a.json").write_text("[not json")
    (tmp / "p" / "chats" / "session-b.json").write_text("[1, 2]")
    w_jsonl(
        tmp / "p" / "chats" / "session-c.jsonl", [{"sessionId": "c"}, gmsg("m", 1, 10, 0, 1, 0)]
    )
    assert tot(collect(SOURCES["gemini"]({"GEMINI_DATA_DIR": str(tmp)}))) == (10, 1, 0, 0)

    oc = tmp_path / "opencode"
    oc.mkdir()
    (oc / "opencode.db").write_bytes(b"this is not a database" * 100)
    assert collect(SOURCES["opencode"]({"OPENCODE_DATA_DIR": str(oc)})) == []

    amp = tmp_path / "amp" / "threads"
    amp.mkdir(parents=True)
    (amp / "T-1.json").write_text('{"id": "T-1", "usageLedger": {"events": [{"tokens": 5}]}}')
    assert collect(SOURCES["amp"]({"AMP_DATA_DIR": str(tmp_path / "amp")})) == []


def test_cli_agent_list_matches_the_sources() -> None:
    from tokmon.cli.agents import AGENTS

    assert AGENTS == {name: cls.label for name, cls in SOURCES.items()}
