"""Scanning transcript files for usage, in this process or in parallel workers.

Workers are threads of this process when the native scanner is built (it releases the GIL
while it parses), else worker processes; they return compact rows (plain lists, which
pickle cheaply); the engine merges them in file order, which keeps the global "first seen
wins ties" rule.
"""

from __future__ import annotations

import collections
import functools
import gc
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from tokmon.core import reader as _reader
from tokmon.core.parser import (
    LineStats,
    native_parse,
    native_scanner,
    native_trim,
    scan_lines,
    scan_whole,
)
from tokmon.core.reader import LineReader, give_buffer, take_buffer, trim_pool
from tokmon.core.records import MAX_TOKENS
from tokmon.leanclass import dataclass, field

if TYPE_CHECKING:
    from tokmon.core.pricing import RowPricer

PARALLEL_MIN_BYTES = 48 * 1024 * 1024
#: How scan workers start: forked on Linux (cheap; they inherit the parent's safe sys.path),
#: spawned where fork is missing or unsafe (Windows; macOS, where a forked child may crash in
#: system frameworks).
START_METHOD = "fork" if sys.platform.startswith("linux") and hasattr(os, "fork") else "spawn"
_STRINGS: dict[str, str] = {}  # session ids, cwds, models: one str object per value


@dataclass
class FileResult:
    """What one file yielded from its offset on."""

    key: str
    start: int
    end: int = 0
    rows: list[list[object]] = field(default_factory=list)
    titles: list[tuple[str, str, str]] = field(default_factory=list)
    malformed: int = 0
    invalid_utf8: int = 0
    huge: int = 0
    bad_at: list[int] = field(default_factory=list)  # file offsets of the first bad lines
    error: str | None = None
    pid: int = 0  # the process that scanned it (diagnostics)
    fp: str = ""  # fingerprint at ``end`` (see reader.fingerprint)
    rewritten: bool = False  # rewritten in place: read again from 0 (``start`` is then 0)
    part: int = 0  # which run of the items it belongs to (scan_all(ordered=False))
    seq: int = 0  # within ``part``: 0, or 1 + the task a taken-back task was (see _unordered)

    @functools.cached_property
    def bad_lines(self) -> list[int]:
        """1-based line numbers of the first bad lines (read from the file when first asked
        for: only the debug log shows them, and counting lines re-reads the file)."""
        return line_numbers(self.key, self.bad_at) if self.bad_at else []


_PRICERS: dict[tuple[str | None, str], RowPricer] = {}


def make_pricer(override: str | None, mode: str) -> RowPricer:
    """The pricer of rows (in place) for a price override file and cost mode (cached per
    process; see :class:`tokmon.core.pricing.RowPricer`)."""
    key = (override, mode)
    got = _PRICERS.get(key)
    if got is None:
        from pathlib import Path

        from tokmon.core.pricing import PriceTable, row_pricer

        table = PriceTable.load(Path(override) if override else None)
        got = _PRICERS[key] = row_pricer(table, mode)
    return got


