"""Entry point: ``tokmon`` and ``python -m tokmon``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the fast ``line`` path avoids importing the full CLI.  Without ``argv``
    (the ``tokmon`` script, ``python -m tokmon``) ``line`` ends the process itself once the
    line is out (:func:`tokmon.statusline.main.leave`)."""
    args = sys.argv[1:] if argv is None else argv
    lead = 0
    while lead < len(args) and args[lead] == "--json":  # `tokmon --json line` = `line --json`
        lead += 1
    if lead < len(args) and args[lead] == "line":
        from tokmon.statusline.main import leave, run_line

        code = run_line(args[lead + 1 :] + args[:lead])
        return leave(code) if argv is None else code  # no argv: we are the program
    from tokmon.cli.main import run

    return run(args, program=argv is None)


if __name__ == "__main__":
    sys.exit(main())
