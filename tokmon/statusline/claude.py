"""Claude Code statusLine mode (``tokmon line --claude``).

Claude Code runs the statusLine command with a JSON object on stdin.  Every
field may be missing or null, and a misbehaving caller may never close stdin,
so the read is bounded in size and time and stops as soon as a complete JSON
object has arrived.  The official figures (rate limits, context window,
session name) are recorded per session for the other surfaces
(:mod:`tokmon.core.official`).
"""

from __future__ import annotations

import time

from tokmon import oslite
from tokmon.quickjson import loads as _loads

TYPE_CHECKING = False  # typing costs ~8 ms to import: keep it off the fast path
if TYPE_CHECKING:
    from typing import Any

MAX_BYTES = 1 << 20
TIMEOUT = 1.0


def _try_parse(buf: bytes) -> Any:
    text = buf.strip()
    if not text:
        return None
    try:
        return _loads(text.decode("utf-8", "replace"))
    except (ValueError, RecursionError):  # garbage or absurd nesting: no payload
        return None


def read_payload(
    stream: Any, timeout: float = TIMEOUT, limit: int = MAX_BYTES
) -> tuple[dict[str, Any] | None, str]:
    """Read the statusLine JSON; ``(payload or None, note)``.  Never raises, never hangs."""
    if stream is None:  # fd 0 closed (``<&-``): sys.stdin is None
        return None, "stdin is closed: no statusLine payload"
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:  # an in-memory stream (tests, embedding)
        try:
            data = stream.read(limit)
        except (OSError, ValueError, AttributeError) as exc:
            return None, f"cannot read stdin: {exc}"
        buf = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data or b"")
        return _finish(_try_parse(buf), buf, "stdin")
    try:
        if oslite.isatty(fd):
            return None, "stdin is a terminal: no statusLine payload"
    except OSError:
        return None, "stdin is closed"
    if oslite.name == "nt":  # pragma: no cover - Windows pipes cannot be select()ed
        return _read_thread(fd, timeout, limit)
    buf = b""
    try:  # Claude Code has written the payload before we get here: take it without waiting
        chunk = _read_if_ready(fd)
    except OSError as exc:
        return None, f"cannot read stdin: {exc.strerror or exc}"
    if chunk is not None:
        if not chunk:
            return _finish(None, buf, "stdin")  # EOF at once
        buf = chunk
        if chunk.rstrip().endswith(b"}"):
            parsed = _try_parse(buf)
            if isinstance(parsed, dict):  # complete object: don't wait for EOF
                return parsed, "statusLine payload read"
    import select  # a slow or silent writer: wait for it, boundedly

    deadline = time.monotonic() + timeout
    while len(buf) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            parsed = _try_parse(buf)
            return _finish(parsed, buf, f"stdin still open after {timeout:.1f}s")
        try:
            ready, _, _ = select.select([fd], [], [], left)
        except (OSError, ValueError) as exc:
            return None, f"cannot wait on stdin: {exc}"
        if not ready:
            continue
        try:
            chunk = oslite.read(fd, 65536)
        except OSError as exc:
            return None, f"cannot read stdin: {exc.strerror or exc}"
        if not chunk:
            break  # EOF
        buf += chunk
        if chunk.rstrip().endswith(b"}"):
            parsed = _try_parse(buf)
            if isinstance(parsed, dict):  # complete object: don't wait for EOF
                return parsed, "statusLine payload read"
    return _finish(_try_parse(buf[:limit]), buf, "stdin")


def _read_if_ready(fd: int) -> bytes | None:
    """What ``fd`` holds now, without waiting (``b""`` at EOF); None when nothing has arrived
    yet or the fd cannot be made non-blocking.  Spares importing :mod:`select` (a shared
    library to load) on the usual call; the blocking mode is restored at once."""
    try:
        blocking = oslite.get_blocking(fd)
        if blocking:
            oslite.set_blocking(fd, False)
    except (OSError, AttributeError):  # AttributeError: no such call on this platform
        return None
    try:
        return oslite.read(fd, 65536)
    except BlockingIOError:
        return None
    finally:
        if blocking:
            try:
                oslite.set_blocking(fd, True)
            except OSError:
                pass


def _read_thread(fd: int, timeout: float, limit: int) -> tuple[dict[str, Any] | None, str]:
    import threading  # pragma: no cover - Windows only

    chunks: list[bytes] = []

    def reader() -> None:
        size = 0
        while size < limit:
            try:
                chunk = oslite.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)
            size += len(chunk)
            if isinstance(_try_parse(b"".join(chunks)), dict):
                return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    buf = b"".join(chunks)
    return _finish(_try_parse(buf), buf, "stdin")


