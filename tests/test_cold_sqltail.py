"""The cold build's SQLite work (tenth session): the build's dedup of a response copied, with
equal outputs, into every scan stream; the stage's batches with and without display costs.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.test_cold_build import END, _content, _engine, _reference, _streams
from tokmon.core import cellsums, ledger
from tokmon.core.ledger import COLS, LedgerDB, Stage
from tokmon.core.model import UsageRecord
from tokmon.demo import generate

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
    keeps its first file's line, and the stored sums and reports are the usual build's."""
    root, keys = tie_corpus
    ref = _reference(root, tmp_path / "ref")
    stages = _streams(monkeypatch)
    eng = _engine(root, tmp_path / "home")
    eng.refresh()
    monkeypatch.undo()
    (stage,) = stages
    assert stage.direct and stage.loaded == stage.rows and len(stage.streams) == 5
    assert not stage.tables  # (every stream straight into records)
    assert eng.db is not None and ref.db is not None and not eng.db.build
    got, want = _content(eng.db.conn), _content(ref.db.conn)
    assert got == want
    order = "SELECT key, session FROM records ORDER BY key"
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


@pytest.mark.parametrize("direct", [False, True, "collide", "ranked"])
def test_stage_batches_with_and_without_display_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: bool | str
) -> None:
    """Batches where no row has a display cost go without it (a NULL in the statement),
    batches with one (even a single 0.0) with it: the records are those of the dedup rule
    over the rows in merge order (largest output, the first of equal ones; staged, at its
    first place), display costs included, staged or directly loaded; records has a fresh
    ledger's schema after either (a direct load drops its indexes while loading; its
    dedup after the load, by the key hashes, every hash alike or every row ranked)."""
    if isinstance(direct, str):
        _settle_by(direct, monkeypatch)
    if direct:
        db = LedgerDB(tmp_path / "b.sqlite3", build=True)
    else:
        db = LedgerDB(tmp_path / "l.sqlite3")
    streams = {
        (0, 0): _rows(0, 150, {3: 0.25, 70: 0.0}),
        (1, 0): _rows(1, 90, {}),
        (2, 0): _rows(2, 200, {i: i / 7 for i in range(100, 140)}),
    }
    monkeypatch.setattr(Stage, "BATCH", 8)  # rows go to the database every 32 (HOLD 4)
    stage = db.stage()
    assert stage.direct == bool(direct)
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
    if direct:  # (each row where it was appended: the streams interleave)
        assert sorted(have, key=str) == sorted(want.values(), key=str)
    else:
        assert have == list(want.values())
    assert sum(r[11] is not None for r in have) > 20
    assert _records_schema(db.conn) == _records_schema(LedgerDB(tmp_path / "fresh.sqlite3").conn)


# ---- the cells' indexes through the bulk build -------------------------------------------


def test_bulk_sums_keep_the_cells_indexes(tmp_path: Path) -> None:
    """After the bulk build rollup_cell's two indexes are a fresh schema's (same names, same
    definitions), hold every cell (integrity check) and the queries that need them use them
    (the save after a cold build's first appends, which their page fill decides, is
    tests/test_server_deltas.py's)."""
    from tests.test_cold_build import _tricky_records
    from tokmon.core.rollups import Rollups

    fresh = sqlite3.connect(tmp_path / "fresh.sqlite3")
    Rollups(fresh, lambda *a, **k: [])
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name LIKE 'rollup%' ORDER BY name"
    want = fresh.execute(schema).fetchall()
    assert [r[1] for r in want if r[0] == "index" and r[3]] == [
        "rollup_cell_project",
        "rollup_cell_session",
    ]
    db = LedgerDB(tmp_path / "l.sqlite3")
    db.merge(_tricky_records())
    with db.write() as conn:
        Rollups(conn, lambda *a, **k: []).rebuild_sql("claude", db.records_sql())
    assert db.conn.execute(schema).fetchall() == want
    assert db.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    n = db.conn.execute("SELECT count(*) FROM rollup_cell").fetchone()[0]
    assert n > 100
    for name, col in (("rollup_cell_session", "session_id"), ("rollup_cell_project", "project")):
        q = f"SELECT count(*) FROM rollup_cell INDEXED BY {name} WHERE agent='claude' AND {col} > ''"
        assert (
            db.conn.execute(q).fetchone()[0]
            == db.conn.execute(
                f"SELECT count(*) FROM rollup_cell NOT INDEXED WHERE agent='claude' AND {col} > ''"
            ).fetchone()[0]
        )


# ---- a build's direct load: the dedup rule, the schema it leaves ---------------------------


def _records_schema(conn: sqlite3.Connection) -> dict[str, Any]:
    """records as SQLite knows it: its rows in the schema table, its indexes (name, unique,
    origin, columns) and its columns."""
    return {
        "master": sorted(
            conn.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name='records'"
            ).fetchall()
        ),
        "indexes": sorted(
            (r[1], r[2], r[3], r[4], conn.execute(f"PRAGMA index_xinfo('{r[1]}')").fetchall())
            for r in conn.execute("PRAGMA index_list(records)")
        ),
        "columns": conn.execute("PRAGMA table_xinfo(records)").fetchall(),
    }


