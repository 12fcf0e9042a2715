"""Rebuild the line snapshot, at most one process at a time.

``spawn()`` starts ``python -P -m tokmon.statusline.refresher`` (see :mod:`tokmon.safepython`:
never importing from the caller's directory, started in tokmon's own cache dir) fully detached (a new
session on POSIX, ``DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP`` on Windows)
so a prompt never waits for it.  ``refresh()`` does the work under a
single-flight lock (:class:`tokmon.fsutil.FileLock` on ``<cache>/line/refresh.lock``):
a second refresher finds the lock taken and leaves.

After a refresh it also hands Claude's session names (recorded by
``line --claude``) to the metadata store, off the prompt's hot path.
"""

from __future__ import annotations

import os
import sys
import time

from tokmon.statusline.locate import (
    ensure_private_dir,
    fast_snapshot_file,
    line_dir,
    lock_file,
    tokmon_dirs,
)

TYPE_CHECKING = False  # typing costs milliseconds to import: keep it off the prompt path
if TYPE_CHECKING:
    from typing import Any

#: don't start another detached refresher within this many seconds of the last start
SPAWN_INTERVAL = 2.0
#: after a failed refresh, wait this long before trying again from a prompt
FAILURE_BACKOFF = 30.0


def lock_busy(path: str) -> bool:
    """True when another process holds the refresh lock (cheap, stdlib, no waiting)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
    except OSError:
        return False
    try:
        if sys.platform == "win32":  # pragma: no cover - Windows only
            import msvcrt

            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            except OSError:
                return True
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
            return False
        try:
            import fcntl
        except ImportError:  # no flock: the refresher's own lock (fsutil) decides
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def spawn(dirs: dict[str, str], env: dict[str, str] | None = None) -> str:
    """Start a detached refresher unless one runs or started moments ago; says what happened."""
    ldir = line_dir(dirs)
    try:
        ensure_private_dir(ldir)
    except OSError as exc:
        return f"not refreshing: cannot create {ldir}: {exc.strerror or exc}"
    if not os.access(ldir, os.W_OK):
        return f"not refreshing: {ldir} is not writable"
    if lock_busy(lock_file(dirs)):
        return "a refresh is already running"
    failed = _recent_failure(ldir)
    if failed:
        return failed
    stamp = os.path.join(ldir, "refresh.stamp")
    try:
        if time.time() - os.stat(stamp).st_mtime < SPAWN_INTERVAL:
            return "a refresh started less than 2 s ago"
    except OSError:
        pass
    try:
        os.close(os.open(stamp, os.O_WRONLY | os.O_CREAT, 0o600))
        os.utime(stamp)
    except OSError as exc:
        return f"not refreshing: cannot write {stamp}: {exc.strerror or exc}"
    log = os.path.join(ldir, "refresh.log")
    from tokmon.safepython import module_argv

    argv = module_argv("tokmon.statusline.refresher")
    env = dict(os.environ if env is None else env)
    try:
        pid = _spawn_detached(argv, env, log, ldir)
    except OSError as exc:
        return f"could not start the refresher: {exc}"
    return f"started a background refresher (pid {pid})"


def _recent_failure(ldir: str) -> str | None:
    """The last refresh error if it is recent (then prompts don't retry yet)."""
    path = os.path.join(ldir, "refresh.error")
    try:
        age = time.time() - os.stat(path).st_mtime
        if age >= FAILURE_BACKOFF:
            return None
        with open(path, encoding="utf-8", errors="replace") as fh:
            message = fh.readline(500).strip()
    except OSError:
        return None
    return f"not refreshing: the last refresh failed {age:.0f}s ago: {message}"


def _spawn_detached(argv: list[str], env: dict[str, str], log: str, cwd: str) -> int:
    """Start ``argv`` detached in ``cwd`` (posix_spawn has no cwd: it is used only with ``-P``,
    and the refresher changes to its own directory first thing)."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import subprocess

        flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
        with open(log, "ab") as err:
            proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, creationflags=flags, close_fds=True, cwd=cwd,
            )  # fmt: skip
        return proc.pid
    if "-P" in argv[1:2]:
        try:
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            ]
            return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        except (NotImplementedError, AttributeError, TypeError):  # no posix_spawn / no setsid
            pass
    import subprocess

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "wb") as err:
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err, start_new_session=True, close_fds=True, cwd=cwd,
        )  # fmt: skip
    return proc.pid


def refresh(
    env: dict[str, str] | os._Environ[str] | None = None,
    *,
    wait: bool = False,
    newer_than: float | None = None,
    timeout: float = 60.0,
) -> bool:
    """Rebuild the snapshot under the single-flight lock; False if another refresher had it.

    With ``wait`` it waits for a running refresher instead and then skips the
    rebuild when that one produced a snapshot newer than ``newer_than``.
    """
    from pathlib import Path

    from tokmon.fsutil import FileLock, LockTimeout

    env = os.environ if env is None else env
    dirs = tokmon_dirs(env)
    ensure_private_dir(line_dir(dirs))  # 0700 on every level (FileLock would make only the leaf)
    # without ``wait`` still allow a moment: a prompt's lock probe may hold it briefly
    lock = FileLock(Path(lock_file(dirs)), timeout=timeout if wait else 0.5)
    try:
        lock.acquire()
    except (LockTimeout, OSError):
        return False
    try:
        fast = fast_snapshot_file(dirs)
        if newer_than is not None:
            try:
                if os.stat(fast).st_mtime >= newer_than:
                    return True
            except OSError:
                pass
        from tokmon.statusline import snapshot

        snap, engine = snapshot.build(env)
        snapshot.write(snap, fast, os.fspath(engine.paths.snapshot_file))
        try:
            os.unlink(os.path.join(line_dir(dirs), "refresh.error"))
        except OSError:
            pass
        _apply_claude_titles(engine.paths, dirs)
        _prune_prompt_files(dirs)
        return True
    finally:
        lock.release()


def _apply_claude_titles(paths: Any, dirs: dict[str, str]) -> None:
    """Give the metadata store the session names Claude Code reported (cheap when unchanged)."""
    try:
        from tokmon.metadata.store import MetadataStore
    except ImportError:  # pragma: no cover - the store is optional
        return
    from tokmon.core import official

    store = MetadataStore(paths=paths)
    for sid, rec in official.all_sessions(paths).items():
        name = rec.get("sessionName")
        if isinstance(name, str) and name:
            try:
                store.set_claude_title(sid, name)
            except Exception as exc:  # bad id or a locked store: the next refresh retries
                print(f"tokmon line: cannot record the title of {sid}: {exc}", file=sys.stderr)


def _prune_prompt_files(dirs: dict[str, str], max_age: float = 86400.0) -> None:
    """Remove per-shell prompt files left by shells that exited without cleaning up."""
    pdir = os.path.join(line_dir(dirs), "prompt")
    now = time.time()
    try:
        entries = list(os.scandir(pdir))
    except OSError:
        return
    for e in entries:
        try:
            if now - e.stat().st_mtime > max_age:
                os.unlink(e.path)
        except OSError:
            pass


def refresh_safely(
    env: dict[str, str] | os._Environ[str] | None = None,
    *,
    wait: bool = False,
    newer_than: float | None = None,
) -> tuple[bool, str]:
    """:func:`refresh` that never raises: ``(ok, note)``; a failure is recorded in
    ``<cache>/line/refresh.error`` so prompts back off for ``FAILURE_BACKOFF`` seconds."""
    env = os.environ if env is None else env
    ldir = line_dir(tokmon_dirs(env))
    failed = _recent_failure(ldir)
    if failed:
        return False, failed
    try:
        ok = refresh(env, wait=wait, newer_than=newer_than)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
            fd = os.open(os.path.join(ldir, "refresh.error"), flags, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(message + "\n")
        except OSError:
            pass
        return False, f"refresh failed: {message}"
    return ok, "refreshed" if ok else "another refresher holds the lock"


def main() -> int:
    """Entry point of the detached refresher (errors go to ``<cache>/line/refresh.log``)."""
    try:  # never work in the caller's directory (it may be an untrusted repository)
        os.chdir(line_dir(tokmon_dirs()))
    except OSError:
        pass
    ok, note = refresh_safely()
    if not ok:
        print(f"tokmon line refresher: {note}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
