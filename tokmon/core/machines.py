"""Machines: where each record came from, and ledger export/import between machines.

Responses carry global ids (``message.id:requestId``, the engine's dedup key), so two
machines' ledgers merge idempotently under the engine's own rule: one record per key, the
largest ``output_tokens`` wins, ties keep what is there. Records imported from another machine
go into this machine's ledger (so every report, block and metric counts them, and they
outlive transcript deletion like any ledger record) and into a side file next to the ledger,
``ledger-<hash>.machines.json``, which remembers their machine. A record whose key lacks the
global ids (``@file:offset`` keys) is machine-local: on export its key is qualified with the
machine name so it can never collide with another machine's.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tokmon.core.model import FIELDS, UsageRecord
from tokmon.core.records import MAX_COST, MAX_TOKENS, TS_MAX, TS_MIN
from tokmon.fsutil import FileLock, atomic_write
from tokmon.textsafe import safe_text

EXPORT_FORMAT = "tokmon-ledger-export"
EXPORT_VERSION = 1
MAP_VERSION = 1
MAX_EXPORT_BYTES = 2 * 1024 * 1024 * 1024  # refuse absurd files before reading them
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def clean_machine(name: str) -> str:
    """A machine name fit for a label: no control characters, at most 64 characters."""
    v = _BAD_CHARS.sub("", str(name)).strip()[:64]
    return v or "unknown"


def local_machine(env: Mapping[str, str] | None = None, config: Any = None) -> str:
    """This machine's name: ``TOKMON_MACHINE``, config ``machine``, else the host name."""
    env = os.environ if env is None else env
    v = env.get("TOKMON_MACHINE") or (config.get("machine") if config is not None else None)
    if not v:
        v = socket.gethostname().split(".")[0]
    return clean_machine(v)


def machines_path(ledger_file: Path) -> Path:
    """The side file holding imported records and their machines."""
    return ledger_file.with_name(ledger_file.stem + ".machines.json")


class MachineMap:
    """Records imported from other machines: dedup key -> (record, machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, tuple[UsageRecord, str]] = {}
        self.error: str | None = None

    @classmethod
    def load(cls, path: Path) -> MachineMap:
        """The map at ``path``; an unreadable or foreign file gives an empty map + ``error``."""
        mm = cls(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return mm
        except OSError as exc:
            mm.error = f"cannot read {path}: {exc.strerror or exc}"
            return mm
        try:
            doc = orjson.loads(data)
            if not isinstance(doc, dict) or doc.get("version") != MAP_VERSION:
                raise ValueError("unknown version")
            for row in doc["records"]:
                rec, machine = _row_to_record(row)
                mm.rows[rec.key] = (rec, machine)
        except (ValueError, KeyError, TypeError) as exc:
            mm.rows.clear()
            mm.error = f"ignoring unreadable machine map {path} ({exc})"
        return mm

    def save(self) -> None:
        rows = [[*rec, machine] for rec, machine in self.rows.values()]
        atomic_write(self.path, orjson.dumps({"version": MAP_VERSION, "records": rows}))

    def machine_of(self, rec: UsageRecord, local: str) -> str:
        """The machine ``rec`` came from (an imported record that a local copy with more
        output has since replaced is local again)."""
        hit = self.rows.get(rec.key)
        if hit is not None and hit[0].output_tokens == rec.output_tokens:
            return hit[1]
        return local

    def machines(self) -> set[str]:
        return {m for _, m in self.rows.values()}


def engine_machine_map(engine: Any) -> MachineMap:
    """The machine map of ``engine``'s ledger (empty for a non-persistent engine)."""
    return MachineMap.load(machines_path(engine.ledger_file))


# -- export ----------------------------------------------------------------------------------


