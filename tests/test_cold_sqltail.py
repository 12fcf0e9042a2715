"""The cold build's SQLite work (tenth session): the stored sums' cells summed in two halves
of the records, one on each connection, against the one-connection and the Python builds;
and the build's dedup of a response copied, with equal outputs, into every scan stream.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.test_cold_build import END, _content, _engine, _reference, _streams, _tricky_records
from tokmon.core.ledger import COLS, LedgerDB, Stage
from tokmon.core.model import UsageRecord
from tokmon.core.rollups import Rollups
from tokmon.demo import generate


def _sums(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'rollup_%'"
            " AND name != 'rollup_meta'"
        )
    ]
    return {n: sorted(conn.execute(f"SELECT * FROM {n}").fetchall()) for n in sorted(names)}


def _dense_records() -> list[UsageRecord]:
    """1,500 records in few cells (3 sessions, 2 models, 2 projects over 6 hours): ~15 a
    cell; costs with half-picodollar ties and times on bucket edges."""
    t0 = 1_772_100_000.0 - 1_772_100_000.0 % 3600
    out = []
    for i in range(1500):
        ts = t0 + (i * 7919 % 1500) * 14.4
        if i % 97 == 0:
            ts = t0 + (i % 24) * 900.0  # on a bucket edge
        cost = (i % 13) * 2.9e-6 + (i * 31 % 1000) / 7e7
        if i % 11 == 0:
            cost = (i + 0.5) / 1e12
        out.append(
            UsageRecord(
                ts,
                f"d{i % 3}",
                "" if i % 10 == 0 else f"/q/{i % 2}",
                ("claude-opus-4-1", "claude-sonnet-4-5")[i % 2],
                i % 89,
                (i * 37) % 3000,
                (i * 11) % 700,
                (i * 5) % 90,
                (i * 103) % 80000,
                f"d{i:05d}",
                cost,
                None,
            )
        )
    return out


def _shuffled_ledger(path: Path) -> tuple[LedgerDB, list[UsageRecord]]:
    """A ledger of the tricky and the dense records in a shuffled order: a cell's records
    lie at rowids far apart, so a rowid split cuts cells in two."""
    recs = _tricky_records() + _dense_records()
    random.Random(5).shuffle(recs)
    db = LedgerDB(path)
    with db.write() as conn:  # in this order (a merge would sort them)
        conn.executemany(f"INSERT INTO records ({COLS}) VALUES ({','.join('?' * 12)})", recs)
    return db, db.records()


def _reader(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)


@pytest.mark.parametrize("block_seconds", [18000.0, 3600.5, 1800.0])
def test_cells_in_two_halves_equal_one_group_by(tmp_path: Path, block_seconds: float) -> None:
    """Cells summed in two rowid halves (the second on another connection, in a thread) and
    added up equal the cells of one GROUP BY and of the Python build, and so does every
    table summed from them, at any split (empty halves included); with blocks kept or not
    (1800 s: the thread sums the cells only)."""
    path = tmp_path / "l.sqlite3"
    db, stored = _shuffled_ledger(path)
    assert len(stored) == 2200
    py = sqlite3.connect(tmp_path / "py.sqlite3")
    Rollups(py, lambda *a, **k: [], block_seconds).rebuild({"claude": stored})
    want = _sums(py)
    assert len(want["rollup_cell"]) > 100
    with db.write() as conn:
        Rollups(conn, lambda *a, **k: [], block_seconds).rebuild_sql("claude", db.records_sql())
    assert _sums(db.conn) == want
    straddling = 0
    for share in (0.0, 0.3, 0.5, 0.77, 1.0):
        lo, hi = db.records_halves(share=share)
        a = {r[1:5] for r in db.conn.execute("SELECT ?, " + _cell_key(lo), ("claude",))}
        b = {r[1:5] for r in db.conn.execute("SELECT ?, " + _cell_key(hi), ("claude",))}
        straddling += len(a & b)
        n_lo = db.conn.execute(f"SELECT count(*) FROM ({lo})").fetchone()[0]
        n_hi = db.conn.execute(f"SELECT count(*) FROM ({hi})").fetchone()[0]
        assert n_lo + n_hi == 2200
        assert (n_lo == 0) == (share == 0.0) and (n_hi == 0) == (share == 1.0)
        reader = _reader(path)
        try:
            with db.write() as conn:
                ru = Rollups(conn, lambda *a, **k: [], block_seconds)
                ru.rebuild_sql("claude", db.records_sql(), reader, halves=(lo, hi))
        finally:
            reader.close()
        assert _sums(db.conn) == want, share
    assert straddling > 100  # cells cut in two: their halves were added up


def _cell_key(source: str) -> str:
    return (
        "CAST(ts / 900 AS INTEGER), model, session, project FROM ("
        + source
        + ") GROUP BY 2, 3, 4, 5"
    )


def test_cells_half_that_fails_raises(tmp_path: Path) -> None:
    """An error in the thread's half is raised by the build (no hang, nothing half-made
    committed), and an error in this connection's half waits for the thread first."""
    path = tmp_path / "l.sqlite3"
    db, _ = _shuffled_ledger(path)
    with db.write() as conn:
        Rollups(conn, lambda *a, **k: [], 18000.0).rebuild_sql("claude", db.records_sql())
    before = _sums(db.conn)
    lo, hi = db.records_halves()
    for halves in (
        (lo, hi.replace("FROM records", "FROM no_such_table")),
        (lo.replace("FROM records", "FROM no_such_table"), hi),
    ):
        reader = _reader(path)
        try:
            with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
                with db.write() as conn:
                    ru = Rollups(conn, lambda *a, **k: [], 18000.0)
                    ru.rebuild_sql("claude", db.records_sql(), reader, halves=halves)
        finally:
            reader.close()
        assert _sums(db.conn) == before  # rolled back


