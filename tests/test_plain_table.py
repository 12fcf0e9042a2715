"""Report tables without colour: ``plain_table.Grid`` writes what rich writes.

Every case prints the same table twice, through :func:`print_plain_fitted` and through rich
(:func:`print_fitted` over :func:`rich_table`), and compares the text: generated grids with
wrapping, folding, blank and one-cell non-ASCII cells, at several terminal widths and in a
pipe; and the CLI's reports (names, tags, aliases, breakdowns, compact layouts) on a
generated corpus. Cells rich would print otherwise (markup, emoji codes, wide characters)
must be left to rich.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pytest

from tokmon.cli import plain_table
from tokmon.cli.context import Context
from tokmon.cli.plain_table import Col, Grid, print_plain_fitted
from tokmon.cli.render import print_fitted
from tokmon.cli.tables import rich_table


class _Out(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


def _ctx(columns: int | None) -> Context:
    env = {"NO_COLOR": "1"} | ({"COLUMNS": str(columns)} if columns else {})
    return Context(env=env, stdout=_Out(columns is not None), color=False)


def _both(grid: Any, compact: Any, columns: int | None, force: bool = False) -> tuple[str, str]:
    fast = _ctx(columns)
    assert print_plain_fitted(fast, grid, compact, "some columns", force, command="x")
    slow = _ctx(columns)
    print_fitted(
        slow, lambda: rich_table(grid()), lambda: rich_table(compact()), "some columns", "x", force
    )
    return fast.stdout.getvalue(), slow.stdout.getvalue()  # type: ignore[attr-defined]


WORDS = ["a", "ab", "opus-4-1,", "sonnet-4-5", "x" * 23, "api.gateway", "·", "#tag", "naïve",
         "Жук", "—", "└", "a:b", "12:30", "", " ", "x-" * 9]  # fmt: skip


def _text(rng: random.Random, most: int) -> str:
    n = rng.randint(0, most)
    sep = rng.choice([" ", "  ", ", "])
    text = sep.join(rng.choice(WORDS) for _ in range(n))
    return text + rng.choice(["", "", " ", "  "])


def _grid(rng: random.Random, narrow: bool) -> Grid:
    cols = [Col("Session", "Total"), Col("Project / name", wrap=True, max_width=rng.randint(3, 40))]
    if not narrow:
        cols.append(Col("Models", wrap=True, max_width=16))
    cols += [Col("Cache\ncreate", "12,345", right=True), Col("Cost\n(USD)", "$1.00", right=True)]
    cols.append(Col(rng.choice(["Last activity", "When\nlast", ""])))
    g = Grid(rng.choice(["Claude Code token usage: session", "t"]), cols)
    for _ in range(rng.randint(0, 12)):
        cells = [_text(rng, 2)] + [_text(rng, 7) for c in cols[1:] if c.wrap]
        cells += [rng.choice(["0", "1,234", " 5 ", ""]), "$0.00 "]
        cells.append(_text(rng, 3))
        g.add_row(cells, dim=rng.random() < 0.2)
    g.caption = rng.choice([None, "times in UTC", "times in Pacific/Kiritimati (UTC+14)"])
    return g


@pytest.mark.parametrize("seed", range(60))
def test_generated_grids_print_as_rich_prints_them(seed: int) -> None:
    rng = random.Random(seed)
    full, narrow = _grid(rng, False), _grid(random.Random(seed), True)
    if not (full.plain() and narrow.plain()):
        pytest.skip("a cell rich would print otherwise")  # pragma: no cover
    if full.render() is None or narrow.render() is None:
        return  # a title wider than the table: rich's (asserted below, not printed here)
    for columns in (None, 20, 60, 100, 250):
        for force in (False, True):
            fast, slow = _both(lambda: full, lambda: narrow, columns, force)
            assert fast == slow, (seed, columns, force)


def test_cells_rich_would_change_are_left_to_rich() -> None:
    for cell in ("[bold]x[/]", "a\\", ":thumbs_up: ok", "宽字", "tab\there", "e\u0301", "\x1b[1m"):
        g = Grid("t", [Col("h"), Col("p", wrap=True, max_width=10)])
        g.add_row(["x", cell])
        assert not g.plain(), cell
        assert not print_plain_fitted(_ctx(None), lambda g=g: g, lambda g=g: g, "h")
    g = Grid("t", [Col("h")])
    g.add_row([":not_an_emoji_name_at_all:"])
    assert g.plain()  # an unknown code stays as it is in rich too


def test_a_title_wider_than_the_table_is_left_to_rich() -> None:
    g = Grid("a title much wider than the one narrow column", [Col("h")])
    g.add_row(["x"])
    assert g.render() is None
    assert not print_plain_fitted(_ctx(None), lambda: g, lambda: g, "h")


def test_colour_output_is_left_to_rich() -> None:
    g = Grid("t", [Col("h")])
    g.add_row(["x"])
    ctx = Context(env={"FORCE_COLOR": "1"}, stdout=_Out(True), color=True)
    assert not print_plain_fitted(ctx, lambda: g, lambda: g, "h")
    assert ctx.stdout.getvalue() == ""


# ---- the CLI's report tables ----------------------------------------------------------------


def _cli(env: dict[str, str], argv: list[str], columns: int | None) -> str:
    from tokmon.cli.main import run

    out, err = _Out(columns is not None), io.StringIO()
    e = {**env, **({"COLUMNS": str(columns)} if columns else {})}
    assert run(argv, env=e, stdin=io.StringIO(), stdout=out, stderr=err) == 0, err.getvalue()
    return out.getvalue()


def _forget(env: dict[str, str]) -> None:
    for p in (Path(env["TOKMON_HOME"]) / "cache" / "reports").glob("session-*"):
        p.unlink()


def test_cli_tables_print_as_rich_prints_them(
    cli: Any, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime, timezone

    from tokmon.demo import generate

    generate(tmp_path / "claude", size_mb=3, seed=7, end=datetime(2026, 3, 20, tzinfo=timezone.utc))
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    rows = cli("session", "--json").json()["sessions"]
    assert cli("session", "name", rows[0]["sessionId"], "Named · one").code == 0
    assert cli("session", "tag", rows[1]["sessionId"], "alpha", "beta").code == 0
    assert cli("session", "name", rows[2]["sessionId"], "x" * 70).code == 0
    project = rows[3]["projectName"]
    cases = [
        ["session"],
        ["session", "--breakdown"],
        ["session", "--compact"],
        ["session", "--project-aliases", f"{project}=Aliased name"],
        ["session", "--all", "-z", "Asia/Kolkata"],
        ["daily", "--breakdown"],
        ["weekly"],
        ["monthly", "--compact"],
    ]
    used = []
    real = plain_table.print_plain_fitted

    def spy(*a: Any, **k: Any) -> bool:
        used.append(got := real(*a, **k))
        return got

    for argv in cases:
        for columns in (None, 80, 130, 400):
            monkeypatch.setattr(plain_table, "print_plain_fitted", spy)
            monkeypatch.setattr("tokmon.cli.tables.print_plain_fitted", spy)
            _forget(env)  # a kept table would answer instead
            fast = _cli(env, argv, columns)
            monkeypatch.setattr("tokmon.cli.tables.print_plain_fitted", lambda *a, **k: None)
            _forget(env)
            slow = _cli(env, argv, columns)
            assert fast == slow, (argv, columns)
    assert used and all(used)  # every one of them printed by the Grid


def test_a_kept_session_table_of_another_layout_is_not_reused(
    cli: Any, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`session`'s table text is kept (reports.SessionCache) with the layout version in its
    key: after an upgrade that lays tables out otherwise, the old text is not printed."""
    from datetime import datetime, timezone

    from conftest import assistant_line, write_lines

    from tokmon.cli import render
    from tokmon.core.engine import Engine

    t0 = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
    write_lines(tmp_path / "claude" / "projects" / "-w-app" / "a.jsonl",
                [assistant_line(t0, msg_id="m1", req_id="r1", session="s1", inp=5, out=7)])  # fmt: skip
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")
    first = cli("session")
    assert first.code == 0 and "━" in first.out, first.err
    built: list[int] = []
    real = Engine.report

    def counted(self: Engine, *a: Any, **k: Any) -> Any:
        built.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(Engine, "report", counted)
    assert cli("session").out == first.out and not built  # kept: the same layout
    monkeypatch.setattr(render, "LAYOUT", render.LAYOUT + 1)
    assert cli("session").out == first.out and built  # built again for the new layout
