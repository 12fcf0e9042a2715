"""The Codex, Gemini and Qwen readers' typed fast path gives what the reference rules give.

Each file is read twice: as the readers do (msgspec, typed, whole buffer) and with the fast
path switched off (``fast_ok`` false: ``bytes.splitlines`` + stdlib ``json`` + the reference
rules). Records, file states and byte counts must be equal, line for line, on edge cases the
typed decode could get wrong, and on the real logs when TOKMON_AGENTS_CORPUS is set. A few
outcomes are also checked against hand-computed values, so the test fails when both ways go
wrong together."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import need_agents_corpus

import tokmon.sources.codex as codex_mod
import tokmon.sources.fastjson as fastjson
import tokmon.sources.gemini as gemini_mod
import tokmon.sources.qwen as qwen_mod
from tokmon.sources.base import FileState, ReadResult, Source
from tokmon.sources.codex import CodexSource
from tokmon.sources.fastjson import fast_ok
from tokmon.sources.gemini import GeminiSource
from tokmon.sources.qwen import QwenSource

T = "2026-03-01T10:00:"


def dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Spy:
    """Counts the lines that took the reference rules inside the fast path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = fastjson.reference_line

        def spy(raw: bytes) -> tuple[dict[str, Any] | None, bool]:
            self.calls += 1
            return real(raw)

        for mod in (codex_mod, gemini_mod, qwen_mod):
            monkeypatch.setattr(mod, "reference_line", spy)


def reads(src: Source, path: Path, cuts: list[int]) -> Iterator[ReadResult]:
    """Read ``path`` as it grows: its content is written up to each cut in turn."""
    data = path.read_bytes()
    state: FileState | None = None
    for cut in [*cuts, len(data)]:
        path.write_bytes(data[:cut])
        res = src.read(path, state)
        state = res.state
        yield res


def both(
    monkeypatch: pytest.MonkeyPatch,
    src: Source,
    path: Path,
    cuts: list[int] | None = None,
    some: bool = True,
) -> tuple[list[ReadResult], int]:
    """(the fast path's reads, its reference-rule lines); asserts the reference path reads
    the same records, states and byte counts."""
    spy = Spy(monkeypatch)
    data = path.read_bytes()
    fast = list(reads(src, path, cuts or []))
    calls = spy.calls
    path.write_bytes(data)
    mod = (
        codex_mod
        if isinstance(src, CodexSource)
        else qwen_mod
        if isinstance(src, QwenSource)
        else gemini_mod
    )
    with monkeypatch.context() as m:
        m.setattr(mod, "fast_ok", lambda data: False)
        ref = list(reads(src, path, cuts or []))
    assert len(fast) == len(ref)
    for f, r in zip(fast, ref, strict=True):
        assert f.records == r.records
        assert f.state == r.state
        assert (f.replace, f.bytes_read) == (r.replace, r.bytes_read)
    assert not some or sum(len(f.records) for f in fast) > 0
    return fast, calls


# ------------------------------------------------------------------------------------ Codex


def usage(inp: int, cached: int, out: int, reas: int = 0) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_output_tokens": reas,
        "total_tokens": inp + out,
    }


def tc(sec: int, total: Any, last: Any, limits: Any = None, **extra: Any) -> dict[str, Any]:
    info = None if total is None and last is None else {"total_token_usage": total}
    if info is not None and last is not None:
        info["last_token_usage"] = last
    payload: dict[str, Any] = {"type": "token_count", "info": info, "rate_limits": limits}
    payload.update(extra)
    return {"timestamp": f"{T}{sec:02d}.000Z", "type": "event_msg", "payload": payload}


def limits(pct: float) -> dict[str, Any]:
    return {"primary": {"used_percent": pct, "window_minutes": 300, "resets_at": 1772362800}}


