"""LSP base-protocol framing that survives hostile input, and the transports that use it.

pygls' own reader trusts ``Content-Length``: a huge value allocates the whole body up front
(``MemoryError``, the server dies), a negative or missing one wedges the stream for good, and
every malformed body prints a traceback.  :func:`run_framed` replaces that loop:

* ``Content-Length`` must be a positive integer up to :data:`MAX_BODY` (64 MiB, like the
  JSON-lines side); a header line is at most :data:`MAX_LINE` bytes;
* anything else gets one log line and the reader resynchronises on the next
  ``Content-Length:`` header, even one glued to the end of a broken body;
* a body that is not a JSON object, or that a handler chokes on, gets one log line (the
  traceback only at debug level).

:func:`serve_stdio` runs it over stdin/stdout.  :func:`serve_tcp` serves one authenticated
client on a loopback port: the first message must be ``initialize`` carrying the per-launch
secret in ``initializationOptions.tokmonToken``; a second connection while a client is
attached is refused, and input that starts like an HTTP request (any web page can POST to
loopback) is refused before anything is parsed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("tokmon.server.framing")

MAX_BODY = 64 * 1024 * 1024
MAX_LINE = 64 * 1024
AUTH_TIMEOUT = 10.0
TOKEN_OPTION = "tokmonToken"

_HEADER = b"content-length:"
_HTTP_REQUEST = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/\d")
_HEADER_LINE = re.compile(rb"^[A-Za-z0-9-]+:[^\r\n]*\r?\n$")


class FrameReader:
    """``readline()`` / ``readexactly()`` over an asyncio stream or a blocking binary file
    (read in the server's thread pool), with a bounded line length and one line of push-back."""

    def __init__(self, stream: Any, executor: Any = None) -> None:
        self.stream = stream
        self.executor = executor
        self.is_async = isinstance(stream, asyncio.StreamReader)
        self._pushed: bytes | None = None

    def push_back(self, line: bytes) -> None:
        self._pushed = line

    async def readline(self) -> bytes:
        """The next line (or up to MAX_LINE bytes of it); ``b""`` at EOF."""
        if self._pushed is not None:
            line, self._pushed = self._pushed, None
            return line
        if self.is_async:
            try:
                got: bytes = await self.stream.readline()
                return got
            except ValueError:  # longer than the stream's limit: asyncio dropped it
                return b"\0overlong\n"
        loop = asyncio.get_running_loop()
        read: bytes = await loop.run_in_executor(self.executor, self.stream.readline, MAX_LINE)
        return read

    async def readexactly(self, n: int) -> bytes:
        """``n`` bytes, or fewer at EOF."""
        if self.is_async:
            try:
                data: bytes = await self.stream.readexactly(n)
                return data
            except asyncio.IncompleteReadError as exc:
                return exc.partial
        loop = asyncio.get_running_loop()
        read: bytes = await loop.run_in_executor(self.executor, self.stream.read, n)
        return read


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:120]}"


async def run_framed(
    stop_event: threading.Event,
    reader: FrameReader,
    protocol: Any,
    *,
    first_message: Callable[[Any], bool] | None = None,
) -> str:
    """Read LSP frames and hand each message to ``protocol``; returns why it stopped
    (``"eof"``, ``"stopped"`` or ``"refused"``).

    ``first_message`` sees the first well-formed message (plain JSON) before it is handled;
    returning False ends the loop with ``"refused"``.
    """
    length: int | None = None
    in_headers = False
    skipped = 0
    resyncing = False  # a problem was logged: stay quiet until the next good message
    while not stop_event.is_set():
        line = await reader.readline()
        if not line:
            return "eof"
        if not line.strip(b"\r\n"):  # blank line: end of a header block
            if not in_headers:
                continue
            in_headers = False
            if length is None:
                if not resyncing:
                    log.warning("LSP message without a valid Content-Length: skipped")
                resyncing = True
                continue
            body = await reader.readexactly(length)
            n, length = length, None
            if len(body) < n:
                return "eof"
            status = _dispatch(body, protocol, first_message)
            if status == "refused":
                return "refused"
            resyncing = status == "bad"
            first_message = None
            continue
        pos = line.lower().find(_HEADER)
        if pos >= 0:
            if pos > 0:
                skipped += pos
            if skipped and not resyncing:
                log.warning("skipped %d bytes of input that is not an LSP message", skipped)
            skipped = 0
            value = line[pos + len(_HEADER) :].strip()
            in_headers = True
            length = int(value) if value.isdigit() and len(value) < 12 else None
            if length is not None and not 0 < length <= MAX_BODY:
                length = None
            if length is None:
                resyncing = True
                log.warning("bad LSP Content-Length %r (1 to %d allowed): skipping to the next "
                            "message", value[:24].decode("ascii", "replace"), MAX_BODY)  # fmt: skip
            continue
        if in_headers and _HEADER_LINE.match(line):
            continue  # Content-Type and other headers
        skipped += len(line)
        if skipped > MAX_BODY and not resyncing:
            log.warning("skipped %d bytes of input that is not an LSP message", skipped)
            skipped, resyncing = 0, True
        in_headers, length = False, None
    return "stopped"


