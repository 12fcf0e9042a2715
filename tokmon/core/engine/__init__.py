"""The engine facade: incremental refresh over every root, plus reports and summary.

Split by job: :mod:`.ingest` (plan, read, merge), :mod:`.store` (ledger, locks, saves) and
:mod:`.queries` (reports, summary, sessions, blocks), mixed into :class:`Engine`.

Pure Python: no CLI, UI or server imports. Surfaces construct an :class:`Engine`, call
:meth:`Engine.refresh` and read reports from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokmon.config import Config, load_config
from tokmon.core.blocks import BLOCK_SECONDS, BlockIndex
from tokmon.core.discovery import Listings, claude_roots
from tokmon.core.ledger import Ledger, LedgerDB, ledger_path
from tokmon.core.model import UsageRecord
from tokmon.core.pricing import PriceTable
from tokmon.paths import TokmonPaths, get_paths, unsafe_dirs

if TYPE_CHECKING:
    from tokmon.core.agents import AgentStore
    from tokmon.core.rollups import Rollups

from tokmon.core.engine.check import Check
from tokmon.core.engine.ingest import FUTURE_SLACK, Ingest
from tokmon.core.engine.queries import ALL, CLAUDE, Queries, project_session
from tokmon.core.engine.state import Changes, ProgressFn
from tokmon.core.engine.store import LOCK_TIMEOUT, SaveJob, Store

__all__ = [
    "ALL",
    "CLAUDE",
    "FUTURE_SLACK",
    "Changes",
    "Engine",
    "ProgressFn",
    "SaveJob",
    "project_session",
]


class Engine(Ingest, Store, Queries, Check):
    """Discovers, tails and accounts Claude Code transcripts."""

    def __init__(
        self,
        roots: list[Path] | None = None,
        paths: TokmonPaths | None = None,
        config: Config | None = None,
        persist: bool = True,
        env: Mapping[str, str] | None = None,
        lock_timeout: float | None = None,
        agents: bool | Iterable[str] = False,
    ) -> None:
        """``agents``: also read the other coding agents' logs (True: every known agent, or
        the names to read); their records live beside the Claude ledger."""
        self.env = os.environ if env is None else env
        self.paths = paths or get_paths(self.env)
        self.config = config or load_config(self.paths)
        self.candidate_roots = (
            [Path(r) for r in roots] if roots is not None else claude_roots(self.env)
        )
        #: tokmon's dirs writable by other users: said once (first refresh); another user's
        #: dir is not used at all (tokmon.paths.unsafe_dirs, docs/security.md)
        self._dir_warning: str | None = None
        if persist:
            unsafe = unsafe_dirs(self.paths, self.env)
            if unsafe is not None:
                self._dir_warning, foreign = unsafe
                persist = not foreign
        self.persist = persist
        self.prices = PriceTable.load(self.paths.prices_override_file)
        self.ledger = Ledger()
        self.ledger_file = ledger_path(self.paths.data_dir, self.candidate_roots)
        self.block_seconds = float(self.config.get("session_hours")) * 3600 or BLOCK_SECONDS
        self.version = 0
        self._sorted: list[UsageRecord] | None = None
        self._cache: dict[Any, Any] = {}
        self._warned_unknown: set[str] = set()
        self._warned_files: set[str] = set()
        self.db: LedgerDB | None = None  # opened on first use
        self._mem = False  # db is a private in-memory database (not saved)
        self._seen_gen: int | None = None  # the database generation self.ledger reflects
        self._rollups: Rollups | None = None  # stored sums in the database (tokmon.core.rollups)
        self._roll_db: LedgerDB | None = None
        self._models_checked = False
        # (replaced record or None, new record) pairs: of the last refresh, and not yet
        # folded into the period sums
        self._new_deltas: list[tuple[UsageRecord | None, UsageRecord]] = []
        self._deltas: list[tuple[UsageRecord | None, UsageRecord]] = []
        self._periods: dict[str, Any] | None = None  # incremental today/week/month/total sums
        self._blocks = BlockIndex(self.block_seconds)
        # Optional extra record filter for reports (e.g. one machine: tokmon.core.machines)
        self.record_filter: Callable[[UsageRecord], bool] | None = None
        self.lock_timeout = LOCK_TIMEOUT if lock_timeout is None else lock_timeout
        self._readonly: str | None = None  # why the ledger must not be written (newer format)
        self._refreshing = False
        self._listings: Listings | None = None  # the change check's (tokmon.core.discovery)
        self._checked_saved: list[Any] | None = None  # (tokmon.core.engine.check)
        #: Set by a caller that asks one answer of this engine, then drops it (a CLI report):
        #: its refresh may check against the kept copy of the ledger's file states instead of
        #: loading them (tokmon.core.engine.check); a long-lived engine keeps them loaded.
        self.short_lived = False
        #: And the process exits after that answer: the check freezes what it leaves (gc.freeze:
        #: no collection walks the imports and the listings again).
        self.freeze_after_check = False
        #: Where warnings found outside :meth:`refresh` go (default: the log).
        self.on_warning: Callable[[str], None] | None = None
        self.agents: AgentStore | None = None
        if agents:
            from tokmon.core.agents import AgentStore, agents_store_path  # only when asked

            self.agents = AgentStore(
                self.env,
                self.prices,
                agents_store_path(self.ledger_file, self.env) if persist else None,
                None if agents is True else agents,
            )
            self.agents.load_db = lambda: self._db().agent_rows()
            # which database file a save goes to (None: memory): a new one gets every agent
            self.agents.save_target = lambda: (
                None if self._mem or self.db is None else self.db.dbid()
            )

    @property
    def watch_roots(self) -> list[Path]:
        """What a file watcher should watch: every candidate Claude root (existing or not)
        and the other agents' data folders."""
        extra = self.agents.roots() if self.agents is not None else []
        return [*self.candidate_roots, *extra]

    @property
    def roots(self) -> list[Path]:
        """The ``projects/`` dirs that exist now."""
        return [r for r in self.candidate_roots if r.is_dir()]
