"""A warm report's change check begun while the program imports: the flat walk's ``stat``
calls on a native thread (``tokmon._native._stat.check_start`` / ``check_take``,
:func:`tokmon.core.flatfile.start_check`), and the flagged paths read out of the saved ones
(``paths_at``). The thread's answer is ``check()``'s for the same bytes; a flat walk that is
not the database's any more when the report loads it is not used, however early it was read.
(Flat.check's answer with the early check, against os.stat and the native check, over every
tree of test_warm_check.py: its ``_both``.)"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from array import array
from pathlib import Path

import pytest
from conftest import assistant_line, daily_json_logged, settle_clock, write_lines
from test_warm_check import (
    T0,
    _flat_file,
    _ledger,
    _line,
    _native_stat,
    _refresh,
    _sigs,
    _tree,
)

from tokmon.core import discovery, flatfile
from tokmon.core.engine.check import _DIR_SIG, _FILE_SIG

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the native stat check is POSIX only")


@pytest.fixture(autouse=True)
def _no_leftovers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flatfile, "_EARLY", {})
    monkeypatch.delenv("TOKMON_NO_NATIVE", raising=False)


def _random_tree(tmp_path: Path, rng: random.Random) -> tuple[list[bytes], list[bytes]]:
    root = tmp_path / "r"
    root.mkdir()
    dirs, files = [os.fsencode(root)], []
    for i in range(200):
        d = Path(os.fsdecode(rng.choice(dirs))) / f"d{i}"
        d.mkdir()
        dirs.append(os.fsencode(d))
    for i in range(1500):  # more than one chunk of 128 paths for each of two threads
        f = Path(os.fsdecode(rng.choice(dirs))) / f"f{i}.jsonl"
        f.write_bytes(b"x" * rng.randrange(40))
        files.append(os.fsencode(f))
    return dirs, files


def test_the_early_check_answers_what_check_answers(tmp_path: Path) -> None:
    """Round after round of random changes and wrong entries: check_take gives exactly what
    check gives for the same arguments (one and two threads), a changed directory included."""
    stat = _native_stat()
    rng = random.Random(7)
    dirs, files = _random_tree(tmp_path, rng)
    blob = b"\0".join(dirs + files)
    dsig, fsig = _sigs(dirs, _DIR_SIG), _sigs(files, _FILE_SIG)
    flagged_rounds = 0
    for rnd in range(10):
        for _ in range(rng.randrange(1, 5)):
            i = rng.randrange(len(files))
            if rng.random() < 0.5:
                with open(files[i], "ab") as fh:
                    fh.write(b"y")
            else:
                fsig[4 * i + rng.randrange(4)] += 1
        if rnd == 7:  # a directory not as recorded: no answer but "walk again"
            os.mkdir(os.path.join(dirs[3], b"new"))
        want = stat.check(blob, len(dirs), dsig, fsig, 1)
        assert want == stat.check(blob, len(dirs), dsig, fsig, 2)
        handle = stat.check_start(blob, len(dirs), dsig, fsig)
        assert stat.check_take(handle) == want, rnd
        if want:
            flagged_rounds += 1
            assert all(0 <= i < len(files) for i in want) and want == sorted(want)
        else:
            assert want is None and rnd >= 7
        fsig = _sigs(files, _FILE_SIG)  # the next round starts from the files as they are
    assert flagged_rounds == 7


def test_a_check_handle_is_taken_once_and_joined_when_dropped(tmp_path: Path) -> None:
    stat = _native_stat()
    dirs, files = _random_tree(tmp_path, random.Random(1))
    blob = b"\0".join(dirs + files)
    dsig, fsig = _sigs(dirs, _DIR_SIG), _sigs(files, _FILE_SIG)
    for _ in range(20):
        handle = stat.check_start(blob, len(dirs), dsig, fsig)
        del handle  # (its capsule waits for the thread, then frees the check)
    handle = stat.check_start(blob, len(dirs), dsig, fsig)
    assert stat.check_take(handle) == []
    with pytest.raises(RuntimeError):
        stat.check_take(handle)  # taken: check() runs instead (Flat.check does so)
    with pytest.raises(ValueError):  # what check() refuses, check_start refuses
        stat.check_start(b"a\0b", 1, array("q", [0] * 4), array("q"))
    for other in (object(), stat.walk_start(os.fsencode(tmp_path))):  # not a check's handle
        with pytest.raises(ValueError):
            stat.check_take(other)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_neither_takes_nor_joins_the_parents_check(tmp_path: Path) -> None:
    stat = _native_stat()
    dirs, files = _random_tree(tmp_path, random.Random(2))
    blob = b"\0".join(dirs + files)
    dsig, fsig = _sigs(dirs, _DIR_SIG), _sigs(files, _FILE_SIG)
    fsig[4] += 1
    handle = stat.check_start(blob, len(dirs), dsig, fsig)
    pid = os.fork()
    if pid == 0:  # the child: exits 0 when the check is not its own to take
        code = 1
        try:
            stat.check_take(handle)
            code = 2
        except RuntimeError:
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert stat.check_take(handle) == [1]


def test_paths_at_reads_the_flagged_paths_out_of_the_blob() -> None:
    stat = _native_stat()
    rng = random.Random(3)
    paths = [f"/p/{i}/{'x' * rng.randrange(30)}".encode() for i in range(3000)]
    paths[5] = b""  # an empty one (split gives it too)
    blob = b"\0".join(paths)
    for _ in range(50):
        idx = sorted(rng.sample(range(len(paths)), rng.randrange(1, 6)))
        assert stat.paths_at(blob, idx) == [paths[i] for i in idx]
        assert stat.paths_at(memoryview(blob), idx) == [paths[i] for i in idx]
    assert stat.paths_at(blob, []) == []
    assert stat.paths_at(blob, [0, len(paths) - 1]) == [paths[0], paths[-1]]
    for bad, err in (([len(paths)], IndexError), ([-1], IndexError), ([3, 3], ValueError)):
        with pytest.raises(err):
            stat.paths_at(blob, bad)


def test_a_flat_walk_read_early_but_stale_when_loaded_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The early check read the flat walk at generation g; another process then read an
    append (generation g + 1): this run's load refuses the early bytes (their stamp is g's),
    checks by the mirror, and ends with the full check's ledger."""
    _native_stat()
    monkeypatch.setattr(discovery, "RACY_NS", 0)  # listings kept (settle_clock instead)
    root = _tree(tmp_path)
    quick, full = tmp_path / "quick", tmp_path / "full"
    settle_clock(tmp_path)
    for _ in range(2):  # the second run saves the flat walk
        _refresh(root, quick)
    _refresh(root, full, full=True)
    flatfile.start_check(os.fspath(_flat_file(quick)))
    assert os.fspath(_flat_file(quick)) in flatfile._EARLY
    write_lines(root / "-a" / "s1.jsonl", [_line(30)])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    # another process (its own refresh of the same ledger and flat walk)
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from test_warm_check import _refresh; _refresh(Path(sys.argv[2]), Path(sys.argv[3]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(root), str(quick)],
        env=env,
        check=True,
        timeout=120,
    )
    write_lines(root / "-b" / "s2.jsonl", [_line(31, "s2")])
    ch, _ = _refresh(root, quick)  # loads the flat walk: the early bytes, refused
    assert flatfile._EARLY == {}
    assert ch.new_records == 1  # the second append; the first came with the other process
    _refresh(root, full, full=True)
    assert _ledger(quick) == _ledger(full)
    assert _ledger(quick)[2] == sum(100 + i for i in (1, 2, 3, 4, 5, 30, 31))


