"""The lines the native scanner leaves to Python: read by ``parse_line`` while a process has
handed over at most ``parser.FALLBACK_BUDGET`` bytes (no msgspec import, no decoder built),
by the msgspec path past it, with the same rows, titles, counts and bad-line offsets either
way (docs/performance.md, tenth session). A line parse_line counts as bad that msgspec might
read otherwise (``1e400``: orjson rejects it, msgspec reads infinity) goes to the msgspec
path even within the budget (``parser._doubt``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_support import need_native
from test_native_scan import HOSTILE, _raw_usage, _scan, hostile_line
from test_parser import CASES, TITLE, USER, _by_parse_line, _good, usage_line

from tokmon.core import parser

# Lines of the kinds the native scanner hands to Python or once did, written by hand: titles
# (read natively since the seventeenth session), needed strings with non-ASCII bytes or
# escapes, escaped keys, malformed JSON, poison values, and the values orjson and msgspec
# read differently.
DOUBTFUL = [
    TITLE,
    b'{"type":"ai-title","sessionId":"s\\u00e9","aiTitle":"caf\xc3\xa9 \\u2705"}',
    b'{"type":"custom-title","sessionId":"s1","customTitle":"\xff"}',  # not UTF-8
    _raw_usage(cwd='"/home/jos\xc3\xa9"', sessionId='"s\\u0031"'),
    _raw_usage(message='{"id":"m\\u00e9","model":"claude-\\u00e9","usage":{"output_tokens":9}}'),
    _raw_usage(usage='{"output_tokens":5,"input_t\\u006fkens":7}'),  # an escaped key
    _raw_usage(**{"typ\\u0065": '"assistant"'}),
    _raw_usage(usage='{"output_tokens":1000000001}'),  # poison count
    _raw_usage(usage='{"output_tokens":-4}'),
    _raw_usage(costUSD="0.25"),  # a legacy cost: Python
    _raw_usage(costUSD="1e9"),  # poison cost
    _raw_usage(timestamp='"2201-01-01T00:00:00Z"'),  # poison stamp
    _raw_usage(timestamp='"2026-11-29T10:00:00+02:00"'),
    _raw_usage(sessionId='"\xff"'),  # a usage line that is not UTF-8
    _raw_usage()[:-40],  # cut short
    _raw_usage()[:-1] + b"," + _raw_usage()[1:],  # a line the next one was appended to
    b'{"type":"user","message":{"content":"x"}',
    b"not json at all",
    b'{"a":1e400}',  # orjson rejects, msgspec reads it: doubt
    b'{"a":-1e400,"b":"\xff"}',
    _raw_usage(x="1e400"),
    _raw_usage(costUSD="1e400"),
    b'{"a":NaN}',
    b'{"a":"\\ud800"}',
    ('{"a":' + "[" * 1100 + "]" * 1100 + "}").encode(),  # deeper than orjson reads
    b'{"a":' + b"7" * 5000 + b"}",  # more digits than Python's int() takes
    b'{"type":"custom-title","sessionId":"s2","customTitle":"t","n":1e400}',
]

LEGACY = _raw_usage(costUSD="0.25")  # a line the native scanner always hands to Python

# Lines plain parse_line counts as bad where msgspec does not (a number past a double's range
# that msgspec reads as infinity, skipped or not: a row): the fallback must not give
# parse_line's answer for them. (A ``costUSD`` of 1e400 is no such line: msgspec rejects
# it, being out of a float's range, and hands it to parse_line too.)
DIFFER = [b'{"usage":1e400}', b'{"type":"user","title":[-1E400]}', _raw_usage(x="1e400")]


def _spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of the fallback's two paths (calls of _scan_ref and _scan_py)."""
    calls = {"ref": 0, "py": 0}
    ref, py = parser._scan_ref, parser._scan_py

    def spy_ref(*a: Any) -> None:
        calls["ref"] += 1
        ref(*a)

    def spy_py(*a: Any) -> None:
        calls["py"] += 1
        py(*a)

    monkeypatch.setattr(parser, "_scan_ref", spy_ref)
    monkeypatch.setattr(parser, "_scan_py", spy_py)
    return calls


