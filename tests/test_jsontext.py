"""tokmon.jsontext: the reports' JSON text without orjson, byte for byte orjson's."""

from __future__ import annotations

import dataclasses
import math
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokmon import jsontext

INDENT = orjson.OPT_INDENT_2


def _orjson(data: Any) -> str:
    return orjson.dumps(data, option=INDENT).decode()


def _ours(data: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """jsontext's own writer (orjson is imported in this process: hide it from the check)."""
    monkeypatch.delitem(sys.modules, "orjson")
    try:
        return jsontext.indented(data)
    finally:
        sys.modules["orjson"] = orjson


# What orjson writes, observed (orjson 3.x): positional notation down to 1e-5, the exponent
# without a leading zero below it, Python's repr elsewhere, null for NaN and infinities.
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-05, "0.00001"),
        (-1.5e-05, "-0.000015"),
        (5.4050631976537385e-05, "0.000054050631976537385"),
        (0.0001, "0.0001"),
        (1e-06, "1e-6"),
        (-3.91665733536887e-08, "-3.91665733536887e-8"),
        (1e-100, "1e-100"),
        (5e-324, "5e-324"),
        (0.1, "0.1"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (1234567890123456.8, "1234567890123456.8"),
        (1e16, "1e+16"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (math.nan, "null"),
        (math.inf, "null"),
        (-math.inf, "null"),
    ],
)
def test_numbers_as_orjson_writes_them(value: float, text: str) -> None:
    assert jsontext.number(value) == text
    assert orjson.dumps(value).decode() == text


def test_every_kind_of_double_matches_orjson() -> None:
    """Doubles from every bit pattern and every decimal exponent."""
    rng = random.Random(12)
    values = [
        struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(40000)
    ]
    values += [rng.uniform(-1, 1) * 10.0**e for e in range(-30, 30) for _ in range(300)]
    differ = [v for v in values if jsontext.number(v) != orjson.dumps(v).decode()]
    assert differ == []


_KEYS = st.text(st.characters(blacklist_categories=["Cs"]), max_size=6)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
)
_DOCS = st.recursive(
    _LEAVES,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_KEYS, kids, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_DOCS)
def test_documents_match_orjson(data: Any) -> None:
    saved = sys.modules.pop("orjson")
    try:
        ours = jsontext.indented(data)
    finally:
        sys.modules["orjson"] = saved
    assert ours == _orjson(data)


def test_control_characters_and_unicode_escape_as_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "".join(map(chr, range(0, 0x80))) + "\u2028\u2029\ufeff\U0001f600 é"
    doc = {text: [text, {"": ""}], "e": [], "o": {}}
    assert _ours(doc, monkeypatch) == _orjson(doc)


def test_what_it_does_not_write_is_orjson_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other types, non-str keys, integers past 64 bits and lone surrogates go to orjson:
    its text, or its error."""

    @dataclasses.dataclass
    class Row:
        n: int
        s: str

    assert _ours({"r": Row(1, "x"), "t": (1, 2)}, monkeypatch) == _orjson(
        {"r": Row(1, "x"), "t": [1, 2]}
    )
    for bad in ({1: "int key"}, [2**64], [-(2**63) - 1], ["\ud800"], {"\udfff": 1}):
        with pytest.raises(orjson.JSONEncodeError):
            _orjson(bad)
        with pytest.raises(orjson.JSONEncodeError):
            _ours(bad, monkeypatch)
    assert _ours([2**64 - 1, -(2**63)], monkeypatch) == _orjson([2**64 - 1, -(2**63)])


def test_a_cold_json_report_never_imports_orjson(tmp_path: Path, env: dict[str, str]) -> None:
    """A first ``tokmon daily --json`` (titles with accents and escapes, a truncated line, a
    truncated line with the next appended) and the warm one after it run without orjson,
    and the report is orjson's text of the same document."""
    root = tmp_path / "claude" / "projects" / "-home-u-p"
    root.mkdir(parents=True)
    usage = (
        '{"type":"assistant","timestamp":"2026-11-02T10:00:0%dZ","sessionId":"s1","cwd":"/p",'
        '"requestId":"r%d","message":{"id":"m%d","model":"claude-sonnet-4-5-20250929",'
        '"usage":{"input_tokens":7,"output_tokens":%d,"cache_read_input_tokens":9}}}'
    )
    lines = [usage % (i, i, i, 10 + i) for i in range(4)]
    lines += [
        '{"type":"ai-title","aiTitle":"Café menu ✓","sessionId":"s1"}',
        '{"type":"custom-title","sessionId":"s\\u0031","customTitle":"Mine\\t"}',
        lines[0][:90],
        lines[1][:70] + lines[2],
    ]
    (root / "s1.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = env | {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    probe = (
        "import sys\n"
        "from tokmon.__main__ import main\n"
        "sys.argv = ['tokmon', 'daily', '--json']\n"
        "code = main()\n"
        "sys.stderr.write('orjson imported: %s\\n' % ('orjson' in sys.modules))\n"
        "sys.exit(code)\n"
    )
    outs = []
    for run in ("cold", "warm"):
        out = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True,
            cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "orjson imported: False" in out.stderr, (run, out.stderr)
        assert out.stdout == _orjson(orjson.loads(out.stdout)) + "\n"
        outs.append(out)
    # the line cut and joined to the next is malformed, counted without orjson (the one cut
    # before its "usage" could count nothing: skipped unread)
    assert "skipped 1 malformed line" in outs[0].stderr
    assert outs[0].stdout == outs[1].stdout
    doc = orjson.loads(outs[0].stdout)
    assert sum(day["outputTokens"] for day in doc["daily"]) == 10 + 11 + 12 + 13
