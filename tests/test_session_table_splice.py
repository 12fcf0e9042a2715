"""Issue 12: the ``tokmon session`` table after a change makes only the changed sessions' rows.

The kept table (``cli.reports.TableParts``) holds its text, each row's cells and each cell
kind's histogram of lengths; after a change the ledger's change log names the sessions to
make again, and where the layout and every column's width stay, their row lines are spliced
into the kept text (``cli.reports._table_spliced``). Each case here compares that table, byte
for byte, with the one built from scratch (the kept files removed), in a pipe and in
terminals of 160, 80 and 60 columns, for the full, ``--breakdown``, ``--compact`` and
``--all`` tables; and says which path made it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import assistant_line, write_lines

from tokmon.cli import reports, tables

END = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
NOW = END.timestamp() + 60
WIDTHS: list[int | None] = [None, 160, 80, 60]
SHAPES: list[tuple[str, ...]] = [(), ("--breakdown",), ("--compact",), ("--all",)]


def _corpus(root: Path) -> Path:
    """Eight sessions over two projects, of different costs; "empty" has 0 tokens."""
    proj = root / "projects" / "-w-app"
    other = root / "projects" / "-w-lib"
    for k in range(5):
        t = END - timedelta(days=5 - k)
        write_lines(proj / f"s{k}.jsonl", [
            assistant_line(t, msg_id=f"m{k}a", req_id=f"r{k}a", session=f"s{k}", cwd="/w/app",
                           inp=10 + k, out=200 * k + 20, cr=1000 * k),
            assistant_line(t + timedelta(minutes=5), msg_id=f"m{k}b", req_id=f"r{k}b",
                           session=f"s{k}", cwd="/w/app", model="claude-opus-4-1-20250805",
                           inp=3, out=4 + k, cc=50),
        ])  # fmt: skip
    write_lines(other / "live.jsonl", [
        assistant_line(END - timedelta(hours=1), msg_id="l1", req_id="rl1", session="live",
                       cwd="/w/lib", inp=7, out=8, cc=300),
    ])  # fmt: skip
    write_lines(other / "abcdefgh-1.jsonl", [
        assistant_line(END - timedelta(days=3), msg_id="a1", req_id="ra1", session="abcdefgh-1",
                       cwd="/w/lib", inp=70, out=80),
    ])  # fmt: skip
    write_lines(other / "empty.jsonl", [
        assistant_line(END - timedelta(days=1), msg_id="e1", req_id="re1", session="empty",
                       cwd="/w/lib", inp=0, out=0),
    ])  # fmt: skip
    return root / "projects"


class _Out(io.StringIO):
    """A stream that is a terminal of ``COLUMNS`` columns (or a pipe)."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


