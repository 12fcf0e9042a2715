"""Other coding agents in the engine: every installed :class:`~tokmon.sources.base.Source`,
read incrementally, persisted in the Claude ledger's database, turned into engine records.

Each agent's reader (``tokmon/sources/<agent>.py``) yields :class:`AgentUsage` records with its
own dedup key and rule; this module keeps one :class:`SourceReader` per agent, saves their file
states and records (a row per file and a row per record in the ledger database's
``agent_files`` and ``agent_records`` tables, only the changed ones written, in the engine's
merge transaction, so a restart reads only new bytes and a deleted log keeps its history; the
one-blob-per-agent ``agent_state`` rows and the JSON store, ``<ledger>.agents-<hash>.json``, of
older versions are read once and moved), and hands the engine de-duplicated :class:`UsageRecord` lists per
agent (``cache_creation_tokens`` = the agent's cache writes; cost = the agent's own figure,
else the price table). Claude Code stays on the engine's fast parallel scan
(:mod:`tokmon.core.scan`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tokmon import lazylog
from tokmon.core.ledger import AgentRows
from tokmon.core.model import UsageRecord
from tokmon.core.pricing import PriceTable
from tokmon.sources import SOURCES
from tokmon.sources.base import AgentUsage, FileState, Source
from tokmon.sources.collect import SourceReader, clean_usage
from tokmon.sources.report import record_cost, usage_record

log = lazylog.getLogger("tokmon.agents")

CLAUDE = "claude"
STORE_VERSION = 1


@dataclass
class AgentChanges:
    """What one refresh of the agents found."""

    new_records: int = 0
    changed_sessions: set[str] = field(default_factory=set)
    files_read: int = 0
    bytes_read: int = 0
    agents: set[str] = field(default_factory=set)


def agents_store_path(ledger_file: Path, env: Mapping[str, str]) -> Path:
    """Where the agents' store lives: beside the Claude ledger, keyed (like the ledger is by
    its roots) by the agents' data-dir variables and the home folder."""
    import hashlib

    names = ["HOME", "USERPROFILE", "XDG_DATA_HOME"] + sorted(s.env_var for s in SOURCES.values())
    key = "\n".join(f"{n}={env.get(n, '')}" for n in names)
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    return ledger_file.with_name(f"{ledger_file.stem}.agents-{digest}.json")


def to_record(r: AgentUsage, prices: PriceTable | None) -> UsageRecord:
    """The engine's record of one agent usage (keys are prefixed with the agent)."""
    rec = usage_record(r, f"{r.agent}:{r.key}")
    return rec._replace(cost=record_cost(r, prices, rec))


