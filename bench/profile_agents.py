#!/usr/bin/env python3
"""Where a cold ``tokmon daily --json --agent all`` spends its time, on a mixed corpus.

    python bench/profile_agents.py [--mb 500] [--seed 0] [--keep DIR] [--runs 3] [--json]

Generates (or reuses, in ``--keep``) the corpus of bench/bench_agents.py (Claude + Codex +
Gemini, 8 Gemini chats in two folders) and warms the page cache. Each run is one fresh process
with a fresh TOKMON_HOME that wraps a few functions with wall-clock timers (no profiler: a
profile slows pure-Python code far more than C code and skews the split), then runs the CLI:

* start-up: imports, argument parsing, opening the store (until the agents' refresh);
* agents' readers: each agent's ``Source.read`` summed over its files, and the agents'
  refresh as a whole (readers + record checks + conversion to engine records);
* Claude scan: the engine's read of the Claude transcripts, *including* the store's merge
  transaction of everything read, which is also shown on its own (``Store._commit``);
* report: computing the report from the store; the rest is printing and exit.

Prints the median of each part over ``--runs``. Parts are found by name; one the code no
longer has prints as "-".
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# (label, module, class, method): wall time spent inside that method (outermost calls only).
PARTS = (
    ("agents' refresh (all six)", "tokmon.core.agents", "AgentStore", "refresh"),
    ("  codex reader", "tokmon.sources.codex", "CodexSource", "read"),
    ("  gemini reader", "tokmon.sources.gemini", "GeminiSource", "read"),
    ("claude scan + merge", "tokmon.core.engine.ingest", "Ingest", "_read"),
    ("  store merge (Store._commit)", "tokmon.core.engine.store", "Store", "_commit"),
    ("report", "tokmon.core.engine.queries", "Queries", "report"),
)


def _child(out: Path, argv: list[str]) -> int:
    """Run the CLI in this process with timers around PARTS; write the seconds to ``out``."""
    t0 = time.perf_counter()
    spent: dict[str, float] = defaultdict(float)
    first: dict[str, float] = {}
    for label, mod, cls_name, meth in PARTS:
        try:
            cls = getattr(importlib.import_module(mod), cls_name)
            fn = cls.__dict__[meth]
        except (ImportError, AttributeError, KeyError):
            continue

        def timed(fn: Callable[..., Any] = fn, label: str = label) -> Callable[..., Any]:
            depth = [0]

            def wrapper(*a: Any, **k: Any) -> Any:
                depth[0] += 1
                t = time.perf_counter()
                first.setdefault(label, t)
                try:
                    return fn(*a, **k)
                finally:
                    depth[0] -= 1
                    if depth[0] == 0:
                        spent[label] += time.perf_counter() - t

            return wrapper

        setattr(cls, meth, timed())
    from tokmon.cli.main import run

    code = run(argv)
    end = time.perf_counter()
    starts = [v for k, v in first.items() if not k.startswith(" ")]
    result: dict[str, float] = {"total": end - t0}
    if starts:
        result["start-up (imports, open store)"] = min(starts) - t0
    result.update(spent)
    out.write_text(json.dumps(result))
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=500.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gemini-copies", type=int, default=8)
    ap.add_argument("--keep", type=Path, default=None, help="generate into / reuse this dir")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args(argv)
    if args.child is not None:
        return _child(args.child, rest)
    if args.runs < 1:
        ap.error("--runs must be positive")
    sys.path.insert(0, str(HERE))
    from bench_agents import prepare, warm_page_cache

    dest, truth, temporary = prepare(args.mb, args.seed, args.gemini_copies, args.keep)
    work = Path(tempfile.mkdtemp(prefix="tokmon-agents-prof-"))
    runs: dict[str, list[float]] = defaultdict(list)
    try:
        warm_page_cache(dest)
        (work / "home").mkdir()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TOKMON_", "CLAUDE_", "CODEX_", "GEMINI_", "OPENCODE_", "QWEN_"))
            and k not in ("AMP_DATA_DIR", "COPILOT_HOME")
        }
        env.update(HOME=str(work / "home"), TZ="UTC", NO_COLOR="1")
        env.update({k: str(dest / v) for k, v in truth["env"].items()})
        for i in range(args.runs):
            out = work / f"run-{i}.json"
            subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--child", str(out)]
                + ["daily", "--json", "--agent", "all"],
                env={**env, "TOKMON_HOME": str(work / f"tokmon-{i}")},
                check=True,
                stdout=subprocess.DEVNULL,
                timeout=600,
            )
            for k, v in json.loads(out.read_text()).items():
                runs[k].append(v)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if temporary:
            shutil.rmtree(dest.parent, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    if args.json:
        print(json.dumps({"runs": args.runs, "median_s": med}, indent=2))
        return 0
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"cold `tokmon daily --json --agent all`: medians of {args.runs} runs{load}")
    total = med.get("total") or 1.0
    labels = ["total", "start-up (imports, open store)", *(p[0] for p in PARTS)]
    for label in labels:
        v = med.get(label)
        shown = "      -" if v is None else f"{v:7.3f} s {100 * v / total:5.1f}%"
        print(f"  {label:34}{shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
