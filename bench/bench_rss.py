#!/usr/bin/env python3
"""Where the peak RSS of a cold ``daily --json`` goes: its memory sampled through the run, per
phase, and what held it at the peak.

    python bench/bench_rss.py [--mb 500 [2000 ...]] [--base DIR] [--runs 1] [--json]

Per size (the cached corpus of bench_engine.py, ``$TOKMON_BENCH_DIR``), a cold run (empty
TOKMON_HOME, the page cache warmed first) in a subprocess whose own thread samples every 3 ms
(Linux: /proc/self/status; the sampling costs CPU, so these runs give memory only): RSS, its
anonymous and file-backed parts, the C heap (glibc ``mallinfo2``: in use, and freed but kept by
malloc) and SQLite's allocations (``sqlite3_memory_used`` of the library ``_sqlite3`` links).
The rest of the anonymous memory is Python's object arenas (its own mmap), thread stacks and
the like. Phases end at: imports done (the engine's, the CLI's and the ``reports`` group's),
the engine opened and the arguments parsed (the first file listing starts), the file listing
done, ``scan_all`` called (the build opened), the scan's end (both threads or processes; the direct load of its first stream is
inside it), ``merge_staged`` (the later streams merged, the indexes, the stored sums), the
build published, the report written. Per phase: RSS at its end and its maximum; then the
sample at the peak, split as above. ``--base DIR``: the same for another checkout of tokmon
(imported through PYTHONPATH; its C extension built in place), run alternately. Each
variant runs from a byte-compiled copy of its ``tokmon`` package (see ``compiled``). Exit code 1
when a run's totals differ from the corpus's expected.json.

Then a few facts of the run: whether msgspec was imported, the bytes the native scanner left
to Python (``parser._fallback_bytes``), whether ``_scan`` tuned malloc, glibc's arenas in use.

The process's own high-water mark (VmHWM: getrusage's figure, which bench_engine.py and
bench_build.py print, without the pages of the parent a fork copied before the exec) is
printed too; the sampler thread and ctypes add ~0.5-1 MB to it. Not run by CI (docs/performance.md, ninth
session).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

PROBE = r"""
import contextlib, ctypes, json, sys, threading, time
out_path, report_path = sys.argv[1], sys.argv[2]

class MI2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

try:
    _libc = ctypes.CDLL(None)
    _libc.mallinfo2.restype = MI2
except (OSError, AttributeError):
    _libc = None
_sq = None

def _sqlite_used():
    global _sq
    if _sq is None:
        try:
            import _sqlite3
            _sq = ctypes.CDLL(_sqlite3.__file__)
            _sq.sqlite3_memory_used.restype = ctypes.c_int64
        except (OSError, AttributeError, ImportError):
            _sq = False
    return _sq.sqlite3_memory_used() / 2**20 if _sq else 0.0

def sample():
    d = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS", "RssAnon", "RssFile")):
                k, v = line.split(":")
                d[k] = int(v.split()[0]) / 1024
    if _libc is not None:
        m = _libc.mallinfo2()
        d["heap_used"] = (m.uordblks + m.hblkhd) / 2**20
        d["heap_kept"] = m.fordblks / 2**20
    d["sqlite"] = _sqlite_used()
    return d

marks, samples, stop = [], [], []
t0 = time.perf_counter()

def mark(name):
    marks.append((time.perf_counter() - t0, name, sample()))

def sampler():
    while not stop:
        samples.append((time.perf_counter() - t0, sample()))
        time.sleep(0.003)

from tokmon.core import ledger
from tokmon.core.engine import ingest, store
from tokmon.__main__ import main
import tokmon.cli.main, tokmon.cli.reports  # the CLI and the command's group: imports too
from tokmon.core.parser import native_scanner
native_scanner()  # (as the run does; before the sampler thread: _scan may set malloc's arenas)
mark("imports")
real = ingest.scan_all
def scan_all(*a, **k):
    mark("build opened")
    yield from real(*a, **k)
    mark("scan")
