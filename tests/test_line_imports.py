"""Issue 12 item 4: the statusline's fast paths import only what they need.

``python -X importtime`` lists every module a process imports; the warm ``tokmon line`` (fast
command and console script) and Claude Code's statusLine command (``fast.py line --claude``,
figures unchanged since the last call) must stay off the heavy standard-library chains and
import only the tokmon modules listed here.  Latency itself is measured by bench/bench_line.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from line_support import append_assistant, make_env, refresh_now

from tokmon.statusline.main import fast_command

#: chains that cost milliseconds each (typing ~8 ms, re + enum, pathlib, dataclasses...)
FORBIDDEN = {"dataclasses", "pathlib", "tempfile", "typing", "re", "json", "enum", "datetime",
             "zoneinfo", "subprocess", "threading", "inspect", "platformdirs", "sqlite3",
             "shutil", "argparse", "math", "functools", "collections"}  # fmt: skip
#: not loaded by ``python -S`` and more than a millisecond to import (tokmon.oslite stands in);
#: select: a shared library to load, needed only when the payload is not there at once
FAST_FORBIDDEN = FORBIDDEN | ({"os", "select"} if os.name != "nt" else set())
#: the plain line's modules carry no ``from __future__ import annotations`` (an import)
LINE_FORBIDDEN = FAST_FORBIDDEN | {"__future__"}
TOKMON_LINE = {"tokmon", "tokmon.oslite", "tokmon.statusline", "tokmon.fmt", "tokmon.statusline.formats",
               "tokmon.statusline.locate", "tokmon.statusline.main", "tokmon.__main__"}  # fmt: skip
TOKMON_CLAUDE = TOKMON_LINE | {"tokmon.quickjson", "tokmon.statusline.claude", "tokmon.textsafe",
                               "tokmon.core", "tokmon.core.official", "tokmon.limits", "tokmon.limits.record"}  # fmt: skip
PAYLOAD = json.dumps({"session_id": "imports-1", "session_name": "imports",
                      "model": {"display_name": "Opus"}, "cost": {"total_cost_usd": 2.5},
                      "context_window": {"used_percentage": 30},
                      "rate_limits": {"five_hour": {"used_percentage": 40, "resets_at": 4102444800},
                                      "seven_day": {"used_percentage": 10,
                                                    "resets_at": 4102444800}}})  # fmt: skip


def imported(argv: list[str], env: dict[str, str], stdin: str | Path | None = None
             ) -> tuple[set, str]:  # fmt: skip
    """Modules ``argv`` imports, and its stdout; ``stdin`` is text, or a file to read (ready
    at once, like the payload Claude Code has written before we read it)."""
    argv = [argv[0], "-X", "importtime", *argv[1:]]
    if isinstance(stdin, Path):
        with open(stdin, "rb") as fh:
            r = subprocess.run(argv, env=env, stdin=fh, capture_output=True, text=True,
                               timeout=120)  # fmt: skip
    else:
        r = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    names = {ln.rsplit("|", 1)[1].strip() for ln in r.stderr.splitlines()
             if ln.startswith("import time:") and "|" in ln}  # fmt: skip
    names.discard("package")  # the header line
    return names, r.stdout


def _warm_env(tmp: Path) -> dict[str, str]:
    env = make_env(tmp)
    append_assistant(env, input_tokens=1000, output_tokens=2000)  # an active 5-hour block
    cfg = Path(env["TOKMON_HOME"]) / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("[line]\nstale_seconds = 3600\n", encoding="utf-8")
    refresh_now(env)
    return env


def test_fast_command_and_statusline_import_only_what_they_need(tmp_path: Path) -> None:
    env = _warm_env(tmp_path)
    names, out = imported([*fast_command(), "line"], env)
    assert out.startswith("5h "), out
    assert not names & LINE_FORBIDDEN, sorted(names & LINE_FORBIDDEN)
    assert {n for n in names if n.startswith("tokmon")} <= TOKMON_LINE

    first = subprocess.run([*fast_command(), "line", "--claude"], env=env, input=PAYLOAD,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert first.returncode == 0 and "imports $2.50" in first.stdout, first.stdout
    official = Path(env["TOKMON_HOME"]) / "state" / "official.json"
    written = official.stat().st_mtime_ns
    payload_file = tmp_path / "payload.json"
    payload_file.write_text(PAYLOAD, encoding="utf-8")
    names, out = imported([*fast_command(), "line", "--claude"], env, payload_file)
    assert " 40%[now]" in out and "ctx 30%" in out, out
    assert not names & FAST_FORBIDDEN, sorted(names & FAST_FORBIDDEN)
    assert {n for n in names if n.startswith("tokmon")} <= TOKMON_CLAUDE
    assert official.stat().st_mtime_ns == written  # unchanged figures: no rewrite

    changed = PAYLOAD.replace('"total_cost_usd": 2.5', '"total_cost_usd": 3.75')
    r = subprocess.run([*fast_command(), "line", "--claude"], env=env, input=changed,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0 and "imports $3.75" in r.stdout, r.stdout
    stored = json.loads(official.read_text())["sessions"]["imports-1"]
    assert stored["costUSD"] == 3.75 and stored["fiveHour"]["usedPercentage"] == 40


def test_console_script_line_imports_only_what_it_needs(tmp_path: Path) -> None:
    env = _warm_env(tmp_path)
    base, _ = imported([sys.executable, "-c", "pass"], env)  # site and .pth files
    names, out = imported([sys.executable, "-m", "tokmon", "line"], env)
    assert out.startswith("5h "), out
    extra = names - base
    assert not extra & FORBIDDEN, sorted(extra & FORBIDDEN)
    assert {n for n in extra if n.startswith("tokmon")} <= TOKMON_LINE


def test_official_record_rewrites_only_changed_figures_or_after_the_heartbeat(
    tmp_path: Path,
) -> None:
    from tokmon.core import official
    from tokmon.statusline.claude import LightPaths

    paths = LightPaths({"TOKMON_HOME": str(tmp_path)})
    payload = json.loads(PAYLOAD)
    stored = Path(paths.official_file)

    def observed() -> float:
        return json.loads(stored.read_text())["sessions"]["imports-1"]["observedAt"]

    assert official.record(paths, payload, now=1000.0)["observedAt"] == 1000.0
    assert observed() == 1000.0
    rec = official.record(paths, payload, now=1030.0)  # same figures, 30 s later: no write
    assert rec["observedAt"] == 1030.0 and rec["fiveHour"]["usedPercentage"] == 40
    assert observed() == 1000.0
    official.record(paths, payload, now=1070.0)  # same figures, 70 s after the write
    assert observed() == 1070.0
    payload["context_window"]["used_percentage"] = 31  # a changed figure: written at once
    official.record(paths, payload, now=1075.0)
    data = json.loads(stored.read_text())["sessions"]["imports-1"]
    assert data["observedAt"] == 1075.0 and data["contextWindow"]["usedPercentage"] == 31
    # a payload without the 5 h window keeps the stored one and is "unchanged"
    del payload["rate_limits"]
    rec = official.record(paths, payload, now=1080.0)
    assert rec["fiveHour"]["usedPercentage"] == 40 and observed() == 1075.0
