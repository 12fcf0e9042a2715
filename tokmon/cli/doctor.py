"""`tokmon doctor`: check the install and every set-up, and print the fix for each problem.

The `brew doctor` / `starship explain` habit: one line per check (``ok``, ``PROBLEM`` or
``note``), and under each problem the command that fixes it. ``--json`` gives the same as
``{"ok", "problems", "checks": [{"name", "status", "detail", "fix"}]}``. The exit code is 1
when any problem was found.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tokmon.cli.context import Context
from tokmon.core.discovery import claude_dir_problem

DISTRIBUTION = (
    "tokmon-cli"  # tokmon's name on the package index (PyPI's `tokmon` is another project)
)
INSTALL_HINT = f"pipx install {DISTRIBUTION}   (or from a clone: python3 scripts/install.py)"
SNAPSHOT_MAX_AGE = 3600.0  # seconds; older while a hook is installed means refreshes fail
SERVER_TIMEOUT = 60.0

OK, PROBLEM, NOTE = "ok", "problem", "note"


@dataclass
class Check:
    """The outcome of one check."""

    name: str
    status: str
    detail: str
    fix: str = ""


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "doctor",
        parents=[parent],
        help="check the install and set-up; print the fix for each problem",
        description="Check the install, the transcript roots, the config, the ledger, the Claude "
        "Code statusLine, the snapshot, the shell and tmux set-up and the server. "
        "Exit code 1 when a problem is found.",
    )
    p.add_argument("--no-server", action="store_true", help="skip starting `tokmon serve`")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, ctx: Context) -> int:
    checks = run_checks(ctx.env, server=not args.no_server, config_path=ctx.config_path)
    problems = [c for c in checks if c.status == PROBLEM]
    if ctx.json_output:
        doc = {"ok": not problems, "problems": len(problems), "checks": [asdict(c) for c in checks]}
        ctx.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        from tokmon.cli.render import terminal_width

        ctx.stdout.write(render(checks, terminal_width(ctx)))
    return 1 if problems else 0


def render(checks: list[Check], columns: int | None = None) -> str:
    """Human output: one line per check, the fix indented below each problem; with
    ``columns`` (a terminal) long details wrap under their column instead of at the edge
    (below the check's name when that column would be narrower than 30)."""
    import textwrap

    width = max(len(c.name) for c in checks)
    pad = " " * (9 + width + 2)
    out: list[str] = []

    def put(first: str, text: str) -> None:
        if columns is None:
            out.append(first + text)
            return
        indent = pad
        if columns - len(pad) < 30:  # narrow: the details below the name, indented by two
            if first.strip():
                out.append(first.rstrip())
            first = indent = "  "
        # a word wider than the room left (a long path) stays whole on a line of its own:
        # the terminal folds it, and copying it still gives the whole path
        lines = textwrap.wrap(text, max(columns - len(indent), 10), break_long_words=False,
                              break_on_hyphens=False) or [""]  # fmt: skip
        out.append(first + lines[0])
        out.extend(indent + line for line in lines[1:])

    for c in checks:
        mark = {OK: "ok     ", PROBLEM: "PROBLEM", NOTE: "note   "}[c.status]
        put(f"{mark}  {c.name:<{width}}  ", c.detail)
        if c.fix:
            label = "fix" if c.status == PROBLEM else "how"
            put(pad, f"{label}: {c.fix}")
    n = sum(c.status == PROBLEM for c in checks)
    out.append("")
    out.append("no problems found" if not n else f"{n} problem(s) found; fixes above")
    return "\n".join(out) + "\n"


def run_checks(
    env: Mapping[str, str], *, server: bool = True, config_path: Path | None = None
) -> list[Check]:
    """Every check, in order; never raises."""
    from tokmon.paths import get_paths

    paths = get_paths(dict(env))
    checks: list[Check] = []
    for fn in (
        lambda: check_install(env),
        lambda: check_config(paths, config_path),
        lambda: check_transcripts(env),
        lambda: check_ledger(env, paths),
    ):
        checks.append(_safe(fn))
    status = _safe(lambda: check_statusline(env))
    shell = _safe(lambda: check_shell(env))
    tmux = _safe(lambda: check_tmux(env))
    hooked = any(c.status != NOTE for c in (status, shell, tmux))
    checks += [status, _safe(lambda: check_snapshot(env, hooked)), shell, tmux]
    if server:
        checks.append(_safe(lambda: check_server(env)))
    return checks


def _safe(fn: Any) -> Check:
    try:
        return fn()  # type: ignore[no-any-return]
    except Exception as exc:  # a check must never stop the others
        return Check(
            "internal",
            PROBLEM,
            f"a check failed: {exc.__class__.__name__}: {exc}",
            "please report this",
        )


# --------------------------------------------------------------------------- install


def check_install(env: Mapping[str, str]) -> Check:
    """Import path, version and distribution name; the `tokmon` command on PATH."""
    import tokmon

    where = os.path.dirname(os.path.abspath(tokmon.__file__))
    dists, versions = _owners(Path(where).parent)
    ver = tokmon.__version__
    if not dists:
        return Check(
            "install",
            PROBLEM,
            f"tokmon {ver} runs from {where} but is not installed (no package metadata)",
            INSTALL_HINT,
        )
    wrong = [d for d in dists if d.lower().replace("_", "-") != DISTRIBUTION]
    if wrong:
        return Check(
            "install",
            PROBLEM,
            f"the `tokmon` package here belongs to {', '.join(wrong)}, not {DISTRIBUTION} "
            "(PyPI's `tokmon` is an unrelated project)",
            f"pip uninstall {' '.join(wrong)} && {INSTALL_HINT}",
        )
    meta_ver = versions[dists[0]]
    if meta_ver != ver:
        return Check(
            "install",
            PROBLEM,
            f"installed metadata says {dists[0]} {meta_ver} but the "
            f"code in {where} is {ver} (a stale install)",
            f"reinstall: {INSTALL_HINT}",
        )
    cmd = shutil.which("tokmon", path=env.get("PATH"))
    from tokmon.core.engine.check import native_check_status  # the warm check's stat calls
    from tokmon.core.parser import native_status  # the line scanner: native or pure Python

    detail = (
        f"tokmon {ver} (distribution {dists[0]}) from {where}; scanner {native_status()}; "
        f"warm check {native_check_status()}"
    )
    if cmd is None:
        return Check(
            "install",
            NOTE,
            detail + "; no `tokmon` command on PATH",
            "add the install's bin dir to PATH (pipx: `pipx ensurepath`; "
            "scripts/install.py: ~/.local/bin)",
        )
    return Check("install", OK, f"{detail}; command {cmd}")


def _owners(source_root: Path) -> tuple[list[str], dict[str, str]]:
    """Installed distributions that provide the ``tokmon`` package, with their versions.

    ``*.egg-info`` build leftovers in the source tree (seen when running from a clone) are
    not installs and are ignored.
    """
    from importlib.metadata import distributions

    names: dict[str, str] = {}
    for d in distributions():
        try:
            name = d.metadata["Name"] or ""
            top = (d.read_text("top_level.txt") or "").split()
            files = d.files or []
        except Exception:  # a broken metadata dir is not ours to judge
            continue
        if "tokmon" not in top and not any(str(f).startswith("tokmon/") for f in files):
            continue
        meta = getattr(d, "_path", None)
        if (
            isinstance(meta, Path)
            and meta.suffix == ".egg-info"
            and meta.resolve().parent == source_root.resolve()
        ):
            continue
        names.setdefault(name.lower().replace("_", "-"), d.version)
    return sorted(names), names


# --------------------------------------------------------------------------- config


def check_config(paths: Any, override: Path | None) -> Check:
    from tokmon.config import check_file, section_problems

    path = override or paths.config_file
    _values, problems = check_file(path)
    if not any("invalid TOML" in p for p in problems):
        problems += section_problems(path)
    if problems:
        return Check(
            "config",
            PROBLEM,
            "; ".join(problems),
            f"`tokmon config validate` lists them; fix each with `tokmon config set KEY "
            f"VALUE` or `tokmon config reset KEY` (or edit {path})",
        )
    return Check("config", OK, f"{path}" + ("" if path.exists() else " (not present: defaults)"))


# --------------------------------------------------------------------------- transcripts


def check_transcripts(env: Mapping[str, str]) -> Check:
    from tokmon.core.discovery import claude_roots, transcript_stats

    problem = claude_dir_problem(env)
    if problem:
        return Check(
            "transcripts",
            PROBLEM,
            problem,
            "export CLAUDE_CONFIG_DIR=<the Claude config dir that holds projects/> "
            "(comma-separated for several), or unset it to use ~/.claude",
        )
    roots = [r for r in claude_roots(dict(env)) if r.is_dir()]
    if not roots:
        where = ", ".join(str(r) for r in claude_roots(dict(env)))
        return Check(
            "transcripts",
            PROBLEM,
            f"no Claude Code transcripts (looked in {where})",
            "run Claude Code once, or set CLAUDE_CONFIG_DIR; `tokmon --demo` shows a demo",
        )
    counts = [f"{r} ({len(transcript_stats(r))} files)" for r in roots]
    return Check("transcripts", OK, ", ".join(counts))


# --------------------------------------------------------------------------- ledger


def check_ledger(env: Mapping[str, str], paths: Any) -> Check:
    import sqlite3

    from tokmon.core.discovery import claude_roots
    from tokmon.core.ledger import (
        SCHEMA_VERSION,
        LedgerDB,
        LedgerError,
        LedgerNewer,
        LedgerUnavailable,
        json_ledger_path,
        ledger_path,
    )

    path = ledger_path(paths.data_dir, claude_roots(dict(env)))
    if not path.exists():
        old = json_ledger_path(path)
        if old.exists():
            return Check("ledger", OK, f"{old} (the next report moves it into {path.name})")
        return Check("ledger", OK, f"{path} not created yet (the first report creates it)")
    try:
        db = LedgerDB(path, readonly=True)
        try:
            n, files = db.count(), len(db.load_state().files)
        finally:
            db.close()
    except LedgerNewer as exc:  # never to be moved aside: a newer tokmon is using it
        return Check(
            "ledger",
            PROBLEM,
            f"{path}: {exc}",
            f"upgrade tokmon (`pipx upgrade {DISTRIBUTION}`); until then reports come from "
            "the transcripts only and the ledger is left untouched",
        )
    except LedgerUnavailable as exc:  # nothing says it is broken: never advise a rebuild
        return Check(
            "ledger",
            PROBLEM,
            f"{path} cannot be opened now: {exc}",
            f"check the free space and the permissions of {path.parent} (tokmon needs to "
            "create files there); reports meanwhile are not saved",
        )
    except (LedgerError, sqlite3.Error) as exc:
        return Check(
            "ledger",
            PROBLEM,
            f"{path}: {exc}",
            f"keep a copy (`mv {path} {path}.bad`) and run `tokmon daily`: it is rebuilt "
            "from the transcripts (history of deleted transcripts is only in the copy)",
        )
    return Check(
        "ledger",
        OK,
        f"{path} (SQLite, schema {SCHEMA_VERSION}, {n:,} records from {files:,} files)",
    )


# --------------------------------------------------------------------------- statusLine


def check_statusline(env: Mapping[str, str]) -> Check:
    from tokmon.cli.shell import settings_path

    path = settings_path(env)
    how = "tokmon install-statusline"
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Check("statusline", NOTE, f"no {path} (Claude Code's statusLine not set up)", how)
    except OSError as exc:
        return Check(
            "statusline", PROBLEM, f"cannot read {path}: {exc.strerror}", f"chmod u+rw {path}"
        )
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return Check(
            "statusline",
            PROBLEM,
            f"{path} is not valid JSON (Claude Code ignores it)",
            f"repair {path} (a backup may sit beside it), then {how}",
        )
    sl = data.get("statusLine") if isinstance(data, dict) else None
    command = sl.get("command") if isinstance(sl, dict) else None
    if not isinstance(command, str) or not command.strip():
        return Check("statusline", NOTE, f"no statusLine command in {path}", how)
    if "tokmon" not in command:
        return Check(
            "statusline",
            NOTE,
            f"the statusLine is another tool's: {command[:60]}",
            f"{how} --force (the old one is restored by --uninstall)",
        )
    fix = f"{how} (rewrites the command for this install)"
    try:
        # Windows commands use "..." quoting and backslashes: split them the non-POSIX way
        argv = [w.strip('"') for w in shlex.split(command, posix=os.name != "nt")]
    except ValueError:
        return Check("statusline", PROBLEM, f"cannot parse the statusLine command {command!r}", fix)
    exe = argv[0] if argv else ""
    if not (os.path.isabs(exe) and os.access(exe, os.X_OK)) and not shutil.which(
        exe, path=env.get("PATH")
    ):
        return Check(
            "statusline",
            PROBLEM,
            f"the statusLine runs {exe}, which does not exist (tokmon was moved or uninstalled)",
            fix,
        )
    for word in argv[1:]:
        if word.endswith(".py") and not os.path.exists(word):
            return Check(
                "statusline", PROBLEM, f"the statusLine runs {word}, which does not exist", fix
            )
    import tempfile
    import uuid

    sid = f"tokmon-doctor-{uuid.uuid4()}"
    # run it as Claude Code does, in a project dir (an empty one: nothing importable by accident)
    with tempfile.TemporaryDirectory(prefix="tokmon-doctor-") as cwd:
        payload = json.dumps(
            {
                "session_id": sid,
                "cwd": cwd,
                "model": {"id": "claude-sonnet-4-5", "display_name": "Sonnet"},
                "rate_limits": {"five_hour": {"used_percentage": 1.0}},
            }
        )
        try:
            proc = subprocess.run(
                command,
                shell=True,
                input=payload,
                capture_output=True,
                text=True,
                encoding="utf-8",  # what tokmon writes to a pipe on every system
                errors="replace",
                env=dict(env),
                timeout=60,
                cwd=cwd,
            )
        except subprocess.TimeoutExpired:
            return Check(
                "statusline", PROBLEM, "the statusLine command did not answer in 60 s", fix
            )
    err = (proc.stderr or "").strip().splitlines()
    if proc.returncode != 0 or not proc.stdout.strip():
        why = err[-1] if err else f"exit code {proc.returncode}, no output"
        return Check("statusline", PROBLEM, f"the statusLine command fails: {why[:200]}", fix)
    if err:
        return Check("statusline", PROBLEM, f"the statusLine command warns: {err[-1][:200]}", fix)
    if not _recorded_and_removed(env, sid):
        return Check(
            "statusline",
            PROBLEM,
            "the statusLine command runs but does not record Claude Code's official "
            "5-hour/7-day figures",
            f"`tokmon line --explain` shows why; then {fix}",
        )
    return Check("statusline", OK, f"{path}: runs and records ({command[:80]})")


def _recorded_and_removed(env: Mapping[str, str], sid: str) -> bool:
    """Whether the probe session reached the official-figures store; removes it again."""
    from tokmon.core import official
    from tokmon.fsutil import atomic_write, locked
    from tokmon.paths import get_paths

    paths = get_paths(dict(env))
    if official.for_session(paths, sid) is None:
        return False
    path = paths.official_file
    try:
        with locked(path.with_name(path.name + ".lock"), timeout=5.0):
            data = json.loads(path.read_bytes())
            data.get("sessions", {}).pop(sid, None)
            atomic_write(path, json.dumps(data, separators=(",", ":")).encode("utf-8"), fsync=False)
    except (OSError, ValueError, AttributeError):
        pass  # the probe stays; it ages out like any other session
    return True


# --------------------------------------------------------------------------- snapshot


def check_snapshot(env: Mapping[str, str], hooked: bool) -> Check:
    from tokmon.statusline.locate import fast_snapshot_file, tokmon_dirs

    path = Path(fast_snapshot_file(tokmon_dirs(dict(env))))
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return Check(
            "snapshot",
            NOTE if not hooked else OK,
            f"{path} not written yet (the first `tokmon line` writes it)",
            "tokmon line --sync" if not hooked else "",
        )
    shown = _age(age)
    if age > SNAPSHOT_MAX_AGE and hooked:
        return Check(
            "snapshot",
            PROBLEM,
            f"{path} is {shown} old although a prompt/statusline "
            "hook is set up (its background refresh is failing)",
            "run `tokmon line --sync`, then `tokmon line --explain` to see why",
        )
    return Check("snapshot", OK, f"{path}, {shown} old")


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h"
    return f"{s // 86400} days"


# --------------------------------------------------------------------------- shell / tmux

_INIT = re.compile(r"""([^\s"'`(;|&$]*tokmon[^\s"'`);|&]*)\s+init\s+(bash|zsh|fish)""")


def _home(env: Mapping[str, str]) -> Path:
    from tokmon.paths import user_home

    return Path(user_home(env) or Path.home())


def _resolves(word: str, env: Mapping[str, str]) -> bool:
    word = os.path.expanduser(word)
    if os.sep in word or "/" in word:
        return os.path.isfile(word) and os.access(word, os.X_OK)
    return shutil.which(word, path=env.get("PATH")) is not None


def check_shell(env: Mapping[str, str]) -> Check:
    home = _home(env)
    zdot = Path(env.get("ZDOTDIR") or home)
    xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    rcs = {
        "bash": [home / ".bashrc", home / ".bash_profile"],
        "zsh": [zdot / ".zshrc"],
        "fish": [xdg / "fish" / "config.fish"],
    }
    found: list[tuple[Path, str, str]] = []
    for files in rcs.values():
        for rc in files:
            try:
                text = rc.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for m in _INIT.finditer(text):
                found.append((rc, m.group(1), m.group(2)))
    shell = os.path.basename(env.get("SHELL") or "bash")
    if not found:
        line = {"fish": "tokmon init fish | source"}.get(shell, f'eval "$(tokmon init {shell})"')
        rc = (rcs.get(shell) or rcs["bash"])[0]
        return Check("shell", NOTE, "no prompt hook (optional)", f"add `{line}` to {rc}")
    for rc, word, sh in found:
        if not _resolves(word, env):
            return Check(
                "shell",
                PROBLEM,
                f"{rc} runs `{word} init {sh}` but `{word}` is not "
                "found (the prompt hook silently does nothing)",
                f"{INSTALL_HINT}; or put the full path of tokmon in {rc}",
            )
        proc = subprocess.run(
            [shutil.which(word, path=env.get("PATH")) or os.path.expanduser(word), "init", sh],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=dict(env),
            timeout=60,
        )
        if proc.returncode != 0 or "tokmon" not in proc.stdout:
            err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return Check(
                "shell",
                PROBLEM,
                f"`{word} init {sh}` from {rc} fails: {err[:200]}",
                f"reinstall: {INSTALL_HINT}",
            )
    return Check("shell", OK, ", ".join(f"{sh} hook in {rc}" for rc, _w, sh in found))


def check_tmux(env: Mapping[str, str]) -> Check:
    home = _home(env)
    xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    confs = [home / ".tmux.conf", xdg / "tmux" / "tmux.conf"]
    for conf in confs:
        try:
            text = conf.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "tokmon" not in text:
            continue
        for raw in text.splitlines():
            ln = raw.strip()
            if ln.startswith("#") or "tokmon" not in ln:
                continue
            m = re.match(r"(?:run-shell|run)\s+(?:-b\s+)?['\"]?([^'\"\s]+tokmon\.tmux)", ln)
            if m and not os.path.isfile(os.path.expanduser(m.group(1))):
                return Check(
                    "tmux",
                    PROBLEM,
                    f"{conf} runs {m.group(1)}, which does not exist",
                    "point run-shell at integrations/tmux/tokmon.tmux of your clone "
                    "(see integrations/tmux/README.md)",
                )
            cmd = re.search(r"@tokmon_command\s+['\"]?([^'\"]+)", ln)
            if cmd:
                word = cmd.group(1).split()[0]
                if not _resolves(word, env):
                    return Check(
                        "tmux",
                        PROBLEM,
                        f"{conf}: @tokmon_command runs {word}, which is not found",
                        f"fix @tokmon_command, or {INSTALL_HINT}",
                    )
        if not shutil.which("tokmon", path=env.get("PATH")):
            return Check(
                "tmux",
                PROBLEM,
                f"{conf} uses tokmon but no `tokmon` is on PATH "
                "(the plugin falls back to `python3 -m tokmon`, which may not import)",
                f"{INSTALL_HINT}; or set @tokmon_command",
            )
        return Check("tmux", OK, f"set up in {conf}")
    return Check("tmux", NOTE, "no tmux set-up (optional)", "see integrations/tmux/README.md")


# --------------------------------------------------------------------------- server


def check_server(env: Mapping[str, str]) -> Check:
    """Start `tokmon serve --jsonl` as editors do (the `tokmon` on PATH, else this install)
    and ask for tokmon/version."""
    import tokmon
    from tokmon.safepython import module_argv, safe_cwd

    found = shutil.which("tokmon", path=env.get("PATH"))
    argv = [found] if found else module_argv("tokmon")  # never `-m` from the cwd
    argv += ["serve", "--jsonl"]
    fix = "run `tokmon serve --jsonl --log-level debug` to see why; reinstall: " + INSTALL_HINT
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=dict(env),
            cwd=safe_cwd(),
        )
    except OSError as exc:
        return Check("server", PROBLEM, f"cannot start {argv[0]}: {exc.strerror or exc}", fix)
    try:
        out, err = proc.communicate(
            '{"id": 1, "method": "tokmon/version"}\n', timeout=SERVER_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return Check(
            "server",
            PROBLEM,
            f"`tokmon serve --jsonl` did not answer in {SERVER_TIMEOUT:.0f} s",
            fix,
        )
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("id") == 1:
            res = msg.get("result")
            if isinstance(res, dict) and res.get("version") == tokmon.__version__:
                return Check(
                    "server",
                    OK,
                    f"`{' '.join(argv)}` answers tokmon/version "
                    f"{res['version']} (protocol {res.get('protocol')})",
                )
            return Check(
                "server", PROBLEM, f"`{argv[0]}` is another tokmon version: {line[:200]}", fix
            )
    last = (err.strip().splitlines() or [f"exit code {proc.returncode}, no answer"])[-1]
    return Check("server", PROBLEM, f"`{' '.join(argv)}` gave no answer: {last[:200]}", fix)
