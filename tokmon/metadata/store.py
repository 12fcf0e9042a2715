"""``MetadataStore``: session names, tags and descriptions in a TinyDB file.

Every change is one read-modify-write under a cross-process lock
(``<file>.lock``), written through :class:`AtomicJSONStorage` (temp file + fsync +
``os.replace``), so concurrent tokmon processes (CLI, language server, line helper)
never lose each other's updates and a killed writer never leaves a broken file.
TinyDB instances live for one operation only and tables use ``cache_size=0``, so no
query cache can go stale across processes.  Reads parse the file directly (readers
never need the lock because files are swapped atomically) and do not import tinydb.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tokmon.fsutil import atomic_write
from tokmon.metadata.fileio import dump_json, parse_json, read_json, remove_stale_temp_files
from tokmon.metadata.schema import (
    META_TABLE,
    SCHEMA_VERSION,
    SESSIONS_TABLE,
    MetadataError,
    check_session_id,
    clean_description,
    clean_name,
    clean_title,
    empty_record,
    migrate,
    name_key,
    normalise_tags,
    now_iso,
    sanitise,
    schema_version,
    validate,
)
from tokmon.paths import TokmonPaths, get_paths

__all__ = ["MetadataError", "MetadataStore", "UNSET", "merge_metadata", "SCHEMA_VERSION"]


class _Unset:
    """Sentinel type: "argument not given" (``None`` means "clear")."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()

PUBLIC_FIELDS = (
    "sessionId",
    "name",
    "tags",
    "description",
    "claudeTitle",
    "createdAt",
    "updatedAt",
)


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    out = {key: doc.get(key) for key in PUBLIC_FIELDS}
    out["tags"] = list(out["tags"] or [])
    return out


def _fresh_db() -> dict[str, Any]:
    return {SESSIONS_TABLE: {}, META_TABLE: {"1": {"schemaVersion": SCHEMA_VERSION}}}


