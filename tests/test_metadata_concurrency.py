"""Several real processes hammer the store at once: no lost update, no torn file."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tokmon.metadata.store import MetadataStore

SESSIONS = ["sess-a", "sess-b", "sess-c"]
WORKERS = 4
OPS = 200

TAGGER = r"""
import sys, time
from pathlib import Path
from tokmon.metadata.store import MetadataStore
path, worker, ops, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
sessions = sys.argv[5].split(",")
store = MetadataStore(path)
while not go.exists():
    time.sleep(0.005)
for i in range(ops):
    sid = sessions[(worker + i) % len(sessions)]
    store.update(sid, add_tags=[f"w{worker}-{i}"])
    if i % 10 == 9:  # churn: add and remove a scratch tag in one read-modify-write
        store.update(sid, add_tags=[f"scratch-{worker}"])
        store.update(sid, remove_tags=[f"scratch-{worker}"])
print("done")
"""

# Stands in for the language server: it renames sessions and records Claude titles.
SERVER_STANDIN = r"""
import sys, time
from pathlib import Path
from tokmon.metadata.store import MetadataStore
path, go, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
store = MetadataStore(path)
while not go.exists():
    time.sleep(0.005)
n = 0
while not stop.exists():
    store.set_claude_title("sess-a", f"title {n}")
    store.update("sess-server", description=f"written {n}")
    n += 1
print(n)
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


def test_four_taggers_plus_server_writer_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "sessions.json"
    go, stop = tmp_path / "go", tmp_path / "stop"
    store = MetadataStore(path)
    store.update("sess-a", name="A", tags=["seed"])  # the file exists before the reader starts

    def spawn(code: str, *args: object) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", code, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    reader = spawn(READER, path, stop)
    server = spawn(SERVER_STANDIN, path, go, stop)
    taggers = [spawn(TAGGER, path, w, OPS, go, ",".join(SESSIONS)) for w in range(WORKERS)]
    time.sleep(0.3)
    go.touch()
    try:
        results = [p.communicate(timeout=300) for p in taggers]
    finally:
        stop.touch()
    server_out, server_err = server.communicate(timeout=60)
    reader_out, reader_err = reader.communicate(timeout=60)

    for p, (out, err) in zip(taggers, results, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "done"
    assert server.returncode == 0, server_err
    assert reader.returncode == 0, reader_err

    final = MetadataStore(path).all()
    for w in range(WORKERS):
        for i in range(OPS):
            sid = SESSIONS[(w + i) % len(SESSIONS)]
            assert f"w{w}-{i}" in final[sid]["tags"], (sid, w, i)
    total = sum(len(final[s]["tags"]) for s in SESSIONS)
    assert total == WORKERS * OPS + 1  # + "seed"; every scratch tag was removed again
    assert final["sess-a"]["name"] == "A"  # the server's Claude titles never replaced it

    writes = int(server_out.strip())
    assert writes > 0
    assert final["sess-a"]["claudeTitle"] == f"title {writes - 1}"
    assert final["sess-server"]["description"] == f"written {writes - 1}"

    report = json.loads(reader_out)
    assert report["bad"] == 0, report["errors"]
    assert report["reads"] > 100  # the reader really raced the writers
    assert not list(path.parent.glob(".sessions.json.*.tmp"))
