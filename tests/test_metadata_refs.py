"""REF resolution order and messages; tag normalisation properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokmon.metadata.refs import RefError, resolve_ref
from tokmon.metadata.schema import MetadataError, normalise_tags

A = "2a000000-0000-4000-8000-000000000001"
B = "2b000000-0000-4000-8000-000000000002"
C = "cafe0000-0000-4000-8000-000000000003"
IDS = [A, B, C]


def meta(**names: str) -> dict[str, dict]:
    return {sid: {"sessionId": sid, "name": n, "claudeTitle": None} for sid, n in names.items()}


def test_exact_id_wins() -> None:
    assert resolve_ref(C, IDS, meta(**{A: C[:4]})) == C


def test_name_beats_id_prefix() -> None:
    # session A is named "cafe", which is also a prefix of C's id: the explicit name wins
    assert resolve_ref("CAFE", IDS, meta(**{A: "cafe"})) == A
    assert resolve_ref("caf", IDS, meta(**{A: "cafe"})) == C


def test_unique_prefix_and_ambiguity() -> None:
    assert resolve_ref("2a", IDS, {}) == A
    with pytest.raises(RefError) as exc:
        resolve_ref("2", IDS, meta(**{B: "Bee"}))
    msg = str(exc.value)
    assert "ambiguous" in msg and A in msg and f"{B} (Bee)" in msg and C not in msg
    assert sorted(exc.value.candidates) == [A, B]


def test_claude_titles_resolve_last_and_can_be_ambiguous() -> None:
    titles = {A: "Fix tests", B: "Fix tests", C: "Refactor"}
    assert resolve_ref("refactor", IDS, {}, titles) == C
    with pytest.raises(RefError, match="ambiguous: it is the title of 2 sessions"):
        resolve_ref("fix tests", IDS, {}, titles)
    # a user name equal to a Claude title is found first
    assert resolve_ref("fix tests", IDS, meta(**{C: "Fix Tests"}), titles) == C
    # statusLine titles stored in the metadata count as well
    m = {C: {"sessionId": C, "name": None, "claudeTitle": "From statusline"}}
    assert resolve_ref("from statusline", IDS, m) == C


def test_metadata_only_sessions_resolve() -> None:
    gone = "dead0000-0000-4000-8000-000000000009"
    assert resolve_ref("dead", IDS, meta(**{gone: "old"})) == gone


def test_unknown_ref_suggests_near_matches() -> None:
    with pytest.raises(RefError, match=r"no session matches 'bee'.*did you mean .*\(Beehive\)"):
        resolve_ref("bee", IDS, meta(**{B: "Beehive"}))
    with pytest.raises(RefError, match="run `tokmon session list`"):
        resolve_ref("zzz", IDS, {})
    with pytest.raises(RefError, match="empty"):
        resolve_ref("  ", IDS, {})


@given(st.lists(st.text(max_size=50), max_size=8))
def test_normalised_tags_are_valid_sorted_unique_and_stable(tags: list[str]) -> None:
    try:
        out = normalise_tags(tags)
    except MetadataError:
        return  # some input tag was invalid: rejected as a whole
    assert out == sorted(set(out))
    assert all(re.fullmatch(r"[a-z0-9._-]{1,40}", t) for t in out)
    assert normalise_tags(out) == out
    assert len(out) <= len(tags)
