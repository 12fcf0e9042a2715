"""The seventh session's hostile review (docs/review/hostile-seventh-session.md): the kept
session answer's index, ``--session-length`` extremes, a terminal whose size was never set,
the lock marker of a platform without fcntl, and ``tokmon/hello`` asked twice. Each test
failed before its fix."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hostile.hs_support import REPO, assistant, hs_env, tokmon_argv, wait_for, write_transcript
from tokmon.cli import reports

TRAILER = 92  # b"%012d %020d %16s %s\n": index length, generation, write id, blake2b-160


def _tokmon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tokmon_argv(), *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=str(REPO))  # fmt: skip


def test_kept_session_index_naming_an_active_session_by_a_list(tmp_path: Path) -> None:
    """A kept ``session --json`` whose index (its digest recomputed, so it is "valid") names
    an active session by a JSON list, kept past its span: the next run after an append read
    the active ids into a set and exited 1 (``TypeError: unhashable type``) on every run
    until the file was deleted. Now the answer is built whole, equal to a run without it."""
    env = hs_env(tmp_path)
    now = datetime.now(timezone.utc)
    for s in range(6):
        write_transcript(env, f"p{s}", f"s{s}.jsonl",
                         [assistant(f"m{s}", sid=f"s{s}", inp=100 * (s + 1), out=10,
                                    when=now - timedelta(hours=2 * s, minutes=1))])  # fmt: skip
    assert _tokmon(env, "session", "--json").returncode == 0
    (kept,) = (Path(env["TOKMON_HOME"]) / "cache" / "reports").glob("session-*.json")
    data = kept.read_bytes()
    n, gen, wid, _ = data[-TRAILER:-1].split()
    end = len(data) - TRAILER - int(n)
    raw_index = data[end:-TRAILER]
    if raw_index.startswith(reports._INDEX_MAGIC):  # in columns now; a JSON one is still read
        tokens, shown, entries = reports._index_of(raw_index)
        index = {"tokens": tokens, "shown": shown, "entries": entries}
    else:
        index = json.loads(raw_index)
    assert any(e[3] for e in index["entries"])  # a session shown active
    index["entries"][0][0] = ["not", "an", "id"]
    index["entries"][0][3] = True
    raw = json.dumps(index).encode()
    sig = hashlib.blake2b(raw, digest_size=20).hexdigest().encode()
    body = data[data.index(b"\n") + 1 : end]
    # its span over (built at 1, until 2): the sessions shown active are read again
    kept.write_bytes(
        b"1.0 2.0\n" + body + raw + b"%012d %020d %s %s\n" % (len(raw), int(gen), wid, sig)
    )
    with open(Path(env["CLAUDE_CONFIG_DIR"]) / "projects" / "p1" / "s1.jsonl", "a") as fh:
        fh.write(assistant("more", sid="s1", inp=7, out=1) + "\n")
    got = _tokmon(env, "session", "--json")
    assert got.returncode == 0 and "Traceback" not in got.stderr, got.stderr
    for f in kept.parent.glob("session-*.json"):
        f.unlink()
    truth = _tokmon(env, "session", "--json")
    assert truth.returncode == 0
    assert json.loads(got.stdout) == json.loads(truth.stdout)
    assert json.loads(got.stdout)["totals"]["inputTokens"] == 2100 + 7


@pytest.mark.parametrize("hours", ["nan", "inf", "1e308", "1e9", "0", "-0.0"])
def test_session_length_out_of_range_is_refused(tmp_path: Path, hours: str) -> None:
    """``blocks --session-length`` nan, inf, 1e308 or 1e9 passed the ``<= 0`` test and ended
    in a traceback (OverflowError, ValueError: year out of range); 0 was taken as "not
    given" (5 hours) while -1 was refused. Now each is one usage line, rc 2."""
    env = hs_env(tmp_path)
    write_transcript(env, "p", "a.jsonl", [assistant("a1")])
    r = _tokmon(env, "blocks", "--json", "--session-length", hours)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "--session-length must be positive" in r.stderr
    assert "Error:" not in r.stderr and "Traceback" not in r.stderr
    ok = _tokmon(env, "blocks", "--json", "--session-length", "0.0001")
    assert ok.returncode == 0 and json.loads(ok.stdout)["blocks"], ok.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="a pty")
