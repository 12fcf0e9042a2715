"""A hostile review of the native usage-line walk (``pre_usage``/``pre_fields`` in
tokmon/_native/_scan.c), which decides usage lines without yyjson when it can.

Every case asserts that the native scan gives exactly what the pure-Python scan gives (rows,
titles, counters, bad-line offsets) on one crafted line, with each pre-pass build this
machine runs (AVX2, SSE2, portable: ``_set_prepass_simd``) and with the pre-pass off
(yyjson alone). The lines target what a hand-written walk gets wrong: count literals
(``-0``, ``1e2``, leading zeros, 19+ digits, 2**63, 2**64, MAX_TOKENS +- 1), the same field
twice at every level and with other types, keys and values spelled with escapes or
non-ASCII bytes, timestamps of every near-canonical form, fields of the wrong type,
whitespace JSON allows and does not, nesting around the depth bounds, invalid UTF-8 in read
and skipped strings, and lines whose end falls at every offset of the 16/32/64-byte blocks
(also as the last byte of a buffer followed by an unreadable page). The ninth session's
review: docs/review/hostile-native-scanner.md.
"""

# ruff: noqa: UP031  (raw JSON written with %: braces in f-strings would be doubled)

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_native_scan import _scan

TS = b'"2026-11-29T10:00:00.250Z"'
U = b'"input_tokens":3,"output_tokens":40'
USAGE = U + b',"cache_creation_input_tokens":100,"cache_read_input_tokens":2000'


def line(
    top: bytes = b"",
    msg: bytes = b"",
    usage: bytes = USAGE,
    typ: bytes = b'"assistant"',
    ts: bytes = TS,
    mid: bytes = b'"msg_1"',
    rid: bytes = b'"req_1"',
    model: bytes = b'"claude-sonnet-4-5"',
    sid: bytes = b'"s1"',
    first: bytes = b"",
) -> bytes:
    """A usage line; each argument is the raw JSON of its field (``top``, ``msg``: more
    members of the top object and of ``message``; ``first``: members before "type")."""
    return (
        b'{%s"type":%s,"timestamp":%s,"sessionId":%s,"cwd":"/p","requestId":%s,'
        b'"message":{"id":%s,"model":%s,"role":"assistant","usage":{%s}%s}%s}'
        % (first, typ, ts, sid, rid, mid, model, usage, msg, top)
    )


BASE = line()

# --- the cases --------------------------------------------------------------------------------

NUMBERS = [b"-0", b"0", b"00", b"01", b"0.0", b"1.0", b"1e2", b"1E+2", b"1e-2", b"0e0", b"-0.0"]
NUMBERS += [b"-1", b"1.5", b"5.", b".5", b"+1", b"-", b"0x5", b"1e400", b"NaN", b"Infinity"]
NUMBERS += [b"1" * 18, b"9" * 18, b"1" * 19, b"1" * 20, b"1" * 25, b"000000000000000001"]
NUMBERS += [b"100000000000000000", b"9223372036854775807", b"9223372036854775808"]
NUMBERS += [b"18446744073709551615", b"18446744073709551616", b"999999999", b"1000000000"]
NUMBERS += [b"1000000001", b"true", b"false", b"null", b'"5"', b"[]", b"{}", b"[5]", b" 5", b"5\t"]
COUNTS = [b"input_tokens", b"output_tokens", b"cache_creation_input_tokens"]
COUNTS += [b"cache_read_input_tokens"]


def _number_cases() -> Iterator[bytes]:
    for n in NUMBERS:
        for f in COUNTS:
            yield line(usage=b'"input_tokens":3,"%s":%s' % (f, n))
            yield line(usage=b'"%s":%s,"output_tokens":7' % (f, n))
        detail = b'"output_tokens":5,"cache_creation_input_tokens":50,"cache_creation":{%s}'
        yield line(usage=detail % (b'"ephemeral_1h_input_tokens":' + n))
        yield line(usage=detail % (b'"ephemeral_5m_input_tokens":%s,"x":1' % n))
    for n in [b"-0", b"0", b"0.0", b"1e2", b"-1", b"1" * 19, b"true", b'"1"', b"[]", b"{}"]:
        yield line(top=b',"costUSD":' + n)


