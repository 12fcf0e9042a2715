"""Issue 10, items 2, 7 and 8 (ledger side), and "nothing lost".

A ledger holds the only copy of the usage of deleted transcripts. Every fault below starts
from a ledger whose biggest transcript was deleted (history: 1010 in / 510 out; the
remaining transcript alone: 10 / 10). After the fault, a report must finish (no
self-deadlock), exit 0, and either still count the deleted history or name the kept copy
of the old ledger in a one-line notice (the copy then holds the old bytes).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import assistant_line, run_tokmon, write_lines

# slow: several CLI processes per test
pytestmark = pytest.mark.slow

FULL = (1010, 510)  # old.jsonl (deleted) 10 x 100/50 + new.jsonl 10 x 1/1
REMAINING = (10, 10)


def _totals(r: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    t = json.loads(r.stdout)["totals"]
    return t["inputTokens"], t["outputTokens"]


def _line(i: int, prefix: str, inp: int, out: int) -> str:
    return assistant_line(
        "2026-11-01T10:00:00.000Z",
        msg_id=f"{prefix}{i}",
        req_id=f"r{prefix}{i}",
        inp=inp,
        out=out,
        session=f"{prefix}-session",
        cc=0,
        cr=0,
    )


@pytest.fixture
def history(
    tmp_path: Path, env: dict[str, str], tokmon_home: Path
) -> tuple[dict[str, str], Path, Path]:
    """(env, ledger file, the remaining transcript) after the big transcript was deleted."""
    proj = tmp_path / "claude" / "projects" / "p"
    write_lines(proj / "old.jsonl", [_line(i, "o", 100, 50) for i in range(10)])
    write_lines(proj / "new.jsonl", [_line(i, "n", 1, 1) for i in range(10)])
    e = {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    assert _totals(run_tokmon(["daily", "--json"], e)) == FULL
    (proj / "old.jsonl").unlink()
    assert _totals(run_tokmon(["daily", "--json"], e)) == FULL  # history kept
    ledger = next((tokmon_home / "data").glob("ledger-*.sqlite3"))
    return e, ledger, proj / "new.jsonl"


def _as_json_v4(db: Path) -> dict[str, Any]:
    """The database's content in the JSON format of tokmon before the database (version 4)."""
    con = sqlite3.connect(db)
    try:
        cols = "ts, session, project, model, input, output, cc, c1h, cr, key, cost, display_cost"
        recs = [list(r) for r in con.execute(f"SELECT {cols} FROM records ORDER BY rowid")]
        files = {
            r[0]: list(r[1:])
            for r in con.execute("SELECT path, dev, ino, size, mtime_ns, off, fp FROM files")
        }
        titles: dict[str, dict[str, str]] = {}
        for sid, kind, title in con.execute("SELECT session, kind, title FROM titles"):
            titles.setdefault(sid, {})[kind] = title
        sig = con.execute("SELECT value FROM meta WHERE key='prices'").fetchone()[0]
    finally:
        con.close()
    return {"version": 4, "priceSignature": sig, "files": files, "titles": titles, "records": recs}


def _json_ledger(ledger: Path, doc: dict[str, Any]) -> Path:
    """Replace the database by a JSON ledger of an older tokmon holding ``doc``."""
    for p in [ledger, *ledger.parent.glob(ledger.name + "-*")]:
        p.unlink()
    old = ledger.with_suffix(".json")
    old.write_text(json.dumps(doc))
    return old


def _notices(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("tokmon: warning:")]


def _kept_copy(ledger: Path, stderr: str) -> Path:
    """The one notice names a kept copy that exists next to the ledger."""
    notes = _notices(stderr)
    assert len(notes) == 1, stderr
    copies = [
        p
        for p in ledger.parent.iterdir()
        if p.name.startswith(ledger.name + ".") and not p.name.endswith((".tmp", ".lock"))
    ]
    assert len(copies) == 1, copies
    assert copies[0].name in notes[0]
    if os.name == "posix" and copies[0].is_file():  # renamed, never copied: still private
        assert stat.S_IMODE(copies[0].stat().st_mode) == 0o600, copies[0]
        assert stat.S_IMODE(ledger.stat().st_mode) == 0o600  # the rebuilt one
    return copies[0]


