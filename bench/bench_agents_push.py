#!/usr/bin/env python3
"""Append-to-push latency of other agents' logs beside Claude Code's, in one server run.

    python bench/bench_agents_push.py [--agents-corpus DIR] [--claude-corpus DIR]
                                      [--appends 20] [--gap 0.3] [--json]

Copies the real agents' corpus (``--agents-corpus``, default ``$TOKMON_AGENTS_CORPUS``: Codex,
Gemini CLI and OpenCode) and a Claude config dir (``--claude-corpus``, default
``$TOKMON_TEST_CORPUS``; without one, a single generated transcript) into a temporary folder,
starts ``tokmon serve --jsonl`` on the copies (fresh ``TOKMON_HOME``), and then, round after
round in rotating order, makes one change of each kind and times it until the
``tokmon/usageChanged`` whose summary carries the new total arrives:

* claude:   one assistant line appended to a transcript
* codex:    one ``token_count`` event (a new running total) appended to a rollout
* gemini:   one ``gemini`` message appended to a chat
* opencode: one assistant ``message`` row inserted into ``opencode.db`` (SQLite, committed)

Prints the median, p95 and max per kind, the ratio of each median to Claude's (same run,
interleaved, so machine load hits all kinds alike) and the load average. No pass/fail: the
issue asks for the same latency as Claude transcripts, which the ratios show.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

KINDS = ("claude", "codex", "gemini", "opencode")
CLAUDE_SESSION = "bbbbbbbb-0000-4000-8000-000000000001"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _append(path: Path, obj: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
        fh.flush()


class Changes:
    """The four kinds of change, each adding a known number of tokens to its agent."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.n = 0
        self.claude = work / "claude" / "projects" / "-bench-push" / f"{CLAUDE_SESSION}.jsonl"
        self.claude.parent.mkdir(parents=True, exist_ok=True)
        self.codex = sorted((work / "codex").rglob("rollout-*.jsonl"))[-1]
        self.gemini = sorted((work / "gemini").rglob("session-*.jsonl"))[-1]
        self.opencode = work / "opencode" / "opencode.db"

    def make(self, kind: str) -> int:
        """Make one change of ``kind``; returns the tokens it adds."""
        self.n += 1
        n, now = self.n, time.time()
        if kind == "claude":
            _append(self.claude, {
                "type": "assistant", "sessionId": CLAUDE_SESSION, "cwd": "/bench/push",
                "timestamp": _iso(now), "requestId": f"req_push{n}", "uuid": f"u-push{n}",
                "message": {"id": f"msg_push{n}", "type": "message", "role": "assistant",
                            "model": "claude-sonnet-4-5-20250929",
                            "usage": {"input_tokens": 100 + n, "output_tokens": 7,
                                      "cache_creation_input_tokens": 0,
                                      "cache_read_input_tokens": 0}}})  # fmt: skip
            return 107 + n
        if kind == "codex":

            def u(x: int) -> dict[str, int]:
                return {"input_tokens": x, "cached_input_tokens": 0, "output_tokens": 7,
                        "reasoning_output_tokens": 0, "total_tokens": x + 7}  # fmt: skip

            _append(self.codex, {
                "timestamp": _iso(now), "type": "event_msg",
                "payload": {"type": "token_count",
                            "info": {"total_token_usage": u(10**9 + n * 1000),
                                     "last_token_usage": u(100 + n)}}})  # fmt: skip
            return 107 + n
        if kind == "gemini":
            _append(self.gemini, {
                "id": f"push-{n}", "timestamp": _iso(now), "type": "gemini",
                "model": "gemini-2.5-flash",
                "tokens": {"input": 100 + n, "output": 7, "cached": 0, "thoughts": 0, "tool": 0,
                           "total": 107 + n}})  # fmt: skip
            return 107 + n
        con = sqlite3.connect(self.opencode)
        try:
            sid, mark = con.execute("SELECT session_id, MAX(time_updated) FROM message").fetchone()
            data = {"role": "assistant", "time": {"created": int(now * 1000)}, "modelID": "m",
                    "cost": 0.0, "tokens": {"input": 100 + n, "output": 7, "reasoning": 0,
                                            "cache": {"read": 0, "write": 0}}}  # fmt: skip
            con.execute(
                "INSERT INTO message VALUES (?,?,?,?,?)",
                (f"msg_push{n}", sid, int(now * 1000), mark + 1, json.dumps(data)),
            )
            con.commit()
        finally:
            con.close()
        return 107 + n


