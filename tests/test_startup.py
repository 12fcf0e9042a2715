"""Issue 12: the start-up of a report run (twelfth session).

A program run (``python -m tokmon``, the ``tokmon`` script) imports with the cyclic GC off and
a one-shot report freezes what its imports made; a report keeps heavy modules it does not need
out of the process. Run in a process of their own: what a process imports and what its
collector did are facts of that process. Latency itself is measured by bench/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import assistant_line, write_lines
from test_warm_reports import _imported  # modules a run imports beyond `python -c pass`

END = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)

#: the program's entry point, with the collector's passes recorded: at each pass, whether the
#: report's engine was imported (its package defines ``Engine`` last)
PROBE = """
import gc, json, sys
passes, state = [], {}
def seen(phase, info):
    if phase == "start":
        passes.append(hasattr(sys.modules.get("tokmon.core.engine"), "Engine"))
gc.callbacks.append(seen)
real_freeze = gc.freeze
def freeze():  # the parsers alive at the first freeze (built before it, they would stay frozen)
    if "parsers" not in state:
        import argparse
        state["parsers"] = sum(isinstance(o, argparse.ArgumentParser) for o in gc.get_objects())
    real_freeze()
gc.freeze = freeze
sys.argv = ["tokmon", *sys.argv[1:]]
from tokmon.__main__ import main
try:
    code = main()
except SystemExit as exc:
    code = exc.code
gc.callbacks.remove(seen)
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "passes": passes,
    "enabled": gc.isenabled(), "frozen": gc.get_freeze_count(),
    "parsers": state.get("parsers")}) + "\\n")
"""


def _probe(argv: list[str], env: dict[str, str]) -> tuple[dict, str]:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], env=env, capture_output=True, text=True, timeout=120
    )
    facts = json.loads(r.stderr.rsplit("PROBE ", 1)[1])
    return facts, r.stdout


@pytest.fixture
def claude_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    claude = tmp_path / "claude"
    write_lines(
        claude / "projects" / "-p" / "s1.jsonl",
        [assistant_line(END, msg_id="m1", req_id="r1", session="s1")],
    )
    return {**env, "CLAUDE_CONFIG_DIR": str(claude)}


@pytest.mark.parametrize("argv", [["daily", "--json"], ["session", "--json"], ["blocks"]])
def test_a_report_imports_with_the_collector_off(argv: list[str], claude_env: dict) -> None:
    """No collection runs before the report's engine is imported, cold or warm; the GC is on
    again at the end, and the report is the one an in-process run gives."""
    for _ in range(2):  # cold (the first run scans and writes), then warm
        facts, out = _probe(argv, claude_env)
        assert facts["code"] == 0
        assert facts["enabled"] is True
        assert all(facts["passes"]), facts["passes"]
        assert facts["frozen"] > 10_000  # the imports' objects, frozen
        # the parser is built after that freeze: its cycles stay collectable (a cold run's
        # peak RSS: +0.3 MB when they were frozen)
        assert facts["parsers"] == 0
        plain = subprocess.run(
            [sys.executable, "-m", "tokmon", *argv], env=claude_env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert plain.returncode == 0 and plain.stdout == out


@pytest.mark.parametrize("argv", [["config", "path"], ["--help"], ["dialy"]])
def test_other_commands_get_the_collector_back(argv: list[str], claude_env: dict) -> None:
    """A command that is not a one-shot report (it may run for hours), ``--help`` and an
    unknown command (the full parser): the GC is back on and nothing is frozen."""
    facts, _ = _probe(argv, claude_env)
    assert facts["code"] == (2 if argv == ["dialy"] else 0)
    assert facts["enabled"] is True
    assert facts["frozen"] == 0


def test_a_report_usage_error_gets_the_collector_back(claude_env: dict) -> None:
    facts, _ = _probe(["daily", "--nope"], claude_env)
    assert facts["code"] == 2 and facts["enabled"] is True


def test_an_embedding_run_leaves_the_collector_alone(claude_env: dict) -> None:
    """``tokmon.__main__.main(argv)`` and ``tokmon.cli.main.run`` (tests, embedding): the
    caller's GC is never turned off, and nothing is frozen."""
    code = """
import gc, json, sys
passes = []
gc.callbacks.append(lambda phase, info: passes.append(phase))
from tokmon.__main__ import main
code = main(["daily", "--json"])
print(json.dumps({"code": code, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count(),
                  "passes": len(passes)}))
"""
    r = subprocess.run(
        [sys.executable, "-c", code], env=claude_env, capture_output=True, text=True, timeout=120
    )
    facts = json.loads(r.stdout.strip().splitlines()[-1])
    assert facts["code"] == 0 and facts["enabled"] is True and facts["frozen"] == 0
    assert facts["passes"] > 0  # the collector ran during the imports, as it always did


