"""The core never imports a surface, and the dashboard no longer imports the server.

Read from the source with ``ast`` (every import, including function-level ones).
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "tokmon"
SURFACES = (
    "tokmon.cli",
    "tokmon.server",
    "tokmon.watch",
    "tokmon.statusline",
    "tokmon.web",
    "tokmon.export",
)
CORE = [
    "core",
    "engine",
    "sources",
    "aggregate.py",
    "blocks.py",
    "ledger.py",
    "parser.py",
    "reader.py",
    "records.py",
    "scan.py",
    "pricing.py",
    "discovery.py",
    "timeutil.py",
]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def files(entry: str) -> list[Path]:
    p = PKG / entry
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


def offenders(entries: list[str], banned: tuple[str, ...]) -> list[str]:
    bad = []
    for entry in entries:
        for f in files(entry):
            for mod in imports_of(f):
                if mod.startswith(banned):
                    bad.append(f"{f.relative_to(PKG)} imports {mod}")
    return bad


def test_core_imports_no_surface() -> None:
    allowed = ("tokmon.export.machines",)  # the ledger's machine map (a rebuild puts it back)
    bad = [b for b in offenders(CORE, SURFACES) if not b.endswith(allowed)]
    assert bad == []


def test_watch_dashboard_does_not_import_the_server() -> None:
    assert offenders(["watch"], ("tokmon.server",)) == []


def test_the_checker_sees_imports() -> None:
    """The scan is not vacuous: it finds the imports a surface really has."""
    assert offenders(["cli"], ("tokmon.engine",))
    assert any("tokmon.core.watcher" in i for f in files("watch") for i in imports_of(f))
