"""OpenAI Codex CLI: ``${CODEX_HOME:-~/.codex}/{sessions,archived_sessions}/**/rollout-*.jsonl``.

Usage is ``event_msg`` / ``token_count``: ``info.last_token_usage`` (this turn) and
``info.total_token_usage`` (running total, which can reset inside one file). A turn counts
when the running total changed since the previous ``token_count`` of the same file (Codex
re-emits unchanged totals); its figures are ``last_token_usage`` (or the difference of running
totals when an old log has no ``last_token_usage``).

Rollouts are read with the typed fast path of :mod:`tokmon.sources.fastjson`: most of a
rollout's bytes are tool output and encrypted reasoning, which msgspec skips; a line it does
not take follows the reference rules (``json_lines`` with the marker test, then
:meth:`CodexSource._apply`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tokmon import lazylog
from tokmon.sources.base import (
    AgentUsage,
    FileState,
    ReadResult,
    Source,
    as_int,
    json_lines,
    parse_ts,
    resume,
    resumed,
    sorted_files,
)
from tokmon.sources.fastjson import decode_errors, fast_ok, line_spans, reference_line

log = lazylog.getLogger("tokmon.sources")

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


_ACTIVE = frozenset({"entered_review_mode", "exited_review_mode", "token_count"})
_decode: Any = None


def _line_decoder() -> Any:
    """msgspec decoder of a rollout line into the fields the reader uses: strings, integer
    counts or null, objects (any other type fails the decode; absent is null, which the
    reference does not tell apart). ``rate_limits`` and ``source`` are kept raw (empty when
    absent)."""
    global _decode
    if _decode is None:
        import msgspec

        no_raw = msgspec.Raw(b"")  # absent (a JSON null is b"null")

        def struct(name: str, fields: list[tuple[str, Any]]) -> Any:
            return msgspec.defstruct(
                name, [(f, t, no_raw if t is msgspec.Raw else None) for f, t in fields], gc=False
            )

        usage = struct("CodexUsage", [(f, int | None) for f in _FIELDS])
        info = struct(
            "CodexInfo",
            [
                ("total_token_usage", usage | None),
                ("last_token_usage", usage | None),
                ("model", str | None),
            ],
        )
        payload = struct(
            "CodexPayload",
            [
                ("type", str | None),
                ("cwd", str | None),
                ("model", str | None),
                ("source", msgspec.Raw),
                ("info", info | None),
                ("rate_limits", msgspec.Raw),
            ],
        )
        line = struct(
            "CodexLine",
            [("timestamp", str | None), ("type", str | None), ("payload", payload | None)],
        )
        _decode = msgspec.json.Decoder(line).decode
    return _decode


def _typed_usage(u: Any) -> tuple[int, ...] | None:
    """:func:`_usage` of a typed usage struct (or None)."""
    if u is None:
        return None
    return tuple(
        v if v is not None and v > 0 else 0
        for v in (
            u.input_tokens,
            u.cached_input_tokens,
            u.output_tokens,
            u.reasoning_output_tokens,
            u.total_tokens,
        )
    )


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
        nd, ctx = resume(path, state)
        if "sid" not in ctx:
            sid, archived = self._session_id(path)
            ctx.update(sid=sid, archived=archived, model=None, prev=None, review=False, cwd="")
        records: list[AgentUsage] = []
        if nd.data and fast_ok(nd.data):
            self._scan_fast(nd.data, ctx, path, records)
        else:
            for obj in json_lines(nd.data.splitlines(), path, _wanted):
                self._apply(obj, ctx, path, records)
        return resumed(records, nd, ctx, state)

    def _apply(
        self, obj: dict[str, Any], ctx: dict[str, Any], path: Path, records: list[AgentUsage]
    ) -> None:
        """The reference rules for one decoded line (one that holds a marker)."""
        kind = obj.get("type")
        payload = obj.get("payload")
        if not isinstance(payload, dict):
            return
        if kind == "session_meta":
            cwd = payload.get("cwd")
            self._session_meta(ctx, cwd if isinstance(cwd, str) else None, payload.get("source"))
        elif kind == "turn_context":
            self._turn_context(ctx, payload.get("model"), payload.get("cwd"))
        elif kind == "event_msg":
            ptype = payload.get("type")
            if ptype != "token_count":
                self._review(ctx, ptype)
                return
            limits = payload.get("rate_limits")
            if isinstance(limits, dict):
                ctx["rate_limits"] = {"observedAt": obj.get("timestamp"), **limits}
            info = payload.get("info")
            if not isinstance(info, dict):
                return
            rec = self._turn(
                ctx,
                path,
                _usage(info.get("total_token_usage")),
                _usage(info.get("last_token_usage")),
                obj.get("timestamp"),
                payload.get("model") or info.get("model"),
            )
            if rec is not None:
                records.append(rec)

    def _scan_fast(
        self, data: bytes, ctx: dict[str, Any], path: Path, records: list[AgentUsage]
    ) -> None:
        """:meth:`_apply` on every line of ``data`` (``fast_ok``) that holds a marker,
        decoding only the fields it reads; a line the typed decode rejects takes the
        reference rules. The latest ``rate_limits`` is decoded once, at the end."""
        decode = _decode or _line_decoder()
        errors = decode_errors()
        view = memoryview(data)
        find = data.find
        limits: tuple[str | None, bytes] | None = None  # the latest, still raw
        bad = 0
        for s, e in line_spans(data):
            try:
                m = decode(view[s:e])
            except errors:
                if not _wanted(data[s:e]):
                    continue
                obj, is_bad = reference_line(data[s:e])
                bad += is_bad
                if obj is not None:
                    limits = _set_limits(ctx, limits)
                    self._apply(obj, ctx, path, records)
                continue
            payload = m.payload
            if payload is None:
                continue
            kind = m.type
            ptype = payload.type
            if not (
                kind == "session_meta"
                or kind == "turn_context"
                or (kind == "event_msg" and ptype in _ACTIVE)
            ):
                continue  # the reference ignores this line, marker or not
            if not any(find(mark, s, e) != -1 for mark in _MARKERS):
                continue  # the reference does not decode it (a marker written with escapes)
            if kind == "session_meta":
                src = bytes(payload.source)
                self._session_meta(ctx, payload.cwd, json.loads(src) if src else None)
            elif kind == "turn_context":
                self._turn_context(ctx, payload.model, payload.cwd)
            elif ptype != "token_count":
                self._review(ctx, ptype)
            else:
                raw = bytes(payload.rate_limits)
                if raw[:1] == b"{":  # an object (absent: empty)
                    limits = (m.timestamp, raw)
                info = payload.info
                if info is None:
                    continue
                rec = self._turn(
                    ctx,
                    path,
                    _typed_usage(info.total_token_usage),
                    _typed_usage(info.last_token_usage),
                    m.timestamp,
                    payload.model or info.model,
                )
                if rec is not None:
                    records.append(rec)
        _set_limits(ctx, limits)
        if bad:
            log.warning("%s: skipped %d line(s) that are not JSON", path, bad)

    @staticmethod
    def _session_meta(ctx: dict[str, Any], cwd: str | None, src: Any) -> None:
        if "meta" in ctx:
            return  # a spawned rollout repeats its parent's session_meta
        ctx["meta"] = True
        if cwd is not None:
            ctx["cwd"] = cwd
        sub = src.get("subagent") if isinstance(src, dict) else None
        if isinstance(sub, dict) and "thread_spawn" in sub:
            ctx["spawned"] = True

    @staticmethod
    def _turn_context(ctx: dict[str, Any], model: Any, cwd: Any) -> None:
        if isinstance(model, str) and model:
            ctx["model"] = model
        if isinstance(cwd, str) and cwd:
            ctx["cwd"] = cwd

    @staticmethod
    def _review(ctx: dict[str, Any], ptype: Any) -> None:
        if ptype == "entered_review_mode":
            # A review runs with its own running total; the parent's resumes afterwards.
            ctx["review"] = True
            ctx["pre_review"] = ctx.get("prev")
            ctx["prev"] = None
        elif ptype == "exited_review_mode":
            ctx["review"] = False
            ctx["prev"] = ctx.pop("pre_review", None)

    def _turn(
        self,
        ctx: dict[str, Any],
        path: Path,
        total: tuple[int, ...] | None,
        last: tuple[int, ...] | None,
        stamp: Any,
        model: Any,
    ) -> AgentUsage | None:
        """One ``token_count`` with ``info`` (running total, this turn's usage, its
        ``timestamp``, the event's or info's ``model``): its record, or None."""
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
        ts = parse_ts(stamp)
        if ts is None:
            return None
        model = model or ctx.get("model") or FALLBACK_MODEL
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


def _set_limits(
    ctx: dict[str, Any], limits: tuple[str | None, bytes] | None
) -> tuple[str | None, bytes] | None:
    """Put a pending raw ``rate_limits`` into ``ctx`` (as the reference has it); returns None."""
    if limits is not None:
        ctx["rate_limits"] = {"observedAt": limits[0], **json.loads(limits[1])}
    return None