def test_terminal_whose_size_was_never_set_gets_tables(tmp_path: Path) -> None:
    """A pty whose size was never set reports 0 columns (serial consoles, ``docker exec -t``
    before its first resize, pty wrappers): every table command printed "Too narrow: ...
    needs N columns" instead of its table. 0 columns means unknown, as for
    ``shutil.get_terminal_size``: 80."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    env = hs_env(tmp_path)
    env.pop("COLUMNS")
    write_transcript(env, "p", "a.jsonl", [assistant("a1", inp=1234, out=56)])
    # daily shows the input (1,234), blocks' compact layout the total (1,234 + 56)
    for cmd, figure in ((["daily"], "1,234"), (["blocks"], "1,290")):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        p = subprocess.Popen([*tokmon_argv(), *cmd], env=env, stdin=slave, stdout=slave,
                             stderr=slave, cwd=str(REPO))  # fmt: skip
        os.close(slave)
        out = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if select.select([master], [], [], 1)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the pty
                    break
                if not chunk:
                    break
                out += chunk
        os.close(master)
        assert p.wait(60) == 0
        text = out.decode("utf-8", "replace")
        assert "Too narrow" not in text, text
        assert figure in text and ("Total" in text or "ACTIVE" in text), text
        assert max(len(line) for line in text.replace("\r", "").split("\n")) <= 80


_MARKER_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from tokmon import fsutil
    fsutil.fcntl = None  # a platform without flock (the marker lock; docs/portability.md)
    lock = Path(sys.argv[1])
    marker = str(lock) + fsutil.HELD_SUFFIX
    kind = sys.argv[2]
    if kind == "fifo":
        os.mkfifo(marker, 0o600)
    elif kind == "link":
        os.symlink(os.devnull, marker)
    else:
        Path(marker).write_text({"huge": "9" * 30, "zero": "0", "torn-future": ""}[kind])
    when = time.time() + (10**6 if kind == "torn-future" else -600)
    os.utime(marker, (when, when), follow_symlinks=False)
    try:
        fsutil.FileLock(lock, timeout=5).acquire()
    except fsutil.LockTimeout:
        print("timeout")
    else:
        print("acquired", Path(marker).read_text(), os.getpid())
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="the marker lock runs where neither "
                    "flock nor msvcrt exists")  # fmt: skip
@pytest.mark.parametrize("kind", ["fifo", "huge", "zero", "torn-future"])
def test_lock_marker_that_names_no_live_holder(tmp_path: Path, kind: str) -> None:
    """The lock of a platform without fcntl (``<lock>.held``), an old marker left there:
    a FIFO blocked the stale test's ``open`` forever (the lock's timeout never came); 30
    digits raised OverflowError from ``os.kill``; ``0`` was "alive" (``kill(0, 0)`` signals
    the caller's own group) and a torn marker dated in the future never aged: both held the
    lock for good. Each is now stale (not a pid a holder can have: judged by its age, either
    way) and the lock is taken."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", _MARKER_SCRIPT, str(tmp_path / "x.lock"), kind],
                       env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    word, held, pid = (r.stdout.split() + ["", "", ""])[:3]
    assert word == "acquired" and held == pid, r.stdout  # the marker now names its holder


