"""Official figures reported by Claude Code's statusLine input, kept per session.

Claude Code hands its statusLine command the account's 5-hour / 7-day
utilisation, the context window and the session name.  Nothing else on disk
holds them, so ``tokmon line --claude`` records the latest per session in
``<state_dir>/official.json`` (atomic, 0600, small: old and surplus sessions are
pruned) for tmux, prompts, editors and the engine's ``summary()``.

Record shape (``latest()`` / ``for_session()``)::

    {"sessionId", "sessionName", "observedAt" (epoch s), "model", "cwd", "costUSD",
     "fiveHour": {"usedPercentage", "resetsAt", "observedAt"} | None,
     "sevenDay": {...} | None,
     "contextWindow": {"usedPercentage", "remainingPercentage", "size",
                       "totalInputTokens", "totalOutputTokens"} | None}

Every reader here swallows errors and returns ``None``: the official store is
optional and must never break a summary or a prompt.
"""

from __future__ import annotations

import time

from tokmon.quickjson import loads as _loads
from tokmon.textsafe import safe_or_none

TYPE_CHECKING = False  # typing costs milliseconds to import: keep it off the statusline path
if TYPE_CHECKING:  # nor os: the statusline's fast command does not load it (tokmon.oslite)
    import os
    from typing import Any

VERSION = 1
MAX_SESSIONS = 50
MAX_AGE_SECONDS = 8 * 86400.0
_MAX_TEXT = 200
#: a session cost above this is garbage (shown clamped, never as a 300-digit figure)
MAX_COST_USD = 1e7
#: an unchanged record is rewritten at most this often (keeps readers' ``[age]`` within a
#: minute); otherwise official.json is written only when a figure changes
HEARTBEAT_SECONDS = 60.0


def _num(value: Any, lo: float | None = None, hi: float | None = None) -> float | None:
    """A finite number (bools and strings of digits excluded), clamped to [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    num = float(value)
    if not num - num == 0.0:  # inf or nan (no math import on the statusline path)
        return None
    if lo is not None:
        num = max(lo, num)
    if hi is not None:
        num = min(hi, num)
    return num


def _text(value: Any) -> str | None:
    """Payload text without terminal controls (:mod:`tokmon.textsafe`), bounded."""
    return safe_or_none(value, _MAX_TEXT)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def epoch_seconds(value: Any) -> float | None:
    """``resets_at`` as epoch seconds (numbers; ms values and ISO strings tolerated)."""
    n = _num(value)
    if n is not None:
        return n / 1000.0 if n > 1e11 else n
    if isinstance(value, str) and value:
        try:
            from datetime import datetime

            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _window(raw: Any, observed: float) -> dict[str, Any] | None:
    raw = _obj(raw)
    used = _num(raw.get("used_percentage"), 0.0, 1000.0)
    if used is None:
        return None
    return {
        "usedPercentage": used,
        "resetsAt": epoch_seconds(raw.get("resets_at")),
        "observedAt": observed,
    }


def extract(
    payload: Any, now: float | None = None, *, require_session: bool = True
) -> dict[str, Any] | None:
    """The official record carried by a statusLine payload; None without a session id
    (unless ``require_session`` is false: then ``sessionId`` is None)."""
    payload = _obj(payload)
    sid = _text(payload.get("session_id"))
    if not sid and require_session:
        return None
    now = time.time() if now is None else now
    rate = _obj(payload.get("rate_limits"))
    ctx_raw = _obj(payload.get("context_window"))
    ctx: dict[str, Any] | None = None
    used = _num(ctx_raw.get("used_percentage"), 0.0, 100.0)
    remaining = _num(ctx_raw.get("remaining_percentage"), 0.0, 100.0)
    if used is None and remaining is not None:
        used = 100.0 - remaining
    size = _num(ctx_raw.get("context_window_size"), 0.0)
    if used is None and size:
        usage = _obj(ctx_raw.get("current_usage"))
        parts = [
            _num(usage.get(k), 0.0)
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        ]
        if any(p is not None for p in parts):
            used = min(100.0, sum(p or 0.0 for p in parts) * 100.0 / size)
    if used is not None or size is not None:
        ctx = {
            "usedPercentage": used,
            "remainingPercentage": remaining
            if remaining is not None
            else (None if used is None else 100.0 - used),
            "size": int(size) if size is not None else None,
            "totalInputTokens": _num(ctx_raw.get("total_input_tokens"), 0.0),
            "totalOutputTokens": _num(ctx_raw.get("total_output_tokens"), 0.0),
        }
    workspace = _obj(payload.get("workspace"))
    return {
        "sessionId": sid,
        "sessionName": _text(payload.get("session_name")),
        "observedAt": now,
        "model": _text(_obj(payload.get("model")).get("display_name"))
        or _text(_obj(payload.get("model")).get("id")),
        "cwd": _text(workspace.get("current_dir")) or _text(payload.get("cwd")),
        "costUSD": _num(_obj(payload.get("cost")).get("total_cost_usd"), 0.0, MAX_COST_USD),
        "fiveHour": _window(rate.get("five_hour"), now),
        "sevenDay": _window(rate.get("seven_day"), now),
        "contextWindow": ctx,
    }


def _load(path: os.PathLike[str] | str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = _loads(fh.read(4 * 1024 * 1024))
    except (OSError, ValueError):
        return {}
    sessions = data.get("sessions") if isinstance(data, dict) else None
    if not isinstance(sessions, dict):
        return {}
    out = {}
    for k, v in sessions.items():
        if isinstance(v, dict) and isinstance(k, str):
            for key in ("sessionName", "model", "cwd"):  # a file from an older tokmon
                if isinstance(v.get(key), str) and not v[key].isprintable():
                    v[key] = _text(v[key])
            out[k] = v
    return out


def _prune(sessions: dict[str, Any], now: float) -> dict[str, Any]:
    def age_key(item: tuple[str, Any]) -> float:
        return _num(item[1].get("observedAt")) or 0.0

    kept = [it for it in sessions.items() if now - age_key(it) < MAX_AGE_SECONDS]
    kept.sort(key=age_key, reverse=True)
    return dict(kept[:MAX_SESSIONS])


def _merge(rec: dict[str, Any], prev: dict[str, Any]) -> None:
    """Keep the session's last 5 h / 7 d / context / name when the payload lacks them."""
    for key in ("fiveHour", "sevenDay", "contextWindow", "sessionName"):
        if rec[key] is None and prev.get(key) is not None:
            rec[key] = prev[key]


