"""The native scanner's validate-only pre-pass (``prepass`` in tokmon/_native/_scan.c).

It may skip a line without yyjson only when the line cannot change a total. Held here three
ways: on every line it skips, the pure-Python scan changes nothing (no row, no title, no
counter); the native scan with the pre-pass equals the native scan without it and the
Python scan, on hand-made edge lines, generated ones and the corpora; and it really is
taken for the plain lines of a transcript (its counter), so the speed-up cannot vanish.
Every build of it this machine runs (AVX2, SSE2, the portable one: ``_set_prepass_simd``)
takes the same decision on every line, and on strings built to put escapes, backslash runs,
quotes, control bytes and UTF-8 sequences at every offset around the 16, 32 and 64-byte
blocks it checks, each build's decision is exactly "msgspec decodes the line".

These lines mostly hold none of the candidate filter's patterns (``usage``, ``title``,
``\\u006``, ``\\u007``), which skips them before the pre-pass sees them: the native scans here
run with the filter off (``_prepass_alone``), and once more with it on
(tests/test_native_filter.py holds the filter itself).
"""

# ruff: noqa: UP031  (raw JSON written with %: braces in f-strings would be doubled)

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_support import builds, module, need_native, scanner_state
from test_native_scan import HOSTILE, SRC, _scan
from test_parser import TITLE, TS, USER, _good, usage_line

from tokmon.core import parser

NOTHING = ([], [], 0, 0, 0, [])


def _decisions(lines: list[bytes]) -> dict[int, list[bool]]:
    """Each build's decision on each line."""
    mod = module()
    out: dict[int, list[bool]] = {}
    try:
        for build in builds():
            mod._set_prepass_simd(build)
            out[build] = [mod._prepass(line) for line in lines]
    finally:
        mod._set_prepass_simd(mod.PREPASS_BEST)
    return out


@contextmanager
def _prepass_alone() -> Iterator[None]:
    """The candidate filter off: every line reaches the pre-pass."""
    mod = module()
    mod._set_filter(False)
    try:
        yield
    finally:
        mod._set_filter(True)


def _without_prepass(buf: bytes, block: int = 0) -> Any:
    mod = module()
    mod._set_prepass(False)
    try:
        with _prepass_alone():
            return _scan(buf, True, block=block)
    finally:
        mod._set_prepass(True)


def _check(lines: list[bytes], block: int = 0) -> None:
    """Every build decides alike, the contract holds on each line the pre-pass skips, then
    the three scans agree (the native one with each build, the filter off; and with the
    filter on)."""
    mod = module()
    decided = _decisions(lines)
    for build, got in decided.items():
        assert got == decided[mod.PREPASS_BEST], (build, lines)
    for line, skip in zip(lines, decided[mod.PREPASS_BEST], strict=True):
        if skip and b"\n" not in line:
            assert _scan(line + b"\n", False) == NOTHING, line
    buf = b"\n".join(lines) + b"\n"
    py = _scan(buf, False, block=block)
    try:
        with _prepass_alone():
            for build in builds():
                mod._set_prepass_simd(build)
                assert _scan(buf, True, block=block) == py, build
    finally:
        mod._set_prepass_simd(mod.PREPASS_BEST)
    assert _without_prepass(buf, block) == py
    assert _scan(buf, True, block=block) == py


# --- lines it must skip, and lines it must leave to yyjson ----------------------------------

