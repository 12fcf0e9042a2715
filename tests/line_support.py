"""Helpers for the ``tokmon line`` / shell / tmux / statusLine tests (not a test module)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from conftest import REPO, corpus_path, iso, need_corpus


def make_env(tmp: Path, copy_corpus: bool = True) -> dict[str, str]:
    """An environment with TOKMON_HOME in ``tmp`` and CLAUDE_CONFIG_DIR on a copy of the corpus."""
    claude = tmp / "claude"
    if copy_corpus:
        if not (corpus_path() / "projects").is_dir():
            need_corpus(corpus_path())
        shutil.copytree(corpus_path(), claude)
    else:
        (claude / "projects").mkdir(parents=True)
    env = dict(os.environ)
    for key in list(env):
        if key.startswith(("TOKMON_", "XDG_")) or key in ("NO_COLOR", "TMUX", "TMUX_PANE"):
            del env[key]
    env.update(
        TOKMON_HOME=str(tmp / "tokmon-home"),
        CLAUDE_CONFIG_DIR=str(claude),
        PYTHONPATH=str(REPO),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def iso_now(ts: float | None = None) -> str:
    return iso(datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc))


def template_line(env: dict[str, str]) -> tuple[Path, dict]:
    """A main-session transcript of the copied corpus and its last top-level assistant line."""
    projects = Path(env["CLAUDE_CONFIG_DIR"]) / "projects"
    for path in sorted(projects.glob("*/*.jsonl")):
        if path.name.startswith("agent-"):
            continue
        last = None
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if (
                isinstance(obj, dict)
                and obj.get("type") == "assistant"
                and not obj.get("isSidechain")
                and isinstance(obj.get("message", {}).get("usage"), dict)
                and obj.get("message", {}).get("model", "").startswith("claude-")
                and obj.get("cwd")
            ):
                last = obj
        if last is not None:
            return path, last
    raise RuntimeError("no assistant line in the corpus copy")


def append_assistant(
    env: dict[str, str],
    *,
    input_tokens: int = 1000,
    output_tokens: int = 2000,
    cache_creation: int = 0,
    cache_read: int = 0,
    ts: float | None = None,
    path: Path | None = None,
    cwd: str | None = None,
) -> dict:
    """Append one assistant line shaped like the corpus's, timestamped now; returns it."""
    tpath, obj = template_line(env)
    path = path or tpath
    obj = json.loads(json.dumps(obj))
    obj["timestamp"] = iso_now(ts)
    obj["uuid"] = str(uuid.uuid4())
    obj["requestId"] = "req_" + uuid.uuid4().hex
    if cwd is not None:
        obj["cwd"] = cwd
    msg = obj["message"]
    msg["id"] = "msg_" + uuid.uuid4().hex
    msg["usage"] = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_creation,
                           "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }  # fmt: skip
    with open(path, "ab") as fh:
        fh.write(json.dumps(obj, separators=(",", ":")).encode("utf-8") + b"\n")
    return obj


def project_env(tmp: Path, config: str) -> tuple[dict[str, str], Path]:
    """A corpus copy plus a current block of 800k tokens in ``tmp/project``, tokmon config
    ``config`` (TOML) and a built snapshot: the set-up of the tmux, shell and starship tests."""
    env = make_env(tmp)
    project = tmp / "project"
    project.mkdir()
    append_assistant(env, input_tokens=500_000, output_tokens=300_000, cwd=str(project))
    cfg = Path(env["TOKMON_HOME"]) / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(config, encoding="utf-8")
    refresh_now(env)
    return env, project


def tokmon_cmd() -> list[str]:
    return [sys.executable, "-m", "tokmon"]


def run_line(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess[str]:
    kw.setdefault("timeout", 60)
    return subprocess.run(
        [*tokmon_cmd(), "line", *args], env=env, capture_output=True, text=True, **kw
    )


def refresh_now(env: dict[str, str]) -> None:
    """Build the snapshot synchronously (what the background refresher does)."""
    subprocess.run(
        [sys.executable, "-c", "from tokmon.statusline.refresher import refresh; refresh(wait=True)"],
        env=env, check=True, timeout=120,
    )  # fmt: skip


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, step: float = 0.1):
    """Poll ``predicate`` until truthy; returns its value or raises AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")
