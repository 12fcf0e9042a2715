"""The change check's stored directory listings (discovery.Listings): a directory unchanged
since its listing is not listed again, and no new, renamed or deleted transcript is missed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import assistant_line, settle_clock, write_lines

from tokmon.core import discovery
from tokmon.core.engine import Engine
from tokmon.paths import get_paths

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def count_scandir(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The directories listed (os.scandir calls of the walk)."""
    listed: list[str] = []
    real = os.scandir

    def counting(path: str) -> object:
        listed.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(discovery.os, "scandir", counting)
    yield listed


@pytest.fixture
def trust_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """No racy margin (the tests settle_clock() instead of waiting two seconds)."""
    monkeypatch.setattr(discovery, "RACY_NS", 0)


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "projects"
    (root / "-a" / "s1" / "subagents").mkdir(parents=True)
    (root / "-a" / "s1.jsonl").write_text("x\n")
    (root / "-a" / "s1" / "subagents" / "agent-1.jsonl").write_text("y\n")
    (root / "-a" / "notes.txt").write_text("not a transcript")
    (root / "-b").mkdir()
    (root / "-b" / "t.jsonl").write_text("z\n")
    (root / "-a" / "dir.jsonl").mkdir()  # a directory named like a transcript
    return root


def _found(root: Path, listings: discovery.Listings | None = None) -> list[tuple[str, int]]:
    return sorted((k, st.st_size) for k, st in discovery.transcript_stats(root, listings))


def test_an_unchanged_tree_is_not_listed_again(
    tmp_path: Path, trust_now: None, count_scandir: list[str]
) -> None:
    root = _tree(tmp_path)
    settle_clock(tmp_path)
    want = _found(root)
    listings = discovery.Listings()
    assert _found(root, listings) == want
    assert listings.changed and len(listings.dirs) == 6  # root, -a, s1, subagents, dir.jsonl, -b
    count_scandir.clear()
    listings.changed = False
    assert _found(root, listings) == want
    assert count_scandir == [] and not listings.changed
    with open(root / "-b" / "t.jsonl", "a") as fh:  # an append changes the file only
        fh.write("more\n")
    got = dict(_found(root, listings))
    assert got[str(root / "-b" / "t.jsonl")] == len("z\nmore\n")
    assert count_scandir == []


@pytest.mark.parametrize("change", ["new", "rename", "delete", "subagent", "newdir", "mtime-back"])
def test_a_changed_directory_is_listed_again(
    tmp_path: Path, trust_now: None, count_scandir: list[str], change: str
) -> None:
    root = _tree(tmp_path)
    settle_clock(tmp_path)
    listings = discovery.Listings()
    _found(root, listings)
    settle_clock(tmp_path)
    a = root / "-a"
    if change == "mtime-back" and os.name == "nt":
        pytest.skip("Windows' ctime is the creation time")
    if change == "mtime-back":  # a file added, then the directory's mtime set back (rsync -t)
        before = os.stat(a)
        (a / "s4.jsonl").write_text("synced\n")
        os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert os.stat(a).st_mtime_ns == before.st_mtime_ns
    elif change == "new":
        (a / "s2.jsonl").write_text("new\n")
    elif change == "rename":
        os.replace(a / "s1.jsonl", a / "s1-renamed.jsonl")
    elif change == "delete":
        os.unlink(root / "-b" / "t.jsonl")
    elif change == "subagent":
        (a / "s1" / "subagents" / "agent-2.jsonl").write_text("sub\n")
    else:
        (a / "s3" / "subagents").mkdir(parents=True)
        (a / "s3" / "subagents" / "agent-3.jsonl").write_text("deep\n")
    count_scandir.clear()
    assert _found(root, listings) == _found(root)
    assert count_scandir  # the changed directory was listed again
    assert listings.changed
    if change == "newdir":
        assert str(a / "s3" / "subagents") in listings.dirs


def test_a_listing_taken_close_to_a_change_is_not_kept(tmp_path: Path) -> None:
    """The racy case: a directory changed within RACY_NS of its listing may change again in
    the same timestamp tick; its listing is not kept, so the next check lists it again and
    finds the file created in the same second as the listing."""
    root = _tree(tmp_path)
    listings = discovery.Listings()
    before = _found(root, listings)
    assert str(root / "-a") not in listings.dirs  # changed just now: not trusted
    (root / "-a" / "s2.jsonl").write_text("same second\n")
    after = _found(root, listings)
    assert after == _found(root) and len(after) == len(before) + 1