def _by_budget(buf: bytes, budget: int, block: int = 0) -> Any:
    """The native scan of ``buf`` with a fresh process budget of ``budget`` bytes."""
    parser.FALLBACK_BUDGET, parser._fallback_bytes = budget, 0
    return _scan(buf, True, block=block)


def _three(buf: bytes, block: int = 0) -> Any:
    """The native scan with the fallback by parse_line, by msgspec, and the Python scan:
    all equal."""
    ref = _by_budget(buf, 1 << 40, block)
    msg = _by_budget(buf, 0, block)
    py = _scan(buf, False, block=block)
    assert ref == msg == py
    return ref


@pytest.mark.parametrize("line", DOUBTFUL, ids=range(len(DOUBTFUL)))
def test_each_doubtful_line_alone_and_among_others(
    native_scanner: Any, monkeypatch: pytest.MonkeyPatch, line: bytes
) -> None:
    calls = _spy(monkeypatch)
    _three(line + b"\n")
    lines = [_good(1), line, USER, _good(2), line, TITLE, LEGACY, _good(1), line + b"\r"]
    _three(b"\n".join(lines) + b"\n")
    assert calls["ref"] > 0  # the budget's path ran (and, with no budget, msgspec's)


def test_all_together_in_blocks_and_both_line_ends(native_scanner: Any) -> None:
    lines = DOUBTFUL + [_good(n) for n in range(1, 6)] + [c[1] for c in CASES] + HOSTILE
    for sep in (b"\n", b"\r\n"):
        buf = sep.join(lines) + sep
        got = _three(buf)
        assert got[2] > 20 and got[5]  # malformed lines counted, offsets listed
        _three(buf, block=4096)
        _three(sep.join(lines[::-1]) + sep, block=1500)


def test_the_parser_cases_and_hostile_lines_one_by_one(native_scanner: Any) -> None:
    for line in [c[1] for c in CASES] + HOSTILE:
        _three(line + b"\n")