def codex_file(tmp_path: Path, lines: list[bytes]) -> tuple[CodexSource, Path]:
    home = tmp_path / "codex"
    path = home / "sessions" / "2026" / "03" / "01" / "rollout-2026-03-01T10-00-00-x.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return CodexSource({"CODEX_HOME": str(home), "HOME": str(tmp_path)}), path


def test_codex_fast_path_edge_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = usage(1000, 200, 50, 10)
    b = usage(2500, 1200, 80, 20)  # running totals
    c = usage(4000, 2000, 100, 20)
    d = usage(6000, 3000, 150, 30)
    e = usage(9000, 4000, 200, 30)
    meta = {
        "timestamp": f"{T}00.000Z",
        "type": "session_meta",
        "payload": {"id": "x", "cwd": "/work/p", "source": {"subagent": {"thread_spawn": {}}}},
    }
    nan_line = dump(tc(7, d, usage(2000, 1000, 50, 10), limits(31.0))).replace(
        b'"rate_limits"', b'"model_context_window":NaN,"rate_limits"'
    )
    lines = [
        dump(meta),
        dump({"timestamp": f"{T}01.000Z", "type": "turn_context", "payload": {"model": "m1"}}),
        # a marker written with an escape: the reference never decodes this line
        b'{"timestamp":"2026-03-01T10:00:02.000Z","type":"turn\\u005fcontext",'
        b'"payload":{"model":"escaped"}}',
        dump(tc(3, a, a, limits(10.0))),
        dump(tc(4, a, a, limits(11.5))),  # re-emitted: does not count
        dump({"type": "response_item", "payload": {"text": "token_count turn_context"}}),
        # a float count: the typed decode rejects it, the reference reads 1500
        dump(tc(5, b, usage(1500, 1000, 30, 10))).replace(
            b'"input_tokens":1500', b'"input_tokens":1500.0'
        ),
        dump(tc(6, c, None, limits(20.0))),  # no last_token_usage: the difference counts
        nan_line,  # NaN (stdlib only): reference rules, and it writes the last rate_limits
        b"\xef\xbb\xbf" + dump(tc(8, e, usage(3000, 1000, 50, 0))),  # a BOM: stdlib only
        b'{"type":"event_msg","payload":"token_count"}',
        b'{"type":"event_msg","payload":{"type":"token_count"',  # not JSON
        b"[1,2,3]",
        dump({"type": "event_msg", "payload": {"type": "entered_review_mode"}}),
        dump(tc(9, usage(100, 0, 10), usage(100, 0, 10), model="review-model")),
        dump({"type": "event_msg", "payload": {"type": "exited_review_mode"}}),
        # duplicate keys: the last one counts for both decoders
        b'{"type":"response_item",' + dump(tc(10, usage(9500, 4000, 260, 30), None))[1:],
        dump(tc(11, None, None, None)),
        dump(tc(12, None, usage(-5, 0, 7))),  # a negative count is 0
    ]
    src, path = codex_file(tmp_path, lines)
    cuts = [sum(len(x) + 1 for x in lines[:n]) for n in (4, 9)]
    fast, calls = both(monkeypatch, src, path, cuts)
    assert calls == 5  # the float, NaN, BOM and string-payload lines, the one not JSON
    recs = [r for res in fast for r in res.records]
    # hand-computed: a, b (last given), c - b, the NaN line's last, e's last, the review turn,
    # the duplicate-key line (total - e)
    assert [r.input_tokens + r.cache_read_tokens for r in recs] == [
        1000,
        1500,
        1500,
        2000,
        3000,
        100,
        500,
        0,
    ]
    assert all(r.model != "escaped" for r in recs)
    assert {r.model for r in recs} == {"m1", "review-model"}
    assert all(r.rank == 4 and r.project == "/work/p" for r in recs if r.model == "m1")
    rl = fast[-1].state.ctx["rate_limits"]
    assert rl["observedAt"] == f"{T}07.000Z" and rl["primary"]["used_percent"] == 31.0


