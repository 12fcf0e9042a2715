"""The candidate filter: a line without the bytes ``"usage"`` (with its quotes), ``title"``,
``\\u006`` or ``\\u007`` is skipped unread, by the native scanner (``candidate`` in tokmon/_native/_scan.c, every
build) and by the Python paths (``parser._candidate``: parse_line, so the msgspec path's
rejected lines and the native scanner's fallback too).

Held here: every spelling of "usage" and "title" with escaped letters (keys, type values,
lowercase and uppercase hex) is read alike by every path; lines without the bytes (escapes
of other characters, near misses, malformed and non-UTF-8 lines) count nothing on any path,
and the malformed ones among them are not counted as bad, while malformed lines with the
bytes still are; each build finds each pattern at every offset of lines 0 to 90 bytes long
(across its 16 and 32-byte blocks) exactly where a regular expression does; no line that an
independent reading (Python's json) counts lacks the bytes, on the corpora; and the filter
really skips a transcript's plain lines (its counter), with the same results as without it.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path
from typing import Any

from native_support import builds, built, module
from test_native_scan import _scan
from test_parser import _by_parse_line, usage_line

from tokmon.core import parser
from tokmon.core.parser import LineStats, parse_line

# the rule, written independently of both implementations
RULE = re.compile(rb'"usage"|title"|\\u00[67]')


def _escaped(word: str, which: tuple[int, ...], upper: bool) -> str:
    """``word`` (as JSON text) with the letters at ``which`` written as \\u00XX escapes."""
    hexes = [f"{ord(c):04X}" if upper else f"{ord(c):04x}" for c in word]
    return "".join(f"\\u{hexes[i]}" if i in which else c for i, c in enumerate(word))


def _spellings(word: str) -> list[str]:
    """Every subset of the letters escaped, in lowercase and in uppercase hex."""
    out = []
    for n in range(len(word) + 1):
        for which in itertools.combinations(range(len(word)), n):
            out.append(_escaped(word, which, False))
            if n:
                out.append(_escaped(word, which, True))
    return out


def _usage_lines() -> list[bytes]:
    out = []
    for i, s in enumerate(_spellings("usage")):
        base = usage_line(requestId=f"r{i}")
        assert base.count(b'"usage"') == 1
        out.append(base.replace(b'"usage"', f'"{s}"'.encode()))
    return out


def _title_lines() -> list[bytes]:
    out = []
    for kind, field in (("custom-title", "customTitle"), ("ai-title", "aiTitle")):
        for s in _spellings("title"):
            t = kind.replace("title", s)
            out.append(f'{{"type":"{t}","sessionId":"s1","{field}":"named"}}'.encode())
    return out


def _all_paths(buf: bytes, native: Any) -> list[Any]:
    """(rows, titles, malformed, non-UTF-8, bad offsets) by parse_line on each line, by the
    Python scan (msgspec) and, when built, by the native scan with each build."""
    best, titles, mal, utf8, bad = _by_parse_line(buf, 0, 100)
    out = [(sorted(best.items()), titles, mal, utf8, bad)]
    runs = [(False, None)] + ([(True, b) for b in builds()] if native is not None else [])
    for use_native, build in runs:
        if build is not None:
            native._set_prepass_simd(build)
        got = _scan(buf, use_native)
        out.append((sorted(got[0]), got[1], got[2], got[3], got[5]))
    if native is not None:
        native._set_prepass_simd(native.PREPASS_BEST)
    return out


def _native_or_none() -> Any:
    """The native scanner's module, or None (not built: the Python paths are checked)."""
    if not built() or parser._native_disabled():
        return None
    return module()


def test_every_escaped_spelling_is_read_on_every_path(python_scanner: None) -> None:
    """JSON, msgspec, orjson and ccusage's JSON.parse read "\\u0075s\\u0061ge" as "usage"
    and "custom-\\u0074itle" as "custom-title": such lines count on every path (the
    filter's \\u006 / \\u007), with "usage" or "title" in their bytes or not."""
    mod = _native_or_none()
    usage, title = _usage_lines(), _title_lines()
    assert len(usage) == 63 and len(title) == 2 * 63
    assert sum(b'"usage"' not in ln for ln in usage) == 62
    assert sum(b'title"' not in ln for ln in title) == 2 * 62
    for line in usage + title:
        assert parser._candidate(line), line
        assert json.loads(line)  # valid JSON: read as the plain spelling
    for line in usage:
        stats = LineStats()
        row = parse_line(line, "s", 0, stats)
        assert type(row) is list and row[5] == 40 and stats.total() == 0, line
    for line in title:
        assert parse_line(line, "s", 0, LineStats()) == ("s1", json.loads(line)["type"], "named")
    buf = b"\n".join(usage + title) + b"\n"
    got = _all_paths(buf, mod)
    assert all(g == got[0] for g in got)
    assert len(got[0][0]) == 63 and len(got[0][1]) == 2 * 63 and got[0][2:] == (0, 0, [])


