#!/usr/bin/env python3
"""Benchmark tokmon's engine against ccusage on a generated corpus, side by side.

    python bench/bench_engine.py [--mb 500] [--seed 0] [--keep DIR] [--runs 3] [--json]

Measures, for ``tokmon daily --json`` (a subprocess, fresh TOKMON_HOME for the cold run) and
``ccusage claude daily --json --offline`` (when installed: env TOKMON_CCUSAGE or
<repo>/.cache/ccusage/node_modules/.bin/ccusage):

* cold: full scan (tokmon with an empty TOKMON_HOME; ccusage has no cache, so every run is one)
  (median of --runs)
* warm: run again with nothing changed (median of --runs)
* append: run after appending one complete assistant line to the largest session file
  (median of --runs; the file is truncated back afterwards)
* peak RSS of the child process

and prints PASS/FAIL against the targets: cold <= 0.5x ccusage, warm <= 0.25 s,
after-append <= 0.35 s, cold peak RSS <= 150 MB. The OS page cache is warmed first (every
file read once), so "cold" means "no tokmon state", not "nothing in RAM".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"cold_ratio": 0.5, "warm_s": 0.25, "append_s": 0.35, "cold_rss_mb": 150.0}

# Runs argv[3:] with stdout to argv[1]; argv[2] == "1" samples the tree RSS; prints {"wall": s, "rss_kb": peak RSS of the largest
# descendant (getrusage), "tree_kb": peak summed RSS of the process tree (psutil sampling)}.
_WRAPPER = r"""
import json, subprocess, sys, time
try:
    import psutil
except ImportError:
    psutil = None
t = time.perf_counter()
tree = 0
with open(sys.argv[1], "wb") as out:
    proc = subprocess.Popen(sys.argv[3:], stdout=out, stderr=subprocess.DEVNULL)
    if psutil is not None and sys.argv[2] == "1":
        try:
            ps = psutil.Process(proc.pid)
            while proc.poll() is None:
                try:
                    rss = ps.memory_info().rss
                    for ch in ps.children(recursive=True):
                        try:
                            rss += ch.memory_info().rss
                        except psutil.Error:
                            pass
                    tree = max(tree, rss)
                except psutil.Error:
                    pass
                time.sleep(0.005)
        except psutil.Error:
            pass
    rc = proc.wait()
wall = time.perf_counter() - t
try:
    import resource
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if sys.platform == "darwin":
        rss //= 1024
except ImportError:
    rss = None
