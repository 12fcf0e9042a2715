"""The state the engine's parts share, and the interface they call on each other."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokmon.config import Config
from tokmon.core import aggregate
from tokmon.core.blocks import (
    BlockIndex,
)
from tokmon.core.ledger import AgentRows, Ledger, LedgerDB
from tokmon.core.model import UsageRecord
from tokmon.core.pricing import PriceTable
from tokmon.core.reader import FileState
from tokmon.leanclass import dataclass, field
from tokmon.paths import TokmonPaths

if TYPE_CHECKING:
    from tokmon.core.agents import AgentStore
    from tokmon.core.discovery import Listings
    from tokmon.core.engine.store import SaveJob
    from tokmon.core.ledger import Stage
    from tokmon.core.model_blocks import Block
    from tokmon.core.rollups import Rollups
    from tokmon.core.rows import PeriodReport, Report, SessionReport, SessionRow
    from tokmon.core.summary_rows import Summary
    from tokmon.fsutil import FileLock


ProgressFn = Callable[[int, int], None]


@dataclass
class Changes:
    """What one refresh found."""

    new_records: int = 0
    changed_sessions: set[str] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)  # agents whose records changed
    files_checked: int = 0  # transcripts looked at (stat): all of them, or the watcher's hint
    files_read: int = 0
    bytes_read: int = 0
    warnings: list[str] = field(default_factory=list)
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.new_records or self.changed_sessions)


class EngineState:
    """The engine's shared state (set in ``Engine.__init__``) and the methods its three parts
    (ingest, store, queries) call on each other: the parts are mixins of :class:`Engine`."""

    _sorted: list[UsageRecord] | None
    _cache: dict[Any, Any]
    _warned_unknown: set[str]
    _warned_files: set[str]
    _new_deltas: list[tuple[UsageRecord | None, UsageRecord]]
    _deltas: list[tuple[UsageRecord | None, UsageRecord]]
    _periods: dict[str, Any] | None
    record_filter: Callable[[UsageRecord], bool] | None
    _readonly: str | None
    on_warning: Callable[[str], None] | None
    agents: AgentStore | None
    env: Mapping[str, str]
    paths: TokmonPaths
    config: Config
    candidate_roots: list[Path]
    persist: bool
    _dir_warning: str | None  # tokmon's dirs writable by others (tokmon.paths.unsafe_dirs)
    prices: PriceTable
    ledger: Ledger
    ledger_file: Path
    block_seconds: float
    version: int
    db: LedgerDB | None
    _mem: bool  # db is a private in-memory database (not persisted, or a fallback copy)
    _seen_gen: int | None  # the database generation our in-memory state reflects
    _rollups: Rollups | None
    _roll_db: LedgerDB | None  # the database _rollups belongs to
    _models_checked: bool
    _blocks: BlockIndex
    lock_timeout: float
    _refreshing: bool
    _listings: Listings | None  # directory listings of the change check, once loaded
    _checked_saved: list[Any] | None  # the stamp of the last mirror saved (engine/check.py)
    short_lived: bool  # one answer, then dropped (a CLI report): see engine/check.py
    freeze_after_check: bool  # and the process exits after it (see Engine.__init__)

    def _keeps_listings(self) -> bool:
        """Whether the change check keeps what it saw between runs (the directory listings,
        and with them the mirror and the flat walk): ``TOKMON_NO_LISTING_CACHE`` unset or 0."""
        return self.env.get("TOKMON_NO_LISTING_CACHE", "") in ("", "0")

    @property
    def roots(self) -> list[Path]:
        raise NotImplementedError

    def refresh(
        self,
        progress: ProgressFn | None = None,
        paths: Iterable[Path] | None = None,
        save: bool = True,
    ) -> Changes:
        raise NotImplementedError

    def _refresh_agents(self, changes: Changes, paths: Iterable[Path] | None) -> list[Path] | None:
        raise NotImplementedError

    def _cost(self, r: UsageRecord) -> float:
        raise NotImplementedError

    def _reprice(self, changes: Changes) -> None:
        raise NotImplementedError

    def _scan(
        self, changes: Changes, progress: ProgressFn | None, paths: Iterable[Path] | None = None
    ) -> None:
        raise NotImplementedError

    def _plan(self) -> tuple[list[tuple[str, os.stat_result, int]], set[str]]:
        raise NotImplementedError

    def _listings_file(self) -> Path:
        raise NotImplementedError

    def _listings_cache(self) -> Listings | None:
        raise NotImplementedError

    def _quick_scan(self, changes: Changes, progress: ProgressFn | None) -> bool:
        raise NotImplementedError

    def _keep_checked(self) -> None:
        raise NotImplementedError

    def _dropped_states(self, changes: Changes) -> Callable[[int], None]:
        raise NotImplementedError

    def _plan_paths(
        self, paths: Iterable[Path]
    ) -> tuple[list[tuple[str, os.stat_result, int]], set[str]] | None:
        raise NotImplementedError

    def _read(
        self,
        todo: list[tuple[str, os.stat_result, int]],
        present: set[str],
        changes: Changes,
        progress: ProgressFn | None,
    ) -> None:
        raise NotImplementedError

    def _invalidate(self, incremental: bool = False) -> None:
        raise NotImplementedError

    def _price_key(self) -> str:
        raise NotImplementedError

    def _publish_build(self, changes: Changes) -> None:
        raise NotImplementedError

    def _drop_build(self) -> None:
        raise NotImplementedError

    def _lock(self) -> FileLock:
        raise NotImplementedError

    def _open(self, changes: Changes) -> LedgerDB:
        raise NotImplementedError

    def _sync(self, changes: Changes) -> None:
        raise NotImplementedError

    def _fallback(self, changes: Changes, why: str) -> LedgerDB:
        raise NotImplementedError

    def _corrupt(self, exc: Exception, changes: Changes) -> None:
        raise NotImplementedError

    def _commit(
        self,
        changes: Changes,
        recs: list[UsageRecord],
        files: dict[str, FileState],
        gone: list[str],
        titles: list[tuple[str, str, str]],
        agents: dict[str, AgentRows] | None,
        prices: str | None = None,
        stage: Stage | None = None,
    ) -> None:
        raise NotImplementedError

    def _late_warning(self, message: str) -> None:
        raise NotImplementedError

    def _roll(self) -> Rollups | None:
        raise NotImplementedError

    def snapshot(self) -> SaveJob | None:
        raise NotImplementedError

    def write(self, job: SaveJob) -> list[str]:
        raise NotImplementedError

    def commit(self, job: SaveJob) -> None:
        raise NotImplementedError

    def save(self) -> list[str]:
        raise NotImplementedError

    def data_version(self) -> str | None:
        raise NotImplementedError

    def data_lineage(self) -> tuple[str, int, str | None] | None:
        raise NotImplementedError

    def sessions_changed_since(
        self, lineage: str, gen: int, wid: str | None = None
    ) -> set[str] | None:
        raise NotImplementedError

    def _db(self) -> LedgerDB:
        raise NotImplementedError

    @property
    def records(self) -> list[UsageRecord]:
        raise NotImplementedError

    @property
    def titles(self) -> dict[str, str]:
        raise NotImplementedError

    def agent_names(self) -> list[str]:
        raise NotImplementedError

    def records_of(self, agent: str | None) -> list[UsageRecord]:
        raise NotImplementedError

    def known_agents(self) -> list[str]:
        raise NotImplementedError

    def _tz_name(self, tz: str | None) -> str | None:
        raise NotImplementedError

    def _filtered(
        self,
        since: str | None = None,
        until: str | None = None,
        project: str | None = None,
        tz: str | None = None,
        session: str | None = None,
        agent: str | None = None,
    ) -> list[UsageRecord]:
        raise NotImplementedError

    def blocks(self, now: float | None = None) -> list[Block]:
        raise NotImplementedError

    def token_limit(
        self, now: float | None = None, override: int | str | None = None
    ) -> tuple[int | None, str | None]:
        raise NotImplementedError

    def session_rows(
        self,
        since: str | None = None,
        until: str | None = None,
        project: str | None = None,
        tz: str | None = None,
        now: float | None = None,
        agent: str | None = None,
    ) -> list[SessionRow]:
        raise NotImplementedError

    def report(self, kind: str, **opts: Any) -> Report:
        raise NotImplementedError

    def _all_agents_report(self, kind: str, opts: dict[str, Any]) -> PeriodReport | SessionReport:
        raise NotImplementedError

    def _blocks_report(self, recs: list[UsageRecord], opts: dict[str, Any]) -> list[Block]:
        raise NotImplementedError

    def _period_sums(self, key: tuple[Any, ...]) -> list[aggregate.Acc]:
        raise NotImplementedError

    def summary(
        self, now: float | None = None, cwd: str | None = None, tz: str | None = None
    ) -> Summary:
        raise NotImplementedError
