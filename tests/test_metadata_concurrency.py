"""Real processes hammer the store at once: no lost update, no torn file.

Four tagger processes, the real language-server service (`tokmon serve --jsonl`) writing
through its own protocol, and a reader validating the raw file in a loop.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import assistant_line, write_lines

from tokmon.metadata.store import MetadataStore
from tokmon.paths import get_paths

# slow: concurrent tagger processes and a language server
pytestmark = pytest.mark.slow

SESSIONS = [
    "aaaaaaaa-0000-4000-8000-000000000001",
    "bbbbbbbb-0000-4000-8000-000000000002",
    "cccccccc-0000-4000-8000-000000000003",
]
SERVER_SESSION = "dddddddd-0000-4000-8000-000000000004"
WORKERS = 4
OPS = 200

TAGGER = r"""
import sys, time
from pathlib import Path
from tokmon.metadata.store import MetadataStore
path, worker, ops, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
sessions, enough = sys.argv[5].split(","), Path(sys.argv[6])
store = MetadataStore(path)
while not go.exists():
    time.sleep(0.005)
for i in range(ops):
    sid = sessions[(worker + i) % len(sessions)]
    store.update(sid, add_tags=[f"w{worker}-{i}"])
    if i % 10 == 9:  # churn: add, then remove, a scratch tag
        store.update(sid, add_tags=[f"scratch-{worker}"])
        store.update(sid, remove_tags=[f"scratch-{worker}"])
# keep writing (net no change) until the test has seen enough server writes land meanwhile,
# so the overlap does not depend on how the scheduler shared out the CPU
while not enough.exists():
    sid = sessions[worker % len(sessions)]
    store.update(sid, add_tags=[f"scratch-{worker}"])
    store.update(sid, remove_tags=[f"scratch-{worker}"])
print("done")
"""

READER = r"""
import sys, time, orjson, json
from pathlib import Path
from tokmon.metadata.schema import validate
path, stop = Path(sys.argv[1]), Path(sys.argv[2])
reads = bad = 0
errors = []
while not stop.exists():
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        continue
    reads += 1
    try:
        validate(orjson.loads(raw))
    except Exception as exc:
        bad += 1
        errors.append(repr(exc)[:200])
print(json.dumps({"reads": reads, "bad": bad, "errors": errors[:5]}))
"""


def _corpus(root: Path) -> Path:
    """A tiny transcript corpus so the server knows the sessions it is asked to edit."""
    lines = [
        assistant_line(f"2026-03-01T10:0{n}:00.000Z", msg_id=f"m{n}", req_id=f"r{n}", session=sid)
        for n, sid in enumerate([*SESSIONS, SERVER_SESSION])
    ]
    write_lines(root / "projects" / "-home-u-proj" / "s.jsonl", lines)
    return root


class ServerDriver(threading.Thread):
    """Sends `tokmon/setSessionMetadata` to a real `tokmon serve --jsonl` until stopped."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tokmon", "serve", "--jsonl"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.stop = threading.Event()
        self.acked: list[int] = []
        self.errors: list[str] = []

    def call(self, req_id: int, params: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        msg = {"id": req_id, "method": "tokmon/setSessionMetadata", "params": params}
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server closed its stdout")
            reply = json.loads(line)
            if reply.get("id") == req_id:  # skip tokmon/metadataChanged notifications
                return reply

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            params = {
                "sessionId": SERVER_SESSION[:8],
                "addTags": [f"srv-{n}"],
                "description": f"written {n}",
            }
            reply = self.call(n, params)
            if "result" in reply:
                self.acked.append(n)
            else:
                self.errors.append(json.dumps(reply)[:300])

    def close(self) -> str:
        assert self.proc.stdin
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return self.proc.stderr.read() if self.proc.stderr else ""


def test_four_taggers_plus_language_server_lose_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = get_paths(env).metadata_file
    env = {**env, "CLAUDE_CONFIG_DIR": str(_corpus(tmp_path / "claude"))}
    go, stop, enough = tmp_path / "go", tmp_path / "stop", tmp_path / "enough"
    store = MetadataStore(path)
    store.update(SESSIONS[0], name="A", tags=["seed"])  # the file exists before the reader starts

    def spawn(code: str, *args: object) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", code, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    server = ServerDriver(env)
    first = server.call(0, {"sessionId": SERVER_SESSION, "name": "Server side"})
    assert "result" in first, first  # the server is up and writes to the same store
    reader = spawn(READER, path, stop)
    taggers = [spawn(TAGGER, path, w, OPS, go, ",".join(SESSIONS), enough) for w in range(WORKERS)]
    server.start()
    time.sleep(0.3)
    go.touch()
    try:
        # the taggers stay busy until the server has written > 20 times alongside them
        deadline = time.monotonic() + 300
        while len(server.acked) <= 20 and not server.errors and time.monotonic() < deadline:
            if not server.is_alive() or any(p.poll() not in (None, 0) for p in taggers):
                break
            time.sleep(0.05)
        enough.touch()
        results = [p.communicate(timeout=300) for p in taggers]
    finally:
        enough.touch()
        stop.touch()
        server.stop.set()
        server.join(timeout=60)
    server_err = server.close()
    reader_out, reader_err = reader.communicate(timeout=60)

    for p, (out, err) in zip(taggers, results, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "done"
    assert reader.returncode == 0, reader_err
    assert not server.errors, (server.errors[:3], server_err[-2000:])

    final = MetadataStore(path).all()
    for w in range(WORKERS):
        for i in range(OPS):
            sid = SESSIONS[(w + i) % len(SESSIONS)]
            assert f"w{w}-{i}" in final[sid]["tags"], (sid, w, i)
    total = sum(len(final[s]["tags"]) for s in SESSIONS)
    assert total == WORKERS * OPS + 1  # + "seed"; every scratch tag was removed again
    assert final[SESSIONS[0]]["name"] == "A"

    assert len(server.acked) > 20  # the server really wrote while the taggers ran
    srv = final[SERVER_SESSION]
    assert srv["name"] == "Server side"
    assert set(srv["tags"]) == {f"srv-{n}" for n in server.acked}
    assert srv["description"] == f"written {server.acked[-1]}"

    report = json.loads(reader_out)
    assert report["bad"] == 0, report["errors"]
    assert report["reads"] > 100  # the reader really raced the writers
    assert not list(path.parent.glob(".sessions.json.*.tmp"))
    print(
        f"\n{WORKERS * OPS * 1.2:.0f} tagger writes + {len(server.acked)} server writes; "
        f"{report['reads']} raw reads, all valid"
    )
