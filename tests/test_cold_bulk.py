"""The cold-scan bulk load: rows staged in temporary tables while the scan runs, loaded into an
empty ledger by SQL (dedup by the unique key), the stored sums built by SQL.

Every check compares against an independent path on real files: the regular merge (Python
dedup, incremental stored sums) over the same transcripts read in the same order, Python's own
``round`` and ``//`` for the SQL arithmetic, and the Python bulk build of the stored sums.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rollups_support import stored_sums as dump

from tokmon.core import scan
from tokmon.core.engine import Engine
from tokmon.core.ledger import LedgerDB
from tokmon.core.model import UsageRecord
from tokmon.core.rollups import _BUCKET_SQL, _PICO_SQL, BUCKET, PICO, Rollups
from tokmon.demo import generate
from tokmon.paths import get_paths

END = datetime(2026, 3, 1, 17, 0, tzinfo=timezone.utc)


def records_of(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    cols = "ts, session, project, model, input, output, cc, c1h, cr, key, cost, display_cost"
    return conn.execute(f"SELECT {cols} FROM records ORDER BY key").fetchall()


# ---- the SQL arithmetic against Python's --------------------------------------------------------


def test_pico_sql_rounds_like_python() -> None:
    costs = [0.0, 1e-12, 2.5e-12, 3.5e-12, -2.5e-12, -3.5e-12, 0.49999999999999994e-12]
    for k in range(-50, 400):  # products that land exactly on a half: ties go to even
        c = (k + 0.5) / PICO
        if c * PICO == k + 0.5:
            costs.append(c)
    costs += [n * 3e-6 + m * 15e-6 for n in range(0, 3000, 7) for m in (0, 1, 13, 977)]
    costs += [1234.5678901234, 9.2e6, 0.1, 0.2, 0.30000000000000004]
    halves = sum(1 for c in costs if (c * PICO) % 1 == 0.5)
    assert halves > 50  # the tie rule is really exercised
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (cost REAL)")
    conn.executemany("INSERT INTO t VALUES (?)", [(c,) for c in costs])
    got = [r[0] for r in conn.execute(f"SELECT {_PICO_SQL} FROM t ORDER BY rowid")]
    assert got == [round(c * PICO) for c in costs]


def test_bucket_sql_floors_like_python() -> None:
    base = 1_772_000_000.0
    ts: list[float] = []
    for k in range(2000):
        edge = (int(base // BUCKET) + k) * BUCKET
        ts += [edge, math.nextafter(edge, 0), math.nextafter(edge, math.inf), edge - 0.001]
        ts += [edge + 0.5, edge - 1e-6]
    ts += [0.0, 899.9999999999999, 900.0, 7258118399.999999]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (ts REAL)")
    conn.executemany("INSERT INTO t VALUES (?)", [(t,) for t in ts])
    got = [r[0] for r in conn.execute(f"SELECT {_BUCKET_SQL} FROM t ORDER BY rowid")]
    assert got == [int(t // BUCKET) for t in ts]


# ---- the SQL build of the stored sums against the Python build -------------------------------


def _tricky_records() -> list[UsageRecord]:
    """Records with what the sums must get right: equal times (blocks sum costs in (ts, key)
    order), several models and projects per session, the synthetic model, empty projects,
    costs on a picodollar half, times on bucket and block edges, long gaps."""
    out: list[UsageRecord] = []
    t0 = 1_772_000_000.0 - 1_772_000_000.0 % 3600
    models = ["claude-opus-4-1", "claude-sonnet-4-5", "<synthetic>", "claude-haiku-4-5"]
    for i in range(900):
        ts = t0 + (i // 3) * 97.0 + (i % 3) * 0.25
        if i % 50 == 0:
            ts = t0 + (i // 50) * 18000.0  # on a block end
        if i % 211 == 0:
            t0 += 7 * 3600  # a gap longer than a block
        cost = (i % 17) * 3.1e-6 + ((i * 7919) % 1000) / 3e7
        if i % 13 == 0:
            cost = (i + 0.5) / PICO
        out.append(
            UsageRecord(
                ts,
                f"s{i % 7}",
                "" if i % 11 == 0 else f"/p/{i % 4}",
                models[i % 4],
                i % 97,
                (i * 31) % 2000,
                (i * 7) % 500,
                (i * 3) % 100,
                (i * 101) % 90000,
                f"k{i:05d}",
                cost,
                None,
            )
        )
    return out


@pytest.mark.parametrize("block_seconds", [18000.0, 3600.5])
def test_rebuild_sql_equals_python_rebuild(tmp_path: Path, block_seconds: float) -> None:
    db = LedgerDB(tmp_path / "l.sqlite3")
    recs = _tricky_records()
    db.merge(recs)
    stored = db.records()
    assert len(stored) == len(recs)
    py = sqlite3.connect(tmp_path / "py.sqlite3")
    ru_py = Rollups(py, lambda *a, **k: [], block_seconds)
    ru_py.rebuild({"claude": stored})
    with db.write() as conn:
        ru_sql = Rollups(conn, lambda *a, **k: [], block_seconds)
        ru_sql.rebuild_sql("claude", db.records_sql())
    want, got = dump(py), dump(db.conn)
    assert want["rollup_block"]  # non-trivial content
    assert len(want["rollup_block"]) > 3
    assert got == want
    with db.write() as conn:  # the unchecked source gives the same on checked rows
        Rollups(conn, lambda *a, **k: [], block_seconds).rebuild_sql(
            "claude", db.records_sql(checked=False)
        )
    assert dump(db.conn) == want


# ---- the staged cold load against the regular merge, on transcript files --------------------


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


def _usage_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        msg = obj.get("message")
        if (
            obj.get("type") == "assistant"
            and isinstance(msg, dict)
            and isinstance(msg.get("usage"), dict)
            and msg.get("id")
            and obj.get("requestId")
        ):
            out.append(obj)
    return out


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated corpus plus lines copied into a later file: one with the same output and
    other counts (a tie: the first file's must stay), one with a larger output (wins), one
    with a smaller output (loses)."""
    root = tmp_path_factory.mktemp("cold") / "claude"
    generate(root, size_mb=6, seed=5, end=END, days=10)
    files = sorted((root / "projects").rglob("*.jsonl"))
    assert len(files) > 4
    src = _usage_lines(files[0])
    assert len(src) >= 3
    tie, larger, smaller = (json.loads(json.dumps(o)) for o in src[:3])
    tie["message"]["usage"]["input_tokens"] = tie["message"]["usage"].get("input_tokens", 0) + 5
    larger["message"]["usage"]["output_tokens"] += 1000
    smaller["message"]["usage"]["output_tokens"] = 0
    smaller["message"]["usage"]["input_tokens"] = 123456
    with files[-1].open("a", encoding="utf-8") as fh:
        fh.write(_line(tie) + _line(larger) + _line(smaller))
    return root


