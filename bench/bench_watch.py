"""Benchmark `tokmon watch` next to `tokmon serve`: append->screen vs append->push, idle CPU.

    python bench/bench_watch.py [--mb N [--keep DIR]] [--idle SECONDS] [--appends N] [--no-serve]
                                [--in-place]

Without ``--mb`` the real dashboard runs in a private tmux server over a copy of the test corpus
(TOKMON_TEST_CORPUS or <repo>/../shared/corpus/claude-real). With ``--mb N`` it runs over a
generated N MiB corpus, reused from (or generated into) ``--keep`` (default
``${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}/corpusN``, the dir .ci/bench/10-engine.sh
fills for 500 MB). The generated corpus is only read: the appends go to one transcript in a
private second config dir (CLAUDE_CONFIG_DIR=corpus,private).

In one run, on the same corpus and with a warm ledger for both (``tokmon daily`` first):

* watch: startup to the first frame, then append->screen latency: one assistant line appended,
  time until the since-reset counter on the screen changes (tmux capture-pane polled every
  50 ms, so the figure includes up to ~50 ms of polling plus one capture, whose median cost is
  printed), idle CPU over --idle s (0: skip);
* serve: ``tokmon serve`` (LSP over stdio, the client of bench/bench_server.py), the same
  appends, time until the ``tokmon/usageChanged`` carrying the new totals arrives.

Both run this checkout installed as ``scripts/install.py`` installs it (a venv cached per source
hash under ``$TOKMON_BENCH_DIR/installed``: bench/_installed.py), through its ``tokmon`` console
script; ``--in-place``: ``python -m tokmon`` on the interpreter running this script (the old way).
The first line printed names which.

Prints one table with median/p95/max for both.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from _installed import Target, add_argument, resolve  # noqa: E402
from bench_server import Client, _pct, stop, usage_line  # noqa: E402

if shutil.which("tmux") is None:
    sys.exit("bench_watch: tmux is not installed (the dashboard runs in a private tmux server)")
try:
    from test_watch_tmux import ALPHA, Dashboard, append_assistant, corpus_source
except BaseException as exc:  # noqa: BLE001 - pytest's importorskip raises a BaseException
    sys.exit(f"bench_watch: cannot load tests/test_watch_tmux.py (pytest, textual): {exc}")

SESSION = "0b5e7c1a-7c2d-4a7c-9e11-5eb0c4be0c41"  # the transcript the appends go to
CWD = "/tmp/tokmon-bench-watch"


def cpu_seconds(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def bench_dir() -> Path:
    base = os.environ.get("TOKMON_BENCH_DIR") or str(
        Path(os.environ.get("TMPDIR") or "/tmp") / "tokmon-bench"
    )
    return Path(base)


def stats(lat: list[float]) -> dict[str, float]:
    """Median / p95 / max in milliseconds of latencies given in seconds."""
    ms = [x * 1000 for x in lat]
    return {"median": statistics.median(ms), "p95": _pct(ms, 0.95), "max": max(ms), "n": len(ms)}


def tokmon_env(target: Target, home: Path, config: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    env.update({"TOKMON_HOME": str(home), "CLAUDE_CONFIG_DIR": config})
    env.pop("NO_COLOR", None)
    return target.env(env)


class TargetDashboard(Dashboard):
    """tests/test_watch_tmux.py's dashboard (``sys.executable -m tokmon watch`` in the
    checkout) running the target's ``tokmon watch`` instead."""

    def __init__(self, env: dict[str, str], target: Target) -> None:
        self.sock = f"tokmon-watch-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        self.env = env
        cmd = f"{shlex.join(target.tokmon)} watch; echo EXITED:$?; sleep 600"
        extra = [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
        self.tmux("new-session", "-d", "-x", "120", "-y", "40", "-c", str(REPO), *extra, cmd)


def warm_ledger(target: Target, env: dict[str, str]) -> float:
    """Run ``tokmon daily --json`` so the ledger is current; returns its wall time."""
    t = time.monotonic()
    subprocess.run(
        [*target.tokmon, "daily", "--json"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=900,
    )
    return time.monotonic() - t


class Appender:
    """Appends assistant lines (input 1000+i tokens) to one transcript."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.i = 0

    def __call__(self) -> int:
        """Append one line; returns its input tokens."""
        k = 1000 + self.i
        self.i += 1
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(usage_line(SESSION, CWD, k, 1))
        return k


def run_watch(
    target: Target, env: dict[str, str], append: Appender, n: int, gap: float, idle: float
) -> dict[str, Any]:
    """The real dashboard in tmux: startup, append->screen latency, idle CPU, RSS."""
    res: dict[str, Any] = {}
    tmux_env = {k: env[k] for k in ("TOKMON_HOME", "CLAUDE_CONFIG_DIR")}
    t0 = time.monotonic()
    dash = TargetDashboard(tmux_env, target)
    try:
        dash.wait_text("Active sessions", timeout=300)
        dash.wait(lambda s: "tokens  +$" in s, timeout=60, what="the since-reset counter")
        res["startup_s"] = time.monotonic() - t0
        time.sleep(1.0)
        lat: list[float] = []
        for _ in range(n):
            before = dash.screen()
            marker = next(ln for ln in before.splitlines() if "tokens  +$" in ln)
            t = time.monotonic()
            append()
            dash.wait(lambda s, m=marker: m not in s, timeout=30, what="counter change")
            lat.append(time.monotonic() - t)
            time.sleep(gap)
        res["lat"] = stats(lat)
        caps = []
        for _ in range(20):  # what one poll of the screen costs (part of every sample)
            c = time.monotonic()
            dash.screen()
            caps.append(time.monotonic() - c)
        res["capture_ms"] = statistics.median(caps) * 1000
        pid = dash.pid()  # the shell; the python process is its child
        try:
            import psutil

            kids = psutil.Process(pid).children(recursive=True)
            res["rss_mb"] = sum(k.memory_info().rss for k in kids) / 2**20
        except Exception:  # noqa: BLE001 - optional figure
            pass
        if idle > 0:
            time.sleep(2.0)
            c0 = cpu_seconds(pid)
            w0 = time.monotonic()
            time.sleep(idle)
            res["idle_cpu_s"] = cpu_seconds(pid) - c0
            res["idle_wall_s"] = time.monotonic() - w0
    finally:
        dash.close()
    return res


def run_serve(
    target: Target, env: dict[str, str], append: Appender, n: int, gap: float
) -> dict[str, Any]:
    """``tokmon serve`` (LSP over stdio): startup, append->usageChanged latency, RSS."""
    import psutil

    res: dict[str, Any] = {}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*target.tokmon, "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
    )
    client = Client(proc, jsonl=False)
    try:
        client.request(
            "initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}}
        )
        client.notify("initialized", {})
        summary = client.request("tokmon/summary", {})
        res["startup_s"] = time.monotonic() - t0
        time.sleep(1.0)  # let the watcher settle
        expected = summary["totals"]["inputTokens"]
        lat: list[float] = []
        for _ in range(n):
            while not client.inbox.empty():
                client.inbox.get_nowait()
            t = time.monotonic()
            expected += append()
            deadline = t + 30
            while True:
                at, m, _ = client.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
                if (
                    m.get("method") == "tokmon/usageChanged"
                    and m["params"]["summary"]["totals"]["inputTokens"] == expected
                ):
                    lat.append(at - t)
                    break
            time.sleep(gap)
        res["lat"] = stats(lat)
        res["rss_mb"] = psutil.Process(proc.pid).memory_info().rss / 2**20
    finally:
        stop(proc, 30)
    return res


def corpus_size_mb(configs: list[Path]) -> float:
    return sum(p.stat().st_size for c in configs for p in c.rglob("*.jsonl")) / 2**20


def print_table(label: str, appends: int, w: dict[str, Any], s: dict[str, Any] | None) -> None:
    def cell(d: dict[str, Any] | None, fmt: str, *keys: str) -> str:
        v: Any = d
        for k in keys:
            if not isinstance(v, dict) or k not in v:
                return "-"
            v = v[k]
        return fmt.format(v)

    print(f"\n{label}; warm ledger for both; {appends} appends each")
    print(f"  {'':<26}{'watch (append->screen)':>24}{'serve (append->push)':>24}")
    rows = [
        ("startup (warm ledger)", "{:.2f} s", ("startup_s",)),
        ("latency median", "{:.0f} ms", ("lat", "median")),
        ("latency p95", "{:.0f} ms", ("lat", "p95")),
        ("latency max", "{:.0f} ms", ("lat", "max")),
        ("RSS after the appends", "{:.0f} MB", ("rss_mb",)),
    ]
    for name, fmt, keys in rows:
        print(f"  {name:<26}{cell(w, fmt, *keys):>24}{cell(s, fmt, *keys):>24}")
    cap = w.get("capture_ms")
    print(
        "  watch latency includes the screen polling: a capture-pane every 50 ms"
        + (f" ({cap:.0f} ms each)" if cap is not None else "")
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=float, default=30.0, help="idle window in seconds (0: skip)")
    ap.add_argument("--appends", type=int, default=10, help="latency samples per surface")
    ap.add_argument("--gap", type=float, default=0.3, help="seconds between appends")
    ap.add_argument("--mb", type=float, default=None, help="generated corpus size in MiB")
    ap.add_argument("--keep", type=Path, default=None, help="generated corpus dir (reused)")
    ap.add_argument("--no-serve", action="store_true", help="skip the tokmon serve column")
    add_argument(ap)
    args = ap.parse_args()
    if args.appends < 1:
        ap.error("--appends must be positive")
    target = resolve(args.in_place)
    print(target.describe())

    t_total = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tokmon-bench-watch-") as tmp:
        root = Path(tmp)
        extra = root / "appends"  # second config dir: the appended transcript
        tfile = extra / "projects" / "bench-project" / f"{SESSION}.jsonl"
        tfile.parent.mkdir(parents=True)
        if args.mb is not None:
            from bench_engine import prepare_corpus

            keep = args.keep or bench_dir() / f"corpus{args.mb:g}"
            corpus, _ = prepare_corpus(args.mb, 0, keep)
            label = f"generated corpus {keep}"
        else:
            src = corpus_source()
            if not src.is_dir():
                print(f"corpus not found: {src}", file=sys.stderr)
                return 2
            corpus = root / "claude"
            shutil.copytree(src, corpus)
            append_assistant(corpus, ALPHA)  # an active session for the dashboard
            label = f"copy of {src}"
        with open(tfile, "w", encoding="utf-8") as fh:  # recent activity in the appended file
            fh.write(usage_line(SESSION, CWD, 10, 1))
        size = corpus_size_mb([corpus / "projects", extra / "projects"])
        label = f"{label} ({size:.0f} MiB)"
        env = tokmon_env(target, root / "home", f"{corpus},{extra}")
        warm = warm_ledger(target, env)
        print(f"{label}: ledger built by `tokmon daily` in {warm:.1f} s (cold scan)")
        append = Appender(tfile)

        w = run_watch(target, env, append, args.appends, args.gap, args.idle)
        print(f"watch: startup to first frame {w['startup_s']:.2f} s (tmux + python + textual)")
        if "idle_cpu_s" in w:
            scaled = w["idle_cpu_s"] * 30.0 / w["idle_wall_s"]
            verdict = "OK" if scaled <= 0.5 else "OVER TARGET"
            print(
                f"watch: idle CPU {w['idle_cpu_s']:.2f} s over {w['idle_wall_s']:.1f} s "
                f"(= {scaled:.2f} s per 30 s; target <= 0.50) {verdict}"
            )
        s = None
        if not args.no_serve:
            # the dashboard's deferred save may not have run before it quit
            warm_ledger(target, env)
            s = run_serve(target, env, append, args.appends, args.gap)
        print_table(label, args.appends, w, s)
    print(f"total bench time: {time.monotonic() - t_total:.1f} s")
    return 0


if __name__ == "__main__":
    os.environ.pop("NO_COLOR", None)
    sys.exit(main())
