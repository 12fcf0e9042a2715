"""bench/bench_engine.py and bench/bench_server.py on tiny corpora: the figures they print are
there, the totals they check are the generator's, the corpus cache is reused, repaired and
never written by the server bench, a short disk skips a size. (No timing asserts: the
benchmarks print those.)"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark scripts end to end on small corpora

REPO = Path(__file__).resolve().parent.parent
TOKEN_KEYS = [
    "inputTokens",
    "outputTokens",
    "cacheCreationTokens",
    "cacheReadTokens",
    "totalTokens",
]


def _load_bench_engine() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_engine_under_test", REPO / "bench" / "bench_engine.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _expected_tokens(corpus: Path) -> list[int]:
    """The generator's totals, read from expected.json without tokmon's code."""
    t = json.loads((corpus / "expected.json").read_text())["totals"]
    inp, out = t["input_tokens"], t["output_tokens"]
    cc, cr = t["cache_creation_tokens"], t["cache_read_tokens"]
    return [inp, out, cc, cr, inp + out + cc + cr]


def _sizes(corpus: Path) -> dict[str, int]:
    return {str(p.relative_to(corpus)): p.stat().st_size for p in corpus.rglob("*") if p.is_file()}


def _env(cache: Path, ccusage: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TOKMON_BENCH_DIR"}
    env["TOKMON_BENCH_DIR"] = str(cache)
    if not ccusage:
        env["TOKMON_CCUSAGE"] = str(cache / "no-such-ccusage")
    return env


@pytest.mark.slow
def test_bench_engine_two_sizes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cmd = [sys.executable, str(REPO / "bench" / "bench_engine.py"), "--mb", "2", "3"]
    cmd += ["--runs", "1", "--json", "--in-place"]  # (the installed way: test_bench_installed.py)
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, cwd=REPO, env=_env(cache, True)
    )
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(res.stdout)
    assert [s["mb"] for s in data["sizes"]] == [2.0, 3.0]
    assert len(data["machine"]["loadavg_start"] or [0, 0, 0]) == 3
    for s in data["sizes"]:
        corpus = cache / f"corpus{s['mb']:g}"
        assert Path(s["dir"]) == corpus
        assert s["totals"]["keys"] == TOKEN_KEYS
        assert s["totals"]["tokmon_daily"] == _expected_tokens(corpus)
        assert s["totals"]["tokmon_daily_vs_expected"] == "equal"
        if data["ccusage"]:
            assert s["totals"]["ccusage_daily"] == _expected_tokens(corpus)
            assert s["totals"]["tokmon_vs_ccusage_session"] == "equal"
            assert s["cold"]["ratio"] == pytest.approx(
                s["cold"]["tokmon_s"] / s["cold"]["ccusage_s"]
            )
            assert len(s["cold"]["ccusage_walls"]) == 1
        cold = s["cold"]
        assert cold["tokmon_walls"] == [pytest.approx(cold["tokmon_s"], abs=1e-4)]
        if sys.platform.startswith("linux"):  # wait4 and /proc/stat
            made = cold["tokmon_made_of"]
            assert {"sys", "majflt", "nvcsw", "nivcsw", "steal", "others"} <= set(made)
            assert 0 <= made["sys"]["median"] <= cold["tokmon_cpu_s"]
            assert made["steal"]["median"] >= 0 and made["others"]["median"] >= 0
        for phase, cmds in (
            ("warm", ["daily", "session", "blocks"]),
            ("append", ["daily", "session"]),
        ):
            assert sorted(s[phase]) == sorted(cmds)
            assert all(s[phase][c]["tokmon_s"] > 0 for c in cmds)
        # the appended lines were truncated away: the cached corpus is as generated
        exp = json.loads((corpus / "expected.json").read_text())
        assert sum((corpus / f).stat().st_size for f in exp["files"]) == exp["total_bytes"]
    flat = data["flat"]
    assert (flat["small_mb"], flat["large_mb"]) == (2.0, 3.0)
    assert flat["measured"] == "interleaved"  # the sizes alternating, after their own phases
    row = flat["rows"]["warm session"]
    assert row["ratio"] == pytest.approx(row["large_s"] / row["small_s"])
    whats = [c["what"] for c in data["checks"]]
    assert "warm blocks 3/2 MB" in whats and "3 MB after append session" in whats
    # the RSS-per-GiB target is not judged on tiny corpora (the interpreter dominates)
    rss = [c for c in data["checks"] if c["what"] == "2 MB cold peak RSS per GiB"]
    assert rss and rss[0]["pass"] is None

    # a second run reuses the cache; the human report names every size and the targets; with
    # --calm (a threshold no probe reaches, no budget to wait) the probe's figure is printed
    res2 = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_engine.py"), "--mb", "2", "--runs", "1"]
        + ["--in-place", "--calm", "-1", "--wait", "0"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env=_env(cache, False),
    )
    assert res2.returncode == 0, res2.stdout + res2.stderr
    assert f"reusing corpus {cache / 'corpus2'}" in res2.stderr
    assert "generating" not in res2.stderr
    assert "== 2 MB (seed 0)" in res2.stdout and "targets (issue 12):" in res2.stdout
    assert "load average" in res2.stdout
    assert "tokmon's cold runs (s): " in res2.stdout
    if os.path.exists("/proc/stat"):  # --calm -1: every pair is "disturbed", measured again once
        again = r"cold pairs measured again \(.*\): \d+\.\d\d$"
        assert re.search(again, res2.stdout, re.M), res2.stdout
    if sys.platform.startswith("linux"):
        assert re.search(r"of it system CPU \(s\) +\d+\.\d{3}", res2.stdout), res2.stdout
        assert re.search(r"stolen by the host \(s\) +\d+\.\d{3}", res2.stdout)
    if os.path.exists("/proc/stat"):  # the probe reads it (elsewhere: no figure, no wait)
        # two probes: the pair measured again (above) waited for its own
        probed = re.search(
            r"kept busy before each cold pair \(--calm\): (\d+\.\d\d), (\d+\.\d\d)$",
            res2.stdout,
            re.M,
        )
        assert probed, res2.stdout
        assert all(0.0 <= float(x) <= (os.cpu_count() or 1) for x in probed.groups())


@pytest.mark.skipif(not hasattr(os, "wait4"), reason="the wrapper's own figures need wait4")
def test_bench_engine_wrapper_says_what_a_run_was_made_of(tmp_path: Path) -> None:
    """The cold runs' wrapper: a run that sleeps is voluntary switches and little CPU, one that
    spins is user CPU, not system CPU; a failing child's exit code comes back."""
    be = _load_bench_engine()
    out = tmp_path / "out"
    env = dict(os.environ)
    sleeper = be.measure([sys.executable, "-c", "import time; time.sleep(0.3)"], env, out)
    assert sleeper["wall"] >= 0.3 and sleeper["cpu"] < 0.25
    assert sleeper["nvcsw"] >= 1 and sleeper["sys"] <= sleeper["cpu"]
    spinner = be.measure([sys.executable, "-c", "sum(range(30_000_000))"], env, out)
    assert spinner["cpu"] >= 0.1 and spinner["sys"] < 0.5 * spinner["cpu"]
    if Path("/proc/stat").exists():
        assert spinner["steal"] >= 0 and spinner["others"] >= 0
    with pytest.raises(RuntimeError, match="exited 3"):
        be.measure([sys.executable, "-c", "raise SystemExit(3)"], env, out)


