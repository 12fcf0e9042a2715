"""Start tokmon's own Python subprocesses without importing from the current directory.

``python -m pkg`` and ``python -c ...`` put the working directory first on ``sys.path``,
so a ``logging.py``, ``tempfile.py`` or ``tokmon/`` folder in a cloned repository would run
whenever a prompt, Claude Code or an editor starts tokmon there.  Every tokmon subprocess
is built here: ``-P`` (Python 3.11+) keeps the unsafe entry off ``sys.path``; older
interpreters get a tiny ``-c`` bootstrap that drops it before anything is imported (``site``
runs before the entry is added, so nothing from the cwd is imported first).  Callers also
start the child in a directory tokmon owns (:func:`safe_cwd`).

Stdlib only: the statusline fast path imports this module.
"""

from __future__ import annotations

import os
import sys

#: removes the cwd entries from sys.path, then runs the module like ``-m`` would
_BOOT = (
    "import sys;sys.path[:]=[p for p in sys.path if p not in ('','.')];"
    "import runpy;m=sys.argv.pop(1);runpy.run_module(m,run_name='__main__',alter_sys=True)"
)


def module_argv(module: str, *args: str, executable: str | None = None) -> list[str]:
    """argv that runs ``python -m module args`` with no cwd entry on ``sys.path``."""
    exe = executable or sys.executable
    if sys.version_info >= (3, 11):
        return [exe, "-P", "-m", module, *args]
    return [exe, "-c", _BOOT, module, *args]


def safe_cwd(preferred: str | None = None) -> str:
    """A directory to start children in: ``preferred`` when it exists, else the filesystem
    root (never the caller's working directory)."""
    if preferred and os.path.isdir(preferred):
        return preferred
    return os.path.abspath(os.sep)


def protect_spawned_children(environ: dict[str, str] | None = None) -> None:
    """Make Python children started by ``multiprocessing`` (the ``spawn`` start method on
    macOS and Windows runs ``python -c ...``) skip the cwd too: ``PYTHONSAFEPATH=1`` (3.11+)."""
    env = os.environ if environ is None else environ
    env.setdefault("PYTHONSAFEPATH", "1")
