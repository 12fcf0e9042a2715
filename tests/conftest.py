"""Shared fixtures: the real corpus, isolated tokmon homes, transcript line builders."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

# The suite holds both scanners to the same results itself, and sets TOKMON_NO_NATIVE in the
# tests that are about it; one left set in a developer's shell would turn the native path off
# for every test written for it (they then fail: they assert that it ran).
os.environ.pop("TOKMON_NO_NATIVE", None)


def corpus_path() -> Path:
    """The shared real corpus: env TOKMON_TEST_CORPUS or ``<repo>/../shared/corpus/claude-real``."""
    env = os.environ.get("TOKMON_TEST_CORPUS")
    return Path(env) if env else REPO.parent / "shared" / "corpus" / "claude-real"


def need_corpus(p: Path) -> None:
    """Skip (visibly) when a shared corpus is absent; under CI=true that is a failure."""
    msg = f"shared corpus not found at {p} (clone with ../shared beside it, or set TOKMON_TEST_CORPUS)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)


def agents_corpus() -> Path:
    """The shared agents' corpus: env TOKMON_AGENTS_CORPUS or ``<repo>/../shared/corpus/agents``."""
    env = os.environ.get("TOKMON_AGENTS_CORPUS")
    return Path(env) if env else REPO.parent / "shared" / "corpus" / "agents"


def need_agents_corpus() -> Path:
    """The agents' corpus, or a visible skip (a failure under CI=true) when it is absent."""
    p = agents_corpus()
    if not (p / "codex").is_dir():
        need_corpus(p)
    return p


def need_both_corpora() -> tuple[Path, Path]:
    """The Claude corpus and the agents' corpus, or a visible skip (a failure under CI=true)
    when either is absent."""
    claude = corpus_path()
    if not (claude / "projects").is_dir():
        need_corpus(claude)
    return claude, need_agents_corpus()


AGENT_DIRS = {  # each agent's env var and where the agents' corpus keeps its data
    "codex": ("CODEX_HOME", "codex"),
    "gemini": ("GEMINI_DATA_DIR", "gemini/tmp"),
    "opencode": ("OPENCODE_DATA_DIR", "opencode"),
    "qwen": ("QWEN_DATA_DIR", "qwen"),
    "amp": ("AMP_DATA_DIR", "amp"),
    "copilot": ("COPILOT_HOME", "copilot"),
}


def agents_env(root: Path, *agents: str) -> dict[str, str]:
    """The env vars that point each of ``agents`` (default: all) at its data under ``root``,
    laid out as the agents' corpus is."""
    return {AGENT_DIRS[a][0]: str(root / AGENT_DIRS[a][1]) for a in (agents or tuple(AGENT_DIRS))}


