"""Installing tokmon by its distribution name (tokmon-cli), and the Quickstart's install script.

The slow tests build a real wheel and install it into fresh virtual environments; they need
the package index (or a local wheel mirror) for tokmon's dependencies, like any user install.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from conftest import REPO

_spec = importlib.util.spec_from_file_location("tokmon_install", REPO / "scripts" / "install.py")
assert _spec is not None and _spec.loader is not None
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DIST = "tokmon-cli"
# `pip install tokmon`, `pipx install --force tokmon`, `pipx upgrade tokmon`, `uv tool install tokmon`
BARE = re.compile(r"\b(?:install|upgrade)\s+(?:--?[\w-]+\s+)*tokmon(?![\w-])")
HINT_FILES = [
    "README.md",
    "integrations/tmux/README.md",
    "integrations/shell/README.md",
    "integrations/vscode/README.md",
    "integrations/vscode/package.json",
    *(str(p.relative_to(REPO)) for p in (REPO / "integrations" / "vscode" / "src").glob("*.ts")),
]


def _bin(prefix: Path, name: str) -> Path:
    return (
        prefix
        / ("Scripts" if os.name == "nt" else "bin")
        / (name + (".exe" if os.name == "nt" else ""))
    )


def _clean_env(tmp_path: Path) -> dict[str, str]:
    e = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TOKMON_", "CLAUDE_", "PYTHON", "VIRTUAL_ENV"))
    }
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    e.update(
        {
            "HOME": str(home),
            "TOKMON_HOME": str(tmp_path / "th"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "NO_COLOR": "1",
        }
    )
    return e


def test_distribution_name_keeps_command_and_import_name() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["name"] == DIST
    assert meta["project"]["scripts"]["tokmon"] == "tokmon.__main__:main"
    assert meta["tool"]["setuptools"]["packages"]["find"]["include"] == ["tokmon*"]
    from tokmon.cli.doctor import DISTRIBUTION

    assert DISTRIBUTION == DIST


@pytest.mark.parametrize("rel", HINT_FILES)
def test_every_install_hint_names_the_distribution(rel: str) -> None:
    text = (REPO / rel).read_text(encoding="utf-8")
    bad = [m.group(0) for m in BARE.finditer(text)]
    assert not bad, f"{rel} tells users to install PyPI's unrelated `tokmon`: {bad}"


def test_vscode_extension_install_message() -> None:
    src = (REPO / "integrations" / "vscode" / "src" / "protocol.ts").read_text()
    assert 'INSTALL_COMMAND = "pipx install --force tokmon-cli"' in src
    assert 'UPGRADE_COMMAND = "pipx upgrade tokmon-cli"' in src


def test_quickstart_is_two_commands_and_the_first_is_the_install_script() -> None:
    readme = (REPO / "README.md").read_text()
    quick = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick, re.S)
    assert [b.strip() for b in blocks] == ["python3 scripts/install.py", "bash scripts/test.sh"]


def _installed_checks(tokmon: Path, env: dict[str, str], cwd: Path) -> None:
    """The installed command works, imports from the install, and knows its name."""
    r = subprocess.run(
        [str(tokmon), "--version"], env=env, capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert r.returncode == 0 and r.stdout.strip() == "tokmon 0.1.0", r.stderr
    r = subprocess.run(
        [str(tokmon), "--demo", "daily", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert r.returncode == 0, r.stderr  # package data (prices.json) shipped
    assert json.loads(r.stdout)["totals"]["totalTokens"] > 0
    r = subprocess.run(
        [str(tokmon), "doctor", "--json", "--no-server"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    install = {c["name"]: c for c in json.loads(r.stdout)["checks"]}["install"]
    assert install["status"] in ("ok", "note"), install  # note: the bin dir is not on PATH
    assert f"distribution {DIST}" in install["detail"]
    assert str(REPO) not in install["detail"]  # imported from the install, not this clone


@pytest.mark.slow
def test_fresh_venv_install_by_name_from_a_built_wheel(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    dist = tmp_path / "dist"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    wheels = [p.name for p in dist.glob("*.whl")]
    assert len(wheels) == 1 and wheels[0].startswith("tokmon_cli-0.1.0-"), wheels
    # the web dashboard's assets ship inside the wheel, the chart library with its licence
    import zipfile

    with zipfile.ZipFile(dist / wheels[0]) as whl:
        shipped = set(whl.namelist())
    static = "tokmon/web/static/"
    for name in ("index.html", "app.js", "app.css", "chart.umd.min.js", "chart.js.LICENSE.md"):
        assert static + name in shipped, name
    prefix = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(prefix)
    py = _bin(prefix, "python")
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--find-links", str(dist), f"{DIST}==0.1.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run(
        [str(py), "-m", "pip", "show", "tokmon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode != 0  # nothing called `tokmon` was installed
    r = subprocess.run(
        [
            str(py),
            "-c",
            "import importlib.metadata as m, tokmon; "
            "print(m.version('tokmon-cli'), tokmon.__file__)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    version, where = r.stdout.split()
    assert version == "0.1.0" and Path(where).is_relative_to(prefix)
    _installed_checks(_bin(prefix, "tokmon"), env, tmp_path)


def _externally_managed_python() -> str | None:
    """A Python >= 3.10 outside any venv that carries PEP 668's EXTERNALLY-MANAGED marker."""
    candidates = ["/usr/bin/python3", "/usr/local/bin/python3"]
    for exe in candidates:
        if not os.path.exists(exe):
            continue
        probe = subprocess.run(
            [
                exe,
                "-c",
                "import sys, sysconfig, os; print(sys.version_info >= (3, 10) and "
                "sys.prefix == sys.base_prefix and os.path.exists(os.path.join("
                "sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.stdout.strip() == "True":
            return exe
    return None


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="POSIX system Pythons")
def test_install_script_works_on_an_externally_managed_python(tmp_path: Path) -> None:
    py = _externally_managed_python()
    if py is None:
        marker = Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED"
        pytest.skip(f"no externally managed system Python here (no {marker} on /usr/bin/python3)")
    env = _clean_env(tmp_path)
    env["PATH"] = "/usr/bin:/bin"  # the distribution's python3, as a new user has it
    # the premise: the old Quickstart (`pip install .`) is refused there
    r = subprocess.run(
        [py, "-m", "pip", "install", "--no-deps", str(REPO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode != 0 and "externally-managed" in (r.stdout + r.stderr)
    prefix, bin_dir = tmp_path / "venv", tmp_path / "bin"
    r = subprocess.run(
        [
            py,
            str(REPO / "scripts" / "install.py"),
            "--prefix",
            str(prefix),
            "--bin-dir",
            str(bin_dir),
            "--",
            "--version",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    assert r.stdout.rstrip().endswith("tokmon 0.1.0")
    link = bin_dir / "tokmon"
    assert link.is_symlink() and link.resolve() == _bin(prefix, "tokmon").resolve()
    _installed_checks(link, env, tmp_path)
    # running it again upgrades in place
    r = subprocess.run(
        [
            py,
            str(REPO / "scripts" / "install.py"),
            "--prefix",
            str(prefix),
            "--bin-dir",
            str(bin_dir),
            "--no-run",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]


def test_install_script_refuses_an_old_python_in_one_line(tmp_path: Path) -> None:
    """The version check runs before anything is created (checked by faking the version)."""
    code = (
        "import runpy, sys; sys.version_info = (3, 9, 0, 'final', 0); "
        f"sys.argv = ['install.py', '--prefix', {str(tmp_path / 'v')!r}]; "
        f"runpy.run_path({str(REPO / 'scripts' / 'install.py')!r}, run_name='__main__')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "needs Python >= 3.10" in r.stderr
    assert not (tmp_path / "v").exists()


@pytest.mark.skipif(os.name == "nt", reason="bash script")
@pytest.mark.parametrize("installed", ["none", "other"])
def test_test_script_gets_past_its_old_install_check(tmp_path: Path, installed: str) -> None:
    """`bash scripts/test.sh` on a machine with no `tokmon` installed (pip show exits 1) or an
    unrelated one must go on to install the test dependencies; under `set -o pipefail` the
    check once ended the script there, silently, with exit 1. A `python3` stand-in on PATH
    answers the script's calls and stops it at the install (exit 42), so nothing is installed."""
    shim = tmp_path / "bin"
    shim.mkdir()
    show = (
        'echo "WARNING: Package(s) not found: tokmon" >&2; exit 1'
        if installed == "none"
        else 'printf "Name: tokmon\\nVersion: 0.1\\nLocation: /elsewhere\\n"; exit 0'
    )
    (shim / "python3").write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  "-c "*) exit 1 ;;\n'  # the PEP 668 check: not externally managed, no venv
        f'  "-m pip show tokmon") {show} ;;\n'
        '  "-m pip install -q -e .[test]") echo reached-install; exit 42 ;;\n'
        '  *) echo "unexpected: $*" >&2; exit 3 ;;\n'
        "esac\n"
    )
    (shim / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    r = subprocess.run(
        ["bash", str(REPO / "scripts" / "test.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 42, (r.returncode, r.stdout, r.stderr)
    assert "reached-install" in r.stdout


def _pip_script(interp: str, sh_preamble: bool) -> str:
    """A console script as pip writes it (distlib's template), for ``interp``."""
    if sh_preamble:  # pip's form for an interpreter path a shebang cannot hold
        head = f"#!/bin/sh\n'''exec' \"{interp}\" -S \"$0\" \"$@\"\n' '''\n"
    else:
        head = f"#!{interp} -S\n"
    return head + "# -*- coding: utf-8 -*-\n" + install._PIP_SCRIPT


@pytest.mark.skipif(os.name == "nt", reason="POSIX console scripts (Windows has .exe launchers)")
@pytest.mark.parametrize("sh_preamble", [False, True])
def test_lean_launcher_drops_pips_import_of_re(tmp_path: Path, sh_preamble: bool) -> None:
    """The installed ``tokmon`` script no longer imports ``re`` before tokmon runs (pip's does,
    for a Windows suffix), and still calls tokmon's main with the same arguments and exit code:
    a stand-in ``tokmon`` package reports what was imported when main ran."""
    pkg = tmp_path / "pkg" / "tokmon"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        "import sys\ndef main():\n    print('re' in sys.modules, sys.argv[1:])\n    return 3\n"
    )
    exe = tmp_path / "tokmon"
    exe.write_text(_pip_script(sys.executable, sh_preamble))
    exe.chmod(0o751)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "pkg")}

    def run() -> tuple[int, str]:
        r = subprocess.run([str(exe), "line", "x y"], env=env, capture_output=True, text=True)
        return r.returncode, r.stdout.strip()

    assert run() == (3, "True ['line', 'x y']")  # pip's script imports re
    assert install.lean_launcher(exe)
    assert run() == (3, "False ['line', 'x y']")
    assert exe.stat().st_mode & 0o7777 == 0o751
    assert exe.read_text().startswith(_pip_script(sys.executable, sh_preamble).split("# -*-")[0])
    assert not install.lean_launcher(exe)  # already lean: left as it is
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg", "tokmon"]  # no temp left


@pytest.mark.parametrize(
    "text",
    [
        "#!/usr/bin/python\nimport re\nimport sys\nfrom other import main\nsys.exit(main())\n",
        "#!/usr/bin/python\nimport os\n" + install._PIP_SCRIPT,
        "",
    ],
)
def test_lean_launcher_leaves_scripts_of_other_shapes(tmp_path: Path, text: str) -> None:
    """Only pip's exact template is rewritten; anything else (another pip's, another tool's)
    stays byte for byte."""
    exe = tmp_path / "tokmon"
    exe.write_text(text)
    assert not install.lean_launcher(exe)
    assert exe.read_text() == text
    assert not install.lean_launcher(tmp_path / "missing")
