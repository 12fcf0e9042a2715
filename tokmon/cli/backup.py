"""`tokmon backup create|restore`: copy the session metadata store out and back in."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tokmon.cli.context import CLIError, Context

if TYPE_CHECKING:
    from tokmon.metadata.store import MetadataStore


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "backup",
        parents=[parent],
        help="back up or restore session metadata (names, tags, descriptions)",
    )
    bs = p.add_subparsers(dest="backup_command", metavar="SUBCOMMAND")
    p.set_defaults(handler=lambda a, c: _usage(p))
    cp = bs.add_parser("create", parents=[parent], help="write a backup file")
    cp.add_argument(
        "path", nargs="?", metavar="PATH", help="file or directory (default: <data dir>/backups/)"
    )
    cp.set_defaults(handler=handle_create)
    rp = bs.add_parser(
        "restore", parents=[parent], help="replace the metadata with a backup (validated, atomic)"
    )
    rp.add_argument("path", metavar="PATH")
    rp.set_defaults(handler=handle_restore)


def _usage(p: argparse.ArgumentParser) -> int:
    raise CLIError(
        "missing subcommand: use `tokmon backup create [PATH]` or `tokmon backup restore PATH`"
    )


def _store(ctx: Context) -> MetadataStore:  # the import inside keeps `tokmon --help` fast
    from tokmon.metadata.store import MetadataStore

    return MetadataStore(paths=ctx.paths)


def handle_create(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.metadata.store import MetadataError
    from tokmon.paths import ensure_dir

    if args.path:
        dest = Path(args.path).expanduser()
        if not dest.parent.is_dir():
            raise CLIError(f"directory {dest.parent} does not exist")
    else:
        dest = ensure_dir(ctx.paths.data_dir / "backups")
    try:
        written = _store(ctx).backup(dest)
        count = len(_store(ctx).all())
    except MetadataError as exc:
        raise CLIError(str(exc)) from None
    if ctx.json_output:
        from tokmon.cli.render import dump_json

        ctx.stdout.write(dump_json({"path": str(written), "sessions": count}))
    else:
        ctx.stdout.write(
            f"backed up metadata of {count} session{'' if count == 1 else 's'} to {written}\n"
        )
    return 0


def handle_restore(args: argparse.Namespace, ctx: Context) -> int:
    from tokmon.metadata.store import MetadataError

    store = _store(ctx)
    try:
        previous = store.restore(Path(args.path))
        count = len(store.all())
    except MetadataError as exc:
        raise CLIError(str(exc)) from None
    if ctx.json_output:
        from tokmon.cli.render import dump_json

        ctx.stdout.write(
            dump_json(
                {
                    "restored": str(args.path),
                    "sessions": count,
                    "previous": str(previous) if previous is not None else None,
                }
            )
        )
    else:
        kept = f" (the previous file is kept as {previous})" if previous is not None else ""
        ctx.stdout.write(
            f"restored metadata of {count} session{'' if count == 1 else 's'} from {args.path}{kept}\n"
        )
    return 0
