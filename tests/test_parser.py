"""Table-driven line rules of the transcript parser (docs/architecture.md, "Input values";
/work/shared/docs/transcript-format.md, "Counting rules").

Every case runs through both implementations: ``parse_line`` (the reference rules, one line)
and ``scan_lines`` (the cold scanner's fast path over a whole buffer, msgspec typed decode
with ``parse_line`` as the fallback). Expected values are written by hand from the rules.
"""

from __future__ import annotations

import calendar
import json
from typing import Any

import pytest

from tokmon.core.model import FIELDS
from tokmon.core.parser import LineStats, parse_line, scan_lines

TS = "2026-11-29T10:00:00.250Z"
TS_EPOCH = calendar.timegm((2026, 11, 29, 10, 0, 0)) + 0.25
SRC = "/x/s.jsonl"


def usage_line(**over: Any) -> bytes:
    """An assistant line; ``over`` replaces top-level keys, ``usage`` / ``message`` merge."""
    usage = {
        "input_tokens": 3,
        "output_tokens": 40,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 2000,
    }
    usage.update(over.pop("usage", {}))
    msg: dict[str, Any] = {
        "id": "msg_1",
        "model": "claude-sonnet-4-5",
        "role": "assistant",
        "content": [{"type": "text", "text": "héllo ✅ 🚀"}],
        "usage": usage,
    }
    msg.update(over.pop("message", {}))
    obj: dict[str, Any] = {
        "parentUuid": None,
        "cwd": "/home/u/p",
        "sessionId": "s1",
        "type": "assistant",
        "message": msg,
        "requestId": "req_1",
        "timestamp": TS,
    }
    obj.update(over)
    return json.dumps(obj, ensure_ascii=False).encode()


ROW = {
    "ts": TS_EPOCH,
    "session_id": "s1",
    "project": "/home/u/p",
    "model": "claude-sonnet-4-5",
    "input_tokens": 3,
    "output_tokens": 40,
    "cache_creation_tokens": 100,
    "cache_1h_tokens": 0,
    "cache_read_tokens": 2000,
    "key": "msg_1:req_1",
    "cost": 0.0,
    "display_cost": None,
}


def row(**over: Any) -> tuple[str, dict[str, Any]]:
    return ("row", {**ROW, **over})


SKIP = ("skip", None)
MALFORMED = ("malformed", None)
BAD_UTF8 = ("invalid_utf8", None)
OFFSET = 0  # the cases are parsed as the first line of a file

