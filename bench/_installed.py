"""Which tokmon a benchmark measures: the checkout installed the way a user installs it, or the
checkout itself ("in place").

A user installs tokmon with ``python3 scripts/install.py`` (the README's Quickstart): a regular,
non-editable ``pip install`` of the checkout into a private venv, like pipx. The checkout's own
interpreter is not that: ``scripts/test.sh`` made an *editable* install there, whose import
finder runs in every process's ``site``, and such an interpreter may carry other ``.pth`` files
(a sandbox's own ``_sandboxing_egress_ca.pth`` imports certifi: ~11.5 ms and 1.4 MB per process
here, ~28 ms of ``site`` in all). So by default the benchmarks measure an installed copy:

* :func:`ensure_installed` runs ``scripts/install.py --prefix <venv> --no-run`` into
  ``$TOKMON_BENCH_DIR/installed/<key>`` (``${TMPDIR:-/tmp}/tokmon-bench`` by default), where the
  key hashes the interpreter, setup.py's build switches (``TOKMON_BUILD_NATIVE``,
  ``TOKMON_NATIVE_CFLAGS``) and the files the install is built from (``tokmon/**`` without
  caches and build products, ``pyproject.toml``, ``setup.py``, ``MANIFEST.in`` and
  ``scripts/install.py``): an unchanged checkout reuses its venv (the C extensions compile once
  per source hash), a changed one installs anew (~25-60 s: pip fetches the dependencies from
  PyPI or its cache). The newest two venvs are kept; older ones unused for an hour are removed.
* :func:`resolve` gives the :class:`Target` a bench runs: ``--in-place`` (see
  :func:`add_argument`) is the old way, the checkout's interpreter (``sys.executable -m
  tokmon``); when the install fails the bench falls back to in place and says so, and the
  benches after it (the CI runs several) do not try again for half an hour (``<key>.failed``,
  deleted to retry at once).

Every bench prints :meth:`Target.describe`: which tokmon and python it measured. Only the
standard library is used here.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parent.parent
#: files outside tokmon/ whose change changes what the install builds
BUILD_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "scripts/install.py")
#: names under tokmon/ that are caches or build products, not sources
SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".o", ".obj", ".dll", ".dylib")
#: setup.py's build switches (no native code; extra C flags such as sanitizers)
BUILD_ENV = ("TOKMON_BUILD_NATIVE", "TOKMON_NATIVE_CFLAGS")
MARKER = "tokmon-bench-install.json"
KEEP = 2  # venvs kept besides the one in use
PRUNE_AGE_S = 3600.0  # an older venv is removed only when unused this long
FAILED_RETRY_S = 1800.0  # a failed install of a source key is not retried for this long
FORMAT = 1  # bump to make every cached venv stale


class InstallFailed(RuntimeError):
    """scripts/install.py did not give a working tokmon."""


def bench_dir() -> Path:
    """The bench cache: ``${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}``."""
    base = os.environ.get("TOKMON_BENCH_DIR")
    return Path(base) if base else Path(os.environ.get("TMPDIR") or "/tmp") / "tokmon-bench"


def python_identity() -> str:
    """The interpreter a venv made here is based on (its real path and version)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return f"{os.path.realpath(base)}\n{sys.version}"


def source_files(repo: Path) -> list[str]:
    """The files the install is built from, as sorted repo-relative POSIX paths."""
    out: list[str] = []
    for root, dirs, files in os.walk(repo / "tokmon"):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in files:
            if not name.endswith(SKIP_SUFFIXES):
                out.append((Path(root) / name).relative_to(repo).as_posix())
    out.extend(f for f in BUILD_FILES if (repo / f).is_file())
    return sorted(out)


