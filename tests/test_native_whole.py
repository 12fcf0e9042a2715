"""A file smaller than a read buffer, read from its start, is read and scanned by the native
scanner in one call (scan._whole): the same FileResult as the reader's blocks through
scan_lines, natively and in Python, whatever the file holds or does meanwhile."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from test_parser import TITLE, USER, usage_line

from tokmon.core import parser, reader, scan
from tokmon.core.scan import FileResult, scan_file

GOOD = [usage_line(message={"id": f"m{i}"}, usage={"output_tokens": i}) for i in range(30)]
COST = usage_line(message={"id": "m3"}, usage={"output_tokens": 99}, costUSD=0.5)  # Python
BAD = b'{"type":"assistant","usage"'  # malformed, a candidate
UTF8 = usage_line(message={"id": "m7"}).replace(b"h\xc3\xa9llo", b"h\xe9llo")  # not UTF-8

CASES: dict[str, bytes] = {
    "lines": b"\n".join(GOOD) + b"\n",
    "partial last line": b"\n".join(GOOD) + b"\n" + GOOD[0][:50],
    "empty": b"",
    "no newline": GOOD[0],
    "one newline": b"\n",
    "handed back and bad": b"\n".join([*GOOD[:5], COST, TITLE, USER, BAD, UTF8, *GOOD[5:9]])
    + b"\r\n",
    "crlf": b"\r\n".join(GOOD[:6]) + b"\r\n",
}


def _fields(r: FileResult) -> tuple[Any, ...]:
    rows = [(*row[:10], repr(row[10]), row[11]) for row in r.rows]
    return (r.start, r.end, r.fp, rows, r.titles, r.malformed, r.invalid_utf8, r.huge,
            r.bad_at, r.error, r.rewritten)  # fmt: skip


def _by(path: Path, size: int, how: str, monkeypatch: pytest.MonkeyPatch) -> FileResult:
    """scan_file by one path: "whole" (the native call), "reader" (native, LineReader's
    blocks: the whole path switched off) or "python" (the pure-Python scanner)."""
    with monkeypatch.context() as m:
        parser._native = None if how == "python" else False
        if how == "reader":
            m.setattr(scan, "_whole", _no_whole)
        if how == "whole":  # the reader must not run
            m.setattr(scan, "LineReader", _no_reader)
        return scan_file(str(path), 0, (None, "calculate"), "", False, size)


def _no_whole(*a: Any) -> bool:
    return False


def _no_reader(*a: Any) -> Any:
    raise AssertionError("read by LineReader")


@pytest.mark.parametrize("case", list(CASES))
def test_the_whole_file_call_gives_the_readers_result(
    native_scanner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(CASES[case])
    size = len(CASES[case])
    whole = _by(p, size, "whole", monkeypatch)
    assert _fields(whole) == _fields(_by(p, size, "reader", monkeypatch))
    assert _fields(whole) == _fields(_by(p, size, "python", monkeypatch))
    assert whole.end == CASES[case].rfind(b"\n") + 1


def test_a_file_that_changed_since_its_stat(
    native_scanner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grown since the stat (read to its end, as the reader does), shorter than the stat
    (read to its end), grown past the buffer (read the usual way, from scratch: the same
    result, nothing counted twice), larger than the buffer (the usual way)."""
    p = tmp_path / "a.jsonl"
    data = CASES["handed back and bad"]
    p.write_bytes(data)
    for size in (len(data) // 2, len(data) + 4096, 0):
        whole = _by(p, size, "whole", monkeypatch)
        assert _fields(whole) == _fields(_by(p, size, "reader", monkeypatch))
        assert whole.end == len(data) and (whole.malformed, whole.invalid_utf8) == (1, 1)
    monkeypatch.setattr(reader, "_CHUNK", 512)  # new buffers of 512 bytes
    reader.trim_pool()
    try:
        small = _by(p, 100, "reader", monkeypatch)  # the stat saw 100 bytes: it grew past
        with monkeypatch.context() as m:
            parser._native = False
            calls: list[Any] = []
            real = scan._whole
            m.setattr(scan, "_whole", lambda *a: calls.append(1) or real(*a))
            got = scan_file(str(p), 0, (None, "calculate"), "", False, 100)
        assert calls == [1] and _fields(got) == _fields(small) and got.malformed == 1
        assert _fields(_by(p, len(data), "python", monkeypatch)) == _fields(small)
    finally:
        reader.trim_pool()


def test_errors_read_as_the_readers(
    native_scanner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "gone.jsonl"
    whole = _by(missing, 10, "whole", monkeypatch)
    assert whole.error == _by(missing, 10, "reader", monkeypatch).error
    assert whole.error and whole.rows == []
    if os.name == "posix":  # a directory opens there: its read fails as the reader's
        d = tmp_path / "d.jsonl"
        d.mkdir()
        assert _by(d, 10, "whole", monkeypatch).error == _by(d, 10, "reader", monkeypatch).error


def test_the_buffer_goes_back_to_the_pool(native_scanner: Any, tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(CASES["lines"])
    reader.trim_pool()
    parser._native = False
    scan_file(str(p), 0, None, "", False, len(CASES["lines"]))
    assert len(reader._POOL) == 1
    scan_file(str(p), 0, None, "", False, len(CASES["lines"]))
    assert len(reader._POOL) == 1
    reader.trim_pool()


def test_the_native_call_rejects_a_read_only_buffer(native_scanner: Any, tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(CASES["lines"])
    fd = os.open(p, os.O_RDONLY)
    try:
        with pytest.raises(ValueError):
            native_scanner.scan(
                bytes(100), 0, 0, 0, "s", {}, {}, str, print, 10**9, 0.0, 1e10, None, -1, fd, 5
            )
    finally:
        os.close(fd)
