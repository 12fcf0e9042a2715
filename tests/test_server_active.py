"""Pushes without the whole active list (issue #12): a client that says ``tokmon/hello
{"capabilities": {"activeDeltas": true}}`` gets ``tokmon/usageChanged`` summaries without
``activeSessions`` and keeps the list from the pushed rows and ``activeIds``; sessions that
leave the active set by the clock come with a push of their own.

Expected lists come from a fresh ``tokmon/summary`` pull of the same server (which still
answers with the whole list), never from the push path.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import session_line, write_lines
from test_server_support import (
    JsonlProc,
    request,
    server_env,
    start_lsp,
    stop_lsp,
    usage_line,
    wait_note,
)

from tokmon.core import aggregate
from tokmon.service import Service

HOUR = 3600.0
BLOCK = 5 * HOUR  # the default block length: a session is active while its last line is younger
MARGIN = 8.0  # how long the aging test's session stays active after its line is appended


class ActiveList:
    """The client rule of docs/protocol.md ("The active list"), as a client implements it."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] | None = None
        self.seq = 0
        self.pulls = 0

    def pull(self, proc: JsonlProc) -> None:
        got = proc.call("tokmon/summary")["result"]
        self.rows = {r["sessionId"]: r for r in got["activeSessions"]}
        self.seq = got["seq"]
        self.pulls += 1

    def apply(self, proc: JsonlProc, p: dict[str, Any]) -> None:
        if self.rows is None or p["seq"] <= self.seq:
            return
        if p["seq"] > self.seq + 1:  # a push was missed: start over
            self.pull(proc)
            return
        whole = p["summary"].get("activeSessions")
        if whole is not None:  # a server (or a connection) without deltas
            self.rows = {r["sessionId"]: r for r in whole}
        else:
            active = set(p["activeIds"])
            for row in p["sessions"]:
                if row["sessionId"] in active:
                    self.rows[row["sessionId"]] = row
                else:
                    self.rows.pop(row["sessionId"], None)
            for sid in p["removedSessions"]:
                self.rows.pop(sid, None)
        self.seq = p["seq"]

    def listed(self) -> list[dict[str, Any]]:
        assert self.rows is not None
        return sorted(self.rows.values(), key=lambda r: (r["lastActivity"], r["sessionId"]))


def _pushes(proc: JsonlProc, start: int = 0) -> list[dict[str, Any]]:
    return [n["params"] for n in proc.notes[start:] if n["method"] == "tokmon/usageChanged"]


def _history(root: Path, now: float, old: int, live: int) -> list[tuple[str, str, Path]]:
    """``old`` sessions last active days ago and ``live`` ones active minutes ago."""
    out = []
    for k in range(old + live):
        sid = f"ac{k:06x}-0000-4000-8000-{k:012x}"
        cwd = f"/w/a{k % 7}"
        f = root / "projects" / cwd.replace("/", "-") / f"{sid}.jsonl"
        t0 = now - (1 + k % 20) * 86400 if k < old else now - 3600 + (k - old) * 60
        write_lines(f, [session_line(sid, cwd, t0 + j * 30, j, 100 + j, 10) for j in range(3)])
        out.append((sid, cwd, f))
    return out


def _hello(proc: JsonlProc) -> None:
    got = proc.call("tokmon/hello", {"capabilities": {"activeDeltas": True}})["result"]
    assert got["capabilities"] == {"activeDeltas": True}
    assert got["protocol"] >= 1


