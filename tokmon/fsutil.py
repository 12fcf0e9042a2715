"""Crash-safe file writes and a cross-process lock (POSIX and Windows)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tokmon.paths import ensure_dir

TMP_SUFFIX = ".tmp"  # temp files are ".<name>.<random>.tmp" beside the target


def open_regular(path: Path | str) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file at ``path`` and its stat; the caller
    closes it. OSError when it is anything else: a FIFO or a device in its place would
    block the open or never end a read (opened non-blocking, checked before any read)."""
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path}: not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_regular(path: Path | str) -> bytes:
    """The bytes of the regular file at ``path`` (a cache file: the mirror, the listings, a
    cached report); OSError when it is anything else (:func:`open_regular`)."""
    fd, _ = open_regular(path)
    try:
        with open(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def atomic_write(
    path: Path, data: bytes | Sequence[bytes | memoryview], *, fsync: bool = True
) -> None:
    """Write ``data`` (bytes, or pieces written one after the other) to ``path`` atomically
    (temp file, fsync, replace), mode 0600.

    The one atomic writer of tokmon: a reader sees the old or the new file, never half of
    one. With ``fsync`` the data and the directory entry are flushed to disk too.
    """
    ensure_dir(path.parent)
    fd, tmp = _mkstemp(path)
    try:
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o600)  # mkstemp already creates 0600; belt and braces
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, bytes):
                fh.write(data)
            else:  # (a large answer's pieces: not joined into one more copy first)
                fh.writelines(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        _fsync_dir(path.parent)


# tempfile.mkstemp's flags; tempfile itself is not imported (its shutil and random chain
# costs a report that writes its cache a few milliseconds)
_TMP_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NOINHERIT", 0)
)


def _mkstemp(path: Path) -> tuple[int, str]:
    """A new private file ``.<name>.<random>.tmp`` beside ``path`` (as ``tempfile.mkstemp``)."""
    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}{TMP_SUFFIX}")
        try:
            return os.open(tmp, _TMP_FLAGS, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _replace(src: str, dst: Path) -> None:
    # On Windows os.replace fails while another process has dst open: retry briefly.
    for attempt in range(50):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 49:
                raise
            time.sleep(0.02)


def _fsync_dir(directory: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    with contextlib.suppress(OSError):
        dfd = os.open(str(directory), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class LockTimeout(Exception):
    """The lock could not be taken in time (the message names the holder when known)."""


# Lock descriptors this process holds: a forked child closes its copies at once (see
# _close_inherited_locks), so a child that outlives its parent never keeps a lock.
_HELD: dict[int, tuple[str, int]] = {}  # fd -> (lock path, thread that holds it)


def _close_inherited_locks() -> None:
    """In a freshly forked child: drop the copies of the parent's lock descriptors.

    Only ``close``: unlocking would release the parent's lock too (flock locks belong to
    the shared open file description).
    """
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)  # os.open makes fds non-inheritable anyway (PEP 446)
# Windows: os.open's descriptors are in text mode (CRLF written for LF) unless O_BINARY
_BINARY = getattr(os, "O_BINARY", 0)


def _open_lock_file(path: Path) -> int:
    """Open (create) a lock file without following a symlink planted at its path."""
    flags = os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _BINARY
    if not _NOFOLLOW and os.path.islink(path):  # pragma: no cover - no O_NOFOLLOW here
        os.unlink(path)
    try:
        return os.open(str(path), flags, 0o600)
    except OSError:
        # ELOOP (Linux, macOS) / EMLINK (FreeBSD): a symlink is there. Lock files live in
        # tokmon's private dirs: replace the link, never touch its target.
        if not os.path.islink(path):
            raise
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return os.open(str(path), flags, 0o600)


def _holder_text() -> bytes:
    import sys

    words = [os.path.basename(a) for a in sys.argv[:3] if a]
    if words and words[0] == "__main__.py":  # python -m tokmon ...
        words[0] = "tokmon"
    cmd = "".join(c for c in " ".join(words) if c.isprintable())[:80]
    # Byte 0 stays a newline: on Windows that byte is the locked range, the rest is readable.
    return f"\n{os.getpid()} {cmd}\n".encode("utf-8", "replace")


def lock_holder(path: Path) -> str | None:
    """``"process PID (command)"`` recorded by the current holder of the lock at ``path``."""
    try:
        fd = os.open(str(path), os.O_RDONLY | _NOFOLLOW | _BINARY)
    except OSError:
        return None
    try:
        os.lseek(fd, 1, os.SEEK_SET)
        data = os.read(fd, 256).decode("utf-8", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    pid, _, cmd = data.partition(" ")
    if not pid.isdigit():
        return None
    return f"process {pid}" + (f" ({cmd.strip()})" if cmd.strip() else "")


class FileLock:
    """An exclusive inter-process lock on ``path`` (fcntl on POSIX, msvcrt on Windows).

    The OS releases the lock when the holder dies, so a killed process never leaves a stale
    lock behind; forked children close their copy of the descriptor at once. The holder
    writes its pid into the file, so a waiter that gives up can say who holds it. Taking a
    lock the same thread already holds raises LockTimeout at once instead of waiting on itself
    (other threads wait as for another process).
    """

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        ensure_dir(self.path.parent)
        key = (os.path.abspath(self.path), threading.get_ident())
        if key in _HELD.values():
            raise LockTimeout(f"{self.path} is already locked by this process (re-entrant use)")
        fd = _open_lock_file(self.path)
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            if _try_lock(fd, str(self.path)):
                self._fd = fd
                _HELD[fd] = key
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, _holder_text())
                return True
            if not blocking or time.monotonic() >= deadline:
                os.close(fd)
                if not blocking:
                    return False
                who = lock_holder(self.path)
                raise LockTimeout(
                    f"could not lock {self.path} within {self.timeout:.0f}s"
                    + (f": held by {who}" if who else "")
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _HELD.pop(fd, None)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        _unlock(fd, str(self.path))
        os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int, path: str) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int, path: str) -> None:
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    try:
        import fcntl
    except ImportError:  # no such CPython platform today: a port's, and the tests' simulation
        fcntl = None  # type: ignore[assignment]

    def _try_lock(fd: int, path: str) -> bool:
        if fcntl is None:
            return _try_marker(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fd: int, path: str) -> None:
        if fcntl is None:
            _release_marker(path)
            return
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


HELD_SUFFIX = ".held"
#: a marker that holds no pid yet (its holder died between creating and writing it) is
#: stale after this many seconds
_TORN_MARKER_SECONDS = 10.0
#: a holder refreshes its markers' time this often (a thread, while it holds one) ...
MARKER_HEARTBEAT_SECONDS = 5.0
#: ... so a marker not refreshed for this long is stale whatever process has its pid now (a
#: pid is reused: a dead holder's pid can name a live, unrelated process)
MARKER_STALE_SECONDS = 60.0

_MARKERS: set[str] = set()  # markers this process holds (the heartbeat refreshes them)
_MARKERS_LOCK = threading.Lock()
_heartbeat: threading.Thread | None = None


def _beat() -> None:
    while True:
        time.sleep(MARKER_HEARTBEAT_SECONDS)
        with _MARKERS_LOCK:
            markers = list(_MARKERS)
        for marker in markers:
            with contextlib.suppress(OSError):
                os.utime(marker)


def _hold_marker(marker: str) -> None:
    global _heartbeat
    with _MARKERS_LOCK:
        _MARKERS.add(marker)
        if _heartbeat is None:
            _heartbeat = threading.Thread(target=_beat, name="tokmon-lock-heartbeat", daemon=True)
            _heartbeat.start()


def _forget_markers() -> None:
    """In a forked child: the parent's markers are not its own, and it has no heartbeat."""
    global _heartbeat
    _MARKERS.clear()
    _heartbeat = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_markers)


