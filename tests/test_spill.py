"""tokmon.core.spill: a build's bytes kept in an unnamed file beside its database while the
scan runs: every byte back in order, nothing left beside it, memory when the file cannot be
made or written, OSError when what was written cannot be read back; and a build whose spill
cannot be read back still sums exactly (without the cells from its rows)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

from tokmon.core import ledger, spill
from tokmon.core.spill import Spill


def _chunks(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(rng.randrange(0, 5000)) for _ in range(n)]


@pytest.mark.parametrize("readv", [True, False])
def test_every_byte_back_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, readv: bool
) -> None:
    """(With os.readv, and with os.read as where there is none: Windows.)"""
    monkeypatch.setattr(spill, "_READV", readv and hasattr(os, "readv"))
    rng = random.Random(1)
    parts = _chunks(rng, 120)  # ~300 KB: several writes of 64 KiB
    s = Spill(tmp_path / "b.sqlite3", "times")
    for p in parts:
        s.add(p)
    assert s.in_file > 0 and len(s) == sum(map(len, parts))
    if os.name != "nt":
        assert os.listdir(tmp_path) == []  # (unlinked when made)
    assert s.take() == b"".join(parts)
    assert s.take() == b"" and len(s) == 0  # (taken once)


def test_memory_when_no_file_can_be_made(tmp_path: Path) -> None:
    s = Spill(tmp_path / "missing" / "b.sqlite3", "times")
    parts = _chunks(random.Random(2), 60)
    for p in parts:
        s.add(p)
    assert s.in_file == 0
    assert s.take() == b"".join(parts)
    m = Spill(None)
    m.add(b"abc")
    assert m.take() == b"abc"


def test_a_failed_write_keeps_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk after some writes: what the file has is read back, the rest held."""
    real = os.write
    calls = []

    def write(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 3:
            real(fd, bytes(data)[:100])  # (a part of it, then the disk is full)
            raise OSError(28, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(spill.os, "write", write)
    parts = _chunks(random.Random(3), 150)
    s = Spill(tmp_path / "b.sqlite3", "hashes")
    for p in parts:
        s.add(p)
    assert len(calls) == 3 and s.in_file == 0
    assert s.take() == b"".join(parts)


def test_a_failed_read_back_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Spill(tmp_path / "b.sqlite3", "times")
    for p in _chunks(random.Random(4), 80):
        s.add(p)
    assert s.in_file > 0
    monkeypatch.setattr(spill.os, "read", lambda fd, n: b"")  # (shorter than written)
    monkeypatch.setattr(spill.os, "readv", lambda fd, bufs: 0, raising=False)
    with pytest.raises(OSError):
        s.take()


def test_a_build_whose_spill_is_lost_still_sums_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spill's read-back fails in a build: no cells or spans from the rows (every row
    ranked by the dedup, the sums from the records), the same stored sums and records."""
    from tests.test_cellsums import _build, _dup_streams

    streams = _dup_streams()
    monkeypatch.setattr(spill, "CHUNK", 256)  # (written to the file at once)
    want = _build(tmp_path, "ok", streams)
    assert want[2]  # (the cells from the rows)

    def lost(self: Spill) -> bytes:
        raise OSError("gone")

    monkeypatch.setattr(Spill, "take", lost)
    got = _build(tmp_path, "lost", streams)
    assert got[:2] == want[:2] and not got[2]
    assert ledger.SPILL