def test_a_client_keeps_the_active_list_from_the_pushes(tmp_path: Path) -> None:
    """30 old sessions and 8 active ones; appends to active ones, old ones (they join) and a
    new one. The list a client keeps from the pushes equals a fresh pull, row for row; no
    push carried the whole list and the client never pulled again."""
    now = time.time()
    claude = tmp_path / "claude"
    hist = _history(claude, now, old=30, live=8)
    proc = JsonlProc(server_env(tmp_path / "srv", claude))
    try:
        _hello(proc)
        client = ActiveList()
        client.pull(proc)
        assert client.rows is not None and len(client.rows) == 8
        start = len(proc.notes)
        new_sid = "acffffff-0000-4000-8000-ffffffffffff"
        new_file = claude / "projects" / "-w-new" / f"{new_sid}.jsonl"
        new_file.parent.mkdir(parents=True)
        targets = [hist[31], hist[35], hist[2], hist[17], hist[37], hist[2]]
        want: dict[str, int] = {}
        for i, (sid, cwd, f) in enumerate(targets):
            write_lines(f, [usage_line(sid, cwd, inp=1000 + i, out=7).rstrip("\n")])
            want[sid] = want.get(sid, 3) + 1
        write_lines(new_file, [usage_line(new_sid, "/w/new", inp=5, out=5).rstrip("\n")])
        want[new_sid] = 1

        def caught_up() -> bool:
            for p in _pushes(proc, start):
                client.apply(proc, p)
            rows = client.rows or {}
            return all(sid in rows and rows[sid]["entries"] == n for sid, n in want.items())

        proc.wait(caught_up, 60, "every appended session in the client's active list")
        fresh = proc.call("tokmon/summary")["result"]
        pushes = _pushes(proc, start)
        assert fresh["seq"] == pushes[-1]["seq"] == client.seq
        assert client.listed() == sorted(
            fresh["activeSessions"], key=lambda r: (r["lastActivity"], r["sessionId"])
        )
        assert len(fresh["activeSessions"]) == 8 + 2 + 1  # 2, 17 and the new one joined
        assert client.pulls == 1
        for p in pushes:
            assert "activeSessions" not in p["summary"]
            assert set(p["activeIds"]) <= {r["sessionId"] for r in p["sessions"]}
        # the rest of the summary is the pull's (the push's two session keys included)
        last = pushes[-1]["summary"]
        for key in ("totals", "today", "month", "workspaceSession", "projectSession"):
            assert last[key] == fresh[key], key
    finally:
        assert proc.close() == 0


def test_a_missed_push_makes_the_client_pull_again(tmp_path: Path) -> None:
    """A client that lost a push sees the gap in ``seq`` and pulls the summary again; its
    list then equals the server's."""
    now = time.time()
    claude = tmp_path / "claude"
    hist = _history(claude, now, old=5, live=3)
    proc = JsonlProc(server_env(tmp_path / "srv", claude))
    try:
        _hello(proc)
        client = ActiveList()
        client.pull(proc)
        start = len(proc.notes)
        sid, cwd, f = hist[1]  # an old session: it joins the active set
        write_lines(f, [usage_line(sid, cwd, inp=11, out=1).rstrip("\n")])
        proc.wait(lambda: _pushes(proc, start), 60, "the push this client misses")
        start = len(proc.notes)
        sid2, cwd2, f2 = hist[6]
        write_lines(f2, [usage_line(sid2, cwd2, inp=12, out=1).rstrip("\n")])
        p = proc.wait(lambda: _pushes(proc, start), 60, "the next push")[0]
        client.apply(proc, p)  # seq skips the lost one
        assert client.pulls == 2
        assert client.rows is not None and sid in client.rows  # from the pull, not a push
        fresh = proc.call("tokmon/summary")["result"]
        assert client.listed() == sorted(
            fresh["activeSessions"], key=lambda r: (r["lastActivity"], r["sessionId"])
        )
    finally:
        assert proc.close() == 0


def test_a_session_leaves_the_active_list_by_the_clock(tmp_path: Path) -> None:
    """A line dated a block length (5 h) minus 8 s ago: its session is active when the line
    is appended and leaves the active set 8 s later without another line; the server then
    pushes its row (``isActive: false``) and the client's list empties, as a fresh pull says.
    An old session stays out of it all."""
    now = time.time()
    claude = tmp_path / "claude"
    old = "ac000000-0000-4000-8000-00000000abcd"
    write_lines(
        claude / "projects" / "-w-old" / f"{old}.jsonl",
        [session_line(old, "/w/old", now - 86400, 0, 10, 10)],
    )
    proc = JsonlProc(server_env(tmp_path / "srv", claude))
    try:
        _hello(proc)
        client = ActiveList()
        client.pull(proc)
        assert client.rows == {}
        start = len(proc.notes)
        sid = "ac000000-0000-4000-8000-000000000001"
        f = claude / "projects" / "-w-live" / f"{sid}.jsonl"
        f.parent.mkdir(parents=True)
        ts = time.time() - BLOCK + MARGIN
        write_lines(f, [usage_line(sid, "/w/live", inp=42, out=1, ts=ts).rstrip("\n")])
        joined = proc.wait_note("tokmon/usageChanged", lambda p: sid in p["activeIds"], 60, start)
        client.apply(proc, joined)
        assert list(client.rows or {}) == [sid]
        left = proc.wait_note("tokmon/usageChanged", lambda p: p["seq"] > joined["seq"], 60, start)
        for p in _pushes(proc, start):
            client.apply(proc, p)
        assert left["changedSessions"] == [] and left["activeIds"] == []
        [row] = left["sessions"]
        assert row["sessionId"] == sid and row["isActive"] is False and row["inputTokens"] == 42
        assert client.rows == {} and client.pulls == 1
        fresh = proc.call("tokmon/summary")["result"]
        assert fresh["activeSessions"] == [] and fresh["seq"] == left["seq"]
        # it left when its last activity was a block length old, not before
        gen = left["summary"]["generatedAt"]
        assert _epoch(gen) >= _epoch(row["lastActivity"]) + BLOCK
        # nothing else is pushed while nothing changes (the set is empty now)
        n = len(_pushes(proc))
        time.sleep(1.0)
        assert len(_pushes(proc)) == n
    finally:
        assert proc.close() == 0


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _push_bytes(proc: JsonlProc, start: int) -> int:
    [p] = _pushes(proc, start)[-1:]
    return len(orjson.dumps(p))


