"""Pushes carry deltas (issue #12): ``tokmon/usageChanged`` holds the changed sessions' rows and
a ``seq``; those rows are read by id from the stored sums, and the save after a push writes
what changed only.

Expected rows come from a fresh ``tokmon/sessions`` answer of the same server (the full list,
every row built), never from the push path itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import need_both_corpora, session_line, write_lines
from test_server_support import (
    JsonlProc,
    append,
    request,
    server_env,
    session_of,
    start_lsp,
    stop_lsp,
    usage_line,
    wait_note,
)

from tokmon.core import aggregate
from tokmon.service import Service

HOUR = 3600.0
SONNET = "claude-sonnet-4-5-20250929"


def _main_transcripts(root: Path) -> list[Path]:
    return sorted(
        p for p in (root / "projects").rglob("*.jsonl") if not p.name.startswith("agent-")
    )


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["sessionId"]: r for r in rows}


def _codex_line(ts: float, inp: int, out: int, total: int) -> str:
    """A Codex ``token_count`` event of one more turn (``total``: the running total)."""
    stamp = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    last = {"input_tokens": inp, "cached_input_tokens": 0, "output_tokens": out,
            "reasoning_output_tokens": 0, "total_tokens": inp + out}  # fmt: skip
    tot = {**last, "input_tokens": total, "total_tokens": total + out}
    return json.dumps({"timestamp": stamp, "type": "event_msg", "payload": {
        "type": "token_count", "rate_limits": None,
        "info": {"total_token_usage": tot, "last_token_usage": last,
                 "model_context_window": 258400}}})  # fmt: skip


def test_jsonl_push_rows_equal_a_fresh_sessions_answer(tmp_path: Path) -> None:
    """A real ``serve --jsonl`` on a copy of the real corpus (plus Codex logs): appends to two
    sessions, a new session and a Codex log; each push's rows are exactly the rows a fresh
    ``tokmon/sessions`` gives for those ids (metadata merged, ``agent`` set), its ``seq`` is
    the last one plus one and the sessions answer carries the last seq."""
    src, agents = need_both_corpora()
    claude, codex = tmp_path / "claude", tmp_path / "codex"
    shutil.copytree(src, claude)
    shutil.copytree(agents / "codex", codex)
    extra = {"CODEX_HOME": str(codex)}
    env = server_env(tmp_path / "srv", claude, **extra)
    files = _main_transcripts(claude)
    a, b = files[1], files[-1]
    sid_a, cwd_a = session_of(a)
    sid_b, cwd_b = session_of(b)
    proc = JsonlProc(env)
    try:
        first = proc.call("tokmon/sessions", timeout=180)["result"]
        seq0 = first["seq"]
        assert isinstance(seq0, int)
        before = _by_id(first["sessions"])
        assert sid_a in before and sid_b in before
        named = proc.call(
            "tokmon/setSessionMetadata", {"sessionId": sid_a, "name": "the parser", "tags": ["x"]}
        )
        assert "result" in named, named

        def push_after(start: int, pred: Any) -> dict[str, Any]:
            return proc.wait_note("tokmon/usageChanged", pred, timeout=60, start=start)

        # 1. one line in session a
        n0 = len(proc.notes)
        append(a, usage_line(sid_a, cwd_a, inp=1234, out=56))
        p1 = push_after(n0, lambda p: sid_a in p["changedSessions"])
        rows1 = _by_id(p1["sessions"])
        assert set(rows1) == set(p1["changedSessions"]) and p1["removedSessions"] == []
        assert rows1[sid_a]["inputTokens"] == before[sid_a]["inputTokens"] + 1234
        assert rows1[sid_a]["entries"] == before[sid_a]["entries"] + 1
        assert rows1[sid_a]["name"] == "the parser" and rows1[sid_a]["tags"] == ["x"]
        assert rows1[sid_a]["agent"] == "claude"
        fresh = proc.call("tokmon/sessions")["result"]
        assert fresh["seq"] == p1["seq"]
        for sid, row in rows1.items():
            assert row == _by_id(fresh["sessions"])[sid]
        # the old keys are still there
        assert p1["summary"]["totals"]["inputTokens"] > 0
        # 2. lines in a and b at once, and a brand-new session
        new_sid = "0f0f0f0f-1111-4222-8333-444455556666"
        new_file = claude / "projects" / "-tmp-brand-new" / f"{new_sid}.jsonl"
        new_file.parent.mkdir(parents=True)
        n1 = len(proc.notes)
        append(a, usage_line(sid_a, cwd_a, inp=7, out=8))
        append(b, usage_line(sid_b, cwd_b, inp=9, out=10))
        append(new_file, usage_line(new_sid, "/tmp/brand-new", inp=11, out=12))

        def all_seen() -> bool:
            got: set[str] = set()
            for n in proc.notes[n1:]:
                if n["method"] == "tokmon/usageChanged":
                    got |= {r["sessionId"] for r in n["params"]["sessions"]}
            return {sid_a, sid_b, new_sid} <= got

        proc.wait(all_seen, 60, "pushes of a, b and the new session")
        pushes = [n["params"] for n in proc.notes[n1:] if n["method"] == "tokmon/usageChanged"]
        assert [p["seq"] for p in pushes] == list(range(p1["seq"] + 1, p1["seq"] + 1 + len(pushes)))
        fresh = proc.call("tokmon/sessions")["result"]
        assert fresh["seq"] == pushes[-1]["seq"]
        every = [n["params"]["seq"] for n in proc.notes if n["method"] == "tokmon/usageChanged"]
        assert every == list(range(1, len(every) + 1))
        full = _by_id(fresh["sessions"])
        latest: dict[str, dict[str, Any]] = {}
        for p in pushes:
            latest.update(_by_id(p["sessions"]))
        for sid, row in latest.items():
            assert row == full[sid], sid
        assert latest[new_sid]["inputTokens"] == 11 and latest[new_sid]["entries"] == 1
        assert latest[new_sid]["projectPath"] == "/tmp/brand-new"
        assert new_sid not in before
        # 3. a Codex log: its row carries its agent
        logs = sorted(codex.rglob("*.jsonl"))
        if logs:  # the corpus has Codex logs (need_both_corpora checked the folder)
            n2 = len(proc.notes)
            with open(logs[-1], "a", encoding="utf-8") as fh:
                fh.write(_codex_line(time.time(), 500, 40, 10**7) + "\n")
            p3 = push_after(n2, lambda p: "codex" in (p.get("agents") or []))
            codex_rows = [r for r in p3["sessions"] if r.get("agent") == "codex"]
            assert codex_rows, p3["changedSessions"]
            fresh = _by_id(proc.call("tokmon/sessions")["result"]["sessions"])
            for row in p3["sessions"]:
                assert row == fresh[row["sessionId"]]
    finally:
        assert proc.close() == 0


def test_lsp_push_rows_and_seq(tmp_path: Path) -> None:
    """The same over the LSP transport (pytest-lsp client, real ``tokmon serve``)."""
    now = time.time()
    claude = tmp_path / "claude"
    sid = "abcdabcd-0000-4000-8000-00000000000a"
    f = claude / "projects" / "-w-lsp" / f"{sid}.jsonl"
    write_lines(f, [session_line(sid, "/w/lsp", now - 600, 0, 100, 10)])
    other = "abcdabcd-0000-4000-8000-00000000000b"
    write_lines(
        claude / "projects" / "-w-other" / f"{other}.jsonl",
        [session_line(other, "/w/other", now - 3 * HOUR, 0, 5, 5)],
    )
    env = server_env(tmp_path / "srv", claude)

    async def run() -> None:
        client = await start_lsp(env)
        try:
            first = await request(client, "tokmon/sessions", {}, timeout=120)
            assert {r["sessionId"] for r in first["sessions"]} == {sid, other}
            start = len(client.notes["tokmon/usageChanged"])
            write_lines(f, [session_line(sid, "/w/lsp", time.time(), 1, 2000, 20)])
            p = await wait_note(
                client, "tokmon/usageChanged", lambda p: sid in p["changedSessions"], 60, start
            )
            assert p["seq"] > first["seq"]
            # the server's pushes are numbered 1, 2, 3, ... (none skipped)
            seqs = [n["seq"] for n in client.notes["tokmon/usageChanged"]]
            assert seqs == list(range(1, len(seqs) + 1))
            assert [r["sessionId"] for r in p["sessions"]] == [sid]  # only what changed
            row = p["sessions"][0]
            assert (row["inputTokens"], row["outputTokens"], row["entries"]) == (2100, 30, 2)
            fresh = await request(client, "tokmon/sessions", {})
            assert fresh["seq"] == p["seq"]
            assert row == _by_id(fresh["sessions"])[sid]
        finally:
            await stop_lsp(client)

    asyncio.run(run())


def _history(root: Path, sessions: int, per: int, now: float) -> list[tuple[str, Path]]:
    """``sessions`` transcripts of ``per`` records each, spread over the last 60 days."""
    out = []
    for k in range(sessions):
        sid = f"{k:08x}-0000-4000-8000-{k:012x}"
        cwd = f"/w/p{k % 17}"
        f = root / "projects" / cwd.replace("/", "-") / f"{sid}.jsonl"
        t0 = now - (k % 60) * 86400 - 7 * HOUR
        write_lines(f, [session_line(sid, cwd, t0 + j * 60, j, 100 + j, 10) for j in range(per)])
        out.append((sid, f))
    return out


def _service(tmp_path: Path) -> Service:
    env = {
        "TOKMON_HOME": str(tmp_path / "home"),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
        "CODEX_HOME": str(tmp_path / "codex"),
        "HOME": str(tmp_path),
        "TZ": "UTC",
        "TOKMON_CHILD_INDEX_BYTES": "0",
    }
    svc = Service(env=env)
    svc.start()
    return svc


def test_push_rows_are_read_by_id_not_built_for_every_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 sessions; an append to one: the push builds that session's row only (from the
    stored sums: no record loaded), and that row equals the full list's row."""
    now = time.time()
    hist = _history(tmp_path / "claude", 300, 5, now)
    svc = _service(tmp_path)
    eng = svc.engine
    sid, f = hist[123]
    built: list[int] = []
    real = aggregate.session_rows_of

    def counted(groups: dict[str, Any], *args: Any, **kw: Any) -> Any:
        built.append(len(groups))
        return real(groups, *args, **kw)

    monkeypatch.setattr(aggregate, "session_rows_of", counted)
    db = eng.db
    assert db is not None

    def no_records(*args: Any) -> Any:
        raise AssertionError("the push read records: its cost grows with the history")

    monkeypatch.setattr(db, "records", no_records)
    monkeypatch.setattr(db, "records_of_sessions", no_records)
    eng._sorted = None
    write_lines(f, [session_line(sid, "/w/p4", now - 30, 99, 5000, 7)])
    _, notes = svc.refresh(paths={f}, save=False)
    [(method, params)] = notes
    assert method == "tokmon/usageChanged"
    assert params["changedSessions"] == [sid]
    assert [r["sessionId"] for r in params["sessions"]] == [sid]
    # the summary's active sessions (none but this one in the last 5 h) and the push's row
    assert sum(built) <= 2, built
    monkeypatch.undo()
    full = _by_id(svc.call("tokmon/sessions")[0]["sessions"])
    assert len(full) == 300
    assert params["sessions"][0] == full[sid]
    assert full[sid]["inputTokens"] == sum(100 + j for j in range(5)) + 5000


