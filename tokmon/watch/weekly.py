"""`tokmon watch`'s weekly row: the 7-day limit window, its pace/ETA and a 7-day sparkline.

The figures are the ones ``tokmon limits`` shows (:func:`tokmon.limits.status.build`, from
``limits.sqlite``), read on a worker thread by :class:`WeeklyPoller` whenever the history file
or the engine's records changed. The row is one line laid out by priority: the official %
(or the marked estimate) always, then pace, ETA, sparkline and reset as the width allows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rich.text import Text

from tokmon import fmt

INTERVAL = 5.0
SPARK = "▁▂▃▄▅▆▇█"
DAYS = 7


@dataclass
class WeeklyView:
    """What the weekly row shows."""

    label: str
    used: float
    basis: str  # official | estimate
    stale: bool
    pace: float | None
    eta: float | None
    resets_at: float | None
    days: list[float | None] = field(default_factory=list)  # end-of-day figures, oldest first
    models: list[tuple[str, float]] = field(default_factory=list)  # per-model weekly windows


def pick_weekly(windows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Claude's 7-day window, else a Codex window of about a week."""
    for w in windows:
        if w.get("source") == "claude" and w.get("window") == "seven_day":
            return w
    for w in windows:
        length = w.get("length") or 0
        if length >= 6 * 86400 and not str(w.get("window", "")).startswith("seven_day_"):
            return w
    return None


def daily_figures(
    history: Sequence[Sequence[float]], now: float, tz: Any, days: int = DAYS
) -> list[float | None]:
    """The figure standing at the end of each of the last ``days`` days in ``tz`` (today: now),
    oldest first; None before the first point."""
    pts = sorted((float(p[0]), float(p[1])) for p in history if len(p) >= 2)
    today = datetime.fromtimestamp(now, tz).date()
    out: list[float | None] = []
    for i in range(days - 1, -1, -1):
        d = today - timedelta(days=i)
        if i == 0:
            end = now
        else:
            nxt = datetime(d.year, d.month, d.day, tzinfo=tz) + timedelta(days=1)
            end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp() - 1e-3
        value: float | None = None
        for ts, used in pts:
            if ts <= end:
                value = used
            else:
                break
        out.append(value)
    return out


def sparkline(values: Sequence[float | None]) -> str:
    """Eight-level blocks on a 0..100 scale; a blank where unknown."""
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        else:
            out.append(SPARK[round(min(100.0, max(0.0, v)) / 100.0 * (len(SPARK) - 1))])
    return "".join(out)


def weekly_view(status: Mapping[str, Any] | None, now: float, tz: Any) -> WeeklyView | None:
    """The row's figures from a ``tokmon limits --json`` status (None: no weekly window)."""
    if not isinstance(status, Mapping):
        return None
    wins = [w for w in status.get("windows") or [] if isinstance(w, Mapping)]
    w = pick_weekly(wins)
    if w is None:
        return None
    models = [(str(m.get("label", m.get("window"))), float(m.get("usedPercent") or 0.0))
              for m in wins if str(m.get("window", "")).startswith("seven_day_")]  # fmt: skip
    return WeeklyView(
        label=str(w.get("label") or "7-day"),
        used=float(w.get("usedPercent") or 0.0),
        basis=str(w.get("basis") or "official"),
        stale=bool(w.get("stale")),
        pace=w.get("pace"),
        eta=w.get("eta"),
        resets_at=w.get("resetsAt"),
        days=daily_figures(w.get("history") or [], now, tz),
        models=models,
    )


def _moment(ts: float, now: float, tz: Any) -> str:
    """``18:52`` today, else ``Tue 18:52`` within a week, else the date and time."""
    when = datetime.fromtimestamp(ts, tz)
    if fmt.date(ts, tz) == fmt.date(now, tz):
        return fmt.clock(ts, tz)
    if abs(ts - now) < 6 * 86400:
        return f"{when.strftime('%a')} {fmt.clock(ts, tz)}"
    return fmt.date_time(ts, tz)


