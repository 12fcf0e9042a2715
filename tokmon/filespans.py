"""A kept answer printed and copied by ranges of its file, never read whole into the process.

A kept ``session --json`` is megabytes with a long history (4.7 MB for 4,406 sessions): read
into a fresh process it costs its pages (~2.5 ms at that size), written again after a change
as much, and printed once more. Here its rows stay in the file: an answer is a list of parts,
bytes made now or :class:`Span` ranges of the kept file (:class:`Source`), printed with
``os.sendfile`` (Linux: the kernel copies from the page cache; elsewhere, or for a stream it
refuses, 64 KiB reads) and copied into the next kept file with ``os.copy_file_range`` (else
reads and writes).

The file is never mapped (docs/security.md: a mapped file truncated in place ends the process
with SIGBUS). A file cut short by another process while a span is read or printed raises
:class:`Short` (what was printed already is counted): the caller builds the answer whole and
prints the rest of its bytes, which are the same bytes (a kept answer is the answer whole).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import NamedTuple

CHUNK = 1 << 16  # a read of the fallbacks (under malloc's mmap threshold: reused, no new pages)


class Short(Exception):
    """The kept file ended before a span did (truncated in place by another process);
    ``written``: how many bytes of the answer were printed already."""

    def __init__(self, written: int = 0) -> None:
        super().__init__(f"kept answer cut short after {written} bytes")
        self.written = written


class Span(NamedTuple):
    """The bytes ``[start, end)`` of the kept file."""

    start: int
    end: int


Part = bytes | memoryview | Span  # a part of an answer: bytes, or a range of the kept file


def pread(fd: int, n: int, at: int) -> bytes:
    """Up to ``n`` bytes of ``fd`` at ``at`` (``os.pread``; a seek and a read where there is none)."""
    if sys.platform != "win32":
        return os.pread(fd, n, at)
    os.lseek(fd, at, os.SEEK_SET)  # Windows: no pread (one thread reads this descriptor)
    return os.read(fd, n)


class Source:
    """A kept file open for reading by ranges (the caller closes it); ``mem``: its bytes,
    read whole (then ``fd`` is -1)."""

    def __init__(self, fd: int, size: int, mem: memoryview | None = None) -> None:
        self.fd, self.size, self.mem = fd, size, mem

    def read(self, start: int, end: int) -> bytes | memoryview:
        """The bytes ``[start, end)``; :class:`Short` when the file ends before."""
        if self.mem is not None:
            if end > len(self.mem):
                raise Short()
            return self.mem[start:end]
        out = []
        at = start
        while at < end:
            got = pread(self.fd, min(end - at, 1 << 24), at)
            if not got:
                raise Short()
            out.append(got)
            at += len(got)
        return out[0] if len(out) == 1 else b"".join(out)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


class Doc:
    """A document kept as ranges of a file: ``plan``, the ``(start, end)`` ranges of
    ``src`` that make it, in order (one range as written whole; more once changes were
    appended to the file); ``length``: its size."""

    def __init__(self, src: Source, plan: list[tuple[int, int]]) -> None:
        import itertools

        self.src, self.plan = src, plan
        self._offs = list(itertools.accumulate((b - a for a, b in plan), initial=0))
        self.length = self._offs[-1]

    def piece(self, start: int, end: int) -> list[Part]:
        """The document's bytes ``[start, end)`` as parts: ranges of the file (memoryviews
        of it when it was read whole)."""
        import bisect

        if not 0 <= start <= end <= self.length:
            raise IndexError(start, end)
        mem = self.src.mem
        out: list[Part] = []
        k = bisect.bisect_right(self._offs, start) - 1
        while start < end:
            a, b = self.plan[k]
            lo = a + start - self._offs[k]
            hi = min(b, a + end - self._offs[k])
            out.append(Span(lo, hi) if mem is None else mem[lo:hi])
            start += hi - lo
            k += 1
        return out

    def read(self, start: int, end: int) -> bytes | memoryview:
        """The document's bytes ``[start, end)`` (:class:`Short` when the file ends before)."""
        got = self.piece(start, end)
        if len(got) == 1 and not isinstance(got[0], Span):
            return got[0]
        return joined(got, self.src)


def size_of(parts: list[Part]) -> int:
    """How many bytes ``parts`` make."""
    return sum(p.end - p.start if isinstance(p, Span) else len(p) for p in parts)


def joined(parts: list[Part], src: Source | None) -> bytes:
    """The bytes of ``parts`` (spans read from ``src``)."""
    out: list[bytes | memoryview] = []
    for p in parts:
        if isinstance(p, Span):
            if src is None:
                raise ValueError("a span without its file")
            out.append(src.read(*p))
        else:
            out.append(p)
    return b"".join(out)


def _fileno(stream: object) -> int | None:
    try:
        return int(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def write_parts(stream: object, buf: object, parts: list[Part], src: Source | None) -> None:
    """Write ``parts`` to the binary stream ``buf`` (``stream``: the text stream over it,
    flushed first), spans from ``src``; :class:`Short` (with the bytes written) when the
    kept file ends early."""
    stream.flush()  # type: ignore[attr-defined]
    written = 0
    # sendfile to any descriptor: Linux only (macOS's and the BSDs' send to sockets only)
    sendfile = getattr(os, "sendfile", None) if sys.platform.startswith("linux") else None
    out_fd = _fileno(buf) if sendfile is not None else None
    for p in parts:
        if not isinstance(p, Span):
            buf.write(p)  # type: ignore[attr-defined]
            written += len(p)
            continue
        assert src is not None
        at, end = p
        if out_fd is not None and sendfile is not None:
            buf.flush()  # type: ignore[attr-defined]
            while at < end:
                try:
                    n = sendfile(out_fd, src.fd, at, end - at)
                except OSError:  # a stream sendfile refuses (O_APPEND, a terminal): write
                    out_fd = None
                    break
                if n == 0:
                    buf.flush()  # type: ignore[attr-defined]
                    raise Short(written)
                at += n
                written += n
        while at < end:
            got = pread(src.fd, min(CHUNK, end - at), at)
            if not got:
                buf.flush()  # type: ignore[attr-defined]
                raise Short(written)
            buf.write(got)  # type: ignore[attr-defined]
            at += len(got)
            written += len(got)
    buf.flush()  # type: ignore[attr-defined]


def write_file(path: Path, parts: list[Part], src: Source | None) -> None:
    """Write ``parts`` to ``path`` as :func:`tokmon.fsutil.atomic_write` does without
    ``fsync`` (a private temporary file beside it, then replaced), spans copied from
    ``src`` by ``os.copy_file_range`` where there is one (no byte through the process),
    else read and written; :class:`Short` (the temporary file removed) when ``src`` ends
    before a span does."""
    from tokmon.fsutil import _mkstemp, _replace

    fd, tmp = _mkstemp(path)
    try:
        copy = getattr(os, "copy_file_range", None)
        for p in parts:
            if not isinstance(p, Span):
                _write_all(fd, p)
                continue
            assert src is not None
            at, end = p
            while copy is not None and at < end:
                try:
                    n = copy(src.fd, fd, end - at, at)
                except OSError:  # not between these files (a filesystem without it)
                    copy = None
                    break
                if n == 0:
                    raise Short()
                at += n
            while at < end:
                got = pread(src.fd, min(CHUNK, end - at), at)
                if not got:
                    raise Short()
                _write_all(fd, got)
                at += len(got)
        os.close(fd)
        fd = -1
        _replace(tmp, path)
    except BaseException:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