# ---- a response copied into every stream, with equal outputs --------------------------------


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


@pytest.fixture(scope="module")
def tie_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A generated corpus where responses of the first file, and of a file of the second
    stream, are copied with the same output (other sessions, cwds, inputs) into a file of
    every later stream of :func:`tests.test_cold_build._streams`; one of them twice in one
    file. Returns the root and the copied responses' keys."""
    root = tmp_path_factory.mktemp("ties") / "claude"
    generate(root, size_mb=4, seed=31, end=END, days=6)
    files = sorted((root / "projects").rglob("*.jsonl"), key=str)
    n = len(files)
    assert n >= 12
    # one file in each stream of _streams (cut at n/3, n/2, 2n/3, 5n/6)
    picks = [0, n // 3, (n // 2 + 2 * n // 3) // 2, (2 * n // 3 + 5 * n // 6) // 2, n - 1]
    keys: list[str] = []

    def responses(p: Path, k: int) -> list[dict[str, Any]]:
        best: dict[str, dict[str, Any]] = {}
        for raw in p.read_text(encoding="utf-8").splitlines():
            try:
                o = json.loads(raw)
            except ValueError:
                continue
            msg = o.get("message") if isinstance(o, dict) else None
            if not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
                continue
            if not msg.get("id") or not o.get("requestId"):
                continue
            key = f"{msg['id']}:{o['requestId']}"
            out = msg["usage"].get("output_tokens", 0)
            if key not in best or out > best[key]["message"]["usage"].get("output_tokens", 0):
                best[key] = o
        got = list(best.values())[:k]
        assert len(got) == k
        return got

    for src_i, src in ((0, responses(files[picks[0]], 3)), (1, responses(files[picks[1]], 2))):
        for j, o in enumerate(src):
            keys.append(f"{o['message']['id']}:{o['requestId']}")
            for t, i in enumerate(picks[src_i + 1 :]):
                c = json.loads(json.dumps(o))
                sid = f"copy-{src_i}-{j}-{t}"
                c["sessionId"], c["cwd"] = sid, f"/copied/{sid}"
                u = c["message"]["usage"]
                u["input_tokens"] = u.get("input_tokens", 0) + 1 + t
                with files[i].open("a", encoding="utf-8") as fh:
                    fh.write(_line(c))
                    if j == 0 and t == 1:  # twice in one file: the first line stays
                        u["input_tokens"] += 1000
                        fh.write(_line(c))
    return root, keys


def test_equal_outputs_in_every_stream_keep_file_order(
    tie_corpus: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ties across all five streams (the later ones arriving first): each copied response
    keeps its first file's line, at its first file's place in the table (rowid order, which
    orders records of equal times), and the stored sums and reports are the usual build's."""
    root, keys = tie_corpus
    ref = _reference(root, tmp_path / "ref")
    stages = _streams(monkeypatch)
    eng = _engine(root, tmp_path / "home")
    eng.refresh()
    monkeypatch.undo()
    (stage,) = stages
    assert stage.direct and stage.loaded > 0 and len(stage.tables) == 4
    assert eng.db is not None and ref.db is not None and not eng.db.build
    got, want = _content(eng.db.conn), _content(ref.db.conn)
    assert got == want
    order = "SELECT key, session FROM records ORDER BY rowid"
    assert eng.db.conn.execute(order).fetchall() == ref.db.conn.execute(order).fetchall()
    sessions = dict(eng.db.conn.execute("SELECT key, session FROM records"))
    assert len(keys) == 5
    for k in keys:  # the original line, not a copy
        assert not sessions[k].startswith("copy-"), k
    for kind in ("daily", "session", "blocks"):
        assert eng.report(kind).to_json() == ref.report(kind).to_json()


# ---- the stage's batches without display_cost --------------------------------------------


def _rows(stream: int, n: int, display: dict[int, float]) -> list[list[object]]:
    """n rows of one stream, keys shared across streams (duplicates with equal and other
    outputs), display_cost given for the row numbers in ``display`` (else None)."""
    out: list[list[object]] = []
    for i in range(n):
        out.append(
            [
                1_772_000_000.0 + i * 60.0 + stream,
                f"s{stream}-{i % 4}",
                f"/p/{stream}",
                "claude-sonnet-4-5",
                i % 50,
                (i * 7 + stream * (i % 3)) % 40,
                i % 9,
                0,
                i * 3,
                f"k{i * 3 % 97:03d}" if i % 5 == 0 else f"k-{stream}-{i}",
                i * 1e-6,
                display.get(i),
            ]
        )
    return out


@pytest.mark.parametrize("direct", [False, True])
def test_stage_batches_with_and_without_display_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    """Batches where no row has a display cost go without it (a NULL in the statement),
    batches with one (even a single 0.0) with it: the records are those of the dedup rule
    over the rows in merge order (largest output, the first of equal ones, at its first
    place), display costs included, directly loaded or staged."""
    if direct:
        db = LedgerDB(tmp_path / "b.sqlite3", build=True)
    else:
        db = LedgerDB(tmp_path / "l.sqlite3")
    streams = {
        (0, 0): _rows(0, 150, {3: 0.25, 70: 0.0}),
        (1, 0): _rows(1, 90, {}),
        (2, 0): _rows(2, 200, {i: i / 7 for i in range(100, 140)}),
    }
    monkeypatch.setattr(Stage, "BATCH", 8)  # rows go to the database every 128
    stage = db.stage()
    assert stage.direct == direct
    # arrival in pieces, a later stream first
    order = [(2, 0), (0, 0), (1, 0), (0, 0), (2, 0), (1, 0), (0, 0), (2, 0), (1, 0)]
    cursor = {s: 0 for s in streams}
    for s in order:
        rows = streams[s]
        step = len(rows) // 3 + 1
        stage.add(s, [list(r) for r in rows[cursor[s] : cursor[s] + step]])
        cursor[s] += step
    assert all(cursor[s] >= len(streams[s]) for s in streams)
    got = db.merge_staged(stage)
    stage.close()
    assert got is not None
    want: dict[str, list[object]] = {}  # insertion order: first place of each key
    for s in sorted(streams):
        for r in streams[s]:
            k = str(r[9])
            if k not in want or int(r[5]) > int(want[k][5]):  # type: ignore[call-overload]
                want[k] = r  # (a key already there keeps its place)
    have = [list(r) for r in db.conn.execute(f"SELECT {COLS} FROM records ORDER BY rowid")]
    assert have == list(want.values())
    assert sum(r[11] is not None for r in have) > 20
