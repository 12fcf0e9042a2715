#!/usr/bin/env python3
"""The cold build's serial tail, side by side: this checkout against a base checkout (and ccusage).

    python bench/bench_build.py --base DIR [--mb 500 [2000 ...]] [--rounds 5] [--ccusage]
                                [--calm CORES [--wait 240]] [--cache DIR] [--json]

``DIR`` is another checkout of tokmon (e.g. ``git archive <commit> | tar -x -C DIR``): its
``tokmon`` package is imported instead of this one's (PYTHONPATH). Each round runs a cold
``daily --json`` (empty TOKMON_HOME, the page cache warmed first) of each variant in turn (the
order rotates each round), in a subprocess that times tokmon's steps from inside:

* start-up: to the first file read (``scan_all`` called);
* scan: ``scan_all``'s iteration, both processes (what the calling process does with each
  result, the staging or the build's direct load, is inside it); of it the calling thread's
  CPU in ``Stage.add`` (the staging and the direct load: SQLite's work with the rows);
* serial tail: from the scan's end to ``main`` returning (the merge transaction, the stored
  sums, publishing the build, the report), wall and CPU (of the process, and of its main
  thread alone: the critical path when a core is free for the others); of it, the merge
  transaction (wall and its main thread's CPU)
  (``LedgerDB.merge_staged``) and the stored sums (``Rollups.rebuild_sql``);
* whole run: wall time and user+sys CPU of the process tree (``wait4``), and the largest
  process's peak RSS.

With ``--ccusage`` (TOKMON_CCUSAGE or the repo's .cache) ``ccusage claude daily --json
--offline`` runs in each round too and each variant's wall time is divided by ccusage's of the
same round. With ``--calm`` each round waits (up to ``--wait`` seconds in all per size) until
the other processes keep fewer than CORES cores busy (``bench_floor.py``'s probe; the cores
they kept busy are printed). Prints medians, and the median of the per-round ratios new / base. The corpora are
those of bench_engine.py (``--cache``, default ``$TOKMON_BENCH_DIR``); totals are checked
against the corpus's expected.json (exit code 1 when they differ).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# Runs `daily --json` in this process with timers around tokmon's steps (names present in
# both the base and this checkout); the report goes to argv[1], the timers to stderr.
_TIMED = r"""
import time
T0 = time.perf_counter()
import contextlib, json, resource, sys
marks, acc, cpus, tcpus = {}, {}, {}, {}
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def mark(name):
    marks.setdefault(name, time.perf_counter() - T0)
    cpus.setdefault(name, cpu())
    tcpus.setdefault(name, time.thread_time())
def timed(cls, attr, name):
    f = getattr(cls, attr)
    def w(*a, **k):
        t, c = time.perf_counter(), time.thread_time()
        try:
            return f(*a, **k)
        finally:
            acc[name] = acc.get(name, 0.0) + time.perf_counter() - t
            acc[name + " cpu"] = acc.get(name + " cpu", 0.0) + time.thread_time() - c
    setattr(cls, attr, w)
from tokmon.core import ledger, rollups
from tokmon.core.engine import ingest
real = ingest.scan_all
def scan_all(*a, **k):
    mark("scan start")
    yield from real(*a, **k)
    mark("scan end")
ingest.scan_all = scan_all
timed(ledger.Stage, "add", "staging")
timed(ledger.LedgerDB, "merge_staged", "merge")
timed(rollups.Rollups, "rebuild_sql", "sums")
from tokmon.__main__ import main
with open(sys.argv[1], "w") as out, contextlib.redirect_stdout(out):
    sys.argv = ["tokmon", "daily", "--json"]  # the program's path (no argv: as the script)
    main()
mark("end")
import tokmon
src = tokmon.__file__
print("TIMERS " + json.dumps({"marks": marks, "acc": acc, "cpus": cpus, "tcpus": tcpus, "src": src}), file=sys.stderr)
"""

PHASES = (
    "startup",
    "scan",
    "stage_main",
    "tail",
    "tail_cpu",
    "tail_main",
    "merge",
    "sums",
    "wall",
    "cpu",
    "rss_mb",
)


def _sibling(name: str) -> Any:
    """Another bench script of this directory, loaded as a module (bench_engine, bench_floor)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _wait(proc: subprocess.Popen[bytes], t: float) -> tuple[float, float, float]:
    """Wall s, user+sys CPU s of the tree and the largest process's RSS (MB) of ``proc``."""
    if hasattr(os, "wait4"):
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024
    proc.wait()  # (Windows: wall time only)
    nan = float("nan")
    return time.perf_counter() - t, nan, nan