class Paths:
    """Which path made each table: "kept", "spliced" or "built"; and the sessions whose
    cells were made."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        self.cells: list[str] = []
        real_splice, real_cells = reports._table_spliced, tables.session_cells
        real_build = tables.session_table

        def splice(*a: Any, **k: Any) -> Any:
            got = real_splice(*a, **k)
            self.paths.append("spliced" if got is not None else "not spliced")
            return got

        def cells(r: Any, *a: Any, **k: Any) -> Any:
            self.cells.append(r.session_id)
            return real_cells(r, *a, **k)

        def build(*a: Any, **k: Any) -> Any:
            self.paths.append("built")
            return real_build(*a, **k)

        monkeypatch.setattr(reports, "_table_spliced", splice)
        monkeypatch.setattr(tables, "session_cells", cells)
        monkeypatch.setattr(tables, "session_table", build)

    def reset(self) -> None:
        self.paths.clear()
        self.cells.clear()


@pytest.fixture
def setup(
    env: dict[str, str], tokmon_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Callable[..., str], Paths]:
    projects = _corpus(tmp_path / "claude")
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    monkeypatch.setattr(time, "time", lambda: NOW)
    # every shape's table kept at once (only the latest four are, else)
    monkeypatch.setattr(reports.SessionCache, "KEEP_SESSION", 64)

    def run(*argv: str, columns: int | None = None, colour: bool = False) -> str:
        from tokmon.cli.main import run as main

        out, err = _Out(columns is not None), io.StringIO()
        e = {**env, "COLUMNS": str(columns or 160)}
        if colour:
            del e["NO_COLOR"]
            e["FORCE_COLOR"] = "1"
        assert main(list(argv), env=e, stdin=io.StringIO(), stdout=out, stderr=err) == 0, (
            err.getvalue()
        )
        return out.getvalue()

    return projects, run, Paths(monkeypatch)


def _kept(home: Path) -> list[Path]:
    return sorted((home / "cache" / "reports").glob("session-table-*.json"))


def _both(run: Callable[..., str], home: Path, argv: tuple[str, ...], columns: int | None,
          paths: Paths) -> tuple[str, str, list[str]]:  # fmt: skip
    """The table with the kept one (spliced), the path it took, and the one from scratch."""
    paths.reset()
    spliced = run("session", *argv, columns=columns)
    took = list(paths.paths)
    saved = {p: p.read_bytes() for p in _kept(home)}
    for p in saved:
        p.unlink()
    scratch = run("session", *argv, columns=columns)
    for p in _kept(home):
        p.unlink()
    for p, data in saved.items():  # the spliced run's kept table stays for the next step
        p.write_bytes(data)
    return spliced, scratch, took


def _append(path: Path, *lines: str) -> None:
    write_lines(path, list(lines))


def _line(session: str, when: datetime, tag: str, cwd: str = "/w/app", **k: Any) -> str:
    return assistant_line(when, msg_id=f"m-{tag}", req_id=f"r-{tag}", session=session, cwd=cwd,
                          **k)  # fmt: skip


CHANGES: dict[str, tuple[Callable[[Path, Any], Any], bool]] = {
    # change -> (what it does, whether the kept table can be spliced)
    "append to a session": (
        lambda p, run: _append(
            p / "-w-app" / "s2.jsonl", _line("s2", END - timedelta(hours=2), "a1", inp=5, out=6)
        ),
        True,
    ),  # fmt: skip
    "a new session": (
        lambda p, run: _append(
            p / "-w-app" / "s9.jsonl",
            _line("s9", END - timedelta(days=2, hours=1), "n9", inp=9, out=9),
        ),
        True,
    ),  # fmt: skip
    "a session moves up the order": (
        lambda p, run: _append(
            p / "-w-app" / "s0.jsonl", _line("s0", END - timedelta(hours=3), "up", inp=50, out=2000)
        ),
        True,
    ),  # fmt: skip
    "the empty session gets tokens": (
        lambda p, run: _append(
            p / "-w-lib" / "empty.jsonl",
            _line("empty", END - timedelta(hours=20), "e2", "/w/lib", inp=4, out=4),
        ),
        True,
    ),  # fmt: skip
    # a third model: one more breakdown row, a models cell wrapped on more lines
    "a new model in a session": (
        lambda p, run: _append(
            p / "-w-app" / "s3.jsonl",
            _line(
                "s3",
                END - timedelta(hours=7),
                "o45",
                model="claude-opus-4-5-20251101",
                inp=2,
                out=3,
            ),
        ),
        True,
    ),  # fmt: skip
    "a title line": (
        lambda p, run: _append(
            p / "-w-app" / "s1.jsonl",
            '{"type":"custom-title","customTitle":"Titled","sessionId":"s1"}',
        ),
        True,
    ),  # fmt: skip
    "a transcript deleted": (lambda p, run: (p / "-w-app" / "s3.jsonl").unlink(), True),
    # a project of a longer name: the project column widens (a re-layout: built)
    "a column widens": (
        lambda p, run: _append(
            p / "-w-a-much-longer-project-name" / "w1.jsonl",
            _line(
                "w1", END - timedelta(hours=4), "w1", "/w/a-much-longer-project-name", inp=1, out=1
            ),
        ),
        False,
    ),  # fmt: skip
    # the totals gain digits: the token and cost columns widen (built)
    "the totals widen": (
        lambda p, run: _append(
            p / "-w-app" / "s4.jsonl",
            _line("s4", END - timedelta(hours=5), "big", inp=3_000_000, out=900_000, cr=90_000_000),
        ),
        False,
    ),  # fmt: skip
    # an id that shares its first 8 characters with another: every id is shown longer (built)
    "the ids get longer": (
        lambda p, run: _append(
            p / "-w-lib" / "abcdefgh-2.jsonl",
            _line("abcdefgh-2", END - timedelta(hours=6), "a2", "/w/lib", inp=1, out=1),
        ),
        False,
    ),  # fmt: skip
    # a name (a new metadata file: another key, built)
    "a name": (lambda p, run: run("session", "name", "s2", "Named two"), False),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_after_a_change_the_table_is_the_one_built_from_scratch(
    setup: tuple[Path, Callable[..., str], Paths], tokmon_home: Path, change: str
) -> None:
    projects, run, paths = setup
    firsts = {}
    for argv in SHAPES:
        for columns in WIDTHS:
            first, scratch, took = _both(run, tokmon_home, argv, columns, paths)
            assert first == scratch and took == ["built"], (argv, columns)
            assert _both(run, tokmon_home, argv, columns, paths)[2] == []  # kept: as it is
            firsts[argv, columns] = first
    do, splices = CHANGES[change]
    do(projects, run)
    for argv in SHAPES:
        for columns in WIDTHS:
            spliced, scratch, took = _both(run, tokmon_home, argv, columns, paths)
            assert spliced == scratch, (argv, columns)
            if change != "a transcript deleted" and (columns or 200) > 70:
                assert spliced != firsts[argv, columns], (argv, columns)
            if splices:
                assert took == ["spliced"], (argv, columns, took)
            elif change == "a name":
                assert took == ["built"], (argv, columns, took)  # another key: nothing kept
            else:
                assert took[-1] == "built", (argv, columns, took)
    # and the next change splices into what the last step kept
    _append(projects / "-w-lib" / "live.jsonl",
            _line("live", END + timedelta(seconds=30), "x1", "/w/lib", inp=2, out=3))  # fmt: skip
    for argv in SHAPES:
        for columns in WIDTHS:
            again, scratch, took = _both(run, tokmon_home, argv, columns, paths)
            assert again == scratch, (argv, columns)
            assert took == ["spliced"], (argv, columns, took)


def test_each_layout_is_exercised(setup: tuple[Path, Callable[..., str], Paths]) -> None:
    """The widths above print the full table, the compact one, a narrower one and the hint
    (so the cases above splice each of them)."""
    _, run, _ = setup
    assert "Compact layout" not in run("session", columns=160)
    assert "Models" in run("session", columns=160)
    narrow = run("session", columns=80)
    assert "Compact layout" in narrow and "Models" not in narrow and "Last activity" in narrow
    narrower = run("session", columns=60)
    assert "Compact layout" in narrower and "Last activity" not in narrower


def test_a_one_line_append_makes_only_that_sessions_cells(
    setup: tuple[Path, Callable[..., str], Paths],
) -> None:
    projects, run, paths = setup
    for argv in SHAPES:
        run("session", *argv)
    assert sorted(set(paths.cells)) == ["abcdefgh-1", "empty", "live", "s0", "s1", "s2", "s3", "s4"]
    paths.reset()
    for argv in SHAPES:
        run("session", *argv)
    assert paths.cells == [] and paths.paths == []  # kept
    _append(projects / "-w-app" / "s2.jsonl",
            _line("s2", END - timedelta(hours=5), "n2", inp=1, out=2))  # fmt: skip
    for argv in SHAPES:
        paths.reset()
        out = run("session", *argv)
        assert paths.cells == ["s2"], argv  # one row made, no other
        assert paths.paths == ["spliced"], argv
        assert "s2" in out


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    t = reports.TableParts._TRAILER  # b"%012d %012d %020d %16s %s\n"
    assert t == 105
    trailer = data[-t:]
    nc, ni = int(trailer[:12]), int(trailer[13:25])
    end = len(data) - t - ni
    index = orjson.loads(data[end : len(data) - t])
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "trailer":
        path.write_bytes(data[:-t] + b"x" * (t - 1) + b"\n")
    elif how == "digest":  # an index changed without its digest
        index["tokens"][0] += 1
        new = orjson.dumps(index)
        path.write_bytes(data[:end] + new + b"%012d %012d" % (nc, len(new)) + trailer[25:])
    elif how == "cells":  # a cell's length changed: the digest covers the cells
        at = data.index(b"[[", end - nc) + 2
        assert data[at : at + 1].isdigit()
        path.write_bytes(data[:at] + b"9" + data[at + 1 :])
    elif how in ("wrong types", "lengths"):  # under a right digest
        if how == "wrong types":
            index["shown"] = "3"
        else:
            index["entries"][0][4] += 5
        new = orjson.dumps(index)
        cells = data[end - nc : end]
        sig = reports._index_sig(new, cells).encode()
        path.write_bytes(
            data[:end] + new + b"%012d %012d" % (nc, len(new)) + trailer[25:-41] + sig + b"\n"
        )
    elif how == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize(
    "how", ["truncated", "trailer", "digest", "cells", "wrong types", "lengths", "empty"]
)
def test_a_damaged_kept_table_is_not_used(
    setup: tuple[Path, Callable[..., str], Paths], tokmon_home: Path, how: str
) -> None:
    projects, run, paths = setup
    run("session")
    [kept] = _kept(tokmon_home)
    _append(projects / "-w-app" / "s2.jsonl",
            _line("s2", END - timedelta(hours=5), "d2", inp=1, out=2))  # fmt: skip
    _damage(kept, how)
    spliced, scratch, took = _both(run, tokmon_home, (), None, paths)
    assert spliced == scratch
    assert took[-1] == "built", took


def test_colour_is_built_by_rich_and_not_kept(
    setup: tuple[Path, Callable[..., str], Paths], tokmon_home: Path
) -> None:
    """A table in colour is rich's: never kept, so never spliced; built each time."""
    projects, run, paths = setup
    first = run("session", columns=160, colour=True)
    assert "\x1b[" in first  # rich wrote colour codes
    assert _kept(tokmon_home) == []
    _append(projects / "-w-app" / "s2.jsonl",
            _line("s2", END - timedelta(hours=5), "c2", inp=1, out=2))  # fmt: skip
    paths.reset()
    again = run("session", columns=160, colour=True)
    assert paths.paths == ["built"] and again != first
    assert _kept(tokmon_home) == []
