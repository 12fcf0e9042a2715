"""MetadataStore behaviour: validation, normalisation, sentinel, backup/restore."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest

from tokmon.metadata.schema import normalise_tag, normalise_tags
from tokmon.metadata.store import UNSET, MetadataError, MetadataStore, merge_metadata
from tokmon.paths import get_paths

SID = "11111111-2222-3333-4444-555555555555"
SID2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


@pytest.fixture
def store(tmp_path: Path) -> MetadataStore:
    return MetadataStore(tmp_path / "data" / "sessions.json")


def raw(store: MetadataStore) -> dict:
    return orjson.loads(store.path.read_bytes())


def test_default_path_follows_tokmon_home(tmp_path: Path) -> None:
    paths = get_paths({"TOKMON_HOME": str(tmp_path)})
    s = MetadataStore(paths=paths)
    assert s.path == tmp_path / "data" / "sessions.json"
    s.update(SID, name="x")
    assert (tmp_path / "data" / "sessions.json").is_file()


@pytest.mark.parametrize(
    ("given", "expected"),
    [("Foo", "foo"), ("  Next JS ", "next-js"), ("a\tb  c", "a-b-c"), ("v1.2_rc-3", "v1.2_rc-3")],
)
def test_tag_normalisation(given: str, expected: str) -> None:
    assert normalise_tag(given) == expected


@pytest.mark.parametrize("bad", ["", "   ", "c++", "naïve", "a/b", "x" * 41, "emoji🙂"])
def test_invalid_tags_rejected(bad: str) -> None:
    with pytest.raises(MetadataError, match="invalid tag"):
        normalise_tag(bad)


def test_tags_deduplicated_and_sorted() -> None:
    assert normalise_tags(["b", "A", "a", " B "]) == ["a", "b"]
    assert normalise_tag("x" * 40) == "x" * 40


def test_update_creates_record_with_times(store: MetadataStore) -> None:
    rec = store.update(SID, name="  My   session ", tags=["Web", "web", "API"])
    assert rec["name"] == "My session"
    assert rec["tags"] == ["api", "web"]
    assert rec["description"] is None
    assert rec["createdAt"] == rec["updatedAt"]
    assert rec["createdAt"].endswith("Z") and len(rec["createdAt"]) == 24
    assert store.get(SID) == rec
    assert store.get(SID2) is None


def test_sentinel_distinguishes_missing_from_clear(store: MetadataStore) -> None:
    store.update(SID, name="n", tags=["a", "b"], description="d")
    rec = store.update(SID, description=UNSET)  # nothing given: nothing changes
    assert (rec["name"], rec["tags"], rec["description"]) == ("n", ["a", "b"], "d")
    rec = store.update(SID, description=None)
    assert rec["description"] is None and rec["name"] == "n"
    rec = store.update(SID, name=None)
    assert rec["name"] is None and rec["tags"] == ["a", "b"]
    rec = store.update(SID, tags=None)
    assert rec["tags"] == []


def test_add_and_remove_tags_in_one_update(store: MetadataStore) -> None:
    store.update(SID, tags=["a", "b"])
    rec = store.update(SID, add_tags=["C", "d"], remove_tags=["A"])
    assert rec["tags"] == ["b", "c", "d"]
    rec = store.update(SID, remove_tags=["not-there"])
    assert rec["tags"] == ["b", "c", "d"]


def test_unchanged_update_does_not_touch_updated_at(store: MetadataStore) -> None:
    first = store.update(SID, tags=["a"])
    mtime = store.path.stat().st_mtime_ns
    again = store.update(SID, add_tags=["a"])
    assert again["updatedAt"] == first["updatedAt"]
    assert store.path.stat().st_mtime_ns == mtime


def test_names_unique_case_insensitively(store: MetadataStore) -> None:
    store.update(SID, name="Refactor Parser")
    with pytest.raises(MetadataError, match="already used by session " + SID):
        store.update(SID2, name="refactor   PARSER")
    assert store.get(SID2) is None  # the failed update wrote nothing
    store.update(SID, name="REFACTOR parser")  # renaming itself is fine
    assert store.find_by_name("refactor parser") == SID


def test_invalid_tag_in_update_writes_nothing(store: MetadataStore) -> None:
    store.update(SID, tags=["ok"])
    before = store.path.read_bytes()
    with pytest.raises(MetadataError, match="invalid tag"):
        store.update(SID, add_tags=["fine", "not ok!"])
    assert store.path.read_bytes() == before


@pytest.mark.parametrize("bad", ["", "   ", "a" * 121, "bell\x07"])
def test_invalid_names_rejected(store: MetadataStore, bad: str) -> None:
    with pytest.raises(MetadataError, match="invalid name"):
        store.update(SID, name=bad)


def test_invalid_session_id_rejected(store: MetadataStore) -> None:
    with pytest.raises(MetadataError, match="invalid session id"):
        store.update("../etc/passwd", name="x")


@pytest.mark.parametrize("bad", ["a/../b", "/abs", "a//b", "a/", "..", "./a", "a/.", "a\\b"])
def test_session_ids_never_look_like_paths_that_climb(store: MetadataStore, bad: str) -> None:
    with pytest.raises(MetadataError, match="invalid session id"):
        store.update(bad, name="x")


def test_codex_session_ids_with_slashes_take_metadata(store: MetadataStore) -> None:
    """Codex names a session after its rollout below sessions/ (``YYYY/MM/DD/rollout-…``)."""
    sid = "2026/04/08/rollout-2026-04-08T22-18-42-019d6d75-b03d-7f83-a2c7-c3478007d5e0"
    store.update(sid, name="Codex work", add_tags=["client-x"])
    assert store.get(sid)["name"] == "Codex work"
    assert store.get(sid)["tags"] == ["client-x"]


def test_claude_title_never_overrides_user_name(store: MetadataStore) -> None:
    assert store.set_claude_title(SID, "Fix login bug") is True
    assert store.set_claude_title(SID, "Fix login bug") is False  # unchanged: no write
    store.update(SID, name="mine")
    assert store.set_claude_title(SID, "Another title") is True
    rec = store.get(SID)
    assert rec["name"] == "mine" and rec["claudeTitle"] == "Another title"
    assert store.set_claude_title(SID, None) is False
    assert store.set_claude_title(SID, "  ") is False
    assert store.get(SID)["claudeTitle"] == "Another title"


def test_merge_metadata_precedence(store: MetadataStore) -> None:
    rows = [
        {"sessionId": SID, "title": "From transcript", "totalTokens": 5},
        {"sessionId": SID2, "title": None, "totalTokens": 7},
        {"sessionId": "cccc", "title": None, "totalTokens": 1},
    ]
    store.set_claude_title(SID2, "From statusline")
    merged = merge_metadata(rows, store.all())
    assert [m["name"] for m in merged] == ["From transcript", "From statusline", None]
    assert [m["nameSource"] for m in merged] == ["claude", "claude", None]
    store.update(SID, name="User name", tags=["x"], description="why")
    merged = merge_metadata(rows, store.all())
    assert merged[0]["name"] == "User name" and merged[0]["nameSource"] == "user"
    assert merged[0]["tags"] == ["x"] and merged[0]["description"] == "why"
    assert merged[2]["tags"] == [] and merged[2]["description"] is None
    assert "name" not in rows[0]  # input rows untouched
    assert merged[0]["totalTokens"] == 5


def test_delete_is_metadata_only(store: MetadataStore, tmp_path: Path) -> None:
    transcript = tmp_path / f"{SID}.jsonl"
    transcript.write_text("{}\n")
    store.update(SID, name="x")
    assert store.delete(SID) is True
    assert store.delete(SID) is False
    assert store.get(SID) is None and transcript.read_text() == "{}\n"


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_file_modes(store: MetadataStore) -> None:
    store.update(SID, name="x")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    backup = store.backup(store.path.parent.parent / "bk.json")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


def test_corrupt_file_is_a_clear_error_and_never_overwritten(store: MetadataStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b'{"sessions": {"1": ')
    with pytest.raises(MetadataError, match="not valid JSON.*backup restore"):
        store.all()
    with pytest.raises(MetadataError, match="not valid JSON"):
        store.update(SID, name="x")
    assert store.path.read_bytes() == b'{"sessions": {"1": '


def test_newer_schema_refused(store: MetadataStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(b'{"_meta": {"1": {"schemaVersion": 99}}, "sessions": {}}')
    with pytest.raises(MetadataError, match="newer than this tokmon"):
        store.update(SID, name="x")
    with pytest.raises(MetadataError, match="newer than this tokmon"):
        store.all()


def test_backup_and_restore_roundtrip(store: MetadataStore, tmp_path: Path) -> None:
    store.update(SID, name="one", tags=["a"])
    bdir = tmp_path / "backups"
    bdir.mkdir()
    backup = store.backup(bdir)
    assert backup.parent == bdir and backup.name.startswith("sessions-")
    store.update(SID, name="two", tags=["b"])
    store.update(SID2, description="later")
    old_bytes = store.path.read_bytes()
    pre = store.restore(backup)
    assert store.get(SID)["name"] == "one" and store.get(SID)["tags"] == ["a"]
    assert store.get(SID2) is None
    assert pre is not None and pre.name.startswith("sessions.json.pre-restore-")
    assert pre.read_bytes() == old_bytes


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (
            b'{"_meta": {"1": {"schemaVersion": 2}}, "sessions": {"1": {"name": "x"}}}',
            "invalid session id",
        ),
        (
            b'{"_meta": {"1": {"schemaVersion": 2}}, "sessions": {"1": {"sessionId": "a", '
            b'"name": "X", "tags": [], "createdAt": "2025-01-01", "updatedAt": "2025-01-01"}, "2": {"sessionId": "b", '
            b'"name": "x", "tags": [], "createdAt": "2025-01-01", "updatedAt": "2025-01-01"}}}',
            "also used by",
        ),
        (
            b'{"_meta": {"1": {"schemaVersion": 2}}, "sessions": {"1": {"sessionId": "a", '
            b'"tags": ["Bad Tag"], "createdAt": "2025-01-01", "updatedAt": "2025-01-01"}}}',
            "tags",
        ),
    ],
)
def test_restore_validates_before_replacing(
    store: MetadataStore, tmp_path: Path, content: bytes, message: str
) -> None:
    store.update(SID, name="keep me")
    before = store.path.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(MetadataError, match=message):
        store.restore(bad)
    assert store.path.read_bytes() == before


def test_restore_missing_file(store: MetadataStore, tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="does not exist"):
        store.restore(tmp_path / "nope.json")


def test_stale_temp_files_swept(store: MetadataStore) -> None:
    store.update(SID, name="x")
    leftover = store.path.with_name(".sessions.json.abc123.tmp")
    leftover.write_bytes(b'{"half')
    fresh = MetadataStore(store.path)
    fresh.update(SID, add_tags=["y"])
    assert not leftover.exists()
    assert fresh.get(SID)["tags"] == ["y"]


def test_file_is_a_tinydb_database(store: MetadataStore) -> None:
    from tinydb import Query, TinyDB

    from tokmon.metadata.storage import AtomicJSONStorage

    store.update(SID, name="x", tags=["t"])
    db = TinyDB(store.path, storage=AtomicJSONStorage)
    docs = db.table("sessions", cache_size=0).search(Query().tags.any(["t"]))
    assert [d["sessionId"] for d in docs] == [SID]
    assert raw(store)["_meta"] == {"1": {"schemaVersion": 2}}


def test_no_op_on_unknown_session_creates_nothing(store: MetadataStore) -> None:
    rec = store.update(SID, remove_tags=["x"], description=None)
    assert rec["tags"] == [] and rec["name"] is None
    assert store.get(SID) is None and store.all() == {}