class AgentStore:
    """The agents' readers, their persisted state and their records as engine records."""

    def __init__(
        self,
        env: Mapping[str, str],
        prices: PriceTable,
        path: Path | None,
        agents: Iterable[str] | None = None,
    ) -> None:
        names = list(SOURCES) if agents is None else [a for a in agents if a in SOURCES]
        self.sources: dict[str, Source] = {a: SOURCES[a](env) for a in names}
        self.readers = {a: SourceReader(s, keep_removed=True) for a, s in self.sources.items()}
        self.prices = prices
        self.path = path  # the JSON store of older versions (imported once), None: not persisted
        self.load_db: Callable[[], dict[str, AgentRows]] | None = None  # saved state, per agent
        self._legacy = False  # loaded from the JSON store: rename it once saved in the database
        self.dirty = False
        self.version = 0  # bumped on every change (a deferred save knows what it wrote)
        self._loaded = False
        self._records: dict[str, list[UsageRecord]] = {}
        # per agent: key -> (the reader's record, its engine record), so a refresh converts
        # (and prices) only what changed
        self._conv: dict[str, dict[str, tuple[AgentUsage, UsageRecord]]] = {}
        self._unsaved: set[str] = set()  # agents whose state changed since the last save
        #: the database a save goes to (its id; None: memory or unknown): only a save into the
        #: database that got the last one may leave the unchanged agents out
        self.save_target: Callable[[], str | None] = lambda: None
        self._saved_to: str | None = None
        self._saving_to: str | None = None
        #: per agent, its file states and records as last saved (a save writes what differs)
        self._saved: dict[str, _Saved] = {}
        self._pending: dict[str, _Saved] = {}  # what the payloads being saved hold
        self._moving: set[str] = set()  # agents saved as one blob: their next save is whole

    # -- discovery ---------------------------------------------------------------------------

    def roots(self) -> list[Path]:
        """The data folders of every installed agent (what a watcher should watch)."""
        out: list[Path] = []
        for s in self.sources.values():
            out.extend(s.roots())
        return out

    def agents_with_data(self) -> list[str]:
        """Agents that have records, in registry order."""
        self._load()
        return [a for a in self.readers if self.records(a)]

    def owns(self, path: Path) -> bool:
        """Whether ``path`` lies in an agent's data folder."""
        return self._owner(path) is not None

    def _owner(self, path: Path) -> str | None:
        p = os.path.normcase(os.path.abspath(path))
        for agent, s in self.sources.items():
            for root in s.roots():
                r = os.path.normcase(os.path.abspath(root))
                if p == r or p.startswith(r + os.sep):
                    return agent
        return None

    # -- refresh -------------------------------------------------------------------------------

    def refresh(self, paths: Iterable[Path] | None = None) -> AgentChanges:
        """Read what is new. ``paths`` (a watcher's hint) limits the work to the agents whose
        folders hold them; None reads every agent (each only its new bytes)."""
        self._load()
        changes = AgentChanges()
        hints: dict[str, list[str]] = {}
        if paths is None:
            todo = list(self.readers)
        else:
            for p in paths:
                owner = self._owner(Path(p))
                if owner is not None:
                    hints.setdefault(owner, []).append(str(p))
            todo = [a for a in self.readers if a in hints]
        for agent in todo:
            reader = self.readers[agent]
            before = {r.key: r for r in reader.usage()} if reader.by_file else {}
            try:
                stats = reader.refresh(hints.get(agent))
            except Exception as exc:  # noqa: BLE001 - one bad agent never breaks the others
                log.warning("cannot read %s logs: %s", agent, exc)
                continue
            changes.files_read += stats.files_read
            changes.bytes_read += stats.bytes_read
            if stats.poisoned:  # said once: the lines are not read again
                log.warning(
                    "skipped %d %s record(s) with impossible values (malformed input)",
                    stats.poisoned,
                    agent,
                )
            if not (stats.files_read or stats.new_records or stats.removed_files):
                continue
            self.dirty = True
            self._unsaved.add(agent)
            self.version += 1
            after = reader.usage()
            new = [r for r in after if (b := before.get(r.key)) is not r and b != r]
            if new or len(after) != len(before):
                changes.agents.add(agent)
                changes.new_records += sum(1 for r in new if r.key not in before)
                changes.changed_sessions.update(r.session_id for r in new)
                self._records.pop(agent, None)
        return changes

    def usage(self, agent: str) -> list[AgentUsage]:
        """De-duplicated records of one agent as its reader yields them (reasoning, credits
        and request counts kept: the per-agent ccusage shapes need them), oldest first."""
        self._load()
        reader = self.readers.get(agent)
        return reader.usage() if reader is not None else []

    def records(self, agent: str) -> list[UsageRecord]:
        """De-duplicated records of one agent as engine records, oldest first."""
        self._load()
        got = self._records.get(agent)
        if got is None:
            reader = self.readers.get(agent)
            usage = reader.usage() if reader is not None else []
            old = self._conv.get(agent, {})
            conv: dict[str, tuple[AgentUsage, UsageRecord]] = {}
            got = []
            for r in usage:
                c = old.get(r.key)
                rec = (
                    c[1]
                    if c is not None and (c[0] is r or c[0] == r)
                    else to_record(r, self.prices)
                )
                conv[r.key] = (r, rec)
                got.append(rec)
            self._conv[agent] = conv
            self._records[agent] = got
        return got

    def reprice(self) -> None:
        """Forget converted records (the price table or cost mode changed)."""
        self._records.clear()
        self._conv.clear()

    # -- persistence ---------------------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.path is None:
            return
        saved = self.load_db() if self.load_db is not None else {}
        if saved:
            for agent, rows in saved.items():
                if agent not in self.readers:
                    continue  # an agent this build does not know: its rows stay as they are
                if rows.blob is None:
                    self._load_rows(agent, rows)
                    continue
                self._moving.add(agent)  # into rows at the next save (the same transaction
                # deletes the blob), whole
                try:
                    self._load_body(agent, orjson.loads(rows.blob))
                except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
                    log.warning(
                        "ignoring the saved state of %s (%s): re-reading its logs", agent, exc
                    )
                    self._forget(agent)
            self._saved = {a: _snapshot(r) for a, r in self.readers.items()}
            self._saved_to = self.save_target()  # what the rows of this database hold
            if self._moving:
                self.dirty = True
                self._unsaved.update(self._moving)
            return
        try:
            doc = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning(
                "ignoring unreadable agents ledger %s (%s): re-reading the logs", self.path, exc
            )
            return
        try:
            if doc.get("version") != STORE_VERSION:
                raise ValueError("unknown version")
            for agent, body in doc["agents"].items():
                self._load_body(agent, body)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            log.warning(
                "ignoring unreadable agents ledger %s (%s): re-reading the logs", self.path, exc
            )
            for agent in self.readers:
                self._forget(agent)
        self._legacy = self.dirty = True  # into the database at the next merge
        self._unsaved.update(self.readers)

    def _load_body(self, agent: str, body: Any) -> None:
        reader = self.readers.get(agent)
        if reader is None:
            return  # an agent this build does not know: its data stays on disk
        for p, st in body["states"].items():
            reader.states[p] = FileState(st[0], tuple(st[1]), st[2], st[3], st[4])
        for p, rows in body["records"].items():
            reader.by_file[p] = {row["key"]: clean_usage(AgentUsage(**row)) for row in rows}

    def _load_rows(self, agent: str, rows: AgentRows) -> None:
        """One agent's state from its rows (a row that does not read is skipped: its file is
        read again, its other records kept)."""
        reader = self.readers[agent]
        bad = 0
        for p, st in rows.states.items():
            try:
                v = orjson.loads(st or b"")
                reader.states[p] = FileState(v[0], tuple(v[1]), v[2], v[3], v[4])
            except (AttributeError, KeyError, TypeError, ValueError, IndexError):
                bad += 1
        for p, recs in rows.records.items():
            bucket = reader.by_file.setdefault(p, {})
            for k, body in recs.items():
                try:
                    bucket[k] = clean_usage(AgentUsage(**orjson.loads(body or b"")))
                except (AttributeError, KeyError, TypeError, ValueError, IndexError):
                    bad += 1
        if bad:
            log.warning("ignoring %d unreadable saved row(s) of %s", bad, agent)

    def _forget(self, agent: str) -> None:
        reader = self.readers.get(agent)
        if reader is not None:
            reader.states.clear()
            reader.by_file.clear()
            reader._cache = None

    def payloads(self) -> dict[str, AgentRows] | None:
        """What changed of each agent's state since the last save (the file states and
        records that differ; every row of an agent saved as a blob, or when the save goes to
        another database), for the engine's merge transaction; None when nothing is to be
        saved."""
        if not self.dirty or self.path is None:
            return None
        target = self._saving_to = self.save_target()
        every = target is None or target != self._saved_to  # another (or a new) database
        out: dict[str, AgentRows] = {}
        self._pending = {}
        for agent, reader in self.readers.items():
            if not (every or agent in self._unsaved):
                continue
            full = every or agent in self._moving
            if full and not reader.states and not reader.by_file and agent not in self._moving:
                continue
            now = _snapshot(reader)
            was = _Saved({}, {}) if full else self._saved.get(agent, _Saved({}, {}))
            rows = AgentRows(full=full)
            for p, st in now.states.items():
                if was.states.get(p) != st:
                    rows.states[p] = orjson.dumps(
                        [st.offset, list(st.sig), st.mark, st.ctx, st.head]
                    )
            rows.states.update((p, None) for p in was.states if p not in now.states)
            for p, recs in now.records.items():
                old = was.records.get(p, {})
                if recs == old:
                    continue
                # orjson writes a dataclass as the object of its fields (AgentUsage(**row) reads it)
                got: dict[str, bytes | None] = {
                    k: orjson.dumps(r)
                    for k, r in recs.items()
                    if (o := old.get(k)) is not r and o != r
                }
                got.update((k, None) for k in old if k not in recs)
                rows.records[p] = got
            for p, old in was.records.items():
                if p not in now.records:
                    rows.records[p] = dict.fromkeys(old)
            self._pending[agent] = now
            out[agent] = rows
        return out

    def saved_to_db(self) -> None:
        """The payloads reached the database: a JSON store of an older version is kept
        renamed (``.migrated-<time>``), never deleted."""
        self.dirty = False
        self._unsaved.clear()
        self._saved_to = self._saving_to
        self._saved.update(self._pending)
        self._moving -= set(self._pending)
        self._pending = {}
        if self._legacy and self.path is not None and self.path.exists():
            import time

            when = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            try:
                os.replace(self.path, self.path.with_name(f"{self.path.name}.migrated-{when}"))
            except OSError as exc:
                log.warning("cannot rename the imported agents ledger %s: %s", self.path, exc)
                return
        self._legacy = False


@dataclass
class _Saved:
    """One agent's file states and records (per file, by key) as a save wrote them."""

    states: dict[str, FileState]
    records: dict[str, dict[str, AgentUsage]]


def _snapshot(reader: SourceReader) -> _Saved:
    """What ``reader`` holds now (copies of its dicts; the states and records are shared:
    a refresh replaces them, never changes them in place)."""
    return _Saved(dict(reader.states), {p: dict(rs) for p, rs in reader.by_file.items()})
