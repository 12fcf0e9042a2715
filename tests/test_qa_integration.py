"""Integration findings of the QA pass: commands used together, as a user would.

Every test runs ``python -m tokmon`` as a real process (pipes, or a pseudo-terminal 80
columns wide) on copies of the shared corpora, with an isolated TOKMON_HOME and HOME.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import agents_corpus, corpus_path, need_corpus

# slow: end-to-end CLI processes
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent

BUDGETS = """\
# my budgets (this comment must survive `tokmon config set`)
[[budgets]]
name = "daily"
period = "day"
usd = 5.0

[[budgets]]
name = "month"
period = "month"
tokens = 20_000_000

[alerts]
terminal = true
"""


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """Environment with an isolated TOKMON_HOME/HOME and a copy of the real Claude corpus."""
    src = corpus_path()
    if not (src / "projects").is_dir():
        need_corpus(src)
    shutil.copytree(src, tmp_path / "claude")
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOKMON_", "CLAUDE_", "CODEX_", "GEMINI_", "QWEN_", "OPENCODE_",
                                "COPILOT_", "AMP_", "XDG_"))}  # fmt: skip
    env.update({"TOKMON_HOME": str(tmp_path / "th"), "HOME": str(tmp_path / "home"),
                "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"), "NO_COLOR": "1", "TZ": "UTC"})  # fmt: skip
    env.pop("COLUMNS", None)
    return env


@pytest.fixture
def agents_home(home: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``home`` plus a copy of the other agents' corpus, found through their env vars."""
    src = agents_corpus()
    if not (src / "codex").is_dir():
        need_corpus(src)
    dest = tmp_path / "agents"
    shutil.copytree(src, dest)
    home.update({"CODEX_HOME": str(dest / "codex"), "GEMINI_DATA_DIR": str(dest / "gemini"),
                 "OPENCODE_DATA_DIR": str(dest / "opencode"), "QWEN_DATA_DIR": str(dest / "qwen"),
                 "COPILOT_HOME": str(dest / "copilot"), "AMP_DATA_DIR": str(dest / "amp")})  # fmt: skip
    return home


