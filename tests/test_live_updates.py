"""Long-running use: incremental summaries, path-hinted refreshes and deferred saves agree
with a fresh engine computing everything from scratch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import assistant_line, write_lines

from tokmon.core.blocks import compute_blocks
from tokmon.core.engine import Engine
from tokmon.paths import get_paths


def fresh_summary(root: Path, home: Path, now: float) -> dict:  # type: ignore[type-arg]
    e = Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(home)}), persist=False)
    e.refresh()
    return e.summary(now=now, tz="UTC").to_json()


def test_incremental_summary_matches_recomputation(corpus_copy: Path, tmp_path: Path) -> None:
    root = corpus_copy / "projects"
    live = Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(tmp_path / "live")}))
    live.refresh()
    now_dt = datetime.now(timezone.utc)
    now = now_dt.timestamp()
    live.summary(now=now, tz="UTC")  # builds the incremental sums
    f = root / "-src-deep-manifest" / "live.jsonl"
    steps = [
        [assistant_line(now_dt - timedelta(minutes=30), msg_id="a", req_id="1", inp=100, out=1)],
        # the same response streams on: a larger output replaces the first line
        [assistant_line(now_dt - timedelta(minutes=29), msg_id="a", req_id="1", inp=100, out=900)],
        # an old response (last month) and a new session
        [
            assistant_line(now_dt - timedelta(days=40), msg_id="b", req_id="2", inp=7, out=7),
            assistant_line(
                now_dt - timedelta(minutes=1),
                msg_id="c",
                req_id="3",
                inp=5,
                out=5,
                session="new-session",
                cwd="/work/other",
            ),
        ],
    ]
    for lines in steps:
        write_lines(f, lines)
        c = live.refresh(paths=[f], save=False)
        assert c.changed
        got = live.summary(now=now, tz="UTC").to_json()
        want = fresh_summary(root, tmp_path / "fresh", now)
        for k in ("today", "week", "month", "totals", "activeBlock", "tokenLimit"):
            assert got[k] == want[k], k
        assert [r["sessionId"] for r in got["activeSessions"]] == [
            r["sessionId"] for r in want["activeSessions"]
        ]
        assert live.records == sorted(live.records, key=lambda r: r.ts)
        assert live.blocks(now) == compute_blocks(live.records, now)


def test_hinted_refresh_persists_what_changed(corpus_copy: Path, tmp_path: Path) -> None:
    """A path-hinted refresh of a live loop commits its one new record at once (a short
    transaction: nothing is left for a deferred save)."""
    root = corpus_copy / "projects"
    home = tmp_path / "h"
    e = Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(home)}))
    e.refresh()
    f = root / "-src-deep-manifest" / "x.jsonl"
    write_lines(f, [assistant_line(datetime.now(timezone.utc), msg_id="z", req_id="9", inp=1)])
    assert e.refresh(paths=[f], save=False).new_records == 1
    assert e.snapshot() is None and e.save() == []
    other = Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(home)}))
    c = other.refresh()
    assert c.files_read == 0  # everything was already in the saved ledger
    assert "z:9" in {r.key for r in other.records}


def test_path_hint_with_a_new_directory_falls_back_to_a_full_scan(
    corpus_copy: Path, tmp_path: Path
) -> None:
    root = corpus_copy / "projects"
    e = Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(tmp_path / "h")}))
    e.refresh()
    d = root / "-brand-new"
    write_lines(
        d / "s.jsonl",
        [assistant_line(datetime.now(timezone.utc), msg_id="n", req_id="1", session="S-new")],
    )
    assert "S-new" in e.refresh(paths=[d]).changed_sessions
    g = root / "-src-deep-manifest" / "gone.jsonl"
    write_lines(g, [assistant_line(datetime.now(timezone.utc), msg_id="g", req_id="1")])
    e.refresh(paths=[g])
    g.unlink()
    e.refresh(paths=[g])
    assert str(g) not in e.ledger.files
    assert "g:1" in {r.key for r in e.records}  # history stays