DETAIL = b',"cache_creation_input_tokens":9,"cache_creation":'
DUPLICATES = [
    line(usage=U + b',"output_tokens":41'),
    line(usage=U + b',"output_tokens":"x"'),
    line(usage=U + b',"output_tokens":null'),
    line(usage=b'"output_tokens":null,' + U),
    line(usage=U + b',"input_tokens":3'),
    line(usage=U + b',"cache_creation":{"ephemeral_1h_input_tokens":1}' + DETAIL + b"{}"),
    line(usage=U + DETAIL + b'{"ephemeral_1h_input_tokens":1,"ephemeral_1h_input_tokens":2}'),
    line(usage=U + DETAIL + b'{"x":{"ephemeral_1h_input_tokens":5},"ephemeral_1h_input_tokens":2}'),
    line(usage=U + DETAIL + b'{"ephemeral_1h_input_tokens":2,"x":{"ephemeral_1h_input_tokens":5}}'),
    line(usage=U + DETAIL + b'null,"cache_creation":{"ephemeral_1h_input_tokens":2}'),
    line(usage=U + DETAIL + b'{"ephemeral_1h_input_tokens":20}'),  # more than the 5m+1h total
    line(usage=U + b',"x":{"output_tokens":9,"input_tokens":"q"},"y":[{"output_tokens":-1}]'),
    line(msg=b',"usage":{"output_tokens":99}'),
    line(msg=b',"usage":null'),
    line(msg=b',"id":"msg_2"'),
    line(msg=b',"id":null'),
    line(msg=b',"model":"m2"'),
    line(msg=b',"model":null'),
    line(msg=b',"content":[{"usage":{"output_tokens":"bad"}},{"id":5}],"x":{"model":7}'),
    line(msg=b',"x":{"usage":{"output_tokens":9}},"y":{"id":"i2","model":"m3"}'),
    line(top=b',"message":{"usage":{"output_tokens":9}}'),
    line(top=b',"message":null'),
    line(top=b',"type":"assistant"'),
    line(top=b',"type":"user"'),
    line(top=b',"type":null'),
    line(top=b',"timestamp":"2026-11-29T10:00:01.250Z"'),
    line(top=b',"requestId":"r2"'),
    line(top=b',"sessionId":"s2"'),
    line(top=b',"cwd":"/q"'),
    line(top=b',"costUSD":null'),
    line(top=b',"costUSD":null,"costUSD":null'),
    line(top=b',"customTitle":"t","customTitle":"u"'),
    line(top=b',"aiTitle":"t","aiTitle":null'),
    line(top=b',"x":{"message":{"usage":{"output_tokens":9}}},"y":[{"type":"user"}]'),
    line(top=b',"x":{"type":"user","timestamp":5,"message":[]}'),
    line(first=b'"message":{"usage":{"output_tokens":1}},'),
    # an empty field object, then more fields of its parent (the walk's depth bookkeeping)
    b'{"type":"assistant","timestamp":%s,"requestId":"r","message":{"usage":{},"id":"m"}}' % TS,
    b'{"type":"assistant","timestamp":%s,"requestId":"r","message":{"usage":{ },"id":"m"}}' % TS,
    b'{"type":"assistant","timestamp":%s,"requestId":"r","message":{"usage":{"x":{}},"id":"m"}}'
    % TS,
    b'{"type":"assistant","timestamp":%s,"requestId":"r","message":{"usage":{"x":[]},"id":"m"}}'
    % TS,
    line(usage=b'"cache_creation":{},"output_tokens":5'),
    line(usage=b'"cache_creation":{"a":{}},"output_tokens":5'),
    line(usage=b'"cache_creation":{"a":[{}]},"output_tokens":5,"input_tokens":-1'),
    line(usage=b'"cache_creation":{},"cache_creation_input_tokens":7,"output_tokens":5'),
    b'{"message":{"usage":{"output_tokens":5}},"type":"assistant","timestamp":%s}' % TS,
    b'{"message":{"usage":{"output_tokens":5},"id":"m"},"requestId":"r","type":"assistant",'
    b'"timestamp":%s}' % TS,
    line(first=b'"type":"user",'),
    line(first=b'"x":{"a":{"b":[1,{"c":2}]}},'),
]