def _keep_mtime(path: Path, damage: Any) -> bytes:
    st = path.stat()
    damage(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return path.read_bytes()


@pytest.mark.parametrize("append", [True, False], ids=["with-new-data", "nothing-new"])
def test_corrupt_after_index_trusted_no_deadlock(
    history: tuple[dict[str, str], Path, Path], append: bool
) -> None:
    """Same-size corruption with the mtime kept: the index still matches, the ledger does not
    load. This used to re-enter refresh() and wait 600 s on its own lock."""
    e, ledger, new = history
    bad = _keep_mtime(ledger, lambda p: p.write_bytes(b"X" + p.read_bytes()[1:]))
    if append:
        write_lines(new, [_line(99, "x", 1, 1)])
    # (with nothing new, `daily --json` may be answered by its cache of the same ledger
    # stamp, which holds the good pre-corruption figures: ask an uncached report)
    report = "daily" if append else "session"
    r = run_tokmon([report, "--json"], e, timeout=60)  # TimeoutExpired = the old deadlock
    extra = 1 if append else 0
    assert _totals(r) == (REMAINING[0] + extra, REMAINING[1] + extra)
    copy = _kept_copy(ledger, r.stderr)
    assert copy.read_bytes() == bad  # the deleted history is in the named copy
    r2 = run_tokmon([report, "--json"], e, timeout=60)
    assert _totals(r2) == _totals(r) and not _notices(r2.stderr)  # rebuilt once, then quiet


def test_unreadable_ledger_is_kept_aside(history: tuple[dict[str, str], Path, Path]) -> None:
    e, ledger, _ = history
    data = ledger.read_bytes()
    ledger.unlink()
    ledger.mkdir()  # reading it fails with an OS error (EISDIR), whoever runs the test
    (ledger / "inside").write_bytes(data)
    r = run_tokmon(["daily", "--json"], e, timeout=60)
    assert _totals(r) == REMAINING
    copy = _kept_copy(ledger, r.stderr)
    assert (copy / "inside").read_bytes() == data
    assert ledger.is_file()


@pytest.mark.parametrize(
    "content", [b"\x00\x01garbage", b'{"version": 1, "records": []}', b'{"version": "4"}', b"[]"]
)
def test_corrupt_or_unmigratable_ledger_is_kept_aside(
    history: tuple[dict[str, str], Path, Path], content: bytes
) -> None:
    e, ledger, _ = history
    ledger.write_bytes(content)
    r = run_tokmon(["daily", "--json"], e)
    assert _totals(r) == REMAINING
    assert _kept_copy(ledger, r.stderr).read_bytes() == content


def test_newer_ledger_is_never_overwritten(history: tuple[dict[str, str], Path, Path]) -> None:
    e, ledger, new = history
    con = sqlite3.connect(ledger)
    with con:
        con.execute("UPDATE meta SET value=99 WHERE key='schema'")
        con.execute("CREATE TABLE something_new (a INTEGER)")
    con.close()
    before = ledger.read_bytes()
    write_lines(new, [_line(99, "x", 1, 1)])
    for _ in range(2):
        r = run_tokmon(["daily", "--json"], e)
        assert _totals(r) == (REMAINING[0] + 1, REMAINING[1] + 1)  # from transcripts only
        notes = _notices(r.stderr)
        assert len(notes) == 1 and "newer tokmon" in notes[0] and "upgrade" in notes[0]
    assert ledger.read_bytes() == before
    assert [p.name for p in ledger.parent.iterdir() if p.name.startswith(ledger.name + ".")] == []


def _as_v3(doc: dict[str, Any]) -> dict[str, Any]:
    """The format written by tokmon up to 6e2d9fc: version 3, 5-field file states."""
    return {
        "version": 3,
        "priceSignature": doc["priceSignature"],
        "files": {k: v[:5] for k, v in doc["files"].items()},
        "titles": doc["titles"],
        "records": doc["records"],
    }


def _as_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Format 2: key first, session/project/model interned in a string table."""
    strings: list[str] = []

    def s(v: str) -> int:
        if v not in strings:
            strings.append(v)
        return strings.index(v)

    recs = [[r[9], r[0], s(r[1]), s(r[2]), s(r[3]), *r[4:9], r[10], r[11]] for r in doc["records"]]
    return {
        "version": 2,
        "priceSignature": doc["priceSignature"],
        "files": {k: v[:5] for k, v in doc["files"].items()},
        "titles": doc["titles"],
        "strings": strings,
        "records": recs,
    }


def _as_v4(doc: dict[str, Any]) -> dict[str, Any]:
    return doc


@pytest.mark.parametrize("convert", [_as_v4, _as_v3, _as_v2], ids=["v4", "v3", "v2"])
def test_json_ledger_is_migrated(history: tuple[dict[str, str], Path, Path], convert: Any) -> None:
    """A JSON ledger (any format tokmon wrote) moves into the database with every record,
    including those of deleted transcripts; the old file is kept renamed."""
    e, ledger, _ = history
    before = run_tokmon(["session", "--json"], e)
    old_json = _json_ledger(ledger, convert(_as_json_v4(ledger)))
    old = old_json.read_bytes()
    r = run_tokmon(["daily", "--json"], e)
    assert _totals(r) == FULL  # the deleted transcript's usage survived the migration
    notes = _notices(r.stderr)
    copies = [p for p in ledger.parent.iterdir() if p.name.startswith(old_json.name + ".")]
    assert len(notes) == 1 and len(copies) == 1 and copies[0].name in notes[0], r.stderr
    assert ".migrated-" in copies[0].name and copies[0].read_bytes() == old
    assert not old_json.exists() and ledger.is_file()
    r2 = run_tokmon(["session", "--json"], e)
    assert r2.stdout == before.stdout and not _notices(r2.stderr)


def _damage(kind: str, doc: dict[str, Any]) -> None:
    """Valid JSON, wrong types or poison values, in a record of the remaining transcript."""
    i = next(i for i, r in enumerate(doc["records"]) if r[1] == "n-session")
    if kind == "rec_ts_string":
        doc["records"][i][0] = "x"
    elif kind == "rec_tokens_huge":
        doc["records"][i][5] = 10**15
    elif kind == "rec_short":
        doc["records"][i] = doc["records"][i][:5]
    elif kind == "titles_list":
        doc["titles"] = []
    elif kind == "titles_badinner":
        doc["titles"] = {"s": "x"}
    elif kind == "file_state_strings":
        for k in doc["files"]:
            doc["files"][k] = ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    "kind",
    [
        "rec_ts_string",
        "rec_tokens_huge",
        "rec_short",
        "titles_list",
        "titles_badinner",
        "file_state_strings",
    ],
)
def test_wrong_types_are_dropped_not_fatal(
    history: tuple[dict[str, str], Path, Path], kind: str
) -> None:
    e, ledger, _ = history
    doc = _as_json_v4(ledger)
    _damage(kind, doc)
    _json_ledger(ledger, doc)
    for report in ("daily", "session", "blocks"):
        r = run_tokmon([report, "--json"], e)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (report, r.stderr)
    r = run_tokmon(["daily", "--json"], e)
    assert _totals(r) == FULL  # the bad value was dropped; the transcript gave it back
    r = run_tokmon(["stats"], e)
    assert r.returncode == 0, r.stderr


# -- the database written around its schema (issue 10, item 8 for the SQLite ledger) -------


def _loosen(ledger: Path, like: str, *writes: str) -> None:
    """Rewrite the schema of the tables named ``LIKE like`` without ``STRICT`` (as a tool
    other than tokmon could), then store values of the wrong type with ``writes``."""
    con = sqlite3.connect(ledger, isolation_level=None)
    try:
        con.execute("PRAGMA writable_schema=ON")
        con.execute(
            "UPDATE sqlite_master SET sql=replace(replace(sql, 'STRICT,', ''), ') STRICT', ')')"
            " WHERE type='table' AND name LIKE ?",
            (like,),
        )
        con.execute("PRAGMA writable_schema=OFF")
    finally:
        con.close()
    con = sqlite3.connect(ledger, isolation_level=None)  # the loose schema is read on open
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.execute("PRAGMA ignore_check_constraints=ON")
        for w in writes:
            con.execute(w)
    finally:
        con.close()


_REPORTS = (["daily"], ["session"], ["blocks"], ["monthly"], ["daily", "--breakdown"])


def _every_report_runs(e: dict[str, str]) -> None:
    for report in _REPORTS:
        r = run_tokmon([*report, "--json"], e)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (report, r.stderr)
    r = run_tokmon(["stats"], e)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_ledger_with_a_loose_schema_is_kept_aside(
    history: tuple[dict[str, str], Path, Path],
) -> None:
    """Wrong types in the tables that hold history (their schema rewritten without STRICT):
    not a database tokmon wrote, so its values are not trusted one by one: it is kept aside
    whole (named in the one notice) and rebuilt; never a crash."""
    e, ledger, _ = history
    _loosen(
        ledger,
        "%",
        "UPDATE records SET input='lots', ts='x' WHERE session='o-session' AND key LIKE 'o1%'",
        "UPDATE files SET off='x'",
        "INSERT INTO titles VALUES ('o-session', 'custom-title', 42)",
        "INSERT INTO agent_state VALUES ('codex', 'not a blob')",
        "UPDATE meta SET value='x' WHERE key='gen'",
    )
    bad = ledger.read_bytes()
    r = run_tokmon(["daily", "--json"], e)
    assert _totals(r) == REMAINING
    copy = _kept_copy(ledger, r.stderr)
    assert "not STRICT" in _notices(r.stderr)[0]
    assert copy.read_bytes() == bad  # the deleted history is in the named copy
    _every_report_runs(e)
    r2 = run_tokmon(["stats", "--json"], e)
    assert r2.returncode == 0 and not _notices(r2.stderr), r2.stderr


def test_stored_sums_with_a_loose_schema_are_rebuilt(
    history: tuple[dict[str, str], Path, Path],
) -> None:
    """Wrong types in the stored sums (derived data): rebuilt from the records, history kept;
    `stats` used to die on `int += str`."""
    e, ledger, _ = history
    _loosen(
        ledger,
        "rollup%",
        "UPDATE rollup_total SET i='x'",
        "UPDATE rollup_cell SET o='x', first='y'",
        "UPDATE rollup_session SET last='z'",
    )
    _every_report_runs(e)
    for report in ("daily", "session", "monthly"):
        assert _totals(run_tokmon([report, "--json"], e)) == FULL, report
    assert not list(ledger.parent.glob(ledger.name + ".*-*"))  # nothing kept aside: not needed


def test_values_written_around_the_constraints_are_never_counted(
    history: tuple[dict[str, str], Path, Path],
) -> None:
    """The schema intact but its CHECK constraints bypassed: a 10^15-token row and a row dated
    in the year 287,000 are skipped by every record query (never counted, never a crash)."""
    e, ledger, _ = history
    con = sqlite3.connect(ledger, isolation_level=None)
    try:
        con.execute("PRAGMA ignore_check_constraints=ON")
        con.execute("UPDATE records SET input=1000000000000000 WHERE key LIKE 'o1:%'")
        con.execute("UPDATE records SET ts=9e12 WHERE key LIKE 'o2:%'")
        assert con.total_changes == 2
    finally:
        con.close()
    _every_report_runs(e)
    r = run_tokmon(["session", "--id", "o-session", "--json"], e)
    assert r.returncode == 0, r.stderr
    entries = json.loads(r.stdout)["entries"]
    assert len(entries) == 8 and all(x["inputTokens"] == 100 for x in entries)
    for report in ("daily", "session", "monthly", "weekly"):
        t = _totals(run_tokmon([report, "--json"], e))
        assert t[0] < 10**9, (report, t)  # the poison value never reaches a total


def test_corruption_found_while_merging_rebuilds_within_the_refresh(
    history: tuple[dict[str, str], Path, Path],
) -> None:
    """The database opens (its first page and small tables are fine) but the records' pages
    are damaged, size and mtime kept: the merge finds it, the file is kept aside and the scan
    runs again inside the same refresh (no nested refresh, no wait on its own lock)."""
    e, ledger, new = history
    con = sqlite3.connect(ledger)
    try:
        page = con.execute("PRAGMA page_size").fetchone()[0]
        roots = [
            r[0]
            for r in con.execute(
                "SELECT rootpage FROM sqlite_master WHERE tbl_name='records' AND rootpage > 0"
            )
        ]
    finally:
        con.close()

    def damage(p: Path) -> None:
        data = bytearray(p.read_bytes())
        for root in roots:  # page numbers start at 1
            data[(root - 1) * page : root * page] = b"\xa5" * page
        p.write_bytes(bytes(data))

    bad = _keep_mtime(ledger, damage)
    write_lines(new, [_line(99, "x", 1, 1)])
    r = run_tokmon(["daily", "--json"], e, timeout=60)
    assert _totals(r) == (REMAINING[0] + 1, REMAINING[1] + 1)
    copy = _kept_copy(ledger, r.stderr)
    assert "malformed" in _notices(r.stderr)[0]
    assert copy.read_bytes() == bad
    r2 = run_tokmon(["session", "--json"], e, timeout=60)
    assert _totals(r2) == _totals(r) and not _notices(r2.stderr)


def test_range_sums_and_last_before_skip_rows_written_around_the_constraints(
    tmp_path: Path,
) -> None:
    """The two record queries that aggregate in SQL (period sums when the stored sums are
    unavailable, the latest record before a time for the current block) apply the same
    guards as every other record query."""
    from tokmon.core.ledger import LedgerDB
    from tokmon.core.model import UsageRecord

    path = tmp_path / "l.sqlite3"
    db = LedgerDB(path)
    db.merge([UsageRecord(1.8e9, "s", "/p", "m", 7, 3, 0, 0, 0, "ok", 0.5, None)])
    db.close()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA ignore_check_constraints = ON")
        cols = "ts, session, project, model, input, output, cc, c1h, cr, key, cost, display_cost"
        for ts, inp, key in ((1.85e9, 10**15, "huge"), (9e12, 1, "late"), (-5.0, 1, "early")):
            con.execute(
                f"INSERT INTO records ({cols}) VALUES (?, 's', '/p', 'm', ?, 1, 0, 0, 0, ?, 0, NULL)",
                (ts, inp, key),
            )
    finally:
        con.close()
    db = LedgerDB(path)
    try:
        assert db.sums(float("-inf"), float("inf")) == (1, 7, 3, 0, 0, 0.5)
        assert db.last_before(1.9e9) == 1.8e9
        assert db.last_before(1e13) == 1.8e9
        assert db.last_before(1.7e9) is None
    finally:
        db.close()


def test_migrated_json_ledger_text_is_cleaned(history: tuple[dict[str, str], Path, Path]) -> None:
    """Item 5 at the migration: a JSON ledger written before text was cleaned where it enters
    may hold a deleted transcript's raw title, cwd, model and session id; they are cleaned on
    import like the parser cleans them, so no surface prints them raw."""
    from hostile.hs_support import ESCAPES, EVIL_BYTES

    e, ledger, _ = history
    doc = _as_json_v4(ledger)
    for r in doc["records"]:
        if r[1] == "o-session":
            r[1], r[2], r[3] = "o-session" + ESCAPES, "/evil" + ESCAPES, r[3] + ESCAPES
    doc["titles"] = {"o-session" + ESCAPES: {"custom-title": "title" + ESCAPES}}
    _json_ledger(ledger, doc)
    outputs = []
    for argv in (
        ["daily", "--json"],
        ["session", "--json"],
        ["session"],
        ["daily", "--breakdown"],
        ["session", "list"],
        ["blocks", "--json"],
    ):
        r = run_tokmon(argv, {**e, "COLUMNS": "250"})
        assert r.returncode == 0, (argv, r.stderr)
        outputs.append(r.stdout)
    assert _totals(run_tokmon(["daily", "--json"], e)) == FULL
    text = "".join(outputs)
    assert "/evil" in text and "title" in text  # the values are shown, cleaned
    for bad in EVIL_BYTES:
        assert bad not in text and json.dumps(bad)[1:-1] not in text, repr(bad)
