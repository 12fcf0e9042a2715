"""Crash-safe JSON file I/O for the metadata store (no tinydb import here).

Writes go to a temp file in the same directory, are fsynced, then swapped in with
``os.replace`` (mode 0600), so a reader sees the old or the new file, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

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
