"""Budget use under `daily`/`weekly`/`monthly`/`session` (table and ``--json``) on the real
corpora, against independent sums of the transcripts (tests/test_budgets.py's counting) and
the agents corpus README; 80-column terminals; the report unchanged without budgets."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import need_agents_corpus
from test_budgets import independent_records

from tokmon.metadata.store import MetadataStore
from tokmon.paths import get_paths

TAG = "client-x"


def pct(used: float, limit: float) -> str:
    """A whole percentage, half up (tokmon.fmt's rule, written out here)."""
    return f"{int(used * 100 / limit + 0.5)}%"


@pytest.fixture
def setup(corpus_copy: Path, env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """The busiest month and day of the real corpus, its top project, two tagged sessions,
    and a config with month, day and week budgets on them."""
    recs = [r for r in independent_records(corpus_copy / "projects") if r["tokens"] > 0]
    utc = timezone.utc
    month = Counter(datetime.fromtimestamp(r["ts"], utc).strftime("%Y-%m") for r in recs)
    y, m = (int(x) for x in month.most_common(1)[0][0].split("-"))
    lo = datetime(y, m, 1, tzinfo=utc)
    hi = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=utc)
    in_month = [r for r in recs if lo.timestamp() <= r["ts"] < hi.timestamp()]
    project = Counter(r["cwd"] for r in in_month).most_common(1)[0][0]
    sessions = [s for s, _n in Counter(r["session"] for r in in_month).most_common(3)[1:]]
    day = Counter(datetime.fromtimestamp(r["ts"], utc).date() for r in in_month).most_common(1)
    on_day = [r for r in in_month
              if datetime.fromtimestamp(r["ts"], utc).date() == day[0][0]]  # fmt: skip
    day_project = Counter(r["cwd"] for r in on_day).most_common(1)[0][0]
    e = {**env, "CLAUDE_CONFIG_DIR": str(corpus_copy)}
    store = MetadataStore(paths=get_paths(e))
    for sid in sessions:
        store.update(sid, tags=[TAG])
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[[budgets]]\nname = "proj"\nperiod = "month"\ntokens = 1000000\nproject = {json.dumps(project)}\n'
        f'[[budgets]]\nname = "client"\nperiod = "month"\ntokens = 1000000\ntag = "{TAG}"\n'
        '[[budgets]]\nname = "everything"\nperiod = "month"\ntokens = 1000000\n'
        '[[budgets]]\nname = "today"\nperiod = "day"\ntokens = 500000\n'
        f'[[budgets]]\nname = "today-proj"\nperiod = "day"\ntokens = 500000\nproject = {json.dumps(day_project)}\n'
        '[[budgets]]\nname = "week"\nperiod = "week"\ntokens = 2000000\n'
        '[[budgets]]\nname = "codex"\nperiod = "month"\ntokens = 1000\nagent = "codex"\n'
    )
    return {"env": e, "cfg": cfg, "recs": recs, "in_month": in_month, "project": project,
            "sessions": sessions, "day": day[0][0], "day_project": day_project, "lo": lo, "hi": hi}  # fmt: skip


