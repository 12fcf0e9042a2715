"""``tokmon line``: the fast path that answers a prompt from the snapshot.

Imports only the standard library at import time (argparse is avoided too:
it costs more than this whole command's budget).  It never waits for a
refresh unless asked (``--sync``/``--output``): a stale snapshot is
revalidated in-process when a few ``stat`` calls prove nothing changed, else a
detached single-flight refresher is started and the last value is printed
marked stale.  Any failure still prints a placeholder and exits 0; details
go to stderr only with ``--verbose``.
"""

# No `from __future__ import annotations`: importing __future__ is a cost on the fast path.

import sys
import time

from tokmon import oslite
from tokmon.statusline import formats
from tokmon.statusline.locate import (
    MAX_TRUST_SECONDS,
    ensure_private_dir,
    fast_snapshot_file,
    read_fast,
    tokmon_dirs,
    watch_unchanged,
)

USAGE = """\
usage: tokmon line [--format FMT] [--template TEXT] [--cwd PATH | --session ID]
                   [--claude] [--explain] [--timings] [--verbose] [--sync] [--output FILE]
                   [--no-refresh] [--max-width N] [--warning PCT] [--critical PCT]
                   [--style LEVEL=STYLE]

Print a one-line usage summary: the current 5-hour block (tokens, cost, % of the
token limit, time left, burn rate), today's cost and the active session of the
directory's project.

  -f, --format FMT     plain, tmux, starship, bash, zsh, fish, json, claude
                       (default: config line.format, else plain)
  -t, --template TEXT  e.g. "{block} | {today}"; fields: block seven_day today session
                       context block_tokens block_cost block_percent time_left burn
                       five_hour seven_day_percent today_cost today_tokens session_name
                       session_cost context_percent agents agents_list codex_primary
                       codex_secondary
  --cwd PATH           show the active session of PATH's project (default: current dir)
  --session ID         show this session instead
  --claude             Claude Code statusLine mode: read the hook's JSON on stdin
  --explain            say what each segment shows and where its numbers come from
  --timings            say what each step cost
  -v, --verbose        diagnostics on stderr
  --sync               when stale, refresh in this process (waits) instead of in the background
  --output FILE        write the line to FILE atomically (implies --sync; for shell hooks)
  --no-refresh         never start a refresh
  --max-width N        drop low-priority segments to fit N columns (--claude: $COLUMNS)
  --warning PCT        warning style from PCT % of the token limit (default: config, 80)
  --critical PCT       critical style from PCT % (default: config, 95)
  --style LEVEL=STYLE  LEVEL normal|warning|critical|stale, STYLE e.g. yellow or red,bold
"""

PROMPT_FORMATS = ("plain", "tmux", "starship", "bash", "zsh", "fish", "claude")


class UsageError(Exception):
    """Bad command-line arguments."""


class Options:
    """Parsed ``tokmon line`` arguments."""

    def __init__(self) -> None:
        self.format: str | None = None
        self.template: str | None = None
        self.cwd: str | None = None
        self.session: str | None = None
        self.claude = False
        self.explain = False
        self.timings = False
        self.verbose = False
        self.sync = False
        self.output: str | None = None
        self.no_refresh = False
        self.warning: float | None = None
        self.critical: float | None = None
        self.styles: dict[str, str] = {}
        self.max_width: int | None = None
        self.help = False
        self.fast_command = False


_VALUED = {
    "-f": "format", "--format": "format", "-t": "template", "--template": "template",
    "--cwd": "cwd", "--session": "session", "--output": "output", "--warning": "warning",
    "--critical": "critical", "--style": "style", "--max-width": "max_width",
}  # fmt: skip
_FLAGS = {
    "--claude": "claude", "--explain": "explain", "--timings": "timings", "-v": "verbose",
    "--verbose": "verbose", "--sync": "sync", "--no-refresh": "no_refresh", "-h": "help",
    "--help": "help", "--fast-command": "fast_command",
}  # fmt: skip


def _percent(flag: str, value: str) -> float:
    try:
        pct = float(value)
    except ValueError:
        raise UsageError(f"{flag} expects a number, got {value!r}") from None
    if not 0 <= pct <= 1000:
        raise UsageError(f"{flag} must be between 0 and 1000, got {value!r}")
    return pct


