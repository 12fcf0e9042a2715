#!/usr/bin/env python3
"""Query time from stored rollups vs from the records, side by side, at two corpus sizes.

    python bench/bench_rollups.py [--sizes 50 200] [--days 30] [--seed 0] [--runs 15] [--keep DIR]

For each size a Claude corpus is generated (tokmon.demo.generator, the same ``--days`` span),
read by the engine (its records are the record path's input), and put in a SQLite file: a
record table (indexed by agent and time: the ``records_between`` the rollups need) and the
rollup tables (``Rollups.rebuild``). Then, in one process, the best of ``--runs`` after a
warm-up (rollups and records alternating, the collector paused during each call):

* daily (UTC and America/New_York): ``Engine.report("daily")`` vs ``Rollups.daily`` +
  ``aggregate.period_rows``
* session: ``Engine.report("session")`` vs ``Rollups.sessions`` + ``aggregate.session_rows_of``
  (titles read once: a store keeps them in a table)
* blocks: ``Engine.report("blocks")`` vs ``Rollups.blocks`` + ``blocks_json``
* summary sums ([today, week, month, all-time]): the engine's ``_period_sums`` rebuilt from the
  records (what every new day/zone costs) vs ``Rollups.period_sums``
* recent sessions (the summary's, at a moment two thirds into the history): the engine's scan
  back from the newest record, then ``session_rows`` of those sessions' records, vs
  ``Rollups.active_sessions`` + ``Rollups.sessions(only=...)`` + ``session_rows_of``
* append: ``Rollups.apply`` of one new record at the end of the history (and its commit)

It prints each answer's size (days, sessions, blocks) and the larger/smaller time ratio: the
rollup times should follow the answer, the record times the history.
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from rollups_support import RecordTable  # noqa: E402

from tokmon.core import aggregate  # noqa: E402
from tokmon.core.blocks import blocks_json  # noqa: E402
from tokmon.core.engine import Engine  # noqa: E402
from tokmon.core.rollups import Rollups  # noqa: E402
from tokmon.demo import generate  # noqa: E402
from tokmon.paths import get_paths  # noqa: E402

END = datetime(2026, 3, 1, 17, 0, tzinfo=timezone.utc)


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    gc.disable()  # no collector pause lands in one side's timing only
    try:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t
    finally:
        gc.enable()


def best_ms(fns: list[Callable[[], Any]], runs: int) -> list[float]:
    """The fastest of ``runs`` calls of each function (ms), after a warm-up; the functions
    alternate within each run, so a loaded machine slows both sides alike."""
    for fn in fns:
        fn()  # warm (imports, zone data, SQLite page cache)
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for j, fn in enumerate(fns):
            best[j] = min(best[j], _timed(fn))
    return [b * 1000 for b in best]


def measure(size_mb: float, days: float, seed: int, runs: int, work: Path) -> dict[str, Any]:
    corpus = work / f"corpus-{size_mb:g}"
    if not (corpus / "projects").is_dir():
        generate(corpus, size_mb=size_mb, seed=seed, end=END, days=days)
    eng = Engine(
        roots=[corpus / "projects"],
        paths=get_paths({"TOKMON_HOME": str(work / f"home-{size_mb:g}")}),
        persist=False,
    )
    eng.refresh()
    recs = eng.records
    db = work / f"rollups-{size_mb:g}.db"
    db.unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL: no fsync per commit (disk noise)
    table = RecordTable(conn)
    table.put_many("claude", recs)
    ru = Rollups(conn, table.between)
    t = time.perf_counter()
    ru.rebuild({"claude": recs})
    conn.commit()
    rebuild_s = time.perf_counter() - t
    now = recs[-1].ts + 600
    rows = {
        t: conn.execute(f"SELECT count(*) FROM rollup_{t}").fetchone()[0]
        for t in ("bucket", "cell", "session_model", "block")
    }
    answers = {
        "days": len(ru.daily("claude", "UTC")),
        "sessions": len(ru.sessions("claude")[0]),
        "blocks": len(ru.blocks("claude", now)),
    }

    def roll_daily(tz: str) -> Callable[[], Any]:
        return lambda: aggregate.period_rows(ru.daily("claude", tz), "date", "daily")

    titles = eng.titles

    def roll_session() -> Any:
        groups, projects = ru.sessions("claude")
        rows = aggregate.session_rows_of(groups, projects, titles, now)
        rows.sort(key=lambda r: -r.usage.total_cost)
        return rows

    d0 = now - now % 86400
    bounds = [(d0, d0 + 86400), (d0 - 3 * 86400, d0 + 4 * 86400), (d0 - 20 * 86400, d0 + 86400)]
    bounds.append((float("-inf"), float("inf")))
    counter = iter(range(10**9))

    def rec_sums() -> Any:  # a new key each run: the cold path of Queries._period_sums
        return eng._period_sums((f"bench{next(counter)}", *[b for lh in bounds[:3] for b in lh]))

    bs, slack = eng.block_seconds, 86400.0
    recent_now = recs[len(recs) * 2 // 3].ts  # a moment with sessions running

    def roll_recent() -> Any:
        sids = ru.active_sessions("claude", recent_now - bs, recent_now + slack)
        groups, projects = ru.sessions("claude", only=sids)
        return aggregate.session_rows_of(groups, projects, titles, recent_now, bs)

    def rec_recent() -> Any:  # Queries.summary's recent sessions, from the records
        recent: set[str] = set()
        for i in range(len(recs) - 1, -1, -1):
            if recent_now - recs[i].ts >= bs:
                break
            if recs[i].ts <= recent_now + slack:
                recent.add(recs[i].session_id)
        sub = [r for r in recs if r.session_id in recent]
        return aggregate.session_rows(sub, titles, recent_now, bs)

    pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "daily UTC": (roll_daily("UTC"), lambda: eng.report("daily", timezone="UTC")),
        "daily New_York": (
            roll_daily("America/New_York"),
            lambda: eng.report("daily", timezone="America/New_York"),
        ),
        "session": (roll_session, lambda: eng.report("session", timezone="UTC", now=now)),
        "blocks": (
            lambda: blocks_json(ru.blocks("claude", now)),
            lambda: eng.report("blocks", now=now),
        ),
        "summary sums": (lambda: ru.period_sums("claude", bounds), rec_sums),
        "recent sessions": (roll_recent, rec_recent),
    }
    out: dict[str, Any] = {
        "size_mb": size_mb,
        "records": len(recs),
        "answers": answers,
        "rows": rows,
        "rebuild_s": rebuild_s,
    }
    for name, (roll, rec) in pairs.items():
        r, c = best_ms([roll, rec], runs)
        out[name] = (r, c)
    last = recs[-1]
    n = iter(range(10**9))

    def append() -> None:
        r = last._replace(ts=last.ts + 1 + next(n) * 0.001, key=f"bench-append-{next(n)}")
        table.put_many("claude", [r])
        ru.apply("claude", [(None, r)])
        conn.commit()

    out["append"] = (best_ms([append], runs)[0], float("nan"))
    conn.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--sizes", type=float, nargs=2, default=[50.0, 200.0], metavar="MB")
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--keep", type=Path, help="work dir kept (corpora are reused)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tokmon-bench-rollups-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        small, big = (measure(mb, args.days, args.seed, args.runs, work) for mb in args.sizes)
    for m in (small, big):
        a = m["answers"]
        print(
            f"{m['size_mb']:g} MB: {m['records']} records; {a['days']} days, {a['sessions']}"
            f" sessions, {a['blocks']} blocks; rollups rebuild {m['rebuild_s']:.2f} s; stored rows:"
            f" {', '.join(f'{k} {v}' for k, v in m['rows'].items())}"
        )
    s, b = small["size_mb"], big["size_mb"]
    print(
        f"\n{'query':<16}{'rollups ' + f'{s:g}':>13}{f'{b:g} MB':>9}{'x':>7}"
        f"{'records ' + f'{s:g}':>15}{f'{b:g} MB':>9}{'x':>7}{'speedup@' + f'{b:g}':>13}"
    )
    names = ("daily UTC", "daily New_York", "session", "blocks", "summary sums", "recent sessions")
    for name in (*names, "append"):
        r0, c0 = small[name]
        r1, c1 = big[name]
        rec = "" if c0 != c0 else f"{c0:12.2f} ms{c1:9.2f}{c1 / c0:7.2f}{c1 / r1:12.1f}x"
        print(f"{name:<16}{r0:10.2f} ms{r1:9.2f}{r1 / r0:7.2f}{rec}")
    print(
        f"\nanswer growth {b:g}/{s:g} MB: days {big['answers']['days'] / small['answers']['days']:.2f},"
        f" sessions {big['answers']['sessions'] / small['answers']['sessions']:.2f},"
        f" blocks {big['answers']['blocks'] / small['answers']['blocks']:.2f};"
        f" history (records) {big['records'] / small['records']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
