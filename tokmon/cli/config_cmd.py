"""`tokmon config show|path|set|validate|reset`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json
from tokmon.config import (
    SCHEMA,
    ConfigError,
    check_file,
    check_raw,
    cross_check,
    dump,
    file_value,
    parse_value,
    read_raw,
    save_file,
)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("config", parents=[parent], help="show or change the configuration")
    cs = p.add_subparsers(dest="config_command", metavar="ACTION")
    cs.add_parser("show", parents=[parent], help="effective values as TOML, with their source")
    cs.add_parser("path", parents=[parent], help="print the config file path")
    s = cs.add_parser(
        "set",
        parents=[parent],
        help="set KEY VALUE (token_limit none = no limit; timezone none = system zone)",
    )
    s.add_argument("key")
    s.add_argument("value")
    cs.add_parser("validate", parents=[parent], help="check every key of the config file")
    r = cs.add_parser("reset", parents=[parent], help="reset one key, or all with --all")
    r.add_argument("key", nargs="?")
    r.add_argument("--all", action="store_true")
    p.set_defaults(handler=handle)


def _path(ctx: Context) -> Path:
    return ctx.config_path or ctx.paths.config_file


def _raise(problems: list[str]) -> None:
    """All problems as one CLI error, one line each ('tokmon: error: ' on every line)."""
    raise CLIError("\ntokmon: error: ".join(problems))


def _raw(path: Path) -> dict[str, Any]:
    try:
        return read_raw(path)
    except ConfigError as exc:
        _raise([*exc.problems, "(fix the file, or start over with `tokmon config reset --all`)"])
    return {}  # pragma: no cover


def _write(path: Path, raw: dict[str, Any], keep: bool = True) -> None:
    """Save ``raw``; ``keep`` carries the file's [[budgets]] / [alerts] over unchanged."""
    try:
        save_file(path, raw, keep=keep)
    except ConfigError as exc:
        _raise(exc.problems)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None


def handle(args: argparse.Namespace, ctx: Context) -> int:
    action = args.config_command or "show"
    path = _path(ctx)
    if action == "path":
        ctx.stdout.write(f"{path}\n")
        return 0
    if action == "validate":
        return _validate(ctx, path)
    if action == "show":
        return _show(ctx, path)
    if action == "reset" and args.all:  # works even when the file is broken
        _write(path, {}, keep=False)
        ctx.stdout.write("configuration reset to defaults\n")
        return 0
    if action == "set":
        return _set(ctx, path, args.key, args.value)
    if action == "reset":
        if not args.key:
            raise CLIError("config reset needs a KEY or --all")
        if args.key not in SCHEMA:
            raise CLIError(f"unknown config key {args.key!r} (known keys: {', '.join(SCHEMA)})")
        raw = _raw(path)
        raw.pop(args.key, None)
        _write(path, raw)
        ctx.stdout.write(f"{args.key} reset to its default\n")
        return 0
    raise CLIError(f"unknown config action {action!r}")


def _validate(ctx: Context, path: Path) -> int:
    from tokmon.config import section_problems

    values, problems = check_file(path)
    if not any("invalid TOML" in p for p in problems):
        problems += section_problems(path)
    if ctx.json_output:
        ctx.stdout.write(
            dump_json(
                {
                    "path": str(path),
                    "exists": path.exists(),
                    "ok": not problems,
                    "problems": problems,
                }
            )
        )
        return 1 if problems else 0
    if problems:
        for p in problems:
            ctx.stdout.write(f"{p}\n")
        ctx.stdout.write(
            f"{len(problems)} problem(s); fix them with `tokmon config set KEY VALUE` "
            "or `tokmon config reset KEY` ([[budgets]] / [alerts]: edit the file, "
            "see docs/limits.md)\n"
        )
        return 1
    if path.exists():
        ctx.stdout.write(f"{path}: ok ({len(values)} key(s) set)\n")
    else:
        ctx.stdout.write(f"{path}: not present (defaults apply)\n")
    return 0


def _show(ctx: Context, path: Path) -> int:
    values, problems = check_file(path)
    if problems:
        _raise([*problems, "(`tokmon config validate` lists the problems)"])
    eff = {k: values.get(k, d[0]) for k, d in SCHEMA.items()}
    if ctx.json_output:
        ctx.stdout.write(dump_json({"path": str(path), "values": eff, "set": sorted(values)}))
        return 0
    comments = {}
    for k, (_default, _, helptext) in SCHEMA.items():
        src = "file" if k in values else "default"
        comments[k] = f"{src}; {helptext}"
    shown = {k: file_value(k, v) for k, v in eff.items()}
    ctx.stdout.write(f"# {path}{'' if path.exists() else ' (not present: defaults apply)'}\n")
    ctx.stdout.write(dump(shown, comments))
    return 0


def _set(ctx: Context, path: Path, key: str, text: str) -> int:
    try:
        value = parse_value(key, text)
    except ConfigError as exc:
        sep = ": " if str(exc).startswith("unknown key") else " "  # else it starts with the key
        raise CLIError(f"config set{sep}{exc}") from None
    raw = _raw(path)
    fv = file_value(key, value)
    new = dict(raw)
    if fv is None:
        new.pop(key, None)
    else:
        new[key] = fv
    vals, problems = check_raw(new, path)
    pair = ("line.warning_percent", "line.critical_percent")
    if key in pair:
        for _k, msg in cross_check(vals):  # critical below warning, whichever was set
            raise CLIError(f"config set {key}: {msg}")
    _write(path, new)
    ctx.stdout.write(f"{key} = {'(system zone)' if fv is None else _toml(fv)}\n")
    for p in problems:  # other keys that were already broken
        ctx.warn(p)
    return 0


def _toml(v: Any) -> str:
    from tokmon.config import toml_value

    return toml_value(v)
