#!/usr/bin/env python3
"""Benchmark ``tokmon serve``: push latency, memory after indexing, what a save costs, idle CPU.

    python bench/bench_server.py [--mb 500 [2000 ...]] [--corpus DIR] [--cache DIR]
                                 [--appends 40] [--saves 3] [--idle 30] [--jsonl] [--json]
                                 [--in-place]

For each ``--mb`` size it uses the generated corpus that bench/bench_engine.py caches (same
dir: ``${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}/corpus<MB>``, generated there when
missing; or ``--corpus``, a Claude config dir). The corpus is only read: the appends go to one
transcript in a private second config dir (CLAUDE_CONFIG_DIR=corpus,private). It starts the
server as a real subprocess with a fresh TOKMON_HOME (LSP over stdio, or ``--jsonl``) and
measures:

* first scan: from spawn to the first ``tokmon/summary`` answer (cold index)
* RSS of the server process after indexing (target <= 120 MB), and again after the timed
  appends (same bound: a live server must not grow with use)
* append-to-notification latency: append one assistant line, time until the
  ``tokmon/usageChanged`` carrying the new totals arrives (p95 <= 30 ms; median printed)
* what a save costs: bytes the server writes to files for one appended line, from the end of
  one quiet period (no writes for ``--settle`` s, so deferred saves are included) to the next,
  over ``--saves`` isolated appends (median; target <= 256 KiB: an appended line is ~1 KB,
  a whole-history rewrite is megabytes). Counted from the server's I/O counters (Linux
  ``/proc/<pid>/io`` write_chars through psutil, minus what it wrote to its stdout/stderr
  pipes); without such counters (macOS), the size of the files under TOKMON_HOME whose size
  or mtime changed stands in. Both are printed, with the bytes per append of the timed burst.
* CPU time (user + system) of the server over ``--idle`` idle seconds (target <= 0.3 s)
* what a client receives per append (issue #12, "pushes carry deltas"): the median
  ``tokmon/usageChanged`` size on the wire, of which the changed sessions' rows (and ``seq``);
  the size and time of the whole ``tokmon/sessions`` list that clients re-fetched on every push
  before; and so the bytes per append with the rows in the push vs with the re-fetch
* the summary's active sessions in the push: the client asks for active deltas
  (``tokmon/hello``; ``--full-active``: it does not, as an older client) and the push then
  carries no ``activeSessions``; ``--active N`` first makes N more sessions active (one line
  each, in the private dir) so the figure does not depend on when the corpus was generated;
  the server's CPU time per push (user + system over the timed appends, divided by them)

The server is this checkout installed as ``scripts/install.py`` installs it (a venv cached per
source hash under ``$TOKMON_BENCH_DIR/installed``: bench/_installed.py), started through its
``tokmon`` console script; ``--in-place`` starts ``python -m tokmon serve`` on the interpreter
running this script (the old way). The report names which.

Prints the figures, the machine load and PASS/FAIL per target; exit code 1 if any target
fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _installed import add_argument, resolve  # noqa: E402
from bench_engine import DiskShort, cached_corpus_dir, load_avg, prepare_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGETS = {
    "latency_p95_ms": 30.0,
    "rss_mb": 120.0,
    "rss_after_appends_mb": 120.0,  # the same bound once the server has been live a while
    "save_kib_per_append": 256.0,
    "idle_cpu_s": 0.3,
}


class Client:
    """A minimal LSP or JSON-lines client over the server's pipes (reader thread)."""

    def __init__(self, proc: subprocess.Popen[bytes], jsonl: bool) -> None:
        self.proc, self.jsonl = proc, jsonl
        # (arrival time, message, its size on the wire: the JSON body's bytes)
        self.inbox: queue.Queue[tuple[float, dict[str, Any], int]] = queue.Queue()
        self._id = 0
        self.bytes_read = 0  # all bytes read from the server's stdout (pipe, not file, writes)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            got = self._read_one(out)
            if got is None:
                return
            self.inbox.put((time.monotonic(), *got))

    def _read_one(self, out: IO[bytes]) -> tuple[dict[str, Any], int] | None:
        if self.jsonl:
            line = out.readline()
            self.bytes_read += len(line)
            return (json.loads(line), len(line)) if line else None
        length = 0
        while True:
            line = out.readline()
            self.bytes_read += len(line)
            if not line:
                return None
            if line == b"\r\n":
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = out.read(length)
        self.bytes_read += len(body)
        return json.loads(body), len(body)

    def send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        data = body + b"\n" if self.jsonl else b"Content-Length: %d\r\n\r\n" % len(body) + body
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any = None, timeout: float = 600) -> Any:
        return self.request_sized(method, params, timeout)[0]

    def request_sized(
        self, method: str, params: Any = None, timeout: float = 600
    ) -> tuple[Any, int]:
        """The result and the size of the response on the wire (bytes)."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if not self.jsonl:
            msg["jsonrpc"] = "2.0"
        self.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            _, m, size = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            if m.get("id") == self._id and "method" not in m:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result"), size

    def notify(self, method: str, params: Any = None) -> None:
        msg: dict[str, Any] = {"method": method, "params": params}
        if not self.jsonl:
            msg["jsonrpc"] = "2.0"
        self.send(msg)


def make_active(client: Client, private: Path, n: int, timeout: float = 120) -> int:
    """Write one line now into ``n`` new sessions of the private config dir; wait until a
    ``tokmon/summary`` lists them as active; returns how many sessions it lists."""
    d = private / "projects" / "-tmp-tokmon-bench-active"
    d.mkdir(parents=True, exist_ok=True)
    ids = []
    for _ in range(n):
        sid = str(uuid.uuid4())
        ids.append(sid)
        with open(d / f"{sid}.jsonl", "a", encoding="utf-8") as fh:
            fh.write(usage_line(sid, "/tmp/tokmon-bench-active", 10, 1))
    deadline = time.monotonic() + timeout
    while True:
        got = client.request("tokmon/summary", {})["activeSessions"]
        if set(ids) <= {r["sessionId"] for r in got} or time.monotonic() > deadline:
            return len(got)
        time.sleep(0.2)


def usage_line(session: str, cwd: str, inp: int, out: int) -> str:
    """One Claude Code assistant line, now, with fresh message and request ids."""
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


def stop(proc: subprocess.Popen[Any], timeout: float) -> None:
    """End a server started with a stdin pipe: close its stdin (end of input: it exits), wait
    up to ``timeout`` seconds, else kill it."""
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _json_bytes(obj: Any) -> int:
    return len(json.dumps(obj, separators=(",", ":")))


def _delta_bytes(params: dict[str, Any]) -> int:
    """Bytes the push's delta keys (``seq``, ``sessions``, ``removedSessions``,
    ``activeIds``) add to it."""
    full = len(json.dumps(params, separators=(",", ":")))
    keys = ("seq", "sessions", "removedSessions", "activeIds")
    old = {k: v for k, v in params.items() if k not in keys}
    return full - len(json.dumps(old, separators=(",", ":")))


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class FileWrites:
    """Bytes the server process has written to files so far, and how that is known."""

    def __init__(self, pid: int, client: Client, home: Path, stderr_box: list[int]) -> None:
        import psutil

        self.ps = psutil.Process(pid)
        self.client, self.home, self.stderr_box = client, home, stderr_box
        try:
            io = self.ps.io_counters()
            self.method = "write_chars" if hasattr(io, "write_chars") else "write_bytes"
        except (AttributeError, psutil.Error, NotImplementedError):
            self.method = "data-dir"

    def counter(self) -> int | None:
        """write_chars (or write_bytes) minus the bytes of the server's stdout/stderr pipes."""
        if self.method == "data-dir":
            return None
        io = self.ps.io_counters()
        raw = io.write_chars if self.method == "write_chars" else io.write_bytes
        return int(raw) - self.client.bytes_read - self.stderr_box[0]

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """(size, mtime_ns) of every file under TOKMON_HOME."""
        snap: dict[str, tuple[int, int]] = {}
        for p in self.home.rglob("*"):
            try:
                st = p.stat()
            except OSError:
                continue
            if p.is_file():
                snap[str(p.relative_to(self.home))] = (st.st_size, st.st_mtime_ns)
        return snap

    def state(self) -> tuple[int | None, dict[str, tuple[int, int]]]:
        return self.counter(), self.snapshot()

    def settle(self, quiet: float, limit: float = 120.0) -> tuple[int | None, dict[str, Any]]:
        """Wait until nothing is written for ``quiet`` seconds (``limit`` at most)."""
        last = self.state()
        since = t0 = time.monotonic()
        while time.monotonic() - since < quiet and time.monotonic() - t0 < limit:
            time.sleep(0.1)
            now = self.state()
            if now != last:
                last, since = now, time.monotonic()
        return last


