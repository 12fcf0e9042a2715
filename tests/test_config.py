"""Config validation: every key checked on `config set` and on load; all problems listed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import assistant_line, write_lines

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LEAKS = (
    "invalid literal",
    "Traceback",
    "ValueError",
    "TypeError",
    "TimezoneError",
    "could not convert",
    "ZoneInfo",
    "Error:",
)


def _clean(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked into: {text}"


def _corpus(tmp_path: Path) -> Path:
    root = tmp_path / "claude"
    write_lines(
        root / "projects" / "-home-u-proj" / "s.jsonl",
        [assistant_line("2026-03-01T10:00:00.000Z", msg_id="m1", req_id="r1")],
    )
    return root


# (key, value given to `config set`, words the one-line error must contain)
BAD_SETS = [
    ("timezone", "Mars/Base", ["timezone", "Mars/Base"]),
    ("timezone", "../../etc/passwd", ["timezone"]),
    ("session_hours", "0", ["session_hours", "0"]),
    ("session_hours", "-3", ["session_hours"]),
    ("session_hours", "1000", ["session_hours"]),
    ("session_hours", "five", ["session_hours", "five"]),
    ("line.warning_percent", "150", ["line.warning_percent", "150"]),
    ("line.warning_percent", "-1", ["line.warning_percent"]),
    ("line.critical_percent", "101", ["line.critical_percent"]),
    ("line.critical_percent", "50", ["line.critical_percent", "line.warning_percent"]),
    ("line.warning_percent", "99", ["line.warning_percent", "critical"]),
    ("token_limit", "abc", ["token_limit", "abc"]),
    ("token_limit", "-5", ["token_limit"]),
    ("token_limit", "0", ["token_limit"]),
    ("token_limit", "1.5", ["token_limit"]),
    ("line.stale_seconds", "nan", ["line.stale_seconds"]),
    ("line.stale_seconds", "inf", ["line.stale_seconds"]),
    ("server.debounce_ms", "0", ["server.debounce_ms"]),
    ("server.force_polling", "maybe", ["server.force_polling"]),
    ("cost_mode", "cheap", ["cost_mode", "cheap"]),
    ("line.format", "html", ["line.format"]),
    ("no.such_key", "1", ["no.such_key"]),
]


@pytest.mark.parametrize(("key", "value", "words"), BAD_SETS)
def test_config_set_rejects_bad_values_with_one_clean_line(cli, key, value, words) -> None:  # type: ignore[no-untyped-def]
    path = Path(cli("config", "path").out.strip())
    r = cli("config", "set", key, value)
    assert r.code == 2
    assert r.out == ""
    assert r.err.count("\n") == 1 and r.err.startswith("tokmon: error: "), r.err
    for w in words:
        assert w in r.err, (w, r.err)
    _clean(r.err)
    assert not path.exists()  # nothing written


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("token_limit", "500000", 500000),
        ("token_limit", "1_000_000", 1_000_000),
        ("token_limit", "max", "max"),
        ("token_limit", "none", None),
        ("timezone", "Asia/Kathmandu", "Asia/Kathmandu"),
        ("timezone", "UTC", "UTC"),
        ("session_hours", "2.5", 2.5),
        ("line.warning_percent", "0", 0.0),
        ("line.critical_percent", "100", 100.0),
        ("server.force_polling", "true", True),
    ],
)
def test_config_set_accepts_and_round_trips(cli, key, value, expected) -> None:  # type: ignore[no-untyped-def]
    r = cli("config", "set", key, value)
    assert r.code == 0, r.err
    assert cli("config", "validate").code == 0
    assert cli("config", "show", "--json").json()["values"][key] == expected
    # and a fresh load of the file gives the same value
    path = Path(cli("config", "path").out.strip())
    from tokmon.config import load_file

    assert load_file(path)[key] == expected


def test_token_limit_none_disables_the_limit(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("config", "set", "token_limit", "none").code == 0
    path = Path(cli("config", "path").out.strip())
    assert tomllib.loads(path.read_text())["token_limit"] == "none"
    env = {"CLAUDE_CONFIG_DIR": str(_corpus(tmp_path))}
    blocks = cli("blocks", "--json", extra_env=env)
    assert blocks.code == 0, blocks.err
    for b in blocks.json()["blocks"]:
        assert b.get("tokenLimitStatus") is None
    assert cli("config", "set", "token_limit", "max").code == 0
    assert cli("config", "show", "--json").json()["values"]["token_limit"] == "max"


def test_warning_then_critical_in_the_right_order(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("config", "set", "line.critical_percent", "99").code == 0
    assert cli("config", "set", "line.warning_percent", "97").code == 0
    vals = cli("config", "show", "--json").json()["values"]
    assert (vals["line.warning_percent"], vals["line.critical_percent"]) == (97.0, 99.0)


BROKEN = """\
timezone = "Mars/Base"
session_hours = 0
token_limit = "12x"
surprise = 1
[line]
warning_percent = 150
critical_percent = 50
format = 3
stale_seconds = nan
[server]
force_polling = "maybe"
debounce_ms = [1, 2]
"""
BROKEN_KEYS = [
    "timezone",
    "session_hours",
    "token_limit",
    "surprise",
    "line.warning_percent",
    "line.critical_percent",
    "line.format",
    "line.stale_seconds",
    "server.force_polling",
    "server.debounce_ms",
]


def test_validate_lists_every_problem_naming_file_and_key(cli) -> None:  # type: ignore[no-untyped-def]
    path = Path(cli("config", "path").out.strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BROKEN)
    r = cli("config", "validate")
    assert r.code == 1
    lines = r.out.splitlines()
    problems = [ln for ln in lines if ln.startswith(f"{path}: ")]
    assert len(problems) == len(BROKEN_KEYS), r.out
    for key in BROKEN_KEYS:
        assert sum(f": {key}:" in p or f"'{key}'" in p for p in problems) == 1, (key, r.out)
    _clean(r.out + r.err)
    j = cli("config", "validate", "--json")
    assert j.code == 1 and j.json()["ok"] is False and len(j.json()["problems"]) == len(BROKEN_KEYS)


def test_reports_refuse_a_broken_config_listing_every_problem(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = Path(cli("config", "path").out.strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BROKEN)
    r = cli("daily", extra_env={"CLAUDE_CONFIG_DIR": str(_corpus(tmp_path))})
    assert r.code == 2 and r.out == ""
    lines = r.err.splitlines()
    assert len(lines) == len(BROKEN_KEYS)
    assert all(ln.startswith(f"tokmon: error: {path}: ") for ln in lines), r.err
    _clean(r.err)


def test_timezone_set_in_file_by_hand_is_caught_on_load(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = Path(cli("config", "path").out.strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('timezone = "Mars/Base"\n')
    for argv in (["daily"], ["stats"], [], ["--json"]):
        r = cli(*argv, extra_env={"CLAUDE_CONFIG_DIR": str(_corpus(tmp_path))})
        assert r.code == 2, argv
        assert r.err == (
            f'tokmon: error: {path}: timezone: unknown time zone "Mars/Base" '
            '(use an IANA name such as "Europe/Berlin", "America/New_York" or '
            '"UTC")\n'
        )
    # fixing the one key is possible while the file is broken
    assert cli("config", "reset", "timezone").code == 0
    assert cli("config", "validate").code == 0


def test_set_on_a_file_with_other_broken_keys_warns_and_keeps_them(cli) -> None:  # type: ignore[no-untyped-def]
    path = Path(cli("config", "path").out.strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("session_hours = 0\n")
    r = cli("config", "set", "timezone", "UTC")
    assert r.code == 0
    assert "session_hours" in r.err and r.err.startswith("tokmon: warning: ")
    assert tomllib.loads(path.read_text()) == {"session_hours": 0, "timezone": "UTC"}
    assert cli("config", "set", "session_hours", "6").code == 0
    assert cli("config", "validate").code == 0


def test_invalid_toml_and_unreadable_file_are_one_line(cli) -> None:  # type: ignore[no-untyped-def]
    path = Path(cli("config", "path").out.strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"token_limit = [oops\n")
    r = cli("config", "validate")
    assert r.code == 1 and r.out.splitlines()[0].startswith(f"{path}: invalid TOML")
    path.write_bytes(b"\xff\xfe bad")
    r = cli("config", "show")
    assert r.code == 2 and f"{path}: invalid TOML: not UTF-8" in r.err
    _clean(r.err)


def test_show_prints_valid_toml_that_round_trips(cli) -> None:  # type: ignore[no-untyped-def]
    for argv in (
        ("token_limit", "none"),
        ("line.warning_percent", "70"),
        ("server.force_polling", "false"),
        ("cost_mode", "auto"),
    ):
        assert cli("config", "set", *argv).code == 0
    r = cli("config", "show")
    assert r.code == 0
    assert "None" not in r.out and "False" not in r.out and "True" not in r.out
    parsed = tomllib.loads(r.out)
    flat = {
        **{k: v for k, v in parsed.items() if not isinstance(v, dict)},
        **{f"{t}.{k}": v for t, d in parsed.items() if isinstance(d, dict) for k, v in d.items()},
    }
    values = cli("config", "show", "--json").json()["values"]
    for key, v in values.items():
        if v is None and key != "token_limit":  # unset (system zone, host name): a comment
            assert key not in flat
        elif v is None:  # token_limit none = no limit, written out
            assert flat[key] == "none"
        else:
            assert flat[key] == v, key
    # and the shown text, written as a config file, validates to the same values
    path = Path(cli("config", "path").out.strip())
    path.write_text(r.out)
    assert cli("config", "validate").code == 0
    assert cli("config", "show", "--json").json()["values"] == values
    # default-valued show (no file) is valid TOML too
    path.unlink()
    tomllib.loads(cli("config", "show").out)


def test_token_limit_flag_uses_the_same_validation(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli(
        "blocks", "--token-limit", "lots", extra_env={"CLAUDE_CONFIG_DIR": str(_corpus(tmp_path))}
    )
    assert r.code == 2 and r.err.count("\n") == 1 and "token-limit" in r.err
    _clean(r.err)
