"""JSON-lines service through a real subprocess: framing, errors, notifications, exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_server_support import REF_COST, REF_TOTALS, JsonlProc, corpus_path, server_env


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("jsonl")
    p = JsonlProc(server_env(home, corpus_path()))
    yield p
    if p.proc.poll() is None:
        assert p.close() == 0


def test_version_and_summary(svc: JsonlProc) -> None:
    import tokmon

    r = svc.call("tokmon/version")
    assert r == {"id": r["id"], "result": {"version": tokmon.__version__, "protocol": 1}}
    s = svc.call("tokmon/summary", {})["result"]
    for k, v in REF_TOTALS.items():
        assert s["totals"][k] == v
    assert s["totals"]["totalCost"] == pytest.approx(REF_COST, abs=0.01)


def test_malformed_lines_get_error_lines_and_service_goes_on(svc: JsonlProc) -> None:
    n = len(svc.orphans)
    svc.send_raw(b"this is not json\n")
    svc.send_raw(b'{"id": 5, "method": \n')  # truncated object
    svc.send_raw(b"[1, 2, 3]\n")
    svc.send_raw(b"\n   \n")  # blank lines are ignored
    svc.send_raw(b"\xff\xfe garbage bytes\n")
    svc.wait(lambda: len(svc.orphans) >= n + 4, what="4 error lines")
    codes = [o["error"]["code"] for o in svc.orphans[n:]]
    assert codes == [-32700, -32700, -32600, -32700]
    for o in svc.orphans[n:]:
        assert o["id"] is None and o["error"]["message"]
    assert svc.call("tokmon/version")["result"]["protocol"] == 1


def test_request_shape_errors(svc: JsonlProc) -> None:
    svc.send_raw(b'{"id": "a", "params": {}}\n')
    assert svc.response("a")["error"]["code"] == -32600
    svc.send_raw(b'{"id": "b", "method": "tokmon/summary", "params": 7}\n')
    assert svc.response("b")["error"]["code"] == -32600
    r = svc.call("tokmon/nothing")
    assert r["error"] == {"code": -32601, "message": "method not found: tokmon/nothing"}
    r = svc.call("tokmon/sessions", {"limit": "ten"})
    assert r["error"]["code"] == -32602 and "limit" in r["error"]["message"]
    r = svc.call("tokmon/session", {"sessionId": "nope"})
    assert r["error"] == {"code": -32602, "message": "unknown session id 'nope'"}
    # "jsonrpc": "2.0" is accepted
    svc.send_raw(b'{"jsonrpc": "2.0", "id": "c", "method": "tokmon/version"}\n')
    assert svc.response("c")["result"]["protocol"] == 1


def test_notification_requests_get_no_response(svc: JsonlProc) -> None:
    before = len(svc.raw)
    svc.send_raw(b'{"method": "tokmon/version"}\n')
    svc.send_raw(b'{"method": "tokmon/nothing"}\n')
    r = svc.call("tokmon/version")  # a later request is answered; nothing for the two above
    assert r["result"]["protocol"] == 1
    lines = [json.loads(x) for x in svc.raw[before:]]
    assert lines == [r]


def test_concurrent_requests_matched_by_id(svc: JsonlProc) -> None:
    ids = [svc.send("tokmon/sessions", {"limit": k}) for k in range(1, 11)]
    for k, i in enumerate(ids, start=1):
        assert len(svc.response(i)["result"]["sessions"]) == k


def test_metadata_response_then_notification(svc: JsonlProc) -> None:
    sid = svc.call("tokmon/sessions", {"sort": "cost", "limit": 1})["result"]["sessions"][0][
        "sessionId"
    ]
    start = len(svc.notes)
    i = svc.send("tokmon/setSessionMetadata", {"sessionId": sid, "addTags": ["jsonl"]})
    r = svc.response(i)
    assert r["result"]["tags"] == ["jsonl"]
    note = svc.wait_note("tokmon/metadataChanged", lambda p: p["sessionId"] == sid, start=start)
    assert note["tags"] == ["jsonl"]
    raw = [json.loads(x) for x in svc.raw]
    resp_at = next(k for k, m in enumerate(raw) if m.get("id") == i)
    note_at = next(
        k
        for k, m in enumerate(raw)
        if m.get("method") == "tokmon/metadataChanged" and m["params"]["sessionId"] == sid
    )
    assert resp_at < note_at


def test_execute_command_alias(svc: JsonlProc) -> None:
    sid = svc.call("tokmon/sessions", {"sort": "cost", "limit": 2})["result"]["sessions"][1][
        "sessionId"
    ]
    r = svc.call(
        "workspace/executeCommand",
        {"command": "tokmon.renameSession", "arguments": [sid, "via jsonl"]},
    )
    assert r["result"]["name"] == "via jsonl"


def test_exit_notification_ends_cleanly(tmp_path: Path) -> None:
    p = JsonlProc(server_env(tmp_path, corpus_path()))
    assert p.call("tokmon/version")["result"]["protocol"] == 1
    p.send_raw(b'{"method": "exit"}\n')
    assert p.proc.wait(15) == 0
    assert b"Traceback" not in p.stderr


def test_eof_ends_cleanly_and_stdout_is_protocol_only(tmp_path: Path) -> None:
    p = JsonlProc(server_env(tmp_path, corpus_path()), ("--log-level", "debug"))
    p.send_raw(b'{"id": 1, "method": "tokmon/summary"}\nnot json\n')
    p.response(1)
    assert p.close() == 0
    for line in p.raw:  # every stdout line is one JSON object with id or method
        msg = json.loads(line)
        assert isinstance(msg, dict) and ("id" in msg or "method" in msg)
    assert p.stderr, "debug logs go to stderr"
    assert b"Traceback" not in p.stderr


def test_jsonl_mode_does_not_import_pygls() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tokmon.service, tokmon.service_watch, tokmon.server.jsonl, "
        "tokmon.core.watcher, "
        "tokmon.cli.serve; print(sorted(m for m in sys.modules if m.startswith('pygls')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip() == "[]"