def _wal_pages(db_file: Path, page: int) -> int:
    wal = db_file.with_name(db_file.name + "-wal")
    size = wal.stat().st_size if wal.exists() else 0
    return max(0, (size - 32) // (page + 24))


def _save_cost(tmp_path: Path, sessions: int, now: float) -> tuple[int, int, int]:
    """(pages written, rows changed, database bytes) by the refresh and save of one
    appended line at ``now``, after a history of ``sessions`` sessions."""
    hist = _history(tmp_path / "claude", sessions, 20, now)
    svc = _service(tmp_path)
    eng = svc.engine
    db = eng.db
    assert db is not None
    conn: sqlite3.Connection = db.conn
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    db_file = Path(eng.ledger_file)
    assert _wal_pages(db_file, page) == 0
    changes0 = conn.total_changes
    sid, f = hist[len(hist) // 2]
    write_lines(f, [session_line(sid, f"/w/p{(len(hist) // 2) % 17}", now - 5, 999, 77, 8)])
    _, notes = svc.refresh(paths={f}, save=False)
    assert notes and notes[0][1]["changedSessions"] == [sid]
    svc.save()  # what the server does after the push
    return _wal_pages(db_file, page), conn.total_changes - changes0, db_file.stat().st_size


def test_a_save_after_a_push_writes_only_what_changed(tmp_path: Path) -> None:
    """The ledger pages and rows written for one appended line do not grow with the history
    (40 vs 800 sessions, a database 20x bigger); a whole-history rewrite would write every
    page."""
    # one time for both: a 15-minute bucket or an hour starting between the two would give
    # only one of them a new stored-sums cell and block (6 more pages: one run in the
    # fourteenth session's suite, 24 against 33)
    now = time.time()
    small = _save_cost(tmp_path / "small", 40, now)
    big = _save_cost(tmp_path / "big", 800, now)
    pages_s, rows_s, size_s = small
    pages_b, rows_b, size_b = big
    assert size_b > 10 * size_s
    assert rows_b == rows_s and 0 < rows_b < 40, (small, big)
    page = 4096
    # A deeper B-tree touches a few more pages, how many depends on where the history's days
    # fall (24 against 26-33 pages seen for the same code at different times of day); a
    # rewrite of the history would be ~1,700 pages here (the bound below, and this one)
    assert pages_b <= pages_s + 12, (small, big)
    assert pages_b * page < size_b / 20, (small, big)
