"""Drive the real `tokmon watch` dashboard in tmux: live updates, every key, resizing.

Each dashboard runs on its own tmux socket over a private copy of the real corpus
(TOKMON_HOME and CLAUDE_CONFIG_DIR point into tmp dirs). Tests poll capture-pane
with a deadline instead of sleeping.
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
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ALPHA = "fe5e1c67-53e7-4862-81ae-d0e013e3270b"  # real sessions of the corpus' sample-project
BETA = "5c0375b4-57a5-4f26-b12d-d022ee4e51b7"

# slow: tokmon watch in a real tmux pane
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
pytest.importorskip("textual", reason="tokmon watch needs textual (.ci/steps/60-watch.sh)")


def corpus_source() -> Path:
    env = os.environ.get("TOKMON_TEST_CORPUS")
    return Path(env) if env else REPO.parent / "shared" / "corpus" / "claude-real"


def append_assistant(
    corpus: Path,
    session: str,
    *,
    inp: int = 1000,
    out: int = 2000,
    cache_write: int = 30_000,
    cache_read: int = 400_000,
) -> None:
    """Append one assistant response (current timestamp) to a session of the copied corpus."""
    path = corpus / "projects" / "sample-project" / f"{session}.jsonl"
    ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    line = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/path/to/Demo",
        "sessionId": session,
        "version": "2.1.7",
        "type": "assistant",
        "uuid": str(uuid.uuid4()),
        "timestamp": ts,
        "requestId": f"req_{uuid.uuid4().hex}",
        "message": {
            "id": f"msg_{uuid.uuid4().hex}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": inp,
                "cache_creation_input_tokens": cache_write,
                "cache_read_input_tokens": cache_read,
                "output_tokens": out,
            },
        },
    }
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, separators=(",", ":")) + "\n")


class Dashboard:
    """One `tokmon watch` process inside a private tmux server."""

    def __init__(
        self, env: dict[str, str], args: str = "", width: int = 120, height: int = 40
    ) -> None:
        self.sock = f"tokmon-watch-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.env = env
        cmd = f"{shlex.quote(sys.executable)} -m tokmon watch {args}; echo EXITED:$?; sleep 600"
        extra = [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
        self.tmux(
            "new-session", "-d", "-x", str(width), "-y", str(height), "-c", str(REPO), *extra, cmd
        )

    def tmux(self, *args: str) -> str:
        res = subprocess.run(
            ["tmux", "-L", self.sock, "-f", os.devnull, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **self.env},
        )
        if res.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {res.stderr.strip()}")
        return res.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-l", "--", text)

    def wait(self, pred: Callable[[str], bool], timeout: float = 60.0, what: str = "") -> float:
        """Poll the screen until ``pred(screen)``; returns the seconds it took."""
        start = time.monotonic()
        scr = ""
        while time.monotonic() - start < timeout:
            scr = self.screen()
            if pred(scr):
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what or pred}; screen:\n{scr}")

    def wait_text(self, text: str, timeout: float = 60.0) -> float:
        return self.wait(lambda s: text in s, timeout, repr(text))

    def wait_gone(self, text: str, timeout: float = 60.0) -> float:
        return self.wait(lambda s: text not in s, timeout, f"{text!r} to disappear")

    def row(self, label: str) -> str:
        return next((ln for ln in self.screen().splitlines() if label in ln), "")

    def selected(self) -> str:
        return next((ln for ln in self.screen().splitlines() if "▶" in ln), "")

    def pid(self) -> int:
        return int(self.tmux("display", "-p", "#{pane_pid}").strip())

    def close(self) -> None:
        try:
            sock = self.tmux("display", "-p", "#{socket_path}").strip()
        except (RuntimeError, subprocess.TimeoutExpired):
            sock = ""
        try:
            self.tmux("kill-server")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        if sock:
            Path(sock).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A private corpus copy with recent activity in two named sessions."""
    src = corpus_source()
    if not src.is_dir():
        pytest.skip(f"test corpus not found at {src}")
    root = tmp_path_factory.mktemp("watch")
    corpus = root / "claude"
    shutil.copytree(src, corpus)
    home = root / "home"
    env = {
        "TOKMON_HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(corpus),
        "NO_COLOR": "",
        "COLUMNS": "",
        "LINES": "",
    }
    env = {k: v for k, v in env.items() if v}
    from tokmon.metadata.store import MetadataStore
    from tokmon.paths import get_paths

    store = MetadataStore(paths=get_paths({"TOKMON_HOME": str(home)}))
    store.update(ALPHA, name="alpha-sess")
    store.update(BETA, name="beta-sess")
    append_assistant(corpus, ALPHA)
    append_assistant(corpus, BETA)
    # Claude Code's statusLine hands `tokmon line --claude` the official utilisation
    now = int(time.time())
    payload = {
        "session_id": ALPHA,
        "cwd": "/path/to/Demo",
        "model": {"id": "claude-sonnet-4-5"},
        "rate_limits": {
            "five_hour": {"used_percentage": 42, "resets_at": now + 3600},
            "seven_day": {"used_percentage": 13, "resets_at": now + 86400},
        },
    }
    subprocess.run(
        [sys.executable, "-m", "tokmon", "line", "--claude"],
        cwd=REPO,
        timeout=60,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    env["_CORPUS"] = str(corpus)
    return env


def run_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("_")}


