"""A blocking "something changed" wait for the file watcher, where the OS offers one (Linux).

watchfiles' ``RustNotify.watch`` learns of changes by waking every ``step`` ms (the GIL taken
each time): ~250 wake-ups a second at the server's 4 ms, forever, even with nothing to do.
A :class:`Doorbell` is a second, private inotify instance over the same directories that the
watcher thread blocks on while idle (no wake-ups, GIL released); when it rings the watcher runs
the Rust loop until that loop has delivered what changed, then blocks on the bell again. It
only says *that* something relevant changed: the paths still come from the Rust notifier.

Elsewhere (macOS, Windows, polling mode, or no inotify instance/watch to spare) there is no
bell and the watcher steps as before.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("tokmon.watcher")

# <sys/inotify.h>
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_ISDIR = 0x40000000
IN_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0o4000)  # (differs on a few architectures)
IN_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0o2000000)
#: what notify's inotify backend reacts to, less the open/close events
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
_HEAD = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of NUL-padded name)


class Doorbell:
    """Recursive inotify watch of ``roots``: :meth:`wait` returns True when an event that
    ``keep(path, deleted)`` accepts arrived (or the queue overflowed, or a watched directory
    itself went away), and :meth:`take` then names those paths. :meth:`ring` wakes a
    :meth:`wait` from another thread. ``ok`` turns False when a watch could not be added
    (e.g. the inotify watch limit): the caller must then stop relying on the bell."""

    keep: Callable[[Path, bool], bool] | None
    ok: bool
    fd: int
    dirs: dict[int, str]  # watch descriptor -> directory
    _rung: set[str]  # the kept paths since the last take ("": any change)
    _wake_r: int
    _wake_w: int
    _libc: Any

    def __init__(
        self, roots: Iterable[Path], keep: Callable[[Path, bool], bool] | None = None
    ) -> None:
        if sys.platform == "win32":  # (open_doorbell never gets here; for mypy's win32 pass)
            raise OSError("no inotify on Windows")
        import ctypes

        self.keep = keep
        self.ok = True
        self.fd = self._wake_r = self._wake_w = -1  # (close() skips what was not opened)
        self.dirs = {}
        self._rung = set()
        try:  # whatever fails, nothing opened so far stays open
            self._libc = ctypes.CDLL(None, use_errno=True)
            fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            self.fd = fd
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            for r in roots:
                self._add_tree(os.fspath(r))
        except BaseException:
            self.close()
            raise

    # -- watches -------------------------------------------------------------------------
    def _add(self, path: str) -> bool:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), MASK | IN_ONLYDIR)
        if wd >= 0:
            self.dirs[wd] = path
            return True
        import ctypes

        err = ctypes.get_errno()
        if err in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
            return False  # gone meanwhile, or not ours to read: notify skips it too
        log.debug("watcher: no inotify bell (%s: %s)", path, os.strerror(err))
        self.ok = False
        return False

    def _add_tree(self, top: str) -> None:
        """Watch ``top`` and every directory below it (symlinks followed, once each)."""
        seen: set[tuple[int, int]] = set()
        stack = [top]
        while stack and self.ok:
            d = stack.pop()
            try:
                st = os.stat(d)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen or not self._add(d):
                continue
            seen.add((st.st_dev, st.st_ino))
            with contextlib.suppress(OSError), os.scandir(d) as it:
                for e in it:
                    with contextlib.suppress(OSError):
                        if e.is_dir():  # follows symlinks, as notify does
                            stack.append(e.path)

    # -- waiting -------------------------------------------------------------------------
    def wait(self, timeout: float | None) -> bool:
        """Block until a relevant event, :meth:`ring` or ``timeout`` seconds (None: no limit);
        True when woken by an event or a ring. Reads (and so forgets) the queued events,
        watching the directories they created."""
        if self.drain():
            return True
        if sys.platform == "win32":  # never constructed there (see __init__)
            return True
        import select

        p = select.poll()
        p.register(self.fd, select.POLLIN)
        p.register(self._wake_r, select.POLLIN)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            ready = p.poll(ms)
            if not ready:
                return False
            if any(fd == self._wake_r for fd, _ in ready):
                with contextlib.suppress(OSError):
                    while os.read(self._wake_r, 512):
                        pass
                return True
            if self.drain():
                return True
            # only events nobody asked for (e.g. the ledger's writes next to the metadata
            # file): keep waiting, until the deadline at most

    def take(self) -> set[str]:
        """The paths whose events rang since the last take; ``""`` stands for a change that
        names no path (an overflow, a watched directory gone, a failing filter)."""
        got, self._rung = self._rung, set()
        return got

    def ring(self) -> None:
        """Wake a :meth:`wait` in another thread (e.g. to stop)."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def drain(self) -> bool:
        """Read every queued event; True if one of them matters (see :meth:`take`)."""
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                self._rung.add("")
                break
            if not buf:
                break
            self._parse(buf)
        return bool(self._rung)

    def _parse(self, buf: bytes) -> None:
        rung = self._rung
        pos = 0
        while pos + _HEAD.size <= len(buf):
            wd, mask, _cookie, n = _HEAD.unpack_from(buf, pos)
            name = buf[pos + _HEAD.size : pos + _HEAD.size + n].rstrip(b"\0")
            pos += _HEAD.size + n
            if mask & IN_Q_OVERFLOW:
                rung.add("")
                continue
            parent = self.dirs.get(wd)
            if mask & IN_IGNORED:
                self.dirs.pop(wd, None)
                continue
            if parent is None:
                continue
            if not name:  # the watched directory itself moved or went away
                rung.add("")
                continue
            path = os.path.join(parent, os.fsdecode(name))
            if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                self._add_tree(path)
            deleted = bool(mask & (IN_DELETE | IN_MOVED_FROM))
            try:
                if self.keep is None or self.keep(Path(path), deleted):
                    rung.add(path)
            except Exception:  # a filter failing must not hide a change
                rung.add("")

    def close(self) -> None:
        for fd in (self.fd, self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fd = self._wake_r = self._wake_w = -1  # (a second close closes nothing reused)
        self.dirs.clear()


def open_doorbell(
    roots: Iterable[Path], keep: Callable[[Path, bool], bool] | None = None
) -> Doorbell | None:
    """A :class:`Doorbell` over ``roots`` where inotify is available (Linux), else None."""
    if not sys.platform.startswith("linux") or os.environ.get("TOKMON_NO_DOORBELL"):
        return None
    try:
        bell = Doorbell(roots, keep)
    except (OSError, AttributeError) as exc:  # no inotify (e.g. a sandbox), no instance left
        log.debug("watcher: no inotify bell: %s", exc)
        return None
    if not bell.ok:
        bell.close()
        return None
    return bell