ingest.scan_all = scan_all
if hasattr(ingest, "transcript_stats"):  # the file listing, inside the engine's refresh
    listing = ingest.transcript_stats
    def transcript_stats(*a, **k):
        if not any(m[1] == "engine opened, args parsed" for m in marks):
            mark("engine opened, args parsed")
        try:
            return listing(*a, **k)
        finally:
            mark("file listing")
    ingest.transcript_stats = transcript_stats
def after(cls, attr, name):
    f = getattr(cls, attr)
    def w(*a, **k):
        try:
            return f(*a, **k)
        finally:
            mark(name)
    setattr(cls, attr, w)
after(ledger.LedgerDB, "merge_staged", "merge, indexes, stored sums")
after(store.Store, "_publish_build", "build published")
th = threading.Thread(target=sampler, daemon=True)
th.start()
with open(out_path, "w") as out, contextlib.redirect_stdout(out):
    main(["daily", "--json"])
mark("report")
stop.append(1)
th.join()
import tokmon
facts = {"msgspec imported": "msgspec" in sys.modules}
try:
    from tokmon.core import parser
    facts["bytes left to Python by the native scanner"] = getattr(parser, "_fallback_bytes", None)
    from tokmon._native import _scan
    facts["malloc tuned by _scan"] = getattr(_scan, "MALLOC_TUNED", None)
except ImportError:
    pass
if _libc is not None:  # glibc's heaps (arenas) in use
    import re, tempfile
    _libc.fopen.restype = ctypes.c_void_p
    _libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    _libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    _libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile("r", suffix=".xml") as tmp:
        fp = _libc.fopen(tmp.name.encode(), b"w")
        if fp:
            _libc.malloc_info(0, fp)
            _libc.fclose(fp)
            facts["malloc arenas"] = len(re.findall(r"<heap nr=", tmp.read()))
peak = max(samples + [(t, d) for t, _, d in marks], key=lambda s: s[1]["VmRSS"])
with open("/proc/self/status") as fh:  # (not getrusage: it counts the parent's pages a
    hwm = [int(x.split()[1]) / 1024 for x in fh if x.startswith("VmHWM")]  # fork copied)
with open(report_path, "w") as fh:
    json.dump({"marks": marks, "samples": samples, "peak": peak, "src": tokmon.__file__,
               "maxrss": hwm[0], "facts": facts}, fh)
