#!/usr/bin/env python3
"""Cold ``daily --json`` with the native scanner in threads of one process, in a worker
process, and with the pure-Python scanner, beside ccusage: interleaved rounds on the cached
bench corpora, wall and user+sys CPU of the process tree (wait4), ratios taken per round;
then one run of each with the process tree's summed RSS sampled (psutil; the sampling costs
CPU, so those runs give memory only).

    python bench/bench_scan_pool.py [--mb 500 2000] [--rounds 5] [--calm 0.3] [--wait 120]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

VARIANTS: dict[str, dict[str, str]] = {
    "native, threads": {"TOKMON_SCAN_POOL": "thread"},
    "native, process": {"TOKMON_SCAN_POOL": "process"},
    "python, process": {"TOKMON_NO_NATIVE": "1", "TOKMON_SCAN_POOL": "process"},
}


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _one(
    be: Any, fl: Any, cmd: list[str], env0: dict[str, str], name: str, work: Path, sample: bool
) -> dict[str, Any]:
    """One cold run (a fresh TOKMON_HOME): wall, CPU and totals, or the sampled tree RSS."""
    home = Path(tempfile.mkdtemp(dir=work))
    env = {**env0, **VARIANTS.get(name, {}), "TOKMON_HOME": str(home)}
    out = work / f"{name.replace(' ', '_').replace(',', '')}.out"
    try:
        if sample:
            return dict(be.measure(cmd, env, out, sample=True))
        fig = dict(fl.run(cmd, env, out))
        fig["totals"] = be.token_totals(out.read_bytes())
        return fig
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[500.0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calm", type=float, default=0.3)
    ap.add_argument("--wait", type=float, default=120.0)
    args = ap.parse_args(argv)
    be, fl = _load("bench_engine"), _load("bench_floor")
    cc = be.ccusage_path()
    print(f"load at start {be.load_avg()}; ccusage {cc or 'not installed'}")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    with tempfile.TemporaryDirectory(prefix="tokmon-pool-") as tmp:
        work = Path(tmp)
        for mb in args.mb:
            dest = be.cached_corpus_dir(mb, 0)
            env0 = {**base, "CLAUDE_CONFIG_DIR": str(dest), "HOME": str(work), "TZ": "UTC"}
            cmds = {n: [sys.executable, "-m", "tokmon", "daily", "--json"] for n in VARIANTS}
            if cc is not None:
                cmds["ccusage"] = [str(cc), "claude", "daily", "--json", "--offline"]
            names = list(cmds)
            be.warm_page_cache(dest)

            for name in names:  # unmeasured
                _one(be, fl, cmds[name], env0, name, work, False)
            figs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
            loads = []
            budget = [args.wait]
            for r in range(args.rounds):
                busy, _ok = fl.wait_calm(args.calm, budget)
                loads.append((fl.load1(), busy))
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    figs[name].append(_one(be, fl, cmds[name], env0, name, work, False))
            mem = {n: _one(be, fl, cmds[n], env0, n, work, True) for n in names}
            print(f"\n== {mb:g} MB ({dest}), {args.rounds} interleaved rounds")
            print("load, others busy before each round: " + ", ".join(f"{a}/{b}" for a, b in loads))
            ref = figs.get("ccusage")
            print(
                f"  {'':18}{'wall s':>8}{'CPU s':>8}{'wall/cc':>9}{'CPU/cc':>8}"
                f"{'wall/proc':>11}{'tree MB':>9}{'largest':>9}  totals equal"
            )
            totals = {n: {str(f["totals"]) for f in figs[n]} for n in VARIANTS}
            same = len({t for ts in totals.values() for t in ts}) == 1
            for name in names:
                f = figs[name]
                wall = statistics.median(x["wall"] for x in f)
                cpu = statistics.median(x["cpu"] for x in f)
                wr = cr = pr = float("nan")
                if ref is not None:
                    wr = statistics.median(
                        a["wall"] / b["wall"] for a, b in zip(f, ref, strict=True)
                    )
                    cr = statistics.median(a["cpu"] / b["cpu"] for a, b in zip(f, ref, strict=True))
                proc = figs["native, process"]
                pr = statistics.median(a["wall"] / b["wall"] for a, b in zip(f, proc, strict=True))
                m = mem[name]
                print(
                    f"  {name:18}{wall:8.3f}{cpu:8.2f}{wr:8.2f}x{cr:7.2f}x{pr:10.2f}x"
                    f"{(m['tree_rss_mb'] or float('nan')):9.0f}{(m['single_rss_mb'] or 0):9.0f}"
                    f"  {'yes' if same or name == 'ccusage' else totals.get(name)}"
                )
    print(f"load at end {be.load_avg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
