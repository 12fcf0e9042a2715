"""Static checks that keep tokmon portable (docs/portability.md).

1. Every text-mode file or pipe names its encoding: ``open``/``Path.open``/``os.fdopen``/
   ``io.open`` in a text mode, ``read_text``/``write_text``, ``TextIOWrapper`` and
   ``subprocess`` calls with ``text=True``. Without it Python uses the locale's code page
   (cp1252 on Windows): a non-ASCII project name or title would be mangled or raise.
2. Every POSIX-only call, constant or module (``os.getuid``, ``os.O_NOFOLLOW``, ``fcntl``,
   ``signal.SIGKILL``, ...) is reached only behind a guard: an ``if``/conditional on the
   platform (``sys.platform``, ``os.name``, ``hasattr``, ...), or a ``try`` that catches the
   ``AttributeError``/``ImportError`` its absence raises; ``getattr(os, "NAME", default)`` is
   a guard by construction (no attribute node).

Each check is also run on a small sample that must be flagged, so neither can pass by
finding nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tokmon"

#: attributes of ``os`` (and ``posix``) that Windows lacks
POSIX_OS = frozenset(
    """getuid geteuid getgid getegid getgroups setuid setgid seteuid setegid getpgid getpgrp
    setpgrp setpgid setsid getsid killpg fork forkpty wait3 wait4 fchown chown lchown lchmod
    mkfifo mknod major minor makedev sched_getaffinity sched_setaffinity statvfs fstatvfs sync
    getloadavg uname nice posix_spawn posix_spawnp POSIX_SPAWN_OPEN POSIX_SPAWN_CLOSE
    POSIX_SPAWN_DUP2 register_at_fork O_NOFOLLOW O_CLOEXEC O_NONBLOCK O_DIRECTORY O_NOCTTY
    O_SYNC O_DSYNC O_NDELAY WNOHANG pipe2 openpty ttyname ctermid sysconf pathconf fpathconf
    confstr getpriority setpriority initgroups sendfile memfd_create eventfd pidfd_open splice
    copy_file_range posix_fadvise posix_fallocate getresuid getresgid""".split()
)
#: attributes of ``signal`` that Windows lacks (SIGINT, SIGTERM, SIGABRT... exist there)
POSIX_SIGNAL = frozenset(
    """SIGKILL SIGHUP SIGUSR1 SIGUSR2 SIGCHLD SIGALRM SIGPIPE SIGQUIT SIGSTOP SIGCONT SIGTSTP
    SIGTTIN SIGTTOU SIGWINCH SIGXCPU SIGPROF SIGVTALRM alarm setitimer getitimer pause
    sigwait sigwaitinfo sigtimedwait pthread_kill pthread_sigmask siginterrupt""".split()
)
#: modules that exist on one family of systems only
ONE_PLATFORM_MODULES = frozenset(
    "fcntl termios tty pty pwd grp resource posix syslog crypt spwd nis readline curses "
    "msvcrt winreg _winapi winsound nt".split()
)
#: a condition that names the platform or probes for the feature
_GUARD_WORDS = ("sys.platform", "os.name", "oslite.name", "hasattr(", "getattr(", "NATIVE",
                "_WINDOWS", "platform.system")  # fmt: skip
#: what a missing attribute or module raises
_ABSENCE = {"AttributeError", "ImportError", "ModuleNotFoundError", "NotImplementedError"}

_TEXT_CALLS = {"read_text", "write_text"}
_SUBPROCESS = {"run", "Popen", "check_output", "check_call", "call"}
_NOT_FILE_OPEN = {"os", "oslite", "webbrowser", "_calls", "posix", "nt", "gzip", "tarfile",
                  "zipfile", "sqlite3", "dbm", "shelve", "wave", "aifc", "tokenize"}  # fmt: skip


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    out: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            out[child] = node
    return out


def _exits(stmts: list[ast.stmt]) -> bool:
    return bool(stmts) and isinstance(stmts[-1], (ast.Return, ast.Raise))


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST], source: str) -> bool:
    child, p = node, parents.get(node)
    while p is not None:
        for field in ("body", "orelse", "finalbody"):  # after `if <platform>: ...; return`
            stmts = getattr(p, field, None)
            if isinstance(stmts, list) and child in stmts:
                for before in stmts[: stmts.index(child)]:
                    test = ast.get_source_segment(source, before.test) if isinstance(
                        before, ast.If) else None  # fmt: skip
                    if test and any(w in test for w in _GUARD_WORDS) and _exits(before.body):
                        return True
        if isinstance(p, (ast.If, ast.IfExp, ast.While)) and child is not p.test:
            test = ast.get_source_segment(source, p.test) or ""
            if any(w in test for w in _GUARD_WORDS):
                return True
        if isinstance(p, ast.BoolOp):  # `hasattr(os, "x") and os.x(...)`
            test = ast.get_source_segment(source, p) or ""
            if any(w in test for w in _GUARD_WORDS):
                return True
        if isinstance(p, ast.Try) and child in p.body:
            for h in p.handlers:
                names = [h.type] if not isinstance(h.type, ast.Tuple) else h.type.elts
                if any(isinstance(n, ast.Name) and n.id in _ABSENCE for n in names):
                    return True
        child, p = p, parents.get(p)
    return False


def posix_findings(source: str, where: str) -> list[str]:
    """``where:line: what`` for each POSIX-only (or Windows-only) use without a guard."""
    tree = ast.parse(source)
    parents = _parents(tree)
    out = []
    for node in ast.walk(tree):
        what = None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            base, attr = node.value.id, node.attr
            if base in ("os", "posix", "_calls", "_os") and attr in POSIX_OS:
                what = f"{base}.{attr}"
            elif base == "signal" and attr in POSIX_SIGNAL:
                what = f"signal.{attr}"
        elif isinstance(node, ast.Import):
            mods = [a.name.split(".")[0] for a in node.names]
            hit = [m for m in mods if m in ONE_PLATFORM_MODULES]
            what = f"import {hit[0]}" if hit else None
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in ONE_PLATFORM_MODULES:
                what = f"from {node.module} import"
            elif node.module == "os":
                hit = [a.name for a in node.names if a.name in POSIX_OS]
                what = f"from os import {hit[0]}" if hit else None
        # Windows' SO_REUSEADDR lets another process bind the same port (and take its
        # connections): only where that is not so
        if isinstance(node, ast.Attribute) and node.attr == "SO_REUSEADDR":
            what = "SO_REUSEADDR"
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "allow_reuse_address" for t in node.targets
        ):
            v = node.value
            what = "allow_reuse_address = True" if isinstance(v, ast.Constant) and v.value else None
        if what and not _guarded(node, parents, source):
            out.append(f"{where}:{node.lineno}: {what}")
    return out


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _mode(call: ast.Call, index: int) -> str | None:
    """The call's mode when it is a constant (None: not known statically); "r" if absent."""
    node = _kw(call, "mode") or (call.args[index] if len(call.args) > index else None)
    if node is None:
        return "r"
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def encoding_findings(source: str, where: str) -> list[str]:
    """``where:line: what`` for each text-mode file or pipe opened without ``encoding=``."""
    out = []
    tree = ast.parse(source)
    # a module that binds `open` to os.open (tokmon.oslite) opens raw descriptors
    own_open = any(
        isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "open" for t in n.targets)
        for n in tree.body
    )
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        has_enc = _kw(node, "encoding") is not None
        what = None
        if isinstance(f, ast.Name) and f.id == "open" and not own_open:
            mode = _mode(node, 1)
            if mode is None or ("b" not in mode and not has_enc):
                what = f"open(..., {mode!r})"
        elif isinstance(f, ast.Attribute):
            base = f.value.id if isinstance(f.value, ast.Name) else None
            if f.attr == "fdopen" or (f.attr == "open" and base == "io"):
                mode = _mode(node, 1)
                if mode is None or ("b" not in mode and not has_enc):
                    what = f"{base}.{f.attr}(..., {mode!r})"
            elif f.attr == "open" and base not in _NOT_FILE_OPEN:  # Path.open(mode, ...)
                mode = _mode(node, 0)
                if mode is None or ("b" not in mode and not has_enc):
                    what = f".open({mode!r})"
            elif f.attr in _TEXT_CALLS:
                # Path.read_text(encoding) / write_text(data, encoding) may pass it positionally
                positional = 1 if f.attr == "read_text" else 2
                if not has_enc and len(node.args) < positional:
                    what = f".{f.attr}() without encoding"
            elif f.attr in _SUBPROCESS and base == "subprocess":
                text = _kw(node, "text") or _kw(node, "universal_newlines")
                if isinstance(text, ast.Constant) and text.value and not has_enc:
                    what = f"subprocess.{f.attr}(text=True) without encoding"
            elif f.attr in ("TextIOWrapper", "FileHandler", "RotatingFileHandler") and not has_enc:
                what = f"{f.attr} without encoding"
        elif isinstance(f, ast.Name) and f.id in ("TextIOWrapper", "FileHandler") and not has_enc:
            what = f"{f.id} without encoding"
        if what:
            out.append(f"{where}:{node.lineno}: {what}")
    return out