@pytest.fixture(scope="module")
def dash(env: dict[str, str]):
    d = Dashboard(run_env(env))
    try:
        d.wait_text("Active sessions (2)", timeout=90)
        yield d
    finally:
        d.close()


def test_dashboard_shows_block_periods_sparkline_and_named_sessions(dash: Dashboard):
    scr = dash.screen()
    for text in (
        "Current block",
        "Time",
        "left",
        "Limit",
        "Tokens",
        "Burn",
        "Proj.",
        "Official",
        "Today",
        "Week",
        "Since reset",
        "Last 6h",
        "alpha-sess",
        "beta-sess",
        "q quit",
    ):
        assert text in scr, text
    assert "Official 5h 42%" in scr and "7d 13%" in scr
    # the newest activity (two appended responses) is in the last sparkline cell
    spark = next(ln for ln in scr.splitlines() if "Last 6h" in ln)
    bars, caption = spark.split(" Last 6h")
    assert bars.strip().endswith("█") and set(bars.strip()) <= set("▁▂▃▄▅▆▇█")
    assert "m/bar · peak" in caption


def _reset_counters(dash: Dashboard) -> None:
    """r: the since-reset counters start from 0 here, whichever tests appended before.

    Pressed only when a counter is not at 0 already: the reset takes its baseline from the
    next snapshot, so an `r` whose effect cannot be seen (counters already at 0) could still
    be pending when the test appends, and under load it then swallows the append. From a
    non-zero counter, the wait for 0 is proof that the reset was applied."""

    def zero(s: str) -> bool:
        return "+0 tokens" in s and all(
            re.search(r"\+0\s", dash.row(label)) for label in ("alpha-sess", "beta-sess")
        )

    if zero(dash.screen()):
        return
    dash.keys("r")
    dash.wait(zero, what="since-reset counters at +0")


def test_appended_transcript_line_shows_on_screen(dash: Dashboard, env):
    _reset_counters(dash)
    append_assistant(
        Path(env["_CORPUS"]), ALPHA, inp=1000, out=2000, cache_write=30_000, cache_read=400_000
    )  # 433,000 tokens
    dash.wait_text("+433k tokens")  # the latency is bench/bench_watch.py's figure
    assert "+433k" in dash.row("alpha-sess")
    assert "+0" in dash.row("beta-sess")
    # a second append accumulates (433k + 433k = 866k)
    append_assistant(Path(env["_CORPUS"]), ALPHA)
    dash.wait_text("+866k tokens")


