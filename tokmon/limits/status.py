"""What ``tokmon limits`` shows: every official window with pace, forecast and estimate.

Per window (newest figure of each ``(source, window)``):
``usedPercent`` and ``basis`` (``official`` or ``estimate``), ``observedAt`` (when the
figure last changed), ``seenAt`` (last time Claude Code confirmed it), ``ageSeconds``,
``resetsAt``, ``resetsInSeconds``, the pace fields of :mod:`tokmon.limits.pace`, and the
calibration of :mod:`tokmon.limits.calibrate`.

An **estimate** replaces the official figure when the figure is no longer current: local
usage happened after it was seen (``used + local cost since / dollarsPerPercent``; Claude's
windows only: Codex writes its figure with every response, and the history keeps only
changes, so a later Codex turn does not make the figure old), or its window has reset (local
cost of that agent since the new window opened / ``dollarsPerPercent``). Without a calibration
there is no estimate and the official figure is marked ``stale``.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from tokmon.limits import calibrate as cal
from tokmon.limits import history
from tokmon.limits.pace import pace

#: how far back each window's ``history`` goes (the surfaces' charts and sparklines)
HISTORY_SECONDS = 8 * 86400.0
#: at most this many points per window's ``history`` (the newest)
HISTORY_POINTS = 500

LABELS = {"five_hour": "5-hour", "seven_day": "7-day", "primary": "primary",
          "secondary": "secondary"}  # fmt: skip


def label(source: str, window: str, length: float | None) -> str:
    """``Claude 5-hour``, ``Claude 7-day opus``, ``Codex 5-hour`` ..."""
    name = LABELS.get(window)
    if name is None and window.startswith("seven_day_"):
        name = "7-day " + window[len("seven_day_") :].replace("_", " ")
    if source == "codex" and length:
        hours = length / 3600.0
        name = f"{round(hours):g}-hour" if hours < 48 else f"{round(hours / 24):g}-day"
    return f"{source.capitalize()} {name or window.replace('_', ' ')}"


def _claude_seen(paths: Any) -> float | None:
    try:
        from tokmon.core import official

        rec = official.latest(paths)
    except Exception:
        return None
    if not rec:
        return None
    seen = [w.get("observedAt") for w in (rec.get("fiveHour"), rec.get("sevenDay"))
            if isinstance(w, dict)]  # fmt: skip
    nums = [s for s in seen if isinstance(s, (int, float))]
    return max(nums) if nums else None


def _roll_forward(start: float, length: float, now: float) -> float:
    """The start of the window of ``length`` containing ``now``, continuing from ``start``."""
    if now < start:
        return start
    return start + ((now - start) // length) * length


def window_status(
    inst: history.WindowInstance,
    now: float,
    records: Sequence[Any],
    times: Sequence[float],
    calib: Mapping[str, Any] | None,
    seen: float | None = None,
) -> dict[str, Any]:
    """Status of the newest instance of one window kind (see module doc)."""
    last = inst.last
    seen_at = max(last.ts, seen) if seen is not None and inst.source == "claude" else last.ts
    p = pace(last.used, last.ts, last.resets_at, last.length)
    out: dict[str, Any] = {
        "source": inst.source, "window": inst.window,
        "label": label(inst.source, inst.window, last.length), "length": last.length,
        "basis": "official", "usedPercent": last.used, "officialPercent": last.used,
        "observedAt": last.ts, "seenAt": seen_at, "ageSeconds": max(0.0, now - seen_at),
        "resetsAt": last.resets_at,
        "resetsInSeconds": None if last.resets_at is None else last.resets_at - now,
        "stale": False, **p, "peak": inst.peak, "calibration": calib or None,
    }  # fmt: skip
    dpp = (calib or {}).get("dollarsPerPercent")
    resets_at = last.resets_at
    if resets_at is not None and resets_at <= now:
        out["stale"] = True
        out["officialPercent"] = None
        out.update(pace(0.0, now, None, None))
        if dpp and last.length:
            if inst.window.startswith("five_hour"):
                # Claude's 5-hour window opens at the first request after the reset
                i = bisect.bisect_right(times, resets_at)
                start = times[i] if i < len(times) else None
                if start is not None and now - start >= last.length:
                    start = None  # that window has closed too
            else:
                start = _roll_forward(resets_at, last.length, now)
                if inst.source != "claude" and bisect.bisect_left(times, start) == len(times):
                    # no request in the rolled-forward window: where another agent's window
                    # opens is not in its logs, so none is shown as open (no reset time)
                    start = None
            cost = cal.usage_between(records, times, start, now)[0] if start is not None else 0.0
            est_used = cost / dpp
            out.update(
                basis="estimate",
                usedPercent=est_used,
                stale=False,
                resetsAt=None if start is None else start + last.length,
                estimatedFrom={"since": start, "localCost": cost},
            )
            if start is not None:
                out["resetsInSeconds"] = start + last.length - now
                out.update(pace(est_used, now, start + last.length, last.length))
            else:
                out["resetsInSeconds"] = None
                out.update(pace(0.0, now, None, None))
        return out
    if inst.source == "claude":
        cost = cal.usage_between(records, times, seen_at + 1e-6, now)[0] if records else 0.0
        if cost > 0:
            if dpp:
                est_used = last.used + cost / dpp
                out.update(
                    basis="estimate",
                    usedPercent=est_used,
                    estimatedFrom={"since": seen_at, "localCost": cost},
                )
                out.update(pace(est_used, now, last.resets_at, last.length))
            else:
                out["stale"] = True
    return out


def window_history(
    obs: Sequence[history.Obs], source: str, window: str, now: float
) -> list[list[float]]:
    """``[[ts, used %], ...]`` of one window over the last :data:`HISTORY_SECONDS` up to
    ``now`` (official figures only, one point per change, oldest first)."""
    lo = now - HISTORY_SECONDS
    pts = [[o.ts, o.used] for o in obs
           if o.source == source and o.window == window and lo <= o.ts <= now]  # fmt: skip
    return pts[-HISTORY_POINTS:]


def build(
    paths: Any,
    records: Sequence[Any] = (),
    now: float | None = None,
    claude_seen: float | None = None,
    use_official_file: bool = True,
    others: Mapping[str, Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """``{"generatedAt", "windows": [...] (each with its ``history``), "past": [...], "markers": [...],
    "limitReached": [...], "calibration": {...}}``.

    ``records``: Claude Code's local usage (sorted by time); ``others``: other sources' with
    official windows (``{"codex": records}``), for their calibration and estimates."""
    now = history.now() if now is None else now
    with history.opened(paths) as con:
        obs = history.observations(con)
        marks = history.markers(con)
    insts = history.instances(obs)
    local: dict[str, tuple[list[Any], list[float]]] = {}
    for source, recs in {**(others or {}), "claude": records}.items():
        lst = list(recs)
        local[source] = (lst, [r.ts for r in lst])
    calib = cal.calibrate(insts, local["claude"][0],
                          {s: v[0] for s, v in local.items() if s != "claude"})  # fmt: skip
    if claude_seen is None and use_official_file:
        claude_seen = _claude_seen(paths)
    newest: dict[tuple[str, str], history.WindowInstance] = {}
    for inst in insts:
        newest[(inst.source, inst.window)] = inst
    windows = []
    for _k, inst in sorted(newest.items()):
        c = calib.get(inst.window)
        recs, times = local.get(inst.source, ([], []))
        windows.append(window_status(inst, now, recs, times,
                                     c if c is not None and c["source"] == inst.source else None,
                                     claude_seen))  # fmt: skip
    for w in windows:
        w["history"] = window_history(obs, w["source"], w["window"], now)
    past = [
        {
            "source": i.source,
            "window": i.window,
            "label": label(i.source, i.window, i.length),
            "start": i.start,
            "resetsAt": i.resets_at,
            "peakPercent": i.peak,
            "lastPercent": i.last.used,
            "observations": len(i.obs),
        }
        for i in insts
        if i is not newest[(i.source, i.window)] or (i.resets_at is not None and i.resets_at <= now)
    ]
    past.sort(key=lambda d: d["resetsAt"] or 0, reverse=True)
    markers: list[dict[str, Any]] = [{"source": s, "ts": t, "resetsAt": r} for s, t, r in marks]
    return {
        "generatedAt": now,
        "windows": windows,
        "past": past,
        "markers": markers,
        "limitReached": [m for m in markers if m["resetsAt"] > now],
        "calibration": calib,
    }