def scan_file(
    key: str,
    start: int,
    pricing: tuple[str | None, str] | None = None,
    fp: str = "",
    small: bool = False,
    size: int = -1,
    parsed: Any = None,
) -> FileResult:
    """Read complete lines of ``key`` from ``start``; keep the max-output line per dedup key.

    With ``pricing`` (override path, cost mode) each row's cost is filled in here, so
    parallel workers share that work too. ``fp`` is the fingerprint stored at ``start``:
    if the bytes before ``start`` changed, the file is read from 0 instead. ``small`` (the
    whole read is at most :data:`SMALL_READ` bytes): lines are parsed by the native scanner,
    else by the reference parser, without building the msgspec decoder. ``size``: the
    file's size in the stat the caller planned from (see
    :class:`~tokmon.core.reader.LineReader`), -1 if unknown.
    ``parsed``: the file (from its start) as a scan thread parsed it (:func:`parse_task`):
    its rows are built from that, unless it outgrew the read buffer meanwhile.
    """
    res = FileResult(key, start, start, pid=os.getpid())
    stats = LineStats()
    best: dict[str, list[Any]] = {}
    price = make_pricer(*pricing) if pricing is not None else None
    priced = False  # the rows were priced as they were built (the native scanner)
    gc_on = gc.isenabled()
    gc.disable()  # rows are acyclic: no collection passes over them mid-scan
    try:
        whole = not start and not small and 0 <= size < _reader._CHUNK and native_scanner()
        if parsed is not None or whole:
            if _whole(key, size, price, res, stats, best, parsed):
                return _done(res, stats, list(best.values()), price, True)
            res.titles.clear()  # (the buffer filled: read the usual way, from scratch)
            stats, best = LineStats(), {}
        reader = LineReader(key, start, fp, size)
        digest: list[str] = []
        # a small read by the native scanner when there is one (its module loads in ~1 ms;
        # parse_line would import orjson, ~13 ms), else by parse_line (no msgspec decoder)
        reference = small and native_scanner() is None
        for base, buf, begin, stop in reader.blocks():
            priced = scan_lines(
                buf, begin, stop, base, key, stats, best, res.titles, _STRINGS, reference,
                price, digest if reader.fp_at == stop else None,
            )  # fmt: skip
            if digest:  # the native scan hashed the file (the GIL released): not hashed again
                reader.fp_given = digest.pop()
        res.start = reader.offset
        res.end = reader.end
        res.huge = reader.huge
        res.fp = reader.fp
        res.rewritten = reader.rewritten
    except OSError as exc:
        res.error = exc.strerror or str(exc)
        return res
    finally:
        if gc_on:
            gc.enable()
    return _done(res, stats, list(best.values()), price, priced)


def _done(
    res: FileResult, stats: LineStats, rows: list[list[Any]], price: Any, priced: bool
) -> FileResult:
    if price is not None and not priced:
        price(rows)
    res.rows = rows
    res.malformed, res.invalid_utf8 = stats.malformed, stats.invalid_utf8
    res.bad_at = stats.bad
    return res


def _whole(
    key: str,
    size: int,
    price: RowPricer | None,
    res: FileResult,
    stats: LineStats,
    best: dict[str, list[Any]],
    parsed: Any = None,
) -> bool:
    """Read ``key`` (from its start, smaller than a read buffer) and scan it natively in one
    call (:func:`scan_file` with the native scanner): its opening, reading, lines,
    fingerprint and closing in one stretch without the GIL. Through :class:`LineReader` and
    :func:`scan_lines` a file released and took the GIL about seven times, and the two scan
    threads handed it over as often (docs/performance.md, twelfth session); ``os.open`` and
    ``os.close`` around the call, twice more (fifteenth session). The same results; False
    when the file no longer fits the buffer (it grew: nothing was parsed). Raises OSError as
    the reader. ``parsed``: as a scan thread read and parsed it (:func:`parse_task`)."""
    if parsed is not None:
        got = scan_whole(key, None, size, stats, best, res.titles, _STRINGS, price, parsed)
    else:
        buf = take_buffer()
        try:
            if len(buf) <= size:  # (a smaller buffer: tests)
                return False
            got = scan_whole(key, buf, size, stats, best, res.titles, _STRINGS, price)
        finally:
            give_buffer(buf)
    if got is None:
        return False
    res.end, res.fp = got
    return True


def line_numbers(path: str, offsets: list[int]) -> list[int]:
    """1-based line numbers of byte ``offsets`` (sorted) in ``path``; rare path (bad lines)."""
    out: list[int] = []
    try:
        with open(path, "rb") as fh:
            pos, line = 0, 1
            for off in sorted(offsets):
                while pos < off:
                    chunk = fh.read(min(1 << 20, off - pos))
                    if not chunk:
                        break
                    line += chunk.count(b"\n")
                    pos += len(chunk)
                out.append(line)
    except OSError:
        return []
    return out


