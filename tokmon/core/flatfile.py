"""The flat walk's file (``cache/ledger-*.flat``, :class:`tokmon.core.engine.check.Flat`):
its layout, and its ``stat`` calls begun while the program imports.

A warm report's change check is one ``stat`` per transcript (~2 us each on the sandbox VM,
a system call's cost: ~16 ms for 8,000 transcripts at 2 GB, ~8 ms on two threads), and the
one part of it that grows with the history. :func:`start_check`, called by
``tokmon.__main__`` before the CLI's imports, reads the file and hands its paths and entries
to ``tokmon._native._stat.check_start``: a native thread (no GIL, no Python object touched)
makes the calls on the other core while this one imports. :meth:`Flat.load` then takes the
same bytes (:func:`take`) and :meth:`Flat.check` the thread's result (``check_take``: the
calling thread makes the calls the other has not reached yet, if any), which is exactly what
``_stat.check`` would return for those bytes; whether they are still the database's is
decided as before (the stamp in the file's header), so a file that changed meanwhile, or a
check begun for another ledger, is never used. The only difference is when the calls ran:
a few milliseconds earlier in the same run, as if the run had begun then.

Layout (:func:`encode`, :func:`parse`): ``MAGIC``, a JSON header line (``db``: the stamp, ``roots``, ``order``: the byte
order of the int64 entries, ``nd``/``nf``: directories and transcripts, ``plen``: the
length of the paths), the paths joined by NUL bytes, then ``4 * nd`` and ``4 * nf`` int64.
Light on purpose: imported before the CLI (json and the native module only when used).
"""

from __future__ import annotations

import os
import sys
from typing import Any

MAGIC = b"tokmon-flat 1\n"
ITEM = 8  # bytes of one int64 entry field (array("q").itemsize)

#: fewer transcripts than this: no check begun early. While its thread runs, the importing
#: thread's memory-map calls cost more (each has the other core's TLB flushed: an interrupt,
#: dear in a VM), and with the file read first that is more than the ~4 ms an in-line check of
#: 2,000 transcripts takes (+1-2 ms a run on the sandbox VM at 500 MB; -5 ms at 8,000:
#: docs/performance.md, twenty-second session)
MIN_EARLY = 4000

# checks begun by start_check, by the flat file's path: (its bytes, the native handle)
_EARLY: dict[str, tuple[bytes, Any]] = {}


def encode(
    stamp: list[Any], roots: list[str], paths: bytes | memoryview, dsig: Any, fsig: Any
) -> bytes:
    """A flat file's bytes: the database ``stamp``, the ``roots``, the ``paths`` joined by NUL
    bytes (directories first) and their int64 entries (``array("q")``, 4 a path)."""
    from tokmon.jsontext import compact

    head = {
        "db": stamp,
        "roots": roots,
        "order": sys.byteorder,
        "nd": len(dsig) // 4,
        "nf": len(fsig) // 4,
        "plen": len(paths),
    }
    return b"".join((MAGIC, compact(head), b"\n", paths, dsig.tobytes(), fsig.tobytes()))


def parse(
    data: bytes,
) -> tuple[dict[str, Any], int, int, memoryview, memoryview, memoryview] | None:
    """``(header, nd, nf, paths, dsig, fsig)`` of a flat file's bytes: the counts of
    directories and transcripts, the paths joined by NUL bytes and the two runs of int64
    entries, as views of ``data``; None when it is not one of ours, torn, or of another byte
    order (the sizes it states must be the file's own: never an allocation the header asks
    for)."""
    import json

    if not data.startswith(MAGIC):
        return None
    at = len(MAGIC)
    nl = data.find(b"\n", at)
    if nl == -1:
        return None
    try:
        head = json.loads(data[at:nl])
    except (ValueError, RecursionError):  # (UnicodeDecodeError too; a deep one recurses)
        return None
    if type(head) is not dict or head.get("order") != sys.byteorder:
        return None
    nd, nf, plen = head.get("nd"), head.get("nf"), head.get("plen")
    if type(nd) is not int or type(nf) is not int or type(plen) is not int:
        return None
    if nd < 1 or nf < 0 or plen < 0:
        return None
    body = memoryview(data)[nl + 1 :]
    if len(body) != plen + 4 * ITEM * (nd + nf):
        return None
    if data.count(b"\0", nl + 1, nl + 1 + plen) != nd + nf - 1:
        return None
    dend = plen + 4 * ITEM * nd
    return head, nd, nf, body[:plen], body[plen:dend], body[dend:]


def start_check(path: str) -> None:
    """Begin the ``stat`` calls of the flat walk saved at ``path`` on a native thread (see
    the module docstring). Nothing without the native module (POSIX, built, not disabled),
    when the file is missing or not a flat walk, or on any error: the check then runs as
    it always did."""
    if path in _EARLY:
        return
    try:
        from tokmon._native import disabled

        if os.name != "posix" or disabled():
            return
        from tokmon._native import _stat

        if getattr(_stat, "EARLY_VERSION", 0) != 1:
            return
        from tokmon.fsutil import read_regular

        data = read_regular(path)  # a FIFO or device in its place is refused, not read
        parsed = parse(data)
        if parsed is None:
            return
        _, nd, nf, paths, dsig, fsig = parsed
        if nf < MIN_EARLY:  # (its bytes kept all the same: the load then reads no file)
            _EARLY[path] = (data, None)
            return
        handle = _stat.check_start(paths, nd, dsig, fsig)
    except (ImportError, OSError, ValueError, MemoryError):
        return
    _EARLY[path] = (data, handle)


def take(path: str) -> tuple[bytes, Any] | None:
    """The bytes :func:`start_check` read from ``path`` and its check's handle (for
    ``_stat.check_take``; None below :data:`MIN_EARLY`), once; None when it read nothing."""
    return _EARLY.pop(path, None)
