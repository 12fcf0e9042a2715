"""The metrics listener's guards: loopback only, a secret required (basic or bearer)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus_path, run_tokmon

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


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line.rsplit(" ", 1)
            body = labels[len(name) + 1 : -1]
            d = dict(kv.split("=", 1) for kv in body.split('",'))
            out.append(({k: v.strip('"') for k, v in d.items()}, float(value)))
    return out


def test_project_label_cap_is_sticky(cli: Any, env: dict[str, str], tmp_path: Path) -> None:
    """Top-N projects by tokens get labels, the rest 'other'; a later big project stays in
    'other' so no series ever moves (and decreases)."""
    from conftest import assistant_line, write_lines

    claude = tmp_path / "claude"
    sizes = {"p1": 5000, "p2": 4000, "p3": 3000, "p4": 20, "p5": 10}
    for i, (proj, n) in enumerate(sizes.items()):
        write_lines(
            claude / "projects" / f"-{proj}" / "s.jsonl",
            [
                assistant_line(
                    "2026-11-20T10:00:00.000Z",
                    msg_id=f"m{i}",
                    req_id=f"r{i}",
                    inp=n,
                    out=0,
                    cwd=f"/w/{proj}",
                    session=f"00000000-0000-0000-0000-00000000000{i}",
                )
            ],
        )
    (tmp_path / "cfg.toml").write_text("[export]\ntop_projects = 3\n")
    e = {"CLAUDE_CONFIG_DIR": str(claude), "TOKMON_CONFIG": str(tmp_path / "cfg.toml")}
    r = cli("export", "prometheus", extra_env=e)
    assert r.code == 0, r.err
    by_proj: dict[str, float] = {}
    for labels, v in _samples(r.out, "tokmon_tokens_total"):
        by_proj[labels["project"]] = by_proj.get(labels["project"], 0) + v
    assert by_proj == {"p1": 5000, "p2": 4000, "p3": 3000, "other": 30}
    # a new, bigger project arrives: it joins 'other', every old series keeps its value
    write_lines(
        claude / "projects" / "-p6" / "s.jsonl",
        [
            assistant_line(
                "2026-11-20T11:00:00.000Z",
                msg_id="m9",
                req_id="r9",
                inp=99999,
                out=0,
                cwd="/w/p6",
                session="00000000-0000-0000-0000-000000000009",
            )
        ],
    )
    r = cli("export", "prometheus", extra_env=e)
    by_proj2: dict[str, float] = {}
    for labels, v in _samples(r.out, "tokmon_tokens_total"):
        by_proj2[labels["project"]] = by_proj2.get(labels["project"], 0) + v
    assert by_proj2 == {"p1": 5000, "p2": 4000, "p3": 3000, "other": 30 + 99999}


def test_per_session_series_are_opt_in(cli: Any, tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from conftest import assistant_line, write_lines

    claude = tmp_path / "claude"
    now = datetime.now(timezone.utc)
    write_lines(
        claude / "projects" / "-p" / "a.jsonl",
        [
            assistant_line(
                now - timedelta(hours=1),
                msg_id="ma",
                req_id="ra",
                inp=5,
                out=6,
                session="aaaaaaaa-0000-0000-0000-000000000001",
            )
        ],
    )
    write_lines(
        claude / "projects" / "-p" / "b.jsonl",
        [
            assistant_line(
                now - timedelta(days=30),
                msg_id="mb",
                req_id="rb",
                inp=7,
                out=8,
                session="bbbbbbbb-0000-0000-0000-000000000002",
            )
        ],
    )
    e = {"CLAUDE_CONFIG_DIR": str(claude)}
    plain = cli("export", "prometheus", extra_env=e)
    assert plain.code == 0, plain.err
    assert "tokmon_session_tokens" not in plain.out
    per = cli("export", "prometheus", "--per-session", extra_env=e)
    rows = _samples(per.out, "tokmon_session_tokens_total")
    assert [(d["session"], v) for d, v in rows] == [("aaaaaaaa-0000-0000-0000-000000000001", 11)]
    # the active block gauge: the recent response opened one
    gauges = dict(
        (line.split(" ")[0].split("{")[0], float(line.rsplit(" ", 1)[1]))
        for line in per.out.splitlines()
        if line.startswith("tokmon_block_")
    )
    assert gauges["tokmon_block_active"] == 1.0 and gauges["tokmon_block_tokens"] == 11


@pytest.mark.skipif(
    not (corpus_path() / "projects").is_dir() and not os.environ.get("CI"),
    reason=f"real corpus not found at {corpus_path()}",
)
def test_standalone_daemon_refreshes_on_scrape(
    env: dict[str, str], corpus_copy: Path, tmp_path: Path
) -> None:
    """`tokmon export prometheus --listen`: basic auth, totals = daily --json, an append is
    visible on the next scrape, SIGTERM ends it cleanly."""
    import json
    import re
    import subprocess
    import sys
    import time
    import urllib.request
    from datetime import datetime, timezone

    from conftest import assistant_line, write_lines

    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus_copy)}
    log = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115
    p = subprocess.Popen(  # port 0: the daemon picks a free one and names it (no port race)
        [sys.executable, "-m", "tokmon", "export", "prometheus", "--listen", "127.0.0.1:0"],
        env=e,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    log.close()
    token_file = Path(env["TOKMON_HOME"]) / "state" / "metrics-token"

    port = 0

    def listening() -> int:
        m = re.search(
            r"metrics on http://127\.0\.0\.1:(\d+)/", (tmp_path / "daemon.log").read_text()
        )
        return int(m.group(1)) if m else 0

    def scrape() -> str:
        basic = base64.b64encode(f"prometheus:{token_file.read_text().strip()}".encode())
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Basic {basic.decode()}"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read().decode()  # type: ignore[no-any-return]

    def total(text: str, typ: str) -> float:
        return sum(v for d, v in _samples(text, "tokmon_tokens_total") if d["type"] == typ)

    try:
        deadline = time.monotonic() + 60
        while not port and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            port = listening()
        assert port, (tmp_path / "daemon.log").read_text()
        text = scrape()
        tot = json.loads(run_tokmon(["daily", "--json"], e).stdout)["totals"]
        assert total(text, "input") == tot["inputTokens"]
        assert total(text, "cacheRead") == tot["cacheReadTokens"]
        target = sorted((corpus_copy / "projects").rglob("*.jsonl"))[-1]
        write_lines(
            target,
            [
                assistant_line(
                    datetime.now(timezone.utc),
                    msg_id="msg_daemon",
                    req_id="req_daemon",
                    inp=321,
                    out=1,
                )
            ],
        )
        assert total(scrape(), "input") == tot["inputTokens"] + 321
    finally:
        p.terminate()
        code = p.wait(timeout=30)
    assert code == 0 or os.name == "nt"
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()


def test_cost_counter_never_decreases_across_a_repricing(cli: Any, tmp_path: Path) -> None:
    """A `cost_mode` change reprices the ledger down: the published cost keeps its value (no
    counter reset), later spend adds exactly itself, and a repricing back up re-joins the
    ledger's total."""
    import json

    from conftest import assistant_line, write_lines

    # published Sonnet 4.5 prices: $3 / M input, $15 / M output
    def priced(inp: int, out: int) -> float:
        return inp * 3e-6 + out * 15e-6

    claude = tmp_path / "claude"
    transcript = claude / "projects" / "-p" / "s.jsonl"
    write_lines(
        transcript,
        [assistant_line("2026-11-20T10:00:00.000Z", msg_id="m1", req_id="r1", inp=1000, out=2000)],
    )
    cfg = tmp_path / "cfg.toml"
    e = {"CLAUDE_CONFIG_DIR": str(claude), "TOKMON_CONFIG": str(cfg)}

    def published() -> float:
        r = cli("export", "prometheus", extra_env=e)
        assert r.code == 0, r.err
        return sum(v for _, v in _samples(r.out, "tokmon_cost_USD_total"))

    def ledger_total() -> float:
        r = cli("daily", "--json", extra_env=e)
        assert r.code == 0, r.err
        return float(json.loads(r.out)["totals"]["totalCost"])

    cfg.write_text('cost_mode = "calculate"\n')
    first = priced(1000, 2000)
    assert ledger_total() == pytest.approx(first, abs=1e-12)
    assert published() == pytest.approx(first, abs=1e-12)
    # display mode: no costUSD on the line, so the ledger's cost drops to 0 ...
    cfg.write_text('cost_mode = "display"\n')
    assert ledger_total() == 0
    # ... and the counter stays where it was
    assert published() == pytest.approx(first, abs=1e-12)
    assert published() == pytest.approx(first, abs=1e-12)  # and again
    # new spend (a legacy costUSD line) adds exactly itself
    write_lines(
        transcript,
        [
            assistant_line(
                "2026-11-20T11:00:00.000Z",
                msg_id="m2",
                req_id="r2",
                inp=150_000,
                out=10,
                extra={"costUSD": 0.25},
            )
        ],
    )
    assert ledger_total() == pytest.approx(0.25, abs=1e-12)
    assert published() == pytest.approx(first + 0.25, abs=1e-12)
    # back to prices: the ledger's total is above the published value, which re-joins it
    cfg.write_text('cost_mode = "calculate"\n')
    total = priced(1000, 2000) + priced(150_000, 10)
    assert total > first + 0.25
    assert ledger_total() == pytest.approx(total, abs=1e-12)
    assert published() == pytest.approx(total, abs=1e-12)
    # another Claude dir (another ledger, same tokmon home): the first one's values are no
    # floor for its series
    other = tmp_path / "other"
    write_lines(
        other / "projects" / "-p" / "s.jsonl",
        [assistant_line("2026-11-21T10:00:00.000Z", msg_id="m9", req_id="r9", inp=10, out=20)],
    )
    e = {"CLAUDE_CONFIG_DIR": str(other), "TOKMON_CONFIG": str(cfg)}
    assert published() == pytest.approx(priced(10, 20), abs=1e-12)


