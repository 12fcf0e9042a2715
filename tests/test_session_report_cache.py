"""Issue 12: warm ``session --json`` prints the kept text of the answer while it holds.

The session report's text is kept (``cli.reports.SessionCache``) per data version, block
length and metadata file, from the time it was built until a session it shows as active
would turn inactive. Each case here compares the answer with the typed rows' (a filter that
keeps everything: ``--since 20000101``), computed afresh at the same clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import assistant_line, write_lines

from tokmon.core.engine import Engine

END = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
T_ACTIVE = END.timestamp() + 60  # "live" is active (its last line at END)
T_LATER = END.timestamp() + 6 * 3600  # nothing is


def _corpus(root: Path) -> Path:
    proj = root / "projects" / "-w-app"
    old = END - timedelta(days=2)
    write_lines(proj / "old.jsonl", [
        assistant_line(old, msg_id="o1", req_id="r1", session="old", inp=50, out=70),
        assistant_line(old + timedelta(minutes=3), msg_id="o2", req_id="r2", session="old",
                       model="claude-opus-4-1-20250805", inp=5, out=9, cr=1000),
    ])  # fmt: skip
    write_lines(proj / "live.jsonl", [
        assistant_line(END - timedelta(hours=1), msg_id="l1", req_id="r3", session="live",
                       inp=7, out=8, cc=300),
        assistant_line(END, msg_id="l2", req_id="r4", session="live", inp=1, out=2),
    ])  # fmt: skip
    return proj


def _cache_files(home: Path) -> list[Path]:
    return sorted((home / "cache" / "reports").glob("session-*.json"))


def _at(monkeypatch: pytest.MonkeyPatch, t: float) -> None:
    monkeypatch.setattr(time, "time", lambda: t)


def _both(cli: Any) -> tuple[str, str]:
    """``session --json`` (the stored sums, maybe kept) and the typed rows' answer."""
    fast = cli("session", "--json")
    typed = cli("session", "--json", "--since", "20000101")
    assert fast.code == typed.code == 0, fast.err + typed.err
    return fast.out, typed.out


def _active(out: str) -> dict[str, bool]:
    return {r["sessionId"]: r["isActive"] for r in json.loads(out)["sessions"]}