print(json.dumps({"wall": wall, "rss_kb": rss, "tree_kb": tree // 1024 or None, "rc": rc}))
"""


def ccusage_path() -> Path | None:
    env = os.environ.get("TOKMON_CCUSAGE")
    p = Path(env) if env else REPO / ".cache" / "ccusage" / "node_modules" / ".bin" / "ccusage"
    return p if p.is_file() and os.access(p, os.X_OK) else None


def measure(
    cmd: list[str], env: dict[str, str], out_file: Path, sample: bool = False
) -> dict[str, Any]:
    """Run ``cmd`` once under the wrapper; wall seconds and peak RSS (MB).

    ``sample`` also polls the whole process tree's RSS with psutil (catches worker
    processes, but the polling costs CPU: such runs are used for memory only)."""
    res = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(out_file), "1" if sample else "0", *cmd],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    if res.returncode != 0:
        raise RuntimeError(f"wrapper failed: {res.stderr.strip()}")
    fig = json.loads(res.stdout.strip().splitlines()[-1])
    if fig["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} exited {fig['rc']}")
    peaks = [v for v in (fig["rss_kb"], fig["tree_kb"]) if v]
    return {"wall": fig["wall"], "rss_mb": max(peaks) / 1024 if peaks else None}


def prepare_corpus(mb: float, seed: int, keep: Path | None) -> tuple[Path, bool]:
    """Return (config dir, temporary?); reuse ``keep`` when it holds a corpus of that size."""
    from tokmon.demo import Expected, generate
    from tokmon.fsutil import atomic_write

    if keep is not None:
        exp_file = keep / "expected.json"
        if exp_file.is_file():
            exp = Expected.from_json(exp_file.read_bytes())
            if exp.size_mb == mb and exp.seed == seed:
                print(f"reusing corpus {keep}", file=sys.stderr)
                return keep, False
            raise SystemExit(
                f"bench_engine: error: {keep} holds another corpus "
                f"({exp.size_mb} MB, seed {exp.seed}); pick another --keep dir"
            )
        dest, temporary = keep, False
    else:
        dest, temporary = Path(tempfile.mkdtemp(prefix="tokmon-bench-")) / "claude", True
    t = time.perf_counter()
    try:
        exp = generate(dest, size_mb=mb, seed=seed)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"bench_engine: error: {exc}") from None
    atomic_write(dest / "expected.json", exp.to_json(), fsync=False)
    print(
        f"generated {exp.total_bytes / 2**20:.0f} MiB ({len(exp.files)} files) in "
        f"{time.perf_counter() - t:.1f}s at {dest}",
        file=sys.stderr,
    )
    return dest, temporary


def warm_page_cache(dest: Path) -> None:
    for p in (dest / "projects").rglob("*.jsonl"):
        with open(p, "rb") as fh:
            while fh.read(1 << 22):
                pass


def append_line(path: Path) -> None:
    """Append one complete assistant line (a new API response) to a session file."""
    sid = path.stem
    cwd = "/bench"
    with open(path, "rb") as fh:
        for raw in fh:
            if b'"cwd":' in raw:
                try:
                    cwd = json.loads(raw).get("cwd", cwd)
                    break
                except ValueError:
                    continue
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
    line = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": sid,
        "version": "2.1.42",
        "gitBranch": "main",
        "message": {
            "model": "claude-sonnet-4-5-20250929",
            "id": "msg_01bench" + uuid.uuid4().hex[:16],
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 3,
                "cache_creation_input_tokens": 120,
                "cache_read_input_tokens": 40_000,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 120,
                    "ephemeral_1h_input_tokens": 0,
                },
                "output_tokens": 42,
                "service_tier": "standard",
            },
        },
        "requestId": "req_011Cbench" + uuid.uuid4().hex[:12],
        "type": "assistant",
        "uuid": str(uuid.uuid4()),
        "timestamp": ts,
    }
    with open(path, "ab") as fh:
        fh.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")


def bench_tool(
    name: str, cmd: list[str], env_for: Any, target: Path, runs: int, work: Path
) -> dict[str, Any]:
    """cold, warm (median), after-append (median) figures for one tool."""
    out = work / f"{name}.out"
    colds = [measure(cmd, env_for(True), out) for _ in range(runs)]
    first_output = out.read_bytes()
    cold_mem = measure(cmd, env_for(True), out, sample=True)
    # the warm runs reuse the state of the last cold run
    warm = [measure(cmd, env_for(False), out) for _ in range(runs)]
    size = target.stat().st_size
    appended = []
    try:
        for _ in range(runs):
            append_line(target)
            appended.append(measure(cmd, env_for(False), out))
    finally:
        with open(target, "r+b") as fh:
            fh.truncate(size)
    return {
        "cold_s": statistics.median(m["wall"] for m in colds),
        "cold_rss_mb": max((m["rss_mb"] or 0) for m in (*colds, cold_mem)) or None,
        "warm_s": statistics.median(m["wall"] for m in warm),
        "warm_rss_mb": max((m["rss_mb"] or 0) for m in warm) or None,
        "append_s": statistics.median(m["wall"] for m in appended),
        "append_rss_mb": max((m["rss_mb"] or 0) for m in appended) or None,
        "output": first_output,
    }


def check_totals(output: bytes, dest: Path) -> str:
    """Compare a daily --json output's token totals with the corpus's expected.json."""
    from tokmon.demo import Expected

    try:
        totals = json.loads(output)["totals"]
        exp = Expected.from_json((dest / "expected.json").read_bytes())
    except (ValueError, KeyError, OSError) as exc:
        return f"unreadable ({exc})"
    ours = (
        totals["inputTokens"],
        totals["outputTokens"],
        totals["cacheCreationTokens"],
        totals["cacheReadTokens"],
        totals["totalTokens"],
    )
    return (
        "match" if ours == exp.totals.as_tuple() else f"MISMATCH {ours} != {exp.totals.as_tuple()}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="tokmon vs ccusage engine benchmark")
    ap.add_argument("--mb", type=float, default=500.0, help="corpus size in MiB (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="generate into / reuse this dir instead of a temp dir",
    )
    ap.add_argument("--runs", type=int, default=3, help="warm/append repetitions (median)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.mb <= 0 or args.runs < 1:
        ap.error("--mb and --runs must be positive")

    dest, temporary = prepare_corpus(args.mb, args.seed, args.keep)
    work = Path(tempfile.mkdtemp(prefix="tokmon-bench-work-"))
    try:
        warm_page_cache(dest)
        mains = [
            p for p in (dest / "projects").glob("*/*.jsonl") if not p.name.startswith("agent-")
        ]
        target = max(mains, key=lambda p: p.stat().st_size)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
        base.update(
            {"CLAUDE_CONFIG_DIR": str(dest), "HOME": str(work), "TZ": "UTC", "NO_COLOR": "1"}
        )
        homes = iter(range(1_000_000))
        state = {"home": ""}

        def tokmon_env(cold: bool) -> dict[str, str]:
            if cold:
                state["home"] = str(work / f"tokmon-home-{next(homes)}")
            return {**base, "TOKMON_HOME": state["home"]}

        results: dict[str, Any] = {
            "corpus": {
                "dir": str(dest),
                "mb": args.mb,
                "bytes": sum(p.stat().st_size for p in (dest / "projects").rglob("*.jsonl")),
                "append_target": str(target.relative_to(dest)),
            }
        }
        tok = bench_tool(
            "tokmon",
            [sys.executable, "-m", "tokmon", "daily", "--json"],
            tokmon_env,
            target,
            args.runs,
            work,
        )
        results["tokmon"] = tok
        tok["totals_check"] = check_totals(tok.pop("output"), dest)
        cc_bin = ccusage_path()
        if cc_bin is not None:
            cc = bench_tool(
                "ccusage",
                [str(cc_bin), "claude", "daily", "--json", "--offline"],
                lambda cold: base,
                target,
                args.runs,
                work,
            )
            cc["totals_check"] = check_totals(cc.pop("output"), dest)
            results["ccusage"] = cc
        else:
            results["ccusage"] = None
        results["verdict"] = verdict(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if temporary:
            shutil.rmtree(dest.parent, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 0


def verdict(r: dict[str, Any]) -> dict[str, Any]:
    tok, cc = r["tokmon"], r["ccusage"]
    ratio = tok["cold_s"] / cc["cold_s"] if cc else None
    rss = tok["cold_rss_mb"]
    return {
        "cold_ratio": ratio,
        "cold_ratio_pass": None if ratio is None else ratio <= TARGETS["cold_ratio"],
        "warm_pass": tok["warm_s"] <= TARGETS["warm_s"],
        "append_pass": tok["append_s"] <= TARGETS["append_s"],
        "cold_rss_pass": None if rss is None else rss <= TARGETS["cold_rss_mb"],
        "targets": TARGETS,
    }


def print_table(r: dict[str, Any]) -> None:
    c = r["corpus"]
    print(
        f"corpus: {c['bytes'] / 2**20:.0f} MiB at {c['dir']} (append target {c['append_target']})"
    )
    tok, cc = r["tokmon"], r["ccusage"]

    def cell(d: dict[str, Any] | None, key: str, fmt: str) -> str:
        if d is None or d.get(key) is None:
            return "n/a"
        return fmt.format(d[key])

    print(f"{'':22}{'tokmon':>12}{'ccusage':>12}")
    rows = [
        ("cold full scan (s)", "cold_s", "{:.3f}"),
        ("warm, no change (s)", "warm_s", "{:.3f}"),
        ("after 1-line append (s)", "append_s", "{:.3f}"),
        ("cold peak RSS (MB)", "cold_rss_mb", "{:.0f}"),
        ("warm peak RSS (MB)", "warm_rss_mb", "{:.0f}"),
        ("totals vs expected", "totals_check", "{}"),
    ]
    for label, key, fmt in rows:
        print(f"{label:22}{cell(tok, key, fmt):>12}{cell(cc, key, fmt):>12}")
    v = r["verdict"]

    def pf(ok: bool | None) -> str:
        return "n/a (ccusage not installed)" if ok is None else ("PASS" if ok else "FAIL")

    ratio = "n/a" if v["cold_ratio"] is None else f"{v['cold_ratio']:.2f}x"
    print(f"cold ratio tokmon/ccusage: {ratio}")
    print(f"  cold <= {TARGETS['cold_ratio']}x ccusage: {pf(v['cold_ratio_pass'])}")
    print(f"  warm <= {TARGETS['warm_s']} s: {pf(v['warm_pass'])}")
    print(f"  after-append <= {TARGETS['append_s']} s: {pf(v['append_pass'])}")
    print(f"  cold peak RSS <= {TARGETS['cold_rss_mb']:.0f} MB: {pf(v['cold_rss_pass'])}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"bench_engine: error: {exc}", file=sys.stderr)
        sys.exit(2)
