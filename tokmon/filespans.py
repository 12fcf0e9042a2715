"""A kept answer printed and copied by ranges of its file, never read whole into the process.

A kept ``session --json`` is megabytes with a long history (4.7 MB for 4,406 sessions): read
into a fresh process it costs its pages (~2.5 ms at that size), written again after a change
as much, and printed once more. Here its rows stay in the file: an answer is a list of parts,
bytes made now or :class:`Span` ranges of the kept file (:class:`Source`), printed and copied
into the next kept file by 64 KiB reads (:func:`chunk`), each checked before a byte of it
is written.

The check: a kept answer never holds a NUL byte (JSON escapes it; the table's cells are
cleaned of control characters: were one there, the answer would only be built whole), and a file truncated in place by another process and grown again reads NULs
where it was cut and not yet written back (Linux also zeroes the tail of the partial last
page on a truncation, under readers that do not lock the page). A read that ends early or
holds a NUL raises :class:`Short` (what was printed already is counted, and all of it was
checked): the caller builds the answer whole and prints the rest of its bytes, which are the
same bytes (a kept answer is the answer whole). ``os.sendfile`` and ``os.copy_file_range``
are not used: they copy pages the process never sees (sendfile into a pipe even hands the
reader references to the page cache, which a truncation zeroes after the call returned), so
nothing could check what they printed or kept (docs/security.md).

The file is never mapped (docs/security.md: a mapped file truncated in place ends the process
with SIGBUS).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import NamedTuple

CHUNK = 1 << 16  # a read of a span (under malloc's mmap threshold: reused, no new pages)


class Short(Exception):
    """The kept file ended before a span did, or a span read NUL bytes (truncated in place
    by another process, and grown again); ``written``: how many bytes of the answer were
    printed already (all of them read and checked)."""

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


def checked(data: bytes) -> bytes:
    """``data``, read from a kept file; :class:`Short` when it is empty (the file ended) or
    holds a NUL byte (no kept answer does: the file was cut in place and grown again)."""
    if not data or b"\0" in data:
        raise Short()
    return data


def chunk(src: Source, at: int, end: int, most: int = CHUNK) -> bytes:
    """Up to ``most`` of the bytes ``[at, end)`` of ``src``'s file, read and
    :func:`checked` (one read: fewer bytes when the file gives fewer)."""
    return checked(pread(src.fd, min(most, end - at), at))


class Source:
    """A kept file open for reading by ranges (the caller closes it); ``mem``: its bytes,
    read whole (then ``fd`` is -1)."""

    def __init__(self, fd: int, size: int, mem: memoryview | None = None) -> None:
        self.fd, self.size, self.mem = fd, size, mem

    def read(self, start: int, end: int) -> bytes | memoryview:
        """The bytes ``[start, end)``; :class:`Short` when the file ends before or they
        hold a NUL (a file read whole was checked when read: :func:`checked`)."""
        if self.mem is not None:
            if end > len(self.mem):
                raise Short()
            return self.mem[start:end]
        out = []
        at = start
        while at < end:
            got = chunk(self, at, end, 1 << 24)
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


def write_parts(stream: object, buf: object, parts: list[Part], src: Source | None) -> None:
    """Write ``parts`` to the binary stream ``buf`` (``stream``: the text stream over it,
    flushed first), spans read from ``src`` and checked (:func:`chunk`); :class:`Short`
    (with the bytes written) when the kept file ends early or reads a NUL."""
    stream.flush()  # type: ignore[attr-defined]
    written = 0
    for p in parts:
        if not isinstance(p, Span):
            buf.write(p)  # type: ignore[attr-defined]
            written += len(p)
            continue
        assert src is not None
        at, end = p
        while at < end:
            try:
                got = chunk(src, at, end)
            except Short:
                buf.flush()  # type: ignore[attr-defined]
                raise Short(written) from None
            buf.write(got)  # type: ignore[attr-defined]
            at += len(got)
            written += len(got)
    buf.flush()  # type: ignore[attr-defined]


def write_file(path: Path, parts: list[Part], src: Source | None) -> None:
    """Write ``parts`` to ``path`` as :func:`tokmon.fsutil.atomic_write` does without
    ``fsync`` (a private temporary file beside it, then replaced), spans read from ``src``
    and checked (:func:`chunk`); :class:`Short` (the temporary file removed, nothing kept)
    when ``src`` ends before a span does or reads a NUL."""
    from tokmon.fsutil import _mkstemp, _replace

    fd, tmp = _mkstemp(path)
    try:
        for p in parts:
            if not isinstance(p, Span):
                _write_all(fd, p)
                continue
            assert src is not None
            at, end = p
            while at < end:
                got = chunk(src, at, end)
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