TOOL_RESULT = (
    b'{"parentUuid":"a1","isSidechain":false,"userType":"external","cwd":"/p","sessionId":"s1",'
    b'"version":"1.0.0","gitBranch":"main","type":"user","message":{"role":"user","content":'
    b'[{"tool_use_id":"toolu_1","type":"tool_result","content":"line 1\\nline \\"2\\"\\t\\u00e9'
    b" caf\xc3\xa9 \xe2\x94\x80\xe2\x94\x80 \xf0\x9f\x9a\x80 " + b"x" * 300 + b'",'
    b'"is_error":false}]},"uuid":"u1","timestamp":"2026-11-29T10:00:00.250Z",'
    b'"toolUseResult":{"stdout":"ok","stderr":"","interrupted":false,"isImage":false,'
    b'"numLines":12,"durationMs":-0.5e-3,"ratio":1.25E+10,"n":0,"big":123456789012345678}}'
)
SKIPPED = [
    b"{}",
    b"{ }",
    b'{"x":{"type":"assistant","message":{"usage":{"output_tokens":5}}}}',
    b'{"type":"user","v":["assistant"],"w":{"role":"assistant"}}',
    b'{"typ":"assistant","message":"assistant"}',
    b'{"type":"progress","data":{"message":{"type":"assistant","message":{"role":"assistant",'
    b'"usage":{"output_tokens":5}}}}}',
    b'{"message":{"x":{"role":"assistant"}},"message2":{"role":"assistant"}}',
    b"{}\r",
    b'{"a":1}\r',
    b'{\t"a" :\r1 }',
    USER,
    TOOL_RESULT,
    b'{"type":"user"}',
    b'{"type":"system","subtype":"x"}',
    b'{"type":"summary","summary":"s","leafUuid":"u"}',
    b'{"type":"Assistant"}',
    b'{"type":"assistant "}',
    b'{"type":"ai-title2"}',
    b'{"type":""}',
    b'{"x":{"type":"Assistant","message":{"usage":{"output_tokens":5}}}}',
    b'{"x":[{"type":"custom-title"},{"type":"ai-title","type":"ai-title"}]}',
    b'{"kind":"type","v":"assistants","w":["type","custom-title"]}',
    b'{"a":"\\"type\\":\\"assistant\\""}',
    b'{"typ":"ai-title","types":"ai-title","Type":"custom-title"}',
    b'{"a":"\\u0000\\u001f\\u00e9\\uffff\\/\\b\\f\\n\\r\\t\\\\"}',
    b'{"a":"\x7f"}',
    b'{"a":"\xef\xbf\xbe \xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80 \xc2\x80"}',
    b'{"a":[[[[[]]]]],"b":{"c":{"d":{}}},"e":[true,false,null,0,-0,1.5,-2e-5,3E+99]}',
    b'{"a":999999999999999999,"b":-999999999999999999,"c":0.%s}' % (b"1" * 40),
    # fields tokmon reads, of the wrong type on a line that is not read: Python decides
    # (msgspec rejects, orjson accepts), and nothing changes either way
    b'{"type":"user","sessionId":5,"costUSD":"x","message":{"usage":{"output_tokens":-1}}}',
    b'{"type":"user","customTitle":"t","aiTitle":"u","sessionId":"s"}',
    ('{"type":"user","x":' + "[" * 127 + "]" * 127 + "}").encode(),  # 128 deep: the bound
    ('{"type":"user","x":' + '{"b":' * 127 + "1" + "}" * 128).encode(),
]
LEFT = [
    # invalid JSON that a naive checker would accept
    b'{"a":1,}',
    b'{"a" 1}',
    b'{"a":01}',
    b'{"a":-01}',
    b'{"a":1.}',
    b'{"a":.5}',
    b'{"a":-}',
    b'{"a":+1}',
    b'{"a":1e}',
    b'{"a":1e+}',
    b'{"a":1.e5}',
    b'{"a":0x1}',
    b'{"a":tru}',
    b'{"a":truex}',
    b'{"a":nul}',
    b'{"a":True}',
    b'{"a":"x"}}',
    b'{"a":[1,]}',
    b'{"a":[,1]}',
    b'{"a":[1 2]}',
    b'{"a":[}',
    b'{"a":{]}',
    b'{"a":{"b":1]}',
    b'{"a":[1}]',
    b'{"a":1',
    b"{",
    b"{,}",
    b'{"a"}',
    b'{"a":}',
    b"{:1}",
    b"{a:1}",
    b"{'a':1}",
    b'{"a":1,,"b":2}',
    b'{"a":1 "b":2}',
    b'{"a":"\\x"}',
    b'{"a":"\\u00g0"}',
    b'{"a":"\\u00"}',
    b'{"a":"\\',
    b'{"a":"x',
    b'{"a":"\x00"}',
    b'{"a":"\x01"}',
    b'{"a":"\x1f"}',
    b'{"a":"\t"}',
    b'{"a":"\r"}',
    b'{"a":1}x',
    b'{"a":1}{}',
    b'{"a":1} {"b":2}',
    b'{"a":1}\x00',
    b'{"a":1\x00}',
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":-Infinity}',
    b"[]",
    b" {}",
    b"{} ",
    b'{"a":1}\r\r',
    b'{"a":1}\r ',
    b'\r{"a":1}',
    b'"x"',
    b"1",
    b"\xef\xbb\xbf{}",
    b'{"a":"\xff"}',
    b'{"a":"\xc0\xaf"}',
    b'{"a":"\xe0\x80\x80"}',
    b'{"a":"\xed\xa0\x80"}',
    b'{"a":"\xf4\x90\x80\x80"}',
    b'{"a":"\xf5\x80\x80\x80"}',
    b'{"a":"\xe2\x9c"}',
    b'{"a":"\xe2\x9c"',
    b'{"a":"\x80"}',
    b'{"\xc3\xa9":1}\xff',
    b'{"a":1,\xa0"b":2}',
    b'{"a":1,\x0b"b":2}',
    b'{"a":1,\x0c"b":2}',
    # valid, but left to yyjson: surrogate escapes, numbers it does not judge
    b'{"a":"\\ud800"}',
    b'{"a":"\\udc00"}',
    b'{"a":"\\ud83d\\ude80"}',
    b'{"a":"\\uD800"}',
    b'{"a":1e400}',
    b'{"a":1e100}',
    b'{"a":1E-100}',
    b'{"a":1e001}',
    b'{"a":1234567890123456789}',
    b'{"a":-1234567890123456789}',
    b'{"a":123456789012345678901234567890}',
    b'{"a":0.%s}' % (b"1" * 41),
    # "type" and the lines it decides
    b'{"type":"assistant"}',
    b'{"type":"custom-title","sessionId":"s","customTitle":"t"}',
    b'{"type":"ai-title","sessionId":"s","aiTitle":"t"}',
    TITLE,
    _good(1),
    b'{"type":"user","type":"user"}',
    b'{"type":"user","type":"assistant"}',
    b'{"type":"assistant","type":"user"}',
    b'{"typ\\u0065":"user"}',
    b'{"t\\u0079pe":"assistant"}',
    b'{"\\u0074ype":"user"}',
    b'{"a\\"b":1}',
    b'{"caf\xc3\xa9":1}',
    b'{"type":"assist\\u0061nt"}',
    b'{"type":"us\\u0065r"}',
    b'{"type":"\\/"}',
    b'{"type":"caf\xc3\xa9"}',
    b'{"type":null}',
    b'{"type":1}',
    b'{"type":true}',
    b'{"type":["user"]}',
    b'{"type":{"a":"user"}}',
    b'{"type" : null , "a":1}',
    # a string "assistant" in the top-level "message" (a usage line's "role"): yyjson reads
    # such a line anyway
    b'{"message":{"role":"assistant"}}',
    b'{"type":"user","message":{"role":"assistant","content":"x"}}',
    b'{"message":{"role":"user","x":"assistant"}}',
]
for depth in (129, 130, 511, 512, 513, 1024, 1025):  # containers, the top object included
    LEFT.append(('{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}").encode())
    LEFT.append(('{"a":' + '{"b":' * (depth - 1) + "1" + "}" * depth).encode())


def test_the_prepass_skips_plain_lines(native_scanner: Any) -> None:
    for build, got in _decisions(SKIPPED).items():
        assert [line for line, skip in zip(SKIPPED, got, strict=True) if not skip] == [], build


def test_the_prepass_leaves_every_other_line_to_yyjson(native_scanner: Any) -> None:
    for build, got in _decisions(LEFT).items():
        assert [line for line, skip in zip(LEFT, got, strict=True) if skip] == [], build
    # every cut of a skipped line is left too (or is "{}")
    cuts = [line[:n] for line in SKIPPED for n in range(1, len(line) - 1)]
    for build, got in _decisions(cuts).items():
        for cut, skip in zip(cuts, got, strict=True):
            assert not skip or cut.rstrip(b"\r ") == b"{}" or cut == b"{ }", (build, cut)


def test_the_edge_lines_agree_one_by_one(native_scanner: Any) -> None:
    for line in SKIPPED + LEFT:
        _check([line])


def test_the_edge_lines_agree_together(native_scanner: Any) -> None:
    lines = SKIPPED + LEFT + [_good(2), _good(5), _good(3)]
    _check(lines)
    _check(lines[::-1], block=1024)
    _check([ln + b"\r" for ln in lines])


def test_the_hostile_lines_of_the_scanner_agree(native_scanner: Any) -> None:
    _check(HOSTILE)
    for line in HOSTILE:
        _check([line])


def test_the_prepass_runs_for_plain_lines(native_scanner: Any) -> None:
    """A transcript's plain lines take the pre-pass (counted), its usage and title lines do
    not, and the rows are those of yyjson alone."""
    mod = native_scanner
    mod._set_filter(False)  # (the fixture turns it back on)
    lines = [USER, TOOL_RESULT, b"{}", _good(1), TITLE, _good(2), USER, b'{"a":1e400}', USER]
    buf = b"\n".join(lines) + b"\n"
    calls: list[tuple[int, int]] = []

    def run() -> tuple[int, int, dict[str, Any]]:
        best: dict[str, list[Any]] = {}
        before, decided = mod._prepass_lines(), mod._usage_lines()
        n = mod.scan(
            buf, 0, len(buf), 0, SRC, best, {}, str, lambda a, b: calls.append((a, b)),
            10**9, 0.0, 7258118400.0,
        )  # fmt: skip
        usage.append(mod._usage_lines() - decided)
        return mod._prepass_lines() - before, n, best

    usage: list[int] = []
    fast, poison, best = run()
    assert (fast, poison, len(best)) == (5, 0, 2)
    assert usage == [3]  # the two usage lines and the title, without yyjson
    offsets = [buf.index(TITLE), buf.index(b'{"a":1e400}')]
    assert [a for a, _b in calls] == offsets  # the title and the 1e400 line: Python
    mod._set_prepass(False)
    try:
        calls.clear()
        fast2, poison2, best2 = run()
    finally:
        mod._set_prepass(True)
    assert (fast2, poison2, best2) == (0, poison, best)
    assert usage == [3, 0]
    assert [a for a, _b in calls] == offsets


def _kind(line: bytes) -> Any:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj.get("type") if type(obj) is dict else None


def test_the_prepass_takes_most_lines_of_a_generated_corpus(
    native_scanner: Any, tmp_path: Path
) -> None:
    from tokmon.core.scan import scan_file
    from tokmon.demo import generate

    mod = native_scanner
    mod._set_filter(False)  # (the fixture turns it back on)
    generate(tmp_path / "gen", size_mb=2, seed=11)
    paths = sorted((tmp_path / "gen").rglob("*.jsonl"))
    lines = [ln for p in paths for ln in p.read_bytes().split(b"\n") if ln]
    plain = [ln for ln in lines if _kind(ln) in ("user", "system", "summary")]
    assert len(plain) > 100
    assert sum(map(mod._prepass, plain)) >= 0.9 * len(plain)

    parser._native = False
    before = mod._prepass_lines()
    got = [scan_file(str(p), 0) for p in paths]
    assert mod._prepass_lines() - before >= 0.9 * len(plain)
    mod._set_prepass(False)
    try:
        parser._native = False
        alone = [scan_file(str(p), 0) for p in paths]
    finally:
        mod._set_prepass(True)
    parser._native = None
    py = [scan_file(str(p), 0) for p in paths]

    def facts(rs: list[Any]) -> list[Any]:
        return [(r.rows, r.titles, r.malformed, r.invalid_utf8, r.huge, r.bad_lines) for r in rs]

    assert facts(got) == facts(alone) == facts(py)
    assert sum(len(r.rows) for r in got) > 100


def test_the_real_corpus_with_and_without_the_prepass(
    native_scanner: Any, real_corpus: Path
) -> None:
    from tokmon.core.scan import scan_file

    mod = native_scanner
    mod._set_filter(False)  # (the fixture turns it back on)
    paths = sorted(real_corpus.rglob("*.jsonl"))
    parser._native = False
    before = mod._prepass_lines()
    got = [scan_file(str(p), 0) for p in paths]
    assert mod._prepass_lines() > before
    mod._set_prepass(False)
    try:
        parser._native = False
        alone = [scan_file(str(p), 0) for p in paths]
    finally:
        mod._set_prepass(True)

    def facts(rs: list[Any]) -> list[Any]:
        return [(r.rows, r.titles, r.malformed, r.invalid_utf8, r.huge, r.bad_lines) for r in rs]

    assert facts(got) == facts(alone)


# --- usage lines decided without yyjson (pre_usage) ----------------------------------------

BASE = usage_line(usage={"cache_creation": {"ephemeral_1h_input_tokens": 7}})
VARIANTS = [
    (b'"cwd":', b'"c\\u0077d":'),
    (b'"usage":', b'"usag\\u0065":'),
    (b'"ephemeral_1h_input_tokens":', b'"ephemeral_1h_input_token\\u0073":'),
    (b'"output_tokens": 40', b'"output_tokens": -0'),
    (b'"output_tokens": 40', b'"output_tokens": 4.0'),
    (b'"output_tokens": 40', b'"output_tokens": 4e1'),
    (b'"output_tokens": 40', b'"output_tokens": 1000000000000'),
    (b'"output_tokens": 40', b'"output_tokens": 999999999999999999'),
    (b'"output_tokens": 40', b'"output_tokens": 1000000000'),
    (b'"output_tokens": 40', b'"output_tokens": 1000000001'),
    (b'"output_tokens": 40', b'"output_tokens": 0'),
    (b'"output_tokens": 40', b'"output_tokens": 40, "output_tokens": 41'),
    (b'"output_tokens": 40', b'"output_tokens": "40"'),
    (b'"output_tokens": 40', b'"output_tokens": null'),
    (b'"output_tokens": 40', b'"output_tokens": true'),
    (b'"output_tokens": 40', b'"output_tokens": [40]'),
    (b'"output_tokens": 40', b'"x": 1'),
    (b'"ephemeral_1h_input_tokens": 7', b'"ephemeral_1h_input_tokens": 700'),
    (b'"ephemeral_1h_input_tokens": 7', b'"ephemeral_1h_input_tokens": -7'),
    (b'"cache_creation": {', b'"cache_creation": [], "cc": {'),
    (b'"cache_creation": {', b'"cache_creation": null, "cc": {'),
    (b'"cache_creation": {', b'"cache_creation": "x", "cc": {'),
    (b'"usage": {', b'"usage": null, "u": {'),
    (b'"usage": {', b'"usage": 1, "u": {'),
    (b'"message": {', b'"message": null, "m": {'),
    (b'"message": {', b'"message": {}, "m": {'),
    (b'"cache_creation": {"ephemeral_1h_input_tokens": 7}', b'"cache_creation": {}'),
    (b'"message": {', b'"message": [], "m": {'),
    (b'"message": {', b'"message": "assistant", "m": {'),
    (b'"cwd": "/home/u/p"', b'"cwd": "/home/\\u00fc/p"'),
    (b'"cwd": "/home/u/p"', b'"cwd": "/home/\xc3\xbc/p"'),
    (b'"cwd": "/home/u/p"', b'"cwd": "C:\\\\Users"'),
    (b'"cwd": "/home/u/p"', b'"cwd": null'),
    (b'"cwd": "/home/u/p"', b'"cwd": 5'),
    (b'"cwd": "/home/u/p"', b'"cwd": ""'),
    (b'"cwd": "/home/u/p"', b'"cwd": "/a", "cwd": "/b"'),
    (b'"model": "claude-sonnet-4-5"', b'"model": "claude\\/x"'),
    (b'"model": "claude-sonnet-4-5"', b'"model": null'),
    (b'"model": "claude-sonnet-4-5"', b'"model": []'),
    (b'"model": "claude-sonnet-4-5"', b'"model": ""'),
    (b'"requestId": "req_1"', b'"requestId": null'),
    (b'"requestId": "req_1"', b'"requestId": ""'),
    (b'"requestId": "req_1"', b'"requestId": "req_1", "requestId": "req_2"'),
    (b'"requestId": "req_1"', b'"costUSD": null, "requestId": "req_1"'),
    (b'"requestId": "req_1"', b'"costUSD": 0.5, "requestId": "req_1"'),
    (b'"requestId": "req_1"', b'"customTitle": 1, "requestId": "req_1"'),
    (b'"requestId": "req_1"', b'"aiTitle": "t", "requestId": "req_1"'),
    (b'"id": "msg_1"', b'"id": "msg_\\u0031"'),
    (b'"id": "msg_1"', b'"id": null'),
    (b'"id": "msg_1"', b'"id": 1'),
    (b'"type": "assistant"', b'"type": "assist\\u0061nt"'),
    (b'"type": "assistant"', b'"type": "custom-title"'),
    (b'"type": "assistant"', b'"type": "ai-title"'),
    (b'"type": "assistant"', b'"type": "user"'),
    (b'"type": "assistant"', b'"type": null'),
    (b'"type": "assistant"', b'"type": 1'),
    (b'"type": "assistant"', b'"type": "caf\xc3\xa9"'),
    (b'"type": "assistant"', b'"type": "assistant", "type": "assistant"'),
    (b'"timestamp": "' + TS.encode(), b'"timestamp": "\\u0032' + TS.encode()[1:]),
    (b'"timestamp": "' + TS.encode(), b'"timestamp": "2026-02-30T00:00:00Z'),
    (b'"timestamp": "' + TS.encode(), b'"timestamp": "2026-11-29 10:00:00Z'),
    (b'"timestamp": "' + TS.encode(), b'"timestamp": "short'),
    (b'"timestamp": "' + TS.encode(), b'"t": "'),
    (b'"content": [', b'"content": [{"usage": {"output_tokens": 9}, "type": "user"}, '),
    (b'"content": [', b'"usage": {"output_tokens": 9}, "content": ['),
    (b'"content": [', b'"message": {"usage": null}, "content": ['),
    (b": ", b" :\t"),
    (b"}}", b"} }"),
]


def test_usage_lines_decided_without_yyjson_agree(native_scanner: Any) -> None:
    """Usage lines with each field written another way (escaped, twice, null, of another
    type, out of range, nested elsewhere): every build, yyjson alone and Python agree, and
    most are decided without yyjson (its counter)."""
    mod = native_scanner
    lines = [BASE, BASE + b"\r"]
    for old, new in VARIANTS:
        assert old in BASE, old
        lines.append(BASE.replace(old, new, 1))
    lines.append(BASE[:-1] + b', "message": null}')
    before = mod._usage_lines()
    _check(lines)
    _check([ln.replace(b"req_1", b"req_%d" % i) for i, ln in enumerate(lines)], block=2048)
    assert mod._usage_lines() - before > len(lines)


# --- strings checked a block at a time: every offset around the 16/32/64-byte blocks ------

PIECES = [
    # escapes, valid or not
    b'\\"',
    b"\\\\",
    b"\\/",
    b"\\b",
    b"\\f",
    b"\\n",
    b"\\r",
    b"\\t",
    b"\\u00e9",
    b"\\u0000",
    b"\\uFFFF",
    b"\\ud7ff",
    b"\\ue000",
    b'\\n\\t\\\\\\"',
    b"\\x",
    b"\\u00g0",
    b"\\u12",
    b"\\ud800",
    b"\\uDBFF\\uDC00",
    b"\\U0041",
    b"\\\x01",
    b"\\\xc3\xa9",
    b"\\ ",
    b"\\",
    b"\\\\\\",
    # backslash runs before a quote: an odd run escapes it, an even one ends the string there
    b'\\\\"',
    b'\\\\\\"',
    b'\\\\\\\\"',
    b'\\\\\\\\\\"',
    b'\\\\\\\\\\\\"',
    b'"',
    # control bytes (and DEL, which is not one)
    b"\x00",
    b"\x01",
    b"\x1f",
    b"\t",
    b"\r",
    b"\x7f",
    # UTF-8, valid
    b"\xc3\xa9",
    b"\xc2\x80",
    b"\xdf\xbf",
    b"\xe2\x94\x80",
    b"\xe0\xa0\x80",
    b"\xed\x9f\xbf",
    b"\xee\x80\x80",
    b"\xef\xbf\xbf",
    b"\xf0\x90\x80\x80",
    b"\xf0\x9f\x9a\x80",
    b"\xf4\x8f\xbf\xbf",
    b"\xc3\xa9\xe2\x94\x80\xf0\x9f\x9a\x80\xc3\xa9\\n\xed\x95\x9c",
    # and not: stray, overlong, surrogate, too large, cut, too long
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xbf",
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xe0\x80\x80",
    b"\xe0\x9f\xbf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf0\x80\x80\x80",
    b"\xf0\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xc3",
    b"\xe2\x94",
    b"\xf0\x9f\x9a",
    b"\xc3\xa9\xa9",
    b"\xc3\xc3\xa9",
    b"\xe2\x94\x80\x80",
    b"\xe2\xc3\xa9",
    b"\xf0\x9f\x9a\x80\x80",
]


def _filler(n: int, wide: bool) -> bytes:
    """``n`` bytes of text: ASCII, or two-byte characters (a last ASCII byte when odd)."""
    return b"\xc3\xa9" * (n // 2) + b"x" * (n % 2) if wide else b"ab-cd " * (n // 6 + 1)


def _string_lines(offsets: range | list[int]) -> list[bytes]:
    """Lines whose string "a" holds a piece after ``p`` bytes (for each offset ``p``): the
    string closed after 0 to 70 more bytes, or never (the line then ends in it)."""
    lines = []
    for i, p in enumerate(offsets):
        for j, piece in enumerate(PIECES):
            wide = (i + j) % 3 == 0
            for q in (0, 1, 7, 40, 70):
                tail = b"}" if (i + j + q) % 2 else b',"b":[1,"\xc3\xa9\\n"],"c":{}}'
                body = _filler(p, wide) + piece + _filler(q, not wide)
                lines.append(b'{"type":"user","a":"' + body + b'"' + tail)
            lines.append(b'{"type":"user","a":"' + _filler(p, wide) + piece + b"}")
    return lines


def _valid(line: bytes) -> bool:
    import msgspec

    try:
        msgspec.json.decode(line)
    except msgspec.DecodeError:
        return False
    return True


def test_every_build_decides_strings_exactly_at_every_block_offset(native_scanner: Any) -> None:
    """Escapes, backslash runs, quotes, control bytes and UTF-8 sequences at each offset 0 to
    135 of a string's body (across the 16, 32 and 64-byte block edges), the string ending
    at, before or after a block's end and the line shorter than a block or not: each build
    skips exactly the lines msgspec decodes (less those with a surrogate pair escape, which
    go to yyjson)."""
    lines = _string_lines(range(136))
    want = [_valid(ln) and b"\\uDBFF" not in ln for ln in lines]
    assert 0.2 * len(lines) < sum(want) < 0.8 * len(lines)  # both kinds, in number
    for build, got in _decisions(lines).items():
        wrong = [ln for ln, g, w in zip(lines, got, want, strict=True) if g != w]
        assert wrong == [], (build, wrong[:3])


def test_strings_at_block_edges_scan_alike(native_scanner: Any) -> None:
    """The same lines near the block edges, scanned: every build, yyjson alone and Python."""
    lines = [
        ln for ln in _string_lines([0, 1, 15, 16, 31, 32, 61, 62, 63, 64, 127]) if b"\n" not in ln
    ]
    _check(lines)
    _check(lines[::-1], block=4096)


def test_long_strings_with_dense_escapes_and_text(native_scanner: Any) -> None:
    """Tool output: kilobytes of escapes and non-ASCII text in one string, at every shift."""
    chunk = b'line \\"x\\"\\n\\t caf\xc3\xa9 \xe2\x94\x80\xe2\x94\x80 \xf0\x9f\x9a\x80 \\\\ \xed\x95\x9c\\u00e9 '
    lines = []
    for shift in range(70):
        body = b"s" * shift + chunk * 60
        lines.append(b'{"type":"user","content":"' + body + b'","n":1}')
        bad = bytearray(body)
        bad[len(body) // 2 + shift] = 0xFF  # one stray byte in the middle
        lines.append(b'{"type":"user","content":"' + bytes(bad) + b'","n":1}')
    want = [_valid(ln) for ln in lines]
    assert want == [True, False] * 70
    for build, got in _decisions(lines).items():
        assert got == want, build
    _check(lines)


def test_set_prepass_simd_refuses_a_build_the_cpu_lacks(native_scanner: Any) -> None:
    mod = native_scanner
    assert mod.PREPASS_BEST in (0, 1, 2)
    with pytest.raises(ValueError):
        mod._set_prepass_simd(mod.PREPASS_BEST + 1)
    with pytest.raises(ValueError):
        mod._set_prepass_simd(-1)
    assert mod._set_prepass_simd(0) == mod.PREPASS_BEST
    assert mod._set_prepass_simd(mod.PREPASS_BEST) == 0


# --- generated lines aimed at the pre-pass --------------------------------------------------

TYPES = ["user", "assistant", "custom-title", "ai-title", "system", "", "Assistant"]
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(TYPES)
)
KEYS = st.sampled_from(["type", "a", "message", "usage", "sessionId", "t\u00e9", "x"]) | st.text(
    max_size=4
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)
DAMAGE = [
    b"\\",
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b" ",
    b"\r",
    b"\t",
    b"\x00",
    b"\x1f",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\\u",
    b"\\ud800",
    b"\\u0065",
    b"0",
    b"-",
    b".",
    b"e",
    b"e999",
    b"1" * 20,
    b"true",
    b"nul",
    b'"type":',
    b'"type":"user",',
    b'"type":"assistant",',
    b'"type":"ai-title"',
]


@st.composite
def prepass_line(draw: Callable[..., Any]) -> bytes:
    obj = draw(st.dictionaries(KEYS, VALUE, max_size=5))
    how = draw(st.integers(0, 3))
    if how == 1:
        obj["type"] = draw(st.sampled_from(TYPES) | VALUE)
    line = json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()
    if how == 2:  # a second "type", written before or after
        extra = b'"type":' + json.dumps(draw(st.sampled_from(TYPES))).encode()
        line = b"{" + extra + (b"," + line[1:] if line != b"{}" else b"}")
    if how == 3:  # deep
        depth = draw(st.sampled_from([126, 127, 128, 129, 130]))
        line = line[:-1] + (b"," if line != b"{}" else b"") + b'"d":' + b"[" * depth
        line += b"]" * depth + b"}"
    for _ in range(draw(st.integers(0, 2))):
        pos = draw(st.integers(0, len(line)))
        cut = draw(st.integers(0, 2))
        line = line[:pos] + draw(st.sampled_from(DAMAGE)) + line[pos + cut :]
    return line.replace(b"\n", b" ")


@settings(
    max_examples=int(os.environ.get("TOKMON_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(prepass_line(), min_size=1, max_size=5))
def test_generated_lines_agree(lines: list[bytes]) -> None:
    need_native()
    with scanner_state():
        _check(lines)
