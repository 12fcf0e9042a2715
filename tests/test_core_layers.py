"""The layering: surfaces stand side by side on the core, the CLI dispatches to them.

* surfaces (``tokmon.statusline``, ``tokmon.server``, ``tokmon.watch``, ``tokmon.web``,
  ``tokmon.export``) never import one another: what two of them share belongs in the core;
* the core (every other module but the ``tokmon.cli`` dispatcher and ``tokmon/__main__.py``)
  imports no surface and not the CLI.

Read from the source with ``ast`` (every import, function-level ones included, ``from tokmon
import x`` and relative imports resolved), never by importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "tokmon"
SURFACES = ("tokmon.statusline", "tokmon.server", "tokmon.watch", "tokmon.web", "tokmon.export")
DISPATCHERS = ("tokmon.cli", "tokmon.__main__")  # may import any surface


def module_name(path: Path, pkg: Path = PKG) -> str:
    parts = list(path.relative_to(pkg.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, pkg: Path = PKG) -> set[str]:
    """Every module ``path`` imports (``from a import b`` also counts ``a.b``: b may be one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path, pkg).split(".")
    if path.name != "__init__.py":
        package.pop()
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names if a.name != "*")
    return out


def layer_of(module: str) -> str:
    """The surface or dispatcher ``module`` belongs to, else ``"core"``."""
    for top in SURFACES + DISPATCHERS:
        if module == top or module.startswith(top + "."):
            return top
    return "core"


def in_layer(module: str, top: str) -> bool:
    return module == top or module.startswith(top + ".")


def all_files(pkg: Path = PKG) -> list[Path]:
    return sorted(pkg.rglob("*.py"))


def violations(pkg: Path = PKG) -> list[str]:
    bad = []
    for f in all_files(pkg):
        me = layer_of(module_name(f, pkg))
        if me in DISPATCHERS:
            continue
        banned = [s for s in SURFACES if s != me] + ["tokmon.cli"]
        for mod in sorted(imports_of(f, pkg)):
            if any(in_layer(mod, b) for b in banned):
                bad.append(f"{f.relative_to(pkg.parent).as_posix()} ({me}) imports {mod}")
    return bad


def test_no_surface_imports_another_and_the_core_imports_none() -> None:
    assert violations() == []


def test_watch_dashboard_does_not_import_the_server() -> None:
    tui = [f for f in all_files() if layer_of(module_name(f)) == "tokmon.watch"]
    assert tui
    assert [i for f in tui for i in imports_of(f) if in_layer(i, "tokmon.server")] == []


def test_the_checker_sees_imports() -> None:
    """The scan is not vacuous: it finds the imports modules really have, in every form."""
    cli = [
        i for f in all_files() if layer_of(module_name(f)) == "tokmon.cli" for i in imports_of(f)
    ]
    assert any(in_layer(i, "tokmon.server") for i in cli)  # the dispatcher starts the server
    assert any(in_layer(i, "tokmon.core.engine") for i in cli)
    assert "tokmon.fmt" in imports_of(PKG / "watch" / "app.py")  # from tokmon import fmt
    assert any(i.startswith("tokmon.core.watcher") for f in all_files() for i in imports_of(f))


def test_layers_are_classified() -> None:
    assert layer_of("tokmon.web.app") == "tokmon.web"
    assert layer_of("tokmon.webhooks") == "core"  # a prefix is not a package
    assert layer_of("tokmon.core.engine.ingest") == "core"
    assert module_name(PKG / "core" / "__init__.py") == "tokmon.core"


def test_the_rules_catch_every_form(tmp_path: Path) -> None:
    """A fake package with one violation of each kind (and allowed imports) next to it."""
    pkg = tmp_path / "tokmon"
    files = {
        "__init__.py": "",
        "__main__.py": "from tokmon.cli.main import main\n",
        "core/engine/__init__.py": "def f():\n    from tokmon.export.machines import x\n",
        "core/engine/ok.py": "from tokmon.core import model\nfrom . import store\n",
        "web/__init__.py": "",
        "web/app.py": "from ..server import service\nfrom . import static\n",
        "web/ok.py": "from tokmon.web.app import make\n",
        "watch/app.py": "import tokmon.statusline.fast\n",
        "limits/run.py": "from tokmon import cli\n",
        "cli/main.py": "from tokmon.web import app\nfrom tokmon.server import lsp\n",
        "webhooks.py": "from tokmon import webhooks2\n",
    }
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text, encoding="utf-8")
    assert violations(pkg) == [
        "tokmon/core/engine/__init__.py (core) imports tokmon.export.machines",
        "tokmon/core/engine/__init__.py (core) imports tokmon.export.machines.x",
        "tokmon/limits/run.py (core) imports tokmon.cli",
        "tokmon/watch/app.py (tokmon.watch) imports tokmon.statusline.fast",
        "tokmon/web/app.py (tokmon.web) imports tokmon.server",
        "tokmon/web/app.py (tokmon.web) imports tokmon.server.service",
    ]
    assert imports_of(pkg / "core" / "engine" / "ok.py", pkg) == {
        "tokmon.core",
        "tokmon.core.model",
        "tokmon.core.engine",
        "tokmon.core.engine.store",
    }