def _figures(rec: Any) -> Any:
    """A record without its observation times (what "changed" compares)."""
    if not isinstance(rec, dict):
        return rec
    return {k: _figures(v) for k, v in rec.items() if k != "observedAt"}


def unchanged(prev: Any, rec: dict[str, Any]) -> bool:
    """True when ``prev`` (the stored record) holds the same figures as ``rec`` and was
    written less than :data:`HEARTBEAT_SECONDS` before it: no need to rewrite the file."""
    if not isinstance(prev, dict):
        return False
    seen = _num(prev.get("observedAt"))
    if seen is None or not 0 <= rec["observedAt"] - seen < HEARTBEAT_SECONDS:
        return False
    return bool(_figures(prev) == _figures(rec))


def record(paths: Any, payload: Any, now: float | None = None) -> dict[str, Any] | None:
    """Store the figures from ``payload`` for its session; returns the stored record.

    A missing 5 h / 7 d window keeps the last one seen for that session (Claude
    Code omits them before the first response).  The file is rewritten only when a
    figure changed (or the stored record is older than :data:`HEARTBEAT_SECONDS`).
    ``paths`` needs ``official_file``; one with a ``full()`` method (the statusline's
    string paths) is upgraded to :class:`tokmon.paths.TokmonPaths` only to write.  Raises
    OSError when the state dir cannot be written; callers on a prompt path catch it.
    """
    rec = extract(payload, now)
    if rec is None:
        return None
    prev = _load(paths.official_file).get(rec["sessionId"])  # lock-free: writes are atomic
    if isinstance(prev, dict):
        _merge(rec, prev)
    if unchanged(prev, rec):
        return rec
    full = getattr(paths, "full", None)
    if full is not None:
        paths = full()
    import json

    from tokmon.fsutil import atomic_write, locked

    path = paths.official_file
    with locked(path.with_name(path.name + ".lock"), timeout=2.0):
        sessions = _load(path)
        _merge(rec, sessions.get(rec["sessionId"]) or {})
        sessions[rec["sessionId"]] = rec
        sessions = _prune(sessions, rec["observedAt"])
        data = json.dumps({"version": VERSION, "sessions": sessions}, separators=(",", ":"))
        atomic_write(path, data.encode("utf-8"), fsync=False)
    return rec


def all_sessions(paths: Any) -> dict[str, dict[str, Any]]:
    """sessionId -> record (empty on any error)."""
    try:
        return _load(paths.official_file)
    except Exception:
        return {}


def for_session(paths: Any, session_id: str) -> dict[str, Any] | None:
    try:
        return all_sessions(paths).get(session_id)
    except Exception:
        return None


def latest(paths: Any) -> dict[str, Any] | None:
    """The most recent record; 5 h / 7 d come from the newest record that has them.

    The rate limits are account-wide, so a later session without them (before
    its first response) must not hide another session's figures; their own
    ``observedAt`` tells their age.  Never raises.
    """
    try:
        sessions = all_sessions(paths)
        if not sessions:
            return None
        ordered = sorted(
            sessions.values(), key=lambda r: _num(r.get("observedAt")) or 0.0, reverse=True
        )
        out = dict(ordered[0])
        for key in ("fiveHour", "sevenDay"):
            if not isinstance(out.get(key), dict):
                out[key] = next((r[key] for r in ordered if isinstance(r.get(key), dict)), None)
        return out
    except Exception:
        return None
