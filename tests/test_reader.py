"""The reader's fingerprint (tokmon/core/reader.py): taken from the read buffer when the whole
file came in one read, re-read from the file otherwise; the same hash either way, written
out here with hashlib: the first and the last 4 KiB before the end of the last whole line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tokmon.core import reader
from tokmon.core.reader import LineReader


def _want(data: bytes, end: int, window: int = 1024, size: int = 9) -> str:
    """blake2b (9 bytes) of the first and the last 1 KiB before ``end``: a fingerprint made
    now; (4096, 8): one made before the seventeenth session (16 hex digits)."""
    if end <= 0:
        return ""
    h = hashlib.blake2b(digest_size=size)
    h.update(data[: min(window, end)])
    h.update(data[max(0, end - window) : end])
    return h.hexdigest()


def _file(size: int, tail: bytes) -> bytes:
    lines = (b'{"n":%d,"text":"%s"}\n' % (n, b"x" * (n % 90)) for n in range(size // 10 + 1))
    body = b"".join(lines)[:size]
    body = body[: body.rfind(b"\n") + 1] if size else b""
    return body + tail


@pytest.mark.parametrize("size", [0, 70, 1024 + 70, 4000, 4096 + 70, 9000, 70_000, 300_000])
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


@pytest.mark.parametrize("size", [70, 1500, 4000, 9000, 70_000])
def test_a_fingerprint_of_the_older_kind_is_checked_as_it_was_made(
    tmp_path: Path, size: int
) -> None:
    """A file state stored by an older tokmon (16 hex digits: 4 KiB windows, 8 bytes) is
    checked with those windows: the same bytes read on from its offset (the new state gets a
    fingerprint of the current kind), other bytes read again from the start."""
    data = _file(size, b"")
    path = tmp_path / "t.jsonl"
    path.write_bytes(data + b'{"more":1}\n')
    end = len(data)
    old = _want(data, end, 4096, 8)
    assert len(old) == 16
    rd = LineReader(str(path), end, old)
    assert [line for _, line in rd] == [b'{"more":1}'] and not rd.rewritten
    assert rd.fp == _want(data + b'{"more":1}\n', rd.end) and len(rd.fp) == 18
    changed = bytearray(data)
    changed[min(10, end - 2)] ^= 1  # within both kinds' first window
    path.write_bytes(bytes(changed) + b'{"more":1}\n')
    again = LineReader(str(path), end, old)
    assert len(list(again)) > 1 and again.rewritten
    # a new-kind fingerprint of the old windows is no match either (the kind is its length;
    # below 1 KiB both kinds' windows are the whole file)
    path.write_bytes(data + b'{"more":1}\n')
    wrong = LineReader(str(path), end, _want(data, end, 4096, 9))
    assert (len(list(wrong)) > 1 and wrong.rewritten) is (end > 1024)


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
