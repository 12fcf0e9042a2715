"""Typed domain objects of the engine, with one JSON serializer each (camelCase, ccusage shapes).

Times are epoch seconds (UTC floats) inside the core; ISO strings appear only in ``to_json``.

:class:`UsageRecord` is a :class:`typing.NamedTuple`: a plain tuple underneath, so the ledger
loads a million stored rows with ``tuple.__new__`` and no per-field Python work, and the
field getters are C-level descriptors (measured as fast as ``r[4]`` on CPython 3.11), while
every reader uses names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from tokmon.core.model_blocks import Block as Block
    from tokmon.core.model_blocks import BurnRate as BurnRate
    from tokmon.core.model_blocks import Projection as Projection
    from tokmon.core.model_blocks import TokenCounts as TokenCounts
    from tokmon.core.model_blocks import TokenLimitStatus as TokenLimitStatus

#: JSON values (what ``to_json`` returns, what orjson and json.dumps write)
JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]
JSONObject = dict[str, JSON]


class UsageRecord(NamedTuple):
    """One API response's usage, attributed to a session, project and model.

    ``ts`` (epoch seconds, UTC), ``session_id``, ``project`` (cwd), ``model``, the four token
    counters (``cache_creation_tokens`` includes ``cache_1h_tokens``), ``key`` (the dedup key),
    ``cost`` (USD) and ``display_cost`` (legacy ``costUSD`` or None).
    """

    ts: float
    session_id: str
    project: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int
    cache_1h_tokens: int
    cache_read_tokens: int
    key: str
    cost: float = 0.0
    display_cost: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> UsageRecord:
        """Build from a stored row in field order (no per-field Python work)."""
        return tuple.__new__(cls, row)

    def with_cost(self, cost: float) -> UsageRecord:
        """The same record priced at ``cost``."""
        return tuple.__new__(UsageRecord, (*self[:10], cost, self[11]))

    @property
    def total_tokens(self) -> int:
        """Input + output + cache creation + cache read."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )

    def __repr__(self) -> str:
        return (
            f"UsageRecord({self.key!r}, ts={self.ts}, session={self.session_id!r}, "
            f"model={self.model!r}, in={self.input_tokens}, out={self.output_tokens}, "
            f"cc={self.cache_creation_tokens}, cr={self.cache_read_tokens})"
        )


FIELDS: tuple[str, ...] = UsageRecord._fields

# Positions in a raw row (the parser's list, a stored ledger row), for the two hot loops that
# work on rows before they become records (the scanner's dedup, the scanner's pricing).
ROW_OUTPUT = FIELDS.index("output_tokens")
ROW_KEY = FIELDS.index("key")
ROW_COST = FIELDS.index("cost")


#: The blocks' types, defined in :mod:`tokmon.core.model_blocks` (five dataclasses, ~2 ms
#: of a start-up to define: imported when a block is made, not by every report)
_BLOCK_TYPES = ("Block", "BurnRate", "Projection", "TokenCounts", "TokenLimitStatus")


def __getattr__(name: str) -> Any:
    if name in _BLOCK_TYPES:
        from tokmon.core import model_blocks

        return getattr(model_blocks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
