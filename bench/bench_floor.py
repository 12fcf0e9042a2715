#!/usr/bin/env python3
"""The pure-Python floor: the review's minimal msgspec scanner, tokmon's cold ``daily`` and
ccusage, side by side on the cached bench corpora.

    python bench/bench_floor.py [--mb 500 [2000 ...]] [--rounds 7] [--calm 0.3] [--wait 240]
                                [--decompose] [--cache DIR] [--json]
    python bench/bench_floor.py --mb 500 --ladder [--rounds 3]  # the scan's pieces, 1 process
    python bench/bench_floor.py --mb 500 --phases [--rounds 5]  # timers in tokmon's cold daily
    python bench/bench_floor.py --scan CONFIG_DIR [--utf8]  # the minimal scanner alone (JSON)

The minimal scanner is the one the performance review measured ("find('"usage"') on the file
buffer, typed Struct decode of 4 fields; 2 processes"; shared/docs/review/performance-profile.md,
section 6): per ``.jsonl`` file under ``CONFIG_DIR/projects``, read the whole file, ``find`` each
``"usage"`` in the buffer, slice its line (``rfind``/``find`` of the newlines), decode it with a
msgspec typed Struct holding only type, timestamp, requestId, message.id, message.model and
message.usage's counts (the four counts and cache_creation.ephemeral_1h_input_tokens), keep
``type == "assistant"`` lines, dedup on (message.id, requestId) keeping the larger output
(the first on ties), sum per UTC day (the timestamp's first ten characters). Two processes
(the file list split in two by bytes, one forked worker), the cyclic GC off. It keeps none of
tokmon's other rules: every line carrying ``"usage"`` is decoded, no other line is looked at
(so malformed lines are not counted), UTF-8 is not checked, counts are not range-checked (no
poison), timestamps are not parsed, nothing is stored.

Per size (corpus ``corpus<MB>`` under ``${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}``,
the one ``bench/bench_engine.py`` uses, generated like it when missing; read only here), after the
OS page cache is warmed: ``--rounds`` rounds, each running the minimal scanner, ``tokmon daily
--json`` with an empty TOKMON_HOME and ``ccusage claude daily --json --offline`` (TOKMON_CCUSAGE
or ``.cache/ccusage``; skipped when absent), the order rotated every round. Each run is a
process: wall time, user+sys CPU of its whole tree (``wait4``) and peak RSS of its largest
process. Before each round the script waits (up to ``--wait`` seconds in all per size) until
the other processes on the machine kept less than ``--calm`` cores busy for 2 s (read from
/proc/stat while nothing of the bench runs; the 1-minute load average includes the bench's
own runs, so it is printed per round but not used to wait); after each round it prints the
cores the others kept busy during it (all busy CPU less the round's own), and a round under
``--calm`` is "quiet". Prints the medians over all rounds and over the quiet ones (when at
least 3), the ratios to ccusage (median of the per-round ratios), the load per round, and the
scanner's totals against the corpus's expected.json and tokmon's and ccusage's. Exit code 1
when the scanner's or tokmon's totals differ from expected.json.

``--decompose`` adds two contestants: the scanner with tokmon's UTF-8 rule (``--utf8``: a
usage line of a file that is not all ASCII must decode as UTF-8) and tokmon's scan alone
(``tokmon.core.scan.scan_all`` with pricing, rows dropped: no store, no report). ``--ladder``
prints the CPU time of the scan's pieces in one process over the files read into memory
(reading, line location, validation, UTF-8, the scanner, tokmon's ``scan_lines`` and
``scan_file``). ``--phases`` times the steps of cold ``tokmon daily`` runs from inside
(start-up, scan, staging, the merge and its stored sums, the tail). These import tokmon's
internals; the plain bench runs tokmon as a command only.
A reference measurement: not run by CI (docs/performance.md, "the pure-Python floor").
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.45  # issue 12: cold scan <= 0.45x ccusage's wall time

# --- the minimal scanner ------------------------------------------------------------------------
# Record per response: [output, day, input, cache creation, cache 1h, cache read, model]
FIELDS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")


def _decoder() -> Any:
    """msgspec decoder of a line into the few fields the scanner reads."""
    import msgspec

    def struct(name: str, fields: list[tuple[str, Any, Any]]) -> Any:
        return msgspec.defstruct(name, fields, gc=False)

    cache = struct("Cache", [("ephemeral_1h_input_tokens", int, 0)])
    usage = struct(
        "Usage",
        [
            ("input_tokens", int, 0),
            ("output_tokens", int, 0),
            ("cache_creation_input_tokens", int, 0),
            ("cache_read_input_tokens", int, 0),
            ("cache_creation", cache | None, None),
        ],
    )
    message = struct(
        "Message",
        [("id", str | None, None), ("model", str | None, None), ("usage", usage | None, None)],
    )
    line = struct(
        "Line",
        [
            ("type", str | None, None),
            ("timestamp", str | None, None),
            ("requestId", str | None, None),
            ("message", message | None, None),
        ],
    )
    return msgspec.json.Decoder(line).decode, (msgspec.DecodeError, msgspec.ValidationError)


def scan_part(
    paths: list[str], base: int, utf8: bool = False
) -> tuple[dict[Any, list[Any]], int, int]:
    """Scan ``paths``: the best (max output) record per response, the lines decoded and the
    lines the decoder rejected. ``base`` numbers the files for keys of lines without ids.
    ``utf8`` (a variant, one of tokmon's rules): a usage line of a file that is not all ASCII
    must be valid UTF-8 (msgspec does not check the strings it skips), else it is skipped."""
    decode, errors = _decoder()
    best: dict[Any, list[Any]] = {}
    decoded = rejected = 0
    for n, path in enumerate(paths, base):
        with open(path, "rb") as fh:
            buf = fh.read()
        d, r = scan_buffer(buf, n, best, decode, errors, utf8)
        decoded += d
        rejected += r
    return best, decoded, rejected


def scan_buffer(
    buf: bytes, n: int, best: dict[Any, list[Any]], decode: Any, errors: Any, utf8: bool
) -> tuple[int, int]:
    """One file's buffer into ``best``; the lines decoded and rejected."""
    get = best.get
    decoded = rejected = 0
    view = memoryview(buf)
    find, rfind = buf.find, buf.rfind
    check = utf8 and not buf.isascii()
    pos = 0
    while True:
        i = find(b'"usage"', pos)
        if i == -1:
            break
        start = rfind(b"\n", 0, i) + 1
        end = find(b"\n", i)
        if end == -1:
            end = len(buf)
        pos = end + 1
        decoded += 1
        try:
            obj = decode(view[start:end])
        except errors:
            rejected += 1
            continue
        if obj.type != "assistant":
            continue
        msg = obj.message
        if msg is None or msg.usage is None or obj.timestamp is None:
            continue
        if check:
            try:
                str(view[start:end], "utf-8")
            except UnicodeError:
                rejected += 1
                continue
        u = msg.usage
        mid, rid = msg.id, obj.requestId
        key: Any = (mid, rid) if mid and rid else (n, start)
        out = u.output_tokens
        old = get(key)
        if old is None or out > old[0]:
            cc = u.cache_creation
            best[key] = [
                out,
                obj.timestamp[:10],
                u.input_tokens,
                u.cache_creation_input_tokens,
                0 if cc is None else cc.ephemeral_1h_input_tokens,
                u.cache_read_input_tokens,
                msg.model,
            ]
    return decoded, rejected


def _worker(paths: list[str], base: int, utf8: bool, conn: Any) -> None:
    gc.disable()
    conn.send(scan_part(paths, base, utf8))
    conn.close()


def transcripts(config_dir: Path) -> list[tuple[str, int]]:
    """Every ``.jsonl`` under ``config_dir/projects`` with its size, in path order."""
    out = []
    for root, dirs, files in os.walk(config_dir / "projects"):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(".jsonl"):
                p = os.path.join(root, f)
                out.append((p, os.stat(p).st_size))
    return out


def minimal_scan(config_dir: Path, utf8: bool = False) -> dict[str, Any]:
    """The whole scan on two processes; per-day sums and the scan's counters."""
    import multiprocessing

    gc.disable()
    files = transcripts(config_dir)
    # split in two by bytes (largest first, each to the lighter part), each part in path order
    parts: list[list[tuple[int, str, int]]] = [[], []]
    load = [0, 0]
    for i, (p, size) in sorted(enumerate(files), key=lambda x: -x[1][1]):
        k = 0 if load[0] <= load[1] else 1
        parts[k].append((i, p, size))
        load[k] += size
    mine, theirs = (sorted(part) for part in parts)
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=([p for _, p, _ in theirs], len(mine), utf8, send))
    proc.start()
    send.close()
    best, decoded, rejected = scan_part([p for _, p, _ in mine], 0, utf8)
    other, d2, r2 = recv.recv()
    proc.join()
    get = best.get
    for key, rec in other.items():  # the worker's files come after this part's on ties
        old = get(key)
        if old is None or rec[0] > old[0]:
            best[key] = rec
    daily: dict[str, list[int]] = {}
    for out, day, inp, cc, c1h, cr, _model in best.values():
        d = daily.get(day)
        if d is None:
            d = daily[day] = [0, 0, 0, 0, 0, 0]
        d[0] += inp
        d[1] += out
        d[2] += cc
        d[3] += cr
        d[4] += c1h
        d[5] += 1
    names = (*FIELDS, "cache_1h_tokens", "entries")
    return {
        "daily": {day: dict(zip(names, v, strict=True)) for day, v in sorted(daily.items())},
        "totals": dict(
            zip(names, (sum(v[i] for v in daily.values()) for i in range(6)), strict=True)
        ),
        "files": len(files),
        "bytes": sum(s for _, s in files),
        "lines_decoded": decoded + d2,
        "lines_rejected": rejected + r2,
    }


