"""Parallel scanning gives exactly what a sequential scan gives."""

from __future__ import annotations

from pathlib import Path

from tokmon.core.discovery import transcript_stats
from tokmon.core.engine import Engine
from tokmon.core.scan import scan_all
from tokmon.paths import get_paths


def _items(root: Path) -> list[tuple[str, int, int]]:
    return sorted((k, 0, st.st_size) for k, st in transcript_stats(root))


def test_parallel_equals_sequential(real_corpus: Path) -> None:
    items = _items(real_corpus / "projects")
    seq = list(scan_all(items, workers=1))
    par = list(scan_all(items, workers=3, min_bytes=0))
    assert [r.key for r in par] == [k for k, _, _ in items]
    assert [(r.key, r.end, r.rows, r.titles, r.malformed) for r in par] == [  # noqa: RUF015
        (r.key, r.end, r.rows, r.titles, r.malformed) for r in seq
    ]


def test_engine_totals_do_not_depend_on_parallelism(
    real_corpus: Path, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import tokmon.core.scan as scan_mod

    out = []
    for threshold in (10**12, 0):
        monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", threshold)
        e = Engine(
            roots=[real_corpus / "projects"],
            paths=get_paths({"TOKMON_HOME": str(tmp_path / str(threshold))}),
        )
        e.refresh()
        out.append(sorted((r.key, r.session_id, r.output_tokens) for r in e.records))
    assert out[0] == out[1]


def test_parallel_scan_uses_other_processes(real_corpus: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    monkeypatch.setenv("TOKMON_SCAN_POOL", "process")  # (with the native scanner: threads)
    pids = {r.pid for r in scan_all(_items(real_corpus / "projects"), workers=2, min_bytes=0)}
    assert os.getpid() in pids and len(pids) == 2
