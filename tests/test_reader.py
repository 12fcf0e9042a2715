"""The reader's fingerprint (tokmon/core/reader.py): taken from the read buffer when the whole
file came in one read, re-read from the file otherwise; the same hash either way, written
out here with hashlib: the first and the last 4 KiB before the end of the last whole line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tokmon.core import reader
from tokmon.core.reader import LineReader


def _want(data: bytes, end: int) -> str:
    if end <= 0:
        return ""
    h = hashlib.blake2b(digest_size=8)
    h.update(data[: min(4096, end)])
    h.update(data[max(0, end - 4096) : end])
    return h.hexdigest()


def _file(size: int, tail: bytes) -> bytes:
    lines = (b'{"n":%d,"text":"%s"}\n' % (n, b"x" * (n % 90)) for n in range(size // 10 + 1))
    body = b"".join(lines)[:size]
    body = body[: body.rfind(b"\n") + 1] if size else b""
    return body + tail


@pytest.mark.parametrize("size", [0, 70, 4000, 4096 + 70, 9000, 70_000, 300_000])
@pytest.mark.parametrize("tail", [b"", b'{"cut":"a line still be'])  # one still being written
@pytest.mark.parametrize("chunk", [1000, 1 << 20])
@pytest.mark.parametrize("offset", [0, 1])  # from the start, or a refresh from a line end
def test_fingerprint_is_the_first_and_last_window_before_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, tail: bytes, chunk: int, offset: int
) -> None:
    monkeypatch.setattr(reader, "_CHUNK", chunk)
    monkeypatch.setattr(reader, "_POOL", [])
    data = _file(size, tail)
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    start = data.find(b"\n") + 1 if offset and size else 0
    rd = LineReader(str(path), start)
    lines = [line for _, line in rd]
    assert rd.end == len(data) - len(tail)
    assert b"".join(x + b"\n" for x in lines) == data[start : rd.end]
    assert rd.fp == _want(data, rd.end)
    # the stored fingerprint is accepted by the next read (no rewrite seen)
    again = LineReader(str(path), rd.end, rd.fp)
    assert list(again) == [] and not again.rewritten and again.fp == rd.fp


def test_an_oversized_line_leaves_the_fingerprint_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "MAX_LINE", 5000)
    monkeypatch.setattr(reader, "_CHUNK", 1000)  # the long line spans reads
    monkeypatch.setattr(reader, "_POOL", [])
    data = _file(3000, b"") + b'{"a":"' + b"y" * 9000 + b'"}\n' + _file(2000, b"")
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    rd = LineReader(str(path), 0)
    list(rd)
    assert rd.huge == 1 and rd.end == len(data)
    assert rd.fp == _want(data, rd.end)
