"""The persistent ledger: read offsets and deduplicated usage records.

One JSON file per set of roots in tokmon's data dir, written atomically. It keeps every
record ever seen, so history survives Claude Code deleting old transcripts, and it is the
only copy of that history: it is never replaced without keeping the old file aside.

Loading validates every value. Older versions (2, 3) are migrated; invalid records, file
states or titles are dropped one by one (``Ledger.dropped``; the engine keeps the old file
aside and re-reads the transcripts); a file that cannot be read or parsed raises
LedgerError (kept aside, rebuilt from transcripts); a newer version raises LedgerNewer (the
engine then never writes it). See docs/architecture.md, "Data safety".
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from tokmon.core.digest import sha1_hex
from tokmon.core.model import ROW_KEY, UsageRecord
from tokmon.core.reader import FileState
from tokmon.core.records import valid_row
from tokmon.fsutil import atomic_write
from tokmon.textsafe import safe_text

LEDGER_VERSION = 4
MIGRATES_FROM = (2, 3)


class LedgerError(Exception):
    """The ledger file is unreadable, corrupt or from a version that cannot be migrated."""

    kind = "corrupt"  # names the kept-aside copy: ledger-X.json.<kind>-<time>


class LedgerUnreadable(LedgerError):
    kind = "unreadable"


class LedgerNewer(LedgerError):
    """Written by a newer tokmon: read nothing from it, never overwrite it."""

    kind = "newer"

    def __init__(self, version: int) -> None:
        super().__init__(
            f"ledger written by a newer tokmon (format {version}, this one reads {LEDGER_VERSION})"
        )
        self.version = version


def ledger_path(data_dir: Path, roots: list[Path]) -> Path:
    key = "\n".join(sorted(os.path.abspath(r) for r in roots))
    return data_dir / f"ledger-{sha1_hex(key.encode())[:12]}.json"


class Ledger:
    """In-memory ledger state: file states, records by dedup key, titles by session."""

    def __init__(self) -> None:
        self.files: dict[str, FileState] = {}
        self.records: dict[str, UsageRecord] = {}
        self.titles: dict[str, dict[str, str]] = {}
        self.price_signature = ""
        self.stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file we loaded
        self.migrated_from: int | None = None  # the version we converted on load
        self.dropped = 0  # invalid records / file states / titles dropped on load

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
        try:
            return orjson.dumps(doc)
        except orjson.JSONEncodeError:
            # A value JSON cannot hold (the parser rejects them; belt and braces): drop the
            # offending records rather than never saving again.
            doc["records"] = [r for r in recs if valid_row(r)]
            return orjson.dumps(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> Ledger:
        """Parse and validate; raises LedgerError (corrupt, old) or LedgerNewer."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise LedgerError(f"corrupt ledger ({exc})") from exc
        if not isinstance(doc, dict):
            raise LedgerError("corrupt ledger (not an object)")
        version = doc.get("version")
        if type(version) is not int:
            raise LedgerError("corrupt ledger (no version)")
        if version > LEDGER_VERSION:
            raise LedgerNewer(version)
        if version != LEDGER_VERSION and version not in MIGRATES_FROM:
            raise LedgerError(
                f"ledger from an old tokmon (format {version}) that cannot be migrated"
            )
        files, titles, rows = doc.get("files"), doc.get("titles", {}), doc.get("records")
        if type(files) is not dict or type(rows) is not list:
            raise LedgerError("corrupt ledger (no files or records)")
        if version == 2:
            rows = _rows_v2(rows, doc.get("strings"))
        led = cls()
        if version != LEDGER_VERSION:
            led.migrated_from = version
        sig = doc.get("priceSignature")
        led.price_signature = sig if type(sig) is str else ""
        dropped = 0
        for k, v in files.items():
            try:
                led.files[k] = FileState.from_list(v)
            except (TypeError, ValueError):
                dropped += 1
        if type(titles) is dict:
            for sid, t in titles.items():
                if type(t) is dict and all(type(x) is str for x in t.values()):
                    # written before titles were cleaned where they enter (issue 10, item 5)
                    led.titles[safe_text(sid)] = {k: safe_text(x) for k, x in t.items()}
                else:
                    dropped += 1
        else:
            dropped += 1
        new = tuple.__new__
        rec = UsageRecord
        recs = led.records
        bad_records = 0
        for t in rows:
            if valid_row(t):
                r = new(rec, t)  # type: ignore[arg-type]
                if not (
                    r.session_id + r.project + r.model
                ).isprintable():  # an old ledger's raw text
                    r = r._replace(
                        session_id=safe_text(r.session_id),
                        project=safe_text(r.project),
                        model=safe_text(r.model),
                    )
                recs[t[ROW_KEY]] = r  # type: ignore[index]
            else:
                bad_records += 1
        led.dropped = dropped + bad_records
        if led.dropped:
            led.files.clear()  # re-read every transcript: recovers what still exists
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


def _rows_v2(rows: list[object], strings: object) -> list[object]:
    """Format 2 rows (key first, strings interned) in today's field order."""
    if type(strings) is not list:
        raise LedgerError("corrupt ledger (format 2 without strings)")
    out: list[object] = []
    for t in rows:
        try:
            k, ts, s, p, m, *rest = t  # type: ignore[misc]
            out.append([ts, strings[s], strings[p], strings[m], *rest[:5], k, *rest[5:]])  # type: ignore[has-type]
        except (TypeError, ValueError, IndexError):
            out.append(None)  # dropped (counted) by the validation
    return out


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
        if type(led.price_signature) is not str:
            return None
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
        raise LedgerUnreadable(f"unreadable ledger ({exc.strerror or exc})") from exc
    led = Ledger.from_bytes(data)
    led.stamp = stamp
    return led
