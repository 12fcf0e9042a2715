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