def _finish(parsed: Any, buf: bytes, where: str) -> tuple[dict[str, Any] | None, str]:
    if isinstance(parsed, dict):
        return parsed, "statusLine payload read"
    if not buf.strip():
        return None, f"empty {where}: no statusLine payload"
    return None, f"ignoring {len(buf)} bytes on {where}: not a JSON object"


RECORD_ERROR_FILE = "official.error"


def stdlib_paths(env: Any = None) -> Any:
    """tokmon's paths resolved without platformdirs: ``python -S`` (the fast command) cannot
    import site-packages from an editable, user-site or system install."""
    from pathlib import Path

    from tokmon.paths import TokmonPaths
    from tokmon.statusline.locate import tokmon_dirs

    d = tokmon_dirs(env)
    return TokmonPaths(Path(d["config"]), Path(d["data"]), Path(d["cache"]), Path(d["state"]))


class LightPaths:
    """The few tokmon paths ``line --claude`` reads, as strings (no pathlib, no dataclass);
    :meth:`full` gives :class:`tokmon.paths.TokmonPaths` when something must be written."""

    def __init__(self, env: Any = None) -> None:
        from tokmon.statusline.locate import tokmon_dirs

        self.env = env
        dirs = tokmon_dirs(env)
        self.state_dir = dirs["state"]
        self.config_file = oslite.join(dirs["config"], "config.toml")
        self.official_file = oslite.join(self.state_dir, "official.json")

    def full(self) -> Any:
        return stdlib_paths(self.env)


def _note_record_error(env: Any, error: str | None) -> None:
    """Keep the last failure to record official figures for ``line --explain`` (a statusLine
    command's stderr is never seen); cleared by the next success."""
    from tokmon.statusline.locate import ensure_private_dir, line_dir, tokmon_dirs

    try:
        ldir = line_dir(tokmon_dirs(env))
        path = oslite.join(ldir, RECORD_ERROR_FILE)
        if error is None:
            try:
                oslite.unlink(path)  # one syscall, none more when there is nothing to clear
            except FileNotFoundError:
                pass
            return
        import os

        ensure_private_dir(ldir)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(error + "\n")
    except OSError:
        pass


def last_record_error(dirs: dict[str, str]) -> tuple[float, str] | None:
    """``(time, message)`` of the last failed ``line --claude`` record, if any."""
    from tokmon.statusline.locate import line_dir

    path = oslite.join(line_dir(dirs), RECORD_ERROR_FILE)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return oslite.fstat(fh.fileno()).st_mtime, fh.readline(400).strip()
    except OSError:
        return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def process(
    payload: dict[str, Any] | None, env: Any = None
) -> tuple[dict[str, Any] | None, str | None]:
    """Record the payload's official figures and return the segments' inputs.

    Returns ``(info, note)``; ``info`` is None without a usable payload.  Never raises.
    """
    if not isinstance(payload, dict):
        return None, None
    from tokmon.core import official

    note = None
    rec = None
    error = None
    paths = LightPaths(env)
    try:
        rec = official.record(paths, payload)
        if rec is None:
            note = "payload has no session_id: official figures not recorded"
    except Exception as exc:  # read-only state dir, lock timeout...: still print the line
        error = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
        note = f"could not record official figures: {error}"
    try:  # the official-limit history (appends only when a figure changed)
        from tokmon.limits.record import record_payload

        record_payload(paths, payload, env=env)
    except Exception as exc:
        error = error or f"limit history: {type(exc).__name__}: {exc}".replace("\n", " ")[:300]
    _note_record_error(env, error)
    if rec is None:  # not recorded: still show what the payload says
        rec = official.extract(payload, require_session=False) or {}
    raw_cost = _obj(payload.get("cost")).get("total_cost_usd")
    cost = official._num(raw_cost, 0.0, official.MAX_COST_USD)  # 1e308 is not a cost
    name = rec.get("sessionName") or rec.get("model")
    session = None
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        session = {"name": name or "session", "costUSD": float(cost), "model": rec.get("model")}
    info = {
        "official": rec if (rec.get("fiveHour") or rec.get("sevenDay")) else None,
        "session": session,
        "context": rec.get("contextWindow"),
        "sessionId": rec.get("sessionId"),
    }
    return info, note