def _engine(root: Path, home: Path) -> Engine:
    return Engine(roots=[root / "projects"], paths=get_paths({"TOKMON_HOME": str(home)}))


@pytest.mark.parametrize("parallel", ["no", "yes", "hand-over", "take-back"])
def test_staged_cold_load_equals_regular_merge(
    transcripts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: str
) -> None:
    files = sorted((transcripts / "projects").rglob("*.jsonl"))
    # the regular path: the first file alone (a tiny first load), then the rest merged with
    # Python dedup and incremental stored sums, reading in the same (sorted) file order
    root = tmp_path / "claude"
    first = root / files[0].relative_to(transcripts)
    first.parent.mkdir(parents=True)
    shutil.copy2(files[0], first)
    reg = _engine(root, tmp_path / "reg")
    reg.refresh()
    assert reg.db is not None and not reg.db.is_empty()
    for f in files[1:]:
        dest = root / f.relative_to(transcripts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    ch_reg = reg.refresh()
    # the staged path: everything at once into an empty ledger (with parallel workers, whose
    # results are staged as they come, between the files this process scans)
    if parallel != "no":
        monkeypatch.setattr(scan, "PARALLEL_MIN_BYTES", 0)
        monkeypatch.setattr(scan, "WORKER_TASK_BYTES", 64 * 1024)
    if parallel == "hand-over":  # the worker soon idle: it takes over part of this share
        monkeypatch.setattr(scan, "MAIN_SHARE", 40.0)
    if parallel == "take-back":  # this process soon done: it scans tasks the worker left
        monkeypatch.setattr(scan, "MAIN_SHARE", 0.02)
    cold = _engine(root, tmp_path / "cold")
    ch = cold.refresh()
    assert reg.db is not None and cold.db is not None
    want, got = records_of(reg.db.conn), records_of(cold.db.conn)
    assert got == want
    assert ch.new_records == len(got)
    assert ch.new_records > ch_reg.new_records > 0
    assert dump(cold.db.conn) == dump(reg.db.conn)
    # the duplicates: the tie kept the first file's line, the larger output won
    src = _usage_lines(files[0])[:3]
    by_key = {r[9]: r for r in got}
    keys = [f"{o['message']['id']}:{o['requestId']}" for o in src]
    u0, u1, u2 = (o["message"]["usage"] for o in src)
    assert by_key[keys[0]][4] == u0.get("input_tokens", 0)  # tie: first file's input
    assert by_key[keys[1]][5] == u1["output_tokens"] + 1000
    assert by_key[keys[2]][4] != 123456
    # and the reports read the same
    for kind in ("daily", "monthly"):
        assert cold.report(kind).to_json() == reg.report(kind).to_json()


def test_staged_load_merges_normally_when_records_arrive(transcripts: Path, tmp_path: Path) -> None:
    """Another process merges records while this one scans into what was an empty ledger:
    the staged rows then go through the regular merge (nothing lost, dedup against them)."""
    home = tmp_path / "home"
    eng = _engine(transcripts, home)
    assert eng.pending_bytes() > 0  # (outside a refresh: opens, so creates, the ledger itself)
    assert eng.ledger_file.exists()
    other_rec = UsageRecord(1_772_000_000.0, "other", "/o", "claude-opus-4-1", 1, 2, 0, 0, 0, "x:y")
    injected: list[bool] = []

    def progress(done: int, total: int) -> None:
        if not injected:
            assert eng.ledger_file.exists()
            other = LedgerDB(eng.ledger_file)  # with the stored sums, as an engine keeps them
            with other.lock():
                ru = Rollups(other.conn, lambda *a, **k: [], eng.block_seconds)
            assert not ru.fresh
            other.on_merge = lambda deltas, empty: ru.apply("claude", deltas)
            other.merge([other_rec])
            other.close()
            injected.append(True)

    eng.refresh(progress)
    assert injected
    ref = _engine(transcripts, tmp_path / "ref")
    ref.refresh()
    assert eng.db is not None and ref.db is not None
    got = records_of(eng.db.conn)
    want = records_of(ref.db.conn)
    assert [r for r in got if r[9] != "x:y"] == want
    assert any(r[9] == "x:y" for r in got)
    # the stored sums follow every record (a fresh Python build over them agrees)
    py = sqlite3.connect(tmp_path / "py.sqlite3")
    Rollups(py, lambda *a, **k: [], eng.block_seconds).rebuild({"claude": eng.db.records()})
    assert dump(eng.db.conn) == dump(py)


# ---- the unordered parallel scan --------------------------------------------------------------


@pytest.mark.parametrize("main_share", [scan.MAIN_SHARE, 40.0, 0.02])
def test_unordered_scan_keeps_order_within_parts(
    transcripts: Path, monkeypatch: pytest.MonkeyPatch, main_share: float
) -> None:
    """Results as they come: the same results as the ordered scan; within each part in item
    order, and every item of a part before every item of the next (what the staging relies
    on): the workers' tasks (part 0, the first files), this process's share (part 1, the
    last), whether or not the workers took over part of it, once or more (parts 100, 99,
    ...: each the back half of what this process had left, before the one handed over
    before it)."""
    from tokmon.core.discovery import transcript_stats

    items = sorted((k, 0, st.st_size) for k, st in transcript_stats(transcripts / "projects"))
    seq = list(scan.scan_all(items, workers=2, min_bytes=10**15))
    monkeypatch.setattr(scan, "WORKER_TASK_BYTES", 16 * 1024)  # many small tasks
    # 40: this process's share is nearly everything, so the worker is soon idle and takes
    # over the back half of what is left (part 100), and again when it is idle again (99)
    monkeypatch.setattr(scan, "MAIN_SHARE", main_share)
    order = {k: i for i, (k, _, _) in enumerate(items)}
    # Which side ends up scanning what depends on how the scheduler shares out the CPU (a
    # worker started late, a caller starved): every scan must keep the order, and scans are
    # repeated (within a generous time limit) until one has gone down the path this case is
    # about, rather than hoping the first one did.
    deadline = time.monotonic() + 240
    while True:
        got = list(scan.scan_all(items, workers=2, min_bytes=0, ordered=False))
        # merge order: (part, seq), then as they came (a task this process took back: seq > 0)
        numbers = sorted({r.part for r in got} | {0, 1})
        assert set(numbers) <= {0, 1, *range(scan.HANDED - scan.MAX_HANDED + 1, scan.HANDED + 1)}
        parts = [
            [order[r.key] for r in sorted((r for r in got if r.part == p), key=lambda r: r.seq)]
            for p in numbers
        ]
        assert parts[1]  # this process scans the first of its share before anything else
        assert sum(map(len, parts)) == len(items)
        for p in parts:
            assert p == sorted(p)
        runs = [p for p in parts if p]
        for a, b in zip(runs, runs[1:], strict=False):
            assert max(a) < min(b)
        view = sorted((r.key, r.end, r.rows, r.titles, r.malformed) for r in got)
        assert view == sorted((r.key, r.end, r.rows, r.titles, r.malformed) for r in seq)
        went = bool(parts[0])  # both processes scanned
        if main_share > 1:  # the worker was idle first: it took over part of this share, twice
            went = went and len(numbers) > 3
        if main_share < 0.1:  # this process was soon done: it took back tasks no worker started
            went = went and any(r.seq for r in got)
        if went:
            break
        assert time.monotonic() < deadline, f"never went down the path of {main_share}: {parts}"
