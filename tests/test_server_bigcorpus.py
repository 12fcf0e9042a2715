"""LSP over a generated corpus big enough for the engine's parallel (forked) first scan.

Regression: forked scan workers used to deadlock on a std-stream lock held by the server's
stdin reader thread. Totals must equal the generator's ground truth.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_server_support import request, server_env, start_lsp, stop_lsp

# slow: a real language server over a generated corpus
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory):
    from tokmon.core.scan import PARALLEL_MIN_BYTES
    from tokmon.demo.generator import generate

    dest = tmp_path_factory.mktemp("big") / "claude"
    mb = PARALLEL_MIN_BYTES / 2**20 + 8
    expected = generate(dest, size_mb=mb, seed=7)
    return dest, expected


@pytest.mark.parametrize("pool", ["process", "default"])  # default: threads when native
async def test_parallel_first_scan_over_lsp(generated, tmp_path: Path, pool: str) -> None:
    dest, expected = generated
    env = server_env(tmp_path, dest)
    if pool == "process":
        env["TOKMON_SCAN_POOL"] = "process"  # the forked workers of the regression
    client = await start_lsp(env)
    try:
        s = await request(client, "tokmon/summary", timeout=120)
        t = expected.totals
        assert s["totals"]["inputTokens"] == t.input_tokens
        assert s["totals"]["outputTokens"] == t.output_tokens
        assert s["totals"]["cacheCreationTokens"] == t.cache_creation_tokens
        assert s["totals"]["cacheReadTokens"] == t.cache_read_tokens
        rows = (await request(client, "tokmon/sessions"))["sessions"]
        assert {r["sessionId"] for r in rows} == set(expected.sessions)
    finally:
        await stop_lsp(client)