CASES: list[tuple[str, bytes, tuple[str, Any]]] = [
    # counted
    ("plain usage line", usage_line(), row()),
    (
        "spaced JSON is the same line",
        json.dumps(json.loads(usage_line()), indent=None, separators=(", ", ": ")).encode(),
        row(),
    ),
    (
        "1h cache write",
        usage_line(usage={"cache_creation": {"ephemeral_1h_input_tokens": 60}}),
        row(cache_1h_tokens=60),
    ),
    (
        "1h part capped at the cache write",
        usage_line(usage={"cache_creation": {"ephemeral_1h_input_tokens": 500}}),
        row(cache_1h_tokens=100),
    ),
    ("negative count is 0", usage_line(usage={"input_tokens": -5}), row(input_tokens=0)),
    ("float count truncated", usage_line(usage={"output_tokens": 12.7}), row(output_tokens=12)),
    (
        "bool, string, null counts are 0",
        usage_line(
            usage={"input_tokens": True, "output_tokens": "5", "cache_read_input_tokens": None}
        ),
        row(input_tokens=0, output_tokens=0, cache_read_tokens=0),
    ),
    (
        "missing counter is 0",
        usage_line(usage={"cache_read_input_tokens": 0}),
        row(cache_read_tokens=0),
    ),
    (
        "exactly 10^9 is not poison",
        usage_line(usage={"output_tokens": 10**9}),
        row(output_tokens=10**9),
    ),
    ("legacy costUSD kept", usage_line(costUSD=1.5), row(display_cost=1.5)),
    ("legacy integer costUSD", usage_line(costUSD=2), row(display_cost=2.0)),
    ("non-numeric costUSD ignored", usage_line(costUSD="1.5"), row()),
    (
        "no session id, model",
        usage_line(sessionId=None, message={"model": ""}),
        row(session_id="unknown", model="unknown"),
    ),
    ("no cwd", usage_line(cwd=None), row(project="")),
    ("offset timestamp", usage_line(timestamp="2026-11-29T12:00:00.250+02:00"), row()),
    ("naive timestamp is UTC", usage_line(timestamp="2026-11-29T10:00:00.250"), row()),
    (
        "control characters stripped from cwd and model",
        usage_line(cwd="/home/u/\x1b]52;c;AAAA\x07p", message={"model": "m\u202eodel"}),
        row(project="/home/u/]52;c;AAAAp", model="model"),
    ),
    # dedup key
    ("no requestId: keyed by file position", usage_line(requestId=None), row(key=f"@{SRC}:0")),
    (
        "empty message id: keyed by file position",
        usage_line(message={"id": ""}),
        row(key=f"@{SRC}:0"),
    ),
    # skipped, not malformed
    (
        "user line with a subagent usage",
        json.dumps(
            {
                "type": "user",
                "timestamp": TS,
                "sessionId": "s1",
                "message": {"role": "user"},
                "toolUseResult": {"usage": {"input_tokens": 5, "output_tokens": 9}},
            }
        ).encode(),
        SKIP,
    ),
    (
        "assistant text nested in a user line",
        json.dumps(
            {"type": "user", "message": {"content": '{"type":"assistant","usage":{}}'}}
        ).encode(),
        SKIP,
    ),
    ("assistant without usage", usage_line(message={"usage": None}), SKIP),
    (
        "assistant with a string message",
        usage_line(message={"id": "X"}).replace(
            b'"message": {"id": "X"', b'"message": "hi", "m": {"id": "X"'
        ),
        SKIP,
    ),
    ("no timestamp", usage_line(timestamp=None), SKIP),
    ("unparsable timestamp", usage_line(timestamp="yesterday"), SKIP),
    ("summary line", b'{"type":"summary","summary":"x","leafUuid":"u"}', SKIP),
    ("empty line", b"", SKIP),
    ("whitespace line", b"   \t", SKIP),
    ("CRLF ending", usage_line() + b"\r", row()),
    # titles
    (
        "custom title",
        b'{"type":"custom-title","sessionId":"s1","customTitle":" My run "}',
        ("title", ("s1", "custom-title", "My run")),
    ),
    (
        "ai title, escapes stripped",
        b'{"type":"ai-title","sessionId":"s1","aiTitle":"a\\u001b[8mb"}',
        ("title", ("s1", "ai-title", "a[8mb")),
    ),
    ("blank title", b'{"type":"custom-title","sessionId":"s1","customTitle":"  "}', SKIP),
    ("title without session", b'{"type":"ai-title","aiTitle":"t"}', SKIP),
    # malformed (skipped and counted): lines that hold '"usage"', 'title"', "\u006" or "\u007"
    ("truncated line", usage_line()[:-7], MALFORMED),
    (
        "cut line with a usage line appended",
        b'{"type":"user","message":{"content":"ab' + usage_line(),
        MALFORMED,
    ),
    ("cut title line", b'{"type":"custom-title","sessionId":"s1","customTi', MALFORMED),
    ("cut line, escaped letter", b'{"type":"\\u0061ssistant","message":{"us', MALFORMED),
    ("JSON array", b'[{"usage": 1}]', MALFORMED),
    ("leading space", b" " + usage_line(), MALFORMED),
    ("garbage", b'not json, "usage" 5', MALFORMED),
    ("trailing comma", b'{"type":"user","usage":{},}', MALFORMED),
    ("NaN literal", b'{"type":"user","title":NaN}', MALFORMED),
    # malformed, but without those bytes: could not have counted anything, not read
    ("cut line with the next appended", usage_line()[:50] + b'{"type":"user"}', SKIP),
    ("truncated non-usage line", b'{"type":"user","message":{"content":"ab', SKIP),
    ("JSON array without the bytes", b"[1, 2]", SKIP),
    ("garbage without the bytes", b"not json at all", SKIP),
    ("trailing comma without the bytes", b'{"type":"user",}', SKIP),
    ("NaN literal without the bytes", b'{"type":"user","x":NaN}', SKIP),
    ("cut line, an escape of no letter", b'{"type":"user","x":"\\u001b\\u0041\\u00', SKIP),
    ("usage spelled with a capital", b'{"type":"assistant","message":{"Usage":{', SKIP),
    (
        "invalid UTF-8 in a usage line",
        usage_line().replace("héllo".encode(), b"h\xffllo"),
        BAD_UTF8,
    ),
    (
        "invalid UTF-8 in a title line",
        b'{"type":"ai-title","sessionId":"s","aiTitle":"\xc3("}',
        BAD_UTF8,
    ),
    ("invalid UTF-8, not JSON either", b'{"type":"user","title":"\xe2\x82', BAD_UTF8),
    ("invalid UTF-8, not JSON, without the bytes", b'{"type":"user","x":"\xe2\x82', SKIP),
    # valid JSON but for its UTF-8, carrying neither usage nor a title: not read, not counted
    ("invalid UTF-8 in another line", b'{"type":"user","x":"\xc3("}', SKIP),
    ("truncated UTF-8 sequence", b'{"type":"user","x":"\xe2\x82"}', SKIP),
    ("invalid UTF-8 in a user line's cwd", b'{"type":"user","cwd":"caf\xe9"}', SKIP),
    (
        "invalid UTF-8 in an assistant line without usage",
        b'{"type":"assistant","message":{"content":"caf\xe9"}}',
        SKIP,
    ),
    # poison values: malformed
    ("count over 10^9", usage_line(usage={"output_tokens": 10**9 + 1}), MALFORMED),
    ("count 2^64", usage_line(usage={"input_tokens": 2**64}), MALFORMED),
    ("count 1e308", usage_line(usage={"cache_read_input_tokens": 1e308}), MALFORMED),
    ("year 2200", usage_line(timestamp="2200-01-01T00:00:00Z"), MALFORMED),
    ("year 1969", usage_line(timestamp="1969-12-31T23:59:59Z"), MALFORMED),
    ("year 9999", usage_line(timestamp="9999-12-31T23:59:59+14:00"), MALFORMED),
    ("costUSD over 10^6", usage_line(costUSD=1e7), MALFORMED),
    ("costUSD -10^7", usage_line(costUSD=-1e7), MALFORMED),
]