def test_updates_repaint_in_place_without_clearing_the_screen(dash: Dashboard, env, tmp_path):
    """No flicker: an update rewrites only changed cells; idle, almost nothing is written."""
    out = tmp_path / "pane.bin"

    def size() -> int:
        return out.stat().st_size if out.exists() else 0

    _reset_counters(dash)
    dash.tmux("pipe-pane", "-o", f"cat >> {shlex.quote(str(out))}")
    try:
        # idle: a 2.5 s window once earlier keys and refreshes have been painted (a previous
        # test's last change may still be on its way to the screen)
        deadline = time.monotonic() + 60
        while True:
            mark = size()
            time.sleep(2.5)
            idle = size() - mark
            if idle < 4000 or time.monotonic() > deadline:
                break
        start = size()
        append_assistant(
            Path(env["_CORPUS"]), ALPHA, inp=10_000, out=0, cache_write=0, cache_read=0
        )
        dash.wait_text("+10.0k tokens")
        time.sleep(0.3)
        update = size() - start
        # a full repaint for comparison: the window is resized (and then restored)
        dash.tmux("resize-window", "-x", "119", "-y", "40")
        dash.wait(lambda s: len(s.splitlines()[1]) == 119, what="repaint at 119 columns")
        time.sleep(0.3)
        mark = size()
        dash.tmux("resize-window", "-x", "120", "-y", "40")
        dash.wait(lambda s: len(s.splitlines()[1]) == 120, what="repaint at 120 columns")
        time.sleep(0.3)
        full = size() - mark
    finally:
        dash.tmux("pipe-pane")
    data = out.read_bytes()
    print(f"bytes written: idle 2.5 s {idle}, one update {update}, full frame {full}")
    for clear in (b"\x1b[2J", b"\x1b[J", b"\x1b[0J", b"\x1bc"):
        assert clear not in data, f"screen cleared with {clear!r}"
    assert idle < 4000, f"{idle} bytes written while idle for 2.5 s"
    assert 0 < update < full * 0.6, f"{update} bytes for one update, {full} for a full frame"


def test_r_resets_the_since_reset_counters(dash: Dashboard, env):
    append_assistant(Path(env["_CORPUS"]), ALPHA, inp=1000, out=0, cache_write=0, cache_read=0)
    dash.wait(lambda s: "+0 tokens" not in s, what="non-zero since-reset counter")
    dash.keys("r")
    dash.wait_text("+0 tokens")
    dash.wait(lambda s: re.search(r"\+0\s", dash.row("alpha-sess")), what="row delta reset")
    # counting restarts from the new baseline
    append_assistant(Path(env["_CORPUS"]), BETA, inp=0, out=5000, cache_write=0, cache_read=0)
    dash.wait_text("+5.00k tokens")
    assert "+5.00k" in dash.row("beta-sess")


def _session_order(dash: Dashboard) -> list[str]:
    lines = dash.screen().splitlines()
    return [
        label
        for _, label in sorted(
            (i, label)
            for i, ln in enumerate(lines)
            for label in ("alpha-sess", "beta-sess")
            if label in ln
        )
    ]


def test_arrow_and_jk_keys_move_the_selection(dash: Dashboard):
    for _ in range(3):
        dash.keys("k")  # clamps at the top row
    top, second = _session_order(dash)
    dash.wait(lambda s: top in dash.selected(), what="top row selected")
    for down, up in (("j", "k"), ("Down", "Up")):
        dash.keys(down)
        dash.wait(lambda s: second in dash.selected(), what=f"{down} to select {second}")
        dash.keys(down)  # clamps at the last row
        time.sleep(0.1)
        assert second in dash.selected()
        dash.keys(up)
        dash.wait(lambda s: top in dash.selected(), what=f"{up} to select {top}")


def _select(dash: Dashboard, label: str) -> None:
    """Select the row of ``label`` (two rows: k clamps at the top one, j at the last)."""
    top, _second = _session_order(dash)
    dash.keys("k" if label == top else "j")
    dash.wait(lambda s: label in dash.selected(), what=f"{label} selected")


def test_enter_opens_session_detail_and_escape_closes_it(dash: Dashboard):
    _select(dash, "alpha-sess")
    dash.keys("Enter")
    dash.wait_text(ALPHA)
    scr = dash.screen()
    assert "/path/to/Demo" in scr and "claude-sonnet-4-5" in scr and "By type" in scr
    dash.keys("Escape")
    dash.wait_gone(ALPHA)


def test_t_tags_the_selected_session_in_the_metadata_store(dash: Dashboard, env):
    _select(dash, "beta-sess")
    dash.keys("t")
    dash.wait_text("Tag beta-sess")
    dash.type("urgent review")
    dash.keys("Enter")
    dash.wait(lambda s: "#review #urgent" in dash.row("beta-sess"), what="tags in the row")
    from tokmon.metadata.store import MetadataStore
    from tokmon.paths import get_paths

    store = MetadataStore(paths=get_paths({"TOKMON_HOME": env["TOKMON_HOME"]}))
    assert store.get(BETA)["tags"] == ["review", "urgent"]
    # "-tag" removes
    dash.keys("t")
    dash.wait_text("Tag beta-sess")
    dash.type("-review")
    dash.keys("Enter")
    dash.wait(lambda s: "#review" not in dash.row("beta-sess"), what="tag removed")
    assert store.get(BETA)["tags"] == ["urgent"]
    # an invalid tag is refused with a message; nothing is written
    dash.keys("t")
    dash.wait_text("Tag beta-sess")
    dash.type("bad/tag")
    dash.keys("Enter")
    dash.wait_text("tag failed")
    assert store.get(BETA)["tags"] == ["urgent"]
    # escape cancels without writing
    dash.keys("t")
    dash.wait_text("Tag beta-sess")
    dash.type("nope")
    dash.keys("Escape")
    dash.wait_gone("Tag beta-sess")
    assert store.get(BETA)["tags"] == ["urgent"]


