"""Bytes a build appends as its scan runs and reads back once at the end, kept in an unnamed
file instead of memory (the scan's end is a cold run's peak RSS; ``ledger.Stage``).

The file is made beside the build's private database file (0600; on POSIX unlinked at once,
on Windows deleted by the system when closed) and written 64 KiB at a time. If it cannot be
made or written (a full disk), the bytes stay in memory: only the peak RSS changes. If what
was written cannot be read back, :meth:`Spill.take` raises OSError (the caller does without).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CHUNK = 1 << 16  # bytes held before a write
_READV = hasattr(os, "readv")  # (straight into the buffer; Windows reads a copy)


class Spill:
    """An append-only run of bytes; :meth:`take` gives them all once."""

    def __init__(self, beside: Path | None = None, name: str = "spill") -> None:
        self._held = bytearray()
        self._fd = -1
        self._size = 0  # bytes in the file (whole writes)
        if beside is not None:
            path = beside.with_name(f"{beside.name}.{name}")
            flags = (
                os.O_RDWR
                | os.O_CREAT
                | os.O_EXCL
                | getattr(os, "O_BINARY", 0)
                | getattr(os, "O_TEMPORARY", 0)  # (Windows: gone when closed)
            )
            try:
                self._fd = os.open(path, flags, 0o600)
            except OSError:
                return
            if os.name != "nt":
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def __len__(self) -> int:
        return self._size + len(self._held)

    @property
    def in_file(self) -> int:
        """Bytes in the file (the rest is held in memory)."""
        return self._size

    def add(self, data: bytes) -> None:
        self._held += data
        if self._fd >= 0 and len(self._held) >= CHUNK:
            self._write()

    def _write(self) -> None:
        view = memoryview(self._held)
        try:
            done = 0
            while done < len(view):
                done += os.write(self._fd, view[done:])
        except OSError:  # (a full disk: what the file has read back, the rest held)
            view.release()
            self._held = self._read_file(self._held)  # (a new one: a part of the old one
            return  # may still be exported by the failed call)
        view.release()
        self._size += done
        self._held = bytearray()

    def _read_file(self, tail: bytes | bytearray) -> bytearray:
        """The file's whole writes and then ``tail``, in one buffer (the file dropped). If
        they cannot be read, what they held is lost: take() says so."""
        out = bytearray(self._size + len(tail))
        try:
            os.lseek(self._fd, 0, os.SEEK_SET)
            with memoryview(out) as view:
                at = 0
                while at < self._size:
                    if _READV:
                        got = os.readv(self._fd, [view[at : self._size]])  # type: ignore[attr-defined,unused-ignore]
                    else:
                        data = os.read(self._fd, self._size - at)
                        got = len(data)
                        view[at : at + got] = data
                    if not got:
                        raise OSError("the spill file is shorter than written")
                    at += got
                view[self._size :] = tail
        except OSError:
            self._lost = True
        finally:
            self._drop_file()
            self._size = 0
        return out

    _lost = False

    def take(self) -> bytes | bytearray:
        """Every byte added, in order (the file closed and dropped); raises OSError when
        what was written to the file could not be read back."""
        out = self._read_file(self._held) if self._fd >= 0 else self._held
        self._held = bytearray()
        if self._lost:
            raise OSError("the spilled bytes could not be read back")
        return out

    def close(self) -> None:
        """Drop the bytes (and the file)."""
        self._drop_file()
        self._held = bytearray()
        self._size = 0

    def _drop_file(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
