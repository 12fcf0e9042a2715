"""JSON-lines transport: one JSON object per line on stdin, one per line on stdout.

Requests ``{"id", "method", "params"}`` get ``{"id", "result"}`` or ``{"id", "error"}``;
pushed notifications are ``{"method", "params"}`` lines. A malformed line gets an error line
and the service goes on; EOF (client gone) or ``{"method": "exit"}`` ends it with code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from typing import IO, Any

import orjson

from tokmon.service import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    Notification,
    Service,
    ServiceError,
)

log = logging.getLogger("tokmon.server.jsonl")

MAX_LINE = 64 * 1024 * 1024
#: queued instead of a line longer than MAX_LINE (its bytes are dropped, not kept)
TOO_LONG: Any = object()
_EOF = object()


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS) + b"\n"
    except TypeError:
        import json

        return json.dumps(obj, default=str, separators=(",", ":")).encode() + b"\n"


class JsonLinesServer:
    """Serve one client over a pair of binary streams."""

    def __init__(
        self,
        service: Service,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
        *,
        watch: bool = True,
        debounce_ms: int = 50,
        force_polling: bool | None = None,
    ) -> None:
        self.service = service
        self.stdin = stdin if stdin is not None else sys.stdin.buffer
        self.stdout = stdout if stdout is not None else sys.stdout.buffer
        self.watch = watch
        self.debounce_ms = debounce_ms
        self.force_polling = force_polling
        self.closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.watcher: Any = None

    # -- output (loop thread only) -----------------------------------------------------------
    def write(self, obj: Any) -> None:
        if self.closed:
            return
        try:
            self.stdout.write(_dumps(obj))
            self.stdout.flush()
        except (BrokenPipeError, ValueError, OSError):
            log.info("client went away (stdout closed)")
            self.closed = True

    def emit(self, notes: list[Notification]) -> None:
        for method, params in notes:
            self.write({"method": method, "params": params})

    # -- input -----------------------------------------------------------------------------
    def _reader(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
        """Blocking line reader in its own thread (portable: works for pipes on Windows).

        Reads the raw fd when there is one, so a thread still blocked here at exit holds no
        buffered-stream lock (which would abort the interpreter at shutdown).
        """
        put = queue.put_nowait
        try:
            try:
                fd = self.stdin.fileno()
            except (AttributeError, OSError, ValueError):
                fd = None
            if fd is None:
                skipping = False
                while True:
                    line = self.stdin.readline(MAX_LINE + 1)
                    if not line:
                        break
                    if skipping or (len(line) > MAX_LINE and not line.endswith(b"\n")):
                        if not skipping:
                            loop.call_soon_threadsafe(put, TOO_LONG)
                        skipping = not line.endswith(b"\n")
                        continue
                    loop.call_soon_threadsafe(put, line)
                return
            parts: list[bytes] = []  # the current line so far (linear: only new bytes are searched)
            size = 0
            skipping = False  # inside an overlong line: drop bytes until its newline
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                start = 0
                while True:
                    i = chunk.find(b"\n", start)
                    if i < 0:
                        rest = chunk[start:]
                        if skipping:
                            break
                        if size + len(rest) > MAX_LINE:
                            loop.call_soon_threadsafe(put, TOO_LONG)
                            parts, size, skipping = [], 0, True
                        elif rest:
                            parts.append(rest)
                            size += len(rest)
                        break
                    piece = chunk[start : i + 1]
                    start = i + 1
                    if skipping:
                        skipping = False
                        continue
                    if size + len(piece) > MAX_LINE + 1:
                        loop.call_soon_threadsafe(put, TOO_LONG)
                    else:
                        parts.append(piece)
                        loop.call_soon_threadsafe(put, b"".join(parts))
                    parts, size = [], 0
            if parts and not skipping:
                loop.call_soon_threadsafe(put, b"".join(parts))
        except (OSError, ValueError, RuntimeError) as exc:
            log.info("stdin closed: %s", exc)
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(put, _EOF)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        threading.Thread(
            target=self._reader, args=(loop, queue), name="tokmon-jsonl-stdin", daemon=True
        ).start()
        starter = asyncio.ensure_future(self._start(loop))
        try:
            while not self.closed:
                line = await queue.get()
                if line is _EOF:
                    break
                if self._handle_line(line) == "exit":
                    break
        finally:
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=10)
            if not starter.done():
                starter.cancel()
            if self.watcher is not None:
                await asyncio.to_thread(self.watcher.stop)
            await asyncio.to_thread(self._final_save)
        return 0

    def _final_save(self) -> None:
        try:
            self.service.save()  # whatever the background saver had not written yet
        except Exception:
            log.exception("saving the ledger failed")

    async def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            stats = await asyncio.to_thread(self.service.start)
        except Exception:
            return  # requests now fail with the start error
        log.info("indexed %s", stats)
        if self.watch and not self.closed:
            from tokmon.service_watch import attach_watcher

            self.watcher = await asyncio.to_thread(
                attach_watcher,
                self.service,
                loop,
                self.emit,
                debounce_ms=self.debounce_ms,
                force_polling=self.force_polling,
            )

    def _handle_line(self, raw: bytes) -> str | None:
        if raw is TOO_LONG or len(raw) > MAX_LINE:
            self.write(
                {"id": None, "error": {"code": INVALID_REQUEST, "message": "request line too long"}}
            )
            return None
        if not raw.strip():
            return None
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self.write(
                {"id": None, "error": {"code": PARSE_ERROR, "message": f"parse error: {exc}"}}
            )
            return None
        if not isinstance(msg, dict):
            self.write(
                {
                    "id": None,
                    "error": {
                        "code": INVALID_REQUEST,
                        "message": "invalid request: expected a JSON object",
                    },
                }
            )
            return None
        has_id = "id" in msg
        msg_id = msg.get("id")
        if (
            has_id
            and not (msg_id is None or isinstance(msg_id, (str, int, float)))
            or isinstance(msg_id, bool)
        ):
            self.write(
                {
                    "id": None,
                    "error": {
                        "code": INVALID_REQUEST,
                        "message": "invalid request: 'id' must be a number or string",
                    },
                }
            )
            return None
        method = msg.get("method")
        if not isinstance(method, str):
            err = {"code": INVALID_REQUEST, "message": "invalid request: 'method' must be a string"}
            self.write({"id": msg_id, "error": err})
            return None
        params = msg.get("params")
        if params is not None and not isinstance(params, (dict, list)):
            if has_id:
                self.write(
                    {
                        "id": msg_id,
                        "error": {
                            "code": INVALID_REQUEST,
                            "message": "invalid request: 'params' must be an object, array or null",
                        },
                    }
                )
            return None
        if method == "exit" and not has_id:
            return "exit"
        task = asyncio.ensure_future(self._dispatch(has_id, msg_id, method, params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    async def _dispatch(self, has_id: bool, msg_id: Any, method: str, params: Any) -> None:
        try:
            result, notes = await asyncio.to_thread(self.service.call, method, params)
        except ServiceError as exc:
            if has_id:
                self.write({"id": msg_id, "error": exc.to_dict()})
            else:
                log.warning("notification %s failed: %s", method, exc.message)
            return
        except Exception as exc:  # pragma: no cover - Service.call wraps everything
            log.exception("unexpected error in %s", method)
            if has_id:
                self.write({"id": msg_id, "error": {"code": INTERNAL_ERROR, "message": str(exc)}})
            return
        if has_id:
            self.write({"id": msg_id, "result": result})
        self.emit(notes)


def serve_jsonl(service: Service, **opts: Any) -> int:
    """Run the JSON-lines service on stdin/stdout until EOF."""
    server = JsonLinesServer(service, **opts)
    try:
        return asyncio.run(server.run())
    except KeyboardInterrupt:
        return 0
