#!/usr/bin/env python3
"""Benchmark the metric computation behind ``/metrics`` and OTLP exports.

    python bench/bench_export.py [--records 500000] [--projects 200] [--models 6]

Builds synthetic deduplicated records in memory and times (median of 3) the counter
recompute that follows any ledger change and the Prometheus text exposition of the result.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--models", type=int, default=6)
    a = ap.parse_args()

    from prometheus_client.exposition import generate_latest

    from tokmon.core.machines import MachineMap
    from tokmon.core.model import UsageRecord
    from tokmon.export.prometheus import build_registry
    from tokmon.export.series import AGENT, CostFloor, ProjectLabels, Series, _counters

    recs = [
        UsageRecord(
            1.7e9 + i,
            f"s{i % 3000}",
            f"/w/p{i % a.projects}",
            f"claude-m{i % a.models}",
            10,
            20,
            30,
            0,
            40,
            f"k{i}",
            0.01,
        )
        for i in range(a.records)
    ]
    mm = MachineMap(Path("/nonexistent/machines.json"))

    def timed(fn: Any) -> tuple[float, Any]:
        runs = []
        out = None
        for _ in range(3):
            t = time.perf_counter()
            out = fn()
            runs.append(time.perf_counter() - t)
        return statistics.median(runs), out

    t_counters, series = timed(
        lambda: _counters([(AGENT, recs)], mm, "bench", ProjectLabels(None, 20), False)
    )
    assert isinstance(series, Series)
    floor = CostFloor(None)  # the monotonic cost counter's pass (in memory here)
    t_floor, _ = timed(lambda: floor.apply(series.cost, "bench-prices"))
    reg = build_registry(lambda: series)
    t_expo, text = timed(lambda: generate_latest(reg))
    print(
        json.dumps(
            {
                "records": a.records,
                "counters_s": round(t_counters, 3),
                "cost_floor_s": round(t_floor, 5),
                "exposition_s": round(t_expo, 4),
                "exposition_bytes": len(text),
                "token_series": len(series.tokens),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
