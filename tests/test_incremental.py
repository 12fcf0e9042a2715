"""Incremental tailing with real files appended, truncated, replaced and deleted."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import assistant_line, write_lines

from tokmon.core.engine import Engine
from tokmon.paths import get_paths

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def make_engine(root: Path, home: Path) -> Engine:
    return Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(home)}))


def totals(e: Engine) -> tuple[int, int]:
    return (sum(r.input_tokens for r in e.records), sum(r.output_tokens for r in e.records))


def test_append_partial_line_and_streaming_group(tmp_path: Path, tokmon_home: Path) -> None:
    root = tmp_path / "projects"
    f = root / "-home-u-proj" / "s1.jsonl"
    write_lines(f, [assistant_line(T0, msg_id="m1", req_id="r1", inp=10, out=1)])
    e = make_engine(root, tokmon_home)
    assert e.refresh().new_records == 1
    # Same response streamed on: larger output replaces; a half-written line waits.
    later = assistant_line(T0 + timedelta(seconds=2), msg_id="m1", req_id="r1", inp=10, out=99)
    m2 = assistant_line(T0, msg_id="m2", req_id="r2", inp=5, out=5)
    with open(f, "a") as fh:
        fh.write(later + "\n" + m2[:40])
    c = e.refresh()
    assert totals(e) == (10, 99)
    assert c.changed_sessions
    with open(f, "a") as fh:  # the writer finishes the line: now it counts, exactly once
        fh.write(m2[40:] + "\n")
    assert e.refresh().new_records == 1
    assert totals(e) == (15, 104)
    write_lines(
        f, [assistant_line(T0 + timedelta(seconds=5), msg_id="m3", req_id="r3", inp=7, out=3)]
    )
    c = e.refresh()
    assert c.new_records == 1
    assert totals(e) == (22, 107)


def test_keep_max_output_across_files_and_ties_keep_first(
    tmp_path: Path, tokmon_home: Path
) -> None:
    root = tmp_path / "projects"
    a = root / "p" / "a.jsonl"
    b = root / "p" / "b.jsonl"  # a resumed copy of a's response in another file
    write_lines(
        a,
        [
            assistant_line(T0, msg_id="m", req_id="r", out=5, session="A"),
            assistant_line(T0, msg_id="m", req_id="r", out=40, session="A"),
        ],
    )
    write_lines(
        b,
        [
            assistant_line(T0, msg_id="m", req_id="r", out=40, session="B"),
            assistant_line(
                T0, msg_id="x", req_id="y", out=1, session="B", extra={"requestId": None}
            ),
        ],
    )
    e = make_engine(root, tokmon_home)
    e.refresh()
    recs = {r.key: r for r in e.records}
    assert recs["m:r"].output_tokens == 40
    assert recs["m:r"].session_id == "A"  # tie: first seen (a.jsonl is read first)
    assert len(e.records) == 2  # the requestId-less line is counted on its own


def test_second_run_reads_only_new_bytes(
    tmp_path: Path, tokmon_home: Path, real_corpus: Path
) -> None:
    root = real_corpus / "projects"
    e1 = make_engine(root, tokmon_home)
    c1 = e1.refresh()
    assert c1.bytes_read > 1_000_000
    e2 = make_engine(root, tokmon_home)  # a new process: loads the ledger
    c2 = e2.refresh()
    assert c2.bytes_read == 0 and c2.files_read == 0
    assert totals(e2) == totals(e1)


def test_truncation_replacement_and_deletion(tmp_path: Path, tokmon_home: Path) -> None:
    root = tmp_path / "projects"
    f = root / "p" / "s.jsonl"
    write_lines(
        f, [assistant_line(T0, msg_id=f"m{i}", req_id=f"r{i}", inp=1, out=1) for i in range(10)]
    )
    e = make_engine(root, tokmon_home)
    e.refresh()
    assert len(e.records) == 10
    # Truncate and rewrite shorter content with new responses: re-read from the start.
    write_lines(f, [assistant_line(T0, msg_id="n1", req_id="q1", inp=100, out=1)], mode="w")
    e.refresh()
    assert "n1:q1" in {r.key for r in e.records}
    assert len(e.records) == 11  # history of the old lines is kept
    # Replace the file atomically (new inode) with the same size: detected by identity.
    tmp = f.with_suffix(".tmp")
    tmp.write_text(assistant_line(T0, msg_id="n2", req_id="q2", inp=100, out=1) + "\n")
    os.replace(tmp, f)
    e.refresh()
    assert "n2:q2" in {r.key for r in e.records}
    # New project dir and file appear; old file disappears: history survives.
    g = root / "new-proj" / "t.jsonl"
    write_lines(g, [assistant_line(T0, msg_id="g1", req_id="h1", inp=3, out=3, session="T")])
    f.unlink()
    c = e.refresh()
    assert "T" in c.changed_sessions
    assert len(e.records) == 13
    e2 = make_engine(root, tokmon_home)
    e2.refresh()
    assert len(e2.records) == 13


def test_titles_custom_beats_ai(tmp_path: Path, tokmon_home: Path) -> None:
    root = tmp_path / "projects"
    f = root / "p" / "s.jsonl"
    write_lines(
        f,
        [
            assistant_line(T0, msg_id="m", req_id="r", session="S"),
            '{"type":"ai-title","aiTitle":"Fix the parser","sessionId":"S"}',
        ],
    )
    e = make_engine(root, tokmon_home)
    e.refresh()
    assert e.titles == {"S": "Fix the parser"}
    write_lines(f, ['{"type":"custom-title","customTitle":"Parser work","sessionId":"S"}'])
    e.refresh()
    assert e.titles == {"S": "Parser work"}
    assert e.session_rows()[0].title == "Parser work"
