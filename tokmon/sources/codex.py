"""OpenAI Codex CLI: ``${CODEX_HOME:-~/.codex}/{sessions,archived_sessions}/**/rollout-*.jsonl``.

Usage is ``event_msg`` / ``token_count``: ``info.last_token_usage`` (this turn) and
``info.total_token_usage`` (running total, which can reset inside one file). A turn counts
when the running total changed since the previous ``token_count`` of the same file (Codex
re-emits unchanged totals); its figures are ``last_token_usage`` (or the difference of running
totals when an old log has no ``last_token_usage``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tokmon.sources.base import (
    AgentUsage,
    FileState,
    ReadResult,
    Source,
    as_int,
    json_lines,
    parse_ts,
    read_new_lines,
    sorted_files,
)

FALLBACK_MODEL = "gpt-5"  # what logs without turn_context ran (Codex's default then)
_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
    "total_tokens",
)


_MARKERS = (b"token_count", b"turn_context", b"session_meta", b"review_mode")


def _wanted(line: bytes) -> bool:
    """Lines that can matter: usage, model/cwd, session metadata, review boundaries."""
    return any(m in line for m in _MARKERS)


def _usage(obj: Any) -> tuple[int, ...] | None:
    if not isinstance(obj, dict):
        return None
    return tuple(as_int(obj.get(f)) for f in _FIELDS)


class CodexSource(Source):
    agent = "codex"
    label = "OpenAI Codex CLI"
    env_var = "CODEX_HOME"
    dedup_rule = (
        "key = the event's (running total, last-turn usage) pair, which a spawned or branched "
        "rollout replays, a review's parent copies and an archived copy repeats. Copies are "
        "ranked: +1 the parent's copy of a /review (the review's own rollout has the right "
        "model), +2 a file in archived_sessions/, +4 a thread_spawn subagent rollout (its "
        "first turns replay the parent). A ranked copy never counts when an unranked record "
        "has its key; two unranked records of one key count once when they come from the same "
        "file or lie within 2 s of each other (a copy with the original timestamps), and both "
        "otherwise (two unrelated sessions that happen to start with identical turns)."
    )
    file_last_wins = False
    SAME_CALL_SECONDS = 2.0

    def roots(self) -> list[Path]:
        dirs = self.env_dirs("CODEX_HOME") or [self.home() / ".codex"]
        return [d for d in dirs if (d / "sessions").is_dir() or (d / "archived_sessions").is_dir()]

    def files(self) -> list[Path]:
        out: list[Path] = []
        for root in self.roots():
            for sub in ("sessions", "archived_sessions"):
                out.extend(sorted_files(root / sub, ["**/*.jsonl"]))
        return out

    @staticmethod
    def rate_limits(states: Mapping[str, FileState]) -> dict[str, Any] | None:
        """Codex's official plan-limit utilisation last written to any rollout
        (``primary``/``secondary``: ``used_percent``, ``window_minutes``, ``resets_at``)."""
        best: dict[str, Any] | None = None
        for st in states.values():
            rl = st.ctx.get("rate_limits")
            if isinstance(rl, dict) and (
                best is None or str(rl.get("observedAt")) > str(best.get("observedAt"))
            ):
                best = rl
        return best

    def dedup(self, records: Iterable[AgentUsage]) -> list[AgentUsage]:
        groups: dict[str, list[AgentUsage]] = {}
        for r in records:
            groups.setdefault(r.key, []).append(r)
        out: list[AgentUsage] = []
        for group in groups.values():
            if len(group) == 1:
                out.append(group[0])
                continue
            group.sort(key=lambda r: (r.rank, r.ts, r.origin))
            kept: list[AgentUsage] = []
            for r in group:
                if kept and (
                    r.rank > 0
                    or any(
                        k.origin == r.origin or abs(k.ts - r.ts) <= self.SAME_CALL_SECONDS
                        for k in kept
                    )
                ):
                    continue
                kept.append(r)
            out.extend(kept)
        out.sort(key=lambda r: (r.ts, r.key))
        return out

    def _session_id(self, path: Path) -> tuple[str, bool]:
        """ccusage's session id: the path below sessions/ (or archived_sessions/), no suffix."""
        parts = path.parts
        for i in range(len(parts) - 1, -1, -1):
            if parts[i] in ("sessions", "archived_sessions"):
                rel = "/".join(parts[i + 1 :])
                return rel[: -len(".jsonl")] if rel.endswith(".jsonl") else rel, (
                    parts[i] == "archived_sessions"
                )
        return path.stem, False

    def read(self, path: Path, state: FileState | None) -> ReadResult:
        st = state if state is not None else FileState()
        nl = read_new_lines(path, st)
        lines, offset, reset = nl.lines, nl.offset, nl.reset
        if reset:
            st = FileState()
        ctx = dict(st.ctx)  # the caller's state stays as it was
        if "sid" not in ctx:
            sid, archived = self._session_id(path)
            ctx.update(sid=sid, archived=archived, model=None, prev=None, review=False, cwd="")
        records: list[AgentUsage] = []
        nbytes = offset - st.offset if not reset else offset
        for obj in json_lines(lines, path, _wanted):
            kind = obj.get("type")
            payload = obj.get("payload")
            if not isinstance(payload, dict):
                continue
            if kind == "session_meta":
                if "meta" in ctx:
                    continue  # a spawned rollout repeats its parent's session_meta
                ctx["meta"] = True
                if isinstance(payload.get("cwd"), str):
                    ctx["cwd"] = payload["cwd"]
                src = payload.get("source")
                sub = src.get("subagent") if isinstance(src, dict) else None
                if isinstance(sub, dict) and "thread_spawn" in sub:
                    ctx["spawned"] = True
                continue
            if kind == "turn_context":
                if isinstance(payload.get("model"), str) and payload["model"]:
                    ctx["model"] = payload["model"]
                if isinstance(payload.get("cwd"), str) and payload["cwd"]:
                    ctx["cwd"] = payload["cwd"]
                continue
            if kind != "event_msg":
                continue
            ptype = payload.get("type")
            if ptype == "entered_review_mode":
                # A review runs with its own running total; the parent's resumes afterwards.
                ctx["review"] = True
                ctx["pre_review"] = ctx.get("prev")
                ctx["prev"] = None
                continue
            if ptype == "exited_review_mode":
                ctx["review"] = False
                ctx["prev"] = ctx.pop("pre_review", None)
                continue
            if ptype != "token_count":
                continue
            rec = self._token_count(obj, payload, ctx, path)
            if rec is not None:
                records.append(rec)
        new = FileState(offset=offset, ctx=ctx, head=nl.head)
        return ReadResult(records, new, replace=reset, bytes_read=max(0, nbytes))

    def _token_count(
        self, obj: dict[str, Any], payload: dict[str, Any], ctx: dict[str, Any], path: Path
    ) -> AgentUsage | None:
        limits = payload.get("rate_limits")
        if isinstance(limits, dict):
            ctx["rate_limits"] = {"observedAt": obj.get("timestamp"), **limits}
        info = payload.get("info")
        if not isinstance(info, dict):
            return None
        total = _usage(info.get("total_token_usage"))
        last = _usage(info.get("last_token_usage"))
        prev = tuple(ctx["prev"]) if ctx.get("prev") is not None else None
        if total is not None:
            if prev is not None and total == prev:
                return None  # re-emitted: the running total did not move
            ctx["prev"] = list(total)
        if last is None:
            if total is None:
                return None
            if prev is None or any(t < p for t, p in zip(total, prev, strict=True)):
                last = total  # first event, or the running total reset
            else:
                last = tuple(t - p for t, p in zip(total, prev, strict=True))
        inp, cached, out, reasoning, _tot = last
        if inp == 0 and cached == 0 and out == 0 and reasoning == 0:
            return None
        ts = parse_ts(obj.get("timestamp"))
        if ts is None:
            return None
        model = payload.get("model") or info.get("model") or ctx.get("model") or FALLBACK_MODEL
        cached = min(cached, inp)
        key = f"codex:{total}:{last}" if total is not None else f"codex:{ctx['sid']}:{ts}:{last}"
        rank = (
            (1 if ctx.get("review") else 0)
            + (2 if ctx.get("archived") else 0)
            + (4 if ctx.get("spawned") else 0)
        )
        return AgentUsage(
            agent=self.agent,
            ts=ts,
            session_id=ctx["sid"],
            project=ctx.get("cwd") or "",
            model=str(model),
            input_tokens=inp - cached,
            output_tokens=out,
            cache_read_tokens=cached,
            cache_write_tokens=0,
            reasoning_tokens=reasoning,
            key=key,
            rank=rank,
            origin=str(path),
        )
