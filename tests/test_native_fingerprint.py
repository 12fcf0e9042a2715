"""The native scanner hashes a file read whole (its fingerprint, the GIL released) as
reader.fingerprint does, and the reader uses that digest only for the end it was taken at."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import pytest
from test_parser import TITLE, USER, usage_line

from tokmon.core import parser, reader
from tokmon.core.reader import FP_WINDOW, LineReader, fingerprint
from tokmon.core.scan import scan_file


def _ref(data: bytes, end: int) -> str:
    h = hashlib.blake2b(digest_size=9)  # (18 hex digits, 1 KiB windows)
    h.update(data[: min(1024, end)])
    h.update(data[max(0, end - 1024) : end])
    return h.hexdigest()


def test_the_digest_is_hashlibs_at_every_length(native_scanner: Any) -> None:
    """Every end from 1 to 300 bytes, around each 128-byte block and the window's edges, and
    at random up to 40 KB, on random bytes and a repeated byte (the counter and last-block
    rules), and within a longer buffer."""
    rng = random.Random(9)
    ends = list(range(1, 300)) + [rng.randrange(1, 40_000) for _ in range(400)]
    ends += [k * 128 + d for k in range(1, 70) for d in (-1, 0, 1)]
    ends += [FP_WINDOW + d for d in range(-3, 4)] + [2 * FP_WINDOW + d for d in range(-3, 4)]
    data = rng.randbytes(45_000)
    for end in ends:
        assert native_scanner._fingerprint(data, end) == _ref(data, end), end
        assert native_scanner._fingerprint(b"\xff" * end, end) == _ref(b"\xff" * end, end)
    assert (native_scanner.FP_WINDOW, native_scanner.FP_BYTES) == (FP_WINDOW, 9) == (1024, 9)
    for end in (0, len(data) + 1):
        with pytest.raises(ValueError):
            native_scanner._fingerprint(data, end)


def _file(tmp_path: Path, name: str, lines: list[bytes], tail: bytes = b"") -> Path:
    p = tmp_path / name
    p.write_bytes(b"\n".join(lines) + b"\n" + tail)
    return p


def _cases(tmp_path: Path) -> list[Path]:
    good = [usage_line(message={"id": f"m{i}"}) for i in range(40)]
    return [
        _file(tmp_path, "a.jsonl", good + [TITLE, USER]),  # whole, ends with a newline
        _file(tmp_path, "b.jsonl", good, b'{"type":"assistant","par'),  # a partial last line
        _file(tmp_path, "c.jsonl", [USER] * 3),  # nothing to count
        _file(tmp_path, "d.jsonl", [b"x" * 10]),  # under one window
        _file(tmp_path, "e.jsonl", good * 30),  # more than a read (with a small _CHUNK)
    ]


@pytest.mark.parametrize("chunk", [1 << 20, 4096])
def test_scan_file_fingerprints_as_the_reader(
    native_scanner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """scan_file's fingerprint is reader.fingerprint at the end it read to, on the native
    path and the others (the same digest, so the next refresh reads no file again), and a
    file read whole in one piece is hashed by the native scan, not by Python."""
    monkeypatch.setattr(reader, "_CHUNK", chunk)
    reader.trim_pool()
    for p in _cases(tmp_path):
        size = p.stat().st_size
        with open(p, "rb") as fh:
            for native in (True, False):
                parser._native = False if native else None
                res = scan_file(str(p), 0, (None, "calculate"), "", False, size)
                assert res.fp == fingerprint(fh, res.end) and res.end > 0, p
        if chunk > size:  # read whole: the native scan's digest, Python hashes nothing
            with monkeypatch.context() as m:
                m.setattr(reader, "_fingerprint", _boom)
                parser._native = False
                assert scan_file(str(p), 0, None, "", False, size).fp == res.fp
    reader.trim_pool()


def _boom(*a: Any) -> str:
    raise AssertionError("hashed in Python")


def test_a_given_digest_counts_only_for_the_end_it_was_taken_at(tmp_path: Path) -> None:
    """fp_at is the block's stop only when the block is the last of a file read whole from
    0; a digest given for another block, or none, leaves the reader hashing itself."""
    p = _file(tmp_path, "f.jsonl", [b"{}"] * 5, b"{")
    size = p.stat().st_size
    with open(p, "rb") as fh:
        want = fingerprint(fh, size - 1)
    r = LineReader(str(p), 0, "", size)
    for _base, _buf, _start, stop in r.blocks():
        assert r.fp_at == stop == size - 1
        r.fp_given = "given"
    assert (r.end, r.fp) == (size - 1, "given")
    r = LineReader(str(p), 0, "", -1)  # no size: the end is not known at the block
    for _b in r.blocks():
        assert r.fp_at == -1
        r.fp_given = "given"
    assert r.fp == want
    whole = _file(tmp_path, "g.jsonl", [b"{}"] * 5)  # (no partial line: all in the buffer)
    r = LineReader(str(whole), 0, "", -1)
    for _b in r.blocks():
        assert r.fp_at == -1
        r.fp_given = "given"
    with open(whole, "rb") as fh:
        assert (r.end, r.fp) == (whole.stat().st_size, fingerprint(fh, r.end))
    r = LineReader(str(p), 2, "", size)  # not from 0
    for _b in r.blocks():
        assert r.fp_at == -1
        r.fp_given = "given"
    with open(p, "rb") as fh:
        assert r.fp == fingerprint(fh, size - 1)
