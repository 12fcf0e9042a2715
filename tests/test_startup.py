"""Issue 12: the start-up of a report run (twelfth session).

A program run (``python -m tokmon``, the ``tokmon`` script) imports with the cyclic GC off and
a one-shot report freezes what its imports made; a report keeps heavy modules it does not need
out of the process. Run in a process of their own: what a process imports and what its
collector did are facts of that process. Latency itself is measured by bench/.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import assistant_line, write_lines

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
sys.argv = ["tokmon", *sys.argv[1:]]
from tokmon.__main__ import main
try:
    code = main()
except SystemExit as exc:
    code = exc.code
gc.callbacks.remove(seen)
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "passes": passes,
    "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}) + "\\n")
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
        plain = subprocess.run(
            [sys.executable, "-m", "tokmon", *argv], env=claude_env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert plain.returncode == 0 and plain.stdout == out


@pytest.mark.parametrize("argv", [["config", "path"], ["--help"], ["daily", "--nope"]])
def test_other_commands_get_the_collector_back(argv: list[str], claude_env: dict) -> None:
    """A command that is not a one-shot report (it may run for hours), ``--help`` (argparse
    exits) and a usage error: the GC is back on and nothing is frozen."""
    facts, _ = _probe(argv, claude_env)
    assert facts["code"] == (2 if "--nope" in argv else 0)
    assert facts["enabled"] is True
    assert facts["frozen"] == 0


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
