"""tokmon's TOML configuration: schema, defaults, load, validate, save."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokmon.fsutil import atomic_write
from tokmon.paths import TokmonPaths


class ConfigError(Exception):
    """Invalid configuration file or value."""


def _limit(v: Any) -> int | str | None:
    if v is None or v == "" or v == "none":
        return None
    if v == "max":
        return "max"
    if isinstance(v, bool):
        raise ValueError("expected a positive integer, 'max' or 'none'")
    n = int(v)
    if n <= 0:
        raise ValueError("expected a positive integer, 'max' or 'none'")
    return n


def _choice(*opts: str) -> Any:
    def check(v: Any) -> str:
        if v not in opts:
            raise ValueError(f"expected one of {', '.join(opts)}")
        return str(v)

    return check


def _percent(v: Any) -> float:
    f = float(v)
    if not 0 < f <= 1000:
        raise ValueError("expected a percentage between 0 and 1000")
    return f


def _pos_float(v: Any) -> float:
    f = float(v)
    if f < 0:
        raise ValueError("expected a non-negative number")
    return f


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _opt_str(v: Any) -> str | None:
    return None if v in (None, "", "none") else str(v)


# dotted key -> (default, parser, help)
SCHEMA: dict[str, tuple[Any, Any, str]] = {
    "token_limit": ("max", _limit, "block token limit: a number, 'max' (largest past block) or 'none'"),
    "timezone": (None, _opt_str, "time zone for reports (IANA name, 'UTC'; default: system)"),
    "cost_mode": ("calculate", _choice("calculate", "display", "auto"), "how cost is computed"),
    "session_hours": (5.0, _pos_float, "billing block length in hours"),
    "line.format": ("plain", _choice("plain", "tmux", "starship", "bash", "zsh", "fish", "json"), "default `tokmon line` format"),
    "line.warning_percent": (80.0, _percent, "warning style above this % of the token limit"),
    "line.critical_percent": (95.0, _percent, "critical style above this % of the token limit"),
    "line.stale_seconds": (10.0, _pos_float, "snapshot age after which `line` refreshes"),
    "server.debounce_ms": (50.0, _pos_float, "file watcher debounce"),
    "server.force_polling": (False, _bool, "poll files instead of OS events (network/WSL filesystems)"),
    "machine": (None, _opt_str, "this machine's name in merged ledgers and metrics (default: host name)"),
    "export.top_projects": (20, lambda v: max(0, int(v)), "projects with their own metrics label (the rest: 'other')"),
    "export.resource_attributes": (None, _opt_str, "extra OTLP resource attributes, e.g. 'team=infra,repo=x'"),
}


@dataclass
class Config:
    """Resolved configuration values (defaults merged with the file)."""

    values: dict[str, Any] = field(default_factory=lambda: {k: v[0] for k, v in SCHEMA.items()})
    path: Path | None = None

    def get(self, key: str) -> Any:
        return self.values.get(key, SCHEMA[key][0] if key in SCHEMA else None)

    @property
    def token_limit(self) -> int | str | None:
        return self.get("token_limit")  # type: ignore[no-any-return]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def parse_value(key: str, raw: Any) -> Any:
    if key not in SCHEMA:
        raise ConfigError(f"unknown config key {key!r} (see `tokmon config show`)")
    try:
        return SCHEMA[key][1](raw)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid value for {key}: {raw!r}: {exc}") from exc


def load_file(path: Path) -> dict[str, Any]:
    """Parse and validate a config file; raises ConfigError with a one-line message."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from exc
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from exc
    return {k: parse_value(k, v) for k, v in _flatten(data).items()}


def load_config(paths: TokmonPaths, path: Path | None = None) -> Config:
    cfg_path = path or paths.config_file
    cfg = Config(path=cfg_path)
    cfg.values.update(load_file(cfg_path))
    return cfg


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def dump(values: dict[str, Any]) -> str:
    """Serialise non-None values as TOML (top-level keys, then one table per prefix)."""
    top = {k: v for k, v in values.items() if "." not in k and v is not None}
    tables: dict[str, dict[str, Any]] = {}
    for k, v in values.items():
        if "." in k and v is not None:
            t, name = k.split(".", 1)
            tables.setdefault(t, {})[name] = v
    lines = [f"{k} = {_toml_value(v)}" for k, v in sorted(top.items())]
    for t in sorted(tables):
        lines.append(f"\n[{t}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in sorted(tables[t].items()))
    return "\n".join(lines).lstrip("\n") + "\n"


def save_file(path: Path, values: dict[str, Any]) -> None:
    atomic_write(path, dump(values).encode("utf-8"))
