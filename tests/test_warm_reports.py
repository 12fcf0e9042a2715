"""Issue 12: warm reports cost the answer plus a change check, not the whole CLI.

What the warm-report work changed, checked against the code it replaced or bypasses: the CLI
builds only the command's parser group (the table of commands matches what the groups
register, and parses alike); a report imports no other command group; ISO times read as
``datetime`` writes them; ``session --json`` from the stored sums is byte for byte the typed
rows' JSON; the change check finds what the sorted walk finds; invalid file states are still
dropped. Latency itself is measured by bench/bench_engine.py.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import assistant_line, corpus_path, need_corpus, write_lines

from tokmon.cli import main as cli_main
from tokmon.core import digest, discovery
from tokmon.core.engine import Engine
from tokmon.core.ledger import LedgerDB
from tokmon.core.timeutil import iso
from tokmon.demo import generate
from tokmon.paths import get_paths

END = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)


# ---- the CLI builds one parser group ---------------------------------------------------------


def _registered() -> dict[str, str]:
    """Each command and the group that registers it, by registering every group."""
    parent = cli_main.global_options()
    parser = argparse.ArgumentParser(prog="tokmon", parents=[parent])
    sub = parser.add_subparsers(dest="command")
    got: dict[str, str] = {}
    for name in cli_main.GROUPS:
        before = set(sub.choices)
        importlib.import_module(f"tokmon.cli.{name}").register(sub, parent)
        for cmd in set(sub.choices) - before:
            got[cmd] = name
    return got


def test_command_table_is_what_the_groups_register() -> None:
    assert cli_main.COMMANDS == _registered()


@pytest.mark.parametrize(
    ("argv", "group"),
    [
        (["daily", "--json"], "reports"),
        (["--json", "session"], "session"),
        (["--log-level", "debug", "blocks"], "reports"),
        (["--log-level=debug", "--no-color", "claude", "daily"], "reports"),
        (["--config", "daily", "weekly"], "reports"),  # --config's value is no command
        (["--demo"], "stats"),
        ([], "stats"),
        (["doctor"], "doctor"),
        (["--help"], None),
        (["--version"], None),
        (["--js", "daily"], None),  # an abbreviation: the full parser decides
        (["dialy"], None),  # unknown: the full parser says so, with every choice
    ],
)
def test_command_group(argv: list[str], group: str | None) -> None:
    assert cli_main.command_group(argv) == group
    name = cli_main.command_name(argv)
    assert (name is None) == (group in (None, "stats")), name
    if name is not None:
        assert name in argv and cli_main.COMMANDS[name] == group


def _parsed(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, Any]:
    ns = vars(parser.parse_args(argv))
    handler = ns.pop("handler", None)
    # a report's handler is a lambda per parser: compare what it runs
    ns["handler"] = None if handler is None else (handler.__qualname__, handler.__defaults__)
    return ns


@pytest.mark.parametrize(
    "argv",
    [
        ["daily", "--json", "-s", "20260101", "-z", "UTC"],
        ["--json", "blocks", "--active", "-t", "max"],
        ["--log-level", "debug", "monthly", "-p", "app"],
        ["claude", "session", "--json"],
        ["session", "--all", "-o", "desc"],
        ["session", "list", "--tag", "x", "--sort", "cost"],
        ["claude", "monthly", "--breakdown"],
        ["weekly", "-w", "monday", "--json"],
        ["--no-color", "doctor"],
        ["ledger"],
        [],
    ],
)
def test_one_group_parses_like_every_group(argv: list[str]) -> None:
    group, command = cli_main.command_group(argv), cli_main.command_name(argv)
    assert group is not None
    narrow = cli_main.build_parser([group], command)
    assert _parsed(narrow, argv) == _parsed(cli_main.build_parser(), argv)


def test_unknown_command_still_lists_every_command(cli: Any) -> None:
    r = cli("dialy")
    assert r.code == 2
    assert "invalid choice: 'dialy'" in r.err and "'daily'" in r.err and "'doctor'" in r.err


def _imported(argv: list[str], env: dict[str, str]) -> set[str]:
    """Modules a ``tokmon`` run imports beyond what the bare interpreter already has (a site's
    ``.pth`` files may import ``tempfile`` and more before any tokmon code runs)."""
    return _importtime(["-m", "tokmon", *argv], env) - _importtime(["-c", "pass"], env)


def _importtime(args: list[str], env: dict[str, str]) -> set[str]:
    r = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return {
        ln.rsplit("|", 1)[1].strip()
        for ln in r.stderr.splitlines()
        if ln.startswith("import time:") and "|" in ln
    }


def test_a_report_imports_only_its_group(env: dict[str, str], tmp_path: Path) -> None:
    claude = tmp_path / "claude"
    write_lines(
        claude / "projects" / "-p" / "s1.jsonl",
        [assistant_line(END, msg_id="m1", req_id="r1", session="s1")],
    )
    env = {**env, "CLAUDE_CONFIG_DIR": str(claude)}
    for argv in (["daily", "--json"], ["blocks", "--json"], ["session", "--json"]):
        _imported(argv, env)  # the first run scans and writes
        names = _imported(argv, env)  # warm: nothing changed
        cli_mods = {n for n in names if n.startswith("tokmon.cli.")}
        group = "tokmon.cli." + cli_main.COMMANDS[argv[0]]
        assert cli_mods <= {"tokmon.cli.main", "tokmon.cli.context", "tokmon.cli.render",
                            "tokmon.cli.reports", group}, sorted(cli_mods)  # fmt: skip
        # the Summary's rows, writing helpers and other commands' chains stay out; so does
        # hashlib (OpenSSL's _hashlib, ~2.5 ms): the digests come from tokmon.core.digest
        out = {
            "tokmon.core.summary_rows",
            "tempfile",
            "shutil",
            "subprocess",
            "hashlib",
            "_hashlib",
        }
        assert not names & out, sorted(names & out)
        # daily from the report cache, session from the stored sums, blocks as a BlocksReport
        # (tokmon.core.rows_blocks): none defines the other typed rows' dataclasses
        assert "tokmon.core.rows" not in names
        # no config file, so no budget: tokmon.budgets (~2 ms) is not imported to learn that
        assert "tokmon.budgets" not in names


def test_budget_config_missing_or_present(cli: Any, tmp_path: Path) -> None:
    """report_budgets skips tokmon.budgets only when the config file does not exist (no
    budgets key, no warning); a config with a budget still adds the budgets key (a list of
    the ones that apply) to the daily report, first computed and then from the cache, and to the
    session report answered from the stored sums."""
    claude = tmp_path / "claude"
    write_lines(
        claude / "projects" / "-p" / "s1.jsonl",
        [assistant_line(END, msg_id="m1", req_id="r1", session="s1")],
    )
    good = tmp_path / "good.toml"
    good.write_text('[[budgets]]\nname = "b"\nperiod = "month"\ntokens = 1000000\n', "utf-8")
    base = {"CLAUDE_CONFIG_DIR": str(claude)}
    for kind in ("daily", "session"):
        for _ in range(2):  # the second daily is answered from the report cache
            missing = cli(kind, "--json", extra_env={**base, "TOKMON_CONFIG": str(tmp_path / "no")})
            assert missing.code == 0 and "budgets" not in orjson.loads(missing.out)
            assert missing.err == ""
            ok = cli(kind, "--json", extra_env={**base, "TOKMON_CONFIG": str(good)})
            assert ok.code == 0, ok.err
            # (session lists tag budgets only, so its list is empty here, but present)
            assert isinstance(orjson.loads(ok.out).get("budgets"), list), ok.out[-300:]


def test_digests_are_hashlibs() -> None:
    """tokmon.core.digest (built-in _sha1/_blake2) gives hashlib's digests: the ledger's file
    name, the report cache's keys and the stored fingerprints stay the same."""
    rng = random.Random(7)
    datas = [b"", b"x", "/home/\u00e9\n/r".encode()] + [rng.randbytes(rng.randrange(9000))
                                                   for _ in range(50)]  # fmt: skip
    for data in datas:
        assert digest.sha1_hex(data) == hashlib.sha1(data).hexdigest()
        for size in (8, 12, 64):
            h = digest.blake2b(size)
            h.update(data)
            h.update(data[:5])
            want = hashlib.blake2b(digest_size=size)
            want.update(data + data[:5])
            assert h.hexdigest() == want.hexdigest()


