"""The few :mod:`os` functions the statusline's fast paths need, without importing :mod:`os`.

Under ``python -S`` (the fast command) :mod:`os` is not loaded at start-up, and importing it
(with ``_collections_abc``, ``stat`` and ``posixpath``) costs more than a millisecond: most
of the fast command's budget over a bare interpreter.  The system calls come from the
built-in module :mod:`os` takes them from (``posix``, ``nt`` on Windows; always loaded), so
they are :mod:`os`'s own; on POSIX the path helpers below repeat :mod:`posixpath`'s rules
for ``str`` paths.  Anywhere else (Windows), or once :mod:`os` is loaded anyway (the console
script: ``site`` imported it), the path helpers and the environment are :mod:`os`'s own.
Standard library only, like the rest of the fast path.
"""

import sys

TYPE_CHECKING = False  # no typing import on the statusline path
if TYPE_CHECKING:
    from collections.abc import Mapping

NATIVE = sys.platform != "win32" and "os" not in sys.modules
"""True when this module stands in for :mod:`os` (POSIX, :mod:`os` not loaded yet)."""

_environ: "dict[str, str] | None" = None

# os's system calls are these built-in modules' own functions (always loaded): the same
# objects whether or not os is.
if sys.platform == "win32":
    import nt as _calls
else:
    import posix as _calls

stat = _calls.stat
fstat = _calls.fstat
utime = _calls.utime
getcwd = _calls.getcwd
isatty = _calls.isatty
read = _calls.read
unlink = _calls.unlink
open = _calls.open  # noqa: A001 - os.open, not the builtin
close = _calls.close
_NONBLOCK = getattr(_calls, "O_NONBLOCK", 0)  # (a FIFO's open would wait for a writer)


def get_blocking(fd: int) -> bool:
    """:func:`os.get_blocking` (AttributeError on Windows before Python 3.12)."""
    return _calls.get_blocking(fd)  # type: ignore[attr-defined, unused-ignore]


def set_blocking(fd: int, blocking: bool) -> None:
    """:func:`os.set_blocking`."""
    _calls.set_blocking(fd, blocking)  # type: ignore[attr-defined, unused-ignore]


if NATIVE:
    name = "posix"
    sep = "/"
    O_READ = _calls.O_RDONLY

    def environ() -> "Mapping[str, str]":
        """The process environment decoded as :data:`os.environ` does (read-only use)."""
        global _environ
        if _environ is None:
            enc, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
            raw = _calls.environ  # bytes on POSIX (this branch), str on Windows (never here)
            _environ = {
                k.decode(enc, errors): v.decode(enc, errors)  # type: ignore[attr-defined, unused-ignore]
                for k, v in raw.items()
            }
        return _environ

    def join(a: str, *parts: str) -> str:
        """:func:`posixpath.join` for ``str``."""
        path = a
        for b in parts:
            if b.startswith("/"):
                path = b
            elif not path or path.endswith("/"):
                path += b
            else:
                path += "/" + b
        return path

    def expanduser(path: str) -> str:
        """:func:`posixpath.expanduser` for ``str`` (``~user`` and a missing ``HOME`` are
        left to :mod:`posixpath`)."""
        if not path.startswith("~"):
            return path
        i = path.find("/", 1)
        if i < 0:
            i = len(path)
        home = environ().get("HOME") if i == 1 else None
        if home is None:
            import os

            return os.path.expanduser(path)
        home = home.rstrip("/")
        return (home + path[i:]) or "/"

else:  # Windows, or os already loaded (the console script)
    import os as _os

    name = _os.name
    sep = _os.sep
    O_READ = _os.O_RDONLY | getattr(_os, "O_BINARY", 0)  # Windows: no newline translation

    def join(a: str, *parts: str) -> str:
        return _os.path.join(a, *parts)

    def expanduser(path: str) -> str:
        return _os.path.expanduser(path)

    def environ() -> "Mapping[str, str]":
        """:data:`os.environ` itself."""
        return _os.environ


#: Windows: stdout/stderr to a pipe or a file use the ANSI code page (see :func:`utf8_stdio`)
WINDOWS_STDIO = sys.platform == "win32"


def utf8_stdio() -> None:
    """Make ``sys.stdout``/``sys.stderr`` write UTF-8 where they would use Windows' ANSI code
    page (a pipe or a file: cp1252 and the like), which has no box drawing, ``…`` or ``█`` and
    few non-Latin letters: a report would stop with UnicodeEncodeError and the statusline
    fall back to its placeholder. UTF-8 is what ccusage writes and what Claude Code and
    editors read. The console (already UTF-8), an explicit ``PYTHONIOENCODING`` or UTF-8
    mode are left alone, and so is every stream on POSIX. For the program's entry points
    only (``tokmon``, ``python -m tokmon``, the statusline's fast command)."""
    if not WINDOWS_STDIO or sys.flags.utf8_mode or environ().get("PYTHONIOENCODING"):
        return
    for stream in (sys.stdout, sys.stderr):
        encoding = str(getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
        if encoding in ("utf-8", "utf8") or not hasattr(stream, "reconfigure"):
            continue
        try:
            stream.reconfigure(encoding="utf-8")
        except (ValueError, OSError):  # closed, or already written to with another codec
            pass


def read_file(path: str, limit: int) -> "tuple[bytes, float]":
    """At most ``limit`` bytes of ``path`` and its mtime, in four system calls (open, fstat,
    read, close): no buffered file object, no size probe, no allocation of ``limit`` bytes.
    Raises OSError, also when ``path`` is not a regular file (a FIFO, a device)."""
    fd = open(path, O_READ | _NONBLOCK)
    try:
        st = fstat(fd)
        if st.st_mode & 0o170000 != 0o100000:  # S_ISREG, without the stat module
            raise OSError(f"{path}: not a regular file")
        want = min(st.st_size, limit) if st.st_size > 0 else limit  # 0: size unknown
        data = read(fd, want)
        while len(data) < want:  # a short read (not expected from a regular file)
            more = read(fd, want - len(data))
            if not more:
                break
            data += more
        return data, st.st_mtime
    finally:
        close(fd)
