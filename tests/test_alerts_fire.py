"""Fire-once state: concurrent claimers, thresholds per window, the log, `watch` toasts."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tokmon.limits import alerts
from tokmon.limits.toasts import AlertToasts
from tokmon.paths import get_paths


def _status(used: float, resets: float = 2_000_000_000.0) -> dict[str, Any]:
    return {"windows": [{"source": "claude", "window": "five_hour", "label": "Claude 5-hour",
                         "basis": "official", "usedPercent": used, "officialPercent": used,
                         "resetsAt": resets, "projectedPercent": None, "eta": None}]}  # fmt: skip


def test_each_threshold_fires_once_per_window_among_concurrent_claimers(
    env: dict[str, str],
) -> None:
    paths = get_paths(env)
    cfg = alerts.AlertConfig(enabled=True, official=[50.0, 80.0])
    won: list[dict[str, Any]] = []
    lock = threading.Lock()

    def claimer(used: float) -> None:
        got = alerts.fire(paths, cfg, alerts.candidates(cfg, _status(used)), deliver=False)
        with lock:
            won.extend(got)

    threads = [threading.Thread(target=claimer, args=(u,)) for u in (55, 85, 85, 90, 60, 85)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a["threshold"] for a in won) == [50.0, 80.0]
    # a new window (another reset time) fires again
    again = alerts.fire(paths, cfg, alerts.candidates(cfg, _status(55, 2_000_100_000.0)),
                        deliver=False)  # fmt: skip
    assert [a["threshold"] for a in again] == [50.0]
    assert len(alerts.log(paths)) == 3


def test_estimates_never_fire_official_alerts_and_budgets_do() -> None:
    cfg = alerts.AlertConfig(enabled=True)
    st = _status(99.0)
    st["windows"][0]["basis"] = "estimate"
    assert alerts.candidates(cfg, st) == []
    b = {"name": "daily", "period": "day", "periodKey": "2026-03-02", "unit": "usd",
         "used": 9.0, "limit": 10.0, "percent": 90.0}  # fmt: skip
    keys = [c["key"] for c in alerts.candidates(cfg, None, [b])]
    assert keys == ["budget:daily:2026-03-02:80"]


def test_config_validation() -> None:
    assert alerts.parse(None).enabled is False
    cfg = alerts.parse({"official": 90, "webhooks": "ntfy://ntfy.sh/topic"})
    assert cfg.official == [90.0] and cfg.webhooks == ["ntfy://ntfy.sh/topic"]
    for bad in ({"official": ["x"]}, {"desktop": "yes"}, {"webhooks": ["nope"]}, {"sms": 1}):
        try:
            alerts.parse(bad)
        except alerts.AlertConfigError:
            continue
        raise AssertionError(f"accepted {bad}")


class _App:
    def __init__(self) -> None:
        self.toasts: list[str] = []

    def notify(self, message: str, **_kw: Any) -> None:
        self.toasts.append(message)


def test_watch_toasts_show_only_new_alerts(env: dict[str, str], tmp_path: Path) -> None:
    paths = get_paths(env)
    cfg = alerts.AlertConfig(enabled=True, official=[50.0, 80.0])
    alerts.fire(paths, cfg, alerts.candidates(cfg, _status(60)), deliver=False)
    app = _App()
    toasts = AlertToasts(app, paths)  # started after the 50% alert
    assert toasts.check() == [] and app.toasts == []
    alerts.fire(paths, cfg, alerts.candidates(cfg, _status(85)), deliver=False)
    assert [a["threshold"] for a in toasts.check()] == [80.0]
    assert len(app.toasts) == 1 and "threshold 80%" in app.toasts[0]
    assert toasts.check() == []


def test_watch_toasts_open_the_database_only_after_a_write(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`watch` looks every 5 s: a stat of the database, a connection only when it moved."""
    paths = get_paths(env)
    cfg = alerts.AlertConfig(enabled=True, official=[50.0, 80.0])
    alerts.fire(paths, cfg, alerts.candidates(cfg, _status(60)), deliver=False)
    app = _App()
    toasts = AlertToasts(app, paths)
    reads: list[int] = []
    real = alerts.log

    def counted(*a: Any, **kw: Any) -> Any:
        reads.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(alerts, "log", counted)
    assert toasts.check() == []  # the first look reads
    for _ in range(3):
        assert toasts.check() == []
    assert len(reads) == 1
    alerts.fire(paths, cfg, alerts.candidates(cfg, _status(85)), deliver=False)
    assert [a["threshold"] for a in toasts.check()] == [80.0]
    assert toasts.check() == []
    assert len(reads) == 2 and len(app.toasts) == 1


def test_block_projection_alerts_once_per_block(env: dict[str, str]) -> None:
    paths = get_paths(env)
    cfg = alerts.AlertConfig(enabled=True, official=[], projected=[], block=[90.0, 100.0])
    block = {"start": "2026-03-02T09:00:00.000Z", "projectedTokens": 950_000, "limit": 1_000_000}
    got = alerts.fire(paths, cfg, alerts.candidates(cfg, None, (), block), deliver=False)
    assert [(a["kind"], a["threshold"]) for a in got] == [("block", 90.0)]
    assert "950,000 tokens, 95%" in got[0]["message"]
    block["projectedTokens"] = 1_200_000
    got = alerts.fire(paths, cfg, alerts.candidates(cfg, None, (), block), deliver=False)
    assert [a["threshold"] for a in got] == [100.0]
