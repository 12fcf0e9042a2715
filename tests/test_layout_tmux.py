"""Reports in real tmux panes 80, 100 and 160 columns wide, and through a pipe.

Each report runs in a real terminal (a private tmux server); the screen is read back with
``capture-pane`` and parsed here, independently of tokmon's renderer: every date, time,
count and cost printed must equal the value of the same report's ``--json`` (times converted
to the zone with the standard library), nothing may be cut (no ``…``), a narrow pane gets
the compact layout with its one-line hint, and a pipe gets the full layout.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
NUMBER = re.compile(r"^\$?-?[\d,]+(\.\d+)?$")
WIDTHS = [80, 100, 160]


def corpus() -> Path:
    env = os.environ.get("TOKMON_TEST_CORPUS")
    p = Path(env) if env else REPO.parent / "shared" / "corpus" / "claude-real"
    if not (p / "projects").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real corpus not found at {p}")
        pytest.skip(f"real corpus not found at {p} (set TOKMON_TEST_CORPUS)")
    return p


@pytest.fixture(scope="module")
def report_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("layout-home")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TOKMON_", "CLAUDE_")) and k not in ("COLUMNS", "LINES", "TMUX")
    }
    env.update(
        {
            "TOKMON_HOME": str(home),
            "HOME": str(home),
            "NO_COLOR": "1",
            "TZ": "UTC",
            "CLAUDE_CONFIG_DIR": str(corpus()),
        }
    )
    return env


def run_json(env: dict[str, str], args: list[str]) -> Any:
    res = subprocess.run(
        [sys.executable, "-m", "tokmon", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def run_tty(env: dict[str, str], args: list[str], width: int, pipe: bool = False) -> str:
    """Run ``tokmon ARGS`` in a tmux pane ``width`` columns wide; return the screen text."""
    sock = f"tokmon-layout-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    base = ["tmux", "-L", sock, "-f", os.devnull]
    cmd = " ".join(shlex.quote(x) for x in [sys.executable, "-m", "tokmon", *args])
    if pipe:
        cmd += " | cat"
    marker = f"DONE-{uuid.uuid4().hex[:6]}"
    shell = f"{cmd}; echo {marker}:$?; sleep 600"
    extra = [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
    subprocess.run(
        [*base, "new-session", "-d", "-x", str(width), "-y", "150", "-c", str(REPO), *extra, shell],
        check=True,
        env=env,
        timeout=30,
    )
    try:
        deadline = time.monotonic() + 90
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [*base, "capture-pane", "-p", "-J", "-S", "-", "-t", "0"],
                capture_output=True,
                text=True,
                env=env,
                timeout=30,
            ).stdout
            if f"{marker}:" in screen:
                break
            time.sleep(0.2)
        m = re.search(rf"{marker}:(\d+)", screen)
        assert m, f"command did not finish:\n{screen}"
        assert m.group(1) == "0", screen
        return screen[: screen.index(marker)]
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, env=env, timeout=30)


# --------------------------------------------------------------------------- screen parsing


def words(line: str) -> list[str]:
    return line.split()


def numbers(tokens: list[str]) -> list[float]:
    """The numeric cells of a row: 1,234 -> 1234, $1,234.50 -> 1234.5."""
    return [float(t.replace("$", "").replace(",", "")) for t in tokens if NUMBER.match(t)]


def assert_equal_numbers(shown: list[float], expected: list[float], where: str) -> None:
    assert len(shown) == len(expected), f"{where}: screen {shown} vs json {expected}"
    for s, e in zip(shown, expected, strict=True):
        # counts are exact; a cost is printed with cents (rounded half up)
        assert abs(s - e) <= 0.005 + 1e-9, f"{where}: screen {shown} vs json {expected}"


def check_not_cut(screen: str) -> None:
    assert "…" not in screen, screen


def local(iso: str, zone: str) -> str:
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return dt.strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- period reports


PERIOD_KEYS = {
    "daily": ("daily", "date"),
    "weekly": ("weekly", "week"),
    "monthly": ("monthly", "month"),
}
FULL = ["inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens"]
COMPACT = ["inputTokens", "outputTokens"]


def check_period(screen: str, data: dict[str, Any], kind: str, breakdown: bool) -> str:
    """Every row and the totals equal the JSON; returns the layout seen ("full", "compact",
    or "totals": date, total tokens and cost)."""
    check_not_cut(screen)
    rows_key, label = PERIOD_KEYS[kind]
    layout = (
        "full"
        if re.search(r"\bcreate\b", screen)
        else "compact"
        if re.search(r"\bInput\b", screen)
        else "totals"
    )
    keys = {"full": FULL, "compact": COMPACT, "totals": ["totalTokens"]}[layout]
    by_label = {r[label]: r for r in data[rows_key]}
    seen: list[str] = []
    lines = screen.splitlines()
    current: dict[str, Any] | None = None
    sub = 0
    for line in lines:
        w = words(line)
        if not w:
            continue
        if DATE.match(w[0]) and w[0] in by_label:
            current = by_label[w[0]]
            sub = 0
            seen.append(w[0])
            assert_equal_numbers(
                numbers(w[1:]),
                [current[k] for k in keys] + [current["totalCost"]],
                f"{kind} {w[0]}",
            )
        elif w[0] == "└" and breakdown:
            assert current is not None
            m = current["modelBreakdowns"][sub]
            sub += 1
            short = m["modelName"].removeprefix("claude-")
            assert short.startswith(w[1]), (w, m["modelName"])
            m_total = sum(m[k] for k in FULL[:4])
            vals = {**m, "totalTokens": m_total}
            assert_equal_numbers(
                numbers(w[2:]), [vals[k] for k in keys] + [m["cost"]], f"{kind} breakdown {w[1]}"
            )
        elif w[0] == "Total" and w[1:2] != ["Cost"]:  # (the totals layout's header)
            t = data["totals"]
            assert_equal_numbers(numbers(w[1:]), [t[k] for k in keys] + [t["totalCost"]], "totals")
    assert seen == [r[label] for r in data[rows_key]], "every row is shown, in order"
    if breakdown:
        n_models = sum(len(r["modelBreakdowns"]) for r in data[rows_key])
        assert screen.count("└") == n_models
    return layout


@pytest.mark.parametrize("kind", ["daily", "weekly", "monthly"])
def test_period_reports_at_every_width(report_env: dict[str, str], kind: str) -> None:
    data = run_json(report_env, [kind])
    assert data[PERIOD_KEYS[kind][0]], "the corpus has rows"
    layouts = {}
    for width in WIDTHS:
        screen = run_tty(report_env, [kind], width)
        layouts[width] = check_period(screen, data, kind, breakdown=False)
        for line in screen.splitlines():
            assert len(line.rstrip()) <= width
        if layouts[width] == "compact":
            assert "Compact layout" in screen and " cols" in screen
        else:
            assert "Compact layout" not in screen
    # the full table (two-line headers, folded models) fits 100 columns on this corpus
    assert layouts[80] == "compact" and layouts[100] == "full" and layouts[160] == "full"
    # narrower than even the compact table: date, total tokens and cost, within the width
    narrow = run_tty(report_env, [kind], 50)
    assert check_period(narrow, data, kind, breakdown=False) == "totals"
    assert all(len(line.rstrip()) <= 50 for line in narrow.splitlines())
    piped = run_tty(report_env, [kind], 80, pipe=True)
    assert check_period(piped, data, kind, breakdown=False) == "full"
    assert "Compact layout" not in piped


def test_daily_breakdown_keeps_models(report_env: dict[str, str]) -> None:
    data = run_json(report_env, ["daily", "--breakdown"])
    for width in (80, 160):
        screen = run_tty(report_env, ["daily", "--breakdown"], width)
        assert "Models" in screen
        check_period(screen, data, "daily", breakdown=True)


def test_forced_compact_and_file_output(report_env: dict[str, str], tmp_path: Path) -> None:
    data = run_json(report_env, ["daily"])
    screen = run_tty(report_env, ["daily", "--compact"], 160)
    assert check_period(screen, data, "daily", breakdown=False) == "compact"
    assert "--compact" in screen
    out = tmp_path / "daily.txt"
    with open(out, "w", encoding="utf-8") as fh:  # a file: full layout, no width limit
        subprocess.run(
            [sys.executable, "-m", "tokmon", "daily"],
            env={**report_env, "COLUMNS": "40"},
            stdout=fh,
            check=True,
            timeout=120,
        )
    assert check_period(out.read_text(encoding="utf-8"), data, "daily", breakdown=False) == "full"


# --------------------------------------------------------------------------- session, blocks, stats


def test_session_report(report_env: dict[str, str]) -> None:
    data = run_json(report_env, ["session"])
    by_id = {r["sessionId"][:8]: r for r in data["sessions"]}
    assert len(by_id) == len(data["sessions"]), "8-character ids are unique in the corpus"
    for width in [*WIDTHS, 0]:
        screen = run_tty(report_env, ["session"], width or 80, pipe=width == 0)
        check_not_cut(screen)
        layout = "full" if re.search(r"\bcreate\b", screen) else "compact"
        keys = FULL if layout == "full" else COMPACT
        seen = []
        lines = screen.splitlines()
        for i, line in enumerate(lines):
            w = words(line)
            if not w or w[0] not in by_id:
                continue
            r = by_id[w[0]]
            seen.append(r["sessionId"])
            # the project may wrap inside its column (text, never a number): read on
            first = w[1:]
            cut = next(j for j, x in enumerate(first) if NUMBER.match(x))
            text = "".join(first[:cut])
            for nxt in lines[i + 1 :]:
                nw = words(nxt)
                if not nw or nw[0] in by_id or nw[0] == "Total" or nw[0].startswith("━"):
                    break
                text += "".join(nw)
            assert r["projectPath"].rstrip("/").split("/")[-1].replace(" ", "") in text
            stamp = local(r["lastActivity"], "UTC")
            assert line.rstrip().endswith(stamp)
            assert_equal_numbers(
                numbers(words(line.rstrip()[: -len(stamp)])[1:]),
                [r[k] for k in keys] + [r["totalCost"]],
                w[0],
            )
        assert seen == [r["sessionId"] for r in data["sessions"]], width
        if width == 80:
            assert layout == "compact"
        if width in (160, 0):
            assert layout == "full" or width == 160 and "Compact layout" in screen


def test_session_id_accepts_the_short_id_it_prints(report_env: dict[str, str]) -> None:
    data = run_json(report_env, ["session"])
    full = data["sessions"][0]["sessionId"]
    one = run_json(report_env, ["session", "--id", full[:8]])
    assert one["sessionId"] == full
    assert one["totalTokens"] == data["sessions"][0]["totalTokens"]
    screen = run_tty(report_env, ["session", "-i", full[:8]], 80)
    assert screen.count(full[:8]) == 1


def test_blocks_report(report_env: dict[str, str]) -> None:
    zone = "Pacific/Kiritimati"
    data = run_json(report_env, ["blocks", "-z", zone])
    blocks = data["blocks"]
    assert blocks
    for width in [*WIDTHS, 0]:
        screen = run_tty(report_env, ["blocks", "-z", zone], width or 80, pipe=width == 0)
        check_not_cut(screen)
        assert f"times in {zone}" in screen
        layout = "full" if "Entries" in screen else "compact"
        rows = []
        for line in screen.splitlines():
            w = words(line)
            if len(w) >= 5 and DATE.match(w[0]) and DATE.match(w[2]):
                rows.append(w)
        assert len(rows) == len(blocks), width
        for w, b in zip(rows, blocks, strict=True):
            assert f"{w[0]} {w[1]}" == local(b["startTime"], zone)
            assert f"{w[2]} {w[3]}" == local(b["endTime"], zone)
            if b["isGap"]:
                assert w[4] == "gap" and len(w) == 5
                continue
            assert w[4] == ("ACTIVE" if b["isActive"] else "done")
            want = ([b["entries"]] if layout == "full" else []) + [b["totalTokens"], b["costUSD"]]
            assert_equal_numbers(numbers(w[5:]), want, f"block {b['startTime']}")
        if width == 80:
            assert layout == "compact" and "Compact layout" in screen
        if width == 0:
            assert layout == "full"


def test_stats_screen(report_env: dict[str, str]) -> None:
    data = run_json(report_env, ["stats"])
    assert data["timezone"] == "UTC"
    by_id = {r["sessionId"][:8]: r for r in data["topSessions"]}
    for width in [*WIDTHS, 0]:
        screen = run_tty(report_env, ["stats"], width or 80, pipe=width == 0)
        check_not_cut(screen)
        assert f"Today {data['today']['date']} (UTC)" in screen
        assert f"all time ${data['totals']['totalCost']:,.2f}" in screen
        seen = 0
        for line in screen.splitlines():
            w = words(line)
            if w and w[0] in by_id:
                r = by_id[w[0]]
                stamp = local(r["lastActivity"], "UTC")
                assert stamp in line
                assert_equal_numbers(
                    numbers(words(line.split(stamp)[1])), [r["totalTokens"], r["totalCost"]], w[0]
                )
                seen += 1
        assert seen == len(by_id)
