"""Opening an older-schema (v1) file migrates it and leaves a backup behind."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tokmon.metadata.store import MetadataStore

FIXTURE = Path(__file__).parent / "fixtures" / "metadata_v1.json"
A = "9e953218-585f-4692-89df-9e0747a31c68"
B = "5ed31c36-bca8-40fd-8d24-f1a1f0af7901"
C = "4379d1bf-ccb1-414e-a856-9791b73f3af2"


def _install(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    target = data / "sessions.json"
    shutil.copyfile(FIXTURE, target)
    return target


def test_v1_fixture_migrates_with_backup(tmp_path: Path) -> None:
    target = _install(tmp_path)
    store = MetadataStore(target)
    records = store.all()

    backup = target.with_name("sessions.json.v1.bak")
    assert backup.read_bytes() == FIXTURE.read_bytes()
    assert store.last_migration_backup == backup
    if os.name != "nt":
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        assert stat.S_IMODE(target.stat().st_mode) == 0o600

    on_disk = orjson.loads(target.read_bytes())
    assert on_disk["_meta"] == {"1": {"schemaVersion": 2}}
    assert "_default" not in on_disk

    assert set(records) == {A, B, C}  # duplicate row and id-less row dropped
    a, b, c = records[A], records[B], records[C]
    assert a["name"] == "Blog redesign"
    assert a["tags"] == ["next-js", "web"]  # comma string -> normalised, deduped, sorted
    assert a["description"] == "Moving the blog to Next 14"
    assert a["createdAt"] == "2024-06-10T06:13:20.500Z" == a["updatedAt"]
    assert b["name"] == "blog REDESIGN (2)"  # v1 allowed duplicate names; v2 does not
    assert b["tags"] == ["c", "refactor"]  # "C++" sanitised
    assert b["description"] is None
    assert b["createdAt"] == "2024-06-10T07:13:20.000Z"
    assert c["name"] is None and c["tags"] == [] and c["description"] == "scratch session"

    # the migrated store is fully usable and not migrated twice
    store.update(C, name="scratch", add_tags=["tmp"])
    assert MetadataStore(target).get(C)["tags"] == ["tmp"]
    assert list(target.parent.glob("sessions.json.v1*.bak")) == [backup]


def test_second_migration_keeps_first_backup(tmp_path: Path) -> None:
    target = _install(tmp_path)
    MetadataStore(target).all()
    shutil.copyfile(FIXTURE, target)  # e.g. the user restored the old file by hand
    MetadataStore(target).update(A, add_tags=["again"])
    backups = sorted(target.parent.glob("sessions.json.v1*.bak"))
    assert len(backups) == 2
    assert all(b.read_bytes() == FIXTURE.read_bytes() for b in backups)
    assert MetadataStore(target).get(A)["tags"] == ["again", "next-js", "web"]


def test_restore_accepts_v1_backup(tmp_path: Path) -> None:
    store = MetadataStore(tmp_path / "data" / "sessions.json")
    store.update("zzz", name="temp")
    store.restore(FIXTURE)
    assert set(store.all()) == {A, B, C}
    assert orjson.loads(store.path.read_bytes())["_meta"]["1"]["schemaVersion"] == 2


def test_concurrent_openers_migrate_once(tmp_path: Path) -> None:
    if os.name == "nt":
        pytest.skip("uses several processes started at once; covered by the POSIX run")
    target = _install(tmp_path)
    code = (
        "import sys; from pathlib import Path; from tokmon.metadata.store import MetadataStore;"
        "s = MetadataStore(Path(sys.argv[1])); print(len(s.all()))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE)
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert outs == [b"3"] * 4
    assert [p.name for p in target.parent.glob("sessions.json.v1*.bak")] == ["sessions.json.v1.bak"]
