"""Issue 12: the ``tokmon session`` table after an append costs what changed, not the history.

The kept table (``cli.reports.TableParts``) is printed from its file by ranges
(``tokmon.filespans``), never read whole into the process, and a splice appends its change
to the file (the new rows' lines and cells, the plan of both documents, the index, a
trailer: ``cli.reports._append``, as ``session --json`` does) until the file holds
``TableParts.CAP`` times its documents; then it is written whole again. Every table here is
compared byte for byte with the one built from scratch (the kept files removed).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_session_table_splice import END, Paths, _append, _both, _kept, _line, setup

from tokmon import filespans
from tokmon.cli import reports

__all__ = ["setup"]  # the fixture, shared

WIDTHS: list[int | None] = [None, 80]


def _patched(path: Path) -> bool:
    return path.read_bytes().endswith(b" P\n")


def _grow(projects: Path, k: int) -> None:
    """The k-th change: a line for a session of its own (a new row), or for an old one."""
    sid, proj, cwd = [("s2", "-w-app", "/w/app"), ("live", "-w-lib", "/w/lib"),
                      (f"n{k}", "-w-app", "/w/app")][k % 3]  # fmt: skip
    _append(projects / proj / f"{sid}.jsonl",
            _line(sid, END - timedelta(hours=k % 9), f"g{k}", cwd, inp=k + 1, out=3 * k + 1))  # fmt: skip


def test_appended_changes_give_the_table_built_whole(
    setup: tuple[Path, Callable[..., str], Paths],
    tokmon_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten changes in a row (a session, another one, a new one), in a pipe and at 80
    columns: each table, spliced into a kept file that has changes appended, and the next
    one printed from it as kept, equals the table built whole; a splice appends to the file
    (what was there stays, byte for byte), which is written whole again once it would hold
    ``CAP`` times its documents."""
    projects, run, paths = setup
    monkeypatch.setattr(reports.TableParts, "CAP", 3.0)  # a few changes, then written whole
    for columns in WIDTHS:
        assert _both(run, tokmon_home, (), columns, paths)[2] == ["built"]
    grew: dict[int | None, list[bool]] = {c: [] for c in WIDTHS}
    for k in range(10):
        _grow(projects, k)
        for columns in WIDTHS:
            before = {p: p.read_bytes() for p in _kept(tokmon_home)}
            spliced, scratch, took = _both(run, tokmon_home, (), columns, paths)
            assert spliced == scratch, (k, columns)
            assert took == ["spliced"], (k, columns, took)
            [changed] = [p for p in _kept(tokmon_home) if p.read_bytes() != before.get(p)]
            data = changed.read_bytes()
            appended = data.startswith(before[changed])
            assert appended == _patched(changed), (k, columns)
            grew[columns].append(appended)
            paths.reset()
            assert run("session", columns=columns) == spliced  # kept: printed from the file
            assert paths.paths == []
    for columns, seen in grew.items():
        assert any(seen) and not all(seen), (columns, seen)  # appended, and written whole