def sum_by_agent(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per agent ``{"cost", "tokens"}`` summed over the rows of ``daily --agent all --json``."""
    out: dict[str, dict[str, float]] = {}
    for row in report["daily"]:
        acc = out.setdefault(row["agent"], {"cost": 0.0, "tokens": 0})
        acc["cost"] += row["totalCost"]
        acc["tokens"] += row["totalTokens"]
    return out


@pytest.fixture(scope="session")
def real_corpus() -> Path:
    p = corpus_path()
    if not (p / "projects").is_dir():
        need_corpus(p)
    return p


@pytest.fixture
def corpus_copy(real_corpus: Path, tmp_path: Path) -> Path:
    """A writable copy of the real corpus (a Claude config dir)."""
    dest = tmp_path / "claude"
    shutil.copytree(real_corpus, dest)
    return dest


@pytest.fixture
def tokmon_home(tmp_path: Path) -> Path:
    h = tmp_path / "tokmon-home"
    h.mkdir()
    return h


@pytest.fixture
def env(tokmon_home: Path, tmp_path: Path) -> dict[str, str]:
    """A clean environment: isolated TOKMON_HOME and HOME, no CLAUDE_CONFIG_DIR yet."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    fake_home = tmp_path / "home"
    fake_home.mkdir(exist_ok=True)
    e.update(
        {
            "TOKMON_HOME": str(tokmon_home),
            "HOME": str(fake_home),
            "NO_COLOR": "1",
            "COLUMNS": "160",
            "TZ": "UTC",
        }
    )
    return e


class CLIResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(env: dict[str, str]) -> Callable[..., CLIResult]:
    """Run the CLI in-process with injected env and streams."""
    from tokmon.cli.main import run

    def _run(*argv: str, extra_env: dict[str, str] | None = None, stdin: str = "") -> CLIResult:
        out, err = io.StringIO(), io.StringIO()
        code = run(
            list(argv),
            env={**env, **(extra_env or {})},
            stdin=io.StringIO(stdin),
            stdout=out,
            stderr=err,
        )
        return CLIResult(code, out.getvalue(), err.getvalue())

    return _run


def run_tokmon(args: list[str], env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tokmon`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "tokmon", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=kw.pop("timeout", 120),
        **kw,
    )


def iso(dt: datetime) -> str:
    return (
        dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{dt.microsecond // 1000:03d}Z"
    )


def assistant_line(
    ts: datetime | str,
    *,
    msg_id: str | None,
    req_id: str | None,
    session: str = "11111111-2222-3333-4444-555555555555",
    cwd: str = "/home/u/proj",
    model: str = "claude-sonnet-4-5-20250929",
    inp: int = 10,
    out: int = 20,
    cc: int = 0,
    cr: int = 0,
    cc_1h: int = 0,
    extra: dict[str, Any] | None = None,
) -> str:
    """One compact assistant transcript line shaped like Claude Code's."""
    usage: dict[str, Any] = {
        "input_tokens": inp,
        "cache_creation_input_tokens": cc,
        "cache_read_input_tokens": cr,
        "output_tokens": out,
    }
    if cc_1h:
        usage["cache_creation"] = {
            "ephemeral_5m_input_tokens": cc - cc_1h,
            "ephemeral_1h_input_tokens": cc_1h,
        }
    obj: dict[str, Any] = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session,
        "version": "2.1.7",
        "type": "assistant",
        "uuid": "u-" + str(msg_id),
        "timestamp": ts if isinstance(ts, str) else iso(ts),
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "hello"}],
            "usage": usage,
        },
    }
    if req_id is not None:
        obj["requestId"] = req_id
    if msg_id is None:
        del obj["message"]["id"]
    if extra:
        obj.update(extra)
    return json.dumps(obj, separators=(",", ":"))


def settle_clock(scratch: Path) -> None:
    """Wait until the file system's clock has moved past every change made so far (a probe
    file's mtime moves on), so that a later change gives a file or directory a new
    mtime/ctime even where timestamps are coarse."""
    probe = scratch / "probe"
    probe.write_text("0")
    first = probe.stat().st_mtime_ns
    deadline = time.monotonic() + 30
    while probe.stat().st_mtime_ns <= first:
        assert time.monotonic() < deadline, "the file system clock does not move"
        time.sleep(0.01)
        probe.write_text("1")


def session_line(
    sid: str,
    cwd: str,
    ts: float,
    n: int,
    inp: int,
    out: int,
    model: str = "claude-sonnet-4-5-20250929",
) -> str:
    """Response ``n`` of session ``sid`` at epoch ``ts`` (ids unique per session and n)."""
    return assistant_line(
        datetime.fromtimestamp(ts, timezone.utc),
        msg_id=f"msg_{sid}_{n}",
        req_id=f"req_{sid}_{n}",
        session=sid,
        cwd=cwd,
        model=model,
        inp=inp,
        out=out,
    )


def write_lines(path: Path, lines: list[str], mode: str = "a", newline_at_end: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + ("\n" if newline_at_end else "")
    with open(path, mode, encoding="utf-8") as fh:
        fh.write(text)


@pytest.fixture
def native_scanner() -> Iterator[Any]:
    """The native scanner's module (a skip without it, a failure under CI=true); afterwards,
    also after a failure, every switch is back (native_support.scanner_state: which scanner
    runs, the fallback's budget, the pre-pass and its build)."""
    from native_support import module, need_native, scanner_state

    need_native()
    with scanner_state():
        yield module()


@pytest.fixture
def python_scanner() -> Iterator[None]:
    """The pure-Python scanner pinned for the test (msgspec runs and all); afterwards every
    switch is back (native_support.scanner_state)."""
    from native_support import scanner_state

    from tokmon.core import parser

    with scanner_state():
        parser._native = None
        yield


@pytest.fixture(autouse=True)
def _parser_tests_pin_the_python_scanner(request: pytest.FixtureRequest) -> None:
    """tests/test_parser.py pins the pure-Python scanner (msgspec runs and all); the native
    scanner is held to the same cases, and to that path, by tests/test_native_scan.py."""
    if request.module.__name__.rsplit(".", 1)[-1] == "test_parser":
        request.getfixturevalue("python_scanner")


def daily_json_logged(corpus: Path, home: Path, *extra: tuple[str, str]) -> tuple[Any, str]:
    """``python -m tokmon daily --json`` over the Claude config dir ``corpus`` with
    ``TOKMON_HOME`` and ``HOME`` at ``home``, its debug log on (``extra``: more variables):
    the parsed answer and the log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    env.update(
        CLAUDE_CONFIG_DIR=str(corpus),
        TOKMON_HOME=str(home),
        TZ="UTC",
        HOME=str(home),
        TOKMON_LOG_LEVEL="debug",
        **dict(extra),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--json"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr
