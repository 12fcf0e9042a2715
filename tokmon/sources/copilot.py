"""GitHub Copilot CLI: ``${COPILOT_HOME:-~/.copilot}/session-state/<id>/events.jsonl``.

Exact usage exists only in ``session.shutdown`` events:
``data.modelMetrics[model].usage{inputTokens, outputTokens, cacheReadTokens,
cacheWriteTokens, reasoningTokens}`` with ``inputTokens`` *including* both cache counts,
and ``totalNanoAiu`` (Copilot's own charge: cost = nano-AIU / 1e11 USD). Each shutdown is a
snapshot of one process (a resumed session writes another one): shutdowns add up.

A process that has not written its shutdown yet (running, or killed) is counted as a **lower
bound**: one provisional record per model holding the sum of its ``assistant.message``
``outputTokens`` and their count (on the real logs these equal the shutdown's output and
request count exactly), no input or cache figures (the events carry none) and no cost
(Copilot's charge is in the shutdown). When the shutdown arrives it replaces them: the
provisional records are re-emitted empty and dropped by :meth:`CopilotSource.dedup`.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    resume,
    resumed,
    sorted_files,
)


class CopilotSource(Source):
    agent = "copilot"
    label = "GitHub Copilot CLI"
    env_var = "COPILOT_HOME"
    dedup_rule = (
        "key = (session id, shutdown event id, model); shutdowns of resumed runs add up. A run "
        "without its shutdown yet: key = (session id, run number, model), output only (a lower "
        "bound), replaced by the shutdown's records when it comes."
    )
    PENDING = ":pending:"  # in the key of a provisional (lower-bound) record

    def roots(self) -> list[Path]:
        dirs = self.env_dirs("COPILOT_HOME") or [self.home() / ".copilot"]
        return [d for d in dirs if (d / "session-state").is_dir()]

    def files(self) -> list[Path]:
        out: list[Path] = []
        for root in self.roots():
            out.extend(sorted_files(root / "session-state", ["*/events.jsonl", "*.jsonl"]))
        return out

    def read(self, path: Path, state: FileState | None) -> ReadResult:
        nd, ctx = resume(path, state)
        ctx.setdefault("sid", path.parent.name if path.name == "events.jsonl" else path.stem)
        ctx.setdefault("cwd", "")
        ctx.setdefault("run", 0)  # processes that wrote their shutdown so far
        pending: dict[str, list[float]] = {m: list(v) for m, v in ctx.get("pending", {}).items()}
        records: list[AgentUsage] = []

        def provisional(model: str, out: int, n: int, ts: float) -> AgentUsage:
            key = f"copilot:{ctx['sid']}{self.PENDING}{ctx['run']}:{model}"
            return AgentUsage("copilot", ts, ctx["sid"], ctx["cwd"], model, 0, out, 0, 0, 0, key,
                              cost=0.0, requests=n, origin=str(path))  # fmt: skip

        for obj in json_lines(nd.data.splitlines(), path):
            data = obj.get("data")
            if not isinstance(data, dict):
                continue
            kind = obj.get("type")
            if kind == "session.model_change":
                if isinstance(data.get("newModel"), str) and data["newModel"]:
                    ctx["model"] = data["newModel"]
                continue
            if kind == "assistant.message":
                out = data.get("outputTokens")
                ts = parse_ts(obj.get("timestamp"))
                if not isinstance(out, int) or isinstance(out, bool) or out < 0 or ts is None:
                    continue
                model = data.get("model") if isinstance(data.get("model"), str) else None
                model = model or ctx.get("model") or "unknown"
                acc = pending.setdefault(model, [0, 0, ts])
                acc[0] += out
                acc[1] += 1
                acc[2] = max(acc[2], ts)
                continue
            if kind == "session.start":
                if isinstance(data.get("sessionId"), str) and data["sessionId"]:
                    ctx["sid"] = data["sessionId"]
                c = data.get("context")
                if isinstance(c, dict) and isinstance(c.get("cwd"), str):
                    ctx["cwd"] = c["cwd"]
                continue
            if kind != "session.shutdown":
                continue
            ts = parse_ts(obj.get("timestamp"))
            metrics = data.get("modelMetrics")
            if ts is None or not isinstance(metrics, dict):
                continue
            for model, acc in pending.items():  # the run's exact totals replace its lower bound
                records.append(provisional(model, 0, 0, acc[2]))
            pending.clear()
            ctx["run"] += 1
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
        for model, acc in pending.items():  # this run so far (no shutdown yet): a lower bound
            records.append(provisional(model, int(acc[0]), int(acc[1]), acc[2]))
        ctx["pending"] = pending
        return resumed(records, nd, ctx, state)

    def dedup(self, records: Iterable[AgentUsage]) -> list[AgentUsage]:
        """The default rule, without the provisional records a shutdown has emptied."""
        return super().dedup(
            r for r in records if r.requests or r.output_tokens or self.PENDING not in r.key
        )
