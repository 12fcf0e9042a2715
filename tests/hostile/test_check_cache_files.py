"""The warm check's caches (``cache/ledger-*.checked.json``, ``cache/ledger-*.listings.json``)
and the JSON report cache are files a report reads on every run: whatever is found there (a
FIFO, hostile JSON), the report finishes, exact, rc 0. Before: a FIFO in place of any of them
hung every report (open() waits for a writer; a symlink to /dev/zero read forever), and a
listing naming ``a\\0b`` made every report exit 1 (``ValueError: embedded null byte``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostile.hs_support import assistant, hs_env, write_transcript

TRUTH = (5 * 10 + 3 * 100, 5 * 1 + 3 * 2)


def _setup(tmp: Path) -> tuple[dict[str, str], Path]:
    env = hs_env(tmp)
    write_transcript(env, "p", "a.jsonl", [assistant(f"a{i}", inp=10, out=1) for i in range(5)])
    write_transcript(env, "q", "b.jsonl", [assistant(f"b{i}", inp=100, out=2) for i in range(3)])
    assert _daily(env) == TRUTH  # the first scan
    assert _daily(env) == TRUTH  # a warm run: writes the mirror
    return env, Path(env["TOKMON_HOME"]) / "cache"


def _daily(env: dict[str, str]) -> tuple[int, int]:
    # a hang fails with TimeoutExpired (generous: CI is a loaded 2-core box)
    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    t = json.loads(r.stdout)["totals"]
    return t["inputTokens"], t["outputTokens"]


def _ledger_stem(env: dict[str, str]) -> str:
    (db,) = (Path(env["TOKMON_HOME"]) / "data").glob("ledger-*.sqlite3")
    return db.stem


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
@pytest.mark.parametrize("which", ["checked", "listings", "report", "flat"])
def test_fifo_in_place_of_a_cache_file(tmp_path: Path, which: str) -> None:
    env, cache = _setup(tmp_path)
    if which == "report":
        (target,) = (cache / "reports").glob("daily-*.json")
    elif which == "flat":
        target = _flat(env, cache)
    else:
        target = cache / f"{_ledger_stem(env)}.{which}.json"
    target.unlink(missing_ok=True)
    os.mkfifo(target, 0o600)
    assert _daily(env) == TRUTH
    assert _daily(env) == TRUTH


def _flat(env: dict[str, str], cache: Path) -> Path:
    """The flat walk's file, once written: none is kept while a directory changed (ctime)
    in the last 2 s, so reports run until one is there."""
    import time

    flat = cache / f"{_ledger_stem(env)}.flat"
    deadline = time.monotonic() + 120
    while not flat.is_file():
        assert time.monotonic() < deadline, "no flat walk was written"
        time.sleep(0.5)
        assert _daily(env) == TRUTH
    return flat


def test_flat_walk_whose_header_states_sizes_it_does_not_hold(tmp_path: Path) -> None:
    """A flat file with the database's stamp whose counts ask for terabytes: refused by its
    length, not allocated (MemoryError) and not trusted."""
    env, cache = _setup(tmp_path)
    flat = _flat(env, cache)
    data = flat.read_bytes()
    magic, rest = data.split(b"\n", 1)
    head, body = rest.split(b"\n", 1)
    for field in ("nd", "nf", "plen"):
        h = json.loads(head)
        h[field] = 10**13
        flat.write_bytes(magic + b"\n" + json.dumps(h).encode() + b"\n" + body)
        assert _daily(env) == TRUTH
    flat.write_bytes(data[: len(data) // 2])  # torn
    assert _daily(env) == TRUTH


def test_listing_with_a_nul_in_a_name(tmp_path: Path) -> None:
    env, cache = _setup(tmp_path)
    d = Path(env["CLAUDE_CONFIG_DIR"]) / "projects" / "p"
    st = os.stat(d)
    entry = [st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, "ff", ["a.jsonl", "x\0y"]]
    listings = cache / f"{_ledger_stem(env)}.listings.json"
    listings.write_text(json.dumps({"v": 1, "dirs": {str(d): entry}}), encoding="utf-8")
    assert _daily(env) == TRUTH
    assert _daily(env) == TRUTH


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
@pytest.mark.parametrize("which", ["snapshot", "metadata"])
def test_fifo_in_place_of_the_line_snapshot_or_the_metadata(tmp_path: Path, which: str) -> None:
    """The same for the statusline's snapshot (``line --sync`` hung) and the session metadata
    file (``session --json`` hung)."""
    env, cache = _setup(tmp_path)
    if which == "snapshot":
        argv = ["line", "--sync"]
        target = cache / "line" / "snapshot.bin"
    else:
        argv = ["session", "--json"]
        target = Path(env["TOKMON_HOME"]) / "data" / "sessions.json"
    r = subprocess.run([sys.executable, "-m", "tokmon", *argv], env=env, capture_output=True,
                       text=True, timeout=90)  # fmt: skip
    assert r.returncode == 0, r.stderr
    target.unlink(missing_ok=True)
    os.mkfifo(target, 0o600)
    for _run in range(2):
        r = subprocess.run([sys.executable, "-m", "tokmon", *argv], env=env, capture_output=True,
                           text=True, timeout=90)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        assert "today" in r.stdout if which == "snapshot" else "sess-1" in r.stdout
    assert _daily(env) == TRUTH


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_fifo_in_place_of_a_kept_session_answer(tmp_path: Path) -> None:
    """``session --json`` keeps its printed answer (cache/reports/session-*.json): a FIFO
    there is refused, and the answer is the one a run without it gives."""
    env, cache = _setup(tmp_path)

    def session() -> str:
        r = subprocess.run([sys.executable, "-m", "tokmon", "session", "--json"], env=env,
                           capture_output=True, text=True, timeout=90)  # fmt: skip
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        return r.stdout

    want = session()
    (kept,) = (cache / "reports").glob("session-*.json")
    kept.unlink()
    os.mkfifo(kept, 0o600)
    assert session() == want
