"""Defects the seventh session documented and left (docs/review/hostile-seventh-session.md),
fixed in the eighth: the kept session answer truncated in place by another process while a
report holds it, and a stale lock marker whose pid a live process reuses. Each test failed
before its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hostile.hs_support import REPO, assistant, hs_env, tokmon_argv, write_transcript


def _tokmon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tokmon_argv(), *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=str(REPO))  # fmt: skip


def _sessions(env: dict[str, str], n: int) -> None:
    now = datetime.now(timezone.utc)
    for s in range(n):
        write_transcript(env, f"p{s % 7}", f"s{s}.jsonl",
                         [assistant(f"m{s}", sid=f"s{s}", inp=100 + s, out=10,
                                    when=now - timedelta(hours=3 + s, minutes=1))])  # fmt: skip


_HOLD_KEPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tokmon.cli.reports import SessionParts
    cache = SessionParts.__new__(SessionParts)  # only its file: no engine needed to load it
    cache.path = Path(sys.argv[1])
    kept = cache.load()
    print("loaded", kept is not None, flush=True)
    sys.stdin.readline()  # the other process truncates the file meanwhile
    print("body", len(bytes(kept.body)), flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="a file open elsewhere cannot be truncated")
def test_kept_session_answer_truncated_in_place_while_held(tmp_path: Path) -> None:
    """A report holds the kept ``session --json`` (loaded, not yet printed); another process
    truncates that file in place. The answer was memory-mapped: the next read of it killed
    the report with SIGBUS (rc -7), which Python cannot catch. It is read now: the report
    holds the bytes it loaded."""
    env = hs_env(tmp_path)
    _sessions(env, 60)
    assert _tokmon(env, "session", "--json").returncode == 0
    (kept,) = (Path(env["TOKMON_HOME"]) / "cache" / "reports").glob("session-*.json")
    size = kept.stat().st_size
    assert size > 16384  # more than the pages a reader could have touched already
    child = subprocess.Popen([sys.executable, "-c", _HOLD_KEPT, str(kept)],
                             env={**env, "PYTHONPATH": str(REPO)}, cwd=str(tmp_path),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    try:
        assert child.stdout.readline().split() == ["loaded", "True"]
        with open(kept, "r+b") as fh:  # in place: the same inode, as a hostile writer would
            fh.truncate(100)
        child.stdin.write("go\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, (child.returncode, err)  # was -7 (SIGBUS)
    word, n = out.split()
    assert word == "body" and int(n) > 16000


_TRUNCATE_LOOP = textwrap.dedent(
    """
    import os, sys, time
    path = sys.argv[1]
    with open(path, "rb") as fh:
        data = fh.read()
    print("ready", flush=True)
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        with open(path, "r+b") as fh:  # in place
            fh.truncate(100)
            fh.seek(0)
            fh.write(data)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="a file open elsewhere cannot be truncated")