@pytest.mark.parametrize("case", ["non-utf8", "long-int", "bare-cr", "surrogate"])
def test_codex_buffers_the_fast_path_leaves_to_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    a = usage(1000, 0, 50)
    bad = dump(tc(2, usage(3000, 0, 70), usage(2000, 0, 20), note="x"))
    digits = b"7" * (sys.get_int_max_str_digits() + 1)
    bad = {
        "non-utf8": bad.replace(b'"x"', b'"\xff"'),
        "long-int": bad.replace(b'"x"', digits),
        "bare-cr": bad.replace(b'"note"', b'\r"note"'),
        "surrogate": bad.replace(b'"x"', b'"\xed\xa0\x80"'),  # the stdlib accepts it
    }[case]
    assert not fast_ok(bad + b"\n")
    src, path = codex_file(
        tmp_path, [dump(tc(1, a, a)), bad, dump(tc(3, usage(4000, 0, 90), None))]
    )
    fast, _ = both(monkeypatch, src, path)
    got = [r.input_tokens for r in fast[0].records]
    # the middle turn counts only when the stdlib decodes its line
    assert got == ([1000, 2000, 1000] if case == "surrogate" else [1000, 3000])


# ----------------------------------------------------------------------------------- Gemini


def gmsg(mid: Any, sec: int, tokens: Any, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"id": mid, "timestamp": f"{T}{sec:02d}.000Z", "type": "gemini"}
    if mid is None:
        del m["id"]
    m["content"] = "some text " * 20
    m["tokens"] = tokens
    m.update(extra)
    return m


def gemini_file(tmp_path: Path, lines: list[bytes]) -> tuple[GeminiSource, Path]:
    root = tmp_path / "gemini" / "tmp"
    path = root / "proj" / "chats" / "session-2026-03-01T10-00-x.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return GeminiSource({"GEMINI_DATA_DIR": str(root), "HOME": str(tmp_path)}), path


def test_gemini_fast_path_edge_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = {"input": 1000, "output": 40, "cached": 600, "thoughts": 5, "tool": 0, "total": 1045}
    lines = [
        dump({"sessionId": "s1", "projectHash": "h", "startTime": f"{T}00.000Z"}),  # n=1
        dump({"type": "user", "model": "gemini-2.5-pro", "content": [{"text": "hi"}]}),  # 2
        dump(gmsg("m1", 1, full)),  # 3
        dump(gmsg("m1", 1, full)),  # 4: re-appended, the same key
        dump({"$set": {"lastUpdated": f"{T}01.000Z"}}),  # 5
        dump(gmsg(None, 2, {"input": None, "prompt": 500, "output": 10})),  # 6: input is null
        b'{"id":',  # not JSON: not counted in n
        b"[1,2]",  # not an object: not counted
        b"   ",
        dump(gmsg(None, 3, {"prompt": 300, "candidates": 20, "reasoning": 5})),  # 7
        dump(gmsg("m2", 4, {"input": 100.0, "output": 3})),  # 8: a float (reference rules)
        dump(gmsg(7, 5, {"input": 50, "output": 2})),  # 9: an integer id (reference rules)
        dump(gmsg("m3", 6, {"input": 80, "output": 1, "cached": 30, "total": True})),  # 10
        dump(gmsg("m4", 7, {"input": 60, "output": 1}, sessionId="")),  # 11
        dump(gmsg("m5", 8, None)),  # 12
        dump(gmsg("m6", 9, {"input": 70, "output": 2}, model="gemini-2.5-flash")),  # 13
        dump(gmsg("m8", 9, {"input": 9, "output": -3})),  # 14: a negative count is 0
        dump({"$rewindTo": "m5"}),  # 15
        b'{"id":"m7","type":"gemini","timestamp":"2026-03-01T10:00:10.000Z",'
        b'"tokens":{"input":5,"output":NaN}}',  # 16: NaN (reference rules: output 0)
    ]
    src, path = gemini_file(tmp_path, lines)
    cuts = [sum(len(x) + 1 for x in lines[:n]) for n in (3, 8)]
    fast, calls = both(monkeypatch, src, path, cuts)
    assert calls == 7  # the lines marked "reference rules", not JSON or not an object
    recs = {r.key: r for res in fast for r in res.records}
    p = str(path)
    assert set(recs) == {
        "gemini:s1:m1",
        f"gemini:{p}:6",
        f"gemini:{p}:7",
        "gemini:s1:m2",
        "gemini:s1:7",
        "gemini:s1:m3",
        "gemini:s1:m4",
        "gemini:s1:m6",
        "gemini:s1:m7",
        "gemini:s1:m8",
    }
    got = {k: (r.input_tokens, r.output_tokens, r.cache_read_tokens) for k, r in recs.items()}
    assert got["gemini:s1:m1"] == (400, 45, 600)
    assert got[f"gemini:{p}:6"] == (0, 10, 0)
    assert got[f"gemini:{p}:7"] == (300, 25, 0)
    assert got["gemini:s1:m2"] == (100, 3, 0)
    assert got["gemini:s1:m3"] == (50, 1, 30)
    assert got["gemini:s1:m7"] == (5, 0, 0)
    assert got["gemini:s1:m8"] == (9, 0, 0)
    assert recs["gemini:s1:m6"].model == "gemini-2.5-flash"
    assert recs["gemini:s1:m7"].model == "gemini-2.5-flash"  # the latest model seen
    assert recs["gemini:s1:m1"].model == "gemini-2.5-pro"
    assert fast[-1].state.ctx["n"] == 16