def test_counters_carry_every_agent(cli: Any, tmp_path: Path) -> None:
    """Codex and Amp logs next to the Claude corpus: one `agent` label each, with the agents
    corpus's independently recounted token totals, and per-agent cost equal to the report."""
    import json
    import shutil

    from conftest import need_both_corpora, sum_by_agent

    claude_src, agents = need_both_corpora()
    claude, codex, amp = tmp_path / "claude", tmp_path / "codex", tmp_path / "amp"
    shutil.copytree(claude_src, claude)
    shutil.copytree(agents / "codex", codex)
    shutil.copytree(agents / "amp", amp)
    e = {"CLAUDE_CONFIG_DIR": str(claude), "CODEX_HOME": str(codex), "AMP_DATA_DIR": str(amp)}
    r = cli("export", "prometheus", extra_env=e)
    assert r.code == 0, r.err
    tokens: dict[str, float] = {}
    for labels, v in _samples(r.out, "tokmon_tokens_total"):
        tokens[labels["agent"]] = tokens.get(labels["agent"], 0) + v
    cost: dict[str, float] = {}
    for labels, v in _samples(r.out, "tokmon_cost_USD_total"):
        cost[labels["agent"]] = cost.get(labels["agent"], 0) + v
    # docs/agents/README.md and the agents corpus README (as in test_web_agents.py)
    assert tokens["codex"] == 71_217_150
    assert tokens["amp"] == 114_201
    daily = cli("daily", "--agent", "all", "--json", extra_env=e)
    assert daily.code == 0, daily.err
    want = sum_by_agent(json.loads(daily.out))
    assert set(tokens) == set(want) == {"claude", "codex", "amp"}
    for agent, w in want.items():
        assert tokens[agent] == w["tokens"], agent
        assert cost[agent] == pytest.approx(w["cost"], rel=1e-9, abs=1e-9), agent
