"""Builders shared by the limits tests: statusLine payloads, Codex events, transcripts."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conftest import assistant_line, write_lines

# Published prices ($ per million tokens, input / output) - independent of tokmon's table.
PRICES = {"claude-sonnet-4-5-20250929": (3.0, 15.0), "claude-opus-4-5-20251101": (5.0, 25.0)}


def cost(model: str, inp: int, out: int) -> float:
    p_in, p_out = PRICES[model]
    return (inp * p_in + out * p_out) / 1e6


def payload(sid: str, windows: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """A statusLine payload with ``rate_limits`` ``{name: (used %, resets_at)}``."""
    return {"session_id": sid, "model": {"id": "claude-sonnet-4-5", "display_name": "Sonnet"},
            "rate_limits": {n: {"used_percentage": u, "resets_at": r}
                            for n, (u, r) in windows.items()}}  # fmt: skip


def codex_event(
    ts: float, primary: tuple[float, float], secondary: tuple[float, float], relative: bool = False
) -> str:
    """A Codex ``token_count`` line; ``relative`` writes ``resets_in_seconds``."""

    def win(used: float, resets: float, minutes: int) -> dict[str, Any]:
        w: dict[str, Any] = {"used_percent": used, "window_minutes": minutes}
        if relative:
            w["resets_in_seconds"] = int(resets - ts)
        else:
            w["resets_at"] = int(resets)
        return w

    stamp = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return json.dumps({"timestamp": stamp, "type": "event_msg", "payload": {
        "type": "token_count", "info": None,
        "rate_limits": {"primary": win(*primary, 300), "secondary": win(*secondary, 10080),
                        "credits": None, "plan_type": None}}})  # fmt: skip


class Usage:
    """Writes assistant lines into one transcript and remembers each one's cost."""

    def __init__(
        self,
        projects: Path,
        project: str = "/home/u/app",
        session: str = "11111111-2222-3333-4444-555555555555",
    ) -> None:
        self.file = projects / project.replace("/", "-") / f"{session}.jsonl"
        self.project = project
        self.session = session
        self.rows: list[tuple[float, str, int, int, float]] = []

    def add(
        self,
        ts: float,
        model: str = "claude-sonnet-4-5-20250929",
        inp: int = 100_000,
        out: int = 10_000,
    ) -> None:
        n = len(self.rows) + 1
        dt = datetime.fromtimestamp(ts, timezone.utc)
        write_lines(self.file, [assistant_line(dt, msg_id=f"msg_{self.session[:4]}{n}",
                                               req_id=f"req_{self.session[:4]}{n}",
                                               session=self.session, cwd=self.project,
                                               model=model, inp=inp, out=out)])  # fmt: skip
        self.rows.append((ts, model, inp, out, cost(model, inp, out)))

    def cost_between(self, lo: float, hi: float) -> float:
        return sum(c for ts, _m, _i, _o, c in self.rows if lo <= ts <= hi)

    def marker(self, ts: float, resets: int) -> None:
        dt = datetime.fromtimestamp(ts, timezone.utc)
        line = json.loads(assistant_line(dt, msg_id="00000000-0000-4000-8000-000000000000",
                                         req_id=None, session=self.session, cwd=self.project,
                                         model="<synthetic>", inp=0, out=0))  # fmt: skip
        line["message"]["content"] = [
            {"type": "text", "text": f"Claude AI usage limit reached|{resets}"}
        ]
        line["isApiErrorMessage"] = True
        write_lines(self.file, [json.dumps(line, separators=(",", ":"))])


# OpenAI's published API prices ($ per million tokens: input, cached input, output).
CODEX_PRICES = {"gpt-5-codex": (1.25, 0.125, 10.0), "gpt-5-mini": (0.25, 0.025, 2.0)}


class CodexRollout:
    """Writes a Codex rollout: turns (``turn_context`` + ``token_count`` with usage and the
    official ``rate_limits``) and remembers each turn's cost at the published prices."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.total = [0, 0, 0, 0, 0]
        self.rows: list[tuple[float, str, int, float]] = []  # ts, model, tokens, cost

    def turn(
        self,
        ts: float,
        model: str,
        inp: int,
        cached: int,
        out: int,
        primary: tuple[float, float],
        secondary: tuple[float, float],
    ) -> None:
        last = [inp, cached, out, 0, inp + out]
        self.total = [a + b for a, b in zip(self.total, last, strict=True)]
        names = ("input_tokens", "cached_input_tokens", "output_tokens",
                 "reasoning_output_tokens", "total_tokens")  # fmt: skip
        stamp = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        event = json.loads(codex_event(ts, primary, secondary))
        event["payload"]["info"] = {
            "total_token_usage": dict(zip(names, self.total, strict=True)),
            "last_token_usage": dict(zip(names, last, strict=True)),
        }
        ctx = {"timestamp": stamp, "type": "turn_context", "payload": {"model": model, "cwd": "/w"}}
        write_lines(self.file, [json.dumps(ctx), json.dumps(event)])
        p_in, p_cached, p_out = CODEX_PRICES[model]
        usd = ((inp - cached) * p_in + cached * p_cached + out * p_out) / 1e6
        self.rows.append((ts, model, inp + out, usd))

    def between(self, lo: float, hi: float, model: str | None = None) -> tuple[int, float]:
        """(tokens, cost) of the turns with ``lo <= ts <= hi`` (of ``model`` only if given)."""
        got = [r for r in self.rows if lo <= r[0] <= hi and (model is None or r[1] == model)]
        return sum(r[2] for r in got), sum(r[3] for r in got)
