"""The fast path's stdlib directory resolution must agree with tokmon.paths.get_paths()."""

from __future__ import annotations

import os

import pytest

from tokmon.paths import get_paths
from tokmon.statusline.locate import ensure_private_dir, tokmon_dirs


def _as_dict(paths):
    return {"config": str(paths.config_dir), "data": str(paths.data_dir),
            "cache": str(paths.cache_dir), "state": str(paths.state_dir)}  # fmt: skip


@pytest.mark.parametrize(
    "xdg",
    [
        {},
        {"XDG_CACHE_HOME": "ABS/cache", "XDG_STATE_HOME": "ABS/state",
         "XDG_CONFIG_HOME": "ABS/config", "XDG_DATA_HOME": "ABS/data"},
        {"XDG_CACHE_HOME": "relative/cache", "XDG_STATE_HOME": ""},
    ],
)  # fmt: skip
def test_platform_dirs_agree(tmp_path, monkeypatch, xdg):
    monkeypatch.delenv("TOKMON_HOME", raising=False)
    for var in ("XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var, value in xdg.items():
        monkeypatch.setenv(var, value.replace("ABS", str(tmp_path)))
    ours = tokmon_dirs(os.environ)
    assert ours == _as_dict(get_paths(os.environ))
    assert ours["cache"].startswith(str(tmp_path))


def test_tokmon_home_agrees(tmp_path):
    env = {"TOKMON_HOME": str(tmp_path / "th")}
    assert tokmon_dirs(env) == _as_dict(get_paths(env))
    assert tokmon_dirs(env)["cache"] == str(tmp_path / "th" / "cache")


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_private_dirs_on_every_level(tmp_path):
    leaf = tmp_path / "a" / "b" / "c"
    ensure_private_dir(str(leaf))
    for d in (tmp_path / "a", tmp_path / "a" / "b", leaf):
        assert (d.stat().st_mode & 0o777) == 0o700
