"""Simulated weeks of statusLine payloads and Codex events: history, pace, ETA, calibration.

Expected values are computed here from the definitions in docs/limits.md, never by
tokmon's own functions.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import run_tokmon, write_lines
from limits_support import Usage, codex_event, payload

from tokmon.core.engine import Engine
from tokmon.limits import history, ingest, status
from tokmon.limits.record import record_payload
from tokmon.paths import get_paths

H = 3600.0
D = 86400.0
T0 = datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp()  # a Monday
OPUS = "claude-opus-4-5-20251101"


@pytest.fixture
def world(tmp_path: Path, env: dict[str, str]) -> dict:
    """Two weeks of Claude figures and local usage, plus a Codex rollout."""
    claude = tmp_path / "claude"
    projects = claude / "projects"
    projects.mkdir(parents=True)
    env = {**env, "CLAUDE_CONFIG_DIR": str(claude), "CODEX_HOME": str(tmp_path / "codex")}
    paths = get_paths(env)
    use = Usage(projects)
    week1_reset = T0 + 7 * D
    week2_reset = T0 + 14 * D
    # 5-hour window A: opens 09:00 (first request), resets 14:00
    a_reset = T0 + 14 * H
    for h in (9.0, 9.5, 10.5, 11.5):
        use.add(T0 + h * H)
    use.add(T0 + 11.75 * H, model=OPUS)
    seq = [  # (time, {window: (used, resets)})
        (T0 + 10 * H, {"five_hour": (10.0, a_reset), "seven_day": (2.0, week1_reset)}),
        (T0 + 11 * H, {"five_hour": (25.0, a_reset), "seven_day": (5.0, week1_reset)}),
        (T0 + 11.5 * H, {"five_hour": (25.0, a_reset), "seven_day": (5.0, week1_reset)}),  # same
        (
            T0 + 12 * H,
            {
                "five_hour": (40.0, a_reset),
                "seven_day": (8.0, week1_reset),
                "seven_day_opus": (3.0, week1_reset),
            },
        ),
    ]
    # window B the next day: opens 09:00 (+24h), resets 14:00
    b_reset = T0 + 38 * H
    for h in (33.0, 33.5, 34.0, 34.5):
        use.add(T0 + h * H)
    seq += [
        (T0 + 34 * H, {"five_hour": (30.0, b_reset), "seven_day": (12.0, week1_reset)}),
        (
            T0 + 35 * H,
            {
                "five_hour": (60.0, b_reset),
                "seven_day": (14.0, week1_reset),
                "seven_day_opus": (3.0, week1_reset),
            },
        ),
        (T0 + 35.2 * H, {"five_hour": (60.0, b_reset), "seven_day": (14.0, week1_reset)}),  # same
    ]
    # week 2: one 5-hour window, then the weekly figure keeps climbing
    c_reset = T0 + (7 * 24 + 15) * H
    for h in (10.0, 11.0, 12.0):
        use.add(T0 + 7 * D + h * H)
    seq += [
        (T0 + 7 * D + 11 * H, {"five_hour": (20.0, c_reset), "seven_day": (4.0, week2_reset)}),
        (T0 + 7 * D + 12.5 * H, {"five_hour": (55.0, c_reset), "seven_day": (9.0, week2_reset)}),
    ]
    for ts, windows in seq:
        record_payload(paths, payload("sess-1", windows), now=ts)
    # Codex: a rollout with repeated identical figures and relative resets
    ev_times = [T0 + 20 * H + i * 600 for i in range(6)]
    p_reset, s_reset = T0 + 24 * H, T0 + 6 * D
    codex_lines = [
        codex_event(ev_times[0], (5.0, p_reset), (1.0, s_reset)),
        codex_event(ev_times[1], (5.0, p_reset), (1.0, s_reset)),  # repeated: not stored
        codex_event(ev_times[2], (9.0, p_reset), (2.0, s_reset), relative=True),
        "{not json",
        codex_event(ev_times[3], (9.0, p_reset), (2.0, s_reset), relative=True),  # same
        codex_event(ev_times[4], (30.0, p_reset), (3.0, s_reset)),
    ]
    write_lines(
        tmp_path / "codex" / "sessions" / "2026" / "03" / "02" / "rollout-x.jsonl", codex_lines
    )
    return {
        "env": env,
        "paths": paths,
        "use": use,
        "projects": projects,
        "seq": seq,
        "resets": (a_reset, b_reset, c_reset, week1_reset, week2_reset),
        "codex": (ev_times, p_reset, s_reset),
    }


def _engine(world: dict) -> Engine:
    eng = Engine(roots=[world["projects"]], paths=world["paths"], persist=False, env=world["env"])
    eng.refresh()
    return eng


def _expected_rows(seq: list) -> list[tuple[float, str, float]]:
    """Independent dedup: a row whenever a window's (used, resets) differs from its last."""
    last: dict[str, tuple[float, float]] = {}
    out = []
    for ts, windows in seq:
        for name, fig in sorted(windows.items()):
            if last.get(name) != fig:
                out.append((ts, name, fig[0]))
                last[name] = fig
    return out


