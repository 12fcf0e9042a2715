"""Run ``tokmon line`` under ``python -S``: the interpreter skips ``site`` (and every
``.pth`` file in site-packages), which is most of a Python start-up. ``tokmon line`` needs
only the standard library, so this is the quickest way to answer a status line:

    <python> -S <site-packages>/tokmon/statusline/fast.py line --format tmux

``tokmon line --fast-command`` prints the exact command for this installation. A leading
``line`` argument is accepted so the command is a drop-in for ``tokmon`` in ``tokmon line``.
Background refreshes still run with a normal interpreter (site enabled).
"""

import os
import sys


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))  # the dir holding the tokmon package
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        sys.path[0] = root  # never import siblings of this file as top-level modules
    else:
        sys.path.insert(0, root)
    from tokmon.statusline.main import run_line

    args = sys.argv[1:]
    if args[:1] == ["line"]:
        args = args[1:]
    return run_line(args)


if __name__ == "__main__":
    sys.exit(main())
