"""Session metadata over LSP: setSessionMetadata, executeCommand aliases, external writes."""

from __future__ import annotations

import json

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from test_server_support import corpus_path, request, server_env, start_lsp, stop_lsp, wait_note

# slow: a real language server and CLI processes
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("lsp-meta")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(home):
    c = await start_lsp(server_env(home, corpus_path()))
    yield c
    await stop_lsp(c)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sids(client) -> list[str]:
    rows = (await request(client, "tokmon/sessions", {"sort": "cost"}))["sessions"]
    return [r["sessionId"] for r in rows]


def _store_file(home) -> dict:
    return json.loads((home / "tokmon" / "data" / "sessions.json").read_text())


async def test_set_metadata_then_notification(client, sids, home) -> None:
    sid = sids[0]
    start = len(client.notes["tokmon/metadataChanged"])
    row = await request(
        client,
        "tokmon/setSessionMetadata",
        {
            "sessionId": sid[:10],
            "name": "Big Refactor",
            "tags": ["Infra", "q3"],
            "description": "the expensive one",
        },
    )
    assert row["sessionId"] == sid and row["name"] == "Big Refactor"
    assert row["tags"] == ["infra", "q3"] and row["description"] == "the expensive one"
    assert row["totalCost"] > 0  # a full SessionRow comes back
    note = await wait_note(
        client, "tokmon/metadataChanged", start=start, pred=lambda p: p["sessionId"] == sid
    )
    assert {k: note[k] for k in ("name", "tags", "description")} == {
        "name": "Big Refactor",
        "tags": ["infra", "q3"],
        "description": "the expensive one",
    }
    # persisted in the shared store file (the same one the CLI uses)
    docs = _store_file(home)["sessions"].values()
    assert any(d["sessionId"] == sid and d["name"] == "Big Refactor" for d in docs)
    # and visible in listings, filterable by tag
    tagged = (await request(client, "tokmon/sessions", {"tag": "INFRA"}))["sessions"]
    assert [r["sessionId"] for r in tagged] == [sid]
    # add/remove, then clear with null
    row = await request(
        client,
        "tokmon/setSessionMetadata",
        {"sessionId": sid, "addTags": ["x"], "removeTags": ["q3"], "description": None},
    )
    assert row["tags"] == ["infra", "x"] and row["description"] is None


async def test_execute_command_aliases(client, sids) -> None:
    sid = sids[1]
    start = len(client.notes["tokmon/metadataChanged"])
    res = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="tokmon.tagSession", arguments=[sid, "alpha", "beta"])
    )
    assert res["tags"] == ["alpha", "beta"]
    res = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="tokmon.describeSession", arguments=[sid, "notes here"])
    )
    assert res["description"] == "notes here"
    res = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="tokmon.renameSession", arguments=[sid, "second"])
    )
    assert res["name"] == "second" and res["tags"] == ["alpha", "beta"]
    await wait_note(
        client,
        "tokmon/metadataChanged",
        start=start,
        pred=lambda p: p["sessionId"] == sid and p["name"] == "second",
    )
    detail = await request(client, "tokmon/session", {"sessionId": sid})
    assert (detail["name"], detail["description"]) == ("second", "notes here")


async def test_rejections_are_invalid_params(client, sids) -> None:
    # the name the first test gives sids[0], set here too: this test must not need it to run
    await request(
        client, "tokmon/setSessionMetadata", {"sessionId": sids[0], "name": "Big Refactor"}
    )
    cases = [
        ({"sessionId": sids[0], "addTags": ["bad tag!"]}, "tag"),
        ({"sessionId": sids[2], "name": "Big Refactor"}, "already used"),
        ({"sessionId": "nope-nope", "name": "x"}, "nope-nope"),
        ({"sessionId": sids[0], "tags": "notalist"}, "tags"),
        ({"sessionId": sids[0], "colour": "red"}, "colour"),
        ({"name": "x"}, "sessionId"),
    ]
    for params, needle in cases:
        with pytest.raises(JsonRpcException) as exc:
            await request(client, "tokmon/setSessionMetadata", params)
        assert exc.value.code == -32602, params
        assert needle in exc.value.message, (needle, exc.value.message)
    with pytest.raises(JsonRpcException) as exc:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="tokmon.renameSession", arguments=[sids[0]])
        )
    assert exc.value.code == -32602
    with pytest.raises(JsonRpcException) as exc:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="tokmon.noSuchCommand", arguments=[])
        )
    assert exc.value.code == -32602


async def test_external_store_write_is_pushed(client, sids, home) -> None:
    """A write by another process (the CLI) reaches the client as metadataChanged."""
    import subprocess
    import sys

    sid = sids[3]
    start = len(client.notes["tokmon/metadataChanged"])
    env = server_env(home, corpus_path())
    code = (
        "from tokmon.metadata.store import MetadataStore;"
        f"MetadataStore().update({sid!r}, name='from-the-cli', add_tags=['ext'])"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    note = await wait_note(
        client,
        "tokmon/metadataChanged",
        start=start,
        pred=lambda p: p["sessionId"] == sid,
    )
    assert note["name"] == "from-the-cli" and note["tags"] == ["ext"]


async def test_refs_resolve_by_name_like_the_cli(client, sids, home) -> None:
    """Every method taking a session accepts a name, as `tokmon session …` does."""
    import subprocess
    import sys

    sid = sids[4]
    env = server_env(home, corpus_path())
    r = subprocess.run(
        [sys.executable, "-m", "tokmon", "session", "name", sid, "Named In CLI"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    detail = await request(client, "tokmon/session", {"sessionId": "named in cli"})
    assert detail["sessionId"] == sid and detail["nameSource"] == "user"
    row = await request(
        client,
        "tokmon/setSessionMetadata",
        {"sessionId": "NAMED IN CLI", "description": "found by name"},
    )
    assert row["sessionId"] == sid and row["description"] == "found by name"
    res = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="tokmon.tagSession", arguments=["Named in CLI", "by-name"]
        )
    )
    assert res["sessionId"] == sid and "by-name" in res["tags"]
    with pytest.raises(JsonRpcException) as exc:
        await request(client, "tokmon/session", {"sessionId": "named in"})
    assert exc.value.code == -32602 and sid in exc.value.message  # "did you mean" lists it