def render_weekly(v: WeeklyView, width: int, now: float, tz: Any) -> Text:
    """One line, never wrapped: the figure always, then what fits (pace, ETA, history, reset)."""
    t = Text()
    est = v.basis == "estimate"
    pct = ("~" if est else "") + fmt.percent(v.used)
    style = "bold red" if v.used >= 90 else "bold yellow" if v.used >= 70 else "bold"
    parts: list[tuple[str, str]] = [("Week ", "bold"), (pct, style)]
    if est:
        parts.append((" ESTIMATE", "yellow"))
    elif v.stale:
        parts.append((" (stale)", "dim"))
    opt: list[tuple[str, str]] = []
    if v.pace is not None:
        over = v.pace > 1.0
        opt.append((f"  pace {v.pace:.2f}x", "bold red" if over else ""))
        if v.eta is not None:
            opt.append((f"  100% {_moment(v.eta, now, tz)}", "bold red"))
        else:
            opt.append(("  100% not before reset", "dim"))
    if any(d is not None for d in v.days):
        opt.append((f"  {sparkline(v.days)}", "cyan"))
    if v.resets_at is not None:
        opt.append((f"  resets {_moment(v.resets_at, now, tz)}", "dim"))
    for label, used in v.models:
        opt.append((f"  {label.split()[-1]} {fmt.percent(used)}", "dim"))
    used_w = 0
    for text, st in parts:
        t.append(text, style=st)
        used_w += len(text)
    for text, st in opt:
        if width > 0 and used_w + len(text) > width:
            continue  # later, shorter parts may still fit
        t.append(text, style=st)
        used_w += len(text)
    return t


class WeeklyPoller:
    """Reads the limits status off the UI thread when ``limits.sqlite`` or the records moved."""

    def __init__(self, app: Any, paths: Any) -> None:
        self.app = app
        self.paths = paths
        self.status: dict[str, Any] | None = None
        self._key: Any = None
        self._busy = False

    def _records(self) -> list[Any]:
        eng = getattr(getattr(self.app, "refresher", None), "engine", None)
        try:
            return list(getattr(eng, "records", None) or [])
        except Exception:  # noqa: BLE001 - estimates are optional
            return []

    def _others(self) -> dict[str, Any]:
        """Codex's records of the dashboard's engine (its windows' calibration and estimate)."""
        eng = getattr(getattr(self.app, "refresher", None), "engine", None)
        try:
            from tokmon.limits.run import agent_records

            return agent_records(eng, ("codex",))
        except Exception:  # noqa: BLE001 - estimates are optional
            return {}

    def tick(self) -> None:
        """Called on the UI thread; the read runs on a worker thread."""
        if self._busy:
            return
        try:
            from tokmon.limits.history import db_stamp

            key = (db_stamp(self.paths), len(self._records()), int(time.time() // 60))
        except Exception:  # noqa: BLE001
            return
        if key == self._key:
            return
        self._key = key
        self._busy = True
        self.app.run_worker(self._load, thread=True, exclusive=False, group="tokmon-weekly")

    def _load(self) -> None:
        try:
            from tokmon.limits import history
            from tokmon.limits import status as limits_status

            if not history.db_path(self.paths).exists():
                st = None
            else:
                st = limits_status.build(self.paths, self._records(), others=self._others())
        except Exception:  # noqa: BLE001 - the row just stays hidden
            st = None
        finally:
            self._busy = False
        try:
            self.app.call_from_thread(self._apply, st)
        except RuntimeError:  # the app is shutting down
            pass

    def _apply(self, st: dict[str, Any] | None) -> None:
        self.status = st
        redraw = getattr(self.app, "redraw", None)
        if redraw is not None:
            redraw()


def start(app: Any, env: Any = None) -> WeeklyPoller | None:
    """Start polling on a Textual app (never raises: the weekly row is optional)."""
    try:
        from tokmon.paths import get_paths

        # the dashboard's own paths (--demo, config overrides), else the environment's
        paths = getattr(getattr(app, "refresher", None), "paths", None) or get_paths(env)
        poller = WeeklyPoller(app, paths)
        app.set_interval(INTERVAL, poller.tick)
        app.call_later(poller.tick)
        return poller
    except Exception:  # noqa: BLE001
        return None
