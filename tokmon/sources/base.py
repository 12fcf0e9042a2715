"""The source interface: one reader per coding agent, incremental, with its own dedup rule.

A :class:`Source` knows where an agent keeps its logs (``roots``), which files hold usage
(``files``) and how to read the part of one file it has not read yet (``read``). It yields
:class:`AgentUsage` records: one billed model response (or one agent-side usage snapshot),
normalised to the same token meanings for every agent:

- ``input_tokens``: input *not* read from a cache;
- ``output_tokens``: everything billed as output, **including** reasoning;
- ``reasoning_tokens``: the reasoning part of ``output_tokens`` (informational);
- ``cache_read_tokens`` / ``cache_write_tokens``;
- ``cost``: USD the agent recorded itself (``None`` when it records none: price it).

Every record carries a global dedup ``key``. Within one file a later record of a key replaces
the earlier one (``file_last_wins``, for agents that re-append updated messages) or is dropped.
Across files :meth:`Source.dedup` decides; by default the record with the lowest
``(rank, ts, origin)`` is kept (:func:`dedup`). Each source documents its keys, ranks and rule
in ``dedup_rule``.

Per-file progress lives in :class:`FileState`: byte offsets for append-only JSONL, the
(size, mtime) signature for whole JSON documents, and row watermarks for SQLite. Sources never
write anything into an agent's data folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from tokmon import lazylog

log = lazylog.getLogger("tokmon.sources")


@dataclass(frozen=True, slots=True)
class AgentUsage:
    """One normalised usage record of one agent (see the module docstring for meanings)."""

    agent: str
    ts: float
    session_id: str
    project: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    key: str
    cost: float | None = None
    credits: float | None = None
    requests: int = 1
    rank: int = 0
    origin: str = ""

    @property
    def total_tokens(self) -> int:
        """Input + output (reasoning included once) + cache read + cache write."""
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


@dataclass
class FileState:
    """What has been read of one file: ``offset`` for JSONL, ``sig`` for documents and
    databases (size, mtime_ns), ``mark`` for SQLite watermarks, ``ctx`` for parser state
    that must survive between reads (current model, previous cumulative total, ...)."""

    offset: int = 0
    sig: tuple[int, int] = (0, 0)
    mark: int = 0
    ctx: dict[str, Any] = field(default_factory=dict)
    head: str = ""  # "<n>:<digest of the first n bytes>": tells an append from a rewrite


@dataclass
class ReadResult:
    """New records of one read; ``replace`` drops everything read from this file before."""

    records: list[AgentUsage]
    state: FileState
    replace: bool = False
    bytes_read: int = 0


class Source(ABC):
    """An agent's usage logs. Subclasses set the class attributes and implement the methods."""

    agent: ClassVar[str]
    label: ClassVar[str]
    env_var: ClassVar[str]
    dedup_rule: ClassVar[str]
    file_last_wins: ClassVar[bool] = True

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env

    def home(self) -> Path:
        """The user's home folder as this environment sees it."""
        from tokmon.paths import user_home

        h = user_home(self.env)
        return Path(h) if h else Path.home()

    def env_dirs(self, name: str) -> list[Path] | None:
        """Folders named by ``name`` (comma-separated), or None when the variable is unset."""
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return None
        return [Path(p.strip()).expanduser() for p in raw.split(",") if p.strip()]

    @abstractmethod
    def roots(self) -> list[Path]:
        """Existing data folders of this agent (empty when it is not installed)."""

    @abstractmethod
    def files(self) -> list[Path]:
        """Files that may hold usage, in a stable order."""

    @abstractmethod
    def read(self, path: Path, state: FileState | None) -> ReadResult:
        """Read what is new in ``path`` since ``state`` (None: never read)."""

    def installed(self) -> bool:
        return bool(self.roots())

    def dedup(self, records: Iterable[AgentUsage]) -> list[AgentUsage]:
        """This agent's rule for records of different files that share a key."""
        return dedup(records)


# ---------------------------------------------------------------------------------------------
# Helpers shared by the adapters


def parse_ts(value: Any) -> float | None:
    """ISO 8601 string, epoch seconds or epoch milliseconds -> epoch seconds (UTC)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        return v / 1000.0 if v > 1e11 else v
    if not isinstance(value, str) or not value:
        return None
    s = value.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        from datetime import timezone

        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def as_int(value: Any) -> int:
    """A token count from JSON: numbers only, never negative; anything else is 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if value != value or value in (float("inf"), float("-inf")):
        return 0
    return max(0, int(value))