# (what, its replacement) in BASE: keys and values with escapes and non-ASCII bytes
SPELLINGS = [
    (b'"usage"', b'"\\u0075sage"'),
    (b'"usage"', b'"usag\\u0065"'),
    (b'"input_tokens"', b'"in\\u0070ut_tokens"'),
    (b'"output_tokens"', b'"output\\u005ftokens"'),
    (b'"output_tokens"', b'"output_tokens\\u0000"'),
    (b'"cache_read_input_tokens"', b'"cache_read_input_token\\u0073"'),
    (b'"type"', b'"\\u0074ype"'),
    (b'"type"', b'"typ\\u0065"'),
    (b'"message"', b'"m\\u0065ssage"'),
    (b'"timestamp"', b'"times\\u0074amp"'),
    (b'"requestId"', b'"request\\u0049d"'),
    (b'"sessionId"', b'"session\\u0049d"'),
    (b'"cwd"', b'"c\\u0077d"'),
    (b'"id"', b'"\\u0069d"'),
    (b'"model"', b'"mod\\u0065l"'),
    (b'"role"', b'"r\\u006fle"'),
    (b'"role"', b'"r\xc3\xb4le"'),
    (b'"cwd"', b'"cw\xc3\xb0"'),
    (b'"assistant"', b'"\\u0061ssistant"'),
    (b'"assistant"', b'"assistan\\u0074"'),
    (b'"assistant"', b'"assistant\\u0000"'),
    (b'"assistant"', b'"ass\\/istant"'),
    (b'"msg_1"', b'"msg\\u005f1"'),
    (b'"msg_1"', b'"msg\\/1"'),
    (b'"msg_1"', b'""'),
    (b'"msg_1"', b"null"),
    (b'"req_1"', b'"req\\u005f1"'),
    (b'"req_1"', b'""'),
    (b'"req_1"', b"null"),
    (b'"s1"', b'"s\\u00001"'),
    (b'"s1"', b'"s\\ud83d\\ude001"'),
    (b'"s1"', b'"s\\ud83d1"'),
    (b'"s1"', b'"s\\ude001"'),
    (b'"s1"', b'"s\\ud83d\\u0041"'),
    (b'"s1"', b'"s\\u001b[31m"'),
    (b'"s1"', b'"s\x7f"'),
    (b'"s1"', b'"s\xc2\x85"'),
    (b'"s1"', b'""'),
    (b'"s1"', b"null"),
    (b'"s1"', b'"\xef\xbb\xbfs1"'),
    (b'"/p"', b'"\\/p"'),
    (b'"/p"', b'"/p\\t"'),
    (b'"/p"', b'"/p\t"'),
    (b'"/p"', b'"/p\xc3\xa9"'),
    (b'"/p"', b'"/p\xc0\xaf"'),
    (b'"/p"', b'"/p\xe0\x80\xaf"'),
    (b'"/p"', b'"/p\xed\xa0\x80"'),
    (b'"/p"', b'"/p\xf4\x90\x80\x80"'),
    (b'"/p"', b'"/p\xf0\x9f\x9a"'),
    (b'"/p"', b'"/p\xc3"'),
    (b'"/p"', b'"/p\xff"'),
    (b'"claude-sonnet-4-5"', b'"claude\\u0000"'),
    (b'"claude-sonnet-4-5"', b'""'),
    (b'"claude-sonnet-4-5"', b'"\xe2\x80\xae"'),
    (b'"claude-sonnet-4-5"', b'"claude\\\\"'),
]

