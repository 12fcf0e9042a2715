"""The data directory cannot be made (a file where it should be, a read-only or foreign
parent): reports still come from the transcripts, exact, with one warning, rc 0 (before:
``tokmon: error: NotADirectoryError`` / ``OSError: Read-only file system``, rc 1). The file
in the way is left as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
