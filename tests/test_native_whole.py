"""A file smaller than a read buffer, read from its start, is read and scanned by the native
scanner in one call (scan._whole), or, on a scan thread, parsed in a batch of such files
without the GIL and its rows built by the merging thread (scan.parse_task, _scan.parse_many,
scan._finished): the same FileResult as the reader's blocks through scan_lines, natively and
in Python, whatever the file holds or does meanwhile."""

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
    blocks: the whole path switched off) or "python" (the pure-Python scanner); "parsed":
    a scan thread's task (parse_task) and the merging thread's rows (_finished)."""
    with monkeypatch.context() as m:
        parser._native = None if how == "python" else False
        if how == "reader":
            m.setattr(scan, "_whole", _no_whole)
        if how in ("whole", "parsed"):  # the reader must not run
            m.setattr(scan, "LineReader", _no_reader)
        if how == "parsed":
            pricing = (None, "calculate")
            done = scan.parse_task([(str(path), 0, "", size)], pricing)
            assert len(done) == 1 and isinstance(done[0], tuple)  # parsed, rows not built
            return scan._finished(done[0], pricing)
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
    assert _fields(whole) == _fields(_by(p, size, "parsed", monkeypatch))
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
        assert _fields(whole) == _fields(_by(p, size, "parsed", monkeypatch))
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
    assert whole.error == _by(missing, 10, "parsed", monkeypatch).error
    assert whole.error and whole.rows == []
    if os.name == "posix":  # a directory opens there: its read fails as the reader's
        d = tmp_path / "d.jsonl"
        d.mkdir()
        assert _by(d, 10, "whole", monkeypatch).error == _by(d, 10, "reader", monkeypatch).error
        assert _by(d, 10, "parsed", monkeypatch).error == _by(d, 10, "reader", monkeypatch).error


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


def _mixed(i: int) -> bytes:
    """Usage lines whose session, cwd and model change from line to line in runs (the parsed
    form keeps a string once while it repeats), with lines for Python between them."""
    line = usage_line(
        message={"id": f"m{i}", "model": ("claude-opus-4-5", "claude-haiku-4-5")[i // 3 % 2]},
        usage={"output_tokens": i},
        sessionId=f"s{i // 2 % 3}",
        cwd=("/a", "/b/c", "")[i // 5 % 3],
    )
    return (
        line
        + b"\n"
        + (TITLE + b"\n" if i % 7 == 0 else b"")
        + (BAD + b"\n" if i % 11 == 0 else b"")
    )


def test_a_batch_of_files_parsed_on_a_thread_gives_each_files_result(
    native_scanner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several files in one parse_many call (one buffer, reused file after file), the
    others in a task read the usual way (from an offset, larger than the buffer) between
    them, a file gone: each the FileResult scan_file gives, in the task's order."""
    data = [b"".join(_mixed(i) for i in range(k, k + 40)) for k in range(0, 200, 40)]
    paths = []
    for i, d in enumerate(data):
        p = tmp_path / f"f{i}.jsonl"
        p.write_bytes(d)
        paths.append(str(p))
    items = [(paths[0], 0, "", len(data[0])), (paths[1], 0, "", len(data[1]))]
    items += [(str(tmp_path / "gone.jsonl"), 0, "", 10), (paths[2], 0, "", len(data[2]))]
    items += [(paths[3], 100, "", len(data[3]) - 100), (paths[4], 0, "", len(data[4]))]
    pricing = (None, "calculate")
    parser._native = False
    calls: list[int] = []
    real = native_scanner.parse_many
    with monkeypatch.context() as m:
        m.setattr(
            native_scanner,
            "parse_many",
            lambda buf, p, *a: calls.append(len(p)) or real(buf, p, *a),
        )
        done = scan.parse_task(items, pricing)
    assert calls == [4, 1]  # the runs of whole files (the one from an offset between)
    assert [isinstance(d, tuple) for d in done] == [True, True, True, True, False, True]
    got = [scan._finished(d, pricing) for d in done]
    want = [scan_file(k, s, pricing, fp, False, n) for k, s, fp, n in items]
    assert [_fields(g) for g in got] == [_fields(w) for w in want]
    assert sum(len(g.rows) for g in got) > 150 and got[2].error
    assert any(g.malformed for g in got) and any(g.titles for g in got)


def test_a_parsed_file_that_grew_past_the_buffer_is_read_the_usual_way(
    native_scanner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "a.jsonl"
    data = CASES["handed back and bad"]
    p.write_bytes(data)
    want = _by(p, len(data), "reader", monkeypatch)
    monkeypatch.setattr(reader, "_CHUNK", 512)  # new buffers of 512 bytes
    reader.trim_pool()
    try:
        parser._native = False
        done = scan.parse_task([(str(p), 0, "", 100)], None)  # its stat saw 100 bytes
        assert isinstance(done[0], tuple)
        got = scan._finished(done[0], (None, "calculate"))
        assert _fields(got) == _fields(want) and got.end == len(data)
    finally:
        reader.trim_pool()


def test_parse_many_checks_its_arguments(native_scanner: Any, tmp_path: Path) -> None:
    buf = bytearray(1024)
    with pytest.raises(ValueError):
        native_scanner.parse_many(buf, ["a", "b"], [1], 10**9)
    with pytest.raises(TypeError):
        native_scanner.parse_many(buf, [b"a"], [1], 10**9)
    with pytest.raises(TypeError):  # (a writable buffer: the files are read into it)
        native_scanner.parse_many(bytes(1024), ["a"], [1], 10**9)
    p = tmp_path / "a.jsonl"
    p.write_bytes(CASES["lines"])
    fd = os.open(p, os.O_RDONLY)
    try:
        with pytest.raises(ValueError):  # scan(): a path or an fd, not both
            native_scanner.scan(
                buf, 0, 0, 0, "s", {}, {}, str, print, 10**9, 0.0, 1e10, None, -1, fd, 5, str(p)
            )
    finally:
        os.close(fd)


def test_files_with_nothing_parsed_first_after_the_buffers_went(
    native_scanner: Any, tmp_path: Path
) -> None:
    """A missing and an empty file parsed by the first call after _trim (its kept buffers
    freed: no records, no strings yet): nothing copied from them (sanitized builds:
    scripts/native_asan.sh), an error and an empty result."""
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    native_scanner._trim()
    gone, none = native_scanner.parse_many(
        bytearray(4096), [str(tmp_path / "gone.jsonl"), str(empty)], [10, 0], 10**9
    )
    args = ({}, {}, str, print, print, 0.0, 1e10)
    with pytest.raises(FileNotFoundError):
        native_scanner.finish(gone, "gone", *args)
    assert native_scanner.finish(none, "empty", *args) == (0, 0, "")
