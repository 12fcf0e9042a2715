"""Property-based fuzzing of every method's params over both transports: the server never dies.

Every answer must be a result or a well-formed client error (-32600/-32601/-32602); an internal
error (-32603) or a dead process fails the test.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server_support import JsonlProc, corpus_path, server_env, start_lsp, stop_lsp

from tokmon.service import METHODS

# slow: real language-server processes
pytestmark = pytest.mark.slow

ALLOWED = {-32600, -32601, -32602}

KEYS = {
    "tokmon/version": [],
    "tokmon/hello": ["capabilities", "client"],
    "tokmon/summary": ["workspaceFolder"],
    "tokmon/refresh": ["workspaceFolder"],
    "tokmon/sessions": [
        "project",
        "tag",
        "since",
        "until",
        "sort",
        "order",
        "limit",
        "workspaceFolder",
    ],
    "tokmon/session": ["sessionId"],
    "tokmon/blocks": ["active", "recent", "tokenLimit"],
    "tokmon/daily": ["since", "until", "timezone"],
    "tokmon/series": ["period", "by", "since", "until", "timezone", "limit"],
    "tokmon/official": [],
    "tokmon/setSessionMetadata": [
        "sessionId",
        "name",
        "tags",
        "addTags",
        "removeTags",
        "description",
    ],
    "workspace/executeCommand": ["command", "arguments"],
    "tokmon/limits": [],
}
assert set(KEYS) == set(METHODS), "fuzz every method"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=60),
)
json_values = st.recursive(
    scalars,
    lambda c: st.one_of(
        st.lists(c, max_size=4), st.dictionaries(st.text(max_size=10), c, max_size=4)
    ),
    max_leaves=12,
)
plausible = st.one_of(
    st.sampled_from(
        [
            "2025-11-29",
            "20251129",
            "2026-02-30",
            "",
            "lastActivity",
            "cost",
            "name",
            "tokens",
            "asc",
            "desc",
            "max",
            "UTC",
            "Europe/Berlin",
            "a",
            "e",
            "1",
            "/",
            "file:///src",
            "file://",
            "tokmon.tagSession",
            "tokmon.renameSession",
            "tokmon.describeSession",
            "Mars/Olympus",
            "day",
            "week",
            "model",
            "project",
            "../..",
            "\x00",
            "é" * 50,
        ]
    ),
    st.lists(st.sampled_from(["infra", "Bad Tag!", "", "x" * 50, "ok-tag"]), max_size=3),
    st.integers(-3, 5),
)
value = st.one_of(plausible, json_values)


@st.composite
def requests(draw: Any) -> tuple[str, Any]:
    method = draw(st.sampled_from(sorted(KEYS) + ["tokmon/unknown", "tokmon/", ""]))
    keys = KEYS.get(method, []) + ["bogus"]
    shape = draw(st.integers(0, 9))
    if shape == 0:
        params = draw(json_values)  # any JSON at all
    else:
        chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)))
        params = {k: draw(value) for k in chosen if k != "bogus" or draw(st.booleans())}
    return method, params


def _check(resp: dict[str, Any]) -> None:
    if "error" in resp:
        err = resp["error"]
        assert err["code"] in ALLOWED, resp
        assert isinstance(err["message"], str) and err["message"]
    else:
        assert "result" in resp


FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def jsonl(tmp_path_factory: pytest.TempPathFactory):
    p = JsonlProc(server_env(tmp_path_factory.mktemp("fuzz-jsonl"), corpus_path()))
    yield p
    assert p.close() == 0
    assert b"Traceback" not in p.stderr, p.stderr.decode(errors="replace")[-3000:]


@FUZZ
@given(req=requests())
def test_jsonl_fuzz(jsonl: JsonlProc, req: tuple[str, Any]) -> None:
    method, params = req
    msg_id = jsonl.send(method, params)
    resp = jsonl.response(msg_id, timeout=20)
    _check(resp)
    assert jsonl.proc.poll() is None


class LoopThread:
    """An asyncio loop in a thread, so sync hypothesis tests can drive the async LSP client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def lsp(tmp_path_factory: pytest.TempPathFactory):
    lt = LoopThread()
    env = server_env(tmp_path_factory.mktemp("fuzz-lsp"), corpus_path())
    client = lt.run(start_lsp(env))
    yield lt, client
    lt.run(stop_lsp(client))
    lt.close()


async def _lsp_call(client: Any, method: str, params: Any) -> dict[str, Any]:
    from pygls.exceptions import JsonRpcException

    try:
        res = await asyncio.wait_for(client.protocol.send_request_async(method, params), 20)
        return {"result": res}
    except JsonRpcException as exc:
        return {"error": {"code": exc.code, "message": exc.message}}


async def _lsp_command(client: Any, params: Any) -> dict[str, Any]:
    from lsprotocol import types
    from pygls.exceptions import JsonRpcException

    p = params if isinstance(params, dict) else {}
    command = p.get("command") if isinstance(p.get("command"), str) else "tokmon.tagSession"
    args = p.get("arguments") if isinstance(p.get("arguments"), list) else None
    try:
        res = await asyncio.wait_for(
            client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=command, arguments=args)
            ),
            20,
        )
        return {"result": res}
    except JsonRpcException as exc:
        return {"error": {"code": exc.code, "message": exc.message}}


@settings(FUZZ, max_examples=150)
@given(req=requests())
def test_lsp_fuzz(lsp: Any, req: tuple[str, Any]) -> None:
    lt, client = lsp
    method, params = req
    if method == "workspace/executeCommand":  # a typed LSP request: the client shapes it
        resp = lt.run(_lsp_command(client, params))
    else:
        resp = lt.run(_lsp_call(client, method or "tokmon/", params))
    _check(resp)
    assert lt.run(_lsp_call(client, "tokmon/version", None))["result"]["protocol"] == 1
