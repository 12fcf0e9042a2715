"""The token limit "max" (ccusage's ``--token-limit max``: the largest finished block) from the
stored blocks in one aggregate, equal to the blocks grouped from the records at every edge of
every block (its start, the moment it ends, the moment its last record is a block old)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokmon.core.blocks import BLOCK_SECONDS, compute_blocks, max_completed_tokens
from tokmon.core.engine import Engine
from tokmon.paths import get_paths


@pytest.mark.parametrize("hours", [5.0, 1.0])
def test_max_from_the_stored_blocks_equals_the_records_at_every_block_edge(
    real_corpus: Path, tmp_path: Path, hours: float
) -> None:
    env = {"TOKMON_HOME": str(tmp_path / "home")}

    def engine() -> Engine:
        e = Engine(roots=[real_corpus / "projects"], paths=get_paths(env), env=env)
        e.config.values["session_hours"] = hours
        e.block_seconds = hours * 3600
        e.refresh()
        return e

    eng = engine()  # its records are never loaded: it answers from the stored blocks
    recs = sorted(engine().records, key=lambda r: (r.ts, r.key))
    bs = hours * 3600 or BLOCK_SECONDS
    blocks = [b for b in compute_blocks(recs, recs[-1].ts, bs) if not b.is_gap]
    assert len(blocks) > 10, "the corpus should span many blocks"
    nows = [recs[0].ts - 1.0, recs[-1].ts + 10 * bs]
    for b in blocks:
        assert b.last is not None
        nows += [b.start, b.start + bs, b.start + bs - 0.001, b.last + bs, b.last + bs - 0.001]
    stored = eng._stored(None)  # noqa: SLF001 - the stored blocks must answer, not the records
    assert stored is not None and stored.keeps_blocks
    for now in nows:
        want = max_completed_tokens(compute_blocks(recs, now, bs))
        assert stored.max_completed_tokens("claude", now) == want, now
        got, source = eng.token_limit(now, "max")
        assert got == want and source == ("max-completed-block" if want else None), now
