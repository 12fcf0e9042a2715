"""The cold scanner over real files and whole read buffers (tokmon/core/reader.py,
tokmon/core/parser.py ``scan_lines``, tokmon/core/scan.py ``scan_file``).

The reader reuses one buffer per reader and grows it for long lines; the scanner checks
UTF-8 on large slices and skips building rows for lines a later line of the same response
supersedes. Every file here is scanned with read buffers of many sizes (lines split at every
kind of boundary) and must give what Python's json module says line by line: the expected
figures are computed independently below, never by tokmon's parser.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import assistant_line

from tokmon.core import reader
from tokmon.core.reader import LineReader
from tokmon.core.scan import scan_file

S1 = "11111111-1111-4111-8111-111111111111"


def _user(text: str) -> str:
    return json.dumps(
        {
            "type": "user",
            "sessionId": S1,
            "cwd": "/home/u/p",
            "timestamp": "2026-03-01T10:00:00.000Z",
            "message": {"role": "user", "content": text},
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _line(n: int, out: int, ts: str = "", **kw: Any) -> str:
    return assistant_line(
        ts or f"2026-03-01T10:{n % 60:02d}:00.000Z",
        msg_id=f"msg_{n}",
        req_id=f"req_{n}",
        session=S1,
        out=out,
        **kw,
    )


# A usage line's text, quoted inside another line: markers that are not a usage line.
FAKE = '{"type":"assistant","message":{"id":"x","usage":{"input_tokens":999}}}'


def _corpus_lines() -> list[bytes]:
    lines: list[bytes] = []
    for n in range(40):
        # one response as three lines (output grows, then repeats): the largest counts once
        for out in (1, 7 + n, 7 + n):
            lines.append(_line(n, out, inp=n + 1).encode())
        lines.append(_user(f"日本語 ✅ 🚀 {FAKE} " + "x" * (n * 37)).encode())
    lines.append(b"")  # a blank line
    lines.append(_user("crlf").encode() + b"\r")  # a CRLF line
    lines.append(_line(100, 5).encode() + b"\r")  # a CRLF usage line: counted
    lines.append(b'{"type":"user","text":"caf\xe9"}')  # not UTF-8, no usage: not counted
    lines.append(_line(101, 5).encode().replace(b"msg_101", b"msg_\xff101"))  # not UTF-8
    lines.append(_line(102, 9).encode()[:-9])  # truncated usage line
    lines.append(_user("cut")[:30].encode() + _user("next").encode())  # cut + next: no usage
    lines.append(_user("cut")[:30].encode() + _line(103, 4).encode())  # cut + a usage line
    # a poison line of a response already seen (year 2200): still malformed, row kept
    lines.append(_line(3, 1, ts="2200-01-01T00:00:00.000Z").encode())
    return lines


def _expected(lines: list[bytes]) -> dict[str, Any]:
    """Totals, malformed and non-UTF-8 counts by Python's json, line by line (the lines
    that hold '"usage"', 'title"', "\\u006" or "\\u007": no other line could count anything)."""
    best: dict[str, dict[str, Any]] = {}
    mal = utf = 0
    for raw in lines:
        if not re.search(rb'"usage"|title"|\\u00[67]', raw):
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            # counted unless it is JSON (bad bytes replaced) carrying neither usage nor a title
            try:
                lenient = json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                lenient = None
            if not isinstance(lenient, dict) or "usage" in lenient.get("message", {}):
                utf += 1  # (the fixture's only JSON lines with usage are assistant lines)
            continue
        except ValueError:
            mal += 1
            continue
        if obj.get("type") != "assistant":
            continue
        if obj["timestamp"].startswith("2200"):
            mal += 1  # poison: outside 1970..2200
            continue
        msg = obj["message"]
        key = f"{msg['id']}:{obj['requestId']}"
        out = msg["usage"]["output_tokens"]
        if key not in best or out > best[key]["output_tokens"]:
            best[key] = msg["usage"]
    return {
        "records": len(best),
        "input": sum(u["input_tokens"] for u in best.values()),
        "output": sum(u["output_tokens"] for u in best.values()),
        "malformed": mal,
        "utf8": utf,
    }


def _scan(path: Path) -> dict[str, Any]:
    res = scan_file(str(path), 0)
    assert res.error is None
    return {
        "records": len(res.rows),
        "input": sum(r[4] for r in res.rows),  # type: ignore[misc]
        "output": sum(r[5] for r in res.rows),  # type: ignore[misc]
        "malformed": res.malformed,
        "utf8": res.invalid_utf8,
    }


@pytest.mark.parametrize("chunk", [64, 100, 1000, 4096, 1 << 20])
def test_every_buffer_size_gives_the_line_by_line_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    lines = _corpus_lines()
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setattr(reader, "_CHUNK", chunk)
    monkeypatch.setattr(reader, "_POOL", [])
    want = _expected(lines)
    assert want["records"] == 40 + 1 and want["utf8"] == 1 and want["malformed"] == 3
    assert _scan(path) == want


def test_fake_usage_markers_in_text_are_not_counted(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    path.write_text("\n".join([_user(FAKE), _user(FAKE * 50)]) + "\n", encoding="utf-8")
    res = scan_file(str(path), 0)
    assert res.rows == [] and res.malformed == 0 and res.invalid_utf8 == 0


def test_ties_keep_the_first_line_and_a_superseded_poison_line_is_still_malformed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.jsonl"
    lines = [
        _line(1, 30, ts="2026-03-01T10:00:01.000Z"),
        _line(1, 30, ts="2026-03-01T10:00:02.000Z"),  # same output: the first stays
        _line(1, 2, ts="1969-12-31T23:59:59.000Z"),  # poison, smaller output
        _line(1, 2, ts="not a time"),  # no timestamp: skipped, not malformed
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = scan_file(str(path), 0)
    assert len(res.rows) == 1 and res.malformed == 1
    first = json.loads(lines[0])["timestamp"]
    assert res.rows[0][0] == datetime.fromisoformat(first).timestamp()


def test_an_oversized_line_is_skipped_once_and_the_rest_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "_CHUNK", 256)
    monkeypatch.setattr(reader, "_POOL", [])
    monkeypatch.setattr(reader, "MAX_LINE", 2000)
    path = tmp_path / "h.jsonl"
    big = _user("y" * 9000)  # 4.5x MAX_LINE, many buffers long
    path.write_text("\n".join([_line(1, 5), big, _line(2, 6)]) + "\n", encoding="utf-8")
    res = scan_file(str(path), 0)
    assert res.huge == 1 and res.malformed == 0
    assert sorted(r[5] for r in res.rows) == [5, 6]  # type: ignore[type-var]
    assert res.end == path.stat().st_size
    # still being written (no newline yet): not consumed, counted once
    with path.open("a", encoding="utf-8") as fh:
        fh.write(big)
    res = scan_file(str(path), res.end)
    assert res.huge == 1 and res.rows == [] and res.end == path.stat().st_size


def test_a_partial_last_line_is_left_for_the_next_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "_CHUNK", 128)
    monkeypatch.setattr(reader, "_POOL", [])
    path = tmp_path / "p.jsonl"
    whole = _line(1, 5) + "\n"
    part = _line(2, 6)
    path.write_text(whole + part[:200], encoding="utf-8")
    res = scan_file(str(path), 0)
    assert [r[5] for r in res.rows] == [5] and res.end == len(whole.encode())
    with path.open("a", encoding="utf-8") as fh:
        fh.write(part[200:] + "\n")
    res = scan_file(str(path), res.end)
    assert [r[5] for r in res.rows] == [6] and res.end == path.stat().st_size


def test_nested_readers_do_not_share_a_buffer(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b"".join(b'{"n":%d}\n' % i for i in range(100)))
    b.write_bytes(b"".join(b'{"m":"%d"}\n' % i for i in range(300)))
    seen: list[bytes] = []
    for _, line in LineReader(str(a), 0):
        seen.append(line)
        inner = [ln for _, ln in LineReader(str(b), 0)]
        assert inner == b.read_bytes().splitlines()
    assert seen == a.read_bytes().splitlines()


def test_worker_runs_in_many_small_tasks_keep_file_order_and_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokmon.core import scan as scan_mod
    from tokmon.core.scan import scan_all

    items = []
    for i in range(12):
        p = tmp_path / f"f{i:02d}.jsonl"
        # the same response in every file (resumed sessions): ties across files, first wins
        lines = [_line(0, 5 + i % 3, ts=f"2026-03-01T10:00:{i:02d}.000Z"), _line(i + 1, i)]
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        items.append((str(p), 0, p.stat().st_size))
    seq = list(scan_all(items, workers=1))
    monkeypatch.setattr(scan_mod, "WORKER_TASK_BYTES", 1)  # one file per task
    monkeypatch.setenv("TOKMON_SCAN_POOL", "process")  # (with the native scanner: threads)
    par = list(scan_all(items, workers=2, min_bytes=0))
    assert [r.key for r in par] == [it[0] for it in items]
    assert [(r.rows, r.end) for r in par] == [(r.rows, r.end) for r in seq]
    assert len({r.pid for r in par}) == 2


def _long_file(path: Path, sizes: list[int]) -> list[bytes]:
    """Usage lines between user lines of ``sizes`` bytes of text (longer than the buffer)."""
    lines = []
    for i, n in enumerate(sizes):
        lines.append(_line(100 + i, 10 + i).encode())
        lines.append(_user(chr(ord("a") + i % 26) * n).encode())
    lines.append(_line(999, 7).encode())
    path.write_bytes(b"\n".join(lines) + b"\n")
    return lines


def test_long_lines_grow_the_buffer_in_place_and_it_comes_back_to_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines of 1.3x to 9x the buffer, split at block edges: every line comes out whole; a
    buffer grown up to _KEEP times its size stays so for the next files of the scan, one
    grown past it is cut back when its file is done, and trim_pool (the scan's end) gives
    every pooled buffer back (a later scan allocates its own)."""
    monkeypatch.setattr(reader, "_CHUNK", 1000)
    monkeypatch.setattr(reader, "_KEEP", 2)
    monkeypatch.setattr(reader, "_POOL", [])
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    small_lines = _long_file(small, [1100, 1200])  # grows to 1.5x the buffer
    big_lines = _long_file(big, [3000, 9000, 2500])  # grows well past it
    assert [ln for _, ln in LineReader(str(small), 0)] == small_lines
    (kept,) = reader._POOL
    assert 1000 < len(kept) <= 2000  # kept grown for the next long line
    assert [ln for _, ln in LineReader(str(big), 0)] == big_lines
    (again,) = reader._POOL
    assert again is kept and len(kept) == 1000  # the same buffer, cut back
    assert [ln for _, ln in LineReader(str(small), 0)] == small_lines
    assert len(kept) > 1000
    reader.trim_pool()
    assert reader._POOL == []
    assert [ln for _, ln in LineReader(str(small), 0)] == small_lines  # a fresh buffer
    # the scan's figures are those of every buffer size
    want = _expected(big_lines)
    assert want["records"] == 4 and _scan(big) == want


