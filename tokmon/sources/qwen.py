"""Qwen Code: ``${QWEN_DATA_DIR:-~/.qwen}/projects/<project>/chats/*.jsonl`` and the legacy
``tmp/<hash>/chats/session-*.json`` documents.

JSONL assistant rows carry ``usageMetadata{promptTokenCount, candidatesTokenCount,
thoughtsTokenCount, cachedContentTokenCount, totalTokenCount}``. The prompt count *includes*
the cached count and ``totalTokenCount = prompt + candidates`` (the thoughts are part of the
candidates), so: input = prompt - cached, cache read = cached, output = candidates. Legacy
documents use Gemini CLI's message format (``type: "qwen"``).

Chats are read with the typed fast path of :mod:`tokmon.sources.fastjson`; a line it does not
take follows the reference rules (``json_lines`` and :meth:`QwenSource._row`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokmon import lazylog
from tokmon.sources.base import (
    AgentUsage,
    FileState,
    ReadResult,
    as_int,
    json_lines,
    parse_ts,
    resume,
    resumed,
    sorted_files,
)
from tokmon.sources.fastjson import decode_errors, fast_ok, line_spans, reference_line
from tokmon.sources.gemini import GeminiSource

log = lazylog.getLogger("tokmon.sources")
_COUNTS: tuple[str, ...] = ("promptTokenCount", "candidatesTokenCount")
_COUNTS += ("cachedContentTokenCount", "thoughtsTokenCount")
_decode: Any = None


def _line_decoder() -> Any:
    """msgspec decoder of a chat row into the fields the reader uses: strings, integer counts
    or null (any other type fails the decode; absent is null, which the reference does not
    tell apart)."""
    global _decode
    if _decode is None:
        import msgspec

        meta = msgspec.defstruct("QwenUsage", [(f, int | None, None) for f in _COUNTS], gc=False)
        text = str | None
        row = msgspec.defstruct(
            "QwenRow",
            [
                ("type", text, None),
                ("usageMetadata", meta | None, None),
                ("timestamp", text, None),
                ("sessionId", text, None),
                ("uuid", text, None),
                ("model", text, None),
            ],
            gc=False,
        )
        _decode = msgspec.json.Decoder(row).decode
    return _decode


class QwenSource(GeminiSource):
    agent = "qwen"
    label = "Qwen Code"
    env_var = "QWEN_DATA_DIR"
    message_type = "qwen"
    dedup_rule = (
        "key = (sessionId, record uuid) for chats, (sessionId, message id) for legacy "
        "documents; a later copy of a key in the same file replaces the earlier one."
    )

    def roots(self) -> list[Path]:
        dirs = self.env_dirs("QWEN_DATA_DIR") or [self.home() / ".qwen"]
        return [d for d in dirs if (d / "projects").is_dir() or (d / "tmp").is_dir()]

    def files(self) -> list[Path]:
        out: list[Path] = []
        for root in self.roots():
            out.extend(sorted_files(root / "projects", ["*/chats/*.jsonl"]))
            out.extend(sorted_files(root / "tmp", ["*/chats/*.json"]))
        return out

    def _read_jsonl(self, path: Path, state: FileState | None) -> ReadResult:
        nd, ctx = resume(path, state)
        ctx.setdefault("n", 0)
        folder = path.parent.parent.name
        records: list[AgentUsage] = []
        if nd.data and fast_ok(nd.data):
            self._scan_rows(nd.data, ctx, folder, path, records)
        else:
            for obj in json_lines(nd.data.splitlines(), path):
                r = self._obj(obj, ctx, folder, path)
                if r is not None:
                    records.append(r)
        return resumed(records, nd, ctx, state)

    def _scan_rows(
        self, data: bytes, ctx: dict[str, Any], folder: str, path: Path, records: list[AgentUsage]
    ) -> None:
        """The reference rules on every row of ``data`` (``fast_ok``), decoding only the
        fields they read; a row the typed decode rejects takes the reference rules."""
        decode = _decode or _line_decoder()
        errors = decode_errors()
        view = memoryview(data)
        bad = 0
        for s, e in line_spans(data):
            try:
                m = decode(view[s:e])
            except errors:
                obj, is_bad = reference_line(data[s:e])
                bad += is_bad
                r = None if obj is None else self._obj(obj, ctx, folder, path)
                if r is not None:
                    records.append(r)
                continue
            ctx["n"] += 1
            um = m.usageMetadata
            if m.type != "assistant" or um is None:
                continue
            counts = [
                v if v is not None and v > 0 else 0
                for v in (
                    um.promptTokenCount,
                    um.candidatesTokenCount,
                    um.cachedContentTokenCount,
                    um.thoughtsTokenCount,
                )
            ]
            r = self._row(counts, m.timestamp, m.sessionId, m.uuid, m.model, ctx["n"], folder, path)
            if r is not None:
                records.append(r)
        if bad:
            log.warning("%s: skipped %d line(s) that are not JSON", path, bad)

    def _obj(
        self, obj: dict[str, Any], ctx: dict[str, Any], folder: str, path: Path
    ) -> AgentUsage | None:
        """The reference rules for one decoded row."""
        ctx["n"] += 1
        um = obj.get("usageMetadata")
        if obj.get("type") != "assistant" or not isinstance(um, dict):
            return None
        return self._row(
            [as_int(um.get(f)) for f in _COUNTS],
            obj.get("timestamp"),
            obj.get("sessionId"),
            obj.get("uuid"),
            obj.get("model"),
            ctx["n"],
            folder,
            path,
        )

    def _row(
        self,
        counts: list[int],
        stamp: Any,
        sid_field: Any,
        uid: Any,
        model_field: Any,
        n: int,
        folder: str,
        path: Path,
    ) -> AgentUsage | None:
        """The record of an assistant row (its prompt, candidates, cached and thoughts
        counts, ``timestamp``, ``sessionId``, ``uuid``, ``model``), or None."""
        prompt, cand, cached, thoughts = counts
        cached = min(cached, prompt)
        if prompt == 0 and cand == 0 and thoughts == 0:
            return None
        ts = parse_ts(stamp)
        if ts is None:
            return None
        sid = str(sid_field or path.stem)
        key = f"qwen:{sid}:{uid}" if isinstance(uid, str) and uid else f"qwen:{path}:{n}"
        model = model_field if isinstance(model_field, str) else "unknown"
        return AgentUsage(
            "qwen",
            ts,
            sid,
            folder,
            model or "unknown",
            prompt - cached,
            cand,
            cached,
            0,
            min(thoughts, cand),
            key,
            origin=str(path),
        )