# ---- ISO times ----------------------------------------------------------------------------------


def _iso_by_datetime(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def test_iso_reads_as_datetime_writes() -> None:
    rng = random.Random(12)
    values = [0.0, 0.0005, 0.0004999, 0.9995, 0.9999995, 0.9999994, 59.9999996, 3599.9999996]
    values += [86400 * 365 * 300 + 0.5, 253402300799.999]  # the year 2270, the last fast second
    values += [rng.uniform(0, 4e9) for _ in range(20_000)]
    values += [1_700_000_000 + j / 2e6 for j in range(0, 4_000_001, 997)]  # half-microsecond ties
    values += [rng.randrange(1_600_000_000, 1_900_000_000) + rng.randrange(1000) / 1000
               for _ in range(20_000)]  # fmt: skip
    bad = [v for v in values if iso(v) != _iso_by_datetime(v)]
    assert not bad, [(v, iso(v), _iso_by_datetime(v)) for v in bad[:5]]


def test_iso_outside_the_fast_range_is_datetime_s() -> None:
    assert iso(-1.5) == _iso_by_datetime(-1.5)
    with pytest.raises((ValueError, OverflowError, OSError)):
        iso(1e20)


# ---- session --json from the stored sums ----------------------------------------------------


def _engine(root: Path, home: Path) -> Engine:
    eng = Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(home)}), persist=False)
    eng.refresh()
    return eng


