"""Extract usage and titles from transcript lines.

Only top-level ``type: "assistant"`` lines carry billable usage. A cheap byte test
rejects every other line before any JSON is parsed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson

from tokmon.records import MAX_TOKENS, TS_MAX, TS_MIN

_ASSISTANT = b'"type":"assistant"'
_TITLE = b'-title"'
TITLE_TYPES = {"custom-title": "customTitle", "ai-title": "aiTitle"}


class LineStats:
    """Counters of skipped lines, reported as one warning line."""

    __slots__ = ("malformed", "huge", "invalid_utf8", "bad")

    MAX_LISTED = 20  # byte offsets of bad lines kept per file (for the debug listing)

    def __init__(self) -> None:
        self.malformed = 0
        self.huge = 0
        self.invalid_utf8 = 0
        self.bad: list[int] = []  # offsets of the first MAX_LISTED malformed/non-UTF-8 lines

    def total(self) -> int:
        return self.malformed + self.huge + self.invalid_utf8


_fromiso = datetime.fromisoformat

# Poison guards (see records.MAX_TOKENS): such a line is malformed (skipped and counted).
MAX_COST = 1e6  # a legacy costUSD per response beyond this is poison, not a price


def parse_timestamp(value: object) -> float | None:
    """ISO-8601 to epoch seconds (None if unparsable or outside 1970..2200)."""
    ts = _timestamp(value)
    if ts is None or not TS_MIN <= ts < TS_MAX:
        return None
    return ts


def _timestamp(value: object) -> float | None:
    """ISO-8601 to epoch seconds; lenient about offsets, millis and micros; no range check."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:  # fast path (3.11+ parses "Z" and any fraction length natively)
        dt = _fromiso(value)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    except (ValueError, OverflowError):
        pass
    s = value
    try:
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        # Python 3.10's fromisoformat accepts only 3 or 6 fraction digits.
        dot = s.find(".")
        if dot != -1:
            end = dot + 1
            while end < len(s) and s[end].isdigit():
                end += 1
            frac = s[dot + 1 : end]
            frac = (frac + "000000")[:6]
            s = s[: dot + 1] + frac + s[end:]
        dt = datetime.fromisoformat(s)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    except (ValueError, OverflowError):
        return None


def _int(v: object) -> int:
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v if v > 0 else 0
    if isinstance(v, float) and v > 0:
        return int(v) if v <= MAX_TOKENS else MAX_TOKENS + 1  # inf too: poison
    return 0


def _count_bad(line: bytes, stats: LineStats, offset: int = -1) -> None:
    if len(stats.bad) < LineStats.MAX_LISTED:
        stats.bad.append(offset)
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        stats.invalid_utf8 += 1
        return
    stats.malformed += 1


def parse_line(line: bytes, source: str, offset: int, stats: LineStats) -> object:
    """Return a usage row (a list in ``records.FIELDS`` order, cost 0), a
    ``(session_id, kind, title)`` tuple, or None."""
    if line[:1] != b"{" or line.rstrip()[-1:] != b"}":
        # Not a JSON object line: a cheap check that catches garbage without parsing.
        if line.strip():
            _count_bad(line, stats, offset)
        return None
    if _ASSISTANT not in line and _TITLE not in line:
        # Not counted, but validated, so the malformed count is exact (e.g. a truncated
        # line that the next line was appended to: "{...cut{...}").
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            _count_bad(line, stats, offset)
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        _count_bad(line, stats, offset)
        return None
    if not isinstance(obj, dict):
        stats.malformed += 1
        return None
    kind = obj.get("type")
    if kind == "assistant":
        row = _usage_record(obj, source, offset)
        if row is _POISON:
            stats.malformed += 1
            return None
        return row
    field = TITLE_TYPES.get(kind) if isinstance(kind, str) else None
    if field:
        sid, title = obj.get("sessionId"), obj.get(field)
        if isinstance(sid, str) and isinstance(title, str) and title.strip():
            return (sid, kind, str(_shown(title)).strip()[:200])  # no terminal escapes
    return None


def _shown(v: object) -> object:
    """Text that surfaces display, without control characters (:mod:`tokmon.textsafe`)."""
    if type(v) is str and not v.isprintable():
        from tokmon.textsafe import safe_text  # rare: clean text skips the import

        return safe_text(v)
    return v


def _n(v: object) -> int:
    if type(v) is int:
        return v if v > 0 else 0
    return _int(v)


_POISON: list[Any] = []  # sentinel: a usage line with values no real response has


def _usage_record(obj: dict, source: str, offset: int) -> list[Any] | None:  # type: ignore[type-arg]
    msg = obj.get("message")
    if type(msg) is not dict:
        return None
    usage = msg.get("usage")
    if type(usage) is not dict:
        return None
    ts = _timestamp(obj.get("timestamp"))
    if ts is None:
        return None
    if not TS_MIN <= ts < TS_MAX:
        return _POISON
    g = usage.get
    cc = _n(g("cache_creation_input_tokens"))
    c1h = 0
    detail = g("cache_creation")
    if type(detail) is dict:
        c1h = min(_n(detail.get("ephemeral_1h_input_tokens")), cc)
    mid, rid = msg.get("id"), obj.get("requestId")
    if type(mid) is str and type(rid) is str and mid and rid:
        key = f"{mid}:{rid}"
    else:
        # Not deduplicated across lines; stable per file position so re-reads replace.
        key = f"@{source}:{offset}"
    sid = _shown(obj.get("sessionId"))
    cwd = _shown(obj.get("cwd"))
    model = _shown(msg.get("model"))
    legacy = obj.get("costUSD")
    if isinstance(legacy, (int, float)) and not isinstance(legacy, bool):
        legacy = float(legacy) if -MAX_COST <= legacy <= MAX_COST else _POISON  # NaN too
    else:
        legacy = None
    inp, out, cread = _n(g("input_tokens")), _n(g("output_tokens")), _n(g("cache_read_input_tokens"))
    row = [  # UsageRecord field order (tokmon.core.model.FIELDS)
        ts,
        sid if type(sid) is str and sid else "unknown",
        cwd if type(cwd) is str else "",
        model if type(model) is str and model else "unknown",
        inp,
        out,
        cc,
        c1h,
        cread,
        key,
        0.0,
        legacy,
    ]
    if legacy is _POISON or max(inp, out, cc, cread) > MAX_TOKENS:
        return _POISON
    return row
