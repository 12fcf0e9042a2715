"""The native scanner prices the rows it builds (pass 2, in C) as the Python pricer does, bit
for bit, and keeps its buffers between calls without changing a result.

The reference is PriceTable.cost_in_mode on a record of each row (as tests/test_pricing_rows.py
holds the Python pricer to it); the rows C hands back to Python (a costUSD line, a title,
anything in doubt) are priced by Python before they are filed, by the same dedup rule.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from test_parser import TITLE, USER, usage_line
from test_pricing_rows import _counts, _models

from tokmon.core import parser
from tokmon.core.model import ROW_COST, UsageRecord
from tokmon.core.parser import LineStats, scan_lines
from tokmon.core.pricing import TIER_THRESHOLD, PriceTable, RowPricer
from tokmon.core.scan import make_pricer

SRC = "/x/s.jsonl"
MODES = ("calculate", "display", "auto", "no-such-mode")


def _line(n: int, model: str, counts: tuple[int, int, int, int, int], **over: Any) -> bytes:
    inp, out, cc, c1h, cr = counts
    usage = {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_creation_input_tokens": cc,
        "cache_read_input_tokens": cr,
        "cache_creation": {"ephemeral_1h_input_tokens": c1h},
    }
    return usage_line(message={"id": f"msg_{n}", "model": model}, usage=usage, **over)


def _scan(buf: bytes, native: bool, price: RowPricer | None) -> tuple[list[Any], bool]:
    """scan_lines over ``buf`` by one path with ``price``: the rows (key, row) in order and
    whether they came back priced."""
    parser._native = False if native else None
    best: dict[str, list[Any]] = {}
    priced = scan_lines(
        bytearray(buf), 0, len(buf), 0, SRC, LineStats(), best, [], {}, False, price
    )
    assert (parser._native is not None) == native
    return list(best.items()), priced


def _want(row: list[Any], table: PriceTable, mode: str) -> str:
    return repr(table.cost_in_mode(UsageRecord.from_row([*row[:ROW_COST], 0.0, row[-1]]), mode))


@pytest.mark.parametrize("mode", MODES)
def test_native_rows_are_priced_bit_for_bit(native_scanner: Any, mode: str) -> None:
    """Every model of the shipped table in each spelling, unknown and empty models, the
    tier's edges and random counts: the cost C puts in each row is cost_in_mode's float (the
    same repr: value, type and sign), and no line went to Python."""
    ref = PriceTable.load()
    rng = random.Random(5)
    counts = _counts(rng)
    models = _models(ref)
    lines = [
        _line(i, models[i % len(models)], counts[i % len(counts)]) for i in range(len(models) * 6)
    ]
    buf = b"\n".join(lines) + b"\n"
    calls: list[tuple[int, int]] = []
    best: dict[str, list[Any]] = {}
    price = make_pricer(None, mode)
    native_scanner.scan(
        buf, 0, len(buf), 0, SRC, best, {}, str, lambda a, b: calls.append((a, b)),
        10**9, 0.0, 7258118400.0, price.native,
    )  # fmt: skip
    assert calls == [] and len(best) == len(lines)
    got = [(type(r[ROW_COST]), repr(r[ROW_COST])) for r in best.values()]
    assert got == [(float, _want(r, ref, mode)) for r in best.values()]
    assert {r[3] for r in best.values()} >= {"unknown", "no-such-model"}  # both kinds ran
    if mode != "display":  # unknown models are registered for the warning, as lookup does
        assert "no-such-model" in price.native[0] and price.native[0]["no-such-model"] is None


def test_the_tier_edge_and_odd_prices(native_scanner: Any, tmp_path: Path) -> None:
    """An override with tiers, odd floats and negative prices (no tokens at a negative
    price: -0.0, its own float): prompts of exactly the threshold, one more, one less."""
    f = tmp_path / "prices.json"
    models = {
        "acme-neg": {"input": -1, "output": -2, "cache_write": -3, "cache_read": -4},
        "acme-tier": {"input": 1.1, "output": 2 / 9, "cache_write_1h": 0.7},
    }
    models["acme-tier"]["above_200k"] = {"input": 5 / 3, "output": 0.3, "cache_write": 1e-2}
    f.write_text(json.dumps({"models": models}))
    counts = _counts(random.Random(0))[:9]  # (its first ones: the tier's edges)
    lines = [
        _line(i * 100 + j, m, c)
        for i, m in enumerate(("acme-tier", "acme-tier-20250101", "acme-neg", "x"))
        for j, c in enumerate(counts)
    ]
    buf = b"\n".join(lines) + b"\n"
    ref = PriceTable.load(f)
    for mode in MODES:
        rows, priced = _scan(buf, True, RowPricer(PriceTable.load(f), mode))
        assert priced and len(rows) == len(lines)
        assert [repr(r[ROW_COST]) for _k, r in rows] == [_want(r, ref, mode) for _k, r in rows]
    rows, _ = _scan(buf, True, RowPricer(PriceTable.load(f), "calculate"))
    assert "-0.0" in [repr(r[ROW_COST]) for _k, r in rows]  # the sign is kept


def test_rows_handed_back_to_python_are_priced_and_filed_alike(native_scanner: Any) -> None:
    """Lines C hands back (a costUSD line, a title, a malformed line) among C's lines, with
    responses split across both (the same id on a C line and a Python line, either first,
    larger output on either side): the native scan with pricing gives the rows (values,
    costs and order) the pure-Python scan gives, priced afterwards."""
    lines = [
        _line(1, "claude-sonnet-4-5", (3, 40, 100, 0, 2000)),
        _line(2, "claude-opus-4-1", (5, 10, 0, 0, 0), costUSD=0.25),  # Python
        _line(2, "claude-opus-4-1", (5, 30, 0, 0, 0)),  # C, larger: replaces it
        _line(3, "claude-opus-4-1", (5, 30, 0, 0, 0)),  # C
        _line(3, "claude-opus-4-1", (5, 50, 0, 0, 0), costUSD=1.5),  # Python, larger
        _line(4, "claude-haiku-4-5", (1, 9, 0, 0, 0), costUSD=0),  # Python only
        TITLE,
        USER,
        b'{"type":"assistant","usage"',  # malformed, a candidate: Python
        _line(4, "claude-haiku-4-5", (1, 9, 0, 0, 0)),  # C, a tie: the first stays
        _line(5, "no-such-model", (7, 7, 7, 7, 7)),
    ]
    buf = b"\n".join(lines) + b"\n"
    for mode in MODES:
        want, priced = _scan(buf, False, None)
        assert not priced
        make_pricer(None, mode)([r for _k, r in want])
        got, priced = _scan(buf, True, make_pricer(None, mode))
        assert priced
        assert [(k, r[:ROW_COST], repr(r[ROW_COST]), r[-1]) for k, r in got] == [
            (k, r[:ROW_COST], repr(r[ROW_COST]), r[-1]) for k, r in want
        ]
    got, _ = _scan(buf, True, make_pricer(None, "auto"))
    assert [r[ROW_COST] for _k, r in got if r[-1] is not None] == [1.5, 0.0]  # costUSD used


def test_no_pricing_leaves_the_cost_for_the_caller(native_scanner: Any) -> None:
    buf = _line(1, "claude-sonnet-4-5", (3, 40, 100, 0, 2000)) + b"\n"
    rows, priced = _scan(buf, True, None)
    assert not priced and rows[0][1][ROW_COST] == 0.0


def test_bad_rates_and_a_failing_resolve_raise(native_scanner: Any) -> None:
    buf = _line(1, "m", (3, 40, 100, 0, 2000)) + b"\n"

    def scan(price: Any) -> int:
        return native_scanner.scan(
            buf, 0, len(buf), 0, SRC, {}, {}, str, print, 10**9, 0.0, 7258118400.0, price
        )

    def boom(model: str) -> Any:
        raise KeyError(model)

    for rates in ((1, 2.0, 3.0, 4.0, 5.0, None), (1.0,) * 5, [1.0] * 5 + [None], "x"):
        with pytest.raises(TypeError):
            scan(({"m": rates}, boom, False, TIER_THRESHOLD))
    with pytest.raises(TypeError):  # a tier that is no rates tuple
        scan(({"m": (1.0,) * 5 + ((2.0,),)}, boom, False, 0))
    with pytest.raises(KeyError):
        scan(({}, boom, False, TIER_THRESHOLD))
    with pytest.raises(TypeError):
        scan(({}, boom, False))  # not the four items
    assert scan(({"m": None}, boom, False, TIER_THRESHOLD)) == 0  # no price: 0.0
    assert scan(({}, boom, True, TIER_THRESHOLD)) == 0  # display: no lookup at all


# --- the buffers kept between calls ----------------------------------------------------------


def test_buffers_are_kept_reused_and_trimmed(native_scanner: Any) -> None:
    """A call keeps its buffers for the next one (``_trim`` frees them: one set), a buffer
    grown past its bound is not kept (a line yyjson reads past 64 KiB), and a scan after a
    bigger one gives what it gives on fresh buffers."""
    parser._native = False
    native_scanner._trim()
    big = b"\n".join(_line(i, "claude-sonnet-4-5", (i, i, i, 0, i)) for i in range(3000)) + b"\n"
    small = b"\n".join([_line(7, "m", (1, 2, 3, 0, 4)), TITLE, USER]) + b"\n"
    fresh = _scan(small, True, make_pricer(None, "calculate"))
    assert native_scanner._trim() == 1 and native_scanner._trim() == 0
    _scan(big, True, make_pricer(None, "calculate"))
    assert _scan(small, True, make_pricer(None, "calculate")) == fresh
    assert native_scanner._trim() == 1
    # an escaped model goes to yyjson, which copies the line: a 100 KB line grows the copy
    long = usage_line(message={"model": "claude\\u002dsonnet", "x": "y" * 100_000})
    long = long.replace(b"claude\\\\u002dsonnet", b"claude\\u002dsonnet")
    rows, _ = _scan(long + b"\n", True, None)
    assert rows[0][1][3] == "claude-sonnet"  # read (by yyjson, not handed back)
    assert native_scanner._trim() == 0


def test_a_scan_gives_its_buffers_back(native_scanner: Any, tmp_path: Path) -> None:
    """scan_all frees what the native scanner kept (the scan's end)."""
    from tokmon._native import _scan
    from tokmon.core.scan import scan_all

    items = []
    for i in range(4):
        p = tmp_path / f"{i}.jsonl"
        p.write_bytes(b"\n".join(_line(i * 10 + j, "m", (1, 2, 3, 0, 4)) for j in range(5)) + b"\n")
        items.append((str(p), 0, p.stat().st_size))
    parser._native = False
    got = list(scan_all(items, workers=2, min_bytes=0, pricing=(None, "calculate")))
    assert sum(len(r.rows) for r in got) == 20
    assert _scan._trim() == 0