def _check_session_json(eng: Engine) -> None:
    assert eng._stored(None) is not None  # the stored sums answer
    last = max(r.ts for r in eng.records)
    for now in (last + 60, last + 6 * 3600, time.time()):
        for empty in (False, True):
            fast = eng.session_report_json(now=now, include_empty=empty)
            typed = eng.report("session", now=now, include_empty=empty)
            assert fast is not None
            assert orjson.dumps(fast) == orjson.dumps(typed.to_json())
    assert eng.session_report_json(since="20200101") is None  # a filter: the typed rows answer
    assert eng.session_report_json(project="x") is None


def test_session_json_equals_typed_rows_generated(tmp_path: Path) -> None:
    generate(tmp_path / "claude", size_mb=8, seed=11, end=END, days=24)
    eng = _engine(tmp_path / "claude" / "projects", tmp_path / "home")
    _check_session_json(eng)
    assert any(s["title"] for s in eng.session_report_json()["sessions"])  # type: ignore[index]


def test_session_json_equals_typed_rows_real_corpus(tmp_path: Path) -> None:
    root = corpus_path()
    if not root.is_dir():
        need_corpus(root)
    _check_session_json(_engine(root / "projects", tmp_path / "home"))


def test_session_json_edge_sessions(tmp_path: Path) -> None:
    """0-token sessions, synthetic-model lines, equal costs (stable order), subagent files."""
    proj = tmp_path / "claude" / "projects" / "-w-app"
    t = END.timestamp()

    def at(s: float) -> datetime:
        return datetime.fromtimestamp(t + s, timezone.utc)

    write_lines(proj / "a.jsonl", [
        assistant_line(at(0), msg_id="a1", req_id="r", session="a", inp=5, out=5),
        assistant_line(at(10), msg_id="a2", req_id="r", session="a", model="<synthetic>",
                       inp=0, out=0),
        assistant_line(at(20), msg_id="a3", req_id="r", session="a",
                       model="claude-opus-4-1-20250805", inp=1, out=1),
    ])  # fmt: skip
    write_lines(
        proj / "b.jsonl",
        [
            assistant_line(at(5), msg_id="b1", req_id="r", session="b", inp=5, out=5),
        ],
    )  # same cost as a's sonnet part
    write_lines(
        proj / "z.jsonl",
        [
            assistant_line(at(7), msg_id="z1", req_id="r", session="z", inp=0, out=0),
        ],
    )  # 0 tokens: listed only with --all
    write_lines(proj / "a" / "subagents" / "agent-x.jsonl", [
        assistant_line(at(30), msg_id="x1", req_id="r", session="a", cwd="/w/other",
                       model="claude-haiku-4-5-20251001", inp=2, out=3),
    ])  # fmt: skip
    eng = _engine(tmp_path / "claude" / "projects", tmp_path / "home")
    _check_session_json(eng)
    rows = eng.session_report_json(include_empty=True)["sessions"]  # type: ignore[index]
    assert {r["sessionId"] for r in rows} == {"a", "b", "z"}
    a = next(r for r in rows if r["sessionId"] == "a")
    assert a["projectPath"] == "/w/other" and "<synthetic>" not in a["modelsUsed"]
    assert a["entries"] == 4


def test_cli_session_json_fast_and_typed_paths_agree(cli: Any, env: dict[str, str],
                                                     tmp_path: Path) -> None:  # fmt: skip
    generate(tmp_path / "claude", size_mb=4, seed=5, end=END, days=10)
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    fast = cli("session", "--json")
    assert fast.code == 0, fast.err
    sid = fast.json()["sessions"][1]["sessionId"]
    assert cli("session", "name", sid, "Renamed").code == 0
    assert cli("session", "tag", sid, "one", "two").code == 0
    fast = cli("session", "--json")
    typed = cli("session", "--json", "--since", "20000101")  # a filter: the typed rows
    assert fast.code == typed.code == 0
    assert fast.out == typed.out
    row = next(r for r in fast.json()["sessions"] if r["sessionId"] == sid)
    assert (row["name"], row["nameSource"], row["tags"]) == ("Renamed", "user", ["one", "two"])