def export_doc(engine: Any, local: str, machine: str | None = None) -> dict[str, Any]:
    """Every record of ``engine`` (optionally of one machine) as a portable document."""
    mm = engine_machine_map(engine)
    rows: list[list[Any]] = []
    sessions: set[str] = set()
    for r in engine.records:
        m = mm.machine_of(r, local)
        if machine is not None and m != machine:
            continue
        key = r.key
        if key.startswith("@") and m == local:
            key = f"@{local}/{key[1:]}"
        rows.append([*r._replace(key=key), m])
        sessions.add(r.session_id)
    titles = {sid: t for sid, t in engine.ledger.titles.items() if sid in sessions}
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "machine": local,
        "exportedAt": time.time(),
        "fields": [*FIELDS, "machine"],
        "records": rows,
        "titles": titles,
    }


def write_export(engine: Any, path: Path, local: str, machine: str | None = None) -> int:
    """Write the export file (0600, atomically); returns the number of records."""
    doc = export_doc(engine, local, machine)
    atomic_write(path, orjson.dumps(doc))
    return len(doc["records"])


# -- import ----------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """What one import did."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    own: int = 0  # records of this machine (already here)
    bad: int = 0
    restored: int = 0  # stored imports put back into a rebuilt ledger
    machines: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


class ImportError_(Exception):  # noqa: N801 - not the builtin
    """The file is not a tokmon ledger export (one-line message)."""