# ---- the report path's modules ----------------------------------------------------------------


#: what a warm report does not need (logging's chain: tokmon.lazylog stands in; the scanner: it
#: reads nothing; shlex: it quotes a dir only when one is writable by others)
NOT_IN_A_WARM_REPORT = {"logging", "traceback", "textwrap", "string", "tokmon.core.scan", "shlex"}
#: ... and a Claude report, without a metadata store, neither what the store's reader brings
#: (orjson, which imports uuid and platform) nor the standard library's dataclasses (they
#: import inspect: ~5 ms; tokmon.leanclass stands in). (The other agents' readers use both.)
NOT_IN_A_CLAUDE_REPORT = {"orjson", "uuid", "platform", "dataclasses", "inspect"}


@pytest.mark.parametrize(
    "argv",
    [
        ["daily", "--json"],
        ["session", "--json"],
        ["blocks", "--json"],
        ["weekly"],
        ["monthly", "--json"],
        ["daily"],
        ["session"],
        ["daily", "--agent", "all", "--json"],
    ],
)
def test_a_warm_report_leaves_heavy_modules_out(argv: list[str], claude_env: dict) -> None:
    _imported(argv, claude_env)  # the first run scans and writes
    names = _imported(argv, claude_env)  # warm: nothing changed
    assert "tokmon.core.engine" in names
    assert not names & NOT_IN_A_WARM_REPORT, sorted(names & NOT_IN_A_WARM_REPORT)
    if "--agent" not in argv:
        assert not names & NOT_IN_A_CLAUDE_REPORT, sorted(names & NOT_IN_A_CLAUDE_REPORT)
    # the blocks' five dataclasses: defined by the report that makes blocks only
    assert ("tokmon.core.model_blocks" in names) == (argv[0] == "blocks")


