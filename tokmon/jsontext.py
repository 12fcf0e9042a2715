"""JSON text without importing orjson: the reports' (:func:`indented`, exactly as orjson writes
it with ``OPT_INDENT_2``) and the caches' (:func:`compact`).

orjson's import costs ~13 ms and ~1.4 MB of RSS (it imports ``dataclasses``, ``inspect``,
``uuid``, ``platform`` ...): most of a warm report's own time, and a cold one pays it too.
The reports' documents are small (dicts, lists, strings, numbers), so :func:`indented`
writes them with the standard library's C string escaper and two rules of orjson's number
formatting; anything else (other types, keys that are not strings, integers past 64 bits,
strings with lone surrogates) is handed to orjson itself, so the text never differs.
``tests/test_jsontext.py`` holds it to orjson on generated documents.
"""

from __future__ import annotations

import json
import sys
from json.encoder import encode_basestring as _quote  # (C: escapes " \ and U+0000-U+001F)
from typing import Any

_INF = float("inf")


class _Other(Exception):
    """A value this module leaves to orjson."""


def indented(data: Any) -> str:
    """``orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()`` (by orjson itself when a
    process has imported it already: ~20x faster on big documents)."""
    out: list[str] = []
    if "orjson" not in sys.modules:
        try:
            _put(data, out, "\n")
            return "".join(out)
        except (_Other, RecursionError):
            pass
    import orjson

    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def compact(data: Any) -> bytes:
    """A cache's JSON: no spaces, non-ASCII as escapes (a file name that is not UTF-8, a
    surrogate escape, round-trips, where orjson refuses to write it)."""
    return json.dumps(data, separators=(",", ":"), check_circular=False).encode()


def number(v: float) -> str:
    """A float as orjson writes it: Python's shortest repr, except that orjson writes a
    decimal exponent of -5 in positional notation (``0.00001``) and a smaller one without
    its leading zero (``1e-7``, not ``1e-07``); NaN and infinities as ``null``."""
    if v != v or v == _INF or v == -_INF:
        return "null"
    r = float.__repr__(v)
    at = r.find("e-")
    if at < 0:
        return r
    mantissa, exponent = r[:at], int(r[at + 2 :])
    if exponent != 5:
        return f"{mantissa}e-{exponent}"
    sign = "-" if mantissa[0] == "-" else ""
    return f"{sign}0.0000{mantissa.lstrip('-').replace('.', '')}"


def _text(s: str) -> str:
    if not s.isascii():
        try:
            s.encode()
        except UnicodeEncodeError:  # a lone surrogate: orjson refuses it
            raise _Other from None
    return _quote(s)


def _put(v: Any, out: list[str], nl: str) -> None:
    t = type(v)
    if t is str:
        out.append(_text(v))
    elif t is int:
        if not -(2**63) <= v < 2**64:
            raise _Other
        out.append(int.__repr__(v))
    elif t is float:
        out.append(number(v))
    elif v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif t is dict:
        if not v:
            out.append("{}")
            return
        inner = nl + "  "
        sep = "{" + inner
        for k, x in v.items():
            if type(k) is not str:
                raise _Other
            out.append(sep + _text(k) + ": ")
            _put(x, out, inner)
            sep = "," + inner
        out.append(nl + "}")
    elif t is list or t is tuple:
        if not v:
            out.append("[]")
            return
        inner = nl + "  "
        sep = "[" + inner
        for x in v:
            out.append(sep)
            _put(x, out, inner)
            sep = "," + inner
        out.append(nl + "]")
    else:  # subclasses, dataclasses, dates, enums ...: orjson's own rules
        raise _Other