#: ``os.open`` calls that read and write no data (so text mode cannot matter): the first
#: argument's source, per file
NO_DATA_OPENS = {
    ("tokmon/limits/history.py", "path"),  # creates the database file empty, 0600
    ("tokmon/statusline/refresher.py", "stamp"),  # an empty file whose mtime is the stamp
    ("tokmon/fsutil.py", "str(directory)"),  # a directory, for fsync (POSIX only)
    ("tokmon/core/ledger.py", "dest.parent"),  # same
    ("tokmon/cli/main.py", "os.devnull"),  # stdout onto the null device
}
#: flag constants that include O_BINARY where Windows has it
_BINARY_NAMES = {"_TMP_FLAGS", "O_READ", "flags"}


def raw_open_findings(source: str, where: str) -> list[str]:
    """``os.open`` calls without ``O_BINARY``: on Windows their descriptors are in text mode
    (LF written as CRLF, Ctrl-Z read as the end), which would change cache and ledger bytes."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        f = node.func
        if not (f.attr == "open" and isinstance(f.value, ast.Name) and f.value.id == "os"):
            continue
        if len(node.args) < 2:
            out.append(f"{where}:{node.lineno}: os.open without flags")
            continue
        first = ast.get_source_segment(source, node.args[0]) or ""
        flags = ast.get_source_segment(source, node.args[1]) or ""
        named = isinstance(node.args[1], ast.Name) and node.args[1].id in _BINARY_NAMES
        if "BINARY" not in flags and not named and (where, first) not in NO_DATA_OPENS:
            out.append(f"{where}:{node.lineno}: os.open({first}, {flags}) without O_BINARY")
    return out


def _sources() -> list[tuple[str, str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 100  # the whole package, not an empty glob
    return [(str(p.relative_to(PACKAGE.parent)), p.read_text(encoding="utf-8")) for p in files]


def test_every_text_open_names_its_encoding():
    found = [f for where, src in _sources() for f in encoding_findings(src, where)]
    assert found == [], "text-mode I/O without encoding= (cp1252 on Windows):\n" + "\n".join(found)


def test_raw_opens_are_binary_on_windows():
    found = [f for where, src in _sources() for f in raw_open_findings(src, where)]
    assert found == [], "os.open without O_BINARY (text mode on Windows):\n" + "\n".join(found)
    bad = "import os\nfd = os.open(p, os.O_WRONLY | os.O_CREAT)\n"
    assert len(raw_open_findings(bad, "x.py")) == 1  # the check finds what it looks for


#: string literals that name a POSIX-only place
_POSIX_PLACES = ("/tmp", "/proc", "/dev/tty", "/dev/null", "/etc/", "/var/", "/usr/")
#: the ones that are guarded or only informative (file, literal)
_KNOWN_PLACES = {("tokmon/fmt.py", "/etc/localtime")}  # read if present (the system zone)


def place_findings(source: str, where: str) -> list[str]:
    """String literals that hard-code a POSIX path (``os.devnull``, ``tempfile``,
    platformdirs and ``tokmon.paths`` stand for them)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            v = node.value
            if v.startswith(_POSIX_PLACES) and (where, v) not in _KNOWN_PLACES:
                out.append(f"{where}:{node.lineno}: {v!r}")
    return out


