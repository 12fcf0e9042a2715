"""Run ``tokmon line`` under ``python -S``: the interpreter skips ``site`` (and every
``.pth`` file in site-packages), which is most of a Python start-up. ``tokmon line`` needs
only the standard library, so this is the quickest way to answer a status line:

    <python> -S <site-packages>/tokmon/statusline/fast.py line --format tmux

``tokmon line --fast-command`` prints the exact command for this installation. A leading
``line`` argument is accepted so the command is a drop-in for ``tokmon`` in ``tokmon line``.
Background refreshes still run with a normal interpreter (site enabled).

This file is compiled on every run (a script gets no ``.pyc``) and imports nothing but
:mod:`sys`: not even :mod:`os`, which ``python -S`` has not loaded and which costs more than
a millisecond (see :mod:`tokmon.oslite`).  When the line is printed it leaves with
``_exit`` instead of the interpreter's teardown (:func:`tokmon.statusline.main.leave`).
"""

import sys


def _dirname(path: str) -> str:
    """``os.path.dirname`` of a normalized absolute path (``/``, and ``\\`` on Windows)."""
    cut = max(path.rfind("/"), path.rfind("\\") if sys.platform == "win32" else -1)
    return path[:cut] if cut > 0 else path


def main() -> int:
    here = _dirname(__file__)  # absolute: Python 3.9+ makes the script's __file__ absolute
    if sys.path and sys.path[0] == here:  # the script's dir (real, normalized): the usual case
        sys.path[0] = _dirname(_dirname(here))  # never import this file's siblings top-level
    else:  # a symlinked or unnormalized path, or -P/-I: resolve them the way os.path does
        import os

        here = os.path.dirname(os.path.abspath(__file__))
        root = os.path.dirname(os.path.dirname(here))  # the dir holding the tokmon package
        if sys.path and os.path.abspath(sys.path[0] or ".") == here:
            sys.path[0] = root
        else:
            sys.path.insert(0, root)
    from tokmon import oslite  # (loaded by the next import anyway)
    from tokmon.statusline.main import leave, run_line

    oslite.utf8_stdio()  # Windows: Claude Code reads UTF-8 from the pipe

    args = sys.argv[1:]
    if args[:1] == ["line"]:
        args = args[1:]
    return leave(run_line(args))


if __name__ == "__main__":
    sys.exit(main())
