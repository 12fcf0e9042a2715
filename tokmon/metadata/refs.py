"""Resolve a session REF: a full id, a user name, a unique id prefix or a Claude title."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tokmon.metadata.schema import MetadataError

MAX_LISTED = 8


def short_id(sid: str) -> str:
    """The form of a session id a table shows (a prefix of it): Codex names a session after
    its file (``2025/10/06/rollout-2025-10-06T17-28-04-<uuid>``), whose first 35 characters
    tell few sessions apart; its uuid does. Any other id is itself. :func:`resolve_ref`
    accepts a unique prefix of either form."""
    if "rollout-" not in sid:
        return sid
    tail = sid.rsplit("/", 1)[-1]
    return tail[-36:] if tail.startswith("rollout-") and len(tail) > 36 else tail


class RefError(MetadataError):
    """An unknown or ambiguous REF; the message lists candidates."""

    def __init__(
        self, message: str, candidates: list[str] | None = None, *, ambiguous: bool = False
    ) -> None:
        super().__init__(message)
        self.candidates = candidates or []
        self.ambiguous = ambiguous


def resolve_ref(
    ref: str,
    session_ids: Iterable[str],
    store_all: Mapping[str, Mapping[str, Any]],
    titles: Mapping[str, str] | None = None,
    agents: Mapping[str, str] | None = None,
) -> str:
    """Return the one session id ``ref`` names; raise :class:`RefError` otherwise.

    Order: exact id; user name (case-insensitive); id prefix; a prefix of the id's short
    form (:func:`short_id`: a Codex session's uuid, as tables show it); Claude's title.  The
    first rule that matches exactly one session wins; a rule matching several
    sessions is an ambiguity error listing them (``agents``: session id -> agent, shown
    for sessions of agents other than Claude Code).
    """
    titles = titles or {}
    ids = set(session_ids) | set(store_all)
    ref = ref.strip()
    if not ref:
        raise RefError("empty session reference")
    if ref in ids:
        return ref
    key = " ".join(ref.split()).casefold()

    def label(sid: str) -> str:
        meta = store_all.get(sid) or {}
        name = meta.get("name") or titles.get(sid) or meta.get("claudeTitle")
        agent = (agents or {}).get(sid)
        out = f"{sid} [{agent}]" if agent and agent != "claude" else sid
        return f"{out} ({name})" if name else out

    def pick(matches: list[str], what: str) -> str | None:
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            matches.sort()
            shown = ", ".join(label(m) for m in matches[:MAX_LISTED])
            more = f" and {len(matches) - MAX_LISTED} more" if len(matches) > MAX_LISTED else ""
            raise RefError(
                f"{ref!r} is ambiguous: it is {what} of {len(matches)} sessions: {shown}{more}; "
                "use a longer id prefix or the full id",
                matches,
                ambiguous=True,
            )
        return None

    by_name = [s for s, m in store_all.items() if m.get("name") and m["name"].casefold() == key]
    found = pick(by_name, "the name")
    if found:
        return found
    low = ref.lower()
    found = pick([s for s in ids if s.lower().startswith(low)], "an id prefix")
    if found:
        return found
    found = pick([s for s in ids if short_id(s).lower().startswith(low)], "an id prefix")
    if found:
        return found
    claude_titles = {s: (store_all.get(s) or {}).get("claudeTitle") for s in ids}
    claude_titles.update({s: t for s, t in titles.items() if t})
    found = pick([s for s, t in claude_titles.items() if t and t.casefold() == key], "the title")
    if found:
        return found

    near = sorted(
        s
        for s in ids
        if ref.lower() in s.lower()
        or key in ((store_all.get(s) or {}).get("name") or "").casefold()
        or key in (claude_titles.get(s) or "").casefold()
    )
    hint = (
        "; did you mean " + ", ".join(label(s) for s in near[:MAX_LISTED]) + "?"
        if near
        else "; run `tokmon session list` to see sessions"
    )
    raise RefError(f"no session matches {ref!r}{hint}", near)
