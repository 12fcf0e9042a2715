"""Robustness of the LSP server: errors, clean exit on disconnect, stdout hygiene, TCP."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest
from test_server_support import corpus_path, server_env

# slow: real language-server processes
pytestmark = pytest.mark.slow


def frame(msg: dict[str, Any]) -> bytes:
    body = json.dumps(msg).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_frame(stream: IO[bytes]) -> dict[str, Any]:
    """Read one LSP frame; fails on anything that is not a well-formed frame."""
    length = None
    while True:
        line = stream.readline()
        assert line, "EOF while reading headers"
        assert line.endswith(b"\r\n"), f"not an LSP header line: {line[:200]!r}"
        if line == b"\r\n":
            break
        name, _, value = line.decode("ascii").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length is not None
    return json.loads(stream.read(length))


def read_until_id(stream: IO[bytes], msg_id: int) -> dict[str, Any]:
    while True:
        msg = read_frame(stream)
        if msg.get("id") == msg_id and "method" not in msg:
            return msg


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"processId": None, "rootUri": None, "capabilities": {}},
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return server_env(tmp_path, corpus_path())


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tokmon", "serve", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def test_errors_disconnect_and_clean_stdout(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "logs" / "server.log"
    p = _spawn(env, "--log-level", "info", "--log-file", str(log))
    assert p.stdin and p.stdout
    p.stdin.write(frame(INIT))
    p.stdin.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    reqs = [
        (2, "tokmon/doesNotExist", {}),
        (3, "tokmon/sessions", {"sort": "random"}),
        (4, "tokmon/sessions", [1, 2]),
        (5, "tokmon/session", {}),
        (6, "tokmon/daily", {"timezone": 42}),
        (7, "tokmon/summary", {"workspaceFolder": ["a"]}),
        (8, "tokmon/version", None),  # params omitted
        (9, "tokmon/summary", "null"),  # params: null
    ]
    for i, m, params in reqs:
        msg = {"jsonrpc": "2.0", "id": i, "method": m}
        if params is not None:
            msg["params"] = None if params == "null" else params
        p.stdin.write(frame(msg))
    p.stdin.flush()
    init = read_until_id(p.stdout, 1)
    assert init["result"]["serverInfo"]["name"] == "tokmon"
    got = {}
    while len(got) < len(reqs):
        msg = read_frame(p.stdout)
        if "id" in msg and "method" not in msg:
            got[msg["id"]] = msg
    assert got[2]["error"]["code"] == -32601 and "tokmon/doesNotExist" in got[2]["error"]["message"]
    for i in (3, 4, 5, 6, 7):
        err = got[i]["error"]
        assert err["code"] == -32602 and err["message"], got[i]
    assert "sort" in got[3]["error"]["message"]
    assert "sessionId" in got[5]["error"]["message"]
    assert got[8]["result"]["protocol"] == 1
    assert got[9]["result"]["totals"]["inputTokens"] > 0
    # client disconnect (EOF, no shutdown/exit): the server ends cleanly
    p.stdin.close()
    assert p.wait(15) == 0
    rest = p.stdout.read()
    while rest:  # anything left on stdout must still be well-formed frames
        import io

        buf = io.BytesIO(rest)
        read_frame(buf)
        rest = buf.read()
    err = p.stderr.read().decode() if p.stderr else ""
    assert "Traceback" not in err
    assert log.is_file() and log.stat().st_size > 0  # logs went to the file


def test_shutdown_exit_sequence(env: dict[str, str]) -> None:
    p = _spawn(env)
    assert p.stdin and p.stdout
    p.stdin.write(frame(INIT))
    p.stdin.write(frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
    p.stdin.write(frame({"jsonrpc": "2.0", "method": "exit"}))
    p.stdin.flush()
    read_until_id(p.stdout, 1)
    assert read_until_id(p.stdout, 2)["result"] is None
    p.stdin.close()
    assert p.wait(15) == 0


@pytest.mark.parametrize(
    "addr",
    [
        "0.0.0.0:2087",
        "192.168.1.5:2087",
        "example.com:80",
        "127.0.0.1:-1",
        "127.0.0.1:99999",
        "nonsense",
    ],
)
def test_tcp_refuses_non_loopback_and_bad_addresses(env: dict[str, str], addr: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "serve", "--tcp", addr],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokmon: error: --tcp")


def test_tcp_loopback_serves_lsp(env: dict[str, str], tmp_path: Path) -> None:
    token = "t" * 32  # the per-launch secret (else generated and written to the state dir)
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:  # port 0: a free port, named on the listening line
        p = subprocess.Popen(
            [sys.executable, "-m", "tokmon", "serve", "--tcp", "localhost:0"],
            stdout=subprocess.PIPE,
            stderr=err,
            env={**env, "TOKMON_SERVE_TOKEN": token},
        )
    try:
        deadline = time.monotonic() + 60
        while not (m := re.search(r"listening on 127\.0\.0\.1:(\d+);.* the token in (.+)$",
                                  log.read_text(errors="replace"), re.M)):  # fmt: skip
            assert p.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not listen"
            time.sleep(0.1)
        port, token_file = int(m.group(1)), Path(m.group(2))
        assert port > 0 and token_file.name == f"serve-tcp-{port}.token"
        assert token_file.read_text().strip() == token  # written before the line
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            f = sock.makefile("rwb")
            params = {**INIT["params"], "initializationOptions": {"tokmonToken": token}}
            f.write(frame({**INIT, "params": params}))
            f.write(frame({"jsonrpc": "2.0", "id": 2, "method": "tokmon/version"}))
            f.flush()
            assert read_until_id(f, 1)["result"]["serverInfo"]["name"] == "tokmon"
            assert read_until_id(f, 2)["result"]["protocol"] == 1
    finally:
        p.terminate()
        p.wait(15)
    assert p.stdout is not None and p.stdout.read() == b""  # nothing on stdout in TCP mode
    assert not token_file.exists()  # removed at exit
