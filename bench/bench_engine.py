#!/usr/bin/env python3
"""Benchmark tokmon's engine against ccusage on generated corpora of one or more sizes.

    python bench/bench_engine.py [--mb 500 [2000 ...]] [--seed 0] [--runs 3] [--cache DIR]
                                 [--keep DIR] [--json] [--in-place]

For each size, on a generated corpus cached under ``--cache`` (default
``${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}/corpus<MB>``, ``-seed<N>`` appended for a
seed other than 0; reused when present, skipped with a clear line when the disk is short), with
the OS page cache warmed first and again before each cold run (so "cold" means "no tokmon
state", not "nothing in RAM"; the report prints how long those reads took), it
runs ``tokmon <cmd> --json`` (as a subprocess) and ``ccusage claude <cmd>
--json --offline`` (when installed: env TOKMON_CCUSAGE or
<repo>/.cache/ccusage/node_modules/.bin/ccusage) alternately, each figure the median of
``--runs``:

* cold: ``daily`` with an empty TOKMON_HOME (ccusage has no cache: every run is cold); peak RSS
  of a separate psutil-sampled run, in MB and in MB per GiB of transcripts; each run's wall,
  and the medians of what it was made of (system CPU, page faults, context switches: wait4;
  the host's steal and other processes' cores during it: /proc/stat); with ``--calm``, each
  pair waits for a quiet machine and is measured again when others kept ``--calm`` cores
  busy during it;
* totals: tokmon's ``daily`` and ``session`` token totals against ccusage's (exactly equal) and
  against the generator's expected.json;
* warm: ``daily``, ``session`` and ``blocks`` with nothing changed;
* after append: ``daily`` and ``session``, each run right after appending one complete
  assistant line to the largest session file (truncated back afterwards);
* flat with history: each warm / after-append time at the largest size divided by the one at
  the smallest size, measured again after every size's own phases in ``--runs`` rounds in
  which the sizes alternate (tokmon only, on the warm homes those phases left): this VM's
  speed drifts by +-20% over the minutes between two sizes' phases.

The tokmon measured is this checkout installed the way a user installs it (``scripts/install.py``:
a non-editable ``pip install`` into a venv, cached per source hash under
``$TOKMON_BENCH_DIR/installed``, see bench/_installed.py), run as its ``tokmon`` console script;
``--in-place`` measures the old way, ``python -m tokmon`` on the interpreter running this script
(the editable install of scripts/test.sh, whose ``site`` costs more). The report names which.

Prints the figures side by side with ratios, the machine load (os.getloadavg at start and end)
and PASS/FAIL per target (docs/performance.md). Exit code 1 when the totals differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _installed import Target, add_argument, bench_dir, resolve  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGETS = {
    "cold_ratio": 0.45,  # tokmon cold / ccusage (issue 12: at 500 MB and at 2 GB)
    "cold_rss_mb_per_gb": 60.0,  # peak RSS of a cold scan per GiB of transcripts
    "report_s": 0.15,  # warm and after-append reports (issue 12: at 2 GB)
    "flat_ratio": 1.3,  # largest / smallest corpus time per report (flat with history)
}
WARM_COMMANDS = ("daily", "session", "blocks")
APPEND_COMMANDS = ("daily", "session")
# what a cold run's time was made of, per run (the wrapper's figures; absent where the OS has none)
DIAGNOSTICS = ("sys", "majflt", "minflt", "nvcsw", "nivcsw", "steal", "others")
RSS_MIN_MB = 400.0  # below this the interpreter's own ~30 MB swamps a per-GB figure
TOKEN_KEYS = (
    "inputTokens",
    "outputTokens",
    "cacheCreationTokens",
    "cacheReadTokens",
    "totalTokens",
)

# Runs argv[3:] with stdout to argv[1]; argv[2] == "1" samples the tree RSS; prints {"wall": s,
# "cpu": user + system s of the waited-for descendants, "rss_kb": peak RSS of the largest
# descendant (getrusage), "tree_kb": peak summed RSS of the process tree (psutil sampling)}, and
# where the OS has them (wait4, /proc/stat) what the run's time was made of: "sys" (system CPU
# s), "majflt"/"minflt" (page faults read from disk / not), "nvcsw"/"nivcsw" (voluntary /
# involuntary context switches), "steal" (CPU s the hypervisor gave other guests over all CPUs
# during the run) and "others" (cores other processes kept busy during it: all busy time less
# steal less the run's own CPU, per second of the run). It reads /proc/stat itself, not through
# bench_floor's _busy, so that the interval is the run's own and steal is kept apart.
_WRAPPER = r"""
import json, os, subprocess, sys, time
try:
    import psutil
except ImportError:
    psutil = None
def stat():
    try:
        with open("/proc/stat") as fh:
            v = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return v if len(v) >= 8 else None
