"""What held-out real data showed (issue 13, item 8), rebuilt as fixtures.

- the malformed-line warning counts exactly (lines and files) the broken lines that could
  have counted something: those holding the bytes ``"usage"``, ``title"``, ``\\u006`` or
  ``\\u007`` (a truncated usage line, a truncated line the next usage line was appended to);
  a broken line without them (garbage, a cut user line joined to the next user line) is
  not read and not counted (docs/bad-input.md); `--log-level debug` lists each file with
  its count and line numbers (capped); a line that is valid JSON but for its UTF-8 counts as
  non-UTF-8 only when it carries usage or a title (docs/architecture.md, "Invalid UTF-8");
- a Windows `cwd` (``C:\\Users\\...\\proj``) gives the project name ``proj`` on every OS;
- sessions with 0 tokens are hidden from `tokmon session` unless `--all` is given.

Expected counts come from an independent validator (Python's json module over the complete
lines that a regular expression finds the bytes in), never from tokmon's parser.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import assistant_line, run_tokmon, write_lines

S1 = "11111111-1111-4111-8111-111111111111"
USER = json.dumps(
    {
        "parentUuid": "p",
        "isSidechain": False,
        "type": "user",
        "sessionId": S1,
        "cwd": "/home/u/proj",
        "message": {"role": "user", "content": "hello { world }"},
        "timestamp": "2026-03-01T10:00:00.000Z",
    },
    separators=(",", ":"),
)
SUMMARY = '{"type":"summary","summary":"Things","leafUuid":"x"}'


def _good(n: int, session: str = S1, cwd: str = "/home/u/proj", **kw: object) -> str:
    return assistant_line(
        f"2026-03-01T10:{n:02d}:00.000Z",
        msg_id=f"m{n}-{session[:4]}",
        req_id=f"r{n}-{session[:4]}",
        session=session,
        cwd=cwd,
        **kw,
    )


def _bad_corpus(root: Path) -> Path:
    p = root / "projects" / "-home-u-proj"
    good = [_good(i) for i in range(10)]
    # a: every kind, between good lines
    write_lines(
        p / "a.jsonl",
        [
            good[0],
            "not json at all",  # could not have counted anything: not counted
            'not json, but it says "usage"',  # counted
            good[1][:-20],  # truncated assistant line (its usage cut): counted
            USER[:70] + USER,  # truncated user line + next user line: not counted
            USER[:70] + good[9],  # truncated user line + a usage line: counted
            USER[:40] + SUMMARY,  # truncated + a summary line: not counted
            "[1, 2, 3]",  # JSON, but not an object: not counted
            '[{"title": 1}]',  # counted
            '{"type":"user","message":{"content":"x"}}}',  # one brace too many: not counted
            '{"type":"user","message":{"content":"\\u0075"}}}',  # an escaped letter: counted
            good[2],
        ],
    )
    with open(p / "a.jsonl", "ab") as fh:
        fh.write(b'{"type":"user","text":"caf\xe9"}\n')  # not UTF-8, no usage: not counted
        fh.write(good[3].replace("proj", "pr\xe9j").encode("latin-1") + b"\n")  # not UTF-8
        fh.write((good[3] + "\n").encode())
    # b: only broken lines that could not have counted anything: no warning for this file
    write_lines(p / "b.jsonl", [USER, USER[:55] + USER, SUMMARY[:30] + SUMMARY, good[4]])
    # c: clean; d: clean but its last line is still being written (not counted)
    write_lines(p / "c.jsonl", [good[5], USER, SUMMARY])
    write_lines(p / "d.jsonl", [good[6], USER[:50]], newline_at_end=False)
    # e: many bad lines, more than the debug listing shows
    write_lines(p / "e.jsonl", [good[7]] + [f'garbage {i} "usage"' for i in range(25)] + [good[8]])
    return root


def _independent_count(root: Path) -> dict[str, tuple[int, int, list[int]]]:
    """file -> (malformed, non-UTF-8, bad line numbers) over complete lines, by Python's json."""
    out = {}
    for f in sorted((root / "projects").rglob("*.jsonl")):
        data = f.read_bytes()
        complete = data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]
        mal = utf = 0
        numbers = []
        for i, raw in enumerate(complete, 1):
            if not raw.strip() or not re.search(rb'"usage"|title"|\\u00[67]', raw):
                continue  # nothing it could count: not read (docs/bad-input.md)
            try:
                obj = json.loads(raw.decode("utf-8"))
                if isinstance(obj, dict):
                    continue
                mal += 1
            except UnicodeDecodeError:
                lenient = json.loads(raw.decode("utf-8", "replace"))  # the fixture's are JSON
                if lenient.get("type") != "assistant":
                    continue  # valid JSON but for its bytes, without usage: not counted
                utf += 1
            except ValueError:
                mal += 1
            numbers.append(i)
        if mal or utf:
            out[str(f)] = (mal, utf, numbers)
    return out