class MetadataStore:
    """Session metadata (user names, tags, descriptions, Claude titles) on disk."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        paths: TokmonPaths | None = None,
        lock_timeout: float = 15.0,
    ) -> None:
        if path is None:
            path = (paths or get_paths()).metadata_file
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout
        self._swept = False
        self.last_migration_backup: Path | None = None

    # ------------------------------------------------------------------ internals

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        from tokmon.fsutil import FileLock, LockTimeout

        lock = FileLock(self.lock_path, timeout=self.lock_timeout)
        try:
            lock.acquire()
        except LockTimeout:
            raise MetadataError(
                f"the metadata store {self.path} is busy (lock held for "
                f"{self.lock_timeout:.0f}s by another tokmon process)"
            ) from None
        except OSError as exc:
            raise MetadataError(f"cannot lock {self.lock_path}: {exc.strerror or exc}") from None
        try:
            if not self._swept:
                remove_stale_temp_files(self.path)
                self._swept = True
            yield
        except OSError as exc:  # e.g. a read-only or full disk: one clear line, no traceback
            where = exc.filename or self.path
            raise MetadataError(f"cannot write {where}: {exc.strerror or exc}") from None
        finally:
            lock.release()

    def _migrate_locked(self) -> None:
        """Bring the file to the current schema (caller holds the lock)."""
        data = read_json(self.path)
        if data is None:
            return
        version = schema_version(data)
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            migrate(data)  # raises the "newer tokmon" error
        original = self.path.read_bytes()
        backup = self.path.with_name(f"{self.path.name}.v{version}.bak")
        if backup.exists():
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
            backup = self.path.with_name(f"{self.path.name}.v{version}.{stamp}.bak")
        atomic_write(backup, original)  # backup first, then migrate
        self.last_migration_backup = backup
        migrated, _ = migrate(data)
        validate(migrated)
        atomic_write(self.path, dump_json(migrated))

    def _read(self, raw: bytes | None = None) -> dict[str, Any]:
        """Current-schema data (migrating under the lock when needed); ``raw``: the file's
        bytes, already read by the caller (None: read them)."""
        data = read_json(self.path) if raw is None else parse_json(raw, self.path)
        if data is None:
            return _fresh_db()
        if schema_version(data) != SCHEMA_VERSION:
            with self._locked():
                self._migrate_locked()
            data = read_json(self.path) or _fresh_db()
        return data

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """Lock, migrate if needed, and yield the TinyDB sessions table.

        The table's query cache is off; the storage reuses its parsed document only
        until the lock is released.
        """
        from tinydb import TinyDB

        from tokmon.metadata.storage import AtomicJSONStorage

        with self._locked():
            self._migrate_locked()
            db = TinyDB(self.path, storage=AtomicJSONStorage, cache=True)
            try:
                if not db.table(META_TABLE, cache_size=0).all():
                    db.table(META_TABLE, cache_size=0).insert({"schemaVersion": SCHEMA_VERSION})
                yield db.table(SESSIONS_TABLE, cache_size=0)
            finally:
                db.close()

    # ------------------------------------------------------------------ reads

    def all(self, raw: bytes | None = None) -> dict[str, dict[str, Any]]:
        """sessionId -> metadata record, for every session with metadata; ``raw``: the
        file's bytes when the caller has read them already (one read for a digest and the
        records)."""
        table = self._read(raw).get(SESSIONS_TABLE) or {}
        out: dict[str, dict[str, Any]] = {}
        for doc in table.values():
            if isinstance(doc, dict) and isinstance(doc.get("sessionId"), str):
                out[doc["sessionId"]] = _public(doc)
        return out

    def get(self, session_id: str) -> dict[str, Any] | None:
        return self.all().get(session_id)

    def find_by_name(self, name: str) -> str | None:
        """The session whose user name equals ``name`` (case-insensitively)."""
        key = name_key(" ".join(name.split()))
        for sid, rec in self.all().items():
            if rec["name"] and name_key(rec["name"]) == key:
                return sid
        return None

    # ------------------------------------------------------------------ writes

    def update(
        self,
        session_id: str,
        *,
        name: Any = UNSET,
        tags: Any = UNSET,
        add_tags: Any = UNSET,
        remove_tags: Any = UNSET,
        description: Any = UNSET,
    ) -> dict[str, Any]:
        """Change one session's metadata in a single locked read-modify-write.

        ``UNSET`` (the default) leaves a field alone; ``None`` clears it.  Raises
        :class:`MetadataError` on a duplicate name or an invalid tag.
        """
        check_session_id(session_id)
        new_name = UNSET if name is UNSET else (None if name is None else clean_name(name))
        new_tags = UNSET if tags is UNSET else ([] if tags is None else normalise_tags(tags))
        adding = [] if add_tags is UNSET or add_tags is None else normalise_tags(add_tags)
        removing = (
            [] if remove_tags is UNSET or remove_tags is None else normalise_tags(remove_tags)
        )
        if description is UNSET:
            new_desc = UNSET
        else:
            new_desc = None if description is None else (clean_description(description) or None)

        with self._transaction() as table:
            docs = table.all()
            current = next((d for d in docs if d.get("sessionId") == session_id), None)
            if new_name:
                key = name_key(new_name)
                for other in docs:
                    if other.get("sessionId") != session_id and name_key(other.get("name")) == key:
                        raise MetadataError(
                            f"the name {new_name!r} is already used by session {other['sessionId']}"
                        )
            ts = now_iso()
            record = dict(current) if current is not None else empty_record(session_id, ts)
            before = _public(record)
            if new_name is not UNSET:
                record["name"] = new_name
            tag_set = set(record.get("tags") or []) if new_tags is UNSET else set(new_tags)
            tag_set.update(adding)
            tag_set.difference_update(removing)
            record["tags"] = sorted(tag_set)
            if new_desc is not UNSET:
                record["description"] = new_desc
            if current is not None and _public(record) == before:
                return before
            if current is None and not (record["name"] or record["tags"] or record["description"]):
                return _public(record)  # nothing to remember: do not create an empty record
            record["updatedAt"] = ts
            if current is None:
                table.insert(record)
            else:
                table.update(record, doc_ids=[current.doc_id])
            return _public(record)

    def set_claude_title(self, session_id: str, title: str | None) -> bool:
        """Record Claude's own title (e.g. statusLine ``session_name``).

        Stored apart from the user's name, which it never overrides.  Cheap when
        unchanged (one unlocked read, no tinydb import); returns True when written.
        """
        check_session_id(session_id)
        cleaned = clean_title(title) if title is not None else None
        if not cleaned:
            return False
        current = self.all().get(session_id)
        if current is not None and current.get("claudeTitle") == cleaned:
            return False
        from tinydb import Query

        q = Query()
        with self._transaction() as table:
            doc = table.get(q.sessionId == session_id)
            if doc is not None and doc.get("claudeTitle") == cleaned:
                return False
            ts = now_iso()
            if doc is None:
                record = empty_record(session_id, ts)
                record["claudeTitle"] = cleaned
                table.insert(record)
            else:
                table.update({"claudeTitle": cleaned, "updatedAt": ts}, q.sessionId == session_id)
        return True

    def delete(self, session_id: str) -> bool:
        """Remove a session's metadata (never its transcript); True if there was any."""
        from tinydb import Query

        q = Query()
        with self._transaction() as table:
            return bool(table.remove(q.sessionId == session_id))

    # ------------------------------------------------------------------ backup

    def backup(self, dest: Path) -> Path:
        """Write a consistent copy of the store to ``dest`` (a file or a directory)."""
        dest = Path(dest).expanduser()
        if dest.is_dir():
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            dest = dest / f"sessions-{stamp}.json"
            n = 2
            while dest.exists():
                dest = dest.with_name(f"sessions-{stamp}-{n}.json")
                n += 1
        if dest.resolve() == self.path.resolve():
            raise MetadataError("the backup path is the metadata file itself")
        with self._locked():
            self._migrate_locked()
            data = read_json(self.path) or _fresh_db()
            validate(data)
            try:
                atomic_write(dest, dump_json(data))
            except OSError as exc:
                raise MetadataError(f"cannot write {dest}: {exc.strerror or exc}") from None
        return dest

    def restore(self, src: Path) -> Path | None:
        """Replace the store with the backup ``src`` after validating all of it (atomic).

        Nothing is touched unless the whole backup is valid.  The replaced file is kept as
        ``<file>.pre-restore-<UTC time>.bak`` (a new one per restore, never overwritten);
        returns that path (None when there was no file).
        """
        src = Path(src).expanduser()
        if not src.is_file():
            raise MetadataError(f"backup {src} does not exist")
        import orjson

        try:
            raw = src.read_bytes()
        except OSError as exc:
            raise MetadataError(f"cannot read backup {src}: {exc.strerror or exc}") from None
        if not raw.strip():
            raise MetadataError(f"backup {src} is empty")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MetadataError(f"backup {src} is invalid: not valid JSON ({exc})") from None
        try:
            data, _ = migrate(data)
            validate(sanitise(data))
        except MetadataError as exc:
            raise MetadataError(f"backup {src} is invalid: {exc}") from None
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise MetadataError(f"backup {src} is invalid: {type(exc).__name__}") from None
        payload = dump_json(data)
        kept = None
        with self._locked():
            if self.path.exists():
                stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
                kept = self.path.with_name(f"{self.path.name}.pre-restore-{stamp}.bak")
                n = 2
                while kept.exists():
                    kept = self.path.with_name(f"{self.path.name}.pre-restore-{stamp}-{n}.bak")
                    n += 1
                atomic_write(kept, self.path.read_bytes())
            atomic_write(self.path, payload)
        return kept


def merge_metadata(
    rows: list[dict[str, Any]], store_all: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Kept for callers of the old name: :func:`tokmon.sessions.merge` holds the rule."""
    from tokmon.sessions import merge

    return merge(rows, store_all)