s0 = stat()
t = time.perf_counter()
tree = 0
own = None
with open(sys.argv[1], "wb") as out:
    proc = subprocess.Popen(sys.argv[3:], stdout=out, stderr=subprocess.DEVNULL)
    if psutil is not None and sys.argv[2] == "1":
        try:
            ps = psutil.Process(proc.pid)
            while proc.poll() is None:
                try:
                    rss = ps.memory_info().rss
                    for ch in ps.children(recursive=True):
                        try:
                            rss += ch.memory_info().rss
                        except psutil.Error:
                            pass
                    tree = max(tree, rss)
                except psutil.Error:
                    pass
                time.sleep(0.005)
        except psutil.Error:
            pass
    if hasattr(os, "wait4") and proc.returncode is None:  # (the sampling's poll reaps it)
        _, status, own = os.wait4(proc.pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        proc.returncode = rc
    else:
        rc = proc.wait()
wall = time.perf_counter() - t
s1 = stat()
try:
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss, cpu = ru.ru_maxrss, ru.ru_utime + ru.ru_stime
    if sys.platform == "darwin":
        rss //= 1024
except ImportError:
    rss = cpu = None
fig = {"wall": wall, "cpu": cpu, "rss_kb": rss, "tree_kb": tree // 1024 or None, "rc": rc}
if own is not None:
    fig.update(sys=own.ru_stime, majflt=own.ru_majflt, minflt=own.ru_minflt, nvcsw=own.ru_nvcsw,
               nivcsw=own.ru_nivcsw)
if s0 is not None and s1 is not None and cpu is not None and wall > 0:
    hz = os.sysconf("SC_CLK_TCK")
    d = [b - a for a, b in zip(s0, s1)]
    steal = d[7] / hz
    busy = (sum(d) - d[3] - d[4]) / hz - steal
    fig.update(steal=steal, others=max(0.0, busy - cpu) / wall)
print(json.dumps(fig))
"""


class DiskShort(SystemExit):
    """Not enough free disk to generate a corpus (uncaught, it exits with its message)."""


def cached_corpus_dir(mb: float, seed: int, cache: Path | None = None) -> Path:
    """Where the corpus of this size and seed lives in the cache (``corpus500``,
    ``corpus2000-seed7``): the name the other bench scripts use for seed 0."""
    name = f"corpus{mb:g}" + (f"-seed{seed}" if seed else "")
    return (cache or bench_dir()) / name


def load_avg() -> list[float] | None:
    """1/5/15-minute load averages, or None where the OS has none (Windows)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def ccusage_path() -> Path | None:
    env = os.environ.get("TOKMON_CCUSAGE")
    p = Path(env) if env else REPO / ".cache" / "ccusage" / "node_modules" / ".bin" / "ccusage"
    return p if p.is_file() and os.access(p, os.X_OK) else None


def measure(
    cmd: list[str], env: dict[str, str], out_file: Path, sample: bool = False
) -> dict[str, Any]:
    """Run ``cmd`` once under the wrapper; wall seconds and peak RSS (MB).

    ``sample`` also polls the whole process tree's RSS with psutil (catches worker
    processes, but the polling costs CPU: such runs are used for memory only)."""
    res = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(out_file), "1" if sample else "0", *cmd],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    if res.returncode != 0:
        raise RuntimeError(f"wrapper failed: {res.stderr.strip()}")
    fig = json.loads(res.stdout.strip().splitlines()[-1])
    if fig["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} exited {fig['rc']}")
    peaks = [v for v in (fig["rss_kb"], fig["tree_kb"]) if v]
    return {
        **{k: fig[k] for k in DIAGNOSTICS if k in fig},
        "wall": fig["wall"],
        "cpu": fig.get("cpu"),
        "rss_mb": max(peaks) / 1024 if peaks else None,
        "single_rss_mb": fig["rss_kb"] / 1024 if fig["rss_kb"] else None,
        "tree_rss_mb": fig["tree_kb"] / 1024 if fig["tree_kb"] else None,
    }


def _jsonl_bytes(dest: Path) -> int:
    return sum(p.stat().st_size for p in (dest / "projects").rglob("*.jsonl"))


def _corpus_intact(dest: Path, files: list[str], total: int) -> bool:
    """Every generated file is there and their sizes add up to the generator's count."""
    try:
        return sum((dest / f).stat().st_size for f in files) == total
    except OSError:
        return False


def _in_cache(path: Path) -> bool:
    try:
        path.resolve().relative_to(bench_dir().resolve())
    except ValueError:
        return False
    return True


def check_disk(dest: Path, mb: float) -> None:
    """Raise :class:`DiskShort` unless ``dest``'s file system can hold an ``mb`` MiB corpus
    plus tokmon's state for it (a quarter of the corpus) and 512 MiB to spare."""
    probe = dest
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = int(mb * 2**20 * 1.25) + 512 * 2**20
    if free < need:
        raise DiskShort(
            f"skipping {mb:g} MB: generating it needs {need / 2**30:.1f} GiB free at {probe}, "
            f"{free / 2**30:.1f} GiB are (set TOKMON_BENCH_DIR or --cache elsewhere)"
        )


def prepare_corpus(mb: float, seed: int, keep: Path | None) -> tuple[Path, bool]:
    """Return (config dir, temporary?); reuse ``keep`` when it holds a corpus of that size.

    A corpus is generated into ``<keep>.partial`` and renamed when complete, so an interrupted
    generation is never reused; a cached corpus whose transcripts no longer add up to its
    expected.json (an interrupted append) is regenerated when it lies in :func:`bench_dir`
    (anything else is refused, never deleted). Raises :class:`DiskShort` when the disk is
    short."""
    from tokmon.demo import Expected, generate
    from tokmon.fsutil import atomic_write

    if keep is not None:
        keep = Path(keep)
        exp_file = keep / "expected.json"
        if exp_file.is_file():
            exp = Expected.from_json(exp_file.read_bytes())
            if exp.size_mb != mb or exp.seed != seed:
                raise SystemExit(
                    f"bench_engine: error: {keep} holds another corpus "
                    f"({exp.size_mb} MB, seed {exp.seed}); pick another --keep dir"
                )
            if _corpus_intact(keep, exp.files, exp.total_bytes):
                print(f"reusing corpus {keep}", file=sys.stderr)
                return keep, False
            if not _in_cache(keep):
                raise SystemExit(
                    f"bench_engine: error: {keep}'s transcripts differ from its expected.json "
                    "(an interrupted run?); delete it or pick another --keep dir"
                )
            print(f"{keep} was modified (interrupted run?): regenerating", file=sys.stderr)
            shutil.rmtree(keep)
        elif keep.exists() and any(keep.iterdir()):
            if not _in_cache(keep):
                raise SystemExit(f"bench_engine: error: {keep} is not empty and holds no corpus")
            shutil.rmtree(keep)
        dest, temporary = keep.with_name(keep.name + ".partial"), False
        if dest.exists() and _in_cache(dest):
            shutil.rmtree(dest)
    else:
        dest, temporary = Path(tempfile.mkdtemp(prefix="tokmon-bench-")) / "claude", True
    check_disk(dest, mb)
    t = time.perf_counter()
    print(f"generating a {mb:g} MB corpus (seed {seed}) ...", file=sys.stderr)
    try:
        exp = generate(dest, size_mb=mb, seed=seed)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"bench_engine: error: {exc}") from None
    atomic_write(dest / "expected.json", exp.to_json(), fsync=False)
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        dest.rename(keep)
        dest = keep
    print(
        f"generated {exp.total_bytes / 2**20:.0f} MiB ({len(exp.files)} files) in "
        f"{time.perf_counter() - t:.1f}s at {dest}",
        file=sys.stderr,
    )
    return dest, temporary


