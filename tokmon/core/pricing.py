"""Model prices and cost: shipped offline table, user override, family matching."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokmon.core.model import ROW_COST, UsageRecord
from tokmon.core.records import SYNTHETIC_MODEL
from tokmon.leanclass import dataclass, field

_DATA = Path(__file__).resolve().parent.parent / "data" / "prices.json"
_PER_M = 1e-6
TIER_THRESHOLD = 200_000
# Provider prefixes seen in model ids (Bedrock / Vertex / LiteLLM style).
# (patterns, compiled by re's cache on the first unknown model id: not by every start-up)
_PREFIX = r"^(?:[a-z]{2}\.)?(?:anthropic[./])"
_SUFFIX = r"(?:-v\d+(?::\d+)?|@\d{8})$"


@dataclass(frozen=True)
class Price:
    """USD per token for one model."""

    input: float
    output: float
    cache_write: float
    cache_write_1h: float
    cache_read: float
    above_200k: Price | None = None
    context: int | None = None

    @classmethod
    def from_table(cls, e: dict) -> Price:  # type: ignore[type-arg]
        inp = float(e["input"]) * _PER_M
        above = e.get("above_200k")
        return cls(
            input=inp,
            output=float(e["output"]) * _PER_M,
            cache_write=float(e.get("cache_write", e["input"] * 1.25)) * _PER_M,
            cache_write_1h=float(e.get("cache_write_1h", e["input"] * 2)) * _PER_M,
            cache_read=float(e.get("cache_read", e["input"] * 0.1)) * _PER_M,
            above_200k=cls.from_table(above) if above else None,
            context=e.get("context"),
        )


class PricingError(Exception):
    """The price table or override file is invalid."""


@dataclass
class PriceTable:
    """Resolves a model id to a :class:`Price`; unknown models cost 0 with one warning."""

    models: dict[str, Price]
    signature: str = ""
    unknown: set[str] = field(default_factory=set)
    _cache: dict[str, Price | None] = field(default_factory=dict)

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        """Load the shipped table, then merge a user override file (same format) if given."""
        raw = json.loads(_DATA.read_text(encoding="utf-8"))["models"]
        sig = [str(_DATA.stat().st_mtime_ns)]
        if override is not None and override.is_file():
            try:
                extra = json.loads(override.read_text(encoding="utf-8-sig"))  # (Windows' BOM)
                extra = extra.get("models", extra)
                if not isinstance(extra, dict):
                    raise ValueError("expected an object of models")
                raw = {**raw, **extra}
                sig.append(override.read_text(encoding="utf-8-sig"))
            except (ValueError, OSError) as exc:
                raise PricingError(f"invalid price override {override}: {exc}") from exc
        try:
            models = {k: Price.from_table(v) for k, v in raw.items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise PricingError(f"invalid price entry: {exc}") from exc
        return cls(models, signature="|".join(sig))

    def lookup(self, model: str) -> Price | None:
        """Exact id, then the longest known family prefix (a version suffix never matches)."""
        if model in self._cache:
            return self._cache[model]
        price = self._match(model)
        self._cache[model] = price
        if price is None and model and model != SYNTHETIC_MODEL:
            self.unknown.add(model)
        return price

    def _match(self, model: str) -> Price | None:
        if model in self.models:
            return self.models[model]
        norm = re.sub(_SUFFIX, "", re.sub(_PREFIX, "", model))
        if norm in self.models:
            return self.models[norm]
        best: str | None = None
        for fam in self.models:
            if norm.startswith(fam + "-") and not _is_version_suffix(norm[len(fam) + 1 :]):
                if best is None or len(fam) > len(best):
                    best = fam
        return self.models[best] if best else None

    def cost(self, r: UsageRecord) -> float:
        """Cost of one response; Anthropic charges a >200k-input request wholly at the tier."""
        p = self.lookup(r.model)
        if p is None:
            return 0.0
        cache_5m = r.cache_creation_tokens - r.cache_1h_tokens
        if p.above_200k is not None:
            prompt = r.input_tokens + r.cache_creation_tokens + r.cache_read_tokens
            if prompt > TIER_THRESHOLD:
                p = p.above_200k
        return (
            r.input_tokens * p.input
            + r.output_tokens * p.output
            + cache_5m * p.cache_write
            + r.cache_1h_tokens * p.cache_write_1h
            + r.cache_read_tokens * p.cache_read
        )

    def cost_in_mode(self, r: UsageRecord, mode: str) -> float:
        """Cost under a cost mode: ``calculate`` (prices), ``display`` (the legacy
        ``costUSD`` field, else 0) or ``auto`` (``costUSD`` where present, else prices)."""
        if mode == "display":
            return r.display_cost or 0.0
        if mode == "auto" and r.display_cost is not None:
            return r.display_cost
        return self.cost(r)

    def context_window(self, model: str) -> int | None:
        p = self.lookup(model)
        return p.context if p else None


#: A price as a tuple (input, output, cache write, 1-hour cache write, cache read, the same
#: tuple above the 200k tier or None), for :func:`row_pricer`'s loop.
_Rates = tuple[float, float, float, float, float, Any]


def _rates(p: Price | None) -> _Rates | None:
    if p is None:
        return None
    above = _rates(p.above_200k)
    return (p.input, p.output, p.cache_write, p.cache_write_1h, p.cache_read, above)


class RowPricer:
    """Prices rows (lists in record field order) in place: each row's cost becomes
    ``table.cost_in_mode(UsageRecord.from_row(row), mode)``, the same float bit for bit (the
    same operations in the same order), without building a record per row and with one
    :meth:`PriceTable.lookup` per model (which registers unknown models as before). The
    scanner's loop: ~0.3 us a row against ~0.8 through records.

    :attr:`native` is the same pricing for the native scanner, which prices the rows it
    builds in C (tokmon/_native/_scan.c, ``row_cost``: no Python loop per row under the
    GIL, which the other scan thread waits for): ``(rates, resolve, display, threshold)``,
    ``rates`` the dict of model -> :func:`_rates` this pricer fills, ``resolve(model)`` the
    function filling it, ``display`` whether the cost is the row's costUSD (none in the
    native scanner's rows)."""

    __slots__ = ("native", "_price")

    def __init__(self, table: PriceTable, mode: str) -> None:
        rates: dict[str, _Rates | None] = {}
        lookup = table.lookup
        display = mode == "display"
        auto = mode == "auto"
        threshold = TIER_THRESHOLD

        def resolve(model: str) -> _Rates | None:
            r = rates[model] = _rates(lookup(model))
            return r

        def price(rows: list[list[Any]]) -> None:
            for row in rows:
                # (record field order; tests/test_pricing_rows.py fails if it changes)
                _ts, _sid, _cwd, model, inp, out, cc, c1h, cr, _key, _cost, disp = row
                if display:
                    row[ROW_COST] = disp or 0.0
                    continue
                if auto and disp is not None:
                    row[ROW_COST] = disp
                    continue
                try:
                    r = rates[model]
                except KeyError:
                    r = resolve(model)
                if r is None:
                    row[ROW_COST] = 0.0
                    continue
                if r[5] is not None and inp + cc + cr > threshold:
                    r = r[5]
                pi, po, pw, pw1, pr, _ = r
                row[ROW_COST] = inp * pi + out * po + (cc - c1h) * pw + c1h * pw1 + cr * pr

        self._price = price
        self.native: tuple[dict[str, _Rates | None], Callable[[str], _Rates | None], bool, int]
        self.native = (rates, resolve, display, threshold)

    def __call__(self, rows: list[list[Any]]) -> None:
        self._price(rows)


def row_pricer(table: PriceTable, mode: str) -> RowPricer:
    """A :class:`RowPricer` of ``table`` under cost mode ``mode``."""
    return RowPricer(table, mode)


def _is_version_suffix(rest: str) -> bool:
    """``4-6`` after ``claude-opus-`` is a different model; a date like ``20250514`` is not."""
    head = rest.split("-", 1)[0]
    return head.isdigit() and len(head) <= 2
