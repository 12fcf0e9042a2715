"""Official figures written by agents into their own files, read incrementally.

* Codex: every ``event_msg`` / ``token_count`` line carries ``payload.rate_limits`` =
  ``{primary, secondary: {used_percent, window_minutes, resets_at | resets_in_seconds}}``.
* Claude Code transcripts: ``Claude AI usage limit reached|<epoch>`` gives the reset time
  of a limit that was hit.

Files are read from the offset where the last scan stopped (``ingest`` table), so only new
bytes are read; a file that shrank is read again from the start.  Agents' dirs are only
read, never written.  Malformed lines are counted, never fatal.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tokmon.limits import history

MARKER = re.compile(rb"usage limit reached\|(\d{9,13})")
CHUNK = 8 << 20


def codex_roots(env: Mapping[str, str]) -> list[Path]:
    """``$CODEX_HOME/{sessions,archived_sessions}`` (default ``~/.codex``)."""
    from tokmon.paths import user_home

    home = env.get("CODEX_HOME") or os.path.join(
        user_home(env) or os.path.expanduser("~"), ".codex"
    )
    base = Path(home).expanduser()
    return [base / "sessions", base / "archived_sessions"]


def _ts(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def codex_observations(line: bytes) -> list[history.Obs]:
    """The official windows of one Codex rollout line (empty if it has none)."""
    if b'"rate_limits"' not in line:
        return []
    try:
        obj = json.loads(line)
    except ValueError:
        return []
    if not isinstance(obj, dict):
        return []
    payload = obj.get("payload")
    rate = payload.get("rate_limits") if isinstance(payload, dict) else None
    ts = _ts(obj.get("timestamp"))
    if not isinstance(rate, dict) or ts is None:
        return []
    out = []
    for name in ("primary", "secondary"):
        w = rate.get(name)
        if not isinstance(w, dict):
            continue
        used = _num(w.get("used_percent"))
        if used is None:
            continue
        minutes = _num(w.get("window_minutes"))
        resets = _num(w.get("resets_at"))
        if resets is None and _num(w.get("resets_in_seconds")) is not None:
            resets = ts + float(w["resets_in_seconds"])
        out.append(
            history.Obs(
                ts,
                "codex",
                name,
                min(max(used, 0.0), 1000.0),
                resets,
                minutes * 60.0 if minutes else None,
            )
        )
    return out


def claude_marker(line: bytes) -> tuple[float, float] | None:
    """``(ts, resets_at)`` of a limit-reached line, or None."""
    m = MARKER.search(line)
    if not m:
        return None
    resets = float(m.group(1))
    if resets > 1e11:
        resets /= 1000.0
    ts = None
    try:
        obj = json.loads(line)
        if isinstance(obj, dict):
            ts = _ts(obj.get("timestamp"))
    except ValueError:
        pass
    return (ts if ts is not None else resets, resets)


def _files(roots: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for root in roots:
        if root.is_dir():
            out.extend(p for p in root.rglob("*.jsonl") if p.is_file())
    return sorted(out)


def _under(files: Iterable[Path], roots: Iterable[Path]) -> list[Path]:
    """The ``.jsonl`` files among ``files`` below one of ``roots`` (sorted, no duplicates)."""
    tops = [os.path.join(os.path.abspath(r), "") for r in roots]
    return sorted(
        {
            Path(f)
            for f in files
            if str(f).endswith(".jsonl") and os.path.abspath(f).startswith(tuple(tops))
        }
    )


def _new_lines(con: sqlite3.Connection, path: Path) -> tuple[list[bytes], int] | None:
    """Complete lines appended since the last scan and the new offset (None: nothing new)."""
    got = _new_bytes(con, path)
    return None if got is None else (got[0].splitlines(), got[1])


def _marked_lines(data: bytes, needle: bytes = b"limit reached|") -> list[bytes]:
    """The lines of ``data`` that contain ``needle``, found on the whole buffer (a transcript
    is megabytes of lines and almost never holds one)."""
    out: list[bytes] = []
    i = data.find(needle)
    while i >= 0:
        start = data.rfind(b"\n", 0, i) + 1
        end = data.find(b"\n", i)
        end = len(data) if end < 0 else end
        out.append(data[start:end])
        i = data.find(needle, end)
    return out


def _new_bytes(con: sqlite3.Connection, path: Path) -> tuple[bytes, int] | None:
    """The complete lines appended since the last scan, as one buffer, and the new offset
    (None: nothing new)."""
    try:
        st = path.stat()
    except OSError:
        return None
    ident = f"{getattr(st, 'st_ino', 0)}"
    row = con.execute("SELECT ident, offset FROM ingest WHERE path=?", (str(path),)).fetchone()
    offset = 0
    if row is not None and row[0] == ident and row[1] <= st.st_size:
        offset = int(row[1])
    if offset >= st.st_size:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return None
    end = data.rfind(b"\n")
    if end < 0:
        return None
    return data[: end + 1], offset + end + 1


def _set_offset(con: sqlite3.Connection, path: Path, offset: int) -> None:
    try:
        ident = f"{getattr(path.stat(), 'st_ino', 0)}"
    except OSError:
        return
    con.execute(
        "INSERT OR REPLACE INTO ingest(path, ident, offset) VALUES(?,?,?)",
        (str(path), ident, offset),
    )


def ingest(
    paths: Any,
    env: Mapping[str, str],
    claude_roots: Iterable[Path] = (),
    claude_files: Iterable[Path] | None = None,
) -> dict[str, int]:
    """Scan Codex rollouts and Claude transcripts for official figures; counts of what was new.

    ``claude_files``: read only these transcripts (a file watcher's changed paths) instead of
    listing every file under ``claude_roots``."""
    stats = {"codexObservations": 0, "markers": 0, "files": 0}
    with history.opened(paths) as con:
        obs: list[history.Obs] = []
        offsets: list[tuple[Path, int]] = []
        for path in _files(codex_roots(env)):
            got = _new_lines(con, path)
            if got is None:
                continue
            lines, off = got
            stats["files"] += 1
            for line in lines:
                obs.extend(codex_observations(line))
            offsets.append((path, off))
        marks: list[tuple[str, float, float]] = []
        roots = list(claude_roots)
        claude = _files(roots) if claude_files is None else _under(claude_files, roots)
        for path in claude:
            raw = _new_bytes(con, path)
            if raw is None:
                continue
            data, off = raw
            stats["files"] += 1
            for line in _marked_lines(data):
                m = claude_marker(line)
                if m:
                    marks.append(("claude", m[0], m[1]))
            offsets.append((path, off))
        obs.sort(key=lambda o: o.ts)
        if obs:
            stats["codexObservations"] = history.append(con, obs)
        if marks:
            stats["markers"] = history.add_markers(con, marks)
        if offsets:
            with history.transaction(con):
                for p, off in offsets:
                    _set_offset(con, p, off)
    return stats
