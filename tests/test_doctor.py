"""`tokmon doctor` in a healthy set-up, and in each broken one (real files and processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, assistant_line, write_lines

# slow: each test sets every integration up with CLI processes, then runs doctor (which starts
# the server and the statusline's interpreter)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name == "nt", reason="set-up files are POSIX shell/tmux here"),
]


def _corpus(root: Path) -> Path:
    write_lines(
        root / "projects" / "-home-u-proj" / "s.jsonl",
        [
            assistant_line("2026-03-01T10:00:00.000Z", msg_id="m1", req_id="r1"),
            assistant_line("2026-03-01T10:05:00.000Z", msg_id="m2", req_id="r2"),
        ],
    )
    return root


@pytest.fixture
def healthy(env: dict[str, str], tmp_path: Path, cli) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Every integration set up the documented way, with this interpreter's tokmon on PATH."""
    bindir = os.path.dirname(sys.executable)
    if not os.path.exists(os.path.join(bindir, "tokmon")):
        pytest.skip("no `tokmon` console script beside this interpreter (not pip-installed)")
    env = {
        **env,
        "CLAUDE_CONFIG_DIR": str(_corpus(tmp_path / "claude")),
        "PATH": os.pathsep.join([bindir, "/usr/bin", "/bin"]),
        "SHELL": "/bin/bash",
    }
    home = Path(env["HOME"])
    (home / ".bashrc").write_text('eval "$(tokmon init bash)"\n')
    plugin = REPO / "integrations" / "tmux" / "tokmon.tmux"
    (home / ".tmux.conf").write_text(f"set -g status-right '#{{tokmon}}'\nrun-shell {plugin}\n")
    for argv in (["install-statusline"], ["daily"], ["line", "--sync"]):
        r = subprocess.run(
            [sys.executable, "-m", "tokmon", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, (argv, r.stderr)
    return env


def _doctor(env: dict[str, str], *extra: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    j = subprocess.run(
        [sys.executable, "-m", "tokmon", "doctor", "--json", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    doc = json.loads(j.stdout)
    assert j.returncode == (0 if doc["ok"] else 1), j.stderr
    return j.returncode, {c["name"]: c for c in doc["checks"]}, j.stderr


def _only_problem(checks: dict, name: str) -> dict:  # type: ignore[type-arg]
    bad = sorted(n for n, c in checks.items() if c["status"] == "problem")
    assert bad == [name], {n: checks[n]["detail"] for n in bad}
    c = checks[name]
    assert c["fix"], c
    return c  # type: ignore[no-any-return]


def _installed_ok() -> bool:
    import tokmon
    from tokmon.cli.doctor import _owners

    return _owners(Path(tokmon.__file__).resolve().parent.parent)[0] == ["tokmon-cli"]


def test_healthy_setup_has_no_problem(healthy: dict[str, str]) -> None:
    if not _installed_ok():
        pytest.skip("this environment also holds another `tokmon` distribution")
    code, checks, err = _doctor(healthy)
    assert code == 0, {n: c["detail"] for n, c in checks.items() if c["status"] != "ok"}
    assert set(checks) == {
        "install",
        "config",
        "transcripts",
        "ledger",
        "statusline",
        "snapshot",
        "shell",
        "tmux",
        "server",
    }
    assert all(c["status"] == "ok" for c in checks.values()), checks
    assert "tokmon-cli" in checks["install"]["detail"]
    assert "(2 files)" not in checks["transcripts"]["detail"]  # one transcript file
    assert "(1 files)" in checks["transcripts"]["detail"]
    assert "2 records" in checks["ledger"]["detail"]
    # the human form: one line per check, no fix lines, exit 0
    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "doctor"],
        env=healthy,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and r.stdout.rstrip().endswith("no problems found")
    assert "fix:" not in r.stdout and "PROBLEM" not in r.stdout


def test_broken_config(healthy: dict[str, str]) -> None:
    cfg = Path(healthy["TOKMON_HOME"]) / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('timezone = "Mars/Base"\nsession_hours = 0\n')
    code, checks, _ = _doctor(healthy, "--no-server")
    c = _only_problem({k: v for k, v in checks.items() if k not in ("install",)}, "config")
    assert code == 1 and "timezone" in c["detail"] and "session_hours" in c["detail"]


@pytest.mark.parametrize("where", ["missing", "no-projects"])
def test_mistyped_claude_config_dir(healthy: dict[str, str], tmp_path: Path, where: str) -> None:
    bad = tmp_path / "clade"  # a typo
    if where == "no-projects":
        bad.mkdir()
    env = {**healthy, "CLAUDE_CONFIG_DIR": str(bad)}
    # the statusLine lives in the first CLAUDE_CONFIG_DIR entry, so it is "not set up" there
    code, checks, _ = _doctor(env, "--no-server")
    assert code == 1
    t = checks["transcripts"]
    assert t["status"] == "problem" and str(bad) in t["detail"] and "CLAUDE_CONFIG_DIR" in t["fix"]


def test_corrupt_ledger(healthy: dict[str, str]) -> None:
    ledgers = list((Path(healthy["TOKMON_HOME"]) / "data").glob("ledger-*.sqlite3"))
    assert len(ledgers) == 1
    ledgers[0].write_bytes(b"{not a database" * 100)
    code, checks, _ = _doctor(healthy, "--no-server")
    c = _only_problem({k: v for k, v in checks.items() if k != "install"}, "ledger")
    assert "corrupt" in c["detail"] and ".bad" in c["fix"]
    # the human form: the problem line, then its fix right below it; exit 1
    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "doctor", "--no-server"],
        env=healthy,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = r.stdout.splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.startswith("PROBLEM  ledger"))
    assert lines[i + 1].strip().startswith("fix: ") and ".bad" in lines[i + 1]
    assert r.returncode == 1 and "problem(s) found" in lines[-1]
    assert "Traceback" not in r.stderr


def _settings(env: dict[str, str]) -> Path:
    return Path(env["CLAUDE_CONFIG_DIR"]) / "settings.json"


def test_statusline_pointing_at_a_removed_install(healthy: dict[str, str], tmp_path: Path) -> None:
    s = _settings(healthy)
    data = json.loads(s.read_text())
    data["statusLine"]["command"] = (
        f"{tmp_path}/gone/bin/python -S {tmp_path}/gone/lib/tokmon/statusline/fast.py line --claude"
    )
    s.write_text(json.dumps(data))
    _, checks, _ = _doctor(healthy, "--no-server")
    c = _only_problem({k: v for k, v in checks.items() if k != "install"}, "statusline")
    assert "does not exist" in c["detail"] and "install-statusline" in c["fix"]


def test_statusline_interpreter_cannot_import_tokmon(
    healthy: dict[str, str], tmp_path: Path
) -> None:
    venv = tmp_path / "bare"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    py = venv / "bin" / "python"
    s = _settings(healthy)
    data = json.loads(s.read_text())
    data["statusLine"]["command"] = f"{py} -m tokmon line --claude"
    s.write_text(json.dumps(data))
    _, checks, _ = _doctor(healthy, "--no-server")
    c = _only_problem({k: v for k, v in checks.items() if k != "install"}, "statusline")
    assert "fails" in c["detail"] and "No module named tokmon" in c["detail"]


def test_stale_snapshot_with_hooks_installed(healthy: dict[str, str]) -> None:
    snaps = list(Path(healthy["TOKMON_HOME"]).rglob("snapshot.bin"))
    assert len(snaps) == 1
    old = time.time() - 3 * 3600
    # the statusline check runs `line --claude`, which may refresh the snapshot: skip it
    s = _settings(healthy)
    s.unlink()
    os.utime(snaps[0], (old, old))
    _, checks, _ = _doctor(healthy, "--no-server")
    c = _only_problem({k: v for k, v in checks.items() if k != "install"}, "snapshot")
    assert "3 h old" in c["detail"] and "line --sync" in c["fix"]


def test_shell_hook_without_tokmon_on_path(healthy: dict[str, str]) -> None:
    env = {**healthy, "PATH": "/usr/bin:/bin"}
    if (
        subprocess.run(["sh", "-c", "command -v tokmon"], env=env, capture_output=True).returncode
        == 0
    ):
        pytest.skip("a system-wide tokmon is on /usr/bin")
    _, checks, _ = _doctor(env, "--no-server")
    sh = checks["shell"]
    assert sh["status"] == "problem" and "not found" in sh["detail"] and ".bashrc" in sh["detail"]
    assert checks["tmux"]["status"] == "problem"  # the plugin needs it on PATH too


def test_tmux_plugin_path_missing(healthy: dict[str, str], tmp_path: Path) -> None:
    conf = Path(healthy["HOME"]) / ".tmux.conf"
    conf.write_text(f"run-shell {tmp_path}/old-clone/integrations/tmux/tokmon.tmux\n")
    _, checks, _ = _doctor(healthy, "--no-server")
    c = _only_problem({k: v for k, v in checks.items() if k != "install"}, "tmux")
    assert "old-clone" in c["detail"] and "does not exist" in c["detail"]


def test_server_that_cannot_start(healthy: dict[str, str], tmp_path: Path) -> None:
    """A leftover `tokmon` script first on PATH whose interpreter is gone (editors run that)."""
    stale = tmp_path / "stale-bin"
    stale.mkdir()
    script = stale / "tokmon"
    script.write_text(f"#!{tmp_path}/removed-venv/bin/python\nimport tokmon\n")
    script.chmod(0o755)
    env = {**healthy, "PATH": os.pathsep.join([str(stale), healthy["PATH"]])}
    code, checks, _ = _doctor(env)
    c = checks["server"]
    assert code == 1 and c["status"] == "problem"
    assert str(script) in c["detail"] and "serve" in c["fix"]


def test_another_tokmon_distribution_is_a_problem(healthy: dict[str, str], tmp_path: Path) -> None:
    """PyPI's unrelated `tokmon` installed beside tokmon-cli (both own the `tokmon` package)."""
    site = tmp_path / "site"
    info = site / "tokmon-0.2.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tokmon\nVersion: 0.2.1\n")
    (info / "top_level.txt").write_text("tokmon\n")
    env = {**healthy, "PYTHONPATH": str(site)}
    code, checks, _ = _doctor(env, "--no-server")
    c = checks["install"]
    assert code == 1 and c["status"] == "problem"
    assert (
        "tokmon" in c["detail"] and "pip uninstall tokmon " in c["fix"] and "tokmon-cli" in c["fix"]
    )


def test_statusline_that_cannot_record_official_figures(healthy: dict[str, str]) -> None:
    """The line still prints, but the official figures cannot be stored (state dir broken)."""
    state = Path(healthy["TOKMON_HOME"]) / "state"
    if state.exists():
        import shutil

        shutil.rmtree(state)
    state.write_text("not a directory")
    _, checks, _ = _doctor(healthy, "--no-server")
    c = _only_problem({k: v for k, v in checks.items() if k != "install"}, "statusline")
    assert "does not record" in c["detail"] and "line --explain" in c["fix"]


def test_doctor_removes_its_probe_from_the_official_store(healthy: dict[str, str]) -> None:
    from tokmon.core import official
    from tokmon.paths import get_paths

    _doctor(healthy, "--no-server")
    sessions = official.all_sessions(get_paths(healthy))
    assert not [s for s in sessions if s.startswith("tokmon-doctor-")]


def test_newer_ledger_is_not_to_be_rebuilt(healthy: dict[str, str]) -> None:
    """A ledger of a newer tokmon: the fix is an upgrade, never moving it aside."""
    import sqlite3

    ledger = next((Path(healthy["TOKMON_HOME"]) / "data").glob("ledger-*.sqlite3"))
    con = sqlite3.connect(ledger)
    with con:
        con.execute("UPDATE meta SET value=99 WHERE key='schema'")
    con.close()
    before = ledger.read_bytes()
    code, checks, _ = _doctor(healthy, "--no-server")
    c = _only_problem({k: v for k, v in checks.items() if k != "install"}, "ledger")
    assert code == 1 and "newer tokmon" in c["detail"]
    assert "upgrade" in c["fix"] and ".bad" not in c["fix"] and "mv " not in c["fix"]
    assert ledger.read_bytes() == before
