"""The pygls 2 language server: ``tokmon/*`` requests and pushed notifications over LSP.

Every ``tokmon/*`` method is a thin async wrapper that runs :meth:`Service.call` off the event
loop; notifications are sent from the loop thread only, after the response they follow.
Custom params arrive as plain dicts (pygls' namedtuple conversion is switched off).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import default_converter
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage

import tokmon
from tokmon.service import COMMANDS, METHODS, Notification, Service, ServiceError

log = logging.getLogger("tokmon.server.lsp")

PROGRESS_TITLE = "tokmon: indexing transcripts"


def raw_converter() -> Any:
    """pygls' converter, but custom-method params stay plain JSON (dicts, lists)."""
    conv = default_converter()  # type: ignore[no-untyped-call]  # pygls leaves it unannotated

    def keep_raw(obj: dict[str, Any], cls: Any) -> Any:
        obj = dict(obj)
        obj.setdefault("params", None)  # JSON-RPC allows omitting params
        return cls(**{k: obj[k] for k in ("id", "method", "jsonrpc", "params") if k in obj})

    conv.register_structure_hook(JsonRPCRequestMessage, keep_raw)
    conv.register_structure_hook(JsonRPCNotification, keep_raw)
    return conv


def _rpc_error(exc: ServiceError) -> JsonRpcException:
    return JsonRpcException(message=exc.message, code=exc.code)


class TokmonLanguageServer(LanguageServer):
    """A LanguageServer that owns a :class:`Service` and its watcher."""

    def __init__(
        self,
        service: Service,
        *,
        watch: bool = True,
        debounce_ms: int = 50,
        force_polling: bool | None = None,
    ) -> None:
        super().__init__("tokmon", tokmon.__version__, converter_factory=raw_converter)
        self.service = service
        self.watch = watch
        self.debounce_ms = debounce_ms
        self.force_polling = force_polling
        self.watcher: Any = None
        self._scan: asyncio.Task[None] | None = None

    # -- notifications -----------------------------------------------------------------------
    def emit(self, notes: list[Notification]) -> None:
        """Send notifications (loop thread only)."""
        for method, params in notes:
            try:
                self.protocol.notify(method, params)
            except Exception:  # client gone
                log.info("cannot send %s", method)

    def emit_after_response(self, notes: list[Notification]) -> None:
        """Queue notifications so they leave after the response of the running handler."""
        if not notes:
            return
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.call_soon, self.emit, notes)

    # -- first scan ------------------------------------------------------------------------
    def ensure_started(self) -> asyncio.Task[None]:
        if self._scan is None:
            self._scan = asyncio.ensure_future(self._first_scan())
        return self._scan

    def _supports_progress(self) -> bool:
        try:
            caps = self.client_capabilities
            return bool(caps.window and caps.window.work_done_progress)
        except Exception:
            return False

    async def _first_scan(self) -> None:
        loop = asyncio.get_running_loop()
        token: str | None = None
        progress = self.work_done_progress
        if self._supports_progress():
            token = f"tokmon-index-{uuid.uuid4()}"
            try:
                await asyncio.wait_for(progress.create_async(token), 5)
                progress.begin(
                    token,
                    types.WorkDoneProgressBegin(
                        title=PROGRESS_TITLE, percentage=0, cancellable=False
                    ),
                )
            except Exception as exc:
                log.info("no progress reporting: %s", exc)
                token = None
        last = [-1]

        def report(done: int, total: int) -> None:  # called in the scan thread
            if token is None or total <= 0:
                return
            pct = min(100, int(done * 100 / total))
            if pct >= last[0] + 5:
                last[0] = pct
                loop.call_soon_threadsafe(self._report, token, pct)

        try:
            stats = await asyncio.to_thread(self.service.start, report)
            message = f"{stats.get('records', 0)} records, {stats.get('sessions', 0)} sessions"
        except Exception as exc:
            message = f"indexing failed: {exc}"
            stats = None
        if token is not None:
            try:
                progress.end(token, types.WorkDoneProgressEnd(message=message))
            except Exception:
                pass
        if stats is not None and self.watch:
            from tokmon.service_watch import attach_watcher

            self.watcher = await asyncio.to_thread(
                attach_watcher,
                self.service,
                loop,
                self.emit,
                debounce_ms=self.debounce_ms,
                force_polling=self.force_polling,
            )

    def _report(self, token: str, pct: int) -> None:
        try:
            self.work_done_progress.report(
                token, types.WorkDoneProgressReport(percentage=pct, message=f"{pct}%")
            )
        except Exception:
            pass

    def stop_watcher(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
            try:
                self.service.save()  # whatever the background saver had not written yet
            except Exception:
                log.exception("saving the ledger failed")

    # -- request plumbing ------------------------------------------------------------------
    async def run_method(self, method: str, params: Any) -> Any:
        self.ensure_started()
        try:
            result, notes = await asyncio.to_thread(self.service.call, method, params)
        except ServiceError as exc:
            raise _rpc_error(exc) from None
        self.emit_after_response(notes)
        return result

    async def run_command(self, command: str, args: list[Any]) -> Any:
        """``workspace/executeCommand`` aliases go through the same service method."""
        return await self.run_method(
            "workspace/executeCommand", {"command": command, "arguments": args}
        )


def _folder_from_init(params: types.InitializeParams) -> str | None:
    folders = params.workspace_folders or []
    if folders:
        return folders[0].uri
    if params.root_uri:
        return params.root_uri
    return params.root_path or None


def build_server(
    service: Service,
    *,
    watch: bool = True,
    debounce_ms: int = 50,
    force_polling: bool | None = None,
) -> TokmonLanguageServer:
    """A ready-to-start language server over ``service``."""
    from tokmon.service import path_from_folder

    server = TokmonLanguageServer(
        service, watch=watch, debounce_ms=debounce_ms, force_polling=force_polling
    )

    @server.feature(types.INITIALIZE)
    def on_initialize(params: types.InitializeParams) -> None:
        opts = params.initialization_options
        caps = opts.get("capabilities") if isinstance(opts, dict) else None
        if isinstance(caps, dict) and caps.get("activeDeltas") is True:
            service.full_active = False  # as tokmon/hello: pushes without the whole list
        folder = _folder_from_init(params)
        if folder:
            try:
                service.workspace = path_from_folder(folder)
            except ValueError:
                log.warning("ignoring workspace folder %r", folder)

    @server.feature(types.INITIALIZED)
    async def on_initialized(params: types.InitializedParams) -> None:
        server.ensure_started()

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def on_folders(params: types.DidChangeWorkspaceFoldersParams) -> None:
        added = params.event.added or []
        removed = {f.uri for f in params.event.removed or []}
        current = service.workspace
        if added:
            service.workspace = path_from_folder(added[0].uri)
        elif current is not None and any(path_from_folder(u) == current for u in removed):
            rest = [f for f in server.workspace.folders.values() if f.uri not in removed]
            service.workspace = path_from_folder(rest[0].uri) if rest else None

    @server.feature(types.SHUTDOWN)
    def on_shutdown(params: Any) -> None:
        server.stop_watcher()

    def make(method: str) -> Any:
        async def handler(params: Any) -> Any:
            return await server.run_method(method, params)

        handler.__name__ = "tokmon_" + method.replace("/", "_")
        return handler

    for method in METHODS:
        if method.startswith("tokmon/"):
            server.feature(method)(make(method))

    def make_cmd(command: str) -> Any:
        async def cmd(*args: Any) -> Any:
            return await server.run_command(command, list(args))

        return cmd

    for command in COMMANDS:
        server.command(command)(make_cmd(command))

    return server
