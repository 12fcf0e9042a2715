"""A hostile review of the native line scanner (tokmon._native._scan).

Differential: raw-JSON usage lines and mutations of real and generated transcript lines
(native_fuzz) give exactly what the pure-Python scan gives (rows, titles, counters, bad-line
offsets), in blocks as the reader hands them and through the reader with tiny buffers.
Robustness: wrong argument values raise, a buffer cannot be resized under the released GIL,
concurrent calls agree, repeated calls do not grow memory. The generated-example counts
follow TOKMON_HYPOTHESIS_EXAMPLES (a long run under the sanitizers:
docs/review/hostile-native-scanner.md).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_support import need_native, scanner_state
from test_native_scan import _scan

from hostile import native_fuzz as nf
from tokmon.core import parser

EXAMPLES = int(os.environ.get("TOKMON_HYPOTHESIS_EXAMPLES", "200"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
MAX_TOKENS = 10**9
TS_MAX = 7258118400.0


def _same(buf: bytes, block: int = 0) -> Any:
    with scanner_state():
        py = _scan(buf, False, block=block)
        nat = _scan(buf, True, block=block)
    assert nat == py, buf
    return nat


def _seeds(root: Path, limit: int = 400) -> list[bytes]:
    """Up to ``limit`` distinct lines of the transcripts under ``root``, usage and title
    lines first (the ones the scanner reads)."""
    usage: list[bytes] = []
    other: list[bytes] = []
    for p in sorted(root.rglob("*.jsonl")):
        with open(p, "rb") as fh:
            for line in fh:
                line = line.rstrip(b"\n")
                if len(line) > 20000:
                    continue
                (usage if b'"usage"' in line or b"-title" in line else other).append(line)
        if len(usage) >= 4 * limit:
            break
    step_u = max(1, len(usage) // (limit * 3 // 4))
    step_o = max(1, len(other) // (limit // 4))
    return usage[::step_u] + other[::step_o]


# --- differential: generated raw JSON -----------------------------------------------------------


@SETTINGS
@given(nf.buffer(nf.usage_line()), st.sampled_from([0, 0, 64, 512]))
def test_raw_json_usage_lines_agree(buf: bytes, block: int) -> None:
    need_native()
    _same(buf, block)


@SETTINGS
@given(st.lists(nf.value(10), min_size=1, max_size=6))
def test_any_raw_json_value_as_a_line_agrees(values: list[bytes]) -> None:
    need_native()
    _same(b"\n".join(values) + b"\n")


@SETTINGS
@given(st.binary(max_size=300), st.binary(max_size=40))
def test_random_bytes_agree(data: bytes, tail: bytes) -> None:
    need_native()
    _same(b"{" + data + b"}\n" + tail + b"\n" + data)


# --- differential: mutations of real and generated transcripts ----------------------------------


def test_mutated_real_corpus_lines_agree(native_scanner: Any, real_corpus: Path) -> None:
    seeds = _seeds(real_corpus)
    assert seeds

    @SETTINGS
    @given(nf.buffer(nf.mutated(seeds)))
    def run(buf: bytes) -> None:
        _same(buf)

    run()


def test_mutated_generated_corpus_lines_agree(native_scanner: Any, tmp_path: Path) -> None:
    """Lines of the bench corpus (TOKMON_BENCH_DIR, read-only) when there is one, else of a
    small generated corpus."""
    bench = Path(os.environ.get("TOKMON_BENCH_DIR", "/nonexistent")) / "corpus500" / "projects"
    if bench.is_dir():
        root = bench
    else:
        from tokmon.demo import generate

        root = tmp_path / "claude"
        generate(root, size_mb=1, seed=3, days=3.0)
    seeds = _seeds(root)
    assert seeds

    @SETTINGS
    @given(nf.buffer(nf.mutated(seeds)))
    def run(buf: bytes) -> None:
        _same(buf)

    run()


def test_every_field_with_every_boundary_literal(native_scanner: Any) -> None:
    """Each number literal of the boundary lists in each count and each text field."""
    line = (
        b'{"type":"assistant","sessionId":"s","cwd":"/p","requestId":"r","timestamp":'
        b'"2026-01-02T03:04:05.678Z","message":{"id":"m","model":"x","usage":{'
        b'"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":3,'
        b'"cache_read_input_tokens":4,"cache_creation":{"ephemeral_1h_input_tokens":5}}}}'
    )
    lines = []
    for lit in nf.BOUNDARY_INTS + nf.REALS:
        for field in (b":1,", b":2,", b":3,", b":4,", b":5}"):
            lines.append(line.replace(field, b":" + lit.encode() + field[-1:], 1))
        for text in (b'"s"', b'"/p"', b'"r"', b'"m"', b'"x"'):
            lines.append(line.replace(text, lit.encode(), 1))
    _same(b"\n".join(lines) + b"\n")
    for one in lines:
        _same(one + b"\n")


# --- JSON edges named in the review ------------------------------------------------------------


def _usage(out: int = 5, extra: bytes = b"", sid: bytes = b'"s"') -> bytes:
    return (
        b'{"type":"assistant","sessionId":%s,"timestamp":"2026-01-02T03:04:05.678Z",'
        b'"message":{"id":"m%d","usage":{"output_tokens":%d}},"requestId":"r"%s}'
        % (sid, out, out, extra)
    )


EDGES = [
    b"\xef\xbb\xbf" + _usage(),  # a BOM
    b" " + _usage(),
    _usage() + b" ",
    _usage() + b"\t",
    _usage() + b"\r",
    _usage() + b"\r\r",
    b"\r" + _usage(),
    _usage(extra=b',"x":"\x00"'),
    _usage(extra=b',"x":"\\u0000"'),
    _usage(sid=b'"a\\u0000b"'),
    _usage(sid=b'"\\u001b[31mred"'),
    _usage(sid=b'"\\u0085\\u2028"'),
    _usage(sid=b'"\xef\xbf\xbe"'),
    _usage(sid=b'"\\ud83d\\ude80"'),
    _usage(sid=b'"\xf0\x9f\x9a\x80"'),
    _usage(sid=b'"\\ud83d"'),
    _usage(sid=b'"\xed\xa0\xbd\xed\xba\x80"'),  # CESU-8
    _usage(sid=b'"\xc0\x80"'),  # overlong NUL
    _usage(extra=b',"x":' + b"[" * 511 + b"]" * 511),
    _usage(extra=b',"x":' + b"[" * 512 + b"]" * 512),
    _usage(extra=b',"x":' + b"[" * 1023 + b"]" * 1023),
    _usage(extra=b',"x":' + b"[" * 1024 + b"]" * 1024),
    _usage(extra=b',"x":"' + b"a" * (1 << 20) + b'"'),
    _usage(extra=b',"x":"' + b"\\u00e9" * 50000 + b'"'),
    _usage(extra=b',"type":"assistant"'),
    _usage(extra=b',"t\\u0079pe":"user"'),
    _usage(extra=b',"message":null'),
]


@pytest.mark.parametrize("i", range(len(EDGES)))
def test_named_edges(native_scanner: Any, i: int) -> None:
    line = EDGES[i]
    _same(line + b"\n")
    _same(line)  # the last line without a newline
    _same(_usage(7) + b"\n" + line + b"\n\n" + _usage(9) + b"\r\n", block=64)


def test_lines_across_the_readers_buffer_boundaries(native_scanner: Any, tmp_path: Path) -> None:
    """Through scan_file with a tiny read buffer and line limit: lines that cross reads,
    that grow the buffer, that are huge (skipped and counted) and a last line without a
    newline."""
    from tokmon.core import reader
    from tokmon.core.scan import scan_file

    lines = [_usage(n, extra=b',"pad":"' + b"x" * (n * 37 % 300) + b'"') for n in range(1, 60)]
    lines[10] = _usage(11, extra=b',"pad":"' + b"y" * 20000 + b'"')  # huge at MAX_LINE 4096
    lines[20] = b"{" + b"z" * 3000 + b"}"
    lines[30] = b""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n" + _usage(99)[:-3])
    saved = reader._CHUNK, reader.MAX_LINE, list(reader._POOL)  # (the fixture: _native)
    try:
        for chunk in (64, 100, 257, 1024):
            reader._CHUNK, reader.MAX_LINE = chunk, 4096
            out = []
            for nat in (False, True):
                reader._POOL.clear()
                parser._native = None if not nat else False
                r = scan_file(str(path), 0)
                out.append((r.rows, r.titles, r.malformed, r.invalid_utf8, r.huge, r.bad_lines))
            assert out[0] == out[1]
            assert out[0][4] == 1 and len(out[0][0]) == 56  # 59 lines: huge, not usage, empty
    finally:
        reader._CHUNK, reader.MAX_LINE = saved[0], saved[1]
        reader._POOL[:] = saved[2]


# --- robustness of the extension's entry point ---------------------------------------------------

NOID = (
    b'{"type":"assistant","sessionId":"sx","cwd":"/c","timestamp":"2026-11-29T10:00:00.250Z",'
    b'"message":{"model":"mm","usage":{"output_tokens":5}}}\n'
)


def _call(buf: Any = NOID, **kw: Any) -> Any:
    from tokmon._native import _scan as native_mod

    args: dict[str, Any] = {
        "buf": buf,
        "start": 0,
        "stop": len(buf),
        "base": 0,
        "source": "s",
        "best": {},
        "strings": {},
        "text": str,
        "fallback": lambda a, b: None,
        "max_tokens": MAX_TOKENS,
        "ts_min": 0.0,
        "ts_max": TS_MAX,
    }
    args.update(kw)
    return native_mod.scan(*args.values())


@pytest.mark.parametrize("shown", [5, None, object(), b"sx", ["sx"]])
def test_a_non_str_in_strings_raises(native_scanner: Any, shown: object) -> None:
    """``strings`` maps raw text to shown text: a value that is not a str raised nothing and
    was read as a str (an out-of-bounds read: ASan reports a heap-buffer-overflow on an
    object())."""
    with pytest.raises(TypeError):
        _call(strings={"sx": shown})


@pytest.mark.parametrize(
    "kw",
    [
        {"max_tokens": -1},
        {"max_tokens": 2**64},
        {"base": 2**63 - 1},
        {"start": -1},
        {"stop": len(NOID) + 2},
        {"start": 5, "stop": 4},
        {"stop": -1},
    ],
    ids=repr,
)
def test_out_of_range_arguments_raise(native_scanner: Any, kw: dict[str, Any]) -> None:
    """A negative or wrapped max_tokens used to be taken modulo 2**64 (a count above
    MAX_TOKENS then built a row where Python counts poison); a base whose sum with an
    offset overflows gave a negative key offset."""
    with pytest.raises((ValueError, OverflowError)):
        _call(buf=b"\n" + NOID, **kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"buf": "text"},
        {"buf": None},
        {"buf": memoryview(NOID)[::2]},
        {"source": b"s"},
        {"best": []},
        {"strings": None},
        {"text": None},
        {"text": lambda s: 5},
        {"max_tokens": 1.5},
        {"ts_min": "x"},
    ],
    ids=repr,
)
def test_wrong_argument_types_raise(native_scanner: Any, kw: dict[str, Any]) -> None:
    with pytest.raises((TypeError, BufferError)):
        _call(**kw)


def test_a_fallback_that_is_not_callable_raises(native_scanner: Any) -> None:
    with pytest.raises(TypeError):
        _call(buf=b'"usage"\n', fallback=5)  # (a line for Python: "x" is not even read)


def test_a_best_row_of_another_shape_raises(native_scanner: Any) -> None:
    line = _usage() + b"\n"
    for old in ([1], "x", [0, 0, 0, 0, 0, "x"], [0, 0, 0, 0, 0, 2**70]):
        with pytest.raises((TypeError, OverflowError)):
            _call(buf=line, best={"m5:r": old})


def test_the_buffer_cannot_be_resized_while_scanning(native_scanner: Any) -> None:
    """The bytearray is pinned for the whole call: resizing it from the fallback (the GIL
    held) raises BufferError; another thread resizing it and writing into it while the GIL
    is released does not crash the scan (its resizes fail while a scan holds the buffer)."""
    buf = bytearray(b"".join(_usage(n % 50) + b"\n" for n in range(60000)) + b'x "usage"\n')
    size = len(buf)
    refused: list[str] = []

    def fallback(a: int, b: int) -> None:
        try:
            buf.append(10)
        except BufferError as e:
            refused.append(str(e))

    best: dict[str, Any] = {}
    _call(buf=buf, stop=size, best=best, fallback=fallback)
    assert len(best) == 50 and len(refused) == 1 and len(buf) == size

    stop = threading.Event()

    def meddle() -> None:
        i = 0
        while not stop.is_set():
            try:
                buf.extend(b"{}\n")
            except BufferError:
                pass
            while len(buf) > size and not stop.is_set():
                try:
                    del buf[size:]
                except BufferError:
                    pass
            buf[(i * 7919) % size] ^= 0  # an in-place write (same value)
            i += 1

    t = threading.Thread(target=meddle)
    t.start()
    try:
        for _ in range(5):
            best = {}
            _call(buf=buf, stop=size, best=best)
            assert len(best) == 50
    finally:
        stop.set()
        t.join(60)


def test_concurrent_calls_agree(native_scanner: Any) -> None:
    lines = [_usage(n % 97, sid=b'"s%d"' % (n % 13)) for n in range(20000)]
    lines += [b"{bad", _usage(1)[:40], b'{"type":"custom-title","sessionId":"s","customTitle":"t"}']
    buf = b"\n".join(lines) + b"\n"
    want = _same(buf)
    results: list[Any] = []

    def work() -> None:
        for _ in range(3):
            results.append(_scan(buf, True))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 12 and all(r == want for r in results)


def test_a_lookup_in_another_thread_never_shows_none(native_scanner: Any) -> None:
    """While one thread looks the extension up, another reading ``parser._native`` sees the
    not-looked-up mark or the scanner, never None (None sent a concurrent scan down the pure
    Python path, and failed the test above in CI)."""
    seen: set[str] = set()
    stop = threading.Event()

    def look() -> None:
        while not stop.is_set():
            parser._native = False
            got = parser.native_scanner()
            seen.add("scan" if got else repr(got))

    def watch() -> None:
        while not stop.is_set():
            v = parser._native
            seen.add("scan" if v else repr(v))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads = [
        threading.Thread(target=look),
        threading.Thread(target=look),
        threading.Thread(target=watch),
    ]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and len(seen) < 3:
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        sys.setswitchinterval(old)
    assert "None" not in seen and "scan" in seen


def test_repeated_calls_do_not_grow_memory(native_scanner: Any) -> None:
    """Rows, keys, shown strings and the fallback's objects are all released: after a
    warm-up, the Python heap does not grow over many calls (tracemalloc), nor the
    references held by a returned row."""
    lines = [_usage(n, sid=b'"s%d"' % n) for n in range(200)] + [b"x", b"{}", _usage(3)[:-2]]
    buf = b"\n".join(lines) + b"\n"

    def one() -> None:
        best: dict[str, Any] = {}
        _call(buf=buf, best=best, fallback=lambda a, b: bytes(buf[a:b]))
        row = best["m7:r"]
        assert sys.getrefcount(row) == 3  # best's, the local's, getrefcount's argument
        best.clear()

    for _ in range(50):
        one()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            one()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown


def test_blank_and_short_lines_cost_no_memory_per_line(native_scanner: Any) -> None:
    """One record per line made a block of blank lines (or of short lines left to Python)
    cost ~136 bytes a line in C: 2 MB of newlines took ~270 MB. Measured as the peak RSS
    growth of a fresh interpreter around one call. (Short lines without "usage" or the
    like are not even read: no call.)"""
    resource = pytest.importorskip("resource")
    del resource
    code = (
        "import resource, sys\n"
        "from tokmon._native import _scan\n"
        "bufs = [b'\\n' * (2 << 20), b'x\\n' * (1 << 20), b'\"usage\"\\n' * (1 << 20),\n"
        "        b'\"usage\"\\n\\n' * (700 << 10)]\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "calls = []\n"
        "for buf in bufs:\n"
        "    _scan.scan(buf, 0, len(buf), 0, 's', {}, {}, str, lambda a, b: calls.append(b - a),\n"
        "               10**9, 0.0, 7258118400.0)\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(grown * (1 if sys.platform == 'darwin' else 1024), len(calls), sum(calls))\n"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    ).stdout.split()
    grown, calls, covered = (int(x) for x in out)
    assert grown < 48 << 20, grown
    # every line for Python was handed over, in one run a buffer
    assert (calls, covered) == (2, (8 << 20) + 9 * (700 << 10) - 1)  # not the last blank line
