"""A crash-safe TinyDB Storage: orjson, temp file + fsync + ``os.replace``, mode 0600.

TinyDB's stock ``JSONStorage`` rewrites the file in place, so a crash or a concurrent
reader can see half a file.  This storage always writes a complete new file next to
the target and atomically swaps it in, so readers see either the old or the new
document, never a mix.

By default every ``read`` goes to disk, so writes made by other processes are always
visible.  ``MetadataStore`` opens it with ``cache=True`` only for the span of one
transaction, while it holds the cross-process lock: nobody else can write then, so the
parsed document is reused instead of re-read for each TinyDB call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from tokmon.fsutil import atomic_write
from tokmon.metadata.fileio import dump_json, read_json


class AtomicJSONStorage(Storage):
    """TinyDB storage writing with :func:`tokmon.fsutil.atomic_write` and reading with orjson."""

    def __init__(self, path: str | Path, cache: bool = False) -> None:
        self.path = Path(path)
        self._use_cache = cache
        self._cache: dict[str, dict[str, Any]] | None = None

    def read(self) -> dict[str, dict[str, Any]] | None:
        if self._cache is not None:
            return self._cache
        data = read_json(self.path)
        if self._use_cache:
            self._cache = data
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        self._cache = None
        atomic_write(self.path, dump_json(data))
        if self._use_cache:
            self._cache = data

    def close(self) -> None:
        self._cache = None
