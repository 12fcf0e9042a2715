"""Gemini CLI: ``${GEMINI_DATA_DIR:-~/.gemini/tmp}/<project>/chats/session-*.jsonl`` (and
the legacy one-document ``session-*.json``).

Message records ``{id, timestamp, type: "gemini", model, tokens{input, output, cached,
thoughts, tool, total}}``; ``input`` includes ``cached``; ``thoughts`` are billed as output.
A message is re-appended with the same id as it updates: the last copy wins.

Chats are read with the typed fast path of :mod:`tokmon.sources.fastjson` (a message line
carries its whole content, tool results included, but only a few fields are decoded); a line
it does not take follows the reference rules (``json_lines`` and :meth:`GeminiSource._line`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokmon import lazylog
from tokmon.sources.base import (
    AgentUsage,
    FileState,
    ReadResult,
    Source,
    as_int,
    file_sig,
    json_lines,
    parse_ts,
    read_json_document,
    resume,
    resumed,
    sorted_files,
)
from tokmon.sources.fastjson import decode_errors, fast_ok, line_spans, reference_line

log = lazylog.getLogger("tokmon.sources")

_decode: Any = None
_UNSET: Any = None  # msgspec.UNSET, set with the decoder


def _line_decoder() -> Any:
    """msgspec decoder of a chat line into the fields the reader uses: strings, integer
    counts or null (any other type fails the decode). Absent is null where the reference
    does not tell them apart; ``input``, ``output`` and ``thoughts`` are UNSET when absent
    (the reference then reads ``prompt``, ``candidates``, ``reasoning``)."""
    global _decode, _UNSET
    if _decode is None:
        import msgspec

        _UNSET = msgspec.UNSET
        count = int | None
        either = int | None | msgspec.UnsetType
        tokens = msgspec.defstruct(
            "GeminiTokens",
            [
                ("input", either, _UNSET),
                ("prompt", count, None),
                ("output", either, _UNSET),
                ("candidates", count, None),
                ("cached", count, None),
                ("thoughts", either, _UNSET),
                ("reasoning", count, None),
                ("tool", count, None),
                ("total", count, None),
            ],
            gc=False,
        )
        text = str | None
        line = msgspec.defstruct(
            "GeminiLine",
            [
                ("sessionId", text, None),
                ("type", text, None),
                ("model", text, None),
                ("timestamp", text, None),
                ("id", text, None),
                ("tokens", tokens | None, None),
            ],
            gc=False,
        )
        _decode = msgspec.json.Decoder(line).decode
    return _decode


def _n(v: int | None) -> int:
    """``as_int`` of a typed count."""
    return v if v is not None and v > 0 else 0


def _typed_tokens(t: Any) -> tuple[int, int, int, int] | None:
    """:func:`gemini_tokens` of a typed ``tokens`` struct (or None)."""
    if t is None:
        return None
    unset = _UNSET
    return _net(
        _n(t.prompt if t.input is unset else t.input),
        _n(t.candidates if t.output is unset else t.output),
        _n(t.cached),
        _n(t.reasoning if t.thoughts is unset else t.thoughts),
        _n(t.tool),
        t.total,
    )


def gemini_tokens(tokens: Any) -> tuple[int, int, int, int] | None:
    """``tokens{input, output, cached, thoughts, tool, total}`` -> (input without cache,
    output including thoughts, cache read, thoughts), or None when there is nothing.

    ``input`` normally includes ``cached`` (``total = input + output + thoughts + tool``);
    when ``total`` says otherwise the input is taken as already net of the cache. ``tool``
    tokens are prompt tokens of tool use and count as input."""
    if not isinstance(tokens, dict):
        return None
    return _net(
        as_int(tokens.get("input", tokens.get("prompt"))),
        as_int(tokens.get("output", tokens.get("candidates"))),
        as_int(tokens.get("cached")),
        as_int(tokens.get("thoughts", tokens.get("reasoning"))),
        as_int(tokens.get("tool")),
        tokens.get("total"),
    )


def _net(
    inp: int, out: int, cached: int, thoughts: int, tool: int, total: Any
) -> tuple[int, int, int, int] | None:
    if cached and not (
        isinstance(total, (int, float)) and total == inp + out + thoughts + tool + cached
    ):
        cached = min(cached, inp)
        inp -= cached
    if inp == 0 and out == 0 and cached == 0 and thoughts == 0 and tool == 0:
        return None
    return inp + tool, out + thoughts, cached, thoughts


class GeminiSource(Source):
    agent = "gemini"
    label = "Gemini CLI"
    env_var = "GEMINI_DATA_DIR"
    message_type = "gemini"
    dedup_rule = (
        "key = (sessionId, message id): a message re-appended in the same file replaces the "
        "earlier copy (last wins), and the same session kept in two project folders (old "
        "hash-named and new project-named) counts once, with its most complete copy."
    )

    def dedup(self, records: Iterable[AgentUsage]) -> list[AgentUsage]:
        """Across files a message keeps its most complete copy (most tokens: a message's later
        version never has fewer), then the earliest file name."""
        best: dict[str, AgentUsage] = {}
        for r in records:
            cur = best.get(r.key)
            if cur is None or (-r.total_tokens, r.origin) < (-cur.total_tokens, cur.origin):
                best[r.key] = r
        return sorted(best.values(), key=lambda r: (r.ts, r.key))

    def roots(self) -> list[Path]:
        dirs = self.env_dirs("GEMINI_DATA_DIR")
        if dirs is None:
            dirs = [self.home() / ".gemini" / "tmp"]
        return [d for d in dirs if d.is_dir()]

    def files(self) -> list[Path]:
        out: list[Path] = []
        for root in self.roots():
            out.extend(sorted_files(root, ["**/chats/**/*.jsonl", "**/chats/**/*.json"]))
        return out

    def read(self, path: Path, state: FileState | None) -> ReadResult:
        if path.suffix == ".json":
            return self._read_document(path, state)
        return self._read_jsonl(path, state)

    def _record(
        self,
        msg: dict[str, Any],
        sid: str,
        project: str,
        model: str | None,
        fallback_ts: float | None,
        path: Path,
        n: int,
    ) -> AgentUsage | None:
        if msg.get("type") != self.message_type:
            return None
        return self._usage(
            gemini_tokens(msg.get("tokens")),
            msg.get("model"),
            msg.get("timestamp"),
            msg.get("id"),
            sid,
            project,
            model,
            fallback_ts,
            path,
            n,
        )

    def _usage(
        self,
        t: tuple[int, int, int, int] | None,
        msg_model: Any,
        stamp: Any,
        mid: Any,
        sid: str,
        project: str,
        model: str | None,
        fallback_ts: float | None,
        path: Path,
        n: int,
    ) -> AgentUsage | None:
        """The record of a message of this agent's type (its tokens ``t``, its ``model``,
        ``timestamp`` and ``id`` fields), or None."""
        if t is None:
            return None
        model = msg_model or model
        if not isinstance(model, str) or not model.strip():
            return None
        ts = parse_ts(stamp) or fallback_ts
        if ts is None:
            return None
        key = (
            f"{self.agent}:{sid}:{mid}"
            if isinstance(mid, (str, int))
            else (f"{self.agent}:{path}:{n}")
        )
        inp, out, cached, thoughts = t
        return AgentUsage(
            self.agent,
            ts,
            sid,
            project,
            model,
            inp,
            out,
            cached,
            0,
            thoughts,
            key,
            origin=str(path),
        )

    def _project(self, path: Path) -> str:
        """The project folder below ``tmp/`` (a hash or the project's name)."""
        parts = path.parts
        if "chats" in parts:
            i = len(parts) - 1 - parts[::-1].index("chats")
            if i > 0:
                return parts[i - 1]
        return path.parent.name

    def _read_document(self, path: Path, state: FileState | None) -> ReadResult:
        sig = file_sig(path)
        if sig is None or (state is not None and state.sig == sig):
            return ReadResult([], state or FileState())
        doc = read_json_document(path)
        new = FileState(sig=sig)
        if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
            return ReadResult([], new, replace=True, bytes_read=sig[0])
        sid = str(doc.get("sessionId") or path.stem)
        start = parse_ts(doc.get("startTime")) or parse_ts(doc.get("lastUpdated"))
        project = self._project(path)
        records: list[AgentUsage] = []
        for n, msg in enumerate(doc["messages"]):
            if isinstance(msg, dict):
                r = self._record(msg, sid, project, None, start, path, n)
                if r is not None:
                    records.append(r)
        return ReadResult(records, new, replace=True, bytes_read=sig[0])

    def _read_jsonl(self, path: Path, state: FileState | None) -> ReadResult:
        nd, ctx = resume(path, state)
        ctx.setdefault("sid", path.stem)
        ctx.setdefault("model", None)
        ctx.setdefault("n", 0)
        project = self._project(path)
        records: list[AgentUsage] = []
        if nd.data and fast_ok(nd.data):
            self._scan_fast(nd.data, ctx, project, path, records)
        else:
            for obj in json_lines(nd.data.splitlines(), path):
                self._line(obj, ctx, project, path, records)
        return resumed(records, nd, ctx, state)

    def _line(
        self,
        obj: dict[str, Any],
        ctx: dict[str, Any],
        project: str,
        path: Path,
        records: list[AgentUsage],
    ) -> None:
        """The reference rules for one decoded chat line."""
        ctx["n"] += 1
        sid = obj.get("sessionId")
        if isinstance(sid, str) and sid:
            ctx["sid"] = sid
        if isinstance(obj.get("model"), str) and obj["model"]:
            ctx["model"] = obj["model"]
        # "$rewindTo" hides later messages from the conversation, but their tokens were
        # billed: they stay counted (see docs/agents/gemini.md).
        r = self._record(obj, ctx["sid"], project, ctx["model"], None, path, ctx["n"])
        if r is not None:
            records.append(r)

    def _scan_fast(
        self,
        data: bytes,
        ctx: dict[str, Any],
        project: str,
        path: Path,
        records: list[AgentUsage],
    ) -> None:
        """:meth:`_line` on every line of ``data`` (``fast_ok``), decoding only the fields it
        reads; a line the typed decode rejects takes the reference rules."""
        decode = _decode or _line_decoder()
        errors = decode_errors()
        view = memoryview(data)
        wanted = self.message_type
        bad = 0
        for s, e in line_spans(data):
            try:
                m = decode(view[s:e])
            except errors:
                obj, is_bad = reference_line(data[s:e])
                bad += is_bad
                if obj is not None:
                    self._line(obj, ctx, project, path, records)
                continue
            ctx["n"] += 1
            sid = m.sessionId
            if sid:  # a non-empty string (UNSET and None are false)
                ctx["sid"] = sid
            if m.model:
                ctx["model"] = m.model
            if m.type != wanted:
                continue
            r = self._usage(
                _typed_tokens(m.tokens),
                m.model,
                m.timestamp,
                m.id,
                ctx["sid"],
                project,
                ctx["model"],
                None,
                path,
                ctx["n"],
            )
            if r is not None:
                records.append(r)
        if bad:
            log.warning("%s: skipped %d line(s) that are not JSON", path, bad)