# --- --ladder: the scan's pieces in one process --------------------------------------------------


def ladder(dest: Path, rounds: int) -> dict[str, list[float]]:
    """CPU seconds (one process, GC off, the files read once into memory first unless the
    step reads them) of the steps a scan is made of, each run ``rounds`` times in turn."""
    import msgspec

    from tokmon.core import parser
    from tokmon.core.parser import LineStats, scan_lines
    from tokmon.core.scan import scan_file

    gc.disable()
    files = [p for p, _ in transcripts(dest)]
    bufs = []
    for p in files:
        with open(p, "rb") as fh:
            bufs.append(fh.read())
    decode, errors = _decoder()
    empty = msgspec.json.Decoder(msgspec.defstruct("Empty", [], gc=False)).decode
    spans = []  # the lines carrying "usage" of the files that are not all ASCII
    for buf in bufs:
        if buf.isascii():
            continue
        view, pos = memoryview(buf), 0
        while (i := buf.find(b'"usage"', pos)) != -1:
            a, b = buf.rfind(b"\n", 0, i) + 1, buf.find(b"\n", i)
            b = len(buf) if b == -1 else b
            spans.append(view[a:b])
            pos = b + 1

    def read_all() -> None:
        for p in files:
            with open(p, "rb") as fh:
                fh.read()

    def newlines() -> None:
        for buf in bufs:
            pos, find = 0, buf.find
            while (pos := find(b"\n", pos) + 1) != 0:
                pass

    def usage_marks() -> None:
        for buf in bufs:
            pos, find = 0, buf.find
            while (pos := find(b'"usage"', pos) + 1) != 0:
                pass

    def title_marks() -> None:
        for buf in bufs:
            buf.find(b'-title"')

    def validate() -> None:
        for buf in bufs:
            view, pos, find = memoryview(buf), 0, buf.find
            while (nl := find(b"\n", pos)) != -1:
                try:
                    empty(view[pos:nl])
                except msgspec.DecodeError:
                    pass
                pos = nl + 1

    def utf8() -> None:
        for line in spans:
            str(line, "utf-8")

    def minimal(check: bool) -> None:
        best: dict[Any, list[Any]] = {}
        for n, buf in enumerate(bufs):
            scan_buffer(buf, n, best, decode, errors, check)

    native = parser.native_scanner()

    def tokmon_lines(scanner: Any = None) -> None:
        parser._native = scanner  # None: the Python path
        stats, strings = LineStats(), dict[str, str]()
        for p, buf in zip(files, bufs, strict=True):
            scan_lines(buf, 0, buf.rfind(b"\n") + 1, 0, p, stats, {}, [], strings)

    def tokmon_files(pricing: tuple[str | None, str] | None, scanner: Any = None) -> None:
        parser._native = scanner
        for p in files:
            scan_file(p, 0, pricing)

    steps = {
        "read every file (open, read)": read_all,
        "find every newline": newlines,
        'find every "usage"': usage_marks,
        'find -title" (once a file)': title_marks,
        "msgspec: validate every line": validate,
        "UTF-8 of the usage lines": utf8,
        "minimal scanner": lambda: minimal(False),
        "minimal scanner + UTF-8": lambda: minimal(True),
        "tokmon scan_lines (Python)": tokmon_lines,
        "tokmon scan_file (Python), no pricing": lambda: tokmon_files(None),
        "tokmon scan_file (Python), pricing": lambda: tokmon_files((None, "calculate")),
    }
    if native is not None:  # the native scanner (tokmon._native), same steps
        steps["native scan_lines"] = lambda: tokmon_lines(native)
        steps["native scan_file, no pricing"] = lambda: tokmon_files(None, native)
        steps["native scan_file, pricing"] = lambda: tokmon_files((None, "calculate"), native)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t = time.process_time()
            step()
            times[name].append(time.process_time() - t)
    return times


