"""A metrics gauge provider for the export tests (``TOKMON_METRICS_PROVIDERS``): proves that
a plugin's gauges reach the exposition, next to the built-in ones (budgets included)."""

from __future__ import annotations

from typing import Any

from tokmon.export.series import Gauge

REFERENCE_USD = 1000.0


def gauges(engine: Any) -> list[Gauge]:
    spent = sum(r.cost for r in engine.records)
    return [
        Gauge(
            "plugin_spend_ratio",
            "all-time spend against a reference amount (test plugin)",
            {"scope": "all"},
            spent / REFERENCE_USD,
        )
    ]
