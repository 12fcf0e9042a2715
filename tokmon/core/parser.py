"""Extract usage and titles from transcript lines.

Only top-level ``type: "assistant"`` lines carry billable usage. The scanner's hot path
(:func:`scan_lines`) decodes every line once with msgspec into small typed structs holding
only the fields tokmon reads (which also validates the whole line as JSON), a run of lines
in one call; any line the typed decode rejects (odd types, out-of-range values, bad JSON,
non-UTF-8) goes through :func:`parse_line`, the reference rules, so counts and
malformed-line figures stay exact.
UTF-8 is checked only on lines that carry usage or a title: a line that is valid JSON
otherwise but carries neither cannot change a total, so its bytes are not checked and it
is not counted as non-UTF-8 (docs/architecture.md, "Invalid UTF-8"). A line without the
bytes ``"usage"``, ``title"``, ``\\u006`` or ``\\u007`` is not read at all (:func:`_candidate`):
it can count nothing, so a malformed one is not counted as bad either (docs/bad-input.md).
"""

from __future__ import annotations

import codecs
from datetime import datetime, timezone
from typing import Annotated, Any

from tokmon.core.model import ROW_KEY, ROW_OUTPUT
from tokmon.core.records import MAX_COST, MAX_TOKENS, TS_MAX, TS_MIN

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


def _carries(obj: object) -> bool:
    """Whether a decoded line is a usage line (``type: "assistant"`` with a ``message.usage``
    object) or a title line: the lines whose UTF-8 is checked."""
    if type(obj) is not dict:
        return False
    kind = obj.get("type")
    if kind == "assistant":
        msg = obj.get("message")
        return type(msg) is dict and type(msg.get("usage")) is dict
    return isinstance(kind, str) and kind in TITLE_TYPES


