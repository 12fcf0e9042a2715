"""The cold scanner against a reference that decodes every line with Python's json.

The scanner checks UTF-8 only on lines that carry usage or a title (docs/architecture.md,
"Invalid UTF-8"); every line that may count is still decoded (the others, without the bytes
'"usage"', 'title"', "\\u006" or "\\u007", are not read: tests/test_scan_filter.py). Its
usage records and titles must equal those of a pass that decodes every complete line with
Python's json module (the field rules are the parser's reference ``_usage_record``): on a generated corpus, on the real corpus, and on
adversarial spellings (escaped letters in keys and types, spacing, CRLF, marker text inside
strings, every read-buffer boundary), and a long line is UTF-8 checked across its slices.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tokmon.core.model import FIELDS
from tokmon.core.parser import LineStats, _usage_record, scan_lines
from tokmon.core.scan import scan_file
from tokmon.demo import generate

TS = "2026-03-01T10:00:00.000Z"


def _reference(data: bytes, source: str) -> tuple[dict[str, list[Any]], list[tuple[str, ...]]]:
    """Rows (max output per key, the first on ties) and titles of ``data``, every complete line
    decoded by Python's json (the field rules are the parser's reference ``_usage_record``)."""
    best: dict[str, list[Any]] = {}
    titles: list[tuple[str, ...]] = []
    pos = 0
    end = data.rfind(b"\n") + 1
    while pos < end:
        nl = data.index(b"\n", pos)
        raw, off, pos = data[pos:nl], pos, nl + 1
        try:
            obj = json.loads(raw.decode("utf-8"))
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type")
        if kind == "assistant":
            row = _usage_record(obj, source, off)
            if row:  # None: no usage; [] (poison): not counted
                old = best.get(row[9])
                if old is None or row[5] > old[5]:
                    best[row[9]] = row
        elif kind in ("custom-title", "ai-title"):
            field = {"custom-title": "customTitle", "ai-title": "aiTitle"}[kind]
            sid, title = obj.get("sessionId"), obj.get(field)
            if isinstance(sid, str) and isinstance(title, str) and title.strip():
                titles.append((sid, kind, title.strip()[:200]))
    return best, titles


def _usage_lines(data: bytes) -> list[int]:
    """Offsets of the lines whose JSON has a top-level assistant type and a message.usage."""
    out, pos = [], 0
    for raw in data.split(b"\n"):
        try:
            obj = json.loads(raw.decode("utf-8"))
        except ValueError:
            obj = None
        if isinstance(obj, dict) and obj.get("type") in ("assistant", "custom-title", "ai-title"):
            msg = obj.get("message")
            if obj["type"] != "assistant" or (
                isinstance(msg, dict) and isinstance(msg.get("usage"), dict)
            ):
                out.append(pos)
        pos += len(raw) + 1
    return out


def _check_files(files: list[Path]) -> int:
    n = 0
    for f in files:
        data = f.read_bytes()
        want = _usage_lines(data)
        res = scan_file(str(f), 0)
        assert res.error is None
        rows, titles = _reference(data, str(f))
        got = {r[9]: list(r) for r in res.rows}  # type: ignore[index]
        assert got.keys() == rows.keys(), f
        for k, r in rows.items():
            assert dict(zip(FIELDS, got[k], strict=True)) == dict(zip(FIELDS, r, strict=True)) | {
                "cost": got[k][10]
            }, (f, k)
        assert [t[:2] for t in res.titles] == [t[:2] for t in titles], f
        n += len(want)
    return n


def test_generated_corpus_equals_the_reference(tmp_path: Path) -> None:
    generate(tmp_path, size_mb=3, seed=7, end=datetime(2026, 3, 1, tzinfo=timezone.utc), days=10)
    files = sorted((tmp_path / "projects").rglob("*.jsonl"))
    assert files and _check_files(files) > 100


def test_real_corpus_equals_the_reference(real_corpus: Path) -> None:
    files = sorted(real_corpus.rglob("*.jsonl"))
    assert files and _check_files(files) > 100


def _usage_obj(n: int) -> dict[str, Any]:
    return {
        "type": "assistant",
        "timestamp": TS,
        "sessionId": "s1",
        "requestId": f"r{n}",
        "message": {
            "id": f"m{n}",
            "model": "claude-x",
            "content": [{"type": "text", "text": 'say "usage" or \\"usage\\"'}],
            "usage": {"input_tokens": n + 1, "output_tokens": 2 * n + 1},
        },
    }


def _spell(obj: dict[str, Any], rng: random.Random) -> bytes:
    """``obj`` as JSON with random spacing and random letters of the keys and of the type
    value escaped as \\u00XX (what JSON.parse, msgspec and Python's json all accept)."""

    def esc(s: str) -> str:
        return "".join(f"\\u{ord(c):04x}" if rng.random() < 0.3 else c for c in s)

    def enc(v: Any) -> str:
        sp = " " * rng.randint(0, 2)
        if isinstance(v, dict):
            items = [f'"{esc(k)}"{sp}:{sp}{enc(x)}' for k, x in v.items()]
            return "{" + f",{sp}".join(items) + "}"
        if isinstance(v, str) and v in ("assistant", "custom-title", "ai-title"):
            return f'"{esc(v)}"'
        return json.dumps(v)

    return enc(obj).encode()


def test_adversarial_spellings_equal_the_reference() -> None:
    rng = random.Random(12)
    lines: list[bytes] = []
    for n in range(300):
        line = _spell(_usage_obj(n), rng)
        if n % 7 == 0:
            line += b"\r"  # CRLF
        lines.append(line)
        # lines that carry no usage, with the marker quoted inside strings
        lines.append(json.dumps({"type": "user", "text": f'{{"usage": {n}}}'}).encode())
        lines.append(b'{"type":"user","message":{"content":"\\"usage\\""},"cut')
        if n % 10 == 0:
            t = {"type": "ai-title", "sessionId": f"s{n}", "aiTitle": f"t{n}"}
            lines.append(_spell(t, rng))
    data = b"\n".join(lines) + b"\n"
    want_rows, want_titles = _reference(data, "src")
    assert len(want_rows) == 300 and len(want_titles) == 30
    # every buffer boundary: scanned in small pieces, as the reader hands them over
    for piece in (97, 4096, len(data)):
        best: dict[str, list[Any]] = {}
        titles: list[tuple[str, str, str]] = []
        stats = LineStats()
        start = 0
        while start < len(data):
            stop = data.rfind(b"\n", start, start + piece) + 1 or data.index(b"\n", start) + 1
            scan_lines(data, start, stop, 0, "src", stats, best, titles, {})
            start = stop
        assert best == want_rows and titles == want_titles
        # the cut user lines hold "usage" only between escaped quotes (text, not a key):
        # they could count nothing, so they are not read, nor counted as malformed
        assert stats.malformed == 0 and stats.invalid_utf8 == 0


@pytest.mark.parametrize("bad", [False, True])
def test_long_usage_lines_utf8_checked_across_slices(bad: bool) -> None:
    """A usage line of ~200 KB of multibyte text (characters straddle every 64 KiB slice of
    the UTF-8 check): valid, it counts; with one bad byte near its end, it is non-UTF-8."""
    obj = _usage_obj(1)
    obj["message"]["content"] = [{"type": "text", "text": "é日🚀" * 22000}]
    line = json.dumps(obj, ensure_ascii=False).encode()
    if bad:
        cut = line.index("🚀".encode(), len(line) - 5000)
        line = line[:cut] + b"\xf0\x9f" + line[cut + 4 :]  # a truncated 4-byte character
    data = b"{}\n" + line + b"\n"
    best: dict[str, list[Any]] = {}
    stats = LineStats()
    scan_lines(data, 0, len(data), 0, "src", stats, best, [], {})
    assert (len(best), stats.invalid_utf8, stats.malformed) == ((0, 1, 0) if bad else (1, 0, 0))
