"""Blocks shorter than an hour (`--session-length` / `session_hours` below 1).

A block starts at the hour of its first record, so a block shorter than an hour can end before
that record: then every later record opens a block of its own (the documented rule: a record
more than a block after the block's start opens a new one), and two blocks can start at one
time. The stored blocks could not hold those (they are keyed by their first time) and the
store's build failed on them; such blocks are now grouped from the records. Expected values
below are worked out by hand from the rule in the shared transcript-format notes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CLIResult, assistant_line, write_lines

DAY = "2026-11-20T"
# (time, input tokens): two records at one time, one 5 s later, one a minute later, one
# hours later
RECORDS = [("10:50:00", 10), ("10:50:00", 11), ("10:50:05", 12), ("10:51:00", 13), ("13:10:00", 14)]
LATER = ("13:10:03", 15)


def _line(n: int, hhmmss: str, inp: int) -> str:
    return assistant_line(f"{DAY}{hhmmss}.000Z", msg_id=f"m{n}", req_id=f"r{n}", inp=inp)


def _shape(report: dict[str, Any]) -> list[tuple[str, int, int] | str]:
    """Each block as (start HH:MM, entries, input tokens); a gap as "gap"."""
    out: list[tuple[str, int, int] | str] = []
    for b in report["blocks"]:
        if b.get("isGap"):
            out.append("gap")
        else:
            out.append((b["startTime"][11:16], b["entries"], b["tokenCounts"]["inputTokens"]))
    return out


# hours -> blocks before and after one more record at 13:10:03
EXPECTED: dict[str, tuple[list[Any], list[Any]]] = {
    # 7.2 s: every record alone (each is past its block's end); a gap where records are
    # more than 7.2 s apart (10:50:05 -> 10:51:00, 10:51 -> 13:10); 13:10:03 is alone too
    "0.002": (
        [("10:00", 1, 10), ("10:00", 1, 11), ("10:00", 1, 12), "gap", ("10:00", 1, 13), "gap"]
        + [("13:00", 1, 14)],
        [("10:00", 1, 10), ("10:00", 1, 11), ("10:00", 1, 12), "gap", ("10:00", 1, 13), "gap"]
        + [("13:00", 1, 14), ("13:00", 1, 15)],
    ),
    # 30 min: 10:50 is 50 min past 10:00, so the first four are alone; 13:10:03 is 10 min
    # past 13:00 and 3 s after 13:10: it joins that block
    "0.5": (
        [("10:00", 1, 10), ("10:00", 1, 11), ("10:00", 1, 12), ("10:00", 1, 13), "gap"]
        + [("13:00", 1, 14)],
        [("10:00", 1, 10), ("10:00", 1, 11), ("10:00", 1, 12), ("10:00", 1, 13), "gap"]
        + [("13:00", 2, 29)],
    ),
    # an hour: the first four in the 10:00 block (the stored blocks' path)
    "1": (
        [("10:00", 4, 46), "gap", ("13:00", 1, 14)],
        [("10:00", 4, 46), "gap", ("13:00", 2, 29)],
    ),
}


@pytest.mark.parametrize("hours", sorted(EXPECTED))
def test_blocks_shorter_than_an_hour_follow_the_rule_cold_warm_and_after_an_append(
    hours: str, tmp_path: Path, cli: Callable[..., CLIResult]
) -> None:
    transcript = tmp_path / "claude" / "projects" / "-home-u-proj" / "s.jsonl"
    write_lines(transcript, [_line(n, t, i) for n, (t, i) in enumerate(RECORDS)], mode="w")
    extra = {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    before, after = EXPECTED[hours]
    for _ in range(2):  # the first scan, then warm from the store
        r = cli("blocks", "--session-length", hours, "--json", extra_env=extra)
        assert r.code == 0, r.err
        assert _shape(r.json()) == before
    write_lines(transcript, [_line(9, *LATER)])
    r = cli("blocks", "--session-length", hours, "--json", extra_env=extra)
    assert r.code == 0, r.err
    assert _shape(r.json()) == after
    # the table and the configured length take the same path
    assert cli("config", "set", "session_hours", hours, extra_env=extra).code == 0
    r = cli("blocks", "--json", extra_env=extra)
    assert r.code == 0 and _shape(r.json()) == after, r.err
    t = cli("blocks", extra_env=extra)
    assert t.code == 0 and "Traceback" not in t.err and "error" not in t.err, t.err


def test_switching_between_short_and_hour_blocks_keeps_each_exact(
    tmp_path: Path, cli: Callable[..., CLIResult]
) -> None:
    transcript = tmp_path / "claude" / "projects" / "-home-u-proj" / "s.jsonl"
    write_lines(transcript, [_line(n, t, i) for n, (t, i) in enumerate(RECORDS)], mode="w")
    extra = {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    for hours in ("1", "0.5", "5", "0.002", "1"):
        r = cli("blocks", "--session-length", hours, "--json", extra_env=extra)
        assert r.code == 0, r.err
        want = EXPECTED[hours][0] if hours in EXPECTED else [("10:00", 5, 60)]
        assert _shape(r.json()) == want, hours
