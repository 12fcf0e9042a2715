"""Issue 10 item 12: ``backup restore`` validates everything before touching anything and
keeps a timestamped copy of every replaced file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hostile.hs_support import assistant, hs_env, run, tokmon_argv, write_transcript

SID = "b4c0b4c0-0000-4000-8000-000000000001"
SID2 = "b4c0b4c0-0000-4000-8000-000000000002"
DATE = "2025-06-01T10:00:00.000Z"


def _doc(sid: str, **kw: Any) -> dict[str, Any]:
    doc = {"sessionId": sid, "name": None, "tags": [], "description": None,
           "claudeTitle": None, "createdAt": DATE, "updatedAt": DATE}  # fmt: skip
    doc.update(kw)
    return doc


def _v2(*docs: dict[str, Any]) -> dict[str, Any]:
    return {"_meta": {"1": {"schemaVersion": 2}},
            "sessions": {str(i + 1): d for i, d in enumerate(docs)}}  # fmt: skip


@pytest.fixture
def named(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A store with one named, tagged session; returns (env, metadata file)."""
    env = hs_env(tmp_path)
    write_transcript(env, "-p", f"{SID}.jsonl", [assistant("m1", sid=SID)])
    for argv in (["session", "name", SID, "keep-me"], ["session", "tag", SID, "precious"]):
        r = run([*tokmon_argv(), *argv], env, tmp_path)
        assert r.returncode == 0, r.stderr
    return env, Path(env["TOKMON_HOME"]) / "data" / "sessions.json"


def _restore(env: dict[str, str], path: Path) -> Any:
    return run([*tokmon_argv(), "backup", "restore", str(path)], env, path.parent)


BAD = {
    # no schema marker: used to be read as v1 and wipe every name and tag
    "no _meta": {"sessions": {"1": _doc(SID, name="x")}},
    "unparsable createdAt": _v2(_doc(SID, createdAt="x")),
    "unparsable updatedAt": _v2(_doc(SID, updatedAt="2025-13-45T99:00:00Z")),
    "year 1": _v2(_doc(SID, createdAt="0001-01-01T00:00:00Z")),
    "date not text": _v2(_doc(SID, createdAt=12)),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BAD))
def test_invalid_backup_is_refused_and_nothing_changes(
    kind: str, named: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, meta = named
    before = meta.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(BAD[kind]))
    r = _restore(env, bad)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert meta.read_bytes() == before
    assert not list(meta.parent.glob("sessions.json.pre-restore*"))
    r = run([*tokmon_argv(), "session", "show", SID], env, tmp_path)
    assert r.returncode == 0 and "keep-me" in r.stdout, r.stderr


@pytest.mark.slow
def test_v1_backup_with_huge_epoch_is_migrated_not_a_crash(
    named: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, meta = named
    v1 = tmp_path / "v1.json"
    raw = (
        '{"_default": {"1": {"session_id": "SID", "name": "old", "tags": "a,b", "created": 1e308}}}'
    )
    v1.write_text(raw.replace("SID", SID2))
    r = _restore(env, v1)
    assert r.returncode == 0, r.stderr
    r = run([*tokmon_argv(), "--json", "session", "list"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    r = run([*tokmon_argv(), "session", "show", SID2], env, tmp_path)
    assert r.returncode == 0 and "old" in r.stdout, (r.stdout, r.stderr)


@pytest.mark.slow
def test_each_restore_keeps_its_own_copy(
    named: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, meta = named
    original = meta.read_bytes()
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    first.write_text(json.dumps(_v2(_doc(SID, name="first"))))
    second.write_text(json.dumps(_v2(_doc(SID, name="second"))))
    r1 = _restore(env, first)
    assert r1.returncode == 0, r1.stderr
    after_first = meta.read_bytes()
    r2 = _restore(env, second)
    assert r2.returncode == 0, r2.stderr
    copies = sorted(meta.parent.glob("sessions.json.pre-restore-*.bak"))
    assert [c.read_bytes() for c in copies] == [original, after_first]
    for c in copies:  # each message names the copy it kept
        assert any(str(c) in r.stdout for r in (r1, r2))
    r = run([*tokmon_argv(), "session", "show", SID], env, tmp_path)
    assert "second" in r.stdout
