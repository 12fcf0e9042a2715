"""Find Claude Code's transcript roots and files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path


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
    """``(path, stat)`` of every transcript under ``root``; unreadable entries are skipped."""
    stack = [os.fspath(root)]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        elif e.name.endswith(".jsonl"):
                            st = e.stat()
                            if stat.S_ISREG(st.st_mode):
                                yield e.path, st
                    except OSError:
                        continue
        except OSError:
            continue
