"""A writer killed with SIGKILL mid-write never costs a committed change."""

from __future__ import annotations

import os
import random
import select
import signal
import time
from pathlib import Path

import orjson
import pytest

from tokmon.fsutil import atomic_write
from tokmon.metadata.fileio import dump_json
from tokmon.metadata.schema import SCHEMA_VERSION, validate
from tokmon.metadata.store import MetadataStore

# slow: a kill loop of 100 forked writers
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"), reason="needs fork and SIGKILL"
    ),
]

ROUNDS = 100
SESSIONS = [f"hot-{k}" for k in range(4)]


def _big_store(path: Path, n: int = 1000) -> None:
    """A realistically large file so each write takes long enough to be interrupted."""
    ts = "2026-01-01T00:00:00.000Z"
    docs = {
        str(i + 1): {
            "sessionId": f"bulk-{i:05d}",
            "name": f"bulk session {i}",
            "tags": ["bulk", f"group-{i % 17}"],
            "description": "x" * 200,
            "claudeTitle": None,
            "createdAt": ts,
            "updatedAt": ts,
        }
        for i in range(n)
    }
    atomic_write(path, dump_json({"sessions": docs, "_meta": {"1": {"schemaVersion": 2}}}))


def _writer(path: Path, round_no: int, wfd: int) -> None:
    """Child: commit tags forever, reporting each one after update() returns."""
    store = MetadataStore(path)
    i = 0
    while True:
        store.update(SESSIONS[i % len(SESSIONS)], add_tags=[f"r{round_no}-{i}"])
        os.write(wfd, f"{i}\n".encode())
        i += 1


def _drain(rfd: int, buf: bytearray, timeout: float) -> None:
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        ready, _, _ = select.select([rfd], [], [], max(left, 0))
        if not ready:
            return
        chunk = os.read(rfd, 65536)
        if not chunk:
            return
        buf.extend(chunk)


def _wait_for_temp_file(directory: Path, extra: float) -> None:
    """Spin until a writer's temp file appears (it is mid-write), then a bit more."""
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        if any(e.name.endswith(".tmp") for e in os.scandir(directory)):
            break
    end = time.monotonic() + extra
    while time.monotonic() < end:
        pass


def test_sigkill_mid_write_100_times(tmp_path: Path) -> None:
    import tinydb  # noqa: F401 - imported before forking, so children never import

    path = tmp_path / "data" / "sessions.json"
    _big_store(path)
    rng = random.Random(1234)
    committed: dict[str, set[str]] = {s: set() for s in SESSIONS}
    torn = 0  # kills that left a temp file behind, i.e. landed inside a write
    want_torn = ROUNDS // 5
    # ROUNDS rounds, then (if the scheduler let too few kills land inside a write) more
    # inside-a-write rounds until want_torn are confirmed, within a generous time limit
    extra_deadline = None
    round_no = -1
    while True:
        round_no += 1
        if round_no >= ROUNDS:
            if torn >= want_torn:
                break
            if extra_deadline is None:
                extra_deadline = time.monotonic() + 240
            if time.monotonic() > extra_deadline:
                break
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(rfd)
            try:
                _writer(path, round_no, wfd)
            finally:
                os._exit(1)
        os.close(wfd)
        buf = bytearray()
        # wait for the first commit, then kill at a random moment in the next writes
        deadline = time.monotonic() + 20
        while b"\n" not in buf and time.monotonic() < deadline:
            _drain(rfd, buf, 0.05)
        if b"\n" not in buf:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"round {round_no}: the writer committed nothing in 20 s")
        if round_no % 2 and round_no < ROUNDS:
            _drain(rfd, buf, rng.uniform(0.0, 0.03))  # a random moment
        else:
            _wait_for_temp_file(path.parent, rng.uniform(0.0, 0.002))  # inside a write
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        _drain(rfd, buf, 0.0)
        os.close(rfd)
        if list(path.parent.glob(".sessions.json.*.tmp")):
            torn += 1
        for line in buf.decode().split():
            i = int(line)
            committed[SESSIONS[i % len(SESSIONS)]].add(f"r{round_no}-{i}")

        # the file is always complete, valid JSON with every committed change
        data = orjson.loads(path.read_bytes())
        records = validate(data)
        assert len(records) >= 1000
        store = MetadataStore(path)
        all_now = store.all()
        for sid in SESSIONS:
            missing = committed[sid] - set(all_now.get(sid, {}).get("tags", []))
            assert not missing, f"round {round_no}: lost {sorted(missing)[:5]}"
    assert data["_meta"]["1"]["schemaVersion"] == SCHEMA_VERSION
    # the kills really did hit writes in progress (temp file written, not yet renamed)
    assert torn >= want_torn, f"only {torn} of {round_no} kills landed inside a write"
    # and the next writer sweeps the leftovers
    MetadataStore(path).update("hot-0", add_tags=["final"])
    assert not list(path.parent.glob(".sessions.json.*.tmp"))
    print(
        f"\n{torn}/{round_no} SIGKILLs landed mid-write; {sum(map(len, committed.values()))} "
        "committed tags all survived"
    )
