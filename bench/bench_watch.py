"""Benchmark `tokmon watch`: startup, append-to-screen latency and idle CPU (target <= 0.5 s/30 s).

Runs the real dashboard in a private tmux server over a copy of the test corpus
(TOKMON_TEST_CORPUS or <repo>/../shared/corpus/claude-real) and prints figures:

    python bench/bench_watch.py [--idle SECONDS] [--appends N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from test_watch_tmux import ALPHA, BETA, Dashboard, append_assistant, corpus_source  # noqa: E402


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--idle", type=float, default=30.0, help="idle window in seconds")
    ap.add_argument("--appends", type=int, default=10, help="latency samples")
    args = ap.parse_args()

    src = corpus_source()
    if not src.is_dir():
        print(f"corpus not found: {src}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tokmon-bench-watch-") as tmp:
        corpus = Path(tmp) / "claude"
        shutil.copytree(src, corpus)
        append_assistant(corpus, ALPHA)
        env = {"TOKMON_HOME": str(Path(tmp) / "home"), "CLAUDE_CONFIG_DIR": str(corpus)}
        t0 = time.monotonic()
        dash = Dashboard(env)
        try:
            startup = dash.wait_text("Active sessions", timeout=60)
            print(f"startup to first frame: {startup:.2f} s (tmux + python + textual + scan)")
            time.sleep(1.0)

            # append -> visible latency, measured on the since-reset counter
            lat = []
            for i in range(args.appends):
                before = dash.screen()
                marker = next(ln for ln in before.splitlines() if "tokens  +$" in ln)
                append_assistant(
                    corpus,
                    BETA if i % 2 else ALPHA,
                    inp=10,
                    out=90 + i,
                    cache_write=0,
                    cache_read=0,
                )
                lat.append(
                    dash.wait(lambda s, m=marker: m not in s, timeout=10, what="counter change")
                )
                time.sleep(0.3)
            print(
                f"append->screen latency over {len(lat)} appends: "
                f"median {statistics.median(lat) * 1000:.0f} ms, "
                f"max {max(lat) * 1000:.0f} ms"
            )

            pid = dash.pid()  # the shell; the python process is its child
            time.sleep(2.0)
            c0 = cpu_seconds(pid)
            w0 = time.monotonic()
            time.sleep(args.idle)
            used = cpu_seconds(pid) - c0
            wall = time.monotonic() - w0
            scaled = used * 30.0 / wall
            verdict = "OK" if scaled <= 0.5 else "OVER TARGET"
            print(
                f"idle CPU: {used:.2f} s over {wall:.1f} s "
                f"(= {scaled:.2f} s per 30 s; target <= 0.50) {verdict}"
            )
            try:
                import psutil

                kids = psutil.Process(pid).children(recursive=True)
                rss = sum(k.memory_info().rss for k in kids) / 1e6
                print(f"dashboard RSS: {rss:.0f} MB")
            except Exception:  # noqa: BLE001 - optional figure
                pass
        finally:
            dash.close()
        print(f"total bench time: {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    os.environ.pop("NO_COLOR", None)
    sys.exit(main())
