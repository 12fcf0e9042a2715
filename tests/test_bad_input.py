"""Bad input: correct totals for the rest, one-line warnings, no traceback, nothing written."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import assistant_line, run_tokmon, write_lines

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
GOOD = [assistant_line(T0, msg_id=f"m{i}", req_id=f"r{i}", inp=100, out=10) for i in range(5)]


def build_bad_corpus(root: Path) -> None:
    p = root / "projects" / "-home-u-proj"
    big = assistant_line(
        T0, msg_id="big", req_id="rbig", inp=1, out=1, extra={"pad": "x" * (2 * 1024 * 1024)}
    )
    write_lines(
        p / "a.jsonl",
        [GOOD[0], "{not json", '{"type":"assistant","message":{"usage":', big, GOOD[1]],
    )
    (p / "b.jsonl").write_bytes(
        os.urandom(4096) + b"\n\xff\xfe\x00garbage\n" + GOOD[2].encode() + b"\n" + GOOD[3].encode()
    )  # partial last line
    (p / "x.jsonl").mkdir()  # a directory named like a transcript
    write_lines(p / "c.jsonl", [GOOD[4]])


def test_bad_lines_are_skipped_and_counted(tmp_path: Path, env: dict[str, str]) -> None:
    build_bad_corpus(tmp_path / "claude")
    missing = tmp_path / "nope"
    r = run_tokmon(
        ["daily", "--json", "-z", "UTC"],
        {**env, "CLAUDE_CONFIG_DIR": f"{tmp_path / 'claude'},{missing}"},
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    d = __import__("json").loads(r.stdout)
    # GOOD[0..2], the 2 MB line and GOOD[4]; GOOD[3] is an unfinished last line.
    assert d["totals"]["inputTokens"] == 4 * 100 + 1
    warn = [ln for ln in r.stderr.splitlines() if ln.startswith("tokmon: warning:")]
    assert any("malformed" in ln and "skipped" in ln for ln in warn), r.stderr
    assert len(warn) <= 3


def test_missing_root_is_one_error(tmp_path: Path, env: dict[str, str]) -> None:
    # a mistyped CLAUDE_CONFIG_DIR is an error (issue 13), not an empty report or demo data
    r = run_tokmon(["daily", "--json"], {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "missing")})
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "CLAUDE_CONFIG_DIR" in r.stderr and "missing" in r.stderr


@pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(os, "geteuid"), reason="POSIX permissions"
)
def test_unreadable_file_is_reported_and_rest_counted(tmp_path: Path, env: dict[str, str]) -> None:
    root = tmp_path / "claude"
    p = root / "projects" / "proj"
    write_lines(p / "ok.jsonl", GOOD[:2])
    write_lines(p / "secret.jsonl", GOOD[2:4])
    os.chmod(p / "secret.jsonl", 0)
    cmd = [sys.executable, "-m", "tokmon", "daily", "--json"]
    if os.geteuid() == 0:
        # Root reads anything: drop the capabilities that bypass file permissions.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        caps = "-dac_override,-dac_read_search"
        cmd = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]
    import subprocess

    r = subprocess.run(
        cmd, env={**env, "CLAUDE_CONFIG_DIR": str(root)}, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "cannot read" in r.stderr and "secret.jsonl" in r.stderr
    assert "Traceback" not in r.stderr
    assert __import__("json").loads(r.stdout)["totals"]["inputTokens"] == 200


def _digest(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for dp, dn, fn in os.walk(root):  # noqa: B007
        for n in dn + fn:
            f = Path(dp) / n
            st = f.lstat()
            h = hashlib.sha1(f.read_bytes()).hexdigest() if f.is_file() else "dir"
            out[str(f.relative_to(root))] = (h, st.st_mtime_ns)
    return out


def test_read_only_corpus_is_never_written(corpus_copy: Path, env: dict[str, str]) -> None:
    for dp, _dn, fn in os.walk(corpus_copy):
        for n in fn:
            os.chmod(Path(dp) / n, 0o444)
        os.chmod(dp, 0o555)
    before = _digest(corpus_copy)
    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus_copy)}
    for args in (["daily", "--json"], ["blocks", "--json"], ["stats"], ["daily"]):
        assert run_tokmon(args, e).returncode == 0
    assert _digest(corpus_copy) == before
    for dp, _, _ in os.walk(corpus_copy):
        os.chmod(dp, 0o755)
