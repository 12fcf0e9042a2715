"""Stored rollups (tokmon.core.rollups) against the record path, on real SQLite files.

The reference is always the record path over the same records: ``Queries._filtered`` (the
engine's own filters), then ``aggregate.group`` / ``period_rows`` / ``session_rows`` /
``compute_blocks``. Rollups are fed through a small SQLite record table standing in for the
store (``records_between`` is an indexed SELECT), and incremental feeding (random order, chunks,
dedup replacements, out-of-order arrivals, removals) must give exactly the tables of one bulk
build.
"""

from __future__ import annotations

import math
import random
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus_path, need_agents_corpus, need_corpus
from rollups_support import RecordTable
from test_agents_incremental import copytree

from tokmon.core import aggregate
from tokmon.core.blocks import compute_blocks
from tokmon.core.engine import Engine
from tokmon.core.model import Block, UsageRecord
from tokmon.core.rollups import SCHEMA_VERSION, Rollups
from tokmon.core.timeutil import DateKeyer, resolve_tz
from tokmon.demo import generate
from tokmon.paths import get_paths

END = datetime(2026, 3, 1, 17, 0, tzinfo=timezone.utc)
# None: the local zone (the engine's default when the config names none)
ZONES = [None, "UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Kiritimati"]
COST_TOL = 1e-6  # picodollar sums vs float sums in record order


def open_db(path: Path) -> tuple[sqlite3.Connection, RecordTable, Rollups]:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    table = RecordTable(conn)
    return conn, table, Rollups(conn, table.between)


def bulk(path: Path, by_agent: dict[str, list[UsageRecord]]) -> Rollups:
    conn, table, ru = open_db(path)
    for agent, recs in by_agent.items():
        for r in recs:
            table.put(agent, r)
    ru.rebuild(by_agent)
    conn.commit()
    return ru


def dump(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'rollup_%'"
        )
    ]
    return {n: sorted(conn.execute(f"SELECT * FROM {n}").fetchall()) for n in sorted(names)}


# ---- comparing groups and rows --------------------------------------------------------------


def acc_view(a: aggregate.Acc) -> tuple[Any, ...]:
    return (a.i, a.o, a.cc, a.cr, a.n, a.first, a.last)


def assert_groups(got: dict[str, aggregate.Acc], want: dict[str, aggregate.Acc]) -> None:
    assert list(sorted(got)) == list(sorted(want))
    for k, w in want.items():
        g = got[k]
        assert acc_view(g) == acc_view(w), k
        assert math.isclose(g.cost, w.cost, abs_tol=COST_TOL), k
        assert set(g.models or {}) == set(w.models or {}), k
        for m, wm in (w.models or {}).items():
            gm = (g.models or {})[m]
            assert acc_view(gm) == acc_view(wm), (k, m)
            assert math.isclose(gm.cost, wm.cost, abs_tol=COST_TOL), (k, m)


def assert_same(got: Any, want: Any, where: str = "") -> None:
    """Equal JSON-like values (typed rows compared by their JSON), floats within COST_TOL."""
    if hasattr(want, "to_json"):
        got, want = got.to_json(), want.to_json()
    if isinstance(want, float) or isinstance(got, float):
        assert math.isclose(got, want, abs_tol=COST_TOL), where
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    else:
        assert got == want, where


