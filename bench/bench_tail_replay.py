#!/usr/bin/env python3
"""The cold build's SQLite work without the scan: a first scan's rows replayed into a build.

    python bench/bench_tail_replay.py --base DIR [--mb 500] [--rounds 6] [--seed 0] [--cache DIR]

A cold ``daily --json`` of the corpus (bench_engine.py's, ``--cache``) is run once with a hook
on ``Stage.add`` that keeps every batch of rows in arrival order (stream, rows). Then, in
turn for this checkout and the base checkout ``DIR`` (their ``tokmon`` imported through
PYTHONPATH), a process replays them into a new build file (``LedgerDB(build=True)``,
``stage(size)``, each ``add``, then ``merge_staged`` with the stored sums as the engine builds
them, its second reader included) with a thread-CPU timer around every SQL statement. No
scan threads share the cores, so the figures move far less with the machine's load than a
cold run's: the load while scanning (``Stage.add``, the calling thread), ``merge_staged``
(the serial tail's SQL, the main thread) and the statements, medians of the rounds.
docs/performance.md, eleventh session.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_CAPTURE = r"""
import contextlib, pickle, sys
from tokmon.core import ledger
arrivals, sizes = [], []
real_add, real_stage = ledger.Stage.add, ledger.LedgerDB.stage
def add(self, stream, rows):
    arrivals.append((stream, [list(r) for r in rows]))
    return real_add(self, stream, rows)
def stage(self, size=0):
    sizes.append(size)
    return real_stage(self, size)
ledger.Stage.add, ledger.LedgerDB.stage = add, stage
from tokmon.__main__ import main
with open(sys.argv[2], "w") as out, contextlib.redirect_stdout(out):
    main(["daily", "--json"])
with open(sys.argv[1], "wb") as fh:
    pickle.dump((sizes[0], arrivals), fh)
"""

_REPLAY = r"""
import collections, json, pickle, re, shutil, sqlite3, sys, tempfile, time
from pathlib import Path
with open(sys.argv[1], "rb") as fh:
    size, arrivals = pickle.load(fh)
stats, phase = collections.defaultdict(float), ["stage"]
def note(sql, t):
    stats[phase[0] + " " + re.sub(r"\s+", " ", sql.strip())[:70]] += time.thread_time() - t
class Timed(sqlite3.Connection):
    pass
def timed(real):
    def method(self, sql, *a):
        t = time.thread_time()
        try:
            return real(self, sql, *a)
        finally:
            note(sql, t)
    return method
for name in ("execute", "executemany"):
    setattr(Timed, name, timed(getattr(sqlite3.Connection, name)))
real_connect = sqlite3.connect
def connect(*a, **k):
    k.setdefault("factory", Timed)
    return real_connect(*a, **k)
sqlite3.connect = connect
from tokmon.core import ledger
from tokmon.core.rollups import Rollups
d = Path(tempfile.mkdtemp())
try:
    db = ledger.LedgerDB(d / "b.sqlite3", build=True)
    roll = Rollups(db.conn, lambda *a, **k: [])
    db.on_bulk = lambda reader, *cells: roll.rebuild_sql("claude", db.records_sql(checked=False), reader, *cells)
    t0 = time.thread_time()
    st = db.stage(size)
    for stream, rows in arrivals:
        st.add(stream, rows)
    t1 = time.thread_time()
    phase[0] = "merge"
    db.merge_staged(st)
    t2 = time.thread_time()
    st.close()
    db.close()
    stats["= load while scanning"] = t1 - t0
    stats["= merge_staged"] = t2 - t1
    print("REPLAY " + json.dumps(stats))
finally:
    shutil.rmtree(d, ignore_errors=True)
"""


def _env(src: Path, work: Path, corpus: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({"PYTHONPATH": str(src), "HOME": str(work), "TZ": "UTC", "NO_COLOR": "1"})
    if corpus is not None:
        env["CLAUDE_CONFIG_DIR"] = str(corpus)
        env["TOKMON_HOME"] = tempfile.mkdtemp(dir=work)
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="another checkout of tokmon")
    ap.add_argument("--mb", type=float, default=500)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    if not (args.base / "tokmon" / "__init__.py").is_file():
        ap.error(f"{args.base} holds no tokmon package")
    be = runpy.run_path(str(REPO / "bench" / "bench_engine.py"))  # (its corpora)
    corpus = be["cached_corpus_dir"](args.mb, args.seed, args.cache)
    if not (corpus / "expected.json").is_file():
        corpus, _ = be["prepare_corpus"](args.mb, args.seed, corpus)
    srcs = {"base": args.base.resolve(), "new": REPO}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = work / "rows.pickle"
        subprocess.run(  # (in ``work``: `-c` puts the cwd first on sys.path)
            [sys.executable, "-c", _CAPTURE, str(rows), str(work / "out.json")],
            env=_env(srcs["base"], work, corpus),
            cwd=work,
            check=True,
            stderr=subprocess.DEVNULL,
        )
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in srcs}
        for i in range(args.rounds):
            for name in list(srcs)[:: 1 if i % 2 == 0 else -1]:
                out = subprocess.run(
                    [sys.executable, "-c", _REPLAY, str(rows)],
                    env=_env(srcs[name], work),
                    cwd=work,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                line = [x for x in out.splitlines() if x.startswith("REPLAY ")][-1]
                runs[name].append(json.loads(line[7:]))
    keys = sorted(
        set().union(*(r.keys() for rs in runs.values() for r in rs)),
        key=lambda k: -max(statistics.median(r.get(k, 0.0) for r in rs) for rs in runs.values()),
    )
    print(f"{args.mb:g} MB ({corpus}), {args.rounds} rounds, thread CPU ms, medians")
    print(f"{'base':>8} {'new':>8}  statement")
    for k in keys:
        b, n = (statistics.median(r.get(k, 0.0) for r in runs[v]) * 1e3 for v in srcs)
        if max(b, n) >= 1.0:
            print(f"{b:8.1f} {n:8.1f}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
