"""Pace, projection and ETA of one official window (pure functions).

For a figure ``used`` (%) observed at ``t`` in a window of ``length`` seconds that
resets at ``resets_at``, the window started at ``start = resets_at - length`` and:

* ``elapsed %``   = ``(t - start) / length * 100``
* ``pace``        = ``used % / elapsed %`` (1.0: on course to end exactly at 100 %)
* ``projected %`` = ``used * length / (t - start)`` - the average rate since the window
  opened, carried to the reset
* ``ETA 100 %``   = ``start + (t - start) * 100 / used`` when that is before the reset

The average since the window opened is used (not a recent slope): Claude's 5-hour window
opens at the first request and the weekly one spans idle nights, so the window average is
what "at this pace" means over the whole window.
"""

from __future__ import annotations

from typing import Any

#: elapsed shares below this give no projection (a minute into a week says nothing)
MIN_ELAPSED_FRACTION = 0.01


def pace(used: float, ts: float, resets_at: float | None, length: float | None) -> dict[str, Any]:
    """``{"start", "elapsedPercent", "pace", "projectedPercent", "eta"}`` (None where unknown)."""
    out: dict[str, Any] = {"start": None, "elapsedPercent": None, "pace": None,
                           "projectedPercent": None, "eta": None}  # fmt: skip
    if resets_at is None or not length or length <= 0:
        return out
    start = resets_at - length
    elapsed = min(max(ts - start, 0.0), length)
    out["start"] = start
    out["elapsedPercent"] = elapsed * 100.0 / length
    if elapsed < MIN_ELAPSED_FRACTION * length:
        return out
    out["pace"] = used / out["elapsedPercent"]
    out["projectedPercent"] = used * length / elapsed
    if used >= 100.0:
        out["eta"] = ts  # already there
    elif used > 0:
        eta = start + elapsed * 100.0 / used
        out["eta"] = eta if eta < resets_at else None
    return out
