"""What a live push costs (issue #12): the summary's active sessions from the stored sums, the
limits monitor reading only what it needs (the last windows' records, the changed
transcripts), the first limits read done by the index child.

Expected figures come from the lines the tests write, or from the full-history computation
(every record loaded) the narrowed paths must equal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_tokmon, session_line, write_lines
from limits_support import Usage, codex_event, payload
from test_server_support import JsonlProc, server_env

from tokmon.core.engine import Engine
from tokmon.limits import history, ingest, status
from tokmon.limits.run import evaluate
from tokmon.paths import get_paths

HOUR = 3600.0
SONNET = "claude-sonnet-4-5-20250929"
OPUS = "claude-opus-4-5-20251101"


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "TOKMON_HOME": str(tmp_path / "home"),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
        "CODEX_HOME": str(tmp_path / "codex"),
        "HOME": str(tmp_path),
        "TZ": "UTC",
    }


def _write_sessions(projects: Path, now: float) -> dict[str, dict[str, Any]]:
    """Four sessions; three with a record in the last 5 hours. Returns what each holds."""
    plan = {
        # a long session: its old records count too (the row is the whole session)
        "aaaaaaaa-0000-4000-8000-000000000001": (
            "/w/alpha",
            [
                (-30 * HOUR, 1000, 10, SONNET),
                (-10 * HOUR, 2000, 20, OPUS),
                (-1 * HOUR, 30, 3, SONNET),
            ],
        ),
        "bbbbbbbb-0000-4000-8000-000000000002": ("/w/beta", [(-2 * HOUR, 400, 40, SONNET)]),
        "cccccccc-0000-4000-8000-000000000003": ("/w/gamma", [(-8 * HOUR, 5000, 50, SONNET)]),
        "dddddddd-0000-4000-8000-000000000004": (
            "/w/delta",
            [(-0.5 * HOUR, 7, 1, OPUS), (-0.25 * HOUR, 8, 2, OPUS)],
        ),
    }
    out: dict[str, dict[str, Any]] = {}
    for sid, (cwd, recs) in plan.items():
        f = projects / cwd.replace("/", "-") / f"{sid}.jsonl"
        lines = [
            session_line(sid, cwd, now + dt, i, inp, o, m) for i, (dt, inp, o, m) in enumerate(recs)
        ]
        if sid.startswith("dddd"):
            lines.append(json.dumps({"type": "custom-title", "customTitle": "fix the parser",
                                     "sessionId": sid}))  # fmt: skip
        write_lines(f, lines)
        out[sid] = {
            "project": cwd,
            "input": sum(r[1] for r in recs),
            "output": sum(r[2] for r in recs),
            "entries": len(recs),
            "last": now + max(r[0] for r in recs),
        }
    return out


def test_summary_active_sessions_come_from_the_stored_sums(tmp_path: Path) -> None:
    now = time.time()
    env = _env(tmp_path)
    plan = _write_sessions(tmp_path / "claude" / "projects", now)
    eng = Engine(env=env)
    eng.refresh()
    db = eng.db
    assert db is not None

    def no_records(*args: Any) -> Any:
        raise AssertionError("the summary read records: its cost grows with the sessions")

    db.records = db.records_of_sessions = no_records  # type: ignore[method-assign]
    summ = eng.summary(now=now)
    rows = summ.active_sessions
    assert eng._sorted is None  # the history was never loaded
    active = [sid for sid, p in plan.items() if now - p["last"] < 5 * HOUR]
    assert [r.session_id for r in rows] == sorted(active, key=lambda s: -plan[s]["last"])
    for r in rows:
        p = plan[r.session_id]
        assert (r.usage.input_tokens, r.usage.output_tokens) == (p["input"], p["output"])
        assert r.entries == p["entries"] and r.project_path == p["project"] and r.is_active
    assert {r.session_id: r.title for r in rows}["dddddddd-0000-4000-8000-000000000004"] == (
        "fix the parser"
    )
    # the same rows as the records path (every record loaded) gives
    full = Engine(env=env)
    full.refresh()
    assert len(full.records) == sum(p["entries"] for p in plan.values())
    ref_summ = full.summary(now=now)
    ref = ref_summ.active_sessions
    # the active block (read from the live stored blocks only) is the records' one: it opened
    # at the hour of the first record after the 5-hour gap (2 hours ago)
    assert summ.active_block is not None and ref_summ.active_block is not None
    assert summ.active_block.block.start == (now - 2 * HOUR) // 3600 * 3600
    assert summ.active_block.to_json() == ref_summ.active_block.to_json()
    got, want = [r.to_json() for r in rows], [r.to_json() for r in ref]
    for g, w in zip(got, want, strict=True):
        assert g.pop("totalCost") == pytest.approx(w.pop("totalCost"), abs=1e-9)
        for gb, wb in zip(g.pop("modelBreakdowns"), w.pop("modelBreakdowns"), strict=True):
            assert gb.pop("cost") == pytest.approx(wb.pop("cost"), abs=1e-9)
            assert gb == wb
        assert g == w


def _official(paths: Any, now: float) -> None:
    """A current 5-hour figure and a past 5-hour window (for the calibration)."""
    obs = [
        history.Obs(now - 30 * HOUR, "claude", "five_hour", 10.0, now - 26 * HOUR, 5 * HOUR),
        history.Obs(now - 27 * HOUR, "claude", "five_hour", 40.0, now - 26 * HOUR, 5 * HOUR),
        history.Obs(now - 2 * HOUR, "claude", "five_hour", 20.0, now + 2 * HOUR, 5 * HOUR),
    ]
    with history.opened(paths) as con:
        history.append(con, obs)


def test_limits_evaluation_reads_only_the_windows_records(tmp_path: Path) -> None:
    now = time.time()
    env = _env(tmp_path)
    projects = tmp_path / "claude" / "projects"
    u = Usage(projects)
    for d in (60, 40, 20):  # long before any official window: never read
        u.add(now - d * 86400)
    for h in (29.5, 28, 27.5, 1.5, 0.5):
        u.add(now - h * HOUR)
    paths = get_paths(env)
    eng = Engine(env=env)
    eng.refresh()
    ev = evaluate(paths, env, None, eng, now=now, fire=False, read_agents=False)
    assert eng._sorted is None  # the history was never loaded
    assert ev.status["windows"] == []  # no official figure: nothing to estimate
    _official(paths, now)
    ev = evaluate(paths, env, None, eng, now=now, fire=False, read_agents=False)
    assert eng._sorted is None
    (w,) = ev.status["windows"]
    assert w["basis"] == "estimate"  # local usage after the figure was seen
    # the calibration window's local cost is the records' between its start and last figure
    start, seen = now - 31 * HOUR, now - 27 * HOUR
    assert ev.status["calibration"]["five_hour"]["cost"] == pytest.approx(
        u.cost_between(start, seen)
    )
    # ... the very status the whole history gives
    full = Engine(env=env)
    full.refresh()
    want = status.build(paths, full.records, now)
    for doc in (ev.status, want):
        doc.pop("generatedAt")
    assert json.loads(json.dumps(ev.status)) == json.loads(json.dumps(want))


def _ingested(paths: Any) -> dict[str, int]:
    with history.opened(paths) as con:
        return {p: off for p, _i, off in con.execute("SELECT path, ident, offset FROM ingest")}


def test_limits_ingest_reads_only_the_hinted_transcripts(tmp_path: Path) -> None:
    now = time.time()
    env = _env(tmp_path)
    paths = get_paths(env)
    projects = tmp_path / "claude" / "projects"
    a = Usage(projects, "/w/a", "aaaaaaaa-1111-4000-8000-000000000001")
    b = Usage(projects, "/w/b", "bbbbbbbb-1111-4000-8000-000000000002")
    a.add(now - HOUR)
    b.add(now - HOUR)
    codex = tmp_path / "codex" / "sessions" / "2026" / "rollout-1.jsonl"
    write_lines(codex, [codex_event(now - 60, (10.0, now + HOUR), (5.0, now + 86400))])
    got = ingest.ingest(paths, env, [projects])
    assert got["codexObservations"] == 2 and got["files"] == 3
    a.marker(now - 30, int(now + 2 * HOUR))
    b.marker(now - 20, int(now + 3 * HOUR))
    write_lines(codex, [codex_event(now - 10, (12.0, now + HOUR), (6.0, now + 86400))])
    before = _ingested(paths)
    # only a's transcript is hinted; the Codex rollout (not a Claude transcript) is read by the
    # Codex pass, never taken for one
    got = ingest.ingest(paths, env, [projects], [a.file, codex, tmp_path / "x.jsonl"])
    assert got["markers"] == 1 and got["codexObservations"] == 2
    after = _ingested(paths)
    assert after[str(b.file)] == before[str(b.file)]  # b was not read
    assert after[str(a.file)] == a.file.stat().st_size
    with history.opened(paths) as con:
        assert [r for _s, _t, r in history.markers(con)] == [float(int(now + 2 * HOUR))]
    got = ingest.ingest(paths, env, [projects])  # a full pass finds b's marker
    assert got["markers"] == 1


def _poked_server(tmp_path: Path, claude: Path) -> tuple[dict[str, str], JsonlProc, Any]:
    """A server whose limits monitor wakes only when poked (a fallback of an hour), once it
    pushed its first status: (its environment, the server, that first status)."""
    env = server_env(
        tmp_path / "srv", claude, CODEX_HOME=str(tmp_path / "codex"), TOKMON_LIMITS_FALLBACK="3600"
    )
    proc = JsonlProc(env)
    try:
        proc.call("tokmon/summary", timeout=120)
        first = proc.wait_note("tokmon/limitsChanged", timeout=60)
    except BaseException:
        proc.close()
        raise
    return env, proc, first


def test_server_pushes_a_limit_reached_line_of_a_watched_transcript(tmp_path: Path) -> None:
    """End to end: the watcher's changed transcript reaches the limits monitor (which no
    longer lists every transcript after its first pass)."""
    now = time.time()
    claude = tmp_path / "claude"
    u = Usage(claude / "projects")
    u.add(now - HOUR)
    # a fallback of an hour: only the watcher's poke after the refresh can bring the marker
    _, proc, first = _poked_server(tmp_path, claude)
    try:
        assert first["limitReached"] == []
        resets = int(now + 3 * HOUR)
        u.marker(time.time(), resets)
        note = proc.wait_note(
            "tokmon/limitsChanged",
            lambda p: bool(p["limitReached"]),
            timeout=60,
        )
        assert [m["resetsAt"] for m in note["limitReached"]] == [float(resets)]
    finally:
        assert proc.close() == 0


def test_a_statusline_write_reaches_the_server_at_once(tmp_path: Path) -> None:
    """Official figures written by another process (Claude Code's statusLine running
    ``tokmon line --claude``) are pushed when the database's directory changes, not at the
    monitor's fallback (an hour here)."""
    claude = tmp_path / "claude"
    (claude / "projects").mkdir(parents=True)
    env, proc, first = _poked_server(tmp_path, claude)
    try:
        assert first["windows"] == []
        resets = time.time() + 4 * HOUR
        for used in (42.0, 57.0):
            p = payload("sess-poke", {"five_hour": (used, resets)})
            r = run_tokmon(["line", "--claude"], env, input=json.dumps(p))
            assert r.returncode == 0, r.stderr
            note = proc.wait_note(
                "tokmon/limitsChanged",
                lambda n, u=used: any(w["usedPercent"] == u for w in n["windows"]),
                timeout=60,
            )
            assert [(w["source"], w["basis"]) for w in note["windows"]] == [("claude", "official")]
    finally:
        assert proc.close() == 0