def test_session_json_is_kept_and_left_when_it_no_longer_holds(
    cli: Any, env: dict[str, str], tokmon_home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    proj = _corpus(tmp_path / "claude")
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    _at(monkeypatch, T_ACTIVE)
    first, typed = _both(cli)
    assert first == typed
    assert _active(first) == {"live": True, "old": False}
    (kept,) = _cache_files(tokmon_home)
    built, until = (float(x) for x in kept.read_bytes().split(b"\n", 1)[0].split())
    assert built == T_ACTIVE and until == END.timestamp() + 5 * 3600 - 1

    # the same clock span and data: the kept text, without asking the stored sums
    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the kept answer was not used")

    with monkeypatch.context() as m:
        m.setattr(Engine, "session_report_json", refuse)
        _at(m, T_ACTIVE + 3600)
        again = cli("session", "--json")
    assert again.code == 0, again.err
    assert again.out == first

    # "live" turns inactive: the kept text no longer holds
    _at(monkeypatch, T_LATER)
    later, typed = _both(cli)
    assert later == typed
    assert _active(later) == {"live": False, "old": False}

    # the clock set back before the kept answer was built: not used
    _at(monkeypatch, T_ACTIVE)
    back, typed = _both(cli)
    assert back == typed == first

    # metadata: a description, then a name
    assert cli("session", "describe", "old", "the old one").code == 0
    described, typed = _both(cli)
    assert described == typed and "the old one" in described
    assert cli("session", "name", "live", "Live one").code == 0
    named, typed = _both(cli)
    assert named == typed and '"Live one"' in named

    # a title line appended (no usage): the title is data too
    write_lines(
        proj / "old.jsonl", ['{"type":"custom-title","customTitle":"Titled","sessionId":"old"}']
    )
    titled, typed = _both(cli)
    assert titled == typed and '"Titled"' in titled

    # new data: a line appended to a transcript
    write_lines(proj / "old.jsonl", [
        assistant_line(END - timedelta(days=1), msg_id="o3", req_id="r5", session="old",
                       inp=11, out=13),
    ])  # fmt: skip
    grown, typed = _both(cli)
    assert grown == typed and grown != titled
    assert json.loads(grown)["totals"]["inputTokens"] == 50 + 5 + 7 + 1 + 11
    assert len(_cache_files(tokmon_home)) <= 4  # megabytes each at scale: only the latest


@pytest.mark.parametrize("damage", [b"", b"garbage\n", b"1 2 3\n{}", b"nan nan\n{}"])
def test_a_damaged_kept_answer_is_not_used(
    cli: Any, env: dict[str, str], tokmon_home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, damage: bytes,
) -> None:  # fmt: skip
    _corpus(tmp_path / "claude")
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    _at(monkeypatch, T_ACTIVE)
    first, _ = _both(cli)
    (kept,) = _cache_files(tokmon_home)
    kept.write_bytes(damage)
    again, typed = _both(cli)
    assert again == typed == first


def test_block_length_is_part_of_the_key(
    cli: Any, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _corpus(tmp_path / "claude")
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    _at(monkeypatch, END.timestamp() + 2 * 3600)  # "live" active for 5-hour blocks only
    five, _ = _both(cli)
    assert cli("config", "set", "session_hours", "1").code == 0
    one, typed = _both(cli)
    assert one == typed
    assert _active(five)["live"] and not _active(one)["live"]


def test_real_stdout_gets_the_same_bytes(env: dict[str, str], cli: Any, tmp_path: Path) -> None:
    """Through a real process's stdout (orjson's bytes to the binary buffer), missed and
    kept, the same text as the in-process run's text stream."""
    _corpus(tmp_path / "claude")
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    outs = [
        subprocess.run(
            [sys.executable, "-m", "tokmon", "session", "--json"],
            env=env, cwd=tmp_path, capture_output=True, timeout=120, check=True,
        ).stdout
        for _ in range(2)
    ]  # fmt: skip
    typed = cli("session", "--json", "--since", "20000101")
    assert outs[0] == outs[1] == typed.out.encode()
    assert os.linesep != "\n" or outs[0].endswith(b"}\n")


def test_session_table_is_kept_per_shape_and_data(
    cli: Any, env: dict[str, str], tokmon_home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The table's text is kept per data version, metadata, options, width and zone."""
    proj = _corpus(tmp_path / "claude")
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    _at(monkeypatch, T_ACTIVE)

    def table(*argv: str) -> str:
        got = cli("session", *argv)
        assert got.code == 0, got.err
        return str(got.out)

    first = table()
    assert "old" in first and "━" in first
    kept = sorted(p.name for p in _cache_files(tokmon_home))
    assert any(n.startswith("session-table-") for n in kept)

    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the kept table was not used")

    with monkeypatch.context() as m:
        m.setattr(Engine, "report", refuse)
        assert table() == first
    # another shape is another table: each as printed without a kept one
    for argv in (["--breakdown"], ["--compact"], ["-z", "Asia/Kolkata"]):
        shown = table(*argv)
        assert shown != first
        for p in _cache_files(tokmon_home):
            p.unlink()
        assert table(*argv) == shown
    assert cli("session", "tag", "old", "kept-tag").code == 0
    tagged = table()
    assert "#kept-tag" in tagged and tagged != first
    write_lines(proj / "old.jsonl", [
        assistant_line(END - timedelta(days=1), msg_id="o9", req_id="r9", session="old",
                       inp=1000, out=13),
    ])  # fmt: skip
    grown = table()
    assert grown != tagged and "1,063" in grown  # the input total: 50 + 5 + 7 + 1 + 1000
