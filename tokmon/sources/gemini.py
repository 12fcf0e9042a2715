"""Gemini CLI: ``${GEMINI_DATA_DIR:-~/.gemini/tmp}/<project>/chats/session-*.jsonl`` (and
the legacy one-document ``session-*.json``).

Message records ``{id, timestamp, type: "gemini", model, tokens{input, output, cached,
thoughts, tool, total}}``; ``input`` includes ``cached``; ``thoughts`` are billed as output.
A message is re-appended with the same id as it updates: the last copy wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
    read_new_lines,
    sorted_files,
)


def gemini_tokens(tokens: Any) -> tuple[int, int, int, int] | None:
    """``tokens{input, output, cached, thoughts, tool, total}`` -> (input without cache,
    output including thoughts, cache read, thoughts), or None when there is nothing.

    ``input`` normally includes ``cached`` (``total = input + output + thoughts + tool``);
    when ``total`` says otherwise the input is taken as already net of the cache. ``tool``
    tokens are prompt tokens of tool use and count as input."""
    if not isinstance(tokens, dict):
        return None
    inp = as_int(tokens.get("input", tokens.get("prompt")))
    out = as_int(tokens.get("output", tokens.get("candidates")))
    cached = as_int(tokens.get("cached"))
    thoughts = as_int(tokens.get("thoughts", tokens.get("reasoning")))
    tool = as_int(tokens.get("tool"))
    total = tokens.get("total")
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
        t = gemini_tokens(msg.get("tokens"))
        if t is None:
            return None
        model = msg.get("model") or model
        if not isinstance(model, str) or not model.strip():
            return None
        ts = parse_ts(msg.get("timestamp")) or fallback_ts
        if ts is None:
            return None
        mid = msg.get("id")
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
        st = state if state is not None else FileState()
        nl = read_new_lines(path, st)
        lines, offset, reset = nl.lines, nl.offset, nl.reset
        if reset:
            st = FileState()
        ctx = dict(st.ctx)  # the caller's state stays as it was
        ctx.setdefault("sid", path.stem)
        ctx.setdefault("model", None)
        ctx.setdefault("n", 0)
        project = self._project(path)
        records: list[AgentUsage] = []
        for obj in json_lines(lines, path):
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
        nbytes = offset - (0 if reset else st.offset)
        return ReadResult(
            records,
            FileState(offset=offset, ctx=ctx, head=nl.head),
            replace=reset,
            bytes_read=max(0, nbytes),
        )
