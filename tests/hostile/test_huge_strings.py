"""A transcript line may carry a session id or a working directory of megabytes (a valid line
is up to 16 MiB). The statusline snapshot is read with a 1 MiB cap; one such session made it
larger, so every later ``tokmon line`` (every format, ``--claude`` too) printed the
placeholder ``tokmon …`` for as long as that session stayed recent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hostile.hs_support import assistant, hs_env, write_transcript


def test_megabyte_ids_and_paths_keep_the_line(tmp_path: Path) -> None:
    env = hs_env(tmp_path)
    sid, cwd = "S" * 2_000_000, "/" + "c" * 1_500_000
    write_transcript(env, "p", "a.jsonl", [assistant("h1", sid=sid, cwd=cwd, inp=1000, out=500)])
    write_transcript(env, "q", "b.jsonl", [assistant("n1", sid="normal", inp=10, out=5)])
    for argv in (["line", "--sync"], ["line"]):
        r = subprocess.run([sys.executable, "-m", "tokmon", *argv], env=env, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "today" in r.stdout and "…" not in r.stdout.split()[:2], r.stdout[:200]
        assert len(r.stdout) < 1000
    snap = Path(env["TOKMON_HOME"]) / "cache" / "line" / "snapshot.bin"
    assert snap.stat().st_size < 1 << 20
