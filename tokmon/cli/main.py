"""Argument parsing and dispatch; every command group lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, cast

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
#: Each command and the group module that registers it: a run builds the parser of its
#: command's group only (importing every group costs more than a warm report itself);
#: ``--help``, a bare ``tokmon`` or an unknown command get the full parser.
#: tests/test_cli_dispatch.py checks this table against what the groups register.
COMMANDS = {
    **dict.fromkeys(["daily", "weekly", "monthly", "blocks", "claude"], "reports"),
    "stats": "stats",
    "config": "config_cmd",
    "session": "session",
    "backup": "backup",
    "pick": "pick",
    "init": "shell",
    "install-statusline": "shell",
    "serve": "serve",
    "watch": "watch",
    "limits": "limits",
    "alerts": "alerts",
    "check": "check",
    "budgets": "budgets",
    **dict.fromkeys(["codex", "gemini", "opencode", "qwen", "copilot", "amp", "agents"], "agents"),
    "doctor": "doctor",
    "export": "export",
    "ledger": "ledger_cmd",
    "web": "web",
    "report": "report",
}
_GLOBAL_FLAGS = {"--json", "--no-color", "--demo"}
_GLOBAL_VALUED = {"--log-level", "--config"}


_columns: list[int] = []  # the width, once per parser (argparse: a formatter per argument)


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` without importing shutil (its archive
    modules cost a warm report several milliseconds; argparse imports it for this only)."""
    if not _columns:
        _columns.append(_find_columns())
    return _columns[0]


def _find_columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, its default width found without shutil."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    #: The command a run names (``tokmon daily``): argparse reports unknown options from the
    #: top-level parser, whose help does not list them.
    help_prog: str | None = None

    def error(self, message: str) -> None:  # type: ignore[override]
        prog = self.prog
        if message.startswith("unrecognized arguments") and self.help_prog:
            prog = self.help_prog
        raise CLIError(f"{_did_you_mean(message)} (see `{prog} --help`)")


def _did_you_mean(message: str) -> str:
    """argparse's ``invalid choice: 'dialy' (choose from 'line', 'daily', ...)`` with a close
    match becomes ``invalid choice: 'dialy' (did you mean 'daily'? choose from ...)``."""
    import re

    m = re.fullmatch(r"(argument \S+: invalid choice: '(.*)') \(choose from (.*)\)", message)
    if m is None:
        return message
    import difflib

    choices = [c.strip().strip("'\"") for c in m.group(3).split(",")]
    close = difflib.get_close_matches(m.group(2), choices, n=1, cutoff=0.6)
    return (
        f"{m.group(1)} (did you mean '{close[0]}'? choose from {m.group(3)})" if close else message
    )


def global_options() -> argparse.ArgumentParser:
    """Flags accepted before or after any command."""
    p = _Parser(add_help=False)
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