# ---- the change check -----------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs symlinks")
def test_transcript_stats_follows_links_once_and_finds_every_transcript(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    (root / "-a" / "s1" / "subagents").mkdir(parents=True)
    (root / "-a" / "s1.jsonl").write_text("x\n")
    (root / "-a" / "s1" / "subagents" / "agent-1.jsonl").write_text("y\n")
    (root / "-a" / "s1" / "subagents" / "agent-1.meta.json").write_text("{}")
    (root / "-a" / "dir.jsonl").mkdir()  # a directory named like a transcript
    outside = tmp_path / "elsewhere"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "o.jsonl").write_text("z\n")
    os.symlink(outside, root / "-linked")  # followed once
    os.symlink(outside, root / "-linked-again")
    os.symlink(root, root / "-a" / "loop")  # inside the root: not followed
    os.symlink(tmp_path / "missing", root / "-a" / "broken.jsonl")
    os.symlink(root / "-a" / "s1.jsonl", root / "-a" / "alias.jsonl")  # a file link: counted
    got = sorted((k, st.st_size) for k, st in discovery.transcript_stats(root))
    a = root / "-a"
    mine = [(str(a / "alias.jsonl"), 2), (str(a / "s1" / "subagents" / "agent-1.jsonl"), 2),
            (str(a / "s1.jsonl"), 2)]  # fmt: skip
    # s1, alias, agent-1 and the outside o.jsonl once, through one of the two links
    assert got in (
        sorted([*mine, (str(root / link / "deep" / "o.jsonl"), 2)])
        for link in ("-linked", "-linked-again")
    ), got
    assert discovery.transcript_stats(tmp_path / "none") == []


def test_warm_refresh_reads_nothing_then_only_the_append(tmp_path: Path) -> None:
    proj = tmp_path / "claude" / "projects" / "-p"
    f = proj / "s.jsonl"
    write_lines(f, [assistant_line(END, msg_id="m1", req_id="r1", session="s")])
    write_lines(proj / "t.jsonl", [assistant_line(END, msg_id="m2", req_id="r2", session="t")])
    home = tmp_path / "home"
    eng = Engine(roots=[proj.parent], paths=get_paths({"TOKMON_HOME": str(home)}))
    try:
        assert eng.refresh().files_read == 2
        again = Engine(roots=[proj.parent], paths=get_paths({"TOKMON_HOME": str(home)}))
        try:
            ch = again.refresh()
            assert (ch.files_checked, ch.files_read) == (2, 0)
            write_lines(f, [assistant_line(END, msg_id="m3", req_id="r3", session="s")])
            ch = again.refresh()
            assert (ch.files_read, ch.new_records) == (1, 1)
            os.utime(f, ns=(0, 0))  # only the mtime changed: read from the offset, nothing new
            ch = again.refresh()
            assert (ch.files_read, ch.new_records) == (1, 0)
        finally:
            again.close()
    finally:
        eng.close()


def test_invalid_file_states_are_dropped(tmp_path: Path) -> None:
    db = LedgerDB(tmp_path / "l.sqlite3")
    try:
        db.conn.execute(
            "INSERT INTO files VALUES ('/ok.jsonl', 1, 2, 30, 40, 30, 'fp'),"
            " ('/neg.jsonl', 1, -2, 30, 40, 30, ''), ('/off.jsonl', 1, 2, 30, 40, -1, '')"
        )
        db.conn.commit()
        led = db.load_state()
        assert list(led.files) == ["/ok.jsonl"]
        st = led.files["/ok.jsonl"]
        assert (st.dev, st.ino, st.size, st.mtime_ns, st.offset, st.fp) == (1, 2, 30, 40, 30, "fp")
        assert db.dropped == 2
    finally:
        db.close()


def test_a_small_read_builds_no_msgspec_decoder(tmp_path: Path) -> None:
    """A refresh reading a few KiB (an append) parses with parse_line: the msgspec import and
    decoder (~10 ms) are not paid; the rows are those a big read gives."""
    f = tmp_path / "s.jsonl"
    write_lines(
        f,
        [assistant_line(END, msg_id=f"m{i}", req_id=f"r{i}", session="s", out=i) for i in range(5)]
        + ['not json: "usage"', '{"type": "custom-title", "sessionId": "s", "customTitle": "T"}'],
    )
    code = (
        "import sys, orjson\n"
        "from tokmon.core.scan import scan_all, scan_file\n"
        f"items = [({str(f)!r}, 0, {f.stat().st_size})]\n"
        "res = list(scan_all(items))[0]\n"
        "small = ('msgspec' in sys.modules, res.rows, res.titles, res.malformed)\n"
        "from tokmon.core import parser\n"
        "parser.FALLBACK_BUDGET = 0  # the native scanner's fallback by msgspec too\n"
        f"big = scan_file({str(f)!r}, 0)\n"
        "print(orjson.dumps([small, ['msgspec' in sys.modules, big.rows, big.titles, big.malformed]]).decode())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert r.returncode == 0, r.stderr
    small, big = orjson.loads(r.stdout)
    assert small[0] is False and big[0] is True
    assert small[1:] == big[1:] and len(small[1]) == 5 and small[2] and small[3] == 1
