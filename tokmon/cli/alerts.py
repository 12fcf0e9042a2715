"""`tokmon alerts test|list|log|run`: limit and budget alerts."""

from __future__ import annotations

import argparse
import time

from tokmon.cli.context import CLIError, Context
from tokmon.cli.render import dump_json


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "alerts", parents=[parent], help="limit and budget alerts: test, list, log, run"
    )
    s = p.add_subparsers(dest="alerts_cmd", metavar="ACTION")
    t = s.add_parser("test", parents=[parent], help="send a test alert through every channel")
    t.set_defaults(handler=handle_test)
    ls = s.add_parser("list", parents=[parent], help="configured thresholds and channels")
    ls.set_defaults(handler=handle_list)
    lg = s.add_parser("log", parents=[parent], help="alerts fired so far (newest first)")
    lg.add_argument("-n", "--limit", type=int, default=50)
    lg.set_defaults(handler=handle_log)
    r = s.add_parser("run", parents=[parent], help="evaluate and deliver alerts now")
    r.add_argument(
        "--official",
        action="store_true",
        help="official figures only (no transcript scan; what the statusline starts)",
    )
    r.set_defaults(handler=handle_run)
    p.set_defaults(handler=lambda a, c: handle_list(a, c))


_OFF = "Alerts are off: add an [alerts] table to the config (see docs/limits.md)."


def _say(ctx: Context, text: str) -> None:
    """One message line, broken at spaces to the terminal's width."""
    from tokmon.cli.render import terminal_width, write_wrapped

    write_wrapped(ctx, text, terminal_width(ctx))


def _cfg(ctx: Context):  # type: ignore[no-untyped-def]
    from tokmon.limits import alerts

    try:
        return alerts.load(ctx.config_path or ctx.paths.config_file)
    except alerts.AlertConfigError as exc:
        raise CLIError(str(exc)) from exc


def handle_list(args: argparse.Namespace, ctx: Context) -> int:
    from dataclasses import asdict

    from tokmon.limits.notifiers import redact

    cfg = asdict(_cfg(ctx))
    cfg["webhooks"] = [redact(u) for u in cfg["webhooks"]]
    if ctx.json_output:
        ctx.stdout.write(dump_json(cfg))
        return 0
    if not cfg["enabled"]:
        _say(ctx, _OFF)
        return 0
    for key in ("official", "projected", "block", "budgets"):
        ctx.stdout.write(f"{key:10} {', '.join(f'{v:g}%' for v in cfg[key]) or '-'}\n")
    ctx.stdout.write(f"{'desktop':10} {'on' if cfg['desktop'] else 'off'}\n")
    ctx.stdout.write(f"{'webhooks':10} {', '.join(cfg['webhooks']) or '-'}\n")
    return 0


def handle_log(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.limits import alerts

    rows = alerts.log(ctx.paths, max(1, args.limit))
    if ctx.json_output:
        ctx.stdout.write(dump_json({"alerts": rows}))
        return 0
    if not rows:
        ctx.stdout.write("No alerts fired yet.\n")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["ts"]))
        _say(ctx, f"{when}  {r['status']:7} {r['message']}")
    return 0


def handle_test(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.limits import alerts

    cfg = _cfg(ctx)
    if not cfg.enabled:
        cfg = alerts.AlertConfig(enabled=True)
    now = time.time()
    cand = {
        "key": f"test:{now:.6f}",
        "kind": "test",
        "subject": "test alert",
        "threshold": 0.0,
        "value": None,
        "message": "tokmon test alert: notifications work",
    }
    fired = alerts.fire(ctx.paths, cfg, [cand], ctx.env, now)
    result = fired[0]["channels"] if fired else {}
    if ctx.json_output:
        ctx.stdout.write(dump_json({"channels": result}))
    else:
        if not result:
            ctx.stdout.write(
                "terminal: tokmon test alert: notifications work\n"
                "(no desktop or webhook channel configured)\n"
            )
        for ch, res in result.items():
            ctx.stdout.write(f"{ch}: {res}\n")
    return 0 if all(v.startswith("sent") for v in result.values()) else 1


def handle_run(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.cli.limits import evaluate

    ev = evaluate(ctx, fire=True, local=not args.official)
    if ctx.json_output:
        ctx.stdout.write(dump_json({"fired": ev.fired}))
    elif not ev.fired:  # each fired alert is already one `tokmon: alert:` line on stderr
        _say(
            ctx,
            "No new alert: each threshold fires once per window or period."
            if _cfg(ctx).enabled
            else _OFF,
        )
    return 0
