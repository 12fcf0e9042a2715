"""Helpers for hsurface's hostile tests (not a test module): isolated environments, small
transcripts with known usage, and the ways users start tokmon."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

#: control characters a hostile transcript may carry: OSC 52 clipboard, OSC 2 window title,
#: hidden / blinking text, a C1 CSI, a bidi override
ESCAPES = "\x1b]52;c;cHduZWQ=\x07\x1b[5m\x1b]2;HACKED\x07\x1b[8m\x9b31m\u202e"
EVIL_BYTES = ("\x1b", "\x07", "\x9b", "\u202e")


def hs_env(tmp: Path, **extra: str) -> dict[str, str]:
    """A clean environment: TOKMON_HOME and HOME in ``tmp``, CLAUDE_CONFIG_DIR ``tmp/claude``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOKMON_", "CLAUDE_", "XDG_", "PYTHON")) or k == "PYTHONPATH"}  # fmt: skip
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    (tmp / "claude" / "projects").mkdir(parents=True, exist_ok=True)
    env.update(TOKMON_HOME=str(tmp / "tokmon-home"), HOME=str(home),
               CLAUDE_CONFIG_DIR=str(tmp / "claude"), TZ="UTC", NO_COLOR="1",
               COLUMNS="200")  # fmt: skip
    env.update(extra)
    return env


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{dt.microsecond // 1000:03d}Z"
    )


def assistant(mid: str, *, sid: str = "sess-1", cwd: str = "/p", inp: int = 1000,
              out: int = 500, when: datetime | None = None,
              model: str = "claude-sonnet-4-20250514") -> str:  # fmt: skip
    """One compact assistant transcript line with known usage."""
    when = when or datetime.now(timezone.utc) - timedelta(minutes=5)
    return json.dumps({"type": "assistant", "sessionId": sid, "cwd": cwd, "timestamp": iso(when),
                       "requestId": f"r-{mid}", "message": {"id": mid, "model": model,
                       "usage": {"input_tokens": inp, "output_tokens": out}}},
                      separators=(",", ":"))  # fmt: skip


def write_transcript(env: dict[str, str], project: str, name: str, lines: list[str]) -> Path:
    d = Path(env["CLAUDE_CONFIG_DIR"]) / "projects" / project
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return p


def tokmon_argv() -> list[str]:
    """How a user runs tokmon: the console script beside this interpreter (its sys.path[0] is
    the bin dir, like any installed command)."""
    for name in ("tokmon", "tokmon.exe"):
        script = Path(sys.executable).parent / name
        if script.is_file():
            return [str(script)]
    boot = ("import sys;sys.path[:]=[p for p in sys.path if p not in ('','.')];"
            "from tokmon.__main__ import main;sys.exit(main())")  # fmt: skip
    return [sys.executable, "-c", boot]


def fast_argv(env: dict[str, str]) -> list[str]:
    """The statusLine fast command, as ``tokmon line --fast-command`` prints it."""
    r = subprocess.run([*tokmon_argv(), "line", "--fast-command"], env=env, capture_output=True,
                       text=True, timeout=60, cwd=str(REPO))  # fmt: skip
    assert r.returncode == 0, r.stderr
    return shlex.split(r.stdout.strip())


def run(argv: list[str], env: dict[str, str], cwd: Path | str, stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(argv, env=env, cwd=str(cwd), input=stdin, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def wait_for(pred: Any, timeout: float = 90.0, what: str = "condition") -> None:
    """Poll ``pred`` until true (generous: CI is a loaded 2-core machine)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def refresher_idle(env: dict[str, str]) -> bool:
    """True when no background refresher holds ``refresh.lock``."""
    lock = Path(env["TOKMON_HOME"]) / "cache" / "line" / "refresh.lock"
    if not lock.exists():
        return True
    sys.path.insert(0, str(REPO))
    try:
        from tokmon.statusline.refresher import lock_busy
    finally:
        sys.path.pop(0)
    return not lock_busy(str(lock))