def test_history_is_deduplicated_private_and_complete(world: dict) -> None:
    paths = world["paths"]
    ingest.ingest(paths, world["env"], [world["projects"]])
    with history.opened(paths) as con:
        claude = [(o.ts, o.window, o.used) for o in history.observations(con, "claude")]
        codex = history.observations(con, "codex")
    assert sorted(claude) == sorted(_expected_rows(world["seq"]))
    ev_times, p_reset, s_reset = world["codex"]
    assert [(o.ts, o.window, o.used) for o in codex] == [
        (ev_times[0], "primary", 5.0),
        (ev_times[0], "secondary", 1.0),
        (ev_times[2], "primary", 9.0),
        (ev_times[2], "secondary", 2.0),
        (ev_times[4], "primary", 30.0),
        (ev_times[4], "secondary", 3.0),
    ]
    assert all(o.length == (300 * 60 if o.window == "primary" else 10080 * 60) for o in codex)
    db = history.db_path(paths)
    if os.name == "posix":
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
    # a second scan reads nothing new
    again = ingest.ingest(paths, world["env"], [world["projects"]])
    assert again["codexObservations"] == 0 and again["files"] == 0


def test_pace_eta_and_calibration_match_an_independent_computation(world: dict) -> None:
    eng = _engine(world)
    use = world["use"]
    a_reset, b_reset, c_reset, week1_reset, week2_reset = world["resets"]
    L5, L7 = 5 * H, 7 * D
    # calibration of the 5-hour window: windows A (40%), B (60%), C (55%)
    last_obs = {
        a_reset: (T0 + 12 * H, 40.0),
        b_reset: (T0 + 35 * H, 60.0),
        c_reset: (T0 + 7 * D + 12.5 * H, 55.0),
    }
    cost = sum(use.cost_between(r - L5, t) for r, (t, _u) in last_obs.items())
    percent = sum(u for _t, u in last_obs.values())
    dpp = cost / percent
    # status just after the last figure: window C is current, official and fresh
    now = T0 + 7 * D + 12.6 * H
    st = status.build(world["paths"], eng.records, now=now, use_official_file=False)
    cal = st["calibration"]["five_hour"]
    assert cal["windows"] == 3
    assert cal["dollarsPerPercent"] == pytest.approx(dpp, rel=1e-9)
    # per model: dollars-per-percent x tokens/cost of that model over the same spans
    spans = [(r - L5, t) for r, (t, _u) in last_obs.items()]
    son = [row for row in use.rows if row[1] != OPUS and any(a <= row[0] <= b for a, b in spans)]
    opus = [row for row in use.rows if row[1] == OPUS and any(a <= row[0] <= b for a, b in spans)]
    son_tpp = dpp * sum(r[2] + r[3] for r in son) / sum(r[4] for r in son)
    opus_tpp = dpp * sum(r[2] + r[3] for r in opus) / sum(r[4] for r in opus)
    models = cal["models"]
    assert models["claude-sonnet-4-5-20250929"]["tokensPerPercent"] == pytest.approx(son_tpp)
    assert models[OPUS]["tokensPerPercent"] == pytest.approx(opus_tpp)
    # the weekly window: instance of week 1 (last 14% at T0+35h) and week 2 (9% at +12.5h)
    w_cost = use.cost_between(week1_reset - L7, T0 + 35 * H) + use.cost_between(
        week2_reset - L7, T0 + 7 * D + 12.5 * H
    )
    assert st["calibration"]["seven_day"]["dollarsPerPercent"] == pytest.approx(w_cost / (14 + 9))

    by = {w["window"]: w for w in st["windows"] if w["source"] == "claude"}
    five = by["five_hour"]
    t_obs, used = T0 + 7 * D + 12.5 * H, 55.0
    start = c_reset - L5
    elapsed = t_obs - start
    assert five["basis"] == "official" and five["usedPercent"] == 55.0
    assert five["ageSeconds"] == pytest.approx(now - t_obs)
    assert five["resetsInSeconds"] == pytest.approx(c_reset - now)
    assert five["pace"] == pytest.approx(used / (elapsed / L5 * 100))
    assert five["projectedPercent"] == pytest.approx(used * L5 / elapsed)
    eta = start + elapsed * 100 / used
    assert eta < c_reset and five["eta"] == pytest.approx(eta)
    seven = by["seven_day"]
    w_start = week2_reset - L7
    assert seven["projectedPercent"] == pytest.approx(9.0 * L7 / (t_obs - w_start))
    w_eta = w_start + (t_obs - w_start) * 100 / 9.0  # 9% in 12.5 h: 100% in 5.8 days
    assert w_eta < week2_reset and seven["eta"] == pytest.approx(w_eta)
    # the opus bucket was seen only in week 1 and has reset since
    assert by["seven_day_opus"]["officialPercent"] is None
    # past windows with their peaks
    peaks = {(p["window"], p["resetsAt"]): p["peakPercent"] for p in st["past"]}
    assert peaks[("five_hour", a_reset)] == 40.0
    assert peaks[("five_hour", b_reset)] == 60.0
    assert peaks[("seven_day", week1_reset)] == 14.0


