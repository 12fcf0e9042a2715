"""The native scanner's module init limits glibc's malloc to one arena (threads share the main
thread's heap, so memory a scan thread frees serves SQLite and Python; docs/performance.md,
tenth session), unless the user chose a limit; elsewhere it does nothing."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Threads that allocate through malloc (bytearrays above pymalloc's 512 bytes), all alive at
# once; then glibc's malloc_info lists the heaps (arenas) in use.
_PROBE = r"""
import ctypes, re, sys, threading
if sys.argv[1] == "import":
    from tokmon._native import _scan
    print("ARENA_MAX", _scan.ARENA_MAX)
barrier = threading.Barrier(5)
keep = []
def work():
    keep.append([bytearray(4096) for _ in range(64)])
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
barrier.wait()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
f = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, f)
libc.fclose(f)
print("HEAPS", len(re.findall(r"<heap nr=", open(sys.argv[2]).read())))
"""


def _heaps(tmp_path: Path, imported: bool, **env: str) -> tuple[int, int | None]:
    full = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    full.update(env)
    r = subprocess.run(
        [sys.executable, "-c", _PROBE, "import" if imported else "-", str(tmp_path / "mi.xml")],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    facts = dict(line.split() for line in r.stdout.splitlines())
    arena = int(facts["ARENA_MAX"]) if "ARENA_MAX" in facts else None
    return int(facts["HEAPS"]), arena


@pytest.fixture
def built() -> None:
    try:
        from tokmon._native import _scan  # noqa: F401
    except ImportError:
        pytest.skip("the native scanner is not built")


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_one_arena_once_the_scanner_is_imported(tmp_path: Path, built: None) -> None:
    assert _heaps(tmp_path, imported=True) == (1, 1)
    alone, _ = _heaps(tmp_path, imported=False)  # the probe can see arenas: without it, more
    assert alone > 1


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_the_users_choice_wins(tmp_path: Path, built: None) -> None:
    heaps, arena = _heaps(tmp_path, imported=True, MALLOC_ARENA_MAX="4")
    assert arena == 0 and heaps > 1
    heaps, arena = _heaps(tmp_path, imported=True, GLIBC_TUNABLES="glibc.malloc.arena_max=3")
    assert arena == 0 and heaps > 1


@pytest.mark.skipif(GLIBC, reason="another C library than glibc")
def test_nothing_set_elsewhere(built: None) -> None:
    from tokmon._native import _scan

    assert _scan.ARENA_MAX == 0