def test_index_child_reads_the_limit_figures_too(tmp_path: Path) -> None:
    """The big first index's child also makes the limits monitor's first pass (its offsets
    stored), so the server itself reads no transcript for it."""
    from tokmon.service import Service

    now = time.time()
    env = _env(tmp_path)
    env["TOKMON_CHILD_INDEX_BYTES"] = "1"
    projects = tmp_path / "claude" / "projects"
    us = [Usage(projects, f"/w/p{i}", f"{i:08d}-2222-4000-8000-000000000000") for i in range(3)]
    for u in us:
        u.add(now - HOUR)
    us[1].marker(now - 60, int(now + HOUR))
    svc = Service(env=env)
    stats = svc.start()
    assert stats["childIndex"]["ok"] is True
    offsets = _ingested(get_paths(env))
    assert {p: offsets.get(p) for p in (str(u.file) for u in us)} == {
        str(u.file): u.file.stat().st_size for u in us
    }
    with history.opened(get_paths(env)) as con:
        assert [r for _s, _t, r in history.markers(con)] == [float(int(now + HOUR))]


def test_period_sums_follow_the_deltas_exactly(tmp_path: Path) -> None:
    """Today / week / month after refreshes equal, to the last bit of the cost, what a fresh
    engine reads from the database; and a push reads no bucket of the month again."""
    now = time.time()
    if now % 900 < 90:  # keep the new records (the last minute) on one day in every zone
        now -= 90
    env = _env(tmp_path)
    sid, cwd = "eeeeeeee-0000-4000-8000-000000000005", "/w/eps"
    f = tmp_path / "claude" / "projects" / "-w-eps" / f"{sid}.jsonl"
    write_lines(
        f, [session_line(sid, cwd, now - d * 3600, d, 1000 + d, 10 + d) for d in range(0, 90, 7)]
    )
    eng = Engine(env=env)
    eng.refresh()
    before = eng.summary(now=now)
    roll = eng._rollups
    assert roll is not None
    reads: list[tuple[float, float]] = []
    real = roll._period_fold

    def counted(agent: str, lo: float, hi: float) -> Any:
        reads.append((lo, hi))
        return real(agent, lo, hi)

    roll._period_fold = counted  # type: ignore[method-assign]
    added_in = added_out = 0
    for k in range(5):
        # a new record, and one that replaces the first record of the same message (a
        # streamed answer's last line carries the final output count)
        write_lines(f, [session_line(sid, cwd, now - 60 + k, 100 + k, 31 + k, 7, OPUS)])
        write_lines(f, [session_line(sid, cwd, now - 50, 200, 5, 1 + k, SONNET)])
        added_in += 31 + k
        added_out += 7
        eng.refresh(paths=[f])
        s = eng.summary(now=now)
    assert reads == []  # kept from the deltas
    # the five new records' tokens are in today (the replaced one counts once, last seen)
    assert s.today.usage.input_tokens == before.today.usage.input_tokens + added_in + 5
    assert s.today.usage.output_tokens == before.today.usage.output_tokens + added_out + 5
    fresh = Engine(env=env)
    fresh.refresh()
    want = fresh.summary(now=now)
    for name in ("today", "week", "month"):
        assert getattr(s, name).to_json() == getattr(want, name).to_json()
    assert s.totals.to_json() == want.totals.to_json()


