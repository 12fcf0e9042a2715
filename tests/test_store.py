"""The ledger database shared by engines: nothing counted twice, other writers noticed, files
private, a broken database kept aside with its WAL."""

from __future__ import annotations

import sqlite3
import stat
import sys
from pathlib import Path

import pytest
from conftest import assistant_line, run_tokmon, write_lines

from tokmon.core.engine import Engine
from tokmon.core.ledger import LedgerDB
from tokmon.core.model import UsageRecord
from tokmon.paths import get_paths


def _engine(root: Path, home: Path) -> Engine:
    return Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(home)}))


def _lines(prefix: str, n: int, out: int = 3, ts: str = "2026-11-01T10:00:00.000Z") -> list[str]:
    return [
        assistant_line(ts, msg_id=f"{prefix}{i}", req_id=f"r{prefix}{i}", inp=7, out=out)
        for i in range(n)
    ]


def _stored_keys(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [k for (k,) in con.execute("SELECT key FROM records")]
    finally:
        con.close()


def test_two_engines_reading_the_same_bytes_count_them_once(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    f = root / "p" / "a.jsonl"
    write_lines(f, _lines("a", 4))
    home = tmp_path / "home"
    one, two = _engine(root, home), _engine(root, home)
    one.refresh()
    two.refresh()
    write_lines(f, _lines("b", 3))
    # both read the same new bytes (neither has seen the other's offsets yet)
    assert one.refresh().new_records == 3
    got = two.refresh()
    assert got.new_records == 0 and got.files_read <= 1
    keys = _stored_keys(one.ledger_file)
    assert len(keys) == len(set(keys)) == 7
    for e in (one, two):
        assert e.report("daily", timezone="UTC").to_json()["totals"]["inputTokens"] == 7 * 7


def test_largest_output_wins_across_engines(tmp_path: Path) -> None:
    """The dedup rule is decided against the database: a streamed response's larger output
    read by another engine replaces the first, ties keep the first."""
    root = tmp_path / "projects"
    home = tmp_path / "home"
    write_lines(root / "p" / "a.jsonl", _lines("m", 1, out=5))
    one = _engine(root, home)
    one.refresh()
    two = _engine(root, home)
    write_lines(root / "q" / "b.jsonl", _lines("m", 1, out=9))  # same message and request
    two.refresh()
    assert one.refresh().changed_sessions  # noticed the other engine's replacement
    for e in (one, two, _engine(root, home)):
        e.refresh()
        assert e.report("daily", timezone="UTC").to_json()["totals"]["outputTokens"] == 9


def test_another_writer_is_noticed_and_versions_follow(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    home = tmp_path / "home"
    write_lines(root / "p" / "a.jsonl", _lines("a", 2))
    reader = _engine(root, home)
    reader.refresh()
    v1 = reader.data_version()
    assert v1 is not None and not reader.store_changed()
    writer = _engine(root, home)
    write_lines(root / "p" / "b.jsonl", _lines("b", 1))
    writer.refresh()
    assert reader.store_changed()
    got = reader.refresh()
    assert got.changed_sessions and got.files_read == 0  # the other engine read it
    assert reader.data_version() not in (None, v1)
    assert reader.data_version() == writer.data_version()
    assert reader.report("daily", timezone="UTC").to_json()["totals"]["inputTokens"] == 21


def test_merge_returns_the_deltas_of_what_changed(tmp_path: Path) -> None:
    db = LedgerDB(tmp_path / "l.sqlite3")

    def rec(key: str, out: int) -> UsageRecord:
        return UsageRecord(1.8e9, "s", "/p", "m", 1, out, 0, 0, 0, key, 0.0, None)

    try:
        deltas, _ = db.merge([rec("a", 1), rec("b", 2), rec("a", 3), rec("b", 2)])
        assert [(o, n.key, n.output_tokens) for o, n in deltas] == [(None, "a", 3), (None, "b", 2)]
        deltas, _ = db.merge([rec("a", 3), rec("b", 1), rec("c", 0)])
        assert [(n.key, n.output_tokens) for _, n in deltas] == [("c", 0)]
        deltas, _ = db.merge([rec("a", 4)])
        assert [(o.output_tokens if o else None, n.output_tokens) for o, n in deltas] == [(3, 4)]
        assert sorted(r.output_tokens for r in db.records()) == [0, 2, 4]
    finally:
        db.close()


def test_poison_is_refused_on_the_way_in_and_skipped_on_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    db = LedgerDB(path)
    bad = UsageRecord(1.8e9, "s", "/p", "m", 10**15, 1, 0, 0, 0, "k", 0.0, None)
    with pytest.raises(sqlite3.IntegrityError):
        db.merge([bad])
    db.merge([bad._replace(input_tokens=1, key="ok")])
    db.close()
    con = sqlite3.connect(path)  # something else writes around the constraints
    with con:
        con.execute("PRAGMA ignore_check_constraints = ON")
        con.execute(
            "INSERT INTO records (ts, session, project, model, input, output, cc, c1h, cr, key,"
            " cost, display_cost) VALUES (9e12, 's', '/p', 'm', 1, 1, 0, 0, 0, 'late', 0, NULL)"
        )
    con.close()
    db = LedgerDB(path)
    try:
        assert [r.key for r in db.records()] == ["ok"]
    finally:
        db.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_database_and_its_wal_are_private(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    write_lines(root / "p" / "a.jsonl", _lines("a", 2))
    e = _engine(root, tmp_path / "home")
    e.refresh()  # the connection stays open: -wal and -shm exist
    side = [e.ledger_file.with_name(e.ledger_file.name + s) for s in ("-wal", "-shm")]
    for p in [e.ledger_file, *side]:
        assert p.exists() and stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE(e.ledger_file.parent.stat().st_mode) == 0o700


def test_corrupt_database_is_kept_aside_with_its_wal(
    tmp_path: Path, env: dict[str, str], tokmon_home: Path
) -> None:
    proj = tmp_path / "claude" / "projects" / "p"
    write_lines(proj / "a.jsonl", _lines("a", 3))
    e = {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    ok = run_tokmon(["daily", "--json"], e)
    assert ok.returncode == 0, ok.stderr
    db = next((tokmon_home / "data").glob("ledger-*.sqlite3"))
    db.write_bytes(b"not a database at all " * 50)
    wal = db.with_name(db.name + "-wal")
    wal.write_bytes(b"a stale write-ahead log")
    r = run_tokmon(["daily", "--json"], e)
    assert r.returncode == 0 and r.stdout == ok.stdout
    notes = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(notes) == 1 and "rebuilding" in notes[0], r.stderr
    kept = [p for p in db.parent.iterdir() if p.name.startswith(db.name + ".corrupt-")]
    main = [p for p in kept if not p.name.endswith(("-wal", "-shm"))]
    assert len(main) == 1 and main[0].name in notes[0]
    assert main[0].read_bytes() == b"not a database at all " * 50
    assert main[0].with_name(main[0].name + "-wal").read_bytes() == b"a stale write-ahead log"


def test_recent_projects_come_from_the_stored_sums_without_records(tmp_path: Path) -> None:
    """The server's workspace project: sessions' projects by last activity, answered from the
    stored sums (no record loaded), equal to the answer from the records."""
    root = tmp_path / "projects"
    sessions = [  # (session, its cwds in time order, its times)
        ("aaaaaaaa-0000-4000-8000-000000000001", ["/w/old"], ["2026-11-01T10:00:00.000Z"]),
        ("aaaaaaaa-0000-4000-8000-000000000002", ["/w/a", "/w/b"],
         ["2026-11-02T10:00:00.000Z", "2026-11-02T11:00:00.000Z"]),
        ("aaaaaaaa-0000-4000-8000-000000000003", ["/w/a", ""],
         ["2026-11-03T10:00:00.000Z", "2026-11-04T09:00:00.000Z"]),
    ]  # fmt: skip
    for sid, cwds, times in sessions:
        write_lines(
            root / "p" / f"{sid}.jsonl",
            [
                assistant_line(t, msg_id=f"{sid}{i}", req_id=f"r{sid}{i}", session=sid, cwd=c)
                for i, (c, t) in enumerate(zip(cwds, times, strict=True))
            ],
        )
    eng = _engine(root, tmp_path / "home")
    eng.refresh()
    eng._sorted = None
    got = eng.recent_projects()
    assert eng._sorted is None  # no record was loaded for it
    # session 3 (cwd /w/a, active last on the 4th), then session 2's latest cwd, then the oldest
    assert got == ["/w/a", "/w/b", "/w/old"]
    eng.record_filter = lambda r: True  # the stored sums cannot answer: the records do
    assert eng.recent_projects() == got
