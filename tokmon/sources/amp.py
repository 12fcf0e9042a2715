"""Amp: ``${AMP_DATA_DIR:-~/.local/share/amp}/threads/T-*.json``, one document per thread.

``usageLedger.events[]`` is the billed list (model, credits, ``tokens{input, output}``); its
cache tokens live on the assistant message the event points to (``toMessageId``).
``messages[].usage`` repeats the same inferences, so it is read only for threads without a
ledger. Credits are Amp's own cost: 1 credit = $0.01.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokmon.sources.base import (
    AgentUsage,
    FileState,
    ReadResult,
    Source,
    as_int,
    as_list,
    as_obj,
    file_sig,
    parse_ts,
    read_json_document,
    sorted_files,
)


def _credits(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class AmpSource(Source):
    agent = "amp"
    label = "Amp"
    env_var = "AMP_DATA_DIR"
    dedup_rule = (
        "key = (thread id, ledger event id); a thread with a usage ledger is counted from the "
        "ledger only (messages[].usage describes the same inferences); a changed thread file "
        "replaces everything read from it before."
    )

    def roots(self) -> list[Path]:
        dirs = self.env_dirs("AMP_DATA_DIR")
        if dirs is None:
            xdg = self.env.get("XDG_DATA_HOME")
            base = Path(xdg) if xdg else self.home() / ".local" / "share"
            dirs = [base / "amp"]
        return [d for d in dirs if (d / "threads").is_dir()]

    def files(self) -> list[Path]:
        out: list[Path] = []
        for root in self.roots():
            out.extend(sorted_files(root / "threads", ["T-*.json"]))
        return out

    def read(self, path: Path, state: FileState | None) -> ReadResult:
        sig = file_sig(path)
        if sig is None or (state is not None and state.sig == sig):
            return ReadResult([], state or FileState())
        doc = read_json_document(path)
        new = FileState(sig=sig)
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            return ReadResult([], new, replace=True, bytes_read=sig[0])
        tid: str = doc["id"]
        messages = as_list(doc.get("messages"))
        ledger = doc.get("usageLedger")
        events = ledger.get("events") if isinstance(ledger, dict) else None
        recs = (
            self._ledger(tid, events, messages, path)
            if isinstance(events, list)
            else self._messages(tid, messages, path)
        )
        return ReadResult(recs, new, replace=True, bytes_read=sig[0])

    def _ledger(
        self, tid: str, events: list[Any], messages: list[Any], path: Path
    ) -> list[AgentUsage]:
        cache: dict[int, tuple[int, int]] = {}
        for m in messages:
            if (
                isinstance(m, dict)
                and m.get("role") == "assistant"
                and isinstance(m.get("messageId"), int)
            ):
                u = as_obj(m.get("usage"))
                cache[m["messageId"]] = (
                    as_int(u.get("cacheCreationInputTokens")),
                    as_int(u.get("cacheReadInputTokens")),
                )
        out: list[AgentUsage] = []
        for n, e in enumerate(events):
            if not isinstance(e, dict) or not isinstance(e.get("tokens"), dict):
                continue
            ts = parse_ts(e.get("timestamp"))
            model = e.get("model")
            if ts is None or not isinstance(model, str) or not model:
                continue
            to = e.get("toMessageId")
            cw, cr = cache.get(to, (0, 0)) if isinstance(to, int) else (0, 0)
            inp, out_t = as_int(e["tokens"].get("input")), as_int(e["tokens"].get("output"))
            if inp == 0 and out_t == 0 and cw == 0 and cr == 0:
                continue
            credits = _credits(e.get("credits"))
            eid = e.get("id") if isinstance(e.get("id"), str) else str(n)
            out.append(
                AgentUsage(
                    "amp",
                    ts,
                    tid,
                    "Amp",
                    model,
                    inp,
                    out_t,
                    cr,
                    cw,
                    0,
                    f"amp:{tid}:{eid}",
                    cost=credits / 100 if credits is not None else None,
                    credits=credits,
                    origin=str(path),
                )
            )
        return out

    def _messages(self, tid: str, messages: list[Any], path: Path) -> list[AgentUsage]:
        out: list[AgentUsage] = []
        for m in messages:
            if not isinstance(m, dict) or m.get("role") != "assistant":
                continue
            u = m.get("usage")
            if not isinstance(u, dict):
                continue
            ts = parse_ts(u.get("timestamp")) or parse_ts(m.get("timestamp"))
            model = u.get("model") or m.get("model")
            if ts is None or not isinstance(model, str) or not model:
                continue
            vals = (
                as_int(u.get("inputTokens")),
                as_int(u.get("outputTokens")),
                as_int(u.get("cacheReadInputTokens")),
                as_int(u.get("cacheCreationInputTokens")),
            )
            if not any(vals):
                continue
            credits = _credits(u.get("credits"))
            out.append(
                AgentUsage(
                    "amp",
                    ts,
                    tid,
                    "Amp",
                    model,
                    vals[0],
                    vals[1],
                    vals[2],
                    vals[3],
                    0,
                    f"amp:{tid}:msg:{m.get('messageId')}",
                    cost=credits / 100 if credits is not None else None,
                    credits=credits,
                    origin=str(path),
                )
            )
        return out
