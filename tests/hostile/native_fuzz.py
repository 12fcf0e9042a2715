"""Generators of hostile transcript lines for the native scanner's differential tests.

Raw JSON text (not json.dumps output): every literal form RFC 8259 allows (numbers with long
mantissas, exponents, -0, integers around 2**63 and 2**64; strings with every escape, upper
and lower case hex, surrogate pairs and lone surrogates, raw non-ASCII of every plane),
whitespace between every token, duplicate and escaped key names, at every level of a usage
line; and mutations of given seed lines (real or generated transcripts) that keep them valid
JSON as often as not, since a line the native scanner rejects goes back to Python anyway.
"""

# ruff: noqa: UP031  (raw JSON written with %: braces in f-strings would be doubled)

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

WS = st.sampled_from(["", "", "", " ", "\t", "\r", "  ", " \t\r "])
BOUNDARY_INTS = [
    "0",
    "-0",
    "1",
    "999999999",
    "1000000000",
    "1000000001",
    "2147483647",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1" + "0" * 40,
    "1" + "0" * 400,
]
REALS = ["1.0", "0.0", "-0.0", "1e0", "1E2", "1e308", "1e309", "-1e309", "1e-400", "5e-324"]
REALS += ["2.2250738585072014e-308", "1.7976931348623157e308", "1.7976931348623159e308"]
REALS += ["0." + "0" * 400 + "1", "1" * 400 + ".5", "1e+9", "100e-2", "0.1e1"]
NUMBER = (
    st.sampled_from(BOUNDARY_INTS + REALS)
    | st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,4})?", fullmatch=True)
    | st.integers(0, 10**9 + 2).map(str)
)
ESCAPES = ['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0000", "\\u001f"]
ESCAPES += ["\\ud83d\\ude80", "\\uD83D\\uDE80", "\\ud800", "\\udfff", "\\udc00\\ud800"]
ESCAPES += ["\\ud800\\u0041", "\\uFFFF", "\\uFEFF", "\\u00e9", "\\u2028"]
RAW_BAD = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x9c", b"\x00"]
RAW_BAD += [b"\x1f", b"\x7f", b"\xef\xbb\xbf", b"\xef\xbf\xbe", b"\xf0\x9f\x9a\x80"]


@st.composite
def string(draw: Callable[..., Any], inner: st.SearchStrategy[str] | None = None) -> bytes:
    """A JSON string literal (raw bytes, quotes included)."""
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 9))
        if kind <= 3:
            parts.append(draw(st.text(max_size=6)).replace("\\", "").replace('"', "").encode())
        elif kind <= 6:
            parts.append(draw(st.sampled_from(ESCAPES)).encode())
        elif kind == 7:
            parts.append(draw(st.from_regex(r"\\u[0-9a-fA-F]{4}", fullmatch=True)).encode())
        elif kind == 8:
            c = draw(st.characters(blacklist_categories=("Cs",), min_codepoint=0x80))
            parts.append(c.encode())
        else:
            parts.append(draw(st.sampled_from(RAW_BAD)))
    body = b"".join(p.replace(b"\n", b"") for p in parts)
    return b'"' + body + b'"'


def _escaped_key(name: str, i: int) -> bytes:
    return (name[:i] + "\\u%04x" % ord(name[i]) + name[i + 1 :]).encode()


TOP = ["type", "timestamp", "sessionId", "cwd", "requestId", "costUSD", "message"]
TOP += ["customTitle", "aiTitle"]
INNER = ["id", "model", "usage", "input_tokens", "output_tokens", "cache_creation_input_tokens"]
INNER += ["cache_read_input_tokens", "cache_creation", "ephemeral_1h_input_tokens"]


@st.composite
def key(draw: Callable[..., Any]) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind <= 1:
        return b'"%s"' % draw(st.sampled_from(TOP + INNER)).encode()
    if kind == 2:
        name = draw(st.sampled_from(TOP + INNER))
        return b'"%s"' % _escaped_key(name, draw(st.integers(0, len(name) - 1)))
    if kind == 3:
        return (
            b'"%s"' % draw(st.sampled_from(["x", "role", "content", "", "Type", "type "])).encode()
        )
    return draw(string())


def value(max_leaves: int = 6) -> st.SearchStrategy[bytes]:
    scalar = (
        NUMBER.map(str.encode)
        | string()
        | st.sampled_from([b"true", b"false", b"null"])
        | st.sampled_from([b'"assistant"', b'"user"', b'"custom-title"', b'"ai-title"'])
    )

    def containers(inner: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
        arr = st.lists(st.tuples(WS, inner, WS), max_size=3).map(
            lambda xs: b"[" + b",".join(a.encode() + v + b.encode() for a, v, b in xs) + b"]"
        )
        obj = st.lists(st.tuples(WS, key(), WS, WS, inner, WS), max_size=3).map(
            lambda xs: b"{"
            + b",".join(a.encode() + k + b.encode() + b":" + c.encode() + v + d.encode()
                        for a, k, b, c, v, d in xs)
            + b"}"
        )  # fmt: skip
        return arr | obj

    return st.recursive(scalar, containers, max_leaves=max_leaves)


STAMP = st.from_regex(
    r"(19[67][0-9]|20[0-9]{2}|21[0-9]{2}|2200|0001|9999)-(0[0-9]|1[0-3])-([0-2][0-9]|3[0-2])"
    r"T([01][0-9]|2[0-4]):[0-6][0-9]:[0-6][0-9](\.[0-9]{1,7})?(Z|z|[+-][01][0-9]:[0-5][0-9])?",
    fullmatch=True,
)
CANONICAL_STAMP = st.datetimes().map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S") + st_frac(d.microsecond) + "Z"
)