def parse_args(argv: list[str]) -> Options:
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in _FLAGS:
            setattr(opts, _FLAGS[arg], True)
            continue
        if arg == "--json":  # the global flag every other command takes
            opts.format = "json"
            continue
        name, value = arg, None
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
        if name not in _VALUED:
            raise UsageError(f"unrecognized argument {arg!r} (see tokmon line --help)")
        if value is None:
            if i >= len(argv):
                raise UsageError(f"{name} expects a value")
            value = argv[i]
            i += 1
        key = _VALUED[name]
        if key == "format":
            if value not in formats.FORMATS:
                raise UsageError(
                    f"unknown format {value!r} (choose from {', '.join(formats.FORMATS)})"
                )
            opts.format = value
        elif key == "max_width":
            if not value.isdigit() or int(value) < 1:
                raise UsageError(f"--max-width expects a positive number, got {value!r}")
            opts.max_width = int(value)
        elif key in ("warning", "critical"):
            setattr(opts, key, _percent(name, value))
        elif key == "style":
            level, sep, style = value.partition("=")
            if not sep or level not in ("normal", "warning", "critical", "stale"):
                raise UsageError(f"--style expects LEVEL=STYLE with LEVEL normal|warning|"
                                 f"critical|stale, got {value!r}")  # fmt: skip
            opts.styles[level] = style
        else:
            setattr(opts, key, value)
    if opts.cwd is not None and opts.session is not None:
        raise UsageError("--cwd and --session cannot be combined")
    if opts.output is not None:
        opts.sync = True
    return opts


class _Timer:
    def __init__(self, start: float) -> None:
        self.last = start
        self.steps: list[tuple[str, float]] = []

    def mark(self, step: str) -> None:
        now = time.perf_counter()
        self.steps.append((step, (now - self.last) * 1000.0))
        self.last = now


def _write_atomic(path: str, text: str) -> None:
    """For ``--output`` (a background job, off the prompt's hot path)."""
    import os
    from pathlib import Path

    from tokmon.fsutil import atomic_write

    ensure_private_dir(os.path.dirname(os.path.abspath(path)))
    atomic_write(Path(path), text.encode("utf-8"), fsync=False)


def fast_command() -> list[str]:
    """argv prefix that runs ``tokmon line`` fastest here: ``<python> -S .../fast.py``
    (append ``line`` and the usual options)."""
    import os

    fast = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fast.py")
    return [sys.executable, "-S", fast]


def _shell_quote(word: str) -> str:
    if word and all(c.isalnum() or c in "-_./:=+@%," for c in word):
        return word
    if sys.platform == "win32":  # cmd.exe and PowerShell know double quotes, not '...'
        return '"' + word + '"'
    return "'" + word.replace("'", "'\\''") + "'"


