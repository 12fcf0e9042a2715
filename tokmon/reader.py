"""Incremental tailing of append-only transcript files.

Per file we remember (device, inode, size, mtime, offset). A file that shrank or whose
identity changed is read again from the start; only complete lines are consumed, so a
line still being written is picked up on the next read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

MAX_LINE = 16 * 1024 * 1024  # longer lines are skipped and counted
_CHUNK = 8 * 1024 * 1024


@dataclass
class FileState:
    """What we know about one transcript file."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    offset: int

    def to_list(self) -> list[int]:
        return [self.dev, self.ino, self.size, self.mtime_ns, self.offset]

    @classmethod
    def from_list(cls, v: list[int]) -> FileState:
        return cls(*v)


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
        # Same size: a rewrite of identical length shows as a new mtime with a smaller/equal size.
        if st.st_mtime_ns != prev.mtime_ns and st.st_size < prev.size:
            return True, 0
        return False, prev.offset
    return True, prev.offset


class LineReader:
    """Iterate ``(line_offset, line)`` over the complete lines of ``path`` from ``offset``.

    After iteration ``end`` is the offset just past the last complete line, and ``huge``
    counts lines longer than MAX_LINE that were skipped.
    """

    def __init__(self, path: str, offset: int) -> None:
        self.path = path
        self.offset = offset
        self.end = offset
        self.huge = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            pos = self.offset
            pending = b""
            skipping = False
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    break
                buf = pending + chunk if pending else chunk
                base = pos - len(pending)
                start = 0
                find = buf.find
                while True:
                    nl = find(b"\n", start)
                    if nl == -1:
                        break
                    if skipping:
                        skipping = False
                    elif nl > start:
                        yield base + start, buf[start:nl]
                    start = nl + 1
                pending = buf[start:]
                pos += len(chunk)
                if len(pending) > MAX_LINE:
                    self.huge += 1
                    skipping = True
                    pending = b""
            # An oversized line still being written is skipped as a whole next time too.
            self.end = pos if skipping else pos - len(pending)
