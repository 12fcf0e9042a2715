"""Build tokmon/data/prices.json, tokmon's shipped offline price table.

Sources: Anthropic's published prices (the table in the transcript-format doc) and the
Anthropic entries of LiteLLM's public price table (``litellm-prices.json``). Published
Anthropic prices win where both name a model. For the other coding agents (Codex, Gemini CLI,
OpenCode, Qwen Code, Copilot, Amp) the OpenAI and Google chat models of the same table are
added (``other_models``), plus the few models LiteLLM lacks (``OTHER_PUBLISHED``). Usage:

    python scripts/build_prices.py path/to/litellm-prices.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

M = 1.0  # the table holds USD per million tokens
# family: (input, output, cache write 5m, cache read, context window); 1h write = 2 x input
PUBLISHED: dict[str, tuple[float, float, float, float, int]] = {
    "claude-opus-4-5": (5, 25, 6.25, 0.50, 200_000),
    "claude-opus-4-6": (5, 25, 6.25, 0.50, 1_000_000),
    "claude-opus-4-7": (5, 25, 6.25, 0.50, 1_000_000),
    "claude-opus-4": (15, 75, 18.75, 1.50, 200_000),
    "claude-opus-4-1": (15, 75, 18.75, 1.50, 200_000),
    "claude-sonnet-4": (3, 15, 3.75, 0.30, 1_000_000),
    "claude-sonnet-4-5": (3, 15, 3.75, 0.30, 1_000_000),
    "claude-haiku-4-5": (1, 5, 1.25, 0.10, 200_000),
    "claude-3-5-haiku": (0.80, 4, 1.00, 0.08, 200_000),
    "claude-3-7-sonnet": (3, 15, 3.75, 0.30, 200_000),
    "claude-3-5-sonnet": (3, 15, 3.75, 0.30, 200_000),
}
# Sonnet 4/4.5 above 200k input tokens in one request (whole request at the higher rate).
ABOVE_200K = {"claude-sonnet-4": (6, 22.5, 7.5, 0.60), "claude-sonnet-4-5": (6, 22.5, 7.5, 0.60)}


# Models other agents log that LiteLLM's table lacks: (input, output, cache read, context),
# USD per million tokens, with the above-200k-prompt tier where the vendor has one.
OTHER_PUBLISHED: dict[
    str, tuple[tuple[float, float, float, int], tuple[float, float, float] | None]
] = {
    # Google's Gemini 3 Pro preview price (the same as gemini-3.1-pro-preview in LiteLLM).
    "gemini-3-pro-preview": ((2.0, 12.0, 0.20, 1_048_576), (4.0, 18.0, 0.40)),
}


OTHER_PROVIDERS = {"openai", "gemini", "vertex_ai-language-models"}
OTHER_PREFIXES = ("gpt-", "o1", "o3", "o4", "codex-", "gemini-")


def per_million(v: dict[str, Any], key: str, default: float) -> float:
    """USD per million tokens from LiteLLM's per-token ``key`` of entry ``v`` (``default``
    per token when the entry lacks it or holds null)."""
    val = v.get(key)
    return round((val if val is not None else default) * 1e6, 6)


def other_models(table: dict[str, dict]) -> dict[str, dict[str, object]]:  # type: ignore[type-arg]
    """OpenAI and Google chat models: no cache-write charge (cache writes cost as input)."""
    out: dict[str, dict[str, object]] = {}
    for raw, v in sorted(table.items()):
        if not isinstance(v, dict) or v.get("litellm_provider") not in OTHER_PROVIDERS:
            continue
        name = raw.split("/", 1)[1] if raw.startswith("gemini/") else raw
        if not name.startswith(OTHER_PREFIXES) or "/" in name:
            continue
        if v.get("input_cost_per_token") is None or v.get("output_cost_per_token") is None:
            continue
        if v.get("mode") not in (None, "chat", "responses"):
            continue
        inp = v["input_cost_per_token"]
        e: dict[str, object] = {
            "input": per_million(v, "input_cost_per_token", 0),
            "output": per_million(v, "output_cost_per_token", 0),
            "cache_write": per_million(v, "input_cost_per_token", 0),
            "cache_write_1h": per_million(v, "input_cost_per_token", 0),
            "cache_read": per_million(v, "cache_read_input_token_cost", inp),
        }
        if v.get("input_cost_per_token_above_200k_tokens") is not None:
            above_in = v["input_cost_per_token_above_200k_tokens"]
            above_out = v["output_cost_per_token"]
            e["above_200k"] = {
                "input": per_million(v, "input_cost_per_token_above_200k_tokens", 0),
                "output": per_million(v, "output_cost_per_token_above_200k_tokens", above_out),
                "cache_write": round(above_in * 1e6, 6),
                "cache_write_1h": round(above_in * 1e6, 6),
                "cache_read": per_million(
                    v, "cache_read_input_token_cost_above_200k_tokens", above_in
                ),
            }
        if v.get("max_input_tokens"):
            e["context"] = v["max_input_tokens"]
        out.setdefault(name, e)  # gemini/<id> and vertex <id> agree; the first one stays
    for name, ((i, o, cr, ctx), above) in OTHER_PUBLISHED.items():
        e = {
            "input": i,
            "output": o,
            "cache_write": i,
            "cache_write_1h": i,
            "cache_read": cr,
            "context": ctx,
        }
        if above:
            e["above_200k"] = {
                "input": above[0],
                "output": above[1],
                "cache_write": above[0],
                "cache_write_1h": above[0],
                "cache_read": above[2],
            }
        out[name] = e
    return out


def entry(inp: float, out: float, cw: float, cr: float, ctx: int | None) -> dict[str, object]:
    e: dict[str, object] = {
        "input": inp * M,
        "output": out * M,
        "cache_write": cw * M,
        "cache_write_1h": 2 * inp * M,
        "cache_read": cr * M,
    }
    if ctx:
        e["context"] = ctx
    return e


def main(src: str) -> None:
    models: dict[str, dict[str, object]] = {}
    table = json.loads(Path(src).read_text())
    for name, v in table.items():
        if v.get("litellm_provider") != "anthropic" or not name.startswith("claude-"):
            continue
        if v.get("input_cost_per_token") is None or v.get("output_cost_per_token") is None:
            continue
        inp = v["input_cost_per_token"]
        e: dict[str, object] = {
            "input": per_million(v, "input_cost_per_token", 0),
            "output": per_million(v, "output_cost_per_token", 0),
            "cache_write": per_million(v, "cache_creation_input_token_cost", inp * 1.25),
            "cache_write_1h": per_million(v, "cache_creation_input_token_cost_above_1hr", inp * 2),
            "cache_read": per_million(v, "cache_read_input_token_cost", inp * 0.1),
        }
        if v.get("max_input_tokens"):
            e["context"] = v["max_input_tokens"]
        models[name] = e
    for fam, (i, o, cw, cr, ctx) in PUBLISHED.items():
        models[fam] = entry(i, o, cw, cr, ctx)
        for name in list(models):
            if name.startswith(fam + "-2"):  # dated ids of the family take the published price
                models[name] = entry(i, o, cw, cr, ctx)
    for fam, (i, o, cw, cr) in ABOVE_200K.items():
        for name, e in models.items():
            if name == fam or name.startswith(fam + "-2"):
                e["above_200k"] = {
                    "input": i * M,
                    "output": o * M,
                    "cache_write": cw * M,
                    "cache_write_1h": 2 * i * M,
                    "cache_read": cr * M,
                }
    for name, e in other_models(table).items():
        models.setdefault(name, e)
    out = {
        "version": 1,
        "unit": "USD per million tokens",
        "source": "Anthropic published prices + LiteLLM (anthropic, openai, gemini entries)",
        "models": dict(sorted(models.items())),
    }
    dest = Path(__file__).resolve().parent.parent / "tokmon" / "data" / "prices.json"
    dest.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(models)} models to {dest}")


if __name__ == "__main__":
    main(sys.argv[1])
