"""tokmon.core.official: per-session official figures, concurrent writers, pruning, never raising."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tokmon.core import official
from tokmon.paths import get_paths

WRITER = """
import sys, time
from tokmon.core import official
from tokmon.paths import get_paths
worker = int(sys.argv[1])
for i in range(25):
    official.record(get_paths(), {
        "session_id": f"sess-{worker}", "session_name": f"worker {worker} #{i}",
        "rate_limits": {"five_hour": {"used_percentage": i, "resets_at": time.time() + 3600}},
    })
"""


def paths_for(tmp_path):
    return get_paths({"TOKMON_HOME": str(tmp_path / "home")})


def test_concurrent_writers_lose_nothing(tmp_path):
    env = dict(os.environ, TOKMON_HOME=str(tmp_path / "home"))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(w)], env=env) for w in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    p = paths_for(tmp_path)
    data = json.loads(p.official_file.read_text(encoding="utf-8"))  # valid JSON, never torn
    assert sorted(data["sessions"]) == [f"sess-{w}" for w in range(4)]
    for w in range(4):
        rec = data["sessions"][f"sess-{w}"]
        assert rec["sessionName"] == f"worker {w} #24" and rec["fiveHour"]["usedPercentage"] == 24
    if os.name != "nt":
        assert (p.official_file.stat().st_mode & 0o777) == 0o600


def test_missing_windows_keep_the_last_seen_and_latest_merges(tmp_path):
    p = paths_for(tmp_path)
    now = time.time()
    official.record(p, {"session_id": "a", "rate_limits": {
        "five_hour": {"used_percentage": 40, "resets_at": now + 100},
        "seven_day": {"used_percentage": 10, "resets_at": now + 9999}}}, now=now - 60)  # fmt: skip
    official.record(p, {"session_id": "a", "session_name": "A"}, now=now - 30)
    rec = official.for_session(p, "a")
    assert rec["sessionName"] == "A" and rec["fiveHour"]["usedPercentage"] == 40
    assert rec["fiveHour"]["observedAt"] == now - 60  # the age of the figure, not of the call
    official.record(p, {"session_id": "b"}, now=now)  # a newer session without rate limits
    latest = official.latest(p)
    assert latest["sessionId"] == "b"
    assert latest["fiveHour"]["usedPercentage"] == 40 and latest["sevenDay"]["usedPercentage"] == 10


def test_pruning_by_age_and_count(tmp_path):
    p = paths_for(tmp_path)
    now = time.time()
    official.record(p, {"session_id": "ancient"}, now=now - 9 * 86400)
    for i in range(official.MAX_SESSIONS + 5):
        official.record(p, {"session_id": f"s{i}"}, now=now + i)
    sessions = official.all_sessions(p)
    assert len(sessions) == official.MAX_SESSIONS and "ancient" not in sessions
    assert "s0" not in sessions and f"s{official.MAX_SESSIONS + 4}" in sessions


def test_readers_never_raise(tmp_path):
    p = paths_for(tmp_path)
    assert official.latest(p) is None
    p.official_file.parent.mkdir(parents=True)
    for garbage in (b"", b"{", b"[]", b'{"sessions": 5}', b'{"sessions": {"x": 1}}', b"\xff"):
        p.official_file.write_bytes(garbage)
        assert official.latest(p) is None
        assert official.for_session(p, "x") is None
    assert official.latest(object()) is None  # not even a paths object
