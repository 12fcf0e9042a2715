"""A crash-safe TinyDB Storage: orjson, temp file + fsync + ``os.replace``, mode 0600.

TinyDB's stock ``JSONStorage`` rewrites the file in place, so a crash or a concurrent
reader can see half a file.  This storage always writes a complete new file next to
the target and atomically swaps it in, so readers see either the old or the new
document, never a mix.  It holds no cache: every ``read`` goes to disk, so writes made
by other processes are always visible.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from tinydb.storages import Storage

from tokmon.metadata.schema import MetadataError
from tokmon.paths import ensure_dir

TMP_SUFFIX = ".tmp"


def read_json(path: Path) -> dict[str, Any] | None:
    """Parse ``path`` (None when missing or empty); MetadataError when corrupt."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MetadataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw.strip():
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MetadataError(
            f"{path} is not valid JSON ({exc}); restore a backup with `tokmon backup restore`"
        ) from None
    if not isinstance(data, dict):
        raise MetadataError(f"{path} does not hold a JSON object")
    return data


def dump_json(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically and durably, mode 0600."""
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=str(path.parent))
    try:
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o600)  # mkstemp already creates 0600; belt and braces
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _replace(src: str, dst: Path) -> None:
    # On Windows os.replace fails while another process has dst open: retry briefly.
    for attempt in range(50):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 49:
                raise
            time.sleep(0.02)


def _fsync_dir(directory: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    with contextlib.suppress(OSError):
        dfd = os.open(str(directory), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def remove_stale_temp_files(path: Path) -> int:
    """Delete temp files a killed writer left behind (call only while holding the lock)."""
    removed = 0
    for leftover in path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed += 1
    return removed


class AtomicJSONStorage(Storage):
    """TinyDB storage writing with :func:`write_atomic` and reading with orjson."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        return read_json(self.path)

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        write_atomic(self.path, dump_json(data))

    def close(self) -> None:  # nothing held open between operations
        pass