def _one_append(proc: JsonlProc, sid: str, cwd: str, f: Path, inp: int) -> int:
    start = len(proc.notes)
    write_lines(f, [usage_line(sid, cwd, inp=inp, out=1).rstrip("\n")])
    proc.wait_note(
        "tokmon/usageChanged",
        lambda p: any(r["sessionId"] == sid and r["inputTokens"] >= inp for r in p["sessions"]),
        60,
        start,
    )
    return _push_bytes(proc, start)


def test_the_push_does_not_grow_with_the_active_sessions(tmp_path: Path) -> None:
    """The push for one appended line, with 1 and then 41 sessions active: the same size
    within a few bytes for a client with deltas; a client without them (another connection
    on the same data) gets 40 rows more."""
    now = time.time()
    claude = tmp_path / "claude"
    hist = _history(claude, now, old=45, live=0)
    env = server_env(tmp_path / "srv", claude)
    sid, cwd, f = hist[0]
    proc = JsonlProc(env)
    try:
        _hello(proc)
        proc.call("tokmon/summary", timeout=60)  # indexed: the next line is a push
        _one_append(proc, sid, cwd, f, 1000)  # (a block of one line has no burn rate yet)
        one = _one_append(proc, sid, cwd, f, 1001)
        start = len(proc.notes)
        others = hist[1:41]
        for osid, ocwd, of in others:
            write_lines(of, [usage_line(osid, ocwd, inp=3, out=1).rstrip("\n")])

        def all_active() -> bool:
            got: set[str] = set()
            for p in _pushes(proc, start):
                got |= set(p["activeIds"])
            return {o[0] for o in others} <= got

        proc.wait(all_active, 60, "40 more active sessions")
        forty_one = _one_append(proc, sid, cwd, f, 1002)
        assert len(proc.call("tokmon/summary")["result"]["activeSessions"]) == 41
    finally:
        assert proc.close() == 0
    # the summary's figures may gain a digit or two; 40 rows would be ~20 KB
    assert abs(forty_one - one) < 200, (one, forty_one)
    legacy = JsonlProc(env)  # no hello: the whole list, as before
    try:
        legacy.call("tokmon/summary", timeout=60)
        full = _one_append(legacy, sid, cwd, f, 1003)
    finally:
        assert legacy.close() == 0
    assert full > forty_one + 40 * 300, (forty_one, full)
    print(f"push bytes: 1 active {one}, 41 active {forty_one}; without deltas {full}")