def test_session_json_beside_a_process_truncating_the_kept_answer(tmp_path: Path) -> None:
    """The hostile review's reproduction: ``session --json`` runs while another process
    truncates the kept answer in place and writes it back, again and again (1 run in 15
    died with SIGBUS). Every run now exits 0 with the answer of a run from scratch."""
    env = hs_env(tmp_path)
    _sessions(env, 60)
    first = _tokmon(env, "session", "--json")
    assert first.returncode == 0, first.stderr
    truth = json.loads(first.stdout)
    (kept,) = (Path(env["TOKMON_HOME"]) / "cache" / "reports").glob("session-*.json")
    loop = subprocess.Popen([sys.executable, "-c", _TRUNCATE_LOOP, str(kept), "600"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert loop.stdout is not None
    try:
        assert loop.stdout.readline().strip() == "ready"
        for _ in range(8):
            r = _tokmon(env, "session", "--json")
            assert r.returncode == 0, (r.returncode, r.stderr)
            assert json.loads(r.stdout)["totals"] == truth["totals"]
    finally:
        loop.kill()
        loop.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="a file open elsewhere cannot be truncated")
def test_a_kept_daily_answer_cut_in_place_and_grown_again(tmp_path: Path) -> None:
    """The kept ``daily --json`` truncated in place and extended again to its size (NUL
    bytes where it was cut, as a reader racing the loop above sees) between two runs: the
    next run prints the answer, not the NULs (it printed the file as read; the twelfth
    session). A kept session answer so cut is refused by its trailer; cut between its open
    and its print: test_session_kept_appends.py, test_session_table_appends.py."""
    report = "daily"
    env = hs_env(tmp_path)
    _sessions(env, 60)
    first = _tokmon(env, report, "--json")
    assert first.returncode == 0, first.stderr
    (kept,) = (Path(env["TOKMON_HOME"]) / "cache" / "reports").glob(f"{report}-*.json")
    size = kept.stat().st_size
    assert size > 1000
    with open(kept, "r+b") as fh:  # in place: the same inode
        fh.truncate(100)
        fh.truncate(size)
    again = _tokmon(env, report, "--json")
    assert again.returncode == 0, again.stderr
    assert "\0" not in again.stdout
    assert json.loads(again.stdout) == json.loads(first.stdout)


_REUSED_PID = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from tokmon import fsutil
    fsutil.fcntl = None  # a platform without flock (the marker lock; docs/portability.md)
    lock = Path(sys.argv[1])
    marker = Path(str(lock) + fsutil.HELD_SUFFIX)
    # a holder that died long ago; its pid now belongs to a live, unrelated process (our
    # parent: alive for the whole run, and no tokmon)
    marker.write_text(str(os.getppid()))
    when = time.time() - 3600
    os.utime(marker, (when, when))
    try:
        fsutil.FileLock(lock, timeout=3).acquire()
    except fsutil.LockTimeout:
        print("timeout")
    else:
        print("acquired", marker.read_text().split()[0], os.getpid())
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="the marker lock runs where neither "
                    "flock nor msvcrt exists")  # fmt: skip
def test_stale_lock_marker_whose_pid_was_reused(tmp_path: Path) -> None:
    """The lock of a platform without fcntl: a marker left an hour ago by a holder that died,
    whose pid is now a live unrelated process. ``kill(pid, 0)`` succeeded, so the lock was
    held until that process ended (LockTimeout). A holder now refreshes its marker's time
    while it holds it (a heartbeat), so a marker not refreshed for longer than the bound is
    stale whatever process has its pid."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", _REUSED_PID, str(tmp_path / "x.lock")],
                       env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    word, held, pid = (r.stdout.split() + ["", "", ""])[:3]
    assert word == "acquired" and held == pid, r.stdout


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tokmon import fsutil
    fsutil.fcntl = None
    fsutil.MARKER_HEARTBEAT_SECONDS = 0.2
    lock = fsutil.FileLock(Path(sys.argv[1]), timeout=5)
    lock.acquire()
    print("held", flush=True)
    sys.stdin.readline()
    lock.release()
    print("released", flush=True)
    """
)

_WAITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tokmon import fsutil
    fsutil.fcntl = None
    fsutil.MARKER_STALE_SECONDS = 6.0
    try:
        fsutil.FileLock(Path(sys.argv[1]), timeout=float(sys.argv[2])).acquire()
    except fsutil.LockTimeout:
        print("timeout")
    else:
        print("acquired")
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="the marker lock runs where neither "
                    "flock nor msvcrt exists")  # fmt: skip
