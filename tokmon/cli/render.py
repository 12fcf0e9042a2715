"""Shared terminal rendering helpers (rich imported lazily by callers)."""

from __future__ import annotations

from typing import Any

import orjson


def dump_json(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


def fmt_int(n: int | float) -> str:
    return f"{int(n):,}"


def fmt_cost(c: float) -> str:
    return f"${c:,.2f}"


def fmt_tokens_short(n: float) -> str:
    """1234 -> 1.2k, 2_500_000 -> 2.5M."""
    n = float(n)
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{int(n)}"


def fmt_minutes(m: float) -> str:
    m = max(0, int(round(m)))
    h, mm = divmod(m, 60)
    return f"{h}h{mm:02d}m" if h else f"{mm}m"


def short_model(name: str) -> str:
    """claude-sonnet-4-5-20250929 -> sonnet-4-5."""
    s = name.removeprefix("claude-")
    parts = s.split("-")
    if parts and len(parts[-1]) == 8 and parts[-1].isdigit():
        parts = parts[:-1]
    return "-".join(parts)
