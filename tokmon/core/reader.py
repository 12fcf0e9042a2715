"""Incremental tailing of append-only transcript files.

Per file we remember (device, inode, size, mtime, offset, fingerprint). A file that shrank
or whose identity changed is read again from the start; only complete lines are consumed, so
a line still being written is picked up on the next read. The fingerprint (a hash of the
first and the last 4 KiB before the offset) catches a file rewritten in place (same inode:
truncated and regrown, or the same size with a new mtime): it is then read from the start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from tokmon.core.digest import blake2b
from tokmon.leanclass import dataclass

MAX_LINE = 16 * 1024 * 1024  # longer lines are skipped and counted
_CHUNK = 1024 * 1024  # read size; the buffer grows for longer lines
_POOL: list[bytearray] = []  # read buffers for reuse (one per concurrent reader)
_KEEP = 2  # a buffer grown past _KEEP * _CHUNK shrinks when its file is done (see blocks)
# A fingerprint: blake2b of the first and the last FP_WINDOW bytes before an offset, FP_BYTES
# long (18 hex digits). One stored before the seventeenth session is 16 hex digits, of 4 KiB
# windows (OLD_FP): it is still checked as it was made, and a file read on gets a new one (a
# cold scan hashed 8 KiB a file, ~2% of its CPU; 2 KiB tell files apart as well).
FP_WINDOW = 1024
FP_BYTES = 9
OLD_FP = (4096, 8)  # (window, digest bytes) of a 16-digit fingerprint


@dataclass
class FileState:
    """What we know about one transcript file."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    offset: int
    fp: str = ""  # fingerprint of the bytes before ``offset`` ("" = unknown: not checked)

    def to_list(self) -> list[int | str]:
        return [self.dev, self.ino, self.size, self.mtime_ns, self.offset, self.fp]

    @classmethod
    def from_list(cls, v: list[int | str]) -> FileState:
        """Build from a stored list; raises TypeError/ValueError on wrong shapes or types."""
        if type(v) is not list or len(v) not in (5, 6):
            raise TypeError("file state: not a list of 5 or 6 values")
        nums: list[int] = []
        for n in v[:5]:
            if type(n) is not int or n < 0:
                raise TypeError("file state: not non-negative integers")
            nums.append(n)
        fp = v[5] if len(v) == 6 else ""
        if type(fp) is not str:
            raise TypeError("file state: fingerprint not a string")
        return cls(nums[0], nums[1], nums[2], nums[3], nums[4], fp)


def fingerprint(fh: BinaryIO, end: int, like: str = "") -> str:
    """Hash of the first and the last FP_WINDOW bytes of ``fh`` before ``end``; of the
    older 4 KiB windows when ``like`` (a stored fingerprint to compare with) is of that
    kind."""
    if end <= 0:
        return ""
    window, size = OLD_FP if len(like) == 2 * OLD_FP[1] else (FP_WINDOW, FP_BYTES)
    h = blake2b(digest_size=size)
    fh.seek(0)
    h.update(fh.read(min(window, end)))
    start = max(0, end - window)
    fh.seek(start)
    h.update(fh.read(end - start))
    return h.hexdigest()


def needs_read(st: os.stat_result, prev: FileState | None) -> tuple[bool, int]:
    """Whether the file has new bytes, and the offset to read from (0 = from scratch)."""
    if prev is None:
        return st.st_size > 0, 0
    replaced = (st.st_ino != prev.ino or st.st_dev != prev.dev) and prev.ino != 0
    if replaced or st.st_size < prev.offset:
        return True, 0
    if st.st_size == prev.size and st.st_mtime_ns == prev.mtime_ns:
        return False, prev.offset  # untouched (maybe with a half-written last line)
    if st.st_size == prev.offset:
        if prev.fp:
            return True, prev.offset  # touched: the reader checks the fingerprint
        # Same size: a rewrite of identical length shows as a new mtime with a smaller/equal size.
        if st.st_mtime_ns != prev.mtime_ns and st.st_size < prev.size:
            return True, 0
        return False, prev.offset
    return True, prev.offset