def test_bench_engine_skips_a_size_the_disk_cannot_hold(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_engine.py"), "--mb", "1e9", "--in-place"]
        + ["--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=_env(tmp_path / "cache", False),
    )
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(res.stdout)
    assert "skipping 1e+09 MB" in data["sizes"][0]["skipped"]
    assert "GiB free" in data["sizes"][0]["skipped"]
    assert not (tmp_path / "cache" / "corpus1e+09").exists()


def test_corpus_cache_is_repaired_inside_and_refused_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    be = _load_bench_engine()
    monkeypatch.setenv("TOKMON_BENCH_DIR", str(tmp_path / "cache"))
    dest = be.cached_corpus_dir(1.0, 5)
    assert dest == tmp_path / "cache" / "corpus1-seed5"
    got, temporary = be.prepare_corpus(1.0, 5, dest)
    assert got == dest and not temporary
    assert not dest.with_name(dest.name + ".partial").exists()
    before = _sizes(dest)
    victim = next(p for p in dest.rglob("*.jsonl"))
    with open(victim, "ab") as fh:  # as if a run died between an append and its truncation
        fh.write(b'{"type":"user"}\n')
    assert be.prepare_corpus(1.0, 5, dest) == (dest, False)
    assert _sizes(dest) == before

    outside = tmp_path / "mine"
    be.prepare_corpus(1.0, 5, outside)
    with open(next(p for p in outside.rglob("*.jsonl")), "ab") as fh:
        fh.write(b"\n")
    with pytest.raises(SystemExit, match="differ from its expected.json"):
        be.prepare_corpus(1.0, 5, outside)
    assert (outside / "expected.json").is_file()  # refused, not deleted
    with pytest.raises(SystemExit, match="another corpus"):
        be.prepare_corpus(2.0, 5, dest)


@pytest.mark.slow
def test_bench_server_counts_what_a_save_writes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cmd = [sys.executable, str(REPO / "bench" / "bench_server.py"), "--mb", "2"]
    cmd += ["--appends", "3", "--saves", "1", "--idle", "0", "--json", "--in-place"]
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env=_env(cache, False)
    )
    assert res.returncode in (0, 1), res.stdout + res.stderr  # 1: a target missed
    data = json.loads(res.stdout)
    f = data["results"][0]["figures"]
    assert f["exit_code"] == 0
    assert f["corpus"] == str(cache / "corpus2")
    assert f["latency_p95_ms"] >= f["latency_median_ms"] > 0
    assert f["rss_mb"] > 0 and f["sessions"] > 0
    # a save after one appended line writes something, and the figure judged is the one counted
    if sys.platform.startswith("linux"):
        assert f["save_method"] == "write_chars"
        assert f["save_written_kib"] > 0
        assert f["save_kib_per_append"] == f["save_written_kib"]
    assert f["save_files_touched"] >= 1 and f["save_touched_kib"] > 0
    # the push carries one session's row; the list a client re-fetched before holds them all
    assert 0 < f["push_rows_bytes"] < f["push_bytes"]
    assert f["list_bytes"] > f["push_rows_bytes"] * f["sessions"] / 2 > 0
    assert f["client_bytes_per_append"] == f["push_bytes"]
    assert f["client_bytes_per_append_refetch"] == (
        f["push_bytes"] - f["push_rows_bytes"] + f["list_bytes"]
    )
    assert set(data["results"][0]["pass"]) <= set(data["targets"])
    # the cached corpus is only read: the appends went to a private config dir
    exp = json.loads((cache / "corpus2" / "expected.json").read_text())
    files = {str(p.relative_to(cache / "corpus2")) for p in (cache / "corpus2").rglob("*.jsonl")}
    assert files == {f for f in exp["files"] if f.endswith(".jsonl")}


