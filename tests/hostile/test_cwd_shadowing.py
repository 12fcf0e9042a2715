"""Issue 10 item 3: no tokmon process imports from the current directory.

A cloned repository can hold ``logging.py``, ``tempfile.py``, ``orjson.py`` or a ``tokmon/``
package.  Claude Code, starship and prompts run ``tokmon line`` in that directory; the line,
the statusLine fast command, the background refresher they start, the shell hooks' fallback
command and the server must never execute those files.  Each shadowing module here writes a
marker file when imported.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from hostile.hs_support import (
    assistant,
    fast_argv,
    hs_env,
    refresher_idle,
    run,
    tokmon_argv,
    wait_for,
    write_transcript,
)

SHADOWED = ["logging", "tempfile", "hashlib", "bisect", "dataclasses", "orjson", "fcntl",
            "json", "subprocess", "select", "platformdirs", "runpy", "pathlib", "shlex",
            "secrets", "textwrap", "typing", "datetime", "zoneinfo"]  # fmt: skip
FORMATS = ["plain", "tmux", "starship", "bash", "zsh", "fish", "json", "claude"]
PAYLOAD = json.dumps({"session_id": "sess-1", "session_name": "demo",
                      "cost": {"total_cost_usd": 1.5},
                      "rate_limits": {"five_hour": {"used_percentage": 12.5}}})  # fmt: skip


def _evil_repo(tmp: Path) -> tuple[Path, Path]:
    repo, markers = tmp / "cloned-repo", tmp / "markers"
    repo.mkdir()
    markers.mkdir()
    body = "open({path!r}, 'w').write('imported from the cwd')\n"
    for name in SHADOWED:
        (repo / f"{name}.py").write_text(body.format(path=str(markers / name)))
    pkg = repo / "tokmon"
    (pkg / "statusline").mkdir(parents=True)
    (pkg / "__init__.py").write_text(body.format(path=str(markers / "tokmon")))
    (pkg / "statusline" / "__init__.py").write_text(
        body.format(path=str(markers / "tokmon.statusline"))
    )
    return repo, markers


def _setup(tmp: Path) -> tuple[dict[str, str], Path, Path]:
    env = hs_env(tmp)
    write_transcript(env, "-p", "sess-1.jsonl", [assistant(f"m{i}") for i in range(3)])
    repo, markers = _evil_repo(tmp)
    return env, repo, markers


def _snapshot(env: dict[str, str]) -> Path:
    return Path(env["TOKMON_HOME"]) / "cache" / "line" / "snapshot.bin"


def _wait_refresh(env: dict[str, str], markers: Path) -> None:
    wait_for(lambda: _snapshot(env).exists() or any(markers.iterdir()),
             what="the background refresher's snapshot")  # fmt: skip
    _assert_clean(markers)
    wait_for(lambda: refresher_idle(env), what="the refresher to finish")


def _assert_clean(markers: Path) -> None:
    assert sorted(p.name for p in markers.iterdir()) == []


@pytest.mark.slow
def test_line_every_format_and_its_refresher_ignore_the_cwd(tmp_path: Path) -> None:
    env, repo, markers = _setup(tmp_path)
    r = run([*tokmon_argv(), "line"], env, repo)  # no snapshot yet: starts the refresher
    assert r.returncode == 0, r.stderr
    _wait_refresh(env, markers)
    log = Path(env["TOKMON_HOME"]) / "cache" / "line" / "refresh.log"
    assert "Error" not in (log.read_text() if log.exists() else "")
    for fmt in FORMATS:
        r = run([*tokmon_argv(), "line", "--format", fmt], env, repo)
        assert r.returncode == 0 and r.stdout.strip(), (fmt, r.stderr)
        # the three responses' 4,500 tokens (as 4.5k / 4.50k / 4,500 / 4500 by format)
        assert any(t in r.stdout for t in ("4.5", "4,500", "4500")), (fmt, r.stdout)
    r = run([*tokmon_argv(), "line", "--claude"], env, repo, stdin=PAYLOAD)
    assert r.returncode == 0 and "demo" in r.stdout, r.stdout
    _assert_clean(markers)


@pytest.mark.slow
def test_fast_command_and_its_refresher_ignore_the_cwd(tmp_path: Path) -> None:
    env, repo, markers = _setup(tmp_path)
    fast = fast_argv(env)
    assert "-S" in fast
    r = run([*fast, "line", "--claude"], env, repo, stdin=PAYLOAD)
    assert r.returncode == 0, r.stderr
    _wait_refresh(env, markers)
    for fmt in FORMATS:
        r = run([*fast, "line", "--format", fmt], env, repo)
        assert r.returncode == 0 and r.stdout.strip(), (fmt, r.stderr)
    official = Path(env["TOKMON_HOME"]) / "state" / "official.json"
    assert "sess-1" in official.read_text()  # the statusLine payload was recorded
    _assert_clean(markers)


@pytest.mark.slow
def test_shell_fallback_command_and_server_ignore_the_cwd(tmp_path: Path) -> None:
    from tokmon.safepython import _BOOT, module_argv

    env, repo, markers = _setup(tmp_path)
    # the hooks' command when no `tokmon` script is found; and the pre-3.11 bootstrap
    for argv in (module_argv("tokmon"), [sys.executable, "-c", _BOOT, "tokmon"]):
        r = run([*argv, "line", "--sync", "--format", "bash"], env, repo)
        assert r.returncode == 0 and "today" in r.stdout, (argv[:3], r.stdout, r.stderr)
        r = run([*argv, "daily", "--json"], env, repo)
        assert r.returncode == 0 and json.loads(r.stdout)["totals"]["inputTokens"] == 3000
    r = run([*tokmon_argv(), "serve", "--jsonl"], env, repo,
            stdin='{"id":1,"method":"tokmon/version"}\n')  # fmt: skip
    assert r.returncode == 0 and '"id":1' in r.stdout.replace(" ", ""), r.stderr
    _assert_clean(markers)


def test_module_argv_has_no_cwd_entry(tmp_path: Path) -> None:
    """The argv tokmon builds for its own children: no '' / '.' on sys.path in the child."""
    from tokmon.safepython import module_argv

    (tmp_path / "probe.py").write_text("import sys; print(repr(sys.path))\n")
    argv = module_argv("probe")
    r = run(argv, hs_env(tmp_path), tmp_path)
    # the module is not found: the cwd is not searched
    assert r.returncode != 0 and "No module named probe" in r.stderr, r.stderr


@pytest.mark.slow
def test_alert_runner_started_by_the_statusline_ignores_the_cwd(tmp_path: Path) -> None:
    """``line --claude`` starts ``tokmon alerts run`` when alerts are configured."""
    psutil = pytest.importorskip("psutil")
    env, repo, markers = _setup(tmp_path)
    config = Path(env["TOKMON_HOME"]) / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[alerts]\n")
    me = psutil.Process()
    before = {p.pid for p in psutil.process_iter()}
    for argv in ([*tokmon_argv(), "line", "--claude"], [*fast_argv(env), "line", "--claude"]):
        r = run(argv, env, repo, stdin=PAYLOAD)
        assert r.returncode == 0, r.stderr

    def runners() -> list[object]:
        out = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info.get("cmdline") or [])
            if p.pid not in before and p.pid != me.pid and "alerts run --official" in cmd:
                out.append(p)
        return out

    wait_for(lambda: not runners() or any(markers.iterdir()), what="the alert runners to end")
    _assert_clean(markers)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="PYTHONSAFEPATH is Python 3.11+")
def test_spawned_scan_workers_skip_the_cwd(tmp_path: Path) -> None:
    """macOS and Windows start scan workers with ``multiprocessing``'s spawn method
    (``python -c ...``, the cwd first on sys.path); the scan sets PYTHONSAFEPATH for them
    (tokmon.safepython).  Without it the shadow package below is imported by the worker."""
    repo, markers = _evil_repo(tmp_path)
    shadow = repo / "multiprocessing"
    shadow.mkdir()
    (shadow / "__init__.py").write_text(f"open({str(markers / 'mp')!r}, 'w').write('x')\n")
    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing as mp, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from tokmon.safepython import protect_spawned_children\n"
        "def f(x):\n    return x\n"
        "if __name__ == '__main__':\n"
        "    protect_spawned_children()\n"
        "    with mp.get_context('spawn').Pool(1) as p:\n        print(p.map(f, [1]))\n"
    )
    r = run([sys.executable, str(script)], hs_env(tmp_path), repo, timeout=120)
    assert r.returncode == 0 and "[1]" in r.stdout, r.stderr[-500:]
    _assert_clean(markers)


def _tmux(sock: str, env: dict[str, str], *args: str) -> str:
    import subprocess

    r = subprocess.run(["tmux", "-L", sock, "-f", "/dev/null", *args], env=env,
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="tmux is POSIX only")
def test_tmux_plugin_fallback_command_ignores_the_pane_cwd(tmp_path: Path) -> None:
    """No `tokmon` script on PATH: the TPM plugin falls back to `python3`.  tmux runs the
    status job in the session's directory (here a cloned repository with a shadowing
    ``tokmon/`` and ``json.py``...): the job must not import them."""
    import shutil
    import uuid

    if shutil.which("tmux") is None:
        pytest.skip("tmux not installed")
    env, repo, markers = _setup(tmp_path)
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    py = fakebin / "python3"  # python3 with tokmon installed, but no `tokmon` script
    py.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    py.chmod(0o755)
    env["PATH"] = f"{fakebin}{os.pathsep}/usr/bin{os.pathsep}/bin"
    env.pop("TMUX", None)
    assert shutil.which("tokmon", path=env["PATH"]) is None
    plugin = Path(__file__).resolve().parents[2] / "tokmon.tmux"  # the root shim TPM runs
    sock = f"tokmon-shadow-{uuid.uuid4().hex[:8]}"
    outer = sock + "-outer"
    try:
        _tmux(sock, env, "new-session", "-d", "-s", "s", "-x", "200", "-y", "10", "-c", str(repo))
        _tmux(sock, env, "set-option", "-g", "status-interval", "1")
        # control: a plain `python3 -c 'import json'` status job does import the repo's json.py
        # (proves the jobs run in the repository)
        _tmux(sock, env, "set-option", "-g", "status-right", "#(python3 -c 'import json')")
        # a client must draw the status line for its jobs to run: attach one from an outer tmux
        _tmux(outer, env, "new-session", "-d", "-s", "o", "-x", "200", "-y", "12",
              f"env -u TMUX tmux -L {sock} attach -t s")  # fmt: skip
        wait_for(lambda: (markers / "json").exists(), what="the control job")
        _tmux(sock, env, "set-option", "-g", "status-right", "R[#{tokmon}]")
        wait_for(lambda: _retry_clean(markers), what="the control marker removal")
        _tmux(sock, env, "run-shell", str(plugin))
        right = _tmux(sock, env, "show-option", "-gv", "status-right")
        assert "#(" in right and "line --format tmux" in right, right

        def shown() -> bool:
            rows = _tmux(outer, env, "capture-pane", "-p", "-t", "o").rstrip("\n").splitlines()
            return bool(rows) and "R[5h" in rows[-1] or any(markers.iterdir())

        wait_for(shown, what="the plugin's status job output")
        _wait_refresh(env, markers)
        _assert_clean(markers)
    finally:
        import subprocess

        for server in (outer, sock):
            subprocess.run(["tmux", "-L", server, "kill-server"], env=env, capture_output=True,
                           timeout=30)  # fmt: skip


def _retry_clean(markers: Path) -> bool:
    """Remove the control job's markers (a last run may still be going: until none is left)."""
    import time

    for marker in markers.iterdir():
        marker.unlink(missing_ok=True)
    time.sleep(1.5)  # a control job started just before the status option changes
    return not any(markers.iterdir())
