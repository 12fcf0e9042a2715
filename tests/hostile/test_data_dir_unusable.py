"""The data directory cannot be made (a file where it should be, a read-only or foreign
parent): reports still come from the transcripts, exact, with one warning, rc 0 (before:
``tokmon: error: NotADirectoryError`` / ``OSError: Read-only file system``, rc 1). The file
in the way is left as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostile.hs_support import assistant, hs_env, write_transcript


def test_data_path_is_a_file(tmp_path: Path) -> None:
    env = hs_env(tmp_path)
    write_transcript(env, "p", "a.jsonl", [assistant(f"m{i}", inp=10, out=1) for i in range(9)])
    home = Path(env["TOKMON_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "data").write_bytes(b"not a directory\n")
    for _run in range(2):
        r = subprocess.run(
            [sys.executable, "-m", "tokmon", "daily", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        t = json.loads(r.stdout)["totals"]
        assert (t["inputTokens"], t["outputTokens"]) == (90, 9)
        assert "ledger" in r.stderr and "Traceback" not in r.stderr
    assert (home / "data").read_bytes() == b"not a directory\n"


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, non-root"
)
def test_data_dir_not_searchable(tmp_path: Path) -> None:
    """A data dir this user cannot search (another user's, or mode 0000): ``stat`` of the
    ledger raises PermissionError, which every report turned into ``tokmon: error``."""
    env = hs_env(tmp_path)
    write_transcript(env, "p", "a.jsonl", [assistant(f"m{i}", inp=10, out=1) for i in range(9)])
    data = Path(env["TOKMON_HOME"]) / "data"
    data.mkdir(parents=True)
    data.chmod(0)
    try:
        for argv in (["daily", "--json"], ["session", "--json"]):
            r = subprocess.run([sys.executable, "-m", "tokmon", *argv], env=env,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
            assert r.returncode == 0, r.stderr
            t = json.loads(r.stdout)["totals"]
            assert (t["inputTokens"], t["outputTokens"]) == (90, 9)
            assert "ledger" in r.stderr and "Traceback" not in r.stderr
    finally:
        data.chmod(0o700)