def run_line(
    argv: list[str],
    *,
    stdin=None,  # noqa: ANN001 - text streams, injectable by tests
    stdout=None,  # noqa: ANN001
    stderr=None,  # noqa: ANN001
    env: dict[str, str] | None = None,
) -> int:
    """Run ``tokmon line``; returns the exit code (0 whenever a line could be printed)."""
    start = time.perf_counter()
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        opts = parse_args(list(argv))
    except UsageError as exc:
        stderr.write(f"tokmon line: error: {exc}\n")
        return 2
    if opts.help:
        stdout.write(USAGE)
        return 0
    if opts.fast_command:
        stdout.write(" ".join(_shell_quote(w) for w in fast_command()) + "\n")
        return 0
    fmt = opts.format or "plain"
    try:
        return _run(opts, start, stdin, stdout, stderr, oslite.environ() if env is None else env)
    except formats.TemplateError as exc:
        stderr.write(f"tokmon line: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never break a prompt: placeholder, exit 0
        if opts.verbose:
            stderr.write(f"tokmon line: {type(exc).__name__}: {exc}\n")
        try:
            text = formats.render_placeholder(fmt, opts.styles)
            if fmt == "json":
                import json

                text = json.dumps(formats.json_payload(None, None, time.time(), True))
            if opts.output:
                _write_atomic(opts.output, text + "\n")
            else:
                stdout.write(text + "\n")
        except Exception:
            pass
        return 0


def _run(opts: Options, start: float, stdin, stdout, stderr, env) -> int:  # noqa: ANN001
    timer = _Timer(start)
    notes: list[str] = []
    dirs = tokmon_dirs(env)
    fast = fast_snapshot_file(dirs)
    timer.mark("arguments and paths")

    claude_info = None
    if opts.claude:
        from tokmon.statusline import claude

        payload, note = claude.read_payload(stdin if stdin is not None else sys.stdin)
        notes.append(note)
        timer.mark("read statusLine stdin")
        claude_info, official_note = claude.process(payload, env)
        if official_note:
            notes.append(official_note)
        timer.mark("record official figures")

    snap, mtime = read_fast(fast)
    now = time.time()
    timer.mark("read snapshot")
    stale = False
    if snap is None:
        notes.append(f"no usable snapshot at {fast}")
        need_refresh = True
    else:
        age = now - mtime
        stale_after = float((snap.get("settings") or {}).get("staleSeconds") or 10.0)
        need_refresh = False
        if age > stale_after:
            built_age = now - float(snap.get("generatedAt") or 0)
            if built_age < MAX_TRUST_SECONDS and watch_unchanged(snap):
                try:
                    oslite.utime(fast)
                    notes.append(f"snapshot {age:.0f}s old, nothing watched changed: revalidated")
                except OSError as exc:
                    notes.append(f"snapshot revalidated but not touched: {exc.strerror or exc}")
            else:
                stale, need_refresh = True, True
                notes.append(f"snapshot is {age:.0f}s old (stale after {stale_after:.0f}s)")
        timer.mark("check freshness")

    if need_refresh and not opts.no_refresh:
        from tokmon.statusline import refresher

        if opts.sync:
            ok, note = refresher.refresh_safely(env, wait=True, newer_than=now)
            notes.append(note)
            if ok:
                snap, mtime = read_fast(fast)
                stale = snap is None
            timer.mark("refresh (sync)")
        else:
            notes.append(refresher.spawn(dirs, env))
            timer.mark("start background refresh")

    fmt = opts.format or str((snap or {}).get("settings", {}).get("format") or "") or "plain"
    if fmt not in formats.FORMATS:
        fmt = "plain"
    if opts.claude and opts.format is None:
        fmt = "claude"
    if snap is not None and (opts.warning is not None or opts.critical is not None):
        settings = dict(snap.get("settings") or {})
        if opts.warning is not None:
            settings["warningPercent"] = opts.warning
        if opts.critical is not None:
            settings["criticalPercent"] = opts.critical
        snap = {**snap, "settings": settings}
    cwd = opts.cwd
    if cwd is None and opts.session is None:
        cwd = env.get("PWD") or _getcwd()
    if cwd and not cwd.isprintable():  # recorded paths are cleaned the same way (textsafe)
        from tokmon.textsafe import safe_text

        cwd = safe_text(cwd)
    segs = None
    if snap is not None or claude_info is not None:
        session_id = opts.session or (claude_info or {}).get("sessionId")
        segs = (
            formats.build_segments(
                snap or {},
                now,
                cwd=cwd,
                session_id=session_id,
                claude=claude_info,
                explain_times=opts.explain,
            )
            or None
        )  # nothing to show (no snapshot, empty payload): the placeholder
    width = opts.max_width
    if width is None and opts.claude:
        columns = str(env.get("COLUMNS") or "")
        width = int(columns) if columns.isdigit() else None
    if segs and width:
        segs = formats.fit(segs, width)
    if opts.explain:
        from tokmon.statusline import claude

        failed = claude.last_record_error(dirs)
        if failed is not None:
            notes.append(f"official figures: the last `line --claude` could not record them "
                         f"({formats.fmt_ago(now - failed[0])}): {failed[1]}")  # fmt: skip
    if fmt == "json":
        import json

        data = formats.json_payload(segs, snap or ({} if segs is None else {"generatedAt": now}),
                                    now, stale or snap is None)  # fmt: skip
        if opts.explain:
            data["explain"] = {s["key"]: s["explain"] for s in segs or []}
            data["notes"] = [n for n in notes if n]
        text = json.dumps(data, ensure_ascii=False)
    elif segs is None:
        text = formats.render_placeholder(fmt, opts.styles)
    else:
        text = formats.render(segs, fmt, opts.styles, opts.template, stale or snap is None)
    timer.mark("render")

    if opts.output:
        _write_atomic(opts.output, text + "\n")
    else:
        stdout.write(text + "\n")
    timer.mark("write")

    if opts.explain and fmt != "json":
        stdout.write(_fit_explain(_explain(segs, snap, mtime, now, fast, notes), stdout, env))
    if opts.timings:
        total = sum(ms for _, ms in timer.steps)
        lines = [f"  {step:<28} {ms:8.2f} ms" for step, ms in timer.steps]
        stdout.write("timings (after interpreter start):\n" + "\n".join(lines)
                     + f"\n  {'total':<28} {total:8.2f} ms\n")  # fmt: skip
    if opts.verbose:
        for note in notes:
            if note:
                stderr.write(f"tokmon line: {note}\n")
    return 0


def leave(code: int) -> int:
    """End the process that ran ``tokmon line`` with ``code`` now, skipping the interpreter's
    teardown (1.4 ms under ``python -S``, as long as the rest of a warm ``line``; more with
    ``site``), when nothing is left for that teardown to do: stdout and stderr flushed, no
    ``atexit`` callback, :mod:`threading` and :mod:`sqlite3` never loaded (no thread to
    join, no connection for the collector to close: a ``--sync`` refresh loads them).  Otherwise returns ``code`` for the normal exit.  Only for the program's
    entry points (fast.py, ``tokmon`` / ``python -m tokmon``), never for in-process callers."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        import atexit

        pending = atexit._ncallbacks()  # CPython's; elsewhere: the normal exit
    except Exception:  # a closed pipe (the normal exit reports it), or not CPython
        return code
    if pending or "threading" in sys.modules or "sqlite3" in sys.modules:
        return code  # threads (or threading's own exit hooks) to join, a database to close
    native = sys.modules.get("posix") or sys.modules.get("nt")
    exit_now = getattr(native, "_exit", None)
    if exit_now is None:  # pragma: no cover - neither posix nor nt
        return code
    exit_now(code)
    return code  # pragma: no cover - not reached


def _getcwd() -> str | None:
    try:
        return oslite.getcwd()
    except OSError:
        return None


def _fit_explain(text, stdout, env) -> str:  # noqa: ANN001
    """The explanation broken at spaces to the terminal's width (a pipe gets it as it is);
    a line's continuation indented by two spaces."""
    try:
        if not stdout.isatty():
            return text
        columns = str(env.get("COLUMNS") or "")
        import os

        width = int(columns) if columns.isdigit() else os.get_terminal_size(stdout.fileno())[0]
    except (AttributeError, ValueError, OSError):
        return text
    import textwrap

    out = []
    for line in text.splitlines():
        out += textwrap.wrap(
            line,
            max(width, 20),
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,  # a long path stays whole: the terminal folds it
        ) or [""]
    return "\n".join(out) + "\n"


def _explain(segs, snap, mtime, now, fast, notes) -> str:  # noqa: ANN001
    out = []
    if snap is None:
        out.append(f"snapshot: none yet at {fast}; a placeholder is shown until the first refresh")
    else:
        built = now - float(snap.get("generatedAt") or 0)
        out.append(
            f"snapshot: {fast}, built {formats.fmt_ago(built)} from the transcripts, "
            f"last verified {formats.fmt_ago(now - mtime)}"
        )
        settings = snap.get("settings") or {}
        limit = settings.get("tokenLimit")
        out.append(
            "token limit: "
            + (f"{int(limit):,} tokens ({settings.get('tokenLimitSource')})" if limit else "none")
            + f"; warning from {settings.get('warningPercent')}%, critical from "
            f"{settings.get('criticalPercent')}% (official 5-hour utilisation wins when known)"
        )
    for seg in segs or []:
        out.append(f"{seg['key']}: {seg['text']!r} [{seg['level']}]: {seg['explain']}")
    out.append(f"{formats.STALE_MARK!r} after the line = stale value, a refresh is on its way; "
               "'~' = local estimate; '[age]' = official figure from Claude Code and its age")  # fmt: skip
    out += [f"note: {n}" for n in notes if n]
    return "\n".join(out) + "\n"
