"""Model matching and cost rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokmon.core.model import UsageRecord
from tokmon.core.pricing import PriceTable, PricingError


def rec(model: str, i: int = 0, o: int = 0, cc: int = 0, c1h: int = 0, cr: int = 0) -> UsageRecord:
    return UsageRecord(0.0, "s", "/p", model, i, o, cc, c1h, cr, "k")


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load()


def test_published_prices(table: PriceTable) -> None:
    # $ per million: opus 4.5 in 5 / out 25 / write 6.25 / read 0.5
    c = table.cost(rec("claude-opus-4-5-20251101", 1_000_000, 1_000_000, 1_000_000, 0, 1_000_000))
    assert c == pytest.approx(5 + 25 + 6.25 + 0.5)
    assert table.cost(rec("claude-opus-4-1-20250805", o=1_000_000)) == pytest.approx(75)
    assert table.cost(rec("claude-haiku-4-5-20251001", i=1_000_000)) == pytest.approx(1)


def test_family_prefix_never_crosses_versions(table: PriceTable) -> None:
    assert table.lookup("claude-sonnet-4-5-20250929") == table.lookup("claude-sonnet-4-5")
    assert table.lookup("claude-sonnet-4-5-20991231") == table.lookup("claude-sonnet-4-5")
    # claude-opus-4 (15/75) must not price claude-opus-4-6 (5/25)
    assert table.cost(rec("claude-opus-4-6", o=1_000_000)) == pytest.approx(25)
    assert table.cost(rec("claude-opus-4-20250514", o=1_000_000)) == pytest.approx(75)
    assert (
        table.lookup("claude-opus-4-9") is None or table.cost(rec("claude-opus-4-9", o=1)) != 75e-6
    )


def test_one_hour_cache_writes_cost_twice_input(table: PriceTable) -> None:
    c = table.cost(rec("claude-sonnet-4-5", cc=100_000, c1h=100_000)) * 10
    assert c == pytest.approx(6.0)  # 2 x $3 (below the 200k tier)
    mixed = table.cost(rec("claude-sonnet-4-5", cc=100_000, c1h=40_000)) * 10
    assert mixed == pytest.approx(0.6 * 3.75 + 0.4 * 6.0)


def test_above_200k_charges_whole_request(table: PriceTable) -> None:
    small = table.cost(rec("claude-sonnet-4-20250514", i=100_000, o=1000))
    assert small == pytest.approx(100_000 * 3e-6 + 1000 * 15e-6)
    big = table.cost(rec("claude-sonnet-4-20250514", i=1000, o=1000, cr=250_000))
    assert big == pytest.approx(1000 * 6e-6 + 1000 * 22.5e-6 + 250_000 * 0.6e-6)
    # Exactly 200k stays in the base tier (strictly above triggers it).
    edge = table.cost(rec("claude-sonnet-4-20250514", i=200_000))
    assert edge == pytest.approx(200_000 * 3e-6)


def test_unknown_model_costs_zero_and_is_reported(table: PriceTable) -> None:
    t = PriceTable.load()
    assert t.cost(rec("gpt-99-turbo", 1000, 1000)) == 0.0
    assert "gpt-99-turbo" in t.unknown
    assert t.cost(rec("<synthetic>")) == 0.0
    assert "<synthetic>" not in t.unknown


def test_user_override(tmp_path: Path) -> None:
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"models": {"my-model": {"input": 1, "output": 2}}}))
    t = PriceTable.load(f)
    assert t.cost(rec("my-model", i=1_000_000, o=1_000_000)) == pytest.approx(3)
    f.write_text("{not json")
    with pytest.raises(PricingError):
        PriceTable.load(f)


def test_unknown_model_warns_once_through_the_engine(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from conftest import assistant_line, write_lines

    from tokmon.core.engine import Engine
    from tokmon.paths import get_paths

    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    f = tmp_path / "projects" / "p" / "s.jsonl"
    write_lines(f, [assistant_line(t, msg_id="a", req_id="b", model="claude-zeta-9")])
    e = Engine(roots=[tmp_path / "projects"], paths=get_paths({"TOKMON_HOME": str(tmp_path / "h")}))
    w = e.refresh().warnings
    assert len([x for x in w if "claude-zeta-9" in x]) == 1
    write_lines(f, [assistant_line(t, msg_id="c", req_id="d", model="claude-zeta-9")])
    assert not [x for x in e.refresh().warnings if "claude-zeta-9" in x]
    assert e.records[0].cost == 0.0


def test_cost_modes(table: PriceTable) -> None:
    legacy = UsageRecord(0.0, "s", "/p", "claude-opus-4-5", 1_000_000, 0, 0, 0, 0, "k", 0.0, 1.25)
    plain = rec("claude-opus-4-5", i=1_000_000)
    assert table.cost_in_mode(legacy, "calculate") == pytest.approx(5.0)
    assert table.cost_in_mode(legacy, "display") == 1.25
    assert table.cost_in_mode(plain, "display") == 0.0
    assert table.cost_in_mode(legacy, "auto") == 1.25
    assert table.cost_in_mode(plain, "auto") == pytest.approx(5.0)
