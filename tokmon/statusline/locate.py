"""Stdlib-only resolution of tokmon's directories for the fast path, and the reading of the
line snapshot found there (:mod:`tokmon.statusline.snapshot` builds and writes it).

Mirrors :func:`tokmon.paths.get_paths` (``TOKMON_HOME`` first, else the
platformdirs user dirs) without importing platformdirs, pathlib or even :mod:`os`
(:mod:`tokmon.oslite`); a test checks that both agree.
"""

import marshal
import sys

from tokmon import oslite

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the fast path does not import typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

APP = "tokmon"
#: the snapshot's format (``"v"``): another one reads as no snapshot
VERSION = 1
#: a snapshot older than this is rebuilt even when nothing watched changed
#: (an append to an old, unwatched transcript is picked up at least this often)
MAX_TRUST_SECONDS = 60.0


def _xdg(env: "Mapping[str, str]", var: str, fallback: str) -> str:
    """``$var/tokmon`` when the XDG variable is absolute (as platformdirs 4), else ``fallback``."""
    value = env.get(var, "")
    if value.startswith("/"):
        return oslite.join(value, APP)
    return fallback


def tokmon_dirs(env: "Mapping[str, str] | None" = None) -> dict[str, str]:
    """Return ``{"config", "data", "cache", "state"}`` directories as strings."""
    env = oslite.environ() if env is None else env
    home = env.get("TOKMON_HOME")
    if home:
        root = oslite.expanduser(home)
        return {k: oslite.join(root, k) for k in ("config", "data", "cache", "state")}
    if sys.platform == "win32":
        import os

        local = env.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        base = os.path.join(os.path.normpath(local), APP)
        return {"config": base, "data": base, "cache": os.path.join(base, "Cache"), "state": base}
    if sys.platform == "darwin":
        support = oslite.join(oslite.expanduser("~/Library/Application Support"), APP)
        caches = oslite.join(oslite.expanduser("~/Library/Caches"), APP)
    else:
        support = ""
        caches = oslite.join(oslite.expanduser("~/.cache"), APP)

    def pick(var: str, linux_default: str) -> str:
        return _xdg(env, var, support or oslite.join(oslite.expanduser(linux_default), APP))

    return {
        "config": pick("XDG_CONFIG_HOME", "~/.config"),
        "data": pick("XDG_DATA_HOME", "~/.local/share"),
        "cache": _xdg(env, "XDG_CACHE_HOME", caches),
        "state": pick("XDG_STATE_HOME", "~/.local/state"),
    }


def line_dir(dirs: dict[str, str]) -> str:
    """Where the fast snapshot, refresh lock and prompt files live."""
    return oslite.join(dirs["cache"], "line")


def fast_snapshot_file(dirs: dict[str, str]) -> str:
    return oslite.join(line_dir(dirs), "snapshot.bin")


def lock_file(dirs: dict[str, str]) -> str:
    return oslite.join(line_dir(dirs), "refresh.lock")


def ensure_private_dir(path: str) -> str:
    """``os.makedirs`` with mode 0700 on every level it creates (not only the leaf)."""
    import os  # only when writing: off the prompt's read path

    if os.path.isdir(path):
        return path
    parent = os.path.dirname(path)
    if parent and parent != path:
        ensure_private_dir(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    return path


def read_fast(path: str) -> "tuple[dict[str, Any] | None, float]":
    """``(snapshot, mtime)``; ``(None, 0.0)`` when missing, unreadable or corrupt."""
    try:
        data, mtime = oslite.read_file(path, 1 << 20)
        snap = marshal.loads(data)
    except (OSError, EOFError, ValueError, TypeError):
        return None, 0.0
    if not isinstance(snap, dict) or snap.get("v") != VERSION:
        return None, 0.0
    return snap, mtime


def watch_unchanged(snap: "dict[str, Any]") -> bool:
    """True when every watched path still has the recorded mtime (and the list is complete)."""
    watch = snap.get("watch")
    if not snap.get("watchComplete") or not isinstance(watch, list):
        return False
    try:
        for path, mtime_ns in watch:
            try:
                current = oslite.stat(path).st_mtime_ns
            except OSError:
                current = -1
            if current != mtime_ns:
                return False
    except (TypeError, ValueError):
        return False
    return True