def run_tokmon(src: Path, corpus: Path, work: Path, out: Path) -> dict[str, float]:
    """One cold ``daily --json`` of the tokmon package in ``src``, timed from inside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    home = Path(tempfile.mkdtemp(dir=work))
    env.update(
        {
            "PYTHONPATH": str(src),
            "CLAUDE_CONFIG_DIR": str(corpus),
            "HOME": str(work),
            "TOKMON_HOME": str(home),
            "TZ": "UTC",
            "NO_COLOR": "1",
        }
    )
    err = work / "stderr.txt"
    try:
        with open(err, "wb") as fh:
            t = time.perf_counter()
            proc = subprocess.Popen(  # (in ``work``: `-c` puts the cwd first on sys.path)
                [sys.executable, "-c", _TIMED, str(out)], env=env, stdout=fh, stderr=fh, cwd=work
            )
            wall, cpu, rss = _wait(proc, t)
        text = err.read_text(errors="replace")
        line = [x for x in text.splitlines() if x.startswith("TIMERS ")]
        if proc.returncode != 0 or not line:
            raise RuntimeError(f"{src}: the timed run failed: {text.strip()[-500:]}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    fig = json.loads(line[-1][7:])
    if not str(Path(fig["src"]).resolve()).startswith(str(src) + os.sep):
        raise RuntimeError(f"imported tokmon from {fig['src']}, not from {src}")
    m, a, c, tc = fig["marks"], fig["acc"], fig["cpus"], fig["tcpus"]
    return {
        "startup": m["scan start"],
        "scan": m["scan end"] - m["scan start"],
        "stage_main": a.get("staging cpu", float("nan")),
        "tail": m["end"] - m["scan end"],
        "tail_cpu": c["end"] - c["scan end"],
        "tail_main": tc["end"] - tc["scan end"],
        "merge": a.get("merge", float("nan")),
        "merge_main": a.get("merge cpu", float("nan")),
        "sums": a.get("sums", float("nan")),
        "wall": wall,
        "cpu": cpu,
        "rss_mb": rss,
    }


def run_ccusage(cc: Path, corpus: Path, work: Path, out: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    env.update({"CLAUDE_CONFIG_DIR": str(corpus), "HOME": str(work), "TZ": "UTC"})
    with open(out, "wb") as fh:
        t = time.perf_counter()
        proc = subprocess.Popen(
            [str(cc), "claude", "daily", "--json", "--offline"],
            env=env,
            stdout=fh,
            stderr=subprocess.DEVNULL,
        )
        wall, cpu, rss = _wait(proc, t)
    if proc.returncode != 0:
        raise RuntimeError(f"ccusage exited {proc.returncode}")
    return {"wall": wall, "cpu": cpu, "rss_mb": rss}


def _totals(path: Path) -> tuple[int, ...]:
    t = json.loads(path.read_text())["totals"]
    return (t["inputTokens"], t["outputTokens"], t["cacheCreationTokens"], t["cacheReadTokens"])


def _expected(corpus: Path) -> tuple[int, ...] | None:
    """The generator's totals (expected.json) in the order of :func:`_totals`."""
    p = corpus / "expected.json"
    if not p.is_file():
        return None
    t = json.loads(p.read_text()).get("totals") or {}
    keys = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
    return tuple(int(t[k]) for k in keys) if all(k in t for k in keys) else None


def bench_size(
    be: Any,
    corpus: Path,
    variants: dict[str, Path],
    cc: Path | None,
    rounds: int,
    work: Path,
    calm: float | None = None,
    wait: float = 240.0,
) -> dict[str, Any]:
    be.warm_page_cache(corpus)
    floor = _sibling("bench_floor") if calm is not None else None
    budget = [wait]
    others: list[float] = []
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    ccr: list[dict[str, float]] = []
    totals: dict[str, set[tuple[int, ...]]] = {k: set() for k in variants}
    loads = []
    names = list(variants) + (["ccusage"] if cc else [])
    for r in range(rounds):
        if floor is not None:  # until the other processes keep < calm cores busy (bench_floor)
            busy, _ = floor.wait_calm(calm, budget)
            others.append(float("nan") if busy is None else busy)
        loads.append((be.load_avg() or [float("nan")])[0])
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            out = work / f"{name}.json"
            if name == "ccusage":
                assert cc is not None
                ccr.append(run_ccusage(cc, corpus, work, out))
            else:
                runs[name].append(run_tokmon(variants[name], corpus, work, out))
                totals[name].add(_totals(out))
    med = {k: {p: statistics.median(x[p] for x in v) for p in PHASES} for k, v in runs.items()}
    res: dict[str, Any] = {"corpus": str(corpus), "rounds": rounds, "load": loads, "median": med}
    if others:
        res["others_busy"] = others
    if "base" in runs and "new" in runs:
        res["ratio_new_base"] = {
            p: statistics.median(
                n[p] / b[p] for n, b in zip(runs["new"], runs["base"], strict=True)
            )
            for p in (
                "tail",
                "tail_cpu",
                "tail_main",
                "merge",
                "merge_main",
                "stage_main",
                "scan",
                "wall",
                "cpu",
            )
        }
    if ccr:
        res["ccusage"] = {
            p: statistics.median(x[p] for x in ccr) for p in ("wall", "cpu", "rss_mb")
        }
        res["vs_ccusage_wall"] = {
            k: statistics.median(x["wall"] / c["wall"] for x, c in zip(v, ccr, strict=True))
            for k, v in runs.items()
        }
    exp = _expected(corpus)
    res["totals"] = {
        k: ("equal" if exp is not None and v == {exp} else f"differ: {sorted(v)} vs {exp}")
        for k, v in totals.items()
    }
    res["raw"] = runs
    return res