def test_slash_filters_sessions_and_escape_clears(dash: Dashboard, env):
    from tokmon.metadata.store import MetadataStore
    from tokmon.paths import get_paths

    store = MetadataStore(paths=get_paths({"TOKMON_HOME": env["TOKMON_HOME"]}))
    store.update(BETA, add_tags=["urgent"])  # (the t test sets it too; this one must not need it)
    dash.wait(lambda s: "#urgent" in dash.row("beta-sess"), what="the tag shown")
    dash.keys("/")
    dash.type("beta")
    dash.wait_text("filter: beta")
    dash.wait_gone("alpha-sess")
    assert "beta-sess" in dash.screen() and "(1 of 2" in dash.screen()
    dash.keys("Enter")  # keep the filter, leave the input: keys drive the dashboard again
    time.sleep(0.2)
    assert "alpha-sess" not in dash.screen()
    dash.keys("Escape")
    dash.wait_text("alpha-sess")
    assert "Active sessions (2)" in dash.screen()
    dash.keys("/")
    dash.type("#urgent")  # tag search
    dash.wait(lambda s: "alpha-sess" not in s and "beta-sess" in s, what="#urgent filter")
    dash.keys("Escape")
    dash.wait_text("alpha-sess")


def test_question_mark_toggles_the_help_overlay(dash: Dashboard):
    dash.keys("?")
    dash.wait_text("select a session")
    assert "this help" in dash.screen()
    dash.keys("Escape")
    dash.wait_gone("this help")
    dash.keys("?")
    dash.wait_text("this help")
    dash.keys("?")
    dash.wait_gone("this help")


def test_resizing_switches_to_compact_and_back(dash: Dashboard):
    dash.tmux("resize-window", "-x", "60", "-y", "12")
    dash.wait(
        lambda s: s.lstrip().startswith("blk ") and "Active sessions" not in s,
        what="compact layout",
    )
    line = dash.screen().strip().splitlines()[0]
    assert len(line) <= 60 and "left" in line
    dash.tmux("resize-window", "-x", "100", "-y", "30")
    dash.wait_text("Active sessions (2)")
    dash.tmux("resize-window", "-x", "120", "-y", "40")
    dash.wait(lambda s: "Current block" in s and "Project" in s, what="wide layout")


def test_q_quits_with_status_zero(env):
    d = Dashboard(run_env(env))  # its own: the module's dashboard serves the other tests
    try:
        d.wait_text("Active sessions (2)", timeout=90)
        d.keys("q")
        d.wait_text("EXITED:0")
    finally:
        d.close()


def test_compact_mode_is_one_line_and_live(env):
    d = Dashboard(run_env(env), args="--compact", width=100, height=10)
    try:
        d.wait(lambda s: "blk " in s and "left" in s, what="compact line")
        lines = [ln for ln in d.screen().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("blk ")
        assert "│ 5h 42% │" in lines[0] and "│ today " in lines[0]
        assert "+0" in lines[0]
        append_assistant(Path(env["_CORPUS"]), BETA, inp=100, out=2400, cache_write=0, cache_read=0)
        d.wait_text("+2.50k")
        d.keys("C-c")  # ctrl+c ends like a KeyboardInterrupt: status 130
        d.wait_text("EXITED:130")
    finally:
        d.close()


def test_watch_without_a_terminal_is_a_clear_error(env):
    res = subprocess.run(
        [sys.executable, "-m", "tokmon", "watch"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **run_env(env)},
    )
    assert res.returncode == 2
    assert res.stderr.strip().startswith("tokmon: error: watch needs an interactive terminal")
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_bad_interval_is_a_clear_error(env):
    res = subprocess.run(
        [sys.executable, "-m", "tokmon", "watch", "--interval", "0"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **run_env(env)},
    )
    assert res.returncode == 2 and "--interval" in res.stderr