def test_malformed_lines_are_counted_exactly(env: dict[str, str], tmp_path: Path) -> None:
    root = _bad_corpus(tmp_path / "claude")
    expected = _independent_count(root)
    mal = sum(v[0] for v in expected.values())
    utf = sum(v[1] for v in expected.values())
    assert len(expected) == 2 and mal == 5 + 25 and utf == 1  # the fixture is what we meant
    r = run_tokmon(["daily", "--json"], {**env, "CLAUDE_CONFIG_DIR": str(root)})
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "skipped" in ln]
    assert warn == [
        f"tokmon: warning: skipped {mal} malformed + {utf} non-UTF-8 line(s) in "
        f"{len(expected)} file(s); the rest was counted"
    ], r.stderr
    # and the good lines all counted: 8 complete assistant lines of 10 input tokens each
    assert json.loads(r.stdout)["totals"]["inputTokens"] == 8 * 10


def test_debug_lists_each_file_with_count_and_line_numbers(
    env: dict[str, str], tmp_path: Path
) -> None:
    root = _bad_corpus(tmp_path / "claude")
    expected = _independent_count(root)
    r = run_tokmon(
        ["daily", "--json", "--log-level", "debug"], {**env, "CLAUDE_CONFIG_DIR": str(root)}
    )
    assert r.returncode == 0, r.stderr
    listed = [ln for ln in r.stderr.splitlines() if re.search(r"\.jsonl: skipped \d+ line", ln)]
    assert len(listed) == len(expected), r.stderr
    for path, (mal, utf, numbers) in expected.items():
        line = next(ln for ln in listed if f"{path}: skipped" in ln)
        assert f"skipped {mal + utf} line(s)" in line
        shown = [int(x) for x in re.search(r"at line\(s\) ([\d, ]+)", line).group(1).split(", ")]
        assert shown == numbers[:20], (line, numbers)
        if len(numbers) > 20:
            assert "(first 20 listed)" in line
        else:
            assert "listed" not in line
    # without debug: no per-file lines
    quiet = run_tokmon(
        ["daily", "--json"],
        {**env, "CLAUDE_CONFIG_DIR": str(root), "TOKMON_HOME": str(tmp_path / "other-home")},
    )
    assert not [ln for ln in quiet.stderr.splitlines() if ".jsonl: skipped" in ln]


def test_windows_cwd_gives_the_last_component(env: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "claude"
    s2 = "22222222-2222-4222-8222-222222222222"
    write_lines(
        root / "projects" / "C--Users-me-proj" / "w.jsonl",
        [_good(1, cwd="C:\\Users\\me\\proj"), _good(2, cwd="C:\\Users\\me\\proj")],
    )
    write_lines(
        root / "projects" / "-home-u-other" / "o.jsonl", [_good(3, session=s2, cwd="/home/u/other")]
    )
    e = {**env, "CLAUDE_CONFIG_DIR": str(root)}
    r = run_tokmon(["session", "--json"], e)
    assert r.returncode == 0, r.stderr
    by_id = (
        {s["sessionId"]: s for s in r.json()["sessions"]}
        if hasattr(r, "json")
        else {s["sessionId"]: s for s in json.loads(r.stdout)["sessions"]}
    )
    assert by_id[S1]["projectName"] == "proj"
    assert by_id[S1]["projectPath"] == "C:\\Users\\me\\proj"
    assert by_id[s2]["projectName"] == "other"
    only = json.loads(run_tokmon(["daily", "--json", "--project", "proj"], e).stdout)
    assert only["totals"]["inputTokens"] == 2 * 10
    full = json.loads(run_tokmon(["daily", "--json", "--project", "C:\\Users\\me\\proj"], e).stdout)
    assert full["totals"]["inputTokens"] == 2 * 10


def test_empty_sessions_hidden_unless_all(env: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "claude"
    empty = "33333333-3333-4333-8333-333333333333"
    write_lines(
        root / "projects" / "-home-u-proj" / "s.jsonl",
        [
            _good(1),
            _good(2, session=empty, inp=0, out=0),
            _good(3, session=empty, inp=0, out=0, model="<synthetic>"),
        ],
    )
    e = {**env, "CLAUDE_CONFIG_DIR": str(root)}
    shown = json.loads(run_tokmon(["session", "--json"], e).stdout)["sessions"]
    assert [s["sessionId"] for s in shown] == [S1]
    table = run_tokmon(["session"], e)
    assert empty[:8] not in table.stdout and S1[:8] in table.stdout
    every = json.loads(run_tokmon(["session", "--json", "--all"], e).stdout)["sessions"]
    assert sorted(s["sessionId"] for s in every) == sorted([S1, empty])
    assert next(s for s in every if s["sessionId"] == empty)["totalTokens"] == 0
    # asking for it by id always finds it (ccusage's `session --id` shape)
    by_id = json.loads(run_tokmon(["session", "--json", "--id", empty], e).stdout)
    assert by_id["sessionId"] == empty and by_id["totalTokens"] == 0 and len(by_id["entries"]) == 2
    # `session list` follows the same rule
    listed = json.loads(run_tokmon(["session", "list", "--json"], e).stdout)["sessions"]
    assert [s["sessionId"] for s in listed] == [S1]
    listed = json.loads(run_tokmon(["session", "list", "--json", "--all"], e).stdout)["sessions"]
    assert sorted(s["sessionId"] for s in listed) == sorted([S1, empty])
