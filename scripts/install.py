#!/usr/bin/env python3
"""Install tokmon from this clone into its own virtual environment, then run it.

    python3 scripts/install.py [--prefix DIR] [--bin-dir DIR] [--no-run] [-- TOKMON ARGS]

Works with any Python >= 3.10, including a distribution's own "externally managed" one
(PEP 668, e.g. Debian 12's /usr/bin/python3, where `pip install .` is refused): tokmon goes
into a private venv (like pipx does) and the `tokmon` command is linked into ~/.local/bin.
Run it again to upgrade. Only the standard library is used here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

DISTRIBUTION = "tokmon-cli"
REPO = Path(__file__).resolve().parent.parent


def default_prefix() -> Path:
    """Where the venv lives: the platform's user data dir, under tokmon-cli/venv."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / DISTRIBUTION / "venv"


def default_bin_dir() -> Path | None:
    """Where the `tokmon` command is linked (None on Windows: the venv's Scripts dir is used)."""
    if sys.platform == "win32":
        return None
    return Path.home() / ".local" / "bin"


def venv_exe(prefix: Path, name: str) -> Path:
    if sys.platform == "win32":
        return prefix / "Scripts" / f"{name}.exe"
    return prefix / "bin" / name


def fail(message: str) -> int:
    sys.stderr.write(f"install: error: {message}\n")
    return 1


def make_venv(prefix: Path) -> str | None:
    """Create the venv (with pip); returns an error line, or None when it worked."""
    if venv_exe(prefix, "python").exists():
        return None
    try:
        venv.EnvBuilder(with_pip=True, symlinks=sys.platform != "win32").create(prefix)
        return None
    except (subprocess.CalledProcessError, OSError) as exc:
        err = f"{exc.__class__.__name__}: {exc}"
    # Debian/Ubuntu without python3-venv: no ensurepip. Use the system pip on the venv instead.
    shutil.rmtree(prefix, ignore_errors=True)
    try:
        venv.EnvBuilder(with_pip=False, symlinks=sys.platform != "win32").create(prefix)
    except OSError as exc:
        return f"cannot create a virtual environment in {prefix}: {exc}"
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    if probe.returncode != 0:
        shutil.rmtree(prefix, ignore_errors=True)
        return (
            f"this Python cannot create a venv with pip ({err}); install it with "
            "`sudo apt install python3-venv` (Debian/Ubuntu) or use "
            f"`pipx install {REPO}`"
        )
    return None


def pip(prefix: Path) -> list[str]:
    """The pip that installs into the venv (its own, else the system pip aimed at it)."""
    py = str(venv_exe(prefix, "python"))
    has_pip = subprocess.run([py, "-m", "pip", "--version"], capture_output=True).returncode == 0
    return [py, "-m", "pip"] if has_pip else [sys.executable, "-m", "pip", "--python", py]


# pip's console script (distlib's template) after its shebang lines: it imports ``re`` (~2-3 ms
# of every start, with enum and functools) only to strip a Windows launcher's suffix from
# argv[0], which a POSIX script name never has
_PIP_SCRIPT = (
    "import re\n"
    "import sys\n"
    "from tokmon.__main__ import main\n"
    "if __name__ == '__main__':\n"
    "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
    "    sys.exit(main())\n"
)
_LEAN_SCRIPT = (
    "import sys\n"
    "from tokmon.__main__ import main\n"
    "if __name__ == '__main__':\n"
    "    sys.exit(main())\n"
)


def lean_launcher(exe: Path) -> bool:
    """Rewrite the venv's ``tokmon`` script (pip's, POSIX) without its ``import re``: the same
    interpreter line(s), the same call. Returns whether it was rewritten (a script of another
    shape, e.g. from a newer pip, is left as it is). Atomic: a temporary file renamed over."""
    if sys.platform == "win32":  # an .exe launcher there
        return False
    try:
        text = exe.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    head, sep, tail = text.partition("import re\n")
    if not sep or "import re\n" + tail != _PIP_SCRIPT or "\nimport " in head:
        return False
    tmp = exe.with_name(f".{exe.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(head + _LEAN_SCRIPT, encoding="utf-8")
        os.chmod(tmp, exe.stat().st_mode & 0o7777)
        os.replace(tmp, exe)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


def link(target: Path, bin_dir: Path) -> str:
    """Symlink bin_dir/tokmon -> target; returns what was done (one line)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    dest = bin_dir / "tokmon"
    if dest.is_symlink() or not dest.exists():
        if dest.is_symlink():
            dest.unlink()
        dest.symlink_to(target)
        return f"linked {dest} -> {target}"
    return f"left {dest} alone (not a link made by this script); the command is {target}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rest: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--prefix",
        type=Path,
        default=None,
        help=f"venv dir (default: {default_prefix()}; or TOKMON_INSTALL_PREFIX)",
    )
    ap.add_argument(
        "--bin-dir",
        type=Path,
        default=None,
        help=f"where to link the tokmon command (default: {default_bin_dir()})",
    )
    ap.add_argument("--no-run", action="store_true", help="install only; do not run tokmon")
    args = ap.parse_args(argv)
    if sys.version_info < (3, 10):  # noqa: UP036 - this script may run on any python3
        return fail(
            f"tokmon needs Python >= 3.10; this is {sys.version.split()[0]} ({sys.executable})"
        )
    env_prefix = os.environ.get("TOKMON_INSTALL_PREFIX")
    prefix = (args.prefix or (Path(env_prefix) if env_prefix else default_prefix())).expanduser()
    prefix = prefix.absolute()
    bin_dir = args.bin_dir.expanduser() if args.bin_dir else default_bin_dir()

    problem = make_venv(prefix)
    if problem:
        return fail(problem)
    print(f"install: installing {DISTRIBUTION} from {REPO} into {prefix} ...", flush=True)
    cmd = [
        *pip(prefix),
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--upgrade",
        str(REPO),
    ]
    if subprocess.run(cmd).returncode != 0:
        return fail(f"`{' '.join(cmd)}` failed (see above)")
    exe = venv_exe(prefix, "tokmon")
    if not exe.exists():
        return fail(f"the install did not create {exe}")
    lean_launcher(exe)
    if bin_dir is not None:
        print(f"install: {link(exe, bin_dir)}")
        on_path = any(
            Path(p).resolve() == bin_dir.resolve()
            for p in os.environ.get("PATH", "").split(os.pathsep)
            if p
        )
        if not on_path:
            print(
                f"install: {bin_dir} is not on your PATH; add it (e.g. "
                f'`export PATH="{bin_dir}:$PATH"` in your shell\'s rc file)'
            )
    else:
        print(f"install: the command is {exe} (add {exe.parent} to PATH)")
    print("install: done; `tokmon doctor` checks the set-up", flush=True)
    if args.no_run:
        return 0
    return subprocess.run([str(exe), *rest]).returncode


if __name__ == "__main__":
    sys.exit(main())
