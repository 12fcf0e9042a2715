"""Session metadata schema: validation, normalisation and migrations.

Schema history
--------------
* v1 (tokmon 0.0.x, unversioned): documents in TinyDB's ``_default`` table with
  ``session_id``, ``name``, ``tags`` (one comma-separated string), ``note`` and
  ``created`` (epoch seconds).  No ``_meta`` table.
* v2 (current): documents in the ``sessions`` table with ``sessionId``, ``name``,
  ``tags`` (normalised list), ``description``, ``claudeTitle``, ``createdAt`` and
  ``updatedAt`` (ISO-8601 UTC); a ``_meta`` table holds ``{"schemaVersion": 2}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from tokmon.textsafe import is_safe, safe_or_none, safe_text

SCHEMA_VERSION = 2
SESSIONS_TABLE = "sessions"
META_TABLE = "_meta"

MAX_TAG_LEN = 40
MAX_NAME_LEN = 120
MAX_DESCRIPTION_LEN = 4000
MAX_TITLE_LEN = 200

# (patterns, compiled by re's cache where first used: not by every start-up of a session report)
_TAG_RE = r"^[a-z0-9._-]+$"
_CONTROL_RE = r"[\x00-\x1f\x7f]"
# Session ids: Claude's and most agents' are uuid-like; Codex names a session after its rollout
# file below sessions/ ("2026/04/08/rollout-...-<uuid>"), so "/" may separate parts (never
# empty, "." or ".." parts: an id is never a path, and must not look like one that climbs).
_SESSION_ID_RE = r"^(?=.{1,200}$)(?!(?:.*/)?\.{1,2}(?:/|$))[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$"


class MetadataError(Exception):
    """A user-facing metadata problem (bad tag, duplicate name, corrupt file...)."""


def now_iso() -> str:
    """Current time as ISO-8601 UTC with milliseconds and ``Z``."""
    return iso_from_epoch(datetime.now(timezone.utc).timestamp())


def iso_from_epoch(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def normalise_tag(tag: str) -> str:
    """Lower-case, trim, spaces to '-'; raise MetadataError unless [a-z0-9._-]{1,40}."""
    if not isinstance(tag, str):
        raise MetadataError(f"invalid tag {tag!r}: must be text")
    norm = re.sub(r"\s+", "-", tag.strip().lower())
    if not norm:
        raise MetadataError("invalid tag '': empty")
    if len(norm) > MAX_TAG_LEN:
        raise MetadataError(f"invalid tag {tag!r}: longer than {MAX_TAG_LEN} characters")
    if not re.match(_TAG_RE, norm):
        raise MetadataError(
            f"invalid tag {tag!r}: only letters, digits, '.', '_' and '-' are allowed"
        )
    return norm


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Normalise, deduplicate and sort tags."""
    if isinstance(tags, str):
        tags = [tags]
    return sorted({normalise_tag(t) for t in tags})


def sanitise_tag(tag: str) -> str | None:
    """Best-effort normalisation for migrated data: drop what is not allowed."""
    norm = re.sub(r"\s+", "-", str(tag).strip().lower())
    norm = re.sub(r"[^a-z0-9._-]", "", norm)[:MAX_TAG_LEN]
    return norm or None


def clean_name(name: str) -> str:
    """Validate a user session name; returns the trimmed name."""
    if not isinstance(name, str):
        raise MetadataError("invalid name: must be text")
    cleaned = " ".join(name.split())
    if not cleaned:
        raise MetadataError("invalid name: empty (use --clear to remove a name)")
    if len(cleaned) > MAX_NAME_LEN:
        raise MetadataError(f"invalid name: longer than {MAX_NAME_LEN} characters")
    if re.search(_CONTROL_RE, cleaned) or not is_safe(cleaned):
        raise MetadataError("invalid name: control or invisible characters are not allowed")
    return cleaned