def test_bench_warm_compares_two_revisions(tmp_path: Path) -> None:
    """bench_warm.py: this checkout against HEAD (git archive), both variants measured per
    figure, the appended lines truncated away."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a checkout")
    cache = tmp_path / "cache"
    cmd = [sys.executable, str(REPO / "bench" / "bench_warm.py"), "--base", "HEAD"]
    cmd += ["--mb", "2", "3", "--runs", "1", "--json"]
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, cwd=REPO, env=_env(cache, False)
    )
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads(res.stdout)
    assert data["base"] == "HEAD" and [s["mb"] for s in data["sizes"]] == [2.0, 3.0]
    for s in data["sizes"]:
        figs = s["figures"]
        assert sorted(figs) == sorted(
            ["pass", "daily", "session", "blocks", "daily after append", "session after append"]
        )
        for row in figs.values():
            assert row["base"]["cpu_s"] > 0 and row["now"]["wall_s"] > 0
            assert row["ratio"] == pytest.approx(row["now"]["cpu_s"] / row["base"]["cpu_s"])
        corpus = cache / f"corpus{s['mb']:g}"
        exp = json.loads((corpus / "expected.json").read_text())
        assert sum((corpus / f).stat().st_size for f in exp["files"]) == exp["total_bytes"]


def test_bench_warm_base_native_copies_only_the_same_modules(tmp_path: Path) -> None:
    """--base-native: a built module goes into the base tree only where the base's C source
    is this checkout's byte for byte (a module of other C would not be the base's)."""
    spec = importlib.util.spec_from_file_location("bench_warm_t", REPO / "bench" / "bench_warm.py")
    assert spec and spec.loader
    bw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bw)
    here = tmp_path / "here" / "tokmon" / "_native"
    there = tmp_path / "there" / "tokmon" / "_native"
    here.mkdir(parents=True)
    there.mkdir(parents=True)
    for name in ("_same", "_other", "_gone"):
        (here / f"{name}.c").write_bytes(b"int x = 1;")
        (here / f"{name}.cpython-311-x86_64-linux-gnu.so").write_bytes(name.encode())
    (there / "_same.c").write_bytes(b"int x = 1;")
    (there / "_other.c").write_bytes(b"int x = 2;")
    bw.REPO = tmp_path / "here"
    assert bw.copy_native(tmp_path / "there") == ["_same"]
    assert sorted(p.name for p in there.iterdir()) == [
        "_other.c", "_same.c", "_same.cpython-311-x86_64-linux-gnu.so"
    ]  # fmt: skip


def test_bench_build_times_the_tail_against_a_base(tmp_path: Path) -> None:
    """bench_build.py: this checkout against an export of HEAD, every phase timed for both,
    per-round ratios, the totals checked against the generator's."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a checkout")
    base = tmp_path / "base"
    base.mkdir()
    archive = subprocess.run(
        ["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True, timeout=120
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True, timeout=120)
    cache = tmp_path / "cache"
    cmd = [sys.executable, str(REPO / "bench" / "bench_build.py"), "--base", str(base)]
    cmd += ["--mb", "2", "--rounds", "2", "--json"]
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, cwd=REPO, env=_env(cache, False)
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (s,) = json.loads(res.stdout)["sizes"].values()
    assert s["totals"] == {"base": "equal", "new": "equal"}
    for name in ("base", "new"):
        runs = s["raw"][name]
        assert len(runs) == 2
        for r in runs:
            assert 0 < r["tail"] < r["wall"] and 0 < r["scan"] < r["wall"]
            # (the stored sums' timer also counts a rebuild outside the merge, e.g. after a
            # price check: it is not a part of the merge's time)
            assert r["sums"] > 0 and 0 < r["merge"] <= r["tail"]
            assert 0 < r["tail_main"] <= r["tail_cpu"] + 1e-3
    assert set(s["ratio_new_base"]) >= {"tail", "tail_main", "wall"}


def test_bench_rss_splits_the_peak_per_phase(tmp_path: Path) -> None:
    """bench_rss.py: each phase of a cold run in order with its RSS, the peak split into
    parts that add up to it, the totals the generator's."""
    if not sys.platform.startswith("linux"):
        pytest.skip("samples /proc/self/status")
    cache = tmp_path / "cache"
    cmd = [sys.executable, str(REPO / "bench" / "bench_rss.py"), "--mb", "2", "--json"]
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, cwd=REPO, env=_env(cache, False)
    )
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["totals_equal"] is True
    (fig,) = out["sizes"]["2"]["now"]
    names = [p["phase"] for p in fig["phases"]]
    assert names[0] == "imports" and names[-1] == "report" and "scan" in names
    assert {"engine opened, args parsed", "file listing", "build opened"} <= set(names)
    assert set(fig["facts"]) >= {"msgspec imported", "bytes left to Python by the native scanner"}
    assert [p["t"] for p in fig["phases"]] == sorted(p["t"] for p in fig["phases"])
    peak = fig["peak"][1]["VmRSS"]
    assert all(0 < p["end"] <= p["max"] <= peak for p in fig["phases"])
    bench = importlib.util.spec_from_file_location("bench_rss_t", REPO / "bench" / "bench_rss.py")
    assert bench and bench.loader
    mod = importlib.util.module_from_spec(bench)
    bench.loader.exec_module(mod)
    parts = mod.summary(fig)
    rest = sum(v for k, v in parts.items() if k != "rss")
    assert abs(rest - parts["rss"]) < 0.5  # (RssAnon + RssFile = VmRSS, give or take shmem)


def test_bench_engine_says_dropped_pages_only_for_a_slow_read() -> None:
    """The corpus reads before the cold runs: a uniform set is just its median and max; one
    read several times the median is named as pages the OS had dropped."""
    be = _load_bench_engine()
    even = be.rewarm_line([0.058, 0.060, 0.086])
    assert even == "corpus read again before each cold run: median 0.060 s, max 0.086 s"
    slow = be.rewarm_line([0.058, 0.060, 0.410])
    assert slow.endswith("max 0.410 s (the OS had dropped pages of it before the slowest)")
