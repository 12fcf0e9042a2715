"""Issue 10, items 5 and 8 at `tokmon ledger import`: another machine's export file is text
someone sends you. Poison values in it are malformed rows (skipped and counted in one line;
they used to fail the whole import on the database's constraints, `IntegrityError`), and its
session ids, paths, models and titles are cleaned like the parser cleans a transcript's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assistant_line, run_tokmon, write_lines

from hostile.hs_support import ESCAPES, EVIL_BYTES

# slow: several CLI processes
pytestmark = pytest.mark.slow


def test_poison_and_escapes_in_an_import_file(tmp_path: Path, env: dict[str, str]) -> None:
    src = tmp_path / "claude" / "projects" / "p" / "a.jsonl"
    write_lines(src, [assistant_line("2026-11-01T10:00:00.000Z", msg_id="m", req_id="r", inp=7)])
    e = {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"), "COLUMNS": "250"}
    exp = tmp_path / "export.json"
    r = run_tokmon(["ledger", "export", str(exp)], e)
    assert r.returncode == 0, r.stderr
    doc = json.loads(exp.read_text())
    (row,) = doc["records"]
    good = [*row[:12], "laptop"]
    good[9] = "other-machine-good"
    good[1], good[2], good[3] = "s" + ESCAPES, "/evil" + ESCAPES, row[3] + ESCAPES
    good[4] = 11
    huge = [*good[:4], 5 * 10**9, *good[5:]]
    huge[9] = "huge"
    late = [1e300, *good[1:]]
    late[9] = "late"
    costly = [*good[:10], 1e301, *good[11:]]
    costly[9] = "costly"
    doc["records"] = [good, huge, late, costly]
    doc["titles"] = {"s" + ESCAPES: {"custom-title": "title" + ESCAPES}}
    exp.write_text(json.dumps(doc))
    # a fresh home: this machine holds only its own transcript's record
    e2 = {**e, "TOKMON_HOME": str(tmp_path / "home2")}
    r = run_tokmon(["ledger", "import", str(exp)], e2)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("tokmon: warning:")]
    assert len(notes) == 1 and "3 malformed" in notes[0], r.stderr
    t = json.loads(run_tokmon(["daily", "--json"], e2).stdout)["totals"]
    assert t["inputTokens"] == 7 + 11
    shown = "".join(
        run_tokmon(argv, e2).stdout
        for argv in (["session"], ["session", "--json"], ["daily", "--breakdown"])
    )
    assert "/evil]52;c;" in shown and "title]52;c;" in shown  # shown, cleaned
    for bad in EVIL_BYTES:
        assert bad not in shown and json.dumps(bad)[1:-1] not in shown, repr(bad)