def test_session_json_after_an_append_splices_without_orjson(
    claude_env: dict, tmp_path: Path
) -> None:
    """``session --json`` after an appended line splices its kept answer (the index read,
    the new rows and the change written) without orjson: the same text as a first run on
    the same data, and, once the store has metadata, the name is merged (its reader then
    brings orjson, as it should)."""
    from datetime import timedelta

    transcript = Path(claude_env["CLAUDE_CONFIG_DIR"]) / "projects" / "-p" / "s1.jsonl"
    _imported(["session", "--json"], claude_env)  # cold: scans, keeps the answer
    _imported(["session", "--json"], claude_env)  # warm: kept as it is
    for i in range(3):  # appends: a new row of s1 each time, and a new session
        write_lines(
            transcript,
            [
                assistant_line(END + timedelta(minutes=i + 1), msg_id=f"m{i + 2}",
                               req_id=f"r{i + 2}", session="s1"),
                assistant_line(END + timedelta(minutes=i + 1), msg_id=f"n{i}", req_id=f"q{i}",
                               session=f"s{i + 2}"),
            ],
        )  # fmt: skip
        names = _imported(["session", "--json"], claude_env)
        assert "tokmon.cli.reports" in names
        assert not names & NOT_IN_A_CLAUDE_REPORT, sorted(names & NOT_IN_A_CLAUDE_REPORT)
    spliced = subprocess.run(
        [sys.executable, "-m", "tokmon", "session", "--json"],
        env=claude_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    fresh = subprocess.run(
        [sys.executable, "-m", "tokmon", "session", "--json"],
        env={**claude_env, "TOKMON_HOME": str(tmp_path / "fresh-home")},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert spliced.returncode == fresh.returncode == 0, spliced.stderr + fresh.stderr
    assert spliced.stdout == fresh.stdout
    doc = json.loads(spliced.stdout)
    assert sorted(r["sessionId"] for r in doc["sessions"]) == ["s1", "s2", "s3", "s4"]
    assert next(r for r in doc["sessions"] if r["sessionId"] == "s1")["outputTokens"] > 0
    named = subprocess.run(
        [sys.executable, "-m", "tokmon", "session", "name", "s2", "Renamed"],
        env=claude_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert named.returncode == 0, named.stderr
    names = _imported(["session", "--json"], claude_env)
    assert "orjson" in names  # the store read (its names merged below)
    out = subprocess.run(
        [sys.executable, "-m", "tokmon", "session", "--json"],
        env=claude_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    row = next(r for r in json.loads(out.stdout)["sessions"] if r["sessionId"] == "s2")
    assert "Renamed" in json.dumps(row)


def test_the_block_types_are_still_named_by_the_model() -> None:
    """``tokmon.core.model.Block`` and the others (imports elsewhere, other branches) are
    the classes of :mod:`tokmon.core.model_blocks`, defined once."""
    from tokmon.core import model, model_blocks

    for name in ("Block", "BurnRate", "Projection", "TokenCounts", "TokenLimitStatus"):
        assert getattr(model, name) is getattr(model_blocks, name)
    from tokmon.core.model import TokenCounts

    assert repr(TokenCounts(1, 2)) == (
        "TokenCounts(input=1, output=2, cache_creation=0, cache_read=0)"
    )
    with pytest.raises(AttributeError):
        model.Nothing  # noqa: B018


# ---- tokmon.lazylog: logging's answers without importing it -----------------------------------

LAZY = """
import io, json, sys
from tokmon import lazylog
out = io.StringIO()
steps = []
def step(what):
    steps.append([what, "logging" in sys.modules, out.getvalue()])
{body}
print(json.dumps(steps))
"""


def _lazy(body: str) -> list[list]:
    r = subprocess.run(
        [sys.executable, "-c", LAZY.replace("{body}", body)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return [*json.loads(r.stdout), ["stderr", None, r.stderr]]


def test_lazylog_drops_what_cannot_pass_and_passes_the_rest_configured() -> None:
    steps = _lazy(
        'lazylog.configure(lazylog.WARNING, out)\nlog = lazylog.getLogger("tokmon.x")\n'
        'log.debug("d %s", 1); log.info("i"); step("quiet")\n'
        'step(log.isEnabledFor(lazylog.DEBUG))\n'
        'log.warning("w %s", 2); step("warned")\n'
        'log.debug("d2"); step("after")'
    )  # fmt: skip
    assert steps[0] == ["quiet", False, ""]  # below the level: logging never imported
    assert steps[1] == [False, False, ""]
    assert steps[2] == ["warned", True, "tokmon: WARNING: w 2\n"]  # configured, then passed
    assert steps[3] == ["after", True, "tokmon: WARNING: w 2\n"]
    assert steps[4][2] == ""


def test_lazylog_at_debug_imports_and_formats_as_basicconfig() -> None:
    steps = _lazy(
        'lazylog.configure(lazylog.DEBUG, out)\nlog = lazylog.getLogger("tokmon.x")\n'
        'step(log.isEnabledFor(lazylog.DEBUG))\nlog.debug("d %s", 1); log.info("i"); step("logged")'
    )  # fmt: skip
    assert steps[0] == [True, True, ""]
    assert steps[1] == ["logged", True, "tokmon: DEBUG: d 1\ntokmon: INFO: i\n"]


def test_lazylog_configures_once_logging_is_imported_by_anyone() -> None:
    """A library (or a module of tokmon's) that imports ``logging`` itself and logs through
    it: its records are formatted and written as the CLI configured, as if configured at
    once; the lazy log's own calls too. Configured ``now``, or with ``logging`` already
    imported, it applies at once."""
    steps = _lazy(
        'lazylog.configure(lazylog.WARNING, out)\nimport logging\nstep("imported")\n'
        'logging.getLogger("lib").warning("lib %s", 1); step("lib")\n'
        'logging.getLogger("lib").info("quiet"); lazylog.getLogger("tokmon.x").debug("d")\n'
        'lazylog.getLogger("tokmon.x").warning("w"); step("warned")\n'
        'step(lazylog._WhenImported in sys.meta_path)'
    )  # fmt: skip
    assert steps[0] == ["imported", True, ""]
    assert steps[1] == ["lib", True, "tokmon: WARNING: lib 1\n"]
    assert steps[2] == ["warned", True, "tokmon: WARNING: lib 1\ntokmon: WARNING: w\n"]
    assert steps[3][0] is False  # the import hook is gone once it applied
    assert steps[4][2] == ""  # nothing to the last resort (stderr)
    now = _lazy(
        'lazylog.configure(lazylog.INFO, out, now=True)\nstep("now")\n'
        'import logging\nlogging.getLogger("lib").info("lib %s", 3); step("lib")'
    )  # fmt: skip
    assert now[0] == ["now", True, ""]
    assert now[1] == ["lib", True, "tokmon: INFO: lib 3\n"]


def test_lazylog_without_configuration_is_pythons_default() -> None:
    """Nobody configured logging (tokmon used as a library): debug and info are dropped,
    a warning goes to logging's last resort (stderr), as ``logging.getLogger`` would."""
    steps = _lazy(
        'log = lazylog.getLogger("tokmon.x")\nlog.info("i"); step("info")\n'
        'log.warning("w %s", 5); step("warned")'
    )  # fmt: skip
    assert steps[0] == ["info", False, ""]
    assert steps[1][:2] == ["warned", True]
    assert steps[2][2] == "w 5\n"


def test_an_agent_source_warning_is_formatted_as_before(claude_env: dict, tmp_path: Path) -> None:
    """The other agents' sources warn through the log (a line that is not JSON): in a
    report with ``--agent all``, formatted by the CLI as before (their modules log through
    tokmon.lazylog, and the kept configuration applies whoever imports logging)."""
    events = tmp_path / "copilot" / "session-state" / "s-1.jsonl"
    events.parent.mkdir(parents=True)
    events.write_text('{"broken\n', encoding="utf-8")
    env = {**claude_env, "COPILOT_HOME": str(tmp_path / "copilot")}
    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--agent", "all", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"tokmon: WARNING: {events}: skipped 1 line(s) that are not JSON\n" in r.stderr


def test_debug_log_of_a_report_is_as_before(claude_env: dict, tmp_path: Path) -> None:
    """``--log-level debug``: a report's debug records still reach stderr, formatted by the
    CLI (a bad line's note from the scan, the engine's)."""
    claude = Path(claude_env["CLAUDE_CONFIG_DIR"])
    write_lines(
        claude / "projects" / "-p" / "s2.jsonl",
        [
            assistant_line(END, msg_id="m3", req_id="r3", session="s2")[:-2],
            assistant_line(END, msg_id="m2", req_id="r2", session="s2"),
        ],
    )
    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "--log-level", "debug", "daily", "--json"],
        env=claude_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0
    assert "tokmon: DEBUG: " in r.stderr and "s2.jsonl: skipped 1 line(s)" in r.stderr, r.stderr
    quiet = subprocess.run(
        [sys.executable, "-m", "tokmon", "daily", "--json"],
        env=claude_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "DEBUG" not in quiet.stderr and quiet.stdout == r.stdout


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX modes")
def test_a_dir_writable_by_others_is_still_quoted_in_the_fix(tmp_path: Path) -> None:
    """shlex, imported only for this warning, still quotes the dir in the command given."""
    from tokmon.paths import get_paths, unsafe_dirs

    home = tmp_path / "a home"
    home.mkdir()
    os.chmod(home, 0o777)
    env = {"TOKMON_HOME": str(home)}
    got = unsafe_dirs(get_paths(env), env)
    assert got is not None and got[1] is False
    assert f"run `chmod 700 '{home}'`" in got[0]


COMPILES = """
import re, sys
callers = []
real = re.compile
def compile(pattern, flags=0):
    callers.append(sys._getframe(1).f_globals.get("__name__", "?"))
    return real(pattern, flags)
re.compile = compile
sys.argv = ["tokmon", *sys.argv[1:]]
from tokmon.__main__ import main
code = main()
sys.stderr.write("\\nCOMPILES " + " ".join(sorted(set(callers))) + "\\n")
"""


@pytest.mark.parametrize("argv", [["daily", "--json"], ["session", "--json"]])
def test_a_warm_json_report_compiles_no_pattern_of_tokmon(
    argv: list[str], claude_env: dict
) -> None:
    """The model-id, config-header and metadata patterns go through re's cache where they
    are used (an unknown model id, a config file rewritten, metadata read), not compiled by
    every start-up."""
    for _ in range(2):  # cold, then warm
        r = subprocess.run(
            [sys.executable, "-c", COMPILES, *argv],
            env=claude_env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
    callers = r.stderr.rsplit("COMPILES ", 1)[1].split()
    assert not [c for c in callers if c.startswith("tokmon")], callers


def test_model_ids_still_normalised() -> None:
    from tokmon.core.pricing import PriceTable

    table = PriceTable.load(None)
    plain = table.lookup("claude-sonnet-4-5-20250929")
    assert plain is not None
    assert table.lookup("us.anthropic.claude-sonnet-4-5-20250929-v1:0") == plain
    assert table.lookup("anthropic/claude-sonnet-4-5-20250929@20250929") == plain
