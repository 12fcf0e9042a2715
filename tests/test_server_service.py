"""The transport-free service layer in-process: workspace paths and the method table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_server_support import REF_TOTALS, corpus_path

from tokmon.service import (
    METHODS,
    InvalidParams,
    MethodNotFound,
    Service,
    path_from_folder,
    within,
)

POSIX = pytest.mark.skipif(os.name == "nt", reason="POSIX path spellings")


@POSIX
def test_path_from_folder() -> None:
    assert path_from_folder("file:///home/u/my%20proj") == "/home/u/my proj"
    assert path_from_folder("file://localhost/home/u/p/") == "/home/u/p"
    assert path_from_folder("/home/u/p/../q") == "/home/u/q"
    assert path_from_folder("~/x") == os.path.join(os.path.expanduser("~"), "x")
    assert path_from_folder("file://server/share/x") == "//server/share/x"
    with pytest.raises(ValueError):
        path_from_folder("   ")


@POSIX
def test_within_is_textual_and_segment_aware() -> None:
    assert within("/a/b", "/a/b") and within("/a/b/c", "/a/b") and within("/a/b/c", "/a/b/")
    assert not within("/a/bc", "/a/b") and not within("/a", "/a/b")
    assert not within("", "/a") and not within("/a", "")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Service:
    home = tmp_path_factory.mktemp("svc")
    env = {"TOKMON_HOME": str(home), "CLAUDE_CONFIG_DIR": str(corpus_path()), "TZ": "UTC"}
    svc = Service(env=env)
    stats = svc.start()
    assert stats["sessions"] == 46
    return svc


def test_methods_in_process(service: Service) -> None:
    s, notes = service.call("tokmon/summary", None)
    assert notes == [] and s["totals"]["inputTokens"] == REF_TOTALS["inputTokens"]
    with pytest.raises(MethodNotFound):
        service.call("tokmon/none", {})
    with pytest.raises(InvalidParams, match="unknown param"):
        service.call("tokmon/version", {"x": 1})
    assert service.call("tokmon/summary", [])[0]["totals"] == s["totals"]  # [] means no params
    assert {m for m in METHODS} >= {
        "tokmon/summary",
        "tokmon/sessions",
        "tokmon/session",
        "tokmon/blocks",
        "tokmon/daily",
        "tokmon/refresh",
        "tokmon/setSessionMetadata",
        "tokmon/version",
    }


def test_watch_roots_include_missing_and_metadata_dir(service: Service) -> None:
    roots = service.watch_roots
    assert Path(corpus_path()) / "projects" in roots
    assert service.metadata_path is not None and service.metadata_path.parent in roots


def test_external_metadata_diff(service: Service) -> None:
    from tokmon.metadata.store import MetadataStore

    sid = service.call("tokmon/sessions", {"limit": 1})[0]["sessions"][0]["sessionId"]
    assert service.check_metadata() == []
    MetadataStore(path=service.metadata_path).update(sid, description="outside")
    notes = service.on_files_changed({service.metadata_path})
    assert notes == [
        (
            "tokmon/metadataChanged",
            {
                "sessionId": sid,
                "name": notes[0][1]["name"],
                "tags": [],
                "description": "outside",
                "nameSource": notes[0][1]["nameSource"],
            },
        )
    ]
    assert service.check_metadata() == []  # nothing new since