# Lines without the bytes: nothing to count on any path, valid or not.
NOTHING = [
    b'{"type":"user","message":{"role":"user","content":"hi"}}',
    b'{"type":"assistant","message":{"\\u0055sage":{"output_tokens":5}}}',  # "Usage"
    b'{"type":"assistant","message":{"Usage":{"output_tokens":5}}}',
    b'{"type":"custom-Title","sessionId":"s","customTitle":"t"}',
    b'{"type":"custom-TITLE","sessionId":"s","customTitle":"t"}',
    b'{"type":"custom-titl\\u0045","sessionId":"s","customTitle":"t"}',  # E: \\u0045
    b'{"type":"ai-tit\\u004ce","sessionId":"s","aiTitle":"t"}',  # L: \\u004C
    b'{"type":"assistant","message":{"usag":{"output_tokens":5}}}',
    b'{"a":"\\u001b[31m \\u0000 \\u00e9 \\u0080 \\u00ff \\u0041 \\u0058 \\u005f"}',
    b'{"a":"\\\\u00 \\\\u0 u006 u007 \\\\x61 usag itle sage titl"}',
    b'{"type":"user","a":"usage of x, title of y, the titles","usage ":1,"xusage":2}',
    b'{"a":"\\"usage\\": the quotes escaped","b":"the \\"title\\""}',
    b'{"type":"custom-titles","sessionId":"s","customTitle":"t"}',
    b'{"type":"custom-title ","sessionId":"s","customTitle":"t"}',
    # malformed: not counted as bad any more
    b"not json at all",
    b"[1, 2, 3]",
    b'{"type":"assistant","message":{"id":"m1","content":"cut',
    b'{"type":"user","message":{"content":"x"}}}',
    b'{"type":"user",}',
    b'{"type":"user","x":NaN}',
    b'{"type":"user","x":1e400}',
    b'{"type":"user","x":"\\ud800"}',
    b'{"type":"user","x":"\xff\xfe"}',
    b"\xff\xfe\x00 garbage",
    b'{"type":"user","x":"\\u00',
    b"   ",
]


def test_lines_without_the_bytes_count_nothing_on_any_path(python_scanner: None) -> None:
    mod = _native_or_none()
    for line in NOTHING:
        assert not RULE.search(line) and not parser._candidate(line), line
        stats = LineStats()
        assert parse_line(line, "s", 0, stats) is None and stats.total() == 0, line
        for sep in (b"\n", b"\r\n"):
            for got in _all_paths(line + sep, mod):
                assert got == ([], [], 0, 0, []), line
    good = [usage_line(requestId=f"r{i}") for i in range(3)]
    buf = b"\n".join([good[0], *NOTHING, good[1], *NOTHING[::-1], good[2]]) + b"\n"
    got = _all_paths(buf, mod)
    assert all(g == got[0] for g in got) and len(got[0][0]) == 3 and got[0][2:] == (0, 0, [])
    if mod is not None:  # the native scan did not even read them
        before = mod._filtered_lines()
        _scan(buf, True)
        assert mod._filtered_lines() - before == 2 * len(NOTHING)


# Malformed lines with the bytes: they could have counted, so they are counted.
COUNTED = [
    b'{"type":"assistant","message":{"usage":{"output_tokens":5}',  # cut
    b'{"type":"user","message":{"content":"ab' + usage_line(),  # the next line appended
    b'{"type":"custom-title","sessionId":"s1","customTi',
    b'{"type":"\\u0061ssistant","message":{"\\u0075sage":{',
    b'{"type":"ai-\\u0074itle"',
    b'"usage"',
    b'[{"title": 1}]',
    b'{"type":"user","usage":NaN}',
    b'{"type":"user","x":"usage",}',  # (a string "usage": the same bytes as a key)
]


def test_malformed_lines_with_the_bytes_are_counted_on_every_path(python_scanner: None) -> None:
    mod = _native_or_none()
    buf = b"\n".join(COUNTED) + b"\n"
    got = _all_paths(buf, mod)
    assert all(g == got[0] for g in got)
    offsets = [100 + buf.index(line + b"\n") for line in COUNTED]
    assert got[0] == ([], [], len(COUNTED), 0, offsets)
    mixed = b"\n".join(itertools.chain(*zip(NOTHING, itertools.cycle(COUNTED)))) + b"\n"
    got = _all_paths(mixed, mod)
    assert all(g == got[0] for g in got) and got[0][2] == len(NOTHING)


