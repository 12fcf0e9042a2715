"""Store: the ledger file (load, lock, move aside, save now or in the background)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokmon.core.ledger import (
    Ledger,
    LedgerError,
    LedgerNewer,
    file_stamp,
    index_path,
    load,
    load_index,
)
from tokmon.fsutil import FileLock, LockTimeout

if TYPE_CHECKING:
    pass

from tokmon.core.engine.state import Changes, EngineState

log = logging.getLogger("tokmon.core.engine")

LOCK_TIMEOUT = 5.0  # seconds a refresh waits for the ledger lock, then goes on without saving


@dataclass
class SaveJob:
    """A ledger copy being written in the background (see Engine.snapshot)."""

    ledger: Ledger | None  # None: only the agents' store changed
    base_stamp: tuple[int, int] | None
    version: int
    new_stamp: tuple[int, int] | None = None
    superseded: bool = False
    agents_payload: bytes | None = None  # the other agents' store, serialised under the lock
    agents_version: int = 0


class Store(EngineState):
    """The ledger on disk: loading, locking, moving broken files aside, saving now or in the
    background (snapshot / write / commit)."""

    def _price_key(self) -> str:
        return f"{self.prices.signature}|{self.config.get('cost_mode')}"

    def _save_agents(self, warnings: list[str]) -> None:
        assert self.agents is not None
        try:
            self.agents.save()
        except OSError as exc:
            warnings.append(f"cannot save the agents' ledger: {exc}")

    def _save_locked(self, warnings: list[str]) -> None:
        if self._readonly is not None or not self._keep_aside(warnings):
            return
        try:
            self.ledger.price_signature = self._price_key()
            self.ledger.save(self.ledger_file)
            self._dirty = False
        except OSError as exc:
            warnings.append(f"cannot save the ledger: {exc.strerror or exc}")
        except (TypeError, ValueError) as exc:  # orjson: a value JSON cannot hold
            warnings.append(f"cannot save the ledger: {exc}")

    def _keep_aside(self, warnings: list[str]) -> bool:
        """Move a broken/old ledger file aside before it would be overwritten (under the lock).

        False (and the engine turns read-only) if it cannot be moved: never overwrite it.
        """
        if self._aside is None:
            return True
        dest, stamp = self._aside
        if file_stamp(self.ledger_file) != stamp:
            self._aside = None  # gone or replaced meanwhile: nothing of ours to keep
            return True
        try:
            os.replace(self.ledger_file, dest)
        except OSError as exc:
            self._readonly = (
                f"cannot keep the ledger {self.ledger_file} aside "
                f"({exc.strerror or exc}): not overwriting it; results not saved"
            )
            warnings.append(self._readonly)
            return False
        with contextlib.suppress(OSError):
            os.unlink(index_path(self.ledger_file))
        self._aside = None
        return True

    def _aside_path(self, kind: str) -> Path:
        when = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = self.ledger_file.with_name(f"{self.ledger_file.name}.{kind}-{when}")
        if dest.exists():
            dest = dest.with_name(f"{dest.name}-{os.getpid()}")
        return dest

    def _late_warning(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)
        else:
            log.warning("%s", message)

    def snapshot(self) -> SaveJob | None:
        """A copy of the dirty ledger to write without holding up readers (cheap)."""
        if not self.persist or self._readonly is not None:
            return None
        payload = self.agents.payload() if self.agents is not None else None
        if not self._dirty:
            if payload is None:
                return None
            assert self.agents is not None
            return SaveJob(
                None,
                self.ledger.stamp,
                self.version,
                agents_payload=payload,
                agents_version=self.agents.version,
            )
        led = Ledger()
        led.files = dict(self.ledger.files)
        led.records = dict(self.ledger.records)
        led.titles = {k: dict(v) for k, v in self.ledger.titles.items()}
        led.price_signature = self._price_key()
        return SaveJob(
            led,
            self.ledger.stamp,
            self.version,
            agents_payload=payload,
            agents_version=self.agents.version if self.agents is not None else 0,
        )

    def write(self, job: SaveJob) -> list[str]:
        """The slow part of a save: serialise and write ``job`` (no engine state touched)."""
        warnings: list[str] = []
        if job.agents_payload is not None and self.agents is not None:
            try:
                self.agents.write(job.agents_payload)
            except OSError as exc:
                warnings.append(f"cannot save the agents' ledger: {exc}")
                job.agents_payload = None
        if job.ledger is None:
            return warnings
        try:
            with FileLock(self.ledger_file.with_suffix(".lock"), timeout=30):
                if self._readonly is not None or not self._keep_aside(warnings):
                    return warnings
                if file_stamp(self.ledger_file) not in (None, job.base_stamp):
                    job.superseded = True  # another process saved: its file is valid too
                    return warnings
                job.ledger.save(self.ledger_file)
                job.new_stamp = job.ledger.stamp
                if job.new_stamp is not None:  # set.add is atomic: safe from this thread
                    self._own_stamps.add(job.new_stamp)
        except (OSError, LockTimeout, TypeError, ValueError) as exc:
            warnings.append(f"cannot save the ledger: {exc}")
        return warnings

    def commit(self, job: SaveJob) -> None:
        """Record that ``job`` was written (call under the same lock as refresh)."""
        if job.agents_payload is not None and self.agents is not None:
            self.agents.saved(job.agents_version)
        if job.ledger is None:
            return
        if job.new_stamp is not None and self.ledger.stamp == job.base_stamp:
            self.ledger.stamp = job.new_stamp
        if (job.new_stamp is not None or job.superseded) and self.version == job.version:
            self._dirty = False

    def save(self) -> list[str]:
        """Persist a ledger left dirty by ``refresh(save=False)``; returns warnings.

        If another process wrote the ledger meanwhile, its (equally valid) file is kept and
        the next refresh loads it.
        """
        warnings: list[str] = []
        if self.agents is not None and self.persist and self._readonly is None:
            self._save_agents(warnings)
        if not (self._dirty and self.persist):
            return warnings
        try:
            with FileLock(self.ledger_file.with_suffix(".lock"), timeout=30):
                if file_stamp(self.ledger_file) in (None, self.ledger.stamp):
                    self._save_locked(warnings)
                else:
                    self._dirty = False
        except (OSError, LockTimeout) as exc:
            warnings.append(f"cannot save the ledger: {exc}")
        return warnings

    def data_version(self) -> str | None:
        """Identifies the persisted data state (for caches of derived output), or None when
        the in-memory data is not exactly the saved file (unsaved changes, read-only)."""
        if (
            not self.persist
            or self.ledger.stamp is None
            or self._dirty
            or self._aside is not None
            or self._readonly is not None
        ):
            return None  # the engine holds data the file lacks: no cache may stand for it
        agents = ""
        if self.agents is not None:
            stamp = self.agents.stamp()
            if stamp is None:
                return None
            agents = f"|{stamp}"
        return f"{self.ledger.stamp[0]}:{self.ledger.stamp[1]}|{self._price_key()}{agents}"

    def _sync_from_disk(self, changes: Changes) -> bool:
        """Load the ledger if another process (or an earlier run) wrote a newer one."""
        stamp = file_stamp(self.ledger_file)
        if stamp is not None and stamp in self._own_stamps:
            self.ledger.stamp = stamp  # our own background save: nothing new in it
            return False
        if stamp is None or stamp == self.ledger.stamp:
            return stamp is None and bool(self.ledger.records)
        if self.version == 0 and not self.ledger.records:
            # First look in this process: the small index is enough to plan the scan.
            idx = load_index(self.ledger_file, stamp)
            if idx is not None:
                self.ledger, self._pending = idx, True
                return False
        return self._load_full(changes, stamp)

    def _ensure_records(self, changes: Changes | None = None) -> None:
        """Load the full ledger when only its index is loaded.

        Never re-enters :meth:`refresh` from inside one: a ledger that turns out broken
        leaves an empty state that the running scan fills. Outside a refresh (a report
        reading records) it runs one refresh to rebuild, and reports through on_warning.
        """
        if not self._pending:
            return
        ch = changes if changes is not None else Changes()
        self._load_full(ch, file_stamp(self.ledger_file))
        if changes is not None:
            return
        warnings = list(ch.warnings)
        if ch.rebuilt and not self._refreshing:
            warnings += self.refresh().warnings
        for w in warnings:
            self._late_warning(w)

    def _load_full(self, changes: Changes, stamp: tuple[int, int] | None) -> bool:
        self._pending = False
        if stamp is None:
            self.ledger = Ledger()
            return True
        try:
            fresh = load(self.ledger_file)
        except LedgerNewer as exc:
            self._readonly = (
                f"{exc} at {self.ledger_file}: not changing it (upgrade tokmon); "
                "results come from the transcripts only and are not saved"
            )
            changes.warnings.append(self._readonly)
            self._start_over(stamp)
            changes.rebuilt = True
            return False
        except LedgerError as exc:
            dest = self._aside_path(exc.kind)
            self._aside = (dest, stamp)
            changes.warnings.append(
                f"{exc} at {self.ledger_file}: rebuilding it from transcripts; the old file is "
                f"kept as {dest.name} (it holds the usage of transcripts deleted since)"
            )
            changes.rebuilt = True
            self._start_over(stamp)
            if self._locked:
                self._keep_aside(changes.warnings)
            return True
        dirty = False
        if fresh.migrated_from is not None or fresh.dropped:
            kind = f"v{fresh.migrated_from}" if fresh.migrated_from is not None else "invalid"
            dest = self._aside_path(kind)
            self._aside = (dest, stamp)
            if fresh.dropped:
                changes.warnings.append(
                    f"dropped {fresh.dropped} invalid value(s) from the ledger at "
                    f"{self.ledger_file} and re-reading transcripts; the old file is kept as "
                    f"{dest.name}"
                )
            else:
                changes.warnings.append(
                    f"migrated the ledger at {self.ledger_file} from format "
                    f"{fresh.migrated_from}; the old file is kept as {dest.name}"
                )
            if self._locked:
                self._keep_aside(changes.warnings)
            dirty = True
        old = self.ledger.records
        if old:
            for k, r in fresh.records.items():
                o = old.get(k)
                if o is None or o.output_tokens != r.output_tokens:
                    changes.changed_sessions.add(r.session_id)
                    changes.new_records += o is None
        self.ledger = fresh
        self._invalidate()
        return dirty

    def _start_over(self, stamp: tuple[int, int]) -> None:
        """After a ledger file we cannot use: keep full in-memory state, else start empty."""
        if not self.ledger.records:
            self.ledger = Ledger()
        self.ledger.stamp = stamp  # do not load the same bad file again
        self._dirty = True
        self._invalidate()
