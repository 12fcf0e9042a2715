"""The scanner's row pricer gives PriceTable.cost_in_mode's float, bit for bit."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tokmon.core.model import ROW_COST, UsageRecord
from tokmon.core.pricing import TIER_THRESHOLD, PriceTable, row_pricer
from tokmon.core.records import SYNTHETIC_MODEL
from tokmon.core.scan import make_pricer

MODES = ("calculate", "display", "auto", "no-such-mode")
DISPLAY: tuple[Any, ...] = (None, 0, 0.0, 1.25, 3, 1e-9)


def _models(table: PriceTable) -> list[str]:
    """Every id of the table, as given and in the shapes lookup normalizes, plus ids that
    match nothing."""
    out: list[str] = []
    for m in table.models:
        out += [m, f"{m}-20250929", f"anthropic.{m}-v1:0", f"us.anthropic.{m}", f"{m}@20250101"]
    return out + ["", SYNTHETIC_MODEL, "no-such-model", "claude-opus-4-9", "gpt-unknown-7"]


def _counts(rng: random.Random) -> list[tuple[int, int, int, int, int]]:
    """Token counts (input, output, cache creation, of it 1 hour, cache read) around the
    200k tier's edge (a prompt of exactly the threshold, one more, one less) and at random."""
    t = TIER_THRESHOLD
    out = [
        (0, 0, 0, 0, 0),
        (t, 7, 0, 0, 0),
        (t + 1, 7, 0, 0, 0),
        (t - 1, 7, 0, 0, 0),
        (1, 2, 100_000, 40_000, t - 100_001),  # prompt == threshold
        (1, 2, 100_000, 40_000, t - 100_000),  # prompt == threshold + 1
        (3, 5, 70_000, 70_000, 130_000),
        (0, 0, 5, 9, 0),  # 1-hour above the whole (a negative 5-minute part)
        (10**9, 10**9, 10**9, 10**8, 10**9),
    ]
    for _ in range(300):
        cc = rng.choice((0, rng.randrange(1, 400_000)))
        out.append(
            (
                rng.randrange(0, 300_000),
                rng.randrange(0, 64_000),
                cc,
                rng.randrange(0, cc + 1),
                rng.choice((0, rng.randrange(0, 900_000))),
            )
        )
    return out


def _row(model: str, counts: tuple[int, int, int, int, int], display: Any) -> list[Any]:
    return [1.7e9, "s", "/p", model, *counts, "k", 0.0, display]


def _check(table: PriceTable, ref: PriceTable, rows: list[list[Any]], mode: str) -> None:
    want = [ref.cost_in_mode(UsageRecord.from_row(r), mode) for r in rows]
    row_pricer(table, mode)(rows)
    got = [r[ROW_COST] for r in rows]
    for g, w, r in zip(got, want, rows, strict=True):
        # the same value, type and bits (0.0 and -0.0 differ in repr)
        assert (type(g), repr(g)) == (type(w), repr(w)), r


@pytest.mark.parametrize("mode", MODES)
def test_every_model_and_tier_bit_for_bit(mode: str) -> None:
    ref = PriceTable.load()
    table = PriceTable.load()
    rng = random.Random(12)
    counts = _counts(rng)
    rows = [
        _row(m, c, rng.choice(DISPLAY) if i % 3 else DISPLAY[i % len(DISPLAY)])
        for m in _models(ref)
        for i, c in enumerate(counts[:: 1 + len(counts) // 40] + counts[:9])
    ]
    _check(table, ref, rows, mode)
    # unknown models are registered for the warning, as cost() does
    if mode != "display":
        assert table.unknown == ref.unknown and "no-such-model" in table.unknown


def test_tiered_override_models(tmp_path: Path) -> None:
    """An override with tiers, defaults for the cache prices and odd floats."""
    f = tmp_path / "prices.json"
    f.write_text(
        json.dumps(
            {
                "models": {
                    "acme-big": {
                        "input": 0.1 + 0.2,
                        "output": 1 / 3,
                        "above_200k": {"input": 2 / 7, "output": 3.3, "cache_read": 1e-3},
                    },
                    "acme-small": {"input": 7, "output": 11.000000000000002, "cache_write": 0},
                    "claude-sonnet-4-5": {
                        "input": 3.1,
                        "output": 15.3,
                        "above_200k": {"input": 6.2, "output": 22.7},
                    },
                }
            }
        )
    )
    ref = PriceTable.load(f)
    rng = random.Random(7)
    models = ["acme-big", "acme-big-20250101", "acme-small", "claude-sonnet-4-5-20250929", "x"]
    rows = [_row(m, c, None) for m in models for c in _counts(rng)]
    for mode in MODES:
        _check(PriceTable.load(f), ref, [list(r) for r in rows], mode)


def test_scan_pricer_prices_rows_like_cost_in_mode(tmp_path: Path) -> None:
    """make_pricer (what scan_file applies) is cached per (override, mode) and prices as
    the table does."""
    rng = random.Random(3)
    ref = PriceTable.load()
    rows = [_row(m, c, None) for m in list(ref.models)[:20] for c in _counts(rng)[:30]]
    for mode in ("calculate", "auto"):
        price = make_pricer(None, mode)
        assert make_pricer(None, mode) is price
        mine = [list(r) for r in rows]
        price(mine)
        want = [ref.cost_in_mode(UsageRecord.from_row(r), mode) for r in rows]
        assert [repr(r[ROW_COST]) for r in mine] == [repr(w) for w in want]
