"""Workspace folders map to Claude projects: initialize, didChangeWorkspaceFolders, params."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from test_server_support import corpus_path, request, server_env, start_lsp, stop_lsp

# slow: a real language-server process
pytestmark = pytest.mark.slow


async def test_workspace_folder_changes(tmp_path: Path) -> None:
    client = await start_lsp(server_env(tmp_path, corpus_path()), workspace="file:///nowhere")
    try:
        assert (await request(client, "tokmon/summary"))["workspaceProject"] is None
        rows = (await request(client, "tokmon/sessions"))["sessions"]
        target = rows[-1]["projectPath"]  # an older project, not the most recent one
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[types.WorkspaceFolder(uri=Path(target).as_uri(), name="t")],
                    removed=[types.WorkspaceFolder(uri="file:///nowhere", name="ws")],
                )
            )
        )
        s = await request(client, "tokmon/summary")
        assert s["workspaceProject"] == target
        # an explicit param wins over the default, paths and URIs alike
        parent = str(Path(target).parent)
        s2 = await request(client, "tokmon/summary", {"workspaceFolder": parent})
        assert s2["workspaceProject"] is not None
        assert s2["workspaceProject"].startswith(parent + "/")
        mine = await request(client, "tokmon/sessions", {"workspaceFolder": Path(target).as_uri()})
        paths = {r["projectPath"] for r in mine["sessions"]}
        assert target in paths  # the folder itself and projects below it
        assert all(p == target or p.startswith(target + "/") for p in paths)
        assert paths == {
            r["projectPath"]
            for r in rows
            if r["projectPath"] == target or r["projectPath"].startswith(target + "/")
        }
        assert mine["workspaceProject"] == target
    finally:
        await stop_lsp(client)