STAMPS = [b'"2026-11-29T10:00:00Z"', b'"2026-11-29T10:00:00.250123Z"', b'"2026-11-29T10:00:00.25Z"']
STAMPS += [
    b'"2026-11-29T10:00:00.2Z"',
    b'"2026-11-29T10:00:00.2500Z"',
    b'"2026-11-29T10:00:00.250"',
]
STAMPS += [b'"2026-11-29T10:00:00.250+00:00"', b'"2026-11-29T10:00:00.250-05:00"', b'"2026-11-29"']
STAMPS += [b'"2026-11-2"', b'"2026-11-29T10:00:00.250Z "', b'"2026-11-29T10:00:00\\u002e250Z"']
STAMPS += [b'"2026-11-29T10:00:00.250\\u005a"', b'"\\u0032026-11-29T10:00:00.250Z"']
STAMPS += [b'"2026-11-29T10:00:00.250Z\\u0000"', b'"2026-02-29T10:00:00.250Z"']
STAMPS += [
    b'"2024-02-29T10:00:00.250Z"',
    b'"1969-12-31T23:59:59.999Z"',
    b'"1970-01-01T00:00:00.000Z"',
]
STAMPS += [
    b'"1971-01-01T00:00:00.000Z"',
    b'"2198-12-31T23:59:59.999Z"',
    b'"2200-01-01T00:00:00.000Z"',
]
STAMPS += [
    b'"2199-12-31T23:59:59.999999Z"',
    b'"0000-01-01T00:00:00.000Z"',
    b'"9999-12-31T23:59:59.999999Z"',
]
STAMPS += [
    b'"2026-13-01T00:00:00.000Z"',
    b'"2026-11-29T24:00:00.000Z"',
    b'"2026-11-29T10:60:00.000Z"',
]
STAMPS += [
    b'"2026-11-29T10:00:60.000Z"',
    b'"2026-11-29t10:00:00.250Z"',
    b'"2026-11-29T10:00:00.250z"',
]
STAMPS += [
    b'"2026-11-29 10:00:00.250Z"',
    b'"2026-11-29T10:00:00,250Z"',
    b'"+2026-11-29T10:00:00.250Z"',
]
STAMPS += [
    b'"2026-11-29T10:00:00.-50Z"',
    b'"2026-11-29T10:00:00.+50Z"',
    b'"2026-1a-29T10:00:00.250Z"',
]
STAMPS += [b'"\xef\xbc\x92026-11-29T10:00:00.250Z"', b'"2026-11-29T1\xd9\xa0:00:00.250Z"']
STAMPS += [b'"2026-11-29T10:00:00.9999995Z"', b"null", b"5", b'""', b'"123456789"', b'"1234567890"']
STAMPS += [b"[]", b"{}", b"true"]

TYPES = [b'"Assistant"', b'"assistant "', b'" assistant"', b"null", b"5", b'["assistant"]', b"true"]
TYPES += [b'{"type":"assistant"}', b'"custom-title"', b'"ai-title"', b'"user"', b'""']
TYPES += [b'"assistant\x00"', b'"assistant\xc2\xa0"']

MESSAGES = [b'[{"usage":{"output_tokens":5}}]', b"null", b'"x"', b"5", b"{}", b'{"usage":null}']
MESSAGES += [b'{"usage":[]}', b'{"usage":{}}', b'{"usage":"x"}', b'{"usage":{"cache_creation":[]}}']
MESSAGES += [
    b'{"usage":{"cache_creation":5}}',
    b'{"usage":{"cache_creation":null,"output_tokens":3}}',
]
MESSAGES += [b'{"id":{},"usage":{"output_tokens":3}}', b'{"model":[],"usage":{"output_tokens":3}}']
MESSAGES += [b'{"model":true,"usage":{"output_tokens":3}}', b'{"usage":{"output_tokens":3},"u":{}}']
MESSAGES += [b'{"x":{"usage":{"output_tokens":"q"}},"usage":{"output_tokens":3}}']
MESSAGES += [b'{"usage":{"output_tokens":3,"cache_creation":{"ephemeral_1h_input_tokens":{}}}}']


