"""Ground truth of a generated corpus: what the generator intended to write.

Figures follow the counting rules of transcript-format.md: one record per API response
(deduped by ``(message.id, requestId)``, largest ``output_tokens``), attributed to the line's
``sessionId`` (subagents roll up into the parent), dated by the kept line's UTC timestamp.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson


@dataclass
class TokenTotals:
    """Summed token counters of a set of deduped API responses."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0  # 5m + 1h
    cache_1h_tokens: int = 0
    cache_read_tokens: int = 0
    entries: int = 0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )

    def add(self, inp: int, out: int, cache_create: int, cache_1h: int, cache_read: int) -> None:
        """Add one response."""
        self.input_tokens += inp
        self.output_tokens += out
        self.cache_creation_tokens += cache_create
        self.cache_1h_tokens += cache_1h
        self.cache_read_tokens += cache_read
        self.entries += 1

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        """(input, output, cache creation, cache read, total): handy for comparisons."""
        return (
            self.input_tokens,
            self.output_tokens,
            self.cache_creation_tokens,
            self.cache_read_tokens,
            self.total_tokens,
        )


@dataclass
class SessionExpected:
    """One session (by ``sessionId``), subagents and resumed copies included."""

    session_id: str
    project: str
    totals: TokenTotals = field(default_factory=TokenTotals)
    models: list[str] = field(default_factory=list)
    first_activity: str | None = None
    last_activity: str | None = None
    title: str | None = None
    files: list[str] = field(default_factory=list)


@dataclass
class Expected:
    """Everything a consumer of the corpus should compute from it."""

    seed: int
    size_mb: float
    start: str
    end: str
    total_bytes: int = 0
    totals: TokenTotals = field(default_factory=TokenTotals)
    daily: dict[str, TokenTotals] = field(default_factory=dict)
    models: dict[str, TokenTotals] = field(default_factory=dict)
    sessions: dict[str, SessionExpected] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    # days (UTC) holding a sonnet request whose prompt (input + cache) exceeds 200k tokens:
    # costs differ there between tokmon (whole request at the higher tier) and ccusage.
    over_200k_days: list[str] = field(default_factory=list)
    over_200k_sessions: list[str] = field(default_factory=list)
    synthetic_lines: int = 0
    malformed_lines: int = 0
    resumed: dict[str, str] = field(default_factory=dict)  # resumed file's session -> source

    @property
    def session_ids(self) -> set[str]:
        return set(self.sessions)

    @property
    def session_count(self) -> int:
        return len(self.sessions)

    def to_json(self) -> bytes:
        """Serialise (sorted keys, indented)."""
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes | str) -> Expected:
        """Inverse of :meth:`to_json`."""
        raw: dict[str, Any] = orjson.loads(data)
        raw["totals"] = TokenTotals(**raw["totals"])
        raw["daily"] = {k: TokenTotals(**v) for k, v in raw["daily"].items()}
        raw["models"] = {k: TokenTotals(**v) for k, v in raw["models"].items()}
        sessions = {}
        for sid, s in raw["sessions"].items():
            s["totals"] = TokenTotals(**s["totals"])
            sessions[sid] = SessionExpected(**s)
        raw["sessions"] = sessions
        return cls(**raw)
