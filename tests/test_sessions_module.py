"""One sessions module for every surface (tokmon/sessions.py, docs/sessions.md).

The CLI's ``session show REF --json`` and the server's ``tokmon/session`` (a real
``tokmon serve --jsonl`` process) must return the same object, and resolve REFs by the
same rule: full id, user name, unique id prefix, Claude's title; ambiguity is one error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_tokmon
from test_server_support import JsonlProc

from tokmon import sessions
from tokmon.metadata.refs import RefError

# --------------------------------------------------------------------------- unit


@dataclass
class Rec:
    """A usage record with just the attributes tokmon.sessions reads."""

    ts: float
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int = 0
    cache_1h_tokens: int = 0
    cache_read_tokens: int = 0
    cost: float = 0.0
    session_id: str = "s1"
    project: str = "/p"

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_tokens
            + self.cache_read_tokens
        )


def test_display_name_user_beats_transcript_title_beats_statusline_title() -> None:
    row = {"sessionId": "a", "title": "From transcript"}
    assert sessions.display_name(row, {"name": "Mine", "claudeTitle": "x"}) == ("Mine", "user")
    assert sessions.display_name(row, {"claudeTitle": "From statusline"}) == (
        "From transcript",
        "claude",
    )
    assert sessions.display_name({"sessionId": "a"}, {"claudeTitle": "From statusline"}) == (
        "From statusline",
        "claude",
    )
    assert sessions.display_name({"sessionId": "a", "title": None}, None) == (None, None)


def test_merge_copies_rows_and_carries_unknown_keys() -> None:
    rows = [
        {"sessionId": "a", "agent": "codex", "title": None, "totalTokens": 5},
        {"sessionId": "b", "title": "T"},
    ]
    meta = {"a": {"name": "N", "tags": ["x"], "description": "d"}}
    out = sessions.merge(rows, meta)
    assert out[0] == {
        "sessionId": "a",
        "agent": "codex",
        "title": None,
        "totalTokens": 5,
        "name": "N",
        "nameSource": "user",
        "tags": ["x"],
        "description": "d",
    }
    assert out[1]["name"] == "T" and out[1]["nameSource"] == "claude" and out[1]["tags"] == []
    assert "name" not in rows[0]  # inputs untouched
    out[0]["tags"].append("y")
    assert meta["a"]["tags"] == ["x"]  # no aliasing into the store's data


def test_label_never_empty() -> None:
    assert sessions.label({"sessionId": "abcdef123", "projectName": "web"}) == "web"
    assert sessions.label({"sessionId": "abcdef123"}) == "abcdef12"
    assert sessions.label({"sessionId": "abcdef123", "title": " T "}, {"name": "N"}) == "N"
    assert sessions.label({"sessionId": "abcdef123", "title": " T "}) == "T"


def test_resolve_rules_and_long_refs() -> None:
    ids = ["aa11", "aa22", "bb33"]
    meta = {"bb33": {"name": "Release"}}
    assert sessions.resolve("aa1", ids, meta) == "aa11"
    assert sessions.resolve("release", ids, meta) == "bb33"
    assert sessions.resolve("Fix It", ids, {}, {"aa22": "fix it"}) == "aa22"
    with pytest.raises(RefError) as exc:
        sessions.resolve("aa", ids, meta)
    assert exc.value.ambiguous and sorted(exc.value.candidates) == ["aa11", "aa22"]
    with pytest.raises(RefError) as exc:
        sessions.resolve("zz", ids, meta)
    assert not exc.value.ambiguous
    with pytest.raises(RefError) as exc:
        sessions.resolve("a" * 100_000, ids, meta)
    assert len(str(exc.value)) < 200


def test_detail_sums_models_hours_and_blocks() -> None:
    h = 1_773_133_200.0  # 2026-03-10T09:00:00Z
    recs = [
        Rec(h + 60, "m1", 10, 20, 300, 100, 4000, cost=1.0),
        Rec(h + 1800, "m1", 1, 2, cost=0.5),
        Rec(h + 4 * 3600, "m2", 5, 5, cost=3.0),
        Rec(h + 9 * 3600, "m1", 1, 1, cost=0.25),  # > 5 h after the first block's start
    ]
    row = {"sessionId": "s1", "title": None, "totalTokens": 4345}
    d = sessions.detail("s1", row, {"tags": ["t"]}, recs, now=h + 30 * 86400)
    assert [m["modelName"] for m in d["models"]] == ["m2", "m1"]  # by cost
    m1 = d["models"][1]
    assert (m1["requests"], m1["totalTokens"], m1["cacheCreation1hTokens"]) == (3, 4335, 100)
    assert m1["cost"] == pytest.approx(1.75)
    assert [(p["hour"], p["requests"], p["totalTokens"]) for p in d["timeline"]] == [
        ("2026-03-10T09:00:00.000Z", 2, 4333),
        ("2026-03-10T13:00:00.000Z", 1, 10),
        ("2026-03-10T18:00:00.000Z", 1, 2),
    ]
    assert [(b["startTime"], b["entries"]) for b in d["blocks"]] == [
        ("2026-03-10T09:00:00.000Z", 3),
        ("2026-03-10T18:00:00.000Z", 1),
    ]
    assert d["cacheCreation1hTokens"] == 100 and d["tags"] == ["t"]
    assert d["metadata"] == {"tags": ["t"]} and d["nameSource"] is None
    gone = sessions.detail("old", None, {"name": "Old"}, [], now=h)
    assert gone["name"] == "Old" and gone["blocks"] == [] and "entries" not in gone


# --------------------------------------------------------------------------- CLI vs server

CUSTOM_TITLE = "Refactor the parser module"
AI_TITLE = "Investigate flaky websocket tests"
NAME = "My Release Work"


def _sessions_of(corpus: Path) -> dict[str, list[Path]]:
    """session id -> transcript files naming it (read independently of tokmon)."""
    out: dict[str, list[Path]] = {}
    for f in sorted((corpus / "projects").rglob("*.jsonl")):
        for line in f.read_text(errors="replace").splitlines():
            try:
                sid = json.loads(line).get("sessionId")
            except (ValueError, AttributeError):
                continue
            if isinstance(sid, str):
                out.setdefault(sid, [])
                if f not in out[sid]:
                    out[sid].append(f)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Any:
    """A real-corpus copy with one custom title and one AI title appended, one named session,
    and a running ``tokmon serve --jsonl`` over it."""
    import shutil

    real = request.getfixturevalue("real_corpus")
    tmp = tmp_path_factory.mktemp("sessions-module")
    corpus = tmp / "claude"
    shutil.copytree(real, corpus)
    home, fake_home = tmp / "tokmon-home", tmp / "home"
    home.mkdir()
    fake_home.mkdir()
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    env.update(
        {
            "TOKMON_HOME": str(home),
            "HOME": str(fake_home),
            "NO_COLOR": "1",
            "TZ": "UTC",
            "COLUMNS": "160",
            "CLAUDE_CONFIG_DIR": str(corpus),
        }
    )
    files = _sessions_of(corpus)
    ids = sorted(files)
    titled, ai_titled, named = ids[3], ids[7], ids[11]
    for sid, kind, field, title in (
        (titled, "custom-title", "customTitle", CUSTOM_TITLE),
        (ai_titled, "ai-title", "aiTitle", AI_TITLE),
    ):
        with files[sid][0].open("a") as fh:
            fh.write(json.dumps({"type": kind, field: title, "sessionId": sid}) + "\n")
    r = run_tokmon(["session", "name", named, NAME], env)
    assert r.returncode == 0, r.stderr
    srv = JsonlProc(env)
    assert "result" in srv.call("tokmon/version", timeout=60)
    yield {
        "env": env,
        "srv": srv,
        "ids": ids,
        "titled": titled,
        "ai_titled": ai_titled,
        "named": named,
    }
    srv.close()


def cli_show(world: Any, ref: str) -> Any:
    r = run_tokmon(["session", "show", ref, "--json"], world["env"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def server_show(world: Any, ref: str) -> Any:
    resp = world["srv"].call("tokmon/session", {"sessionId": ref}, timeout=60)
    assert "result" in resp, resp
    return resp["result"]


@pytest.mark.slow
def test_cli_and_server_return_the_same_detail(world: Any) -> None:
    rows = json.loads(run_tokmon(["session", "list", "--json", "--all"], world["env"]).stdout)
    by_cost = sorted(rows["sessions"], key=lambda r: -r["totalCost"])
    picks = {
        by_cost[0]["sessionId"],
        by_cost[1]["sessionId"],
        by_cost[-1]["sessionId"],
        by_cost[len(by_cost) // 2]["sessionId"],
        world["titled"],
        world["named"],
    }
    assert len(picks) >= 5
    for sid in sorted(picks):
        cli, srv = cli_show(world, sid), server_show(world, sid)
        assert cli == srv, sid
        row = next(r for r in rows["sessions"] if r["sessionId"] == sid)
        # the detail is the session's own row plus its breakdowns, all adding up to it
        assert {k: cli[k] for k in row} == row
        assert sum(m["totalTokens"] for m in cli["models"]) == row["totalTokens"]
        assert sum(p["totalTokens"] for p in cli["timeline"]) == row["totalTokens"]
        assert sum(b["totalTokens"] for b in cli["blocks"]) == row["totalTokens"]
        assert sum(m["requests"] for m in cli["models"]) == row["entries"]


@pytest.mark.slow
def test_server_resolves_a_name_set_by_the_cli(world: Any) -> None:
    d = server_show(world, NAME.lower())
    assert d["sessionId"] == world["named"]
    assert (d["name"], d["nameSource"]) == (NAME, "user")
    assert d == cli_show(world, NAME.upper())
    # a name set while the server runs is found too, and edits accept it
    other = world["ids"][15]
    assert run_tokmon(["session", "name", other[:10], "late name"], world["env"]).returncode == 0
    assert server_show(world, "Late Name")["sessionId"] == other
    resp = world["srv"].call(
        "tokmon/setSessionMetadata", {"sessionId": "late name", "addTags": ["via-name"]}
    )
    assert resp["result"]["sessionId"] == other and resp["result"]["tags"] == ["via-name"]


@pytest.mark.slow
def test_server_resolves_claude_titles(world: Any) -> None:
    for ref, sid in ((CUSTOM_TITLE.upper(), world["titled"]), (AI_TITLE, world["ai_titled"])):
        d = server_show(world, ref)
        assert d["sessionId"] == sid
        assert (d["name"], d["nameSource"]) == (ref if ref == AI_TITLE else CUSTOM_TITLE, "claude")
        assert d == cli_show(world, ref.lower())


@pytest.mark.slow
def test_unique_prefix_on_both(world: Any) -> None:
    ids = world["ids"]
    sid = ids[20]
    n = next(k for k in range(1, len(sid)) if sum(i.startswith(sid[:k]) for i in ids) == 1)
    assert server_show(world, sid[:n])["sessionId"] == sid
    assert cli_show(world, sid[:n])["sessionId"] == sid


@pytest.mark.slow
def test_ambiguous_prefix_is_the_same_error_on_both(world: Any) -> None:
    ids = world["ids"]
    counts: dict[str, int] = {}
    for i in ids:
        counts[i[0]] = counts.get(i[0], 0) + 1
    prefix = max(counts, key=lambda k: counts[k])
    assert counts[prefix] > 1
    resp = world["srv"].call("tokmon/session", {"sessionId": prefix})
    assert resp["error"]["code"] == -32602
    msg = resp["error"]["message"]
    assert "ambiguous" in msg
    for i in sorted(x for x in ids if x.startswith(prefix))[:8]:
        assert i in msg
    r = run_tokmon(["session", "show", prefix, "--json"], world["env"])
    assert r.returncode == 2 and r.stderr == f"tokmon: error: {msg}\n"


@pytest.mark.slow
def test_report_id_option_uses_the_same_rule(world: Any) -> None:
    """`tokmon session --id REF` (ccusage's shape) resolves names and titles too; an unknown
    REF still gives ccusage's null."""
    by_id = run_tokmon(["session", "--id", world["named"], "--json"], world["env"])
    by_name = run_tokmon(["session", "--id", NAME.lower(), "--json"], world["env"])
    assert by_id.returncode == by_name.returncode == 0, by_name.stderr
    assert json.loads(by_id.stdout) is not None
    assert json.loads(by_name.stdout) == json.loads(by_id.stdout)
    by_title = run_tokmon(["session", "--id", CUSTOM_TITLE, "--json"], world["env"])
    by_tid = run_tokmon(["session", "--id", world["titled"], "--json"], world["env"])
    assert json.loads(by_title.stdout) == json.loads(by_tid.stdout)
    unknown = run_tokmon(["session", "--id", "no-such-session-zz", "--json"], world["env"])
    assert unknown.returncode == 0 and json.loads(unknown.stdout) is None
