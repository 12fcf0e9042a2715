"""The line snapshot: a small precomputed state the fast path reads.

Two files, both written atomically (0600) by the refresher:

* ``<cache>/line/snapshot.bin`` — a ``marshal``-encoded dict read on every
  prompt (``marshal`` is built into the interpreter: no import cost, unlike
  ``json`` which pulls in ``re``);
* ``<cache>/snapshot.json`` — the same data as JSON for people and other tools.

The file's mtime is the time the data was last known to be current: the fast
path may bump it (``os.utime``) after a cheap check that nothing it watches
changed, instead of running a refresh.

Reading (:func:`read_fast`, :func:`watch_unchanged`: in :mod:`tokmon.statusline.locate`,
re-exported here) is stdlib only and does not even import :mod:`os` (:mod:`tokmon.oslite`);
:func:`build` imports the engine lazily.
"""

from __future__ import annotations

import marshal
import time

# the fast path's part lives with the paths it reads (one module less to import per prompt)
from tokmon.statusline.locate import (  # noqa: F401 - re-exported
    MAX_TRUST_SECONDS,
    VERSION,
    read_fast,
    watch_unchanged,
)
from tokmon.textsafe import ID_MAX, NAME_MAX, PATH_MAX

TYPE_CHECKING = False  # typing costs ~8 ms to import: keep it off the fast path
if TYPE_CHECKING:
    from typing import Any

    from tokmon.core.summary_rows import Summary

WATCH_RECENT_SECONDS = 24 * 3600.0
WATCH_MAX = 1000


# --------------------------------------------------------------------------- building