"""


def _bench_engine() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_engine", REPO / "bench" / "bench_engine.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_once(corpus: Path, src: Path | None, work: Path) -> dict[str, Any]:
    """One sampled cold run over ``corpus`` (``src``: the checkout to import, None = this)."""
    home = Path(tempfile.mkdtemp(dir=work))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKMON_")}
    env.update(CLAUDE_CONFIG_DIR=str(corpus), TOKMON_HOME=str(home), TZ="UTC", NO_COLOR="1")
    env["PYTHONPATH"] = str(src if src is not None else REPO)
    out, rep = work / "out.json", work / "report.json"
    try:
        subprocess.run(
            [sys.executable, "-c", PROBE, str(out), str(rep)],
            env=env,
            cwd=work,  # (not a checkout: only PYTHONPATH's tokmon is imported)
            check=True,
            timeout=3600,
            stderr=subprocess.DEVNULL,
        )
        fig: dict[str, Any] = json.loads(rep.read_text())
        t = json.loads(out.read_text())["totals"]
        fig["totals"] = [t[k] for k in ("inputTokens", "outputTokens")]
        fig["totals"] += [t[k] for k in ("cacheCreationTokens", "cacheReadTokens")]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    fig["phases"] = phases(fig)
    return fig


def compiled(src: Path | None, work: Path, name: str) -> Path:
    """A copy of a checkout's ``tokmon`` package under ``work``, byte-compiled, to import: a
    checkout without ``__pycache__`` (fresh, read-only, or under PYTHONDONTWRITEBYTECODE)
    would compile every module in every run, as no installed tokmon does (~0.1 s of CPU; the
    tenth session found the base of its A/B so). Its built extensions are copied along."""
    root = work / f"src-{name}"
    shutil.copytree(
        (src if src is not None else REPO) / "tokmon",
        root / "tokmon",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(root / "tokmon")],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    return root


def expected(corpus: Path) -> list[int]:
    """The generator's totals (expected.json) in the order of ``run_once``'s."""
    t = json.loads((corpus / "expected.json").read_text())["totals"]
    keys = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
    return [int(t[k]) for k in keys]


def phases(fig: dict[str, Any]) -> list[dict[str, Any]]:
    """Per phase (between two marks): RSS at its end and the largest sampled in it."""
    rows, start = [], 0.0
    for t, name, d in fig["marks"]:
        inside = [s["VmRSS"] for ts, s in fig["samples"] if start <= ts <= t] + [d["VmRSS"]]
        rows.append({"phase": name, "t": t, "end": d["VmRSS"], "max": max(inside)})
        start = t
    return rows


def summary(fig: dict[str, Any]) -> dict[str, float]:
    """The sample at the peak, split: file-backed, SQLite, the rest of the C heap in use,
    freed but kept by malloc, and the rest (Python's arenas, stacks)."""
    _, d = fig["peak"]
    anon = d.get("RssAnon", 0.0)
    used, kept, sq = d.get("heap_used", 0.0), d.get("heap_kept", 0.0), d.get("sqlite", 0.0)
    return {
        "rss": d["VmRSS"],
        "file-backed (code, libraries)": d.get("RssFile", 0.0),
        "SQLite (page caches, sorter)": sq,
        "C heap in use, not SQLite": used - sq,
        "C heap freed, kept by malloc": kept,
        "other anonymous (Python arenas, stacks)": anon - used - kept,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[500.0])
    ap.add_argument("--base", type=Path, help="another checkout of tokmon to run alternately")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    be = _bench_engine()
    variants: list[tuple[str, Path | None]] = [("now", None)]
    if args.base is not None:
        variants.insert(0, ("base", args.base.resolve()))
    report: dict[str, Any] = {"loadavg": be.load_avg(), "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copies = {name: compiled(src, work, name) for name, src in variants}
        for mb in args.mb:
            corpus = be.cached_corpus_dir(mb, 0)
            if not (corpus / "expected.json").is_file():
                corpus, _ = be.prepare_corpus(mb, 0, corpus)
            be.warm_page_cache(corpus)
            figs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
            for _ in range(args.runs):
                for name, _src in variants:
                    figs[name].append(run_once(corpus, copies[name], work))
            report["sizes"][f"{mb:g}"] = figs
            want = expected(corpus)
            equal = all(f["totals"] == want for runs in figs.values() for f in runs)
            report["totals_equal"] = report.get("totals_equal", True) and equal
            if args.json:
                continue
            gib = mb / 1024
            print(f"\n{mb:g} MB ({corpus}), load {be.load_avg()}")
            for name, runs in figs.items():
                fig = min(runs, key=lambda f: f["maxrss"])  # the quietest of the runs
                print(f"  {name}: {dict(variants)[name] or REPO} (compiled copy: {fig['src']})")
                print(f"    {'phase (ends at)':32s} {'t (s)':>7s} {'RSS end':>8s} {'max':>6s}")
                for row in fig["phases"]:
                    print(
                        f"    {row['phase']:32s} {row['t']:7.3f} {row['end']:8.1f} "
                        f"{row['max']:6.1f}"
                    )
                print(f"    at the peak (t {fig['peak'][0]:.3f} s), MB:")
                for what, v in summary(fig).items():
                    print(f"      {what:42s} {v:6.1f}")
                peaks = [f["maxrss"] for f in runs]
                print(
                    f"    peak (VmHWM): {statistics.median(peaks):.1f} MB "
                    f"({statistics.median(peaks) / gib:.0f} MB per GiB of transcripts)"
                )
                for what, v in fig.get("facts", {}).items():
                    print(f"    {what}: {v}")
            print(f"  totals vs expected.json: {'equal' if equal else 'DIFFER'}")
    if args.json:
        print(json.dumps(report))
    return 0 if report.get("totals_equal", True) else 1


if __name__ == "__main__":
    sys.exit(main())