def run_cli(env: dict[str, str], *argv: str, tty: bool = False) -> tuple[int, str, str]:
    """The CLI in-process; ``tty``: stdout claims to be a terminal (COLUMNS wide)."""
    from tokmon.cli.main import run

    class Out(io.StringIO):
        def isatty(self) -> bool:
            return tty

    out, err = Out(), io.StringIO()
    code = run(list(argv), env=env, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_monthly_and_daily_show_project_tag_and_global_budgets(setup: dict[str, Any]) -> None:
    e = {**setup["env"], "TOKMON_CONFIG": str(setup["cfg"])}
    in_month, project, sessions = setup["in_month"], setup["project"], setup["sessions"]
    last = (setup["hi"] - timedelta(days=1)).strftime("%Y%m%d")
    code, out, err = run_cli(e, "monthly", "--until", last, "--json")
    assert code == 0, err
    data = json.loads(out)
    got = {b["name"]: b for b in data["budgets"]}
    assert set(got) == {"proj", "client", "everything"}  # month budgets of Claude Code
    want = {
        "proj": sum(r["tokens"] for r in in_month if r["cwd"] == project),
        "client": sum(r["tokens"] for r in in_month if r["session"] in sessions),
        "everything": sum(r["tokens"] for r in in_month),
    }
    assert {k: b["used"] for k, b in got.items()} == want
    assert 0 < want["client"] < want["everything"] and 0 < want["proj"] <= want["everything"]
    assert got["everything"]["periodKey"] == setup["lo"].strftime("%Y-%m")
    # a past month: the projection is the use itself
    assert got["client"]["projectedPercent"] == pytest.approx(want["client"] / 1e4)
    # the rest of the JSON is the report without budgets, byte for byte
    _, plain, _ = run_cli(setup["env"], "monthly", "--until", last, "--json")
    assert "budgets" not in json.loads(plain)
    del data["budgets"]
    assert json.dumps(data) == json.dumps(json.loads(plain))
    _, cached, _ = run_cli(e, "monthly", "--until", last, "--json")  # the report cache's path
    assert json.loads(cached)["budgets"] == json.loads(out)["budgets"]
    # one section per project (-i): the same budgets, the sections unchanged
    _, inst, _ = run_cli(e, "monthly", "-i", "--until", last, "--json")
    _, inst_plain, _ = run_cli(setup["env"], "monthly", "-i", "--until", last, "--json")
    inst_data = json.loads(inst)
    assert inst_data.pop("budgets") == json.loads(out)["budgets"]
    assert inst_data == json.loads(inst_plain) and "budgets" not in inst_plain

    code, table, err = run_cli(e, "monthly", "--until", last)
    assert code == 0, err
    key = setup["lo"].strftime("%Y-%m")
    lines = table[table.index("Budgets (periods in UTC):") :].splitlines()[1:]
    assert lines == [
        f"  proj [project={project}] {key}: {want['proj']:,} tok of 1,000,000 tok "
        f"({pct(want['proj'], 1e6)}, {pct(want['proj'], 1e6)} projected)"
        + (", over" if want["proj"] >= 1e6 else ""),
        f"  client [tag={TAG}] {key}: {want['client']:,} tok of 1,000,000 tok "
        f"({pct(want['client'], 1e6)}, {pct(want['client'], 1e6)} projected)"
        + (", over" if want["client"] >= 1e6 else ""),
        f"  everything {key}: {want['everything']:,} tok of 1,000,000 tok "
        f"({pct(want['everything'], 1e6)}, {pct(want['everything'], 1e6)} projected)"
        + (", over" if want["everything"] >= 1e6 else ""),
    ]

    # daily: the day budgets of the report's last day, in the report's zone
    for zone in ("UTC", "Pacific/Kiritimati"):
        tz = ZoneInfo(zone)
        day = setup["day"]
        start = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
        end = start + 86400
        on_day = [r for r in setup["recs"] if start <= r["ts"] < end]
        code, out, err = run_cli(e, "daily", "-z", zone, "--until", day.isoformat(), "--json")
        assert code == 0, err
        got = {b["name"]: b for b in json.loads(out)["budgets"]}
        assert set(got) == {"today", "today-proj"}
        assert got["today"]["used"] == sum(r["tokens"] for r in on_day)
        dp = setup["day_project"]
        assert got["today-proj"]["used"] == sum(r["tokens"] for r in on_day if r["cwd"] == dp)
        assert zone != "UTC" or got["today-proj"]["used"] > 0
        assert got["today"]["periodKey"] == day.isoformat()
        assert got["today"]["periodStart"] == start
        code, table, err = run_cli(e, "daily", "-z", zone, "--until", day.isoformat())
        assert f"Budgets (periods in {zone}):" in table
        used = int(got["today"]["used"])
        assert f"  today {day.isoformat()}: {used:,} tok of 500,000 tok ({pct(used, 5e5)}" in table


def test_weekly_and_session_budgets(setup: dict[str, Any]) -> None:
    e = {**setup["env"], "TOKMON_CONFIG": str(setup["cfg"])}
    day = setup["day"]
    code, out, err = run_cli(e, "weekly", "--until", day.isoformat(), "--json")
    assert code == 0, err
    (week,) = json.loads(out)["budgets"]
    monday = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - timedelta(
        days=day.weekday()
    )
    lo, hi = monday.timestamp(), monday.timestamp() + 7 * 86400
    until = datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() + 86400
    assert week["periodKey"] == "week-" + monday.strftime("%Y-%m-%d")
    assert week["used"] == sum(r["tokens"] for r in setup["recs"] if lo <= r["ts"] < min(hi, until))
    # session: the tag budgets, as of the report's --until
    last = (setup["hi"] - timedelta(days=1)).strftime("%Y%m%d")
    code, out, err = run_cli(e, "session", "--until", last, "--json")
    assert code == 0, err
    data = json.loads(out)
    (client,) = data["budgets"]
    assert client["name"] == "client"
    assert client["used"] == sum(
        r["tokens"] for r in setup["in_month"] if r["session"] in setup["sessions"]
    )
    # tagged sessions show their tag in the report rows too
    tagged = {r["sessionId"] for r in data["sessions"] if TAG in (r.get("tags") or [])}
    assert tagged == set(setup["sessions"])
    # without --until, session --json comes from the stored sums: the budgets key too
    code, out, err = run_cli(e, "session", "--json")
    assert code == 0, err
    (client_now,) = json.loads(out)["budgets"]
    assert client_now["name"] == "client"
    code, table, _ = run_cli(e, "session", "--until", last)
    assert (
        f"  client [tag={TAG}] {setup['lo'].strftime('%Y-%m')}: {int(client['used']):,} tok"
        in table
    )
    # blocks and `session --id --json` keep ccusage's shapes
    _, out, _ = run_cli(e, "blocks", "--json")
    assert "budgets" not in json.loads(out)
    _, out, _ = run_cli(e, "session", "--id", setup["sessions"][0], "--json")
    assert "budgets" not in json.loads(out)


def test_agent_budgets_follow_the_reports_agent(setup: dict[str, Any], tmp_path: Path) -> None:
    """Codex's only October day holds 17,373,265 tokens (the agents corpus README)."""
    codex = tmp_path / "codex"
    shutil.copytree(need_agents_corpus() / "codex", codex)
    cfg = tmp_path / "agents.toml"
    cfg.write_text(
        '[[budgets]]\nname = "codex-oct"\nperiod = "month"\ntokens = 20000000\nagent = "codex"\n'
        '[[budgets]]\nname = "codex-day"\nperiod = "day"\nusd = 5\nagent = "codex"\n'
        '[[budgets]]\nname = "claude-oct"\nperiod = "month"\ntokens = 1000\n'
    )
    e = {**setup["env"], "CODEX_HOME": str(codex), "TOKMON_CONFIG": str(cfg)}

    def budgets(*argv: str) -> dict[str, float]:
        code, out, err = run_cli(e, *argv, "--until", "20251031", "--json")
        assert code == 0, err
        return {b["name"]: b["used"] for b in json.loads(out)["budgets"]}

    assert budgets("monthly", "--agent", "codex") == {"codex-oct": 17_373_265}
    assert set(budgets("monthly")) == {"claude-oct"}
    assert budgets("monthly", "--agent", "all")["codex-oct"] == 17_373_265
    assert set(budgets("monthly", "--agent", "all")) == {"codex-oct", "claude-oct"}
    assert budgets("daily", "--agent", "codex") == {"codex-day": 0.0}  # Oct 31: no usage
    # the agent's own namespace (ccusage's `codex monthly` shape) shows the same use
    assert budgets("codex", "monthly") == {"codex-oct": 17_373_265}
    assert budgets("codex", "daily") == {"codex-day": 0.0}
    code, out, err = run_cli(e, "codex", "daily", "--until", "20251006", "--json")
    (day,) = json.loads(out)["budgets"]
    assert day["name"] == "codex-day" and day["periodKey"] == "2025-10-06" and day["used"] > 0
    code, out, err = run_cli(
        {**e, "TOKMON_CONFIG": str(tmp_path / "none.toml")}, "codex", "daily", "--json"
    )
    assert code == 0 and "budgets" not in json.loads(out)
    code, table, err = run_cli(e, "monthly", "--agent", "codex", "--until", "20251031")
    assert code == 0, err
    assert "  codex-oct [agent=codex] 2025-10: 17,373,265 tok of 20,000,000 tok (87%" in table


@pytest.mark.parametrize("columns", [80, 60])
def test_narrow_terminals_never_cut_a_figure(
    setup: dict[str, Any], tmp_path: Path, columns: int
) -> None:
    long_name = "a rather long budget name for the whole team's spend"
    cfg = tmp_path / "narrow.toml"
    cfg.write_text(
        setup["cfg"].read_text()
        + f'[[budgets]]\nname = "{long_name}"\nperiod = "month"\ntokens = 123456789\n'
        f'tag = "{TAG}"\nproject = {json.dumps(setup["project"])}\n'
    )
    e = {**setup["env"], "TOKMON_CONFIG": str(cfg), "COLUMNS": str(columns)}
    last = (setup["hi"] - timedelta(days=1)).strftime("%Y%m%d")
    _, out, _ = run_cli(e, "monthly", "--until", last, "--json")
    use = json.loads(out)["budgets"]
    code, table, err = run_cli(e, "monthly", "--until", last, tty=True)
    assert code == 0, err
    block = table[table.index("Budgets (periods in") :]
    assert "…" not in block
    for line in block.splitlines():
        assert len(line) <= columns, line  # labels wrapped at spaces, figures whole
    text = " ".join(block.split())
    for b in use:
        assert f" {b['periodKey']}:" in text
        # every figure whole: a full count, or the compact count when the line is narrow
        full = f"{int(b['used']):,} tok of {int(b['limit']):,} tok"
        figures = re.escape(f"({pct(b['used'], b['limit'])}, ") + r"\d+% projected\)"
        assert re.search(figures, text), (b, text)
        if full not in text:
            assert columns < 100 and re.search(r"[\d.]+[kMB]? tok of [\d.]+[kMB]? tok", text)


def test_a_broken_budget_config_is_a_warning_not_a_lost_report(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[budgets]]\nperiod = "day"\nlimit = 3\n')
    e = {**setup["env"], "TOKMON_CONFIG": str(cfg)}
    code, out, err = run_cli(e, "daily", "--json")
    assert code == 0 and "warning" in err and "unknown key 'limit'" in err
    _, plain, _ = run_cli(setup["env"], "daily", "--json")
    assert out == plain
