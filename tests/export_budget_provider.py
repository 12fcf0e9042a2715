"""A metrics gauge provider for the export tests (TOKMON_METRICS_PROVIDERS), standing in for
the budget provider of issue 15: a fixed monthly budget against the ledger's all-time cost."""

from __future__ import annotations

from typing import Any

from tokmon.export.series import Gauge

BUDGET_USD = 1000.0


def gauges(engine: Any) -> list[Gauge]:
    spent = sum(r.cost for r in engine.records)
    return [
        Gauge(
            "budget_used_ratio",
            "share of the budget used",
            {"period": "month", "scope": "all"},
            spent / BUDGET_USD,
        )
    ]