def assert_blocks(got: list[Block], want: list[Block]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert_same(g.to_json(), w.to_json(), f"block {w.start}")


# ---- the record path ------------------------------------------------------------------------


def period_key(kind: str, tz: str | None, sow: str | None) -> Any:
    keyer = DateKeyer(resolve_tz(tz))
    if kind == "daily":
        return keyer.day
    if kind == "monthly":
        return keyer.month
    from tokmon.core.timeutil import WEEKDAYS

    i = WEEKDAYS.index(sow or "sunday")
    return lambda ts: keyer.week(ts, i)


def check_periods(eng: Engine, ru: Rollups, agent: str, engine_agent: str | None) -> None:
    """Every period kind, zone and filter: rollups == group() over Queries._filtered."""
    recs = eng.records_of(engine_agent)
    assert recs, agent
    days = sorted({DateKeyer(resolve_tz("UTC")).day(r.ts) for r in recs})
    mid = days[len(days) // 2].replace("-", "")
    since_until = [
        (None, None),
        (mid, None),
        (None, mid),
        (days[min(1, len(days) - 1)].replace("-", ""), mid),
    ]
    projects = sorted({r.project for r in recs})
    proj = aggregate.project_name(projects[-1]) if projects else None
    sessions = sorted({r.session_id for r in recs})
    for tz in ZONES:
        for since, until in since_until:
            for project, session in ((None, None), (proj, None), (None, sessions[0])):
                want_recs = eng._filtered(since, until, project, tz, session, engine_agent)
                for kind, sow in (
                    ("daily", None),
                    ("weekly", None),
                    ("weekly", "monday"),
                    ("monthly", None),
                ):
                    want = aggregate.group(want_recs, time_key=period_key(kind, tz, sow))
                    got = ru.periods(kind, agent, tz, since, until, project, session, sow)
                    assert_groups(got, want)
                    for order in ("asc", "desc"):
                        assert_same(
                            aggregate.period_rows(got, "date", "daily", order),
                            aggregate.period_rows(want, "date", "daily", order),
                            f"{agent} {kind} {tz} {since} {until} {project} {session}",
                        )


def check_sessions(eng: Engine, ru: Rollups, agent: str, engine_agent: str | None) -> None:
    recs = eng.records_of(engine_agent)
    days = sorted({DateKeyer(resolve_tz("UTC")).day(r.ts) for r in recs})
    mid = days[len(days) // 2].replace("-", "")
    projects = sorted({r.project for r in recs if r.project})
    now = recs[-1].ts + 60
    cases: list[tuple[str | None, str | None, str | None]] = [(None, None, None), (mid, None, None)]
    cases += [(None, mid, None), (None, None, aggregate.project_name(projects[0]))]
    if len(projects) > 1:
        cases.append((None, None, projects[1]))
    for tz in ("UTC", "Asia/Kathmandu"):
        for since, until, project in cases:
            want_recs = eng._filtered(since, until, project, tz, None, engine_agent)
            groups, sproj = ru.sessions(agent, tz, since, until, project)
            want_groups = aggregate.group(want_recs, lambda r: r.session_id)
            assert_groups(groups, want_groups)
            got_rows = aggregate.session_rows_of(groups, sproj, {}, now)
            want_rows = aggregate.session_rows(want_recs, {}, now)
            key = lambda r: r.session_id  # noqa: E731
            assert_same(sorted(got_rows, key=key), sorted(want_rows, key=key), f"{agent} {tz}")


def check_recent_sessions(eng: Engine, ru: Rollups, agent: str, engine_agent: str | None) -> None:
    """The summary's recent sessions (a record in the last block length, none far ahead) and
    their whole groups, as Queries.summary picks them from the records."""
    recs = eng.records_of(engine_agent)
    bs, slack = 5 * 3600.0, 86400.0
    for now in [recs[j].ts + d for j in (0, len(recs) // 2, -1) for d in (0.0, 600.0, bs)]:
        want = {r.session_id for r in recs if now - r.ts < bs and r.ts <= now + slack}
        assert ru.active_sessions(agent, now - bs, now + slack) == want
        small = {r.session_id for r in recs if now - 300 < r.ts <= now}
        assert ru.active_sessions(agent, now - 300, now) == small
        groups, projects = ru.sessions(agent, only=want)
        sub = [r for r in recs if r.session_id in want]
        assert_groups(groups, aggregate.group(sub, lambda r: r.session_id))
        assert_same(
            sorted(aggregate.session_rows_of(groups, projects, {}, now), key=str),
            sorted(aggregate.session_rows(sub, {}, now), key=str),
        )


def check_blocks_and_sums(eng: Engine, ru: Rollups, agent: str, engine_agent: str | None) -> None:
    recs = eng.records_of(engine_agent)
    for now in (recs[-1].ts + 60, recs[len(recs) // 2].ts + 1, recs[0].ts - 10, 4e9):
        assert_blocks(ru.blocks(agent, now), compute_blocks(recs, now))
    t = recs[len(recs) // 3].ts
    bounds = [
        (t - 86400, t),
        (t - 7 * 86400 + 123.5, t + 77.25),  # unaligned: partial buckets from the records
        (float(int(t // 900) * 900), t + 40 * 86400),
        (float("-inf"), float("inf")),
    ]
    got = ru.period_sums(agent, bounds)
    for acc, (lo, hi) in zip(got, bounds, strict=True):
        want = aggregate.totals(r for r in recs if lo <= r.ts < hi)
        assert (acc.i, acc.o, acc.cc, acc.cr, acc.n) == (want.i, want.o, want.cc, want.cr, want.n)
        assert math.isclose(acc.cost, want.cost, abs_tol=COST_TOL)
    tot = ru.totals(agent)
    assert aggregate.totals_of(tot).to_json()["totalTokens"] == sum(r.total_tokens for r in recs)


# ---- corpora --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gen_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("gen")
    generate(root / "claude", size_mb=16, seed=11, end=END, days=24)
    eng = Engine(
        roots=[root / "claude" / "projects"],
        paths=get_paths({"TOKMON_HOME": str(root / "home")}),
        persist=False,
    )
    eng.refresh()
    return eng


@pytest.fixture(scope="module")
def gen_rollups(gen_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Rollups:
    return bulk(tmp_path_factory.mktemp("db") / "r.db", {"claude": gen_engine.records})


def test_generated_periods_equal_record_path(gen_engine: Engine, gen_rollups: Rollups) -> None:
    check_periods(gen_engine, gen_rollups, "claude", None)


def test_generated_sessions_equal_record_path(gen_engine: Engine, gen_rollups: Rollups) -> None:
    check_sessions(gen_engine, gen_rollups, "claude", None)
    check_recent_sessions(gen_engine, gen_rollups, "claude", None)


def test_generated_blocks_and_summary_equal_record_path(
    gen_engine: Engine, gen_rollups: Rollups
) -> None:
    check_blocks_and_sums(gen_engine, gen_rollups, "claude", None)


def test_real_corpus_equals_record_path(tmp_path: Path) -> None:
    root = corpus_path()
    if not root.is_dir():
        need_corpus(root)
    eng = Engine(
        roots=[root / "projects"],
        paths=get_paths({"TOKMON_HOME": str(tmp_path / "home")}),
        persist=False,
    )
    eng.refresh()
    ru = bulk(tmp_path / "r.db", {"claude": eng.records})
    check_periods(eng, ru, "claude", None)
    check_sessions(eng, ru, "claude", None)
    check_recent_sessions(eng, ru, "claude", None)
    check_blocks_and_sums(eng, ru, "claude", None)


def test_agents_corpus_equals_record_path(tmp_path: Path) -> None:
    src = need_agents_corpus()
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    for name, var in (
        ("codex", "CODEX_HOME"),
        ("opencode", "OPENCODE_DATA_DIR"),
        ("amp", "AMP_DATA_DIR"),
        ("copilot", "COPILOT_HOME"),
    ):
        env[var] = str(copytree(src / name, tmp_path / name))
    eng = Engine(
        roots=[tmp_path / "no-claude"],
        paths=get_paths({"TOKMON_HOME": str(tmp_path / "tokmon")}),
        env=env,
        agents=True,
        persist=False,
    )
    eng.refresh()
    names = eng.agent_names()[1:]
    assert len(names) >= 3, names
    ru = bulk(tmp_path / "r.db", {n: eng.records_of(n) for n in names})
    assert sorted(ru.agents()) == sorted(names)
    for n in names:
        check_periods(eng, ru, n, n)
        check_sessions(eng, ru, n, n)
        check_recent_sessions(eng, ru, n, n)
        check_blocks_and_sums(eng, ru, n, n)


# ---- incremental == bulk --------------------------------------------------------------------


def partial_of(r: UsageRecord, rng: random.Random) -> UsageRecord:
    """An earlier streaming copy of ``r``: same dedup key, less output, maybe another time."""
    ts = r.ts if rng.random() < 0.5 else r.ts - rng.choice([0.5, 30.0, 900.0, 5400.0, 7 * 3600.0])
    return r._replace(
        ts=max(ts, 1.0), output_tokens=r.output_tokens // 3, cost=r.cost / 3, model=r.model
    )


def check_state(ru: Rollups, table: RecordTable, agent: str) -> None:
    """Blocks, sessions (with their projects) and totals equal the record path over the
    records the table holds now."""
    recs = sorted(table.between(agent, 0.0, 1e10), key=lambda r: (r.ts, r.key))
    now = recs[-1].ts + 30 if recs else 1e9
    assert_blocks(ru.blocks(agent, now), compute_blocks(recs, now))
    groups, projects = ru.sessions(agent)
    assert_groups(groups, aggregate.group(recs, lambda r: r.session_id))
    want_projects = {}
    for r in recs:
        if r.project:
            want_projects[r.session_id] = r.project
    assert projects == want_projects
    assert_groups({"": ru.totals(agent)}, {"": aggregate.group(recs, lambda r: "")[""]})


def feed(
    path: Path, agent: str, recs: list[UsageRecord], seed: int, check_each: bool = False
) -> tuple[sqlite3.Connection, Rollups]:
    """Feed ``recs`` in random order and chunks, each first as a partial copy (replaced later,
    some in the same chunk), plus stray records removed again; ``check_each``: compare with
    the record path after every chunk."""
    rng = random.Random(seed)
    conn, table, ru = open_db(path)
    events: list[tuple[str, UsageRecord]] = []
    for r in recs:
        if rng.random() < 0.3:
            events.append(("put", partial_of(r, rng)))
        events.append(("put", r))
        if rng.random() < 0.02:
            stray = r._replace(key=r.key + ":stray", ts=r.ts + rng.uniform(-20000, 20000))
            events += [("put", stray), ("del", stray)]
    # random order, but each record's partial before its final version, a stray's put before del
    order = list(range(len(events)))
    rng.shuffle(order)
    seen: dict[str, list[int]] = {}
    for i, (_, r) in enumerate(events):
        seen.setdefault(r.key, []).append(i)
    slots: dict[str, list[int]] = {k: sorted(order[j] for j in v) for k, v in seen.items()}
    placed: list[tuple[int, tuple[str, UsageRecord]]] = []
    for k, idxs in seen.items():
        for slot, j in zip(slots[k], idxs, strict=True):
            placed.append((slot, events[j]))
    placed.sort(key=lambda p: p[0])
    i = 0
    while i < len(placed):
        n = rng.choice([1, 3, 17, 100, 400])
        deltas: list[tuple[UsageRecord | None, UsageRecord | None]] = []
        for _, (op, r) in placed[i : i + n]:
            prev = table.get(agent, r.key)
            if op == "put":
                if prev is not None and prev.output_tokens > r.output_tokens:
                    continue  # the ledger keeps the copy with more output
                table.put(agent, r)
                deltas.append((prev, r))
            else:
                table.delete(agent, r.key)
                deltas.append((prev, None))
        ru.apply(agent, deltas)
        conn.commit()
        if check_each:
            check_state(ru, table, agent)
        i += n
    return conn, ru


def messy(recs: list[UsageRecord], seed: int) -> list[UsageRecord]:
    """Records whose sessions change cwd or lose it now and then (the session's project is the
    cwd of its latest record that has one)."""
    rng = random.Random(seed)
    out = []
    for r in recs:
        x = rng.random()
        if x < 0.1:
            r = r._replace(project="")
        elif x < 0.2:
            r = r._replace(project=f"/work/other{rng.randrange(3)}")
        out.append(r)
    return out


def test_incremental_feeding_equals_bulk_build(gen_engine: Engine, tmp_path: Path) -> None:
    recs = messy(gen_engine.records, 5)
    want = bulk(tmp_path / "bulk.db", {"claude": recs})
    for seed in (1, 2, 3):
        conn, ru = feed(tmp_path / f"inc{seed}.db", "claude", recs, seed, check_each=seed == 1)
        got_tables, want_tables = dump(conn), dump(want.conn)
        for name in want_tables:
            assert got_tables[name] == want_tables[name], name
        now = recs[-1].ts + 30
        assert_blocks(ru.blocks("claude", now), compute_blocks(recs, now))


def test_tail_appends_and_reopen(gen_engine: Engine, tmp_path: Path) -> None:
    """Appending the history oldest first in one-record batches (the live case), reopening the
    database in between, gives the bulk tables; reopening keeps the schema. An append reads no
    record back (only one at the very time of the previous one regroups its block); the
    streaming case, the newest record replaced by a copy with more output at the same time,
    reads only its block's records (never a cell's)."""
    recs = gen_engine.records[:1500]
    want = dump(bulk(tmp_path / "bulk.db", {"claude": recs}).conn)
    path = tmp_path / "tail.db"
    reads = 0
    cell_reads = 0

    def opened() -> tuple[sqlite3.Connection, RecordTable, Rollups]:
        conn, table, ru = open_db(path)

        def counted(agent: str, t0: float, t1: float, sid: str | None = None) -> Any:
            nonlocal reads, cell_reads
            reads += 1
            cell_reads += sid is not None
            return table.between(agent, t0, t1, sid)

        ru.records_between = counted
        return conn, table, ru

    conn, table, ru = opened()
    assert ru.fresh
    replaced = 0
    for j, r in enumerate(recs):
        if j % 10 == 3:  # first a streaming copy with less output, then the final record
            part = r._replace(output_tokens=r.output_tokens // 2, cost=r.cost / 2)
            table.put("claude", part)
            ru.apply("claude", [(None, part)])
            table.put("claude", r)
            ru.apply("claude", [(part, r)])
            replaced += 1
        else:
            table.put("claude", r)
            ru.apply("claude", [(None, r)])
        if j == 700:
            conn.commit()
            conn.close()
            conn, table, ru = opened()
            assert not ru.fresh
    conn.commit()
    assert dump(conn) == want
    ties = sum(1 for a, b in zip(recs, recs[1:], strict=False) if a.ts == b.ts)
    assert cell_reads == 0
    assert reads <= ties + replaced


def test_schema_version_change_drops_tables(tmp_path: Path, gen_engine: Engine) -> None:
    path = tmp_path / "v.db"
    bulk(path, {"claude": gen_engine.records[:50]}).conn.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE rollup_meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    ru = Rollups(conn, RecordTable(conn).between)
    assert ru.fresh
    assert conn.execute("SELECT count(*) FROM rollup_cell").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM rec").fetchone() == (50,)  # records untouched
    ru.clear()
    assert ru.daily("claude", "UTC") == {}


def test_empty_and_unknown(tmp_path: Path) -> None:
    conn, _, ru = open_db(tmp_path / "e.db")
    assert ru.daily("claude", "UTC") == {}
    assert ru.sessions("claude") == ({}, {})
    assert ru.blocks("claude", 1e9) == []
    assert ru.totals("claude").n == 0
    assert ru.periods("daily", "claude", "UTC", project="nope") == {}
    with pytest.raises(ValueError):
        ru.periods("hourly", "claude")


def rec(ts: float, key: str, sid: str = "s1", project: str = "/p", out: int = 10) -> UsageRecord:
    return UsageRecord(ts, sid, project, "claude-sonnet-4-5", 1, out, 2, 0, 3, key, out * 1e-4)


def test_blocks_merge_split_and_move(tmp_path: Path) -> None:
    """Hand-made block histories where one change regroups the blocks after it: a record in a
    gap starts a block that swallows the next one (and that one the next), its removal splits
    them again, a block's first record replaced by a later copy moves the block's start."""
    h = 3600.0
    day = 1_700_000_000.0 - 1_700_000_000.0 % 86400
    conn, table, ru = open_db(tmp_path / "b.db")

    def step(*deltas: tuple[UsageRecord | None, UsageRecord | None]) -> None:
        for old, new in deltas:
            if new is not None:
                table.put("claude", new)
            elif old is not None:
                table.delete("claude", old.key)
        ru.apply("claude", deltas)
        check_state(ru, table, "claude")

    a = rec(day + 6 * h + 600, "a")
    b1, b2 = rec(day + 16 * h, "b1"), rec(day + 17 * h, "b2", sid="s2")
    c = rec(day + 21.5 * h, "c", project="")
    for r in (c, b2, a, b1):
        step((None, r))
    assert len([b for b in ru.blocks("claude", 0) if not b.is_gap]) == 3
    x = rec(day + 11.5 * h, "x", sid="s2", project="/q")
    step((None, x))  # 11:00 block takes 16:00; 17:00 starts a block that takes 21:30
    assert [b.entries for b in ru.blocks("claude", 0) if not b.is_gap] == [1, 2, 2]
    step((x, None))
    assert [b.entries for b in ru.blocks("claude", 0) if not b.is_gap] == [1, 2, 1]
    a2 = a._replace(ts=day + 9 * h, output_tokens=99)  # the same key, later, more output
    step((a, a2))
    step((None, rec(day + 14.5 * h, "y")))
    step((b1, b1._replace(ts=day + 20 * h, output_tokens=50)))
    got = dump(conn)
    recs = list(table.between("claude", 0.0, 1e10))
    assert got == dump(bulk(tmp_path / "bulk.db", {"claude": recs}).conn)


DST_ZONES = [
    "America/New_York",
    "America/Havana",  # clocks change at midnight
    "America/Santiago",  # at 24:00
    "Asia/Beirut",  # at midnight
    "Australia/Lord_Howe",  # a 30-minute DST step
    "Europe/London",
    "Asia/Kathmandu",
    "Pacific/Kiritimati",  # +14
    "Pacific/Pago_Pago",  # -11
]


def test_periods_across_zone_changes(tmp_path: Path) -> None:
    """Days, weeks and months of zones whose offsets change (at night, at midnight, by half an
    hour) or are extreme: records every few minutes around each 2026 change, and at both ends
    of the accepted time range, equal the record path."""
    recs: list[UsageRecord] = []
    windows = [("2026-03-06", 10), ("2026-03-26", 12), ("2026-09-02", 10), ("2026-10-23", 14)]
    for start, days in windows:
        t = datetime.fromisoformat(start).replace(tzinfo=timezone.utc).timestamp()
        end = t + days * 86400
        j = 0
        while t < end:
            model = "claude-opus-4-1" if j % 5 == 0 else "claude-sonnet-4-5"
            recs.append(
                UsageRecord(
                    t, f"s{j // 40}", f"/p/{j % 3}", model, j, 2, 3, 0, 4, f"k{t}", j * 1e-5
                )
            )
            t += 431 + (j % 7) * 97
            j += 1
    # a sparse history: the first and the last second the ledger accepts (1970, 2199)
    for t in (1.0, 7258118399.0):
        recs.append(UsageRecord(t, "edge", "/p/1", "m", 1, 1, 0, 0, 0, f"edge{t}", 0.5))
    recs.sort(key=lambda r: r.ts)
    ru = bulk(tmp_path / "z.db", {"claude": recs})
    for tz in DST_ZONES:
        keyer = DateKeyer(resolve_tz(tz))
        for kind, sow in (("daily", None), ("weekly", "monday"), ("monthly", None)):
            want = aggregate.group(recs, time_key=period_key(kind, tz, sow))
            assert_groups(ru.periods(kind, "claude", tz, start_of_week=sow), want)
        want = aggregate.group(
            [r for r in recs if "2026-03-07" <= keyer.day(r.ts) <= "2026-11-01"],
            time_key=keyer.day,
        )
        assert_groups(ru.daily("claude", tz, since="20260307", until="20261101"), want)
        sub = [r for r in recs if r.project == "/p/1"]
        assert_groups(ru.daily("claude", tz, project="1"), aggregate.group(sub, time_key=keyer.day))
