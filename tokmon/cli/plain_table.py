"""Report tables without colour, written as rich writes them but at a fraction of the cost.

rich lays a report table out cell by cell (measure, wrap, pad: ~1 ms a row); a session report
of thousands of sessions took seconds. Where the output has no colour and every cell is plain
printable ASCII that rich prints as it is (no markup, no emoji code, no backslash),
:class:`Grid` writes the very characters rich would for the layout the report tables use
(``box.SIMPLE_HEAVY``, a title and a caption centred, a footer, one space of padding either
side of a cell; a wrapping column narrowed to fit the terminal by :meth:`Grid.fit` exactly as
:func:`tokmon.cli.render.fit_table` narrows rich's). Anything else goes to rich, as before.
``tests/test_plain_table.py`` compares both on generated and adversarial tables.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tokmon.leanclass import dataclass, field

if TYPE_CHECKING:
    from tokmon.cli.context import Context

# printable ASCII but "[" (markup) and "\\" (rich's escape adds one at the end of a text)
_ASCII = re.compile(r"[\x20-\x5a\x5d-\x7e]*")
_OTHER = re.compile(r"[^\x20-\x5a\x5d-\x7e]")
# other characters taken as one cell each, as rich measures them: Latin, Greek, Cyrillic (no
# combining marks), general punctuation, arrows, box drawing ("·" and "└" in report cells)
_ONE_CELL = ((0xA1, 0x2FF), (0x370, 0x482), (0x48A, 0x52F), (0x2010, 0x2027),
             (0x2030, 0x205E), (0x2190, 0x21FF), (0x2500, 0x257F))  # fmt: skip
_checked: dict[str, bool] = {}
_COLONS = re.compile(r":\S*:")


def _one_cell(ch: str) -> bool:
    ok = _checked.get(ch)
    if ok is None:
        o = ord(ch)
        ok = ch.isprintable() and any(lo <= o <= hi for lo, hi in _ONE_CELL)
        if ok:
            from rich.cells import get_character_cell_size

            ok = get_character_cell_size(ch) == 1
        _checked[ch] = ok
    return ok


def plain_text(text: str) -> bool:
    """Whether rich prints ``text`` (table cells parsed as markup, here joined by spaces)
    as it is, each character one cell wide."""
    if _ASCII.fullmatch(text) is None:
        for ch in set(_OTHER.findall(text)):
            if not _one_cell(ch):
                return False
    if _COLONS.search(text):  # an emoji code is ":name:", never across a space
        from rich._emoji_replace import _emoji_replace

        return _emoji_replace(text) == text
    return True


@dataclass
class Col:
    """One column: header and footer (may hold newlines), alignment, and for a text column
    that wraps (``wrap``, rich's ``overflow="fold"``) its widest content."""

    header: str
    footer: str = ""
    right: bool = False
    wrap: bool = False
    max_width: int | None = None


@dataclass
class Grid:
    """A report table's content: what :func:`tokmon.cli.tables.period_table` hands to rich."""

    title: str
    cols: list[Col]
    rows: list[list[str]] = field(default_factory=list)
    dim: list[bool] = field(default_factory=list)  # rows rich prints dim (breakdowns)
    caption: str | None = None
    _widths: list[int] | None = None

    def add_row(self, cells: Sequence[str], dim: bool = False) -> None:
        self.rows.append(list(cells))
        self.dim.append(dim)

    def plain(self) -> bool:
        """Whether every cell is one :class:`Grid` writes as rich does."""
        fixed = [self.title, self.caption or ""]
        fixed += [x.replace("\n", " ") for c in self.cols for x in (c.header, c.footer)]
        cells = " ".join(x for row in self.rows for x in row)
        return plain_text(" ".join([*fixed, cells.replace("\n", " ")]))

    def widths(self) -> list[int]:
        """Each column's width with its padding (rich's measured maximum, clamped)."""
        if self._widths is None:
            self.set_longest(
                [
                    max((_longest(x) if "\n" in x else len(x) for x in col), default=0)
                    for col in zip(*self.rows, strict=True)
                ]
                if self.rows
                else [0] * len(self.cols)
            )
            assert self._widths is not None
        return self._widths

    def set_longest(self, longest: Sequence[int]) -> None:
        """The widths of columns whose longest cells have these lengths (the rows held
        elsewhere: a kept table's columns, :func:`tokmon.cli.tables.session_table`)."""
        out = []
        for c, n in zip(self.cols, longest, strict=True):
            w = max(_longest(c.header), _longest(c.footer), n)
            w = (w if w >= 1 else 0) + 2
            if c.max_width is not None:
                w = min(w, c.max_width + 2)
            out.append(w)
        self._widths = out

    def fit(self, width: int, minimum: int = 12) -> bool:
        """Narrow the wrapping columns so the table fits ``width`` (each down to ``minimum``,
        or its own width if smaller; the widest first), as
        :func:`tokmon.cli.render.fit_table` does a rich table's; False: the other columns
        alone need more."""
        widths = self.widths()
        edges = 2 + len(self.cols) - 1
        if sum(widths) + edges <= width:
            return True
        wrap = [j for j, c in enumerate(self.cols) if c.wrap]
        floor = {j: min(widths[j], minimum + 2) for j in wrap}
        fixed = sum(w for j, w in enumerate(widths) if j not in floor) + edges
        if fixed + sum(floor.values()) > width:
            return False
        lo, hi = 0, max(widths[j] for j in wrap)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fixed + sum(max(floor[j], min(widths[j], mid)) for j in wrap) <= width:
                lo = mid
            else:
                hi = mid - 1
        for j in wrap:
            widths[j] = max(floor[j], min(widths[j], lo))
            self.cols[j].max_width = widths[j] - 2  # what rich is told (rich_table)
        return True

    def minimum(self, minimum: int = 12) -> int:
        """The narrowest the table can be (wrapping columns at ``minimum``)."""
        widths = self.widths()
        return (
            2
            + len(self.cols)
            - 1
            + sum(
                min(w, minimum + 2) if c.wrap else w for w, c in zip(widths, self.cols, strict=True)
            )
        )

    def need(self) -> int:
        """The width of the table (edges and dividers included)."""
        return sum(self.widths()) + 2 + len(self.cols) - 1

    def render(self) -> str | None:
        """The table as rich prints it without colour (None: a title or caption wider than
        the table, which rich would wrap)."""
        parts = self.render_parts()
        if parts is None:
            return None
        head, rows, tail = parts
        return head + "".join(rows) + tail

    def render_parts(self) -> tuple[str, list[str], str] | None:
        """:meth:`render` in parts: the lines above the rows, each row's lines (a breakdown
        row is a row of its own) and the lines below them, each line ending in a newline."""
        widths = self.widths()
        total = self.need()
        title = _centred(self.title, total)
        if title is None:
            return None
        rule = " " + "━" * (total - 2) + " "
        # the top edge: blank in SIMPLE_HEAVY
        head = [title, " " * total, *self._row([c.header for c in self.cols], widths, header=True)]
        head.append(rule)
        cols = self.cols
        rows = ["".join(x + "\n" for x in self._row(row, widths, cols=cols)) for row in self.rows]
        tail = [rule, *self._row([c.footer for c in self.cols], widths), " " * total]
        if self.caption:  # the bottom edge above
            line = _centred(self.caption, total)
            if line is None:
                return None
            tail.append(line)
        return "".join(x + "\n" for x in head), rows, "".join(x + "\n" for x in tail)

    def _row(
        self,
        cells: Sequence[str],
        widths: list[int],
        header: bool = False,
        cols: list[Col] | None = None,
    ) -> list[str]:
        cols = cols or self.cols
        if "\n" not in "".join(cells) and all(
            len(x) <= w - 2 for x, w in zip(cells, widths, strict=True)
        ):  # one line, nothing to wrap: the common row
            parts = [
                (x.rstrip().rjust(w - 2) if c.right else x.ljust(w - 2))
                for x, w, c in zip(cells, widths, cols, strict=True)
            ]
            return [_join(parts)]
        blocks = [
            _cell_lines(x, w - 2, c.right, c.wrap)
            if "\n" in x or len(x) > w - 2
            else [x.rstrip().rjust(w - 2) if c.right else x.ljust(w - 2)]
            for x, w, c in zip(cells, widths, cols, strict=True)
        ]
        height = max(len(b) for b in blocks)
        for b, w in zip(blocks, widths, strict=True):
            blank = [" " * (w - 2)] * (height - len(b))
            if header:  # rich aligns a header to the bottom, other rows to the top
                b[:0] = blank
            else:
                b += blank
        return [_join([b[k] for b in blocks]) for k in range(height)]


def _join(parts: list[str]) -> str:
    """Cells' text (each as wide as its column less the padding) into one line."""
    return "  " + "   ".join(parts) + "  "


def _longest(text: str) -> int:
    return max((len(x) for x in text.splitlines()), default=0)


def _centred(text: str, width: int) -> str | None:
    """rich's centred annotation (title, caption) of ``width`` columns; None if it wraps."""
    if len(text) > width:
        return None
    t = text.rstrip()
    line = " " * ((width - len(t)) // 2) + t
    return line + " " * (width - len(line))


def _cell_lines(text: str, width: int, right: bool, wrap: bool) -> list[str]:
    """A cell's lines at ``width`` (no padding), as rich's Text wraps and justifies them
    (a fresh list: the caller pads it)."""
    key = (text, width, right, wrap)
    got = _wrapped.get(key)
    if got is None:
        if len(_wrapped) > 10_000:
            _wrapped.clear()
        got = _wrapped[key] = _cell_lines_of(text, width, right, wrap)
    return list(got)


_wrapped: dict[tuple[str, int, bool, bool], list[str]] = {}


def _cell_lines_of(text: str, width: int, right: bool, wrap: bool) -> list[str]:
    out: list[str] = []
    for line in text.split("\n"):
        if wrap and len(line) > width:
            from rich._wrap import divide_line

            cuts = divide_line(line, width, fold=True)
            pieces = [line[a:b] for a, b in zip([0, *cuts], [*cuts, len(line)], strict=True)]
        else:
            pieces = [line]
        for p in pieces:
            if len(p) > width:  # rstrip_end: trailing blanks beyond the width
                blanks = len(p) - len(p.rstrip())
                p = p[: len(p) - min(blanks, len(p) - width)]
            if right:
                p = p.rstrip()[:width]
                p = " " * (width - len(p)) + p
            else:
                p = p[:width].ljust(width)
            out.append(p)
    return out


def _surely_plain(ctx: Context) -> bool:
    """Whether rich would see no terminal (no colour) without asking it (importing rich's
    console costs ~20 ms): stdout no tty, and none of what rich reads before the tty test."""
    import builtins
    import os

    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return False
    if hasattr(builtins, "get_ipython") or getattr(sys.stdin, "__module__", "").startswith(
        "idlelib"
    ):
        return False
    try:
        return not ctx.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def plain_output(ctx: Context) -> bool:
    """Whether rich would print to ``ctx.stdout`` without colour, in UTF-8 (else
    :func:`print_plain_fitted` leaves a table to rich)."""
    enc = str(getattr(ctx.stdout, "encoding", None) or "utf-8").lower()
    if not enc.startswith("utf"):  # rich would draw the rules in ASCII
        return False
    if ctx.color and not _surely_plain(ctx):
        from tokmon.cli.render import console, terminal_width

        if console(ctx, terminal_width(ctx)).color_system is not None:
            return False
    return True


@dataclass
class Plan:
    """The layout :func:`plan_plain` chose: ``table`` (None: none fits, ``suffix`` says so)
    is layout ``level`` (0: the full one, 1: the compact one, then the narrower ones),
    ``suffix`` what follows it (the compact layout's hint)."""

    table: Grid | None
    level: int
    suffix: str


def plan_plain(
    width: int | None,
    full: Callable[[], Grid],
    compact: Callable[[], Grid],
    hidden: str,
    force_compact: bool = False,
    narrower: Sequence[tuple[Callable[[], Grid], str]] = (),
    command: str = "this report",
) -> Plan | None:
    """The layout :func:`print_plain_fitted` prints at ``width`` (None: a pipe), its
    wrapping columns fitted; None: a cell rich would not print as it is."""
    from tokmon.cli.render import too_narrow_text, wrapped

    need: int | None = None
    if not force_compact:
        table = full()
        if not table.plain():
            return None
        need = table.need()
        if width is None or need <= width:
            return Plan(table, 0, "")
    narrowest = 0
    for level, (build, left_out) in enumerate([(compact, hidden), *narrower], 1):
        table = build()
        if not table.plain():
            return None
        if width is not None and not table.fit(width):
            narrowest = table.minimum()
            continue
        if need is None:
            hint = f"Compact layout (--compact): {left_out} not shown"
        else:
            hint = f"Compact layout ({left_out} need {need} cols; or pipe to less -S)"
        return Plan(table, level, wrapped(hint, width))
    return Plan(None, -1, too_narrow_text(command, narrowest, width))


def print_plain_fitted(
    ctx: Context,
    full: Callable[[], Grid],
    compact: Callable[[], Grid],
    hidden: str,
    force_compact: bool = False,
    narrower: Sequence[tuple[Callable[[], Grid], str]] = (),
    command: str = "this report",
    plan: list[Plan] | None = None,
) -> str | None:
    """:func:`tokmon.cli.render.print_fitted` for :class:`Grid` tables, when the output has
    no colour and rich would print the cells as they are: the text printed; None (nothing
    printed): not so, rich must print it. ``plan``: the layout printed is appended."""
    from tokmon.cli.render import terminal_width

    if not plain_output(ctx):
        return None
    got = plan_plain(terminal_width(ctx), full, compact, hidden, force_compact, narrower, command)
    if got is None:
        return None
    text = "" if got.table is None else got.table.render()
    if text is None:
        return None
    text += got.suffix
    ctx.stdout.write(text)
    if plan is not None:
        plan.append(got)
    return text
