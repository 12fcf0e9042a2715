#!/usr/bin/env python3
"""Generate a mixed Claude Code + Codex CLI + Gemini CLI corpus with its ground truth.

    python bench/gen_agents_corpus.py DEST --mb 500 [--seed 0] [--split 50/25/25]
                                       [--days 30] [--end 2026-11-01T17:00:00Z]

Writes, below DEST (which must be empty or absent):

* ``claude/projects/...``    Claude transcripts (tokmon.demo, as bench/gen_corpus.py);
                             use ``claude`` as CLAUDE_CONFIG_DIR
* ``codex/sessions/YYYY/MM/DD/rollout-*.jsonl``  Codex rollouts; use ``codex`` as CODEX_HOME
* ``gemini/tmp/<hash>/chats/session-*.jsonl``    Gemini chats; use ``gemini/tmp`` as
                             GEMINI_DATA_DIR
* ``expected-agents.json``   the truth per agent (totals, per day, per session), in tokmon's
                             normalised meanings: input without cache reads, output with
                             reasoning/thoughts, total = input + output + cache read + write.

The Codex and Gemini files follow the real logs in ``shared/corpus/agents`` (see
docs/agents/codex.md, gemini.md): a rollout has ``session_meta``, per turn ``turn_context``
(the model) and ``event_msg``/``token_count`` events with a cumulative
``total_token_usage`` and the turn's ``last_token_usage``; Codex re-emits an unchanged total
(with fresh ``rate_limits``) which must not count again, and the running total starts again
inside some files (a naive last-total-per-file sum undercounts); big ``response_item`` lines
(function-call output, encrypted reasoning) carry most of the bytes. A Gemini chat starts with
a session header, then user and ``gemini`` messages with ``tokens{input (with cached), output,
cached, thoughts, tool, total}``, ``$set`` lines, and messages re-appended with the same id
once their tool calls finish (the last copy wins; tokens unchanged, as in the real logs).

By default the corpus holds none of the cases where ccusage 20.0.24 counts twice, so ccusage
and tokmon should both equal the truth. ``--gemini-copies N`` adds one: N chat files also
kept in a second, project-named folder (as Gemini CLI did when it moved from hash-named to
project-named folders); ccusage adds both copies, the truth counts the session once and
records ccusage's excess as ``agents.gemini.ccusage_overcount``. Deterministic for a given
seed, size, split, copies and end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_corpus import end_time  # noqa: E402

DEFAULT_END = "2026-11-01T17:00:00Z"
TRUTH_FILE = "expected-agents.json"
FIELDS = ("input", "output", "cache_read", "cache_write", "reasoning", "total", "records")
CODEX_MODELS = ("gpt-5-codex", "gpt-5-codex", "gpt-5")
GEMINI_MODELS = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash")
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"


@dataclass
class Totals:
    """Summed normalised token counters of a set of records."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    total: int = 0
    records: int = 0

    def add(self, inp: int, out: int, cache_read: int, reasoning: int) -> None:
        """Add one record (no cache writes for Codex and Gemini)."""
        self.input += inp
        self.output += out
        self.cache_read += cache_read
        self.reasoning += reasoning
        self.total += inp + out + cache_read
        self.records += 1

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in FIELDS}