# --- --phases: timers inside one cold tokmon daily -----------------------------------------------

# Wraps tokmon's internal steps (names as of the sixth session; when they move, this fails and
# says so), runs ``daily --json`` in this process and prints the timers as JSON on stderr.
_PHASES = r"""
import time
T0 = time.perf_counter()
import contextlib, io, json, resource, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
import threading
marks, acc = {}, {}
def mark(name):
    marks.setdefault(name, time.perf_counter() - T0)
    r = resource.getrusage(resource.RUSAGE_SELF)
    marks.setdefault(name + " cpu", r.ru_utime + r.ru_stime)
    marks.setdefault(name + " thread cpu", time.thread_time())
    marks.setdefault(name + " switches", r.ru_nvcsw + r.ru_nivcsw)
def timed(cls, attr, name):
    f = getattr(cls, attr)
    def w(*a, **k):
        t, c = time.perf_counter(), cpu()
        try:
            return f(*a, **k)
        finally:
            x = acc.setdefault(name, [0.0, 0.0])
            x[0] += time.perf_counter() - t
            x[1] += cpu() - c
    setattr(cls, attr, w)
from tokmon.core import ledger, rollups
from tokmon.core.engine import ingest
real = ingest.scan_all
def scan_all(*a, **k):
    mark("scan start")
    yield from real(*a, **k)
    mark("scan end")
ingest.scan_all = scan_all
timed(ledger.Stage, "add", "staging")
from tokmon.core import scan
many = scan.scan_many
def scan_many(*a, **k):  # the scan threads' CPU (thread_time: each thread's own)
    c = time.thread_time()
    try:
        return many(*a, **k)
    finally:
        if threading.current_thread() is not threading.main_thread():
            x = acc.setdefault("scan threads", [0.0, 0.0])
            x[1] += time.thread_time() - c
scan.scan_many = scan_many
timed(ledger.LedgerDB, "merge_staged", "merge")
timed(rollups.Rollups, "rebuild_sql", "sums")
timed(ledger.LedgerDB, "publish", "publish")
from tokmon.__main__ import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["daily", "--json"])
mark("end")
import tokmon
print("PHASES " + json.dumps({"marks": marks, "acc": acc, "src": tokmon.__file__}), file=sys.stderr)
"""