def warm_page_cache(dest: Path) -> float:
    """Read every transcript of ``dest`` (into the OS page cache); the seconds it took."""
    t = time.perf_counter()
    buf = bytearray(1 << 22)
    for p in (dest / "projects").rglob("*.jsonl"):
        with open(p, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass
    return time.perf_counter() - t


def append_line(path: Path) -> None:
    """Append one complete assistant line (a new API response) to a session file."""
    sid = path.stem
    cwd = "/bench"
    with open(path, "rb") as fh:
        for raw in fh:
            if b'"cwd":' in raw:
                try:
                    cwd = json.loads(raw).get("cwd", cwd)
                    break
                except ValueError:
                    continue
    # milliseconds, as Claude Code writes them (whole seconds made two appends within a second
    # tie, which a live append of a later record never does: the blocks were then regrouped)
    now = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    line = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": sid,
        "version": "2.1.42",
        "gitBranch": "main",
        "message": {
            "model": "claude-sonnet-4-5-20250929",
            "id": "msg_01bench" + uuid.uuid4().hex[:16],
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 3,
                "cache_creation_input_tokens": 120,
                "cache_read_input_tokens": 40_000,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 120,
                    "ephemeral_1h_input_tokens": 0,
                },
                "output_tokens": 42,
                "service_tier": "standard",
            },
        },
        "requestId": "req_011Cbench" + uuid.uuid4().hex[:12],
        "type": "assistant",
        "uuid": str(uuid.uuid4()),
        "timestamp": ts,
    }
    with open(path, "ab") as fh:
        fh.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")


def token_totals(output: bytes) -> tuple[int, ...] | str:
    """The token totals of a ``daily``/``session`` --json output, or why they are unreadable."""
    try:
        totals = json.loads(output)["totals"]
        return tuple(int(totals[k]) for k in TOKEN_KEYS)
    except (ValueError, KeyError, TypeError) as exc:
        return f"unreadable ({exc!r})"


def compare(a: tuple[int, ...] | str, b: tuple[int, ...] | str) -> str:
    if isinstance(a, str) or isinstance(b, str):
        return a if isinstance(a, str) else str(b)
    return "equal" if a == b else f"DIFFER {a} != {b}"


