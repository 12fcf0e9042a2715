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


def iso(ts: float) -> str:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (ccusage's format)."""
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
