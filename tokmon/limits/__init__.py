"""Official plan limits: history, pace, calibration, alerts and their notifiers.

* :mod:`tokmon.limits.record`    the cheap recorder the statusline calls (stdlib only)
* :mod:`tokmon.limits.history`   the SQLite time series (``<data_dir>/limits.sqlite``)
* :mod:`tokmon.limits.ingest`    Codex ``rate_limits`` and Claude limit-reached markers
* :mod:`tokmon.limits.pace`      pace, projection and ETA of one window (pure)
* :mod:`tokmon.limits.calibrate` tokens / dollars per percent learned from history
* :mod:`tokmon.limits.status`    what ``tokmon limits`` shows
* :mod:`tokmon.limits.alerts`    thresholds, fire-once state, the alert log
* :mod:`tokmon.limits.notifiers` terminal, desktop, webhooks (apprise)
* :mod:`tokmon.limits.run`       one evaluation pass shared by the CLI and the server
* :mod:`tokmon.limits.monitor`   the language server's watcher of the above
* :mod:`tokmon.limits.toasts`    ``tokmon watch``'s alert toasts
"""
