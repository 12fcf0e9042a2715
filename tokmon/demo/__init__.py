"""Realistic Claude Code transcript corpora for the demo mode, tests and benchmarks."""

from __future__ import annotations

from typing import Any

from tokmon.demo.expected import Expected, SessionExpected, TokenTotals
from tokmon.demo.generator import generate

__all__ = ["Expected", "SessionExpected", "TokenTotals", "generate", "ensure_demo_corpus"]


def __getattr__(name: str) -> Any:  # lazy: the demo cache pulls in the file lock
    if name == "ensure_demo_corpus":
        from tokmon.demo.cache import ensure_demo_corpus

        return ensure_demo_corpus
    raise AttributeError(name)
