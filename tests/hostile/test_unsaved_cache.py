"""Issue 10, item 10: when the ledger cannot be saved, no report cache stands for it.

The save is made to fail for real: the tokmon process runs with a file-size limit
(RLIMIT_FSIZE, SIGXFSZ ignored), so writing the ledger fails with EFBIG like a full disk,
while the small report cache file would still fit. `daily --json` used to serve the
cached report of the last saved ledger while `session --json` showed the new data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import assistant_line, write_lines

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")

LIMIT = 24 * 1024  # bytes: the ledger (~60 KB) does not fit, a report (~2 KB) does


def _limited() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _run(args: list[str], env: dict[str, str], limited: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokmon", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited if limited else None,
    )


def _input(r: subprocess.CompletedProcess[str]) -> int:
    assert r.returncode == 0, r.stderr
    return int(json.loads(r.stdout)["totals"]["inputTokens"])


def test_unsaved_data_is_never_hidden_by_the_report_cache(
    tmp_path: Path, env: dict[str, str]
) -> None:
    f = tmp_path / "claude" / "projects" / "p" / "a.jsonl"
    write_lines(
        f,
        [
            assistant_line(
                "2026-11-01T10:00:00.000Z", msg_id=f"m{i}", req_id=f"r{i}", inp=10, out=1
            )
            for i in range(300)
        ],
    )
    e = {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    assert _input(_run(["daily", "--json"], e, False)) == 3000  # saved, and cached
    write_lines(
        f,
        [
            assistant_line(
                "2026-11-01T11:00:00.000Z", msg_id=f"n{i}", req_id=f"q{i}", inp=20, out=1
            )
            for i in range(200)
        ],
    )
    for _ in range(2):
        r = _run(["daily", "--json"], e, True)
        assert "cannot save the ledger" in r.stderr  # the fault is real
        assert _input(r) == 3000 + 4000
        assert _input(_run(["session", "--json"], e, True)) == 7000
    # Space again, and one more line: the save reaches the generation the in-memory copy of
    # the limited runs had (a report cached under it would stand for other data).
    write_lines(f, [assistant_line("2026-11-01T12:00:00.000Z", msg_id="k", req_id="k", inp=5)])
    assert _input(_run(["daily", "--json"], e, False)) == 7005
    assert _input(_run(["daily", "--json"], e, False)) == 7005


_RO_MOUNT = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'


def _read_only(data: Path) -> tuple[list[str], Callable[[], None]]:
    """Make tokmon's data dir read-only for the processes run with the returned argv prefix;
    the callable undoes it. Not root: the dir's mode (0500: no file can be created in it).
    Root ignores modes: a read-only bind mount in a private mount namespace (EROFS)."""
    if os.geteuid() != 0:
        data.chmod(0o500)
        return [], lambda: data.chmod(0o700)
    argv = ["unshare", "-m", "sh", "-c", _RO_MOUNT, str(data)]
    try:
        probe = subprocess.run(
            [*argv, "touch", str(data / "probe")], capture_output=True, text=True, timeout=60
        )
    except OSError as exc:  # no unshare (not Linux)
        pytest.skip(f"root without a read-only mount: {exc}")
    if probe.returncode == 0 or "Read-only" not in probe.stderr:
        pytest.skip(f"root without a read-only mount (unshare -m): {probe.stderr.strip()}")
    return argv, lambda: None


@pytest.mark.slow  # several CLI processes
@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX modes / mounts")
def test_read_only_data_dir_never_hides_new_data(
    tmp_path: Path, env: dict[str, str], tokmon_home: Path
) -> None:
    """The ledger's directory read-only (WAL mode cannot make its -wal/-shm files): reports
    read the ledger into memory, add the new lines, say so, and no cached report of the
    saved ledger stands in for them."""
    f = tmp_path / "claude" / "projects" / "p" / "a.jsonl"
    old = tmp_path / "claude" / "projects" / "p" / "old.jsonl"
    write_lines(old, [assistant_line("2026-11-01T09:00:00.000Z", msg_id="o", req_id="o", inp=5)])
    write_lines(f, [assistant_line("2026-11-01T10:00:00.000Z", msg_id="m", req_id="r", inp=10)])
    e = {**env, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}
    assert _input(_run(["daily", "--json"], e, False)) == 15  # saved, and cached
    old.unlink()  # its usage now lives in the ledger only
    write_lines(f, [assistant_line("2026-11-01T11:00:00.000Z", msg_id="n", req_id="q", inp=20)])
    prefix, undo = _read_only(tokmon_home / "data")
    try:
        for _ in range(2):
            for report in ("daily", "session", "weekly"):
                r = subprocess.run(
                    [*prefix, sys.executable, "-m", "tokmon", report, "--json"],
                    env=e,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert "cannot save the ledger" in r.stderr  # the fault is real
                assert _input(r) == 35, report  # history + the new line, never the cache
    finally:
        undo()
    # Writable again: this refresh saves the next generation of the database, the very one
    # the read-only runs' in-memory copy had reached: a report they cached under that
    # version would now stand for different data.
    write_lines(f, [assistant_line("2026-11-01T12:00:00.000Z", msg_id="k", req_id="k", inp=40)])
    assert _input(_run(["daily", "--json"], e, False)) == 75
    assert _input(_run(["weekly", "--json"], e, False)) == 75
