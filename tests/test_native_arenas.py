"""The native scanner's module init limits glibc's malloc to one arena for a cold scan's peak
RSS (docs/performance.md, tenth session: threads share the main thread's heap, so memory a
scan thread frees serves SQLite and Python), unless the user set a malloc setting of their
own; elsewhere it does nothing."""

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
    print("TUNED", _scan.MALLOC_TUNED)
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
    """The heaps (arenas) four threads used, and MALLOC_TUNED (None: the module not
    imported)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
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
    tuned = int(facts["TUNED"]) if "TUNED" in facts else None
    return int(facts["HEAPS"]), tuned


@pytest.fixture
def built() -> None:
    try:
        from tokmon._native import _scan  # noqa: F401
    except ImportError:
        pytest.skip("the native scanner is not built")


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_one_arena_once_imported(tmp_path: Path, built: None) -> None:
    assert _heaps(tmp_path, imported=True) == (1, 1)
    heaps, _ = _heaps(tmp_path, imported=False)  # the probe sees glibc's arenas: without, more
    assert heaps > 1


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
@pytest.mark.parametrize(
    "env",
    [
        {"MALLOC_ARENA_MAX": "4"},
        {"MALLOC_TOP_PAD_": "131072"},
        {"GLIBC_TUNABLES": "glibc.malloc.arena_max=3"},
        {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"},
    ],
)
def test_the_users_malloc_settings_win(tmp_path: Path, built: None, env: dict[str, str]) -> None:
    heaps, tuned = _heaps(tmp_path, imported=True, **env)
    assert tuned == 0 and heaps > 1


@pytest.mark.skipif(GLIBC, reason="another C library than glibc")
def test_nothing_set_elsewhere(built: None) -> None:
    from tokmon._native import _scan

    assert _scan.MALLOC_TUNED == 0
