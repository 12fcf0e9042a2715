#!/usr/bin/env python3
"""Benchmark ``tokmon serve``: push latency, memory after indexing, idle CPU.

    python bench/bench_server.py [--mb 500] [--corpus DIR] [--keep DIR] [--appends 40]
                                 [--idle 30] [--jsonl] [--json]

Generates a corpus (``tokmon.demo.generator.generate``; or uses ``--corpus``, a Claude config
dir that will receive one extra transcript, deleted afterwards), starts the server as a real
subprocess with a fresh TOKMON_HOME (LSP over stdio, or ``--jsonl``), and measures:

* first scan: from spawn to the first ``tokmon/summary`` answer (cold index)
* RSS of the server process after indexing (target <= 120 MB)
* append-to-notification latency: append one assistant line to a transcript, time until the
  ``tokmon/usageChanged`` carrying the new totals arrives (median <= 50 ms, p95 <= 100 ms)
* CPU time (user + system) of the server over ``--idle`` idle seconds (target <= 0.3 s)

Prints the figures and PASS/FAIL per target; exit code 1 if any target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"latency_median_ms": 50.0, "latency_p95_ms": 100.0, "rss_mb": 120.0, "idle_cpu_s": 0.3}


class Client:
    """A minimal LSP or JSON-lines client over the server's pipes (reader thread)."""

    def __init__(self, proc: subprocess.Popen[bytes], jsonl: bool) -> None:
        self.proc, self.jsonl = proc, jsonl
        self.inbox: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self._id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            msg = self._read_one(out)
            if msg is None:
                return
            self.inbox.put((time.monotonic(), msg))

    def _read_one(self, out: IO[bytes]) -> dict[str, Any] | None:
        if self.jsonl:
            line = out.readline()
            return json.loads(line) if line else None
        length = 0
        while True:
            line = out.readline()
            if not line:
                return None
            if line == b"\r\n":
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(out.read(length))

    def send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        data = body + b"\n" if self.jsonl else b"Content-Length: %d\r\n\r\n" % len(body) + body
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any = None, timeout: float = 600) -> Any:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if not self.jsonl:
            msg["jsonrpc"] = "2.0"
        self.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            _, m = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            if m.get("id") == self._id and "method" not in m:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result")

    def notify(self, method: str, params: Any = None) -> None:
        msg: dict[str, Any] = {"method": method, "params": params}
        if not self.jsonl:
            msg["jsonrpc"] = "2.0"
        self.send(msg)


