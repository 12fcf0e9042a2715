"""GitHub Copilot CLI: ``${COPILOT_HOME:-~/.copilot}/session-state/<id>/events.jsonl``.

Exact usage exists only in ``session.shutdown`` events:
``data.modelMetrics[model].usage{inputTokens, outputTokens, cacheReadTokens,
cacheWriteTokens, reasoningTokens}`` with ``inputTokens`` *including* both cache counts,
and ``totalNanoAiu`` (Copilot's own charge: cost = nano-AIU / 1e11 USD). Each shutdown is a
snapshot of one process (a resumed session writes another one): shutdowns add up. The
per-message ``outputTokens`` of ``assistant.message`` events are not added: the shutdown
already holds them (a running session shows its usage once it exits).
"""

from __future__ import annotations

from pathlib import Path

from tokmon.sources.base import (
    AgentUsage,
    FileState,
    ReadResult,
    Source,
    as_int,
    as_obj,
    json_lines,
    parse_ts,
    read_new_lines,
    sorted_files,
)


class CopilotSource(Source):
    agent = "copilot"
    label = "GitHub Copilot CLI"
    env_var = "COPILOT_HOME"
    dedup_rule = "key = (session id, shutdown event id, model); shutdowns of resumed runs add up."

    def roots(self) -> list[Path]:
        dirs = self.env_dirs("COPILOT_HOME") or [self.home() / ".copilot"]
        return [d for d in dirs if (d / "session-state").is_dir()]

    def files(self) -> list[Path]:
        out: list[Path] = []
        for root in self.roots():
            out.extend(sorted_files(root / "session-state", ["*/events.jsonl", "*.jsonl"]))
        return out

    def read(self, path: Path, state: FileState | None) -> ReadResult:
        st = state if state is not None else FileState()
        nl = read_new_lines(path, st)
        lines, offset, reset = nl.lines, nl.offset, nl.reset
        if reset:
            st = FileState()
        ctx = dict(st.ctx)  # the caller's state stays as it was
        ctx.setdefault("sid", path.parent.name if path.name == "events.jsonl" else path.stem)
        ctx.setdefault("cwd", "")
        records: list[AgentUsage] = []
        for obj in json_lines(lines, path):
            data = obj.get("data")
            if not isinstance(data, dict):
                continue
            if obj.get("type") == "session.start":
                if isinstance(data.get("sessionId"), str) and data["sessionId"]:
                    ctx["sid"] = data["sessionId"]
                c = data.get("context")
                if isinstance(c, dict) and isinstance(c.get("cwd"), str):
                    ctx["cwd"] = c["cwd"]
                continue
            if obj.get("type") != "session.shutdown":
                continue
            ts = parse_ts(obj.get("timestamp"))
            metrics = data.get("modelMetrics")
            if ts is None or not isinstance(metrics, dict):
                continue
            for model, m in metrics.items():
                if not isinstance(m, dict):
                    continue
                u = as_obj(m.get("usage"))
                cr, cw = as_int(u.get("cacheReadTokens")), as_int(u.get("cacheWriteTokens"))
                inp = max(0, as_int(u.get("inputTokens")) - cr - cw)
                out = as_int(u.get("outputTokens"))
                nano = m.get("totalNanoAiu")
                cost = (
                    float(nano) / 1e11
                    if isinstance(nano, (int, float)) and not isinstance(nano, bool)
                    else None
                )
                req = m.get("requests")
                n = as_int(req.get("count")) if isinstance(req, dict) else 0
                if inp == 0 and out == 0 and cr == 0 and cw == 0 and not cost and not n:
                    continue
                records.append(
                    AgentUsage(
                        "copilot",
                        ts,
                        ctx["sid"],
                        ctx["cwd"],
                        str(model),
                        inp,
                        out,
                        cr,
                        cw,
                        min(as_int(u.get("reasoningTokens")), out),
                        f"copilot:{ctx['sid']}:{obj.get('id') or obj.get('timestamp')}:{model}",
                        cost=cost,
                        requests=n,
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
