"""``tokmon ledger export|import|machines``: one person, several machines (docs/team.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tokmon.cli.context import CLIError, Context


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ledger",
        parents=[parent],
        help="merge ledgers across machines",
        description="Export this machine's ledger and import other machines' "
        "exports. Merging is idempotent: responses are keyed by "
        "their global ids, the largest output wins.",
    )
    s = p.add_subparsers(dest="ledger_command", metavar="ACTION")
    ex = s.add_parser("export", parents=[parent], help="write every record to FILE (0600)")
    ex.add_argument("file", type=Path, metavar="FILE")
    ex.add_argument("--machine", help="only the records of this machine (default: all)")
    ex.set_defaults(handler=handle_export)
    im = s.add_parser("import", parents=[parent], help="merge FILE(s) written by `ledger export`")
    im.add_argument("files", type=Path, nargs="+", metavar="FILE")
    im.set_defaults(handler=handle_import)
    ma = s.add_parser("machines", parents=[parent], help="usage per machine")
    ma.set_defaults(handler=handle_machines)
    p.set_defaults(
        handler=lambda a, c: (_ for _ in ()).throw(
            CLIError("choose an action: tokmon ledger export|import|machines (see --help)")
        )
    )


def _engine(ctx: Context) -> Any:
    if ctx.demo:
        raise CLIError("ledger export/import works on real data, not --demo")
    return ctx.engine()


def handle_export(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.core.machines import clean_machine, local_machine, restore, write_export

    engine = _engine(ctx)
    if restore(engine):
        engine.refresh()
    local = local_machine(ctx.env, ctx.config)
    machine = clean_machine(args.machine) if args.machine else None
    try:
        n = write_export(engine, args.file.expanduser(), local, machine)
    except OSError as exc:
        raise CLIError(f"cannot write {args.file}: {exc.strerror or exc}") from None
    if ctx.json_output:
        import json

        ctx.stdout.write(
            json.dumps({"file": str(args.file), "records": n, "machine": local}) + "\n"
        )
    else:
        ctx.stdout.write(f"exported {n} records from {local} to {args.file}\n")
    return 0


def handle_import(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.core.machines import ImportError_, import_rows, local_machine, read_export
    from tokmon.fsutil import LockTimeout

    engine = _engine(ctx)
    local = local_machine(ctx.env, ctx.config)
    results = []
    for f in args.files:
        try:
            rows, titles = read_export(f.expanduser())
            res = import_rows(engine, rows, titles, local)
        except ImportError_ as exc:
            raise CLIError(str(exc)) from None
        except (OSError, LockTimeout) as exc:
            raise CLIError(f"cannot update the ledger: {exc}") from None
        for w in res.warnings:
            ctx.warn(w)
        if res.bad:
            ctx.warn(f"{f}: skipped {res.bad} malformed record(s); the rest was merged")
        results.append((f, res))
    if ctx.json_output:
        import json

        ctx.stdout.write(
            json.dumps(
                [
                    {
                        "file": str(f),
                        "added": r.added,
                        "replaced": r.replaced,
                        "unchanged": r.unchanged,
                        "own": r.own,
                        "bad": r.bad,
                        "restored": r.restored,
                        "machines": sorted(r.machines),
                    }
                    for f, r in results
                ]
            )
            + "\n"
        )
    else:
        for f, r in results:
            ctx.stdout.write(
                f"{f}: {r.added} new, {r.replaced} replaced (larger output), "
                f"{r.unchanged} already here, {r.own} of this machine ({local})"
                + (f", {r.restored} restored" if r.restored else "")
                + "\n"
            )
    return 0


def handle_machines(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.cli.render import dump_json, fmt_cost, fmt_int
    from tokmon.core.machines import local_machine, machine_totals

    engine = _engine(ctx)
    local = local_machine(ctx.env, ctx.config)
    rows = sorted(machine_totals(engine, local).values(), key=lambda d: -d["totalCost"])
    if ctx.json_output:
        ctx.stdout.write(dump_json({"machines": rows}))
        return 0
    from rich import box
    from rich.table import Table

    t = Table(title="Usage per machine", box=box.SIMPLE_HEAVY)
    for col in ("Machine", "Sessions", "Responses", "Total tokens", "Cost (USD)"):
        t.add_column(col, justify="left" if col == "Machine" else "right", no_wrap=True)
    for d in rows:
        name = d["machine"] + (" (this machine)" if d["local"] else "")
        t.add_row(
            name,
            fmt_int(d["sessions"]),
            fmt_int(d["responses"]),
            fmt_int(d["totalTokens"]),
            fmt_cost(d["totalCost"]),
        )
    from tokmon.cli.limits import print_table

    print_table(ctx, t)
    if not rows:
        ctx.stdout.write("No usage in the ledger yet (see `tokmon doctor`).\n")
    return 0