def phases(dest: Path, rounds: int, work: Path) -> list[tuple[str, float, float]]:
    """Medians over ``rounds`` cold runs: (phase, wall s, CPU s of the calling process
    unless the name says otherwise; NaN: not timed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({"CLAUDE_CONFIG_DIR": str(dest), "HOME": str(work), "TZ": "UTC", "NO_COLOR": "1"})
    rows: dict[str, list[tuple[float, float]]] = {}
    sources: list[str] = []  # the tokmon package the runs imported (PYTHONPATH picks it)
    for _ in range(rounds):
        home = Path(tempfile.mkdtemp(dir=work))
        res = subprocess.run(
            [sys.executable, "-c", _PHASES],
            env={**env, "TOKMON_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=3600,
            cwd=work,  # (`-c` puts the cwd first on sys.path: not a checkout's tokmon)
        )
        shutil.rmtree(home, ignore_errors=True)
        line = [x for x in res.stderr.splitlines() if x.startswith("PHASES ")]
        if res.returncode != 0 or not line:
            raise RuntimeError(f"the phase timers failed: {res.stderr.strip()[-500:]}")
        fig = json.loads(line[-1][7:])
        m, a = fig["marks"], fig["acc"]
        src = str(Path(fig["src"]).parent)
        if src not in sources:
            sources.append(src)
        nan = float("nan")
        got: dict[str, Any] = {
            "start-up to the first file read": (m["scan start"], nan),
            "scan (two processes; staging in it)": (m["scan end"] - m["scan start"], nan),
            "- staging, calling process": tuple(a.get("staging", (nan, nan))),
            "- the calling thread's CPU in the scan": (
                nan,
                m["scan end thread cpu"] - m["scan start thread cpu"],
            ),
            "- the scan threads' CPU": (nan, a.get("scan threads", (nan, nan))[1]),
            "- the process's CPU in the scan": (nan, m["scan end cpu"] - m["scan start cpu"]),
            "- context switches in the scan (count)": (
                nan,
                m["scan end switches"] - m["scan start switches"],
            ),
            "merge transaction (serial)": tuple(a.get("merge", (nan, nan))),
            "- of it the stored sums": tuple(a.get("sums", (nan, nan))),
            "after the scan: merge, publish, report": (m["end"] - m["scan end"], nan),
            "whole run (from the first statement)": (m["end"], m["end cpu"]),
        }
        for k, v in got.items():
            rows.setdefault(k, []).append(v)
    print(f"tokmon imported from {', '.join(sources)}")
    return [(k, _med([x[0] for x in v]), _med([x[1] for x in v])) for k, v in rows.items()]


# --- the side-by-side bench ---------------------------------------------------------------------


def _bench_engine() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_engine", REPO / "bench" / "bench_engine.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(cmd: list[str], env: dict[str, str], out: Path) -> dict[str, float]:
    """One process (tree): wall s, user+sys CPU s of the tree (wait4), largest process MB."""
    with open(out, "wb") as fh:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.DEVNULL, env=env)
        if hasattr(os, "wait4"):
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu, rss = ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024
        else:  # no wait4 (Windows): wall time only
            proc.wait()
            wall = time.perf_counter() - t
            cpu = rss = float("nan")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} exited {proc.returncode}")
    return {"wall": wall, "cpu": cpu, "rss_mb": rss}


def _busy() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def others_busy(seconds: float = 2.0) -> float | None:
    """Cores kept busy by other processes over ``seconds`` (nothing of the bench runs)."""
    a = _busy()
    time.sleep(seconds)
    b = _busy()
    if a is None or b is None or b[1] == a[1]:
        return None
    return (b[0] - a[0]) / (b[1] - a[1]) * (os.cpu_count() or 1)


def load1() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def wait_calm(calm: float, budget: list[float]) -> tuple[float | None, bool]:
    """Wait (from ``budget[0]`` seconds left) until others keep < ``calm`` cores busy."""
    while True:
        busy = others_busy()
        if busy is None or busy < calm:
            return busy, True
        if budget[0] <= 0:
            return busy, False
        time.sleep(min(8.0, budget[0]))
        budget[0] -= 10.0


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def compare_expected(scan: dict[str, Any], exp: dict[str, Any]) -> list[str]:
    """Differences between the scanner's per-day token sums and expected.json's (empty:
    equal). Entries are compared apart (:func:`entries_note`)."""
    diffs = []
    keys = (*FIELDS, "cache_1h_tokens")
    days = sorted(set(scan["daily"]) | set(exp["daily"]))
    for day in days:
        a, b = scan["daily"].get(day, {}), exp["daily"].get(day, {})
        for k in keys:
            if a.get(k, 0) != b.get(k, 0):
                diffs.append(f"{day} {k}: scanner {a.get(k, 0):,} expected {b.get(k, 0):,}")
    for k in keys:
        if scan["totals"][k] != exp["totals"][k]:
            diffs.append(f"total {k}: scanner {scan['totals'][k]:,} expected {exp['totals'][k]:,}")
    return diffs


def entries_note(scan: dict[str, Any], exp: dict[str, Any]) -> str:
    """The scanner's record count against expected.json's responses: the scanner keeps a
    record per line without both ids (the synthetic error lines, all-zero usage), which the
    generator does not count as responses."""
    a, b = scan["totals"]["entries"], exp["totals"]["entries"]
    extra = a - b
    why = (
        "= the synthetic lines (no requestId, zero usage), kept as records but not responses"
        if extra == exp.get("synthetic_lines")
        else "UNEXPLAINED"
    )
    return f"scanner {a:,} records, expected {b:,} responses: {extra:+,} {why if extra else ''}"


# --decompose: tokmon's scan alone (its parse rules, reading with fingerprints, pricing, its
# worker pool; no store, no report): the rows are counted and dropped. Internal API: when it
# moves, this contestant fails and says so.
_TOKMON_SCAN = r"""
import os
from pathlib import Path
from tokmon.core.discovery import transcript_stats
from tokmon.core.scan import scan_all
root = Path(os.environ["CLAUDE_CONFIG_DIR"]) / "projects"
items = [(k, 0, st.st_size, "") for k, st in sorted(transcript_stats(root))]
rows = 0
for res in scan_all(items, pricing=(None, "calculate"), ordered=False):
    rows += len(res.rows)