def _after_globals(argv: list[str]) -> int:
    """The index of the first argument after the global options (``len(argv)``: none)."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in _GLOBAL_FLAGS:
            i += 1
        elif a in _GLOBAL_VALUED:
            i += 2
        elif a.split("=", 1)[0] in _GLOBAL_VALUED:
            i += 1
        else:
            return i
    return len(argv)


def command_name(argv: list[str]) -> str | None:
    """The command ``argv`` names after any global options (None: none, or an unknown one)."""
    i = _after_globals(argv)
    return argv[i] if i < len(argv) and argv[i] in COMMANDS else None


def command_group(argv: list[str]) -> str | None:
    """The group module of the command ``argv`` names after any global options (``stats``
    for none: the bare overview), or None when the full parser is needed: ``--help`` or
    ``--version`` first, an option this scan does not know (an abbreviation), an unknown
    command."""
    i = _after_globals(argv)
    if i >= len(argv):
        return "stats"  # bare `tokmon`: the overview
    return COMMANDS.get(argv[i])  # an option here ("-h", "--vers") is no key: None


def build_parser(
    groups: list[str] | None = None, command: str | None = None
) -> argparse.ArgumentParser:
    """The parser with every group's commands, or with ``groups``' only; ``command``: just
    that command of a group that can register one (``register_command``), e.g. ``daily``."""
    _columns.clear()  # the terminal's width as it is now
    parent = global_options()
    parser = _Parser(
        prog="tokmon",
        description="See how fast you spend AI coding-agent tokens (Claude Code, Codex, "
        "Gemini CLI, OpenCode, Qwen Code, Copilot CLI, Amp). Without a command: today, the "
        "current 5-hour block and recent sessions (`tokmon stats`).",
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"tokmon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    line = sub.add_parser(
        "line", help="prompt/status segment (fast path; see `tokmon line --help`)"
    )
    line.set_defaults(handler=_line_elsewhere)  # `tokmon line` never reaches this parser
    for name in GROUPS if groups is None else groups:  # an import error surfaces
        mod = importlib.import_module(f"tokmon.cli.{name}")
        if command is not None and hasattr(mod, "register_command"):
            mod.register_command(sub, parent, command)
        else:
            mod.register(sub, parent)
    return parser


#: The groups whose commands answer once and exit, from the engine (a report).
ONE_SHOT_GROUPS = ("reports", "session", "stats")


def _start_over(group: str | None) -> None:
    """The end of the start-up of a program run begun with the cyclic GC off (it is on
    again after this), before its parser is built. The collections during the imports (~30 passes
    over ~25,000 objects of ~150 modules as they are made, nearly all alive until the exit)
    cost ~3 ms of a warm report's ~50; turned back on, the first pass would walk them all.
    A report imports its command group and its engine now, and what exists is frozen
    (``gc.freeze``: no later collection walks it; the report's check freezes what it leaves
    too, :attr:`tokmon.core.engine.Engine.freeze_after_check`), with the few hundred objects
    the imports left as garbage (~0.1 MB: the Python classes that C ones replace). The
    parser is built after the freeze: its cycles stay collectable (frozen, they cost a cold
    run's peak RSS 0.3 MB). Any other command (a server, a watcher) only gets the GC back,
    which collects the imports' garbage."""
    import gc

    if group in ONE_SHOT_GROUPS:
        importlib.import_module(f"tokmon.cli.{group}")  # (build_parser's import, done here)
        import tokmon.core.engine  # noqa: F401  (its handler's first need)

        gc.freeze()
    gc.enable()


def _line_elsewhere(args: argparse.Namespace, ctx: Context) -> int:
    """``line`` is answered by :mod:`tokmon.statusline` before this parser is built
    (:func:`tokmon.__main__.main`); reaching here means global options came first."""
    raise CLIError(
        "global options do not apply to `tokmon line` (the fast path takes --json and its own "
        "options: `tokmon line --help`)"
    )


def run(
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    program: bool = False,
    gc_paused: bool = False,
) -> int:
    """Run one CLI command; returns the exit code (never raises for user errors).

    ``program``: this run is the process (the ``tokmon`` script, ``python -m tokmon``), which
    exits after it (:attr:`Context.program`). ``gc_paused``: the caller turned the cyclic
    GC off for the start-up's imports (:mod:`tokmon.__main__`); it is turned back on once
    the command's modules are imported (:func:`_start_over`), whatever happens."""
    argv = sys.argv[1:] if argv is None else argv
    env = dict(os.environ) if env is None else env
    err = stderr or sys.stderr
    ctx = Context(env=env, stdin=stdin or sys.stdin, stdout=stdout or sys.stdout, stderr=err)
    ctx.program = program
    debug = False
    try:
        group, command = command_group(argv), command_name(argv)
        if gc_paused:
            _start_over(group)
            gc_paused = False  # (if it raised, the finally below turns the GC on)
        parser = build_parser(None if group is None else [group], command)
        if command is not None:
            cast(_Parser, parser).help_prog = f"tokmon {command}"
        args = parser.parse_args(argv)
        level = getattr(args, "log_level", None) or env.get("TOKMON_LOG_LEVEL", "warning").lower()
        if level not in LOG_LEVELS:
            raise CLIError(
                f"invalid TOKMON_LOG_LEVEL {level!r} (use one of {', '.join(LOG_LEVELS)})"
            )
        debug = level == "debug"
        setup_logging(level, err, lazy=group in ONE_SHOT_GROUPS)
        ctx.log_level = level
        ctx.json_output = bool(getattr(args, "json", False))
        ctx.color = not getattr(args, "no_color", False) and "NO_COLOR" not in env
        ctx.demo = bool(getattr(args, "demo", False))
        ctx.config_path = getattr(args, "config", None)
        if ctx.config_path is not None and args.command != "config":  # `config set` creates it
            if not ctx.config_path.exists():  # a typo must not pass unnoticed
                ctx.warn(f"--config {ctx.config_path} does not exist; the defaults apply")
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
    except BrokenPipeError:  # the reader went away (`tokmon daily | head -3`): not an error
        if program:  # the interpreter's last flush of stdout would fail again (exit 120)
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (AttributeError, ValueError, OSError):
                pass
        return 0
    except Exception as exc:
        if debug:
            raise
        err.write(
            f"tokmon: error: {exc.__class__.__name__}: {exc} (run with --log-level debug for details)\n"
        )
        return 1
    finally:
        if gc_paused:  # (--help, --version, a parse error)
            import gc

            gc.enable()
        if ctx._engine is not None:  # close the ledger database (its WAL folded in)
            ctx._engine.close()
