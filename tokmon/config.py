"""tokmon's TOML configuration: schema, defaults, load, validate, save.

Every key is validated when it is set (``tokmon config set``) and when the file is loaded;
problems are collected (not just the first) and each names the file and the key, in one
line, without Python exception text.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from tokmon.fsutil import atomic_write
from tokmon.leanclass import dataclass, field
from tokmon.paths import TokmonPaths


class ConfigError(Exception):
    """Invalid configuration file or value; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class _Bad(ValueError):
    """A value that does not fit its key; the message is shown to the user as is."""


def _shown(v: Any) -> str:
    """A raw value as the user wrote it (TOML-ish, never a Python repr of a type)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list):
        return "a list"
    return "a " + type(v).__name__.replace("datetime", "date/time")


def _number(v: Any, what: str) -> float:
    """A finite number from a TOML number or a command-line string."""
    if isinstance(v, bool):
        raise _Bad(f"expected {what}, got {_shown(v)}")
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v.strip().replace("_", ""))
        except ValueError:
            raise _Bad(f"expected {what}, got {_shown(v)}") from None
    else:
        raise _Bad(f"expected {what}, got {_shown(v)}")
    if not math.isfinite(f):
        raise _Bad(f"expected {what}, got {_shown(v)}")
    return f


def _limit(v: Any) -> int | str | None:
    """Block token limit: a positive whole number, "max" or "none" (None)."""
    what = 'a positive whole number of tokens, "max" or "none"'
    if v is None or (isinstance(v, str) and v.strip().lower() in ("none", "")):
        return None
    if isinstance(v, str) and v.strip().lower() == "max":
        return "max"
    if isinstance(v, str):
        v = v.strip().replace(",", "").replace("_", "")
    f = _number(v, what)
    if f <= 0 or f != int(f) or f > 10**15:
        raise _Bad(f"expected {what}, got {_shown(v)}")
    return int(f)


def _timezone(v: Any) -> str | None:
    """An IANA zone name, "UTC" or "local"/"none" (the system zone, stored as no key)."""
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none", "local", "system")):
        return None
    if not isinstance(v, str):
        raise _Bad(f'expected a time zone name such as "Europe/Berlin" or "UTC", got {_shown(v)}')
    from tokmon.core.timeutil import TimezoneError, resolve_tz

    name = v.strip()
    try:
        resolve_tz(name)
    except TimezoneError:
        raise _Bad(
            f'unknown time zone {_shown(v)} (use an IANA name such as "Europe/Berlin", '
            '"America/New_York" or "UTC")'
        ) from None
    return name


def _choice(*opts: str) -> Any:
    def check(v: Any) -> str:
        if not isinstance(v, str) or v.strip() not in opts:
            raise _Bad(f"expected one of {', '.join(opts)}, got {_shown(v)}")
        return v.strip()

    return check


def _range(lo: float, hi: float, what: str, lo_open: bool = False) -> Any:
    """A number in [lo, hi] (or (lo, hi] with ``lo_open``)."""
    bound = f"{'above' if lo_open else 'from'} {lo:g} {'up to' if lo_open else 'to'} {hi:g}"

    def check(v: Any) -> float:
        f = _number(v, f"{what} {bound}")
        if f > hi or f < lo or (lo_open and f == lo):
            raise _Bad(f"expected {what} {bound}, got {_shown(v)}")
        return f

    return check


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower() if isinstance(v, (str, int)) else ""
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise _Bad(f"expected true or false, got {_shown(v)}")


def _opt_text(v: Any) -> str | None:
    """Optional short text (a machine name, attributes): no control characters."""
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none")):
        return None
    if (
        not isinstance(v, str)
        or len(v) > 500
        or any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in v)
    ):
        raise _Bad(f"expected a short line of text, got {_shown(v)}")
    return v.strip()


def _count(lo: int, hi: int, what: str) -> Any:
    """A whole number in [lo, hi]."""

    def check(v: Any) -> int:
        f = _number(v, f"{what} from {lo} to {hi}")
        if f != int(f) or not lo <= f <= hi:
            raise _Bad(f"expected {what} from {lo} to {hi}, got {_shown(v)}")
        return int(f)

    return check


# dotted key -> (default, parser, help)
SCHEMA: dict[str, tuple[Any, Any, str]] = {
    "token_limit": (
        "max",
        _limit,
        "block token limit: a number, 'max' (largest past block) or 'none'",
    ),
    "timezone": (None, _timezone, "time zone for reports (IANA name, 'UTC'; default: system)"),
    "cost_mode": ("calculate", _choice("calculate", "display", "auto"), "how cost is computed"),
    "session_hours": (
        5.0,
        _range(0, 24, "a number of hours", lo_open=True),
        "billing block length in hours",
    ),
    "line.format": (
        "plain",
        _choice("plain", "tmux", "starship", "bash", "zsh", "fish", "json"),
        "default `tokmon line` format",
    ),
    "line.warning_percent": (
        80.0,
        _range(0, 100, "a percentage"),
        "warning style from this % of the token limit",
    ),
    "line.critical_percent": (
        95.0,
        _range(0, 100, "a percentage"),
        "critical style from this % (>= warning)",
    ),
    "line.stale_seconds": (
        10.0,
        _range(0, 86400, "a number of seconds", lo_open=True),
        "snapshot age after which `line` refreshes",
    ),
    "server.debounce_ms": (
        50.0,
        _range(1, 60000, "a number of milliseconds"),
        "file watcher debounce",
    ),
    "server.force_polling": (
        False,
        _bool,
        "poll files instead of OS events (network/WSL filesystems)",
    ),
    "machine": (
        None,
        _opt_text,
        "this machine's name in merged ledgers and metrics (default: host name)",
    ),
    "export.top_projects": (
        20,
        _count(0, 10000, "a whole number of projects"),
        "projects with their own metrics label (the rest: 'other')",
    ),
    "export.resource_attributes": (
        None,
        _opt_text,
        "extra OTLP resource attributes, e.g. 'team=infra,repo=x'",
    ),
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
        if isinstance(v, dict) and any(s.startswith(key + ".") for s in SCHEMA):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _unknown(key: str) -> str:
    return f"unknown key {key!r} (known keys: {', '.join(SCHEMA)})"


def parse_value(key: str, raw: Any) -> Any:
    """Validate one value for ``key``; raises ConfigError with a one-line message."""
    if key not in SCHEMA:
        raise ConfigError(_unknown(key))
    try:
        return SCHEMA[key][1](raw)
    except _Bad as exc:
        raise ConfigError(f"{key}: {exc}") from None


def cross_check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Problems between keys as (key, message): critical must not be below warning."""
    w = values.get("line.warning_percent", SCHEMA["line.warning_percent"][0])
    c = values.get("line.critical_percent", SCHEMA["line.critical_percent"][0])
    if isinstance(w, float) and isinstance(c, float) and c < w:
        return [
            (
                "line.critical_percent",
                f"{c:g} is below line.warning_percent ({w:g}); critical must be >= warning",
            )
        ]
    return []


