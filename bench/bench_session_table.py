#!/usr/bin/env python3
"""``tokmon session`` (the table, to a pipe) next to ``session --json``, against another revision.

    python bench/bench_session_table.py [--base REV] [--mb 500 [2000 ...]] [--runs 5]
        [--built | --append] [--base-native]

On bench_warm.py's homes and corpora (``corpus<MB>`` under ``${TOKMON_BENCH_DIR:-...}``), the
``tokmon`` of this checkout ("now") and of ``--base`` (default ``HEAD~1``) each get a warm
``TOKMON_HOME``; then, alternating base / now, ``session`` (its output to /dev/null, as bench_warm.py runs),
``session --json`` and ``daily --json``, the sizes alternating within each round too (the
largest / smallest ratio of each side is printed). ``--built``: the kept session answers
(``cache/reports/session-*``) are removed before each run, so each one is built (what the
first report after a change used to cost). ``--append``: one assistant line is appended to
the largest transcript before each run (truncated back at the end): the first report after
a one-line append, the data changed but the kept answers there. ``--base-native``: the base
runs this checkout's built extension modules where their C source is the base's (as
``bench_warm.py --base-native``). Prints the median CPU (child
user + system) and wall time of ``--runs`` and the load average.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _forget(home: str) -> None:
    for p in (Path(home) / "cache" / "reports").glob("session-*"):
        p.unlink()


CMDS = (["session"], ["session", "--json"], ["daily", "--json"])


def measure(
    mbs: list[float], runs: int, built: bool, base_src: Path, work: Path, append: bool = False
) -> list[str]:
    """Every command at every size, the sizes and variants alternating within each round (a
    change of the machine's load moves both sides of every ratio alike, the sizes' too)."""
    be, bw = _load("bench_engine"), _load("bench_warm")
    sizes = [bw.setup_size(mb, base_src, work, be) for mb in mbs]  # warm homes: a cold build each
    lengths = [(sz["target"], sz["target"].stat().st_size) for sz in sizes]
    tok = [sys.executable, "-m", "tokmon"]
    got: dict[tuple[float, str, str], list[tuple[float, float]]] = {}
    try:
        for cmd in CMDS:
            for sz in sizes:
                for env in sz["envs"].values():
                    bw._run([*tok, *cmd], env)
            for _ in range(runs):
                for sz in sizes:
                    for variant, env in sz["envs"].items():
                        if built:
                            _forget(env["TOKMON_HOME"])
                        if append:
                            be.append_line(sz["target"])
                        m = bw._run([*tok, *cmd], env)
                        got.setdefault((sz["mb"], " ".join(cmd), variant), []).append(m)
    finally:
        for target, length in lengths:
            with open(target, "r+b") as fh:
                fh.truncate(length)
    out = []
    cpu: dict[tuple[float, str, str], float] = {}
    for mb in mbs:
        for cmd in map(" ".join, CMDS):
            b, n = got[(mb, cmd, "base")], got[(mb, cmd, "now")]
            bc, nc = statistics.median(m[1] for m in b), statistics.median(m[1] for m in n)
            bwl, nwl = statistics.median(m[0] for m in b), statistics.median(m[0] for m in n)
            cpu[(mb, cmd, "base")], cpu[(mb, cmd, "now")] = bc, nc
            out.append(
                f"{mb:6g} MB  {cmd:16s} {bc:8.3f} ({bwl:.3f}) {nc:8.3f} ({nwl:.3f})  {nc / bc:.2f}x"
            )
    if len(mbs) > 1:
        lo, hi = mbs[0], mbs[-1]
        out.append(f"{hi:g} MB / {lo:g} MB (CPU)      base      now")
        for cmd in map(" ".join, CMDS):
            rb = cpu[(hi, cmd, "base")] / cpu[(lo, cmd, "base")]
            rn = cpu[(hi, cmd, "now")] / cpu[(lo, cmd, "now")]
            out.append(f"          {cmd:16s} {rb:8.2f}x {rn:7.2f}x")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD~1")
    ap.add_argument("--mb", type=float, nargs="+", default=[500.0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--base-native",
        action="store_true",
        help="the base runs this checkout's extension modules where their C is the same",
    )
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--built", action="store_true", help="remove the kept answers before each run")
    how.add_argument(
        "--append", action="store_true", help="append one line to a transcript before each run"
    )
    args = ap.parse_args(argv)
    bw = _load("bench_warm")
    work = Path(tempfile.mkdtemp(prefix="tokmon-bench-table-"))
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    t = time.perf_counter()
    try:
        base_src = bw.extract(args.base, work)
        if args.base_native:
            native = bw.copy_native(base_src)
            print(
                f"base runs the extension modules: {', '.join(native) or 'none'}", file=sys.stderr
            )
        lines = measure(args.mb, args.runs, args.built, base_src, work, args.append)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"load average at start {load0}, at end {load1}; {time.perf_counter() - t:.0f} s")
    kept = (
        "built each run"
        if args.built
        else "one line appended before each run"
        if args.append
        else "kept answers used"
    )
    print(f"median of {args.runs}; CPU s (wall s); base = {args.base}; {kept}")
    print(f"{'':10s}{'':17s}{'base':>8s}{'':8s}{'now':>9s}{'':8s}now/base")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
