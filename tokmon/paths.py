"""Where tokmon keeps its own files (never inside Claude's transcript dirs).

``TOKMON_HOME`` overrides every tokmon path (tests always set it); otherwise the
platform's user dirs from platformdirs, imported lazily to keep ``line`` fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tokmon.leanclass import dataclass

APP = "tokmon"


@dataclass(frozen=True)
class TokmonPaths:
    """The directories tokmon owns."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    state_dir: Path
    config_override: Path | None = None  # TOKMON_CONFIG

    @property
    def config_file(self) -> Path:
        return self.config_override or self.config_dir / "config.toml"

    @property
    def ledger_file(self) -> Path:
        return self.data_dir / "ledger.json"

    @property
    def metadata_file(self) -> Path:
        return self.data_dir / "sessions.json"

    @property
    def snapshot_file(self) -> Path:
        return self.cache_dir / "snapshot.json"

    @property
    def official_file(self) -> Path:
        return self.state_dir / "official.json"

    @property
    def prices_override_file(self) -> Path:
        return self.config_dir / "prices.json"


def get_paths(env: Mapping[str, str] | None = None) -> TokmonPaths:
    """Resolve tokmon's directories from the environment."""
    env = os.environ if env is None else env
    cfg = env.get("TOKMON_CONFIG")
    override = Path(cfg).expanduser() if cfg else None
    home = env.get("TOKMON_HOME")
    if home:
        root = Path(home).expanduser()
        return TokmonPaths(root / "config", root / "data", root / "cache", root / "state", override)
    import platformdirs

    return TokmonPaths(
        Path(platformdirs.user_config_dir(APP, appauthor=False)),
        Path(platformdirs.user_data_dir(APP, appauthor=False)),
        Path(platformdirs.user_cache_dir(APP, appauthor=False)),
        Path(platformdirs.user_state_dir(APP, appauthor=False)),
        override,
    )


def user_home(env: Mapping[str, str]) -> str | None:
    """The home dir ``env`` names (None: neither variable is set). POSIX: ``HOME``. Windows:
    ``USERPROFILE`` first, as Node (Claude Code, Gemini CLI), Codex and Python's
    ``expanduser`` read it there; a ``HOME`` set by MSYS, Cygwin or Emacs may be elsewhere."""
    first, then = ("USERPROFILE", "HOME") if os.name == "nt" else ("HOME", "USERPROFILE")
    return env.get(first) or env.get(then) or None


def ensure_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents, each with mode 0700 (existing dirs untouched)."""
    if path.is_dir():
        return path
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        try:
            os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask
        except OSError:  # pragma: no cover - e.g. some Windows filesystems
            pass
    return path


def unsafe_dirs(
    paths: TokmonPaths, env: Mapping[str, str] | None = None
) -> tuple[str, bool] | None:
    """``(warning, foreign)`` when tokmon's own dirs that exist (``TOKMON_HOME`` itself, data,
    cache, state, config) can be written by other local users, else None.

    ``foreign``: one belongs to another user (refuse its ledger and caches); otherwise one is
    ours but group- or world-writable (warn: another user could plant a ledger or cache
    files; tokmon never changes the mode of a dir it did not create). POSIX only: Windows
    has ACLs, not these modes (no ``os.getuid``). Stats only the dirs, never their files.
    """
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return None
    import stat

    env = os.environ if env is None else env
    home = env.get("TOKMON_HOME")
    dirs = [Path(home).expanduser()] if home else []
    dirs += [paths.data_dir, paths.cache_dir, paths.state_dir, paths.config_dir]
    uid = getuid()
    foreign: list[str] = []
    writable: list[str] = []
    fix: list[str] = []
    for d in dict.fromkeys(dirs):
        try:
            st = os.stat(d)
        except (OSError, ValueError):
            continue  # missing: made 0700 when needed
        if not stat.S_ISDIR(st.st_mode):
            continue  # (the ledger's open reports a file in a dir's place)
        if st.st_uid != uid:
            foreign.append(f"{d} (owner uid {st.st_uid})")
        elif st.st_mode & 0o022:
            import shlex  # (only then: every run stats these dirs)

            writable.append(f"{d} (mode {stat.S_IMODE(st.st_mode):04o})")
            fix.append(shlex.quote(str(d)))
    if foreign:
        return (
            f"{_dirs(foreign)} another user's, who could plant a ledger or cache files: not "
            "using its ledger and caches (results come from the transcripts only and are not "
            "saved); remove it or set TOKMON_HOME to a dir of your own",
            True,
        )
    if writable:
        return (
            f"{_dirs(writable)} writable by other users, who could plant a ledger or cache "
            f"files; run `chmod 700 {' '.join(fix)}`",
            False,
        )
    return None


def _dirs(items: list[str]) -> str:
    if len(items) == 1:
        return f"tokmon's dir {items[0]} is"
    return f"tokmon's dirs {', '.join(items)} are"
