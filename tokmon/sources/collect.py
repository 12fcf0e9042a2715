"""Incremental collection of one source: per-file state, per-file records, global dedup."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tokmon.core.records import MAX_COST, MAX_TOKENS, TS_MAX, TS_MIN
from tokmon.sources.base import AgentUsage, FileState, Source
from tokmon.textsafe import safe_text


def poisoned(r: AgentUsage) -> bool:
    """Whether ``r`` carries a value no real usage has (the guards of Claude's parser: a
    count above 10^9, a time outside 1970..2200, a cost beyond $1M or not finite)."""
    if not (math.isfinite(r.ts) and TS_MIN <= r.ts < TS_MAX):
        return True
    for n in (
        r.input_tokens,
        r.output_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
        r.reasoning_tokens,
    ):
        if not 0 <= n <= MAX_TOKENS:
            return True
    return any(
        v is not None and not (math.isfinite(v) and abs(v) <= MAX_COST) for v in (r.cost, r.credits)
    )


def clean_usage(r: AgentUsage) -> AgentUsage:
    """``r`` with its shown text (session id, project, model) free of control characters:
    an agent's log is untrusted text like a Claude transcript (docs/security.md)."""
    if (r.session_id + r.project + r.model).isprintable():
        return r
    return replace(
        r,
        session_id=safe_text(r.session_id),
        project=safe_text(r.project),
        model=safe_text(r.model),
    )


@dataclass
class RefreshStats:
    """What one :meth:`SourceReader.refresh` did."""

    files: int = 0
    files_read: int = 0
    bytes_read: int = 0
    new_records: int = 0
    removed_files: list[str] = field(default_factory=list)
    poisoned: int = 0  # records skipped for an impossible value


class SourceReader:
    """Keeps one source's file states and records in memory; ``refresh`` reads only what is new.

    The engine-side counterpart (ledger persistence, live updates) is a later step; see
    docs/agents/README.md."""

    def __init__(self, source: Source, *, keep_removed: bool = False) -> None:
        self.source = source
        #: keep the records of a file that disappeared (the engine's ledger outlives logs)
        self.keep_removed = keep_removed
        self.states: dict[str, FileState] = {}
        self.by_file: dict[str, dict[str, AgentUsage]] = {}
        self._cache: list[AgentUsage] | None = None

    def refresh(self, hint: Iterable[str] | None = None) -> RefreshStats:
        """Read what is new. ``hint`` (a watcher's changed paths): when every one is a file
        read before and still there, only those are read (no listing of the agent's folders,
        no removal check); otherwise everything is looked at."""
        stats = RefreshStats()
        present: set[str] = set()
        only = self._known(hint) if hint is not None else None
        for path in self.source.files() if only is None else only:
            p = str(path)
            present.add(p)
            stats.files += 1
            res = self.source.read(path, self.states.get(p))
            self.states[p] = res.state
            bucket = self.by_file.get(p)
            if bucket is None or res.replace:
                if bucket:
                    self._cache = None
                bucket = self.by_file[p] = {}
            if res.bytes_read:
                stats.files_read += 1
                stats.bytes_read += res.bytes_read
            if res.records:
                last_wins = self.source.file_last_wins
                for r in res.records:
                    if poisoned(r):
                        stats.poisoned += 1
                    elif last_wins or r.key not in bucket:
                        bucket[r.key] = clean_usage(r)
                stats.new_records += len(res.records)
                self._cache = None
        if only is not None:
            return stats
        for p in list(self.states if self.keep_removed else self.by_file):
            if p not in present:
                if not self.keep_removed:
                    del self.by_file[p]
                    self._cache = None
                self.states.pop(p, None)
                stats.removed_files.append(p)
        return stats

    def _known(self, hint: Iterable[str]) -> list[Path] | None:
        paths = list(dict.fromkeys(hint))
        if not paths or any(p not in self.states or not os.path.isfile(p) for p in paths):
            return None
        return [Path(p) for p in paths]

    def usage(self) -> list[AgentUsage]:
        """Deduplicated records of every file, oldest first."""
        if self._cache is None:
            self._cache = self.source.dedup(
                r for recs in self.by_file.values() for r in recs.values()
            )
        return self._cache


def collect(source: Source) -> list[AgentUsage]:
    """Read everything of one source once and return its deduplicated records."""
    reader = SourceReader(source)
    reader.refresh()
    return reader.usage()