def test_a_file_system_that_keeps_directory_mtimes_needs_the_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented assumption: a directory whose mtime (and ctime) stayed the same is
    taken as unchanged. A listing that lies about its directory (what a file system without
    directory mtimes would give) hides a new file; TOKMON_NO_LISTING_CACHE=1 finds it."""
    root = tmp_path / "projects"
    proj = root / "-p"
    write_lines(proj / "a.jsonl", [assistant_line(T0, msg_id="m1", req_id="r1", session="a")])
    write_lines(proj / "b.jsonl", [assistant_line(T0, msg_id="m2", req_id="r2", session="b")])
    home = tmp_path / "home"
    env = {"TOKMON_HOME": str(home)}
    eng = Engine(roots=[root], paths=get_paths(env), env=env)
    try:
        assert eng.refresh().new_records == 2
        cache = eng._listings_file()
        c = proj / "c.jsonl"  # a new transcript ...
        write_lines(c, [assistant_line(T0, msg_id="m3", req_id="r3", session="c")])
        st = os.stat(proj)  # ... and a listing that says its directory did not change
        rst = os.stat(root)
        fake = {
            str(root): [rst.st_mtime_ns, rst.st_ctime_ns, rst.st_ino, rst.st_dev, "d", ["-p"]],
            str(proj): [
                st.st_mtime_ns,
                st.st_ctime_ns,
                st.st_ino,
                st.st_dev,
                "ff",
                ["a.jsonl", "b.jsonl"],
            ],
        }
        discovery.Listings(fake).save(cache)
    finally:
        eng.close()
    lied = Engine(roots=[root], paths=get_paths(env), env=env)
    try:
        ch = lied.refresh()
        assert (ch.files_checked, ch.new_records) == (2, 0)  # c.jsonl hidden
        assert str(c) not in lied.ledger.files
    finally:
        lied.close()
    env_off = {**env, "TOKMON_NO_LISTING_CACHE": "1"}
    off = Engine(roots=[root], paths=get_paths(env_off), env=env_off)
    try:
        ch = off.refresh()
        assert (ch.files_checked, ch.new_records) == (3, 1)
    finally:
        off.close()


def test_a_broken_or_foreign_cache_is_ignored(tmp_path: Path, trust_now: None) -> None:
    root = _tree(tmp_path)
    settle_clock(tmp_path)
    want = _found(root)
    cache = tmp_path / "l.json"
    st = os.stat(root)
    base = [st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    for text in (
        b"",
        b"{not json",
        b'{"v": 2, "dirs": {}}',
        b"[1, 2]",
        b"\xff\xfe{}",
        b'{"v": 1, "dirs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # past the recursion limit
    ):
        cache.write_bytes(text)
        assert _found(root, discovery.Listings.load(cache)) == want
    for bad in (
        [*base, "dd", ["-a", "../elsewhere"]],  # a name is one path component
        [*base, "dd", ["-a", ".."]],
        [*base, "dx", ["-a", "-b"]],
        [*base, "d", ["-a", "-b"]],
        [*base, "dd", ["-a", 7]],
        "no",
    ):
        assert _found(root, discovery.Listings({str(root): bad})) == want  # type: ignore[dict-item]
    assert _found(tmp_path / "none", discovery.Listings()) == []


def test_a_name_that_is_not_utf8_round_trips_in_the_kept_listings(tmp_path: Path) -> None:
    """A directory entry whose bytes are not UTF-8 (a surrogate escape once decoded) is written
    as an escape and read back as the same name."""
    name = os.fsdecode(b"-proj-\xff\xfe")
    dirs = {str(tmp_path): [1, 2, 3, 4, "dd", [name, "-b"]]}
    cache = tmp_path / "l.json"
    discovery.Listings(dirs).save(cache)  # type: ignore[arg-type]
    assert cache.read_bytes().isascii()
    assert discovery.Listings.load(cache).dirs == dirs


def test_the_engine_saves_the_listings_privately_and_reuses_them(
    tmp_path: Path, trust_now: None, count_scandir: list[str]
) -> None:
    root = tmp_path / "projects"
    proj = root / "-p"
    f = proj / "a.jsonl"
    write_lines(f, [assistant_line(T0, msg_id="m1", req_id="r1", session="a")])
    settle_clock(tmp_path)
    env = {"TOKMON_HOME": str(tmp_path / "home")}
    eng = Engine(roots=[root], paths=get_paths(env), env=env)
    try:
        assert eng.refresh().new_records == 1
        cache = eng._listings_file()
        assert cache.is_file()
        if os.name != "nt":
            assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    finally:
        eng.close()
    count_scandir.clear()
    again = Engine(roots=[root], paths=get_paths(env), env=env)
    try:
        ch = again.refresh()
        assert (ch.files_checked, ch.files_read, count_scandir) == (1, 0, [])
        write_lines(f, [assistant_line(T0, msg_id="m2", req_id="r2", session="a")])
        assert again.refresh().new_records == 1  # the append, through the kept listing
        assert count_scandir == []
        write_lines(proj / "b.jsonl", [assistant_line(T0, msg_id="m3", req_id="r3", session="b")])
        assert again.refresh().new_records == 1  # a new transcript: its directory changed
        assert str(proj) in count_scandir
    finally:
        again.close()


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs symlinks")
def test_links_followed_from_a_kept_listing_as_from_a_fresh_one(
    tmp_path: Path, trust_now: None, count_scandir: list[str]
) -> None:
    root = _tree(tmp_path)
    outside = tmp_path / "elsewhere"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "o.jsonl").write_text("o\n")
    os.symlink(outside, root / "-linked")  # followed once
    os.symlink(outside, root / "-linked-again")
    os.symlink(root, root / "-a" / "loop")  # inside the root: not followed
    os.symlink(tmp_path / "missing", root / "-a" / "broken.jsonl")
    os.symlink(root / "-a" / "s1.jsonl", root / "-a" / "alias.jsonl")  # a file link: counted
    os.symlink(tmp_path / "later", root / "-b" / "later")  # dangling now
    settle_clock(tmp_path)
    listings = discovery.Listings()
    first = _found(root, listings)
    assert first == _found(root)
    count_scandir.clear()
    assert _found(root, listings) == first
    assert str(root / "-a") not in count_scandir  # its listing was reused
    # a link's target changes without its directory changing: followed as found now
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "l.jsonl").write_text("l\n")
    got = _found(root, listings)
    assert got == _found(root)
    assert str(root / "-b" / "later" / "l.jsonl") in dict(got)
