"""Qwen Code: ``${QWEN_DATA_DIR:-~/.qwen}/projects/<project>/chats/*.jsonl`` and the legacy
``tmp/<hash>/chats/session-*.json`` documents.

JSONL assistant rows carry ``usageMetadata{promptTokenCount, candidatesTokenCount,
thoughtsTokenCount, cachedContentTokenCount, totalTokenCount}``. The prompt count *includes*
the cached count and ``totalTokenCount = prompt + candidates`` (the thoughts are part of the
candidates), so: input = prompt - cached, cache read = cached, output = candidates. Legacy
documents use Gemini CLI's message format (``type: "qwen"``).
"""

from __future__ import annotations

from pathlib import Path

from tokmon.sources.base import (
    AgentUsage,
    FileState,
    ReadResult,
    as_int,
    json_lines,
    parse_ts,
    read_new_lines,
    sorted_files,
)
from tokmon.sources.gemini import GeminiSource


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
        st = state if state is not None else FileState()
        nl = read_new_lines(path, st)
        lines, offset, reset = nl.lines, nl.offset, nl.reset
        if reset:
            st = FileState()
        ctx = dict(st.ctx)  # the caller's state stays as it was
        ctx.setdefault("n", 0)
        folder = path.parent.parent.name
        records: list[AgentUsage] = []
        for obj in json_lines(lines, path):
            ctx["n"] += 1
            um = obj.get("usageMetadata")
            if obj.get("type") != "assistant" or not isinstance(um, dict):
                continue
            prompt = as_int(um.get("promptTokenCount"))
            cand = as_int(um.get("candidatesTokenCount"))
            cached = min(as_int(um.get("cachedContentTokenCount")), prompt)
            thoughts = as_int(um.get("thoughtsTokenCount"))
            if prompt == 0 and cand == 0 and thoughts == 0:
                continue
            ts = parse_ts(obj.get("timestamp"))
            if ts is None:
                continue
            sid = str(obj.get("sessionId") or path.stem)
            uid = obj.get("uuid")
            key = f"qwen:{sid}:{uid}" if isinstance(uid, str) and uid else f"qwen:{path}:{ctx['n']}"
            model = obj.get("model") if isinstance(obj.get("model"), str) else "unknown"
            records.append(
                AgentUsage(
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
            )
        nbytes = offset - (0 if reset else st.offset)
        return ReadResult(
            records,
            FileState(offset=offset, ctx=ctx, head=nl.head),
            replace=reset,
            bytes_read=max(0, nbytes),
        )