class Server:
    """``tokmon serve --jsonl`` with a reader thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tokmon", "serve", "--jsonl"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        self.lines: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            t = time.perf_counter()
            try:
                self.lines.put((t, json.loads(raw)))
            except ValueError:
                pass

    def _next(
        self, want: Callable[[dict[str, Any]], bool], timeout: float
    ) -> tuple[float, dict[str, Any]] | None:
        """The first message ``want`` accepts, with its perf_counter time (None: none in time)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                t, msg = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if want(msg):
                return t, msg
        return None

    def call(self, rid: int, method: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": rid, "method": method}) + "\n").encode())
        self.proc.stdin.flush()
        got = self._next(lambda msg: msg.get("id") == rid, timeout)
        if got is None:
            raise SystemExit(f"no answer to {method} within {timeout:.0f} s")
        return got[1]

    def wait_total(self, agent: str, total: int, timeout: float) -> float:
        """perf_counter time of the usageChanged whose summary shows ``agent`` at ``total``."""

        def shows(msg: dict[str, Any]) -> bool:
            if msg.get("method") != "tokmon/usageChanged":
                return False
            agents = ((msg.get("params") or {}).get("summary") or {}).get("agents") or {}
            return (agents.get(agent) or {}).get("totals", {}).get("totalTokens") == total

        got = self._next(shows, timeout)
        if got is None:
            raise SystemExit(f"no usageChanged with {agent} at {total} within {timeout:.0f} s")
        return got[0]

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o700 if p.is_dir() else 0o600)
    return dst


def run(args: argparse.Namespace) -> dict[str, Any]:
    agents = Path(args.agents_corpus)
    if not (agents / "codex").is_dir():
        raise SystemExit(f"agents corpus not found at {agents} (--agents-corpus)")
    with tempfile.TemporaryDirectory(prefix="tokmon-agents-push-") as tmp:
        work = Path(tmp)
        if args.claude_corpus and (Path(args.claude_corpus) / "projects").is_dir():
            _copy(Path(args.claude_corpus), work / "claude")
        _copy(agents / "codex", work / "codex")
        _copy(agents / "gemini" / "tmp", work / "gemini")
        _copy(agents / "opencode", work / "opencode")
        changes = Changes(work)
        changes.make("claude")  # a transcript to start with (the corpus may have none)
        (work / "home").mkdir()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TOKMON_", "CLAUDE_", "CODEX_", "GEMINI_", "OPENCODE_",
                                    "QWEN_", "AMP_", "COPILOT_"))}  # fmt: skip
        env.update(
            HOME=str(work / "home"), TOKMON_HOME=str(work / "tokmon"), TZ="UTC",
            CLAUDE_CONFIG_DIR=str(work / "claude"), CODEX_HOME=str(work / "codex"),
            GEMINI_DATA_DIR=str(work / "gemini"), OPENCODE_DATA_DIR=str(work / "opencode"),
            PYTHONUNBUFFERED="1",
        )  # fmt: skip
        server = Server(env)
        lat: dict[str, list[float]] = {k: [] for k in KINDS}
        try:
            t0 = time.perf_counter()
            s = server.call(1, "tokmon/summary", timeout=300)["result"]
            first = time.perf_counter() - t0
            totals = {a: v["totals"]["totalTokens"] for a, v in s["agents"].items()}
            missing = [k for k in KINDS if k not in totals]
            if missing:
                raise SystemExit(f"the server does not see {missing}")
            time.sleep(1.0)  # the watcher is up and idle
            for r in range(args.appends):
                order = KINDS[r % len(KINDS) :] + KINDS[: r % len(KINDS)]
                for kind in order:
                    # the clock starts before the change: taken after it, a push that arrived
                    # while this process was not scheduled would time as negative
                    start = time.perf_counter()
                    totals[kind] += changes.make(kind)
                    got = server.wait_total(kind, totals[kind], timeout=60)
                    lat[kind].append((got - start) * 1000)
                    time.sleep(args.gap)
        finally:
            server.stop()
    out: dict[str, Any] = {"first_summary_s": round(first, 2), "appends": args.appends}
    base = statistics.median(lat["claude"])
    for kind, xs in lat.items():
        xs.sort()
        med = statistics.median(xs)
        out[kind] = {
            "median_ms": round(med, 1),
            "p95_ms": round(xs[min(len(xs) - 1, int(0.95 * len(xs)))], 1),
            "max_ms": round(xs[-1], 1),
            "vs_claude": round(med / base, 2) if base else None,
        }
    out["loadavg"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents-corpus", default=os.environ.get("TOKMON_AGENTS_CORPUS", ""))
    ap.add_argument("--claude-corpus", default=os.environ.get("TOKMON_TEST_CORPUS", ""))
    ap.add_argument("--appends", type=int, default=20, help="rounds (one change of each kind)")
    ap.add_argument("--gap", type=float, default=0.3, help="seconds between changes")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = run(args)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"first summary (cold index): {res['first_summary_s']} s; "
          f"{res['appends']} changes of each kind, interleaved")  # fmt: skip
    print(f"{'kind':<10}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'vs claude':>11}")
    for kind in KINDS:
        r = res[kind]
        print(f"{kind:<10}{r['median_ms']:>11}{r['p95_ms']:>9}{r['max_ms']:>9}"
              f"{r['vs_claude']:>10}x")  # fmt: skip
    print(f"load average: {res['loadavg']}")


if __name__ == "__main__":
    main()