class LineReader:
    """Iterate ``(line_offset, line)`` over the complete lines of ``path`` from ``offset``.

    After iteration ``end`` is the offset just past the last complete line, ``huge``
    counts lines longer than MAX_LINE that were skipped and ``fp`` is the fingerprint at
    ``end``. With ``expect_fp`` the bytes before ``offset`` are checked first: if they
    changed, the file was rewritten in place and is read from 0 (``rewritten`` is set).
    ``size``: the file's size when the caller last looked (a stat before the read); once
    that much is read, a read short of the buffer's room is taken as the end (no further
    read only to find it: what was appended meanwhile leaves the file larger than the
    size stored for it, so the next refresh reads it). -1: read until a read returns
    nothing.
    """

    def __init__(self, path: str, offset: int, expect_fp: str = "", size: int = -1) -> None:
        self.path = path
        self.size = size
        self.offset = offset
        self.end = offset
        self.huge = 0
        self.expect_fp = expect_fp
        self.fp = ""
        self.rewritten = False
        # fp_at: set while blocks() yields the file's last block read whole from 0: the end
        # its fingerprint will be taken at (the block's stop), else -1; a caller may hash it
        # (the native scan does, the GIL released) and set fp_given (see blocks)
        self.fp_at = -1
        self.fp_given = ""

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        for base, buf, start, stop in self.blocks():
            find = buf.find
            while start < stop:
                nl = find(b"\n", start, stop)
                if nl > start:
                    yield base + start, bytes(buf[start:nl])
                start = nl + 1

    def blocks(self) -> Iterator[tuple[int, bytearray, int, int]]:
        """Iterate ``(base, buf, start, stop)``: ``buf[start:stop]`` holds complete lines
        (each ending with a newline, empty ones included) and ``base`` is the file offset
        of ``buf[0]``. Lines are found on whole buffers by the caller (the fast scanner).
        While a block is yielded, ``fp_at`` is the offset the file's fingerprint will be
        taken at when this is the last block of a file read whole from 0 (its ``stop``;
        else -1): a caller that hashed ``buf[:fp_at]`` as :func:`fingerprint` does may set
        ``fp_given`` to the digest, which is then used instead of hashing again.

        ``buf`` is one reused buffer (valid until the next step of the iteration): reading
        into it allocates nothing per file, so a scan of thousands of files leaves no
        fragments of large temporary buffers in the heap (peak RSS). A line longer than
        the buffer grows it in place (one buffer, never two at once); grown up to
        ``_KEEP * _CHUNK`` it stays so for the next files (no page faults of growing it
        again for each long line) until :func:`trim_pool` (the end of a scan), more is
        given back when the file is done."""
        buf = take_buffer()
        try:
            yield from self._blocks(buf)
        finally:
            give_buffer(buf)

    def _blocks(self, buf: bytearray) -> Iterator[tuple[int, bytearray, int, int]]:
        with open(self.path, "rb", buffering=0) as fh:
            expect = self.expect_fp
            if self.offset and expect and fingerprint(fh, self.offset, expect) != expect:
                self.offset = self.end = 0
                self.rewritten = True
            if self.offset or self.rewritten:  # (a file just opened is at 0)
                fh.seek(self.offset)
            pos = self.offset  # file offset of the next byte read
            fill = 0  # buf[:fill] holds the start of a line not complete yet
            skipping = False  # inside a line longer than MAX_LINE: dropped up to its newline
            lo, hi = pos, 0  # buf[:hi] holds the file's bytes from offset lo (fingerprint)
            given_at = -1  # the end fp_given (if set) is the fingerprint at
            while True:
                if fill == len(buf):  # a line longer than the buffer so far: grow it
                    more = max(len(buf) // 2, 1)  # (1.5x: little room left over at the end)
                    try:  # in place (zeroes from calloc: no page touched by them)
                        buf += bytes(more)
                    except BufferError:  # a caller still holds a view of it: a new one
                        bigger = bytearray(len(buf) + more)
                        bigger[:fill] = buf
                        buf = bigger
                with memoryview(buf) as view:
                    n = fh.readinto(view[fill:])
                if not n:  # growth since the open is read too, up to the end seen now
                    break
                # with the stat's size read, a short read is the end (see the class)
                last_read = n < len(buf) - fill and 0 <= self.size <= pos + n
                end = fill + n
                base = pos - fill
                pos += n
                lo, hi = base, end
                start = 0
                last = buf.rfind(b"\n", 0, end)
                if last != -1:
                    if skipping:  # the rest of an oversized line: dropped
                        skipping = False
                        start = buf.find(b"\n", 0, end) + 1
                    if last + 1 > start:
                        # read whole from 0, the last read: the end will be last + 1
                        self.fp_at = last + 1 if last_read and base == 0 else -1
                        self.fp_given = ""
                        yield base, buf, start, last + 1
                        given_at, self.fp_at = self.fp_at, -1
                    start = last + 1
                elif skipping:
                    start = end  # still inside the oversized line
                fill = end - start
                if fill > MAX_LINE:
                    self.huge += 1
                    skipping = True
                    fill = 0
                elif fill and start:
                    if last_read:  # (the partial line stays: buf[:hi] is still the file's)
                        break
                    buf[:fill] = buf[start:end]  # the partial line moves to the front
                    lo, hi = base + start, fill
                if last_read:
                    break
            # An oversized line still being written is skipped as a whole next time too.
            self.end = pos if skipping else pos - fill
            if lo == 0 and 0 < self.end <= hi:  # the usual whole file in one read: no re-read
                given = self.fp_given if given_at == self.end else ""
                self.fp = given or _fingerprint(buf, self.end)
            else:
                self.fp = fingerprint(fh, self.end)


def take_buffer() -> bytearray:
    """A read buffer from the pool (a new one of :data:`_CHUNK` bytes if it is empty)."""
    try:  # (not "if _POOL": readers may run in threads of one process)
        return _POOL.pop()
    except IndexError:
        return bytearray(_CHUNK)


def give_buffer(buf: bytearray) -> None:
    """Put a read buffer back (made :data:`_CHUNK` bytes again when it grew past
    ``_KEEP * _CHUNK``; dropped when it cannot be: a view of it is alive)."""
    if len(buf) > _KEEP * _CHUNK and not _trim(buf):
        return  # still exported (a caller kept a view): not reused
    if buf:
        _POOL.append(buf)


def _trim(buf: bytearray) -> bool:
    """Make ``buf`` :data:`_CHUNK` bytes again, in place (from more than twice that, a
    realloc: the pages past it go back to the OS; a smaller cut keeps its memory); False if
    it cannot be resized now (a view of it is alive)."""
    try:
        del buf[_CHUNK:]
        if len(buf) < _CHUNK:  # (_CHUNK changed since it was made: tests)
            buf.extend(bytes(_CHUNK - len(buf)))
    except BufferError:
        return False
    return True


def trim_pool() -> None:
    """Give the pooled read buffers back (at the end of a scan): a process that scans again
    (the server, ``watch``) allocates them anew, ~0.1 ms; a one-shot run no longer keeps
    ~2 MiB of touched buffers through its merge and report (peak RSS; docs/performance.md,
    tenth session)."""
    _POOL.clear()  # (one call under the GIL: a reader of another thread may be returning one)


def _fingerprint(buf: bytearray, end: int) -> str:
    """:func:`fingerprint` of a file whose first ``end`` bytes are ``buf[:end]``."""
    h = blake2b(digest_size=FP_BYTES)
    with memoryview(buf) as view:
        h.update(view[: min(FP_WINDOW, end)])
        h.update(view[max(0, end - FP_WINDOW) : end])
    return h.hexdigest()