def _median(ms: list[dict[str, Any]]) -> float:
    return statistics.median(m["wall"] for m in ms)


def _median_cpu(ms: list[dict[str, Any]]) -> float | None:
    cpu = [m["cpu"] for m in ms if m.get("cpu") is not None]
    return statistics.median(cpu) if cpu else None


def _diagnostics(ms: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure of :data:`DIAGNOSTICS` the runs' values and their median (absent where the
    OS gave none)."""
    out: dict[str, Any] = {}
    for k in DIAGNOSTICS:
        xs = [m[k] for m in ms if m.get(k) is not None]
        if xs:
            out[k] = {"median": statistics.median(xs), "runs": [round(x, 4) for x in xs]}
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


class SizeBench:
    """All figures for one corpus size (one TOKMON_HOME per cold run, the last one kept warm)."""

    def __init__(
        self,
        dest: Path,
        runs: int,
        cc_bin: Path | None,
        work: Path,
        target: Target,
        calm: float | None = None,
        wait: float = 90.0,
    ) -> None:
        self.dest, self.runs, self.cc_bin, self.work = dest, runs, cc_bin, work
        self.target = target
        self.calm, self.wait = calm, wait
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
        # an installed tokmon runs from bytecode caches: without them (a checkout run with
        # PYTHONDONTWRITEBYTECODE=1) every run compiles its modules again (+50 ms here)
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        base.update(
            {"CLAUDE_CONFIG_DIR": str(dest), "HOME": str(work), "TZ": "UTC", "NO_COLOR": "1"}
        )
        self.base = target.env(base)
        self.home: Path | None = None
        self.homes = 0

    def tok(self, cmd: str) -> list[str]:
        return [*self.target.tokmon, cmd, "--json"]

    def cc(self, cmd: str) -> list[str]:
        assert self.cc_bin is not None
        return [str(self.cc_bin), "claude", cmd, "--json", "--offline"]

    def fresh_home(self) -> dict[str, str]:
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
        self.homes += 1
        self.home = self.work / f"tokmon-home-{self.homes}"
        return {**self.base, "TOKMON_HOME": str(self.home)}

    def warm_env(self) -> dict[str, str]:
        return {**self.base, "TOKMON_HOME": str(self.home)}

    def run(self, target: Path) -> dict[str, Any]:
        out_t, out_c = self.work / "tokmon.out", self.work / "ccusage.out"
        cc = self.cc_bin is not None
        r: dict[str, Any] = {}
        # cold, tokmon and ccusage alternating; then one psutil-sampled run each for memory
        tc: list[dict[str, Any]] = []
        cs: list[dict[str, Any]] = []
        others: list[float | None] = []
        floor: Any = None
        if self.calm is not None:  # (this directory is on sys.path: see _installed's import)
            import bench_floor

            floor = bench_floor
        budget = [self.wait]
        # each cold run on the cached corpus the module says ("cold" = no tokmon state):
        # read again just before it, so that pages the OS dropped meanwhile (memory others
        # took) are not read from disk by whichever tool runs first (it re-caches them for
        # the other: ~0.9x for tokmon with none cached, ~0.5x with part of it)
        rewarm: list[float] = []
        redone: list[float] = []
        while len(tc) < self.runs:
            if floor is not None:  # each pair on a machine others leave (nearly) idle
                others.append(floor.wait_calm(self.calm, budget)[0])
            rewarm.append(warm_page_cache(self.dest))
            t = measure(self.tok("daily"), self.fresh_home(), out_t)
            c = None
            if cc:
                rewarm.append(warm_page_cache(self.dest))
                c = measure(self.cc("daily"), self.base, out_c)
            # ... and left so while it ran: a pair during which other processes kept
            # --calm cores or more busy (a job that began after the probe) is measured
            # again, as many times as there are pairs at most
            during = max(
                (m.get("others") or 0.0) + (m.get("steal") or 0.0) / m["wall"]
                for m in (t, c)
                if m is not None
            )
            if self.calm is not None and during >= self.calm and len(redone) < self.runs:
                redone.append(round(during, 3))
                continue
            tc.append(t)
            if c is not None:
                cs.append(c)
        tok_daily = token_totals(out_t.read_bytes())
        cc_daily = token_totals(out_c.read_bytes()) if cc else None
        tmem = measure(self.tok("daily"), self.fresh_home(), out_t, sample=True)
        cmem = measure(self.cc("daily"), self.base, out_c, sample=True) if cc else None
        tok_rss = max((m["rss_mb"] or 0) for m in (*tc, tmem)) or None
        gib = self.bytes / 2**30
        if others:
            r["others_busy"] = others
        r["rewarm_s"] = [round(x, 3) for x in rewarm]
        r["redone"] = redone
        r["cold"] = {
            "tokmon_s": _median(tc),
            "ccusage_s": _median(cs) if cs else None,
            # CPU time (user + system of the process tree; steadier than wall under load)
            "tokmon_cpu_s": _median_cpu(tc),
            "ccusage_cpu_s": _median_cpu(cs),
            "ratio": _ratio(_median(tc), _median(cs) if cs else None),
            "tokmon_walls": [round(m["wall"], 4) for m in tc],
            "ccusage_walls": [round(m["wall"], 4) for m in cs],
            "tokmon_made_of": _diagnostics(tc),
            "ccusage_made_of": _diagnostics(cs),
            "tokmon_rss_mb": tok_rss,
            "tokmon_rss_single_mb": max((m["single_rss_mb"] or 0) for m in (*tc, tmem)) or None,
            "tokmon_rss_tree_mb": tmem["tree_rss_mb"],
            "tokmon_rss_mb_per_gb": tok_rss / gib if tok_rss else None,
            "ccusage_rss_mb": max((m["rss_mb"] or 0) for m in (*cs, cmem)) or None
            if cmem is not None
            else None,
        }
        # warm: one unmeasured run per report first (a report may build its own cache)
        for cmd in WARM_COMMANDS:
            measure(self.tok(cmd), self.warm_env(), out_t)
        tw: dict[str, list[dict[str, Any]]] = {c: [] for c in WARM_COMMANDS}
        cw: dict[str, list[dict[str, Any]]] = {c: [] for c in WARM_COMMANDS}
        totals: dict[str, Any] = {}
        for i in range(self.runs):
            for cmd in WARM_COMMANDS:
                tw[cmd].append(measure(self.tok(cmd), self.warm_env(), out_t))
                if i == 0 and cmd == "session":
                    totals["tok_session"] = token_totals(out_t.read_bytes())
                if cc:
                    cw[cmd].append(measure(self.cc(cmd), self.base, out_c))
                    if i == 0 and cmd == "session":
                        totals["cc_session"] = token_totals(out_c.read_bytes())
        r["warm"] = {
            cmd: {
                "tokmon_s": _median(tw[cmd]),
                "ccusage_s": _median(cw[cmd]) if cw[cmd] else None,
                "ratio": _ratio(_median(tw[cmd]), _median(cw[cmd]) if cw[cmd] else None),
            }
            for cmd in WARM_COMMANDS
        }
        # after a one-line append: every measured run follows its own fresh append
        size = target.stat().st_size
        ta: dict[str, list[dict[str, Any]]] = {c: [] for c in APPEND_COMMANDS}
        ca: dict[str, list[dict[str, Any]]] = {c: [] for c in APPEND_COMMANDS}
        try:
            for _ in range(self.runs):
                for cmd in APPEND_COMMANDS:
                    append_line(target)
                    ta[cmd].append(measure(self.tok(cmd), self.warm_env(), out_t))
                    if cc:
                        ca[cmd].append(measure(self.cc(cmd), self.base, out_c))
        finally:
            with open(target, "r+b") as fh:
                fh.truncate(size)
        r["append"] = {
            cmd: {
                "tokmon_s": _median(ta[cmd]),
                "ccusage_s": _median(ca[cmd]) if ca[cmd] else None,
                "ratio": _ratio(_median(ta[cmd]), _median(ca[cmd]) if ca[cmd] else None),
            }
            for cmd in APPEND_COMMANDS
        }
        r["totals"] = self.check(tok_daily, cc_daily, totals)
        return r

    def check(
        self,
        tok_daily: tuple[int, ...] | str,
        cc_daily: tuple[int, ...] | str | None,
        totals: dict[str, Any],
    ) -> dict[str, Any]:
        from tokmon.demo import Expected

        exp = Expected.from_json((self.dest / "expected.json").read_bytes()).totals.as_tuple()
        res: dict[str, Any] = {
            "keys": list(TOKEN_KEYS),
            "tokmon_daily": tok_daily,
            "expected": list(exp),
            "tokmon_daily_vs_expected": compare(tok_daily, tuple(exp)),
        }
        if cc_daily is not None:
            res["ccusage_daily"] = cc_daily
            res["tokmon_vs_ccusage_daily"] = compare(tok_daily, cc_daily)
            res["ccusage_daily_vs_expected"] = compare(cc_daily, tuple(exp))
            res["tokmon_vs_ccusage_session"] = compare(
                totals.get("tok_session", "missing"), totals.get("cc_session", "missing")
            )
        res["ok"] = all(
            v == "equal" for k, v in res.items() if k.startswith("tokmon_") and k.count("_vs_")
        )
        return res

    @property
    def bytes(self) -> int:
        return _jsonl_bytes(self.dest)


def run_sizes(args: argparse.Namespace) -> dict[str, Any]:
    cc_bin = ccusage_path()
    measured = resolve(args.in_place, cache=args.cache)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_start": load_avg(),
        },
        "ccusage": str(cc_bin) if cc_bin else None,
        "tokmon": measured.as_json(),
        "runs": args.runs,
        "targets": TARGETS,
        "sizes": [],
    }
    benches: list[tuple[float, SizeBench, Path]] = []  # (warm homes kept for flat_rounds)
    cleanup: list[tuple[Path, Path | None]] = []
    for mb in args.mb:
        entry: dict[str, Any] = {"mb": mb, "seed": args.seed, "loadavg_start": load_avg()}
        results["sizes"].append(entry)
        keep = args.keep if args.keep else cached_corpus_dir(mb, args.seed, args.cache)
        try:
            dest, temporary = prepare_corpus(mb, args.seed, keep)
        except DiskShort as exc:
            entry["skipped"] = str(exc)
            print(exc, file=sys.stderr)
            continue
        work = Path(tempfile.mkdtemp(prefix="tokmon-bench-work-"))
        kept = False
        try:
            check_disk(work, mb * 0.2)  # tokmon's state for one home
            warm_page_cache(dest)
            mains = [
                p for p in (dest / "projects").glob("*/*.jsonl") if not p.name.startswith("agent-")
            ]
            target = max(mains, key=lambda p: p.stat().st_size)
            sb = SizeBench(dest, args.runs, cc_bin, work, measured, args.calm, args.wait)
            entry.update(
                {
                    "dir": str(dest),
                    "bytes": sb.bytes,
                    "files": sum(1 for _ in (dest / "projects").rglob("*.jsonl")),
                    "append_target": str(target.relative_to(dest)),
                }
            )
            print(f"measuring {mb:g} MB ...", file=sys.stderr)
            entry.update(sb.run(target))
            if len(args.mb) > 1:  # its warm home kept for the flat rounds below
                benches.append((mb, sb, target))
                cleanup.append((work, dest.parent if temporary else None))
                kept = True
        except DiskShort as exc:
            entry["skipped"] = str(exc)
            print(exc, file=sys.stderr)
        finally:
            if not kept:
                shutil.rmtree(work, ignore_errors=True)
                if temporary:
                    shutil.rmtree(dest.parent, ignore_errors=True)
        entry["loadavg_end"] = load_avg()
    try:
        rounds = flat_rounds(benches, args.runs) if len(benches) > 1 else None
    finally:
        for work, corpus in cleanup:
            shutil.rmtree(work, ignore_errors=True)
            if corpus is not None:
                shutil.rmtree(corpus, ignore_errors=True)
    results["machine"]["loadavg_end"] = load_avg()
    results["flat"] = flatness(results["sizes"], rounds)
    results["checks"] = checks(results)
    return results


def flat_rounds(
    benches: list[tuple[float, SizeBench, Path]], runs: int
) -> dict[float, dict[str, float]]:
    """tokmon's warm and after-append reports of every size again, the sizes alternating
    within each round (``runs`` rounds, the first size first in every other one), on the
    warm homes their own phases left: the machine's speed, which drifts by +-20% over the
    minutes between two sizes' phases on the sandbox VM, moves both sides of a flatness
    ratio alike. Medians of wall time per size and ``phase cmd``."""
    times: dict[float, dict[str, list[float]]] = {mb: {} for mb, _, _ in benches}
    sizes = {mb: target.stat().st_size for mb, _, target in benches}
    print("measuring flat with history (the sizes alternating) ...", file=sys.stderr)
    try:
        for i in range(runs):
            for mb, sb, target in benches if i % 2 == 0 else benches[::-1]:
                out = sb.work / "tokmon.out"
                for cmd in WARM_COMMANDS:
                    m = measure(sb.tok(cmd), sb.warm_env(), out)
                    times[mb].setdefault(f"warm {cmd}", []).append(m["wall"])
                for cmd in APPEND_COMMANDS:
                    append_line(target)
                    m = measure(sb.tok(cmd), sb.warm_env(), out)
                    times[mb].setdefault(f"append {cmd}", []).append(m["wall"])
    finally:
        for mb, _, target in benches:
            with open(target, "r+b") as fh:
                fh.truncate(sizes[mb])
    return {mb: {k: statistics.median(v) for k, v in t.items()} for mb, t in times.items()}


def flatness(
    sizes: list[dict[str, Any]], rounds: dict[float, dict[str, float]] | None = None
) -> dict[str, Any] | None:
    """Largest / smallest measured size, per warm and after-append report (tokmon): from
    :func:`flat_rounds` when given (the sizes alternating), else from each size's own phase."""
    done = [s for s in sizes if "warm" in s]
    if len(done) < 2:
        return None
    lo = min(done, key=lambda s: s["bytes"])
    hi = max(done, key=lambda s: s["bytes"])
    rows: dict[str, Any] = {}
    for phase, cmds in (("warm", WARM_COMMANDS), ("append", APPEND_COMMANDS)):
        for cmd in cmds:
            name = f"{phase} {cmd}"
            if rounds is not None and lo["mb"] in rounds and hi["mb"] in rounds:
                a, b = rounds[lo["mb"]][name], rounds[hi["mb"]][name]
            else:
                a, b = lo[phase][cmd]["tokmon_s"], hi[phase][cmd]["tokmon_s"]
            rows[name] = {"small_s": a, "large_s": b, "ratio": b / a}
    how = "interleaved" if rounds is not None else "sequential"
    return {"small_mb": lo["mb"], "large_mb": hi["mb"], "rows": rows, "measured": how}


