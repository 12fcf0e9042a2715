"""Session metadata store figures: write/read latency by store size, the line helper's
no-op title check, import cost, and multi-process throughput.

    python bench/bench_metadata.py [--sizes 100,1000,5000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tokmon.fsutil import atomic_write as write_atomic
from tokmon.metadata.fileio import dump_json
from tokmon.metadata.store import MetadataStore


def seed(path: Path, n: int) -> None:
    ts = "2026-01-01T00:00:00.000Z"
    docs = {
        str(i + 1): {
            "sessionId": f"s-{i:06d}",
            "name": f"session {i}",
            "tags": ["bench", f"g{i % 13}"],
            "description": "d" * 80,
            "claudeTitle": None,
            "createdAt": ts,
            "updatedAt": ts,
        }
        for i in range(n)
    }
    write_atomic(path, dump_json({"sessions": docs, "_meta": {"1": {"schemaVersion": 2}}}))


def timed(fn, reps: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    samples = []
    for i in range(reps):
        t = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def bench_size(n: int, reps: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "sessions.json"
        seed(path, n)
        store = MetadataStore(path)
        store.update("s-000000", add_tags=["warm"])  # import tinydb outside the timing
        size_kb = path.stat().st_size / 1024
        up = timed(lambda i: store.update(f"s-{i % n:06d}", add_tags=[f"t{i}"]), reps)
        rd = timed(lambda i: store.all(), reps)
        store.set_claude_title("s-000001", "Title")
        noop = timed(lambda i: store.set_claude_title("s-000001", "Title"), reps)
        print(
            f"{n:>6} sessions ({size_kb:7.0f} KiB): update p50 {up[0]:6.2f} ms p95 {up[1]:6.2f}"
            f" | all() p50 {rd[0]:6.2f} ms | unchanged set_claude_title p50 {noop[0]:6.2f} ms"
        )


def bench_import() -> None:
    code = (
        "import time; t=time.perf_counter(); import tokmon.metadata.store as s; "
        "print((time.perf_counter()-t)*1000, 'tinydb' in __import__('sys').modules)"
    )
    runs = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        ms, tiny = out.stdout.split()
        runs.append(float(ms))
    print(f"import tokmon.metadata.store: {min(runs):.1f} ms (tinydb imported: {tiny})")


WORKER = r"""
import sys
from pathlib import Path
from tokmon.metadata.store import MetadataStore
s = MetadataStore(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    s.update(f"s-{i % 50:06d}", add_tags=[f"p{sys.argv[2]}-{i}"])
"""


def bench_parallel(procs: int = 4, ops: int = 200) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "sessions.json"
        seed(path, 200)
        t = time.perf_counter()
        ps = [
            subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(p), str(ops)])
            for p in range(procs)
        ]
        for p in ps:
            p.wait()
        wall = time.perf_counter() - t
        total = procs * ops
        print(
            f"{procs} processes x {ops} updates (200-session store): {wall:.2f} s wall incl. "
            f"startup, {total / wall:.0f} updates/s"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--reps", type=int, default=100)
    a = ap.parse_args()
    bench_import()
    for n in map(int, a.sizes.split(",")):
        bench_size(n, a.reps)
    bench_parallel()


if __name__ == "__main__":
    main()
