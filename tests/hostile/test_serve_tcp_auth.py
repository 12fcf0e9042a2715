"""Issue 10 item 4: ``serve --tcp`` serves one client that proves it holds the per-launch
token; other local users' connections, a second connection and an HTTP POST (what any web
page can send to loopback) are refused, and nothing they send is executed."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hostile.hs_support import assistant, hs_env, tokmon_argv, wait_for, write_transcript

SID = "0badc0de-0000-4000-8000-000000000001"


def frame(msg: dict[str, Any]) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **msg}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_message(f: Any) -> dict[str, Any]:
    length = None
    while True:
        line = f.readline()
        if not line:
            raise EOFError
        if line in (b"\r\n", b"\n"):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    assert length is not None
    return json.loads(f.read(length))


def read_id(f: Any, want: int) -> dict[str, Any]:
    while True:
        msg = read_message(f)
        if msg.get("id") == want and "method" not in msg:
            return msg


def init(token: str | None) -> bytes:
    params: dict[str, Any] = {"processId": None, "rootUri": None, "capabilities": {}}
    if token is not None:
        params["initializationOptions"] = {"tokmonToken": token}
    return frame({"id": 1, "method": "initialize", "params": params})


def rename(new: str, msg_id: int = 9) -> bytes:
    return frame({"id": msg_id, "method": "workspace/executeCommand",
                  "params": {"command": "tokmon.renameSession", "arguments": [SID, new]}})  # fmt: skip


def closed_without_reply(sock: socket.socket, timeout: float = 30.0) -> bool:
    """True when the server closes ``sock`` having sent nothing."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return data == b""


def _listening(log: Path) -> tuple[int, Path] | None:
    """The port and token file ``tokmon serve --tcp`` names once it listens (None: not yet)."""
    m = re.search(r"listening on 127\.0\.0\.1:(\d+);.* the token in (.+)$",
                  log.read_text(errors="replace"), re.M)  # fmt: skip
    return (int(m.group(1)), Path(m.group(2))) if m else None


@pytest.fixture
def server(tmp_path: Path) -> Any:
    env = hs_env(tmp_path, PYTHONFAULTHANDLER="1")
    write_transcript(env, "-p", f"{SID}.jsonl", [assistant("m1", sid=SID)])
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:  # port 0: the server takes a free one and names it
        proc = subprocess.Popen([*tokmon_argv(), "serve", "--tcp", "127.0.0.1:0"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                cwd=str(tmp_path))  # fmt: skip
    # the line comes once the socket listens and the token file is written
    wait_for(lambda: _listening(log) or proc.poll() is not None, what="the listening line")
    assert proc.poll() is None, log.read_text()
    port, token_file = _listening(log) or (0, Path())
    try:
        yield env, port, token_file, proc, log
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(30)


def _names(env: dict[str, str]) -> list[Any]:
    r = subprocess.run([*tokmon_argv(), "session", "--json"], env=env, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    rows = json.loads(r.stdout)
    rows = rows.get("sessions", rows) if isinstance(rows, dict) else rows
    return [row.get("name") for row in rows]


@pytest.mark.slow
def test_http_post_wrong_token_and_second_connection_are_refused(server: Any) -> None:
    env, port, token_file, proc, log = server
    if os.name == "posix":
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32

    # a web page's POST (no-cors fetch): refused before anything is parsed
    body = rename("set-by-web-page").split(b"\r\n\r\n", 1)[1]
    with socket.create_connection(("127.0.0.1", port)) as web:
        web.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip
        assert closed_without_reply(web)
    # a local client without the token (another user), then with a wrong one
    for bad in (None, "x" * 43):
        with socket.create_connection(("127.0.0.1", port)) as other:
            other.sendall(init(bad) + rename(f"renamed-by-{bad}"))
            assert closed_without_reply(other)
    assert proc.poll() is None, "a refused client must not stop the server"

    # the editor, with the token, is served
    editor = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = editor.makefile("rwb")
    f.write(init(token))
    f.flush()
    assert read_id(f, 1)["result"]["serverInfo"]["name"] == "tokmon"
    f.write(frame({"method": "initialized", "params": {}}))
    f.flush()
    # a second connection while the editor is attached: closed, and it gets none of the replies
    with socket.create_connection(("127.0.0.1", port)) as second:
        assert closed_without_reply(second)
    f.write(frame({"id": 2, "method": "tokmon/summary", "params": {}}))
    f.flush()
    assert "today" in read_id(f, 2)["result"]
    f.write(frame({"id": 3, "method": "tokmon/setSessionMetadata",
                   "params": {"sessionId": SID, "name": "by-the-editor"}}))  # fmt: skip
    f.flush()
    reply = read_id(f, 3)
    assert "error" not in reply, reply
    f.close()
    editor.close()
    try:
        proc.wait(60)  # the server ends with its client
    except subprocess.TimeoutExpired:
        import signal

        proc.send_signal(signal.SIGABRT)
        proc.wait(10)
        raise AssertionError(log.read_text()[-6000:]) from None
    assert not token_file.exists()
    err = log.read_text()
    assert "Traceback" not in err, err
    assert "HTTP request" in err and "already has a client" in err
    names = _names(env)
    assert names == ["by-the-editor"], names


def test_http_request_line_is_recognised() -> None:
    from tokmon.server.framing import _HTTP_REQUEST, token_matches

    for line in (b"POST / HTTP/1.1\r\n", b"GET /x?y HTTP/1.0\r\n", b"OPTIONS * HTTP/1.1\r\n"):
        assert _HTTP_REQUEST.match(line)
    assert not _HTTP_REQUEST.match(b"Content-Length: 12\r\n")
    good = {"method": "initialize", "params": {"initializationOptions": {"tokmonToken": "s" * 20}}}
    assert token_matches(good, "s" * 20)
    assert not token_matches(good, "t" * 20)
    assert not token_matches({"method": "initialize", "params": []}, "s" * 20)
    assert not token_matches({**good, "method": "tokmon/summary"}, "s" * 20)