def checks(r: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per target: what, value, limit, pass (None: not measurable here)."""
    out: list[dict[str, Any]] = []

    def add(what: str, value: float | None, limit: float, unit: str, note: str = "") -> None:
        ok = None if value is None else value <= limit
        out.append(
            {"what": what, "value": value, "limit": limit, "unit": unit, "pass": ok, "note": note}
        )

    for s in r["sizes"]:
        if "cold" not in s:
            continue
        mb = f"{s['mb']:g} MB"
        c = s["cold"]
        add(f"{mb} cold daily tokmon/ccusage", c["ratio"], TARGETS["cold_ratio"], "x",
            "" if c["ratio"] is not None else "ccusage not installed")  # fmt: skip
        small = s["mb"] < RSS_MIN_MB
        add(f"{mb} cold peak RSS per GiB", None if small else c["tokmon_rss_mb_per_gb"],
            TARGETS["cold_rss_mb_per_gb"], "MB/GiB",
            f"not judged below {RSS_MIN_MB:g} MB (interpreter baseline)" if small else "")  # fmt: skip
        for phase, cmds, label in (
            ("warm", WARM_COMMANDS, "warm"),
            ("append", APPEND_COMMANDS, "after append"),
        ):
            for cmd in cmds:
                add(f"{mb} {label} {cmd}", s[phase][cmd]["tokmon_s"], TARGETS["report_s"], "s",
                    "target is at 2 GB" if s["mb"] < 2000 else "")  # fmt: skip
    flat = r.get("flat")
    if flat:
        for name, row in flat["rows"].items():
            add(f"{name} {flat['large_mb']:g}/{flat['small_mb']:g} MB", row["ratio"],
                TARGETS["flat_ratio"], "x")  # fmt: skip
    return out


def _f(v: Any, fmt: str) -> str:
    return "n/a" if v is None else fmt.format(v)


def rewarm_line(rw: list[float]) -> str:
    """The line on the corpus reads before the cold runs; a read several times the median's
    length found pages the OS had dropped (read from the disk again), and says so."""
    med, top = statistics.median(rw), max(rw)
    why = " (the OS had dropped pages of it before the slowest)" if top > 3 * med else ""
    return f"corpus read again before each cold run: median {med:.3f} s, max {top:.3f} s{why}"


def print_report(r: dict[str, Any]) -> None:
    m = r["machine"]
    print(
        f"machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}; load average "
        f"(1/5/15 min) at start {m['loadavg_start']}, at end {m['loadavg_end']}"
    )
    la = m["loadavg_start"]
    if la and m["cpus"] and max(la[0], (m["loadavg_end"] or [0])[0]) > 0.5 * m["cpus"]:
        print("  note: the machine was busy; absolute times are inflated, ratios less so")
    print(r["tokmon"]["describe"])
    print(f"ccusage: {r['ccusage'] or 'not installed (ratios n/a)'}; median of {r['runs']} runs")
    for s in r["sizes"]:
        print()
        if "skipped" in s:
            print(f"== {s['mb']:g} MB: SKIPPED: {s['skipped']}")
            continue
        print(
            f"== {s['mb']:g} MB (seed {s['seed']}): {s['bytes'] / 2**20:.0f} MiB, {s['files']:,} "
            f"transcripts at {s['dir']}; load {s['loadavg_start']} -> {s['loadavg_end']}"
        )
        if s.get("others_busy"):
            busy = ", ".join("n/a" if x is None else f"{x:.2f}" for x in s["others_busy"])
            print(f"cores other processes kept busy before each cold pair (--calm): {busy}")
        if s.get("redone"):
            busy = ", ".join(f"{x:.2f}" for x in s["redone"])
            print(
                f"cold pairs measured again (others kept that many cores busy during them): {busy}"
            )
        if s.get("rewarm_s"):
            print(rewarm_line(s["rewarm_s"]))
        print(f"{'':28}{'tokmon':>10}{'ccusage':>10}{'ratio':>9}")
        c = s["cold"]
        print(
            f"{'cold daily (s)':28}{_f(c['tokmon_s'], '{:.3f}'):>10}"
            f"{_f(c['ccusage_s'], '{:.3f}'):>10}{_f(c['ratio'], '{:.2f}x'):>9}"
        )
        cpu_ratio = _ratio(c["tokmon_cpu_s"], c["ccusage_cpu_s"])
        print(
            f"{'  CPU time (s; info)':28}{_f(c['tokmon_cpu_s'], '{:.3f}'):>10}"
            f"{_f(c['ccusage_cpu_s'], '{:.3f}'):>10}{_f(cpu_ratio, '{:.2f}x'):>9}"
        )
        for key, label, fmt in (
            ("sys", "  of it system CPU (s)", "{:.3f}"),
            ("majflt", "  major page faults", "{:.0f}"),
            ("minflt", "  minor page faults", "{:.0f}"),
            ("nivcsw", "  involuntary switches", "{:.0f}"),
            ("nvcsw", "  voluntary switches", "{:.0f}"),
            ("steal", "  stolen by the host (s)", "{:.3f}"),
            ("others", "  others' cores during", "{:.2f}"),
        ):
            a, b = c.get("tokmon_made_of", {}).get(key), c.get("ccusage_made_of", {}).get(key)
            if a or b:
                print(f"{label:28}{_f(a and a['median'], fmt):>10}{_f(b and b['median'], fmt):>10}")
        if c.get("tokmon_walls"):
            walls = " ".join(f"{x:.3f}" for x in c["tokmon_walls"])
            print(f"  tokmon's cold runs (s): {walls}")
        if c.get("ccusage_walls"):
            walls = " ".join(f"{x:.3f}" for x in c["ccusage_walls"])
            print(f"  ccusage's cold runs (s): {walls}")
        print(
            f"{'cold peak RSS (MB)':28}{_f(c['tokmon_rss_mb'], '{:.0f}'):>10}"
            f"{_f(c['ccusage_rss_mb'], '{:.0f}'):>10}"
            f"{_f(_ratio(c['tokmon_rss_mb'], c['ccusage_rss_mb']), '{:.2f}x'):>9}"
        )
        print(
            f"{'  per GiB of transcripts':28}{_f(c['tokmon_rss_mb_per_gb'], '{:.0f}'):>10}"
            f"   (largest process {_f(c['tokmon_rss_single_mb'], '{:.0f}')} MB, "
            f"process tree {_f(c['tokmon_rss_tree_mb'], '{:.0f}')} MB)"
        )
        for phase, cmds, label in (
            ("warm", WARM_COMMANDS, "warm {} (s)"),
            ("append", APPEND_COMMANDS, "{} after append (s)"),
        ):
            for cmd in cmds:
                x = s[phase][cmd]
                print(
                    f"{label.format(cmd):28}{_f(x['tokmon_s'], '{:.3f}'):>10}"
                    f"{_f(x['ccusage_s'], '{:.3f}'):>10}{_f(x['ratio'], '{:.2f}x'):>9}"
                )
        t = s["totals"]
        print(f"totals ({', '.join(k[:-6] for k in TOKEN_KEYS)}): tokmon daily {t['tokmon_daily']}")
        for k, v in t.items():
            if "_vs_" in k:
                print(f"  {k.replace('_', ' ')}: {v}")
    flat = r["flat"]
    if flat:
        print()
        how = (
            "the sizes alternating in each round"
            if flat.get("measured") == "interleaved"
            else "each size's own phase"
        )
        print(
            f"== flat with history: {flat['large_mb']:g} MB / {flat['small_mb']:g} MB"
            f" (tokmon; {how})"
        )
        for name, row in flat["rows"].items():
            print(
                f"  {name:18}{row['small_s']:8.3f} s {row['large_s']:8.3f} s {row['ratio']:7.2f}x"
            )
    print()
    print("targets (issue 12):")
    for ch in r["checks"]:
        verdict = "n/a" if ch["pass"] is None else ("PASS" if ch["pass"] else "FAIL")
        unit = ch["unit"]
        val = _f(ch["value"], "{:.3f}" if unit in ("s", "x") else "{:.0f}")
        note = f"  ({ch['note']})" if ch["note"] else ""
        print(f"  {ch['what']:44} {val:>8} {unit:<6} <= {ch['limit']:<6g} {verdict}{note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="tokmon vs ccusage engine benchmark")
    ap.add_argument(
        "--mb", type=float, nargs="+", default=[500.0], help="corpus sizes in MiB (default 500)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="corpus cache dir (default ${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench})",
    )
    ap.add_argument(
        "--keep", type=Path, default=None, help="generate into / reuse this dir (one --mb only)"
    )
    ap.add_argument("--runs", type=int, default=3, help="repetitions per figure (median)")
    ap.add_argument(
        "--calm",
        type=float,
        default=None,
        metavar="CORES",
        help="before each cold pair, wait until other processes keep fewer than CORES cores "
        "busy (a 2 s probe of /proc/stat, steal time included; Linux); a pair during which "
        "they kept CORES or more busy is measured again (--runs times at most)",
    )
    ap.add_argument("--wait", type=float, default=90.0, help="--calm's wait budget per size (s)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    add_argument(ap)
    args = ap.parse_args(argv)
    if any(mb <= 0 for mb in args.mb) or args.runs < 1:
        ap.error("--mb and --runs must be positive")
    if args.keep and len(args.mb) > 1:
        ap.error("--keep takes one --mb size (several sizes use the cache, see --cache)")
    results = run_sizes(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_report(results)
    bad = [s for s in results["sizes"] if "totals" in s and not s["totals"]["ok"]]
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"bench_engine: error: {exc}", file=sys.stderr)
        sys.exit(2)
