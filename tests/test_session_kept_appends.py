"""Issue 12: ``session --json`` after an append costs what changed, not the history.

The kept answer is printed and copied by ranges of its file (``tokmon.filespans``: 64 KiB
reads, each checked before it is written), and a splice appends its change to the kept file (new
rows, the document's plan of ranges, the index, a trailer: ``cli.reports._append``) instead
of writing the whole file again, until the file holds twice its document. Every answer here is
compared byte for byte with the one built from scratch (the kept answers removed).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import assistant_line, write_lines

from tokmon import filespans
from tokmon.cli import reports

END = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
NOW = END.timestamp() + 60


def _corpus(root: Path, n: int = 30) -> Path:
    """``n`` sessions over three projects, one active at NOW ("live")."""
    projects = root / "projects"
    for k in range(n):
        t = END - timedelta(days=n - k, hours=k % 5)
        write_lines(projects / f"-w-p{k % 3}" / f"s{k}.jsonl", [
            assistant_line(t, msg_id=f"m{k}a", req_id=f"r{k}a", session=f"s{k}",
                           cwd=f"/w/p{k % 3}", inp=10 + k, out=20 + 3 * k, cr=7 * k),
            assistant_line(t + timedelta(minutes=3), msg_id=f"m{k}b", req_id=f"r{k}b",
                           session=f"s{k}", cwd=f"/w/p{k % 3}", inp=1, out=k % 4),
        ])  # fmt: skip
    write_lines(projects / "-w-p0" / "live.jsonl", [
        assistant_line(END, msg_id="l1", req_id="rl1", session="live", cwd="/w/p0", inp=5,
                       out=6),
    ])  # fmt: skip
    return projects


@pytest.fixture
def setup(
    cli: Any, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Any]:
    projects = _corpus(tmp_path / "claude")
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    monkeypatch.setattr(time, "time", lambda: NOW)
    return projects, cli


def _kept(home: Path) -> Path:
    (path,) = (home / "cache" / "reports").glob("session-*.json")
    return path


def _patched(path: Path) -> bool:
    return path.read_bytes().endswith(b" P\n")


def _scratch(cli: Any, home: Path) -> str:
    """The answer built whole (the kept one set aside and put back)."""
    path = _kept(home)
    data = path.read_bytes()
    path.unlink()
    got = cli("session", "--json")
    assert got.code == 0, got.err
    path.write_bytes(data)
    return str(got.out)


def _grow(projects: Path, k: int, session: str = "live", project: str = "-w-p0") -> None:
    write_lines(projects / project / f"{session}.jsonl", [
        assistant_line(END - timedelta(hours=k % 7), msg_id=f"g{k}", req_id=f"rg{k}",
                       session=session, cwd="/w/" + project[3:], inp=k + 1, out=2 * k + 1,
                       cc=k % 3),
    ])  # fmt: skip


def test_appended_changes_give_the_answer_built_whole(
    setup: tuple[Path, Any], tokmon_home: Path
) -> None:
    """Twelve changes in a row (one session, another one, a new one): each answer, spliced
    into a kept file that has changes appended, and the next one printed from it unchanged,
    equals the answer built whole; the file is appended to, then written whole again once it
    holds twice its document."""
    projects, cli = setup
    assert cli("session", "--json").code == 0
    sizes, patched = [], []
    for k in range(12):
        which = [("live", "-w-p0"), (f"s{k}", f"-w-p{k % 3}"), (f"n{k}", "-w-p1")]
        session, project = which[k % 3]
        _grow(projects, k, session, project)
        spliced = cli("session", "--json")
        assert spliced.code == 0, spliced.err
        path = _kept(tokmon_home)
        sizes.append(path.stat().st_size)
        patched.append(_patched(path))
        again = cli("session", "--json")  # the same data: the kept answer as it is
        assert again.out == spliced.out
        assert spliced.out == _scratch(cli, tokmon_home), k
    assert any(patched) and not all(patched), patched
    k = patched.index(True)
    assert sizes[k] > sizes[k - 1] if k else True
    assert min(sizes[k + 1 :], default=0) < max(sizes), sizes  # written whole again


def _last_change(data: bytes) -> tuple[int, int, int, int]:
    """(start, new bytes, plan, index lengths) of the last change appended to a kept file."""
    f = data[-reports._PATCH_LEN : -3].split()
    nb, npl, ni = int(f[0]), int(f[1]), int(f[2])
    return len(data) - reports._PATCH_LEN - ni - npl - nb, nb, npl, ni


def _resign(data: bytes, plan: bytes) -> bytes:
    """``data`` with its last change's plan replaced by ``plan``, its digest made anew."""
    at, nb, npl, ni = _last_change(data)
    new = data[at : at + nb]
    index = data[at + nb + npl : at + nb + npl + ni]
    f = data[-reports._PATCH_LEN : -3].split()
    trailer = reports._PATCH % (nb, len(plan), ni, int(f[3]), f[4], f[5], f[6], f[7],
                                reports._index_sig(plan, new).encode())  # fmt: skip
    return data[:at] + new + plan + index + trailer