def touched(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> tuple[int, int]:
    """(files created or changed, their total size now) between two snapshots."""
    changed = [k for k, v in after.items() if before.get(k) != v]
    return len(changed), sum(after[k][0] for k in changed)


def _drain(pipe: IO[bytes], box: list[int]) -> None:
    """Read the server's stderr, counting its bytes (pipe writes, not file writes)."""
    while True:
        chunk = os.read(pipe.fileno(), 65536)  # what is there now (a buffered read would wait)
        if not chunk:
            return
        box[0] += len(chunk)


def run(args: argparse.Namespace, mb: float | None) -> dict[str, Any]:
    import psutil

    work = Path(tempfile.mkdtemp(prefix="tokmon-bench-srv-"))
    figures: dict[str, Any] = {"loadavg_start": load_avg()}
    try:
        if args.corpus:
            corpus = Path(args.corpus).resolve()
        else:
            assert mb is not None
            corpus, _ = prepare_corpus(mb, args.seed, cached_corpus_dir(mb, args.seed, args.cache))
        size = sum(p.stat().st_size for p in (corpus / "projects").rglob("*.jsonl"))
        figures["corpus"] = str(corpus)
        figures["corpus_mb"] = round(size / 2**20, 1)
        home = work / "tokmon-home"
        private = work / "appends"
        bench_file = private / "projects" / "-tmp-tokmon-bench-project" / f"{uuid.uuid4()}.jsonl"
        bench_file.parent.mkdir(parents=True)
        session, cwd = bench_file.stem, "/tmp/tokmon-bench-project"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
        env.update({"TOKMON_HOME": str(home), "CLAUDE_CONFIG_DIR": f"{corpus},{private}"})
        env = args.target.env(env)
        cmd = [*args.target.tokmon, "serve"] + (["--jsonl"] if args.jsonl else [])
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        client = Client(proc, args.jsonl)
        err_box = [0]
        assert proc.stderr is not None
        drainer = threading.Thread(target=_drain, args=(proc.stderr, err_box), daemon=True)
        drainer.start()
        try:
            if not args.jsonl:
                client.request(
                    "initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}}
                )
                client.notify("initialized", {})
            summary = client.request("tokmon/summary", {})
            figures["first_scan_s"] = round(time.monotonic() - t0, 2)
            figures["sessions"] = len(client.request("tokmon/sessions", {})["sessions"])
            figures["active_deltas"] = False
            if not args.full_active:
                try:
                    got = client.request(
                        "tokmon/hello", {"capabilities": {"activeDeltas": True}}, timeout=60
                    )
                    figures["active_deltas"] = bool(got["capabilities"].get("activeDeltas"))
                except RuntimeError:  # an older server: no tokmon/hello, the whole list
                    pass
            if args.active:
                figures["active_made"] = make_active(client, private, args.active)
                summary = client.request("tokmon/summary", {})  # their lines are counted
            ps = psutil.Process(proc.pid)
            writes = FileWrites(proc.pid, client, home, err_box)
            time.sleep(1.0)  # let the watcher settle
            figures["rss_mb"] = round(ps.memory_info().rss / 2**20, 1)
            expected = summary["totals"]["inputTokens"]
            counter = [1000]

            # (push bytes, bytes of its delta keys, bytes and count of the summary's active rows)
            pushes: list[tuple[int, int, int, int]] = []

            def append_and_wait() -> float:
                """Append one line; ms until the push carrying it arrives."""
                nonlocal expected
                counter[0] += 1
                expected += counter[0]
                while not client.inbox.empty():
                    client.inbox.get_nowait()
                t = time.monotonic()
                with open(bench_file, "a", encoding="utf-8") as fh:
                    fh.write(usage_line(session, cwd, counter[0], 1))
                deadline = t + 30
                while True:
                    at, m, size = client.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
                    if (
                        m.get("method") == "tokmon/usageChanged"
                        and m["params"]["summary"]["totals"]["inputTokens"] == expected
                    ):
                        act = m["params"]["summary"].get("activeSessions")
                        pushes.append(
                            (
                                size,
                                _delta_bytes(m["params"]),
                                0 if act is None else _json_bytes(act),
                                -1 if act is None else len(act),
                            )
                        )
                        return (at - t) * 1000

            # the first save after indexing may write the whole index: not a per-append cost
            c0, s0 = writes.settle(args.settle)
            # append-to-notification latency (a burst, --gap apart)
            lat: list[float] = []
            cpu0 = ps.cpu_times()
            for _ in range(args.appends):
                lat.append(append_and_wait())
                time.sleep(args.gap)
            cpu1 = ps.cpu_times()
            figures["push_cpu_ms"] = round(
                ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) * 1000 / args.appends, 2
            )
            figures["latency_median_ms"] = round(statistics.median(lat), 1)
            figures["latency_p95_ms"] = round(_pct(lat, 0.95), 1)
            figures["latency_max_ms"] = round(max(lat), 1)
            # what a client receives per append: the push alone now; before, the push (without
            # its delta keys) plus the whole list the sidebar then re-fetched
            figures["push_bytes"] = int(statistics.median(p[0] for p in pushes))
            figures["push_rows_bytes"] = int(statistics.median(p[1] for p in pushes))
            # the summary's rows of the sessions active in the last block length: they grow
            # with how many sessions are active, not with the history
            figures["push_active_bytes"] = int(statistics.median(p[2] for p in pushes))
            figures["push_active_sessions"] = int(statistics.median(p[3] for p in pushes))
            figures["active_sessions"] = len(client.request("tokmon/summary", {})["activeSessions"])
            list_ms: list[float] = []
            for _ in range(3):
                t_l = time.monotonic()
                _, list_bytes = client.request_sized(
                    "tokmon/sessions", {"sort": "lastActivity", "order": "desc"}
                )
                list_ms.append((time.monotonic() - t_l) * 1000)
            figures["list_bytes"] = list_bytes
            figures["list_ms"] = round(statistics.median(list_ms), 1)
            figures["client_bytes_per_append"] = figures["push_bytes"]
            figures["client_bytes_per_append_refetch"] = (
                figures["push_bytes"] - figures["push_rows_bytes"] + list_bytes
            )
            figures["rss_after_appends_mb"] = round(ps.memory_info().rss / 2**20, 1)
            c1, s1 = writes.settle(args.settle)
            figures["save_method"] = writes.method
            if c0 is not None and c1 is not None:
                figures["burst_kib_per_append"] = round((c1 - c0) / 1024 / args.appends, 1)
            figures["burst_files_touched"] = touched(s0, s1)[0]
            # isolated appends: one line, then wait until the deferred save is done
            per: list[float] = []
            per_files: list[float] = []
            files_n: list[int] = []
            for _ in range(args.saves):
                a_c, a_s = writes.counter(), writes.snapshot()
                append_and_wait()
                b_c, b_s = writes.settle(args.settle)
                n, sz = touched(a_s, b_s)
                files_n.append(n)
                per_files.append(sz / 1024)
                if a_c is not None and b_c is not None:
                    per.append((b_c - a_c) / 1024)
            if args.saves:
                figures["save_files_touched"] = max(files_n)
                figures["save_touched_kib"] = round(statistics.median(per_files), 1)
                figures["save_written_kib"] = round(statistics.median(per), 1) if per else None
                figures["save_kib_per_append"] = (
                    figures["save_written_kib"] if per else figures["save_touched_kib"]
                )
            figures["data_dir_kib"] = round(sum(v[0] for v in writes.snapshot().values()) / 1024)
            # idle CPU
            if args.idle > 0:
                time.sleep(2.0)
                c0t = ps.cpu_times()
                time.sleep(args.idle)
                c1t = ps.cpu_times()
                figures["idle_seconds"] = args.idle
                figures["idle_cpu_s"] = round((c1t.user - c0t.user) + (c1t.system - c0t.system), 3)
        finally:
            stop(proc, 60)
            figures["exit_code"] = proc.returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["loadavg_end"] = load_avg()
    return figures


def verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    return {k: figures[k] <= v for k, v in TARGETS.items() if figures.get(k) is not None}


def print_figures(f: dict[str, Any], checks: dict[str, bool], args: argparse.Namespace) -> None:
    mode = "jsonl" if args.jsonl else "lsp"
    print(
        f"== tokmon serve ({mode}) on {f['corpus_mb']} MB, {f['sessions']} sessions "
        f"({f['corpus']}); load {f['loadavg_start']} -> {f['loadavg_end']}"
    )
    print(f"  first scan (cold index):      {f['first_scan_s']:.2f} s")
    rows = [
        ("rss_mb", "RSS after indexing", "MB"),
        ("rss_after_appends_mb", "RSS after the appends", "MB"),
        ("latency_p95_ms", "append->push p95", "ms"),
        ("save_kib_per_append", "a save per 1-line append", "KiB"),
        ("idle_cpu_s", f"CPU over {args.idle:g} idle s", "s"),
    ]
    for key, label, unit in rows:
        if f.get(key) is None:
            print(f"  {label + ':':<30}{'n/a':>8}")
            continue
        verdict = "PASS" if checks[key] else "FAIL"
        print(f"  {label + ':':<30}{f[key]:>8} {unit:<3} (target <= {TARGETS[key]:g}) {verdict}")
    print(
        f"  append->push median / max:    {f['latency_median_ms']} / {f['latency_max_ms']} ms; "
        f"exit code {f['exit_code']}"
    )
    if "push_bytes" in f:
        act = (
            f"the summary's {f['push_active_sessions']} active sessions "
            f"{_kib(f['push_active_bytes'] / 1024)}"
            if f["push_active_sessions"] >= 0
            else f"no active list: {f['active_sessions']} sessions active (active deltas)"
        )
        print(
            f"  client per append: push {_kib(f['push_bytes'] / 1024)} (rows and seq "
            f"{_kib(f['push_rows_bytes'] / 1024)}; {act}); server CPU per push "
            f"{f['push_cpu_ms']} ms; the list re-fetch it replaces: "
            f"{_kib(f['list_bytes'] / 1024)} in {f['list_ms']} ms; bytes per append "
            f"{_kib(f['client_bytes_per_append'] / 1024)} vs "
            f"{_kib(f['client_bytes_per_append_refetch'] / 1024)} with the re-fetch"
        )
    if "save_files_touched" in f:
        written = f.get("save_written_kib")
        print(
            f"  save: {_kib(written)} written ({f['save_method']}), "
            f"{f['save_files_touched']} file(s) touched holding {_kib(f['save_touched_kib'])} "
            f"(median of {args.saves} isolated appends); burst of {args.appends}: "
            f"{_kib(f.get('burst_kib_per_append'))} written per append; "
            f"data dir {_kib(f['data_dir_kib'])}"
        )


