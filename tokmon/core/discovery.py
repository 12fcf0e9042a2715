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