def test_a_doubt_takes_the_msgspec_path_not_parse_lines_answer(
    native_scanner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for line in DIFFER:
        assert parser._doubt(line)
        buf = b"\n".join([_good(1), line, _good(2)]) + b"\n"
        calls = _spy(monkeypatch)
        got = _by_budget(buf, 1 << 40)
        assert calls["ref"] == 1 and calls["py"] == 1  # the one line, taken back
        plain = _by_parse_line(buf, 0, 100)  # what parse_line alone says: another count
        assert (got[0], got[2], got[5]) != (list(plain[0].items()), plain[2], plain[4])
        assert got[2] == 0 and not got[5]  # not counted
        assert got == _scan(buf, False)
        monkeypatch.undo()


def test_no_doubt_about_lines_both_reject_or_both_read() -> None:
    sure = [
        _raw_usage()[:-40],  # cut: bad for all three
        b'{"type":"user"',
        b'{"a":tru}',
        b'{"a":"x\\q"}',
        b'{"a":1,}',
        b"{'a':1}",
        _raw_usage(usage='{"output_tokens":1000000001}'),  # poison: valid JSON
        _raw_usage(sessionId='"\xff"'),  # bad UTF-8 only
        b"  {}",  # not shaped {...}: parse_line on every path
        b"junk",
    ]
    for line in sure:
        assert not parser._doubt(line), line
    for line in DIFFER + [b'{"a":NaN}', b'{"a":"\\ud800"}', b'{"a":' + b"7" * 5000 + b"}"]:
        assert parser._doubt(line), line


def test_the_budget_is_per_process_and_switches_to_msgspec(
    native_scanner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy(monkeypatch)
    buf = b"\n".join([_good(1), LEGACY, TITLE, _good(2), b'{bad "usage"']) + b"\n"
    parser.FALLBACK_BUDGET, parser._fallback_bytes = 1 << 40, 0
    first = _scan(buf, True)
    handed = parser._fallback_bytes  # the legacy line and the bad one (not the title): two calls
    assert calls == {"ref": 2, "py": 0} and handed == len(LEGACY) + len(b'{bad "usage"') + 2
    parser.FALLBACK_BUDGET = 3 * handed
    for _ in range(6):  # the same lines again: twice within the budget, then past it
        assert _scan(buf, True) == first
    assert calls == {"ref": 6, "py": 8} and parser._fallback_bytes == 7 * handed


@settings(
    max_examples=int(os.environ.get("TOKMON_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(hostile_line(), min_size=1, max_size=6))
def test_generated_lines_agree_on_both_fallbacks(native_scanner: Any, lines: list[bytes]) -> None:
    _three(b"\n".join(lines) + b"\n")


# --- a cold run in a process of its own --------------------------------------------------------

_RUN = (
    "import json, sys\n"
    "from tokmon.core import parser\n"
    "budget = int(sys.argv[1])\n"
    "if budget >= 0:\n"
    "    parser.FALLBACK_BUDGET = budget\n"
    "from tokmon.__main__ import main\n"
    "main(['daily', '--json'])\n"
    "print(json.dumps({'msgspec': 'msgspec' in sys.modules, 'native': parser._native is not None,"
    " 'handed': parser._fallback_bytes}), file=sys.stderr)\n"
)


def _corpus(root: Path, extra: list[bytes], files: int = 3) -> None:
    """Transcripts of more than scan.SMALL_READ bytes (so the native scanner reads them),
    with ``extra`` lines among good ones."""
    for f in range(files):
        lines = [TITLE.replace(b"s1", b"s%d" % f)]
        for n in range(120):
            lines.append(
                usage_line(
                    sessionId=f"s{f}",
                    message={"id": f"m{f}_{n}", "content": [{"type": "text", "text": "x" * 600}]},
                    usage={"output_tokens": n + 1},
                    requestId=f"r{f}_{n}",
                    timestamp=f"2026-11-{10 + f}T10:{n % 60:02d}:00Z",
                )
            )
            if n % 40 == 7:
                lines += extra
        path = root / "projects" / f"p{f}" / f"s{f}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\n".join(lines) + b"\n")


def _cold(root: Path, home: Path, budget: int = -1, no_native: bool = False) -> tuple[Any, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKMON_")}
    env.update(CLAUDE_CONFIG_DIR=str(root), TOKMON_HOME=str(home), TZ="UTC", NO_COLOR="1")
    if no_native:
        env["TOKMON_NO_NATIVE"] = "1"
    r = subprocess.run(
        [sys.executable, "-c", _RUN, str(budget)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), json.loads(r.stderr.strip().splitlines()[-1])


Cold = Callable[..., tuple[Any, Any]]


@pytest.fixture
def cold(tmp_path: Path) -> Cold:
    need_native()
    homes = iter(range(100))

    def run(root: Path, budget: int = -1, no_native: bool = False) -> tuple[Any, Any]:
        return _cold(root, tmp_path / f"home{next(homes)}", budget, no_native)

    return run


def test_a_cold_run_with_a_few_bad_lines_does_not_import_msgspec(
    tmp_path: Path, cold: Cold
) -> None:
    root = tmp_path / "c"
    bad = [_raw_usage()[:-40], b"{broken", b'{"type":"user","x":"\xff"}', _raw_usage(costUSD="0.5")]
    _corpus(root, bad)
    report, facts = cold(root)
    assert facts["native"] and facts["handed"] > 0 and not facts["msgspec"]
    assert report["totals"]["outputTokens"] == 3 * sum(range(1, 121)) + 40  # + the costUSD line
    assert cold(root, no_native=True)[0] == report  # the Python scan (msgspec) agrees
    past, facts = cold(root, budget=0)  # past the budget: the msgspec decoder is built
    assert facts["msgspec"] and past == report


def test_a_cold_run_past_the_budget_uses_msgspec(tmp_path: Path, cold: Cold) -> None:
    root = tmp_path / "c"
    legacy = [_raw_usage(costUSD="0.5", requestId=f'"L{i}"') for i in range(300)]  # ~90 KB
    _corpus(root, legacy)
    report, facts = cold(root)
    assert facts["handed"] > parser.FALLBACK_BUDGET and facts["msgspec"]
    under, facts = cold(root, budget=1 << 40)
    assert not facts["msgspec"] and under == report
    assert cold(root, no_native=True)[0] == report


def test_a_doubtful_line_builds_the_decoder(tmp_path: Path, cold: Cold) -> None:
    root = tmp_path / "c"
    _corpus(root, [b'{"usage":1e400}'], files=1)
    report, facts = cold(root)
    assert facts["msgspec"] and facts["handed"] < parser.FALLBACK_BUDGET
    assert cold(root, no_native=True)[0] == report
