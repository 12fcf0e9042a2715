"""Entry point: ``tokmon`` and ``python -m tokmon``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the fast ``line`` path avoids importing the full CLI.  Without ``argv``
    (the ``tokmon`` script, ``python -m tokmon``) ``line`` ends the process itself once the
    line is out (:func:`tokmon.statusline.main.leave`)."""
    args = sys.argv[1:] if argv is None else argv
    if argv is None and not _utf8_streams():  # the program: UTF-8 on Windows pipes too
        from tokmon import oslite

        oslite.utf8_stdio()
    lead = 0
    while lead < len(args) and args[lead] == "--json":  # `tokmon --json line` = `line --json`
        lead += 1
    if lead < len(args) and args[lead] != "line" and args[lead].startswith("--"):
        misplaced = _global_before_line(args)
        if misplaced:  # the full CLI would show the overview instead of the line
            sys.stderr.write(
                f"tokmon: error: {misplaced} does not apply to `tokmon line` (the fast path "
                "takes --json and its own options: `tokmon line --help`)\n"
            )
            return 2
    if lead < len(args) and args[lead] == "line":
        from tokmon.statusline.main import leave, run_line

        code = run_line(args[lead + 1 :] + args[:lead])
        return leave(code) if argv is None else code  # no argv: we are the program
    if argv is None:  # the program: no collection during the start-up's imports
        import gc

        paused = gc.isenabled()
        if paused:
            gc.disable()  # tokmon.cli.main.run turns it back on (_start_over)
        _walk_early(args, lead)
        from tokmon.cli.main import run

        return run(args, program=True, gc_paused=paused)
    from tokmon.cli.main import run

    return run(args, program=argv is None)


_FIRST_SCANS = frozenset(("daily", "weekly", "monthly", "blocks", "session"))


def _walk_early(args: list[str], lead: int) -> None:
    """A report's change check begun now on a native thread, while the imports run. A first
    scan: the walk of the transcripts' dirs (:func:`tokmon.core.discovery.start_walks`).
    With this set of roots' ledger there already: the ``stat`` calls of its flat walk
    (:func:`tokmon.core.flatfile.start_check`; only its own file's bytes are used by the
    check, so a stale one costs nothing but the other core's time). Nothing for --demo, or
    if anything here fails (the check runs as it always did)."""
    if lead >= len(args) or args[lead] not in _FIRST_SCANS or "--demo" in args:
        return
    try:
        import os

        from tokmon.core.discovery import claude_roots
        from tokmon.paths import get_paths

        paths = get_paths()
        roots = claude_roots()
        try:
            names = os.listdir(paths.data_dir)
        except FileNotFoundError:
            names = []
        if any(n.startswith("ledger-") and n.endswith(".sqlite3") for n in names):
            from tokmon.core.digest import ledger_stem

            if os.environ.get("TOKMON_NO_LISTING_CACHE", "") in ("", "0"):  # (else no flat)
                from tokmon.core.flatfile import start_check

                start_check(os.fspath(paths.cache_dir / f"{ledger_stem(roots)}.flat"))
            return
        from tokmon.core.discovery import start_walks

        start_walks(r for r in roots if r.is_dir())
    except Exception:  # (an optimization only)
        return


def _utf8_streams() -> bool:
    """Whether stdout and stderr already write UTF-8 (so :func:`tokmon.oslite.utf8_stdio`,
    for Windows' code-page pipes, need not even be imported)."""
    for stream in (sys.stdout, sys.stderr):
        encoding = str(getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
        if encoding not in ("utf-8", "utf8"):
            return False
    return True


def _global_before_line(args: list[str]) -> str | None:
    """The first global option other than --json when only global options come before
    ``line`` (``tokmon --no-color line``), else None."""
    i, first = 0, None
    while i < len(args):
        a = args[i]
        name = a.split("=", 1)[0]
        if a == "line":
            return first
        if a == "--json":
            i += 1
        elif a in ("--no-color", "--demo"):
            first, i = first or a, i + 1
        elif name in ("--log-level", "--config"):
            first, i = first or name, i + (1 if "=" in a else 2)
        else:
            return None
    return None


if __name__ == "__main__":
    sys.exit(main())
