"""OpenCode: ``${OPENCODE_DATA_DIR:-~/.local/share/opencode}/opencode*.db`` (SQLite, table
``message``) and the legacy ``storage/message/<session>/msg_*.json`` files.

Assistant messages carry ``tokens{input, output, reasoning, cache{read, write}}`` (input net
of the cache; reasoning reported apart from output) and ``cost`` (USD; 0 when the provider
bills a subscription, then the price table decides).

The databases are opened read-only through a URI: ``mode=ro`` while the agent's ``-wal``
file exists (the writer keeps its ``-wal``/``-shm``; a reader does not block it), and
``mode=ro&immutable=1`` when there is no ``-wal`` file, so that SQLite creates no
``-wal``/``-shm`` next to the agent's database. Rows are read above a ``time_updated``
watermark (rows are rewritten while a reply streams).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tokmon.sources.base import (
    AgentUsage,
    FileState,
    ReadResult,
    Source,
    as_int,
    as_obj,
    file_sig,
    log,
    parse_ts,
    read_json_document,
    sorted_files,
)


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection that never creates files next to ``path``."""
    uri = "file:" + quote(str(path.resolve()).replace("\\", "/"), safe="/:")
    wal = Path(str(path) + "-wal")
    uri += "?mode=ro" if wal.exists() else "?mode=ro&immutable=1"
    con = sqlite3.connect(uri, uri=True, timeout=2.0, check_same_thread=False)
    con.execute("PRAGMA query_only = 1")
    return con


class OpenCodeSource(Source):
    agent = "opencode"
    label = "OpenCode"
    env_var = "OPENCODE_DATA_DIR"
    dedup_rule = (
        "key = message id; a database row wins over the same message in legacy storage "
        "(rank +1 for JSON files); a row rewritten later replaces the earlier read."
    )

    def roots(self) -> list[Path]:
        dirs = self.env_dirs("OPENCODE_DATA_DIR")
        if dirs is None:
            xdg = self.env.get("XDG_DATA_HOME")
            base = Path(xdg) if xdg else self.home() / ".local" / "share"
            dirs = [base / "opencode"]
        return [
            d
            for d in dirs
            if d.is_dir() and (any(d.glob("opencode*.db")) or (d / "storage" / "message").is_dir())
        ]

    def files(self) -> list[Path]:
        out: list[Path] = []
        for root in self.roots():
            out.extend(sorted_files(root, ["opencode.db", "opencode-*.db"]))
            out.extend(sorted_files(root / "storage" / "message", ["**/*.json"]))
        return out

    def read(self, path: Path, state: FileState | None) -> ReadResult:
        if path.suffix == ".db":
            return self._read_db(path, state)
        sig = file_sig(path)
        if sig is None or (state is not None and state.sig == sig):
            return ReadResult([], state or FileState())
        doc = read_json_document(path)
        rec = self._record(doc, None, path, rank=1) if isinstance(doc, dict) else None
        return ReadResult([rec] if rec else [], FileState(sig=sig), replace=True, bytes_read=sig[0])

    def _read_db(self, path: Path, state: FileState | None) -> ReadResult:
        st = state if state is not None else FileState()
        sig = file_sig(path)
        wal = file_sig(Path(str(path) + "-wal"))
        full_sig = (
            (sig[0] + (wal[0] if wal else 0), max(sig[1], wal[1] if wal else 0)) if sig else None
        )
        if full_sig is None or (state is not None and st.sig == full_sig):
            return ReadResult([], st)
        records: list[AgentUsage] = []
        mark = st.mark
        seen_at_mark = set(st.ctx.get("at_mark", []))  # rows read at the watermark already
        try:
            con = connect_readonly(path)
            try:
                rows = con.execute(
                    "SELECT id, session_id, time_updated, data FROM message "
                    "WHERE time_updated >= ? ORDER BY time_updated",
                    (st.mark,),
                ).fetchall()
            finally:
                con.close()
        except sqlite3.Error as exc:
            log.warning("cannot read %s: %s", path, exc)
            return ReadResult([], st)
        at_mark: set[str] = set()
        nread = 0
        for mid, sid, updated, data in rows:
            upd = as_int(updated)
            if upd == st.mark and mid in seen_at_mark:
                continue
            nread += 1
            if upd > mark:
                mark, at_mark = upd, set()
            if upd == mark:
                at_mark.add(mid)
            try:
                msg = json.loads(data)
            except (TypeError, ValueError):
                continue
            if isinstance(msg, dict):
                msg.setdefault("id", mid)
                msg.setdefault("sessionID", sid)
                rec = self._record(msg, None, path, rank=0)
                if rec is not None:
                    records.append(rec)
        if mark == st.mark:
            at_mark |= seen_at_mark
        return ReadResult(
            records,
            FileState(sig=full_sig, mark=mark, ctx={"at_mark": sorted(at_mark)}),
            bytes_read=nread,
        )

    def _record(
        self, msg: dict[str, Any], _unused: None, path: Path, rank: int
    ) -> AgentUsage | None:
        if msg.get("role") != "assistant":
            return None
        tokens = msg.get("tokens")
        if not isinstance(tokens, dict):
            return None
        cache = as_obj(tokens.get("cache"))
        inp, out = as_int(tokens.get("input")), as_int(tokens.get("output"))
        reasoning = as_int(tokens.get("reasoning"))
        cr, cw = as_int(cache.get("read")), as_int(cache.get("write"))
        if not (inp or out or reasoning or cr or cw):
            return None
        t = msg.get("time")
        ts = parse_ts(t.get("created")) if isinstance(t, dict) else None
        mid, sid = msg.get("id"), msg.get("sessionID")
        if ts is None or not isinstance(mid, str) or not isinstance(sid, str):
            return None
        model = msg.get("modelID")
        if not isinstance(model, str) or not model:
            m = msg.get("model")
            model = m.get("modelID") if isinstance(m, dict) else None
        cwd_raw = as_obj(msg.get("path")).get("cwd")
        cwd = cwd_raw if isinstance(cwd_raw, str) else ""
        cost = msg.get("cost")
        recorded = (
            float(cost)
            if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost > 0
            else None
        )
        return AgentUsage(
            "opencode",
            ts,
            sid,
            cwd,
            str(model) if isinstance(model, str) and model else "unknown",
            inp,
            out + reasoning,
            cr,
            cw,
            reasoning,
            f"opencode:{mid}",
            cost=recorded,
            rank=rank,
            origin=str(path),
        )