PATTERNS = [b'"usage"', b'title"'] + [
    b"\\u00%d%s" % (d, h) for d in (6, 7) for h in (b"1", b"c", b"C")
]
NEAR = [b"usage", b'"usage', b'usage"', b'"usag"', b"title", b'itle"', b'titl"', b"\\u005f"]
NEAR += [b"\\u008", b"\\u00", b"u0061", b"\\U0061"]
FILL = b'x"{}: ,ua\\il0t6e7sgU'  # the pairs' bytes among others


def test_every_build_finds_each_pattern_at_every_offset(native_scanner: Any) -> None:
    """Lines 0 to 90 bytes long (the 16 and 32-byte blocks, the 2-byte look-ahead, the
    overlapping first block), each pattern or near miss at each offset, over fillers of the
    pairs' bytes: each build says "candidate" exactly where the regular expression does."""
    mod = native_scanner
    rng = random.Random(7)
    lines = []
    for n in range(91):
        for piece in PATTERNS + NEAR + [b""]:
            for at in range(max(0, n - len(piece)) + 1):
                fill = bytes(rng.choice(b"xyz ,:" if at % 3 else FILL) for _ in range(n))
                lines.append((fill[:at] + piece + fill[at:])[: max(n, len(piece))])
    want = [bool(RULE.search(ln)) for ln in lines]
    assert 0.3 * len(lines) < sum(want) < 0.9 * len(lines)
    assert want == [parser._candidate(ln) for ln in lines]
    try:
        for build in builds():
            mod._set_prepass_simd(build)
            got = [mod._candidate(ln) for ln in lines]
            assert [ln for ln, g, w in zip(lines, got, want, strict=True) if g != w] == [], build
    finally:
        mod._set_prepass_simd(mod.PREPASS_BEST)


def _counted_lines(data: bytes) -> list[bytes]:
    """The lines Python's json reads a usage row or a title from (type and fields only)."""
    out = []
    for line in data.split(b"\n"):
        try:
            obj = json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            continue
        if type(obj) is not dict:
            continue
        msg = obj.get("message")
        kind = obj.get("type")
        if (kind == "assistant" and type(msg) is dict and type(msg.get("usage")) is dict) or (
            kind in ("custom-title", "ai-title")
        ):
            out.append(line)
    return out


def _corpus_facts(paths: list[Path], native: bool) -> list[Any]:
    from tokmon.core.scan import scan_file

    parser._native = False if native else None
    return [
        (r.rows, r.titles, r.malformed, r.invalid_utf8, r.bad_lines)
        for r in (scan_file(str(p), 0) for p in paths)
    ]


def test_a_generated_corpus_with_and_without_the_filter(
    native_scanner: Any, tmp_path: Path
) -> None:
    """The plain lines of a transcript are skipped unread (counted exactly), the lines that
    count all hold the bytes, and the results equal those without the filter and those of
    the Python scan."""
    from tokmon.demo import generate

    mod = native_scanner
    generate(tmp_path / "gen", size_mb=2, seed=5)
    paths = sorted((tmp_path / "gen").rglob("*.jsonl"))
    data = [p.read_bytes() for p in paths]
    counted = [ln for d in data for ln in _counted_lines(d)]
    assert len(counted) > 300 and all(RULE.search(ln) for ln in counted)
    lines = [ln for d in data for ln in d[: d.rfind(b"\n") + 1].split(b"\n")[:-1] if ln]
    plain = sum(not RULE.search(ln) for ln in lines)
    assert plain > 0.3 * len(lines)
    before = mod._filtered_lines()
    got = _corpus_facts(paths, True)
    assert mod._filtered_lines() - before == plain
    mod._set_filter(False)  # (the fixture turns it back on)
    assert _corpus_facts(paths, True) == got
    assert _corpus_facts(paths, False) == got
    assert sum(len(r[0]) for r in got) > 100


def test_the_real_corpus_with_and_without_the_filter(
    native_scanner: Any, real_corpus: Path
) -> None:
    mod = native_scanner
    paths = sorted(real_corpus.rglob("*.jsonl"))
    for p in paths:
        assert all(RULE.search(ln) for ln in _counted_lines(p.read_bytes())), p
    before = mod._filtered_lines()
    got = _corpus_facts(paths, True)
    assert mod._filtered_lines() > before
    mod._set_filter(False)  # (the fixture turns it back on)
    assert _corpus_facts(paths, True) == got
    assert _corpus_facts(paths, False) == got
