"""The warm change check (engine/check.py): a refresh that compares each transcript's stat with
the mirror of the ledger's file states instead of loading them must end in exactly the ledger
the full check gives, for every kind of change, and never use a mirror that is not the
database's. The flat walk's tests run twice: with Python's ``os.stat`` and with the native
stat check (tokmon._native._stat, POSIX), which must agree on every path."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import assistant_line, settle_clock, write_lines

from tokmon.core import discovery
from tokmon.core.engine import Engine
from tokmon.core.engine import check as check_mod
from tokmon.core.engine.check import Checked
from tokmon.core.ledger import LedgerDB
from tokmon.paths import get_paths

T0 = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _native_stat() -> Any:
    """The native stat check; skip without it (fail under CI=true on POSIX, which builds it)."""
    if os.name != "posix":
        pytest.skip("the native stat check is POSIX only")
    try:
        from tokmon._native import _stat
    except ImportError:
        if CI:
            pytest.fail("tokmon._native._stat is not built")
        pytest.skip("the native stat check is not built")
    return _stat


class StatPath:
    """Which stat calls the flat walk makes in a test, and how often the native check ran."""

    def __init__(self, native: bool) -> None:
        self.native = native
        self.calls = 0


@pytest.fixture(params=["python", "native"])
def stat_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> StatPath:
    """The flat walk's check by ``os.stat`` (as on Windows) or by the native stat check."""
    path = StatPath(request.param == "native")
    if path.native:
        real = _native_stat().check

        def counted(*a: Any) -> Any:
            path.calls += 1
            return real(*a)

        monkeypatch.setattr(check_mod, "_native_check", counted)
    else:
        monkeypatch.setattr(check_mod, "_native_check", None)
    return path


def _line(i: int, session: str = "s1", out: int | None = None) -> str:
    return assistant_line(
        T0 + timedelta(minutes=i),
        msg_id=f"m{i}",
        req_id=f"r{i}",
        session=session,
        out=100 + i if out is None else out,
    )


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "claude" / "projects"
    write_lines(root / "-a" / "s1.jsonl", [_line(1), _line(2)])
    write_lines(root / "-a" / "s1" / "subagents" / "agent-x.jsonl", [_line(3)])
    write_lines(root / "-b" / "s2.jsonl", [_line(4, "s2"), _line(5, "s2")])
    return root


def _engine(root: Path, home: Path, full: bool = False) -> Engine:
    env = {"TOKMON_HOME": str(home)}
    if full:
        env["TOKMON_NO_LISTING_CACHE"] = "1"
    eng = Engine(roots=[root], paths=get_paths(env), env=env)
    eng.short_lived = True  # as a CLI report's
    return eng


def _refresh(root: Path, home: Path, full: bool = False) -> tuple[Any, bool]:
    """One refresh by a new engine (a new report run): its changes and whether the file
    states were loaded (False: the mirror answered)."""
    eng = _engine(root, home, full)
    try:
        ch = eng.refresh()
        return ch, eng.ledger.files_loaded
    finally:
        eng.close()


def _ledger(home: Path) -> tuple[list[Any], list[Any], int]:
    """The records, the file states and the output tokens of the ledger under ``home``."""
    (db,) = (home / "data").glob("ledger-*.sqlite3")
    conn = sqlite3.connect(db)
    try:
        recs = conn.execute(
            "SELECT ts, session, project, model, input, output, cc, c1h, cr, key, cost "
            "FROM records ORDER BY key"
        ).fetchall()
        files = conn.execute("SELECT * FROM files ORDER BY path").fetchall()
    finally:
        conn.close()
    return recs, files, sum(r[5] for r in recs)


def _append(root: Path) -> None:
    write_lines(root / "-a" / "s1.jsonl", [_line(6)])


def _append_mtime_kept(root: Path) -> None:
    f = root / "-b" / "s2.jsonl"
    st = f.stat()
    write_lines(f, [_line(7, "s2")])
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))


def _truncate(root: Path) -> None:
    f = root / "-a" / "s1.jsonl"
    data = f.read_bytes()
    f.write_bytes(data[: data.index(b"\n") + 1])  # the first line only: shrunk


def _truncate_regrow(root: Path) -> None:
    f = root / "-a" / "s1.jsonl"
    data = f.read_bytes()
    with open(f, "r+b") as fh:
        fh.truncate(data.index(b"\n") + 1)
    write_lines(f, [_line(8), _line(9), _line(10)])  # longer than before: not a shrink


def _rewrite_same_size(root: Path) -> None:
    f = root / "-b" / "s2.jsonl"
    data = f.read_bytes()
    new = data.replace(b'"output_tokens":104', b'"output_tokens":904')
    assert new != data and len(new) == len(data)
    with open(f, "r+b") as fh:  # in place: the same inode and size, a new mtime
        fh.write(new)


def _replace_same_stat(root: Path) -> None:
    """A new file put in place with the old one's size and mtime: only the inode differs."""
    f = root / "-b" / "s2.jsonl"
    st = f.stat()
    data = f.read_bytes().replace(b'"output_tokens":104', b'"output_tokens":704')
    assert len(data) == st.st_size
    tmp = f.with_name("s2.tmp")
    tmp.write_bytes(data)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, f)


def _new_file(root: Path) -> None:
    write_lines(root / "-b" / "s3.jsonl", [_line(11, "s3")])


def _new_dir(root: Path) -> None:
    write_lines(root / "-c" / "s4" / "subagents" / "agent-y.jsonl", [_line(12, "s4")])


