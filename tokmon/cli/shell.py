"""``tokmon init bash|zsh|fish`` and ``tokmon install-statusline [--uninstall]``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tokmon.cli.context import CLIError, Context

STATUSLINE_ARGS = ["line", "--claude"]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], parent: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "init",
        parents=[parent],
        help="print a shell hook showing the tokmon line in your prompt",
        description='Print a prompt hook; add `eval "$(tokmon init bash)"` to ~/.bashrc, '
        '`eval "$(tokmon init zsh)"` to ~/.zshrc or `tokmon init fish | source` to '
        "config.fish. The prompt reads a pre-rendered line (no process per prompt) and "
        "refreshes it in the background at most every TOKMON_REFRESH_SECONDS (3) seconds.",
    )
    p.add_argument("shell", choices=["bash", "zsh", "fish"], help="your shell")
    p.add_argument("--cmd", help="how the hook runs tokmon (default: this installation)")
    p.set_defaults(handler=handle_init)

    p = subparsers.add_parser(
        "install-statusline",
        parents=[parent],
        help="make `tokmon line --claude` Claude Code's statusLine",
        description="Edit Claude Code's settings.json atomically, with a backup, touching "
        "only the statusLine key.",
    )
    p.add_argument("--uninstall", action="store_true", help="remove tokmon's statusLine")
    p.add_argument(
        "--settings",
        type=Path,
        help="settings file (default: $CLAUDE_CONFIG_DIR's first entry, else ~/.claude, "
        "+ /settings.json)",
    )
    p.add_argument("--force", action="store_true", help="replace another tool's statusLine")
    p.add_argument("--cmd", help="how Claude Code runs tokmon (default: this installation)")
    p.add_argument(
        "--refresh-interval", type=int, metavar="SECONDS", help="also re-run every SECONDS"
    )
    p.set_defaults(handler=handle_install)


# --------------------------------------------------------------------------- command


def tokmon_command(env: Any, override: str | None = None) -> list[str]:
    """argv that runs this tokmon: ``--cmd``, else ``tokmon`` beside the interpreter or on
    PATH, else ``<python> -P -m tokmon`` (never importing from the cwd)."""
    if override:
        import shlex

        if os.name == "nt":  # POSIX rules would eat the backslashes of C:\Users\...
            return [w.strip('"') for w in shlex.split(override, posix=False)]
        return shlex.split(override)
    exe_dir = os.path.dirname(sys.executable)
    for name in ("tokmon", "tokmon.exe"):
        beside = os.path.join(exe_dir, name)
        if os.path.isfile(beside) and os.access(beside, os.X_OK):
            return [beside]
    found = shutil.which("tokmon", path=env.get("PATH"))
    if found and ".pyenv/shims" not in found.replace("\\", "/"):
        return [os.path.abspath(found)]
    from tokmon.safepython import module_argv  # `-m` would import from the prompt's cwd

    return module_argv("tokmon")


def handle_init(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.statusline.locate import line_dir, tokmon_dirs
    from tokmon.statusline.shells import init_script

    command = tokmon_command(ctx.env, args.cmd)
    prompt_dir = os.path.join(line_dir(tokmon_dirs(ctx.env)), "prompt")
    ctx.stdout.write(init_script(args.shell, command, prompt_dir))
    return 0


# --------------------------------------------------------------------------- statusLine


def settings_path(env: Any, override: Path | None = None) -> Path:
    if override is not None:
        return override.expanduser()
    ccd = (env.get("CLAUDE_CONFIG_DIR") or "").split(",")[0].strip()
    from tokmon.paths import user_home

    base = Path(ccd).expanduser() if ccd else Path(user_home(env) or Path.home()) / ".claude"
    return base / "settings.json"


def _is_ours(status_line: Any) -> bool:
    if not isinstance(status_line, dict):
        return False
    command = str(status_line.get("command") or "")
    return "tokmon" in command and "line --claude" in command


def _load(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_float=_exact_float, parse_constant=_no_constant,
                          object_pairs_hook=_unique_keys)  # fmt: skip
    except _Unsafe as exc:
        raise CLIError(f"{path} {exc}; not touching it") from None
    except (ValueError, RecursionError) as exc:
        raise CLIError(f"{path} is not valid JSON ({exc}); not touching it") from None
    if not isinstance(data, dict):
        raise CLIError(f"{path} does not hold a JSON object; not touching it")
    return data


class _Unsafe(ValueError):
    """settings.json holds something a rewrite would not keep exactly."""


def _exact_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Unsafe(f"holds the number {text[:40]}, which would be rewritten as Infinity")
    return value


def _no_constant(text: str) -> Any:
    raise _Unsafe(f"holds {text}, which is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Unsafe(f"has the key {key[:60]!r} twice (a rewrite would keep only one)")
        out[key] = value
    return out


def _save(path: Path, data: dict[str, Any]) -> Path | None:
    """Back up the current file (if any) and replace it atomically; returns the backup path."""
    try:
        return _save_unchecked(path, data)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}", code=1) from exc


def _save_unchecked(path: Path, data: dict[str, Any]) -> Path | None:
    from tokmon.fsutil import atomic_write

    backup = None
    mode = None
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    try:
        payload = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate read from the file: keep it as an escape
        payload = (json.dumps(data, indent=2) + "\n").encode("ascii")
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if not mode & 0o200:
            raise CLIError(f"{path} is read-only; not touching it (make it writable first)",
                           code=1)  # fmt: skip
        stem = f"{path.name}.tokmon-backup-{time.strftime('%Y%m%d-%H%M%S')}"
        backup, n = path.with_name(stem), 1
        while backup.exists():
            backup, n = path.with_name(f"{stem}-{n}"), n + 1
        shutil.copy2(path, backup)
    atomic_write(path, payload)
    if mode is not None:
        try:
            os.chmod(path, mode)
        except OSError:  # pragma: no cover
            pass
    return backup


def handle_install(args: argparse.Namespace, ctx: Context) -> int:
    path = settings_path(ctx.env, args.settings)
    if args.settings is not None and not path.parent.is_dir():
        # the default ~/.claude may not exist before Claude Code's first run; a typo in an
        # explicit path must not make a folder tree
        raise CLIError(f"no folder {path.parent}: create it first, or fix the path")
    if path.is_symlink():  # dotfile managers: edit the target, keep the link
        path = path.resolve()
    data = _load(path)
    current = data.get("statusLine")
    previous_file = ctx.paths.state_dir / "claude-statusline-previous.json"
    out = ctx.stdout

    if args.uninstall:
        if current is None:
            out.write(f"no statusLine in {path}: nothing to do\n")
            return 0
        if not _is_ours(current):
            raise CLIError(f"the statusLine in {path} is not tokmon's; left it alone", code=1)
        restored = None
        try:
            restored = json.loads(previous_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            restored = None
        if isinstance(restored, dict) and not _is_ours(restored):
            data["statusLine"] = restored
        else:
            del data["statusLine"]
        backup = _save(path, data)
        previous_file.unlink(missing_ok=True)
        what = "restored the previous statusLine" if "statusLine" in data else "removed it"
        out.write(f"tokmon statusLine uninstalled from {path} ({what}; backup: {backup})\n")
        return 0

    if args.cmd:
        prefix = tokmon_command(ctx.env, args.cmd)
    else:
        # `<python> -S .../tokmon/statusline/fast.py`: skips site start-up (~4x faster here)
        from tokmon.statusline.main import fast_command

        prefix = fast_command()
    command = " ".join(_shell_word(w) for w in [*prefix, *STATUSLINE_ARGS])
    wanted: dict[str, Any] = {"type": "command", "command": command, "padding": 0}
    if args.refresh_interval is not None:
        if args.refresh_interval < 1:
            raise CLIError("--refresh-interval must be at least 1 second")
        wanted["refreshInterval"] = args.refresh_interval
    if current == wanted:
        out.write(f"tokmon statusLine already installed in {path}\n")
        return 0
    if current is not None and not _is_ours(current):
        if not args.force:
            shown = current.get("command") if isinstance(current, dict) else current
            raise CLIError(
                f"{path} already has a statusLine ({shown!r}); use --force to replace it "
                "(it is kept and restored by --uninstall)",
                code=1,
            )
        from tokmon.fsutil import atomic_write

        atomic_write(previous_file, json.dumps(current).encode("utf-8"))
    data["statusLine"] = wanted
    backup = _save(path, data)
    note = f"; backup: {backup}" if backup else ""
    out.write(f"tokmon statusLine installed in {path}: {command}{note}\n")
    return 0


def _shell_word(word: str) -> str:
    if os.name == "nt":  # pragma: no cover - Claude Code runs the command through a shell
        return f'"{word}"' if " " in word else word
    import shlex

    return shlex.quote(word)
