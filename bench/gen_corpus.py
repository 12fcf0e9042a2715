#!/usr/bin/env python3
"""Generate a realistic Claude Code transcript corpus for benchmarks and manual testing.

    python bench/gen_corpus.py DEST --mb 500 [--seed 0] [--days 30] [--end 2026-03-01T17:00:00Z]

Writes DEST/projects/... (use DEST as CLAUDE_CONFIG_DIR) and DEST/expected.json (the ground
truth: per-session, per-day and total token counts; see docs/demo-corpus.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path


def end_time(text: str) -> datetime:
    """The ``--end`` option: an ISO-8601 time, UTC when it names no offset."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path, help="destination config dir (created; must be empty)")
    ap.add_argument("--mb", type=_positive, required=True, help="size in MiB")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--days", type=_positive, default=30.0, help="time span (default 30)")
    ap.add_argument("--end", type=end_time, default=None, help="last activity (default: now)")
    args = ap.parse_args(argv)

    from tokmon.demo import generate
    from tokmon.fsutil import atomic_write

    t0 = time.perf_counter()
    try:
        exp = generate(args.dest, size_mb=args.mb, seed=args.seed, end=args.end, days=args.days)
    except (OSError, ValueError) as exc:
        print(f"gen_corpus: error: {exc}", file=sys.stderr)
        return 2
    atomic_write(args.dest / "expected.json", exp.to_json(), fsync=False)
    dt = time.perf_counter() - t0
    print(
        f"{args.dest}: {exp.total_bytes / 2**20:.1f} MiB, {len(exp.files)} files, "
        f"{exp.session_count} sessions, {exp.totals.entries} responses, "
        f"{exp.totals.total_tokens:,} tokens, {exp.start[:10]}..{exp.end[:10]} in {dt:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