@pytest.mark.parametrize("case", ["non-utf8", "long-int", "bare-cr"])
def test_gemini_buffers_the_fast_path_leaves_to_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    bad = dump(gmsg("m2", 2, {"input": 20, "output": 2}, model="g", note="x"))
    bad = {
        "non-utf8": bad.replace(b'"x"', b'"\xc3"'),
        "long-int": bad.replace(b'"x"', b"9" * (sys.get_int_max_str_digits() + 1)),
        "bare-cr": bad.replace(b'"note"', b'\r"note"'),
    }[case]
    lines = [dump(gmsg("m1", 1, {"input": 10, "output": 1}, model="g")), bad]
    src, path = gemini_file(tmp_path, [*lines, dump(gmsg(None, 3, {"input": 5}, model="g"))])
    fast, _ = both(monkeypatch, src, path)
    keys = sorted(r.key for r in fast[0].records)
    # the bad line is not JSON for the stdlib: m2 is not counted and the next line is n=2
    assert keys == [f"gemini:{path}:2", "gemini:session-2026-03-01T10-00-x:m1"]


# ------------------------------------------------------------------------------------- Qwen


def qrow(uid: Any, sec: int, um: Any, **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"uuid": uid, "sessionId": "q1", "timestamp": f"{T}{sec:02d}.000Z"}
    r.update(type="assistant", model="coder-model", message={"parts": [{"text": "x " * 50}]})
    r["usageMetadata"] = um
    r.update(extra)
    return r


