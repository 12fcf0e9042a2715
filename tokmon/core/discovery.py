"""Find Claude Code's transcript roots and files."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

log = logging.getLogger("tokmon.core.discovery")


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
        home = Path(os.path.expanduser("~"))
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


def iter_transcript_stats(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """``(path, stat)`` of every transcript under ``root``.

    Symlinked directories are followed when their target lies outside ``root`` (inside, it
    is scanned anyway), each real directory once, so link loops end.  A directory that
    cannot be listed gets one warning (logger ``tokmon.core.discovery``) and is skipped.
    """
    top = os.fspath(root)
    try:
        top_real = os.path.realpath(top)
        st = os.stat(top)
    except OSError:
        return
    seen: set[tuple[int, int]] = {(st.st_dev, st.st_ino)}
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot list %s: %s; its transcripts are not counted", d,
                        exc.strerror or exc)  # fmt: skip
            continue
        for e in reversed(entries):  # the stack pops them in name order
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_symlink() and e.is_dir():
                    target = _outside_target(e.path, top_real, seen)
                    if target is not None:
                        stack.append(e.path)
                elif e.name.endswith(".jsonl"):
                    st = e.stat()
                    if stat.S_ISREG(st.st_mode):
                        yield e.path, st
            except OSError:
                continue


def transcript_stats(root: Path) -> list[tuple[str, os.stat_result]]:
    """``(path, stat)`` of every transcript under ``root``, in no particular order: what
    :func:`iter_transcript_stats` finds (the same links followed, the same warnings), faster.

    The change check of every refresh: one ``scandir`` per directory and one ``stat`` per
    transcript (of its ``DirEntry``), no ``Path`` objects, no sorting. (Two threads sharing
    the walk were no faster: the system calls are too short for the GIL to be worth passing.)
    """
    top = os.fspath(root)
    try:
        top_real = os.path.realpath(top)
        st = os.stat(top)
    except OSError:
        return []
    seen: set[tuple[int, int]] = {(st.st_dev, st.st_ino)}
    out: list[tuple[str, os.stat_result]] = []
    add = out.append
    is_reg = stat.S_ISREG
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot list %s: %s; its transcripts are not counted", d,
                        exc.strerror or exc)  # fmt: skip
            continue
        with it:
            for e in it:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_symlink() and e.is_dir():
                        if _outside_target(e.path, top_real, seen) is not None:
                            stack.append(e.path)
                    elif e.name.endswith(".jsonl"):
                        st = e.stat()
                        if is_reg(st.st_mode):
                            add((e.path, st))
                except OSError:
                    continue
    return out


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