def _usage_line(session: str, cwd: str, inp: int, out: int) -> str:
    from datetime import datetime, timezone

    n = uuid.uuid4().hex
    dt = datetime.now(timezone.utc)
    ts = dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return (
        json.dumps(
            {
                "parentUuid": None,
                "isSidechain": False,
                "userType": "external",
                "cwd": cwd,
                "sessionId": session,
                "version": "2.1.7",
                "type": "assistant",
                "uuid": n,
                "timestamp": ts,
                "requestId": f"req_bench{n}",
                "message": {
                    "id": f"msg_bench{n}",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5-20250929",
                    "content": [{"type": "text", "text": "ok"}],
                    "usage": {
                        "input_tokens": inp,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": out,
                    },
                },
            },
            separators=(",", ":"),
        )
        + "\n"
    )


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tokmon-bench-srv-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    try:
        if args.corpus:
            corpus = Path(args.corpus)
        else:
            corpus = work / "corpus"
            if not (corpus / "projects").is_dir() or not any((corpus / "projects").iterdir()):
                from tokmon.demo.generator import generate

                t = time.perf_counter()
                generate(corpus, size_mb=args.mb)
                print(
                    f"generated {args.mb} MB corpus in {time.perf_counter() - t:.1f}s",
                    file=sys.stderr,
                )
        size = sum(p.stat().st_size for p in (corpus / "projects").rglob("*.jsonl"))
        figures["corpus_mb"] = round(size / 2**20, 1)
        home = work / "tokmon-home"
        shutil.rmtree(home, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
        env.update({"TOKMON_HOME": str(home), "CLAUDE_CONFIG_DIR": str(corpus)})
        project = sorted(p for p in (corpus / "projects").iterdir() if p.is_dir())[0]
        bench_file = project / f"bench-{uuid.uuid4()}.jsonl"
        session, cwd = str(uuid.uuid4()), "/tmp/tokmon-bench-project"
        cmd = [sys.executable, "-m", "tokmon", "serve"] + (["--jsonl"] if args.jsonl else [])
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        client = Client(proc, args.jsonl)
        try:
            if not args.jsonl:
                client.request(
                    "initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}}
                )
                client.notify("initialized", {})
            summary = client.request("tokmon/summary", {})
            figures["first_scan_s"] = round(time.monotonic() - t0, 2)
            figures["sessions"] = len(client.request("tokmon/sessions", {})["sessions"])
            ps = psutil.Process(proc.pid)
            time.sleep(1.0)  # let the watcher settle
            figures["rss_mb"] = round(ps.memory_info().rss / 2**20, 1)
            base = summary["totals"]["inputTokens"]
            # append-to-notification latency
            lat: list[float] = []
            expected = base
            for i in range(args.appends):
                k = 1000 + i
                expected += k
                while not client.inbox.empty():
                    client.inbox.get_nowait()
                t = time.monotonic()
                with open(bench_file, "a", encoding="utf-8") as fh:
                    fh.write(_usage_line(session, cwd, k, 1))
                deadline = t + 10
                while True:
                    at, m = client.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
                    if (
                        m.get("method") == "tokmon/usageChanged"
                        and m["params"]["summary"]["totals"]["inputTokens"] == expected
                    ):
                        lat.append((at - t) * 1000)
                        break
                time.sleep(args.gap)
            figures["latency_median_ms"] = round(statistics.median(lat), 1)
            figures["latency_p95_ms"] = round(_pct(lat, 0.95), 1)
            figures["latency_max_ms"] = round(max(lat), 1)
            figures["rss_after_appends_mb"] = round(ps.memory_info().rss / 2**20, 1)
            # idle CPU
            time.sleep(2.0)
            c0 = ps.cpu_times()
            time.sleep(args.idle)
            c1 = ps.cpu_times()
            figures["idle_seconds"] = args.idle
            figures["idle_cpu_s"] = round((c1.user - c0.user) + (c1.system - c0.system), 3)
        finally:
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            figures["exit_code"] = proc.returncode
            bench_file.unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=500, help="generated corpus size (MiB)")
    ap.add_argument("--corpus", help="use this Claude config dir instead of generating one")
    ap.add_argument("--keep", help="work dir to keep (reuses a generated corpus there)")
    ap.add_argument("--appends", type=int, default=40, help="number of timed appends")
    ap.add_argument("--gap", type=float, default=0.15, help="seconds between appends")
    ap.add_argument("--idle", type=float, default=30, help="idle seconds for the CPU figure")
    ap.add_argument("--jsonl", action="store_true", help="JSON-lines mode instead of LSP")
    ap.add_argument("--json", action="store_true", help="print figures as JSON")
    args = ap.parse_args(argv)
    figures = run(args)
    ok = True
    checks = {k: figures[k] <= v for k, v in TARGETS.items() if k in figures}
    if args.json:
        print(json.dumps({"figures": figures, "targets": TARGETS, "pass": checks}, indent=2))
    else:
        mode = "jsonl" if args.jsonl else "lsp"
        print(f"tokmon serve ({mode}) on {figures['corpus_mb']} MB, {figures['sessions']} sessions")
        print(f"  first scan (cold index):      {figures['first_scan_s']:.2f} s")
        for key, label, unit in [
            ("rss_mb", "RSS after indexing", "MB"),
            ("latency_median_ms", "append->push median", "ms"),
            ("latency_p95_ms", "append->push p95", "ms"),
            ("idle_cpu_s", f"CPU over {args.idle:.0f} idle s", "s"),
        ]:
            verdict = "PASS" if checks[key] else "FAIL"
            print(
                f"  {label + ':':<30}{figures[key]:>8} {unit:<3} (target <= {TARGETS[key]}) "
                f"{verdict}"
            )
        print(
            f"  append->push max:             {figures['latency_max_ms']} ms; RSS after "
            f"appends {figures['rss_after_appends_mb']} MB; exit code {figures['exit_code']}"
        )
    ok = all(checks.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
