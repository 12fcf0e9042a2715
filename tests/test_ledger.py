"""The persistent ledger: atomic, private, rebuilt when corrupt, shared between processes."""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
from pathlib import Path

import pytest
from conftest import run_tokmon

from tokmon.core.engine import Engine
from tokmon.core.ledger import LEDGER_VERSION
from tokmon.paths import get_paths


def engine(root: Path, home: Path) -> Engine:
    return Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(home)}))


def test_history_survives_transcript_deletion(corpus_copy: Path, tokmon_home: Path) -> None:
    root = corpus_copy / "projects"
    e = engine(root, tokmon_home)
    e.refresh()
    before = e.report("session", timezone="UTC").to_json()["totals"]
    for f in list(root.rglob("*.jsonl"))[:20]:
        f.unlink()
    e2 = engine(root, tokmon_home)
    e2.refresh()
    assert e2.report("session", timezone="UTC").to_json()["totals"] == before


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_files_are_private(real_corpus: Path, tokmon_home: Path) -> None:
    e = engine(real_corpus / "projects", tokmon_home)
    e.refresh()
    assert stat.S_IMODE(e.ledger_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(e.ledger_file.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "content",
    [b'{"version": 3, "files": {', b"\x00\x01garbage", b"SQLite format 3\x00" + b"\xff" * 200],
)
def test_corrupt_ledger_is_rebuilt(
    real_corpus: Path, env: dict[str, str], tokmon_home: Path, content: bytes
) -> None:
    e = {**env, "CLAUDE_CONFIG_DIR": str(real_corpus)}
    ok = run_tokmon(["daily", "--json"], e)
    ledger = next((tokmon_home / "data").glob("ledger-*.sqlite3"))
    ledger.write_bytes(content)
    r = run_tokmon(["daily", "--json"], e)
    assert r.returncode == 0
    assert r.stdout == ok.stdout
    notices = [ln for ln in r.stderr.splitlines() if "rebuilding" in ln]
    assert len(notices) == 1 and "Traceback" not in r.stderr
    kept = [p for p in ledger.parent.iterdir() if p.name.startswith(ledger.name + ".corrupt-")]
    assert len(kept) == 1 and kept[0].read_bytes() == content and kept[0].name in notices[0]
    con = sqlite3.connect(ledger)
    try:
        assert con.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == (
            LEDGER_VERSION,
        )
    finally:
        con.close()


def test_two_processes_share_one_ledger(corpus_copy: Path, env: dict[str, str]) -> None:
    """Concurrent cold runs serialise on the ledger lock and agree."""
    import subprocess

    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus_copy)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tokmon", "daily", "--json"],
            env=e,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    import json

    tot = {json.dumps(json.loads(o[0])["totals"], sort_keys=True) for o in outs}
    assert len(tot) == 1
    assert not [f for f in os.listdir(Path(env["TOKMON_HOME"]) / "data") if f.endswith(".tmp")]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_every_created_dir_is_private(tmp_path: Path) -> None:
    from tokmon.paths import ensure_dir

    os.chmod(tmp_path, 0o755)
    leaf = ensure_dir(tmp_path / "a" / "b" / "c")
    for d in (tmp_path / "a", tmp_path / "a" / "b", leaf):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # existing dirs are left alone
