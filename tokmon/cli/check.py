"""`tokmon check`: exit non-zero when a limit or budget is crossed or projected to be.

Exit codes (highest wins):

* 0 - all clear
* 3 - warning: a window or budget is at or above ``--warn`` percent (default 80)
* 4 - projected: at the current pace a window reaches 100% before it resets, or a budget
  ends its period above 100%
* 5 - crossed: a window is at 100% (official or estimate), Claude reported "usage limit
  reached" and the reset is still ahead, or a budget is exceeded
* 1 - tokmon itself failed; 2 - bad arguments or config
"""

from __future__ import annotations

import argparse
from typing import Any

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json

OK, WARN, PROJECTED, CROSSED = 0, 3, 4, 5
NAMES = {OK: "ok", WARN: "warning", PROJECTED: "projected", CROSSED: "crossed"}


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "check",
        parents=[parent],
        help="exit 3/4/5 when a limit or budget is near, projected or crossed",
        description="Judge the official limit windows (5-hour / 7-day, Codex's) and the "
        "[[budgets]] for scripts and hooks. Exit 0 ok, 3 a window or budget at or above --warn "
        "%, 4 projected to reach 100 % before its reset or period end, 5 crossed; 1 error, 2 "
        "bad arguments. The highest applicable code wins (docs/limits.md). The block token "
        "limit (token_limit) is not a limit here.",
    )
    p.add_argument(
        "--warn",
        type=float,
        default=80.0,
        metavar="PCT",
        help="warning level in percent (default 80)",
    )
    p.add_argument("--no-budgets", action="store_true", help="check official limits only "
                   "(no transcript scan)")  # fmt: skip
    p.add_argument("--no-alerts", action="store_true", help="do not fire configured alerts")
    p.add_argument("--at", metavar="TIME", help="judge as of this ISO time (past periods)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing, only exit")
    p.set_defaults(handler=handle)


def assess(
    st: dict[str, Any], budgets: list[dict[str, Any]], warn: float, tz: Any = None
) -> list[dict[str, Any]]:
    """Every finding ``{"level", "code", "what", "message"}`` of a status and budget use
    (times in ``tz``, the system zone when None)."""
    from tokmon import fmt

    zone = tz or fmt.local_zone()
    out: list[dict[str, Any]] = []

    def add(code: int, what: str, msg: str) -> None:
        out.append({"code": code, "level": NAMES[code], "what": what, "message": msg})

    for w in st.get("windows", []):
        if w.get("stale") and w.get("basis") == "official":
            continue
        used = w["usedPercent"]
        tag = " (estimate)" if w["basis"] == "estimate" else ""
        proj = w.get("projectedPercent")
        if used >= 100:
            add(CROSSED, w["label"], f"{w['label']} at {used:.0f}%{tag}")
        elif proj is not None and proj >= 100:
            add(
                PROJECTED,
                w["label"],
                f"{w['label']} at {used:.0f}%{tag}, {proj:.0f}% projected by the reset",
            )
        elif used >= warn:
            add(WARN, w["label"], f"{w['label']} at {used:.0f}%{tag}")
    for m in st.get("limitReached", []):
        add(
            CROSSED,
            f"{m['source']} limit",
            f"{m['source']} usage limit reached; resets "
            f"{fmt.date_time(m['resetsAt'], zone)} {fmt.zone_name(zone, m['resetsAt'])}",
        )
    for b in budgets:
        if b["exceeded"]:
            add(CROSSED, f"budget {b['name']}", f"budget {b['name']} at {b['percent']:.0f}%")
        elif b["projectedPercent"] >= 100:
            add(
                PROJECTED,
                f"budget {b['name']}",
                f"budget {b['name']} at {b['percent']:.0f}%, {b['projectedPercent']:.0f}% projected",
            )
        elif b["percent"] >= warn:
            add(WARN, f"budget {b['name']}", f"budget {b['name']} at {b['percent']:.0f}%")
    return out


def handle(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.cli.limits import evaluate, parse_at

    at = parse_at(args.at)
    from tokmon.config import section_problems

    problems = section_problems(ctx.config_path or ctx.paths.config_file)
    if problems:  # a broken budget or alert must not pass as "ok" (exit 2: bad config)
        raise CLIError("\ntokmon: error: ".join(problems))
    ev = evaluate(ctx, fire=not args.no_alerts and at is None, local=not args.no_budgets, now=at)
    from tokmon.cli.render import resolve_zone

    findings = assess(ev.status, ev.budgets, args.warn, resolve_zone(ctx, None))
    code = max((f["code"] for f in findings), default=OK)
    if ctx.json_output:
        ctx.stdout.write(dump_json({"code": code, "state": NAMES[code], "findings": findings}))
    elif not args.quiet:
        if not findings:
            ctx.stdout.write("ok: no limit or budget near its end\n")
        for f in sorted(findings, key=lambda f: -f["code"]):
            ctx.stdout.write(f"{f['level']}: {f['message']}\n")
    return code
