"""Time-boxed differential fuzzing of the native line scanner against the Python scan.

Buffers of mutated transcript lines (seeds: the *.jsonl files under the given directories,
plus a few built-in usage lines) go through tokmon.core.parser.scan_lines by both paths, in
blocks of whole lines; any difference in rows, titles, counters or bad-line offsets is
written to --out (the buffer, then the first single line that differs) and counted. Fast
(no hypothesis): for volume, and under the sanitizers (run it with the environment that
scripts/native_asan.sh sets up). Usage:

    python scripts/native_fuzz.py --seconds 600 [--out DIR] [CORPUS_DIR ...]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from tokmon.core import parser
from tokmon.core.parser import LineStats, scan_lines

USAGE = (
    b'{"type":"assistant","sessionId":"s1","cwd":"/p","requestId":"req_1","timestamp":'
    b'"2026-11-29T10:00:00.250Z","message":{"id":"msg_1","model":"claude-x","role":"assistant",'
    b'"usage":{"input_tokens":3,"output_tokens":40,"cache_creation_input_tokens":100,'
    b'"cache_read_input_tokens":2000,"cache_creation":{"ephemeral_1h_input_tokens":7}}}}'
)
BUILTIN = [
    USAGE,
    USAGE.replace(b'"req_1"', b'"req_2"').replace(b":40,", b":41,"),
    b'{"type":"custom-title","sessionId":"s1","customTitle":"t"}',
    b'{"type":"user","sessionId":"s1","message":{"content":"caf\xc3\xa9"}}',
]
NUMBERS = ["0", "-0", "1", "-1", "1.0", "1e3", "1E-400", "1e309", "999999999", "1000000000"]
NUMBERS += ["1000000001", "9223372036854775807", "9223372036854775808", "18446744073709551615"]
NUMBERS += ["18446744073709551616", "1" + "0" * 30, "0.5", "-0.0", "5e-324", "01", "1.", ".5"]
PIECES = ["a", "é", "\\u00e9", '\\"', "\\\\", "\\n", "\\u0000", "\\u001b", "\\ud83d\\ude80"]
PIECES += ["\\ud800", "\\udfff", "\\uFFFF", "assistant", "custom-title", "ai-title", "Z", " "]
PIECES += ["2026-11-29T10:00:00.250Z", "2026-02-30T00:00:00Z", "1969-12-31T23:59:59.999Z"]
RAW = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x9c", b"\x00", b"\x1f"]
KEYS = ["type", "timestamp", "sessionId", "cwd", "requestId", "costUSD", "message", "id"]
KEYS += ["model", "usage", "input_tokens", "output_tokens", "cache_creation_input_tokens"]
KEYS += ["cache_read_input_tokens", "cache_creation", "ephemeral_1h_input_tokens"]
KEYS += ["customTitle", "aiTitle", "x"]
NOISE = [b"\\", b'"', b"{", b"}", b"[", b"]", b",", b":", b"\r", b" ", b"\t", b"\n", b"-", b"0"]


def _string(rnd: random.Random) -> bytes:
    out = b"".join(
        rnd.choice(RAW) if rnd.random() < 0.05 else rnd.choice(PIECES).encode()
        for _ in range(rnd.randrange(0, 4))
    )
    return b'"' + out + b'"'


def _key(rnd: random.Random) -> bytes:
    name = rnd.choice(KEYS)
    if rnd.random() < 0.2:
        i = rnd.randrange(len(name))
        name = name[:i] + f"\\u{ord(name[i]):04x}" + name[i + 1 :]
    return b'"' + name.encode() + b'"'


def _value(rnd: random.Random, depth: int = 0) -> bytes:
    r = rnd.random()
    if r < 0.3:
        return rnd.choice(NUMBERS).encode()
    if r < 0.6:
        return _string(rnd)
    if r < 0.7 or depth > 3:
        return rnd.choice([b"null", b"true", b"false", b"{}", b"[]"])
    if r < 0.85:
        return b"[" + b",".join(_value(rnd, depth + 1) for _ in range(rnd.randrange(3))) + b"]"
    items = [_key(rnd) + b":" + _value(rnd, depth + 1) for _ in range(rnd.randrange(3))]
    return b"{" + b",".join(items) + b"}"


def mutate(line: bytes, rnd: random.Random) -> bytes:
    """1-3 mutations that keep the line valid JSON about half the time."""
    for _ in range(rnd.randrange(1, 4)):
        op = rnd.randrange(10)
        if op <= 2:  # a value after a key
            spots = [i for i in range(len(line) - 1) if line[i] == 0x3A]  # ':'
            if spots:
                i = rnd.choice(spots) + 1
                j = i
                depth = 0
                in_str = False
                while j < len(line):  # the end of the value at i (roughly)
                    c = line[j]
                    if in_str:
                        if c == 0x5C:
                            j += 1
                        elif c == 0x22:
                            in_str = False
                    elif c == 0x22:
                        in_str = True
                    elif c in (0x7B, 0x5B):
                        depth += 1
                    elif c in (0x7D, 0x5D):
                        if depth == 0:
                            break
                        depth -= 1
                    elif c == 0x2C and depth == 0:
                        break
                    j += 1
                line = line[:i] + _value(rnd) + line[j:]
        elif op <= 4:  # a key added (or duplicated) after a "{"
            spots = [i for i, c in enumerate(line) if c == 0x7B]
            if spots:
                i = rnd.choice(spots) + 1
                line = line[:i] + _key(rnd) + b":" + _value(rnd) + b"," + line[i:]
        elif op == 5:  # a key renamed
            spots = [i for i in range(len(line) - 1) if line[i : i + 2] == b'":']
            if spots:
                e = rnd.choice(spots) + 1
                s = line.rfind(b'"', 0, e - 1)
                if s != -1:
                    line = line[:s] + _key(rnd) + line[e:]
        elif op == 6:
            i = rnd.randrange(len(line) + 1)
            line = line[:i] + rnd.choice(NOISE + RAW) + line[i + rnd.randrange(3) :]
        elif op == 7:
            i = rnd.randrange(len(line) + 1)
            line = line[:i] + line[i + rnd.randrange(1, 40) :]
        elif op == 8:
            line = line[: rnd.randrange(len(line) + 1)]
        else:  # whitespace around the object
            line = rnd.choice([b"", b" ", b"\r", b"\xef\xbb\xbf"]) + line
            line += rnd.choice([b"", b" ", b"\r", b"\r\r", b"\t"])
    return line


def scan(buf: bytes, native: bool, block: int) -> Any:
    """Everything scan_lines yields for ``buf`` (whole lines in blocks of about ``block``)."""
    parser._native = False if native else None
    stats = LineStats()
    best: dict[str, list[Any]] = {}
    titles: list[tuple[str, str, str]] = []
    strings: dict[str, str] = {}
    s = 0
    while s < len(buf):
        e = buf.find(b"\n", min(s + block, len(buf) - 1)) if block else -1
        e = len(buf) if e == -1 else e + 1
        scan_lines(bytearray(buf), s, e, 7, "/f.jsonl", stats, best, titles, strings)
        s = e
    return list(best.items()), titles, stats.malformed, stats.invalid_utf8, stats.bad


def seeds_of(dirs: list[str], limit: int = 3000) -> list[bytes]:
    """Usage and title lines first, then others, from the transcripts under ``dirs``."""
    out = list(BUILTIN)
    for d in dirs:
        lines: list[bytes] = []
        for p in sorted(Path(d).rglob("*.jsonl"))[:400]:
            with open(p, "rb") as fh:
                lines += [ln.rstrip(b"\n") for ln in fh if len(ln) < 20000]
        lines.sort(key=lambda ln: b'"usage"' not in ln and b"-title" not in ln)
        out += lines[: limit // 2] + lines[:: max(1, len(lines) // (limit // 2))]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", help="directories of *.jsonl seed transcripts")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="", help="where to write differing buffers")
    args = ap.parse_args(argv)
    if parser.native_scanner() is None:
        print("the native scanner is not built (or TOKMON_NO_NATIVE is set)", file=sys.stderr)
        return 2
    rnd = random.Random(args.seed)
    seeds = seeds_of(args.dirs)
    deadline = time.monotonic() + args.seconds
    buffers = lines = diffs = 0
    while time.monotonic() < deadline:
        picked = [mutate(rnd.choice(seeds), rnd) for _ in range(rnd.randrange(1, 12))]
        picked += [rnd.choice(seeds) for _ in range(rnd.randrange(3))]
        rnd.shuffle(picked)
        sep = rnd.choice([b"\n", b"\r\n"])
        buf = sep.join(picked) + rnd.choice([sep, b""])
        block = rnd.choice([0, 0, 64, 1024])
        buffers += 1
        lines += buf.count(b"\n") + 1
        if scan(buf, True, block) == scan(buf, False, block):
            continue
        diffs += 1
        line = next(
            (
                ln
                for ln in buf.split(b"\n")
                if scan(ln + b"\n", True, 0) != scan(ln + b"\n", False, 0)
            ),
            b"",
        )
        print(f"DIFF #{diffs}: {line[:300]!r}", flush=True)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            Path(args.out, f"diff-{diffs}.jsonl").write_bytes(buf)
            Path(args.out, f"diff-{diffs}-line.jsonl").write_bytes(line + b"\n")
    print(f"{buffers} buffers, {lines} lines, {len(seeds)} seeds, {diffs} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
