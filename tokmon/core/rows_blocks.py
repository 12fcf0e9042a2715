"""``BlocksReport``, apart from :mod:`tokmon.core.rows` (re-exported there): a warm
``blocks`` report builds only this one typed result, so it does not define the other rows'
dataclasses (~5 ms of its imports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokmon.leanclass import dataclass

if TYPE_CHECKING:
    from tokmon.core.model import Block, JSONObject


@dataclass(frozen=True, slots=True)
class BlocksReport:
    """``blocks``: 5-hour billing blocks, gaps included."""

    blocks: list[Block]

    def to_json(self) -> JSONObject:
        """``{blocks: [...]}`` (ccusage's ``blocks --json``)."""
        return {"blocks": [b.to_json() for b in self.blocks]}
