"""tokmon as a drop-in for ccusage on the real corpus, checked against the real ccusage 20.0.24.

- ``session --id a7da6a22`` (the short id tokmon prints) returns the same object as
  ``ccusage claude session --id <full id> --json``: totals and every entry;
- ``daily -i/--instances --json`` equals ccusage's ``projects`` object, row by row;
- ``tokmon claude daily`` (ccusage's agent-prefixed spelling), ``--compact`` and
  ``--project-aliases`` are accepted with ccusage's meaning.

ccusage is found like in test_ccusage_parity.py (``TOKMON_CCUSAGE`` or ``.cache/ccusage``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import assistant_line, corpus_path, write_lines
from test_ccusage_parity import ccusage  # noqa: F401 - the fixture (skips without ccusage)

# slow: ccusage's own node processes
pytestmark = pytest.mark.slow

TOKENS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens")


@pytest.fixture(scope="module")
def denv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    src = corpus_path()
    if not (src / "projects").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real corpus not found at {src}")
        pytest.skip(f"real corpus not found at {src} (set TOKMON_TEST_CORPUS)")
    home = tmp_path_factory.mktemp("dropin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    env.update(TOKMON_HOME=str(home / "tokmon"), HOME=str(home), CLAUDE_CONFIG_DIR=str(src),
               TZ="UTC", NO_COLOR="1")  # fmt: skip
    return env


def cc_json(ccusage: Path, env: dict[str, str], *args: str) -> Any:  # noqa: F811
    res = subprocess.run([str(ccusage), "claude", *args, "--json", "--offline"], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def tk(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "tokmon", *args], env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res


def tk_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(tk(env, *args, "--json").stdout)


def entry_key(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["timestamp"], e["model"], e["costUSD"], *(e[k] for k in TOKENS[:4]))


def test_session_id_short_prefix_equals_ccusage(ccusage: Path, denv: dict[str, str]) -> None:  # noqa: F811
    sessions = [r for r in cc_json(ccusage, denv, "session")["sessions"]
                if not r["sessionId"].startswith("agent-")][:6]  # fmt: skip
    assert len(sessions) == 6
    for row in sessions:
        sid = row["sessionId"]
        want = cc_json(ccusage, denv, "session", "--id", sid)
        got = tk_json(denv, "session", "--id", sid[:8])
        assert set(got) == set(want) == {"sessionId", "totalCost", "totalTokens", "entries"}
        assert got["sessionId"] == sid
        assert got["totalTokens"] == want["totalTokens"]
        assert abs(got["totalCost"] - want["totalCost"]) <= 0.005
        assert sorted(map(entry_key, got["entries"])) == sorted(map(entry_key, want["entries"]))
        assert set(got["entries"][0]) == set(want["entries"][0])
    # -i is --id for the session report, as in ccusage; an unknown id is null like ccusage's
    assert (
        tk_json(denv, "session", "-i", sessions[0]["sessionId"][:8])["sessionId"]
        == (sessions[0]["sessionId"])
    )
    assert tk_json(denv, "session", "--id", "ffffffff") is None


def test_session_id_prefix_must_be_unique(denv: dict[str, str]) -> None:
    ids = [r["sessionId"] for r in tk_json(denv, "session")["sessions"]]
    first = {i[0] for i in ids}
    shared = next(c for c in sorted(first) if sum(i.startswith(c) for i in ids) > 1)
    res = subprocess.run([sys.executable, "-m", "tokmon", "session", "--id", shared, "--json"],
                         env=denv, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 2 and "ambiguous" in res.stderr and res.stderr.count("\n") == 1


@pytest.mark.parametrize("kind", ["daily"])  # ccusage has -i on daily only
def test_instances_equal_ccusage(ccusage: Path, denv: dict[str, str], kind: str) -> None:  # noqa: F811
    want = cc_json(ccusage, denv, kind, "-i", "-z", "UTC")
    got = tk_json(denv, kind, "--instances", "-z", "UTC")
    assert set(got) == set(want) == {"projects", "totals"}
    assert set(got["projects"]) == set(want["projects"])
    label = {"daily": "date", "monthly": "month"}[kind]
    for project, rows in want["projects"].items():
        mine = got["projects"][project]
        assert [r[label] for r in mine] == [r[label] for r in rows], project
        for a, b in zip(mine, rows, strict=True):
            assert a["project"] == b["project"] == project
            assert tuple(a[k] for k in TOKENS) == tuple(b[k] for k in TOKENS), (project, b[label])
            assert abs(a["totalCost"] - b["totalCost"]) <= 0.005
            assert set(a) == set(b)
    assert tuple(got["totals"][k] for k in TOKENS) == tuple(want["totals"][k] for k in TOKENS)


def test_claude_prefix_compact_and_aliases(denv: dict[str, str]) -> None:
    for kind in ("daily", "weekly", "monthly", "session", "blocks"):
        assert tk_json(denv, "claude", kind) == tk_json(denv, kind), kind
    compact = tk(denv, "claude", "daily", "--compact").stdout
    assert "create" not in compact and "Compact layout (--compact)" in compact
    projects = tk_json(denv, "daily", "-i")["projects"]
    name = sorted(projects)[0]
    text = tk(denv, "daily", "-i", "--project-aliases", f"{name}=My Alias").stdout
    assert "Project: My Alias" in text and f"Project: {name}\n" not in text
    bad = subprocess.run([sys.executable, "-m", "tokmon", "daily", "--project-aliases", "oops"],
                         env=denv, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "--project-aliases" in bad.stderr


@pytest.mark.parametrize("layout", ["flat", "subagents"])
def test_agent_pseudo_session_id_points_to_its_parent(
    tmp_path: Path, env: dict[str, str], layout: str
) -> None:
    """ccusage names a session after its file, so a subagent's transcript is a session
    ``agent-…`` there; tokmon counts it in the session that started it (its lines carry that
    session's id). Asked for such an id, tokmon answers like for any id it does not know
    (JSON null) and says, in one line, which session holds that usage."""
    parent = "5e551011-aaaa-4bbb-8ccc-000000000001"
    agent = {"flat": "agent-deadbeef", "subagents": "agent-a0123456789abcdef"}[layout]
    proj = tmp_path / "claude" / "projects" / "-home-u-proj"
    when = "2026-11-01T10:00:00.000Z"
    write_lines(proj / f"{parent}.jsonl",
                [assistant_line(when, msg_id=f"m{i}", req_id=f"r{i}", session=parent)
                 for i in range(2)])  # fmt: skip
    sub = proj / f"{agent}.jsonl" if layout == "flat" else proj / parent / "subagents" / f"{agent}.jsonl"  # fmt: skip
    write_lines(sub, [assistant_line(when, msg_id=f"s{i}", req_id=f"q{i}", session=parent)
                      for i in range(3)])  # fmt: skip
    e = {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    res = subprocess.run([sys.executable, "-m", "tokmon", "session", "--id", agent, "--json"],
                         env=e, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0 and json.loads(res.stdout) is None, res.stderr
    notes = res.stderr.splitlines()
    assert len(notes) == 1 and "subagent" in notes[0], res.stderr
    assert notes[0].endswith(f"tokmon session --id {parent}")
    assert len(tk_json(e, "session", "--id", parent)["entries"]) == 5  # 2 own + 3 subagent
    res = subprocess.run([sys.executable, "-m", "tokmon", "session", "--id", "agent-0badc0de", "--json"],
                         env=e, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert json.loads(res.stdout) is None and res.stderr == ""  # no such file: nothing to say
