"""``$/progress`` during the first scan (LSP work-done progress)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types
from test_server_support import REF_TOTALS, corpus_path, request, server_env, start_lsp, stop_lsp

# slow: real language-server processes
pytestmark = pytest.mark.slow


async def _wait_end(client, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for reports in client.progress_reports.values():
            if reports and isinstance(reports[-1], types.WorkDoneProgressEnd):
                return reports
        await asyncio.sleep(0.02)
    raise AssertionError(f"no finished progress: {client.progress_reports}")


async def test_first_scan_reports_progress(tmp_path: Path) -> None:
    client = await start_lsp(server_env(tmp_path, corpus_path()), progress=True)
    try:
        reports = await _wait_end(client)
        begin, end = reports[0], reports[-1]
        assert isinstance(begin, types.WorkDoneProgressBegin)
        assert begin.title == "tokmon: indexing transcripts"
        middle = [r for r in reports[1:-1] if isinstance(r, types.WorkDoneProgressReport)]
        pcts = [r.percentage for r in middle]
        assert pcts == sorted(pcts) and all(0 <= p <= 100 for p in pcts)
        sessions = len((await request(client, "tokmon/sessions"))["sessions"])
        assert end.message.endswith(f"{sessions} sessions") and "records" in end.message
    finally:
        await stop_lsp(client)


async def test_no_progress_without_capability(tmp_path: Path) -> None:
    client = await start_lsp(server_env(tmp_path, corpus_path()), progress=False)
    try:
        s = await request(client, "tokmon/summary")
        assert s["totals"]["inputTokens"] == REF_TOTALS["inputTokens"]
        assert client.progress_reports == {}
    finally:
        await stop_lsp(client)