def _dispatch(body: bytes, protocol: Any, first_message: Callable[[Any], bool] | None) -> str:
    """Parse and handle one body: ``"ok"``, ``"bad"`` (logged) or ``"refused"`` (by
    ``first_message``)."""
    try:
        if first_message is not None:
            raw = json.loads(body)
            if not isinstance(raw, dict) or not first_message(raw):
                return "refused"
        message = json.loads(body, object_hook=protocol.structure_message)
    except Exception as exc:  # not JSON, absurd nesting, params pygls cannot structure
        log.warning("malformed LSP message (%d bytes, %s): ignored", len(body), _short(exc))
        return "bad"
    if isinstance(message, (dict, list, str, int, float, bool)) or message is None:
        log.warning("LSP message is not a JSON-RPC object (%s): ignored", type(message).__name__)
        return "bad"
    try:
        protocol.handle_message(message)
    except Exception as exc:
        log.warning("cannot handle an LSP message: %s", _short(exc))
        log.debug("details", exc_info=True)
    return "ok"


# --------------------------------------------------------------------------- transports


def serve_stdio(server: Any, stdin: Any, stdout: Any) -> None:
    """Serve LSP on binary ``stdin``/``stdout`` until EOF or ``exit``."""
    from pygls.io_ import StdoutWriter

    server._stop_event = stop = threading.Event()  # pygls' shutdown() sets it
    server.protocol.set_writer(StdoutWriter(stdout))
    reader = FrameReader(stdin, server.thread_pool)
    try:
        asyncio.run(run_framed(stop, reader, server.protocol))
    except BrokenPipeError:
        log.info("the client closed the connection")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


def token_matches(message: dict[str, Any], token: str) -> bool:
    """True when ``message`` is ``initialize`` with ``initializationOptions.tokmonToken``
    equal to ``token`` (constant-time comparison)."""
    if message.get("method") != "initialize":
        return False
    params = message.get("params")
    opts = params.get("initializationOptions") if isinstance(params, dict) else None
    sent = opts.get(TOKEN_OPTION) if isinstance(opts, dict) else None
    if not isinstance(sent, str):
        return False
    return hmac.compare_digest(sent.encode("utf-8", "replace"), token.encode("utf-8"))


def serve_tcp(
    server: Any,
    host: str,
    port: int,
    token: str,
    *,
    on_listening: Callable[[str, int], None] | None = None,
) -> None:
    """Serve one authenticated LSP client on ``host:port`` (loopback); ends with that client.

    Raises OSError when the port cannot be bound.
    """
    stop = threading.Event()
    server._stop_event = stop
    state: dict[str, Any] = {"client": None}

    async def connection(sr: asyncio.StreamReader, sw: asyncio.StreamWriter) -> None:
        peer = sw.get_extra_info("peername")
        if state["client"] is not None:
            log.warning("refused a connection from %s: this server already has a client", peer)
            sw.close()
            return
        reader = FrameReader(sr)
        try:
            first = await asyncio.wait_for(sr.readline(), AUTH_TIMEOUT)
        except (asyncio.TimeoutError, ValueError, ConnectionError):
            log.warning("closed a connection from %s: nothing valid within %.0f s", peer,
                        AUTH_TIMEOUT)  # fmt: skip
            sw.close()
            return
        if _HTTP_REQUEST.match(first):
            log.warning("refused an HTTP request from %s (%r): this port speaks LSP only", peer,
                        first[:60])  # fmt: skip
            sw.close()
            return
        reader.push_back(first)
        authed = asyncio.Event()

        def check(message: dict[str, Any]) -> bool:
            if state["client"] is not None or not token_matches(message, token):
                log.warning("refused a client at %s: its initialize did not carry the "
                            "server's token (initializationOptions.%s)", peer,
                            TOKEN_OPTION)  # fmt: skip
                return False
            state["client"] = sw
            server.protocol.set_writer(sw)
            authed.set()
            return True

        loop_task = asyncio.ensure_future(run_framed(stop, reader, server.protocol,
                                                     first_message=check))  # fmt: skip
        waiter = asyncio.ensure_future(authed.wait())
        done, _ = await asyncio.wait({loop_task, waiter}, timeout=AUTH_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        waiter.cancel()
        if not authed.is_set():
            loop_task.cancel()
            if loop_task not in done:
                log.warning("closed a connection from %s: no authenticated initialize within "
                            "%.0f s", peer, AUTH_TIMEOUT)  # fmt: skip
            sw.close()
            return
        try:
            await loop_task
        except (ConnectionError, asyncio.CancelledError):
            pass
        log.info("the client at %s disconnected", peer)
        server.shutdown()

    async def main() -> None:
        srv = await asyncio.start_server(connection, host, port, limit=MAX_LINE)
        server._server = srv
        if on_listening is not None:
            sock = srv.sockets[0].getsockname()
            on_listening(sock[0], sock[1])
        async with srv:
            try:
                await srv.serve_forever()
            except asyncio.CancelledError:
                pass

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        stop.set()
