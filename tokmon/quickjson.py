"""JSON decoding for the statusline's fast path without importing :mod:`json`.

``import json`` loads ``json.decoder``, which imports ``re`` (and ``enum``, ``functools``...):
several milliseconds, more than the rest of ``tokmon line --claude``.  CPython's C scanner
(``_json.make_scanner``, the one :func:`json.loads` uses) needs none of that, so
:func:`loads` drives it directly and gives the same values; other interpreters (no
``_json``) fall back to :func:`json.loads`.  Errors are ``ValueError`` as with ``json``
(the C scanner imports ``json.decoder`` only to raise them).

Stdlib only; encoding (rare: only when figures change) still uses :mod:`json`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # no typing import on the statusline path
if TYPE_CHECKING:
    from typing import Any

_WS = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """The attributes ``_json.make_scanner`` reads (those of ``json.JSONDecoder()``)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan: Any = None
try:
    from _json import make_scanner as _make_scanner

    _scan = _make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed decoder context
except ImportError:  # pragma: no cover - not CPython
    pass


def loads(data: str | bytes) -> object:
    """Like :func:`json.loads` for ``str`` or UTF-8 ``bytes``; raises ``ValueError``
    (``RecursionError`` for absurd nesting, as ``json`` does)."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    if _scan is None:  # pragma: no cover - not CPython
        import json

        return json.loads(text)
    text = text.strip(_WS)
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        raise ValueError("no JSON value") from None
    if end != len(text):
        raise ValueError(f"extra data at character {end}")
    return value
