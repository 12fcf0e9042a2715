"""Issue 10, items 1, 2 and 13 (locks): a held ledger lock costs an interactive command a few
seconds at most and names its holder; a lock is never taken twice by one thread (it fails
at once instead of waiting on itself); forked children never keep a lock; lock files never
follow a planted symlink."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest
from conftest import assistant_line, run_tokmon, write_lines

from hostile.procs import lock_free, wait_for
from tokmon.fsutil import FileLock, LockTimeout

# slow: held locks across CLI processes
pytestmark = pytest.mark.slow

POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX flock / fork / symlinks")


def _corpus(tmp_path: Path) -> Path:
    root = tmp_path / "claude"
    lines = [
        assistant_line("2026-11-01T10:00:00.000Z", msg_id=f"m{i}", req_id=f"r{i}", inp=7, out=3)
        for i in range(5)
    ]
    write_lines(root / "projects" / "p" / "a.jsonl", lines)
    return root


def test_held_ledger_lock_names_its_holder(
    tmp_path: Path, env: dict[str, str], tokmon_home: Path
) -> None:
    e = {**env, "CLAUDE_CONFIG_DIR": str(_corpus(tmp_path))}
    assert run_tokmon(["daily", "--json"], e).returncode == 0
    lock_path = next((tokmon_home / "data").glob("ledger-*.lock"))
    _append(tmp_path)  # something to save: the ledger lock is taken only to write
    with FileLock(lock_path, timeout=1):  # "another process": this one, holding it all along
        r = run_tokmon(["daily", "--json"], e, timeout=120)  # used to wait 600 s
    assert r.returncode == 0
    assert json.loads(r.stdout)["totals"]["inputTokens"] == 42  # still a full, exact report
    lines = [ln for ln in r.stderr.splitlines() if "lock" in ln]
    assert len(lines) == 1 and f"held by process {os.getpid()}" in lines[0], r.stderr


def _append(tmp_path: Path) -> None:
    line = assistant_line("2026-11-01T11:00:00.000Z", msg_id="m9", req_id="r9", inp=7, out=3)
    write_lines(tmp_path / "claude" / "projects" / "p" / "a.jsonl", [line])


def test_same_thread_relock_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    outcome: list[object] = []

    def relock() -> None:
        with FileLock(path, timeout=600):
            try:
                FileLock(path, timeout=600).acquire()
                outcome.append("acquired twice")
            except LockTimeout as exc:
                outcome.append(exc)

    t = threading.Thread(target=relock, daemon=True)
    t.start()
    t.join(60)  # waiting on itself would take 600 s
    assert not t.is_alive() and isinstance(outcome[0], LockTimeout)
    assert "already locked by this process" in str(outcome[0])


def test_other_threads_still_wait_their_turn(tmp_path: Path) -> None:
    path = tmp_path / "y.lock"
    order: list[str] = []
    lock = FileLock(path, timeout=5)
    lock.acquire()

    def other() -> None:
        with FileLock(path, timeout=60):
            order.append("other")

    t = threading.Thread(target=other)
    t.start()
    t.join(0.3)
    order.append("first")
    lock.release()
    t.join(60)
    assert order == ["first", "other"]


@POSIX
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_does_not_keep_the_lock(tmp_path: Path) -> None:
    """A holder dies (no unlock) while a child it forked lives on: the lock is free."""
    path = tmp_path / "z.lock"
    hold_r, hold_w = os.pipe()  # the grandchild blocks on this until the test kills it
    info_r, info_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the holder
        try:
            FileLock(path, timeout=5).acquire()
            gpid = os.fork()
            if gpid == 0:
                os.read(hold_r, 1)  # the test kills it at the end
                os._exit(0)
            os.write(info_w, str(gpid).encode())
        finally:
            os._exit(0)  # dies holding the lock, like a killed tokmon
    os.close(info_w)
    gpid = int(os.read(info_r, 32))
    try:
        os.waitpid(pid, 0)
        os.kill(gpid, 0)  # the child lives on
        # (it drops its copy as soon as it first runs: poll, it may not have run yet)
        assert wait_for(lambda: lock_free(path), 20, 0.01)
        os.kill(gpid, 0)
    finally:
        os.close(hold_w)
        os.kill(gpid, 9)


@POSIX
def test_lock_file_symlink_is_not_followed(
    tmp_path: Path, env: dict[str, str], tokmon_home: Path
) -> None:
    e = {**env, "CLAUDE_CONFIG_DIR": str(_corpus(tmp_path))}
    assert run_tokmon(["daily", "--json"], e).returncode == 0
    lock_path = next((tokmon_home / "data").glob("ledger-*.lock"))
    lock_path.unlink()
    target = tmp_path / "victim"
    lock_path.symlink_to(target)
    _append(tmp_path)  # something to save: the ledger lock is taken only to write
    r = run_tokmon(["daily", "--json"], e)
    assert r.returncode == 0, r.stderr
    assert not target.exists()  # used to be created (empty, 0600) through the link
    assert lock_path.is_file() and not lock_path.is_symlink()


def test_refresh_reentered_from_its_own_callback_fails_at_once(tmp_path: Path) -> None:
    """A refresh re-entered on the same engine (here from its progress callback, like a UI
    that refreshes on progress) raises at once instead of waiting on its own lock; the
    engine stays usable and exact."""
    from tokmon.core.engine import Engine
    from tokmon.paths import get_paths

    root = _corpus(tmp_path) / "projects"
    eng = Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(tmp_path / "home")}))
    inner: list[BaseException] = []

    def progress(done: int, total: int) -> None:
        try:
            eng.refresh()
        except RuntimeError as exc:
            inner.append(exc)
            raise

    done = threading.Event()
    err: list[BaseException] = []

    def run() -> None:
        try:
            eng.refresh(progress=progress)
        except RuntimeError as exc:
            err.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(60), "refresh() waited on itself"
    assert inner and "not re-entrant" in str(inner[0]) and err
    eng.refresh()
    assert eng.report("daily").to_json()["totals"]["inputTokens"] == 35