def test_live_marker_holder_keeps_the_lock_past_the_stale_bound(tmp_path: Path) -> None:
    """The other side of the age bound: a live holder keeps its marker fresh, so a waiter
    does not take the lock from it however long it is held (here over twice the
    bound), and takes it once it is released."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    lock = str(tmp_path / "x.lock")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, lock], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        waiter = subprocess.run([sys.executable, "-c", _WAITER, lock, "15"], env=env,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert waiter.stdout.strip() == "timeout", (waiter.stdout, waiter.stderr)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=60)
    waiter = subprocess.run([sys.executable, "-c", _WAITER, lock, "5"], env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert waiter.stdout.strip() == "acquired", (waiter.stdout, waiter.stderr)


# zero-width and other invisible format characters: a name that looks like another, text
# hidden between visible letters (U+200B, U+200C, U+200D, U+2060, U+FEFF, U+00AD, a tag
# character spelling "X"); and a bidi isolate (stripped before this session too)
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\U000e0058", "\u2067"]
ZW_SID = "zw\u200bsess\ufeff-0001"
ZW_CWD = "/work/pay\u200bments\u2060\U000e0058"
ZW_TITLE = "Fix\u200d bug\u00ad in\u2067 login\u200c"


def _no_invisible(text: str, where: str) -> None:
    # JSON may escape them: look for the escapes too
    bad = [c for c in INVISIBLE if c in text or json.dumps(c).strip('"').lower() in text.lower()]
    assert not bad, f"{where}: {[hex(ord(c)) for c in bad]} in {text[:400]!r}"


def test_invisible_characters_never_reach_a_surface(tmp_path: Path) -> None:
    """A session id, a working directory (the project name) and a title carrying zero-width
    and other invisible characters: the seventh session left them (two names could look the
    same, text could hide between letters). No surface shows them now: report tables and
    session commands, their JSON (which holds the same cleaned text, so an id a table shows
    is one `session --id` takes), the statusline (`line`, `line --claude`), the service the
    web dashboard and the editors use (`serve --jsonl`) and the dashboard's HTML export."""
    env = hs_env(tmp_path)
    title = json.dumps({"type": "custom-title", "sessionId": ZW_SID, "customTitle": ZW_TITLE})
    write_transcript(env, "-work-payments", "zw.jsonl", [
        assistant("z1", sid=ZW_SID, cwd=ZW_CWD, inp=321, out=7),
        assistant("z2", sid=ZW_SID, cwd=ZW_CWD, model="claude-sonnet-4\u200b-20250514"),
        title,
    ])  # fmt: skip
    seen = ""
    for argv in (["session"], ["session", "list"], ["daily", "-i"], ["daily", "--breakdown"],
                 ["blocks"], ["stats"], ["--json", "session"], ["--json", "session", "list"],
                 ["--json", "daily", "--breakdown"]):  # fmt: skip
        r = _tokmon(env, *argv)
        assert r.returncode == 0, (argv, r.stderr)
        _no_invisible(r.stdout, " ".join(argv))
        seen += r.stdout
    assert "zwsess-0001" in seen and "payments" in seen and "Fix bug in login" in seen
    shown = _tokmon(env, "session", "show", "zwsess-0001")
    assert shown.returncode == 0, shown.stderr
    _no_invisible(shown.stdout, "session show")
    for fmt in ("plain", "json", "tmux"):
        r = _tokmon(env, "line", "--sync", "--format", fmt, "--cwd", ZW_CWD)
        assert r.returncode == 0, r.stderr
        _no_invisible(r.stdout, f"line --format {fmt}")
    payload = json.dumps({"session_id": ZW_SID, "session_name": "na\u200bme\ufeff",
                          "workspace": {"current_dir": ZW_CWD},
                          "model": {"display_name": "Op\u200dus"},
                          "cost": {"total_cost_usd": 1.5}})  # fmt: skip
    r = subprocess.run([*tokmon_argv(), "line", "--claude"], env=env, input=payload,
                       capture_output=True, text=True, timeout=120, cwd=str(REPO))  # fmt: skip
    assert r.returncode == 0, r.stderr
    _no_invisible(r.stdout, "line --claude")
    assert "name" in r.stdout or "Opus" in r.stdout, r.stdout
    r = subprocess.run([*tokmon_argv(), "serve", "--jsonl"], env=env, capture_output=True,
                       text=True, timeout=120, cwd=str(REPO),
                       input='{"id":1,"method":"tokmon/sessions","params":{}}\n'
                             '{"id":2,"method":"tokmon/summary","params":{}}\n')  # fmt: skip
    assert r.returncode == 0 and "zwsess-0001" in r.stdout, r.stderr
    _no_invisible(r.stdout, "serve --jsonl")
    page = tmp_path / "report.html"
    r = _tokmon(env, "report", "--html", str(page))
    assert r.returncode == 0, r.stderr
    html = page.read_text(encoding="utf-8")
    assert "payments" in html
    _no_invisible(html, "report --html")