def test_a_warm_report_checks_early_and_counts_the_same(tmp_path: Path) -> None:
    """`tokmon daily` with a ledger and a flat walk of MIN_EARLY transcripts: the check is
    begun early (the log says so), and every append is counted as by a run without the
    native module; with the listings switched off (no flat walk), or one transcript fewer,
    nothing is begun."""
    _native_stat()
    corpus = tmp_path / "claude"
    root = _tree(tmp_path)
    assert root == corpus / "projects"
    many = root / "-many"
    many.mkdir()
    for n in range(flatfile.MIN_EARLY - 3):  # with the tree's 3: MIN_EARLY transcripts
        line = assistant_line(T0, msg_id=f"x{n}", req_id=f"y{n}", session=f"m{n}", out=7)
        (many / f"m{n}.jsonl").write_text(line + "\n")
    early, plain = tmp_path / "early", tmp_path / "plain"
    early.mkdir()
    plain.mkdir()
    # a directory's listing is kept only once it was last changed 2 s before (RACY_NS); the
    # appends below change files, not directories
    time.sleep(discovery.RACY_NS / 1e9 + 0.1)
    for _ in range(2):  # the first builds the ledger, the second saves the flat walk
        daily_json_logged(corpus, early)
    begun = "the flat walk's check begun early"
    for n, (session, f) in enumerate((("s1", "-a/s1.jsonl"), ("s2", "-b/s2.jsonl"))):
        write_lines(root / f, [_line(40 + n, session)])
        got, log = daily_json_logged(corpus, early)
        assert f"{begun} ([" in log, log
        want, log = daily_json_logged(corpus, plain, ("TOKMON_NO_NATIVE", "1"))
        assert begun not in log
        assert got == want
    mine = sum(100 + i for i in (1, 2, 3, 4, 5, 40, 41))
    assert got["totals"]["outputTokens"] == mine + 7 * (flatfile.MIN_EARLY - 3)
    _, log = daily_json_logged(corpus, early)
    assert f"{begun} ([] flagged)" in log  # nothing changed: nothing flagged
    _, log = daily_json_logged(corpus, early, ("TOKMON_NO_LISTING_CACHE", "1"))
    assert begun not in log
    (many / "m0.jsonl").unlink()  # one transcript fewer than MIN_EARLY: checked in line
    daily_json_logged(corpus, early)
    daily_json_logged(corpus, early)  # (the walk after the change leaves a new flat walk)
    got, log = daily_json_logged(corpus, early)
    assert begun not in log and "refresh:" in log
    assert got["totals"]["outputTokens"] == mine + 7 * (flatfile.MIN_EARLY - 3)  # (kept)
