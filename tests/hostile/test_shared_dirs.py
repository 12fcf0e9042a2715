"""tokmon's own dirs made writable by other users beforehand (a TOKMON_HOME under /tmp made
0777, a data dir 0770) or owned by another user: anyone who can write there can plant a
ledger or cache files that tokmon then trusts. tokmon warns in one line (ours, writable: it
never changes the mode itself) or stops using the store (another user's: the report comes
from the transcripts, as when the data dir is unusable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostile.hs_support import assistant, hs_env, write_transcript
from tokmon.paths import get_paths, unsafe_dirs

posix = pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX modes and owners")


def _daily(env: dict[str, str]) -> tuple[tuple[int, int], list[str]]:
    r = subprocess.run([sys.executable, "-m", "tokmon", "daily", "--json"], env=env,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    t = json.loads(r.stdout)["totals"]
    return (t["inputTokens"], t["outputTokens"]), r.stderr.splitlines()


def _two_sessions(env: dict[str, str]) -> Path:
    write_transcript(env, "p", "a.jsonl", [assistant(f"a{i}", sid="a", inp=10, out=1)
                                           for i in range(9)])  # fmt: skip
    return write_transcript(env, "q", "b.jsonl", [assistant("b1", sid="b", inp=1000, out=100)])


@posix
@pytest.mark.parametrize("which, mode", [("", 0o777), ("data", 0o770), ("cache", 0o707)])
def test_writable_dir_warns_once_and_is_left_alone(tmp_path: Path, which: str, mode: int) -> None:
    env = hs_env(tmp_path)
    _two_sessions(env)
    target = Path(env["TOKMON_HOME"]) / which
    target.mkdir(parents=True)
    target.chmod(mode)
    for _ in range(2):  # the cold run and a warm one (the ledger is used: ours)
        totals, err = _daily(env)
        assert totals == (1090, 109)
        warnings = [line for line in err if line.startswith("tokmon: warning:")]
        assert len(warnings) == 1, err
        assert str(target) in warnings[0] and f"chmod 700 {target}" in warnings[0]
        assert f"{mode:04o}" in warnings[0]
    assert (target.stat().st_mode & 0o777) == mode  # never chmodded behind the user's back
    assert list((Path(env["TOKMON_HOME"]) / "data").glob("ledger-*.sqlite3"))  # the store kept


@posix
def test_private_dirs_say_nothing(tmp_path: Path) -> None:
    env = hs_env(tmp_path)
    _two_sessions(env)
    Path(env["TOKMON_HOME"]).mkdir(mode=0o700)
    for _ in range(2):
        totals, err = _daily(env)
        assert totals == (1090, 109) and not err, err


@posix
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_another_users_store_is_not_used(tmp_path: Path) -> None:
    """A ledger keeps the usage of deleted transcripts (history is never lost): a planted one
    adds usage that is in no transcript. In a dir of another user it is not read."""
    env = hs_env(tmp_path)
    b = _two_sessions(env)
    home = Path(env["TOKMON_HOME"])
    assert _daily(env) == ((1090, 109), [])
    b.unlink()
    assert _daily(env) == ((1090, 109), [])  # ours: the ledger's history counts
    other = 65534 if os.getuid() != 65534 else 65533  # (nobody)
    for p in [home, *home.rglob("*")]:
        os.lchown(p, other, other)
    before = {p: p.stat().st_mtime_ns for p in home.rglob("*")}
    for _ in range(2):
        totals, err = _daily(env)
        assert totals == (90, 9)  # the transcripts only
        assert len(err) == 1 and err[0].startswith("tokmon: warning:"), err
        assert str(home) in err[0] and "another user" in err[0] and "not saved" in err[0]
    assert {p: p.stat().st_mtime_ns for p in home.rglob("*")} == before  # nothing written


def test_no_check_without_posix_owners(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows (no ``os.getuid``): dirs are guarded by ACLs, not modes; nothing is said."""
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)
    env = {"TOKMON_HOME": str(home)}
    if hasattr(os, "getuid"):
        assert unsafe_dirs(get_paths(env), env) is not None
        monkeypatch.delattr(os, "getuid")
    assert unsafe_dirs(get_paths(env), env) is None
