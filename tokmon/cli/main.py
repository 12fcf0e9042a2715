"""Argument parsing and dispatch; every command group lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from tokmon import __version__
from tokmon.cli.context import CLIError, Context, setup_logging

# Command-group modules, imported when the parser is built (each registers its commands).
GROUPS = [
    "reports",
    "stats",
    "config_cmd",
    "session",
    "backup",
    "pick",
    "shell",
    "serve",
    "watch",
    "limits",
    "alerts",
    "check",
    "budgets",
    "agents",
    "doctor",
    "export",
    "ledger_cmd",
    "web",
    "report",
]
LOG_LEVELS = ["debug", "info", "warning", "error"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CLIError(f"{message} (see `{self.prog} --help`)")


def global_options() -> argparse.ArgumentParser:
    """Flags accepted before or after any command."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("global options")
    g.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output")
    g.add_argument(
        "--no-color",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no colours (also NO_COLOR)",
    )
    g.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="log verbosity on stderr (debug shows tracebacks)",
    )
    g.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="config file (default: TOKMON_CONFIG or the user config dir)",
    )
    g.add_argument(
        "--demo",
        action="store_true",
        default=argparse.SUPPRESS,
        help="use a generated demo corpus instead of ~/.claude",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    parent = global_options()
    parser = _Parser(
        prog="tokmon",
        description="See how fast you spend Claude Code tokens.",
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"tokmon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.add_parser("line", help="prompt/status segment (fast path; see `tokmon line --help`)")
    for name in GROUPS:  # an import error surfaces: every group listed here exists
        importlib.import_module(f"tokmon.cli.{name}").register(sub, parent)
    return parser


def run(
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run one CLI command; returns the exit code (never raises for user errors)."""
    argv = sys.argv[1:] if argv is None else argv
    env = dict(os.environ) if env is None else env
    err = stderr or sys.stderr
    ctx = Context(env=env, stdin=stdin or sys.stdin, stdout=stdout or sys.stdout, stderr=err)
    debug = False
    try:
        args = build_parser().parse_args(argv)
        level = getattr(args, "log_level", None) or env.get("TOKMON_LOG_LEVEL", "warning").lower()
        if level not in LOG_LEVELS:
            raise CLIError(
                f"invalid TOKMON_LOG_LEVEL {level!r} (use one of {', '.join(LOG_LEVELS)})"
            )
        debug = level == "debug"
        setup_logging(level, err)
        ctx.log_level = level
        ctx.json_output = bool(getattr(args, "json", False))
        ctx.color = not getattr(args, "no_color", False) and "NO_COLOR" not in env
        ctx.demo = bool(getattr(args, "demo", False))
        ctx.config_path = getattr(args, "config", None)
        handler = getattr(args, "handler", None)
        if handler is None:
            # Bare `tokmon`: the one-screen overview.
            from tokmon.cli import stats

            return stats.handle(args, ctx)
        return int(handler(args, ctx) or 0)
    except CLIError as exc:
        err.write(f"tokmon: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        err.write("tokmon: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if debug:
            raise
        err.write(
            f"tokmon: error: {exc.__class__.__name__}: {exc} (run with --log-level debug for details)\n"
        )
        return 1
    finally:
        if ctx._engine is not None:  # close the ledger database (its WAL folded in)
            ctx._engine.close()