def _shape_cases() -> Iterator[bytes]:
    for a, b in SPELLINGS:
        assert a in BASE, a
        yield BASE.replace(a, b, 1)
    for t in STAMPS:
        yield line(ts=t)
    for t in TYPES:
        yield line(typ=t)
    for m in MESSAGES:
        yield b'{"type":"assistant","timestamp":%s,"requestId":"r","message":%s}' % (TS, m)


SPACES = [b" ", b"\t", b"\r", b"  \r\t ", b"\f", b"\v", b"\xc2\xa0", b"\xef\xbb\xbf", b"\x00"]


def _space_cases() -> Iterator[bytes]:
    for w in SPACES:
        yield BASE.replace(b'":', b'":' + w)
        yield BASE.replace(b',"', b"," + w + b'"')
        yield BASE.replace(b"}", w + b"}")
        yield BASE.replace(b'"usage":{', b'"usage":{' + w)
        yield w + BASE
        yield BASE + w
    yield BASE + b"\r"
    yield BASE + b"\r\r"
    yield BASE + b" \r"
    yield BASE.replace(b"40", b"4\r0")


def _depth_cases() -> Iterator[bytes]:
    for d in [126, 127, 128, 129, 130, 511, 512, 513, 1023, 1024, 1025]:
        yield line(msg=b',"c":' + b"[" * d + b"]" * d)
        yield line(top=b',"c":' + b'{"a":' * d + b"1" + b"}" * d)
        yield line(usage=U + b',"c":' + b"[" * d + b"]" * d)
        yield line(usage=U + DETAIL + b'{"c":' + b"[" * d + b"]" * d + b"}")


def _byte_cases() -> Iterator[bytes]:
    yield BASE.replace(b"s1", b"s\x001")
    yield BASE + b"\x00"
    yield BASE.replace(b"}}", b"}}\x00", 1)
    for raw in [b"\x00", b"\x1f", b"\xff", b"\xc0\x80", b"\xe0\x80\x80", b"\xed\xbf\xbf", b"\xc3"]:
        yield line(top=b',"z":"%s"' % raw)
        yield line(msg=b',"content":"%s"' % raw)
        yield line(usage=U + b',"z":"%s"' % raw)
    for esc in [b"\\ud800", b"\\ud800\\udc00", b"\\udc00", b"\\uDBFF\\uDFFF", b"\\x", b"\\u12"]:
        yield line(top=b',"z":"%s"' % esc)
        yield line(usage=U + b',"z%s":1' % esc)
    yield line(top=b',"\xc3\xa9":1')
    yield line(msg=b',"\xc3\xa9":1')
    yield line(usage=U + b',"\xc3\xa9":1')
    yield line(top=b',"a\\"b":1')


def _boundary_cases() -> Iterator[bytes]:
    """Lines whose end, and the end of a read string, fall at every offset of the blocks."""
    for pad in range(140):
        x = b"x" * pad
        yield line(top=b',"p":"%s"' % x)
        yield line(sid=b'"%s"' % x)
        yield line(sid=b'"%s\xc3\xa9"' % x)
        yield line(sid=b'"%s\\n"' % x)
        yield line(model=b'"%s\xc3"' % x)
        yield line(model=b'"%s\xe2\x82"' % x)
        yield line(mid=b'"%s\\"' % x)
        yield line(mid=b'"%s\\\\"' % x)
        yield line(ts=b'"2026-11-29T10:00:00.250Z%s"' % x[:3], usage=b'"output_tokens":' + x)


HAND = list(_number_cases()) + DUPLICATES + list(_shape_cases()) + list(_space_cases())
HAND += list(_depth_cases()) + list(_byte_cases())

# --- the checks -------------------------------------------------------------------------------