def _binary_run(env: dict[str, str]) -> str:
    """``tokmon session`` printed to a binary stdout (a pipe's: what the kept file's ranges
    are printed to)."""
    from tokmon.cli.main import run

    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    e = {**env, "COLUMNS": "160"}
    assert run(["session"], env=e, stdin=io.StringIO(""), stdout=out, stderr=io.StringIO()) == 0
    out.flush()
    return raw.getvalue().decode()


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    assert data.endswith(b" P\n")
    f = data[-reports._PATCH_LEN : -3].split()
    nb, npl, ni = int(f[0]), int(f[1]), int(f[2])
    at = len(data) - reports._PATCH_LEN - ni - npl - nb
    new, plan = data[at : at + nb], data[at + nb : at + nb + npl]
    index = data[at + nb + npl : at + nb + npl + ni]

    def resign(plan: bytes) -> bytes:
        trailer = reports._PATCH % (nb, len(plan), ni, int(f[3]), f[4], f[5], f[6], f[7],
                                    reports._index_sig(plan, new).encode())  # fmt: skip
        return data[:at] + new + plan + index + trailer

    if how == "a new byte":  # under the old digest
        k = new.index(b"\n") - 1
        path.write_bytes(data[: at + k] + b"#" + data[at + k + 1 :])
    elif how == "one plan":  # a session --json's plan (one document), signed
        import orjson

        path.write_bytes(resign(orjson.dumps(orjson.loads(plan)[0])))
    elif how == "a plan out of the file":
        path.write_bytes(resign(b"[[[0,%d]],[]]" % (len(data) + 10)))
    elif how == "a plan into the change":
        path.write_bytes(resign(b"[[[0,%d]],[]]" % (at + 5)))
    elif how == "a torn change":
        path.write_bytes(data[: at + nb // 2])
    elif how == "the index":  # changed under its digest
        changed = index.replace(b'"shown":', b'"shown": ', 1)
        trailer = data[-reports._PATCH_LEN :].replace(b"%012d" % ni, b"%012d" % len(changed), 1)
        path.write_bytes(data[: at + nb + npl] + changed + trailer)
    elif how in ("lengths", "cells"):  # under right digests: a row's lengths, its cells
        import orjson

        x = orjson.loads(index)
        if how == "lengths":  # a negative text length (the text's lengths still fit)
            x["entries"][0][3] = -5
        else:  # the changed session's cells one byte short, its neighbour's one longer
            k = [e[0] for e in x["entries"]].index("live")
            x["entries"][k][4] -= 1
            x["entries"][k + 1 if k + 1 < x["shown"] else k - 1][4] += 1
        changed = orjson.dumps(x)
        trailer = reports._PATCH % (nb, npl, len(changed), int(f[3]), f[4], f[5], f[6],
                                    reports._index_sig(changed).encode(), f[8])  # fmt: skip
        path.write_bytes(data[: at + nb + npl] + changed + trailer)


@pytest.mark.parametrize(
    "how",
    ["a new byte", "one plan", "a plan out of the file", "a plan into the change",
     "a torn change", "the index", "lengths", "cells"],
)  # fmt: skip
def test_a_damaged_change_is_not_used(
    setup: tuple[Path, Callable[..., str], Paths], tokmon_home: Path, how: str
) -> None:
    """A kept table whose last change is damaged (a byte of its new rows, a plan of the
    wrong shape, out of the file or into the change itself, the change torn, its index
    changed; under right digests, a negative length, a changed row's cells cut short) is
    never printed nor spliced, and never ends the report: the table is built whole."""
    projects, run, paths = setup
    run("session")
    _grow(projects, 0)
    assert _both(run, tokmon_home, (), None, paths)[2] == ["spliced"]
    [path] = _kept(tokmon_home)
    assert _patched(path)
    _damage(path, how)
    _grow(projects, 1)
    spliced, scratch, took = _both(run, tokmon_home, (), None, paths)
    assert spliced == scratch
    assert took[-1] == "built", took


def test_the_kept_text_is_not_read(
    env: dict[str, str],
    setup: tuple[Path, Callable[..., str], Paths],
    tokmon_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Warm and after an append the table's text (the history's rows) is printed from the
    file, never read into the process: only the first line, the trailer, the last change,
    the index and the changed rows' cells are."""
    projects, run, paths = setup
    run("session")
    _grow(projects, 0)
    run("session")  # spliced: the file has a change appended

    def whole(path: Path) -> bytes:
        raise AssertionError(f"the kept file read whole: {path}")

    texts: list[list[tuple[int, int]]] = []
    real_open = reports.TableParts.open_ranges

    def opened(self: Any) -> Any:
        got = real_open(self)
        if got is not None:
            texts.append(list(got.text.plan))
        return got

    reads: list[tuple[int, int]] = []
    real_read = filespans.Source.read

    def read(self: Any, start: int, end: int) -> Any:
        reads.append((start, end))
        return real_read(self, start, end)

    monkeypatch.setattr(reports, "_kept_bytes", whole)
    monkeypatch.setattr(reports.TableParts, "open_ranges", opened)
    monkeypatch.setattr(filespans.Source, "read", read)
    for step in ("kept", "spliced", "kept"):
        if step == "spliced":
            _grow(projects, 1)
        [path] = _kept(tokmon_home)
        data = path.read_bytes()
        f = data[-reports._PATCH_LEN : -3].split()
        last = len(data) - reports._PATCH_LEN - sum(int(x) for x in f[:3])
        texts.clear()
        reads.clear()
        paths.reset()
        out = _binary_run(env)  # the text printed from the file
        assert paths.paths == ([] if step == "kept" else ["spliced"])
        [plan] = texts
        assert sum(b - a for a, b in plan) > 1000
        assert "s2" in out
        # the last change when opened (its new bytes, checked against their digest) may be
        # read; and the first line's read may hold the text's first bytes
        for a, b in reads:
            inside = sum(max(0, min(b, y, last) - max(a, x)) for x, y in plan)
            assert inside <= (100 if a == 0 else 0), (step, (a, b), plan, last)


@pytest.mark.skipif(not hasattr(os, "pread"), reason="the file is read whole there")
@pytest.mark.parametrize("cut", ["before the print", "in the middle of the print"])
@pytest.mark.parametrize("grown", [False, True])
@pytest.mark.parametrize("step", ["kept", "spliced"])
def test_a_kept_table_cut_short_while_printed(
    env: dict[str, str],
    setup: tuple[Path, Callable[..., str], Paths],
    tokmon_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    cut: str,
    step: str,
    grown: bool,
) -> None:
    """Another process truncates the kept file in place after it was opened (and, grown,
    extends it again: NUL bytes where it was cut): the table is built whole and what was
    not printed yet of it is printed, once (a binary stdout: the text printed from the
    file). Grown, the NULs were printed."""
    projects, run, paths = setup
    run("session")
    if step == "spliced":
        _grow(projects, 0)
        run("session")  # a change appended: the text in ranges of both
        _grow(projects, 1)
    [path] = _kept(tokmon_home)
    truth = _both(run, tokmon_home, (), None, paths)[1]
    real_open = reports.TableParts.open_ranges

    def open_then_cut(self: Any) -> Any:
        got = real_open(self)
        size = 0 if cut == "before the print" else got.text.plan[0][0] + 700
        with open(path, "r+b") as fh:  # in place: the same file
            end = fh.seek(0, os.SEEK_END)
            fh.truncate(size)
            if grown:  # and grown again: NUL bytes where it was cut
                fh.truncate(end)
        return got

    monkeypatch.setattr(reports.TableParts, "open_ranges", open_then_cut)
    assert _binary_run(env) == truth


def test_a_splice_reads_only_the_changed_sessions_titles(
    setup: tuple[Path, Callable[..., str], Paths], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The changed sessions' rows take their titles by key from the database (every
    session's titles are not loaded for one changed row), and the right one."""
    from tokmon.core import ledger

    projects, run, paths = setup
    _append(projects / "-w-app" / "s1.jsonl",
            '{"type":"custom-title","customTitle":"Tt1","sessionId":"s1"}')  # fmt: skip
    run("session")
    _append(projects / "-w-app" / "s1.jsonl",
            _line("s1", END - timedelta(hours=3), "t1", inp=1, out=1))  # fmt: skip
    loaded: list[int] = []
    real = ledger.LedgerDB._load_titles

    def load_all(self: Any) -> Any:
        loaded.append(1)
        return real(self)

    monkeypatch.setattr(ledger.LedgerDB, "_load_titles", load_all)
    paths.reset()
    out = run("session")
    assert paths.paths == ["spliced"]
    assert "Tt1" in out
    assert loaded == []


def test_without_pread_the_file_is_read_whole(
    setup: tuple[Path, Callable[..., str], Paths],
    tokmon_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where no range can be read (no ``os.pread``: Windows) the kept table is read whole:
    as kept and spliced it is the table built whole, and a splice writes the file whole (a
    file appended to stays readable by the ranges' path: it is printed the same)."""
    projects, run, paths = setup
    run("session")
    _grow(projects, 0)
    assert _both(run, tokmon_home, (), None, paths)[2] == ["spliced"]  # appended, with pread
    [path] = _kept(tokmon_home)
    assert _patched(path)
    monkeypatch.delattr(os, "pread")
    paths.reset()
    assert run("session") == _both(run, tokmon_home, (), None, paths)[1]  # the change read
    for k in (1, 2):
        _grow(projects, k)
        spliced, scratch, took = _both(run, tokmon_home, (), None, paths)
        assert spliced == scratch and took == ["spliced"], k
        assert not _patched(path)  # written whole