def _epoch(value: Any) -> float:
    """Epoch seconds from a Summary timestamp (ISO string, or already a number); 0 if absent."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    from tokmon.core.parser import parse_timestamp  # the refresher has the engine loaded anyway

    return parse_timestamp(value) or 0.0


def _day_end(date: str, tzname: str | None) -> float:
    """Epoch seconds when ``date`` (YYYY-MM-DD) ends in the summary's time zone."""
    from datetime import datetime, timedelta

    try:
        from tokmon.core.timeutil import resolve_tz

        tz = resolve_tz(tzname)
    except Exception:
        from datetime import timezone

        tz = timezone.utc
    try:
        day = datetime.strptime(date, "%Y-%m-%d")
    except (TypeError, ValueError):
        return 0.0
    return (day + timedelta(days=1)).replace(tzinfo=tz).timestamp()


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _block(active: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(active, dict):
        return None
    burn = active.get("burnRate") or {}
    proj = active.get("projection") or {}
    start = _epoch(active.get("startTime"))
    return {
        "start": start,
        "end": _epoch(active.get("endTime")) or start + 5 * 3600,
        "lastEntry": _epoch(active.get("actualEndTime")) or start,
        "totalTokens": int(_num(active.get("totalTokens"))),
        "costUSD": _num(active.get("costUSD")),
        "burnLevel": str(active.get("burnLevel") or "low"),
        "tokensPerMinute": _num(burn.get("tokensPerMinute")),
        "tokensPerMinuteForIndicator": _num(burn.get("tokensPerMinuteForIndicator")),
        "costPerHour": _num(burn.get("costPerHour")),
        "limitPercent": active.get("limitPercent"),
        "projectedTokens": int(_num(proj.get("totalTokens"))) if proj else None,
        "projectedCost": _num(proj.get("totalCost")) if proj else None,
    }


def _text(value: Any, limit: int) -> str | None:
    """A string of at most ``limit`` characters (None for anything else): transcript text can
    be megabytes long, and the fast path reads at most 1 MiB of snapshot."""
    return value[:limit] if isinstance(value, str) else None


def _session(row: dict[str, Any]) -> dict[str, Any]:
    return {
        # cut to the display limits of tokmon.textsafe (plain cuts, as the snapshot always had)
        "sessionId": str(row.get("sessionId") or "")[:ID_MAX],
        "projectPath": str(row.get("projectPath") or "")[:PATH_MAX],
        "projectName": str(row.get("projectName") or "")[:NAME_MAX],
        "title": _text(row.get("title"), 200),
        "name": _text(row.get("name"), 200),
        "totalCost": _num(row.get("totalCost")),
        "totalTokens": int(_num(row.get("totalTokens"))),
        "lastActivity": _epoch(row.get("lastActivity")),
    }


def _plain(value: Any) -> Any:
    """Only marshal-and-JSON-safe types (dict/list/str/int/float/bool/None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def from_summary(
    summary: dict[str, Any],
    *,
    settings: dict[str, Any],
    watch: list[list[Any]] | None = None,
    watch_complete: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """Condense an engine Summary dict (docs/architecture.md) into the fast snapshot."""
    now = time.time() if now is None else now
    today = summary.get("today") or {}
    limit = summary.get("tokenLimit") or {}
    snap = {
        "v": VERSION,
        "generatedAt": now,
        "settings": {
            "warningPercent": float(settings.get("warningPercent", 80.0)),
            "criticalPercent": float(settings.get("criticalPercent", 95.0)),
            "staleSeconds": float(settings.get("staleSeconds", 10.0)),
            "tokenLimit": limit.get("tokens"),
            "tokenLimitSource": limit.get("source"),
            "format": settings.get("format"),
        },
        "timezone": summary.get("timezone") if isinstance(summary.get("timezone"), str) else None,
        "block": _block(summary.get("activeBlock")),
        "today": {
            "date": str(today.get("date") or ""),
            "until": _day_end(str(today.get("date") or ""), summary.get("timezone")),
            "totalTokens": int(_num(today.get("totalTokens"))),
            "totalCost": _num(today.get("totalCost")),
        },
        "sessions": [
            _session(r) for r in (summary.get("activeSessions") or [])[:50] if isinstance(r, dict)
        ],  # fmt: skip
        "official": summary.get("official") if isinstance(summary.get("official"), dict) else None,
        "watch": watch or [],
        "watchComplete": bool(watch_complete),
    }
    return _plain(snap)


def watch_list(roots: list[Any], extra: list[str], now: float) -> tuple[list[list[Any]], bool]:
    """Paths whose mtime changes when new usage can appear, with their mtimes.

    Each root (``projects/``) and project dir (a new transcript changes them),
    every transcript or subagent dir modified in the last day (appends change
    them) and ``extra`` files (config, official figures).  Incomplete (so never
    trusted) past ``WATCH_MAX`` entries.
    """
    import os

    out: list[list[Any]] = []

    def add(path: str) -> None:
        try:
            out.append([path, os.stat(path).st_mtime_ns])
        except OSError:
            out.append([path, -1])

    for path in extra:
        add(path)
    for root in roots:
        root = os.fspath(root)
        add(root)
        try:
            projects = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for proj in projects:
            add(proj.path)
            stack = [proj.path]
            while stack:
                d = stack.pop()
                try:
                    entries = list(os.scandir(d))
                except OSError:
                    continue
                for e in entries:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if now - st.st_mtime > WATCH_RECENT_SECONDS:
                        continue
                    if e.is_dir(follow_symlinks=False):
                        out.append([e.path, st.st_mtime_ns])
                        stack.append(e.path)
                    elif e.name.endswith((".jsonl", ".json", ".db", "-wal")):
                        out.append([e.path, st.st_mtime_ns])
            if len(out) > WATCH_MAX:
                return out[:WATCH_MAX], False
    return out, True


def line_settings(config: Any) -> dict[str, Any]:
    get = getattr(config, "get", None)

    def value(key: str, default: float) -> float:
        try:
            v = get(key) if get else None
            return float(v) if v is not None else default
        except (TypeError, ValueError, KeyError):
            return default

    fmt = get("line.format") if get else None
    return {
        "format": fmt if isinstance(fmt, str) else None,  # type: ignore[dict-item]
        "warningPercent": value("line.warning_percent", 80.0),
        "criticalPercent": value("line.critical_percent", 95.0),
        "staleSeconds": value("line.stale_seconds", 10.0),
    }


def build(env: Any = None, now: float | None = None) -> tuple[dict[str, Any], Any]:
    """Refresh the engine and condense its summary; returns ``(snapshot, engine)``."""
    from tokmon.core.engine import Engine
    from tokmon.paths import get_paths

    paths = get_paths(env)
    engine = Engine(paths=paths, env=env, agents=True)
    engine.refresh()
    now = time.time() if now is None else now
    summary = engine.summary(now=now)
    wire = summary.to_json()  # the edge: the snapshot condenses the Summary's JSON
    try:
        from tokmon.metadata.store import MetadataStore
        from tokmon.sessions import merge

        wire["activeSessions"] = merge(  # type: ignore[assignment]
            [r.to_json() for r in summary.active_sessions], MetadataStore(paths=paths).all()
        )
    except Exception:  # metadata is decoration: never fail a refresh over it
        pass
    import os

    extra = [os.fspath(paths.config_file), os.fspath(paths.official_file)]
    agent_roots = engine.agents.roots() if engine.agents is not None else []
    watch, complete = watch_list(list(engine.roots) + agent_roots, extra, now)
    snap = from_summary(
        wire,
        settings=line_settings(engine.config),
        watch=watch,
        watch_complete=complete,
        now=now,
    )
    snap["agents"] = _plain(agents_part(engine, summary))
    snap["agentLimits"] = _plain(agent_limits(paths, engine.env))
    return snap, engine


def agents_part(engine: Any, summary: Summary) -> dict[str, Any] | None:
    """Per agent ``{todayCost, todayTokens, lastActivity}`` when agents other than Claude Code
    have data (the Summary's ``agents``), else None (a Claude-only snapshot keeps its shape)."""
    per = summary.agents
    if per is None:
        return None
    out: dict[str, Any] = {}
    for name, body in per.items():
        today = body.today.usage
        try:
            recs = engine.records_of(name)
            last = max((r.ts for r in recs[-50:]), default=0.0) if recs else 0.0
        except Exception:  # an agent this engine cannot name: no activity known
            last = 0.0
        out[str(name)] = {
            "todayCost": _num(today.total_cost),
            "todayTokens": int(today.total_tokens),
            "lastActivity": float(last),
        }
    return out


def agent_limits(paths: Any, env: Any) -> dict[str, Any] | None:
    """Codex's official windows (``primary``/``secondary`` used %) from the limit history,
    after reading what is new in its rollouts (``tokmon/limits``); None when there are none."""
    import os

    try:
        from tokmon.limits import history, ingest

        ingest.ingest(paths, env if env is not None else os.environ)
        with history.opened(paths) as con:
            rows = [o for o in history.latest(con) if o.source == "codex"]
    except Exception:  # the limit history is optional: never fail a refresh over it
        return None
    if not rows:
        return None
    return {
        "codex": {
            o.window: {"usedPercent": float(o.used), "resetsAt": o.resets_at,
                       "length": o.length, "observedAt": float(o.ts)}
            for o in rows
        }
    }  # fmt: skip


def write(snap: dict[str, Any], fast_path: str, json_path: str | None = None) -> None:
    """Write the snapshot (JSON copy first, then the fast file) atomically."""
    from pathlib import Path

    from tokmon.fsutil import atomic_write

    if json_path:
        import json

        from tokmon.statusline import formats

        public = dict(snap)
        segs = formats.build_segments(snap, float(snap.get("generatedAt") or time.time()))
        public["rendered"] = {
            fmt: formats.render(segs, fmt) for fmt in formats.FORMATS if fmt != "json"
        }
        atomic_write(Path(json_path), json.dumps(public, indent=1).encode("utf-8"), fsync=False)
    atomic_write(Path(fast_path), marshal.dumps(snap), fsync=False)