def _try_marker(path: str) -> bool:
    """The lock without flock or msvcrt: held while ``<path>.held`` exists (created
    exclusively, holding the holder's pid; its time refreshed every
    :data:`MARKER_HEARTBEAT_SECONDS` while held). A marker whose process is gone, or that
    nobody refreshed for :data:`MARKER_STALE_SECONDS`, is removed (a killed holder cannot
    release it); two waiters that find the same stale marker at the same moment can both
    take the lock, a race the OS locks do not have."""
    marker = path + HELD_SUFFIX
    for _ in range(2):
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o600)
        except FileExistsError:
            if not _stale_marker(marker):
                return False
            with contextlib.suppress(OSError):
                os.unlink(marker)
            continue
        except OSError:
            return False
        try:
            os.write(fd, str(os.getpid()).encode("ascii"))
        finally:
            os.close(fd)
        _hold_marker(marker)
        return True
    return False


def _release_marker(path: str) -> None:
    marker = path + HELD_SUFFIX
    with _MARKERS_LOCK:
        _MARKERS.discard(marker)
    with contextlib.suppress(OSError):
        os.unlink(marker)


def _stale_marker(marker: str) -> bool:
    """Whether the marker's holder is gone. Read without waiting or following a link (a FIFO
    planted there would block the open forever); a marker that is not a regular file, or
    holds no pid a process can have, is stale once older (or, the clock set back, newer)
    than :data:`_TORN_MARKER_SECONDS`; one that names a pid, once its holder is gone or it
    was not refreshed for :data:`MARKER_STALE_SECONDS` (either way: the pid may be reused)."""
    import stat

    try:
        st = os.lstat(marker)
        text = b""
        if stat.S_ISREG(st.st_mode):  # (the test first: a platform may lack O_NONBLOCK)
            fd = os.open(marker, os.O_RDONLY | _NOFOLLOW | _BINARY | getattr(os, "O_NONBLOCK", 0))
            try:
                st = os.fstat(fd)
                if stat.S_ISREG(st.st_mode):
                    text = os.read(fd, 32).strip()
            finally:
                os.close(fd)
    except OSError:
        return False
    age = time.time() - st.st_mtime
    pid = int(text) if text.isdigit() and len(text) <= 10 else 0
    if not 0 < pid < 2**31:  # torn (its holder died before writing it), or not a pid
        return not 0 <= age <= _TORN_MARKER_SECONDS
    if pid == os.getpid():
        return False  # another thread of this process holds it (and refreshes it)
    if not -MARKER_STALE_SECONDS <= age <= MARKER_STALE_SECONDS:
        return True  # no live holder left it unrefreshed that long
    kill = getattr(os, "kill", None)
    if kill is None or sys.platform == "win32":  # (os.kill would end the process there)
        return False
    try:
        kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's)
    return False


@contextlib.contextmanager
def locked(path: Path, timeout: float = 10.0) -> Iterator[None]:
    """Context manager form of :class:`FileLock`."""
    lock = FileLock(path, timeout)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
