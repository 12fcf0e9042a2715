"""Snapshot building from the Summary contract, and the cheap "nothing changed" check."""

from __future__ import annotations

import marshal
import os
import time
from datetime import datetime

from tokmon.statusline import snapshot


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


SUMMARY = {
    "generatedAt": "2027-01-15T12:00:00.000Z",
    "timezone": "UTC",
    "today": {"date": "2027-01-15", "inputTokens": 1, "outputTokens": 2, "cacheCreationTokens": 3,
              "cacheReadTokens": 4, "totalTokens": 10, "totalCost": 0.5},
    "activeBlock": {
        "id": "2027-01-15T10:00:00.000Z", "startTime": "2027-01-15T10:00:00.000Z",
        "endTime": "2027-01-15T15:00:00.000Z", "actualEndTime": "2027-01-15T11:58:30.000Z",
        "isActive": True, "isGap": False, "entries": 3, "totalTokens": 123456, "costUSD": 1.5,
        "burnRate": {"tokensPerMinute": 1000.0, "tokensPerMinuteForIndicator": 600.0,
                     "costPerHour": 0.75},
        "projection": {"totalTokens": 300000, "totalCost": 3.0, "remainingMinutes": 180},
        "remainingMinutes": 180.0, "burnLevel": "medium", "limitPercent": 12.3,
    },
    "tokenLimit": {"tokens": 1_000_000, "source": "config"},
    "official": None,
    "activeSessions": [{"sessionId": "s1", "projectPath": "/p", "projectName": "p",
                        "firstActivity": "2027-01-15T10:00:00.000Z",
                        "lastActivity": "2027-01-15T11:58:30.000Z", "totalTokens": 7,
                        "totalCost": 0.25, "title": "T", "isActive": True, "name": "Mine"}],
    "projectSession": None,
}  # fmt: skip


def test_from_summary_condenses_the_contract():
    snap = snapshot.from_summary(
        SUMMARY, settings={"warningPercent": 70, "staleSeconds": 5, "format": "tmux"}, now=123.0
    )
    assert snap["v"] == snapshot.VERSION and snap["generatedAt"] == 123.0
    assert snap["settings"] == {"warningPercent": 70.0, "criticalPercent": 95.0,
                                "staleSeconds": 5.0, "tokenLimit": 1_000_000,
                                "tokenLimitSource": "config", "format": "tmux"}  # fmt: skip
    block = snap["block"]
    assert block["start"] == ts("2027-01-15T10:00:00Z")
    assert block["end"] == ts("2027-01-15T15:00:00Z")
    assert block["lastEntry"] == ts("2027-01-15T11:58:30Z")
    assert (block["totalTokens"], block["costUSD"], block["burnLevel"]) == (123456, 1.5, "medium")
    assert snap["today"]["until"] == ts("2027-01-16T00:00:00Z")  # end of the day in UTC
    assert snap["sessions"] == [{"sessionId": "s1", "projectPath": "/p", "projectName": "p",
                                 "title": "T", "name": "Mine", "totalCost": 0.25,
                                 "totalTokens": 7,
                                 "lastActivity": ts("2027-01-15T11:58:30Z")}]  # fmt: skip
    assert marshal.loads(marshal.dumps(snap)) == snap  # only marshal-safe types


def test_no_active_block_and_empty_summary():
    snap = snapshot.from_summary({}, settings={})
    assert snap["block"] is None and snap["sessions"] == [] and snap["today"]["totalCost"] == 0.0


def test_read_fast_rejects_other_versions_and_garbage(tmp_path):
    path = tmp_path / "s.bin"
    path.write_bytes(marshal.dumps({"v": 999}))
    assert snapshot.read_fast(str(path)) == (None, 0.0)
    path.write_bytes(marshal.dumps([1, 2]))
    assert snapshot.read_fast(str(path)) == (None, 0.0)
    assert snapshot.read_fast(str(tmp_path / "missing.bin")) == (None, 0.0)
    snapshot.write({"v": snapshot.VERSION, "x": 1}, str(path))
    snap, mtime = snapshot.read_fast(str(path))
    assert snap == {"v": snapshot.VERSION, "x": 1} and abs(mtime - time.time()) < 60


def test_watch_list_sees_appends_new_files_and_new_projects(tmp_path):
    root = tmp_path / "projects"
    proj = root / "-home-u-p"
    proj.mkdir(parents=True)
    old = proj / "old.jsonl"
    old.write_text("{}\n")
    week_ago = time.time() - 7 * 86400
    os.utime(old, (week_ago, week_ago))
    live = proj / "live.jsonl"
    live.write_text("{}\n")
    cfg = tmp_path / "config.toml"
    watch, complete = snapshot.watch_list([root], [str(cfg)], time.time())
    paths = [p for p, _ in watch]
    assert complete and str(live) in paths and str(old) not in paths  # only recent transcripts
    assert str(root) in paths and str(proj) in paths and str(cfg) in paths
    snap = {"watch": watch, "watchComplete": True}
    assert snapshot.watch_unchanged(snap)

    def bump(path):
        t = time.time() + 5
        os.utime(path, (t, t))

    with live.open("a") as fh:
        fh.write("{}\n")
    bump(live)
    assert not snapshot.watch_unchanged(snap)
    snap = {"watch": snapshot.watch_list([root], [str(cfg)], time.time())[0],
            "watchComplete": True}  # fmt: skip
    (proj / "new-session.jsonl").write_text("{}\n")
    bump(proj)
    assert not snapshot.watch_unchanged(snap)
    snap = {"watch": snapshot.watch_list([root], [str(cfg)], time.time())[0],
            "watchComplete": True}  # fmt: skip
    cfg.write_text("token_limit = 5\n")  # a config file that appears counts too
    assert not snapshot.watch_unchanged(snap)
    assert not snapshot.watch_unchanged({"watch": [], "watchComplete": False})