def tokmon(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tokmon", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip


def tty(
    env: dict[str, str],
    *args: str,
    cols: int = 80,
    timeout: float = 180,
    codes: tuple[int, ...] = (0,),
) -> str:
    """Run tokmon with stdout on a pseudo-terminal ``cols`` wide; the text it printed.

    ``codes``: the exit codes that are fine (``doctor`` exits 1 when it finds a problem)."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
    e = {**env, "COLUMNS": str(cols), "TERM": "xterm"}
    p = subprocess.Popen([sys.executable, "-m", "tokmon", *args], env=e, stdout=slave,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    p.wait(timeout=timeout)
    os.close(master)
    assert p.returncode in codes, p.stderr.read().decode()
    text = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def config_file(env: dict[str, str]) -> Path:
    return Path(tokmon(env, "config", "path").stdout.strip())


def write_config(env: dict[str, str], text: str) -> Path:
    path = config_file(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------ config keeps its tables


def test_config_set_and_reset_keep_budgets_and_alerts(home: dict[str, str]) -> None:
    path = write_config(home, BUDGETS)
    assert tokmon(home, "config", "set", "timezone", "Pacific/Kiritimati").returncode == 0
    assert tokmon(home, "config", "set", "token_limit", "1000000").returncode == 0
    assert tokmon(home, "config", "reset", "timezone").returncode == 0
    text = path.read_text()
    assert "# my budgets" in text
    import tomllib

    data = tomllib.loads(text)
    assert data["token_limit"] == 1000000 and "timezone" not in data
    assert [b["name"] for b in data["budgets"]] == ["daily", "month"]
    assert data["alerts"] == {"terminal": True}
    r = tokmon(home, "budgets", "--json")
    assert r.returncode == 0, r.stderr
    assert [b["name"] for b in r.stdout and json.loads(r.stdout)["budgets"]] == ["daily", "month"]


def test_config_validate_doctor_and_check_see_bad_budget_and_alert_tables(
    home: dict[str, str],
) -> None:
    write_config(home, '[[budgets]]\nperiod = "year"\nusd = 1\n\n[alerts]\nbogus = 1\n')
    v = tokmon(home, "config", "validate")
    assert v.returncode == 1
    assert "budgets[0]: period" in v.stdout and "alerts: unknown key 'bogus'" in v.stdout
    d = tokmon(home, "doctor", "--no-server")
    assert re.search(r"^PROBLEM\s+config\s.*budgets\[0\]", d.stdout, re.M), d.stdout
    c = tokmon(home, "check", "--no-alerts")
    assert c.returncode == 2, (c.returncode, c.stdout)  # not "ok" (0) on a broken budget
    assert "period must be one of" in c.stderr and "Traceback" not in c.stderr
    write_config(home, '[[budgets]]\nusd = 1\nagent = "codx"\n')
    v = tokmon(home, "config", "validate")
    assert v.returncode == 1 and "unknown agent 'codx'" in v.stdout


# ------------------------------------------------------------------ budgets


def test_budget_for_another_agent_counts_its_logs(agents_home: dict[str, str]) -> None:
    write_config(agents_home, '[[budgets]]\nname = "cx"\nperiod = "month"\nusd = 10\n'
                              'agent = "codex"\n')  # fmt: skip
    monthly = json.loads(tokmon(agents_home, "codex", "monthly", "--json", "-z", "UTC").stdout)
    nov = next(m for m in monthly["monthly"] if m["month"] == "2025-11")
    assert nov["costUSD"] > 1  # the corpus has Codex use in November 2025
    r = tokmon(agents_home, "budgets", "--json", "--at", "2025-11-30T12:00:00Z")
    assert r.returncode == 0, r.stderr
    (b,) = json.loads(r.stdout)["budgets"]
    assert b["used"] == pytest.approx(nov["costUSD"], abs=1e-6)


@pytest.mark.slow
def test_budgets_table_never_cuts_figures_at_80_columns(home: dict[str, str]) -> None:
    write_config(home, BUDGETS)
    data = json.loads(tokmon(home, "budgets", "--json", "--at", "2025-11-29T23:00:00Z").stdout)
    month = next(b for b in data["budgets"] if b["name"] == "month")
    assert month["used"] > 10_000_000
    out = tty(home, "budgets", "--at", "2025-11-29T23:00:00Z")
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    row = next(line for line in out.splitlines() if line.strip().startswith("month"))
    # the compact amount (15.1M tok) or the full count, but whole
    want = f"{month['used'] / 1e6:.1f}M tok"
    assert want in row or f"{round(month['used']):,} tok" in row, row
    piped = tokmon(home, "budgets", "--at", "2025-11-29T23:00:00Z").stdout
    assert f"{round(month['used']):,} tok" in piped  # pipes: full counts, no width limit


# ------------------------------------------------------------------ limits: zone


@pytest.mark.slow
def test_limits_times_follow_the_chosen_zone(agents_home: dict[str, str]) -> None:
    st = json.loads(tokmon(agents_home, "limits", "--json", "--no-alerts").stdout)
    assert st["past"], "the Codex corpus has past windows"
    first = st["past"][0]
    kiri = ZoneInfo("Pacific/Kiritimati")
    want = datetime.fromtimestamp(first["start"], kiri).strftime("%a %d %b %H:%M")
    utc = datetime.fromtimestamp(first["start"], timezone.utc).strftime("%a %d %b %H:%M")
    assert want != utc
    out = tokmon(agents_home, "limits", "--no-alerts", "-z", "Pacific/Kiritimati").stdout
    assert want in out and "Pacific/Kiritimati" in out, out
    # the config's zone is the default, as for the reports
    assert tokmon(agents_home, "config", "set", "timezone", "Pacific/Kiritimati").returncode == 0
    out = tokmon(agents_home, "limits", "--no-alerts").stdout
    assert want in out and utc not in out


# ------------------------------------------------------------------ other agents' reports


@pytest.mark.slow
def test_agent_reports_fit_80_columns_and_keep_ids_whole(agents_home: dict[str, str]) -> None:
    for args in (("codex", "daily"), ("codex", "session"), ("agents", "monthly"), ("agents",)):
        out = tty(agents_home, *args)
        widths = [len(line) for line in out.splitlines()]
        assert max(widths) <= 80, (args, out)
    sessions = json.loads(tokmon(agents_home, "codex", "session", "--json").stdout)["sessions"]
    uuids = [s["sessionId"][-36:] for s in sessions]
    out = tty(agents_home, "codex", "session")
    shown = re.findall(r"^\s+([0-9a-f]{8,36})\s", out, re.M)
    assert len(shown) == len(sessions)
    for prefix in shown:  # each printed id is the start of exactly one session's uuid
        assert sum(u.startswith(prefix) for u in uuids) == 1, prefix


def test_agent_reports_use_the_config_time_zone(agents_home: dict[str, str]) -> None:
    flag = tokmon(agents_home, "codex", "daily", "--json", "-z", "Pacific/Kiritimati").stdout
    utc = tokmon(agents_home, "codex", "daily", "--json", "-z", "UTC").stdout
    assert json.loads(flag)["daily"] != json.loads(utc)["daily"]  # the zone matters here
    assert tokmon(agents_home, "config", "set", "timezone", "Pacific/Kiritimati").returncode == 0
    dflt = tokmon(agents_home, "codex", "daily", "--json").stdout
    assert json.loads(dflt)["daily"] == json.loads(flag)["daily"]


def test_unpriced_models_are_named_not_silently_zero(agents_home: dict[str, str]) -> None:
    data = json.loads(tokmon(agents_home, "qwen", "daily", "--json").stdout)
    unpriced = data["totals"].get("unpricedModels")
    assert unpriced  # the Qwen corpus logs the unpriced alias coder-model
    out = tokmon(agents_home, "qwen", "daily").stdout
    assert all(m in out.splitlines()[-1] for m in unpriced), out


# ------------------------------------------------------------------ check's wording


def test_check_limit_reached_names_a_time_not_an_epoch() -> None:
    from tokmon.cli.check import assess

    resets = datetime(2026, 11, 29, 20, 0, tzinfo=timezone.utc).timestamp()
    st = {"windows": [], "limitReached": [{"source": "claude", "resetsAt": resets}]}
    (f,) = assess(st, [], 80.0, ZoneInfo("Pacific/Kiritimati"))
    assert "epoch" not in f["message"]
    assert "2026-11-30 10:00" in f["message"] and "Pacific/Kiritimati" in f["message"]


# ------------------------------------------------------------------ export otlp, unreachable


def test_export_otlp_to_a_closed_port_is_one_clear_line(home: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:  # bound, never listening: refused, and no one else can take it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = tokmon(home, "export", "otlp", "--endpoint", f"http://127.0.0.1:{port}", timeout=120)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("tokmon: error: cannot connect to the OTLP endpoint"), lines
    assert f"127.0.0.1:{port}" in lines[0]


# ------------------------------------------------------------------ bad dates


@pytest.mark.parametrize("args", [("daily",), ("codex", "daily"), ("session", "list")])
def test_an_impossible_date_is_one_plain_line(home: dict[str, str], args: tuple[str, ...]) -> None:
    r = tokmon(home, *args, "--since", "2026-13-01")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "tokmon: error: invalid date '2026-13-01' (expected YYYYMMDD or YYYY-MM-DD)"
    ), r.stderr


# ------------------------------------------------------------------ doctor at 80 columns


def test_doctor_wraps_details_under_their_column_at_80(home: dict[str, str]) -> None:
    # exit 1 is fine: the machine may hold a problem doctor rightly reports (an old install)
    out = tty(home, "doctor", "--no-server", codes=(0, 1))
    lines = out.rstrip("\n").splitlines()
    for line in lines:  # over 80 only for a word (a long path) that fits no line
        assert len(line) <= 80 or any(len(w) > 80 - 22 for w in line.split()), line
    piped = tokmon(home, "doctor", "--no-server").stdout
    # the same words, only re-wrapped: nothing lost
    assert " ".join(out.split()) == " ".join(piped.split())
    assert any(len(line) > 80 for line in piped.splitlines())  # the pipe keeps long lines


# ------------------------------------------------------------------ alert times


def test_alert_messages_give_times_in_the_config_zone(tmp_path: Path) -> None:
    from tokmon.limits import alerts

    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text('timezone = "Pacific/Kiritimati"\n\n[alerts]\nofficial = [80]\n')
    cfg = alerts.load(cfg_path)
    resets = datetime(2026, 11, 29, 20, 0, tzinfo=timezone.utc).timestamp()  # Mon 10:00 +14
    win = {"basis": "official", "officialPercent": 90.0, "usedPercent": 90.0, "source": "claude",
           "window": "5h", "label": "Claude 5-hour", "resetsAt": resets}  # fmt: skip
    (c,) = alerts.candidates(cfg, {"windows": [win]})
    assert "resets Mon 10:00 UTC+14" in c["message"], c["message"]


# ------------------------------------------------------------------ help texts


def test_group_help_names_every_subcommand(home: dict[str, str]) -> None:
    """`tokmon --help` lines that list a group's actions (``a, b, c``) list all of them."""
    top = tokmon(home, "--help").stdout
    for group in ("alerts",):
        line = next(x for x in top.splitlines() if x.strip().startswith(group + " "))
        sub = tokmon(home, group, "--help").stdout
        listed = re.findall(r"^    ([a-z-]+)\s", sub, re.M)
        assert listed, sub
        for name in listed:
            assert name in line, (name, line)


@pytest.mark.parametrize(("args", "flag"), [
    (("export", "prometheus", "--listen", "0.0.0.0:9464"), "--allow-remote"),
    (("serve", "--metrics", "0.0.0.0:9464"), "--metrics-allow-remote"),
])  # fmt: skip
def test_refusing_a_remote_listen_names_this_commands_flag(
    home: dict[str, str], args: tuple[str, ...], flag: str
) -> None:
    r = tokmon(home, *args, timeout=60)
    assert r.returncode == 2
    assert f"(add {flag} to expose it" in r.stderr, r.stderr
    sub = tokmon(home, *args[:2], "--help").stdout if args[0] == "export" else ""
    assert not sub or flag in sub  # the flag the message names exists on that command


@pytest.mark.slow
def test_limits_table_fits_80_columns_with_claude_and_codex_windows(
    agents_home: dict[str, str],
) -> None:
    import time

    now = int(time.time())
    payload = {"session_id": "qa", "cwd": "/tmp", "model": {"id": "claude-opus-4-5"},
               "rate_limits": {"five_hour": {"used_percentage": 97, "resets_at": now + 3600},
                               "seven_day": {"used_percentage": 45,
                                             "resets_at": now + 3 * 86400}}}  # fmt: skip
    r = subprocess.run([sys.executable, "-m", "tokmon", "line", "--claude"], env=agents_home,
                       input=json.dumps(payload), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = tty(agents_home, "limits", "--no-alerts", "-z", "Pacific/Kiritimati")
    assert "Claude 5-hour" in out and "Codex 7-day" in out and "97%" in out
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80, out


def test_ledger_machines_with_no_data_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKMON_", "CLAUDE_"))}
    (tmp_path / "home").mkdir()
    env.update({"TOKMON_HOME": str(tmp_path / "th"), "HOME": str(tmp_path / "home"),
                "NO_COLOR": "1"})  # fmt: skip
    r = tokmon(env, "ledger", "machines")
    assert r.returncode == 0, r.stderr
    assert "No usage in the ledger yet" in r.stdout
