"""Issue 10 item 6: bad LSP framing over stdio never kills, wedges or floods the server.

A real ``tokmon serve`` gets ``initialize``, one bad frame, then ``tokmon/version``: it must
answer the version request, stay alive, and log the bad frame in one line (no traceback).
"""

from __future__ import annotations

import json
import select
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hostile.hs_support import hs_env, tokmon_argv


def frame(msg: dict[str, Any]) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **msg}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


INIT = frame({"id": 1, "method": "initialize",
              "params": {"processId": None, "rootUri": None, "capabilities": {}}})  # fmt: skip
VERSION = frame({"id": 2, "method": "tokmon/version"})

BAD_FRAMES = {
    "huge length": b"Content-Length: 99999999999\r\n\r\n{}",
    "over the cap": b"Content-Length: 67108865\r\n\r\n{}",
    "negative length": b"Content-Length: -5\r\n\r\n{}",
    "no length": b'\r\n{"jsonrpc":"2.0","id":7}',
    "shorter than the body": b'Content-Length: 3\r\n\r\n{"jsonrpc":"2.0","id":7}',
    "not json": b"Content-Length: 9\r\n\r\nnot json!",
    "array body": b"Content-Length: 2\r\n\r\n[]",
    "no jsonrpc": b'Content-Length: 8\r\n\r\n{"id":5}',
    "deep nesting": b"Content-Length: 200000\r\n\r\n" + b"[" * 200000,
    "garbage line": b"hello there\r\n",
    "long header line": b"X-Junk: " + b"a" * 5_000_000 + b"\r\n",
}


def _answers_after(bad: bytes, tmp: Path) -> tuple[bool, int | None, str]:
    env = hs_env(tmp)
    p = subprocess.Popen([*tokmon_argv(), "serve", "--no-watch"], env=env, cwd=str(tmp),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)  # fmt: skip
    assert p.stdin and p.stdout and p.stderr
    try:
        p.stdin.write(INIT + bad + VERSION)
        p.stdin.flush()
        out, deadline = b"", time.monotonic() + 60
        while time.monotonic() < deadline and b'"id": 2' not in out and b'"id":2' not in out:
            if select.select([p.stdout], [], [], 0.5)[0]:
                chunk = p.stdout.read1(1 << 16)
                if not chunk:
                    break
                out += chunk
        answered = b'"id": 2' in out or b'"id":2' in out
        alive = p.poll()
        p.stdin.close()  # EOF: the server exits cleanly
        p.wait(60)
        return answered, alive, p.stderr.read().decode("utf-8", "replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_bad_frame_is_skipped_with_one_log_line(name: str, tmp_path: Path) -> None:
    answered, code, err = _answers_after(BAD_FRAMES[name], tmp_path)
    assert code is None, f"server died ({code}): {err[-2000:]}"
    assert answered, f"no answer after the bad frame: {err[-2000:]}"
    assert "Traceback" not in err and "MemoryError" not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 2, lines  # said once (a resync may add one "skipped" line)


def test_framing_reader_resynchronises_in_process() -> None:
    """The reader alone: every bad input is followed by the next good message."""
    import asyncio
    import io
    import threading

    from tokmon.server.framing import FrameReader, run_framed

    class Proto:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        def structure_message(self, data: dict[str, Any]) -> Any:
            return type("Msg", (), {"data": data})() if "jsonrpc" in data else data

        def handle_message(self, msg: Any) -> None:
            self.seen.append(msg.data.get("id"))

    stream = b"".join(BAD_FRAMES[k] for k in sorted(BAD_FRAMES)) + VERSION
    proto = Proto()
    reason = asyncio.run(run_framed(threading.Event(), FrameReader(io.BytesIO(stream)), proto))
    assert reason == "eof" and proto.seen[-1] == 2