def read_export(path: Path) -> tuple[list[Any], dict[str, Any]]:
    """Rows and titles of an export file; raises ImportError_ with a one-line message."""
    try:
        size = path.stat().st_size
        if size > MAX_EXPORT_BYTES:
            raise ImportError_(f"{path}: too large ({size} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise ImportError_(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ImportError_(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise ImportError_(f"{path}: not a tokmon ledger export (see `tokmon ledger export`)")
    if doc.get("version") != EXPORT_VERSION:
        raise ImportError_(f"{path}: export version {doc.get('version')!r} is not supported")
    rows = doc.get("records")
    titles = doc.get("titles")
    if not isinstance(rows, list):
        raise ImportError_(f"{path}: 'records' must be a list")
    return rows, titles if isinstance(titles, dict) else {}


def _row_to_record(row: Any) -> tuple[UsageRecord, str]:
    """Validate one exported row (13 fields); raises ValueError."""
    if not isinstance(row, list) or len(row) != len(FIELDS) + 1:
        raise ValueError("row width")
    ts, sid, proj, model, i, o, cc, c1h, cr, key, cost, dcost, machine = row
    # the poison guards of every other way in (parser, ledger): one bad row is skipped and
    # counted, never the whole import failing on the database's constraints
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not TS_MIN <= ts < TS_MAX:
        raise ValueError("timestamp")
    for s in (sid, proj, model, key, machine):
        if not isinstance(s, str) or len(s) > 4096:
            raise ValueError("text field")
    if not key:
        raise ValueError("empty key")
    for n in (i, o, cc, c1h, cr):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0 or n > MAX_TOKENS:
            raise ValueError("token count")
    if not isinstance(cost, (int, float)) or isinstance(cost, bool) or not abs(cost) <= MAX_COST:
        raise ValueError("cost")
    if dcost is not None and (
        not isinstance(dcost, (int, float)) or isinstance(dcost, bool) or not abs(dcost) <= MAX_COST
    ):
        raise ValueError("display cost")
    rec = UsageRecord(
        float(ts),
        safe_text(sid),  # text from another machine's file: shown on this terminal
        safe_text(proj),
        safe_text(model),
        i,
        o,
        cc,
        c1h,
        cr,
        key,
        float(cost),
        None if dcost is None else float(dcost),
    )
    return rec, clean_machine(machine)


def import_rows(
    engine: Any, rows: Iterable[Any], titles: dict[str, Any], local: str
) -> ImportResult:
    """Merge exported rows into ``engine``'s ledger database and machine map (one
    transaction under the ledger lock).

    Call after ``engine.refresh()`` so the ledger holds this machine's records. Records of
    ``local`` are skipped (this machine has them); the rest merge under the dedup rule.
    """
    res = ImportResult()
    mode = str(engine.config.get("cost_mode"))
    db = engine._db()
    engine._roll()  # the stored sums follow the merge
    with FileLock(engine.ledger_file.with_suffix(".lock"), timeout=600):
        mm = engine_machine_map(engine)
        if mm.error:
            res.warnings.append(mm.error)
        have = db.has_keys(mm.rows)
        lost = [rec for key, (rec, _) in mm.rows.items() if key not in have]
        res.restored = len(lost)
        incoming: list[tuple[UsageRecord, str]] = []
        for row in rows:
            try:
                rec, machine = _row_to_record(row)
            except ValueError:
                res.bad += 1
                continue
            if machine == local:
                res.own += 1
                continue
            incoming.append((rec.with_cost(engine.prices.cost_in_mode(rec, mode)), machine))
        known = engine.ledger.titles
        new_titles = [
            (safe_text(sid), k, safe_text(v)[:200])
            for sid, t in titles.items()
            if isinstance(sid, str) and isinstance(t, dict) and safe_text(sid) not in known
            for k, v in t.items()
            if k in ("ai-title", "custom-title") and isinstance(v, str)
        ]
        if lost:
            db.merge(lost)
        machine_of = {id(r): m for r, m in incoming}
        deltas = []
        if incoming or new_titles:
            deltas, _ = db.merge([r for r, _ in incoming], titles=new_titles)
        for old, new in deltas:
            res.added += old is None
            res.replaced += old is not None
            machine = machine_of[id(new)]
            mm.rows[new.key] = (new, machine)
            res.machines.add(machine)
        res.unchanged = len(incoming) - len(deltas)
        if deltas or lost:
            mm.save()
    return res


def restore(engine: Any) -> int:
    """Re-add stored imports a rebuilt ledger lost; returns how many (0: nothing to do)."""
    mm = engine_machine_map(engine)
    if not mm.rows or len(engine._db().has_keys(mm.rows)) == len(mm.rows):
        return 0
    res = import_rows(engine, [], {}, "")
    return res.restored


def restore_after_rebuild(engine: Any, changes: Any) -> None:
    """Engine hook: a ledger rebuilt from transcripts gets the stored imports back."""
    try:
        present = machines_path(engine.ledger_file).is_file()
    except OSError:  # (a data dir this user cannot search: the ledger's warning says so)
        return
    if not present:
        return
    try:
        n = restore(engine)
    except Exception as exc:  # never break a refresh over the side file
        changes.warnings.append(f"cannot restore imported records: {exc}")
        return
    if n:
        engine.refresh()
        changes.warnings.append(f"restored {n} record(s) imported from other machines")


def machine_filter(
    engine: Any, machine: str, env: Mapping[str, str] | None = None, config: Any = None
) -> Any:
    """A record predicate: True for the records of ``machine`` (for ``--machine``)."""
    local = local_machine(env, config)
    mm = engine_machine_map(engine)
    want = clean_machine(machine)

    def keep(rec: UsageRecord) -> bool:
        return mm.machine_of(rec, local) == want

    return keep


def machine_totals(engine: Any, local: str) -> dict[str, dict[str, Any]]:
    """Per machine: responses, tokens and cost (the ``tokmon ledger machines`` table)."""
    mm = engine_machine_map(engine)
    out: dict[str, dict[str, Any]] = {}
    for r in engine.records:
        m = mm.machine_of(r, local)
        d = out.setdefault(
            m,
            {
                "machine": m,
                "responses": 0,
                "sessions": set(),
                "inputTokens": 0,
                "outputTokens": 0,
                "cacheCreationTokens": 0,
                "cacheReadTokens": 0,
                "totalTokens": 0,
                "totalCost": 0.0,
                "local": m == local,
            },
        )
        d["responses"] += 1
        d["sessions"].add(r.session_id)
        d["inputTokens"] += r.input_tokens
        d["outputTokens"] += r.output_tokens
        d["cacheCreationTokens"] += r.cache_creation_tokens
        d["cacheReadTokens"] += r.cache_read_tokens
        d["totalTokens"] += r.total_tokens
        d["totalCost"] += r.cost
    for d in out.values():
        d["sessions"] = len(d["sessions"])
    return out
