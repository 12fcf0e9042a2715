"""Time zones and ISO formatting shared by reports."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo

UTC = timezone.utc


class TimezoneError(ValueError):
    """Unknown time zone name."""


def resolve_tz(name: str | None) -> tzinfo:
    """``None``/"local" -> the system zone; "UTC" -> UTC; otherwise an IANA name."""
    if name is None or name == "" or name.lower() == "local":
        from tokmon.fmt import local_zone  # by IANA name when known, so DST is followed

        return local_zone()
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError for bad keys
        raise TimezoneError(f"unknown time zone {name!r}") from exc


_HOURS: dict[int, str] = {}  # hour since the epoch -> "YYYY-MM-DDTHH:"
_ISO_FAST_MAX = 253402300800  # 10000-01-01: beyond, datetime says why it cannot
_MMSS: list[str] = []  # "MM:SS." per second of the hour (filled on first use)
_MS: list[str] = []  # "mmmZ" per millisecond


def iso(ts: float) -> str:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (ccusage's format).

    The date and hour come from ``datetime`` once per hour (cached); minutes, seconds and
    milliseconds by arithmetic, rounded as ``datetime.fromtimestamp`` rounds (to the
    microsecond, half to even), so every value reads as :func:`_iso_datetime` writes it.
    """
    if not 0 <= ts < _ISO_FAST_MAX:
        return _iso_datetime(ts)
    sec = int(ts)
    us = round((ts - sec) * 1e6)  # ts - sec is exact: the fraction datetime rounds
    if us >= 1_000_000:
        sec += 1
        us -= 1_000_000
    hour, rem = divmod(sec, 3600)
    head = _HOURS.get(hour)
    if head is None:
        if len(_HOURS) > 100_000:  # a long-lived process: bounded
            _HOURS.clear()
        head = _HOURS[hour] = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:")
    if not _MS:
        _FEW[0] += 1
        if _FEW[0] <= _FEW_MAX:  # a few times (the rows of one session): no tables (~3 ms)
            return f"{head}{rem // 60:02d}:{rem % 60:02d}.{us // 1000:03d}Z"
        # each list complete before it is added (one step: safe between threads)
        _MMSS.extend([f"{m:02d}:{s:02d}." for m in range(60) for s in range(60)])
        _MS.extend([f"{ms:03d}Z" for ms in range(1000)])
    return head + _MMSS[rem] + _MS[us // 1000]


_FEW = [0]  # calls made before the tables were filled
_FEW_MAX = 200


def _iso_datetime(ts: float) -> str:
    """:func:`iso` through ``datetime`` alone (outside its fast range, and for the tests)."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class DateKeyer:
    """Memoised local date of a timestamp (zone offsets are multiples of 15 minutes)."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._memo: dict[int, datetime] = {}
        self._days: dict[int, str] = {}

    def local(self, ts: float) -> datetime:
        bucket = int(ts // 900)
        d = self._memo.get(bucket)
        if d is None:
            d = datetime.fromtimestamp(bucket * 900, self.tz)
            self._memo[bucket] = d
        return d

    def day(self, ts: float) -> str:
        bucket = int(ts // 900)
        d = self._days.get(bucket)
        if d is None:
            d = self._days[bucket] = self.local(ts).strftime("%Y-%m-%d")
        return d

    def month(self, ts: float) -> str:
        return self.local(ts).strftime("%Y-%m")

    def week(self, ts: float, start_of_week: int = 6) -> str:
        """First day of the week; ``start_of_week`` uses Python's weekday (6 = Sunday)."""
        d = self.local(ts).date()
        delta = (d.weekday() - start_of_week) % 7
        return (d - timedelta(days=delta)).isoformat()


WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def parse_day(value: str) -> str:
    """``YYYYMMDD`` or ``YYYY-MM-DD`` -> ``YYYY-MM-DD``; raises ValueError."""
    v = value.strip().replace("-", "")
    if len(v) != 8 or not v.isdigit():
        raise ValueError(f"invalid date {value!r} (expected YYYYMMDD or YYYY-MM-DD)")
    out = f"{v[:4]}-{v[4:6]}-{v[6:]}"
    try:
        datetime.strptime(out, "%Y-%m-%d")
    except ValueError:  # 2026-13-01: the same one line, not strptime's wording
        raise ValueError(f"invalid date {value!r} (expected YYYYMMDD or YYYY-MM-DD)") from None
    return out