def _kib(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v / 1024:.1f} MiB" if v >= 1024 else f"{v:.1f} KiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--mb", type=float, nargs="+", default=[500.0], help="generated corpus sizes (MiB)"
    )
    ap.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    ap.add_argument("--corpus", help="use this Claude config dir instead of generating one")
    ap.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="corpus cache dir (default ${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench})",
    )
    ap.add_argument("--appends", type=int, default=40, help="number of timed appends")
    ap.add_argument("--gap", type=float, default=0.15, help="seconds between appends")
    ap.add_argument("--saves", type=int, default=3, help="isolated appends for the save cost")
    ap.add_argument(
        "--settle", type=float, default=4.5, help="quiet seconds that end a save (default 4.5)"
    )
    ap.add_argument("--idle", type=float, default=30, help="idle seconds for the CPU figure")
    ap.add_argument("--jsonl", action="store_true", help="JSON-lines mode instead of LSP")
    ap.add_argument(
        "--active",
        type=int,
        default=0,
        help="first make this many more sessions active (one line each)",
    )
    ap.add_argument(
        "--full-active",
        action="store_true",
        help="do not ask for active deltas (an older client: pushes carry the whole list)",
    )
    ap.add_argument("--json", action="store_true", help="print figures as JSON")
    add_argument(ap)
    args = ap.parse_args(argv)
    if args.appends < 1 or args.saves < 0:
        ap.error("--appends must be positive and --saves not negative")
    args.target = resolve(args.in_place, cache=args.cache)
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_start": load_avg(),
    }
    results: list[dict[str, Any]] = []
    sizes: list[float | None] = [None] if args.corpus else list(args.mb)
    for mb in sizes:
        try:
            figures = run(args, mb)
        except DiskShort as exc:
            print(exc, file=sys.stderr)
            results.append({"mb": mb, "skipped": str(exc)})
            continue
        results.append({"mb": mb, "figures": figures, "pass": verdicts(figures)})
    machine["loadavg_end"] = load_avg()
    if args.json:
        out = {"machine": machine, "tokmon": args.target.as_json(), "targets": TARGETS}
        print(json.dumps({**out, "results": results}, indent=2))
    else:
        print(
            f"machine: {machine['cpus']} CPUs, {machine['platform']}; load average (1/5/15 min) "
            f"at start {machine['loadavg_start']}, at end {machine['loadavg_end']}"
        )
        print(args.target.describe())
        for r in results:
            if "skipped" in r:
                print(f"== {r['mb']:g} MB: SKIPPED: {r['skipped']}")
            else:
                print_figures(r["figures"], r["pass"], args)
        done = [r["figures"] for r in results if "figures" in r]
        if len(done) >= 2:
            lo = min(done, key=lambda f: f["corpus_mb"])
            hi = max(done, key=lambda f: f["corpus_mb"])
            parts = []
            for key in (
                "latency_p95_ms",
                "rss_mb",
                "rss_after_appends_mb",
                "save_kib_per_append",
                "client_bytes_per_append",
                "client_bytes_per_append_refetch",
            ):
                if lo.get(key) and hi.get(key) is not None:
                    parts.append(f"{key} {hi[key] / lo[key]:.2f}x")
            print(f"== {hi['corpus_mb']:g} MB / {lo['corpus_mb']:g} MB: {', '.join(parts)}")
    ok = all(all(r["pass"].values()) for r in results if "pass" in r)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