def test_hello_without_deltas_after_hello_with_them(tmp_path: Path) -> None:
    """``tokmon/hello`` answers what it grants: a second hello without ``activeDeltas`` was
    answered ``activeDeltas: false`` while the pushes kept coming without the summary's
    ``activeSessions``, so that client's active list was never updated."""
    env = hs_env(tmp_path)
    tr = write_transcript(env, "p", "a.jsonl", [assistant("a1", sid="s1")])
    p = subprocess.Popen([*tokmon_argv(), "serve", "--jsonl", "--no-watch"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=str(REPO))  # fmt: skip
    assert p.stdin is not None and p.stdout is not None
    try:

        def ask(i: int, method: str, params: Any = None) -> list[dict[str, Any]]:
            assert p.stdin is not None and p.stdout is not None
            p.stdin.write(json.dumps({"id": i, "method": method, "params": params}) + "\n")
            p.stdin.flush()
            got = []
            while True:
                msg = json.loads(p.stdout.readline())
                got.append(msg)
                if msg.get("id") == i:
                    return got

        ask(0, "tokmon/summary")  # after the first scan (hello is answered before it)
        on = ask(1, "tokmon/hello", {"capabilities": {"activeDeltas": True}})
        assert on[-1]["result"]["capabilities"] == {"activeDeltas": True}
        off = ask(2, "tokmon/hello", {"capabilities": {"activeDeltas": False}})
        assert off[-1]["result"]["capabilities"] == {"activeDeltas": False}
        with open(tr, "a", encoding="utf-8") as fh:
            fh.write(assistant("a2", sid="s2") + "\n")
        pushes: list[dict[str, Any]] = []

        def pushed() -> bool:
            got = ask(3 + len(pushes), "tokmon/refresh")
            pushes.extend(m for m in got if m.get("method") == "tokmon/usageChanged")
            return bool(pushes)

        wait_for(pushed, what="a push after the append")
        summary = pushes[0]["params"]["summary"]
        assert {s["sessionId"] for s in summary["activeSessions"]} == {"s1", "s2"}
    finally:
        p.kill()
        p.wait(30)


def test_killed_session_writer_leaves_no_temporary_file_for_good(tmp_path: Path) -> None:
    """``session --json`` killed (SIGKILL) while it writes its kept answer left the
    ``.session-*.json.<random>.tmp`` (megabytes: the whole answer) in cache/reports for
    ever, one per kill. A later kept answer removes those older than ten minutes; the
    answers stay equal to a run from scratch whatever the kill hit."""
    import random
    import signal

    env = hs_env(tmp_path)
    now = datetime.now(timezone.utc)
    for s in range(1500):  # a kept answer of ~1.4 MB: its write is a window a kill can hit
        write_transcript(env, f"p{s % 5}", f"s{s}.jsonl",
                         [assistant(f"m{s}", sid=f"s{s}", inp=s + 1, out=1,
                                    when=now - timedelta(minutes=s))])  # fmt: skip
    assert _tokmon(env, "session", "--json").returncode == 0
    reports = Path(env["TOKMON_HOME"]) / "cache" / "reports"
    rng = random.Random(7)

    def append(tag: str) -> None:
        s = rng.randrange(1500)
        path = Path(env["CLAUDE_CONFIG_DIR"]) / "projects" / f"p{s % 5}" / f"s{s}.jsonl"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(assistant(tag, sid=f"s{s}", inp=3, out=1) + "\n")

    t0 = time.monotonic()
    append("timing")
    assert _tokmon(env, "session", "--json").returncode == 0
    took = time.monotonic() - t0
    left: list[Path] = []
    for trial in range(40):  # until a kill lands inside the write (or give up: plant one)
        append(f"k{trial}")
        p = subprocess.Popen([*tokmon_argv(), "session", "--json"], env=env, cwd=str(REPO),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(took * (0.5 + 0.6 * rng.random()))
        p.send_signal(signal.SIGKILL)
        p.wait(60)
        left = list(reports.glob(".*.tmp"))
        if left:
            break
    if not left:  # (the loaded box never let a kill land there: the file such a kill leaves)
        left = [reports / f".{next(reports.glob('session-*.json')).name}.0123456789ab.tmp"]
        left[0].write_bytes(b"x" * 100_000)
    old = time.time() - 3600
    for f in left:
        os.utime(f, (old, old))
    append("after")
    got = _tokmon(env, "session", "--json")  # keeps a new answer: prunes the dir
    assert got.returncode == 0, got.stderr
    assert not [f for f in left if f.exists()]
    fresh = {**env, "TOKMON_HOME": str(tmp_path / "fresh-home")}
    assert json.loads(got.stdout) == json.loads(_tokmon(fresh, "session", "--json").stdout)


def test_ledger_put_back_to_an_older_copy_of_itself(tmp_path: Path) -> None:
    """A ledger restored from a copy of itself (a backup, a file-system snapshot; the last
    commits lost in a power cut with ``synchronous=NORMAL`` do the same) and written again
    repeats generations with other data under the same database id: ``session --json``
    printed the kept answer of the lost history (its generation matched) and spliced later
    changes onto it, a wrong total until the sessions it held changed. Every write now has
    a random id, logged under its generation: the kept answer's must still be the last."""
    import shutil
    import sqlite3

    env = hs_env(tmp_path)
    projects = Path(env["CLAUDE_CONFIG_DIR"]) / "projects"
    for s in range(4):
        write_transcript(env, f"p{s}", f"s{s}.jsonl", [assistant(f"m{s}", sid=f"s{s}", inp=100)])

    tables: list[str] = []  # the session table, run (and kept) beside each session --json

    def session() -> dict[str, Any]:
        t = _tokmon(env, "session")
        assert t.returncode == 0, t.stderr
        tables.append(t.stdout)
        r = _tokmon(env, "session", "--json")
        assert r.returncode == 0, r.stderr
        return dict(json.loads(r.stdout)["totals"])

    def truth() -> dict[str, Any]:
        fresh = {**env, "TOKMON_HOME": str(tmp_path / f"fresh-{time.monotonic_ns()}")}
        assert tables[-1] == _tokmon(fresh, "session").stdout  # the kept table's splice too
        return dict(json.loads(_tokmon(fresh, "session", "--json").stdout)["totals"])

    def append(s: int, tag: str, inp: int) -> None:
        with open(projects / f"p{s}" / f"s{s}.jsonl", "a", encoding="utf-8") as fh:
            fh.write(assistant(tag, sid=f"s{s}", inp=inp) + "\n")

    session()
    session()  # kept
    (ledger,) = (Path(env["TOKMON_HOME"]) / "data").glob("ledger-*.sqlite3")
    backup = tmp_path / "backup.sqlite3"
    with sqlite3.connect(ledger) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    src.close()
    dst.close()

    def restore() -> None:
        for side in ("-wal", "-shm"):
            Path(str(ledger) + side).unlink(missing_ok=True)
        shutil.copyfile(backup, ledger)

    append(1, "lost", 7000)
    assert session()["inputTokens"] == 400 + 7000
    restore()
    append(2, "after", 50000)  # one write: the generation the lost history's answer had
    assert session() == truth()
    assert truth()["inputTokens"] == 400 + 7000 + 50000
    # again, past it: the later answers are spliced onto the right one
    with sqlite3.connect(ledger) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    append(3, "lost2", 1000)
    session()
    restore()
    append(0, "w1", 300)
    session()
    append(0, "w2", 20)
    assert session() == truth()
