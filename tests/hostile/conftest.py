"""Fixtures of the hostile suite (shared ones live in tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A generated corpus just over the parallel-scan threshold (so first scans fork
    workers), with the generator's own ground truth."""
    from tokmon.core.scan import PARALLEL_MIN_BYTES
    from tokmon.demo import generate

    dest = tmp_path_factory.mktemp("big") / "claude"
    exp = generate(dest, size_mb=PARALLEL_MIN_BYTES / 2**20 + 6, seed=7, days=20.0)
    truth = json.loads(exp.to_json())
    return dest, truth["totals"]
