"""How every surface writes numbers, money, durations and times (standard library only).

One rule per kind of value, shared by the CLI tables, ``tokmon line``, ``tokmon watch``
and (re-implemented in ``integrations/vscode/src/format.ts``) VS Code.  The cases in
``tests/fixtures/format_cases.json`` are checked against both implementations.

Rounding is spelled out as ``floor(x * 10**d + 0.5)`` on IEEE doubles, so Python and
JavaScript agree to the last digit (no locale, no banker's rounding).

- ``integer(999999)`` -> ``999,999`` (full counts, tables)
- ``tokens(999999)`` -> ``1.00M`` (compact: three significant digits, k/M/B/T)
- ``cost(1234.5)`` -> ``$1,234.50`` (always cents, thousands separators)
- ``percent(104.6)`` -> ``105%``
- ``duration(125)`` -> ``2h05m`` (minutes in); ``age(4000)`` -> ``1h``, ``age(30)`` -> ``now``
- ``clock``/``date``/``date_time`` in a given zone; ``offset_label`` -> ``UTC+14``;
  ``zone_name`` -> the IANA name (``Pacific/Kiritimati``) when known
- a missing value (None, NaN, infinity) is ``MISSING`` (``-``) everywhere
"""

# No `from __future__ import annotations` (importing __future__ is a cost on the statusline
# fast path): names known only to type checkers are quoted.
TYPE_CHECKING = False  # not `typing`: the statusline fast path never imports it
if TYPE_CHECKING:  # datetime is imported on first use: the statusline fast path skips it
    from datetime import datetime, tzinfo

MISSING = "-"

