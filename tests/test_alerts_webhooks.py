"""Webhooks reach a real local HTTP server exactly once per crossing while the server
(`tokmon serve --jsonl`), reports and the statusline run concurrently; a restart does not
re-send."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import run_tokmon
from limits_support import payload


class Hook:
    """A loopback HTTP server recording every POST body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                hook.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class Server:
    """`tokmon serve --jsonl` with its notifications collected."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tokmon", "serve", "--jsonl"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        self.notes: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.notes.append(json.loads(line))
            except ValueError:
                pass

    def methods(self, name: str) -> list[dict[str, Any]]:
        return [n["params"] for n in list(self.notes) if n.get("method") == name]

    def request(self, rid: int, method: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": rid, "method": method}) + "\n").encode())
        self.proc.stdin.flush()
        assert wait_for(lambda: any(n.get("id") == rid for n in list(self.notes)))
        return next(n for n in self.notes if n.get("id") == rid)

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_for(pred: Any, timeout: float = 90.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


@pytest.mark.slow
def test_webhooks_once_per_crossing_across_processes_and_restarts(
    env: dict[str, str], tmp_path: Path
) -> None:
    hook = Hook()
    claude = tmp_path / "claude"
    (claude / "projects").mkdir(parents=True)
    cfg = tmp_path / "config.toml"
    cfg.write_text("[alerts]\nofficial = [50, 80]\nprojected = []\ndesktop = false\n"
                   f'webhooks = ["json://127.0.0.1:{hook.port}/hook"]\n')  # fmt: skip
    env = {**env, "CLAUDE_CONFIG_DIR": str(claude), "TOKMON_CONFIG": str(cfg)}
    server = Server(env)
    # the first push (the initial status) says the server watches the limits
    assert wait_for(lambda: bool(server.methods("tokmon/limitsChanged")))
    stop = threading.Event()
    reports: list[int] = []

    def report_loop() -> None:
        while not stop.is_set():
            reports.append(run_tokmon(["limits", "--json"], env).returncode)

    reporter = threading.Thread(target=report_loop)
    reporter.start()
    try:
        resets = time.time() + 4 * 3600
        for used in (30.0, 55.0, 55.0, 85.0, 85.0, 90.0):
            p = payload("sess-hook", {"five_hour": (used, resets)})
            r = run_tokmon(["line", "--claude"], env, input=json.dumps(p))
            assert r.returncode == 0, r.stderr
        assert wait_for(lambda: len(hook.bodies) >= 2), hook.bodies
        # let every contender see the final figure: more reports, the server's poll
        assert wait_for(lambda: len(server.methods("tokmon/alert")) >= 2), server.notes
        time.sleep(3)
    finally:
        stop.set()
        reporter.join()
    assert reports and all(c == 0 for c in reports)
    again = run_tokmon(["alerts", "run"], env)
    assert again.returncode == 0 and again.stdout.startswith("No new alert"), again.stdout
    server.stop()
    messages = sorted(b["message"] for b in hook.bodies)
    assert len(messages) == 2, messages
    assert "threshold 50%" in messages[0] and "threshold 80%" in messages[1]
    changed = server.methods("tokmon/limitsChanged")
    assert changed and changed[-1]["windows"][0]["usedPercent"] == 90.0
    # a restart (server and report) does not send again
    server2 = Server(env)
    try:
        assert wait_for(lambda: bool(server2.methods("tokmon/limitsChanged")))
        assert server2.methods("tokmon/alert") == []  # old alerts are not pushed again
        assert run_tokmon(["limits"], env).returncode == 0
        answer = server2.request(7, "tokmon/limits")["result"]
        assert answer["windows"][0]["usedPercent"] == 90.0 and answer["budgets"] == []
        time.sleep(2)
    finally:
        server2.stop()
    assert len(hook.bodies) == 2
    log = json.loads(run_tokmon(["alerts", "log", "--json"], env).stdout)["alerts"]
    assert sorted((a["threshold"], a["status"]) for a in log) == [(50.0, "sent"), (80.0, "sent")]
    hook.close()
