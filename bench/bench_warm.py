#!/usr/bin/env python3
"""Warm reports of this checkout against another git revision, side by side.

    python bench/bench_warm.py [--base REV] [--mb 500 [2000 ...]] [--runs 5] [--json]

For each size, on bench_engine.py's cached corpus (``corpus<MB>`` under
``${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}``, generated when missing), the ``tokmon``
of this checkout ("now") and of ``--base`` (default ``HEAD~1``; extracted with ``git archive``
and run through ``PYTHONPATH``, "base") each get their own ``TOKMON_HOME``, warmed by one cold
``daily``. Then, alternating base / now and the sizes within each round (a change of the
machine's load moves both sides of every ratio alike), ``python -m tokmon <cmd> --json`` for
``daily``, ``session``, ``blocks`` (warm) and ``daily`` / ``session`` each right after appending one
assistant line to the largest transcript (truncated back at the end). Each figure is the
median of ``--runs``: CPU time (the child's user + system: less moved by other load than the
wall time) and wall time; ``python -c pass`` is measured the same way. Prints the figures, the
now / base ratio, the 2 GB-style targets (0.15 s, largest / smallest <= 1.3x, on CPU time) and
the load average at start and end. ``--base-native``: the base runs this checkout's built
extension modules where their C source is the base's (an A/B of the Python code alone;
without it the base runs none).
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
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WARM = ("daily", "session", "blocks")
TOK = [sys.executable, "-m", "tokmon"]
APPEND = ("daily", "session")


def _bench_engine() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_engine", REPO / "bench" / "bench_engine.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def extract(rev: str, dest: Path) -> Path:
    """``tokmon/`` of ``rev`` under ``dest`` (what PYTHONPATH then points at)."""
    arch = dest / "src.tar"
    with open(arch, "wb") as fh:
        subprocess.run(["git", "archive", rev, "tokmon"], cwd=REPO, stdout=fh, check=True)
    with tarfile.open(arch) as tf:
        tf.extractall(dest / "src", filter="data")
    arch.unlink()
    return dest / "src"


def copy_native(base_src: Path) -> list[str]:
    """Give the base tree this checkout's built extension modules (``tokmon/_native``), each
    only where its C source is the base's byte for byte (the same module; else the base runs
    without it, as it does by default): an A/B of the Python code alone."""
    here = REPO / "tokmon" / "_native"
    there = base_src / "tokmon" / "_native"
    copied = []
    for built in sorted(here.glob("_*.so")) + sorted(here.glob("_*.pyd")):
        name = built.name.split(".", 1)[0]
        src, base = here / f"{name}.c", there / f"{name}.c"
        if src.is_file() and base.is_file() and src.read_bytes() == base.read_bytes():
            shutil.copy2(built, there / built.name)
            copied.append(name)
    return copied


def _cpu_children() -> float | None:
    try:
        import resource
    except ImportError:  # Windows: no children's CPU time, the wall time stands in
        return None
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = _cpu_children()
    t = time.perf_counter()
    # cwd: the home dir, never a checkout (`python -m` would import tokmon from the cwd)
    subprocess.run(
        argv, env=env, cwd=env["HOME"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - t
    after = _cpu_children()
    return wall, wall if before is None or after is None else after - before


def setup_size(mb: float, base_src: Path, work: Path, be: Any) -> dict[str, Any]:
    """The corpus of ``mb`` and a warm ``TOKMON_HOME`` for each variant (one cold run each)."""
    corpus, _ = be.prepare_corpus(mb, 0, be.cached_corpus_dir(mb, 0))
    be.warm_page_cache(corpus)
    common = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    for k in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH"):
        common.pop(k, None)
    common.update({"CLAUDE_CONFIG_DIR": str(corpus), "HOME": str(work), "TZ": "UTC"})
    envs = {
        "base": {**common, "PYTHONPATH": str(base_src), "TOKMON_HOME": str(work / f"b{mb:g}")},
        "now": {**common, "TOKMON_HOME": str(work / f"n{mb:g}")},
    }
    for variant, env in envs.items():  # which tokmon each runs; a cold run each: warm homes
        where = subprocess.run(
            [sys.executable, "-c", "import tokmon; print(tokmon.__file__)"],
            env=env,
            cwd=env["HOME"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"{mb:g} MB, {variant}: {where}", file=sys.stderr)
        if variant == "base" and not where.startswith(str(base_src)):
            raise SystemExit(f"bench_warm: error: the base runs {where}, not {base_src}")
        _run([*TOK, "daily", "--json"], env)
    target = max(corpus.rglob("*.jsonl"), key=lambda p: p.stat().st_size)
    return {"mb": mb, "corpus": corpus, "envs": envs, "target": target, "got": {}}


def measure(sizes: list[dict[str, Any]], runs: int, be: Any) -> None:
    """Every figure of every size, the sizes and variants alternating within each round (a
    change of the machine's load moves both sides of every ratio alike)."""

    def add(sz: dict[str, Any], what: str, variant: str, m: tuple[float, float]) -> None:
        sz["got"].setdefault(what, {}).setdefault(variant, []).append(m)

    for cmd in ("pass", *WARM):
        argv = [sys.executable, "-c", "pass"] if cmd == "pass" else [*TOK, cmd, "--json"]
        for sz in sizes:
            for env in sz["envs"].values():
                _run(argv, env)  # unmeasured: a report may write its cache
        for _ in range(runs):
            for sz in sizes:
                for variant, env in sz["envs"].items():
                    add(sz, cmd, variant, _run(argv, env))
    lengths = [(sz["target"], sz["target"].stat().st_size) for sz in sizes]
    try:
        for cmd in APPEND:
            for _ in range(runs):
                for sz in sizes:
                    for variant, env in sz["envs"].items():
                        be.append_line(sz["target"])
                        add(sz, f"{cmd} after append", variant, _run([*TOK, cmd, "--json"], env))
    finally:
        for target, size in lengths:
            with open(target, "r+b") as fh:
                fh.truncate(size)


def figures(sz: dict[str, Any]) -> dict[str, Any]:
    """Medians (CPU and wall) per figure and variant, and now / base on CPU time."""
    rows = {}
    for what, per in sz["got"].items():
        row: dict[str, Any] = {}
        for variant, ms in per.items():
            row[variant] = {
                "cpu_s": statistics.median(m[1] for m in ms),
                "wall_s": statistics.median(m[0] for m in ms),
            }
        row["ratio"] = row["now"]["cpu_s"] / row["base"]["cpu_s"] if row["base"]["cpu_s"] else None
        rows[what] = row
    return {"mb": sz["mb"], "corpus": str(sz["corpus"]), "figures": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD~1", help="git revision to compare with (HEAD~1)")
    ap.add_argument("--mb", type=float, nargs="+", default=[500.0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--base-native",
        action="store_true",
        help="the base runs this checkout's extension modules where their C is the same",
    )
    args = ap.parse_args(argv)
    be = _bench_engine()
    load0 = be.load_avg()
    work = Path(tempfile.mkdtemp(prefix="tokmon-bench-warm-"))
    try:
        base_src = extract(args.base, work)
        native = copy_native(base_src) if args.base_native else []
        if args.base_native:
            print(
                f"base runs the extension modules: {', '.join(native) or 'none'}", file=sys.stderr
            )
        setups = [setup_size(mb, base_src, work, be) for mb in args.mb]
        measure(setups, args.runs, be)
        sizes = [figures(sz) for sz in setups]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {
        "base": args.base,
        "base_native": native if args.base_native else None,
        "loadavg_start": load0,
        "loadavg_end": be.load_avg(),
        "sizes": sizes,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"load average at start {load0}, at end {out['loadavg_end']}; {os.cpu_count()} CPUs")
    print(f"median of {args.runs}; CPU = child user + system s (wall s); base = {args.base}")
    if args.base_native:
        print(f"the base runs this checkout's extension modules: {', '.join(native) or 'none'}")
    for s in sizes:
        print(f"\n== {s['mb']:g} MB ({s['corpus']})")
        print(f"{'':24s}{'base':>18s}{'now':>18s}  now/base")
        for what, r in s["figures"].items():
            b, n = r["base"], r["now"]
            print(
                f"{what:24s}{b['cpu_s']:9.3f} ({b['wall_s']:.3f}){n['cpu_s']:9.3f} "
                f"({n['wall_s']:.3f})  {r['ratio']:.2f}x"
            )
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        print(
            f"\n== now, {hi['mb']:g} MB / {lo['mb']:g} MB (CPU), and <= 0.15 s at {hi['mb']:g} MB"
        )
        for what in hi["figures"]:
            if what == "pass":
                continue
            a, b = lo["figures"][what]["now"]["cpu_s"], hi["figures"][what]["now"]["cpu_s"]
            flat = "PASS" if b / a <= 1.3 else "FAIL"
            fast = "PASS" if b <= 0.15 else "FAIL"
            print(f"  {what:24s} {b / a:5.2f}x <= 1.3 {flat}   {b:.3f} s <= 0.15 {fast}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