def clean_description(text: str) -> str:
    if not isinstance(text, str):
        raise MetadataError("invalid description: must be text")
    cleaned = text.strip()
    if len(cleaned) > MAX_DESCRIPTION_LEN:
        raise MetadataError(f"invalid description: longer than {MAX_DESCRIPTION_LEN} characters")
    flat = cleaned.replace("\n", "").replace("\t", "")
    if re.search(_CONTROL_RE, flat) or not is_safe(flat):
        raise MetadataError("invalid description: control or invisible characters are not allowed")
    return cleaned


def clean_title(title: str) -> str | None:
    """Claude's own title: collapse whitespace, strip control chars, bound length."""
    return safe_or_none(title, MAX_TITLE_LEN)


def sanitise_description(text: Any) -> str | None:
    """A description from outside (a backup, an old store): controls other than newline and
    tab removed, bounded; None when empty."""
    if not isinstance(text, str):
        return None
    lines = [safe_text(line.replace("\t", "    ")) for line in text.split("\n")]
    cleaned = "\n".join(lines).strip()[:MAX_DESCRIPTION_LEN]
    return cleaned or None


def parse_iso(value: Any) -> datetime | None:
    """An ISO-8601 time (``Z`` accepted) between 1970 and 2200 as an aware datetime; None
    when it is not one."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    if not 1970 <= dt.year <= 2200:
        return None
    return dt


def check_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not re.match(_SESSION_ID_RE, session_id):
        raise MetadataError(f"invalid session id {session_id!r}")
    return session_id


def name_key(name: str | None) -> str | None:
    return name.casefold() if name else None


def empty_record(session_id: str, ts: str) -> dict[str, Any]:
    return {
        "sessionId": session_id,
        "name": None,
        "tags": [],
        "description": None,
        "claudeTitle": None,
        "createdAt": ts,
        "updatedAt": ts,
    }


# --------------------------------------------------------------------------- versions


def schema_version(data: dict[str, Any] | None) -> int:
    """The schema version of raw TinyDB data (``None`` = empty = current)."""
    if not data:
        return SCHEMA_VERSION
    if not isinstance(data, dict):
        raise MetadataError("metadata file is not a JSON object")
    meta = data.get(META_TABLE)
    if meta is None:
        if isinstance(data.get("_default"), dict):
            return 1  # v1 stored its documents in TinyDB's _default table
        raise MetadataError(
            "no schema marker (_meta table) and no v1 _default table: not a tokmon metadata file"
        )
    if not isinstance(meta, dict):
        raise MetadataError("metadata file has a malformed _meta table")
    for doc in meta.values():
        version = doc.get("schemaVersion") if isinstance(doc, dict) else None
        if isinstance(version, int):
            return version
    raise MetadataError("metadata file has no schemaVersion in its _meta table")


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    old = data.get("_default") or {}
    if not isinstance(old, dict):
        raise MetadataError("v1 metadata: _default table is not an object")
    sessions: dict[str, dict[str, Any]] = {}
    seen_ids: set[str] = set()
    seen_names: set[str] = set()
    next_id = 1
    for _doc_id, doc in sorted(old.items(), key=lambda kv: _int_or_big(kv[0])):
        if not isinstance(doc, dict):
            continue
        sid = doc.get("session_id") or doc.get("sessionId")
        if not isinstance(sid, str) or not re.match(_SESSION_ID_RE, sid) or sid in seen_ids:
            continue
        seen_ids.add(sid)
        ts = _v1_created(doc.get("created"))
        name = doc.get("name")
        name = " ".join(str(name).split())[:MAX_NAME_LEN] if name else None
        if name:
            base, n = name, 2
            while name.casefold() in seen_names:  # v1 did not enforce unique names
                name = f"{base} ({n})"
                n += 1
            seen_names.add(name.casefold())
        raw_tags = doc.get("tags") or ""
        if isinstance(raw_tags, str):
            raw_tags = raw_tags.split(",")
        tags = sorted({t for t in (sanitise_tag(x) for x in raw_tags) if t})
        note = doc.get("note")
        record = empty_record(sid, ts)
        record.update(
            name=name or None,
            tags=tags,
            description=sanitise_description(str(note)) if note else None,
        )
        sessions[str(next_id)] = record
        next_id += 1
    return {SESSIONS_TABLE: sessions, META_TABLE: {"1": {"schemaVersion": 2}}}


def _v1_created(created: Any) -> str:
    """v1's epoch ``created`` as ISO; now when missing or out of range."""
    if isinstance(created, (int, float)) and not isinstance(created, bool):
        try:
            ts = iso_from_epoch(float(created))
        except (OverflowError, ValueError, OSError):
            return now_iso()
        return ts if parse_iso(ts) else now_iso()
    return now_iso()