def report(mb: float, s: dict[str, Any]) -> None:
    loads = ", ".join(f"{x:.2f}" for x in s["load"])
    print(f"\n{mb:g} MB ({s['corpus']}), {s['rounds']} rounds, load before each: {loads}")
    if s.get("others_busy"):
        busy = ", ".join(f"{x:.2f}" for x in s["others_busy"])
        print(f"  cores the other processes kept busy before each round: {busy}")
    med = s["median"]
    names = list(med)
    print(f"  {'median (s; RSS MB)':34}" + "".join(f"{n:>10}" for n in names))
    labels = {
        "startup": "start-up to the first read",
        "scan": "scan (both processes)",
        "stage_main": "- staging, the calling thread's CPU",
        "tail": "serial tail (scan end to report)",
        "tail_cpu": "- its CPU (calling process)",
        "tail_main": "- its CPU (the main thread)",
        "merge": "- merge transaction",
        "merge_main": "- its CPU (the main thread)",
        "sums": "- of it the stored sums",
        "wall": "whole run, wall",
        "cpu": "whole run, CPU (tree)",
        "rss_mb": "largest process, peak RSS",
    }
    for p in PHASES:
        print(f"  {labels[p]:34}" + "".join(f"{med[n][p]:10.3f}" for n in names))
    if "ratio_new_base" in s:
        r = s["ratio_new_base"]
        print(
            "  new / base, median of per-round ratios: "
            + ", ".join(f"{k} {v:.2f}x" for k, v in r.items())
        )
    if "ccusage" in s:
        c = s["ccusage"]
        print(f"  ccusage: wall {c['wall']:.3f} s, CPU {c['cpu']:.3f} s, RSS {c['rss_mb']:.0f} MB")
        print(
            "  wall / ccusage's (per round, median): "
            + ", ".join(f"{k} {v:.2f}x" for k, v in s["vs_ccusage_wall"].items())
        )
    print("  totals vs expected.json: " + ", ".join(f"{k} {v}" for k, v in s["totals"].items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="the cold build's serial tail, this checkout vs a base"
    )
    ap.add_argument("--base", type=Path, help="a checkout of the base commit (its tokmon/ is used)")
    ap.add_argument("--mb", type=float, nargs="+", default=[500.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=None, help="corpus cache dir")
    ap.add_argument("--ccusage", action="store_true", help="ccusage in each round too")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--calm",
        type=float,
        default=None,
        help="before each round, wait until the other processes keep fewer cores busy",
    )
    ap.add_argument("--wait", type=float, default=240.0, help="--calm's wait budget per size (s)")
    args = ap.parse_args(argv)
    be = _sibling("bench_engine")
    variants = {"new": REPO}
    if args.base is not None:
        if not (args.base / "tokmon" / "__init__.py").is_file():
            ap.error(f"{args.base} holds no tokmon package")
        variants = {"base": args.base.resolve(), "new": REPO}
    cc = be.ccusage_path() if args.ccusage else None
    if args.ccusage and cc is None:
        ap.error("ccusage not found (TOKMON_CCUSAGE)")
    out: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count(), "sizes": {}}
    ok = True
    with tempfile.TemporaryDirectory(prefix="tokmon-build-") as tmp:
        for mb in args.mb:
            corpus = be.cached_corpus_dir(mb, args.seed, args.cache)
            if not (corpus / "expected.json").is_file():
                corpus, _ = be.prepare_corpus(mb, args.seed, corpus)
            s = bench_size(be, corpus, variants, cc, args.rounds, Path(tmp), args.calm, args.wait)
            out["sizes"][f"{mb:g}"] = s
            ok = ok and all(v == "equal" for v in s["totals"].values())
            if not args.json:
                report(mb, s)
    if args.json:
        print(json.dumps(out, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
