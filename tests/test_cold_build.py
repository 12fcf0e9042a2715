"""A first scan with no ledger builds the database in a private file beside it (no WAL, no
fsync until done) and moves it into place once complete: another process sees no ledger or
the whole one. Checked on real files against a ledger built the usual way (the ledger file
there first), with a second process's ledger appearing mid-build, build files left behind by
gone processes, and a refresh that fails mid-build.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tokmon.core import ledger
from tokmon.core.engine import Engine, ingest
from tokmon.core.ledger import BUILD_INFIX, LedgerDB, Stage
from tokmon.core.model import UsageRecord
from tokmon.core.rollups import Rollups
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


def _header_wal(p: Path) -> bool:
    """Whether the database file's header says WAL (its write and read versions are 2)."""
    with open(p, "rb") as f:
        return f.read(20)[18:20] == b"\x02\x02"


def test_build_is_published_in_wal_mode(tmp_path: Path) -> None:
    """A build is published as a WAL database already (the ledger's open then has no mode
    to switch, which syncs the whole file), with no log left beside either name, and opens
    as an ordinary ledger with the build's content."""
    build = tmp_path / ("ledger.sqlite3" + BUILD_INFIX + "1-x")
    dest = tmp_path / "ledger.sqlite3"
    db = LedgerDB(build, build=True)
    rec = UsageRecord(1_772_000_000.0, "s", "/p", "claude-opus-4-1", 1, 2, 3, 0, 4, "m:r")
    db.merge([rec])
    assert not _header_wal(build)  # built without a log
    assert db.publish(dest)
    assert _header_wal(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite3"]
    again = LedgerDB(dest)
    assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert again.records() == [rec]
    again.close()


def _row(ts: float, key: str) -> list[object]:
    """A staged row (the record's fields in order, priced: cost, no display cost)."""
    return [ts, "s", "/p", "claude-opus-4-1", 1, 2, 0, 0, 0, key, 0.5, None]


@pytest.mark.parametrize("mib", [1, 500, 2048])
def test_a_build_loads_and_indexes_with_half_its_page_cache(tmp_path: Path, mib: int) -> None:
    """A build's page cache (SQLite's figure, read back from the connection) is half of
    build_cache while the scan loads the first stream, while the later streams are appended
    and while the indexes (the key's, by one sort) and stored sums are made: ~1 MB at 500 MB
    instead of 2 (its peak RSS; docs/performance.md, eleventh and sixteenth sessions). The
    stage's own cache stays apart."""
    size = mib * 2**20
    full = ledger.build_cache(size)
    db = LedgerDB(tmp_path / ("ledger.sqlite3" + BUILD_INFIX + "1-x"), build=True)
    stage = db.stage(size)
    half = db.conn.execute("PRAGMA main.cache_size").fetchone()[0]
    assert full < half < 0 and abs(half * 2 - full) <= 1
    assert db.conn.execute(f"PRAGMA {Stage.SCHEMA}.cache_size").fetchone()[0] == ledger.STAGE_CACHE
    stage.add(Stage.FIRST, [_row(1_772_000_000.0 + i, f"m:{i}") for i in range(3)])
    stage.add((2, 0), [_row(1_772_000_100.0, "m:9")])
    stage.flush()  # (the first stream straight into records, as while a scan runs)
    steps: list[str] = []

    def trace(sql: str) -> None:
        if sql.startswith("PRAGMA main.cache_size="):
            steps.append("full" if sql.endswith(f"={full}") else f"{sql.split('=')[1]}")
        elif sql.startswith("INSERT INTO records"):
            steps.append("insert")
        elif sql.startswith("CREATE INDEX"):
            steps.append("index")
        elif sql.startswith("CREATE UNIQUE INDEX"):
            steps.append("key")

    db.conn.set_trace_callback(trace)
    try:
        assert db.merge_staged(stage) is not None
    finally:
        db.conn.set_trace_callback(None)
        stage.close()
    assert steps == ["key", "index", "index"]  # (every row in records by now)
    assert db.conn.execute("PRAGMA main.cache_size").fetchone()[0] == half
    assert db.conn.execute("SELECT count(*) FROM records").fetchone()[0] == 4
    db.discard()


@POSIX
def test_build_that_leaves_a_log_is_not_published(tmp_path: Path) -> None:
    """Should a build's log outlive its connection (another connection still has the file
    open: its pages would not move with the file), the build is not published but removed,
    log and all: the caller scans the usual way."""
    build = tmp_path / ("ledger.sqlite3" + BUILD_INFIX + "1-x")
    dest = tmp_path / "ledger.sqlite3"
    db = LedgerDB(build, build=True)
    db.merge([UsageRecord(1_772_000_000.0, "s", "/p", "m", 1, 2, 3, 0, 4, "m:r")])
    db._to_wal()
    other = sqlite3.connect(build)
    try:
        assert other.execute("SELECT count(*) FROM records").fetchone()[0] == 1
        assert build.with_name(build.name + "-wal").exists()
        assert not db.publish(dest)
        assert list(tmp_path.iterdir()) == []
    finally:
        other.close()


# ---- the build's direct load: the first stream straight into records while the scan runs -----


# the usage lines of a transcript and a line's text: test_cold_bulk's helpers
from rollups_support import stored_sums  # noqa: E402
from test_cold_bulk import _line, _usage_lines  # noqa: E402


@pytest.fixture(scope="module")
def dup_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A generated corpus whose first file's first usage lines are copied into later files
    under other sessions and cwds (as a resumed session copies them): into the second file
    (the same stream as the first) a tie (same output, other input: the first file's must
    stay); into the last file (a later stream) a tie again, a larger output (wins) and a
    smaller one (loses); into a middle file a tie with a larger output than the first's
    (wins over the first file, and the last file's tie with the first's output loses)."""
    root = tmp_path_factory.mktemp("dups") / "claude"
    generate(root, size_mb=4, seed=23, end=END, days=6)
    files = sorted((root / "projects").rglob("*.jsonl"))
    assert len(files) > 8
    # each response's line in the first file that makes its record: the largest output,
    # the first of equal ones (a response is written as several lines)
    best: dict[str, dict[str, Any]] = {}
    for o in _usage_lines(files[0]):
        k = f"{o['message']['id']}:{o['requestId']}"
        if (
            k not in best
            or o["message"]["usage"]["output_tokens"]
            > (best[k]["message"]["usage"]["output_tokens"])
        ):
            best[k] = o
    src = list(best.values())
    assert len(src) >= 5

    def copy(o: dict[str, Any], sid: str, d_in: int = 0, d_out: int | None = None) -> str:
        c = json.loads(json.dumps(o))
        c["sessionId"], c["cwd"] = sid, f"/resumed/{sid}"
        u = c["message"]["usage"]
        u["input_tokens"] = u.get("input_tokens", 0) + d_in
        if d_out is not None:
            u["output_tokens"] = d_out
        return _line(c)

    out0 = [o["message"]["usage"]["output_tokens"] for o in src[:5]]
    with files[1].open("a", encoding="utf-8") as fh:  # the first stream: a tie
        fh.write(copy(src[0], "tie-same-stream", d_in=7))
    mid = files[len(files) // 2]
    with mid.open("a", encoding="utf-8") as fh:  # a middle stream: beats the first file
        fh.write(copy(src[3], "larger-mid", d_in=3, d_out=out0[3] + 50))
    with files[-1].open("a", encoding="utf-8") as fh:  # the last stream
        fh.write(copy(src[0], "tie-late", d_in=11))
        fh.write(copy(src[1], "larger-late", d_in=1, d_out=out0[1] + 1000))
        fh.write(copy(src[2], "smaller-late", d_in=123456, d_out=0))
        fh.write(copy(src[3], "tie-with-first-late", d_in=5, d_out=out0[3]))
    return root, src[:5]


def _streams(monkeypatch: pytest.MonkeyPatch) -> list[Stage]:
    """Make the engine's scan yield its results as the parallel scan does, in an awkward
    arrival order: the files cut into streams (0, 0) (the workers' tasks, loaded straight
    into the records), (1, 0), (1, 4) (a task taken back), (2, 0) and (2, 2), merged in that
    order, which is file order; the
    later streams' results arrive first, between the first stream's. Returns the stages
    the refresh made (to check the direct load really ran)."""
    real = ingest.scan_all
    stages: list[Stage] = []
    real_init = Stage.__init__

    def init(self: Stage, *a: Any, **k: Any) -> None:
        real_init(self, *a, **k)
        stages.append(self)

    monkeypatch.setattr(Stage, "__init__", init)

    def scan_all(items: list[Any], *a: Any, **k: Any) -> Iterator[Any]:
        got = list(real(items, *a, **k))  # in item order
        n = len(got)
        cuts = [0, n // 3, n // 2, 2 * n // 3, 5 * n // 6, n]
        names = [(0, 0), (1, 0), (1, 4), (2, 0), (2, 2)]
        streams = []
        for (part, seq), lo, hi in zip(names, cuts, cuts[1:], strict=False):
            for r in got[lo:hi]:
                r.part, r.seq = part, seq
            streams.append(got[lo:hi])
        first, later = streams[0], streams[1:]
        while first or any(later):  # a later result, then a first-stream one, in turns
            for s in reversed(later):
                if s:
                    yield s.pop(0)
                    break
            if first:
                yield first.pop(0)

    monkeypatch.setattr(ingest, "scan_all", scan_all)
    return stages


@pytest.mark.parametrize("cache", ["usual", "tiny"])
def test_direct_load_keeps_merge_order(
    dup_corpus: tuple[Path, list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cache: str,
) -> None:
    """The first stream goes straight into the build's records while the later streams'
    results (arriving before and between its own) are staged and merged after it: the
    ledger is the one the usual way builds (records, stored sums, file states, titles,
    meta), with every duplicate decided as in file order. With a tiny page cache the build
    spills pages to its file all along, also while its second reader reads the blocks
    (the spills it cannot make then are left for later, with no wait and no error)."""
    root, src = dup_corpus
    ref = _reference(root, tmp_path / "ref")
    if cache == "tiny":
        monkeypatch.setattr(ledger, "BUILD_CACHE", -64)  # KiB: 16 pages
    stages = _streams(monkeypatch)
    eng = _engine(root, tmp_path / "home")
    ch = eng.refresh()
    monkeypatch.undo()
    (stage,) = stages
    assert stage.direct and stage.loaded == stage.rows and len(stage.streams) == 5
    assert not stage.tables  # (every stream straight into records)
    assert eng.db is not None and ref.db is not None and not eng.db.build
    got, want = _content(eng.db.conn), _content(ref.db.conn)
    assert got == want
    assert _state(eng.db.conn) == _state(ref.db.conn)
    assert ch.new_records == len(want["records"])
    # each duplicate went the way file order says (not arrival order)
    by_key = {r[9]: r for r in got["records"]}
    keys = [f"{o['message']['id']}:{o['requestId']}" for o in src]
    u = [o["message"]["usage"] for o in src]
    assert by_key[keys[0]][4] == u[0].get("input_tokens", 0)  # ties: the first file's line
    assert by_key[keys[0]][1] == src[0]["sessionId"]
    assert (
        by_key[keys[1]][1] == "larger-late" and by_key[keys[1]][5] == u[1]["output_tokens"] + 1000
    )
    assert by_key[keys[2]][4] != u[2].get("input_tokens", 0) + 123456
    assert by_key[keys[3]][1] == "larger-mid"  # beat the first file; the late tie lost to it
    for kind in ("daily", "session", "blocks"):
        assert eng.report(kind).to_json() == ref.report(kind).to_json()


def _state(conn: sqlite3.Connection) -> dict[str, Any]:
    """What else a build must get right: file states, titles, the meta (but the ids)."""
    return {
        "files": sorted(conn.execute("SELECT * FROM files").fetchall()),
        "titles": sorted(conn.execute("SELECT * FROM titles").fetchall()),
        "meta": sorted(
            r for r in conn.execute("SELECT key, value FROM meta") if r[0] not in ("dbid", "wid")
        ),
        "indexes": sorted(
            conn.execute("SELECT name, sql FROM sqlite_master WHERE type='index'").fetchall()
        ),
    }


@pytest.mark.parametrize("where", ["scan", "settle", "sums"])
def test_direct_load_that_fails_scans_the_usual_way(
    dup_corpus: tuple[Path, list[dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """The build's write fails (a full disk) while the scan runs, or after the records were
    committed to it, or its load's rows do not add up when the dedup is settled: the build
    is dropped (its one transaction rolled back, its file gone) and the refresh reads
    everything again into the ledger file: exact, nothing doubled."""
    root, _ = dup_corpus
    ref = _reference(root, tmp_path / "ref")
    failed: list[str] = []

    def full() -> None:
        if not failed:  # once: the retry goes through
            failed.append(where)
            raise sqlite3.OperationalError("database or disk is full")

    stages = _streams(monkeypatch)
    monkeypatch.setattr(Stage, "BATCH", 4)  # rows go to the database every 16 (HOLD 4)
    if where == "scan":  # the build's file cannot grow while the scan runs
        real_flush = Stage._flush

        def flush(self: Stage, stream: tuple[int, ...], n: int) -> None:
            real_flush(self, stream, n)
            if self.direct and self.loaded:
                full()

        monkeypatch.setattr(Stage, "_flush", flush)
    if where == "sums":
        real = Rollups.rebuild_sql

        def rebuild_sql(self: Rollups, *a: Any, **k: Any) -> None:
            if len(a) > 3 and a[3] is not None:  # the load's (with its cells from the rows)
                full()
            real(self, *a, **k)

        monkeypatch.setattr(Rollups, "rebuild_sql", rebuild_sql)
    if where == "settle":  # the load's rows do not add up (settle's own check)
        real_settle = Stage.settle

        def settle(self: Stage) -> int:
            if not failed:
                failed.append(where)
                self.rows += 1  # (one row more said than appended)
            return real_settle(self)

        monkeypatch.setattr(Stage, "settle", settle)
    eng = _engine(root, tmp_path / "home")
    ch = eng.refresh()
    monkeypatch.undo()
    assert failed == [where]
    assert stages and stages[0].direct and stages[0].loaded > 0
    assert not stages[-1].direct  # the second try: the usual way, into the ledger file
    assert _builds(eng) == [] and eng.ledger_file.is_file()
    assert eng.db is not None and ref.db is not None and not eng.db.build
    assert _content(eng.db.conn) == _content(ref.db.conn)
    assert ch.new_records == len(_content(ref.db.conn)["records"])
    assert eng.report("daily").to_json() == ref.report("daily").to_json()


@pytest.mark.parametrize("block_seconds", [18000.0, 3600.5])
def test_block_spans_read_beside_thestored_sums(tmp_path: Path, block_seconds: float) -> None:
    """The stored sums built with the blocks' spans read by a second connection (a thread)
    equal those built by one connection, and the Python build over the same records."""
    path = tmp_path / "l.sqlite3"
    db = LedgerDB(path)
    recs = _tricky_records()
    db.merge(recs)
    stored = db.records()
    assert len(stored) == len(recs)
    py = sqlite3.connect(tmp_path / "py.sqlite3")
    Rollups(py, lambda *a, **k: [], block_seconds).rebuild({"claude": stored})
    want = stored_sums(py)
    reader = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
    )
    try:
        with db.write() as conn:
            ru = Rollups(conn, lambda *a, **k: [], block_seconds)
            ru.rebuild_sql("claude", db.records_sql(), reader)
    finally:
        reader.close()
    got = stored_sums(db.conn)
    assert len(want["rollup_block"]) > 3
    assert got == want
    with db.write() as conn:  # and without the reader: the same
        Rollups(conn, lambda *a, **k: [], block_seconds).rebuild_sql("claude", db.records_sql())
    assert stored_sums(db.conn) == want


def _tricky_records() -> list[UsageRecord]:
    """Records with what block sums must get right: equal times (costs summed in (ts, key)
    order), several models with equal first times, the synthetic model, times on bucket and
    block edges, gaps longer than a block."""
    out: list[UsageRecord] = []
    t0 = 1_772_000_000.0 - 1_772_000_000.0 % 3600
    models = ["claude-opus-4-1", "claude-sonnet-4-5", "<synthetic>", "claude-haiku-4-5"]
    for i in range(700):
        ts = t0 + (i // 3) * 97.0
        if i % 50 == 0:
            ts = t0 + (i // 50) * 18000.0  # on a block end
        if i % 173 == 0:
            t0 += 7 * 3600
        out.append(
            UsageRecord(
                ts,
                f"s{i % 5}",
                "" if i % 9 == 0 else f"/p/{i % 3}",
                models[i % 4],
                i % 97,
                (i * 31) % 2000,
                (i * 7) % 500,
                (i * 3) % 100,
                (i * 101) % 90000,
                f"k{(i * 7919) % 100000:05d}",
                (i % 17) * 3.1e-6 + ((i * 7919) % 1000) / 3e7,
                None,
            )
        )
    return out


def test_build_needs_no_ledger_lock(corpus: Path, tmp_path: Path) -> None:
    """The ledger lock is held elsewhere while a first scan builds: the build is private,
    so it is still loaded and published (saved, not an in-memory fallback), exact."""
    from tokmon.fsutil import FileLock

    eng = _engine(corpus, tmp_path / "home")
    eng.ledger_file.parent.mkdir(parents=True)
    with FileLock(eng.ledger_file.with_suffix(".lock"), timeout=1):
        ch = eng.refresh()
    assert not [w for w in ch.warnings if "lock" in w], ch.warnings
    assert eng.ledger_file.is_file() and _builds(eng) == []
    assert eng.db is not None and not eng.db.build and eng.data_version() is not None
    ref = _reference(corpus, tmp_path / "ref")
    assert ref.db is not None
    assert _content(eng.db.conn) == _content(ref.db.conn)


_IMPORTS = r"""
import sys, threading
from pathlib import Path
from tokmon.core.engine import Engine
from tokmon.paths import get_paths
root, home = Path(sys.argv[1]), sys.argv[2]
assert "tokmon.core.rows" not in sys.modules
eng = Engine(roots=[root / "projects"], paths=get_paths({"TOKMON_HOME": home}))
eng.refresh()
assert eng.db is not None and not eng.db.build and eng.ledger_file.is_file()
print(sorted(n for n in ("tokmon.core.rows",) if n in sys.modules))
print([t.name for t in threading.enumerate() if t.name.startswith("tokmon-")])
eng.close()
"""


def test_build_imports_the_report_modules_meanwhile(corpus: Path, tmp_path: Path) -> None:
    """A first scan's build imports what the report that follows needs on a thread while
    its SQL runs (a fresh interpreter: nothing imported before); no thread outlives it."""
    out = subprocess.run(
        [sys.executable, "-c", _IMPORTS, str(corpus), str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["['tokmon.core.rows']", "[]"]