@pytest.mark.parametrize(
    "damage",
    [
        "new bytes",
        "plan out of the file",
        "plan into the change",
        "plan of floats",
        "torn trailer",
        "torn change",
    ],
)
def test_a_damaged_change_is_not_used(
    setup: tuple[Path, Any], tokmon_home: Path, damage: str
) -> None:
    projects, cli = setup
    assert cli("session", "--json").code == 0
    _grow(projects, 1)
    assert cli("session", "--json").code == 0
    path = _kept(tokmon_home)
    data = path.read_bytes()
    assert _patched(path)
    at, nb, _, _ = _last_change(data)
    if damage == "new bytes":
        k = at + nb // 2
        data = data[:k] + bytes([data[k] ^ 1]) + data[k + 1 :]
    elif damage == "plan out of the file":
        data = _resign(data, b"[[0,%d]]" % (at + 1))
    elif damage == "plan into the change":
        data = _resign(data, b"[[-1,%d]]" % (nb + 1))
    elif damage == "plan of floats":
        data = _resign(data, b"[[0.0,10.0]]")
    elif damage == "torn trailer":
        data = data[:-40]
    else:
        data = data[: at + nb // 2]
    path.write_bytes(data)
    for k in (2, 3):  # read at once, and spliced after a change
        got = cli("session", "--json")
        assert got.code == 0, got.err
        assert got.out == _scratch(cli, tokmon_home)
        _grow(projects, k)


def test_a_file_appended_to_since_it_was_read_is_not_appended_to(
    setup: tuple[Path, Any], tokmon_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process appended its change after this one opened the kept file: this one's
    change (made from the older file) is not appended after it; the file is written whole."""
    projects, cli = setup
    assert cli("session", "--json").code == 0
    path = _kept(tokmon_home)
    real_open = reports.SessionParts.open_ranges

    def open_then_other(self: Any) -> Any:
        got = real_open(self)
        with open(path, "ab") as fh:  # the other process's change (here: garbage)
            fh.write(b"x" * 10)
        return got

    monkeypatch.setattr(reports.SessionParts, "open_ranges", open_then_other)
    _grow(projects, 1)
    got = cli("session", "--json")
    assert got.code == 0, got.err
    monkeypatch.setattr(reports.SessionParts, "open_ranges", real_open)
    assert not _patched(path)  # written whole: no change after the garbage
    assert got.out == _scratch(cli, tokmon_home)
    assert cli("session", "--json").out == got.out


@pytest.mark.skipif(not hasattr(os, "pread"), reason="the file is read whole there")
@pytest.mark.parametrize("cut", ["before the print", "in the middle of the print"])
@pytest.mark.parametrize("grown", [False, True])
def test_a_kept_file_cut_short_while_printed(
    env: dict[str, str], setup: tuple[Path, Any], tokmon_home: Path,
    monkeypatch: pytest.MonkeyPatch, cut: str, grown: bool,
) -> None:  # fmt: skip
    """Another process truncates the kept file in place after it was opened (and, grown,
    extends it again: NUL bytes where it was cut, as a truncation racing a read leaves): the
    answer is built whole and what was not printed yet of it is printed (a binary stdout,
    as a terminal's or a pipe's: the document printed from the file). Grown, the NULs were
    printed (the twelfth session: the hostile test's flake)."""
    from tokmon.cli.main import run

    projects, cli = setup
    assert cli("session", "--json").code == 0
    truth = cli("session", "--json").out
    path = _kept(tokmon_home)
    real_open = reports.SessionParts.open_ranges

    def open_then_cut(self: Any) -> Any:
        got = real_open(self)
        size = 0 if cut == "before the print" else len(reports._DOC_HEAD) + 200
        with open(path, "r+b") as fh:  # in place: the same file
            end = fh.seek(0, os.SEEK_END)
            fh.truncate(size)
            if grown:  # and grown again: NUL bytes where it was cut
                fh.truncate(end)
        return got

    monkeypatch.setattr(reports.SessionParts, "open_ranges", open_then_cut)
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    code = run(["session", "--json"], env=env, stdin=io.StringIO(""), stdout=out,
               stderr=io.StringIO())  # fmt: skip
    out.flush()
    assert code == 0
    assert raw.getvalue().decode() == truth


def test_printed_to_a_file_a_pipe_and_an_appending_stream(
    env: dict[str, str], setup: tuple[Path, Any], tokmon_home: Path, tmp_path: Path
) -> None:
    """A real process prints the kept answer (as kept, and with changes appended) to a
    regular file, a pipe and a file opened for appending: the same bytes as the answer
    built whole."""
    projects, cli = setup
    argv = [sys.executable, "-m", "tokmon", "session", "--json"]
    penv = {**env, "PYTHONPATH": str(Path(reports.__file__).parents[2])}

    def via(how: str) -> bytes:
        if how == "pipe":
            r = subprocess.run(argv, env=penv, cwd=tmp_path, capture_output=True, timeout=120)
            assert r.returncode == 0, r.stderr
            return r.stdout
        dest = tmp_path / f"out-{how}"
        dest.write_bytes(b"")
        flags = os.O_WRONLY | (os.O_APPEND if how == "append" else os.O_TRUNC)
        fd = os.open(dest, flags)
        try:
            r = subprocess.run(argv, env=penv, cwd=tmp_path, stdout=fd, stderr=subprocess.PIPE,
                               timeout=120)  # fmt: skip
        finally:
            os.close(fd)
        assert r.returncode == 0, r.stderr
        return dest.read_bytes()

    assert via("pipe")  # the first run scans (and keeps the answer)
    for step in range(3):
        if step:
            _grow(projects, step)
            assert via("pipe")  # spliced (real clock: the kept span is the real one's)
        truth = subprocess.run(argv, env=penv, cwd=tmp_path, capture_output=True, timeout=120)
        for how in ("file", "pipe", "append"):
            assert via(how) == truth.stdout, (step, how)
        saved = _kept(tokmon_home).read_bytes()
        _kept(tokmon_home).unlink()
        whole = subprocess.run(argv, env=penv, cwd=tmp_path, capture_output=True, timeout=120)
        _kept(tokmon_home).write_bytes(saved)
        assert whole.stdout == truth.stdout


def test_write_parts_and_write_file(tmp_path: Path) -> None:
    """Spans of a file and bytes, to a regular file, a pipe and a copy; a source cut short
    raises Short with the bytes printed so far, and leaves no temporary file."""
    src_path = tmp_path / "src"
    src_path.write_bytes((bytes(range(1, 256)) * 1004)[:256_000])  # no NUL: no kept file has one
    fd = os.open(src_path, os.O_RDONLY)
    src = filespans.Source(fd, src_path.stat().st_size)
    parts: list[filespans.Part] = [b"head", filespans.Span(10, 70_000), b"-",
                                   filespans.Span(200_000, 256_000), b"tail"]  # fmt: skip
    data = src_path.read_bytes()
    want = b"head" + data[10:70_000] + b"-" + data[200_000:] + b"tail"
    assert filespans.joined(parts, src) == want and filespans.size_of(parts) == len(want)
    with open(tmp_path / "printed", "wb") as fh:
        filespans.write_parts(fh, fh, parts, src)
    assert (tmp_path / "printed").read_bytes() == want
    r, w = os.pipe()
    got = bytearray()
    with open(w, "wb") as fh:
        import threading

        def drain() -> None:
            while chunk := os.read(r, 65536):
                got.extend(chunk)

        t = threading.Thread(target=drain)
        t.start()
        filespans.write_parts(fh, fh, parts, src)
    t.join(30)
    os.close(r)
    assert bytes(got) == want
    filespans.write_file(tmp_path / "copy", parts, src)
    assert (tmp_path / "copy").read_bytes() == want
    os.truncate(src_path, 50_000)
    with open(tmp_path / "short", "wb") as fh, pytest.raises(filespans.Short) as short:
        filespans.write_parts(fh, fh, parts, src)
    assert short.value.written == 4 + 50_000 - 10
    assert (tmp_path / "short").read_bytes() == want[: short.value.written]
    with pytest.raises(filespans.Short):
        filespans.write_file(tmp_path / "copy2", parts, src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "printed", "short", "src"]
    src.close()


def test_spans_that_read_nul_bytes_are_not_printed_nor_kept(tmp_path: Path) -> None:
    """A kept file cut in place and grown again reads NUL bytes where it was cut (no kept
    answer holds one): printing raises Short with only the bytes before the read that held
    them printed, and a copy raises Short and keeps nothing. Both copied the NULs (sendfile,
    copy_file_range, reads)."""
    data = (bytes(range(1, 256)) * 1004)[:256_000]
    src_path = tmp_path / "src"
    src_path.write_bytes(data)
    fd = os.open(src_path, os.O_RDONLY)
    src = filespans.Source(fd, len(data))
    parts: list[filespans.Part] = [b"head", filespans.Span(10, 256_000), b"tail"]
    with open(src_path, "r+b") as fh:  # cut at 150,000 and grown again
        fh.truncate(150_000)
        fh.truncate(len(data))
    with open(tmp_path / "printed", "wb") as fh, pytest.raises(filespans.Short) as short:
        filespans.write_parts(fh, fh, parts, src)
    printed = (tmp_path / "printed").read_bytes()
    assert printed == (b"head" + data[10:])[: short.value.written]
    assert 0 < short.value.written <= 4 + 150_000 - 10
    with pytest.raises(filespans.Short):
        filespans.write_file(tmp_path / "copy", parts, src)
    with pytest.raises(filespans.Short):
        src.read(140_000, 160_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["printed", "src"]
    src.close()


def test_what_was_printed_to_a_pipe_is_not_changed_by_a_later_truncation(
    tmp_path: Path,
) -> None:
    """The bytes printed into a pipe are the file's bytes at the time of the print, whatever
    happens to the file before the pipe is read. sendfile into a pipe handed the reader
    references to the page cache: a truncation in place after the call had returned zeroed
    the tail of the page it cut (bytes 100 to 4095 here), and the reader read NULs (the
    hostile test's flake: ``session --json`` beside a process truncating the kept file)."""
    data = (bytes(range(1, 256)) * 40)[:10_000]  # under a pipe's capacity: no reader needed
    src_path = tmp_path / "src"
    src_path.write_bytes(data)
    fd = os.open(src_path, os.O_RDONLY)
    src = filespans.Source(fd, len(data))
    r, w = os.pipe()
    try:
        with open(w, "wb") as fh:
            filespans.write_parts(fh, fh, [filespans.Span(0, len(data))], src)
        with open(src_path, "r+b") as fh:  # in place, after the print and before the read
            fh.truncate(100)
            fh.write(data[:100])
        got = b""
        while chunk := os.read(r, 65536):
            got += chunk
    finally:
        os.close(r)
        src.close()
    assert got == data


@pytest.mark.parametrize("tie", [False, True])
def test_the_totals_cost_is_summed_in_first_id_order(tie: bool) -> None:
    """The totals' cost is a float sum, so its order shows: (first, id), ties in first by id
    (a sort by first alone keeps the input order of a tie: b before a here, a wrong sum)."""
    first_b = 5.0 if tie else 6.0
    entries = [["b", first_b, 1e16, 0, 0], ["a", 5.0, 1.0, 0, 0], ["x", 1.0, 1.0, 0, 0]]
    assert (1.0 + 1.0) + 1e16 != (1.0 + 1e16) + 1.0  # x, a, b against x, b, a
    assert reports._totals_cost(entries) == (1.0 + 1.0) + 1e16
    assert reports._totals_cost(reversed(entries)) == (1.0 + 1.0) + 1e16


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_put_in_place_of_the_kept_file_is_not_waited_on(
    setup: tuple[Path, Any], tokmon_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept file replaced by a FIFO after it was opened: the change is not appended to it
    (an open for writing would wait for a reader for ever); the answer is written whole."""
    projects, cli = setup
    assert cli("session", "--json").code == 0
    path = _kept(tokmon_home)
    real_open = reports.SessionParts.open_ranges

    def open_then_fifo(self: Any) -> Any:
        got = real_open(self)
        path.unlink()
        os.mkfifo(path)
        return got

    monkeypatch.setattr(reports.SessionParts, "open_ranges", open_then_fifo)
    _grow(projects, 1)
    import threading

    box: list[Any] = []
    run = threading.Thread(target=lambda: box.append(cli("session", "--json")), daemon=True)
    run.start()
    run.join(120)
    if not box:  # waiting on the FIFO: let the thread go (a reader), then fail
        with open(path, "rb", buffering=0) as fh:
            fh.read()
        run.join(30)
        pytest.fail("the report waited on a FIFO in place of its kept file")
    got = box[0]
    assert got.code == 0, got.err
    monkeypatch.setattr(reports.SessionParts, "open_ranges", real_open)
    assert path.is_file() and not _patched(path)
    assert got.out == _scratch(cli, tokmon_home)


def test_a_kept_answer_with_a_json_index_is_still_spliced(
    setup: tuple[Path, Any], tokmon_home: Path
) -> None:
    """A kept answer written before the index went to columns (its index JSON, as orjson
    wrote it) is read and spliced after an append: the answer built whole, the index then
    written in columns."""
    import orjson

    projects, cli = setup
    first = cli("session", "--json")
    assert first.code == 0
    path = _kept(tokmon_home)
    data = path.read_bytes()
    assert not data.endswith(b" P\n")  # written whole: ... document, index, trailer
    n, gen, wid, sig = data[-reports._TRAILER : -1].split()
    index_at = len(data) - reports._TRAILER - int(n)
    index = data[index_at : -reports._TRAILER]
    assert index.startswith(reports._INDEX_MAGIC) and sig == reports._index_sig(index).encode()
    tokens, shown, entries = reports._index_of(index)
    old = orjson.dumps({"tokens": tokens, "shown": shown, "entries": entries})
    trailer = b"%012d %s %s %s\n" % (len(old), gen, wid, reports._index_sig(old).encode())
    path.write_bytes(data[:index_at] + old + trailer)
    again = cli("session", "--json")  # the JSON index read (the answer as it was kept)
    assert again.code == 0 and again.out == first.out
    _grow(projects, 1)
    spliced = cli("session", "--json")
    assert spliced.code == 0, spliced.err
    # spliced (the change appended to the kept file), not built whole
    assert _patched(_kept(tokmon_home))
    assert reports._INDEX_MAGIC in _kept(tokmon_home).read_bytes()
    assert spliced.out == _scratch(cli, tokmon_home) != first.out
