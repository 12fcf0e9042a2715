"""Issue 12: ``session --json`` after a change reads only the sessions that changed.

The kept answer (``cli.reports.SessionParts``) holds each session's piece; after a change
the ledger's change log (``changes``: the sessions each generation touched) names the
sessions to read again, and their rows are spliced into the kept document. Each case here
compares that answer, byte for byte, with the answer built from scratch (the kept answers
removed) and with the typed rows' answer (a filter that keeps everything: ``--since
20000101``, another code path), at the same clock.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import assistant_line, write_lines

import tokmon.core.rollups as rollups_mod
from tokmon.cli import reports
from tokmon.core.ledger import KEEP_CHANGES, LedgerDB
from tokmon.core.model import UsageRecord

END = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
NOW = END.timestamp() + 60


def _corpus(root: Path) -> Path:
    """Six sessions over two projects; "live" is active at NOW; "empty" has 0 tokens."""
    proj = root / "projects" / "-w-app"
    other = root / "projects" / "-w-lib"
    for k in range(4):
        t = END - timedelta(days=4 - k)
        write_lines(proj / f"s{k}.jsonl", [
            assistant_line(t, msg_id=f"m{k}a", req_id=f"r{k}a", session=f"s{k}", cwd="/w/app",
                           inp=10 + k, out=20 + k, cr=100 * k),
            assistant_line(t + timedelta(minutes=5), msg_id=f"m{k}b", req_id=f"r{k}b",
                           session=f"s{k}", cwd="/w/app", model="claude-opus-4-1-20250805",
                           inp=3, out=4 + k, cc=50),
        ])  # fmt: skip
    write_lines(other / "live.jsonl", [
        assistant_line(END - timedelta(hours=1), msg_id="l1", req_id="rl1", session="live",
                       cwd="/w/lib", inp=7, out=8, cc=300),
        assistant_line(END, msg_id="l2", req_id="rl2", session="live", cwd="/w/lib", inp=1,
                       out=2),
    ])  # fmt: skip
    write_lines(other / "empty.jsonl", [
        assistant_line(END - timedelta(days=1), msg_id="e1", req_id="re1", session="empty",
                       cwd="/w/lib", inp=0, out=0),
    ])  # fmt: skip
    return root / "projects"


def _at(monkeypatch: pytest.MonkeyPatch, t: float) -> None:
    monkeypatch.setattr(time, "time", lambda: t)


class Counter:
    """Counts the session rows built from the stored sums, and which path built them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: list[str] = []
        self.paths: list[str] = []
        real_row = rollups_mod.session_row_json

        def row(sid: str, *a: Any, **k: Any) -> Any:
            self.rows.append(sid)
            return real_row(sid, *a, **k)

        monkeypatch.setattr(rollups_mod, "session_row_json", row)
        for name in ("build", "splice"):
            real = getattr(reports.SessionParts, name)

            def wrap(*a: Any, _real: Any = real, _name: str = name, **k: Any) -> Any:
                self.paths.append(_name)
                return _real(*a, **k)

            monkeypatch.setattr(reports.SessionParts, name, wrap)

    def reset(self) -> None:
        self.rows.clear()
        self.paths.clear()


def _kept(home: Path) -> list[Path]:
    return sorted((home / "cache" / "reports").glob("session-*.json"))


def _three(cli: Any, home: Path, *argv: str) -> tuple[str, str, str]:
    """The answer with the kept one (spliced), from scratch, and the typed rows'."""
    spliced = cli("session", "--json", *argv)
    assert spliced.code == 0, spliced.err
    saved = {p: p.read_bytes() for p in _kept(home)}
    for p in saved:
        p.unlink()
    scratch = cli("session", "--json", *argv)
    for p, data in saved.items():  # the kept answer of the spliced run stays for the next step
        p.write_bytes(data)
    typed = cli("session", "--json", "--since", "20000101", *argv)
    assert scratch.code == typed.code == 0, scratch.err + typed.err
    return spliced.out, scratch.out, typed.out


def _append(path: Path, *lines: str) -> None:
    write_lines(path, list(lines))


