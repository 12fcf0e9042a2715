"""Issue 10, "nothing lost": after each fault, the usage of transcripts Claude Code already
deleted is still reported (the ledger faults, where a kept copy is named instead, are in
test_ledger_faults.py).

Every test starts from a ledger holding a deleted transcript's usage (HISTORY), then
applies one fault and checks the totals: history + what the remaining transcripts hold.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import assistant_line, run_tokmon, write_lines

from hostile.procs import HAVE_PROC
from tokmon.fsutil import FileLock

# slow: several CLI processes per test
pytestmark = pytest.mark.slow

HISTORY = (1000, 500)  # old.jsonl: 10 x 100/50, deleted after the first report


def _line(i: int, prefix: str, inp: int, out: int, ts: str = "2026-11-01T10:00:00.000Z") -> str:
    return assistant_line(ts, msg_id=f"{prefix}{i}", req_id=f"r{prefix}{i}", inp=inp, out=out)


def _totals(r: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["totals"]
    return t["inputTokens"], t["outputTokens"]


def _with_history(claude: Path, env: dict[str, str]) -> dict[str, str]:
    proj = claude / "projects" / "hist"
    write_lines(proj / "old.jsonl", [_line(i, "o", 100, 50) for i in range(10)])
    e = {**env, "CLAUDE_CONFIG_DIR": str(claude)}
    r = run_tokmon(["daily", "--json"], e)
    base = _totals(r)
    (proj / "old.jsonl").unlink()
    assert _totals(run_tokmon(["daily", "--json"], e)) == base
    return e


@pytest.fixture
def small(tmp_path: Path, env: dict[str, str]) -> tuple[dict[str, str], Path]:
    """History + one live transcript (10 x 1/1)."""
    live = tmp_path / "claude" / "projects" / "p" / "new.jsonl"
    write_lines(live, [_line(i, "n", 1, 1) for i in range(10)])
    e = _with_history(tmp_path / "claude", env)
    assert _totals(run_tokmon(["daily", "--json"], e)) == (1010, 510)
    return e, live


def test_poison_lines(small: tuple[dict[str, str], Path]) -> None:
    e, live = small
    poison = _line(0, "p", 1, 1).replace('"output_tokens":1', '"output_tokens":1e308')
    write_lines(
        live, [poison, _line(0, "g", 2, 2, ts="9999-12-31T23:59:59-14:00"), _line(1, "g", 3, 3)]
    )
    assert _totals(run_tokmon(["daily", "--json"], e)) == (1013, 513)


def test_in_place_rewrite(small: tuple[dict[str, str], Path]) -> None:
    e, live = small
    with open(live, "r+b") as fh:
        fh.truncate(0)
        fh.write("\n".join(_line(i, "w", 5, 5) for i in range(3)).encode() + b"\n")
    assert _totals(run_tokmon(["daily", "--json"], e)) == (1010 + 15, 510 + 15)


def test_ledger_lock_held_elsewhere(small: tuple[dict[str, str], Path], tokmon_home: Path) -> None:
    """A report that cannot lock the ledger still reads it (it only does not save)."""
    e, live = small
    write_lines(live, [_line(0, "x", 4, 4)])
    lock = next((tokmon_home / "data").glob("ledger-*.lock"))
    with FileLock(lock, timeout=1):
        r = run_tokmon(["daily", "--json"], e, timeout=120)
    assert "cannot lock" in r.stderr
    assert _totals(r) == (1014, 514)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_ledger_cannot_be_saved(small: tuple[dict[str, str], Path]) -> None:
    e, live = small
    write_lines(live, [_line(0, "x", 4, 4)])

    def limited() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--json"],
        env=e,
        text=True,
        capture_output=True,
        timeout=120,
        preexec_fn=limited,
    )
    assert "cannot save" in r.stderr
    assert _totals(r) == (1014, 514)
    assert _totals(run_tokmon(["daily", "--json"], e)) == (1014, 514)


def test_future_records(small: tuple[dict[str, str], Path]) -> None:
    e, live = small
    write_lines(live, [_line(0, "f", 6, 6, ts="2150-01-01T00:00:00.000Z")])
    assert _totals(run_tokmon(["daily", "--json"], e)) == (1016, 516)


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_PROC or sys.platform != "linux", reason="Linux fork workers")
def test_killed_during_a_big_incremental_scan(
    big_corpus: tuple[Path, dict[str, Any]], tmp_path: Path, env: dict[str, str], tokmon_home: Path
) -> None:
    from hostile.test_kill_mid_scan import _expected, _kill_mid_scan

    corpus, truth = big_corpus
    claude = tmp_path / "claude"
    e = _with_history(claude, env)
    saved = {p.name: p.read_bytes() for p in (tokmon_home / "data").iterdir() if p.is_file()}
    shutil.copytree(corpus / "projects", claude / "projects", dirs_exist_ok=True)

    def prepare(home: Path) -> None:  # the history ledger, before the big scan each time
        for p in (home / "data").iterdir():
            if p.is_file() and not p.name.endswith(".lock"):
                p.unlink()
        for name, data in saved.items():
            if not name.endswith(".lock"):
                (home / "data" / name).write_bytes(data)

    _kill_mid_scan(
        [sys.executable, "-m", "tokmon", "daily", "--json"],
        e,
        tokmon_home,
        signal.SIGKILL,
        [],
        prepare=prepare,
    )
    exp = _expected(truth)
    got = _totals(run_tokmon(["daily", "--json"], e, timeout=120))
    assert got == (exp["inputTokens"] + HISTORY[0], exp["outputTokens"] + HISTORY[1])