def test_estimate_replaces_a_figure_local_usage_has_overtaken(world: dict) -> None:
    use = world["use"]
    a_reset, b_reset, c_reset, _w1, _w2 = world["resets"]
    eng0 = _engine(world)
    dpp = status.build(world["paths"], eng0.records, now=T0 + 36 * H, use_official_file=False)[
        "calibration"
    ]["five_hour"]["dollarsPerPercent"]
    # usage after window B's last figure (60% at T0+35h) and in a new window after its reset
    use.add(T0 + 36 * H, model=OPUS, inp=300_000, out=20_000)
    use.add(T0 + 39 * H, inp=200_000, out=5_000)
    use.add(T0 + 39.5 * H, inp=200_000, out=5_000)
    eng = _engine(world)
    # calibration uses figures and usage up to each figure: unchanged by the new usage
    st = status.build(world["paths"], eng.records, now=T0 + 36.5 * H, use_official_file=False)
    five = next(w for w in st["windows"] if w["window"] == "five_hour")
    assert five["resetsAt"] == c_reset  # the store's newest instance is week 2's window C
    # so judge window B as it stood at T0+36.5h directly
    assert dpp > 0
    extra = use.cost_between(T0 + 35 * H + 1e-3, T0 + 36.5 * H)
    from tokmon.limits.status import window_status

    with history.opened(world["paths"]) as con:
        insts = history.instances(history.observations(con, "claude", "five_hour"))
    inst_b = next(i for i in insts if i.resets_at == b_reset)
    recs = eng.records
    times = [r.ts for r in recs]
    w = window_status(inst_b, T0 + 36.5 * H, recs, times, {"dollarsPerPercent": dpp})
    assert w["basis"] == "estimate"
    assert w["usedPercent"] == pytest.approx(60.0 + extra / dpp)
    # after the reset: the new window opens at the first request (T0+39h)
    w2 = window_status(inst_b, T0 + 40 * H, recs, times, {"dollarsPerPercent": dpp})
    new_cost = use.cost_between(T0 + 39 * H, T0 + 40 * H)
    assert w2["basis"] == "estimate" and w2["officialPercent"] is None
    assert w2["usedPercent"] == pytest.approx(new_cost / dpp)
    assert w2["resetsAt"] == pytest.approx(T0 + 39 * H + 5 * H)
    # without a calibration the old figure is only marked stale
    w3 = window_status(inst_b, T0 + 36.5 * H, recs, times, None)
    assert w3["basis"] == "official" and w3["stale"] is True


def test_statusline_and_cli_end_to_end(world: dict, tmp_path: Path) -> None:
    """The real `tokmon line --claude` records; `tokmon limits --json` shows it with markers."""
    env = world["env"]
    now = datetime.now(timezone.utc).timestamp()
    p = payload(
        "sess-live",
        {
            "five_hour": (33.0, now + 2 * H),
            "seven_day": (20.0, now + 3 * D),
            "seven_day_sonnet": (7.0, now + 3 * D),
        },
    )
    for _ in range(2):  # the second, identical payload adds nothing
        r = run_tokmon(["line", "--claude"], env, input=json.dumps(p))
        assert r.returncode == 0, r.stderr
    world["use"].marker(now - 60, int(now + 3600))
    r = run_tokmon(["limits", "--json"], env)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    live = {w["window"]: w for w in st["windows"] if w["source"] == "claude"}
    assert live["five_hour"]["usedPercent"] == 33.0 and live["five_hour"]["basis"] == "official"
    assert live["seven_day_sonnet"]["usedPercent"] == 7.0
    assert [m["resetsAt"] for m in st["limitReached"]] == [int(now + 3600)]
    with history.opened(world["paths"]) as con:
        rows = [o for o in history.observations(con, "claude") if o.ts > T0 + 30 * D]
    assert len(rows) == 3
    r = run_tokmon(["limits"], {**env, "COLUMNS": "140"})
    assert r.returncode == 0 and "Claude 5-hour" in r.stdout and "Past windows" in r.stdout


