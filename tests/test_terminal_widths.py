"""Every report and table command in a real pseudo-terminal 80, 60 and 40 columns wide.

No line is wider than the terminal and no figure is cut (rich's ``…`` beside a digit), on
the demo data and on copies of the real corpora (Claude Code and the other agents); at 60
columns the reports are tables (a narrower layout, never the too-narrow line) whose totals
are ``--json``'s. docs/terminal.md describes the layouts.
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import agents_corpus, corpus_path, need_corpus
from tests.test_qa_integration import BUDGETS, tokmon, tty

# slow: a hundred real processes in ptys
pytestmark = pytest.mark.slow

WIDTHS = (80, 60, 40)
REPORTS = ["daily", "weekly", "monthly", "session", "session list", "blocks", "blocks --active",
           "stats", "limits", "agents", "budgets", "alerts list", "alerts log",
           "doctor --no-server", "daily --breakdown", "session --breakdown", "daily -i",
           "daily --agent all", "session list --agent all"]  # fmt: skip
# a figure cut by rich ("44,009,6…") or a number folded onto the next line ("2,9" / "10,272")
CUT = re.compile(r"[\d$%]…|…\d")


def display_width(line: str) -> int:
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in line
    )


def check_fits(text: str, columns: int, what: str) -> None:
    """Every line fits ``columns``, but one that ends with a path too long for any line
    (under doctor's column of details, 22 columns in: the terminal folds it, and copying it
    keeps it whole); no figure is cut."""
    for line in text.splitlines():
        last = (line.split() or [""])[-1]
        path = last.startswith(("/", "-", "~")) and len(last) > columns - 22
        assert display_width(line) <= columns or path, f"{what} at {columns}: {line!r}"
        assert not CUT.search(line), f"{what} at {columns}: a figure cut: {line!r}"


@pytest.fixture(scope="module")
def real_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Copies of the real Claude Code corpus and the other agents' corpus, isolated homes."""
    import os

    src, agents = corpus_path(), agents_corpus()
    if not (src / "projects").is_dir():
        need_corpus(src)
    if not (agents / "codex").is_dir():
        need_corpus(agents)
    root = tmp_path_factory.mktemp("widths")
    shutil.copytree(src, root / "claude")
    shutil.copytree(agents, root / "agents")
    (root / "home").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOKMON_", "CLAUDE_", "CODEX_", "GEMINI_", "QWEN_", "OPENCODE_",
                                "COPILOT_", "AMP_", "XDG_"))}  # fmt: skip
    a = root / "agents"
    env.update({"TOKMON_HOME": str(root / "th"), "HOME": str(root / "home"),
                "CLAUDE_CONFIG_DIR": str(root / "claude"), "NO_COLOR": "1", "TZ": "UTC",
                "CODEX_HOME": str(a / "codex"), "GEMINI_DATA_DIR": str(a / "gemini"),
                "OPENCODE_DATA_DIR": str(a / "opencode"), "QWEN_DATA_DIR": str(a / "qwen"),
                "COPILOT_HOME": str(a / "copilot"), "AMP_DATA_DIR": str(a / "amp")})  # fmt: skip
    env.pop("COLUMNS", None)
    assert tokmon(env, "daily", "--json").returncode == 0  # the store, built once
    return env


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import os

    root = tmp_path_factory.mktemp("demo")
    (root / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    env.update({"TOKMON_HOME": str(root / "th"), "HOME": str(root / "home"), "NO_COLOR": "1",
                "TZ": "UTC"})  # fmt: skip
    env.pop("COLUMNS", None)
    # budgets and alerts: their table and the budget lines under daily and stats
    config = Path(tokmon(env, "config", "path").stdout.strip())
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(BUDGETS)
    _demo_with_an_open_block(env)
    assert tokmon(env, "--demo", "daily", "--json").returncode == 0  # the demo corpus, once
    return env


def _demo_with_an_open_block(env: dict[str, str], margin_s: float = 1800.0) -> None:
    """Make the demo corpus (it ends "now") so that its active 5-hour block stays open for
    ``margin_s`` more seconds: one made minutes before that block's end would leave the tests
    below without an active block part way through. Where the blocks fall depends on the
    seed's working hours (not on the end: they are laid from each day's first activity), so
    the corpus is made again with the next seed until its block ends late enough."""
    from datetime import datetime, timezone

    from tokmon.demo.cache import ensure_demo_corpus
    from tokmon.paths import get_paths

    paths = get_paths(env)
    for seed in range(12):
        ensure_demo_corpus(paths, max_age=0.0, seed=seed)
        blocks = json.loads(tokmon(env, "--demo", "blocks", "--active", "--json").stdout)["blocks"]
        ends = [b["endTime"] for b in blocks if b.get("isActive")]
        end = datetime.fromisoformat(ends[0].replace("Z", "+00:00")) if ends else None
        if end is not None and (end - datetime.now(timezone.utc)).total_seconds() >= margin_s:
            return
    raise AssertionError(f"no demo corpus with an active block open for {margin_s:.0f} s more")


def _first_session(env: dict[str, str], *pre: str) -> str:
    rows = json.loads(tokmon(env, *pre, "session", "--json").stdout)["sessions"]
    return str(rows[0]["sessionId"])


@pytest.mark.parametrize("columns", WIDTHS)
def test_real_corpus_fits_every_width(real_env: dict[str, str], columns: int) -> None:
    totals = json.loads(tokmon(real_env, "daily", "--json").stdout)["totals"]
    cost, tokens = f"${totals['totalCost']:,.2f}", f"{totals['totalTokens']:,}"
    sid = _first_session(real_env)
    for cmd in [*REPORTS, f"session show {sid}", "line --explain", "codex session",
                "gemini daily", "agents daily"]:  # fmt: skip
        text = tty(real_env, *cmd.split(), cols=columns, codes=(0, 1))
        check_fits(text, columns, cmd)
        if columns >= 60 and cmd in ("daily", "session", "session list", "blocks", "agents",
                                     "stats", "weekly", "monthly"):  # fmt: skip
            assert "Too narrow" not in text, (cmd, text)
        if columns >= 60 and cmd in ("daily", "weekly", "monthly", "session"):
            assert cost in text, (cmd, text)  # the total, whole
        if cmd == "agents":
            claude = next(x for x in text.splitlines() if x.strip().startswith("claude"))
            assert cost in claude and tokens in claude, text  # `daily --json`'s totals


@pytest.mark.parametrize("columns", WIDTHS)
def test_demo_data_fits_every_width(demo_env: dict[str, str], columns: int) -> None:
    sid = _first_session(demo_env, "--demo")
    for cmd in [*REPORTS, f"session show {sid}"]:
        text = tty(demo_env, "--demo", *cmd.split(), cols=columns, codes=(0, 1))
        check_fits(text, columns, cmd)
        if columns >= 60 and cmd in ("session list", "blocks", "stats", "daily", "session"):
            assert "Too narrow" not in text, (cmd, text)
    budgets = tty(demo_env, "--demo", "budgets", cols=40)
    check_fits(budgets, 40, "budgets")
    assert "daily" in budgets and "Too narrow" not in budgets  # budget, used, limit, %
    # the demo ends now: an active block, its burn rate and projection on the lines below
    active = tty(demo_env, "--demo", "blocks", "--active", cols=60)
    assert "ACTIVE" in active and "Burn / projection:" in active and "tok/min" in active


@pytest.mark.parametrize("data", ["demo", "real"])
def test_stats_panels_break_between_phrases_at_60_columns(
    request: pytest.FixtureRequest, data: str
) -> None:
    """The Today and Current block panels at 60 columns: each figure stays with its label
    ("cache read 0)" on one line, not "cache" / "read 0)"), no line ends inside a phrase.
    The real corpus has nothing today (all zeros), the demo an active block."""
    env = request.getfixturevalue(f"{data}_env")
    text = tty(env, *(["--demo"] if data == "demo" else []), "stats", cols=60)
    check_fits(text, 60, "stats")
    inside = [x.strip("│ ") for x in text.splitlines() if x.startswith("│")]
    joined = "\n".join(inside)
    phrases = [r"\$[\d,.]+  ·  [\d,]+ tokens", r"\(in [\d,]+,", r"out [\d,]+,",
               r"cache create [\d,]+,", r"cache read [\d,]+\)", r"This week \$[\d,.]+",
               r"this month \$[\d,.]+", r"all time \$[\d,.]+"]  # fmt: skip
    if data == "demo":
        phrases += [r"\(ends \d\d:\d\d UTC\)", r"\([\d,]+ with cache\)", r"\(\d+% of the limit\)"]
    for phrase in phrases:
        assert re.search(phrase, joined), (phrase, joined)
    for line in inside:  # no line ends inside a phrase ("cache" / "read 0)")
        assert not re.search(r"(?:^|\s)(cache|cache create|cache read|\(in|out|\(ends [\d:]+|week|month|"
                             r"time|Burn rate \w+:|Limit)$", line), line  # fmt: skip


def test_pick_menu_at_40_columns_keeps_the_cost_and_the_id(demo_env: dict[str, str]) -> None:
    """40 columns: the menu's lines drop the tokens and the age (the label keeps 17
    columns), the cost and the id stay whole (tests/test_cli_newuser.py checks each
    line's width)."""
    pexpect = pytest.importorskip("pexpect")
    import sys

    child = pexpect.spawn(sys.executable, ["-m", "tokmon", "--demo", "pick"],
                          env={**demo_env, "COLUMNS": "40", "TERM": "xterm"},
                          encoding="utf-8", timeout=60, dimensions=(30, 40))  # fmt: skip
    child.expect(r"Session \(\d+")
    child.expect(r"\$\d[\d,]*\.\d\d  [0-9a-f]{8}")  # a cost, two spaces, a whole id
    child.sendcontrol("c")
    child.expect(pexpect.EOF)


def test_agents_folders_fold_inside_the_terminal(real_env: dict[str, str]) -> None:
    """`agents` at 80 columns: the data folders fold inside their column; at 60 they go
    (a hint says so), the totals stay whole."""
    wide = tty(real_env, "agents", cols=80)
    check_fits(wide, 80, "agents")
    assert "Data" in wide and "Compact layout" not in wide
    narrow = tty(real_env, "agents", cols=60)
    check_fits(narrow, 60, "agents")
    assert "Data" not in narrow and "data folders" in narrow


def test_blocks_and_session_list_fit_60_columns(real_env: dict[str, str]) -> None:
    """The two tables left wider than 60 columns by the sixth session: now tables that fit,
    each row's figures as `--json` has them."""
    blocks = tty(real_env, "blocks", cols=60)
    check_fits(blocks, 60, "blocks")
    data = json.loads(tokmon(real_env, "blocks", "--json").stdout)["blocks"]
    for b in data:
        if not b.get("isGap"):
            assert f"{b['totalTokens']:,}" in blocks and f"${b['costUSD']:,.2f}" in blocks
    listing = tty(real_env, "session", "list", cols=60)
    check_fits(listing, 60, "session list")
    rows = json.loads(tokmon(real_env, "session", "list", "--json").stdout)["sessions"]
    assert f"{len(rows)} sessions" in listing
    for r in rows:  # (a Codex rollout by its uuid, its name's last 36 characters)
        sid = r["sessionId"]
        assert (sid[-36:] if "/rollout-" in sid else sid)[:8] in listing


NARROW_LEFT = ["blocks", "limits", "daily --agent all", "session --agent all"]


@pytest.mark.parametrize("columns", WIDTHS)
def test_last_too_narrow_tables_fit_every_width(real_env: dict[str, str], columns: int) -> None:
    """The tables the seventh session left as the too-narrow line at 40 columns (and
    `session --agent all`, whose Codex ids were 35 characters, at 60 too): now tables that
    fit, rows over two lines where a column had to go under another (the figures whole and
    equal to `--json`'s)."""
    for cmd in NARROW_LEFT:
        text = tty(real_env, *cmd.split(), cols=columns)
        check_fits(text, columns, cmd)
        assert "Too narrow" not in text, (cmd, columns, text)
    blocks = tty(real_env, "blocks", cols=columns)
    for b in json.loads(tokmon(real_env, "blocks", "--json").stdout)["blocks"]:
        if not b.get("isGap"):
            assert f"{b['totalTokens']:,}" in blocks and f"${b['costUSD']:,.2f}" in blocks
    daily = tty(real_env, "daily", "--agent", "all", cols=columns)
    data = json.loads(tokmon(real_env, "daily", "--agent", "all", "--json").stdout)
    for row in data["daily"]:  # (at 80 columns the token types, not the total)
        assert f"${row['totalCost']:,.2f}" in daily and row["agent"] in daily, row
        if columns < 80:
            assert f"{row['totalTokens']:,}" in daily, row
    assert f"${data['totals']['totalCost']:,.2f}" in daily


def _shown_ids(text: str) -> list[str]:
    """The session ids a session table printed: the first word of each row that ends with
    a cost."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and re.fullmatch(r"\$[\d,]+\.\d\d", words[-1]) and words[0] != "Total":
            out.append(words[0])
    return out


@pytest.mark.parametrize("columns", WIDTHS)
def test_all_agents_session_ids_are_short_and_accepted(
    real_env: dict[str, str], columns: int
) -> None:
    """`session --agent all` shows a Codex session by a prefix of its uuid (the rollout
    file's path tells few sessions apart in its first 35 characters), as long as every
    shown id needs to be unique; each shown id is accepted by `session --id` and `session
    show` and names the row's own session (same tokens)."""
    text = tty(real_env, "session", "--agent", "all", cols=columns)
    ids = _shown_ids(text)
    rows = json.loads(tokmon(real_env, "session", "--agent", "all", "--json").stdout)["sessions"]
    assert len(ids) == len([r for r in rows if r["totalTokens"]]) and len(set(ids)) == len(ids)
    assert max(len(i) for i in ids) <= 12, ids
    codex = [r for r in rows if r.get("agent") == "codex"]
    assert codex and all("/rollout-" in r["sessionId"] for r in codex)
    shown_rows = [r for r in rows if r["totalTokens"]]  # the table's rows, in its order
    for shown, row in zip(ids, shown_rows, strict=True):
        sid = row["sessionId"]
        uuid = sid[-36:] if "/rollout-" in sid else sid  # a Codex rollout's name ends with it
        assert uuid.startswith(shown), (shown, sid)
    picks = [0, *[k for k, r in enumerate(shown_rows) if r.get("agent") == "codex"][:3]]
    for k in picks:
        shown, want = ids[k], shown_rows[k]
        got = tokmon(real_env, "session", "--agent", "all", "--id", shown, "--json")
        one = json.loads(got.stdout)
        assert one["sessionId"] == want["sessionId"], (shown, got.stderr)
        assert one["totalTokens"] == want["totalTokens"]
        show = tokmon(real_env, "session", "show", shown)
        assert show.returncode == 0 and want["sessionId"] in show.stdout, show.stderr
    # `session list` shows the same short forms
    listing = tty(real_env, "session", "list", "--agent", "all", cols=columns)
    check_fits(listing, columns, "session list --agent all")
    assert "rollout" not in listing
    for k in picks[1:]:
        assert ids[k][:8] in listing, (ids[k], listing)


@pytest.mark.parametrize("columns", (60, 40))
def test_demo_blocks_and_agent_tables_fit(demo_env: dict[str, str], columns: int) -> None:
    """The demo at 60 and 40 columns: `blocks` (an active block: its status shown under
    the start), `daily --agent all` and `session --agent all` are tables."""
    for cmd in ("blocks", "daily --agent all", "session --agent all", "limits"):
        text = tty(demo_env, "--demo", *cmd.split(), cols=columns)
        check_fits(text, columns, cmd)
        assert "Too narrow" not in text, (cmd, columns, text)
    assert "ACTIVE" in tty(demo_env, "--demo", "blocks", cols=columns)
