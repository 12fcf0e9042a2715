"""The JSON of report rows from plain values, without the typed rows' dataclasses.

The stored-sums reports (``session --json``, the rollups) write these straight;
:mod:`tokmon.core.rows`' ``to_json`` methods call them, so each key order has one
definition. Kept apart so that a warm report that never builds a typed row does not import
:mod:`tokmon.core.rows` (defining its dataclasses costs ~5 ms).
"""

from __future__ import annotations

from tokmon.core.model import JSON, JSONObject
from tokmon.core.timeutil import iso

__all__ = ["breakdown_json", "session_row_json", "totals_json"]


def totals_json(
    input_tokens: int,
    output_tokens: int,
    cache_creation_tokens: int,
    cache_read_tokens: int,
    total_cost: float,
) -> JSONObject:
    """A report's ``totals`` from its values (:meth:`tokmon.core.rows.Totals.to_json`):
    ``inputTokens ... totalCost, totalTokens``, ccusage's totals order."""
    return {
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "cacheCreationTokens": cache_creation_tokens,
        "cacheReadTokens": cache_read_tokens,
        "totalCost": total_cost,
        "totalTokens": input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens,
    }


def breakdown_json(
    model_name: str,
    input_tokens: int,
    output_tokens: int,
    cache_creation_tokens: int,
    cache_read_tokens: int,
    cost: float,
) -> JSONObject:
    """A ``modelBreakdowns`` item from its values (:meth:`ModelBreakdown.to_json`)."""
    return {
        "modelName": model_name,
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "cacheCreationTokens": cache_creation_tokens,
        "cacheReadTokens": cache_read_tokens,
        "cost": cost,
    }


def session_row_json(
    session_id: str,
    agent: str | None,
    project_path: str,
    input_tokens: int,
    output_tokens: int,
    cache_creation_tokens: int,
    cache_read_tokens: int,
    total_cost: float,
    first_activity: float,
    last_activity: float,
    models_used: list[JSON],
    model_breakdowns: list[JSON],
    project_name: str,
    entries: int,
    title: str | None,
    is_active: bool,
) -> JSONObject:
    """A SessionRow's JSON from its values (:meth:`SessionRow.to_json`, and the session report
    built straight from the stored sums: one definition of the keys and their order)."""
    total = input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens
    # a display of constant keys: built in one step (and dumped faster)
    row: JSONObject = {
        "sessionId": session_id,
        "projectPath": project_path,
        "inputTokens": input_tokens,
        "outputTokens": output_tokens,
        "cacheCreationTokens": cache_creation_tokens,
        "cacheReadTokens": cache_read_tokens,
        "totalTokens": total,
        "totalCost": total_cost,
        "firstActivity": iso(first_activity),
        "lastActivity": iso(last_activity),
        "modelsUsed": models_used,
        "modelBreakdowns": model_breakdowns,
        "projectName": project_name,
        "entries": entries,
        "title": title,
        "isActive": is_active,
    }
    if agent is None:
        return row
    return {"sessionId": session_id, "agent": agent, **row}  # the agent second