def read_raw(path: Path) -> dict[str, Any]:
    """The file's keys, flattened, unvalidated; ConfigError if it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # (-sig: Windows editors' byte-order mark)
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 text") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for section in ("budgets", "alerts"):  # validated by tokmon.budgets / tokmon.limits.alerts
        data.pop(section, None)
    return _flatten(data)


def check_raw(raw: dict[str, Any], path: Path | str) -> tuple[dict[str, Any], list[str]]:
    """Validate every key of a flattened file: (valid values, one line per problem)."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, v in raw.items():
        if key not in SCHEMA:
            problems.append(f"{path}: {_unknown(key)}")
            continue
        try:
            values[key] = SCHEMA[key][1](v)
        except _Bad as exc:
            problems.append(f"{path}: {key}: {exc}")
    problems.extend(f"{path}: {k}: {m}" for k, m in cross_check(values))
    return values, problems


def check_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """(valid values, problems) of a config file; an unreadable file is one problem."""
    try:
        raw = read_raw(path)
    except ConfigError as exc:
        return {}, exc.problems
    return check_raw(raw, path)


def section_problems(path: Path) -> list[str]:
    """Problems of the ``[[budgets]]`` and ``[alerts]`` tables (validated by their modules)."""
    from tokmon import budgets
    from tokmon.limits import alerts

    problems: list[str] = []
    try:
        budgets.load(path)
    except budgets.BudgetError as exc:
        msg = str(exc)
        problems.append(msg if msg.startswith(str(path)) else f"{path}: {msg}")
    try:
        alerts.load(path)
    except (alerts.AlertConfigError, budgets.BudgetError) as exc:
        msg = str(exc)
        if not msg.startswith(str(path)):
            problems.append(f"{path}: {msg}")
    return problems


