"""Every time tokmon shows is in the chosen zone (``-z``, config ``timezone``, else the
system's ``TZ``) and says which zone it is: stats, blocks, session, line and watch, in zones
far from UTC (Pacific/Kiritimati is UTC+14, America/Adak UTC-10 in winter, UTC-9 in summer).

Expected clock times are converted here with ``zoneinfo`` from the ``--json`` UTC values.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO, corpus_path
from line_support import append_assistant, make_env, refresh_now, run_line

# slow: CLI processes per zone
pytestmark = pytest.mark.slow

KIRI = "Pacific/Kiritimati"
ADAK = "America/Adak"


def offset(zone: str, when: datetime) -> str:
    """``UTC+14`` / ``UTC-10`` / ``UTC-9``: the label tokmon prints, worked out independently."""
    off = when.astimezone(ZoneInfo(zone)).utcoffset()
    assert off is not None
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return "UTC" if minutes == 0 else f"UTC{sign}{h}" + (f":{m:02d}" if m else "")


def utc(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def clock(iso: str, zone: str) -> str:
    t = utc(iso)
    return f"{t.astimezone(ZoneInfo(zone)).strftime('%H:%M')} {offset(zone, t)}"


def stamp(iso: str, zone: str) -> str:
    return utc(iso).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def tokmon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [sys.executable, "-m", "tokmon", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return res


def tokmon_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(tokmon(env, *args, "--json").stdout)


@pytest.fixture(scope="module")
def zenv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A corpus copy with a current block (two responses, 40 and 5 minutes ago), system TZ
    Kiritimati, no config."""
    if not (corpus_path() / "projects").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real corpus not found at {corpus_path()}")
        pytest.skip(f"real corpus not found at {corpus_path()} (set TOKMON_TEST_CORPUS)")
    env = make_env(tmp_path_factory.mktemp("tz"))
    now = time.time()
    append_assistant(env, input_tokens=30_000, output_tokens=10_000, ts=now - 40 * 60)
    append_assistant(env, input_tokens=20_000, output_tokens=5_000, ts=now - 5 * 60)
    env["TZ"] = KIRI
    env["NO_COLOR"] = "1"
    env.pop("COLUMNS", None)
    return env


# --------------------------------------------------------------------------- stats


def test_stats_names_the_system_zone_and_shows_times_in_it(zenv: dict[str, str]) -> None:
    before = datetime.now(ZoneInfo(KIRI)).date().isoformat()
    data = tokmon_json(zenv, "stats")
    after = datetime.now(ZoneInfo(KIRI)).date().isoformat()
    assert data["timezone"] == KIRI  # the real zone, never "local"
    assert data["today"]["date"] in (before, after)
    block = data["activeBlock"]
    assert block is not None
    text = tokmon(zenv, "stats").stdout
    assert f"Today {data['today']['date']} ({KIRI})" in text
    assert f"ends {clock(block['endTime'], KIRI)}" in text
    assert "UTC+14" in text
    for row in data["topSessions"]:
        assert stamp(row["lastActivity"], KIRI) in text, row["sessionId"]