def test_no_hard_coded_posix_places():
    found = [f for where, src in _sources() for f in place_findings(src, where)]
    assert found == [], "hard-coded POSIX paths:\n" + "\n".join(found)
    assert len(place_findings('x = "/tmp/tokmon"\n', "x.py")) == 1


def test_posix_only_names_are_guarded():
    found = [f for where, src in _sources() for f in posix_findings(src, where)]
    assert found == [], "POSIX-only (or Windows-only) use without a guard:\n" + "\n".join(found)


BAD = """
import os, subprocess, fcntl
from pathlib import Path
def f(p):
    open(p)
    open(p, "w")
    os.fdopen(3, "w")
    Path(p).open()
    Path(p).read_text()
    Path(p).write_text("x")
    subprocess.run(["x"], text=True)
    logging.FileHandler(p)
    os.getuid()
    flags = os.O_RDONLY | os.O_NOFOLLOW
    import signal
    signal.signal(signal.SIGHUP, None)
class Server:
    allow_reuse_address = True
"""
GOOD = """
import os, subprocess, sys
from pathlib import Path
def f(p):
    open(p, "rb")
    open(p, encoding="utf-8")
    os.fdopen(3, "w", encoding="utf-8")
    Path(p).open("rb")
    Path(p).read_text(encoding="utf-8")
    Path(p).write_text("x", "utf-8")
    subprocess.run(["x"], text=True, encoding="utf-8")
    logging.FileHandler(p, encoding="utf-8")
    getuid = getattr(os, "getuid", None)
    if hasattr(os, "getuid"):
        os.getuid()
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    if sys.platform == "win32":
        import msvcrt
    else:
        import fcntl
    try:
        os.posix_spawn
    except AttributeError:
        pass
    ok = hasattr(os, "fork") and os.fork
class Server:
    allow_reuse_address = os.name != "nt"
"""


@pytest.mark.parametrize("check", [encoding_findings, posix_findings])
def test_the_checks_find_what_they_look_for(check):
    assert check(GOOD, "good") == []
    bad = check(BAD, "bad")
    expected = 8 if check is encoding_findings else 5  # fcntl, getuid, O_NOFOLLOW, SIGHUP, reuse
    assert len(bad) == expected, bad


def test_windows_gets_a_time_zone_database():
    """zoneinfo has no database on Windows: `-z Asia/Tokyo` and `timezone = ...` need the
    tzdata package there (and only there)."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    deps = [d.replace(" ", "") for d in project["project"]["dependencies"]]
    assert any(d.startswith("tzdata") and "sys_platform=='win32'" in d for d in deps), deps
