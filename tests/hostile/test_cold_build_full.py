"""A first scan whose build database cannot be written to the end (a full disk, a file size
limit): the report is still exact from the transcripts (results not saved), no build file is
left behind, and the next run, with room again, saves an exact ledger.

The disk is "full" through RLIMIT_FSIZE (no mount needed; Python ignores SIGXFSZ, so writes
past the limit fail with EFBIG as SQLite's "disk I/O error"). The limit is half the size the
same ledger has when it can be written whole: the build file is created, its first pages
written, and its one merge transaction fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hostile.hs_support import assistant, hs_env, write_transcript
from tokmon.core.ledger import BUILD_INFIX

resource = pytest.importorskip("resource")  # POSIX only

FILES, LINES, INP, OUT = 3, 700, 10, 1  # < 1024 rows a file: every row still staged in Python


def _corpus(tmp: Path) -> dict[str, str]:
    env = hs_env(tmp)
    for f in range(FILES):
        lines = [assistant(f"m{f}-{i}", sid=f"s{f}", inp=INP, out=OUT) for i in range(LINES)]
        write_transcript(env, f"p{f}", "a.jsonl", lines)
    return env


def _daily(env: dict[str, str], limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--json"],
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},  # (no .pyc cut short by the limit)
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=cap,
    )


def _totals(r: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["totals"]
    return t["inputTokens"], t["outputTokens"]


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE")
def test_first_scan_on_a_full_disk_is_exact(tmp_path: Path) -> None:
    truth = (FILES * LINES * INP, FILES * LINES * OUT)
    roomy = _corpus(tmp_path / "roomy")
    assert _totals(_daily(roomy)) == truth
    whole = max(p.stat().st_size for p in (Path(roomy["TOKMON_HOME"]) / "data").glob("*.sqlite3"))

    env = _corpus(tmp_path / "full")
    data = Path(env["TOKMON_HOME"]) / "data"
    r = _daily(env, limit=whole // 2)
    assert _totals(r) == truth  # before the fix: (0, 0), the staged rows rolled back
    assert "ledger" in r.stderr  # one warning: not saved
    assert "Traceback" not in r.stderr
    assert not [p.name for p in data.iterdir() if BUILD_INFIX in p.name]

    r = _daily(env)  # room again: saved, exact
    assert _totals(r) == truth
    assert not r.stderr.strip(), r.stderr
    assert list(data.glob("*.sqlite3"))