@dataclass
class AgentTruth:
    """Truth of one agent: totals, per UTC day, per session, and what was written."""

    totals: Totals = field(default_factory=Totals)
    daily: dict[str, Totals] = field(default_factory=dict)
    sessions: dict[str, Totals] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    lines: int = 0
    ignored_events: int = 0  # Codex: re-emitted token_count; Gemini: re-appended copies
    resets: int = 0  # Codex: running totals that start again inside a file

    def add(self, ts: datetime, sid: str, inp: int, out: int, cache: int, reasoning: int) -> None:
        self.totals.add(inp, out, cache, reasoning)
        self.daily.setdefault(ts.strftime("%Y-%m-%d"), Totals()).add(inp, out, cache, reasoning)
        self.sessions.setdefault(sid, Totals()).add(inp, out, cache, reasoning)

    def as_dict(self) -> dict[str, Any]:
        return {
            "totals": self.totals.as_dict(),
            "daily": {d: t.as_dict() for d, t in sorted(self.daily.items())},
            "sessions": {s: t.as_dict() for s, t in sorted(self.sessions.items())},
            "files": self.files,
            "bytes": self.bytes,
            "lines": self.lines,
            "ignored_events": self.ignored_events,
            "resets": self.resets,
        }


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class _Filler:
    """Deterministic, cheap filler text of a given length (pre-built pool, random slices)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words = [
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
            for _ in range(400)
        ]
        self.text = " ".join(rng.choice(words) for _ in range(60_000))
        self.b64 = "".join(rng.choice(_ALNUM) for _ in range(200_000))

    def words(self, n: int) -> str:
        n = max(1, min(n, len(self.text) - 1))
        i = self.rng.randrange(0, len(self.text) - n)
        return self.text[i : i + n]

    def blob(self, n: int) -> str:
        n = max(1, min(n, len(self.b64) - 1))
        i = self.rng.randrange(0, len(self.b64) - n)
        return self.b64[i : i + n]


def _session_starts(rng: random.Random, end: datetime, days: float) -> Iterator[datetime]:
    span = days * 86400.0
    while True:
        yield end - timedelta(seconds=rng.uniform(0.0, span * 0.98) + 3600.0)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# ---------------------------------------------------------------- Codex


def _codex_session(
    root: Path, rng: random.Random, fill: _Filler, start: datetime, truth: AgentTruth
) -> None:
    sid = _uuid(rng)
    name = f"rollout-{start.strftime('%Y-%m-%dT%H-%M-%S')}-{sid}.jsonl"
    folder = root / "sessions" / start.strftime("%Y/%m/%d")
    folder.mkdir(parents=True, exist_ok=True)
    cwd = f"/home/user/src/{fill.words(8).replace(' ', '-')}"
    model = rng.choice(CODEX_MODELS)
    t = start
    lines: list[str] = []

    def emit(kind: str, payload: dict[str, Any]) -> None:
        lines.append(_dump({"timestamp": _iso(t), "type": kind, "payload": payload}))

    emit(
        "session_meta",
        {
            "id": sid,
            "timestamp": _iso(start),
            "cwd": cwd,
            "originator": "codex_cli_rs",
            "cli_version": "0.58.0",
            "instructions": None,
            "source": "cli",
            "model_provider": "openai",
            "base_instructions": {"text": fill.words(rng.randint(8_000, 20_000))},
            "git": {"commit_hash": fill.blob(40), "branch": "main", "repository_url": ""},
        },
    )
    cum = {k: 0 for k in ("input", "cached", "output", "reasoning")}
    context = rng.randint(6_000, 14_000)
    used = [rng.uniform(1, 20), rng.uniform(1, 10)]
    resets = [int(start.timestamp()) + 18_000, int(start.timestamp()) + 604_800]

    def usage(inp: int, cached: int, out: int, reas: int) -> dict[str, int]:
        return {
            "input_tokens": inp,
            "cached_input_tokens": cached,
            "output_tokens": out,
            "reasoning_output_tokens": reas,
            "total_tokens": inp + out,
        }

    def token_count(last: dict[str, int] | None) -> None:
        rl = {
            "primary": {"used_percent": round(used[0], 1), "window_minutes": 300,
                        "resets_at": resets[0]},
            "secondary": {"used_percent": round(used[1], 1), "window_minutes": 10080,
                          "resets_at": resets[1]},
            "credits": None,
            "plan_type": "plus",
        }  # fmt: skip
        total = usage(cum["input"], cum["cached"], cum["output"], cum["reasoning"])
        info = {
            "total_token_usage": total,
            "last_token_usage": last if last is not None else total,
            "model_context_window": 272000,
        }
        emit("event_msg", {"type": "token_count", "info": info, "rate_limits": rl})

    for turn in range(rng.randint(2, 8)):
        turn_id = _uuid(rng)
        t += timedelta(seconds=rng.uniform(20, 600))
        if turn and rng.random() < 0.2:  # the running total starts again (as real logs do)
            cum = dict.fromkeys(cum, 0)
            truth.resets += 1
        emit("event_msg", {"type": "task_started", "turn_id": turn_id,
                           "model_context_window": 272000})  # fmt: skip
        emit(
            "turn_context",
            {
                "turn_id": turn_id,
                "cwd": cwd,
                "approval_policy": "on-request",
                "sandbox_policy": {"type": "workspace-write", "network_access": False},
                "model": model,
                "effort": "medium",
                "summary": "auto",
            },
        )
        prompt = fill.words(rng.randint(40, 1_500))
        emit("response_item", {"type": "message", "role": "user",
                               "content": [{"type": "input_text", "text": prompt}]})  # fmt: skip
        emit("event_msg", {"type": "user_message", "message": prompt, "images": []})
        if rng.random() < 0.5:  # the rate-limit-only event a turn often starts with
            emit("event_msg", {"type": "token_count", "info": None, "rate_limits": None})
        for _step in range(rng.randint(2, 12)):
            t += timedelta(seconds=rng.uniform(2, 40))
            emit(
                "response_item",
                {"type": "reasoning", "summary": [], "content": None,
                 "encrypted_content": fill.blob(rng.randint(800, 9_000))},
            )  # fmt: skip
            call = f"call_{fill.blob(24)}"
            emit(
                "response_item",
                {"type": "function_call", "name": "shell",
                 "arguments": _dump({"command": ["bash", "-lc", fill.words(rng.randint(20, 300))]}),
                 "call_id": call},
            )  # fmt: skip
            out_text = fill.words(rng.randint(300, 30_000))
            emit(
                "event_msg",
                {"type": "exec_command_end", "call_id": call, "stdout": "", "stderr": "",
                 "aggregated_output": out_text[: len(out_text) // 3], "exit_code": 0,
                 "duration": {"secs": rng.randint(0, 9), "nanos": rng.randint(0, 10**9)},
                 "formatted_output": "", "status": "completed"},
            )  # fmt: skip
            emit("response_item", {"type": "function_call_output", "call_id": call,
                                   "output": out_text})  # fmt: skip
            # one API request: the prompt grows, most of it served from the cache
            context += rng.randint(300, 6_000)
            inp = context
            cached = int(inp * rng.uniform(0.55, 0.97)) // 128 * 128
            reas = rng.randint(0, 900)
            out = reas + rng.randint(20, 1_500)
            cum["input"] += inp
            cum["cached"] += cached
            cum["output"] += out
            cum["reasoning"] += reas
            used[0] = min(100.0, used[0] + rng.uniform(0, 0.6))
            token_count(usage(inp, cached, out, reas))
            truth.add(t, sid, inp - cached, out, cached, reas)
            while rng.random() < 0.45:  # Codex re-emits the unchanged running total
                t += timedelta(milliseconds=rng.randint(5, 900))
                token_count(usage(inp, cached, out, reas))
                truth.ignored_events += 1
        t += timedelta(seconds=rng.uniform(1, 10))
        emit("event_msg", {"type": "agent_message", "message": fill.words(rng.randint(50, 2_000))})
        emit("event_msg", {"type": "task_complete", "turn_id": turn_id,
                           "last_agent_message": fill.words(80)})  # fmt: skip
    data = ("\n".join(lines) + "\n").encode()
    (folder / name).write_bytes(data)
    truth.files += 1
    truth.bytes += len(data)
    truth.lines += len(lines)


# ---------------------------------------------------------------- Gemini


def _gemini_session(
    root: Path, rng: random.Random, fill: _Filler, start: datetime, truth: AgentTruth,
    projects: list[str],
) -> tuple[Path, str]:  # fmt: skip
    sid = _uuid(rng)
    project = rng.choice(projects)
    folder = root / "tmp" / project / "chats"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"session-{start.strftime('%Y-%m-%dT%H-%M')}-{sid[:8]}.jsonl"
    t = start
    model = rng.choice(GEMINI_MODELS)
    lines = [
        _dump({"sessionId": sid, "projectHash": project, "startTime": _iso(t),
               "lastUpdated": _iso(t), "kind": "main"})
    ]  # fmt: skip
    context = rng.randint(5_000, 12_000)
    for _turn in range(rng.randint(2, 10)):
        t += timedelta(seconds=rng.uniform(20, 900))
        lines.append(_dump({"id": _uuid(rng), "timestamp": _iso(t), "type": "user",
                            "content": [{"text": fill.words(rng.randint(30, 1_200))}]}))  # fmt: skip
        lines.append(_dump({"$set": {"lastUpdated": _iso(t)}}))
        for _step in range(rng.randint(1, 8)):
            t += timedelta(seconds=rng.uniform(1, 30))
            context += rng.randint(200, 5_000)
            inp = context
            cached = int(inp * rng.uniform(0.0, 0.9)) if rng.random() < 0.8 else 0
            out = rng.randint(5, 1_200)
            thoughts = rng.randint(0, 1_500) if rng.random() < 0.7 else 0
            tokens = {"input": inp, "output": out, "cached": cached, "thoughts": thoughts,
                      "tool": 0, "total": inp + out + thoughts}  # fmt: skip
            mid = _uuid(rng)
            msg: dict[str, Any] = {
                "id": mid,
                "timestamp": _iso(t),
                "type": "gemini",
                "content": fill.words(rng.randint(20, 3_000)),
                "thoughts": [
                    {
                        "subject": fill.words(30),
                        "description": fill.words(rng.randint(50, 800)),
                        "timestamp": _iso(t),
                    }
                    for _ in range(rng.randint(0, 3))
                ],  # fmt: skip
                "tokens": tokens,
                "model": model,
            }
            lines.append(_dump(msg))
            truth.add(t, sid, inp - cached, out + thoughts, cached, thoughts)
            if rng.random() < 0.6:  # tool calls finish: the message is re-appended, same id
                msg["toolCalls"] = [
                    {"id": f"read_file_{rng.getrandbits(40)}", "name": "read_file",
                     "args": {"file_path": fill.words(40)},
                     "result": [{"functionResponse": {"name": "read_file",
                                 "response": {"output": fill.words(rng.randint(200, 20_000))}}}],
                     "status": "success", "timestamp": _iso(t), "displayName": "ReadFile"}
                    for _ in range(rng.randint(1, 3))
                ]  # fmt: skip
                lines.append(_dump(msg))
                truth.ignored_events += 1
            lines.append(_dump({"$set": {"lastUpdated": _iso(t)}}))
    data = ("\n".join(lines) + "\n").encode()
    (folder / name).write_bytes(data)
    truth.files += 1
    truth.bytes += len(data)
    truth.lines += len(lines)
    return folder / name, sid


# ---------------------------------------------------------------- driver


def _copy_gemini(root: Path, files: list[tuple[Path, str]], truth: AgentTruth) -> dict[str, int]:
    """Keep ``files`` a second time in a project-named folder; return what ccusage adds."""
    over = Totals()
    folder = root / "tmp" / "bench-project" / "chats"
    folder.mkdir(parents=True, exist_ok=True)
    for path, sid in files:
        data = path.read_bytes()
        (folder / path.name).write_bytes(data)
        truth.files += 1
        truth.bytes += len(data)
        s = truth.sessions[sid]
        over.input += s.input
        over.output += s.output
        over.cache_read += s.cache_read
        over.reasoning += s.reasoning
        over.total += s.total
        over.records += s.records
    return over.as_dict()


def _split(text: str) -> tuple[float, float, float]:
    try:
        parts = [float(p) for p in text.split("/")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not A/B/C: {text!r}") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise argparse.ArgumentTypeError(f"need three non-negative shares: {text!r}")
    s = sum(parts)
    return parts[0] / s, parts[1] / s, parts[2] / s


def _claude_truth(exp: Any) -> dict[str, Any]:
    def conv(t: Any) -> dict[str, int]:
        return {
            "input": t.input_tokens,
            "output": t.output_tokens,
            "cache_read": t.cache_read_tokens,
            "cache_write": t.cache_creation_tokens,
            "reasoning": 0,
            "total": t.total_tokens,
            "records": t.entries,
        }

    return {
        "totals": conv(exp.totals),
        "daily": {d: conv(t) for d, t in sorted(exp.daily.items())},
        "sessions": {s: conv(v.totals) for s, v in sorted(exp.sessions.items())},
        "files": len(exp.files),
        "bytes": exp.total_bytes,
        "lines": None,
        "ignored_events": None,
    }


def generate(
    dest: Path,
    mb: float,
    seed: int = 0,
    split: tuple[float, float, float] = (0.5, 0.25, 0.25),
    days: float = 30.0,
    end: datetime | None = None,
    gemini_copies: int = 0,
) -> dict[str, Any]:
    """Write the corpus below ``dest`` and return (and write) its truth."""
    if mb <= 0 or days <= 0:
        raise ValueError("mb and days must be positive")
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty; use an empty destination")
    end = end or end_time(DEFAULT_END)
    dest.mkdir(parents=True, exist_ok=True)
    agents: dict[str, Any] = {}
    if split[0] > 0:
        from tokmon.demo import generate as claude_generate

        exp = claude_generate(dest / "claude", size_mb=mb * split[0], seed=seed, end=end, days=days)
        (dest / "claude" / "expected.json").write_bytes(exp.to_json())
        agents["claude"] = _claude_truth(exp)
    for agent, share in (("codex", split[1]), ("gemini", split[2])):
        if share <= 0:
            continue
        rng = random.Random(f"{seed}:{agent}")
        fill = _Filler(rng)
        truth = AgentTruth()
        root = dest / agent
        starts = _session_starts(rng, end, days)
        target = int(mb * share * 2**20)
        projects = [
            hashlib.sha256(f"{seed}:{i}".encode()).hexdigest() for i in range(rng.randint(4, 9))
        ]
        written: list[tuple[Path, str]] = []
        while truth.bytes < target:
            if agent == "codex":
                _codex_session(root, rng, fill, next(starts), truth)
            else:
                written.append(_gemini_session(root, rng, fill, next(starts), truth, projects))
        agents[agent] = truth.as_dict()
        if agent == "gemini" and gemini_copies > 0:
            agents[agent]["ccusage_overcount"] = _copy_gemini(root, written[:gemini_copies], truth)
            agents[agent]["copies"] = min(gemini_copies, len(written))
            agents[agent]["files"] = truth.files
            agents[agent]["bytes"] = truth.bytes
    result = {
        "seed": seed,
        "mb": mb,
        "split": list(split),
        "gemini_copies": gemini_copies,
        "days": days,
        "end": _iso(end),
        "env": {
            "CLAUDE_CONFIG_DIR": "claude",
            "CODEX_HOME": "codex",
            "GEMINI_DATA_DIR": "gemini/tmp",
        },
        "notes": (
            "tokmon's normalised meanings: input excludes cache reads, output includes "
            "reasoning (Codex) and thoughts (Gemini), total = input + output + cache read + "
            "cache write. ccusage reports Gemini's output without thoughts (its total has them)."
        ),
        "agents": agents,
    }
    (dest / TRUTH_FILE).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path, help="destination dir (created; must be empty)")
    ap.add_argument("--mb", type=float, required=True, help="total size in MiB")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", type=_split, default=(0.5, 0.25, 0.25),
                    help="Claude/Codex/Gemini shares (default 50/25/25)")  # fmt: skip
    ap.add_argument("--days", type=float, default=30.0, help="time span (default 30)")
    ap.add_argument("--end", type=end_time, default=end_time(DEFAULT_END),
                    help=f"last activity (default {DEFAULT_END}, for determinism)")  # fmt: skip
    ap.add_argument("--gemini-copies", type=int, default=0, metavar="N",
                    help="also keep N Gemini chats in a second folder (ccusage counts them "
                    "twice; default 0)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.mb <= 0 or args.days <= 0 or args.gemini_copies < 0:
        ap.error("--mb and --days must be positive")
    t0 = time.perf_counter()
    try:
        res = generate(
            args.dest, args.mb, args.seed, args.split, args.days, args.end, args.gemini_copies
        )
    except (OSError, ValueError) as exc:
        print(f"gen_agents_corpus: error: {exc}", file=sys.stderr)
        return 2
    for agent, a in res["agents"].items():
        print(
            f"{agent:7} {a['bytes'] / 2**20:8.1f} MiB {a['files']:6} files "
            f"{a['totals']['records']:8} records {a['totals']['total']:>16,} tokens"
        )
    print(f"{args.dest} in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
