"""Find Claude Code's transcript roots and files."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tokmon import lazylog

log = lazylog.getLogger("tokmon.core.discovery")

#: Whether ``DirEntry.stat()`` carries ``st_ino``/``st_dev``: on Windows they are 0 there (and
#: real from ``os.stat``), so a transcript's identity would differ between a fresh listing
#: and a kept one (``os.stat``) and every change check would see every file as replaced.
_ENTRY_IDS = os.name != "nt"

_ID_MAX = (1 << 63) - 1
_TIMES = ("st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")


def fold_ids(st: os.stat_result) -> os.stat_result:
    """``st`` with ``st_ino``/``st_dev`` folded below 2**63 where they are not: file states
    keep them in SQLite ``INTEGER`` columns and int64 arrays. Windows gives an NTFS file
    reference (above 2**63 once its sequence number passes 0x8000) and, with Python 3.12+ on
    ReFS (Dev Drive), 128-bit ids. A fold only weakens the replaced-file test, which the
    fingerprint backs up."""
    ino, dev = st.st_ino, st.st_dev
    if ino <= _ID_MAX and dev <= _ID_MAX:
        return st
    seq = list(st)
    seq[1], seq[2] = ino % _ID_MAX, dev % _ID_MAX
    return os.stat_result(seq, {n: getattr(st, n) for n in _TIMES})


if os.name == "nt":

    def file_stat(path: str | bytes) -> os.stat_result:
        """:func:`os.stat` with ids that fit in 63 bits (:func:`fold_ids`)."""
        return fold_ids(os.stat(path))

else:
    file_stat = os.stat  # (POSIX ids fit: the same calls, at no cost)


def claude_roots(env: Mapping[str, str] | None = None) -> list[Path]:
    """Candidate ``projects/`` dirs: ``CLAUDE_CONFIG_DIR`` list, else both default roots.

    Each ``CLAUDE_CONFIG_DIR`` entry is a config dir holding ``projects/`` or the
    ``projects/`` dir itself. Missing dirs are kept (a watcher may wait for them).
    """
    env = os.environ if env is None else env
    raw = env.get("CLAUDE_CONFIG_DIR", "").strip()
    out: list[Path] = []
    if raw:
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            p = Path(os.path.expanduser(part))
            if (p / "projects").is_dir() or p.name != "projects":
                out.append(p / "projects")
            else:
                out.append(p)
    else:
        from tokmon.paths import user_home

        h = user_home(env)  # the home this environment names
        home = Path(h) if h else Path.home()
        xdg = env.get("XDG_CONFIG_HOME")
        cfg = Path(xdg) if xdg else home / ".config"
        out = [cfg / "claude" / "projects", home / ".claude" / "projects"]
    seen: set[str] = set()
    uniq = []
    for p in out:
        key = os.path.normcase(os.path.abspath(p))
        if key not in seen:
            seen.add(key)
            uniq.append(p)
    return uniq


RACY_NS = 2_000_000_000  # a listing is reused only if its dir was last changed this much before it

# Walks begun early (start_walks), by root path: a first scan's transcript_stats takes one
_EARLY: dict[str, Any] = {}


def start_walks(roots: Iterable[str | os.PathLike[str]]) -> None:
    """Begin the walk of each root on a native thread (``tokmon._native._stat``; POSIX), for
    a first scan whose :func:`transcript_stats` has no listing to reuse: called while the
    process is still importing (tokmon.__main__), the walk's system calls then run on the
    other core (docs/performance.md, eighteenth session). Does nothing without the
    extension, or with ``TOKMON_NO_NATIVE`` set."""
    from tokmon._native import disabled

    if os.name != "posix" or disabled():
        return
    try:
        from tokmon._native import _stat
    except ImportError:
        return
    if getattr(_stat, "WALK_VERSION", 0) != 1:
        return
    for root in roots:
        top = os.fspath(root)
        if top not in _EARLY:
            try:
                _EARLY[top] = _stat.walk_start(os.fsencode(top))
            except (ValueError, MemoryError):  # (a NUL in the path)
                continue


def _early_walk(top: str) -> tuple[list[Any], list[Any]] | None:
    """What the walk :func:`start_walks` began for ``top`` found (None: none was begun, or
    it gave up: Python walks)."""
    handle = _EARLY.pop(top, None)
    if handle is None:
        return None
    from tokmon._native import _stat

    got: tuple[list[Any], list[Any]] | None = _stat.walk_take(handle, os.stat_result)
    return got


class Listings:
    """Directory listings kept between change checks (:func:`transcript_stats`).

    A directory's mtime (and ctime) changes when an entry is added, removed or renamed, not
    when a file in it grows: while a directory's ``(mtime, ctime, ino, dev)`` is what it was
    when it was listed, its stored listing is what ``scandir`` would give, and only its
    transcripts are ``stat``'ed (an append changes the file, not the directory). As in git's
    racy check, a listing is kept only when the directory was last changed at least
    :data:`RACY_NS` before the listing was taken: an entry added in the same timestamp tick as
    the listing (coarse-mtime file systems, clocks a little apart) cannot hide behind an
    unchanged mtime. The ctime (on POSIX, bumped by any change to the directory's inode) also
    catches a tool that sets the mtime back after adding files (``rsync -t``, ``cp -p``;
    Windows' ctime is the creation time, so there only the mtime counts). Assumes a file
    system that updates a directory's mtime when its entries
    change (every local one tokmon supports; not FAT's directories, nor NFS within its
    attribute-cache time): ``TOKMON_NO_LISTING_CACHE=1`` lists every directory every time.

    ``dirs`` maps a directory path to ``[mtime_ns, ctime_ns, ino, dev, kinds, names]``:
    ``kinds`` has one letter per name (``d`` directory, ``l`` symlink, ``f`` transcript), in
    ``scandir`` order (the walk, and which link to a shared target is followed, stay the same).
    """

    def __init__(self, dirs: dict[str, list[Any]] | None = None) -> None:
        self.dirs: dict[str, list[Any]] = dirs if dirs is not None else {}
        self.changed = False

    @classmethod
    def load(cls, path: Path) -> Listings:
        """The listings saved at ``path`` (none when missing or unreadable: a cache)."""
        import json  # (not orjson: its import alone costs more than this file's parse)

        from tokmon.fsutil import read_regular

        try:
            data = json.loads(read_regular(path))
        except (OSError, ValueError, RecursionError):  # (json: a deep one recurses)
            return cls()
        if type(data) is not dict or data.get("v") != 1 or type(data.get("dirs")) is not dict:
            return cls()
        return cls(data["dirs"])

    def save(self, path: Path) -> None:
        """Write the listings to ``path`` (0600, atomically; no fsync: losing them costs one
        full listing, and a torn file is not loaded)."""
        from tokmon.fsutil import atomic_write
        from tokmon.jsontext import compact

        atomic_write(path, compact({"v": 1, "dirs": self.dirs}), fsync=False)
        self.changed = False


def _reusable(entry: Any, st: os.stat_result) -> bool:
    """Whether a stored listing still describes the directory ``st`` (and is well formed)."""
    if (
        type(entry) is not list
        or len(entry) != 6
        or entry[0] != st.st_mtime_ns
        or entry[1] != st.st_ctime_ns
        or entry[2] != st.st_ino
        or entry[3] != st.st_dev
    ):
        return False
    kinds, names = entry[4], entry[5]
    if type(kinds) is not str or type(names) is not list or len(kinds) != len(names):
        return False
    if kinds.strip("dlf"):
        return False
    try:
        joined = "\0".join(names)  # a name is one path component, never "." or ".."
    except TypeError:
        return False
    return not (
        joined.count("\0") != max(len(names) - 1, 0)  # a NUL inside a name
        or os.sep in joined
        or (os.altsep is not None and os.altsep in joined)
        or "." in names
        or ".." in names
        or "" in names
    )


class Known:
    """What a change check already knows of each transcript: ``dirs`` maps a directory
    path (as :func:`transcript_stats` walks it) to ``{name: [size, mtime_ns, ino, dev]}``.
    A transcript whose ``stat`` equals its entry is left out of the walk's result (and
    counted in ``same``); ``seen`` counts the transcripts found that have an entry."""

    def __init__(self, dirs: dict[str, Any]) -> None:
        self.dirs = dirs
        self.seen = 0
        self.same = 0


def _untouched(st: os.stat_result, sig: list[int]) -> bool:
    """Whether ``st`` is the file a :class:`Known` entry ``[size, mtime_ns, ino, dev]``
    describes: the same inode, size and mtime (the reader's "untouched" test)."""
    return (
        st.st_size == sig[0]
        and st.st_mtime_ns == sig[1]
        and st.st_ino == sig[2]
        and st.st_dev == sig[3]
    )


def transcript_stats(
    root: Path, listings: Listings | None = None, known: Known | None = None
) -> list[tuple[str, os.stat_result]]:
    """``(path, stat)`` of every transcript under ``root``, in no particular order.

    Symlinked directories are followed when their target lies outside ``root`` (inside, it
    is scanned anyway), each real directory once, so link loops end. A directory that
    cannot be listed gets one warning (logger ``tokmon.core.discovery``) and is skipped.

    The change check of every refresh: one ``scandir`` per directory and one ``stat`` per
    transcript (of its ``DirEntry``), no ``Path`` objects, no sorting. With ``listings``, a
    directory unchanged since its stored listing costs one ``stat`` instead of a ``scandir``
    (see :class:`Listings`; they are updated in place). With ``known``, the transcripts
    whose ``stat`` equals their entry are not returned (see :class:`Known`). (Two threads
    sharing the walk were no faster: the system calls are too short for the GIL.)
    """
    top = os.fspath(root)
    if _EARLY and known is None and listings is not None and not listings.dirs:
        got = _early_walk(top)
        if got is not None:
            log.debug("%s: the walk begun early (%d transcripts)", top, len(got[0]))
            return _walked(top, got, listings)
    try:
        top_real = os.path.realpath(top)
        st = os.stat(top)
    except OSError:
        return []
    seen: set[tuple[int, int]] = {(st.st_dev, st.st_ino)}
    out: list[tuple[str, os.stat_result]] = []
    add = out.append
    is_reg = stat.S_ISREG
    is_dir = stat.S_ISDIR
    stat_of = file_stat
    old = listings.dirs if listings is not None else None
    kept: dict[str, list[Any]] | None = {} if listings is not None else None
    known_dirs: dict[str, Any] = known.dirs if known is not None else {}
    n_known = n_same = 0
    no_sigs: dict[str, Any] = {}
    stack = [top]
    push = stack.append
    while stack:
        d = stack.pop()
        dst: os.stat_result | None = None
        listed = time.time_ns()  # before the directory's stat: see Listings
        sigs = known_dirs.get(d, no_sigs)
        if old is not None:
            try:
                dst = stat_of(d)
            except FileNotFoundError:
                continue
            except OSError:
                dst = None  # scandir below says why
            entry: Any = old.get(d)
            if dst is not None and _reusable(entry, dst):
                assert kept is not None
                kept[d] = entry
                prefix = os.path.join(d, "")
                for kind, name in zip(entry[4], entry[5], strict=False):  # lengths checked
                    path = prefix + name
                    if kind == "d":
                        push(path)
                        continue
                    try:
                        st = stat_of(path)
                    except OSError:
                        continue
                    if kind == "f" or (name.endswith(".jsonl") and not is_dir(st.st_mode)):
                        # a transcript, or a symbolic link to one
                        sig = sigs.get(name)
                        if sig is not None:
                            n_known += 1
                            if _untouched(st, sig):
                                n_same += 1
                                continue
                        if is_reg(st.st_mode):
                            add((path, st))
                        continue
                    if kind == "l" and is_dir(st.st_mode):  # a symbolic link to a directory
                        try:
                            if _outside_target(path, top_real, seen) is not None:
                                push(path)
                        except OSError:
                            continue
                continue
        try:
            it = os.scandir(d)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot list %s: %s; its transcripts are not counted", d,
                        exc.strerror or exc)  # fmt: skip
            continue
        kinds: list[str] = []
        names: list[str] = []
        whole = True
        with it:
            for e in it:
                try:
                    if e.is_dir(follow_symlinks=False):
                        kind = "d"
                    elif e.is_symlink():
                        kind = "l"
                    elif e.name.endswith(".jsonl"):
                        kind = "f"
                    else:
                        continue
                except OSError:  # its kind is unknown: this listing is not kept
                    whole = False
                    continue
                kinds.append(kind)
                names.append(e.name)
                try:
                    if kind == "d":
                        push(e.path)
                    elif kind == "f" or not e.is_dir():
                        if kind == "f" or e.name.endswith(".jsonl"):
                            st = e.stat() if _ENTRY_IDS else stat_of(e.path)
                            if is_reg(st.st_mode):
                                sig = sigs.get(e.name)
                                if sig is not None:
                                    n_known += 1
                                    if _untouched(st, sig):
                                        n_same += 1
                                        continue
                                add((e.path, st))
                    elif _outside_target(e.path, top_real, seen) is not None:
                        push(e.path)
                except OSError:
                    continue
        if (
            kept is not None
            and dst is not None
            and whole
            and max(dst.st_mtime_ns, dst.st_ctime_ns) < listed - RACY_NS
        ):
            kept[d] = [
                dst.st_mtime_ns, dst.st_ctime_ns, dst.st_ino, dst.st_dev, "".join(kinds), names
            ]  # fmt: skip
            assert listings is not None
            listings.changed = True
    if known is not None:
        known.seen += n_known
        known.same += n_same
    if listings is not None and kept is not None:
        _keep_listings(top, listings, old, kept)
    return out


def _keep_listings(
    top: str, listings: Listings, old: dict[str, list[Any]] | None, kept: dict[str, list[Any]]
) -> None:
    """The listings after a walk of ``top``: its directories' (``kept``; a deleted one drops
    out), and other roots' as they were."""
    prefix = os.path.join(top, "")
    for k, v in (old or {}).items():
        if k != top and not k.startswith(prefix):
            kept.setdefault(k, v)
    if len(kept) != len(old or {}):
        listings.changed = True
    listings.dirs = kept


def _walked(
    top: str, got: tuple[list[Any], list[Any]], listings: Listings
) -> list[tuple[str, os.stat_result]]:
    """:func:`transcript_stats`' answer (and listings) from a native walk of ``top`` (see
    :func:`start_walks`): the same transcripts, order, stats and listings as its own walk
    with no listing to reuse."""
    files, dirs = got
    kept: dict[str, list[Any]] = {}
    for path, listed, sig, kinds, names in dirs:
        if max(sig[0], sig[1]) < listed - RACY_NS:  # (mtime_ns, ctime_ns)
            kept[path] = [*sig, kinds, names]
            listings.changed = True
    _keep_listings(top, listings, listings.dirs, kept)
    return files


def _outside_target(link: str, top_real: str, seen: set[tuple[int, int]]) -> str | None:
    """The real path of a symlinked dir worth following (outside the root, not seen yet)."""
    real = os.path.realpath(link)
    if real == top_real or real.startswith(top_real.rstrip(os.sep) + os.sep):
        return None
    st = os.stat(real)
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return None
    seen.add(key)
    return real


def claude_dir_problem(env: Mapping[str, str]) -> str | None:
    """A one-line problem when CLAUDE_CONFIG_DIR names dirs that do not exist or hold no
    ``projects/`` (a typo must not fall back to demo data); None when it is fine or unset."""
    raw = (env.get("CLAUDE_CONFIG_DIR") or "").strip()
    if not raw:
        return None
    bad = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        p = Path(os.path.expanduser(part))
        if not p.exists():
            bad.append(f"{part} does not exist")
        elif not p.is_dir():
            bad.append(f"{part} is not a directory")
        elif not (p / "projects").is_dir() and p.name != "projects":
            bad.append(f"{part} holds no projects/ directory")
    if not bad:
        return None
    return f"CLAUDE_CONFIG_DIR: {'; '.join(bad)}"


def claude_dir_usable(env: Mapping[str, str]) -> bool:
    """False when CLAUDE_CONFIG_DIR is set but none of its entries is a usable dir."""
    raw = (env.get("CLAUDE_CONFIG_DIR") or "").strip()
    if not raw:
        return True
    return any(r.is_dir() for r in claude_roots(dict(env)))