def _deleted(root: Path) -> None:
    (root / "-a" / "s1" / "subagents" / "agent-x.jsonl").unlink()


def _touched(root: Path) -> None:
    os.utime(root / "-a" / "s1.jsonl", ns=(0, 0))  # nothing new: only the mtime


CHANGES: dict[str, Callable[[Path], None]] = {
    "append": _append,
    "append, mtime kept": _append_mtime_kept,
    "truncate": _truncate,
    "truncate and regrow": _truncate_regrow,
    "rewrite, same size": _rewrite_same_size,
    "replaced, same size and mtime": _replace_same_stat,
    "new file": _new_file,
    "new directory": _new_dir,
    "deleted file": _deleted,
    "mtime only": _touched,
}


@pytest.mark.parametrize("kept_listings", [False, True], ids=["relisted", "kept-listings"])
@pytest.mark.parametrize("change", list(CHANGES))
def test_the_mirror_ends_in_the_full_checks_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str, kept_listings: bool
) -> None:
    if kept_listings:  # directories listed once and reused (no racy margin: _settle instead)
        monkeypatch.setattr(discovery, "RACY_NS", 0)
    root = _tree(tmp_path)
    quick, full = tmp_path / "quick", tmp_path / "full"
    settle_clock(tmp_path)
    for home in (quick, full):
        _refresh(root, home)  # cold: writes the mirror
    ch, loaded = _refresh(root, quick)  # warm, nothing changed: the mirror answers
    assert (ch.files_checked, ch.files_read, loaded) == (3, 0, False)
    before = _ledger(quick)
    assert before[2] == 101 + 102 + 103 + 104 + 105
    settle_clock(tmp_path)
    CHANGES[change](root)
    ch_q, loaded = _refresh(root, quick)
    ch_f, _ = _refresh(root, full, full=True)
    after = _ledger(quick)
    assert after == _ledger(full)  # records and file states: what the full check gives
    assert (ch_q.new_records, ch_q.files_read) == (ch_f.new_records, ch_f.files_read)
    assert ch_q.files_checked == ch_f.files_checked
    # the full check runs only when a transcript of the ledger went
    assert loaded is (change == "deleted file")
    assert after != before, "the change was not seen"  # every change moves a file state
    # and the next run is quick again, finding nothing new
    ch, loaded = _refresh(root, quick)
    assert (ch.files_read, ch.new_records, loaded) == (0, 0, False)
    assert _ledger(quick) == after


def test_a_mirror_not_of_this_database_is_not_used(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    home = tmp_path / "home"
    _refresh(root, home)
    (mirror,) = (home / "cache").glob("ledger-*.checked.json")
    good = mirror.read_bytes()
    _append(root)
    # another process wrote since (a new generation): the mirror says nothing of it
    other = _engine(root, tmp_path / "home")
    try:
        other.refresh()
        mirror.write_bytes(good)  # as if that process had not written a new one
    finally:
        other.close()
    write_lines(root / "-b" / "s2.jsonl", [_line(13, "s2")])
    ch, loaded = _refresh(root, home)
    assert (ch.new_records, loaded) == (1, True)
    # torn, foreign or malformed: never used, never a crash
    a_dir = str(root / "-a")

    def mirror_of(stamp: Any, dirs: Any, v: int = 1) -> bytes:  # as Checked.save writes it
        return orjson.dumps({"v": v, "db": stamp, "dirs": dirs})

    bodies: list[Callable[[Any], bytes]] = [
        lambda stamp: b"",
        lambda stamp: b"{",
        lambda stamp: b"[]",
        lambda stamp: mirror_of(stamp, {}, v=2),
        lambda stamp: mirror_of("x", {}),
        lambda stamp: mirror_of(stamp, {}),  # nothing known
        lambda stamp: mirror_of(stamp, {"x": 1}),
        lambda stamp: mirror_of(stamp, {a_dir: {"s1.jsonl": 5}}),
        lambda stamp: mirror_of(stamp, {a_dir: {"s1.jsonl": "abcd"}}),
        lambda stamp: mirror_of(stamp, {a_dir: {"s1.jsonl": [1]}}),
        lambda stamp: mirror_of(stamp, {a_dir: []}),
        lambda stamp: mirror_of(stamp, {a_dir: {"s1.jsonl": None}}),
        lambda stamp: mirror_of(stamp, {}) + b"garbage",
        # its stamp right, then nested past the recursion limit of the standard json
        lambda stamp: mirror_of(stamp, {})[:-3] + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ]
    for n, body in enumerate(bodies):
        checked = Checked.load(mirror)  # the good one the last refresh wrote
        assert checked is not None
        mirror.write_bytes(body(checked.stamp))
        write_lines(root / "-b" / "s2.jsonl", [_line(30 + n, "s2")])
        ch, _ = _refresh(root, home)
        assert ch.new_records == 1, n
    _refresh(root, home)  # a full check: a good mirror again
    ch, loaded = _refresh(root, home)
    assert (ch.files_read, loaded) == (0, False)


def test_no_mirror_when_switched_off_not_persisted_or_long_lived(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    home = tmp_path / "home"
    _refresh(root, home, full=True)
    assert not list((home / "cache").glob("ledger-*.checked.json"))
    assert not list((home / "cache").glob("ledger-*.flat"))
    # a long-lived engine (the server's, watch's) keeps its file states loaded, as before
    lasting = tmp_path / "lasting"
    for _ in range(2):
        eng = Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(lasting)}), env={})
        try:
            eng.refresh()
            assert eng.ledger.files_loaded
        finally:
            eng.close()
    assert not list((lasting / "cache").glob("ledger-*.checked.json"))
    assert not list((lasting / "cache").glob("ledger-*.flat"))
    env = {"TOKMON_HOME": str(tmp_path / "mem")}
    eng = Engine(roots=[root], paths=get_paths(env), env=env, persist=False)
    try:
        assert eng.refresh().files_read == 3
    finally:
        eng.close()
    assert not (tmp_path / "mem" / "cache").exists() or not list(
        (tmp_path / "mem" / "cache").glob("*.checked.json")
    )