print(rows)
"""
NAMES = (
    "scanner",
    "scanner+utf8",
    "tokmon scan py",
    "tokmon scan procs",
    "tokmon scan",
    "tokmon py",
    "tokmon procs",
    "tokmon",
    "ccusage",
)
# --native-ab: tokmon with the pure-Python scanner (its worker process), and with the native
# scanner in a worker process instead of threads
VARIANT_ENV = {
    "tokmon scan py": {"TOKMON_NO_NATIVE": "1"},
    "tokmon py": {"TOKMON_NO_NATIVE": "1"},
    "tokmon scan procs": {"TOKMON_SCAN_POOL": "process"},
    "tokmon procs": {"TOKMON_SCAN_POOL": "process"},
}


def others_during(
    before: tuple[int, int] | None, after: tuple[int, int] | None, wall: float, ours: float
) -> float | None:
    """Cores the other processes kept busy during a round: all busy CPU time over the round
    (/proc/stat) less the CPU time of the round's own runs, per second of the round."""
    if before is None or after is None or after[1] == before[1] or wall <= 0:
        return None
    busy = (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1) * wall
    return max(0.0, (busy - ours) / wall)


def _figures(f: list[dict[str, float]], cc: list[dict[str, float]] | None) -> dict[str, Any]:
    """Medians of wall and CPU, the largest peak RSS, and the medians of the per-round
    ratios to ccusage's run of the same round."""
    res: dict[str, Any] = {
        "wall": _med([x["wall"] for x in f]),
        "cpu": _med([x["cpu"] for x in f]),
        "rss_mb": max(x["rss_mb"] for x in f),
        "n": len(f),
    }
    if cc is not None:
        res["wall_ratio"] = _med([a["wall"] / b["wall"] for a, b in zip(f, cc, strict=True)])
        res["cpu_ratio"] = _med([a["cpu"] / b["cpu"] for a, b in zip(f, cc, strict=True)])
    return res


