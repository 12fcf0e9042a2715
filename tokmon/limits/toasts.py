"""`tokmon watch`'s terminal channel: new alerts (fired by any process) as Textual toasts."""

from __future__ import annotations

from typing import Any

INTERVAL = 5.0


class AlertToasts:
    """Polls the alert log and shows each alert fired after ``watch`` started once."""

    def __init__(self, app: Any, paths: Any) -> None:
        self.app = app
        self.paths = paths
        self._stamp: Any = None  # the history database's (mtime, size) at the last look
        self.last_id = self._newest()

    def _newest(self) -> int:
        from tokmon.limits import alerts

        try:
            rows = alerts.log(self.paths, limit=1)
        except Exception:
            return 0
        return int(rows[0]["id"]) if rows else 0

    def check(self) -> list[dict[str, Any]]:
        """Show (and return) the alerts fired since the last check."""
        from tokmon.limits import alerts
        from tokmon.limits.history import db_stamp

        # a stat of the database and its WAL instead of a connection every INTERVAL: a new
        # alert is a write, which moves one of them (taken before the read: a write during
        # the read is read again next time)
        stamp = db_stamp(self.paths)
        if stamp == self._stamp:
            return []
        try:
            rows = alerts.log(self.paths, after_id=self.last_id)
        except Exception:
            return []
        self._stamp = stamp
        for a in rows:
            self.last_id = max(self.last_id, int(a["id"]))
            self.app.notify(a["message"], title="tokmon alert", severity="warning", timeout=30)
        return rows


def watch_alerts(app: Any, env: Any = None) -> AlertToasts | None:
    """Start the poller on a Textual app (never raises: alerts are optional in `watch`)."""
    try:
        from tokmon.paths import get_paths

        toasts = AlertToasts(app, get_paths(env))
        app.set_interval(INTERVAL, toasts.check)
        return toasts
    except Exception:
        return None
