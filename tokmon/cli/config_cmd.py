"""`tokmon config show|path|set|validate|reset`."""

from __future__ import annotations

import argparse

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json
from tokmon.config import SCHEMA, ConfigError, load_file, parse_value, save_file


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("config", parents=[parent], help="show or change the configuration")
    cs = p.add_subparsers(dest="config_command", metavar="ACTION")
    cs.add_parser("show", parents=[parent], help="effective values and where they come from")
    cs.add_parser("path", parents=[parent], help="print the config file path")
    s = cs.add_parser("set", parents=[parent], help="set KEY VALUE ('none' clears)")
    s.add_argument("key")
    s.add_argument("value")
    cs.add_parser("validate", parents=[parent], help="check the config file")
    r = cs.add_parser("reset", parents=[parent], help="reset one key, or all with --all")
    r.add_argument("key", nargs="?")
    r.add_argument("--all", action="store_true")
    p.set_defaults(handler=handle)


def _path(ctx: Context):  # type: ignore[no-untyped-def]
    return ctx.config_path or ctx.paths.config_file


def _file_values(ctx: Context) -> dict:  # type: ignore[type-arg]
    try:
        return load_file(_path(ctx))
    except ConfigError as exc:
        raise CLIError(str(exc)) from exc


def handle(args: argparse.Namespace, ctx: Context) -> int:
    action = args.config_command or "show"
    path = _path(ctx)
    if action == "path":
        ctx.stdout.write(f"{path}\n")
        return 0
    if action == "validate":
        vals = _file_values(ctx)
        ctx.stdout.write(f"{path}: ok ({len(vals)} key(s) set)\n" if path.exists() else f"{path}: not present (defaults apply)\n")
        return 0
    if action == "show":
        vals = _file_values(ctx)
        eff = {k: vals.get(k, d[0]) for k, d in SCHEMA.items()}
        if ctx.json_output:
            ctx.stdout.write(dump_json({"path": str(path), "values": eff, "set": sorted(vals)}))
            return 0
        ctx.stdout.write(f"# {path}\n")
        for k, (_default, _, helptext) in SCHEMA.items():
            src = "file" if k in vals else "default"
            ctx.stdout.write(f"{k} = {eff[k]!r}  # {src}; {helptext}\n")
        return 0
    if action == "reset" and args.all:  # works even when the file is broken
        save_file(path, {})
        ctx.stdout.write("configuration reset to defaults\n")
        return 0
    vals = _file_values(ctx)
    if action == "set":
        try:
            value = parse_value(args.key, args.value)
        except ConfigError as exc:
            raise CLIError(str(exc)) from exc
        vals[args.key] = value
        if value is None:
            vals.pop(args.key)
        save_file(path, vals)
        ctx.stdout.write(f"{args.key} = {value!r}\n")
        return 0
    if action == "reset":
        if not args.key:
            raise CLIError("config reset needs a KEY or --all")
        if args.key not in SCHEMA:
            raise CLIError(f"unknown config key {args.key!r} (see `tokmon config show`)")
        vals.pop(args.key, None)
        save_file(path, vals)
        ctx.stdout.write(f"{args.key} reset to {SCHEMA[args.key][0]!r}\n")
        return 0
    raise CLIError(f"unknown config action {action!r}")