def test_stats_accepts_z_and_config(zenv: dict[str, str], tmp_path: Path) -> None:
    data = tokmon_json(zenv, "stats", "-z", ADAK)
    assert data["timezone"] == ADAK
    now = datetime.now(ZoneInfo(ADAK))
    assert data["today"]["date"] in (
        now.date().isoformat(),
        (now - timedelta(minutes=1)).date().isoformat(),
    )
    text = tokmon(zenv, "stats", "-z", ADAK).stdout
    end = data["activeBlock"]["endTime"]
    assert f"ends {clock(end, ADAK)}" in text and offset(ADAK, utc(end)) in ("UTC-10", "UTC-9")
    # the config's timezone, when no -z is given
    env = {**zenv, "TOKMON_HOME": str(tmp_path / "home")}
    tokmon(env, "config", "set", "timezone", ADAK)
    assert tokmon_json(env, "stats")["timezone"] == ADAK
    assert f"ends {clock(end, ADAK)}" in tokmon(env, "stats").stdout
    # a wrong zone is one line, no traceback
    bad = subprocess.run(
        [sys.executable, "-m", "tokmon", "stats", "-z", "Mars/Base"],
        env=zenv,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Mars/Base" in bad.stderr


# --------------------------------------------------------------------------- blocks


@pytest.mark.parametrize(("args", "zone"), [((), KIRI), (("-z", ADAK), ADAK)])
def test_blocks_times_are_in_the_zone(
    zenv: dict[str, str], args: tuple[str, ...], zone: str
) -> None:
    blocks = tokmon_json(zenv, "blocks", *args)["blocks"]
    text = tokmon(zenv, "blocks", *args).stdout  # a pipe: the full layout
    assert f"times in {zone}" in text
    rows = [
        ln.split()
        for ln in text.splitlines()
        if re.match(r"^\s*\d{4}-\d{2}-\d{2} \d{2}:\d{2}\s+\d{4}-", ln)
    ]
    assert len(rows) == len(blocks)
    for w, b in zip(rows, blocks, strict=True):
        assert f"{w[0]} {w[1]}" == stamp(b["startTime"], zone)
        assert f"{w[2]} {w[3]}" == stamp(b["endTime"], zone)
    assert any(b["isActive"] for b in blocks)


# --------------------------------------------------------------------------- session


def test_session_times_are_in_the_zone(zenv: dict[str, str]) -> None:
    rows = tokmon_json(zenv, "session")["sessions"]
    text = tokmon(zenv, "session").stdout
    assert f"times in {KIRI}" in text
    for r in rows:
        line = next(ln for ln in text.splitlines() if ln.split()[:1] == [r["sessionId"][:8]])
        assert line.rstrip().endswith(stamp(r["lastActivity"], KIRI))
    listed = tokmon(zenv, "session", "list", "-z", ADAK).stdout
    assert f"times in {ADAK}" in listed
    for r in tokmon_json(zenv, "session", "list")["sessions"][:10]:
        assert stamp(r["lastActivity"], ADAK) in listed
    top = max(rows, key=lambda r: r["lastActivity"])
    shown = tokmon(zenv, "session", "show", top["sessionId"][:8], "-z", ADAK).stdout
    assert (
        f"{stamp(top['firstActivity'], ADAK)} → {stamp(top['lastActivity'], ADAK)} {ADAK}" in shown
    )
    assert f"5-hour billing blocks (times in {ADAK})" in shown


# --------------------------------------------------------------------------- line


def test_line_explains_block_start_in_the_zone(zenv: dict[str, str], tmp_path: Path) -> None:
    block = tokmon_json(zenv, "blocks", "--active")["blocks"][0]
    refresh_now(zenv)
    data = json.loads(run_line(["-f", "json", "--explain"], zenv).stdout)
    assert f"since {clock(block['startTime'], KIRI)}," in data["explain"]["block"]
    # the config's zone wins over the system's (the snapshot carries the engine's zone)
    env = make_env(tmp_path, copy_corpus=False)
    shutil.rmtree(env["CLAUDE_CONFIG_DIR"])
    env.update(CLAUDE_CONFIG_DIR=zenv["CLAUDE_CONFIG_DIR"], TZ=KIRI)
    tokmon(env, "config", "set", "timezone", ADAK)
    refresh_now(env)
    data = json.loads(run_line(["-f", "json", "--explain"], env).stdout)
    assert f"since {clock(block['startTime'], ADAK)}," in data["explain"]["block"]


# --------------------------------------------------------------------------- watch


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_watch_clock_times_are_in_the_zone(zenv: dict[str, str]) -> None:
    pytest.importorskip("textual")
    from test_watch_tmux import Dashboard

    block = tokmon_json(zenv, "blocks", "--active")["blocks"][0]
    env = {k: zenv[k] for k in ("TOKMON_HOME", "CLAUDE_CONFIG_DIR", "TZ", "PYTHONPATH")}
    for args, zone in (("", KIRI), (f"-z {ADAK}", ADAK)):
        d = Dashboard(env, args=args, width=120, height=40)
        try:
            d.wait_text("Current block", timeout=30)
            try:
                d.wait_text(f"ends {clock(block['endTime'], zone)}", timeout=60)
            except AssertionError as exc:  # say whether the data or only the screen is missing
                now = tokmon_json(zenv, "blocks", "--active")["blocks"]
                raise AssertionError(f"{exc}\n`blocks --active` now: {now}") from None
            scr = d.screen()
            assert f"by {clock(block['endTime'], zone)}" in scr
            assert offset(zone, utc(block["endTime"])) in scr.splitlines()[0]  # header clock
        finally:
            d.close()


def test_local_zone_is_found_by_name(zenv: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from tokmon import fmt; print(fmt.zone_name(fmt.zone(None)))"],
        env={**zenv, "TZ": ADAK},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.stdout.strip() == ADAK
    assert os.environ.get("TZ") != "Mars/Base"
