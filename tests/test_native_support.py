"""The shared native-scanner fixtures restore every switch they guard (tests/native_support.py,
the ``native_scanner`` fixture of tests/conftest.py): a switch left turned would change what
every later test of the scanners tests, without failing it."""

from __future__ import annotations

from typing import Any

import pytest
from native_support import need_native, scanner_state

from tokmon.core import parser

PLAIN = b'{"type":"user","message":{"role":"user","content":"usage"}}\n'  # read, then skipped
NOTHING = b'{"type":"user","message":{"role":"user","content":"hi"}}\n'  # not read at all
BEFORE: dict[str, Any] = {}
TURNED = object()  # no scanner: a value parser._native never holds by itself


def _prepass_on(mod: Any) -> bool:
    """Whether the pre-pass runs: a plain line scanned moves its counter."""
    before = mod._prepass_lines()
    mod.scan(PLAIN, 0, len(PLAIN), 0, "/x", {}, {}, str, lambda a, b: None, 10**9, 0.0, 7.3e9)
    return bool(mod._prepass_lines() - before)


def _filter_on(mod: Any) -> bool:
    """Whether the candidate filter runs: a line without its patterns moves its counter."""
    before = mod._filtered_lines()
    mod.scan(NOTHING, 0, len(NOTHING), 0, "/x", {}, {}, str, lambda a, b: None, 10**9, 0, 7.3e9)
    return bool(mod._filtered_lines() - before)


def _switches(mod: Any) -> tuple[Any, ...]:
    """Every switch: which scanner, the fallback's budget and count, the candidate filter,
    the pre-pass and its build (read by setting the best build, which answers the one in
    use)."""
    build = mod._set_prepass_simd(mod.PREPASS_BEST)
    mod._set_prepass_simd(build)
    switches = parser._native, parser.FALLBACK_BUDGET, parser._fallback_bytes
    return (*switches, _filter_on(mod), _prepass_on(mod), build)


def _turn_all(mod: Any) -> None:
    parser._native, parser.FALLBACK_BUDGET, parser._fallback_bytes = TURNED, 1, 12345
    mod._set_filter(False)
    mod._set_prepass(False)
    mod._set_prepass_simd(0)


def test_scanner_state_restores_every_switch_after_a_failure() -> None:
    need_native()
    from tokmon._native import _scan as mod

    before = _switches(mod)
    assert before[3:] == (True, True, mod.PREPASS_BEST)  # the defaults
    with pytest.raises(RuntimeError), scanner_state():
        _turn_all(mod)
        assert _switches(mod) == (TURNED, 1, 12345, False, False, 0)
        raise RuntimeError
    assert _switches(mod) == before


def test_the_native_scanner_fixture_turns_every_switch(native_scanner: Any) -> None:
    """Turns every switch; the next test finds them back (tests run in file order)."""
    BEFORE["switches"] = _switches(native_scanner)
    _turn_all(native_scanner)


def test_every_switch_is_back_after_the_fixture() -> None:
    if "switches" not in BEFORE:
        pytest.skip("the test before did not run in this process")
    from tokmon._native import _scan as mod

    assert _switches(mod) == BEFORE["switches"]
