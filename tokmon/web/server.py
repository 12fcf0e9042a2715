"""Run the dashboard: bind a loopback socket, print the secret URL, serve with uvicorn.

The service's first scan runs on a thread while the server already answers (the page shell
paints at once; API requests wait for the scan, as in ``tokmon serve``). Then the same watcher
as the language server feeds ``Service.on_files_changed`` and its notifications reach every
open page over Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import threading
from typing import IO, Any

import uvicorn

from tokmon.service import Notification, Service
from tokmon.web.app import Guard, Hub, build_app

log = logging.getLogger("tokmon.web")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name != "nt":  # on Windows SO_REUSEADDR would let another process steal the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_for(host: str, port: int, secret: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={secret}"


def serve_web(
    service: Service,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = True,
    out: IO[str],
    err: IO[str],
    watch: bool = True,
    debounce_ms: int = 50,
    force_polling: bool | None = None,
) -> int:
    """Serve until interrupted; returns the exit code."""
    sock = bind(host, port)
    port = sock.getsockname()[1]
    guard = Guard(secrets.token_urlsafe(24), port)
    hub = Hub()
    app = build_app(service, guard, hub)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        ws="none",
        server_header=False,
    )
    server = _Server(config)
    url = url_for(host, port, guard.secret)
    watcher: list[Any] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def emit(notes: list[Notification]) -> None:
            hub.publish(notes)

        def start() -> None:
            try:
                stats = service.start()
            except Exception:
                return  # logged by the service; requests answer with its error
            log.info("indexed %s", stats)
            if watch:
                from tokmon.service_watch import attach_watcher

                watcher.append(
                    attach_watcher(
                        service, loop, emit, debounce_ms=debounce_ms, force_polling=force_polling
                    )
                )

        threading.Thread(target=start, name="tokmon-web-start", daemon=True).start()
        out.write(f"tokmon web: {url}\n")
        out.flush()
        err.write("tokmon web: serving on loopback only; press Ctrl+C to stop\n")
        err.flush()
        if open_browser:
            import webbrowser

            with contextlib.suppress(Exception):
                webbrowser.open(url)
        # event streams never end on their own: close them as soon as shutdown starts
        server.on_exit = lambda: loop.call_soon_threadsafe(hub.close)
        await server.serve(sockets=[sock])

    # uvicorn re-raises the signal that stopped it, after restoring the previous handler: make
    # SIGTERM end us like Ctrl+C does (clean-up below runs, exit code 0)
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for w in watcher:
            with contextlib.suppress(Exception):
                w.stop()
        with contextlib.suppress(Exception):
            service.save()
        sock.close()
    return 0


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)


class _Server(uvicorn.Server):
    """uvicorn's server plus a hook run when a signal asks it to stop."""

    on_exit: Any = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        if self.on_exit is not None:
            with contextlib.suppress(Exception):
                self.on_exit()