def test_lazy_file_states_after_close_and_invalid_rows(tmp_path: Path) -> None:
    """A lazily loaded ledger still reads its file states once its connection is closed; the
    states fetched by path drop invalid rows as the whole load does."""
    db = LedgerDB(tmp_path / "l.sqlite3")
    db.conn.execute(
        "INSERT INTO files VALUES ('/ok.jsonl', 1, 2, 30, 40, 30, 'fp'),"
        " ('/neg.jsonl', 1, -2, 30, 40, 30, ''), ('/off.jsonl', 1, 2, 30, 40, -1, '')"
    )
    db.conn.execute("INSERT INTO titles VALUES ('s', 'ai-title', 'T')")
    dropped: list[int] = []
    led = db.load_state(lazy=True, on_dropped=dropped.append)
    assert not led.files_loaded
    got = db.file_states(["/ok.jsonl", "/neg.jsonl", "/missing.jsonl"], dropped.append)
    assert list(got) == ["/ok.jsonl"] and got["/ok.jsonl"].fp == "fp"
    assert dropped == [1]
    db.close()
    assert list(led.files) == ["/ok.jsonl"] and led.titles == {"s": {"ai-title": "T"}}
    assert dropped == [1, 2]


def test_dropped_file_states_warn_in_a_warm_refresh(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    home = tmp_path / "home"
    _refresh(root, home)
    (db,) = (home / "data").glob("ledger-*.sqlite3")
    conn = sqlite3.connect(db)
    key = str(root / "-a" / "s1.jsonl")
    conn.execute("UPDATE files SET off = -5 WHERE path = ?", (key,))
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'gen'")
    conn.commit()
    conn.close()
    ch, _ = _refresh(root, home)
    assert any("dropped 1 invalid file state" in w for w in ch.warnings), ch.warnings
    assert ch.new_records == 0 and ch.files_read == 1  # read again, counted once


def test_warm_cli_reports_load_no_file_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tokmon daily/session/blocks --json`, warm and after an append, never load the ledger's
    file states, and print what a cold run on the same transcripts prints."""
    import io

    from tokmon.cli import main as cli_main

    root = _tree(tmp_path)
    loads: list[int] = []
    real = LedgerDB._load_files

    def counting(self: LedgerDB, *a: Any, **k: Any) -> Any:
        loads.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(LedgerDB, "_load_files", counting)

    def run(home: Path, cmd: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        env = {
            "TOKMON_HOME": str(home),
            "CLAUDE_CONFIG_DIR": str(root.parent),
            "HOME": str(tmp_path),
            "TZ": "UTC",
        }
        assert cli_main.run([cmd, "--json"], env=env, stdout=out, stderr=err) == 0, err.getvalue()
        return out.getvalue()

    home = tmp_path / "home"
    run(home, "daily")  # cold
    assert loads
    for step in ("warm", "append"):
        if step == "append":
            _append(root)
        for cmd in ("daily", "session", "blocks"):
            loads.clear()
            got = run(home, cmd)
            assert not loads, (step, cmd)
            cold = run(tmp_path / f"cold-{step}-{cmd}", cmd)
            if cmd == "session":  # isActive and the like depend on the clock: the sums
                got_j, cold_j = orjson.loads(got), orjson.loads(cold)
                assert got_j["totals"] == cold_j["totals"]
                assert [s["sessionId"] for s in got_j["sessions"]] == [
                    s["sessionId"] for s in cold_j["sessions"]
                ]
            elif cmd == "blocks":
                assert [b["totalTokens"] for b in orjson.loads(got)["blocks"]] == [
                    b["totalTokens"] for b in orjson.loads(cold)["blocks"]
                ]
            else:
                assert got == cold
    totals = orjson.loads(run(home, "session"))["totals"]
    assert (totals["inputTokens"], totals["outputTokens"]) == (6 * 10, sum(range(101, 107)))


def test_a_warm_report_process_freezes_what_the_check_leaves(tmp_path: Path) -> None:
    """`tokmon daily` as the process: the warm check moves what exists after it (imports, the
    listings) out of the collector's reach (gc.freeze: no later collection walks it); an
    in-process run (tests, the server) is left alone. (Both runs freeze the start-up's imports
    first, tokmon.cli.main._start_over: the cold run only those, the warm one more.)"""
    import gc
    import io
    import subprocess
    import sys

    from tokmon.cli import main as cli_main

    root = _tree(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))},
        "TOKMON_HOME": str(tmp_path / "home"),
        "CLAUDE_CONFIG_DIR": str(root.parent),
        "HOME": str(tmp_path),
        "TZ": "UTC",
    }
    code = (
        "import gc, sys\n"
        "from tokmon.__main__ import main\n"
        "sys.argv = ['tokmon', 'daily', '--json']\n"
        "rc = main()\n"
        "print(gc.get_freeze_count(), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    outs, frozen = [], []
    for _ in range(2):  # cold (the full check), then warm
        r = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
        frozen.append(int(r.stderr.strip().splitlines()[-1]))
    assert outs[0] == outs[1] and '"outputTokens": 515' in outs[0]
    assert frozen[0] > 1000 and frozen[1] > frozen[0] + 100
    before = gc.get_freeze_count()
    out = io.StringIO()
    assert cli_main.run(["daily", "--json"], env=env, stdout=out, stderr=io.StringIO()) == 0
    assert out.getvalue() == outs[0] and gc.get_freeze_count() == before


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs symlinks")
def test_the_mirror_follows_two_roots_and_linked_directories(tmp_path: Path) -> None:
    """Transcripts under a second root and under a linked directory outside the root: an
    append to either (written through the link's target) is read by the warm check; a
    transcript deleted there runs the full check."""
    root = _tree(tmp_path)
    other = tmp_path / "other" / "projects"
    write_lines(other / "-z" / "z.jsonl", [_line(40, "z")])
    outside = tmp_path / "elsewhere"
    write_lines(outside / "deep" / "o.jsonl", [_line(41, "o")])
    os.symlink(outside, root / "-linked")
    home = tmp_path / "home"

    def refresh() -> tuple[Any, bool]:
        eng = Engine(roots=[root, other], paths=get_paths({"TOKMON_HOME": str(home)}), env={})
        eng.short_lived = True
        try:
            return eng.refresh(), eng.ledger.files_loaded
        finally:
            eng.close()

    assert refresh()[0].files_read == 5
    ch, loaded = refresh()
    assert (ch.files_checked, ch.files_read, loaded) == (5, 0, False)
    write_lines(other / "-z" / "z.jsonl", [_line(42, "z")])
    write_lines(outside / "deep" / "o.jsonl", [_line(43, "o")])
    ch, loaded = refresh()
    assert (ch.files_read, ch.new_records, loaded) == (2, 2, False)
    (outside / "deep" / "o.jsonl").unlink()
    ch, loaded = refresh()
    assert (ch.files_checked, loaded) == (4, True)
    ch, loaded = refresh()
    assert (ch.files_checked, ch.files_read, loaded) == (4, 0, False)
    _, _, out = _ledger(home)
    assert out == sum(range(101, 106)) + 140 + 141 + 142 + 143


# The flat walk (engine/check.py, Flat): a quiet tree checked in two C-level passes.

IN_PLACE = {  # changes that leave every directory as it was: the flat walk sees them itself
    "append",
    "append, mtime kept",
    "truncate",
    "truncate and regrow",
    "rewrite, same size",
    "mtime only",
}


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the walks and the loads of the mirror and the listings from now on."""
    calls = {"walk": 0, "mirror": 0, "listings": 0}
    walk, mirror, listings = (
        check_mod.transcript_stats,
        Checked.load.__func__,  # type: ignore[attr-defined]
        discovery.Listings.load.__func__,  # type: ignore[attr-defined]
    )

    def counted_walk(*a: Any, **k: Any) -> Any:
        calls["walk"] += 1
        return walk(*a, **k)

    def counted_mirror(cls: Any, *a: Any, **k: Any) -> Any:
        calls["mirror"] += 1
        return mirror(cls, *a, **k)

    def counted_listings(cls: Any, *a: Any, **k: Any) -> Any:
        calls["listings"] += 1
        return listings(cls, *a, **k)

    monkeypatch.setattr(check_mod, "transcript_stats", counted_walk)
    monkeypatch.setattr(Checked, "load", classmethod(counted_mirror))
    monkeypatch.setattr(discovery.Listings, "load", classmethod(counted_listings))
    return calls


def _flat_file(home: Path) -> Path:
    (path,) = (home / "cache").glob("ledger-*.flat")
    return path


def _flat_of(home: Path) -> Any:
    """The flat walk saved under ``home``, loaded under its own stamp and roots."""
    from tokmon.core.engine.check import Flat

    path = _flat_file(home)
    head = orjson.loads(path.read_bytes().split(b"\n")[1])
    flat = Flat.load(path, head["db"], head["roots"])
    assert flat is not None
    return flat


@pytest.mark.parametrize("change", list(CHANGES))
def test_the_flat_walk_ends_in_the_full_checks_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str, stat_path: StatPath
) -> None:
    """A warm run of a quiet tree neither walks nor loads the mirror or the listings; a
    change in place is found by the flat walk alone, any other by the walk; either ends in
    the full check's ledger, and the flat walk answers again afterwards."""
    monkeypatch.setattr(discovery, "RACY_NS", 0)  # listings kept (settle_clock instead)
    root = _tree(tmp_path)
    quick, full = tmp_path / "quick", tmp_path / "full"
    settle_clock(tmp_path)
    for home in (quick, full):
        _refresh(root, home)  # cold: the full check
    _refresh(root, quick)  # warm: the walk, which leaves the flat walk
    assert len(_flat_of(quick).files) == 3
    assert os.name == "nt" or _flat_file(quick).stat().st_mode & 0o777 == 0o600
    calls = _counting(monkeypatch)
    ch, loaded = _refresh(root, quick)
    assert (ch.files_checked, ch.files_read, loaded) == (3, 0, False)
    assert calls == {"walk": 0, "mirror": 0, "listings": 0}
    before = _ledger(quick)
    settle_clock(tmp_path)
    CHANGES[change](root)
    ch_q, loaded = _refresh(root, quick)
    walked = calls["walk"]
    ch_f, _ = _refresh(root, full, full=True)
    after = _ledger(quick)
    assert after == _ledger(full)
    assert after != before, "the change was not seen"
    assert (ch_q.new_records, ch_q.files_read, ch_q.files_checked) == (
        ch_f.new_records,
        ch_f.files_read,
        ch_f.files_checked,
    )
    assert (walked > 0) is (change not in IN_PLACE)
    assert loaded is (change == "deleted file")
    settle_clock(tmp_path)
    for _ in range(2):  # (after the full check: the walk once, which leaves a flat walk)
        ch, loaded = _refresh(root, quick)
        assert (ch.files_read, ch.new_records, loaded) == (0, 0, False)
    calls.update(walk=0, mirror=0, listings=0)
    ch, _ = _refresh(root, quick)
    assert (ch.files_read, ch.files_checked) == (0, ch_f.files_checked)
    assert calls == {"walk": 0, "mirror": 0, "listings": 0}
    assert _ledger(quick) == after
    assert (stat_path.calls >= 3) is stat_path.native  # the flat walks were checked natively


def test_a_transcript_gone_after_its_directory_was_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stat_path: StatPath
) -> None:
    """A transcript removed between the directories' stat and its own (the flat walk's
    directories all as recorded, its stat failing): the walk runs, then the full check."""
    from array import array
    from itertools import chain

    monkeypatch.setattr(discovery, "RACY_NS", 0)
    root = _tree(tmp_path)
    quick, full = tmp_path / "quick", tmp_path / "full"
    settle_clock(tmp_path)
    for home in (quick, full):
        _refresh(root, home)
    _refresh(root, quick)
    flat = _flat_of(quick)
    _deleted(root)
    assert flat.check() is None  # its directory changed
    flat.dsig = array(  # as if the directories had been stat'ed just before the unlink
        "q",
        chain.from_iterable(
            (s.st_mtime_ns, s.st_ctime_ns, s.st_ino, s.st_dev) for s in map(os.stat, flat.dirs)
        ),
    )
    assert flat.check() is None  # its transcript is gone: the walk must run
    flat.save(_flat_file(quick))
    calls = _counting(monkeypatch)
    ch, loaded = _refresh(root, quick)
    assert calls["walk"] > 0 and loaded  # the walk, then the full check
    _refresh(root, full, full=True)
    assert _ledger(quick) == _ledger(full)
    assert ch.files_checked == 2
    assert (stat_path.calls >= 2) is stat_path.native


def test_a_flat_walk_not_of_this_database_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stat_path: StatPath
) -> None:
    """Another process wrote since the flat walk was saved, then the transcript it read went
    back to the size, mtime and inode the flat walk holds: the flat walk is not used (the
    file is read again, as the full check reads it); a torn or foreign one neither."""
    monkeypatch.setattr(discovery, "RACY_NS", 0)
    root = _tree(tmp_path)
    quick, full = tmp_path / "quick", tmp_path / "full"
    settle_clock(tmp_path)
    for home in (quick, full):
        _refresh(root, home)
    _refresh(root, quick)
    good = _flat_file(quick).read_bytes()
    f = root / "-b" / "s2.jsonl"
    data, st = f.read_bytes(), f.stat()
    write_lines(f, [_line(50, "s2")])
    for home in (quick, full):  # another process (no mirror, no flat walk) reads the line
        _refresh(root, home, full=True)
    with open(f, "r+b") as fh:  # back to what the flat walk holds (same inode)
        fh.write(data)
        fh.truncate(len(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _flat_file(quick).read_bytes() == good
    assert _flat_of(quick).check() == []  # under its own stamp it would say: untouched
    ch_q, _ = _refresh(root, quick)
    ch_f, _ = _refresh(root, full, full=True)
    assert _ledger(quick) == _ledger(full)
    assert ch_q.files_read == ch_f.files_read == 1
    kept = _ledger(quick)[2]
    assert kept == sum(range(101, 106)) + 150  # what was read stays (as in the full check)

    # torn, foreign or malformed: never used, never a crash
    from tokmon.core.flatfile import MAGIC as _FLAT_MAGIC

    _refresh(root, quick)
    good = _flat_file(quick).read_bytes()
    head_end = good.index(b"\n", len(_FLAT_MAGIC)) + 1
    head = orjson.loads(good[len(_FLAT_MAGIC) : head_end])
    rest = good[head_end:]

    def with_head(**kw: Any) -> bytes:
        return _FLAT_MAGIC + orjson.dumps({**head, **kw}) + b"\n" + rest

    bodies = [
        b"",
        _FLAT_MAGIC,
        _FLAT_MAGIC + b"{\n",
        _FLAT_MAGIC + b"[]\n" + rest,
        _FLAT_MAGIC + b"[" * 100_000 + b"]" * 100_000 + b"\n" + rest,
        _FLAT_MAGIC + b"\xff{}\n" + rest,
        b"tokmon-flat 2\n" + good[len(_FLAT_MAGIC) :],
        with_head(order="big" if head["order"] == "little" else "little"),
        with_head(roots=[*head["roots"], str(tmp_path / "x")]),
        with_head(nd=head["nd"] + 1),
        with_head(nf=head["nf"] - 1),
        with_head(plen=head["plen"] - 1),
        with_head(nd="1"),
        with_head(nd=0, nf=0, plen=0),
        good[:-1],
        good + b"\0",
    ]
    for n, body in enumerate(bodies):
        _flat_file(quick).write_bytes(body)
        write_lines(f, [_line(60 + n, "s2")])
        ch, _ = _refresh(root, quick)
        assert ch.new_records == 1, n
        assert _flat_of(quick).check() == [], n  # a good one again
    ch, _ = _refresh(root, quick)
    assert (ch.files_read, ch.new_records) == (0, 0)
    assert _ledger(quick)[2] == kept + sum(160 + n for n in range(len(bodies)))
    assert (stat_path.calls > len(bodies)) is stat_path.native


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs symlinks")
def test_no_flat_walk_through_a_linked_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stat_path: StatPath
) -> None:
    """Where the tree holds a symbolic link the walk decides what it leads to: no flat walk
    is kept, and an append behind the link is still read."""
    monkeypatch.setattr(discovery, "RACY_NS", 0)
    root = _tree(tmp_path)
    outside = tmp_path / "elsewhere"
    write_lines(outside / "o.jsonl", [_line(41, "o")])
    os.symlink(outside, root / "-linked")
    home = tmp_path / "home"
    settle_clock(tmp_path)
    for _ in range(3):
        _refresh(root, home)
    assert not list((home / "cache").glob("ledger-*.flat"))
    write_lines(outside / "o.jsonl", [_line(42, "o")])
    ch, loaded = _refresh(root, home)
    assert (ch.files_read, ch.new_records, loaded) == (1, 1, False)
    assert stat_path.calls == 0  # no flat walk, no check of one


# The native stat check itself (tokmon._native._stat.check) against os.stat, path by path.


def _sigs(paths: list[bytes], fields: Callable[[os.stat_result], Any]) -> Any:
    """The int64 entries of ``paths`` as the flat walk records them (stat'ed now)."""
    from array import array

    out = array("q")
    for p in paths:
        out.extend(fields(os.stat(p)))
    return out


def _reference(dirs: list[bytes], dsig: Any, files: list[bytes], fsig: Any) -> list[int] | None:
    """What the native check must answer, from os.stat: None when a directory's stat fails or
    differs, else the transcripts whose stat fails or differs."""
    from tokmon.core.engine.check import _DIR_SIG, _FILE_SIG

    def differs(path: bytes, want: list[int], fields: Callable[[Any], Any]) -> bool:
        try:
            return list(fields(os.stat(path))) != want
        except (OSError, ValueError):
            return True

    sig = lambda a, i: a[4 * i : 4 * i + 4].tolist()  # noqa: E731
    if any(differs(d, sig(dsig, i), _DIR_SIG) for i, d in enumerate(dirs)):
        return None
    return [i for i, f in enumerate(files) if differs(f, sig(fsig, i), _FILE_SIG)]


def _native(dirs: list[bytes], dsig: Any, files: list[bytes], fsig: Any, threads: int) -> Any:
    return _native_stat().check(b"\0".join(dirs + files), len(dirs), dsig, fsig, threads)


def _flat(dirs: list[bytes], files: list[bytes]) -> Any:
    """A flat walk of ``dirs`` and ``files`` as they stat now (saved and loaded, as a run
    loads it)."""
    from tokmon.core.engine.check import _DIR_SIG, _FILE_SIG, Flat

    return Flat(["db"], ["r"], dirs, _sigs(dirs, _DIR_SIG), files, _sigs(files, _FILE_SIG))


def _both(flat: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Flat.check by os.stat, by the native check (one and two threads) and by the native
    check begun early on a thread of its own (``check_start``, as a warm report's start-up
    begins it: tokmon.core.flatfile): the same answer, which is returned."""
    from tokmon.core.engine.check import Flat

    stat = _native_stat()
    answers = []
    for native, threads, early in (
        (None, 1, False),
        (stat.check, 1, False),
        (stat.check, 2, False),
        (stat.check, 1, True),
    ):
        monkeypatch.setattr(check_mod, "_native_check", native)
        monkeypatch.setattr(check_mod, "_THREADS", threads)
        again = Flat(flat.stamp, flat.roots, None, flat.dsig, None, flat.fsig, flat._paths())
        if early:
            nd = len(flat.dsig) // 4
            again._early = stat.check_start(flat._paths(), nd, flat.dsig, flat.fsig)
        got = again.check()
        answers.append(None if got is None else [(p, st.st_size) for p, st in got])
    assert answers[0] == answers[1] == answers[2] == answers[3], answers
    return answers[0]


def _entries(tmp_path: Path) -> tuple[list[bytes], list[bytes]]:
    """A small real tree: its directories and transcripts as the flat walk keeps them."""
    root = _tree(tmp_path)
    dirs = [os.fsencode(p) for p in sorted({root, *root.rglob("*")}) if p.is_dir()]
    files = [os.fsencode(p) for p in sorted(root.rglob("*.jsonl"))]
    return dirs, files


def test_the_native_check_agrees_with_os_stat_on_a_quiet_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokmon.core.engine.check import _DIR_SIG, _FILE_SIG

    dirs, files = _entries(tmp_path)
    dsig, fsig = _sigs(dirs, _DIR_SIG), _sigs(files, _FILE_SIG)
    for threads in (1, 2):
        assert (
            _native(dirs, dsig, files, fsig, threads) == [] == _reference(dirs, dsig, files, fsig)
        )
    assert _both(_flat(dirs, files), monkeypatch) == []
    # any buffer: the paths as a bytearray, the entries at odd addresses
    odd = lambda a: memoryview(b"\0" + a.tobytes())[1:]  # noqa: E731
    blob = bytearray(b"\0".join(dirs + files))
    assert _native_stat().check(blob, len(dirs), odd(dsig), odd(fsig), 2) == []
    bad = fsig[:]
    bad[-1] += 1
    assert _native_stat().check(blob, len(dirs), odd(dsig), odd(bad), 1) == [len(files) - 1]
    # every field counts: a one-off in any of the four of any entry is seen
    for n in range(len(fsig)):
        bad = fsig[:]
        bad[n] += 1
        assert _native(dirs, dsig, files, bad, 1) == [n // 4] == _reference(dirs, dsig, files, bad)
    for n in range(len(dsig)):
        bad = dsig[:]
        bad[n] -= 1
        assert _native(dirs, bad, files, fsig, 1) is None is _reference(dirs, bad, files, fsig)


def test_the_native_check_on_an_empty_walk_and_malformed_input() -> None:
    from array import array

    stat = _native_stat()
    empty = array("q")
    assert stat.check(b"", 0, empty, empty) == []
    assert stat.check(b"", 0, b"", b"", 2) == []
    with pytest.raises(ValueError):
        stat.check(b"x", 0, empty, empty)  # a path without an entry
    with pytest.raises(ValueError):
        stat.check(b"a\0b", 1, array("q", [0] * 4), empty)  # two paths, one entry
    with pytest.raises(ValueError):
        stat.check(b"a", 1, array("q", [0] * 4), array("q", [0] * 4))  # one path, two entries
    with pytest.raises(ValueError):
        stat.check(b"a\0b", 1, array("q", [0] * 4), array("q", [0] * 5))  # not four by four
    with pytest.raises(ValueError):
        stat.check(b"a", -1, empty, empty)
    with pytest.raises(TypeError):
        stat.check("a", 1, array("q", [0] * 4), empty)  # str: not the fsencoded paths
    # the one path of a walk of one directory: "" is no path (it fails, as os.stat(b"") does)
    assert stat.check(b"", 1, array("q", [0] * 4), empty) is None


@pytest.mark.parametrize(
    "change", ["removed", "directory", "fifo", "symlink", "dangling symlink", "long path"]
)
def test_the_native_check_agrees_on_odd_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A transcript removed between the passes, replaced by a directory, a FIFO or a link
    (to a file: stat follows it, as os.stat does; to nothing: gone), a path longer than
    PATH_MAX: flagged alike, and the flat walk's answer is the same by either path."""
    from tokmon.core.engine.check import _DIR_SIG

    dirs, files = _entries(tmp_path)
    flat = _flat(dirs, files)
    target = Path(os.fsdecode(files[1]))
    if change == "removed":
        target.unlink()
    elif change == "directory":
        target.unlink()
        target.mkdir()
    elif change == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        target.unlink()
        os.mkfifo(target)
    elif change in ("symlink", "dangling symlink"):
        real = tmp_path / "real.jsonl"
        os.replace(target, real)
        os.symlink(real if change == "symlink" else tmp_path / "nowhere", target)
    else:  # a path the kernel refuses (ENAMETOOLONG), kept in the walk
        long = os.fsencode(tmp_path) + b"/" + b"/".join([b"d" * 200] * 30)  # > PATH_MAX
        assert len(long) > 4096
        flat = _flat(dirs, files)
        flat.files.append(long)
        flat.fsig.extend([0, 0, 0, 0])
        flat._blob = None
    flat.dsig = _sigs(flat.dirs, _DIR_SIG)  # as if the directories were stat'ed just before
    files = flat.files
    want = _reference(flat.dirs, flat.dsig, files, flat.fsig)
    for threads in (1, 2):
        assert _native(flat.dirs, flat.dsig, files, flat.fsig, threads) == want
    got = _both(flat, monkeypatch)
    if change == "symlink":  # the same file behind the link: untouched
        assert want == [] and got == []
    else:  # gone, no regular file or no path: the walk must run
        assert want == [len(files) - 1 if change == "long path" else 1] and got is None
    if change == "long path":  # as a directory of the walk: the walk runs
        assert _native([*flat.dirs, long], flat.dsig + flat.fsig[-4:], [], flat.fsig[:0], 1) is None


@pytest.mark.skipif(sys.platform == "darwin", reason="APFS refuses names that are not UTF-8")
def test_the_native_check_takes_paths_that_are_not_utf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths as os.fsencode gives them, undecodable bytes included: stat'ed byte for byte;
    a change to such a transcript comes back with its name as os.fsdecode gives it."""
    if os.name != "posix":
        pytest.skip("POSIX byte paths")
    from tokmon.core.engine.check import _DIR_SIG

    d = os.path.join(os.fsencode(tmp_path), b"proj-\xff\xfe")
    os.mkdir(d)
    names = [b"s-\x80.jsonl", b"s-\xe9t\xe9.jsonl", "s-é.jsonl".encode(), b"s\n2.jsonl"]
    files = [os.path.join(d, n) for n in names]
    for f in files:
        with open(f, "wb") as fh:
            fh.write(b"{}\n")
    flat = _flat([os.fsencode(tmp_path), d], files)
    assert _both(flat, monkeypatch) == []
    with open(files[0], "ab") as fh:
        fh.write(b"{}\n")
    got = _both(flat, monkeypatch)
    assert got == [(os.fsdecode(files[0]), 6)]
    os.unlink(files[2])
    flat.dsig = _sigs(flat.dirs, _DIR_SIG)
    assert _native(flat.dirs, flat.dsig, files, flat.fsig, 1) == [0, 2]
    assert _both(flat, monkeypatch) is None


def test_the_native_check_computes_times_as_os_stat_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nanosecond times before 1970 (negative seconds, positive nanoseconds) and past the
    int64 range of nanoseconds (year 2262 on; os.stat gives a larger int, which no recorded
    entry equals: the transcript is changed, as os.stat's compare says)."""
    from tokmon.core.engine.check import _DIR_SIG, _FILE_SIG

    _native_stat()
    dirs, files = _entries(tmp_path)
    os.utime(files[0], ns=(0, -1_500_000_001))
    if os.stat(files[0]).st_mtime_ns != -1_500_000_001:
        pytest.skip("this file system does not keep times before 1970 to the nanosecond")
    dsig, fsig = _sigs(dirs, _DIR_SIG), _sigs(files, _FILE_SIG)
    assert _native(dirs, dsig, files, fsig, 1) == [] == _reference(dirs, dsig, files, fsig)
    try:
        os.utime(files[2], ns=(0, 10**19))
        far = os.stat(files[2]).st_mtime_ns
    except (OSError, OverflowError, ValueError):
        far = 0
    if far <= 2**63 - 1:
        pytest.skip("this file system does not keep times past 2262")
    assert _native(dirs, dsig, files, fsig, 1) == [2] == _reference(dirs, dsig, files, fsig)
    flat = _flat(dirs, files[:2])  # the far one cannot be recorded: the other two
    flat.files.append(files[2])
    flat.fsig.extend(fsig[8:12])
    flat._blob = None
    got = _both(flat, monkeypatch)
    assert got == [(os.fsdecode(files[2]), os.stat(files[2]).st_size)]


def test_the_native_check_against_os_stat_over_a_random_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fuzz-ish: a random tree of ~1,500 paths (more than one thread's share), random changes
    to files and directories and random wrong entries, round after round: the native check
    (one and two threads) answers what os.stat says, and Flat.check the same by both paths."""
    import random

    from tokmon.core.engine.check import _DIR_SIG, _FILE_SIG

    _native_stat()
    rng = random.Random(12)
    root = tmp_path / "r"
    dirs, files = [os.fsencode(root)], []
    root.mkdir()
    for i in range(300):
        d = Path(os.fsdecode(rng.choice(dirs))) / f"d{i}"
        d.mkdir()
        dirs.append(os.fsencode(d))
    for i in range(1200):
        f = Path(os.fsdecode(rng.choice(dirs))) / f"f{i}.jsonl"
        f.write_bytes(b"x" * rng.randrange(50))
        files.append(os.fsencode(f))
    for rnd in range(12):
        dsig, fsig = _sigs(dirs, _DIR_SIG), _sigs(files, _FILE_SIG)
        for _ in range(rng.randrange(6)):
            what = rng.choice(["append", "truncate", "touch", "remove", "replace", "entry"])
            i = rng.randrange(len(files))
            f = os.fsdecode(files[i])
            if not os.path.exists(f):
                continue
            if what == "append":
                with open(f, "ab") as fh:
                    fh.write(b"y")
            elif what == "truncate":
                os.truncate(f, 0)
            elif what == "touch":
                os.utime(f, ns=(0, rng.randrange(2**40)))
            elif what == "remove":
                os.unlink(f)
            elif what == "replace":
                Path(f + ".new").write_bytes(b"z")
                os.replace(f + ".new", f)
            else:
                fsig[4 * i + rng.randrange(4)] ^= 1 << rng.randrange(62)
        if rnd % 3 == 2:  # sometimes the directories as they are now: the files' own answer
            dsig = _sigs(dirs, _DIR_SIG)
        want = _reference(dirs, dsig, files, fsig)
        for threads in (1, 2):
            assert _native(dirs, dsig, files, fsig, threads) == want, (rnd, threads)
        from tokmon.core.engine.check import Flat

        flat = Flat(["db"], ["r"], dirs, dsig, files, fsig)
        _both(flat, monkeypatch)
        files = [f for f in files if os.path.exists(f)]  # the next round: what is left


def test_no_native_stat_check_when_disabled_or_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """TOKMON_NO_NATIVE, Windows or an install without the extension: os.stat, as before."""
    import tokmon._native

    monkeypatch.setattr(check_mod, "_native_check", False)  # looked up again
    monkeypatch.setenv("TOKMON_NO_NATIVE", "1")
    assert check_mod.native_stat_check() is None
    if os.name == "posix":
        assert check_mod.native_check_status() == "Python (TOKMON_NO_NATIVE is set)"
    monkeypatch.delenv("TOKMON_NO_NATIVE")
    monkeypatch.setattr(check_mod, "_native_check", False)
    monkeypatch.setitem(sys.modules, "tokmon._native._stat", None)  # import -> ImportError
    monkeypatch.delattr(tokmon._native, "_stat", raising=False)
    assert check_mod.native_stat_check() is None
    if os.name == "posix":
        assert check_mod.native_check_status() == "Python (the native extension is not built)"


def test_doctor_says_which_stat_check_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from tokmon.cli.doctor import check_install

    _native_stat()
    monkeypatch.setattr(check_mod, "_native_check", False)
    monkeypatch.delenv("TOKMON_NO_NATIVE", raising=False)
    assert "; warm check native" in check_install(dict(os.environ)).detail
    monkeypatch.setenv("TOKMON_NO_NATIVE", "1")
    monkeypatch.setattr(check_mod, "_native_check", False)
    detail = check_install(dict(os.environ)).detail
    assert "; warm check Python (TOKMON_NO_NATIVE is set)" in detail
