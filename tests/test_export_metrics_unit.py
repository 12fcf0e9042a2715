"""The metrics listener's guards: loopback only, a secret required (basic or bearer)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from conftest import run_tokmon

from tokmon.export.prometheus import AddressError, authorized, load_or_create_token, parse_listen


def test_parse_listen_loopback_only() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("localhost:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("0.0.0.0:9464", "192.168.1.5:9464", "example.com:80", "9464", "1.2.3.4:x"):
        with pytest.raises(AddressError):
            parse_listen(bad)
    assert parse_listen("0.0.0.0:9464", allow_remote=True) == ("0.0.0.0", 9464)


def test_token_file_and_auth(tmp_path: Path) -> None:
    tok, path = load_or_create_token(tmp_path / "state")
    assert len(tok) >= 32
    if os.name != "nt":
        assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_token(tmp_path / "state")[0] == tok  # stable
    basic = base64.b64encode(f"prometheus:{tok}".encode()).decode()
    assert authorized(f"Bearer {tok}", tok)
    assert authorized(f"Basic {basic}", tok)
    assert not authorized(None, tok)
    assert not authorized("Bearer nope", tok)
    assert not authorized("Basic !!!", tok)
    assert not authorized(f"Digest {tok}", tok)


def test_serve_refuses_non_loopback(env: dict[str, str]) -> None:
    r = run_tokmon(["serve", "--jsonl", "--metrics", "0.0.0.0:9464"], env, input="")
    assert r.returncode == 2
    assert "loopback only" in r.stderr and "Traceback" not in r.stderr