CHANGES: dict[str, Callable[[Path, Any], None]] = {
    "append to a session": lambda p, cli: _append(
        p / "-w-app" / "s1.jsonl",
        assistant_line(
            END - timedelta(hours=2),
            msg_id="n1",
            req_id="rn1",
            session="s1",
            cwd="/w/app",
            inp=5,
            out=6,
        ),
    ),  # fmt: skip
    "a new session": lambda p, cli: _append(
        p / "-w-app" / "s9.jsonl",
        assistant_line(
            END - timedelta(days=2, hours=1),
            msg_id="n9",
            req_id="rn9",
            session="s9",
            cwd="/w/app",
            inp=9,
            out=9,
        ),
    ),  # fmt: skip
    "a session's first time moves": lambda p, cli: _append(
        p / "-w-app" / "s3.jsonl",
        assistant_line(
            END - timedelta(days=30),
            msg_id="n3",
            req_id="rn3",
            session="s3",
            cwd="/w/app",
            inp=1,
            out=1,
        ),
    ),  # fmt: skip
    "a title line": lambda p, cli: _append(
        p / "-w-app" / "s0.jsonl",
        '{"type":"custom-title","customTitle":"Titled","sessionId":"s0"}',
    ),
    "a record moves to another session": lambda p, cli: _append(
        p / "-w-app" / "s2.jsonl",  # s0's first message, now larger, under s2
        assistant_line(
            END - timedelta(hours=3),
            msg_id="m0a",
            req_id="r0a",
            session="s2",
            cwd="/w/app",
            inp=10,
            out=500,
        ),
    ),  # fmt: skip
    "the empty session gets tokens": lambda p, cli: _append(
        p / "-w-lib" / "empty.jsonl",
        assistant_line(
            END - timedelta(hours=20),
            msg_id="e2",
            req_id="re2",
            session="empty",
            cwd="/w/lib",
            inp=4,
            out=4,
        ),
    ),  # fmt: skip
    "a transcript deleted": lambda p, cli: (p / "-w-app" / "s1.jsonl").unlink(),
    "metadata edited": lambda p, cli: cli("session", "name", "s2", "Named two"),
    "store rebuilt": lambda p, cli: [
        f.unlink() for f in (Path(cli.home) / "data").glob("ledger-*.sqlite3*")
    ],
}


@pytest.fixture
def setup(
    cli: Any, env: dict[str, str], tokmon_home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, Any, Counter]:  # fmt: skip
    projects = _corpus(tmp_path / "claude")
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    _at(monkeypatch, NOW)
    cli.home = str(tokmon_home)
    return projects, cli, Counter(monkeypatch)


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("argv", [(), ("--all",)])
def test_after_a_change_the_answer_is_the_one_built_from_scratch(
    setup: tuple[Path, Any, Counter], tokmon_home: Path, change: str, argv: tuple[str, ...]
) -> None:
    projects, cli, count = setup
    first, scratch, typed = _three(cli, tokmon_home, *argv)
    assert first == scratch == typed
    CHANGES[change](projects, cli)
    count.reset()
    spliced, scratch, typed = _three(cli, tokmon_home, *argv)
    assert spliced == scratch == typed
    if change not in ("a transcript deleted", "store rebuilt"):  # (the history is kept)
        assert spliced != first
    # which path answered: the kept answer was spliced unless its key or database changed
    fall_back = change in ("metadata edited", "store rebuilt")
    assert count.paths[0] == ("build" if fall_back else "splice"), count.paths
    # and the next change splices into the spliced answer
    _append(
        projects / "-w-lib" / "live.jsonl",
        assistant_line(END + timedelta(seconds=30), msg_id="x1", req_id="rx1", session="live",
                       cwd="/w/lib", inp=2, out=3),
    )  # fmt: skip
    count.reset()
    again, scratch, typed = _three(cli, tokmon_home, *argv)
    assert again == scratch == typed != spliced
    assert count.paths[0] == "splice"