def test_codex_windows_are_calibrated_from_codex_usage(tmp_path: Path, env: dict[str, str]) -> None:
    """Codex's official windows learn their cost of one percent from Codex's own turns (not
    Claude's), and after a reset show an estimate from the Codex usage since; figures and
    costs computed here from the published prices."""
    from limits_support import CodexRollout

    codex = tmp_path / "codex"
    env = {**env, "CODEX_HOME": str(codex), "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    (tmp_path / "claude" / "projects").mkdir(parents=True)
    paths = get_paths(env)
    L5, L7 = 5 * H, 7 * D
    r1, r2, week = T0 + 5 * H, T0 + 10 * H, T0 + 7 * D
    roll = CodexRollout(codex / "sessions" / "2026" / "03" / "02" / "rollout-cal.jsonl")
    # primary window 1 (T0 .. T0+5h): three turns, the last figure 30%
    roll.turn(T0 + 1 * H, "gpt-5-codex", 200_000, 150_000, 4_000, (10.0, r1), (2.0, week))
    roll.turn(T0 + 2 * H, "gpt-5-mini", 300_000, 100_000, 9_000, (18.0, r1), (3.0, week))
    roll.turn(T0 + 3 * H, "gpt-5-codex", 500_000, 400_000, 6_000, (30.0, r1), (5.0, week))
    # primary window 2 (T0+5h .. T0+10h): two turns, the last figure 20%
    roll.turn(T0 + 6 * H, "gpt-5-codex", 100_000, 50_000, 2_000, (12.0, r2), (6.0, week))
    roll.turn(T0 + 7 * H, "gpt-5-mini", 400_000, 0, 20_000, (20.0, r2), (8.0, week))
    # after window 2 reset: Codex turns whose figures were never recorded (rate_limits gone)
    later = [(T0 + 10.5 * H, 300_000, 100_000, 5_000), (T0 + 11 * H, 200_000, 0, 1_000)]
    for ts, inp, cached, out in later:
        roll.turn(ts, "gpt-5-codex", inp, cached, out, (0.0, 0.0), (0.0, 0.0))
    # drop those two turns' rate_limits: the history keeps window 2's 20% as the newest figure
    lines = roll.file.read_text().splitlines()
    for i in (-1, -3):
        obj = json.loads(lines[i])
        obj["payload"]["rate_limits"] = None
        lines[i] = json.dumps(obj)
    roll.file.write_text("\n".join(lines) + "\n")

    eng = Engine(paths=paths, env=env, agents=True)
    eng.refresh()
    ingest.ingest(paths, env, [])
    now = T0 + 11.5 * H
    st = status.build(paths, [], now=now, use_official_file=False,
                      others={"codex": eng.records_of("codex")})  # fmt: skip
    # independent: per window, Codex's cost from the window's start to its last figure
    spans5 = [(r1 - L5, T0 + 3 * H, 30.0), (r2 - L5, T0 + 7 * H, 20.0)]
    cost5 = sum(roll.between(lo, hi)[1] for lo, hi, _u in spans5)
    tokens5 = sum(roll.between(lo, hi)[0] for lo, hi, _u in spans5)
    dpp5 = cost5 / 50.0
    cal = st["calibration"]["primary"]
    assert cal["source"] == "codex" and cal["windows"] == 2
    assert cal["dollarsPerPercent"] == pytest.approx(dpp5, rel=1e-9)
    assert cal["tokensPerPercent"] == pytest.approx(tokens5 / 50.0)
    for model in ("gpt-5-codex", "gpt-5-mini"):
        t = sum(roll.between(lo, hi, model)[0] for lo, hi, _u in spans5)
        c = sum(roll.between(lo, hi, model)[1] for lo, hi, _u in spans5)
        assert cal["models"][model]["tokensPerPercent"] == pytest.approx(dpp5 * t / c)
    # the weekly window: one instance, its last figure 8% at T0+7h
    w_tokens, w_cost = roll.between(week - L7, T0 + 7 * H)
    assert st["calibration"]["secondary"]["dollarsPerPercent"] == pytest.approx(w_cost / 8.0)
    assert "five_hour" not in st["calibration"]  # no Claude usage: nothing learned for Claude

    by = {w["window"]: w for w in st["windows"] if w["source"] == "codex"}
    prim = by["primary"]
    # window 2 reset at T0+10h; the estimate counts Codex's cost since then
    since_cost = roll.between(r2, now)[1]
    assert since_cost > 0
    assert prim["basis"] == "estimate" and prim["officialPercent"] is None
    assert prim["usedPercent"] == pytest.approx(since_cost / dpp5)
    assert prim["resetsAt"] == pytest.approx(r2 + L5)
    sec = by["secondary"]  # not reset: the official figure stands
    assert sec["basis"] == "official" and sec["usedPercent"] == 8.0

    # hours later, with no Codex turn since the window rolled on (T0+30h .. now): where Codex
    # opens a window is not in its logs, so no window is shown open, with no reset time
    later_now = T0 + 32 * H
    st_later = status.build(paths, [], now=later_now, use_official_file=False,
                            others={"codex": eng.records_of("codex")})  # fmt: skip
    idle = next(w for w in st_later["windows"] if w["window"] == "primary")
    assert idle["basis"] == "estimate" and idle["usedPercent"] == 0.0
    assert idle["resetsAt"] is None and idle["resetsInSeconds"] is None

    # Claude's calibration never takes Codex's usage: a Claude window with no Claude usage
    record_payload(paths, payload("s", {"five_hour": (40.0, T0 + 14 * H)}), now=T0 + 12 * H)
    st2 = status.build(paths, [], now=now, use_official_file=False,
                       others={"codex": eng.records_of("codex")})  # fmt: skip
    assert "five_hour" not in st2["calibration"]

    # end to end: `tokmon limits --json` reads Codex through its store and learns the same
    r = run_tokmon(["limits", "--json", "--no-alerts"], env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["calibration"]["primary"]
    assert got["dollarsPerPercent"] == pytest.approx(dpp5, rel=1e-9)


def test_history_outlives_the_logs_and_stays_compact(world: dict, tmp_path: Path) -> None:
    """The figures read from Codex rollouts and the limit-reached markers stay once the logs
    are gone; a year of figures every 10 minutes keeps one row per change, ~100 bytes each."""
    import shutil

    from tokmon.limits.history import Obs

    paths = world["paths"]
    world["use"].marker(T0 + 13 * H, int(T0 + 14 * H))
    ingest.ingest(paths, world["env"], [world["projects"]])
    with history.opened(paths) as con:
        before = (history.observations(con), history.markers(con))
    assert any(o.source == "codex" for o in before[0]) and before[1]
    shutil.rmtree(tmp_path / "codex")
    shutil.rmtree(world["projects"])
    world["projects"].mkdir()
    ingest.ingest(paths, world["env"], [world["projects"]])
    with history.opened(paths) as con:
        assert (history.observations(con), history.markers(con)) == before
        n0 = con.execute("SELECT count(*) FROM obs").fetchone()[0]

    # a year: the 5-hour figure climbs in whole percents while in use and resets every 5 h,
    # the weekly one climbs slowly; observed every 10 minutes, mostly unchanged
    step, year0 = 600.0, T0 + 30 * D
    seen: dict[str, tuple[float, float]] = {}
    changes = 0
    batch: list[Obs] = []
    for i in range(int(365 * D / step)):
        ts = year0 + i * step
        five_start = year0 + ((ts - year0) // (5 * H)) * 5 * H
        week_start = year0 + ((ts - year0) // (7 * D)) * 7 * D
        figs = {
            "five_hour": (float(int((ts - five_start) / H * 2)), five_start + 5 * H),
            "seven_day": (float(int((ts - week_start) / D * 4)), week_start + 7 * D),
        }
        for window, (used, resets) in figs.items():
            if seen.get(window) != (used, resets):
                changes += 1
                seen[window] = (used, resets)
            batch.append(Obs(ts, "claude", window, used, resets, 5 * H if window == "five_hour"
                             else 7 * D))  # fmt: skip
    with history.opened(paths) as con:
        added = history.append(con, batch)
        assert added == changes
        assert con.execute("SELECT count(*) FROM obs").fetchone()[0] == n0 + changes
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = sum(p.stat().st_size for p in history.db_path(paths).parent.glob("limits.sqlite*"))
    assert changes < len(batch) / 4  # most observations repeat the stored figure
    assert size / changes < 120, (size, changes)