def test_a_push_builds_no_row_of_the_unchanged_active_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: 40 active sessions, one line appended to one of them; with deltas the
    push builds that session's row (and the workspace's), never the 40."""
    now = time.time()
    hist = _history(tmp_path / "claude", now, old=10, live=40)
    env = {
        "TOKMON_HOME": str(tmp_path / "home"),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
        "HOME": str(tmp_path),
        "TZ": "UTC",
        "TOKMON_CHILD_INDEX_BYTES": "0",
    }
    svc = Service(env=env, workspace="/w/a3")
    svc.start()
    svc.full_active = False
    built: list[int] = []
    real = aggregate.session_rows_of

    def counted(groups: dict[str, Any], *args: Any, **kw: Any) -> Any:
        built.append(len(groups))
        return real(groups, *args, **kw)

    monkeypatch.setattr(aggregate, "session_rows_of", counted)
    sid, cwd, f = hist[20]
    write_lines(f, [session_line(sid, cwd, now - 5, 99, 5000, 7)])
    _, notes = svc.refresh(paths={f}, save=False)
    [(_, params)] = notes
    assert params["activeIds"] == [sid] and "activeSessions" not in params["summary"]
    assert sum(built) <= 3, built  # the row, the project session, the workspace session
    monkeypatch.undo()
    pulled = svc.call("tokmon/summary")[0]
    assert len(pulled["activeSessions"]) == 40
    assert params["summary"]["workspaceSession"] == pulled["workspaceSession"]
    assert params["summary"]["workspaceSession"]["projectPath"] == "/w/a3"
    ids = [sid for sid, _, _ in svc.engine.active_index()]
    assert ids == [r["sessionId"] for r in pulled["activeSessions"]]


def test_web_streams_with_and_without_active_deltas(tmp_path: Path) -> None:
    """The dashboard's hub: the service builds the whole list only while a stream without
    ``activeDeltas`` is open, and a stream with them never gets it."""
    import asyncio

    from tokmon.web.app import Hub

    svc = Service(env={"TOKMON_HOME": str(tmp_path / "home")})
    hub = Hub(svc)
    assert svc.full_active is False  # nobody listens
    row = {"sessionId": "x", "totalCost": 1.0}
    note = ("tokmon/usageChanged", {"seq": 1, "summary": {"activeSessions": [row], "k": 1}})

    async def run() -> tuple[bytes, bytes]:
        old = hub.stream(ping=30)
        new = hub.stream(ping=30, deltas=True)
        assert await anext(old) and await anext(new)  # the hello events: both registered
        assert svc.full_active is True
        hub.publish([note])
        got_old, got_new = await anext(old), await anext(new)
        await old.aclose()
        assert svc.full_active is False  # only the stream with deltas is left
        await new.aclose()
        return got_old, got_new

    got_old, got_new = asyncio.run(run())
    assert b'"activeSessions"' in got_old and b'"activeSessions"' not in got_new
    assert b'"k":1' in got_new and b'"seq":1' in got_new


def test_lsp_pushes_after_hello(tmp_path: Path) -> None:
    """Over LSP (pytest-lsp client, real ``tokmon serve``): before ``tokmon/hello`` the push
    carries the whole list; after it, only the rows and ``activeIds``, and the list a client
    keeps from them equals a fresh pull."""
    import asyncio

    now = time.time()
    claude = tmp_path / "claude"
    hist = _history(claude, now, old=4, live=3)
    env = server_env(tmp_path / "srv", claude)

    async def run() -> None:
        client = await start_lsp(env)
        try:
            pulled = await request(client, "tokmon/summary", {}, timeout=120)
            rows = {r["sessionId"]: r for r in pulled["activeSessions"]}
            assert len(rows) == 3
            notes = client.notes["tokmon/usageChanged"]
            sid, cwd, f = hist[0]
            write_lines(f, [usage_line(sid, cwd, inp=21, out=1).rstrip("\n")])
            p1 = await wait_note(
                client, "tokmon/usageChanged", lambda p: sid in p["activeIds"], 60, len(notes)
            )
            assert len(p1["summary"]["activeSessions"]) == 4  # no hello yet: the whole list
            got = await request(client, "tokmon/hello", {"capabilities": {"activeDeltas": True}})
            assert got["capabilities"] == {"activeDeltas": True}
            rows = {r["sessionId"]: r for r in p1["summary"]["activeSessions"]}
            sid2, cwd2, f2 = hist[1]
            start = len(notes)
            write_lines(f2, [usage_line(sid2, cwd2, inp=22, out=1).rstrip("\n")])
            p2 = await wait_note(
                client, "tokmon/usageChanged", lambda p: sid2 in p["activeIds"], 60, start
            )
            assert "activeSessions" not in p2["summary"] and p2["seq"] == p1["seq"] + 1
            for row in p2["sessions"]:
                if row["sessionId"] in p2["activeIds"]:
                    rows[row["sessionId"]] = row
            fresh = await request(client, "tokmon/summary", {})
            assert fresh["seq"] == p2["seq"]
            assert rows == {r["sessionId"]: r for r in fresh["activeSessions"]}
            assert len(rows) == 5
        finally:
            await stop_lsp(client)

    asyncio.run(run())


def test_hello_answers_before_the_first_scan_and_checks_its_params(tmp_path: Path) -> None:
    """``tokmon/hello`` needs no index (a client says it first); bad params are -32602 and
    leave the connection with the whole list."""
    from tokmon.service import InvalidParams

    svc = Service(env={"TOKMON_HOME": str(tmp_path / "home")})  # never started
    for bad in ({"capabilities": 3}, {"capabilities": {"activeDeltas": "yes"}}, {"x": 1}):
        with pytest.raises(InvalidParams):
            svc.call("tokmon/hello", bad)
    assert svc.full_active is True
    got, _ = svc.call("tokmon/hello", {"capabilities": {"activeDeltas": False, "later": 1}})
    assert got["capabilities"] == {"activeDeltas": False} and svc.full_active is True
    got, _ = svc.call("tokmon/hello", {"capabilities": {"activeDeltas": True}, "client": "t"})
    assert got["capabilities"] == {"activeDeltas": True} and svc.full_active is False