def source_key(repo: Path, identity: str | None = None) -> str:
    """sha256 (hex) of the interpreter identity, the build switches and every source file's
    path and bytes."""
    h = hashlib.sha256(f"tokmon-bench-install {FORMAT}\n".encode())
    h.update((python_identity() if identity is None else identity).encode() + b"\0")
    for name in BUILD_ENV:
        h.update(f"{name}={os.environ.get(name)!r}\0".encode())
    for rel in source_files(repo):
        data = (repo / rel).read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _install_py() -> Any:
    """scripts/install.py as a module (standard library only: importable from any python)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tokmon_install", REPO / "scripts" / "install.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


#: scripts/install.py's layout of a venv: <prefix>/bin/<name>, or Scripts\\<name>.exe on Windows
venv_exe: Callable[[Path, str], Path] = _install_py().venv_exe


@contextlib.contextmanager
def locked(path: Path, blocking: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing); raises OSError when
    ``blocking`` is false and another process holds it. No lock where the OS has neither
    flock nor msvcrt.locking."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        elif msvcrt is not None:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
        yield


@dataclass(frozen=True)
class Install:
    """A venv holding an installed tokmon."""

    prefix: Path
    key: str
    seconds: float  # how long its install took
    reused: bool  # made by an earlier run


def read_marker(prefix: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((prefix / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def valid(prefix: Path, key: str) -> bool:
    """A finished install of this key: its marker (written last) names the key, and its
    python and tokmon commands exist."""
    marker = read_marker(prefix)
    return (
        marker is not None
        and marker.get("key") == key
        and venv_exe(prefix, "python").exists()
        and venv_exe(prefix, "tokmon").exists()
    )


def run_install_py(repo: Path, prefix: Path) -> None:
    """``python3 scripts/install.py --prefix <prefix> --no-run`` (the link it makes goes into
    the venv, not ~/.local/bin); raises InstallFailed with its output when it fails."""
    cmd = [sys.executable, str(repo / "scripts" / "install.py"), "--prefix", str(prefix)]
    if sys.platform != "win32":  # (Windows links nothing)
        cmd += ["--bin-dir", str(prefix / "link")]
    cmd.append("--no-run")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "TOKMON_INSTALL_PREFIX")
    }
    try:
        res = subprocess.run(
            cmd, capture_output=True, text=True, env=env, cwd=str(repo), timeout=1800
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallFailed(f"{' '.join(cmd)}: {exc}") from None
    if res.returncode != 0:
        tail = "\n".join(
            ln for ln in (res.stdout + res.stderr).splitlines() if "is ignored" not in ln
        )[-2000:]
        raise InstallFailed(f"scripts/install.py exited {res.returncode}:\n{tail}")


def check_import(prefix: Path) -> dict[str, Any]:
    """Where the venv's python imports tokmon from, and whether its C scanner loads (run
    outside the checkout, without PYTHONPATH, as the console script runs)."""
    code = (
        "import json, tokmon\n"
        "try:\n    import tokmon._native._scan\n    native = True\n"
        "except ImportError:\n    native = False\n"
        "print(json.dumps({'file': tokmon.__file__, 'native': native}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        res = subprocess.run(
            [str(venv_exe(prefix, "python")), "-c", code],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(prefix),
            timeout=300,
        )
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as exc:
        raise InstallFailed(f"the installed tokmon does not import: {exc}") from None
    if not isinstance(info, dict):
        raise InstallFailed(f"the installed tokmon does not import: {res.stderr[-500:]}")
    try:
        Path(info["file"]).resolve().relative_to(prefix.resolve())
    except (KeyError, TypeError, ValueError):
        where = info.get("file")
        raise InstallFailed(f"the venv imports tokmon from {where}, not {prefix}") from None
    return info


def prune(root: Path, keep_name: str, now: float | None = None) -> list[str]:
    """Remove cached venvs beyond the newest KEEP others that were unused PRUNE_AGE_S (their
    marker's mtime, touched at each use) and whose lock is free; returns their names."""
    now = time.time() if now is None else now
    entries: list[tuple[float, Path]] = []
    for d in root.iterdir() if root.is_dir() else ():
        if d.is_dir() and d.name != keep_name:
            try:
                used = (d / MARKER).stat().st_mtime
            except OSError:  # unfinished (or foreign): judged by the dir itself
                used = d.stat().st_mtime
            entries.append((used, d))
    entries.sort(reverse=True)
    removed: list[str] = []
    for used, d in entries[KEEP:]:
        if now - used < PRUNE_AGE_S:
            continue
        try:
            with locked(root / f"{d.name}.lock", blocking=False):
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            continue  # in use (being installed or locked): next time
        with contextlib.suppress(OSError):
            (root / f"{d.name}.lock").unlink()
        removed.append(d.name)
    return removed


def ensure_installed(
    repo: Path = REPO,
    cache: Path | None = None,
    installer: Callable[[Path, Path], None] = run_install_py,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> Install:
    """The venv holding ``repo`` installed as scripts/install.py installs it: reused when
    its source key matches, else (re)made under a lock (a half-made one is removed first)."""
    key = source_key(repo)
    root = (cache or bench_dir()) / "installed"
    prefix = root / key[:16]
    failed = root / f"{prefix.name}.failed"
    with locked(root / f"{prefix.name}.lock"):
        try:
            age = time.time() - failed.stat().st_mtime
        except OSError:
            age = None
        if age is not None and 0 <= age < FAILED_RETRY_S:
            why = failed.read_text(encoding="utf-8", errors="replace").strip()
            raise InstallFailed(
                f"an install of this source failed {age:.0f} s ago (delete {failed} to retry "
                f"now): {why}"
            )
        if valid(prefix, key):
            seconds = float(read_marker(prefix).get("seconds", 0.0))  # type: ignore[union-attr]
            os.utime(prefix / MARKER)  # in use: not pruned
            log(f"bench: reusing installed tokmon {prefix} (source key {key[:16]})")
            return Install(prefix, key, seconds, reused=True)
        if prefix.exists():
            log(f"bench: {prefix} is unfinished or stale: installing again")
            shutil.rmtree(prefix)
        log(f"bench: installing {repo} with scripts/install.py into {prefix} ...")
        start = time.perf_counter()
        try:
            installer(repo, prefix)
            if not (venv_exe(prefix, "python").exists() and venv_exe(prefix, "tokmon").exists()):
                raise InstallFailed(f"the install left no python/tokmon command in {prefix}")
        except InstallFailed as exc:
            shutil.rmtree(prefix, ignore_errors=True)
            failed.write_text(str(exc), encoding="utf-8")
            raise
        except BaseException:
            shutil.rmtree(prefix, ignore_errors=True)
            raise
        seconds = time.perf_counter() - start
        marker = {"key": key, "seconds": round(seconds, 1), "repo": str(repo)}
        (prefix / MARKER).write_text(json.dumps(marker), encoding="utf-8")
        with contextlib.suppress(OSError):
            failed.unlink()
        log(f"bench: installed in {seconds:.1f} s")
    for name in prune(root, prefix.name):
        log(f"bench: removed the old installed venv {root / name}")
    return Install(prefix, key, seconds, reused=False)


@dataclass(frozen=True)
class Target:
    """The tokmon a bench runs, and the python it runs on."""

    mode: str  # "installed" or "in-place"
    python: str  # the interpreter (its `-c pass` is the start-up floor)
    tokmon: tuple[str, ...]  # argv prefix of a tokmon command as the bench runs it
    script: tuple[str, ...]  # the console script (as a user types `tokmon`), or `-m tokmon`
    prefix: Path | None = None
    note: str = ""

    @property
    def installed(self) -> bool:
        return self.mode == "installed"

    def module(self) -> list[str]:
        """``python -m tokmon`` (installed: run it outside the checkout, where ``-m`` would
        put the checkout's tokmon first on sys.path)."""
        return [self.python, "-m", "tokmon"]

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` for this target's processes: installed, without PYTHONPATH/PYTHONHOME (they
        would import the checkout) and with the venv's commands first on PATH."""
        out = dict(env)
        if self.installed:
            out.pop("PYTHONPATH", None)
            out.pop("PYTHONHOME", None)
            bindir = str(Path(self.python).parent)
            out["PATH"] = bindir + (os.pathsep + out["PATH"] if out.get("PATH") else "")
        return out

    def describe(self) -> str:
        """One line: which tokmon (the command the bench runs; its console script when
        that differs) and which python."""
        cmd = " ".join(self.tokmon)
        if self.script != self.tokmon:
            cmd += f" (console script {' '.join(self.script)})"
        note = f"; {self.note}" if self.note else ""
        return f"measured: tokmon {self.mode}: {cmd} (python {self.python}){note}"

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "python": self.python,
            "tokmon": list(self.tokmon),
            "script": list(self.script),
            "prefix": str(self.prefix) if self.prefix else None,
            "note": self.note,
            "describe": self.describe(),
        }


def in_place_target(note: str = "") -> Target:
    """The old way: the checkout's interpreter (``-m tokmon``, the console script beside it)."""
    exe = Path(sys.executable)
    script = exe.parent / ("tokmon.exe" if os.name == "nt" else "tokmon")
    module = (sys.executable, "-m", "tokmon")
    return Target(
        "in-place",
        sys.executable,
        module,
        (str(script),) if script.exists() else module,
        None,
        note,
    )


def installed_target(inst: Install, native: bool | None = None) -> Target:
    how = (
        f"reused, installed in {inst.seconds:.1f} s"
        if inst.reused
        else (f"installed now in {inst.seconds:.1f} s")
    )
    if native is not None:
        how += "; C extensions " + ("loaded" if native else "MISSING (pure Python)")
    script = (str(venv_exe(inst.prefix, "tokmon")),)
    return Target(
        "installed",
        str(venv_exe(inst.prefix, "python")),
        script,
        script,
        inst.prefix,
        f"{how}; source key {inst.key[:16]}",
    )


def add_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--in-place",
        action="store_true",
        help="measure the checkout's own interpreter (`python -m tokmon`, editable install, "
        "its site's .pth files) instead of the checkout installed the way scripts/install.py "
        "installs it (a venv under $TOKMON_BENCH_DIR/installed, reused per source hash)",
    )


def resolve(
    in_place: bool,
    repo: Path = REPO,
    cache: Path | None = None,
    ensure: Callable[..., Install] = ensure_installed,
    check: Callable[[Path], dict[str, Any]] = check_import,
) -> Target:
    """The target to measure; prints it (stderr). Installed unless ``in_place``; a failed
    install falls back to in place (the note says why)."""
    if in_place:
        target = in_place_target("--in-place")
    else:
        try:
            inst = ensure(repo, cache)
            info = check(inst.prefix)
            target = installed_target(inst, bool(info.get("native")))
        except (InstallFailed, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"bench: could not install tokmon ({exc}); measuring in place", file=sys.stderr)
            target = in_place_target(f"FALLBACK: the install failed: {first}")
    print(f"bench: {target.describe()}", file=sys.stderr, flush=True)
    return target


def main(argv: list[str] | None = None) -> int:
    """Install (or reuse) and print what the benches will measure: CI's first bench step, so
    the install's time shows on its own line."""
    ap = argparse.ArgumentParser(description="install this checkout for the benchmarks")
    add_argument(ap)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    target = resolve(args.in_place)
    print(f"{target.describe()}\n(resolved in {time.perf_counter() - start:.1f} s)")
    return 0 if target.installed or args.in_place else 1


if __name__ == "__main__":
    sys.exit(main())
