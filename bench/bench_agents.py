#!/usr/bin/env python3
"""tokmon vs ccusage on a mixed Claude + Codex + Gemini corpus, all agents, in one run.

    python bench/bench_agents.py [--mb 500] [--seed 0] [--keep DIR] [--runs 3] [--json]
                                 [--baseline SRC] [--in-place]

Generates (or reuses, in ``--keep``) a corpus with bench/gen_agents_corpus.py (with
``--gemini-copies`` chats kept in two folders, default 8), warms the OS
page cache, then repeats ``--runs`` times, alternating:

* ccusage 20.0.24 ``daily --json --offline -z UTC --by-agent`` (all agents it detects; HOME an
  empty dir, CLAUDE_CONFIG_DIR, CODEX_HOME and GEMINI_DATA_DIR set to the corpus). ccusage
  keeps no state, so each of its runs is a cold one.
* tokmon cold (a fresh TOKMON_HOME) and tokmon warm (the same TOKMON_HOME again, nothing
  changed) of its all-agent daily JSON. When ``tokmon daily --help`` lists ``--agent``, that
  is ``tokmon daily --json --agent all`` (the engine's view); otherwise two processes:
  ``tokmon daily --json`` (Claude) and ``tokmon agents daily --json`` (Codex + Gemini), timed
  separately and summed.

With ``--baseline SRC`` (another tokmon source tree, e.g. ``git archive main | tar -x -C
SRC``), that tokmon's cold and warm ``daily --json --agent all`` (imported from SRC) are
interleaved with these runs too, alternating which tokmon goes first: an A/B of two versions
measured side by side (on the same interpreter as this tokmon, below).

The tokmon measured is this checkout installed as ``scripts/install.py`` installs it (a venv cached
per source hash under ``$TOKMON_BENCH_DIR/installed``: bench/_installed.py), run through its
``tokmon`` console script (``--baseline`` runs on that venv's python); ``--in-place``: ``python -m
tokmon`` on the interpreter running this script (the old way). The report names which.

Prints the medians of wall time, their ratios and the peak RSS, and checks each tool's token
totals per agent against the generator's truth (expected-agents.json). Both tools print
ccusage's JSON meanings: Gemini's ``outputTokens`` there excludes thoughts (its total has
them), so the check compares it with truth output - thoughts, or with truth output when a
report gives tokmon's own meaning (output with thoughts; said so in the table). Exit status 1
when a total differs from the truth.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))

from _installed import Target, add_argument, resolve  # noqa: E402
from bench_engine import ccusage_path, measure  # noqa: E402
from gen_agents_corpus import TRUTH_FILE, generate  # noqa: E402

AGENTS = ("claude", "codex", "gemini")
KEYS = ("inputTokens", "outputTokens", "cacheReadTokens", "cacheCreationTokens", "totalTokens")


def prepare(
    mb: float, seed: int, copies: int, keep: Path | None
) -> tuple[Path, dict[str, Any], bool]:
    """(corpus dir, truth, temporary?); reuse ``keep`` when it holds this corpus."""
    if keep is not None and (keep / TRUTH_FILE).is_file():
        truth = json.loads((keep / TRUTH_FILE).read_text())
        if (truth.get("mb"), truth.get("seed"), truth.get("gemini_copies", 0)) == (
            mb,
            seed,
            copies,
        ):
            print(f"reusing corpus {keep}", file=sys.stderr)
            return keep, truth, False
        raise SystemExit(
            f"bench_agents: error: {keep} holds another corpus ({truth.get('mb')} MB, "
            f"seed {truth.get('seed')}, {truth.get('gemini_copies', 0)} Gemini copies); "
            "pick another --keep dir"
        )
    temporary = keep is None
    dest = keep if keep is not None else Path(tempfile.mkdtemp(prefix="tokmon-agents-")) / "c"
    t = time.perf_counter()
    try:
        truth = generate(dest, mb, seed, gemini_copies=copies)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"bench_agents: error: {exc}") from None
    print(f"generated {mb:.0f} MiB in {time.perf_counter() - t:.1f}s at {dest}", file=sys.stderr)
    return dest, truth, temporary


def warm_page_cache(dest: Path) -> int:
    """Read every corpus file once; return the bytes read."""
    n = 0
    for p in dest.rglob("*.jsonl"):
        with open(p, "rb") as fh:
            while chunk := fh.read(1 << 22):
                n += len(chunk)
    return n


def per_agent(output: bytes, default_agent: str) -> dict[str, dict[str, int]]:
    """Sum a daily JSON's token fields per agent.

    Understands ccusage's unified shape (rows with an ``agents`` list), rows carrying their
    own ``agent`` (tokmon --agent all), and single-agent reports (every row is
    ``default_agent``)."""
    data = json.loads(output)
    sums: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KEYS, 0))
    for row in data.get("daily", []):
        parts = row.get("agents")
        if isinstance(parts, list):
            entries = [(e.get("agent", default_agent), e) for e in parts]
        else:
            agent = row.get("agent")
            entries = [(agent if agent and agent != "all" else default_agent, row)]
        for agent, e in entries:
            for k in KEYS:
                sums[agent][k] += int(e.get(k) or 0)
    return dict(sums)


def expected_json(truth: dict[str, Any], agent: str, key: str = "totals") -> dict[str, int]:
    """The truth in ccusage's daily JSON meanings (Gemini's output without thoughts)."""
    t = truth["agents"][agent][key]
    out = t["output"] - (t["reasoning"] if agent == "gemini" else 0)
    return {
        "inputTokens": t["input"],
        "outputTokens": out,
        "cacheReadTokens": t["cache_read"],
        "cacheCreationTokens": t["cache_write"],
        "totalTokens": t["total"],
    }


def check(
    sums: dict[str, dict[str, int]], truth: dict[str, Any], ccusage: bool = False
) -> dict[str, str]:
    """Per agent: 'match' or the differing fields (tool - truth).

    For ccusage, a difference equal to the generator's ``ccusage_overcount`` (Gemini chats kept
    in two folders, which ccusage adds twice) is reported as that known double count."""
    res = {}
    for agent in truth["agents"]:
        got, exp = sums.get(agent, {}), expected_json(truth, agent)
        note = ""
        if ccusage and "ccusage_overcount" in truth["agents"][agent]:
            over = expected_json(truth, agent, "ccusage_overcount")
            if all(got.get(k, 0) == v + over[k] for k, v in exp.items()):
                exp = {k: v + over[k] for k, v in exp.items()}
                note = (
                    f" + known double count of {over['totalTokens']:,} tokens: "
                    f"{truth['agents'][agent].get('copies')} sessions kept in two folders "
                    "(ccusage de-duplicates message ids per file only)"
                )
        thoughts = truth["agents"][agent]["totals"]["reasoning"]
        if (
            agent == "gemini"
            and thoughts
            and got.get("outputTokens") == exp["outputTokens"] + thoughts
        ):
            exp["outputTokens"] += thoughts  # tokmon's own meaning: output with thoughts
            note = " (output with thoughts)"
        diff = {k: got.get(k, 0) - v for k, v in exp.items() if got.get(k, 0) != v}
        res[agent] = (
            "match" + note
            if not diff
            else "DIFF " + ", ".join(f"{k} {d:+,}" for k, d in diff.items())
        )
    return res


def tokmon_has_agent_option(target: Target, env: dict[str, str]) -> bool:
    """Whether this tokmon's ``daily`` takes ``--agent`` (the engine's all-agent view)."""
    res = subprocess.run(
        [*target.tokmon, "daily", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return "--agent" in res.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="tokmon vs ccusage, all agents, mixed corpus")
    ap.add_argument("--mb", type=float, default=500.0, help="corpus size in MiB (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="generate into / reuse this dir")
    ap.add_argument("--runs", type=int, default=3, help="alternating repetitions (median)")
    ap.add_argument(
        "--gemini-copies",
        type=int,
        default=8,
        metavar="N",
        help="Gemini chats also kept in a second folder, which ccusage counts twice (default 8)",
    )
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    add_argument(ap)
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        metavar="SRC",
        help="also time the tokmon of this source tree, interleaved",
    )
    args = ap.parse_args(argv)
    if args.baseline is not None and not (args.baseline / "tokmon" / "__init__.py").is_file():
        ap.error(f"--baseline: no tokmon package in {args.baseline}")
    if args.mb <= 0 or args.runs < 1 or args.gemini_copies < 0:
        ap.error("--mb and --runs must be positive, --gemini-copies not negative")
    target = resolve(args.in_place)

    dest, truth, temporary = prepare(args.mb, args.seed, args.gemini_copies, args.keep)
    work = Path(tempfile.mkdtemp(prefix="tokmon-agents-work-"))
    try:
        corpus_bytes = warm_page_cache(dest)
        home = work / "home"
        home.mkdir()
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TOKMON_", "CLAUDE_", "CODEX_", "GEMINI_", "OPENCODE_", "QWEN_"))
            and k not in ("AMP_DATA_DIR", "COPILOT_HOME")
        }
        base.update(
            {
                "HOME": str(home),
                "TZ": "UTC",
                "NO_COLOR": "1",
                **{k: str(dest / v) for k, v in truth["env"].items()},
            }
        )
        base = target.env(base)
        unified = tokmon_has_agent_option(target, base)
        if unified:
            tok_cmds = {"all": [*target.tokmon, "daily", "--json", "--agent", "all"]}
        else:
            tok_cmds = {
                "claude": [*target.tokmon, "daily", "--json"],
                "agents": [*target.tokmon, "agents", "daily", "--json"],
            }
        # Not `-m tokmon` with PYTHONPATH: `-m` puts the current directory first on sys.path.
        boot = "import sys; sys.path.insert(0, sys.argv.pop(1)); from tokmon.__main__ import main"
        baseline_cmd = [target.python, "-c", boot + "; sys.exit(main())"]
        if args.baseline is not None:
            baseline_cmd += [str(args.baseline.resolve())]
        baseline_cmd += ["daily", "--json", "--agent", "all"]
        cc_bin = ccusage_path()
        cc_cmd = (
            [str(cc_bin), "daily", "--json", "--offline", "-z", "UTC", "--by-agent"]
            if cc_bin
            else None
        )
        walls: dict[str, list[float]] = defaultdict(list)
        rss: dict[str, float] = defaultdict(float)
        outputs: dict[str, bytes] = {}
        for i in range(args.runs):
            if cc_cmd:
                m = measure(cc_cmd, base, work / "ccusage.out")
                walls["ccusage"].append(m["wall"])
                rss["ccusage"] = max(rss["ccusage"], m["rss_mb"] or 0)
                outputs["ccusage"] = (work / "ccusage.out").read_bytes()
            env = {**base, "TOKMON_HOME": str(work / f"tokmon-home-{i}")}
            mine = [("", env, tok_cmds)]
            if args.baseline is not None:
                other = {**base, "TOKMON_HOME": str(work / f"baseline-home-{i}")}
                pair = ("baseline ", other, {"all": baseline_cmd})
                mine = [mine[0], pair] if i % 2 == 0 else [pair, mine[0]]
            for prefix, run_env, cmds in mine:
                for phase in ("cold", "warm"):
                    for name, cmd in cmds.items():
                        out = work / f"tokmon-{name}.out"
                        key = f"{prefix}{phase}:{name}"
                        m = measure(cmd, run_env, out)
                        walls[key].append(m["wall"])
                        rss[key] = max(rss[key], m["rss_mb"] or 0)
                        outputs[key] = out.read_bytes()
        med = {k: statistics.median(v) for k, v in walls.items()}
        for phase in ("cold", "warm"):
            med[f"{phase}:sum"] = sum(med[f"{phase}:{n}"] for n in tok_cmds)
        checks: dict[str, dict[str, str]] = {}
        sums: dict[str, dict[str, Any]] = {}
        for phase in ("cold", "warm"):
            s: dict[str, dict[str, int]] = {}
            for name in tok_cmds:
                s.update(per_agent(outputs[f"{phase}:{name}"], "claude"))
            sums[f"tokmon {phase}"] = s
            checks[f"tokmon {phase}"] = check(s, truth)
            if args.baseline is not None:
                med[f"baseline {phase}:sum"] = med[f"baseline {phase}:all"]
                b = per_agent(outputs[f"baseline {phase}:all"], "claude")
                sums[f"baseline {phase}"] = b
                checks[f"baseline {phase}"] = check(b, truth)
        if cc_cmd:
            sums["ccusage"] = per_agent(outputs["ccusage"], "claude")
            checks["ccusage"] = check(sums["ccusage"], truth, ccusage=True)
        results = {
            "corpus": {
                "dir": str(dest),
                "mib": corpus_bytes / 2**20,
                "per_agent_mib": {a: v["bytes"] / 2**20 for a, v in truth["agents"].items()},
                "files": {a: v["files"] for a, v in truth["agents"].items()},
            },
            "tokmon": target.as_json(),
            "tokmon_mode": "daily --json --agent all"
            if unified
            else "daily --json + agents daily --json",
            "runs": args.runs,
            "median_s": med,
            "peak_rss_mb": dict(rss),
            "ratios": {
                "cold/ccusage": med["cold:sum"] / med["ccusage"] if cc_cmd else None,
                "warm/ccusage": med["warm:sum"] / med["ccusage"] if cc_cmd else None,
                **(
                    {
                        "cold/baseline cold": med["cold:sum"] / med["baseline cold:sum"],
                        "warm/baseline warm": med["warm:sum"] / med["baseline warm:sum"],
                    }
                    if args.baseline is not None
                    else {}
                ),
            },
            "baseline": str(args.baseline) if args.baseline is not None else None,
            "checks": checks,
            "sums": sums,
            "truth": {a: expected_json(truth, a) for a in truth["agents"]},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if temporary:
            shutil.rmtree(dest.parent, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results, list(tok_cmds))
    ok = all(v.startswith("match") for c in checks.values() for v in c.values())
    return 0 if ok else 1


def print_table(r: dict[str, Any], names: list[str]) -> None:
    c = r["corpus"]
    parts = ", ".join(
        f"{a} {m:.0f} MiB/{c['files'][a]} files" for a, m in c["per_agent_mib"].items()
    )
    print(f"corpus: {c['mib']:.0f} MiB ({parts}) at {c['dir']}")
    print(r["tokmon"]["describe"])
    print(f"tokmon: {r['tokmon_mode']}; medians of {r['runs']} alternating runs")
    med, rss = r["median_s"], r["peak_rss_mb"]
    print(f"{'':34}{'wall (s)':>10}{'vs ccusage':>12}{'peak RSS (MB)':>15}")
    cc = med.get("ccusage")

    def row(label: str, key: str, rss_key: str | None) -> None:
        ratio = f"{med[key] / cc:.2f}x" if cc else "n/a"
        mem = f"{rss[rss_key]:.0f}" if rss_key and rss.get(rss_key) else "-"
        print(f"{label:34}{med[key]:>10.3f}{ratio:>12}{mem:>15}")

    if cc:
        row("ccusage daily --by-agent", "ccusage", "ccusage")
    for phase in ("cold", "warm"):
        if len(names) > 1:
            for n in names:
                row(f"tokmon {phase} ({n})", f"{phase}:{n}", f"{phase}:{n}")
        row(
            f"tokmon {phase}" + (" (sum)" if len(names) > 1 else ""),
            f"{phase}:sum",
            f"{phase}:{names[0]}" if len(names) == 1 else None,
        )
        if f"baseline {phase}:sum" in med:
            row(f"baseline {phase}", f"baseline {phase}:sum", f"baseline {phase}:all")
    for k in ("cold", "warm"):
        ratio = r["ratios"].get(f"{k}/baseline {k}")
        if ratio is not None:
            print(f"tokmon {k} / baseline {k}: {ratio:.2f} (baseline {r['baseline']})")
    print("token totals per agent vs the generator's truth:")
    for tool, res in r["checks"].items():
        print(f"  {tool:14} " + "; ".join(f"{a}: {v}" for a, v in res.items()))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"bench_agents: error: {exc}", file=sys.stderr)
        sys.exit(2)