def _outcome(item: object, stats: LineStats) -> tuple[str, Any]:
    if stats.invalid_utf8:
        assert item is None and stats.malformed == 0
        return BAD_UTF8
    if stats.malformed:
        assert item is None and stats.malformed == 1
        return MALFORMED
    if item is None:
        return SKIP
    if type(item) is list:
        return ("row", dict(zip(FIELDS, item, strict=True)))
    return ("title", item)


@pytest.mark.parametrize(("line", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_line(line: bytes, expected: tuple[str, Any]) -> None:
    stats = LineStats()
    assert _outcome(parse_line(line, SRC, OFFSET, stats), stats) == expected


@pytest.mark.parametrize(("line", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_scan_lines(line: bytes, expected: tuple[str, Any]) -> None:
    stats = LineStats()
    best: dict[str, list[Any]] = {}
    titles: list[tuple[str, str, str]] = []
    buf = line + b"\n"
    scan_lines(buf, 0, len(buf), 0, SRC, stats, best, titles, {})
    assert len(best) + len(titles) <= 1
    item = next(iter(best.values()), None) or (titles[0] if titles else None)
    assert _outcome(item, stats) == expected


@pytest.mark.parametrize("reference", [False, True])
def test_whole_buffer_counts_and_offsets(reference: bool) -> None:
    """All cases in one buffer (after 5 bytes of another chunk): one malformed/invalid count
    per bad line, bad offsets listed, the position keys use file offsets (with the msgspec
    decoder and with ``reference``, parse_line on every line: a small read)."""
    prefix = b"XXXXX"
    buf = prefix
    offsets = []
    for _, line, _ in CASES:
        offsets.append(1000 + len(buf) - len(prefix))
        buf += line + b"\n"
    stats = LineStats()
    best: dict[str, list[Any]] = {}
    titles: list[tuple[str, str, str]] = []
    scan_lines(
        buf, len(prefix), len(buf), 1000 - len(prefix), SRC, stats, best, titles, {}, reference
    )
    want_bad = [o for o, c in zip(offsets, CASES, strict=True) if c[2] in (MALFORMED, BAD_UTF8)]
    assert stats.invalid_utf8 == sum(c[2] == BAD_UTF8 for c in CASES) == 3
    assert stats.malformed == sum(c[2] == MALFORMED for c in CASES)
    # poison lines are counted but not listed (they are valid JSON); the rest are listed
    poison = {
        o
        for o, c in zip(offsets, CASES, strict=True)
        if c[0].startswith(("count ", "year", "costUSD")) and c[2] == MALFORMED
    }
    assert stats.bad == [o for o in want_bad if o not in poison][: LineStats.MAX_LISTED]
    assert len(titles) == 2
    position_keys = {k for k in best if k.startswith("@")}
    first_no_req = next(
        o for o, c in zip(offsets, CASES, strict=True) if c[0].startswith("no requestId")
    )
    assert f"@{SRC}:{first_no_req}" in position_keys


@pytest.mark.parametrize("reference", [False, True])
def test_dedup_keeps_max_output_first_on_ties(reference: bool) -> None:
    """Streamed lines of one response share message.id:requestId; the max output wins, the
    first line wins a tie (transcript-format.md, rule 4)."""
    lines = [
        usage_line(usage={"output_tokens": 5}, cwd="/a"),
        usage_line(usage={"output_tokens": 50}, cwd="/b"),
        usage_line(usage={"output_tokens": 50}, cwd="/c"),
        usage_line(usage={"output_tokens": 20}, cwd="/d"),
        usage_line(usage={"output_tokens": 7}, message={"id": "msg_2"}, cwd="/e"),
    ]
    buf = b"\n".join(lines) + b"\n"
    best: dict[str, list[Any]] = {}
    stats = LineStats()
    scan_lines(buf, 0, len(buf), 0, SRC, stats, best, [], {}, reference)
    got = {
        k: (
            dict(zip(FIELDS, r, strict=True))["output_tokens"],
            dict(zip(FIELDS, r, strict=True))["project"],
        )
        for k, r in best.items()
    }
    assert got == {"msg_1:req_1": (50, "/b"), "msg_2:req_1": (7, "/e")}
    assert stats.total() == 0


# --- whole runs of lines: one msgspec call per run, the line-at-a-time path as fallback -------
# The fast path decodes a run of lines shaped "{...}" in one call and keeps the values only
# when there is exactly one a line; these buffers mix lines that pass or break that check
# (or fail the decode) at every position. The oracle is parse_line on each line, filed by
# the rules (max output per key, the first on ties), written out here.


def _by_parse_line(buf: bytes, start: int, base: int) -> tuple[Any, ...]:
    stats = LineStats()
    best: dict[str, list[Any]] = {}
    titles: list[Any] = []
    for i, line in enumerate(buf[start:].split(b"\n")[:-1]):
        off = start + sum(len(x) + 1 for x in buf[start:].split(b"\n")[:i])
        item = parse_line(line, SRC, base + off, stats) if line else None
        if type(item) is list:
            key, out = item[FIELDS.index("key")], item[FIELDS.index("output_tokens")]
            if key not in best or out > best[key][FIELDS.index("output_tokens")]:
                best[key] = item
        elif item is not None:
            titles.append(item)
    return best, titles, stats.malformed, stats.invalid_utf8, stats.bad


def _by_scan_lines(buf: bytes, start: int, base: int) -> tuple[Any, ...]:
    stats = LineStats()
    best: dict[str, list[Any]] = {}
    titles: list[Any] = []
    scan_lines(bytearray(buf), start, len(buf), base, SRC, stats, best, titles, {})
    return best, titles, stats.malformed, stats.invalid_utf8, stats.bad


def _agree(lines: list[bytes], prefix: bytes = b"") -> None:
    buf = prefix + b"\n".join(lines) + b"\n"
    assert _by_scan_lines(buf, len(prefix), 100) == _by_parse_line(buf, len(prefix), 100)


def _good(n: int, **over: Any) -> bytes:
    return usage_line(message={"id": f"msg_{n}"}, usage={"output_tokens": n}, **over)


TITLE = b'{"type":"custom-title","sessionId":"s1","customTitle":"t"}'
USER = b'{"type":"user","sessionId":"s1","message":{"content":"caf\xc3\xa9 \xe2\x9c\x85"}}'


def test_a_run_of_good_lines_gives_every_row_and_title() -> None:
    lines = [_good(n) for n in range(1, 30)] + [TITLE, USER] + [_good(n) for n in range(30, 40)]
    buf = b"\n".join(lines) + b"\n"
    got = _by_scan_lines(buf, 0, 0)
    assert len(got[0]) == 39 and got[1] == [("s1", "custom-title", "t")] and got[2:] == (0, 0, [])
    _agree(lines)


@pytest.mark.parametrize("case", [c for c in CASES if c[1]], ids=[c[0] for c in CASES if c[1]])
@pytest.mark.parametrize("where", [0, 1, 5, 11])
def test_every_case_inside_a_run(case: tuple[str, bytes, Any], where: int) -> None:
    """Each case among good lines, first, second, in the middle or last: the run around it
    is decoded in one call, or line by line when the case breaks the run."""
    lines = [_good(n) for n in range(1, 12)]
    lines.insert(where, case[1])
    _agree(lines)
    _agree(lines, prefix=b'{"type":"user"}\n')  # the run starts after another chunk's bytes


def test_lines_that_are_json_only_together_are_each_malformed() -> None:
    """Lines shaped "{...}" whose text, joined, is valid JSON or holds the right number of
    values: each is counted as parse_line counts it, never decoded as one value."""
    spans = [b'{"a":[{"b":1}', b'{"c":2}]}', b'{"d":1}{"e":2}']
    open_end = [b'{"a":[', b'{"b":1}]}', b'{"c":1}{"d":2}']  # a line ending in "[", ":", ","
    colon = [b'{"a":', b'{"b":1}}', b"{}{}"]
    comma = [b'{"a":[1,', b'{"b":1}]}', b'{"c":1} {"d":2}']
    twice = [b'{"a":1}{"b":2}', b"{}"]
    spaced = [b'{"a":1} {"b":2}', _good(1)]
    split_str = [b'{"type":"user","x":"a}', b'{"b"}']
    for extra in (spans, open_end, colon, comma, twice, spaced, split_str):
        _agree([_good(5), *extra, _good(6)])
        _agree([*extra, _good(7)])
        _agree([_good(8), *extra])
    for extra in (spans, open_end, colon, comma):  # no line may count anything: none read
        assert _by_scan_lines(b"\n".join(extra) + b"\n", 0, 0)[2:4] == (0, 0)
    # the same with "usage" or "title" on every line (lines that could have counted)
    spans = [b'{"usage":[{"b":1}', b'{"title":2}]}', b'{"d":1}{"usage":2}']
    open_end = [b'{"usage":[', b'{"title":1}]}', b'{"c":1}{"usage":2}']
    colon = [b'{"usage":', b'{"title":1}}', b'{}{"usage":1}']
    comma = [b'{"usage":[1,', b'{"title":1}]}', b'{"c":1} {"usage":2}']
    for extra in (spans, open_end, colon, comma):
        _agree([_good(5), *extra, _good(6)])
        _agree([*extra, _good(7)])
        assert _by_scan_lines(b"\n".join(extra) + b"\n", 0, 0)[2:4] == (3, 0)


def test_a_run_is_decoded_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of runs: good lines cost one msgspec call, not one a line."""
    from tokmon.core import parser

    parser._line_decoder()
    calls: list[int] = []
    many = parser._decode_lines

    def counted(data: Any) -> Any:
        calls.append(len(data))
        return many(data)

    monkeypatch.setattr(parser, "_decode_lines", counted)
    lines = [_good(n) for n in range(1, 40)]
    buf = b"\n".join(lines) + b"\n"
    assert len(_by_scan_lines(buf, 0, 0)[0]) == 39
    assert calls == [len(buf)]


def test_lines_without_ids_keep_their_own_offsets_inside_a_run() -> None:
    lines = [_good(1), usage_line(requestId=None), _good(2), usage_line(message={"id": ""})]
    buf = b"\n".join(lines) + b"\n"
    keys = set(_by_scan_lines(buf, 0, 7)[0])
    off2 = 7 + len(lines[0]) + 1
    off4 = 7 + sum(len(x) + 1 for x in lines[:3])
    assert {f"@{SRC}:{off2}", f"@{SRC}:{off4}"} <= keys
    _agree(lines)


def test_crlf_empty_whitespace_and_other_lines_break_or_join_runs() -> None:
    crlf = [x + b"\r" for x in (_good(1), _good(2), TITLE, _good(3))]
    _agree(crlf)
    _agree([_good(1), b"", _good(2), b"", b"", _good(3)])
    _agree([_good(1), b"  ", _good(2), b"\t", b"\r", _good(3)])
    _agree([_good(1), b" " + _good(2), _good(3), _good(4) + b" ", _good(5)])
    _agree([_good(1), b"[1]", b"null", b'"s"', b"7", _good(2), b"}", b"{", _good(3)])
    _agree([_good(1), b"{}", b"{ }", _good(2), b'{"type":null}', _good(3)])


def test_invalid_utf8_at_every_kind_of_line_inside_runs() -> None:
    bad_usage = usage_line().replace("héllo".encode(), b"h\xffllo")
    bad_title = b'{"type":"ai-title","sessionId":"s","aiTitle":"\xc3("}'
    bad_user = b'{"type":"user","x":"\xe2\x82"}'
    bad_cut = b'{"type":"user","x":"\xe2\x82'
    for bad in (bad_usage, bad_title, bad_user, bad_cut):
        for where in (0, 3, 6):
            lines = [_good(n) for n in range(1, 7)]
            lines.insert(where, bad)
            _agree(lines)
            _agree([x.replace("✅".encode(), b"v") for x in lines])  # an ASCII rest
    # an ASCII buffer: no usage line is checked, and none needs to be
    ascii_lines = [json.dumps(json.loads(_good(n))).encode() for n in range(1, 5)]
    assert all(x.isascii() for x in ascii_lines)
    _agree(ascii_lines)


def test_a_huge_line_and_a_rejected_value_in_a_run() -> None:
    huge = usage_line(message={"id": "big", "content": [{"type": "text", "text": "é" * 100_000}]})
    _agree([_good(1), huge, _good(2)])
    _agree([_good(1), huge.replace("é".encode(), b"\xc3", 1), _good(2)])  # bad far in
    # values the typed decode rejects (float, negative, poison counts) sink the run's
    # one-call decode; the lines around are still read
    _agree([_good(1), usage_line(usage={"output_tokens": 3.5}), _good(2)])
    _agree([_good(1), usage_line(usage={"input_tokens": -1}), _good(2), _good(3)])
    _agree([_good(1), usage_line(usage={"output_tokens": 10**9 + 1}), _good(2)])


def test_random_mixtures_agree_with_parse_line() -> None:
    """Seeded random buffers of all cases, good lines and fragments."""
    import random

    pool = [c[1] for c in CASES] + [_good(n) for n in range(1, 9)] + [TITLE, USER]
    pool += [p[: len(p) // 2] for p in pool[:10]]  # cut lines
    for seed in range(300):
        rnd = random.Random(seed)
        lines = [rnd.choice(pool) for _ in range(rnd.randint(1, 25))]
        if rnd.random() < 0.3:  # two lines glued into one
            i = rnd.randrange(len(lines))
            lines[i : i + 2] = [b"".join(lines[i : i + 2])]
        _agree(lines)


@pytest.mark.parametrize(
    "stamp",
    [
        TS,
        "2200-01-01T00:00:00Z",  # poison
        "2199-12-31T23:00:00-14:00",  # poison only once the offset is applied
        "1970-01-01T00:30:00+01:00",  # before 1970 in UTC: poison
        "1971-01-01T00:00:00+14:00",
        "2198-12-31T23:59:59-14:00",
        "2026-13-45T99:00:00Z",  # unparsable: skipped, not counted
        "2026-11-29",
        "20a6-11-29T10:00:00Z",
    ],
)
@pytest.mark.parametrize("cost", [None, 1.5, 1e7])
def test_a_superseded_line_is_still_poison_or_skipped_as_its_stamp_says(
    stamp: str, cost: float | None
) -> None:
    """Lines a previous line of the same response already beats build no row, but their
    stamp and cost still make them poison (counted) or unreadable (not counted)."""
    first = usage_line(usage={"output_tokens": 50})
    extra = {} if cost is None else {"costUSD": cost}
    for out in (50, 10):
        later = usage_line(usage={"output_tokens": out}, timestamp=stamp, **extra)
        _agree([first, later])
        _agree([first, later, later, _good(3)])
    lines = [first, usage_line(usage={"output_tokens": 1}, timestamp=stamp, **extra)]
    malformed = _by_scan_lines(b"\n".join(lines) + b"\n", 0, 0)[2]
    poison = stamp[:4] in ("2200", "2199", "1970") or cost == 1e7
    readable = stamp[:7] not in ("2026-13", "20a6-11")
    assert malformed == (1 if poison and readable else 0)


def test_a_title_is_filed_under_the_id_its_sessions_records_show() -> None:
    """A session id with a control character: the usage rows carry it without the control
    character, and so must the title (it was filed under the raw id: the session showed no
    title). Both paths, a run and a line alone."""
    raw = "s1\x1b[2Jx"
    title = json.dumps({"type": "custom-title", "sessionId": raw, "customTitle": "t"}).encode()
    lines = [_good(1, sessionId=raw), title, _good(2, sessionId=raw)]
    for buf in (b"\n".join(lines) + b"\n", title + b"\n"):
        got = _by_scan_lines(buf, 0, 0)
        assert got[1] == [("s1[2Jx", "custom-title", "t")]
        assert all(row[1] == "s1[2Jx" for row in got[0].values())
        assert got == _by_parse_line(buf, 0, 0)


def test_a_type_spelled_with_escapes_is_that_type() -> None:
    """JSON reads ``"\\u0061ssistant"`` as ``"assistant"`` (and ccusage's JSON.parse does): a
    usage line and a title line whose type is spelled so are read by parse_line (a byte
    prefilter on the plain spelling once skipped them, and the native scanner's fallback
    lines go through parse_line) and by scan_lines alike."""
    usage = _good(4).replace(b'"assistant"', b'"\\u0061ssistant"')
    assert b"\\u0061ssistant" in usage
    title = b'{"type":"custom-\\u0074itle","sessionId":"s9","customTitle":"named"}'
    stats = LineStats()
    row = parse_line(usage, "src", 0, stats)
    assert (
        isinstance(row, list)
        and row[FIELDS.index("output_tokens")]
        == json.loads(usage)["message"]["usage"]["output_tokens"]
    )
    assert parse_line(title, "src", 0, stats) == ("s9", "custom-title", "named")
    assert stats.malformed == 0
    buf = usage + b"\n" + title + b"\n"
    got = _by_scan_lines(buf, 0, 0)
    assert len(got[0]) == 1 and got[1] == [("s9", "custom-title", "named")]
    assert got == _by_parse_line(buf, 0, 0)