_UNITS = ((1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T"))


def _finite(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    f = float(x)
    return f if f - f == 0.0 else None


def _round(x: float, digits: int = 0) -> int:
    """Half-up rounding of a non-negative number to ``digits`` decimals, as an integer."""
    f = (x * (10.0**digits) + 0.5) // 1  # math.floor without importing math (statusline)
    if f - f != 0.0:
        raise OverflowError("cannot convert float infinity to integer")
    return int(f)


def _point(scaled: int, digits: int) -> str:
    if digits == 0:
        return str(scaled)
    s = str(scaled).rjust(digits + 1, "0")
    return f"{s[:-digits]}.{s[-digits:]}"


def _group(n: int) -> str:
    return f"{n:,}"


def integer(n: float | int | None) -> str:
    """A full count with thousands separators: ``1,234,567``."""
    x = _finite(n)
    if x is None:
        return MISSING
    sign = "-" if x < 0 else ""
    r = _round(abs(x))
    return f"{sign}{_group(r)}" if r else "0"


def tokens(n: float | int | None) -> str:
    """A compact count with three significant digits: 950, 1.00k, 12.3k, 1.00M, 2.50B."""
    x = _finite(n)
    if x is None:
        return MISSING
    a = abs(x)
    sign = "-" if x < 0 else ""
    r = _round(a)
    if r < 1000:
        return f"{sign}{r}" if r else "0"
    for div, suffix in _UNITS:
        v = a / div
        digits = 2 if v < 10 else 1 if v < 100 else 0
        scaled = _round(v, digits)
        while scaled >= 1000 and digits > 0:  # 9.996k -> 10.0k, 99.96k -> 100k
            digits -= 1
            scaled = _round(v, digits)
        if scaled >= 1000 and suffix != "T":
            continue  # 999,999 -> 1.00M, never 1000k
        return f"{sign}{_point(scaled, digits)}{suffix}"
    return f"{sign}{r}"  # pragma: no cover - the loop always returns


def cost(usd: float | int | None) -> str:
    """US dollars with cents and separators: ``$0.00``, ``$12.35``, ``$1,234.50``, ``-$2.00``."""
    x = _finite(usd)
    if x is None:
        return MISSING
    cents = _round(abs(x), 2)
    sign = "-" if x < 0 and cents else ""
    return f"{sign}${_group(cents // 100)}.{cents % 100:02d}"


def percent(p: float | int | None) -> str:
    """A whole percentage: ``42%``, ``105%``."""
    x = _finite(p)
    if x is None:
        return MISSING
    r = _round(abs(x))
    return f"{'-' if x < 0 and r else ''}{r}%"


def duration(minutes: float | int | None) -> str:
    """Minutes as ``0m``, ``45m``, ``2h05m``, ``1d01h`` (negative counts as zero)."""
    x = _finite(minutes)
    if x is None:
        return MISSING
    total = _round(max(0.0, x))
    if total < 60:
        return f"{total}m"
    if total < 1440:
        return f"{total // 60}h{total % 60:02d}m"
    return f"{total // 1440}d{total % 1440 // 60:02d}h"


def age(seconds: float | int | None) -> str:
    """How long ago, largest unit only: ``now`` (under a minute), ``12m``, ``3h``, ``2d``."""
    x = _finite(seconds)
    if x is None:
        return MISSING
    s = int(max(0.0, x) // 1)
    if s < 60:
        return "now"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


# --------------------------------------------------------------------------- time zones


def _utc() -> "tzinfo":
    from datetime import timezone

    return timezone.utc


def __getattr__(name: str) -> object:  # ``fmt.UTC`` without importing datetime up front
    if name == "UTC":
        return _utc()
    raise AttributeError(name)


def local_zone() -> "tzinfo":
    """The system zone, by its IANA name when it can be found (``TZ``, ``/etc/localtime``)."""
    import os  # here, not at the top: the statusline fast path does not load os
    import sys
    from datetime import datetime

    names: list[str] = []
    tz_env = os.environ.get("TZ", "").lstrip(":")
    if tz_env:
        names.append(tz_env)
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            names.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in names:
        if name.upper() in ("UTC", "Z", "GMT", "ETC/UTC", "UCT", "ETC/UCT"):
            return _utc()
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo(name)
        except Exception:  # noqa: BLE001 - unknown key, bad path, no tz database
            continue
    if sys.platform == "win32":  # no IANA name there: the C library's rules follow DST
        return system_local()
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else _utc()


_SYSTEM: "list[tzinfo]" = []


def system_local() -> "tzinfo":
    """The system zone as :func:`time.localtime` applies it, DST included: where no IANA
    name can be found (Windows: no ``/etc/localtime``, no tz database), the fixed offset of
    ``datetime.now().astimezone()`` would put half a year's records near midnight on the
    wrong day. Rules are the system's current ones (what the C library knows)."""
    if _SYSTEM:
        return _SYSTEM[0]
    import time
    from datetime import datetime, timedelta, tzinfo

    std = timedelta(seconds=-time.timezone)
    shift = timedelta(seconds=time.timezone - time.altzone) if time.daylight else timedelta(0)

    def local_tm(dt: "datetime") -> "time.struct_time | None":
        wall = (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)
        try:  # the wall time's epoch, then its offset there; in the hour DST ends (twice
            # the same wall time) fold 0 is the DST one, as zoneinfo has it
            if shift:
                for isdst in (0, 1) if dt.fold else (1, 0):
                    tm = time.localtime(time.mktime((*wall, 0, 0, isdst)))
                    if tuple(tm[:6]) == wall and (tm.tm_isdst > 0) == (isdst == 1):
                        return tm
            return time.localtime(time.mktime((*wall, 0, 0, -1)))  # (a wall time DST skips)
        except (OverflowError, OSError, ValueError):  # before 1970 on Windows
            return None

    class SystemLocal(tzinfo):
        def utcoffset(self, dt: "datetime | None") -> timedelta:
            tm = local_tm(dt) if dt is not None else None
            return std if tm is None else timedelta(seconds=tm.tm_gmtoff)

        def dst(self, dt: "datetime | None") -> timedelta:
            tm = local_tm(dt) if dt is not None else None
            return shift if tm is not None and tm.tm_isdst > 0 else timedelta(0)

        def tzname(self, dt: "datetime | None") -> str:
            tm = local_tm(dt) if dt is not None else None
            return time.tzname[1 if tm is not None and tm.tm_isdst > 0 else 0]

        def fromutc(self, dt: "datetime") -> "datetime":
            stamp = (dt.replace(tzinfo=None) - datetime(1970, 1, 1)) // timedelta(seconds=1)
            try:
                tm = time.localtime(stamp)
            except (OverflowError, OSError, ValueError):
                return (dt + std).replace(tzinfo=self)
            wall = tuple(tm[:6])
            fold = 0
            if shift:  # the second of two equal wall times (the hour DST ends) has fold=1
                try:
                    earlier = time.localtime(stamp - int(shift.total_seconds()))
                    fold = int(tuple(earlier[:6]) == wall)
                except (OverflowError, OSError, ValueError):
                    pass
            return datetime(tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec, dt.microsecond, self, fold=fold)  # fmt: skip

        def __repr__(self) -> str:  # stable across runs: report caches key on it
            return f"local({'/'.join(time.tzname)} {-time.timezone} {-time.altzone})"

        __str__ = __repr__

    _SYSTEM.append(SystemLocal())
    return _SYSTEM[0]


def zone(name: str | None) -> "tzinfo":
    """``None``/``local`` -> the system zone; ``UTC``; else an IANA name (ValueError if unknown)."""
    if name is None or name == "" or name.lower() == "local":
        return local_zone()
    if name.upper() in ("UTC", "Z", "GMT"):
        return _utc()
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception as exc:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError
        raise ValueError(f"unknown time zone {name!r}") from exc


def _offset_minutes(tz: "tzinfo", ts: float) -> int:
    from datetime import datetime

    off = datetime.fromtimestamp(ts, tz).utcoffset()
    return int(off.total_seconds() // 60) if off is not None else 0


def offset_label(ts: float, tz: "tzinfo") -> str:
    """The zone's offset at ``ts``: ``UTC``, ``UTC+14``, ``UTC-10``, ``UTC+5:30``."""
    m = _offset_minutes(tz, ts)
    if m == 0:
        return "UTC"
    sign = "+" if m > 0 else "-"
    h, mm = divmod(abs(m), 60)
    return f"UTC{sign}{h}" + (f":{mm:02d}" if mm else "")


def zone_name(tz: "tzinfo", ts: float | None = None) -> str:
    """The zone's IANA name (``Pacific/Kiritimati``), ``UTC``, or its offset label."""
    key = getattr(tz, "key", None)
    if isinstance(key, str) and key:
        return key
    if tz is _utc():
        return "UTC"
    import time

    return offset_label(time.time() if ts is None else ts, tz)


def _local(ts: float | int | None, tz: "tzinfo") -> "datetime | None":
    from datetime import datetime

    x = _finite(ts)
    if x is None:
        return None
    return datetime.fromtimestamp(x, tz)


def clock(ts: float | int | None, tz: "tzinfo") -> str:
    """Wall-clock ``HH:MM`` of epoch seconds in ``tz``."""
    d = _local(ts, tz)
    return MISSING if d is None else d.strftime("%H:%M")


def date(ts: float | int | None, tz: "tzinfo") -> str:
    """``YYYY-MM-DD`` of epoch seconds in ``tz``."""
    d = _local(ts, tz)
    return MISSING if d is None else d.strftime("%Y-%m-%d")


def date_time(ts: float | int | None, tz: "tzinfo") -> str:
    """``YYYY-MM-DD HH:MM`` of epoch seconds in ``tz``."""
    d = _local(ts, tz)
    return MISSING if d is None else d.strftime("%Y-%m-%d %H:%M")


def clock_zoned(ts: float | int | None, tz: "tzinfo") -> str:
    """``HH:MM UTC+14``: a time that says which zone it is in."""
    x = _finite(ts)
    if x is None:
        return MISSING
    return f"{clock(x, tz)} {offset_label(x, tz)}"


def epoch(value: object) -> float | None:
    """Epoch seconds from an ISO-8601 string (``...Z`` or with offset) or a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _finite(value)
    if not isinstance(value, str) or not value:
        return None
    from datetime import datetime

    try:
        d = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_utc())
    return d.timestamp()
