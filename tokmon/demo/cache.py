"""The demo corpus under tokmon's cache dir, used by ``tokmon --demo`` and the Quickstart."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from tokmon.demo.generator import generate
from tokmon.fsutil import atomic_write, locked
from tokmon.paths import TokmonPaths, ensure_dir

DEMO_MB = 3.0
DEMO_DAYS = 14.0
MAX_AGE_S = 6 * 3600.0


def _fresh(stamp: Path, now: float, max_age: float) -> bool:
    try:
        return now - stamp.stat().st_mtime < max_age
    except OSError:
        return False


def ensure_demo_corpus(
    paths: TokmonPaths,
    *,
    max_age: float = MAX_AGE_S,
    now: datetime | None = None,
    seed: int = 0,
) -> Path:
    """Return ``<cache>/demo`` (a Claude config dir), regenerating it when stale.

    The corpus ends at ``now`` so it has an active block and sessions today; it is rebuilt
    when older than ``max_age`` seconds. Regeneration happens in a temp dir swapped in under
    a lock, so concurrent callers never see half a corpus.
    """
    root = ensure_dir(paths.cache_dir)
    demo = root / "demo"
    stamp = demo / "expected.json"
    now_dt = now or datetime.now(timezone.utc)
    if _fresh(stamp, time.time(), max_age):
        return demo
    with locked(root / "demo.lock", timeout=60.0):
        if _fresh(stamp, time.time(), max_age):
            return demo
        tmp = root / f"demo.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        expected = generate(tmp, size_mb=DEMO_MB, seed=seed, end=now_dt, days=DEMO_DAYS)
        atomic_write(tmp / "expected.json", expected.to_json(), fsync=False)
        old = root / f"demo.old-{os.getpid()}"
        if demo.exists():
            os.replace(demo, old)
        os.replace(tmp, demo)
        with contextlib.suppress(OSError):
            os.chmod(demo, 0o700)
        shutil.rmtree(old, ignore_errors=True)
    return demo