def test_scan_all_gives_back_its_read_buffers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokmon.core.scan import scan_all

    monkeypatch.setattr(reader, "_CHUNK", 1000)
    monkeypatch.setattr(reader, "_POOL", [])
    items = []
    for i in range(6):
        p = tmp_path / f"f{i}.jsonl"
        _long_file(p, [1500 + 300 * i])
        items.append((str(p), 0, p.stat().st_size))
    for _ in range(2):  # the second scan reads into buffers of its own
        res = list(scan_all(items, workers=2, min_bytes=0))
        assert [sorted(r[5] for r in x.rows) for x in res] == [[7, 10]] * 6  # type: ignore[type-var]
        assert reader._POOL == []  # every read buffer given back at the scan's end


def test_a_view_kept_across_steps_does_not_stop_a_long_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller holding a view of the buffer while the reader needs to grow it: the line
    goes into a new buffer (an in-place resize would fail) and the pooled one stays sound."""
    monkeypatch.setattr(reader, "_CHUNK", 1000)
    monkeypatch.setattr(reader, "_POOL", [])
    path = tmp_path / "v.jsonl"
    lines = _long_file(path, [600, 2500])
    views = []
    got: list[bytes] = []
    for base, buf, start, stop in LineReader(str(path), 0).blocks():
        views.append(memoryview(buf))  # kept: the buffer cannot be resized any more
        got += bytes(buf[start:stop]).split(b"\n")[:-1]
        assert base >= 0
    assert got == lines
    for v in views:
        v.release()
    for buf in reader._POOL:  # what went back is usable: a second read gives the same
        assert len(buf) >= 1000
    assert [ln for _, ln in LineReader(str(path), 0)] == lines


def test_lines_appended_while_a_file_is_read_are_read_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file grows between two reads of one pass: the new whole lines are consumed (up
    to the end seen then), a line still being written is left for the next pass."""
    monkeypatch.setattr(reader, "_CHUNK", 1000)
    monkeypatch.setattr(reader, "_POOL", [])
    path = tmp_path / "g.jsonl"
    first = [_line(i, 5 + i).encode() for i in range(8)]
    path.write_bytes(b"\n".join(first) + b"\n")
    late = [_line(50 + i, 60 + i).encode() for i in range(3)]
    partial = _line(99, 1).encode()[:40]
    rd = LineReader(str(path), 0)
    got: list[bytes] = []
    for n, (_, line) in enumerate(rd):
        got.append(line)
        if n == 0:  # during the pass, after the first block
            with path.open("ab") as fh:
                fh.write(b"\n".join(late) + b"\n" + partial)
    assert got == first + late
    assert rd.end == path.stat().st_size - len(partial)