Item = tuple[str, int, str, int]  # (key, start, fingerprint at start, size or -1)
Task = tuple[int, int, list[Item]]  # a pool's task: its part, its index there, its items


def scan_many(items: list[Item], pricing: tuple[str | None, str] | None = None) -> list[FileResult]:
    return [scan_file(k, s, pricing, fp, False, n) for k, s, fp, n in items]


def parse_task(
    items: list[Item], pricing: tuple[str | None, str] | None = None
) -> list[FileResult | tuple[Item, Any]]:
    """A scan thread's task (the native scanner, threads): the runs of files read from
    their start that fit a read buffer are opened, read, parsed and closed by one native
    call each without the GIL (``_scan.parse_many``), their rows built later by the thread
    that merges them (:func:`_finished`): built here, each file took the GIL back while the
    merging thread held it for its own work (~50 ms of waiting in a cold scan at 500 MB,
    docs/performance.md, fifteenth session). Other files are scanned here as
    :func:`scan_many` scans them."""
    native = native_parse()
    out: list[FileResult | tuple[Item, Any]] = []
    run: list[Item] = []
    for it in [*items, None]:
        if it is not None and native is not None and not it[1] and 0 <= it[3] < _reader._CHUNK:
            run.append(it)
            continue
        if run:
            # (the buffer given back before a file is read the usual way: one buffer a
            # thread at a time, as scan_file uses them)
            buf = take_buffer()
            try:
                fits = len(buf) > max(r[3] for r in run)  # (else a smaller buffer: tests)
                if fits:
                    paths, sizes = [r[0] for r in run], [r[3] for r in run]
                    out += zip(run, native.parse_many(buf, paths, sizes, MAX_TOKENS), strict=True)
            finally:
                give_buffer(buf)
            if not fits:
                out += [scan_file(k, s, pricing, fp, False, n) for k, s, fp, n in run]
            run = []
        if it is not None:
            out.append(scan_file(it[0], it[1], pricing, it[2], False, it[3]))
    return out


def _finished(
    done: FileResult | tuple[Item, Any], pricing: tuple[str | None, str] | None
) -> FileResult:
    """A scan thread's result as a FileResult: a parsed file's rows built on this thread
    (see :func:`parse_task`), by :func:`scan_file` (one that grew past the buffer since is
    read there the usual way)."""
    if isinstance(done, FileResult):
        return done
    (key, start, fp, size), parsed = done
    return scan_file(key, start, pricing, fp, False, size, parsed)


SMALL_READ = 64 * 1024  # a refresh reading at most this much builds no msgspec decoder
HANDED = 100  # the part of the first hand-over to the workers (see _unordered); then 99, ...
MAX_HANDED = 16  # hand-overs at most
MAIN_SHARE = 0.85  # the calling process's run, relative to a worker's: it also merges


def _item(it: tuple[Any, ...]) -> Item:
    """A scan item from (key, start, new bytes[, fp]): the size to read to is start + new."""
    return it[0], it[1], it[3] if len(it) > 3 else "", it[1] + it[2]


def _serial(
    items: list[tuple[Any, ...]], pricing: tuple[str | None, str] | None, total: int
) -> Iterator[FileResult]:
    """Scan ``items`` one after the other in this process (``total``: their new bytes; a
    read of at most :data:`SMALL_READ` builds no msgspec decoder)."""
    small = total <= SMALL_READ
    for k, s, fp, n in map(_item, items):
        yield scan_file(k, s, pricing, fp, small, n)


def _chunks(items: list[tuple[Any, ...]], n: int, last: bool = False) -> list[list[Item]]:
    """Split (key, start, new bytes[, fp]) into ``n`` contiguous runs of about equal bytes
    (the first, scanned by the calling process, MAIN_SHARE times a worker's; ``last``: the
    last one is the calling process's)."""
    total = sum(it[2] for it in items)
    out: list[list[Item]] = [[]]
    acc = 0
    unit = total / (n - 1 + MAIN_SHARE) if n > 1 else total
    for it in items:
        ends = len(out) if last else MAIN_SHARE + len(out) - 1  # the current run's end
        if acc >= unit * ends and len(out) < n:
            out.append([])
        out[-1].append(_item(it))
        acc += it[2]
    return [c for c in out if c]