def _bad(line: bytes, stats: LineStats, offset: int) -> None:
    """Count a line orjson rejects, unless only its UTF-8 is bad and, read with the bad bytes
    replaced, it is valid JSON that carries neither usage nor a title (such a line cannot
    change a total, so its bytes are not checked on the fast path either)."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        import orjson

        try:
            if not _carries(orjson.loads(line.decode("utf-8", "replace"))):
                return
        except orjson.JSONDecodeError:
            pass
    _count_bad(line, stats, offset)


def _candidate(line: bytes) -> bool:
    """Whether a line may count anything: it holds the bytes ``"usage"`` (with its quotes),
    ``title"``, ``\\u006`` or ``\\u007``.

    A usage row needs the key "usage", a title the type "custom-title" or "ai-title", a
    poison count a usage line; JSON writes a key or a string between unescaped quotes and
    each letter of "usage" and "title" either as itself or as an escape
    ``\\u0061``..``\\u007A`` (lowercase ``u``, digits ``0``, ``6``, ``7``: no other
    spelling), and letters and quotes are single bytes in UTF-8 (with bad bytes replaced
    too). So a line without these bytes gives no row, no title and no count, whatever else
    it holds, and is skipped unread: a malformed line that could not have counted anything
    is not counted as bad. The native scanner applies the same test (``candidate`` in
    tokmon/_native/_scan.c, where the argument is written out)."""
    return b'"usage"' in line or b'title"' in line or b"\\u006" in line or b"\\u007" in line


def parse_line(line: bytes, source: str, offset: int, stats: LineStats) -> object:
    """Return a usage row (a list in ``records.FIELDS`` order, cost 0), a
    ``(session_id, kind, title)`` tuple, or None (also for a line :func:`_candidate`
    rules out, unread)."""
    if not _candidate(line):
        return None
    if line[:1] != b"{" or line.rstrip()[-1:] != b"}":
        # Not a JSON object line: a cheap check that catches garbage without parsing.
        if line.strip():
            _count_bad(line, stats, offset)
        return None
    # Every such line is decoded (validated, so the malformed count is exact, e.g. a truncated
    # line that the next line was appended to: "{...cut{...}"), and read whatever the bytes
    # of its type look like: a type spelled with escapes ("\u0061ssistant") is that type.
    # orjson is imported here, not with the module: a cold scan whose lines the native
    # scanner reads whole (titles included) never needs it, and its import is ~13 ms; a line
    # the scanner's yyjson rejects, orjson (which reads with yyjson) rejects too.
    if _rejects(line):
        _bad(line, stats, offset)
        return None
    import orjson

    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        _bad(line, stats, offset)
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
    if isinstance(kind, str) and kind in TITLE_TYPES:
        return _title(obj.get("sessionId"), kind, obj.get(TITLE_TYPES[kind]))
    return None


def _title(sid: object, kind: str, title: object) -> tuple[str, str, str] | None:
    """A title line's ``(session_id, kind, title)``, or None: what parse_line keeps of a line
    of a title type, and what the native scanner's ``title`` hook keeps of the two strings it
    read from one (:func:`_hooks`)."""
    if isinstance(sid, str) and isinstance(title, str) and title.strip():
        # the id as the session's records show it (without control characters)
        return (str(_shown(sid)), kind, str(_shown(title)).strip()[:200])
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
    inp, out, cread = (
        _n(g("input_tokens")),
        _n(g("output_tokens")),
        _n(g("cache_read_input_tokens")),
    )
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


# --- fast path: typed msgspec decode of the fields tokmon reads -------------------------------
# Counts are constrained to 0..MAX_TOKENS: any other value (negative, float, bool, null,
# poison) fails the typed decode and the line takes parse_line, which applies the reference
# rules (clamp, poison = malformed). Unknown fields are skipped but still validated as JSON.
# Built on first use: importing msgspec costs ~10 ms, which runs that read nothing skip.
_decode: Any = None
_decode_lines: Any = None  # the same decoder over many lines (msgspec >= 0.18; else None)
_DECODE_ERRORS: tuple[type[BaseException], ...] = (RecursionError,)


def _line_decoder() -> Any:
    """The msgspec decoder of a transcript line into the fields tokmon reads."""
    global _decode, _decode_lines, _DECODE_ERRORS
    if _decode is None:
        import msgspec

        count = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
        text = str | None

        def struct(name: str, fields: list[tuple[str, Any, Any]]) -> Any:
            return msgspec.defstruct(name, fields, gc=False)

        detail = struct("CacheDetail", [("ephemeral_1h_input_tokens", count, 0)])
        usage = struct(
            "Usage",
            [
                ("input_tokens", count, 0),
                ("output_tokens", count, 0),
                ("cache_creation_input_tokens", count, 0),
                ("cache_read_input_tokens", count, 0),
                ("cache_creation", detail | None, None),
            ],
        )
        message = struct(
            "Message", [("id", text, None), ("model", text, None), ("usage", usage | None, None)]
        )
        line = struct(
            "Line",
            [
                ("type", text, None),
                ("timestamp", text, None),
                ("sessionId", text, None),
                ("cwd", text, None),
                ("requestId", text, None),
                ("costUSD", float | None, None),
                ("message", message | None, None),
                ("customTitle", text, None),
                ("aiTitle", text, None),
            ],
        )
        _DECODE_ERRORS = (msgspec.DecodeError, RecursionError)  # ValidationError included
        decoder = msgspec.json.Decoder(line)
        _decode_lines = getattr(decoder, "decode_lines", None)
        _decode = decoder.decode
    return _decode


# --- the native scanner (tokmon._native._scan, optional; see docs/architecture.md) ------------
_native: Any = False  # the extension's scan(); False: not looked up yet, None: not in use


def native_scanner() -> Any:
    """The native line scanner's ``scan`` function, or None: not built, or disabled by
    ``TOKMON_NO_NATIVE`` (any value but "" and "0")."""
    global _native
    found = _native
    if found is False:
        # Looked up into a local and set once: another thread reading ``_native`` meanwhile
        # sees False (and looks it up itself), never a passing None.
        found = None
        if not _native_disabled():
            try:
                from tokmon._native import _scan
            except ImportError:
                pass
            else:
                from tokmon.core.reader import FP_BYTES, FP_WINDOW

                fp = (getattr(_scan, "FP_WINDOW", 0), getattr(_scan, "FP_BYTES", 0))
                if _scan.ROW_OUTPUT == ROW_OUTPUT and fp == (FP_WINDOW, FP_BYTES):
                    found = _scan.scan
        _native = found
    return found


def _rejects(data: bytes) -> bool:
    """Whether the native scanner's yyjson rejects ``data`` as JSON, so that orjson would
    too (``_scan.rejects``); False without the native scanner (orjson decides)."""
    if native_scanner() is None:
        return False
    from tokmon._native import _scan

    return bool(_scan.rejects(data))


def _native_disabled() -> bool:
    """Whether ``TOKMON_NO_NATIVE`` asks for the pure-Python scanner (see
    :func:`tokmon._native.disabled`)."""
    from tokmon._native import disabled

    return disabled()


def native_trim() -> None:
    """Free the buffers the native scanner keeps between calls (a scan's end: see
    ``kit_take`` in tokmon/_native/_scan.c)."""
    if _native:
        from tokmon._native import _scan

        _scan._trim()


def native_status() -> str:
    """Which line scanner cold scans use, for ``tokmon doctor``."""
    if native_scanner() is not None:
        from tokmon._native import _scan

        return f"native (yyjson {_scan.YYJSON_VERSION})"
    if _native_disabled():
        return "pure Python (TOKMON_NO_NATIVE is set)"
    return "pure Python (the native extension is not built)"


def scan_lines(
    buf: bytes | bytearray,
    start: int,
    stop: int,
    base: int,
    source: str,
    stats: LineStats,
    best: dict[str, list[Any]],
    titles: list[tuple[str, str, str]],
    strings: dict[str, str],
    reference: bool = False,
    price: Any = None,
    fp: list[str] | None = None,
) -> bool:
    """Parse the complete lines of ``buf[start:stop]`` (each ends with a newline; ``base`` is
    the file offset of ``buf[0]``): usage rows go into ``best`` (max output per dedup key),
    titles into ``titles``, skipped/malformed lines into ``stats``. ``strings`` maps the raw
    session ids, paths and model names to their shown text (one str object per value).
    ``price`` (a :class:`~tokmon.core.pricing.RowPricer` or None): the native scanner prices
    the rows as it builds them (C, and Python the rows of the lines it hands back) and this
    returns True; the other paths leave the cost 0.0 and return False (the caller prices).
    ``fp`` (a list): the native scanner also appends :func:`~tokmon.core.reader.fingerprint`'s
    digest of a file whose first ``stop`` bytes are ``buf[:stop]``, hashed with the lines (the
    GIL released; see ``fp_hex`` in tokmon/_native/_scan.c); the other paths append nothing.

    Same results as calling :func:`parse_line` on every line (the contract of
    ``tests/test_parser.py``). With the native extension (:func:`native_scanner`) the lines
    are parsed in C (yyjson, the GIL released) and any line C is not sure of comes back to
    the Python path below, in order (by :func:`parse_line` within the process's
    :data:`FALLBACK_BUDGET`: :func:`_scan_ref`). In Python, about twice as fast as :func:`parse_line`
    on every line: each run of lines shaped ``{...}`` is
    decoded by one msgspec call (which also validates it as JSON; a run it rejects is
    decoded a line at a time, and a line rejected alone takes :func:`parse_line`), UTF-8 is
    checked only on usage and title lines (not at all in an all-ASCII buffer; msgspec does
    not check the strings it skips), and a usage line superseded by a line of the same
    response with at least its output count builds no row. ``reference``: every line
    through :func:`parse_line` (for a small read, where building the msgspec decoder,
    ~10 ms, would cost more than it saves).
    """
    s = start
    find = buf.find
    view = memoryview(buf)  # lines are decoded from slices of it, without copies
    if reference:  # parse_line on every line: no msgspec decoder to build (a small read)
        while s < stop:
            nl = find(b"\n", s, stop)
            if nl == -1:  # pragma: no cover - callers pass whole lines only
                nl = stop
            if nl > s:
                _keep(parse_line(bytes(view[s:nl]), source, base + s, stats), best, titles)
            s = nl + 1
        return False
    scan = _native if _native is not False else native_scanner()
    if scan is not None:
        fallback, text, title = _hooks(view, base, source, stats, best, titles, strings, price)
        want = fp is not None and stop > 0  # (the fingerprint: returned with the count)
        got = scan(
            buf, start, stop, base, source, best, strings, text, fallback,
            MAX_TOKENS, TS_MIN, TS_MAX, None if price is None else price.native,
            stop if want else -1, -1, -1, None, title,
        )  # fmt: skip
        if want:
            got, digest = got
            fp.append(digest)  # type: ignore[union-attr]
        stats.malformed += got  # (after the call: the fallback counts into stats too)
        return price is not None
    _scan_py(buf, start, stop, base, source, stats, best, titles, strings, buf.isascii())
    return False


def _hooks(
    view: memoryview | None,
    base: int,
    source: str,
    stats: LineStats,
    best: dict[str, list[Any]],
    titles: list[tuple[str, str, str]],
    strings: dict[str, str],
    price: Any,
) -> tuple[Any, Any, Any]:
    """The native scanner's ``fallback``, ``text`` and ``title`` for a buffer (``view``, file
    offset ``base`` at its start): the lines it leaves to Python (any doubt) come back to
    ``fallback``, in order: the reference rules of :func:`scan_lines`, on a copy of just
    those lines; with ``price``, their rows are priced before they are filed. ``view``
    None: ``fallback`` takes the copy and its file offset (``_scan.finish``). The title
    lines the scanner reads itself come to ``title`` as their session id, type and title
    (:func:`_title`'s rules, in line order with the fallback's titles)."""

    def run(part: bytes, at: int) -> None:
        global _fallback_bytes
        _fallback_bytes += len(part)
        # priced: the run's rows in a dict of their own, priced, then filed into best by
        # the same rule (the first row with the largest output wins), in the same order
        into = best if price is None else {}
        if _fallback_bytes <= FALLBACK_BUDGET:
            _scan_ref(part, at, source, stats, into, titles, strings)
        else:
            _scan_py(part, 0, len(part), at, source, stats, into, titles, strings, part.isascii())
        if into is not best and into:
            price(list(into.values()))
            for row in into.values():
                _keep(row, best, titles)

    def fallback(a: int, b: int) -> None:
        assert view is not None
        run(bytes(view[a:b]), base + a)

    def text(raw: str) -> str:
        return _text(raw, strings)

    def title(sid: str, kind: str, raw: str) -> None:
        item = _title(sid, kind, raw)
        if item is not None:
            titles.append(item)

    return fallback if view is not None else run, text, title


def scan_whole(
    path: str,
    buf: bytearray | None,
    size: int,
    stats: LineStats,
    best: dict[str, list[Any]],
    titles: list[tuple[str, str, str]],
    strings: dict[str, str],
    price: Any,
    parsed: Any = None,
) -> tuple[int, str] | None:
    """The native scanner opens ``path`` (``size``: its size in the stat the caller planned
    from), reads it into ``buf`` from its start and scans its complete lines as
    :func:`scan_lines` would, with the fingerprint at their end, in one stretch without the
    GIL, its opening and closing included (see ``read_whole`` in tokmon/_native/_scan.c):
    (the end of the complete lines, the fingerprint there), or None when ``buf`` filled
    before the file's end (nothing was parsed: the caller reads it the usual way). Raises
    OSError as ``os.open`` or a read would. Only with the native scanner
    (:func:`native_scanner`). ``parsed``: the file as ``_scan.parse_many`` already read and
    parsed it (on a scan thread, without the GIL; ``buf`` unused): its rows are built from
    that (``_scan.finish``)."""
    native_price = None if price is None else price.native
    if parsed is not None:
        module = native_parse()
        assert module is not None
        fallback, text, title = _hooks(None, 0, path, stats, best, titles, strings, price)
        got = module.finish(
            parsed, path, best, strings, text, fallback, title, TS_MIN, TS_MAX, native_price
        )
    else:
        scan = _native if _native is not False else native_scanner()
        assert scan is not None and buf is not None
        with memoryview(buf) as view:
            fallback, text, title = _hooks(view, 0, path, stats, best, titles, strings, price)
            got = scan(
                buf, 0, 0, 0, path, best, strings, text, fallback, MAX_TOKENS, TS_MIN, TS_MAX,
                native_price, -1, -1, size, path, title,
            )  # fmt: skip
    if got is None:
        return None
    poison, end, fp = got
    stats.malformed += poison
    return end, fp


_parse_module: Any = None  # the extension's module once looked up (native_parse)


def native_parse() -> Any:
    """The native scanner's module when it parses files in batches (``parse_many``, then
    ``finish`` for each: :func:`tokmon.core.scan.parse_task`), else None (also while the
    native scanner is not in use, see :func:`native_scanner`)."""
    global _parse_module
    if native_scanner() is None:
        return None
    if _parse_module is None:
        from tokmon._native import _scan

        _parse_module = _scan if hasattr(_scan, "parse_many") else False
    return _parse_module or None


#: Bytes of the lines the native scanner leaves to Python (titles, malformed lines, any doubt)
#: that a process reads with :func:`parse_line` before it builds the msgspec decoder. On the
#: bench corpus these are ~80 bytes per MB of transcripts (401 lines, 40 KB at 500 MB): the
#: decoder's import alone (~7-10 ms of CPU, ~3.5 MB of RSS: msgspec, typing_extensions,
#: inspect, decimal) would cost more than parse_line's extra ~2-10 ms per MB over msgspec's
#: typed decode (docs/performance.md, tenth session); past this many bytes (a corpus whose
#: usage lines all go to Python, e.g. with a legacy ``costUSD`` on every line) it is built.
FALLBACK_BUDGET = 256 * 1024
_fallback_bytes = 0  # handed to the fallback so far, in this process (under the GIL)


def _scan_ref(
    buf: bytes,
    base: int,
    source: str,
    stats: LineStats,
    best: dict[str, list[Any]],
    titles: list[tuple[str, str, str]],
    strings: dict[str, str],
) -> None:
    """The whole lines of ``buf`` (from the native scanner's fallback) by :func:`parse_line`,
    with :func:`_scan_py`'s results: a line parse_line counts as bad whose reading by msgspec
    is in doubt (:func:`_doubt`) is taken back and goes to :func:`_scan_py`."""
    s, stop = 0, len(buf)
    find = buf.find
    while s < stop:
        nl = find(b"\n", s)
        if nl == -1:  # pragma: no cover - the native scanner hands over whole lines
            nl = stop
        if nl > s:
            line = buf[s:nl]
            malformed, utf8, listed = stats.malformed, stats.invalid_utf8, len(stats.bad)
            item = parse_line(line, source, base + s, stats)
            if (stats.malformed != malformed or stats.invalid_utf8 != utf8) and _doubt(line):
                stats.malformed, stats.invalid_utf8 = malformed, utf8
                del stats.bad[listed:]
                end = min(nl + 1, stop)
                _scan_py(buf, s, end, base, source, stats, best, titles, strings, line.isascii())
            else:
                _keep(item, best, titles)
        s = nl + 1


def _doubt(line: bytes) -> bool:
    """Whether msgspec might read a line that :func:`parse_line` counted as bad otherwise.

    :func:`_scan_py` gives parse_line every line msgspec rejects and every line not shaped
    ``{...}``, so only a shaped line msgspec accepts can differ: one orjson rejects, e.g. a
    number past a double's range (``1e400``), which msgspec reads as infinity. No doubt
    when orjson accepts the line read with its bad UTF-8 replaced (parse_line counted it as
    poison or non-UTF-8: the usage or title line msgspec hands to parse_line too), nor when
    Python's json, more lenient than msgspec (control characters, NaN, big numbers, lone
    surrogates, any depth), rejects it too."""
    if line[:1] != b"{" or (line[-1:] != b"}" and line[-2:] != b"}\r"):
        return False
    import json  # (rare: bad lines only; the cold CLI has it already)

    text = line.decode("utf-8", "replace")
    if not _rejects(text.encode()):
        import orjson

        try:
            orjson.loads(text)
            return False
        except orjson.JSONDecodeError:
            pass
    try:
        json.loads(text, strict=False)
    except json.JSONDecodeError:
        return False
    except Exception:  # noqa: BLE001 - a deep line, a 5,000-digit int: not sure
        return True
    return True


def _scan_py(
    buf: bytes | bytearray,
    start: int,
    stop: int,
    base: int,
    source: str,
    stats: LineStats,
    best: dict[str, list[Any]],
    titles: list[tuple[str, str, str]],
    strings: dict[str, str],
    ascii: bool,
) -> None:
    """:func:`scan_lines` in Python (msgspec); ``ascii``: ``buf`` is all ASCII (no line's
    UTF-8 needs a check)."""
    s = start
    find = buf.find
    view = memoryview(buf)
    decode = _decode or _line_decoder()
    decode_lines = _decode_lines
    errors = _DECODE_ERRORS
    shown = strings.get
    get = best.get
    fromiso = _fromiso
    while s < stop:
        # A run of lines shaped "{...}" (a CR before the newline allowed), decoded by one
        # msgspec call. Each such line is exactly one value of the run when the decode
        # succeeds and yields as many values as lines: a value cannot run on past a line's
        # end, since a raw newline is invalid inside a string and, after the "}" that ends
        # a line, the "{" that starts the next one is invalid inside an object or an array;
        # so every line holds whole values, at least one, and the count leaves one a line.
        first = s
        ends: list[int] = []
        nl = -1
        while s < stop:
            nl = find(b"\n", s, stop)
            if nl == -1:  # pragma: no cover - callers pass whole lines only
                nl = stop
            if buf[s] != 123 or (buf[nl - 1] != 125 and (buf[nl - 1] != 13 or buf[nl - 2] != 125)):
                break
            ends.append(nl)
            s = nl + 1
        if ends:
            objs: list[Any] | None = None
            if decode_lines is not None and len(ends) > 1:
                try:
                    objs = decode_lines(view[first:s])
                except errors:
                    pass
            if objs is None or len(objs) != len(ends):  # a line at a time; None: reference
                objs = []
                off = first
                for end in ends:
                    try:
                        objs.append(decode(view[off:end]))
                    except errors:
                        objs.append(None)
                    off = end + 1
            nxt = first
            for obj, end in zip(objs, ends, strict=True):
                off = nxt
                nxt = end + 1
                if obj is None:
                    _keep(parse_line(bytes(view[off:end]), source, base + off, stats), best, titles)
                    continue
                kind = obj.type
                if kind == "assistant":
                    msg = obj.message
                    if msg is None:
                        continue
                    usage = msg.usage
                    if usage is None:
                        continue
                    if not ascii:
                        line = view[off:end]
                        try:  # _utf8, inline for the usual line
                            if end - off <= _UTF8_SLICE:
                                str(line, "utf-8")
                            elif not _utf8(line):
                                raise UnicodeError
                        except UnicodeError:  # the reference rules (a non-UTF-8 usage line)
                            _keep(parse_line(bytes(line), source, base + off, stats), best, titles)
                            continue
                    stamp = obj.timestamp
                    if stamp is None or len(stamp) < 10:
                        continue
                    legacy = obj.costUSD
                    mid, rid = msg.id, obj.requestId
                    key = f"{mid}:{rid}" if mid and rid else f"@{source}:{base + off}"
                    out = usage.output_tokens
                    old = get(key)
                    superseded = old is not None and out <= old[ROW_OUTPUT]
                    if (
                        superseded
                        and "1971" <= stamp < "2199"  # the year, 1971..2198
                        and (legacy is None or -MAX_COST <= legacy <= MAX_COST)
                    ):
                        # the first line with the largest output wins; this one builds no
                        # row and, with a stamp of such a year (any UTC offset keeps it in
                        # 1970..2200), is not poison whatever the stamp parses to: unparsed
                        continue
                    try:  # _timestamp's fast path, inline
                        dt = fromiso(stamp)
                        ts = dt.timestamp() if dt.tzinfo is not None else _timestamp(stamp)
                    except (ValueError, OverflowError):
                        ts = _timestamp(stamp)
                    if ts is None:
                        continue
                    if not TS_MIN <= ts < TS_MAX or (
                        legacy is not None and not -MAX_COST <= legacy <= MAX_COST  # NaN, inf
                    ):
                        stats.malformed += 1  # poison: valid JSON, so not listed in stats.bad
                        continue
                    if superseded:
                        continue
                    # _usage_record's row for a typed line (counts already in 0..MAX_TOKENS);
                    # session id, cwd and model through ``strings``, raw to shown text
                    raw = obj.sessionId
                    sid = shown(raw) if raw else ""
                    if sid is None:
                        sid = _text(raw, strings)
                    raw = obj.cwd
                    cwd = shown(raw) if raw else ""
                    if cwd is None:
                        cwd = _text(raw, strings)
                    raw = msg.model
                    model = shown(raw) if raw else ""
                    if model is None:
                        model = _text(raw, strings)
                    cc = usage.cache_creation_input_tokens
                    detail = usage.cache_creation
                    best[key] = [  # UsageRecord field order (tokmon.core.model.FIELDS)
                        ts,
                        sid or "unknown",
                        cwd,
                        model or "unknown",
                        usage.input_tokens,
                        out,
                        cc,
                        0 if detail is None else min(detail.ephemeral_1h_input_tokens, cc),
                        usage.cache_read_input_tokens,
                        key,
                        0.0,
                        legacy,
                    ]
                elif kind in _TITLE_KINDS:
                    line = view[off:end]
                    if not (ascii or _utf8(line)):
                        _keep(parse_line(bytes(line), source, base + off, stats), best, titles)
                        continue
                    raw = obj.sessionId
                    title = obj.customTitle if kind == "custom-title" else obj.aiTitle
                    if raw is None or title is None or not title.strip():
                        continue
                    sid = shown(raw)  # the id as the session's records show it
                    if sid is None:
                        sid = _text(raw, strings)
                    titles.append((sid, kind, str(_shown(title)).strip()[:200]))
        if s < stop:  # the line at s is not shaped "{...}": the reference rules
            if nl > s:
                _keep(parse_line(bytes(view[s:nl]), source, base + s, stats), best, titles)
            s = nl + 1


_TITLE_KINDS = frozenset(TITLE_TYPES)


def _text(raw: str, strings: dict[str, str]) -> str:
    """A session id, cwd or model name as shown (without control characters), remembered
    in ``strings`` (raw text to shown text: one str object per value)."""
    text = str(_shown(raw))
    strings[raw] = text
    return text


def _keep(item: object, best: dict[str, list[Any]], titles: list[tuple[str, str, str]]) -> None:
    """File a :func:`parse_line` result: a row (max output per key) or a title."""
    if item is None:
        return
    if type(item) is list:
        k = item[ROW_KEY]
        old = best.get(k)
        if old is None or item[ROW_OUTPUT] > old[ROW_OUTPUT]:
            best[k] = item
    else:
        titles.append(item)  # type: ignore[arg-type]


_UTF8_SLICE = 1 << 16  # a longer line is checked this many bytes at a time: the temporary
# str (up to 4 bytes a character) stays below malloc's large-block size, so it leaves no
# large holes in the heap between long-lived rows (peak RSS)


def _utf8(data: memoryview) -> bool:
    """Whether ``data`` is valid UTF-8 (what orjson requires of a whole line)."""
    try:
        if len(data) <= _UTF8_SLICE:
            str(data, "utf-8")
        else:  # in slices; the incremental decoder carries a character split between two
            dec = codecs.getincrementaldecoder("utf-8")()
            for i in range(0, len(data), _UTF8_SLICE):
                dec.decode(data[i : i + _UTF8_SLICE])
            dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
