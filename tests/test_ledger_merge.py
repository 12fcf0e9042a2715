"""One person, several machines: `tokmon ledger export` / `import` merge idempotently.

Real corpus: machine A holds some project dirs, machine B others, two dirs are on both; the
merge must equal one tokmon run over the union of the dirs (each dir once), twice in a row,
in either direction, and survive later refreshes and transcript deletion. Synthetic lines
check the dedup rule (largest output wins) and machine attribution by hand-computed sums.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import assistant_line, corpus_path, write_lines

from tokmon.cli.main import run

TOKEN_KEYS = (
    "inputTokens",
    "outputTokens",
    "cacheCreationTokens",
    "cacheReadTokens",
    "totalTokens",
)


def machine_env(base: dict[str, str], root: Path, name: str) -> dict[str, str]:
    home = root / name / "tokmon"
    home.mkdir(parents=True)
    return {
        **base,
        "TOKMON_HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(root / name / "claude"),
        "TOKMON_MACHINE": name,
    }


def tk(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), env=env, stdin=io.StringIO(""), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def totals(env: dict[str, str]) -> dict[str, Any]:
    code, out, err = tk(env, "daily", "--json")
    assert code == 0, err
    t = json.loads(out)["totals"]
    return {k: t[k] for k in TOKEN_KEYS} | {"totalCost": round(t["totalCost"], 6)}


def export_from(env: dict[str, str], path: Path) -> int:
    code, out, err = tk(env, "ledger", "export", str(path), "--json")
    assert code == 0, err
    if os.name != "nt":
        assert path.stat().st_mode & 0o777 == 0o600
    return int(json.loads(out)["records"])


def import_into(env: dict[str, str], path: Path) -> dict[str, Any]:
    code, out, err = tk(env, "ledger", "import", str(path), "--json")
    assert code == 0, err
    return json.loads(out)[0]  # type: ignore[no-any-return]


def machines(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    code, out, err = tk(env, "ledger", "machines", "--json")
    assert code == 0, err
    return {m["machine"]: m for m in json.loads(out)["machines"]}


@pytest.mark.skipif(
    not (corpus_path() / "projects").is_dir() and not os.environ.get("CI"),
    reason=f"real corpus not found at {corpus_path()}",
)
def test_real_corpus_merge_is_the_union_twice(
    env: dict[str, str], real_corpus: Path, tmp_path: Path
) -> None:
    dirs = sorted(p for p in (real_corpus / "projects").iterdir() if p.is_dir())
    assert len(dirs) >= 6
    a_dirs, b_dirs = dirs[:5], dirs[3:]  # dirs[3:5] are on both machines
    for name, chosen in (("alpha", a_dirs), ("beta", b_dirs), ("union", dirs)):
        for d in chosen:
            shutil.copytree(d, tmp_path / name / "claude" / "projects" / d.name)
    a, b, u = (machine_env(env, tmp_path, n) for n in ("alpha", "beta", "union"))
    want = totals(u)
    ta, tb = totals(a), totals(b)
    assert ta["totalTokens"] < want["totalTokens"] and tb["totalTokens"] < want["totalTokens"]
    assert ta["totalTokens"] + tb["totalTokens"] > want["totalTokens"]  # they overlap

    fa, fb = tmp_path / "alpha.json", tmp_path / "beta.json"
    export_from(a, fa)
    export_from(b, fb)
    first = import_into(a, fb)
    assert first["added"] > 0 and first["machines"] == ["beta"]
    assert totals(a) == want
    again = import_into(a, fb)  # twice in a row: nothing new
    assert again["added"] == 0 and again["replaced"] == 0
    assert again["unchanged"] == first["added"] + first["replaced"] + first["unchanged"]
    assert totals(a) == want
    # the other direction gives the same union
    import_into(b, fa)
    import_into(b, fa)
    assert totals(b) == want
    # a re-export from A carries B's records as B's: importing it into B adds nothing
    fa2 = tmp_path / "alpha2.json"
    export_from(a, fa2)
    res = import_into(b, fa2)
    assert res["added"] == 0
    assert totals(b) == want
    # the machine dimension: per-machine sums add up to the union
    per = machines(a)
    assert set(per) == {"alpha", "beta"}
    assert per["alpha"]["totalTokens"] == ta["totalTokens"]
    assert per["alpha"]["totalTokens"] + per["beta"]["totalTokens"] == want["totalTokens"]
    # ledger export --machine: one machine's records only
    code, out, err = tk(
        a, "ledger", "export", str(tmp_path / "only-beta.json"), "--machine", "beta", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["records"] == per["beta"]["responses"]
    # --machine on the reports: each machine's own report; together the union
    for name in ("alpha", "beta"):
        code, out, err = tk(a, "daily", "--json", "--machine", name)
        assert code == 0, err
        assert json.loads(out)["totals"]["totalTokens"] == per[name]["totalTokens"]
    assert totals(a) == want  # the filter did not stick to the cached full report
    # a ledger rebuilt from transcripts (corrupt file) gets the imported records back
    ledgers = list((tmp_path / "alpha" / "tokmon" / "data").glob("ledger-*.sqlite3"))
    assert len(ledgers) == 1
    ledgers[0].write_bytes(b"{corrupt" * 100)
    code, out, err = tk(a, "daily", "--json")
    assert code == 0, err
    assert "restored" in err
    t = json.loads(out)["totals"]
    assert t["totalTokens"] == want["totalTokens"]
    # imported records survive a refresh and the deletion of every local transcript
    shutil.rmtree(tmp_path / "alpha" / "claude" / "projects")
    (tmp_path / "alpha" / "claude" / "projects").mkdir()
    assert totals(a) == want
    # the metrics carry the machine label
    code, out, err = tk(a, "export", "prometheus")
    assert code == 0, err
    by_machine: dict[str, float] = {}
    for line in out.splitlines():
        if line.startswith("tokmon_tokens_total{"):
            m = line.split('machine="', 1)[1].split('"', 1)[0]
            by_machine[m] = by_machine.get(m, 0) + float(line.rsplit(" ", 1)[1])
    assert by_machine == {"alpha": per["alpha"]["totalTokens"], "beta": per["beta"]["totalTokens"]}


SID_SHARED = "22222222-0000-0000-0000-000000000002"


def test_largest_output_wins_and_attribution(env: dict[str, str], tmp_path: Path) -> None:
    a = machine_env(env, tmp_path, "laptop")
    b = machine_env(env, tmp_path, "desk")
    pa = tmp_path / "laptop" / "claude" / "projects" / "-p"
    pb = tmp_path / "desk" / "claude" / "projects" / "-p"
    t0 = "2026-11-20T10:00:00.000Z"
    t1 = "2026-11-20T10:01:00.000Z"
    write_lines(pa / "s1.jsonl", [assistant_line(t0, msg_id="m1", req_id="r1", inp=1, out=10)])
    write_lines(
        pa / "s2.jsonl",
        [
            assistant_line(t0, msg_id="m3", req_id="r3", inp=100, out=5, session=SID_SHARED),
            assistant_line(t1, msg_id="m4", req_id="r4", inp=1000, out=10, session=SID_SHARED),
        ],
    )
    write_lines(
        pb / "s2.jsonl",
        [
            assistant_line(t0, msg_id="m3", req_id="r3", inp=100, out=5, session=SID_SHARED),
            assistant_line(t1, msg_id="m4", req_id="r4", inp=1000, out=50, session=SID_SHARED),
        ],
    )
    write_lines(
        pb / "s3.jsonl",
        [
            assistant_line(t1, msg_id="m5", req_id="r5", inp=7, out=70),
            assistant_line(t1, msg_id=None, req_id=None, inp=3, out=30),
        ],
    )  # machine-local key
    # by hand: m1 (1+10) m3 (100+5) m4 (1000+50, desk's larger output) m5 (7+70) no-id (3+30)
    want_total = 11 + 105 + 1050 + 77 + 33
    fb = tmp_path / "desk.json"
    export_from(b, fb)
    for _ in range(2):
        import_into(a, fb)
        assert totals(a)["totalTokens"] == want_total
    per = machines(a)
    assert per["desk"]["totalTokens"] == 1050 + 77 + 33  # m4 (replaced), m5, no-id
    assert per["laptop"]["totalTokens"] == 11 + 105  # m3 tie: the local copy stays
    # the other way round, the no-id line of desk must not collide with anything of laptop's
    fa = tmp_path / "laptop.json"
    export_from(a, fa)
    for _ in range(2):
        import_into(b, fa)
        assert totals(b)["totalTokens"] == want_total
    # a local transcript growing past the imported copy takes the record back
    write_lines(
        pa / "s2.jsonl",
        [assistant_line(t1, msg_id="m4", req_id="r4", inp=1000, out=80, session=SID_SHARED)],
    )
    assert totals(a)["totalTokens"] == want_total + 30
    assert machines(a)["desk"]["totalTokens"] == 77 + 33


def test_bad_import_files_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    a = machine_env(env, tmp_path, "m")
    (tmp_path / "m" / "claude" / "projects").mkdir(parents=True)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = tk(a, "ledger", "import", str(bad))
    assert code == 2 and err.count("\n") == 1 and "not JSON" in err
    bad.write_text(json.dumps({"format": "something-else"}))
    code, _, err = tk(a, "ledger", "import", str(bad))
    assert code == 2 and "not a tokmon ledger export" in err
    code, _, err = tk(a, "ledger", "import", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err
    # some malformed rows: counted and skipped, the rest merged
    good = [
        "2026-11-20",
        "s",
        "/p",
        "claude-sonnet-4-5-20250929",
        1,
        2,
        0,
        0,
        0,
        "k:1",
        0.0,
        None,
        "other",
    ]
    good[0] = 1795000000.0
    rows = [good, ["short"], [*good[:4], -5, *good[5:]], [*good[:9], "k:2", 0.0, None, "other"]]
    bad.write_text(json.dumps({"format": "tokmon-ledger-export", "version": 1, "records": rows}))
    code, out, err = tk(a, "ledger", "import", str(bad), "--json")
    assert code == 0, err
    assert json.loads(out)[0]["added"] == 2 and json.loads(out)[0]["bad"] == 2
    assert "skipped 2 malformed" in err
    assert totals(a)["totalTokens"] == 6


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
