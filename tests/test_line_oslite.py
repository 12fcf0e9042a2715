"""The fast command's shortcuts (issue 12 item 4) keep ``tokmon line``'s behaviour.

* ``tokmon.oslite`` stands in for :mod:`os` under ``python -S``: its answers must be
  :mod:`os`'s (compared in one ``python -S`` process, oslite loaded first);
* ``tokmon line`` leaves with ``_exit`` only when the interpreter's teardown has nothing to do:
  output flushed, exit code kept, ``atexit`` callbacks and live threads still honoured;
* the statusLine payload read takes what is already in the pipe without waiting, waits for
  a late writer, and leaves a shared stdin's blocking mode as it found it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from line_support import make_env

from tokmon.statusline.main import fast_command

REPO = Path(__file__).resolve().parent.parent
posix_only = pytest.mark.skipif(os.name == "nt", reason="oslite stands in for os on POSIX only")

COMPARE = r"""
import sys
sys.path.insert(0, sys.argv[1])
from tokmon import oslite
assert oslite.NATIVE and "os" not in sys.modules, sorted(sys.modules)
joins = [("a", "b"), ("/a", "b", "c"), ("a/", "b"), ("a", "/b"), ("", "b"), ("a", ""),
         ("/", "x"), ("a", "b/", "c"), ("a//", "b")]
users = ["~", "~/x", "~/.cache", "x~", "/abs", "", "~root/x", "~nobody-such-user/x", "~/"]
with open("probe.bin", "wb") as fh:
    fh.write(bytes(range(256)) * 40)
got = {"join": [oslite.join(*j) for j in joins], "user": [oslite.expanduser(u) for u in users],
       "env": dict(oslite.environ()), "cwd": oslite.getcwd(), "sep": oslite.sep,
       "stat": oslite.stat(sys.argv[1]).st_mtime_ns, "name": oslite.name,
       "read": oslite.read_file("probe.bin", 1 << 20), "cut": oslite.read_file("probe.bin", 300)}
import os, posixpath
want = {"join": [posixpath.join(*j) for j in joins], "user": [os.path.expanduser(u) for u in users],
        "env": dict(os.environ), "cwd": os.getcwd(), "sep": os.sep,
        "stat": os.stat(sys.argv[1]).st_mtime_ns, "name": os.name,
        "read": (open("probe.bin", "rb").read(), os.stat("probe.bin").st_mtime),
        "cut": (open("probe.bin", "rb").read(300), os.stat("probe.bin").st_mtime)}
for key in want:
    assert got[key] == want[key], (key, got[key], want[key])
print("same")
"""


@posix_only
@pytest.mark.parametrize("home", ["/home/someone", "/home/trailing/", "/", None])
def test_oslite_answers_as_os_does(tmp_path: Path, home: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HOME"}
    env_b = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    env_b[b"TOKMON_ODD"] = b"caf\xe9 not utf-8"  # decoded with surrogateescape, as os does
    if home is not None:
        env_b[b"HOME"] = os.fsencode(home)
    r = subprocess.run([sys.executable, "-S", "-c", COMPARE, str(REPO)], env=env_b,
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == "same", r.stderr


LEAVE = r"""
import sys, atexit, threading, time
sys.path.insert(0, sys.argv[1])
from tokmon.statusline.main import leave
case = sys.argv[2]
if case == "atexit":
    atexit.register(lambda: print("atexit ran", flush=True))
elif case == "thread":
    def late():
        time.sleep(0.3)
        print("thread finished", flush=True)
    threading.Thread(target=late).start()
sys.stdout.write("buffered line\n")  # not flushed yet: a pipe is block-buffered
sys.exit(leave(int(sys.argv[3])))
"""


@pytest.mark.parametrize(
    ("case", "tail"),
    [("plain", ""), ("atexit", "atexit ran\n"), ("thread", "thread finished\n")],
)
def test_fast_exit_flushes_keeps_the_code_and_lets_teardown_work_run(case: str, tail: str) -> None:
    r = subprocess.run([sys.executable, "-S", "-c", LEAVE, str(REPO), case, "3"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 3, r.stderr
    assert r.stdout == "buffered line\n" + tail


def test_fast_command_exit_codes_and_output_through_a_pipe(tmp_path: Path) -> None:
    env = make_env(tmp_path, copy_corpus=False)
    ok = subprocess.run([*fast_command(), "line", "--format", "plain", "--no-refresh"],
                        env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0 and ok.stdout == "tokmon …\n", ok
    bad = subprocess.run([*fast_command(), "line", "--no-such-flag"], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("tokmon line: error: unrecognized argument '--no-such-flag'")


PAYLOAD = {"session_id": "oslite-1", "session_name": "pipe-test",
           "cost": {"total_cost_usd": 4.25}}  # fmt: skip


def _claude_line(env: dict[str, str], write_after: float | None) -> tuple[str, bool]:
    """Run the statusLine command on a pipe whose read end this process keeps open too (as
    a shell sharing its stdin would); returns its output and the pipe's blocking mode after."""
    rfd, wfd = os.pipe()
    try:
        data = json.dumps(PAYLOAD).encode()
        if write_after is None:
            os.write(wfd, data)
        proc = subprocess.Popen([*fast_command(), "line", "--claude", "--no-refresh"],
                                env=env, stdin=rfd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip
        if write_after is not None:
            time.sleep(write_after)  # the command is waiting for its payload by now
            os.write(wfd, data)
        os.close(wfd)
        wfd = -1
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        return out.decode(), os.get_blocking(rfd)
    finally:
        os.close(rfd)
        if wfd >= 0:
            os.close(wfd)


@posix_only
@pytest.mark.parametrize("write_after", [None, 0.5])
def test_payload_read_now_or_late_and_stdin_left_blocking(
    tmp_path: Path, write_after: float | None
) -> None:
    env = make_env(tmp_path, copy_corpus=False)
    out, blocking = _claude_line(env, write_after)
    assert "pipe-test $4.25" in out, out
    assert blocking