def sanitise(data: dict[str, Any]) -> dict[str, Any]:
    """Current-schema data with Claude titles and descriptions stripped of terminal controls
    (for data from outside: a restored backup)."""
    table = data.get(SESSIONS_TABLE)
    if not isinstance(table, dict):
        return data
    for doc in table.values():
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("claudeTitle"), str):
            doc["claudeTitle"] = clean_title(doc["claudeTitle"])
        if isinstance(doc.get("description"), str):
            doc["description"] = sanitise_description(doc["description"])
    return data


def _int_or_big(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 1 << 62


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _migrate_1_to_2}


def migrate(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Bring raw data to SCHEMA_VERSION; returns (data, original version)."""
    start = version = schema_version(data)
    if version > SCHEMA_VERSION:
        raise MetadataError(
            f"metadata file has schema v{version}, newer than this tokmon (v{SCHEMA_VERSION}); "
            "upgrade tokmon (pipx upgrade tokmon-cli)"
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise MetadataError(f"no migration from metadata schema v{version}")
        data = step(data)
        version = schema_version(data)
    return data, start


def validate(data: Any) -> dict[str, dict[str, Any]]:
    """Check current-schema data thoroughly; returns sessionId -> record."""
    if not isinstance(data, dict):
        raise MetadataError("not a JSON object")
    if schema_version(data) != SCHEMA_VERSION:
        raise MetadataError(f"expected schema v{SCHEMA_VERSION}")
    table = data.get(SESSIONS_TABLE, {})
    if not isinstance(table, dict):
        raise MetadataError("the sessions table is not an object")
    out: dict[str, dict[str, Any]] = {}
    names: dict[str | None, str] = {}
    for doc_id, doc in table.items():
        where = f"document {doc_id}"
        if not str(doc_id).isdigit():
            raise MetadataError(f"{where}: document ids must be integers")
        if not isinstance(doc, dict):
            raise MetadataError(f"{where}: not an object")
        try:
            sid = check_session_id(doc.get("sessionId"))
        except MetadataError as exc:
            raise MetadataError(f"{where}: {exc}") from None
        if sid in out:
            raise MetadataError(f"{where}: duplicate session {sid}")
        name = doc.get("name")
        if name is not None:
            if clean_name(name) != name:
                raise MetadataError(f"{where}: name {name!r} is not normalised")
            key = name_key(name)
            if key in names:
                raise MetadataError(f"{where}: name {name!r} is also used by {names[key]}")
            names[key] = sid
        tags = doc.get("tags", [])
        if not isinstance(tags, list) or normalise_tags(tags) != tags:
            raise MetadataError(f"{where}: tags must be a sorted list of normalised tags")
        for key in ("description", "claudeTitle"):
            if doc.get(key) is not None and not isinstance(doc[key], str):
                raise MetadataError(f"{where}: {key} must be text or null")
        title = doc.get("claudeTitle")
        if title is not None and clean_title(title) != title:
            raise MetadataError(f"{where}: claudeTitle holds control characters")
        desc = doc.get("description")
        if desc is not None:
            clean_description(desc)
        for key in ("createdAt", "updatedAt"):
            if not isinstance(doc.get(key), str):
                raise MetadataError(f"{where}: {key} missing")
            if parse_iso(doc[key]) is None:
                raise MetadataError(f"{where}: {key} {str(doc[key])[:40]!r} is not an ISO time")
        out[sid] = doc
    return out
