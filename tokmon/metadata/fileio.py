"""JSON file I/O for the metadata store (no tinydb import here).

Writes use :func:`tokmon.fsutil.atomic_write` (temp file, fsync, ``os.replace``, mode 0600),
so a reader sees the old or the new file, never half of one.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import orjson

from tokmon.fsutil import TMP_SUFFIX, read_regular
from tokmon.metadata.schema import MetadataError


def read_json(path: Path) -> dict[str, Any] | None:
    """Parse ``path`` (None when missing or empty); MetadataError when corrupt."""
    try:
        raw = read_regular(path)  # (a FIFO there would hang every reader)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MetadataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_json(raw, path)


def parse_json(raw: bytes, path: Path) -> dict[str, Any] | None:
    """:func:`read_json` of the bytes ``raw`` read from ``path``."""
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


def remove_stale_temp_files(path: Path) -> int:
    """Delete temp files a killed writer left behind (call only while holding the lock)."""
    removed = 0
    for leftover in path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            leftover.unlink()
            removed += 1
    return removed
