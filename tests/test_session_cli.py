"""`tokmon session ...` and `tokmon backup ...` through the real CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import assistant_line, run_tokmon, write_lines

from tokmon.metadata.store import MetadataStore
from tokmon.paths import get_paths

S1 = "11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
S2 = "22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
S3 = "21111111-cccc-4ccc-8ccc-cccccccccccc"
SONNET = "claude-sonnet-4-5-20250929"
OPUS = "claude-opus-4-5-20251101"


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=timezone.utc)


def make_corpus(root: Path) -> Path:
    """Three sessions with hand-computable numbers; S2 carries a Claude title."""
    alpha = root / "projects" / "-home-u-alpha"
    beta = root / "projects" / "-home-u-beta"
    write_lines(
        alpha / f"{S1}.jsonl",
        [
            assistant_line(
                utc(2026, 3, 10, 9, 0),
                msg_id="m1",
                req_id="r1",
                session=S1,
                cwd="/home/u/alpha",
                inp=1000,
                out=2000,
                model=SONNET,
            ),
            assistant_line(
                utc(2026, 3, 10, 9, 5),
                msg_id="m2",
                req_id="r2",
                session=S1,
                cwd="/home/u/alpha",
                inp=10,
                out=20,
                cc=300,
                cr=4000,
                model=SONNET,
            ),
            assistant_line(
                utc(2026, 3, 10, 15, 30),
                msg_id="m3",
                req_id="r3",
                session=S1,
                cwd="/home/u/alpha",
                inp=5,
                out=7,
                model=OPUS,
            ),
        ],
    )
    write_lines(
        beta / f"{S2}.jsonl",
        [
            assistant_line(
                utc(2026, 3, 12, 8, 0),
                msg_id="m4",
                req_id="r4",
                session=S2,
                cwd="/home/u/beta",
                inp=100,
                out=100,
                model=SONNET,
            ),
            json.dumps({"type": "custom-title", "customTitle": "Fix flaky tests", "sessionId": S2}),
        ],
    )
    write_lines(
        alpha / f"{S3}.jsonl",
        [
            assistant_line(
                utc(2026, 3, 14, 12, 0),
                msg_id=f"m5{k}",
                req_id=f"r5{k}",
                session=S3,
                cwd="/home/u/alpha",
                inp=50,
                out=50,
                model=SONNET,
            )
            for k in range(2)
        ],
    )
    return root


@pytest.fixture
def e(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**env, "CLAUDE_CONFIG_DIR": str(make_corpus(tmp_path / "claude"))}


@pytest.fixture
def run(cli, e):  # type: ignore[no-untyped-def]
    def _run(*argv: str, stdin: str = ""):  # type: ignore[no-untyped-def]
        return cli(*argv, extra_env={"CLAUDE_CONFIG_DIR": e["CLAUDE_CONFIG_DIR"]}, stdin=stdin)

    return _run


def store_of(env: dict[str, str]) -> MetadataStore:
    return MetadataStore(paths=get_paths(env))


def one_line_error(r, code: int = 2) -> str:  # type: ignore[no-untyped-def]
    assert r.code == code, (r.out, r.err)
    assert r.err.startswith("tokmon: error: ") and r.err.count("\n") == 1, r.err
    assert "Traceback" not in r.err
    return r.err


def test_list_shows_usage_and_claude_title(run) -> None:  # type: ignore[no-untyped-def]
    r = run("session", "list", "--json")
    assert r.code == 0, r.err
    rows = r.json()["sessions"]
    assert [x["sessionId"] for x in rows] == [S3, S2, S1]  # most recent first
    s1 = rows[2]
    assert (s1["inputTokens"], s1["outputTokens"]) == (1015, 2027)
    assert (s1["cacheCreationTokens"], s1["cacheReadTokens"], s1["totalTokens"]) == (
        300,
        4000,
        7342,
    )
    assert rows[1]["name"] == "Fix flaky tests" and rows[1]["nameSource"] == "claude"
    assert s1["name"] is None and s1["tags"] == [] and s1["description"] is None
    text = run("session", "list")
    assert text.code == 0 and "Fix flaky tests" in text.out and "\x1b[" not in text.out
    assert "11111111" in text.out and "alpha" in text.out


def test_name_tag_describe_then_filters_and_sorts(run, e) -> None:  # type: ignore[no-untyped-def]
    assert run("session", "name", "1111", "Parser rewrite").code == 0
    r = run("session", "tag", "parser rewrite", "Backend", "Q1 Goals")
    assert r.code == 0 and r.out.strip().endswith("tags: backend q1-goals")
    assert run("session", "tag", S3, "backend").code == 0
    assert run("session", "describe", "Parser Rewrite", "Moved to a PEG grammar").code == 0
    rec = store_of(e).get(S1)
    assert rec["name"] == "Parser rewrite" and rec["tags"] == ["backend", "q1-goals"]
    assert rec["description"] == "Moved to a PEG grammar"

    tagged = run("session", "list", "--json", "--tag", "BACKEND").json()["sessions"]
    assert [x["sessionId"] for x in tagged] == [S3, S1]
    both = run("session", "list", "--json", "-t", "backend", "-t", "q1-goals").json()["sessions"]
    assert [x["sessionId"] for x in both] == [S1]
    big = run("session", "list", "--json", "--min-tokens", "1000").json()["sessions"]
    assert [x["sessionId"] for x in big] == [S1]
    by_tokens = run("session", "list", "--json", "--sort", "tokens").json()["sessions"]
    assert [x["sessionId"] for x in by_tokens] == [S1, S3, S2]
    by_name = run("session", "list", "--json", "--sort", "name").json()["sessions"]
    assert [x["name"] for x in by_name] == ["Fix flaky tests", "Parser rewrite", None]
    rev = run("session", "list", "--json", "--sort", "last", "--reverse", "-n", "2").json()
    assert [x["sessionId"] for x in rev["sessions"]] == [S1, S2]
    alpha = run("session", "list", "--json", "--project", "alpha").json()["sessions"]
    assert {x["sessionId"] for x in alpha} == {S1, S3}
    window = run(
        "session", "list", "--json", "-z", "UTC", "--since", "20260311", "--until", "2026-03-13"
    ).json()["sessions"]
    assert [x["sessionId"] for x in window] == [S2]
    # metadata in the ccusage-compatible report too, and the user's name wins
    rep = run("session", "--json", "-z", "UTC").json()
    named = {x["sessionId"]: x for x in rep["sessions"]}
    assert named[S1]["name"] == "Parser rewrite" and named[S1]["tags"] == ["backend", "q1-goals"]


def test_user_name_overrides_claude_title_and_both_resolve(run, e) -> None:  # type: ignore[no-untyped-def]
    assert run("session", "show", "fix FLAKY tests", "--json").json()["sessionId"] == S2
    assert run("session", "name", "Fix flaky tests", "CI stability").code == 0
    row = next(
        x for x in run("session", "list", "--json").json()["sessions"] if x["sessionId"] == S2
    )
    assert row["name"] == "CI stability" and row["nameSource"] == "user"
    assert row["title"] == "Fix flaky tests"  # Claude's title is kept, just not shown as name
    # a statusLine session_name is only a default as well
    store_of(e).set_claude_title(S1, "From the status line")
    row = next(
        x for x in run("session", "list", "--json").json()["sessions"] if x["sessionId"] == S1
    )
    assert row["name"] == "From the status line" and row["nameSource"] == "claude"
    assert run("session", "name", S1, "Mine").code == 0
    assert store_of(e).get(S1)["claudeTitle"] == "From the status line"
    assert run("session", "name", "1111", "--clear").code == 0
    assert store_of(e).get(S1)["name"] is None


def test_ref_errors_list_candidates(run) -> None:  # type: ignore[no-untyped-def]
    err = one_line_error(run("session", "show", "2"))
    assert "ambiguous" in err and S2 in err and S3 in err and "(Fix flaky tests)" in err
    err = one_line_error(run("session", "tag", "nope", "x"))
    assert "no session matches 'nope'" in err and "session list" in err
    err = one_line_error(run("session", "name", "flaky", "x"))
    assert "did you mean" in err and S2 in err
    assert run("session", "show", "21", "--json").json()["sessionId"] == S3


def test_validation_errors_are_one_line(run, e) -> None:  # type: ignore[no-untyped-def]
    assert run("session", "name", S1, "Taken").code == 0
    err = one_line_error(run("session", "name", S2, "TAKEN"))
    assert "already used by session " + S1 in err
    err = one_line_error(run("session", "tag", S2, "ok", "not ok!"))
    assert "invalid tag 'not ok!'" in err
    assert store_of(e).get(S2) is None  # nothing half-written
    one_line_error(run("session", "list", "--min-tokens", "-3"))
    one_line_error(run("session", "list", "--since", "2026-13-45"))
    one_line_error(run("session", "list", "--tag", "bad tag!"))
    one_line_error(run("session", "name", S1))
    one_line_error(run("session", "untag", S1))
    one_line_error(run("session", "describe", S1))
    one_line_error(run("session", "show", S1, "-z", "Mars/Olympus"))
    one_line_error(run("session", "export", S1, "--format", "xml"))


def test_untag_and_describe_from_stdin(run, e) -> None:  # type: ignore[no-untyped-def]
    run("session", "tag", S3, "a", "b", "c")
    assert run("session", "untag", S3, "B").out.strip().endswith("tags: a c")
    assert run("session", "untag", S3, "--all").out.strip().endswith("tags: (none)")
    assert run("session", "describe", S3, "-", stdin="multi\nline text\n").code == 0
    assert store_of(e).get(S3)["description"] == "multi\nline text"
    assert run("session", "describe", S3, "--clear").code == 0
    assert store_of(e).get(S3)["description"] is None


def test_show_breaks_down_tokens_blocks_and_timeline(run) -> None:  # type: ignore[no-untyped-def]
    run("session", "tag", S1, "perf")
    d = run("session", "show", S1, "--json", "-z", "UTC").json()
    tok = d  # the detail is the merged SessionRow plus models/timeline/blocks (docs/sessions.md)
    assert (
        tok["inputTokens"],
        tok["outputTokens"],
        tok["cacheCreationTokens"],
        tok["cacheReadTokens"],
        tok["totalTokens"],
    ) == (1015, 2027, 300, 4000, 7342)
    # sonnet 4.5: $3 in, $15 out, $3.75 cache write, $0.30 cache read per million
    sonnet_cost = (1010 * 3 + 2020 * 15 + 300 * 3.75 + 4000 * 0.30) / 1e6
    models = {m["modelName"]: m for m in d["models"]}
    assert models[SONNET]["requests"] == 2 and models[OPUS]["requests"] == 1
    assert models[SONNET]["cost"] == pytest.approx(sonnet_cost)
    assert models[SONNET]["totalTokens"] == 7330
    # 09:00 and 09:05 share a block; 15:30 is > 5 h after the block start
    assert [(b["startTime"], b["entries"]) for b in d["blocks"]] == [
        ("2026-03-10T09:00:00.000Z", 2),
        ("2026-03-10T15:00:00.000Z", 1),
    ]
    # the JSON timeline is per UTC hour (the server's shape); the text chart adapts its buckets
    assert [(b["hour"][:16], b["requests"], b["totalTokens"]) for b in d["timeline"]] == [
        ("2026-03-10T09:00", 2, 7330),
        ("2026-03-10T15:00", 1, 12),
    ]
    assert d["metadata"]["tags"] == ["perf"] and d["tags"] == ["perf"]
    assert d["projectPath"] == "/home/u/alpha"
    text = run("session", "show", S1, "-z", "UTC")
    assert text.code == 0
    for needle in (
        "Tokens by type",
        "By model",
        "5-hour billing blocks",
        "Activity",
        "perf",
        "/home/u/alpha",
        "7,342",
        "2026-03-10 15:00",
    ):
        assert needle in text.out, needle


def test_export_formats(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("session", "name", S1, "Export | me")
    rows = list(csv.DictReader(io.StringIO(run("session", "export", S1, "-f", "csv").out)))
    assert len(rows) == 3
    assert sum(int(r["totalTokens"]) for r in rows) == 7342
    assert [r["model"] for r in rows] == [SONNET, SONNET, OPUS]
    assert rows[0]["timestamp"] == "2026-03-10T09:00:00.000Z" and rows[0]["sessionId"] == S1
    data = run("session", "export", "1111", "--format", "json").json()
    assert len(data["requests"]) == 3 and data["metadata"]["name"] == "Export | me"
    md = run("session", "export", S1, "--format", "md", "-z", "UTC").out
    assert md.startswith("# Session Export \\| me\n")
    assert "| Total | 7,342 |" in md and f"`{S1}`" in md
    out = tmp_path / "out.md"
    r = run("session", "export", S1, "-f", "md", "-o", str(out))
    assert r.code == 0 and r.out == "" and out.read_text().startswith("# Session")
    one_line_error(run("session", "export", S1, "-o", str(tmp_path / "no" / "dir" / "x.json")))


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_delete_removes_metadata_only(run, e) -> None:  # type: ignore[no-untyped-def]
    corpus = Path(e["CLAUDE_CONFIG_DIR"])
    before = _tree_digest(corpus)
    run("session", "name", S1, "Doomed")
    run("session", "tag", S1, "x")
    r = run("session", "delete", "Doomed")
    assert r.code == 0 and "transcripts untouched" in r.out
    assert store_of(e).get(S1) is None
    assert _tree_digest(corpus) == before
    rows = run("session", "list", "--json").json()["sessions"]
    assert S1 in {x["sessionId"] for x in rows}  # the session itself is still there
    err = one_line_error(run("session", "delete", S1), code=1)
    assert "has no metadata" in err


def test_metadata_only_session_still_resolves(run, e) -> None:  # type: ignore[no-untyped-def]
    """Transcripts expire after 30 days; their metadata can still be found and deleted."""
    store_of(e).update("99999999-dead-4bee-8eef-000000000000", name="Old work")
    d = run("session", "show", "old work", "--json").json()
    assert d["sessionId"].startswith("99999999") and "entries" not in d  # no usage row
    assert d["name"] == "Old work" and d["models"] == [] and d["timeline"] == []
    assert run("session", "show", "9999").code == 0
    assert run("session", "delete", "9999").code == 0


def test_backup_create_and_restore(run, e, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("session", "name", S1, "Before backup")
    r = run("backup", "create", "--json")
    assert r.code == 0, r.err
    default_backup = Path(r.json()["path"])
    assert default_backup.parent == get_paths(e).data_dir / "backups"
    target = tmp_path / "explicit.json"
    assert run("backup", "create", str(target)).code == 0
    run("session", "name", S1, "After backup")
    run("session", "tag", S2, "later")
    r = run("backup", "restore", str(target))
    assert r.code == 0 and "restored metadata of 1 session from" in r.out
    assert store_of(e).get(S1)["name"] == "Before backup" and store_of(e).get(S2) is None
    # an invalid backup is refused and changes nothing
    data_file = get_paths(e).metadata_file
    before = data_file.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text('{"_meta": {"1": {"schemaVersion": 2}}, "sessions": {"1": {"name": 3}}}')
    err = one_line_error(run("backup", "restore", str(bad)))
    assert f"backup {bad} is invalid: document 1" in err
    one_line_error(run("backup", "restore", str(tmp_path / "missing.json")))
    one_line_error(run("backup"))
    assert data_file.read_bytes() == before


@pytest.mark.slow
def test_real_corpus_subprocess(corpus_copy: Path, env: dict[str, str]) -> None:
    """The real corpus through `python -m tokmon`: report totals, tagging, listing."""
    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus_copy)}
    rep = run_tokmon(["session", "--json", "-z", "UTC"], e)
    assert rep.returncode == 0, rep.stderr
    data = json.loads(rep.stdout)
    assert len(data["sessions"]) == 46
    tot = data["totals"]
    assert (
        tot["inputTokens"],
        tot["outputTokens"],
        tot["cacheCreationTokens"],
        tot["cacheReadTokens"],
    ) == (61872, 237878, 2663638, 41046263)
    assert round(tot["totalCost"], 2) == 36.23
    biggest = max(data["sessions"], key=lambda s: s["totalCost"])
    sid = biggest["sessionId"]
    tag = run_tokmon(["session", "tag", sid[:8], "expensive"], e)
    assert tag.returncode == 0, tag.stderr
    listed = run_tokmon(["session", "list", "--json", "--tag", "expensive"], e)
    rows = json.loads(listed.stdout)["sessions"]
    assert [r["sessionId"] for r in rows] == [sid]
    assert rows[0]["totalTokens"] == biggest["totalTokens"]
    show = run_tokmon(["session", "show", sid, "--json"], e)
    d = json.loads(show.stdout)
    assert d["totalTokens"] == biggest["totalTokens"]
    assert sum(b["totalTokens"] for b in d["timeline"]) == biggest["totalTokens"]
    assert sum(b["totalTokens"] for b in d["blocks"]) == biggest["totalTokens"]
    assert sum(m["requests"] for m in d["models"]) == biggest["entries"]


def test_corrupt_store_read_commands_warn_edit_commands_fail(run, e) -> None:  # type: ignore[no-untyped-def]
    data_file = get_paths(e).metadata_file
    data_file.parent.mkdir(parents=True, exist_ok=True)
    data_file.write_text('{"sessions": {"1": ')
    r = run("session", "list", "--json")
    assert r.code == 0 and len(r.json()["sessions"]) == 3
    assert "warning: session metadata unavailable" in r.err and "not valid JSON" in r.err
    err = one_line_error(run("session", "tag", S1, "x"))
    assert "not valid JSON" in err and "backup restore" in err
    assert data_file.read_text() == '{"sessions": {"1": '


@pytest.mark.skipif(
    os.name == "nt" or os.geteuid() == 0, reason="needs POSIX permissions, non-root"
)
def test_read_only_data_dir_is_a_clear_error(run, e) -> None:  # type: ignore[no-untyped-def]
    data_dir = get_paths(e).data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    run("session", "tag", S1, "first")
    data_dir.chmod(0o500)
    try:
        err = one_line_error(run("session", "tag", S1, "second"))
    finally:
        data_dir.chmod(0o700)
    assert "cannot" in err and "Permission denied" in err
