"""The reader's system calls per file: a file read whole in one read, with the planned size,
takes one read and no seek; what the stat did not see is still read, now or next time."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tokmon.core import reader
from tokmon.core.reader import LineReader
from tokmon.core.scan import scan_file


class _Counting(io.FileIO):
    calls: list[str] = []

    def readinto(self, b: Any) -> int | None:
        _Counting.calls.append("read")
        return super().readinto(b)

    def seek(self, pos: int, whence: int = 0) -> int:
        _Counting.calls.append("seek")
        return super().seek(pos, whence)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    def fake_open(path: str, mode: str = "r", buffering: int = -1) -> io.FileIO:
        assert mode == "rb" and buffering == 0
        return _Counting(path, "r")

    _Counting.calls = []
    monkeypatch.setattr(reader, "open", fake_open, raising=False)
    return _Counting.calls


def _lines(n: int, tag: str = "x") -> bytes:
    return b"".join(b'{"n": %d, "t": "%s"}\n' % (i, tag.encode()) for i in range(n))


def _read(rd: LineReader) -> list[tuple[int, bytes]]:
    return list(rd)


def test_one_read_no_seek_with_the_size(tmp_path: Path, calls: list[str]) -> None:
    p = tmp_path / "a.jsonl"
    data = _lines(50) + b'{"partial": '
    p.write_bytes(data)
    rd = LineReader(str(p), 0, "", len(data))
    got = _read(rd)
    assert calls == ["read"]
    assert [ln for _, ln in got] == data.splitlines()[:50]
    assert rd.end == data.rindex(b"\n") + 1
    # without the size: a second read finds the end (and the fingerprint of a file ending
    # with a partial line reads its windows again)
    calls.clear()
    again = LineReader(str(p), 0)
    assert _read(again) == got and again.end == rd.end and again.fp == rd.fp
    assert calls.count("read") == 2


def test_growth_past_the_stat_is_read(tmp_path: Path, calls: list[str]) -> None:
    """The stat saw part of the file (appended since): a full buffer goes on reading, and
    whatever comes after the stat's size up to the end is read as before."""
    p = tmp_path / "a.jsonl"
    first = _lines(30, "a")
    p.write_bytes(first + _lines(400, "b"))
    full = p.read_bytes()
    old = reader._CHUNK
    reader._CHUNK = 256  # many full reads
    reader._POOL.clear()
    try:
        rd = LineReader(str(p), 0, "", len(first))
        got = [ln for _, ln in _read(rd)]
    finally:
        reader._CHUNK = old
        reader._POOL.clear()
    assert got == full.splitlines() and rd.end == len(full)
    assert calls.count("read") > 10 and calls[0] == "read"  # no seek before it


def test_a_file_shorter_than_its_stat_is_read_to_its_end(tmp_path: Path, calls: list[str]) -> None:
    p = tmp_path / "a.jsonl"
    data = _lines(20)
    p.write_bytes(data)
    rd = LineReader(str(p), 0, "", len(data) + 4096)  # truncated since the stat
    assert [ln for _, ln in _read(rd)] == data.splitlines() and rd.end == len(data)
    assert calls == ["read", "read"]


def test_offsets_and_rewrites_still_seek(tmp_path: Path, calls: list[str]) -> None:
    p = tmp_path / "a.jsonl"
    head = _lines(10, "a")
    p.write_bytes(head)
    first = LineReader(str(p), 0, "", len(head))
    _read(first)
    p.write_bytes(head + _lines(5, "b"))
    calls.clear()
    tail = LineReader(str(p), first.end, first.fp, p.stat().st_size)
    assert [ln for _, ln in _read(tail)] == _lines(5, "b").splitlines()
    assert "seek" in calls and not tail.rewritten
    # rewritten in place (same size, other bytes): read from 0, so a seek back to it
    p.write_bytes(_lines(10, "c") + _lines(5, "b"))
    calls.clear()
    again = LineReader(str(p), first.end, first.fp, p.stat().st_size)
    got = [ln for _, ln in _read(again)]
    assert again.rewritten and got == p.read_bytes().splitlines()
    assert calls.count("seek") >= 3  # the fingerprint's two, then back to 0


def test_scan_file_passes_the_size(tmp_path: Path, calls: list[str], python_scanner: None) -> None:
    """(The reader's reads: the pure-Python scanner; the native one reads a file smaller
    than the buffer itself, tests/test_native_whole.py.)"""
    p = tmp_path / "a.jsonl"
    data = _lines(30)
    p.write_bytes(data)
    a = scan_file(str(p), 0, size=len(data))
    assert calls == ["read"]
    calls.clear()
    b = scan_file(str(p), 0)
    assert calls == ["read", "read"]
    assert (a.end, a.fp, a.rows, a.malformed) == (b.end, b.fp, b.rows, b.malformed)


def test_bad_line_numbers_are_counted_when_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scan_file keeps the bad lines' offsets; their line numbers (the debug log's) are
    counted from the file only when read, once."""
    from tokmon.core import scan

    p = tmp_path / "a.jsonl"
    good = b'{"type": "user", "message": {"role": "user", "content": "hi"}}\n'
    bad = b'{not json "usage"\n', b'\xff\xfe{"usage"}\n'  # (lines that could have counted)
    p.write_bytes(good * 3 + bad[0] + good + bad[1] + good * 2)
    counted: list[str] = []
    real = scan.line_numbers

    def spy(path: str, offsets: list[int]) -> list[int]:
        counted.append(path)
        return real(path, offsets)

    monkeypatch.setattr(scan, "line_numbers", spy)
    res = scan_file(str(p), 0, size=p.stat().st_size)
    assert res.malformed + res.invalid_utf8 == 2 and counted == []
    assert res.bad_lines == [4, 6] and res.bad_lines == [4, 6]
    assert counted == [str(p)]  # once
    clean = tmp_path / "b.jsonl"
    clean.write_bytes(good)
    assert scan_file(str(clean), 0).bad_lines == [] and counted == [str(p)]
