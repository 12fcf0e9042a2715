"""bench/_installed.py: the benches measure the checkout installed as scripts/install.py installs
it, in a venv keyed by a hash of the sources (reused while they are unchanged), with a fallback
to the checkout's interpreter when the install fails. The fast tests use a fake installer; the
slow one installs for real (pip, the C extensions) and runs bench_engine.py on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


sys.path.insert(0, str(REPO / "bench"))
import _installed as inst  # noqa: E402


def _tree(root: Path) -> Path:
    """A minimal checkout: what the key hashes, plus things it must ignore."""
    (root / "tokmon" / "sub").mkdir(parents=True)
    (root / "tokmon" / "__init__.py").write_text("")
    (root / "tokmon" / "sub" / "mod.py").write_text("X = 1\n")
    (root / "tokmon" / "sub" / "fast.c").write_text("int x;\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "setup.py").write_text("")
    (root / "README.md").write_text("docs\n")
    return root


def _key(root: Path) -> str:
    return inst.source_key(root, identity="python-under-test")


class FakeInstaller:
    """Stands in for scripts/install.py: makes the venv's python and tokmon commands."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[Path] = []
        self.fail = fail

    def __call__(self, repo: Path, prefix: Path) -> None:
        self.calls.append(prefix)
        for name in ("python", "tokmon"):
            exe = inst.venv_exe(prefix, name)
            exe.parent.mkdir(parents=True, exist_ok=True)
            exe.write_text("")
        if self.fail:
            raise inst.InstallFailed(self.fail)


def _quiet(_line: str) -> None:
    pass


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """(a checkout, the bench cache, where its venv goes), the interpreter identity fixed."""
    monkeypatch.setattr(inst, "python_identity", lambda: "python-under-test")
    repo = _tree(tmp_path / "repo")
    cache = tmp_path / "cache"
    return repo, cache, cache / "installed" / _key(repo)[:16]