def test_qwen_fast_path_edge_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    um = {"promptTokenCount": 1000, "candidatesTokenCount": 50, "thoughtsTokenCount": 60}
    um["cachedContentTokenCount"] = 400
    lines = [
        dump({"uuid": "u0", "type": "user", "message": {"parts": [{"text": "hi"}]}}),  # n=1
        dump(qrow("u1", 1, um)),  # 2
        dump(qrow("u1", 1, um)),  # 3: the same key again
        b"not json",
        dump(qrow(None, 2, {"promptTokenCount": 10, "candidatesTokenCount": 2})),  # 4
        dump(qrow("u2", 3, {"promptTokenCount": 20.0, "candidatesTokenCount": 1})),  # 5 (ref)
        dump(qrow("u3", 4, {"promptTokenCount": 30}, model=7, sessionId=None)),  # 6 (ref)
        dump(qrow("u4", 5, None)),  # 7
        dump(qrow("", 6, {"promptTokenCount": 40, "cachedContentTokenCount": 90})),  # 8
        dump(qrow("u5", 7, {"promptTokenCount": 15, "candidatesTokenCount": -5})),  # 9
    ]
    root = tmp_path / "qwen"
    path = root / "projects" / "p" / "chats" / "q1.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    src = QwenSource({"QWEN_DATA_DIR": str(root), "HOME": str(tmp_path)})
    fast, calls = both(monkeypatch, src, path, [sum(len(x) + 1 for x in lines[:4])])
    assert calls == 3  # not JSON, a float count, a model that is a number
    recs = {r.key: r for res in fast for r in res.records}
    got = {
        k: (r.input_tokens, r.output_tokens, r.cache_read_tokens, r.reasoning_tokens)
        for k, r in recs.items()
    }
    assert got == {
        "qwen:q1:u1": (600, 50, 400, 50),
        f"qwen:{path}:4": (10, 2, 0, 0),
        "qwen:q1:u2": (20, 1, 0, 0),
        "qwen:q1:u3": (30, 0, 0, 0),
        f"qwen:{path}:8": (0, 0, 40, 0),
        "qwen:q1:u5": (15, 0, 0, 0),
    }
    assert recs["qwen:q1:u3"].model == "unknown" and recs["qwen:q1:u3"].session_id == "q1"


# -------------------------------------------------------------------------------- fast_ok


def test_fast_ok_flags_every_digit_run_the_stdlib_refuses() -> None:
    limit = sys.get_int_max_str_digits()
    if limit <= 0:
        pytest.skip("no integer string limit in this interpreter")
    filler = b'{"a":"12345 678","b":[1,22,333]}\n' * 4000
    assert fast_ok(filler)
    assert fast_ok(b"9" * limit + b"\n")  # the stdlib takes exactly `limit` digits
    for at in (0, 1, limit // 2 - 1, limit // 2, limit // 2 + 1, 3 * limit + 7):
        buf = filler[:at] + b"8" * (limit + 1) + filler[at:]
        assert not fast_ok(buf), at
        assert fast_ok(filler[:at] + b"8" * limit + b" " + filler[at:]), at
    assert fast_ok("ü €\n".encode() * 1000)
    assert not fast_ok(b'{"a":"\xe2\x82"}\n')


# ------------------------------------------------------------------------------- real logs


@pytest.mark.parametrize("agent", ["codex", "gemini", "qwen"])
def test_fast_path_equals_the_reference_on_the_real_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agent: str
) -> None:
    root = need_agents_corpus() / agent  # ../shared's corpus, or a visible skip (fails in CI)
    var = {"codex": "CODEX_HOME", "gemini": "GEMINI_DATA_DIR", "qwen": "QWEN_DATA_DIR"}[agent]
    kind = {"codex": CodexSource, "gemini": GeminiSource, "qwen": QwenSource}[agent]
    src: Source = kind({var: str(root), "HOME": str(tmp_path)})
    files = [p for p in src.files() if p.suffix == ".jsonl"]
    assert files
    mine = type(src)({var: str(tmp_path / agent), "HOME": str(tmp_path)})
    n = calls = 0
    for i, orig in enumerate(files):
        copy = tmp_path / agent / orig.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        data = orig.read_bytes()
        copy.write_bytes(data)
        assert fast_ok(data), orig
        half = data.rfind(b"\n", 0, len(data) // 2) + 1
        fast, c = both(monkeypatch, mine, copy, [half] if half and i % 2 else None, some=False)
        n += sum(len(f.records) for f in fast)
        calls += c
    assert n > 50
    assert calls == 0  # every line of the real logs takes the typed decode