#: a worker's run goes in tasks of at most this many bytes: a thread's task's files are
#: parsed and held until the calling thread builds their rows (parse_task): ~300 bytes a
#: usage row, +0.8 MB of the peak RSS at 500 MB with tasks of 32 MB (fifteenth session)
WORKER_TASK_BYTES = 8 * 1024 * 1024
MIN_TASK_BYTES = 4 * 1024 * 1024  # ... and at least this many (toward its end)


def _tasks(run: list[Item], sizes: dict[str, int]) -> list[list[Item]]:
    """Cut a worker's run into consecutive tasks: each task's rows are pickled and sent
    back on their own, so a worker never holds (and pickles at once) the rows of its whole
    run (peak RSS). A task is at most WORKER_TASK_BYTES and at most a quarter of what is
    left of the run (at least MIN_TASK_BYTES): when the calling process is done first it
    takes back the tasks no worker has started (see :func:`_unordered`), and small last
    tasks let both sides end close together."""
    left = sum(sizes.get(it[0], 0) for it in run)
    low = min(MIN_TASK_BYTES, WORKER_TASK_BYTES)
    out: list[list[Item]] = [[]]
    acc = 0
    for it in run:
        if acc >= max(low, min(WORKER_TASK_BYTES, left // 4)):
            out.append([])
            acc = 0
        out[-1].append(it)
        n = sizes.get(it[0], 0)
        acc += n
        left -= n
    return [t for t in out if t]


def _worker_init(parent: int) -> None:
    """Make a scan worker die with the process that started it.

    A worker outliving its parent would block forever on its result pipe. Linux: the
    kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG); everywhere: a daemon
    thread polls the parent (re-parenting on POSIX, the process handle on Windows) and
    exits. Lock descriptors were already closed at fork (see fsutil._close_inherited_locks).
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError, ImportError):  # pragma: no cover - fallback below
            pass
    alive = _parent_probe(parent)
    if not alive():
        os._exit(1)

    def watch() -> None:
        import time

        while True:
            time.sleep(0.25)
            if not alive():
                os._exit(1)

    import threading

    threading.Thread(target=watch, name="tokmon-parent-watch", daemon=True).start()


def _parent_probe(parent: int) -> Callable[[], bool]:
    if sys.platform == "win32":  # pragma: no cover - Windows only
        try:
            import ctypes

            k32 = ctypes.windll.kernel32
            handle = k32.OpenProcess(0x00100000, False, parent)  # SYNCHRONIZE
            if handle:
                return lambda: bool(k32.WaitForSingleObject(handle, 0) != 0)  # 0 = exited
        except (OSError, AttributeError):
            pass
        return lambda: True
    return lambda: os.getppid() == parent


def scan_all(
    items: list[tuple[Any, ...]],
    workers: int | None = None,
    min_bytes: int | None = None,
    pricing: tuple[str | None, str] | None = None,
    ordered: bool = True,
) -> Iterator[FileResult]:
    """Scan (key, start, new_bytes[, fingerprint]) items, in parallel when there is a lot
    to read. Results come back in the order of ``items``; with ``ordered=False`` a
    worker's results come as soon as they are ready, between those of the calling process
    (so the caller never holds the workers' results while it scans its own share): the
    results of each ``part`` (0, 1, 2) are in item order and every item of a part precedes
    every item of the next one. The cyclic GC is off until the iteration ends, so the
    caller's merge of the (acyclic) rows runs without it too. At the end the read buffers
    give back what long lines added to them (reader.trim_pool), and the native scanner the
    buffers it kept between calls (parser.native_trim).
    """
    gc_on = gc.isenabled()
    gc.disable()
    try:
        yield from _scan_all(items, workers, min_bytes, pricing, ordered)
    finally:
        trim_pool()
        native_trim()
        if gc_on:
            gc.enable()


def _scan_all(
    items: list[tuple[Any, ...]],
    workers: int | None,
    min_bytes: int | None,
    pricing: tuple[str | None, str] | None,
    ordered: bool = True,
) -> Iterator[FileResult]:
    total = sum(it[2] for it in items)
    if min_bytes is None:
        min_bytes = PARALLEL_MIN_BYTES
    n = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if n <= 1 or total < min_bytes or len(items) < 2 or os.environ.get("TOKMON_NO_PARALLEL"):
        yield from _serial(items, pricing, total)
        return
    chunks = _chunks(items, n, last=not ordered)
    if _threads():
        # the native scanner parses with the GIL released: threads of this process share
        # the scan (no second interpreter, rows not pickled); same tasks, same merge order
        from tokmon.core.taskpool import ThreadPool  # (not concurrent.futures: see there)

        tpool = ThreadPool(len(chunks) - 1, "tokmon-scan")
        yield from _pooled(tpool, chunks, sizes_of(items), pricing, ordered, parse_task)
        return
    try:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context(START_METHOD)
        if ctx.get_start_method() != "fork":  # `python -c ...` children: no import from the cwd
            from tokmon.safepython import protect_spawned_children

            protect_spawned_children()
        pool = ProcessPoolExecutor(
            max_workers=len(chunks) - 1,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )
    except (ImportError, OSError, ValueError):
        yield from _serial(items, pricing, total)
        return
    yield from _pooled(pool, chunks, sizes_of(items), pricing, ordered)


def sizes_of(items: list[tuple[Any, ...]]) -> dict[str, int]:
    return {it[0]: it[2] for it in items}


def _threads() -> bool:
    """Whether a big scan shares the work with threads of this process rather than worker
    processes: with the native scanner (it parses with the GIL released): 0.94-1.10x the
    worker process's wall time (1.03-1.10x on a calm machine) for the same or less CPU, and one
    interpreter's memory instead of two (docs/performance.md, eighth session).
    ``TOKMON_SCAN_POOL`` = ``thread`` / ``process`` forces either (threads without the
    native scanner run the Python scanner under the GIL: for tests only)."""
    forced = os.environ.get("TOKMON_SCAN_POOL", "")
    if forced in ("thread", "process"):
        return forced == "thread"
    from tokmon.core.parser import native_scanner

    return native_scanner() is not None


def _pooled(
    pool: Any,
    chunks: list[list[Item]],
    sizes: dict[str, int],
    pricing: tuple[str | None, str] | None,
    ordered: bool,
    work: Callable[..., list[Any]] = scan_many,
) -> Iterator[FileResult]:
    """One chunk scanned here (``ordered``: the first, else the last), the others' tasks by
    ``pool`` (processes or threads) with ``work`` (:func:`scan_many`, or :func:`parse_task`
    for threads)."""
    own, theirs = (chunks[0], chunks[1:]) if ordered else (chunks[-1], chunks[:-1])
    with pool:
        # In file order; with one worker its tasks run one after another, in that order.
        # A future is dropped once its results are out, so they are freed as the caller goes.
        tasks: dict[Any, Task] = {
            pool.submit(work, t, pricing): (0, i, t)
            for i, t in enumerate(t for c in theirs for t in _tasks(c, sizes))
        }
        waiting = collections.deque(tasks)  # (a dict keeps the order of submission)
        if ordered:
            yield from scan_many(own, pricing)  # this process takes the first share
            while waiting:
                yield from _part1(*_next(waiting, tasks), pricing)
            return
        yield from _unordered(pool, own, waiting, tasks, sizes, pricing, work)


def _unordered(
    pool: Any,
    own: list[Item],
    waiting: collections.deque[Any],
    tasks: dict[Any, Task],
    sizes: dict[str, int],
    pricing: tuple[str | None, str] | None,
    work: Callable[..., list[Any]] = scan_many,
) -> Iterator[FileResult]:
    """The workers' tasks (part 0: the first files) are handed out in order as they are
    done, between the files this process scans: ``own``, the last files (part 1). So the
    results that come first in merge order come in it, while the scan runs (a build appends
    every stream's rows to its records as they come and settles the dedup after the scan:
    ledger.Stage). Whenever the workers are idle and
    this process still has files, the back half of those (by bytes) goes to the workers,
    as part ``HANDED - h`` for the h-th hand-over (it comes before the earlier ones' files):
    the split adapts to how fast each side really goes (load, this process's own work on
    each result), and the workers stay busy to the end. The other way round, when this
    process is done first, it takes back the tasks no worker has started and scans them
    itself: their results have ``seq`` 1 + the task's index (the tasks before it, scanned
    by a worker, have ``seq`` 0: merge order is (part, seq))."""
    stolen: collections.deque[Any] = collections.deque()
    handed = 0
    i = 0
    while i < len(own):
        k, s, fp, n = own[i]
        i += 1
        res = scan_file(k, s, pricing, fp, False, n)
        res.part = 1
        yield res
        while waiting and waiting[0].done():
            yield from _part1(*_next(waiting, tasks), pricing)
        while stolen and stolen[0].done():
            yield from _part1(*_next(stolen, tasks), pricing)
        if not waiting and not stolen and len(own) - i >= 2 and handed < MAX_HANDED:
            handed += 1
            rest = own[i:]
            half = sum(sizes.get(it[0], 0) for it in rest) / 2
            cut, acc = len(own), 0
            for j in range(len(own) - 1, i, -1):  # from the end, about half the bytes
                acc += sizes.get(own[j][0], 0)
                if acc >= half:
                    cut = j
                    break
            for j, t in enumerate(_tasks(own[cut:], sizes)):
                f = pool.submit(work, t, pricing)
                tasks[f] = (HANDED - handed, j, t)
                stolen.append(f)
            own = own[:cut]
    # this process is done: take back, from the end, about half the bytes of the tasks no
    # worker has started, scan them, and again, until the workers have started them all
    while True:
        back: list[Task] = []
        for queue in (stolen, waiting):
            pending = [f for f in queue if not f.running() and not f.done()]
            half = sum(sizes.get(it[0], 0) for f in pending for it in tasks[f][2]) / 2
            taken = 0
            while queue and taken < half and queue[-1].cancel():
                back.append(tasks.pop(queue.pop()))
                taken += sum(sizes.get(it[0], 0) for it in back[-1][2])
            if back:
                break
        if not back:
            break
        for part, n, task in reversed(back):  # in item order
            for k, s, fp, size in task:
                res = scan_file(k, s, pricing, fp, False, size)
                res.part, res.seq = part, 1 + n
                yield res
                while waiting and waiting[0].done():
                    yield from _part1(*_next(waiting, tasks), pricing)
                while stolen and stolen[0].done():
                    yield from _part1(*_next(stolen, tasks), pricing)
    while waiting:
        yield from _part1(*_next(waiting, tasks), pricing)
    while stolen:
        yield from _part1(*_next(stolen, tasks), pricing)


def _next(queue: collections.deque[Any], tasks: dict[Any, Task]) -> tuple[list[Any], int]:
    """The results of the first future of ``queue`` (waits for it), which is let go, and
    its task's part."""
    f = queue.popleft()
    part = tasks.pop(f)[0]
    res: list[Any] = f.result()
    return res, part


def _part1(
    results: list[Any], part: int, pricing: tuple[str | None, str] | None
) -> Iterator[FileResult]:
    results.reverse()
    while results:  # each result is let go once taken
        r = _finished(results.pop(), pricing)
        r.part = part
        yield r