def test_the_key_follows_the_sources_not_caches_or_build_products(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in inst.BUILD_ENV:
        monkeypatch.delenv(name, raising=False)
    a = _tree(tmp_path / "a")
    b = _tree(tmp_path / "b")
    assert _key(a) == _key(b)  # the same files in another place: the same key
    base = _key(a)
    # caches, build products and files outside the install's inputs change nothing
    (a / "tokmon" / "__pycache__").mkdir()
    (a / "tokmon" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (a / "tokmon" / "sub" / "_scan.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0")
    (a / "README.md").write_text("other docs\n")
    (a / "tests").mkdir()
    (a / "tests" / "test_x.py").write_text("")
    assert _key(a) == base
    assert "tokmon/sub/fast.c" in inst.source_files(a)
    # each input changes it: a module, the C source, the build files, a rename, a new file
    for change in (
        lambda: (a / "tokmon" / "sub" / "mod.py").write_text("X = 2\n"),
        lambda: (a / "tokmon" / "sub" / "fast.c").write_text("int y;\n"),
        lambda: (a / "pyproject.toml").write_text("[project]\nname = 'y'\n"),
        lambda: (a / "setup.py").write_text("# changed\n"),
        lambda: (a / "tokmon" / "sub" / "mod.py").rename(a / "tokmon" / "sub" / "mod2.py"),
        lambda: (a / "tokmon" / "new.py").write_text(""),
    ):
        before = _key(a)
        change()
        assert _key(a) != before
    # and so do the interpreter a venv would be made from and setup.py's build switches
    assert inst.source_key(b, identity="another python") != _key(b)
    before = _key(b)
    monkeypatch.setenv("TOKMON_NATIVE_CFLAGS", "-fsanitize=address")
    assert _key(b) != before
    monkeypatch.delenv("TOKMON_NATIVE_CFLAGS")
    monkeypatch.setenv("TOKMON_BUILD_NATIVE", "0")
    assert _key(b) != before


def test_an_unchanged_checkout_reuses_its_venv_a_changed_one_installs_anew(
    checkout: tuple[Path, Path, Path],
) -> None:
    repo, cache, prefix = checkout
    fake = FakeInstaller()
    first = inst.ensure_installed(repo, cache, installer=fake, log=_quiet)
    assert not first.reused and len(fake.calls) == 1
    assert first.prefix == prefix
    assert json.loads((first.prefix / inst.MARKER).read_text())["key"] == first.key
    again = inst.ensure_installed(repo, cache, installer=fake, log=_quiet)
    assert again.reused and again.prefix == first.prefix and len(fake.calls) == 1
    (repo / "tokmon" / "sub" / "mod.py").write_text("X = 3\n")
    changed = inst.ensure_installed(repo, cache, installer=fake, log=_quiet)
    assert not changed.reused and changed.prefix != first.prefix and len(fake.calls) == 2
    assert first.prefix.is_dir()  # recent: kept (pruning spares the newest and the recent)


def test_a_half_made_venv_is_made_again(checkout: tuple[Path, Path, Path]) -> None:
    repo, cache, prefix = checkout
    FakeInstaller()(repo, prefix)  # commands there, but no marker: an interrupted install
    (prefix / "leftover").write_text("")
    fake = FakeInstaller()
    got = inst.ensure_installed(repo, cache, installer=fake, log=_quiet)
    assert not got.reused and fake.calls == [prefix]
    assert not (prefix / "leftover").exists()
    # a marker of another key (a hash prefix clash, an older format) is not trusted either
    (prefix / inst.MARKER).write_text(json.dumps({"key": "something else"}))
    assert not inst.ensure_installed(repo, cache, installer=fake, log=_quiet).reused


def test_a_failed_install_leaves_nothing_and_is_not_retried_at_once(
    checkout: tuple[Path, Path, Path],
) -> None:
    repo, cache, prefix = checkout
    broken = FakeInstaller(fail="pip: no network")
    with pytest.raises(inst.InstallFailed, match="no network"):
        inst.ensure_installed(repo, cache, installer=broken, log=_quiet)
    assert not prefix.exists()
    # the next bench (CI runs several) falls back at once instead of failing again slowly
    working = FakeInstaller()
    with pytest.raises(inst.InstallFailed, match="failed .* ago.*no network"):
        inst.ensure_installed(repo, cache, installer=working, log=_quiet)
    assert working.calls == []
    # later, it tries again, and a success clears the failure
    failed = prefix.with_name(prefix.name + ".failed")
    old = time.time() - inst.FAILED_RETRY_S - 10
    os.utime(failed, (old, old))
    assert not inst.ensure_installed(repo, cache, installer=working, log=_quiet).reused
    assert working.calls == [prefix] and not failed.exists()


def test_an_installer_that_makes_no_commands_is_a_failure(
    checkout: tuple[Path, Path, Path],
) -> None:
    repo, cache, prefix = checkout

    def empty(_repo: Path, where: Path) -> None:
        where.mkdir(parents=True)

    with pytest.raises(inst.InstallFailed, match="no python/tokmon command"):
        inst.ensure_installed(repo, cache, installer=empty, log=_quiet)
    assert not prefix.exists()


def _venv(root: Path, name: str, used: float, marker: bool = True) -> Path:
    d = root / name
    d.mkdir(parents=True)
    if marker:
        (d / inst.MARKER).write_text("{}")
        os.utime(d / inst.MARKER, (used, used))
    else:
        os.utime(d, (used, used))
    return d


def test_prune_keeps_the_newest_and_the_recently_used(tmp_path: Path) -> None:
    now = 1_000_000_000.0
    old = now - inst.PRUNE_AGE_S - 60
    recent = now - 60
    root = tmp_path / "installed"
    current = _venv(root, "current", old - 500)  # in use now: never removed
    newest = [_venv(root, f"new{i}", old + i) for i in range(inst.KEEP)]
    stale = _venv(root, "stale", old - 100)
    recent_one = _venv(root, "recent-but-not-newest", recent)
    half_made = _venv(root, "half-made", old - 200, marker=False)
    # kept: the current one, and the newest KEEP others ("recent-but-not-newest" and the
    # newest "new"); the rest were unused for PRUNE_AGE_S (a half-made one: by its dir's mtime)
    removed = inst.prune(root, "current", now=now)
    assert sorted(removed) == sorted(["stale", "half-made", *[d.name for d in newest[:-1]]])
    assert current.is_dir() and recent_one.is_dir() and newest[-1].is_dir()
    assert not stale.exists() and not half_made.exists()
    # beyond the newest KEEP, one used within PRUNE_AGE_S stays (another bench may use it)
    busy_root = tmp_path / "busy"
    for i in range(inst.KEEP + 2):
        _venv(busy_root, f"v{i}", recent - i)
    assert inst.prune(busy_root, "current", now=now) == []
    assert len(list(busy_root.iterdir())) == inst.KEEP + 2


@pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX")
def test_prune_spares_a_venv_whose_lock_is_held(tmp_path: Path) -> None:
    now = 1_000_000_000.0
    old = now - inst.PRUNE_AGE_S - 60
    root = tmp_path / "installed"
    for i in range(inst.KEEP):
        _venv(root, f"new{i}", old + 10 + i)
    busy = _venv(root, "busy", old)
    with inst.locked(root / "busy.lock"):  # being (re)installed by another bench
        assert inst.prune(root, "current", now=now) == []
    assert busy.is_dir()
    assert inst.prune(root, "current", now=now) == ["busy"]


def test_resolve_in_place_installed_and_the_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = inst.resolve(True, ensure=pytest.fail)  # --in-place: no install attempted
    assert (t.mode, t.python, t.tokmon) == ("in-place", sys.executable,
                                            (sys.executable, "-m", "tokmon"))  # fmt: skip
    assert t.env({"PYTHONPATH": "/src", "PATH": "/bin"}) == {"PYTHONPATH": "/src", "PATH": "/bin"}
    assert "measured: tokmon in-place" in capsys.readouterr().err

    prefix = tmp_path / "venv"
    FakeInstaller()(REPO, prefix)
    made = inst.Install(prefix, "k" * 64, 12.5, reused=True)
    t = inst.resolve(False, ensure=lambda repo, cache: made, check=lambda p: {"native": True})
    assert t.installed and t.prefix == prefix
    assert t.python == str(inst.venv_exe(prefix, "python"))
    assert t.tokmon == t.script == (str(inst.venv_exe(prefix, "tokmon")),)
    bindir = str(inst.venv_exe(prefix, "python").parent)
    # installed: nothing may import the checkout, the venv's commands come first
    assert t.env({"PYTHONPATH": "/src", "PYTHONHOME": "/h", "PATH": "/bin", "A": "1"}) == {
        "PATH": bindir + os.pathsep + "/bin",
        "A": "1",
    }
    assert "installed in 12.5 s" in t.describe() and "C extensions loaded" in t.describe()
    assert t.as_json()["describe"] == t.describe()

    def broken(repo: Path, cache: Path | None) -> Any:
        raise inst.InstallFailed("pip: no network\n(details)")

    t = inst.resolve(False, ensure=broken)
    assert t.mode == "in-place" and t.python == sys.executable
    assert "FALLBACK" in t.note and "pip: no network" in t.note and "details" not in t.note
    err = capsys.readouterr().err
    assert "could not install tokmon" in err and "measured: tokmon in-place" in err


@pytest.mark.slow
def test_bench_engine_measures_a_real_install_reused_per_source(tmp_path: Path) -> None:
    """scripts/install.py into the bench cache, the benches' console script from it, and the
    second bench (CI's next step) reusing it."""
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k not in ("TOKMON_BENCH_DIR", "PYTHONPATH")}
    env.update(TOKMON_BENCH_DIR=str(cache), TOKMON_CCUSAGE=str(cache / "no-such-ccusage"))
    cmd = [sys.executable, str(REPO / "bench" / "bench_engine.py"), "--mb", "1", "--runs", "1"]
    res = subprocess.run(
        [*cmd, "--json"], capture_output=True, text=True, timeout=1800, cwd=REPO, env=env
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = json.loads(res.stdout)
    tok = data["tokmon"]
    assert tok["mode"] == "installed", tok
    prefix = Path(tok["prefix"])
    assert prefix.parent == cache / "installed"
    assert tok["tokmon"] == [str(prefix / ("Scripts" if os.name == "nt" else "bin") /
                                 ("tokmon.exe" if os.name == "nt" else "tokmon"))]  # fmt: skip
    assert data["sizes"][0]["totals"]["tokmon_daily_vs_expected"] == "equal"
    # the venv's tokmon is its own copy (not the checkout through an editable finder)
    where = subprocess.run(
        [tok["python"], "-c", "import tokmon; print(tokmon.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert Path(where.stdout.strip()).resolve().is_relative_to(prefix.resolve())
    again = subprocess.run(
        [sys.executable, str(REPO / "bench" / "_installed.py")],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"reusing installed tokmon {prefix}" in again.stderr
    assert "measured: tokmon installed" in again.stdout
