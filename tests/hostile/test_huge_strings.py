"""A transcript line may carry a session id or a working directory of megabytes (a valid line
is up to 16 MiB). The statusline snapshot is read with a 1 MiB cap; one such session made it
larger, so every later ``tokmon line`` (every format, ``--claude`` too) printed the
placeholder ``tokmon …`` for as long as that session stayed recent."""

from __future__ import annotations

import json
import re
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


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "tokmon", *argv], env=env, capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def _cs(out: str) -> int:
    """How many characters of the 1.5 MB project name the output shows (folded or not)."""
    return sum(len(m) for m in re.findall(r"c{10,}", out))


def test_megabyte_ids_and_paths_are_clipped_in_tables(tmp_path: Path) -> None:
    """Two sessions whose 1 MB ids differ only in their last character and whose cwd is
    1.5 MB: before, `session list` printed megabytes (the project folded at the column
    width), `session` never finished (the shortest unique id prefix was searched one
    character at a time) and `stats` printed megabytes. The tables clip ids to 200
    characters and project names to 255, with an ellipsis; the JSON keeps both whole
    (ccusage's shape; the ledger's keys)."""
    env = hs_env(tmp_path)
    stem, cwd = "S" * 1_000_000, "/" + "c" * 1_500_000
    write_transcript(env, "p", "a.jsonl", [assistant("h1", sid=stem + "1", cwd=cwd, inp=1000)])
    write_transcript(env, "p", "b.jsonl", [assistant("h2", sid=stem + "2", cwd=cwd, inp=2000)])
    write_transcript(env, "q", "c.jsonl", [assistant("n1", sid="normal", inp=10, out=5)])
    lst = _run(env, "session", "list").stdout
    assert len(lst) < 20_000, len(lst)
    assert lst.count("S" * 199 + "…") == 2 and "normal" in lst  # the clipped ids, whole width
    assert _cs(lst) == 2 * 254 and lst.count("c…") == 2  # the clipped name, folded
    table = _run(env, "session").stdout
    assert len(table) < 20_000, len(table)
    assert "SSSSSSSS" in table and _cs(table) == 2 * 254 and table.count("c…") == 2
    stats = _run(env, "stats").stdout
    assert len(stats) < 20_000, len(stats)
    assert _cs(stats) == 2 * 254 and stats.count("c…") == 2
    # JSON: whole (the ids and paths of the transcripts)
    rows = json.loads(_run(env, "session", "--json").stdout)["sessions"]
    assert sorted(r["sessionId"] for r in rows) == sorted([stem + "1", stem + "2", "normal"])
    assert sum(r["projectPath"] == cwd for r in rows) == 2
    listed = json.loads(_run(env, "session", "list", "--json").stdout)["sessions"]
    assert sorted(r["sessionId"] for r in listed) == sorted([stem + "1", stem + "2", "normal"])


def test_server_session_rows_clip_the_path_and_keep_the_id(tmp_path: Path) -> None:
    """The LSP / web session rows (`tokmon/sessions`, `tokmon/session`): the path and the
    project name are display text (clipped); the id is the key clients send back (whole)."""
    from tokmon.service import Service

    env = hs_env(tmp_path)
    sid, cwd = "S" * 300_000, "/" + "c" * 500_000
    write_transcript(env, "p", "a.jsonl", [assistant("h1", sid=sid, cwd=cwd, inp=1000)])
    svc = Service(env=env)
    svc.start()
    rows = svc.call("tokmon/sessions", None)[0]["sessions"]
    assert [r["sessionId"] for r in rows] == [sid]
    assert rows[0]["projectPath"] == cwd[:4095] + "…"
    assert rows[0]["projectName"] == "c" * 254 + "…"
    # (a reference is at most 400 characters: such a session is named by a prefix)
    one = svc.call("tokmon/session", {"sessionId": sid[:200]})[0]
    assert one["sessionId"] == sid and len(one["projectPath"]) == 4096