def _differs(buf: bytes, mod: Any) -> list[str]:
    """The native scans of ``buf`` (each pre-pass build; the pre-pass off) that differ from
    the Python scan."""
    py = _scan(buf, False)
    bad = []
    try:
        for build in range(mod.PREPASS_BEST + 1):
            mod._set_prepass_simd(build)
            if _scan(buf, True) != py:
                bad.append("build %d" % build)
        mod._set_prepass_simd(mod.PREPASS_BEST)
        mod._set_prepass(False)
        if _scan(buf, True) != py:
            bad.append("yyjson")
    finally:
        mod._set_prepass(True)
        mod._set_prepass_simd(mod.PREPASS_BEST)
    return bad


def test_the_walk_decides_the_plain_usage_line(native_scanner: Any) -> None:
    """The cases below reach pre_usage: the plain line is decided by it in every build, and
    reads as the Python scan reads it."""
    mod = native_scanner
    try:
        for build in range(mod.PREPASS_BEST + 1):
            mod._set_prepass_simd(build)
            before = mod._usage_lines()
            got = _scan(BASE + b"\n", True)
            assert mod._usage_lines() - before == 1, build
            assert got == _scan(BASE + b"\n", False)
            ((key, row),) = got[0]
            assert key == "msg_1:req_1" and row[4:9] == [3, 40, 100, 0, 2000], row
    finally:
        mod._set_prepass_simd(mod.PREPASS_BEST)


@pytest.mark.parametrize("case", HAND, ids=[str(i) for i in range(len(HAND))])
def test_a_crafted_line(native_scanner: Any, case: bytes) -> None:
    assert _differs(case + b"\n", native_scanner) == [], case


def test_the_block_boundaries(native_scanner: Any) -> None:
    bad = [(c, d) for c in _boundary_cases() if (d := _differs(c + b"\n", native_scanner))]
    assert bad == []


def test_all_the_crafted_lines_in_one_buffer(native_scanner: Any) -> None:
    """Together: the dedup key's "first line with the largest output wins" across them."""
    lines = [c for c in HAND + list(_boundary_cases()) if b"\n" not in c]
    assert _differs(b"\n".join(lines) + b"\n", native_scanner) == []


# (a line the walk decides, or one it leaves to yyjson or Python) x the same response's next
SAME_RESPONSE = [
    line(usage=b'"output_tokens":40'),
    line(usage=b'"output_tokens":41'),
    line(usage=b'"output_tokens":39'),
    line(usage=b'"output_tokens":40', sid=b'"s\\u00e9"'),  # an escape: yyjson
    line(usage=b'"output_tokens":41', sid=b'"s\xc3\xa9"'),  # non-ASCII: yyjson
    line(usage=b'"output_tokens":40', ts=b'"1969-12-31T23:59:59.000Z"'),  # poison
    line(usage=b'"output_tokens":41', ts=b'"2200-01-01T00:00:00.000Z"'),  # poison
    line(usage=b'"output_tokens":40', ts=b'"2026-11-29T10:00:00.250+00:00"'),  # Python
    line(usage=b'"output_tokens":41', ts=b'"2026-11-29T10:00:00"'),  # Python
    line(usage=b'"output_tokens":40', top=b',"costUSD":1.5'),  # Python
    line(usage=b'"output_tokens":40', top=b',"costUSD":1e999'),  # poison
    line(usage=b'"output_tokens":-1'),  # Python (clamped)
    line(usage=b'"output_tokens":1000000001'),  # poison
    line(usage=b'"output_tokens":40,"output_tokens":42'),  # a duplicate: Python
    line(usage=b'"output_tokens":40', rid=b'""'),  # no key: by offset
]


@pytest.mark.parametrize("first", range(len(SAME_RESPONSE)))
def test_the_same_response_twice(native_scanner: Any, first: int) -> None:
    """The rule "the first line with the largest output wins" and poison counting, across
    the lines the walk decides and those it leaves to yyjson or Python, in either order."""
    a = SAME_RESPONSE[first]
    bad = []
    for b in SAME_RESPONSE:
        buf = a + b"\n" + b + b"\n" + a + b"\n"
        if d := _differs(buf, native_scanner):
            bad.append((b, d))
    assert bad == [], a


# --- the line's last byte as the buffer's last byte, an unreadable page after it -------------

