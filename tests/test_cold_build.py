"""A first scan with no ledger builds the database in a private file beside it (no WAL, no
fsync until done) and moves it into place once complete: another process sees no ledger or
the whole one. Checked on real files against a ledger built the usual way (the ledger file
there first), with a second process's ledger appearing mid-build, build files left behind by
gone processes, and a refresh that fails mid-build.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tokmon.core.engine import Engine
from tokmon.core.ledger import BUILD_INFIX, LedgerDB
from tokmon.core.model import UsageRecord
from tokmon.demo import generate
from tokmon.paths import get_paths

END = datetime(2026, 3, 1, 17, 0, tzinfo=timezone.utc)
POSIX = pytest.mark.skipif(os.name == "nt", reason="POSIX modes and pids")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("build") / "claude"
    generate(root, size_mb=3, seed=11, end=END, days=8)
    return root


def _engine(root: Path, home: Path) -> Engine:
    return Engine(roots=[root / "projects"], paths=get_paths({"TOKMON_HOME": str(home)}))


def _builds(eng: Engine) -> list[Path]:
    d = eng.ledger_file.parent
    return sorted(p for p in d.iterdir() if BUILD_INFIX in p.name) if d.is_dir() else []


def _content(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Records and stored sums (what a report reads), in a fixed order."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'rollup_%'"
            " AND name != 'rollup_meta'"
        )
    ]
    out = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
    out["records"] = conn.execute(
        "SELECT ts, session, project, model, input, output, cc, c1h, cr, key, cost, display_cost"
        " FROM records ORDER BY key"
    ).fetchall()
    out["files"] = sorted(conn.execute("SELECT path, size, off FROM files").fetchall())
    return out


def _reference(root: Path, home: Path) -> Engine:
    """The usual way: the ledger file exists (empty) before the first scan."""
    ref = _engine(root, home)
    assert ref.pending_bytes() > 0  # outside a refresh: opens, so creates, the ledger
    assert ref.ledger_file.exists()
    ref.refresh()
    assert ref.db is not None and not ref.db.build
    return ref


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_first_scan_builds_privately_then_publishes(corpus: Path, tmp_path: Path) -> None:
    eng = _engine(corpus, tmp_path / "home")
    seen: list[list[Path]] = []

    def progress(done: int, total: int) -> None:
        if not seen:
            assert not eng.ledger_file.exists()  # nobody sees a half-built ledger
            seen.append(_builds(eng))

    ch = eng.refresh(progress)
    assert seen and len(seen[0]) == 1
    build = seen[0][0]
    assert build.name.startswith(eng.ledger_file.name + BUILD_INFIX)
    assert not build.exists() and _builds(eng) == []
    assert eng.ledger_file.is_file() and eng.db is not None and not eng.db.build
    if os.name != "nt":
        assert _mode(eng.ledger_file) == 0o600
    ref = _reference(corpus, tmp_path / "ref")
    assert ref.db is not None
    assert _content(eng.db.conn) == _content(ref.db.conn)
    assert ch.new_records == len(_content(ref.db.conn)["records"]) > 0
    # the published file is an ordinary ledger: another engine reads it, nothing to rescan
    eng.close()
    again = _engine(corpus, tmp_path / "home")
    ch2 = again.refresh()
    assert ch2.files_read == 0 and ch2.new_records == 0
    assert again.report("daily").to_json() == ref.report("daily").to_json()
    assert again.db is not None
    assert again.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_build_loses_the_race_to_another_process(corpus: Path, tmp_path: Path) -> None:
    """The ledger appears while this process builds (another one published first, and
    merged a record of its own): the build is dropped, what that ledger lacks is read."""
    home = tmp_path / "home"
    eng = _engine(corpus, home)
    other_rec = UsageRecord(1_772_000_000.0, "other", "/o", "claude-opus-4-1", 1, 2, 0, 0, 0, "x:y")
    done: list[bool] = []

    def progress(n: int, total: int) -> None:
        if not done:
            done.append(True)
            other = _engine(corpus, home)  # a second process, also with no ledger yet
            other.refresh()
            assert other.ledger_file.exists()
            other.close()
            db = LedgerDB(eng.ledger_file)
            db.merge([other_rec])  # (its stored sums are rebuilt on their next use)
            db.close()

    eng.refresh(progress)
    assert done and _builds(eng) == []
    assert eng.db is not None and not eng.db.build
    ref = _reference(corpus, tmp_path / "ref")
    assert ref.db is not None
    got, want = _content(eng.db.conn), _content(ref.db.conn)
    assert [r for r in got["records"] if r[9] != "x:y"] == want["records"]
    assert any(r[9] == "x:y" for r in got["records"])
    assert got["files"] == want["files"]
    totals = eng.report("daily").to_json()["totals"]
    want_totals = ref.report("daily").to_json()["totals"]
    assert totals["outputTokens"] == want_totals["outputTokens"] + 2


@POSIX
def test_build_files_of_gone_processes_are_removed(corpus: Path, tmp_path: Path) -> None:
    eng = _engine(corpus, tmp_path / "home")
    data = eng.ledger_file.parent
    data.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        stale = data / f"{eng.ledger_file.name}{BUILD_INFIX}{gone.pid}-0badc0de"
        stale.write_bytes(b"half a database")  # what a killed first scan leaves
        other = data / f"{eng.ledger_file.name}{BUILD_INFIX}{live.pid}-0000beef"
        other.write_bytes(b"")  # a live process's build in progress
        unrelated = data / "ledger-other.sqlite3.bak"
        unrelated.write_bytes(b"x")
        eng.refresh()
        assert not stale.exists()
        assert other.exists() and unrelated.exists()
        ref = _reference(corpus, tmp_path / "ref")
        assert eng.db is not None and ref.db is not None
        assert _content(eng.db.conn) == _content(ref.db.conn)
    finally:
        live.kill()
        live.wait()


def test_refresh_failing_mid_build_leaves_no_file(corpus: Path, tmp_path: Path) -> None:
    eng = _engine(corpus, tmp_path / "home")

    def progress(n: int, total: int) -> None:
        assert _builds(eng)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        eng.refresh(progress)
    assert _builds(eng) == [] and not eng.ledger_file.exists()
    eng.refresh()
    ref = _reference(corpus, tmp_path / "ref")
    assert eng.db is not None and ref.db is not None
    assert _content(eng.db.conn) == _content(ref.db.conn)


def test_build_that_cannot_be_linked_scans_into_the_ledger(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without hard links: the build is dropped once and the refresh goes
    the usual way (the ledger file itself), with the same content."""
    if os.name == "nt":
        pytest.skip("publishes by rename on Windows")

    def no_link(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    eng = _engine(corpus, tmp_path / "home")
    eng.refresh()
    assert _builds(eng) == [] and eng.ledger_file.is_file()
    assert eng.db is not None and not eng.db.build
    monkeypatch.undo()
    ref = _reference(corpus, tmp_path / "ref")
    assert ref.db is not None
    assert _content(eng.db.conn) == _content(ref.db.conn)
