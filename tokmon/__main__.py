"""Entry point: ``tokmon`` and ``python -m tokmon``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the fast ``line`` path avoids importing the full CLI."""
    args = sys.argv[1:] if argv is None else argv
    lead = 0
    while lead < len(args) and args[lead] == "--json":  # `tokmon --json line` = `line --json`
        lead += 1
    if lead < len(args) and args[lead] == "line":
        from tokmon.statusline.main import run_line

        return run_line(args[lead + 1 :] + args[:lead])
    from tokmon.cli.main import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
