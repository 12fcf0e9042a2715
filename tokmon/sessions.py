"""Sessions for every surface: metadata merge, display name, REF resolution, one detail shape.

The CLI (`tokmon session …`, reports, `stats`, `pick`), the server (`tokmon/sessions`,
`tokmon/session`, `tokmon/setSessionMetadata`), the web page and `tokmon watch` all go through
this module, so a session is named, found and described the same way everywhere.  It imports
no surface; it consumes the engine's SessionRow dicts and usage records as they are (an
``agent`` key on a row is carried through untouched).  See docs/sessions.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any, Protocol

from tokmon.metadata.refs import RefError, resolve_ref

__all__ = [
    "RefError",
    "activity",
    "agent_rows",
    "agents_of",
    "detail",
    "detail_for",
    "display_name",
    "label",
    "merge",
    "merge_one",
    "request_json",
    "resolve",
    "session_records",
]

MAX_REF_LEN = 400
"""Longer REFs cannot be an id (200), a name (120) or a title (200): rejected outright."""

Row = dict[str, Any]
Meta = Mapping[str, Mapping[str, Any]]


class UsageLike(Protocol):
    """The record attributes this module reads (tokmon's UsageRecord has them all)."""

    @property
    def ts(self) -> float: ...
    @property
    def session_id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cache_creation_tokens(self) -> int: ...
    @property
    def cache_1h_tokens(self) -> int: ...
    @property
    def cache_read_tokens(self) -> int: ...
    @property
    def total_tokens(self) -> int: ...
    @property
    def cost(self) -> float: ...


# --------------------------------------------------------------------------- names


def display_name(
    row: Mapping[str, Any], meta: Mapping[str, Any] | None
) -> tuple[str | None, str | None]:
    """``(name, nameSource)``: the user's name ("user"), else Claude's title ("claude").

    Claude's title is the transcript's (``row["title"]``: custom-title beats ai-title), else
    the last one Claude's statusLine reported (``meta["claudeTitle"]``).  ``(None, None)``
    when the session has neither.
    """
    meta = meta or {}
    if meta.get("name"):
        return str(meta["name"]), "user"
    title = row.get("title") or meta.get("claudeTitle")
    if title:
        return str(title), "claude"
    return None, None


def merge_one(row: Mapping[str, Any], meta: Mapping[str, Any] | None) -> Row:
    """A copy of one SessionRow with ``name``, ``nameSource``, ``tags`` and ``description``."""
    out = dict(row)
    _add_meta(out, meta)
    return out


def _add_meta(row: Row, meta: Mapping[str, Any] | None) -> None:
    """Set ``row``'s ``name``, ``nameSource``, ``tags`` and ``description`` (in that order)."""
    if meta is None and not row.get("title"):  # nothing to merge: the plain defaults
        row["name"] = row["nameSource"] = None
        row["tags"] = []
        row["description"] = None
        return
    row["name"], row["nameSource"] = display_name(row, meta)
    row["tags"] = list((meta or {}).get("tags") or [])
    row["description"] = (meta or {}).get("description")


def merge(rows: Iterable[Mapping[str, Any]], store_all: Meta) -> list[Row]:
    """Copies of SessionRow dicts with their metadata merged in (see :func:`merge_one`)."""
    return [merge_one(r, store_all.get(str(r.get("sessionId", "")))) for r in rows]


def merge_into(rows: Iterable[Row], store_all: Meta) -> None:
    """:func:`merge` in place: the same keys added to each row (no copies)."""
    for row in rows:
        _add_meta(row, store_all.get(str(row.get("sessionId", ""))))


# What :func:`merge` gives a row with neither metadata nor a title, in its key order.
PLAIN_META: dict[str, Any] = {"name": None, "nameSource": None, "tags": [], "description": None}


def merge_over_plain(rows: Iterable[Row], store_all: Meta) -> None:
    """:func:`merge_into` for rows that already end with :data:`PLAIN_META`'s keys: only the
    rows with metadata or a title change (their values are set where the keys stand)."""
    get = store_all.get
    for row in rows:
        meta = get(str(row["sessionId"]))
        if meta is not None or row.get("title"):
            _add_meta(row, meta)


def clip_for_display(rows: list[Row]) -> list[Row]:
    """``rows`` (merged copies: changed in place) with ``projectPath`` and ``projectName``
    clipped to :mod:`tokmon.textsafe`'s display limits, for the clients that show them (the
    server's session rows). ``sessionId`` stays whole: clients send it back as the key."""
    from tokmon.textsafe import NAME_MAX, PATH_MAX, clip

    for row in rows:
        for key, limit in (("projectPath", PATH_MAX), ("projectName", NAME_MAX)):
            value = row.get(key)
            if isinstance(value, str) and len(value) > limit:
                row[key] = clip(value, limit)
    return rows


def label(row: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> str:
    """A never-empty label: the display name, else the project name, else the short id."""
    meta = meta or {}
    for v in (
        meta.get("name"),
        row.get("name"),
        row.get("title"),
        meta.get("claudeTitle"),
        row.get("projectName"),
    ):
        if isinstance(v, str) and v.strip():
            from tokmon.textsafe import NAME_MAX, clip

            return clip(v.strip(), NAME_MAX)
    return str(row.get("sessionId", ""))[:8]


# --------------------------------------------------------------------------- references


def resolve(
    ref: str,
    session_ids: Iterable[str],
    store_all: Meta,
    titles: Mapping[str, str] | None = None,
    agents: Mapping[str, str] | None = None,
) -> str:
    """The one session id ``ref`` names, or :class:`RefError` listing the candidates.

    Rules, first unique match wins: exact id; user name (case-insensitive); unique id
    prefix; Claude's title.  A rule that matches several sessions is an ambiguity error.
    Sessions known only from their metadata (transcripts expired) resolve too.
    ``agents`` (session id -> agent) names the agent of other agents' candidates in errors.
    """
    if not isinstance(ref, str):
        raise RefError("the session reference must be a string")
    if len(ref) > MAX_REF_LEN:
        raise RefError(
            f"no session matches {ref[:60]!r}… (a reference is at most {MAX_REF_LEN} characters)"
        )
    return resolve_ref(ref, session_ids, store_all, titles or {}, agents)


def agent_rows(engine: Any, **filters: Any) -> list[Any]:
    """Every agent's SessionRows of ``engine`` (each with its ``agent``), most recent first:
    the sessions the CLI's session commands list and resolve.  An engine that reads Claude
    Code only gives Claude's rows, still with ``agent`` set."""
    return list(engine.session_rows(agent="all", **filters))


def agents_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Session id -> agent of wire rows (rows without ``agent`` are Claude Code's)."""
    return {str(r.get("sessionId")): str(r.get("agent") or "claude") for r in rows}


# --------------------------------------------------------------------------- detail


def _model_rows(records: Sequence[UsageLike]) -> list[Row]:
    models: dict[str, Row] = {}
    for r in records:
        m = models.get(r.model)
        if m is None:
            m = models[r.model] = {
                "modelName": r.model,
                "inputTokens": 0,
                "outputTokens": 0,
                "cacheCreationTokens": 0,
                "cacheReadTokens": 0,
                "cost": 0.0,
                "totalTokens": 0,
                "requests": 0,
                "cacheCreation1hTokens": 0,
            }
        m["inputTokens"] += r.input_tokens
        m["outputTokens"] += r.output_tokens
        m["cacheCreationTokens"] += r.cache_creation_tokens
        m["cacheReadTokens"] += r.cache_read_tokens
        m["cost"] += r.cost
        m["totalTokens"] += r.total_tokens
        m["requests"] += 1
        m["cacheCreation1hTokens"] += r.cache_1h_tokens
    return sorted(models.values(), key=lambda m: (-m["cost"], -m["totalTokens"], m["modelName"]))


def _hourly(records: Sequence[UsageLike]) -> list[Row]:
    from tokmon.core.timeutil import iso

    hours: dict[int, Row] = {}
    for r in records:
        h = int(r.ts // 3600)
        p = hours.get(h)
        if p is None:
            p = hours[h] = {"hour": iso(h * 3600.0), "totalTokens": 0, "cost": 0.0, "requests": 0}
        p["totalTokens"] += r.total_tokens
        p["cost"] += r.cost
        p["requests"] += 1
    return [hours[h] for h in sorted(hours)]


def detail(
    session_id: str,
    row: Mapping[str, Any] | None,
    meta: Mapping[str, Any] | None,
    records: Sequence[UsageLike],
    *,
    title: str | None = None,
    now: float,
    block_seconds: float | None = None,
) -> Row:
    """The one session-detail object (``tokmon session show --json`` and ``tokmon/session``).

    The merged SessionRow (``row``; for a session known only from its metadata just
    ``sessionId``, ``title`` and the metadata fields) plus:
    ``models`` (per model: the four token kinds, ``totalTokens``, ``cost``, ``requests``,
    ``cacheCreation1hTokens``; by cost, highest first), ``timeline`` (per UTC hour:
    ``hour``, ``totalTokens``, ``cost``, ``requests``), ``blocks`` (the session's own usage
    in 5-hour windows, ccusage block shape, no gaps), ``cacheCreation1hTokens`` and
    ``metadata`` (the stored record or null).  ``records`` are the session's usage
    records, oldest first.
    """
    from tokmon.core.blocks import BLOCK_SECONDS, blocks_json, compute_blocks

    base: Mapping[str, Any] = row if row is not None else {"sessionId": session_id, "title": title}
    out = merge_one(base, meta)
    out["models"] = _model_rows(records)
    out["timeline"] = _hourly(records)
    recs: Any = records  # compute_blocks reads the same attributes (UsageLike)
    out["blocks"] = (
        blocks_json(
            compute_blocks(
                recs, now=now, block_seconds=block_seconds or BLOCK_SECONDS, include_gaps=False
            )
        )
        if records
        else []
    )
    out["cacheCreation1hTokens"] = sum(r.cache_1h_tokens for r in records)
    out["metadata"] = dict(meta) if meta else None
    return out


def request_json(r: UsageLike) -> Row:
    """One usage record as an exported request (no message content)."""
    from tokmon.core.timeutil import iso

    return {
        "timestamp": iso(r.ts),
        "model": r.model,
        "project": r.project,
        "inputTokens": r.input_tokens,
        "outputTokens": r.output_tokens,
        "cacheCreationTokens": r.cache_creation_tokens,
        "cacheCreation1hTokens": r.cache_1h_tokens,
        "cacheReadTokens": r.cache_read_tokens,
        "totalTokens": r.total_tokens,
        "cost": r.cost,
    }


def activity(records: Sequence[UsageLike], tz: tzinfo | None) -> Row:
    """Requests, tokens and cost per local time bucket sized to the session's span
    (10 min up to 6 h, hourly up to 3 days, else daily): the terminal's activity chart."""
    if not records:
        return {"bucketMinutes": 0, "buckets": []}
    span = records[-1].ts - records[0].ts
    minutes = 10 if span <= 6 * 3600 else 60 if span <= 3 * 86400 else 1440
    size = minutes * 60
    buckets: dict[float, Row] = {}
    for r in records:
        off = datetime.fromtimestamp(r.ts, tz).utcoffset()
        offset = off.total_seconds() if off else 0.0
        start = (r.ts + offset) // size * size - offset
        b = buckets.get(start)
        if b is None:
            b = buckets[start] = {
                "start": datetime.fromtimestamp(start, tz).isoformat(),
                "requests": 0,
                "tokens": 0,
                "cost": 0.0,
            }
        b["requests"] += 1
        b["tokens"] += r.total_tokens
        b["cost"] += r.cost
    return {"bucketMinutes": minutes, "buckets": [buckets[k] for k in sorted(buckets)]}


def detail_for(
    engine: Any,
    session_id: str,
    row: Mapping[str, Any] | None,
    meta: Mapping[str, Any] | None,
    now: float | None = None,
) -> Row:
    """:func:`detail` for a session of ``engine`` (its records, Claude title, block length)."""
    import time

    agent = str((row or {}).get("agent") or "claude")
    records = session_records(engine, session_id, agent)
    out = detail(
        session_id,
        row,
        meta,
        records,
        title=engine.titles.get(session_id),
        now=time.time() if now is None else now,
        block_seconds=getattr(engine, "block_seconds", None),
    )
    out["agent"] = agent  # every detail names its agent, whichever surface asks
    return out


def session_records(engine: Any, session_id: str, agent: str = "claude") -> list[Any]:
    """The usage records of one session of ``engine`` (of ``agent``), oldest first."""
    source = engine.records
    if agent != "claude" and hasattr(engine, "records_of"):
        try:
            source = engine.records_of(agent)
        except ValueError:  # an agent this engine does not read
            source = []
    return [r for r in source if r.session_id == session_id]