GUARD = r"""
import ctypes, mmap, sys
sys.path.insert(0, sys.argv[1])
from tokmon.core import parser
from tokmon.core.parser import LineStats, scan_lines
from tokmon._native import _scan as mod

PAGE = mmap.PAGESIZE
mm = mmap.mmap(-1, 2 * PAGE)
addr = ctypes.addressof(ctypes.c_char.from_buffer(mm))
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
assert libc.mprotect(addr + PAGE, PAGE, 0) == 0  # PROT_NONE: a read past PAGE faults
page = memoryview(mm)[:PAGE]  # the scan gets mm (its range ends at PAGE)

def run(native, a):
    parser._native = False if native else None
    stats, best, titles = LineStats(), {}, []
    scan_lines(mm if native else bytes(page), a, PAGE, 0, "/x", stats, best, titles, {})
    return sorted(best.items()), titles, stats.malformed, stats.invalid_utf8, stats.bad

n = 0
for raw in sys.stdin.buffer.read().split(b"\0\n"):
    for body in (raw + b"\n", raw):  # "...}\n" at the page's end, then "...}" alone
        a = PAGE - len(body)
        page[:a] = b"\n" * a
        page[a:] = body
        py = run(False, a)
        for build in range(mod.PREPASS_BEST + 1):
            mod._set_prepass_simd(build)
            got = run(True, a)
            assert got == py, (build, body)
        n += 1
print(n)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="mprotect through ctypes (Linux)")
def test_a_line_ending_at_an_unreadable_page(native_scanner: Any) -> None:
    """No build reads past the buffer: each line ends at a page followed by a PROT_NONE
    page (a read past it kills the child), and still reads as in Python."""
    root = str(Path(__file__).resolve().parents[2])
    cases = [c for c in HAND + list(_boundary_cases()) if b"\n" not in c and b"\0" not in c]
    cases = [c for c in cases if len(c) < 3000]
    env = dict(os.environ)
    env.pop("TOKMON_NO_NATIVE", None)
    proc = subprocess.run(
        [sys.executable, "-c", GUARD, root],
        input=b"\0\n".join(cases),
        capture_output=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    assert int(proc.stdout) == 2 * len(cases)


# --- a grammar-aware mutator over real usage lines (TOKMON_TEST_CORPUS) --------------------

WS_OK = [b" ", b"\t", b"\r", b"  \r\t "]
WS_BAD = [b"\f", b"\v", b"\xc2\xa0", b"\x00", b"\xef\xbb\xbf"]
FIELDS = {"type", "timestamp", "sessionId", "cwd", "requestId", "costUSD", "message"}
FIELDS |= {"customTitle", "aiTitle", "id", "model", "usage", "cache_creation"}
COUNT_FIELDS = {"input_tokens", "output_tokens", "cache_creation_input_tokens"}
COUNT_FIELDS |= {"cache_read_input_tokens", "ephemeral_1h_input_tokens"}
ODD = [b"null", b"5", b"true", b"[]", b"{}", b'"x"', b'[{"a":1}]', b'{"output_tokens":3}']
PIECES = [b"\\/", b"\\u0041", b"\\u00e9", b"\xc3\xa9", b"\\ud83d\\ude80", b"\\ud800", b"\\u0000"]
PIECES += [b"\\n", b'\\"', b"\\\\", b"\xed\xa0\x80", b"\xc0\xaf", b"\xff", b"\xe2\x9c", b"\x01"]


class Mutator:
    """Re-writes a decoded transcript line as JSON with rare, targeted oddities: a count's
    literal, a field's type, a duplicate, an escaped or non-ASCII key, a piece inside a
    string, whitespace (allowed or not), a deep value; ``p`` scales how many."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.p = 1.0

    def hit(self, rate: float) -> bool:
        return self.r.random() < rate * self.p

    def ws(self) -> bytes:
        if not self.hit(0.15):
            return b""
        return self.r.choice(WS_BAD) if self.hit(0.1) else self.r.choice(WS_OK)

    def key(self, k: str) -> bytes:
        b = k.encode()
        if b and self.hit(0.03):
            i = self.r.randrange(len(b))
            return b'"%s\\u%04x%s"' % (b[:i], b[i], b[i + 1 :])
        if self.hit(0.01):
            return b'"%s\xc3\xa9"' % b
        return json.dumps(k).encode()

    def string(self, s: str) -> bytes:
        b = json.dumps(s, ensure_ascii=not self.hit(0.5)).encode()
        if self.hit(0.05):
            i = self.r.randrange(1, len(b))
            b = b[:i] + self.r.choice(PIECES) + b[i:]
        if self.hit(0.02):
            b = b[:-1] + b"x" * self.r.randrange(130) + b'"'
        return b

    def value(self, v: Any, k: str | None) -> bytes:
        if k in COUNT_FIELDS and self.hit(0.08):
            return self.r.choice(NUMBERS)
        if (k in FIELDS or k in COUNT_FIELDS) and self.hit(0.02):
            return self.r.choice(ODD)
        if isinstance(v, dict):
            return self.obj(v)
        if isinstance(v, list):
            sep = b"," + self.ws()
            return b"[" + self.ws() + sep.join(self.value(x, None) + self.ws() for x in v) + b"]"
        if isinstance(v, str):
            return self.string(v)
        return json.dumps(v).encode()

    def obj(self, d: dict[str, Any]) -> bytes:
        items = list(d.items())
        if self.hit(0.05):
            self.r.shuffle(items)
        parts = []
        for k, v in items:
            parts.append(self.ws() + self.key(k) + self.ws() + b":" + self.ws() + self.value(v, k))
            if self.hit(0.015):
                again = self.r.choice([v, None, 5, "x", {}, {"output_tokens": 7}])
                parts.append(self.key(k) + b":" + self.value(again, k))
        if self.hit(0.02):
            k = self.r.choice(sorted(FIELDS | COUNT_FIELDS)).encode()
            parts.insert(self.r.randrange(len(parts) + 1), b'"%s":%s' % (k, self.r.choice(ODD)))
        if self.hit(0.01):
            d = self.r.choice([126, 127, 128, 129, 511, 512, 513])
            parts.append(b'"deep":' + b"[" * d + b"]" * d)
        return b"{" + self.ws() + b",".join(parts) + self.ws() + b"}"

    def line(self, obj: dict[str, Any]) -> bytes:
        self.p = self.r.choice([0.0, 0.05, 0.2, 0.5, 1.0])
        b = self.obj(obj)
        if self.hit(0.1):
            i = self.r.randrange(len(b))
            noise = self.r.choice([b"\\", b'"', b"}", b"]", b",", b":", b"\r", b"0", b"\xc3", b"e"])
            b = b[:i] + noise + b[i + self.r.randrange(2) :]
        if self.hit(0.03):
            b += b"\r"
        return b.replace(b"\n", b" ")


def test_mutations_of_real_usage_lines(native_scanner: Any, real_corpus: Path) -> None:
    """A fixed-seed run of the mutator (the review's runs were longer:
    TOKMON_USAGE_FUZZ_LINES sets the count)."""
    seeds: list[dict[str, Any]] = []
    for p in sorted(real_corpus.rglob("*.jsonl")):
        for raw in p.read_bytes().split(b"\n"):
            if b'"usage"' in raw or b"-title" in raw:
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    seeds.append(obj)
    assert seeds
    mut = Mutator(9)
    total = int(os.environ.get("TOKMON_USAGE_FUZZ_LINES", "4000"))
    mod = native_scanner
    decided = mod._usage_lines()
    bad: list[tuple[bytes, list[str]]] = []
    for _ in range(0, total, 40):
        batch = [mut.line(mut.r.choice(seeds)) for _ in range(40)]
        if _differs(b"\n".join(batch) + b"\n", mod):
            bad += [(b, d) for b in batch if (d := _differs(b + b"\n", mod))]
    assert bad == []
    assert mod._usage_lines() - decided > total // 10  # the walk did decide many of them