def _settle_by(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """How a direct load finds its rows of one key (Stage.settle): by the key hashes of the
    cells summed from the rows ("hashes"), with every hash alike ("collide": every row a
    candidate) or every row ranked ("ranked": no cells from the rows, so no hashes)."""
    if how == "ranked":
        monkeypatch.setattr(ledger, "CELLS_FROM_ROWS", False)
    elif how == "collide":

        class SameHash(cellsums.CellSumsPy):
            def add(self, rows: list[list[Any]]) -> Any:
                got = super().add(rows)
                return None if got is None else (bytes(4 * len(rows)), got[1])

        monkeypatch.setattr(ledger, "summers", lambda: (SameHash, cellsums.dup_rows_py))


@pytest.mark.parametrize("how", ["hashes", "collide", "ranked"])
def test_direct_load_dedup_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """A build's load on rows of one key in every arrangement, within the first stream and
    across it and a later one: the first row of the largest output in merge order stays (a
    later one, a middle one, a tie with the first, three of a kind), other keys untouched;
    the same whichever way the load's dedup finds the rows of one key (their key hashes,
    every hash alike, every row ranked)."""
    _settle_by(how, monkeypatch)
    db = LedgerDB(tmp_path / "b.sqlite3", build=True)
    stage = db.stage()
    assert stage.direct

    def row(key: str, out: int, mark: int) -> list[object]:
        return [1.7e9 + mark, f"s{mark}", "/p", "m", mark, out, 0, 0, 0, key, 0.5 * mark, None]

    outs = {  # key: outputs in merge order (the winner's mark is its position)
        "later": [1, 5],
        "middle": [2, 9, 3],
        "tie": [4, 4],
        "tie-later": [1, 6, 6],
        "three": [7, 7, 7],
        "first": [8, 1, 8],
        "alone": [3],
    }
    order: list[list[object]] = []
    for j in range(3):  # interleaved: each key's j-th row after every key's (j-1)-th
        order += [row(k, o[j], 10 * i + j) for i, (k, o) in enumerate(outs.items()) if j < len(o)]
    stage.add(Stage.FIRST, order[:7])
    stage.add((2, 0), order[7:])
    got = db.merge_staged(stage)
    stage.close()
    assert got is not None and got[0] == len(outs)
    have = db.conn.execute("SELECT key, session, output FROM records ORDER BY key").fetchall()
    want = {"later": 1, "middle": 1, "tie": 0, "tie-later": 1, "three": 0, "first": 0, "alone": 0}
    assert have == sorted((k, f"s{10 * i + want[k]}", outs[k][want[k]]) for i, k in enumerate(outs))
    assert db.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_direct_load_of_no_rows(tmp_path: Path) -> None:
    """A first scan that finds no usage line: the build's load still gives records back the
    indexes it dropped when it began (a fresh ledger's table, empty)."""
    db = LedgerDB(tmp_path / "b.sqlite3", build=True)
    stage = db.stage()
    assert stage.direct
    got = db.merge_staged(stage)
    assert got is not None and got[:2] == (0, set())
    stage.close()
    assert _records_schema(db.conn) == _records_schema(LedgerDB(tmp_path / "fresh.sqlite3").conn)
    assert db.count() == 0


def test_a_ledger_with_the_older_unique_key_keeps_it(tmp_path: Path) -> None:
    """A ledger made before the key's index had a name (``key ... UNIQUE``: SQLite's own
    index) opens and merges as before: the later of two rows of one key replaces it only
    with a larger output, and no second index of the key is made."""
    path = tmp_path / "old.sqlite3"
    LedgerDB(path).close()
    old_records = ledger._SCHEMA.split("CREATE TABLE IF NOT EXISTS records")[1].split(";")[0]
    old_records = old_records.replace("key TEXT NOT NULL,", "key TEXT NOT NULL UNIQUE,")
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("DROP TABLE records")  # (empty; its indexes go with it)
        conn.execute("CREATE TABLE records" + old_records)
        conn.execute("CREATE INDEX records_ts ON records (ts)")
        conn.execute("CREATE INDEX records_session ON records (session)")
    conn.close()
    db = LedgerDB(path)
    rows = _rows(0, 60, {}) + _rows(1, 60, {})  # stream 1's keys repeat stream 0's
    db.merge([UsageRecord(*r) for r in rows])
    want: dict[str, list[object]] = {}
    for r in rows:
        k = str(r[9])
        if k not in want or int(r[5]) > int(want[k][5]):  # type: ignore[call-overload]
            want[k] = r
    have = sorted(list(r) for r in db.conn.execute(f"SELECT {COLS} FROM records"))
    assert have == sorted(want.values()) and len(have) < len(rows)
    indexes = {r[1]: (r[2], r[3]) for r in db.conn.execute("PRAGMA index_list(records)")}
    assert indexes == {
        "sqlite_autoindex_records_1": (1, "u"),
        "records_ts": (0, "c"),
        "records_session": (0, "c"),
    }
    db.close()