def as_obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def file_sig(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


HEAD_BYTES = 256


def _head(data: bytes) -> str:
    return f"{len(data)}:{hashlib.blake2b(data, digest_size=12).hexdigest()}"


@dataclass
class NewData:
    """The complete lines appended since the last read as one buffer (see
    :func:`read_new_data`): ``data`` is empty or ends with a newline."""

    data: bytes
    offset: int
    reset: bool
    head: str


def read_new_data(path: Path, state: FileState) -> NewData:
    """Complete lines appended since ``state.offset``, as one buffer.

    A partial last line is left for the next read. A file shorter than the offset, or whose
    first bytes changed, was truncated or rewritten: it is read again from the start
    (``reset``); the caller then drops what it had read from it."""
    reset = False
    head = state.head
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = state.offset
            if size == start:
                return NewData(b"", start, False, head)
            if size < start:
                reset = True
            elif start and head:
                n = int(head.split(":", 1)[0])
                if _head(fh.read(n)) != head:
                    reset = True
            if reset:
                start = 0
            fh.seek(start)
            data = fh.read(size - start)
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc)
        return NewData(b"", state.offset, False, head)
    end = data.rfind(b"\n")
    if end < 0:
        return NewData(b"", start, reset, "" if reset else head)
    new_offset = start + end + 1
    if start == 0 or not head or int(head.split(":", 1)[0]) < HEAD_BYTES:
        if start == 0:
            head = _head(data[: min(HEAD_BYTES, new_offset)])
        else:
            try:
                with open(path, "rb") as fh:
                    head = _head(fh.read(min(HEAD_BYTES, new_offset)))
            except OSError:
                head = ""
    return NewData(data[: end + 1], new_offset, reset, head)


def resume(path: Path, state: FileState | None) -> tuple[NewData, dict[str, Any]]:
    """What was appended to a JSONL file since ``state`` (:func:`read_new_data`) and a copy of
    the parser context to go on with: empty when the file is read from the start (first
    read, or a rewrite). The caller's state stays as it was. End with :func:`resumed`."""
    st = state if state is not None else FileState()
    nd = read_new_data(path, st)
    return nd, ({} if nd.reset else dict(st.ctx))


def resumed(
    records: list[AgentUsage], nd: NewData, ctx: dict[str, Any], state: FileState | None
) -> ReadResult:
    """The result of a read begun with :func:`resume`: the new offset, head and ``ctx``;
    ``records`` replace the file's earlier ones when it was read from the start again."""
    start = 0 if nd.reset or state is None else state.offset
    return ReadResult(
        records,
        FileState(offset=nd.offset, ctx=ctx, head=nd.head),
        replace=nd.reset,
        bytes_read=max(0, nd.offset - start),
    )


def json_lines(
    lines: Iterable[bytes], path: Path, keep: Callable[[bytes], bool] | None = None
) -> Iterator[dict[str, Any]]:
    """Parsed JSON objects; a bad line is logged once per file and skipped. ``keep`` skips
    lines before parsing (a cheap byte test: most of a transcript is message content)."""
    bad = 0
    for raw in lines:
        if not raw.strip() or (keep is not None and not keep(raw)):
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            bad += 1
            continue
        if isinstance(obj, dict):
            yield obj
    if bad:
        log.warning("%s: skipped %d line(s) that are not JSON", path, bad)


def read_json_document(path: Path) -> Any:
    """A whole JSON document, or None (logged) when it cannot be read or parsed."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None


def dedup(records: Iterable[AgentUsage]) -> list[AgentUsage]:
    """Keep, per key, the record with the lowest ``(rank, ts, origin)``; sorted by time."""
    best: dict[str, AgentUsage] = {}
    for r in records:
        cur = best.get(r.key)
        if cur is None or (r.rank, r.ts, r.origin) < (cur.rank, cur.ts, cur.origin):
            best[r.key] = r
    return sorted(best.values(), key=lambda r: (r.ts, r.key))


def sorted_files(root: Path, patterns: Iterable[str]) -> list[Path]:
    """Files under ``root`` matching any glob pattern, sorted, without duplicates."""
    seen: set[Path] = set()
    out: list[Path] = []
    if not root.is_dir():
        return out
    for pat in patterns:
        for p in root.glob(pat):
            if p not in seen and p.is_file():
                seen.add(p)
                out.append(p)
    out.sort()
    return out
