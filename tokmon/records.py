"""The unit of accounting: one deduplicated API response."""

from __future__ import annotations

SYNTHETIC_MODEL = "<synthetic>"


class UsageRecord:
    """One API response's usage, attributed to a session, project and model."""

    __slots__ = (
        "ts",
        "session_id",
        "project",
        "model",
        "input_tokens",
        "output_tokens",
        "cache_creation_tokens",
        "cache_1h_tokens",
        "cache_read_tokens",
        "cost",
        "key",
        "display_cost",
    )

    def __init__(
        self,
        ts: float,
        session_id: str,
        project: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_creation_tokens: int,
        cache_1h_tokens: int,
        cache_read_tokens: int,
        key: str,
        cost: float = 0.0,
        display_cost: float | None = None,
    ) -> None:
        self.ts = ts
        self.session_id = session_id
        self.project = project
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cache_creation_tokens = cache_creation_tokens
        self.cache_1h_tokens = cache_1h_tokens
        self.cache_read_tokens = cache_read_tokens
        self.key = key
        self.cost = cost
        self.display_cost = display_cost

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )

    def as_tuple(self) -> list[object]:
        return [
            self.key,
            self.ts,
            self.session_id,
            self.project,
            self.model,
            self.input_tokens,
            self.output_tokens,
            self.cache_creation_tokens,
            self.cache_1h_tokens,
            self.cache_read_tokens,
            self.display_cost,
        ]

    @classmethod
    def from_tuple(cls, t: list) -> UsageRecord:  # type: ignore[type-arg]
        return cls(t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[0], 0.0, t[10])

    def __repr__(self) -> str:
        return (
            f"UsageRecord({self.key!r}, ts={self.ts}, session={self.session_id!r}, "
            f"model={self.model!r}, in={self.input_tokens}, out={self.output_tokens}, "
            f"cc={self.cache_creation_tokens}, cr={self.cache_read_tokens})"
        )
