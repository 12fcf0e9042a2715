"""Shared helpers for the server tests (no tests here): real LSP / JSON-lines clients.

The LSP client is pytest-lsp's ``LanguageClient`` with plain-dict params/results; the
JSON-lines client drives ``python -m tokmon serve --jsonl`` as a real subprocess.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol.json_rpc import JsonRPCResponseMessage
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import register_lsp_features

REPO = Path(__file__).resolve().parent.parent

# Reference figures of the shared corpus (ccusage@20.0.24 output, /work/shared/corpus/README.md)
REF_TOTALS = {
    "inputTokens": 61_872,
    "outputTokens": 237_878,
    "cacheCreationTokens": 2_663_638,
    "cacheReadTokens": 41_046_263,
}
REF_COST = 36.2335
REF_SESSIONS = 46
REF_BLOCKS = 32

NOTES = ("tokmon/usageChanged", "tokmon/metadataChanged")


def corpus_path() -> Path:
    """The shared real corpus; a test that asks for it is skipped (visibly) when it is absent."""
    from conftest import need_corpus

    env = os.environ.get("TOKMON_TEST_CORPUS")
    p = Path(env) if env else REPO.parent / "shared" / "corpus" / "claude-real"
    if not (p / "projects").is_dir():
        need_corpus(p)
    return p


def server_env(home: Path, claude_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a server subprocess (never the real home)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    fake_home = home / "home"
    fake_home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "TOKMON_HOME": str(home / "tokmon"),
            "CLAUDE_CONFIG_DIR": str(claude_dir),
            "HOME": str(fake_home),
            "TZ": "UTC",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _converter() -> Any:
    from tokmon.server.lsp import raw_converter

    conv = raw_converter()
    conv.register_structure_hook(JsonRPCResponseMessage, lambda obj, cls: cls(**obj))
    return conv


class TokmonClient(LanguageClient):
    """pytest-lsp client that keeps every tokmon notification (plain dicts)."""

    notes: dict[str, list[dict[str, Any]]]


def make_client() -> TokmonClient:
    client = TokmonClient(converter_factory=_converter)
    register_lsp_features(client)
    client.notes = {m: [] for m in NOTES}
    for method in NOTES:
        client.feature(method)(lambda params, m=method: client.notes[m].append(params))
    return client


async def start_lsp(
    env: dict[str, str],
    *,
    workspace: str | None = None,
    progress: bool = True,
    args: tuple[str, ...] = (),
) -> TokmonClient:
    """Spawn ``python -m tokmon serve`` and run the LSP handshake."""
    cfg = ClientServerConfig(
        server_command=[sys.executable, "-m", "tokmon", "serve", *args],
        server_env=env,
        client_factory=make_client,
    )
    client = await cfg.start()
    caps = types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=progress)
    )
    folders = [types.WorkspaceFolder(uri=workspace, name="ws")] if workspace else None
    await client.initialize_session(
        types.InitializeParams(capabilities=caps, workspace_folders=folders)
    )
    return client  # type: ignore[return-value]


async def stop_lsp(client: LanguageClient) -> None:
    await client.shutdown_session()
    await client.stop()


async def request(
    client: LanguageClient, method: str, params: Any = None, timeout: float = 30
) -> Any:
    return await asyncio.wait_for(client.protocol.send_request_async(method, params), timeout)


async def wait_note(
    client: TokmonClient,
    method: str,
    pred: Callable[[dict[str, Any]], bool] = lambda p: True,
    timeout: float = 60,
    start: int = 0,
) -> dict[str, Any]:
    """The first notification ``method`` (from index ``start``) matching ``pred``."""
    deadline = time.monotonic() + timeout
    while True:
        for p in client.notes[method][start:]:
            if pred(p):
                return p
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no {method} notification matching within {timeout}s; "
                f"got {client.notes[method][start:]!r}"[:2000]
            )
        await asyncio.sleep(0.01)


# -- transcripts ---------------------------------------------------------------------------


def session_of(path: Path) -> tuple[str, str]:
    """(sessionId, cwd) of the first line carrying both in a transcript."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("sessionId") and obj.get("cwd") and not obj.get("isSidechain"):
                return obj["sessionId"], obj["cwd"]
    raise AssertionError(f"no session line in {path}")


_seq = itertools.count()


def usage_line(
    session: str,
    cwd: str,
    *,
    inp: int,
    out: int,
    ts: float | None = None,
    model: str = "claude-sonnet-4-5-20250929",
) -> str:
    """One Claude Code assistant line with a fresh message/request id."""
    from datetime import datetime, timezone

    n = f"{os.getpid()}{next(_seq)}{time.time_ns()}"
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc)
    stamp = dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    obj = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session,
        "version": "2.1.7",
        "type": "assistant",
        "uuid": f"u-{n}",
        "timestamp": stamp,
        "requestId": f"req_test{n}",
        "message": {
            "id": f"msg_test{n}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "ok"}],
            "usage": {
                "input_tokens": inp,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": out,
            },
        },
    }
    return json.dumps(obj, separators=(",", ":")) + "\n"


def append(path: Path, text: str) -> float:
    """Append and return the time just before the write (monotonic)."""
    t = time.monotonic()
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
    return t


# -- JSON lines ----------------------------------------------------------------------------


class JsonlProc:
    """``python -m tokmon serve --jsonl`` as a subprocess with a line reader thread."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tokmon", "serve", "--jsonl", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: queue.Queue[Any] = queue.Queue()
        self.raw: list[bytes] = []
        self.responses: dict[Any, dict[str, Any]] = {}
        self.orphans: list[dict[str, Any]] = []  # error lines with id null
        self.notes: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self.stderr = b""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line)
            msg = json.loads(line)  # every stdout line must be JSON: fails the reader if not
            with self._cond:
                if "method" in msg:
                    self.notes.append(msg)
                elif msg.get("id") is None:
                    self.orphans.append(msg)
                else:
                    self.responses[msg["id"]] = msg
                self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr += line

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, method: str, params: Any = None, **extra: Any) -> int:
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, **extra}
        if params is not None:
            msg["params"] = params
        self.send_raw(json.dumps(msg).encode() + b"\n")
        return msg_id

    def wait(self, cond: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = cond()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not cond():
                    raise AssertionError(
                        f"timed out waiting for {what} (exit={self.proc.poll()}, "
                        f"stderr={self.stderr.decode(errors='replace')[-1500:]})"
                    )
                self._cond.wait(min(left, 0.05))

    def response(self, msg_id: Any, timeout: float = 30) -> dict[str, Any]:
        return self.wait(lambda: self.responses.get(msg_id), timeout, f"response {msg_id}")

    def call(self, method: str, params: Any = None, timeout: float = 30) -> dict[str, Any]:
        return self.response(self.send(method, params), timeout)

    def wait_note(
        self,
        method: str,
        pred: Callable[[dict[str, Any]], bool] = lambda p: True,
        timeout: float = 60,
        start: int = 0,
    ) -> dict[str, Any]:
        def find() -> Any:
            for n in self.notes[start:]:
                if n["method"] == method and pred(n["params"]):
                    return n["params"]
            return None

        return self.wait(find, timeout, method)

    def close(self, timeout: float = 15) -> int:
        """Close stdin (client disconnect) and return the exit code."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not exit after stdin was closed") from None
