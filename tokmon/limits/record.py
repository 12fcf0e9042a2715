"""The statusline's recorder of official limit figures (standard library only).

``tokmon line --claude`` runs after every assistant message, so this must stay cheap:
it compares the payload's ``rate_limits`` with a tiny JSON file of the last figures
(``<state_dir>/limits-last.json``) and only when a figure changed opens the SQLite
history (:mod:`tokmon.limits.history`) and, if alerts are configured, starts a
detached ``tokmon alerts run --official`` to evaluate and deliver them off the
prompt path.  Never raises.
"""

from __future__ import annotations

import time

from tokmon.core.official import epoch_seconds as _epoch  # resets_at: one rule for both stores
from tokmon.quickjson import loads as _loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LAST_FILE = "limits-last.json"
FIVE_HOURS = 5 * 3600.0
SEVEN_DAYS = 7 * 86400.0
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value - value == 0.0 else None


def window_length(name: str) -> float | None:
    """Length of a Claude window from its name (``five_hour``, ``seven_day*``)."""
    if name.startswith("five_hour"):
        return FIVE_HOURS
    if name.startswith("seven_day"):
        return SEVEN_DAYS
    return None


def claude_figures(payload: Any) -> dict[str, tuple[float, float | None, float | None]]:
    """``window -> (used %, resets_at, length)`` from a statusLine payload's ``rate_limits``.

    Every bucket shaped like ``{"used_percentage", "resets_at"}`` counts (``five_hour``,
    ``seven_day``, ``seven_day_opus``, ``seven_day_sonnet`` and future ones).
    """
    rate = payload.get("rate_limits") if isinstance(payload, dict) else None
    out: dict[str, tuple[float, float | None, float | None]] = {}
    if not isinstance(rate, dict):
        return out
    for name, raw in rate.items():
        if (
            not isinstance(name, str)
            or not 0 < len(name) <= 40
            or not _NAME_CHARS.issuperset(name)
            or not isinstance(raw, dict)
        ):
            continue
        used = _num(raw.get("used_percentage"))
        if used is None:
            used = _num(raw.get("utilization"))
        if used is None:
            continue
        out[name] = (min(max(used, 0.0), 1000.0), _epoch(raw.get("resets_at")), window_length(name))
    return out


def _load_last(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = _loads(fh.read(65536))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _changed(
    last: dict[str, Any], figures: dict[str, tuple[float, float | None, float | None]]
) -> bool:
    for name, (used, resets, _length) in figures.items():
        prev = last.get(name)
        if not isinstance(prev, list) or len(prev) != 2:
            return True
        if not isinstance(prev[0], (int, float)) or abs(prev[0] - used) > 1e-6:
            return True
        if (prev[1] is None) != (resets is None):
            return True
        if resets is not None and abs(float(prev[1]) - resets) > 60.0:
            return True
    return False


def record_payload(paths: Any, payload: Any, now: float | None = None, env: Any = None) -> bool:
    """Record a statusLine payload's official figures; True when something new was stored."""
    try:
        figures = claude_figures(payload)
        if not figures:
            return False
        from tokmon import oslite  # not os: the statusline's fast command does not load it

        last_path = oslite.join(str(paths.state_dir), LAST_FILE)
        last = _load_last(last_path)
        if not _changed(last, figures):
            return False
        now = time.time() if now is None else now
        full = getattr(paths, "full", None)  # the statusline's string paths: upgrade to write
        if full is not None:
            paths = full()
        import json

        from tokmon.limits import history

        obs = [history.Obs(now, "claude", name, used, resets, length)
               for name, (used, resets, length) in sorted(figures.items())]  # fmt: skip
        with history.opened(paths) as con:
            added = history.append(con, obs)
        merged = {**last, **{n: [u, r] for n, (u, r, _l) in figures.items()}}
        from tokmon.fsutil import atomic_write

        atomic_write(
            type(paths.state_dir)(last_path),
            json.dumps(merged, separators=(",", ":")).encode(),
            fsync=False,
        )
        if added:
            spawn_alert_runner(paths, env)
        return added > 0
    except Exception:  # the prompt must never break
        return False


def alerts_configured(paths: Any) -> bool:
    """Cheap test: does the config file have an ``[alerts]`` table?"""
    try:
        with open(paths.config_file, "rb") as fh:
            text = fh.read(1 << 20)
    except OSError:
        return False
    return b"[alerts" in text


def spawn_alert_runner(paths: Any, env: Any = None) -> None:
    """Start ``tokmon alerts run --official`` detached (only when alerts are configured)."""
    if not alerts_configured(paths):
        return
    import os
    import subprocess

    kwargs: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "close_fds": True,
    }
    if os.name == "nt":  # pragma: no cover - Windows
        kwargs["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS | NEW_GROUP
    else:
        kwargs["start_new_session"] = True
    from tokmon.safepython import module_argv, safe_cwd

    try:  # never `python -m` in the caller's dir (Claude Code runs us in the project)
        subprocess.Popen(
            module_argv("tokmon", "alerts", "run", "--official"),
            env=dict(env) if env is not None else None,
            cwd=safe_cwd(str(paths.state_dir)),
            **kwargs,
        )
    except OSError:
        pass