def bench_size(
    be: Any,
    dest: Path,
    rounds: int,
    cc_bin: Path | None,
    calm: float,
    wait: float,
    work: Path,
    decompose: bool = False,
    native_ab: bool = False,
) -> dict[str, Any]:
    """Interleaved rounds at one size; figures and totals checks. ``decompose`` adds the
    scanner with tokmon's UTF-8 rule and tokmon's scan alone; ``native_ab`` tokmon's runs
    again with the pure-Python scanner (TOKMON_NO_NATIVE=1)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    base.pop("PYTHONDONTWRITEBYTECODE", None)  # as bench_engine: run from bytecode caches
    base.update({"CLAUDE_CONFIG_DIR": str(dest), "HOME": str(work), "TZ": "UTC", "NO_COLOR": "1"})
    out = {n: work / f"{n.replace(' ', '_')}.out" for n in NAMES}
    me = [sys.executable, str(Path(__file__).resolve()), "--scan", str(dest)]
    cmds: dict[str, list[str]] = {"scanner": me}
    if decompose:
        cmds["scanner+utf8"] = [*me, "--utf8"]
        if native_ab:
            cmds["tokmon scan py"] = [sys.executable, "-c", _TOKMON_SCAN]
            cmds["tokmon scan procs"] = [sys.executable, "-c", _TOKMON_SCAN]
        cmds["tokmon scan"] = [sys.executable, "-c", _TOKMON_SCAN]
    if native_ab:
        cmds["tokmon py"] = [sys.executable, "-m", "tokmon", "daily", "--json"]
        cmds["tokmon procs"] = [sys.executable, "-m", "tokmon", "daily", "--json"]
    cmds["tokmon"] = [sys.executable, "-m", "tokmon", "daily", "--json"]
    if cc_bin is not None:
        cmds["ccusage"] = [str(cc_bin), "claude", "daily", "--json", "--offline"]
    names = list(cmds)
    be.warm_page_cache(dest)
    for name in names:  # one unmeasured run each (page cache, bytecode, the binary's pages)
        home = Path(tempfile.mkdtemp(dir=work))
        env = {**base, "TOKMON_HOME": str(home)}
        env.update(VARIANT_ENV.get(name, {}))
        run(cmds[name], env, out[name])
        shutil.rmtree(home, ignore_errors=True)
    figs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    loads: list[dict[str, Any]] = []
    budget = [wait]
    for r in range(rounds):
        busy, calm_ok = wait_calm(calm, budget)
        loads.append({"load1": load1(), "others_busy": busy, "calm": calm_ok})
        order = names[r % len(names) :] + names[: r % len(names)]
        before, t0, ours = _busy(), time.perf_counter(), 0.0
        for name in order:
            env = dict(base)
            env.update(VARIANT_ENV.get(name, {}))
            home = None
            if name in ("tokmon", "tokmon py", "tokmon procs"):
                home = Path(tempfile.mkdtemp(dir=work))  # empty: a cold run
                env["TOKMON_HOME"] = str(home)
            figs[name].append(run(cmds[name], env, out[name]))
            ours += figs[name][-1]["cpu"]
            if home is not None:
                shutil.rmtree(home, ignore_errors=True)
        loads[-1]["others_during"] = others_during(before, _busy(), time.perf_counter() - t0, ours)
        during = loads[-1]["others_during"]
        loads[-1]["quiet"] = during is not None and during < calm
        print(
            f"  round {r + 1}: load {loads[-1]['load1']}, others busy "
            + (f"{busy:.2f}" if busy is not None else "n/a")
            + (" (not calm)" if not calm_ok else "")
            + ", during "
            + (f"{during:.2f}" if during is not None else "n/a")
            + "; "
            + ", ".join(
                f"{n} {figs[n][-1]['wall']:.3f}s/{figs[n][-1]['cpu']:.2f}cpu" for n in names
            ),
            file=sys.stderr,
        )
    res: dict[str, Any] = {"rounds": rounds, "loads": loads, "runs": figs}
    quiet = [i for i, x in enumerate(loads) if x["quiet"]]
    res["quiet_rounds"] = len(quiet)
    for name in names:
        res[name] = _figures(figs[name], figs.get("ccusage"))
        if len(quiet) >= 3:  # the same figures over the rounds the others left alone
            res[name]["quiet"] = _figures(
                [figs[name][i] for i in quiet],
                [figs["ccusage"][i] for i in quiet] if "ccusage" in figs else None,
            )
    # totals
    exp = json.loads((dest / "expected.json").read_bytes())
    scan = json.loads(out["scanner"].read_bytes())
    exp_tuple = tuple(
        exp["totals"][k] for k in ("input_tokens", "output_tokens", "cache_creation_tokens")
    ) + (exp["totals"]["cache_read_tokens"],)
    exp_tuple += (sum(exp_tuple),)
    scan_tuple = tuple(scan["totals"][k] for k in FIELDS)
    scan_tuple += (sum(scan_tuple),)
    tok = be.token_totals(out["tokmon"].read_bytes())
    totals: dict[str, Any] = {
        "keys": list(be.TOKEN_KEYS),
        "expected": list(exp_tuple),
        "scanner": list(scan_tuple),
        "scanner_vs_expected_per_day": compare_expected(scan, exp) or "equal",
        "tokmon_vs_expected": be.compare(tok, exp_tuple),
        "scanner_entries": entries_note(scan, exp),
        "scanner_lines": {"decoded": scan["lines_decoded"], "rejected": scan["lines_rejected"]},
        "expected_malformed_lines": exp.get("malformed_lines"),
    }
    for name in ("tokmon py", "tokmon procs"):
        if name in figs:
            tok_v = be.token_totals(out[name].read_bytes())
            totals[f"{name.replace(' ', '_')}_vs_expected"] = be.compare(tok_v, exp_tuple)
    if "ccusage" in figs:
        totals["ccusage_vs_expected"] = be.compare(
            be.token_totals(out["ccusage"].read_bytes()), exp_tuple
        )
    res["totals"] = totals
    res["bytes"] = scan["bytes"]
    res["files"] = scan["files"]
    return res


def _table(s: dict[str, Any], title: str) -> None:
    n = next(iter(v["n"] for k, v in s.items() if k in NAMES))
    print(
        f"{title + f' ({n})':22}{'wall s':>9}{'CPU s':>9}{'peak MB':>9}{'wall/cc':>9}"
        f"{'CPU/cc':>9}{'target':>8}"
    )
    for name in NAMES:
        if name not in s:
            continue
        f = s[name]
        wr, cr = f.get("wall_ratio"), f.get("cpu_ratio")
        verdict = ""
        if name != "ccusage" and wr is not None:
            verdict = "PASS" if wr <= TARGET else "FAIL"
        print(
            f"  {name:20}{f['wall']:9.3f}{f['cpu']:9.2f}{f['rss_mb']:9.0f}"
            f"{(f'{wr:.2f}x' if wr is not None else 'n/a'):>9}"
            f"{(f'{cr:.2f}x' if cr is not None else 'n/a'):>9}{verdict:>8}"
        )


def report(r: dict[str, Any]) -> None:
    print(f"machine: {r['cpus']} CPUs, load {r['load_start']} at start, {r['load_end']} at end")
    print(f"ccusage: {r['ccusage'] or 'not installed (ratios n/a)'}; python {r['python']}")
    for mb, s in r["sizes"].items():
        print(
            f"\n== {mb} MB: {s['bytes'] / 2**20:.0f} MiB in {s['files']} files; "
            f"medians of {s['rounds']} interleaved rounds"
        )
        loads = [x["load1"] for x in s["loads"] if x["load1"] is not None]
        before = [x["others_busy"] for x in s["loads"] if x["others_busy"] is not None]
        during = [x.get("others_during") for x in s["loads"]]
        if loads:
            print(f"load (1 min) at each round: {', '.join(f'{x:.2f}' for x in loads)}")
        print(
            "cores the other processes kept busy, before / during each round: "
            + ", ".join(
                f"{b:.2f}/{d:.2f}" if d is not None else f"{b:.2f}/n/a"
                for b, d in zip(before, during, strict=False)
            )
            + f" ({s.get('quiet_rounds', 0)} quiet rounds: < {r['calm']} during)"
        )
        _table(s, "all rounds")
        if any("quiet" in s.get(n, {}) for n in NAMES):
            _table({n: s[n]["quiet"] for n in NAMES if n in s}, "quiet rounds only")
        t = s["totals"]
        print(f"totals ({', '.join(t['keys'])}): expected {t['expected']}")
        per_day = t["scanner_vs_expected_per_day"]
        print(
            f"  scanner vs expected.json (per day and in all): "
            f"{'equal' if per_day == 'equal' else 'DIFFER'}"
        )
        if per_day != "equal":
            for line in per_day[:12]:
                print(f"    {line}")
        print(f"  scanner records: {t['scanner_entries']}")
        print(f"  tokmon daily vs expected.json: {t['tokmon_vs_expected']}")
        for k in ("tokmon_py", "tokmon_procs"):
            if f"{k}_vs_expected" in t:
                print(f"  {k.replace('_', ' ')} daily vs expected.json: {t[k + '_vs_expected']}")
        if "ccusage_vs_expected" in t:
            print(f"  ccusage daily vs expected.json: {t['ccusage_vs_expected']}")
        sl = t["scanner_lines"]
        print(
            f'  scanner: {sl["decoded"]:,} lines carrying "usage" decoded, '
            f"{sl['rejected']:,} rejected by the decoder (expected.json's malformed lines: "
            f"{t['expected_malformed_lines']}; the scanner looks at no other line)"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="the minimal msgspec scanner vs tokmon vs ccusage")
    ap.add_argument("--scan", type=Path, help="run the minimal scanner on CONFIG_DIR, print JSON")
    ap.add_argument("--mb", type=float, nargs="+", default=[500.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--cache", type=Path, default=None, help="corpus cache dir")
    ap.add_argument(
        "--calm", type=float, default=0.3, help="max cores other processes may keep busy"
    )
    ap.add_argument("--wait", type=float, default=240.0, help="s to wait for calm, per size")
    ap.add_argument(
        "--decompose",
        action="store_true",
        help="also run the scanner with tokmon's UTF-8 rule and tokmon's scan alone",
    )
    ap.add_argument(
        "--native-ab",
        action="store_true",
        help="also run tokmon with the pure-Python scanner and with scan worker processes",
    )
    ap.add_argument(
        "--ladder", action="store_true", help="CPU of the scan's pieces in one process, then exit"
    )
    ap.add_argument(
        "--phases", action="store_true", help="timers inside cold tokmon daily runs, then exit"
    )
    ap.add_argument("--utf8", action="store_true", help="with --scan: check UTF-8 as tokmon does")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.ladder:
        be = _bench_engine()
        for mb in args.mb:
            dest = be.cached_corpus_dir(mb, args.seed, args.cache)
            times = ladder(dest, args.rounds)
            print(
                f"{mb:g} MB ({dest}), one process, CPU s over {args.rounds} rounds, load {load1()}"
            )
            for name, ts in times.items():
                print(f"  {name:34}{min(ts):8.3f} min {_med(ts):8.3f} median")
        return 0
    if args.phases:
        be = _bench_engine()
        with tempfile.TemporaryDirectory(prefix="tokmon-floor-") as tmp:
            for mb in args.mb:
                dest = be.cached_corpus_dir(mb, args.seed, args.cache)
                be.warm_page_cache(dest)
                figs = phases(dest, args.rounds, Path(tmp))
                print(f"{mb:g} MB ({dest}): cold daily, medians of {args.rounds}, load {load1()}")
                for name, wall, cpu in figs:
                    w = " " * 10 if wall != wall else f"{wall:8.3f} s"  # NaN: not timed
                    c = "" if cpu != cpu else f"{cpu:8.3f} CPU s"
                    if name.endswith("(count)"):
                        name, c = name[: -len(" (count)")], f"{cpu:8.0f}"
                    print(f"  {name:40}{w} {c}")
        return 0
    if args.scan is not None:
        sys.stdout.write(json.dumps(minimal_scan(args.scan, args.utf8)) + "\n")
        return 0
    be = _bench_engine()
    cc_bin = be.ccusage_path()
    r: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "calm": args.calm,
        "load_start": be.load_avg(),
        "ccusage": str(cc_bin) if cc_bin else None,
        "python": sys.version.split()[0],
        "sizes": {},
    }
    ok = True
    with tempfile.TemporaryDirectory(prefix="tokmon-floor-") as tmp:
        for mb in args.mb:
            dest = be.cached_corpus_dir(mb, args.seed, args.cache)
            if not (dest / "expected.json").is_file():
                dest, _ = be.prepare_corpus(mb, args.seed, dest)
            print(f"{mb:g} MB: {dest}", file=sys.stderr)
            s = bench_size(
                be,
                dest,
                args.rounds,
                cc_bin,
                args.calm,
                args.wait,
                Path(tmp),
                args.decompose,
                args.native_ab,
            )
            r["sizes"][f"{mb:g}"] = s
            t = s["totals"]
            ok = ok and t["scanner_vs_expected_per_day"] == "equal"
            ok = ok and t["tokmon_vs_expected"] == "equal"
            ok = ok and t.get("tokmon_py_vs_expected", "equal") == "equal"
            ok = ok and t.get("tokmon_procs_vs_expected", "equal") == "equal"
    r["load_end"] = be.load_avg()
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        report(r)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