def load_file(path: Path) -> dict[str, Any]:
    """Parse and validate a config file; raises ConfigError listing every problem."""
    values, problems = check_file(path)
    if problems:
        raise ConfigError(problems)
    return values


def load_config(paths: TokmonPaths, path: Path | None = None) -> Config:
    cfg_path = path or paths.config_file
    cfg = Config(path=cfg_path)
    cfg.values.update(load_file(cfg_path))
    return cfg


def file_value(key: str, value: Any) -> Any:
    """How a validated value is written to the file (None: the key is left out)."""
    if key == "token_limit" and value is None:
        return "none"
    return value


def toml_value(v: Any) -> str:
    """One TOML value (bool, number or string)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else json.dumps(str(v))
    return json.dumps(str(v), ensure_ascii=False)


def dump(values: dict[str, Any], comments: dict[str, str] | None = None) -> str:
    """Serialise values as TOML (top-level keys, then one table per prefix); None is left out.

    ``comments`` adds a trailing ``# ...`` per key (``config show``).
    """
    comments = comments or {}

    def line(k: str, name: str, v: Any) -> str:
        c = comments.get(k)
        if v is None:
            return f"# {name} is not set{'  # ' + c if c else ''}"
        return f"{name} = {toml_value(v)}" + (f"  # {c}" if c else "")

    top = [k for k in values if "." not in k]
    tables: dict[str, list[str]] = {}
    for k in values:
        if "." in k:
            tables.setdefault(k.split(".", 1)[0], []).append(k)
    lines = [line(k, k, values[k]) for k in top if values[k] is not None or k in comments]
    for t, keys in tables.items():
        body = [
            line(k, k.split(".", 1)[1], values[k])
            for k in keys
            if values[k] is not None or k in comments
        ]
        if body:
            lines.append(f"\n[{t}]")
            lines.extend(body)
    return "\n".join(lines).lstrip("\n") + "\n"


# Tables other modules own (``[[budgets]]``, ``[alerts]``): `config set|reset` keeps them
# verbatim, comments included, instead of regenerating them.
KEPT_SECTIONS = ("budgets", "alerts")
# (a pattern, compiled by re's cache when a config file is read: not by every start-up)
_HEADER = r"^\s*\[\[?\s*([A-Za-z0-9_-]+)[^\]]*\]\]?\s*(#.*)?$"


def kept_text(path: Path) -> str:
    """The verbatim text of the file's ``KEPT_SECTIONS`` tables ('' when none or no file)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return ""
    out: list[str] = []
    keep = False
    pending: list[str] = []  # comments right above a header belong to its table
    for line in text.splitlines():
        m = re.match(_HEADER, line)
        if m:
            keep = m.group(1) in KEPT_SECTIONS
            if keep:
                out.extend(pending)
            pending = []
        if keep:
            out.append(line)
        elif line.lstrip().startswith("#"):
            pending.append(line)
        else:
            pending = []
    return "\n".join(out).strip("\n")


def _kept_data(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {"": text}  # unparsable: compares unequal to anything parsed
    return {k: data[k] for k in KEPT_SECTIONS if k in data}


def save_file(path: Path, values: dict[str, Any], keep: bool = True) -> None:
    """Write validated or raw values (already in file form) as TOML, 0600, atomically.

    With ``keep``, the file's ``[[budgets]]`` / ``[alerts]`` tables are carried over as they
    are; if they cannot be carried over intact the file is left alone (ConfigError)."""
    text = dump(values)
    if keep:
        kept = kept_text(path)
        if kept:
            text = text.rstrip("\n") + "\n\n" + kept + "\n"
            before = _kept_data(path.read_text(encoding="utf-8-sig"))
            if _kept_data(text) != before:
                raise ConfigError(
                    f"{path}: cannot rewrite it without changing its "
                    f"{' / '.join(sorted(before)) or 'tables'}; edit the file by hand"
                )
    atomic_write(path, text.encode("utf-8"))
