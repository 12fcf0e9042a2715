"""Issue 10, item 9: a transcript rewritten in place (same inode) is read again.

Same-size rewrites (new mtime) and truncate-then-regrow used to be read from the old
offset or not at all. Expected figures: the history already counted stays, plus every
response of the new content (computed from the lines written here).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import assistant_line, run_tokmon

from tokmon.core.engine import Engine
from tokmon.paths import get_paths


def _lines(prefix: str, n: int, inp: int, out: int) -> bytes:
    return b"".join(
        assistant_line(
            "2026-11-01T10:00:00.000Z",
            msg_id=f"{prefix}{i}",
            req_id=f"r{prefix}{i}",
            inp=inp,
            out=out,
        ).encode()
        + b"\n"
        for i in range(n)
    )


def _rewrite_in_place(path: Path, data: bytes, truncate_first: bool) -> None:
    ino = path.stat().st_ino
    st = path.stat()
    if truncate_first:
        with open(path, "r+b") as fh:
            fh.truncate(0)
    with open(path, "r+b") as fh:  # same inode: no rename
        fh.write(data)
        fh.truncate(len(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a later mtime
    assert path.stat().st_ino == ino


CASES = {
    # name: (new content, truncate first, expected (in, out) = history + new)
    "same-size": (_lines("x", 10, 20, 7), False, (100 + 200, 50 + 70)),
    "truncate-regrow": (_lines("n", 12, 30, 9), True, (100 + 360, 50 + 108)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_rereads_rewritten_file(tmp_path: Path, env: dict[str, str], case: str) -> None:
    data, trunc, expected = CASES[case]
    f = tmp_path / "claude" / "projects" / "p" / "a.jsonl"
    f.parent.mkdir(parents=True)
    f.write_bytes(_lines("m", 10, 10, 5))
    if case == "same-size":
        assert len(data) == f.stat().st_size
    e = {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}

    def tot() -> tuple[int, int]:
        r = run_tokmon(["session", "--json"], e)
        assert r.returncode == 0, r.stderr
        t = json.loads(r.stdout)["totals"]
        return t["inputTokens"], t["outputTokens"]

    assert tot() == (100, 50)
    _rewrite_in_place(f, data, trunc)
    assert tot() == expected
    assert tot() == expected  # and not counted twice on the next run


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("save", [True, False], ids=["saved", "server-deferred-save"])
def test_path_hinted_refresh_rereads_rewritten_file(tmp_path: Path, case: str, save: bool) -> None:
    """The server's watcher path: ``refresh(paths=[changed file])``."""
    data, trunc, expected = CASES[case]
    root = tmp_path / "claude" / "projects"
    f = root / "p" / "a.jsonl"
    f.parent.mkdir(parents=True)
    f.write_bytes(_lines("m", 10, 10, 5))
    eng = Engine(roots=[root], paths=get_paths({"TOKMON_HOME": str(tmp_path / "home")}))
    eng.refresh()

    def tot() -> tuple[int, int]:
        recs = eng.records
        return sum(r.input_tokens for r in recs), sum(r.output_tokens for r in recs)

    assert tot() == (100, 50)
    _rewrite_in_place(f, data, trunc)
    changes = eng.refresh(paths=[f], save=save)
    assert changes.changed and tot() == expected
    eng.refresh(paths=[f], save=save)
    assert tot() == expected