def test_a_one_line_append_builds_only_that_sessions_row(
    setup: tuple[Path, Any, Counter], tokmon_home: Path
) -> None:
    projects, cli, count = setup
    assert cli("session", "--json").code == 0
    assert len(count.rows) == 6  # built whole: every session's row
    count.reset()
    assert cli("session", "--json").code == 0
    assert count.rows == []  # kept: none
    _append(
        projects / "-w-app" / "s2.jsonl",
        assistant_line(END - timedelta(hours=5), msg_id="n2", req_id="rn2", session="s2",
                       cwd="/w/app", inp=1, out=2),
    )  # fmt: skip
    got = cli("session", "--json")
    assert got.code == 0
    assert count.rows == ["s2"]
    assert count.paths == ["splice"]
    row = next(r for r in json.loads(got.out)["sessions"] if r["sessionId"] == "s2")
    assert row["entries"] == 3


def test_a_session_that_turns_inactive_is_read_again(
    setup: tuple[Path, Any, Counter], tokmon_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the kept answer's span (``live`` no longer active), a change elsewhere reads the
    changed session and the ones shown active; the answer equals the one from scratch."""
    projects, cli, count = setup
    before = cli("session", "--json").out
    assert {r["sessionId"]: r["isActive"] for r in json.loads(before)["sessions"]}["live"]
    _at(monkeypatch, NOW + 6 * 3600)
    _append(
        projects / "-w-app" / "s0.jsonl",
        assistant_line(END - timedelta(hours=2), msg_id="n0", req_id="rn0", session="s0",
                       cwd="/w/app", inp=1, out=2),
    )  # fmt: skip
    count.reset()
    spliced, scratch, typed = _three(cli, tokmon_home)
    assert spliced == scratch == typed
    assert sorted(count.rows[:2]) == ["live", "s0"] and count.paths[0] == "splice"
    assert not any(r["isActive"] for r in json.loads(spliced)["sessions"])


def test_clock_set_back_builds_whole(
    setup: tuple[Path, Any, Counter], tokmon_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    projects, cli, count = setup
    _at(monkeypatch, NOW + 600)
    assert cli("session", "--json").code == 0
    _append(
        projects / "-w-app" / "s0.jsonl",
        assistant_line(END - timedelta(hours=2), msg_id="n0", req_id="rn0", session="s0",
                       cwd="/w/app", inp=1, out=2),
    )  # fmt: skip
    _at(monkeypatch, NOW)
    count.reset()
    spliced, scratch, typed = _three(cli, tokmon_home)
    assert spliced == scratch == typed
    assert count.paths[0] == "build"


def _resigned(change: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """A damage to the index that keeps its digest right (as if written so): the index's
    values are still checked, and a splice that fails builds the answer whole."""

    def damage(data: bytes) -> bytes:
        trailer = data[-75:]
        n, gen, _ = trailer.split()
        end = len(data) - 75
        index = change(data[end - int(n) : end])
        sig = reports._index_sig(index).encode()
        return data[: end - int(n)] + index + b"%012d %s %s\n" % (len(index), gen, sig)

    return damage


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:-5] + b"9999\n",  # the index's length
        lambda d: d.replace(b'"entries":[[', b'"entries":[["x",1.0,2.0,true,5,1],['),
        lambda d: d.replace(b'"entries":[[', b'"entries":[["x",1,2.0,true,-1,-1],['),
        lambda d: d.replace(b'"gen":', b'"gen":"'),
        lambda d: d[: len(d) // 2],
        lambda d: d.split(b"\n", 1)[0] + b"\n" + b"0" * 12 + b"\n",
        _resigned(lambda ix: ix.replace(b'"entries":[[', b'"entries":[["x",1,"2",true,"5"],[')),
        _resigned(lambda ix: ix.replace(b'"shown":', b'"shown":1')),
        _resigned(lambda ix: ix.replace(b'"tokens":[', b'"tokens":["a",')),
    ],
)
def test_a_damaged_index_is_not_used(
    setup: tuple[Path, Any, Counter], tokmon_home: Path, damage: Callable[[bytes], bytes]
) -> None:
    projects, cli, count = setup
    assert cli("session", "--json").code == 0
    (kept,) = [p for p in _kept(tokmon_home)]
    kept.write_bytes(damage(kept.read_bytes()))
    _append(
        projects / "-w-app" / "s0.jsonl",
        assistant_line(END - timedelta(hours=2), msg_id="n0", req_id="rn0", session="s0",
                       cwd="/w/app", inp=1, out=2),
    )  # fmt: skip
    spliced, scratch, typed = _three(cli, tokmon_home)
    assert spliced == scratch == typed


@pytest.mark.parametrize("n", [0, 1, 3])
def test_the_document_is_orjsons_indented_dump(n: int) -> None:
    rows = [
        {"sessionId": f"s{k}", "tags": [], "modelBreakdowns": [{"a": 1, "b": [1, {"c": "é\n"}]}],
         "name": None, "emptyObj": {}, "x": 1.5e-7}
        for k in range(n)
    ]  # fmt: skip
    totals = {"inputTokens": 1, "totalCost": 0.1 + 0.2}
    want = orjson.dumps(
        {"sessions": rows, "totals": totals},
        option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE,
    )
    got = reports._document([reports._row_bytes(r) for r in rows], totals)
    assert b"".join(got) == want


def _rec(key: str, session: str, ts: float, out: int = 5) -> UsageRecord:
    return UsageRecord(ts, session, "/w", "claude-sonnet-4-5", 1, out, 0, 0, 0, key, 0.01, None)


def test_the_change_log_names_moved_records_and_titles(tmp_path: Path) -> None:
    db = LedgerDB(tmp_path / "ledger.sqlite3")
    _, g0 = db.merge([_rec("k1", "a", 1.7e9), _rec("k2", "b", 1.7e9 + 1)])
    assert db.sessions_changed_after(g0) == set()
    assert db.sessions_changed_after(g0 - 1) == {"a", "b"}
    _, g1 = db.merge([_rec("k1", "c", 1.7e9, out=50)])  # k1 moves from a to c
    assert db.sessions_changed_after(g0) == {"a", "c"}
    _, g2 = db.merge([], titles=[("b", "custom-title", "T")])
    assert db.sessions_changed_after(g1) == {"b"}
    _, g3 = db.merge([], titles=[("b", "custom-title", "T")])  # the same title: no change
    assert db.sessions_changed_after(g2) == set()
    # not answerable: a generation of the future, or older than the kept log
    assert db.sessions_changed_after(g3 + 1) is None
    with db.write() as conn:
        conn.execute("UPDATE meta SET value = value + ? WHERE key='gen'", (KEEP_CHANGES,))
    assert db.sessions_changed_after(g3) is None
    db.close()


def test_stored_sums_rebuilt_end_the_log(
    setup: tuple[Path, Any, Counter], tokmon_home: Path
) -> None:
    """Sums rebuilt outside a logged write (a write that could not follow, a new sums
    schema): no kept answer of before is spliced."""
    projects, cli, count = setup
    assert cli("session", "--json").code == 0
    (ledger,) = (tokmon_home / "data").glob("ledger-*.sqlite3")
    conn = sqlite3.connect(ledger)
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('sums', 0)")
    conn.commit()
    conn.close()
    _append(
        projects / "-w-app" / "s0.jsonl",
        assistant_line(END - timedelta(hours=2), msg_id="n0", req_id="rn0", session="s0",
                       cwd="/w/app", inp=1, out=2),
    )  # fmt: skip
    count.reset()
    spliced, scratch, typed = _three(cli, tokmon_home)
    assert spliced == scratch == typed
    assert count.paths[0] == "build"


def test_real_corpus_appends_splice_to_the_answer_from_scratch(
    cli: Any, env: dict[str, str], tokmon_home: Path, corpus_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    env["CLAUDE_CONFIG_DIR"] = str(corpus_copy)
    out = cli("session", "--json", "--all")
    assert out.code == 0, out.err
    sessions = json.loads(out.out)["sessions"]
    _at(monkeypatch, max(datetime.fromisoformat(r["lastActivity"]).timestamp()
                         for r in sessions) + 60)  # fmt: skip
    count = Counter(monkeypatch)
    _three(cli, tokmon_home)
    target = max(corpus_copy.rglob("*.jsonl"), key=lambda p: p.stat().st_size)
    sid = None
    for raw in target.read_text().splitlines():
        if '"sessionId"' in raw:
            sid = json.loads(raw)["sessionId"]
            break
    assert sid is not None
    _append(
        target,
        assistant_line(END, msg_id="real1", req_id="rreal1", session=sid, inp=3, out=4),
    )
    count.reset()
    spliced, scratch, typed = _three(cli, tokmon_home)
    assert spliced == scratch == typed
    assert count.paths[0] == "splice"


def test_the_metadata_file_is_read_once(
    setup: tuple[Path, Any, Counter], tokmon_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``session --json`` built whole reads the metadata store's file once: its digest
    keys the kept answer, its records are merged in."""
    projects, cli, count = setup
    assert cli("session", "name", "s1", "One").code == 0
    import tokmon.fsutil
    import tokmon.metadata.fileio
    from tokmon.paths import get_paths

    meta_file = get_paths({"TOKMON_HOME": str(tokmon_home)}).metadata_file
    assert meta_file.is_file()
    reads: list[str] = []
    real = tokmon.fsutil.read_regular

    def counting(path: Any) -> bytes:
        if Path(path) == meta_file:
            reads.append(str(path))
        return real(path)

    monkeypatch.setattr(tokmon.fsutil, "read_regular", counting)
    monkeypatch.setattr(tokmon.metadata.fileio, "read_regular", counting)
    count.reset()
    got = cli("session", "--json")
    assert got.code == 0, got.err
    assert count.paths == ["build"]
    assert len(reads) == 1, reads
    row = next(r for r in json.loads(got.out)["sessions"] if r["sessionId"] == "s1")
    assert row["name"] == "One"


def _ledger(home: Path) -> Path:
    (ledger,) = (home / "data").glob("ledger-*.sqlite3")
    return ledger


def _append_s0(projects: Path, n: int) -> None:
    _append(
        projects / "-w-app" / "s0.jsonl",
        assistant_line(END - timedelta(hours=2, minutes=n), msg_id=f"a{n}", req_id=f"ra{n}",
                       session="s0", cwd="/w/app", inp=1, out=2 + n),
    )  # fmt: skip


def test_a_writer_that_does_not_log_is_noticed(
    setup: tuple[Path, Any, Counter], tokmon_home: Path
) -> None:
    """A tokmon of before the complete change log (it bumps the generation but logs no
    title change) wrote between two runs: the kept answer is not spliced."""
    projects, cli, count = setup
    assert cli("session", "--json").code == 0
    conn = sqlite3.connect(_ledger(tokmon_home), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE meta SET value = value + 1 WHERE key='gen'")
    conn.execute("INSERT OR REPLACE INTO titles VALUES ('s3', 'custom-title', 'Old writer')")
    conn.execute("COMMIT")
    conn.close()
    count.reset()
    spliced, scratch, typed = _three(cli, tokmon_home)
    assert spliced == scratch == typed and '"Old writer"' in spliced
    assert count.paths[0] == "build"
    _append_s0(projects, 1)  # the next change splices again
    count.reset()
    spliced, scratch, typed = _three(cli, tokmon_home)
    assert spliced == scratch == typed
    assert count.paths[0] == "splice"


def test_a_ledger_of_before_the_count_splices_after_its_first_write(
    setup: tuple[Path, Any, Counter], tokmon_home: Path
) -> None:
    """A ledger made by the version before this change has no ``logged`` count: nothing is
    migrated (the count starts with the first write), its first kept answer is built whole
    and the ones after a change are spliced."""
    projects, cli, count = setup
    assert cli("daily", "--json").code == 0
    conn = sqlite3.connect(_ledger(tokmon_home), isolation_level=None)
    conn.execute("DELETE FROM meta WHERE key='logged'")
    conn.close()
    count.reset()
    first, scratch, typed = _three(cli, tokmon_home)
    assert first == scratch == typed and count.paths[0] == "build"
    _append_s0(projects, 1)  # the first write counts
    count.reset()
    after, scratch, typed = _three(cli, tokmon_home)
    assert after == scratch == typed != first
    assert count.paths[0] == "build"  # kept before the count: not trusted
    _append_s0(projects, 2)
    count.reset()
    again, scratch, typed = _three(cli, tokmon_home)
    assert again == scratch == typed != after
    assert count.paths[0] == "splice"
    conn = sqlite3.connect(_ledger(tokmon_home))
    assert conn.execute("SELECT value FROM meta WHERE key='logged'").fetchone()[0] >= 2
    conn.close()


@pytest.mark.parametrize("imported", [False, True])
def test_kept_json_is_read_as_orjson_reads_it(
    imported: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept answers' JSON (index, rows, plans) is read by the standard library where
    orjson is not imported (``reports._loads``: none imported after an append), by orjson
    where it is, with orjson's answers either way: the same values, out-of-range integers as
    floats, NaN, the infinities, bad UTF-8 and bad JSON refused; a memoryview as the bytes
    it views. What ``reports._dumps`` writes reads back the same."""
    import sys

    from tokmon.cli.reports import _dumps, _loads

    if not imported:
        monkeypatch.delitem(sys.modules, "orjson")

    good = [
        b'{"tokens":[1,2,3,4],"shown":2,"entries":[[1.5,"s\\u00e9",0.25,true,120],[2,"t",0,false,9]]}',
        b"[18446744073709551615, -9223372036854775808, 18446744073709551616, -9223372036854775809]",
        '{"\u00e9\u2028":[null,1e-7,0.00001,-0.0]}'.encode(),
        b'  [ {"a" : {"b": []}} ]\n',
    ]
    for text in good:
        want = orjson.loads(text)
        for raw in (text, memoryview(text)):
            got = _loads(raw)
            assert got == want
            assert json.dumps(got) == json.dumps(want)  # the same types (an int is no float)
    index = {
        "tokens": [1, 2**63 - 1, 0, 7],
        "shown": 1,
        "entries": [["s\u00e9", 1.5, 0.1, True, 9]],
    }
    assert _loads(_dumps(index)) == index
    assert ("orjson" in sys.modules) == imported  # (neither call imported it)
    for bad in (b"[NaN]", b"[Infinity]", b"[-Infinity]", b"\xff", b"[1,]", b"", b'{"a":1'):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(bad)
        with pytest.raises(ValueError):
            _loads(bad)


def test_the_kept_index_in_columns_reads_back_and_refuses_damage() -> None:
    """A kept answer's index (``reports._index_bytes``) reads back as it was written, holds
    no NUL byte (a kept file never does), falls back to JSON for ids it cannot hold, and a
    damaged one is refused (ValueError: the answer is then built whole)."""
    from tokmon.cli.reports import _INDEX_MAGIC, _index_bytes, _index_of

    entries = [
        ["a1", 1795873366.769, 31.513783, True, 1504],
        ["caf\u00e9 \u2028 \U0001f600", 1.0, 0.0, False, 0],
        ["", 0.5, 1e-7, False, 2**40],
    ]
    for tokens, shown, ents in (([1, 2, 3, 2**63 - 1], 2, entries), ([0, 0, 0, 0], 0, [])):
        raw = _index_bytes(tokens, shown, ents)
        assert raw.startswith(_INDEX_MAGIC) and b"\0" not in raw
        assert _index_of(raw) == (tokens, shown, ents)
        assert _index_of(memoryview(raw)) == (tokens, shown, ents)
    for bad_id in ("two\nlines", "nul\0", "\ud800", 7):
        raw = _index_bytes([1, 2, 3, 4], 1, [[bad_id, 1.0, 2.0, True, 3]])
        assert raw.startswith(b"{") and b"\0" not in raw  # JSON, read as before
        assert json.loads(raw)["entries"] == [[bad_id, 1.0, 2.0, True, 3]]
    raw = _index_bytes([1, 2, 3, 4], 2, entries[:2])
    nl = raw.index(b"\n", len(_INDEX_MAGIC))
    damaged = [
        raw[:-1],  # an id cut
        raw + b"x",  # more ids than said
        raw[: nl - 2] + raw[nl:],  # a byte of the columns gone
        raw[:nl] + b"0" + raw[nl:],  # an odd number of hex digits
        raw[: len(_INDEX_MAGIC)] + b"zz" + raw[len(_INDEX_MAGIC) + 2 :],  # not hex
        raw.replace(b"\n", b" ", 2)[: len(_INDEX_MAGIC)]
        + raw[len(_INDEX_MAGIC) :].replace(b"\n", b" ", 1),  # no line for the ids
        raw[: len(_INDEX_MAGIC) + 20],  # short
        raw[:-3] + b"\xff\xfe\n",  # not UTF-8
    ]
    for d in damaged:
        with pytest.raises(ValueError):
            _index_of(d)
