"""Transport-free service layer: every protocol method as a plain function over the engine.

Both transports (``lsp.py`` and ``jsonl.py``) call :meth:`Service.call` from worker threads;
the service serialises engine access with a lock. Methods return ``(result, notifications)``
so transports can send the response first and then push the notifications. No pygls import
here: the JSON-lines mode must start fast. See docs/protocol.md for the wire shapes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import tokmon
from tokmon.core.live import save_engine
from tokmon.leanclass import replace

if TYPE_CHECKING:  # the engine is imported when the service starts, not with this module
    from tokmon.core.engine import Engine
    from tokmon.core.rows import SessionRow

log = logging.getLogger("tokmon.server")

PROTOCOL_VERSION = 1

#: A first index reading more than this many transcript bytes runs in a short-lived child
#: process (its heap goes away with it); ``TOKMON_CHILD_INDEX_BYTES`` overrides (0: never).
CHILD_INDEX_BYTES = 256 * 2**20
CHILD_INDEX_TIMEOUT = 3600.0  # seconds; then the child is killed and the server reads itself
#: the hidden CLI command that refreshes the ledger and nothing else (tokmon/cli/serve.py)
INDEX_ONLY_ARGS = ("serve", "--index-only")
PROGRESS_PREFIX = "tokmon-index-progress "

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

Notification = tuple[str, dict[str, Any]]
Result = tuple[Any, list[Notification]]

COMMANDS = ("tokmon.tagSession", "tokmon.describeSession", "tokmon.renameSession")


class ServiceError(Exception):
    """A JSON-RPC error: ``code`` plus a one-line ``message``."""

    code = INTERNAL_ERROR

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class InvalidParams(ServiceError):
    code = INVALID_PARAMS


class MethodNotFound(ServiceError):
    code = METHOD_NOT_FOUND


# -- params validation -------------------------------------------------------------------------

_MISSING = object()


def _obj(method: str, params: Any, allowed: set[str]) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, (list, tuple)) and not params:
        return {}
    if not isinstance(params, dict):
        raise InvalidParams(f"{method}: params must be an object, got {_kind(params)}")
    unknown = sorted(str(k) for k in params if k not in allowed)
    if unknown:
        want = ", ".join(sorted(allowed)) or "none"
        raise InvalidParams(f"{method}: unknown param(s) {', '.join(unknown)} (allowed: {want})")
    return params


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, (list, tuple)):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _str(
    method: str, p: dict[str, Any], key: str, *, required: bool = False, nullable: bool = False
) -> Any:
    v = p.get(key, _MISSING)
    if v is _MISSING:
        if required:
            raise InvalidParams(f"{method}: missing required param '{key}'")
        return _MISSING
    if v is None and nullable:
        return None
    if not isinstance(v, str):
        raise InvalidParams(f"{method}: '{key}' must be a string, got {_kind(v)}")
    if required and not v.strip():
        raise InvalidParams(f"{method}: '{key}' must not be empty")
    return v


def _opt_str(method: str, p: dict[str, Any], key: str) -> str | None:
    v = _str(method, p, key, nullable=True)
    return None if v is _MISSING else v


def _bool(method: str, p: dict[str, Any], key: str) -> bool:
    v = p.get(key, None)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise InvalidParams(f"{method}: '{key}' must be true or false, got {_kind(v)}")
    return v


def _str_list(method: str, p: dict[str, Any], key: str) -> Any:
    v = p.get(key, _MISSING)
    if v is _MISSING or v is None:
        return _MISSING
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise InvalidParams(f"{method}: '{key}' must be an array of strings")
    return list(v)


def _day(method: str, p: dict[str, Any], key: str) -> str | None:
    v = _opt_str(method, p, key)
    if v is None:
        return None
    from tokmon.core.timeutil import parse_day

    try:
        return parse_day(v)
    except ValueError:
        raise InvalidParams(f"{method}: '{key}' must be a date YYYY-MM-DD, got {v!r}") from None


def _tz(method: str, p: dict[str, Any], key: str) -> str | None:
    v = _opt_str(method, p, key)
    if v is None:
        return None
    from tokmon.core.timeutil import resolve_tz

    try:
        resolve_tz(v)
    except Exception:
        raise InvalidParams(f"{method}: unknown time zone {v!r}") from None
    return v


def _choice(method: str, p: dict[str, Any], key: str, choices: tuple[str, ...]) -> str | None:
    v = _opt_str(method, p, key)
    if v is not None and v not in choices:
        raise InvalidParams(f"{method}: '{key}' must be one of {', '.join(choices)}, got {v!r}")
    return v


def _posint(method: str, p: dict[str, Any], key: str) -> int | None:
    v = p.get(key, None)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise InvalidParams(f"{method}: '{key}' must be a positive integer, got {v!r}"[:200])
    return v


def path_from_folder(value: str) -> str:
    """A workspace folder (path or ``file://`` URI) as a normalised local path."""
    v = value.strip()
    if v.lower().startswith("file:"):
        u = urlparse(v)
        path = unquote(u.path)
        if u.netloc and u.netloc.lower() != "localhost":
            path = f"//{u.netloc}{path}"  # UNC share
        if os.name == "nt" and len(path) > 2 and path[0] == "/" and path[2] == ":":
            path = path[1:]
        v = path
    v = os.path.expanduser(v)
    if not v:
        raise ValueError("empty path")
    if os.path.isabs(v):
        v = os.path.normpath(v)
    return v


def within(child: str, parent: str) -> bool:
    """``child`` is ``parent`` or below it (textual, no filesystem access)."""
    if not child or not parent:
        return False
    c = os.path.normcase(os.path.normpath(child))
    p = os.path.normcase(os.path.normpath(parent))
    if c == p:
        return True
    sep = "\\" if os.name == "nt" else "/"
    return c.startswith(p if p.endswith(sep) else p + sep)


# -- first index in a child process ----------------------------------------------------------


def _run_index_child(
    args: Sequence[str],
    env: Mapping[str, str],
    eng: Engine,
    progress: Callable[[int, int], None] | None,
) -> tuple[bool, str]:
    """Run ``python -m tokmon ARGS PARENT_PID`` (never importing from the cwd), relay its
    progress lines, and kill it if it overruns or this thread is interrupted; (ok, why)."""
    import subprocess

    from tokmon.safepython import module_argv, safe_cwd
    from tokmon.textsafe import safe_text

    argv = module_argv("tokmon", *args, str(os.getpid()))
    try:
        proc = subprocess.Popen(
            argv,
            cwd=safe_cwd(str(eng.paths.data_dir)),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # same session: a terminal's Ctrl-C reaches it too; the child also watches this
            # process and exits when it dies (tokmon.core.scan._worker_init)
            start_new_session=False,
        )
    except OSError as exc:
        return False, f"cannot start: {exc}"
    timer = threading.Timer(CHILD_INDEX_TIMEOUT, proc.kill)
    timer.daemon = True
    timer.start()
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith(PROGRESS_PREFIX):
                parts = line[len(PROGRESS_PREFIX) :].split()
                if progress is not None and len(parts) == 2 and all(p.isdigit() for p in parts):
                    progress(int(parts[0]), int(parts[1]))
                continue
            tail = [*tail[-4:], safe_text(line)[:300]]
        rc = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc == 0:
        return True, ""
    return False, f"exit code {rc}" + (f": {' | '.join(tail)}" if tail else "")


# -- the service -------------------------------------------------------------------------------


class Service:
    """Every protocol method over one Engine and the metadata store."""

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        engine_factory: Callable[[], Engine] | None = None,
        workspace: str | None = None,
        index_child: Sequence[str] | None = None,
    ) -> None:
        """``index_child``: the ``python -m tokmon`` arguments that refresh the same ledger in
        a child process (a big first index runs there); default: the hidden ``serve
        --index-only`` when the engine is the default one, else no child."""
        self.env = os.environ if env is None else env
        self._engine_factory = engine_factory
        self._index_child: tuple[str, ...] | None = (
            tuple(index_child)
            if index_child is not None
            else (None if engine_factory is not None else INDEX_ONLY_ARGS)
        )
        self._engine: Engine | None = None
        self.lock = threading.RLock()
        self.ready = threading.Event()
        self.start_error: str | None = None
        self.workspace: str | None = path_from_folder(workspace) if workspace else None
        self._store: Any = None
        self._store_error: str | None = None
        self._meta_snapshot: dict[str, dict[str, Any]] = {}
        self._rows: tuple[tuple[int, int], list[SessionRow]] | None = None
        self.stats: dict[str, Any] = {}
        #: the last ``tokmon/usageChanged`` push's number (``tokmon/sessions`` answers carry
        #: it too): a client that sees a push skip one re-fetches in full (docs/protocol.md)
        self.seq = 0
        #: pushes carry the summary's ``activeSessions`` whole: for clients that did not ask
        #: for ``activeDeltas`` (``tokmon/hello``; the web page's event stream); the others
        #: keep the active list from the pushes' rows and ``activeIds`` (docs/protocol.md)
        self.full_active = True
        #: the active set the last push (or the first scan) left the clients with: id -> last
        #: activity (the diff against it names the sessions that left, by the clock too)
        self._active: dict[str, float] = {}
        self.limits_monitor: Any = None  # a tokmon.limits.monitor.LimitsMonitor once watching

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Build the engine and run the first scan (blocking; call it off the event loop)."""
        t0 = time.perf_counter()
        try:
            with self.lock:
                if self._engine_factory is not None:
                    self._engine = self._engine_factory()
                else:
                    from tokmon.core.engine import Engine

                    self._engine = Engine(env=self.env, agents=True)
                child = self._index_in_child(self._engine, progress)
                changes = self._engine.refresh(progress)
                for w in changes.warnings:
                    log.warning("%s", w)
                self._meta_snapshot = self._store_all()
                self._active = {sid: last for sid, last, _ in self._engine.active_index()}
                # The index is long-lived: keep it out of the cyclic GC's scans, whose pauses
                # would otherwise land on pushes.
                import gc

                gc.collect()
                gc.freeze()
                self.stats = {
                    "records": self.engine.record_count(),
                    "sessions": len(self._all_rows()),
                    "seconds": round(time.perf_counter() - t0, 3),
                    "bytesRead": changes.bytes_read,  # by this process (not by a child)
                }
                if child is not None:
                    self.stats["childIndex"] = child
        except Exception as exc:  # never leave waiters hanging
            log.exception("first scan failed")
            self.start_error = f"tokmon could not index transcripts: {exc}"
            raise
        finally:
            self.ready.set()
        return self.stats

    def _index_in_child(
        self, eng: Engine, progress: Callable[[int, int], None] | None
    ) -> dict[str, Any] | None:
        """Let a child process read a big first index into the shared ledger database, so
        this long-lived process never holds the scan's heap; the in-process refresh that
        follows reads only what the child did not. None when not tried; on failure the
        caller's refresh simply does all the work."""
        if self._index_child is None or not eng.persist:
            return None
        raw = str(self.env.get("TOKMON_CHILD_INDEX_BYTES") or "").strip()
        try:
            threshold = int(raw) if raw else CHILD_INDEX_BYTES
        except ValueError:
            log.warning("ignoring TOKMON_CHILD_INDEX_BYTES=%r (not an integer)", raw[:40])
            threshold = CHILD_INDEX_BYTES
        if threshold <= 0:
            return None
        try:
            pending = eng.pending_bytes()
        except Exception as exc:  # the refresh that follows reports real problems
            log.debug("cannot plan the first index: %s", exc)
            return None
        if pending < threshold:
            return None
        t0 = time.perf_counter()
        ok, why = _run_index_child(self._index_child, self.env, eng, progress)
        info: dict[str, Any] = {
            "ok": ok,
            "bytes": pending,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        if ok:
            log.info("first index of %.0f MB done by a child process", pending / 2**20)
        else:
            info["error"] = why
            log.warning("indexing in a child process failed (%s): indexing in the server", why)
        return info

    @property
    def engine(self) -> Engine:
        """The engine :meth:`start` built (ServiceError before that, or if it failed)."""
        if self._engine is None:
            raise ServiceError(self.start_error or "tokmon engine unavailable")
        return self._engine

    @property
    def engine_if_started(self) -> Engine | None:
        """The engine, or None before :meth:`start` built it."""
        return self._engine

    def _wait_ready(self) -> None:
        self.ready.wait()
        if self._engine is None:
            raise ServiceError(self.start_error or "tokmon engine unavailable")

    @property
    def watch_roots(self) -> list[Path]:
        """Every candidate Claude root (existing or not), the other agents' data folders and
        the metadata file's directory."""
        eng = self._engine
        roots = [Path(r) for r in (eng.watch_roots if eng is not None else [])]
        mp = self.metadata_path
        if mp is not None:
            roots.append(mp.parent)
        return roots

    @property
    def metadata_path(self) -> Path | None:
        store = self.store
        return Path(store.path) if store is not None else None

    # -- metadata --------------------------------------------------------------------------

    @property
    def store(self) -> Any:
        if self._store is None and self._store_error is None:
            try:
                from tokmon.metadata.store import MetadataStore
                from tokmon.paths import get_paths

                self._store = MetadataStore(paths=get_paths(self.env))
            except Exception as exc:  # the store module may be missing or broken
                self._store_error = f"session metadata unavailable: {exc}"
                log.warning("%s", self._store_error)
        return self._store

    def _store_all(self) -> dict[str, dict[str, Any]]:
        store = self.store
        if store is None:
            return {}
        try:
            return store.all()  # type: ignore[no-any-return]
        except Exception as exc:
            log.warning("cannot read session metadata: %s", exc)
            return dict(self._meta_snapshot)

    def _merge(
        self, rows: list[dict[str, Any]], meta: dict[str, dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        from tokmon.sessions import clip_for_display, merge

        return clip_for_display(merge(rows, self._store_all() if meta is None else meta))

    def _meta_note(self, sid: str, meta: dict[str, Any] | None) -> Notification:
        eng = self._engine
        row = {"sessionId": sid, "title": eng.titles.get(sid) if eng is not None else None}
        merged = self._merge([row], {sid: meta} if meta else {})[0]
        params = {
            k: merged.get(k) for k in ("sessionId", "name", "nameSource", "tags", "description")
        }
        return ("tokmon/metadataChanged", params)

    def check_metadata(self) -> list[Notification]:
        """Diff the store against the last snapshot; one notification per changed session."""
        with self.lock:
            fresh = self._store_all()
            old = self._meta_snapshot
            self._meta_snapshot = fresh
        notes = []
        for sid in sorted(set(fresh) | set(old)):
            a, b = old.get(sid) or {}, fresh.get(sid) or {}
            if any(a.get(k) != b.get(k) for k in ("name", "tags", "description", "claudeTitle")):
                notes.append(self._meta_note(sid, fresh.get(sid)))
        return notes

    # -- engine helpers --------------------------------------------------------------------

    def _all_rows(self) -> list[SessionRow]:
        """Every SessionRow, most recent first (cached per engine version and minute)."""
        eng = self.engine
        key = (eng.version, int(time.time() // 60))
        if self._rows is None or self._rows[0] != key:
            self._rows = (key, eng.session_rows(agent="all"))
        return self._rows[1]

    def _resolve(
        self, method: str, ref: str, meta: dict[str, dict[str, Any]] | None = None
    ) -> tuple[str, SessionRow | None]:
        """``(sessionId, SessionRow or None)`` for a REF, by the CLI's rule
        (:func:`tokmon.sessions.resolve`: id, name, unique prefix, Claude title)."""
        from tokmon.sessions import RefError, resolve

        rows = self._all_rows()
        try:
            sid = resolve(
                ref,
                (r.session_id for r in rows),
                self._store_all() if meta is None else meta,
                self.engine.titles,
            )
        except RefError as exc:
            if exc.ambiguous:  # the CLI's message, candidates listed
                raise InvalidParams(str(exc)) from None
            shown = ref if len(ref) <= 80 else ref[:77] + "..."
            near = exc.candidates[:8]
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise InvalidParams(f"unknown session id {shown!r}{hint}") from None
        return sid, next((r for r in rows if r.session_id == sid), None)

    def _workspace(self, method: str, p: dict[str, Any]) -> str | None:
        v = _opt_str(method, p, "workspaceFolder")
        if v is None:
            return self.workspace
        try:
            return path_from_folder(v)
        except ValueError:
            raise InvalidParams(
                f"{method}: 'workspaceFolder' must be a path or file:// URI"
            ) from None

    def _workspace_project(self, ws: str | None) -> str | None:
        """projectPath of the most recently active session at or below ``ws``."""
        if not ws:
            return None
        for proj in self.engine.recent_projects():
            if within(proj, ws):
                return proj
        return None

    def _summary(
        self,
        ws: str | None,
        meta: dict[str, dict[str, Any]] | None = None,
        now: float | None = None,
        index: list[tuple[str, float, str]] | None = None,
        lasts: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """The Summary's JSON with metadata merged into its session rows, plus the
        workspace's session and project (docs/protocol.md); ``meta``: the store's records
        when the caller has just read them. With ``index`` (the engine's
        :meth:`~tokmon.core.engine.Engine.active_index` at ``now``) the summary has no
        ``activeSessions``: only its project and workspace sessions' rows are built. Else
        ``lasts`` (when given) receives each active session's last activity."""
        if index is not None:
            return self._delta_summary(ws, meta, now, index)
        summ = self.engine.summary(now=now, cwd=ws)
        # the engine's live figures are Claude Code's (blocks, sessions)
        active = [r if r.agent else replace(r, agent="claude") for r in summ.active_sessions]
        if lasts is not None:
            lasts.update((r.session_id, r.last_activity) for r in active)
        ps = summ.project_session
        if ps is not None and not ps.agent:
            ps = replace(ps, agent="claude")
        out: dict[str, Any] = replace(summ, active_sessions=active, project_session=ps).to_json()
        if meta is None:
            meta = self._store_all()
        merged = self._merge(out["activeSessions"], meta)  # each row serialised once
        out["activeSessions"] = merged
        if ps is not None:
            out["projectSession"] = self._merge([out["projectSession"]], meta)[0]
        wsess = None
        if ws:
            for r, m in zip(active, merged, strict=True):
                if within(r.project_path, ws):
                    wsess = m
                    break
        out["workspaceSession"] = wsess
        out["workspaceProject"] = self._workspace_project(ws)
        return out

    def _delta_summary(
        self,
        ws: str | None,
        meta: dict[str, dict[str, Any]] | None,
        now: float | None,
        index: list[tuple[str, float, str]],
    ) -> dict[str, Any]:
        """:meth:`_summary` without ``activeSessions``, its two session rows read by id."""
        import operator

        from tokmon.core.engine.queries import closest_project

        out: dict[str, Any] = self.engine.summary(now=now, active_rows=False).to_json()
        del out["activeSessions"]
        ps_id = ws_id = None
        if ws:  # the rows the engine's summary picks (project_session), by id
            ps = closest_project(index, ws, operator.itemgetter(2))
            ps_id = None if ps is None else ps[0]
            ws_id = next((sid for sid, _l, proj in index if within(proj, ws)), None)
        ids = [i for i in (ps_id, ws_id) if i is not None]
        rows: dict[str, dict[str, Any]] = {}
        if ids:
            built = self.engine.session_rows(now=now, only=ids)
            wire = self._merge(
                [(r if r.agent else replace(r, agent="claude")).to_json() for r in built], meta
            )
            rows = {r["sessionId"]: r for r in wire}
        out["projectSession"] = rows.get(ps_id) if ps_id else None
        out["workspaceSession"] = rows.get(ws_id) if ws_id else None
        out["workspaceProject"] = self._workspace_project(ws)
        return out

    # -- refresh (watcher / tokmon/refresh) --------------------------------------------------

    def refresh(
        self, ws: str | None = None, paths: set[Path] | None = None, save: bool = True
    ) -> tuple[Any, list[Notification]]:
        """Incremental engine refresh; returns (changes, [usageChanged] if anything changed).

        ``paths`` are the watcher's changed files (a hint that spares a full scan); with
        ``save=False`` the ledger is written later by :meth:`save`, after the push.
        """
        self._wait_ready()
        with self.lock:
            changes = self.engine.refresh(paths=paths, save=save)
            for w in changes.warnings:
                log.warning("%s", w)
            notes: list[Notification] = []
            if changes.changed:
                notes.append(
                    self._push(
                        ws, sorted(changes.changed_sessions), getattr(changes, "agents", None)
                    )
                )
        return changes, notes

    def _push(
        self, ws: str | None, changed: list[str], agents: Any = None, now: float | None = None
    ) -> Notification:
        """The next ``tokmon/usageChanged`` (under the lock): the changed sessions' rows and
        those of the sessions that left the active set since the last push, which of them
        are active now (``activeIds``), and the summary (``activeSessions`` whole only for
        clients that did not ask for deltas)."""
        now = time.time() if now is None else now
        meta = self._store_all()
        ws = ws if ws is not None else self.workspace
        active: dict[str, float] = {}
        if self.full_active:  # the summary's own rows say which sessions are active
            summary = self._summary(ws, meta, now, lasts=active)
        else:
            index = self.engine.active_index(now)
            active = {sid: last for sid, last, _ in index}
            summary = self._summary(ws, meta, now, index)
        left = [sid for sid in self._active if sid not in active]
        self._active = active
        wanted = sorted({*changed, *left})
        rows = self.session_rows_of(wanted, meta, now)
        found = {r["sessionId"] for r in rows}
        self.seq += 1
        params: dict[str, Any] = {
            "seq": self.seq,
            "summary": summary,
            "changedSessions": changed,
            "sessions": rows,
            "removedSessions": [sid for sid in wanted if sid not in found],
            "activeIds": [r["sessionId"] for r in rows if r["sessionId"] in active],
        }
        if agents:  # other agents' records changed (Claude-only pushes keep their shape)
            params["agents"] = sorted(agents)
        return ("tokmon/usageChanged", params)

    def next_expiry(self) -> float | None:
        """When the first session of the last push's active set leaves it by the clock
        (epoch seconds), or None when the set is empty."""
        eng = self._engine
        if eng is None or not self._active:
            return None
        return min(self._active.values()) + eng.block_seconds

    def expire(self, now: float | None = None) -> list[Notification]:
        """A ``tokmon/usageChanged`` when sessions left the active set by the clock since
        the last push (no new record: their rows now say ``isActive: false``), else []."""
        self._wait_ready()
        with self.lock:
            now = time.time() if now is None else now
            at = self.next_expiry()
            if at is None or at > now:
                return []
            return [self._push(None, [], now=now)]

    def session_rows_of(
        self,
        ids: Sequence[str],
        meta: dict[str, dict[str, Any]] | None = None,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """The ``tokmon/sessions`` rows of these sessions (every agent's, metadata merged),
        most recent first: read by id from the stored sums, never every session's row."""
        if not ids:
            return []
        rows = self.engine.session_rows(agent="all", only=ids, now=now)
        wire = self._merge([r.to_json() for r in rows], meta)
        wire.sort(key=lambda r: r["sessionId"])
        wire.sort(key=lambda r: r["lastActivity"], reverse=True)
        return wire

    def on_files_changed(self, paths: set[Path]) -> list[Notification]:
        """Watcher callback body: metadata diff and/or engine refresh."""
        mp = self.metadata_path
        notes: list[Notification] = []
        meta_hit = mp is not None and any(p == mp or p == mp.parent for p in paths)
        other = [p for p in paths if mp is None or (p.parent != mp.parent and p != mp.parent)]
        if meta_hit:
            notes += self.check_metadata()
        if other:
            _, n = self.refresh(paths=set(other), save=False)
            notes += n
        return notes

    def save(self) -> None:
        """Persist what watcher refreshes left unsaved (called after the push, off the
        watcher thread): snapshot under the lock, serialise and write outside it."""
        if self._engine is None:
            return
        for w in save_engine(self._engine, self.lock):
            log.warning("%s", w)

    def catch_up(self) -> list[Notification]:
        """Refresh data and metadata once (after the watcher started)."""
        _, notes = self.refresh()
        return self.check_metadata() + notes

    # -- dispatch --------------------------------------------------------------------------

    def call(self, method: Any, params: Any = None) -> Result:
        """Run one method; raises :class:`ServiceError` (with a JSON-RPC code) on failure."""
        if not isinstance(method, str):
            raise ServiceError("method must be a string", INVALID_REQUEST)
        fn = METHODS.get(method)
        if fn is None:
            shown = method if len(method) <= 100 else method[:97] + "..."
            raise MethodNotFound(f"method not found: {shown}")
        unlocked = method in UNLOCKED  # no engine state: answered at once, even mid-scan
        if not unlocked:
            self._wait_ready()
        try:
            if unlocked:
                return fn(self, params)
            with self.lock:
                return fn(self, params)
        except ServiceError:
            raise
        except Exception as exc:
            from tokmon.metadata.schema import MetadataError

            if isinstance(exc, MetadataError):
                raise InvalidParams(str(exc)) from None
            log.exception("internal error in %s", method)
            raise ServiceError(f"internal error in {method}: {exc}") from exc

    # -- methods ---------------------------------------------------------------------------

    def m_version(self, params: Any) -> Result:
        _obj("tokmon/version", params, set())
        return {"version": tokmon.__version__, "protocol": PROTOCOL_VERSION}, []

    def m_hello(self, params: Any) -> Result:
        """Capabilities the client asks for; the answer says which it got (docs/protocol.md)."""
        m = "tokmon/hello"
        p = _obj(m, params, {"capabilities", "client"})
        caps = p.get("capabilities")
        if caps is None:
            caps = {}
        if not isinstance(caps, dict):
            raise InvalidParams(f"{m}: 'capabilities' must be an object, got {_kind(caps)}")
        deltas = _bool(m, caps, "activeDeltas")
        # what this answer grants: a later hello without deltas gets the whole list again
        self.full_active = not deltas
        return {
            "version": tokmon.__version__,
            "protocol": PROTOCOL_VERSION,
            "capabilities": {"activeDeltas": deltas},
        }, []

    def m_summary(self, params: Any) -> Result:
        p = _obj("tokmon/summary", params, {"workspaceFolder"})
        out = self._summary(self._workspace("tokmon/summary", p))
        out["seq"] = self.seq  # the pushes these figures (and activeSessions) include
        return out, []

    def m_refresh(self, params: Any) -> Result:
        p = _obj("tokmon/refresh", params, {"workspaceFolder"})
        ws = self._workspace("tokmon/refresh", p)
        _, notes = self.refresh(ws)
        out = self._summary(ws)
        out["seq"] = self.seq
        return out, notes

    def m_sessions(self, params: Any) -> Result:
        m = "tokmon/sessions"
        p = _obj(
            m,
            params,
            {"project", "tag", "since", "until", "sort", "order", "limit", "workspaceFolder"},
        )
        project = _opt_str(m, p, "project")
        tag = _opt_str(m, p, "tag")
        since, until = _day(m, p, "since"), _day(m, p, "until")
        sort = _choice(m, p, "sort", ("lastActivity", "cost", "tokens", "name")) or "lastActivity"
        order = _choice(m, p, "order", ("asc", "desc")) or ("asc" if sort == "name" else "desc")
        limit = _posint(m, p, "limit")
        explicit_ws = p.get("workspaceFolder") is not None
        ws = self._workspace(m, p)
        if since or until:
            rows = self.engine.session_rows(since=since, until=until, agent="all")
        else:
            rows = list(self._all_rows())
        if project:
            try:
                proj_path = (
                    path_from_folder(project)
                    if ("/" in project or "\\" in project or project.startswith("file:"))
                    else None
                )
            except ValueError:
                raise InvalidParams(
                    f"{m}: 'project' {project[:80]!r} is not a name, path or file:// URI"
                ) from None
            rows = [
                r
                for r in rows
                if r.project_name == project
                or r.project_path == project
                or (proj_path and within(r.project_path, proj_path))
            ]
        if explicit_ws and ws:
            rows = [r for r in rows if within(r.project_path, ws)]
        # the edge: rows merged with their names and tags are the wire's session rows
        wire = self._merge([r.to_json() for r in rows])
        if tag is not None:
            want = tag.strip().lower()
            wire = [r for r in wire if want in [t.lower() for t in r.get("tags") or []]]
        wire.sort(key=lambda r: r["sessionId"])
        wire.sort(key=lambda r: r["lastActivity"], reverse=True)
        keyfn: Callable[[dict[str, Any]], Any] = {
            "lastActivity": lambda r: r["lastActivity"],
            "cost": lambda r: r["totalCost"],
            "tokens": lambda r: r["totalTokens"],
            "name": lambda r: str(r.get("name") or r.get("title") or r["sessionId"]).lower(),
        }[sort]
        wire.sort(key=keyfn, reverse=(order == "desc"))
        if limit is not None:
            wire = wire[:limit]
        return {
            "sessions": wire,
            "workspaceProject": self._workspace_project(ws),
            "seq": self.seq,
        }, []

    def m_session(self, params: Any) -> Result:
        m = "tokmon/session"
        p = _obj(m, params, {"sessionId"})
        sid = _str(m, p, "sessionId", required=True)
        from tokmon.sessions import clip_for_display, detail_for

        meta = self._store_all()
        found, row = self._resolve(m, sid, meta)
        wire = None if row is None else row.to_json()
        return clip_for_display([detail_for(self.engine, found, wire, meta.get(found))])[0], []

    def m_blocks(self, params: Any) -> Result:
        m = "tokmon/blocks"
        p = _obj(m, params, {"active", "recent", "tokenLimit"})
        active, recent = _bool(m, p, "active"), _bool(m, p, "recent")
        lim = p.get("tokenLimit")
        if (
            lim is not None
            and lim != "max"
            and (isinstance(lim, bool) or not isinstance(lim, int) or lim < 1)
        ):
            raise InvalidParams(f"{m}: 'tokenLimit' must be a positive integer or \"max\"")
        rep = self.engine.report("blocks", active=active, recent=recent, token_limit=lim)
        return rep.to_json(), []

    def m_daily(self, params: Any) -> Result:
        m = "tokmon/daily"
        p = _obj(m, params, {"since", "until", "timezone"})
        since, until, tz = _day(m, p, "since"), _day(m, p, "until"), _tz(m, p, "timezone")
        return self.engine.report("daily", since=since, until=until, timezone=tz).to_json(), []

    def m_series(self, params: Any) -> Result:
        """Cost and tokens per day or week, one series per model or project (for charts)."""
        m = "tokmon/series"
        p = _obj(m, params, {"period", "by", "since", "until", "timezone", "limit"})
        period = _choice(m, p, "period", ("day", "week")) or "day"
        by = _choice(m, p, "by", ("model", "project", "agent")) or "model"
        since, until, tz = _day(m, p, "since"), _day(m, p, "until"), _tz(m, p, "timezone")
        top = _posint(m, p, "limit") or 8
        from datetime import date, timedelta

        from tokmon.core.aggregate import project_name
        from tokmon.core.timeutil import DateKeyer, resolve_tz

        tzname = tz if tz is not None else self.engine.config.get("timezone")
        keyer = DateKeyer(resolve_tz(tzname))
        cells: dict[tuple[str, str], list[float]] = {}
        # (day, bucket) per quarter hour (zone offsets are multiples of 15 min)
        memo: dict[int, tuple[str, str]] = {}
        # by agent: every agent's records (the others' only then: model/project stay Claude's)
        pairs = (
            [(r, a) for a in self.engine.agent_names() for r in self.engine.records_of(a)]
            if by == "agent"
            else [(r, "") for r in self.engine.records]
        )
        for r, agent in pairs:
            q = int(r.ts // 900)
            hit = memo.get(q)
            if hit is None:
                day = keyer.day(r.ts)
                hit = memo[q] = (day, day if period == "day" else keyer.week(r.ts))
            day, bucket = hit
            if (since and day < since) or (until and day > until):
                continue
            key = agent or ((r.model or "unknown") if by == "model" else (r.project or ""))
            acc = cells.setdefault((bucket, key), [0.0, 0])
            acc[0] += r.cost
            acc[1] += r.total_tokens
        if not cells:
            return {
                "period": period,
                "by": by,
                "timezone": tzname or "local",
                "buckets": [],
                "series": [],
            }, []
        first, last = min(b for b, _ in cells), max(b for b, _ in cells)
        step = timedelta(days=1 if period == "day" else 7)
        buckets, d = [], date.fromisoformat(first)
        while d.isoformat() <= last:
            buckets.append(d.isoformat())
            d += step
        index = {b: i for i, b in enumerate(buckets)}
        per_key: dict[str, dict[str, Any]] = {}
        for (b, key), (cost, tokens) in cells.items():
            s = per_key.get(key)
            if s is None:
                label = key if by in ("model", "agent") else project_name(key)
                s = per_key[key] = {
                    "key": key,
                    "label": label,
                    "cost": [0.0] * len(buckets),
                    "totalTokens": [0] * len(buckets),
                    "totalCost": 0.0,
                }
            s["cost"][index[b]] += cost
            s["totalTokens"][index[b]] += int(tokens)
            s["totalCost"] += cost
        ordered = sorted(per_key.values(), key=lambda s: (-s["totalCost"], s["key"]))
        if len(ordered) > top:
            rest = ordered[top - 1 :]
            other = {
                "key": None,
                "label": f"other ({len(rest)})",
                "cost": [sum(x) for x in zip(*(s["cost"] for s in rest), strict=True)],
                "totalTokens": [
                    sum(x) for x in zip(*(s["totalTokens"] for s in rest), strict=True)
                ],
                "totalCost": sum(s["totalCost"] for s in rest),
            }
            ordered = ordered[: top - 1] + [other]
        return {
            "period": period,
            "by": by,
            "timezone": tzname or "local",
            "buckets": buckets,
            "series": ordered,
        }, []

    def m_official(self, params: Any) -> Result:
        """The latest official 5 h / 7 d figures plus what the store still holds of earlier ones."""
        _obj("tokmon/official", params, set())
        from tokmon.core import official as official_mod
        from tokmon.core.timeutil import iso

        paths = getattr(self.engine, "paths", None)
        if paths is None:
            return {"latest": None, "history": []}, []
        history: list[dict[str, Any]] = []
        for rec in official_mod.all_sessions(paths).values():
            seen = rec.get("observedAt")
            if not isinstance(seen, (int, float)) or isinstance(seen, bool):
                continue
            history.append(
                {
                    "observedAt": iso(float(seen)),
                    "sessionId": rec.get("sessionId"),
                    "fiveHour": rec.get("fiveHour"),
                    "sevenDay": rec.get("sevenDay"),
                }
            )
        history.sort(key=lambda h: h["observedAt"])
        return {"latest": official_mod.latest(paths), "history": history}, []

    def m_set_metadata(self, params: Any) -> Result:
        m = "tokmon/setSessionMetadata"
        p = _obj(m, params, {"sessionId", "name", "tags", "addTags", "removeTags", "description"})
        sid = _str(m, p, "sessionId", required=True).strip()
        kwargs: dict[str, Any] = {}
        for key in ("name", "description"):
            v = _str(m, p, key, nullable=True)
            if v is not _MISSING:
                kwargs[key] = v
        for key, kw in (("tags", "tags"), ("addTags", "add_tags"), ("removeTags", "remove_tags")):
            v = _str_list(m, p, key)
            if v is not _MISSING:
                kwargs[kw] = v
        return self._update(m, sid, kwargs)

    def _update(self, method: str, sid: str, kwargs: dict[str, Any]) -> Result:
        found, row = self._resolve(method, sid)
        store = self.store
        if store is None:
            raise ServiceError(self._store_error or "session metadata unavailable")
        meta = store.update(found, **kwargs)
        old = self._meta_snapshot.get(found)
        self._meta_snapshot = {**self._meta_snapshot, found: meta}
        base = (
            row.to_json()
            if row is not None
            else {"sessionId": found, "title": self.engine.titles.get(found)}
        )
        out = self._merge([base], {found: meta})[0]
        notes = []
        if old is None or any(old.get(k) != meta.get(k) for k in ("name", "tags", "description")):
            notes.append(self._meta_note(found, meta))
        return out, notes

    def m_execute_command(self, params: Any) -> Result:
        m = "workspace/executeCommand"
        p = _obj(m, params, {"command", "arguments", "workDoneToken"})
        cmd = _str(m, p, "command", required=True)
        args = p.get("arguments") or []
        if not isinstance(args, (list, tuple)):
            raise InvalidParams(f"{m}: 'arguments' must be an array")
        return self.execute_command(cmd, list(args))

    def execute_command(self, cmd: str, args: list[Any]) -> Result:
        """``tokmon.tagSession`` / ``describeSession`` / ``renameSession``."""
        if cmd not in COMMANDS:
            raise InvalidParams(f"unknown command {cmd[:100]!r} (known: {', '.join(COMMANDS)})")
        if not args or not isinstance(args[0], str) or not args[0].strip():
            raise InvalidParams(f"{cmd}: the first argument must be a session id")
        sid, rest = args[0].strip(), args[1:]
        if not all(isinstance(a, str) for a in rest):
            raise InvalidParams(f"{cmd}: arguments must be strings")
        if cmd == "tokmon.tagSession":
            if not rest:
                raise InvalidParams(f"{cmd}: give at least one tag after the session id")
            return self._update(cmd, sid, {"add_tags": rest})
        if len(rest) != 1:
            raise InvalidParams(f"{cmd}: expected [sessionId, text]")
        key = "description" if cmd == "tokmon.describeSession" else "name"
        return self._update(cmd, sid, {key: rest[0] or None})


METHODS: dict[str, Callable[[Service, Any], Result]] = {
    "tokmon/version": Service.m_version,
    "tokmon/hello": Service.m_hello,
    "tokmon/summary": Service.m_summary,
    "tokmon/sessions": Service.m_sessions,
    "tokmon/session": Service.m_session,
    "tokmon/blocks": Service.m_blocks,
    "tokmon/daily": Service.m_daily,
    "tokmon/series": Service.m_series,
    "tokmon/official": Service.m_official,
    "tokmon/setSessionMetadata": Service.m_set_metadata,
    "tokmon/refresh": Service.m_refresh,
    "tokmon/limits": lambda self, params: _limits(self, params),
    "workspace/executeCommand": Service.m_execute_command,
}
"""Request methods shared by both transports."""

UNLOCKED = frozenset({"tokmon/version", "tokmon/hello"})


def _limits(service: Service, params: Any) -> Result:
    """``tokmon/limits``: the last limits status (see docs/limits.md); pushed as
    ``tokmon/limitsChanged`` whenever it changes."""
    _obj("tokmon/limits", params, set())
    mon = getattr(service, "limits_monitor", None)
    if mon is not None and mon.status is not None:
        return mon.status, []
    from tokmon.limits.run import evaluate
    from tokmon.paths import get_paths

    paths = get_paths(service.env)
    ev = evaluate(paths, service.env, paths.config_file, service.engine, fire=False)
    return {**ev.status, "budgets": ev.budgets}, []
