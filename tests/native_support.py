"""The native scanner's test helpers: is it built, its module, and its switches saved and
restored (the fixtures that use them are in tests/conftest.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tokmon.core import parser

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def built() -> bool:
    """Whether tokmon._native._scan imports."""
    try:
        from tokmon._native import _scan  # noqa: F401
    except ImportError:
        return False
    return True


def need_native() -> None:
    """Skip a test that needs the native scanner when it is not built (fail under CI=true,
    which installs with a compiler)."""
    if not built():
        if CI:
            pytest.fail("tokmon._native._scan is not built")
        pytest.skip("the native scanner is not built")


def module() -> Any:
    """The native scanner's module (tokmon._native._scan)."""
    from tokmon._native import _scan as mod

    return mod


def builds() -> list[int]:
    """The pre-pass builds this machine runs: 0 portable, 1 SSE2, 2 AVX2 (up to the best)."""
    return list(range(module().PREPASS_BEST + 1))


@contextmanager
def scanner_state() -> Iterator[None]:
    """Restore, on the way out (also after a failure), every switch a test of the scanners
    turns: ``parser._native`` (which scanner runs), the fallback's budget and its count, and
    when the extension is loaded its candidate filter (on), its pre-pass (on) and pre-pass
    build (the best)."""
    saved = (parser._native, parser.FALLBACK_BUDGET, parser._fallback_bytes)
    try:
        yield
    finally:
        parser._native, parser.FALLBACK_BUDGET, parser._fallback_bytes = saved
        mod = sys.modules.get("tokmon._native._scan")  # not loaded: its switches never turned
        if mod is not None:
            mod._set_filter(True)
            mod._set_prepass(True)
            mod._set_prepass_simd(mod.PREPASS_BEST)
