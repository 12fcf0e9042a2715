"""The agents' JSONL fast path: typed msgspec decoding that keeps the reference rules' verdicts.

The reference rules read a buffer of new lines with ``bytes.splitlines`` and the stdlib
``json`` (:func:`tokmon.sources.base.json_lines`). The fast path splits the buffer on newlines
and decodes each line with msgspec into a small typed struct holding only the fields a reader
uses (unknown fields are skipped, but still validated as JSON). It must give every line the
same verdict (valid object or not) and the same values; where the two decoders can disagree
the reader takes the reference rules instead:

- msgspec does not check the UTF-8 of the strings it skips, and the stdlib accepts encoded
  surrogates: a buffer that is not strict UTF-8 is read with the reference rules;
- ``splitlines`` also splits on a bare ``\\r``: a buffer holding one is read with the
  reference rules;
- the stdlib refuses an integer of more than ``sys.get_int_max_str_digits()`` digits, which
  msgspec skips: a buffer with a longer run of digits is read with the reference rules;
- a line the typed decode rejects (bad JSON, a BOM, ``NaN``, a field of another type) goes
  through :func:`reference_line`, the reference rules for that one line.

``tests/test_agents_fastpath.py`` checks that both ways give the same records and states.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

_DIGITS = bytes(1 if 48 <= b <= 57 else 0 for b in range(256))
_DIGIT_CHARS = b"0123456789"


def _long_digit_run(data: bytes) -> bool:
    """Whether ``data`` holds more digits in a row than ``int()`` accepts from a string.

    A run of more than ``limit`` digits covers two consecutive samples ``k = limit // 2``
    apart and every byte between them (checked in C); only there is the run measured."""
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    if limit <= 0 or len(data) <= limit:
        return False
    k = max(1, limit // 2)
    marks = data[::k].translate(_DIGITS)
    j = marks.find(b"\x01\x01")
    while j != -1:
        p = j * k
        if data[p : p + k + 1].isdigit():
            left = data[max(0, p - limit - 1) : p]
            right = data[p : p + limit + 2]
            run = len(left) - len(left.rstrip(_DIGIT_CHARS)) + len(right)
            run -= len(right.lstrip(_DIGIT_CHARS))
            if run > limit:
                return True
        j = marks.find(b"\x01\x01", j + 1)
    return False


def fast_ok(data: bytes) -> bool:
    """Whether the typed decode can read ``data`` line by line with the reference's verdicts
    (see the module docstring); otherwise use the reference rules for the whole buffer."""
    if b"\r" in data:
        return False
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return not _long_digit_run(data)


def line_spans(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of every non-empty line of ``data`` (which ends with a newline)."""
    find = data.find
    s, stop = 0, len(data)
    while s < stop:
        nl = find(b"\n", s)
        if nl == -1:
            nl = stop
        if nl > s:
            yield s, nl
        s = nl + 1


def reference_line(raw: bytes) -> tuple[dict[str, Any] | None, bool]:
    """One line by the reference rules (:func:`tokmon.sources.base.json_lines`):
    (the object or None, whether the line counts as not JSON)."""
    if not raw.strip():
        return None, False
    try:
        obj = json.loads(raw)
    except ValueError:
        return None, True
    return (obj, False) if isinstance(obj, dict) else (None, False)


def decode_errors() -> tuple[type[BaseException], ...]:
    """What a typed decode raises on a line it does not take (ValidationError included)."""
    import msgspec

    return (msgspec.DecodeError, RecursionError)