def st_frac(us: int) -> str:
    return ["", ".%03d" % (us // 1000), ".%06d" % us][us % 3]


def obj(pairs: list[tuple[bytes, bytes]], ws: list[str]) -> bytes:
    out = []
    for i, (k, v) in enumerate(pairs):
        w = ws[i % len(ws)] if ws else ""
        out.append(w.encode() + k + w.encode() + b":" + w.encode() + v + w.encode())
    return b"{" + b",".join(out) + b"}"


@st.composite
def usage_line(draw: Callable[..., Any]) -> bytes:
    """An assistant line in raw JSON whose fields are ordinary most of the time and
    anything else (any value, duplicated, escaped, extra keys) some of the time."""

    def maybe(normal: bytes, strat: st.SearchStrategy[bytes] | None = None) -> bytes:
        if draw(st.integers(0, 5)) == 0:
            return draw(strat if strat is not None else value())
        return normal

    def count() -> bytes:
        return maybe(str(draw(st.integers(0, 60))).encode(), NUMBER.map(str.encode) | value(2))

    detail = [(b'"ephemeral_1h_input_tokens"', count())]
    usage = [
        (b'"input_tokens"', count()),
        (b'"output_tokens"', count()),
        (b'"cache_creation_input_tokens"', count()),
        (b'"cache_read_input_tokens"', count()),
        (b'"cache_creation"', maybe(obj(detail, []))),
    ]
    msg = [
        (b'"id"', maybe(b'"msg_%d"' % draw(st.integers(0, 3)), string() | value(2))),
        (b'"model"', maybe(draw(st.sampled_from([b'"claude-x"', b'"m\\u00e9"', b'""'])))),
        (b'"role"', b'"assistant"'),
        (b'"usage"', b""),
    ]
    top = [
        (
            b'"type"',
            maybe(b'"assistant"', st.sampled_from([b'"assist\\u0061nt"', b'"user"']) | value(2)),
        ),
        (
            b'"sessionId"',
            maybe(draw(st.sampled_from([b'"s1"', b'"s\\u0000"', b'""', b'"\xc3\xa9"']))),
        ),
        (b'"cwd"', maybe(b'"/p"')),
        (b'"requestId"', maybe(b'"req_%d"' % draw(st.integers(0, 2)), string() | value(2))),
        (b'"timestamp"', maybe(b'"%s"' % draw(CANONICAL_STAMP | STAMP).encode())),
        (b'"message"', b""),
    ]
    if draw(st.integers(0, 9)) == 0:
        top.append((b'"costUSD"', draw(NUMBER.map(str.encode) | st.just(b"null"))))
    for level in (top, msg, usage, detail):  # extra, duplicate or escaped keys
        for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else 0):
            level.insert(draw(st.integers(0, len(level))), (draw(key()), draw(value(3))))
        if draw(st.booleans()):
            level[:] = draw(st.permutations(level))
    ws = draw(st.lists(WS, max_size=3))
    u = obj(usage, ws)
    i = [k for k, _ in msg].index(b'"usage"')
    msg[i] = (b'"usage"', maybe(u))
    m = obj(msg, ws)
    i = [k for k, _ in top].index(b'"message"')
    top[i] = (b'"message"', maybe(m))
    return obj(top, ws)


# --- mutations of seed lines -----------------------------------------------------------------

_NUM = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_STR = re.compile(rb'"(?:[^"\\\n]|\\.)*"')
NOISE = [b"\\", b'"', b"{", b"}", b"[", b"]", b",", b":", b"\xff", b"\xc3", b"\x00", b"\r"]
NOISE += [b"\n", b" ", b"e9", b"\\u", b"\\ud800", b"-", b"0", b".", b"\t"]


@st.composite
def mutated(draw: Callable[..., Any], seeds: list[bytes]) -> bytes:
    """A seed line after 1-3 mutations: a number or string literal replaced by another
    (a key too), a key added after a "{", bytes inserted, deleted or swapped, a cut."""
    line = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.integers(0, 9))
        if op <= 2:
            found = list(_NUM.finditer(line))
            if found:
                m = draw(st.sampled_from(found))
                line = line[: m.start()] + draw(NUMBER).encode() + line[m.end() :]
        elif op <= 5:
            found = list(_STR.finditer(line))
            if found:
                m = draw(st.sampled_from(found))
                line = line[: m.start()] + draw(string()) + line[m.end() :]
        elif op == 6:
            spots = [i for i, c in enumerate(line) if c == 0x7B]
            if spots:
                i = draw(st.sampled_from(spots)) + 1
                line = line[:i] + draw(key()) + b":" + draw(value(3)) + b"," + line[i:]
        elif op == 7:
            i = draw(st.integers(0, len(line)))
            line = line[:i] + draw(st.sampled_from(NOISE)) + line[i + draw(st.integers(0, 2)) :]
        elif op == 8:
            i = draw(st.integers(0, len(line)))
            j = draw(st.integers(i, min(len(line), i + 40)))
            line = line[:i] + line[j:]
        else:
            line = line[: draw(st.integers(0, len(line)))]
    return line


@st.composite
def buffer(draw: Callable[..., Any], line: st.SearchStrategy[bytes]) -> bytes:
    """Lines joined by LF or CRLF, with empty and blank lines between, the last one with
    or without its newline."""
    lines = draw(
        st.lists(line | st.sampled_from([b"", b" ", b"\r", b"{}"]), min_size=1, max_size=8)
    )
    sep = draw(st.sampled_from([b"\n", b"\r\n"]))
    return sep.join(lines) + draw(st.sampled_from([sep, b"\n", b""]))