def test_marked_lines_are_found_on_the_whole_buffer() -> None:
    lines = [
        b'{"a":"usage limit reached|1790000000"}',
        b'{"b":1}',
        b'{"c":"limit reached|1 and limit reached|2"}',
        b'{"d":2}',
        b'{"e":"Claude AI usage limit reached|1790003600"}',
    ]
    data = b"\n".join(lines) + b"\n"
    assert ingest._marked_lines(data) == [lines[0], lines[2], lines[4]]
    assert ingest._marked_lines(b"\n".join(lines[1:2] + lines[3:4]) + b"\n") == []


def test_monitor_hints_name_the_transcripts_to_read(tmp_path: Path) -> None:
    from tokmon.limits.monitor import LimitsMonitor

    mon = LimitsMonitor(None, lambda notes: None)
    assert mon._take_hints() is None  # the first pass lists every transcript
    f = tmp_path / "p" / "s.jsonl"
    mon.hint([f, tmp_path / "sessions.json"])
    assert mon._take_hints() == {f, tmp_path / "sessions.json"}
    assert mon._take_hints() == set()  # nothing changed since
    (tmp_path / "moved-in").mkdir()
    mon.hint([f, tmp_path / "moved-in"])  # a directory: every transcript again
    assert mon._take_hints() is None
