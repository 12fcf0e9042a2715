"""Issue 10, item 8 (transcripts): poison usage values and timestamps are malformed input.

One transcript mixes good responses with poison ones. Every report (in several zones)
exits 0 with the totals of the good lines alone and the usual one warning line; the
ledger is saved and loads again.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import assistant_line, run_tokmon, write_lines

# slow: every report as a CLI process per zone
pytestmark = pytest.mark.slow

GOOD = [(f"g{i}", 10 + i, 5) for i in range(6)]  # (id, input, output)
GOOD_IN = sum(i for _, i, _ in GOOD)
GOOD_OUT = sum(o for _, _, o in GOOD)

POISON_USAGE = [
    "1e308",
    "18446744073709551616",
    "18446744073709551615",
    "123456789012345678901234567890",
    "1e400",
]
POISON_TS = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T20:00:00Z",
]


def _raw(mid: str, ts: str, out: str, legacy: str | None = None) -> str:
    """A compact assistant line with the usage number spliced in as raw JSON text."""
    line = assistant_line(
        ts, msg_id=mid, req_id="r" + mid, inp=1, out=424242, session="poison-session"
    )
    line = line.replace('"output_tokens":424242', f'"output_tokens":{out}')
    if legacy is not None:
        line = line[:-1] + f',"costUSD":{legacy}}}'
    return line


@pytest.fixture
def poisoned(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    lines = [
        assistant_line("2026-11-01T10:00:00.000Z", msg_id=m, req_id="r" + m, inp=i, out=o)
        for m, i, o in GOOD
    ]
    lines += [_raw(f"u{k}", "2026-11-01T11:00:00.000Z", v) for k, v in enumerate(POISON_USAGE)]
    lines += [_raw(f"t{k}", ts, "3") for k, ts in enumerate(POISON_TS)]
    lines += [_raw("c1", "2026-11-01T11:00:00.000Z", "3", legacy="1e308")]
    write_lines(tmp_path / "claude" / "projects" / "p" / "a.jsonl", lines)
    return {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"])
def test_poison_lines_are_skipped_in_every_report(
    poisoned: dict[str, str], zone: str, tokmon_home: Path
) -> None:
    for report in ("daily", "weekly", "monthly", "session", "blocks"):
        r = run_tokmon([report, "--json", "-z", zone], poisoned)
        assert r.returncode == 0, (report, r.stderr)
        assert "Traceback" not in r.stderr and "error" not in r.stderr
        doc = json.loads(r.stdout)
        if report == "blocks":
            got = (
                sum(b["tokenCounts"]["inputTokens"] for b in doc["blocks"]),
                sum(b["tokenCounts"]["outputTokens"] for b in doc["blocks"]),
            )
        else:
            got = (doc["totals"]["inputTokens"], doc["totals"]["outputTokens"])
        assert got == (GOOD_IN, GOOD_OUT), report
    local = {**poisoned, "TZ": zone}  # the live surfaces use the local zone
    for argv in (["stats"], [], ["line", "--sync"]):
        r = run_tokmon(argv, local)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (argv, r.stderr)
        assert "tokmon …" not in r.stdout


def test_one_warning_and_the_ledger_saves(poisoned: dict[str, str], tokmon_home: Path) -> None:
    r = run_tokmon(["daily", "--json"], poisoned)
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    n_bad = len(POISON_USAGE) + len(POISON_TS) + 1
    assert len(warnings) == 1 and f"{n_bad} malformed" in warnings[0], r.stderr
    assert "cannot save" not in r.stderr
    ledger = next((tokmon_home / "data").glob("ledger-*.sqlite3"))
    con = sqlite3.connect(ledger)  # a valid database, nothing huge in it
    try:
        big = con.execute("SELECT max(max(input, output, cc, c1h, cr)) FROM records").fetchone()
    finally:
        con.close()
    assert 0 < big[0] < 2**63
    r2 = run_tokmon(["daily", "--json"], poisoned)
    assert r2.returncode == 0 and not r2.stderr.strip()  # loaded back, nothing to re-read
    assert json.loads(r2.stdout)["totals"]["inputTokens"] == GOOD_IN


def test_other_agents_poison_values_are_skipped(tmp_path: Path, env: dict[str, str]) -> None:
    """A Codex rollout with a 10^15-token event and one dated in the year 9999: both are
    malformed input (one warning line), the good event counts; they used to count, a
    billion-dollar session."""
    day = tmp_path / "codex" / "sessions" / "2026" / "11" / "01"
    day.mkdir(parents=True)
    ts = "2026-11-01T10:00:00.000Z"

    def usage(inp: int) -> dict[str, int]:
        return {"input_tokens": inp, "cached_input_tokens": 0, "output_tokens": 7,
                "reasoning_output_tokens": 0, "total_tokens": inp + 7}  # fmt: skip

    def event(when: str, total: int, last: int) -> dict[str, object]:
        return {"timestamp": when, "type": "event_msg", "payload": {"type": "token_count",
                "info": {"total_token_usage": usage(total), "last_token_usage": usage(last)}}}  # fmt: skip

    lines = [
        {"timestamp": ts, "type": "session_meta", "payload": {"id": "s", "cwd": "/w", "timestamp": ts}},
        {"timestamp": ts, "type": "turn_context", "payload": {"model": "gpt-5", "cwd": "/w"}},
        event(ts, 10**15, 10**15),
        event("9999-12-31T23:00:00Z", 10**15 + 5, 5),
        event(ts, 10**15 + 15, 10),
    ]  # fmt: skip
    (day / "rollout-2026-11-01T10-00-00-a.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines)
    )
    e = {
        **env,
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
        "CODEX_HOME": str(tmp_path / "codex"),
    }
    (tmp_path / "claude" / "projects").mkdir(parents=True)
    for n in range(2):
        r = run_tokmon(["session", "--agent", "codex", "--json"], e)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        t = json.loads(r.stdout)["totals"]
        assert (t["inputTokens"], t["outputTokens"]) == (10, 7)
        notes = [ln for ln in r.stderr.splitlines() if "malformed" in ln]
        assert len(notes) == (1 if n == 0 else 0), r.stderr  # said when first read
        assert n == 1 or "2 codex" in notes[0]
