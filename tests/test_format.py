"""tokmon/fmt.py against the formatting cases shared with VS Code (tests/fixtures/format_cases.json).

The same JSON table runs in integrations/vscode/test/unit/format.test.ts, so every surface
writes 999,999 tokens, $1,234.50, durations, times and missing values the same way.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tokmon import fmt

CASES = json.loads((Path(__file__).parent / "fixtures" / "format_cases.json").read_text())
VALUE_KINDS = ["tokens", "integer", "cost", "percent", "duration", "age"]
TIME_KINDS = ["clock", "date_time", "date", "offset_label", "clock_zoned"]


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [(k, v, e) for k in VALUE_KINDS for v, e in CASES[k]],
)
def test_value_cases(kind: str, value: float | None, expected: str) -> None:
    assert getattr(fmt, kind)(value) == expected


@pytest.mark.parametrize(
    ("kind", "ts", "zone", "expected"),
    [(k, ts, z, e) for k in TIME_KINDS for ts, z, e in CASES[k]],
)
def test_time_cases(kind: str, ts: float | None, zone: str, expected: str) -> None:
    assert getattr(fmt, kind)(ts, fmt.zone(zone)) == expected


@pytest.mark.parametrize("kind", VALUE_KINDS)
def test_non_finite_values_are_missing(kind: str) -> None:
    for bad in (math.nan, math.inf, -math.inf, None, "12", True):
        assert getattr(fmt, kind)(bad) == CASES["missing"]


def test_every_kind_has_cases_and_the_table_is_not_trivial() -> None:
    for kind in VALUE_KINDS + TIME_KINDS:
        assert len(CASES[kind]) >= 4, kind
    # the disagreement that motivated the module: 999,999 tokens read one way
    assert dict((v, e) for v, e in CASES["tokens"] if v is not None)[999999] == "1.00M"


def test_zone_names() -> None:
    assert fmt.zone_name(fmt.zone("Pacific/Kiritimati")) == "Pacific/Kiritimati"
    assert fmt.zone_name(fmt.zone("UTC")) == "UTC"
    with pytest.raises(ValueError, match="Mars/Base"):
        fmt.zone("Mars/Base")


def test_local_zone_follows_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Adak")
    assert fmt.zone_name(fmt.zone(None)) == "America/Adak"
    monkeypatch.setenv("TZ", ":Pacific/Kiritimati")
    assert fmt.zone_name(fmt.zone("local")) == "Pacific/Kiritimati"


def test_epoch_parses_iso() -> None:
    assert fmt.epoch("2025-11-29T19:00:00.000Z") == 1764442800
    assert fmt.epoch("2025-11-30T09:00:00+14:00") == 1764442800
    assert fmt.epoch("garbage") is None and fmt.epoch(None) is None


def test_session_ids_print_long_enough_to_be_told_apart() -> None:
    from tokmon.cli.render import id_length

    assert id_length(["a7da6a22-facc", "ef958aa1-0e93"]) == 8
    assert id_length(["abcdefgh1-x", "abcdefgh2-y", "zz"]) == 9
    assert id_length([]) == 8


def test_every_python_surface_writes_the_shared_cases() -> None:
    """CLI tables, `tokmon line` and `tokmon watch` use the same rules (no private copies)."""
    from tokmon.cli import render
    from tokmon.statusline import formats

    surfaces: dict[str, list[object]] = {
        "tokens": [formats.fmt_tokens, render.fmt_tokens_short],
        "cost": [formats.fmt_cost, render.fmt_cost],
        "integer": [render.fmt_int],
        "duration": [render.fmt_minutes],
        "age": [formats.fmt_age],
        "percent": [formats.fmt_percent],
    }
    try:
        from tokmon.watch import model
    except ImportError:  # pragma: no cover - textual-free installs still have model.py
        model = None
    if model is not None:
        surfaces["tokens"].append(model.fmt_tokens)
        surfaces["cost"].append(model.fmt_cost)
        surfaces["duration"].append(model.fmt_minutes)
        surfaces["age"].append(model.fmt_age)
    for kind, funcs in surfaces.items():
        for func in funcs:
            for value, expected in CASES[kind]:
                if value is None and kind in ("age", "percent"):
                    continue  # the line formatters take numbers only
                assert func(value) == expected, (func, value)  # type: ignore[operator]
    # the line's duration takes seconds
    for minutes, expected in CASES["duration"]:
        if minutes is not None:
            assert formats.fmt_duration(minutes * 60) == expected
