"""The persistent ledger: read offsets and deduplicated usage records.

One JSON file per set of roots in tokmon's data dir, written atomically. It keeps every
record ever seen, so history survives Claude Code deleting old transcripts. A corrupt or
older-version ledger is discarded and rebuilt (the engine prints a one-line notice).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson

from tokmon.fsutil import atomic_write
from tokmon.reader import FileState
from tokmon.records import UsageRecord

LEDGER_VERSION = 3


class LedgerError(Exception):
    """The ledger file is unreadable, corrupt or from another version."""


def ledger_path(data_dir: Path, roots: list[Path]) -> Path:
    key = "\n".join(sorted(os.path.abspath(r) for r in roots))
    return data_dir / f"ledger-{hashlib.sha1(key.encode()).hexdigest()[:12]}.json"


class Ledger:
    """In-memory ledger state: file states, records by dedup key, titles by session."""

    def __init__(self) -> None:
        self.files: dict[str, FileState] = {}
        self.records: dict[str, UsageRecord] = {}
        self.titles: dict[str, dict[str, str]] = {}
        self.price_signature = ""
        self.stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file we loaded

    def add(self, rec: UsageRecord) -> bool:
        """Merge one record under the dedup rule (largest output wins, ties keep the first)."""
        old = self.records.get(rec.key)
        if old is None:
            self.records[rec.key] = rec
            return True
        if rec.output_tokens > old.output_tokens:
            self.records[rec.key] = rec
            return True
        return False

    def to_bytes(self) -> bytes:
        # Rows are the records' fields in order, so loading is one tuple per row.
        recs = list(map(list, self.records.values()))
        doc = {
            "version": LEDGER_VERSION,
            "priceSignature": self.price_signature,
            "files": {k: v.to_list() for k, v in self.files.items()},
            "titles": self.titles,
            "records": recs,
        }
        return orjson.dumps(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> Ledger:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise LedgerError(f"corrupt ledger ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("version") != LEDGER_VERSION:
            raise LedgerError("ledger from another tokmon version")
        led = cls()
        try:
            led.price_signature = doc["priceSignature"]
            led.files = {k: FileState.from_list(v) for k, v in doc["files"].items()}
            led.titles = doc["titles"]
            new = tuple.__new__
            rec = UsageRecord
            led.records = {t[9]: new(rec, t) for t in doc["records"]}
            if led.records and len(next(iter(led.records.values()))) != 12:
                raise LedgerError("corrupt ledger (record width)")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LedgerError(f"corrupt ledger ({exc.__class__.__name__})") from exc
        return led

    def save(self, path: Path) -> None:
        """Write the full ledger, then its small index (file states only)."""
        atomic_write(path, self.to_bytes())
        st = path.stat()
        self.stamp = (st.st_mtime_ns, st.st_size)
        idx = {
            "version": LEDGER_VERSION,
            "stamp": list(self.stamp),
            "priceSignature": self.price_signature,
            "files": {k: v.to_list() for k, v in self.files.items()},
        }
        atomic_write(index_path(path), orjson.dumps(idx), fsync=False)


def index_path(path: Path) -> Path:
    return path.with_suffix(".idx")


def load_index(path: Path, stamp: tuple[int, int]) -> Ledger | None:
    """File states only, if the index matches the ledger at ``stamp`` (else None)."""
    try:
        doc = orjson.loads(index_path(path).read_bytes())
        if doc.get("version") != LEDGER_VERSION or tuple(doc["stamp"]) != stamp:
            return None
        led = Ledger()
        led.files = {k: FileState.from_list(v) for k, v in doc["files"].items()}
        led.price_signature = doc["priceSignature"]
        led.stamp = stamp
        return led
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def load(path: Path) -> Ledger:
    """Load the ledger at ``path`` (an empty one if missing). Raises LedgerError if bad."""
    stamp = file_stamp(path)
    if stamp is None:
        return Ledger()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"unreadable ledger ({exc.strerror})") from exc
    led = Ledger.from_bytes(data)
    led.stamp = stamp
    return led
