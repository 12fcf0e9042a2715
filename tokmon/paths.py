"""Where tokmon keeps its own files (never inside Claude's transcript dirs).

``TOKMON_HOME`` overrides every tokmon path (tests always set it); otherwise the
platform's user dirs from platformdirs, imported lazily to keep ``line`` fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
