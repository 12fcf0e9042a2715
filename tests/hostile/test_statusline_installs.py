"""Issue 13 item 10: the statusLine command ``install-statusline`` writes (``python -S
.../tokmon/statusline/fast.py line --claude``) records Claude Code's official 5h / 7d figures from
a regular and from an editable install, in fresh virtual environments, with tokmon's default
(platformdirs) locations; and a failure to record shows in ``line --explain``.

``python -S`` skips ``site``: nothing a ``.pth`` file adds (an editable install's source
finder, the venv's other packages) is importable, so the fast path must need only the
standard library and the tokmon package itself.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from hostile.hs_support import REPO, assistant, hs_env, write_transcript

PAYLOAD = json.dumps({"session_id": "inst-1", "session_name": "install check",
                      "cost": {"total_cost_usd": 0.25},
                      "rate_limits": {"five_hour": {"used_percentage": 42.0, "resets_at": 2e9},
                                      "seven_day": {"used_percentage": 7.0}}})  # fmt: skip


def _venv(tmp: Path, editable: bool) -> Path:
    venv = tmp / ("venv-editable" if editable else "venv-regular")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    cmd = [str(py), "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check"]
    r = subprocess.run([*cmd, *(["-e"] if editable else []), str(REPO)], capture_output=True,
                       text=True, timeout=600, cwd=str(tmp))  # fmt: skip
    if r.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"pip install failed: {r.stderr[-2000:]}")
        pytest.skip(f"pip install failed (no package index?): {r.stderr[-300:]}")
    # tokmon's dependencies, reachable like any venv's packages: through site (a .pth file),
    # so ``python -S`` does not see them (as after `pip install tokmon` into this venv)
    purelib = subprocess.run([str(py), "-c", "import sysconfig;print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()  # fmt: skip
    Path(purelib, "hs_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


def _env(tmp: Path) -> dict[str, str]:
    env = hs_env(tmp)
    del env["TOKMON_HOME"]  # the default (platformdirs) locations, as for a user
    write_transcript(env, "-p", "inst-1.jsonl", [assistant("i1", sid="inst-1")])
    return env


def _state_dir(env: dict[str, str]) -> Path:
    """tokmon's state dir for ``env`` (its HOME: resolved in a child, like tokmon does)."""
    code = "from tokmon.statusline.locate import tokmon_dirs; print(tokmon_dirs()['state'])"
    r = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(REPO)},
                       capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    return Path(r.stdout.strip())


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="venv layout (bin/) of POSIX")
@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_statusline_command_records_official_figures(tmp_path: Path, editable: bool) -> None:
    venv = _venv(tmp_path, editable)
    env = _env(tmp_path)
    tokmon = str(venv / "bin" / "tokmon")
    settings = Path(env["CLAUDE_CONFIG_DIR"]) / "settings.json"
    r = subprocess.run([tokmon, "install-statusline"], env=env, capture_output=True, text=True,
                       timeout=120, cwd=str(tmp_path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    command = json.loads(settings.read_text())["statusLine"]["command"]
    assert " -S " in f" {command} " and "fast.py" in command
    # Claude Code runs the command through a shell, in the project directory
    r = subprocess.run(["sh", "-c", command], input=PAYLOAD, env=env, capture_output=True,
                       text=True, timeout=120, cwd=str(tmp_path))  # fmt: skip
    assert r.returncode == 0 and "install check" in r.stdout, (r.stdout, r.stderr)
    official = _state_dir(env) / "official.json"
    assert official.is_file(), f"nothing recorded; stdout {r.stdout!r}"
    rec = json.loads(official.read_text())["sessions"]["inst-1"]
    assert rec["fiveHour"]["usedPercentage"] == 42.0 and rec["sevenDay"]["usedPercentage"] == 7.0
    r = subprocess.run([tokmon, "line", "--explain"], env=env, capture_output=True, text=True,
                       timeout=120, cwd=str(tmp_path))  # fmt: skip
    assert "could not record" not in r.stdout, r.stdout

    # a state dir that cannot be written: the statusLine still answers, and --explain says why
    state = _state_dir(env)
    shutil.rmtree(state)
    state.write_text("not a directory")
    argv = [*shlex.split(command)]
    r = subprocess.run(argv, input=PAYLOAD, env=env, capture_output=True, text=True,
                       timeout=120, cwd=str(tmp_path))  # fmt: skip
    assert r.returncode == 0 and "install check" in r.stdout
    r = subprocess.run([tokmon, "line", "--explain"], env=env, capture_output=True, text=True,
                       timeout=120, cwd=str(tmp_path))  # fmt: skip
    assert "could not record them" in r.stdout, r.stdout
