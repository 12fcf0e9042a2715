"""`tokmon watch`: the Textual dashboard (rendering and keys only; numbers come from model.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tokmon import fmt
from tokmon.watch.model import (
    BURN_COLOURS,
    DashboardState,
    DashboardView,
    SessionView,
    Snapshot,
    bar,
    compact_line,
    fmt_age,
    fmt_cost,
    fmt_minutes,
    fmt_tokens,
    parse_tag_input,
)

MIN_WIDTH = 72  # below this (or MIN_HEIGHT) the dashboard falls back to the compact layout
MIN_HEIGHT = 18
STALE_S = 150.0  # the header flags data older than this (refreshes come at least every 60 s)

HELP = """\
[b]tokmon watch[/b] - live token usage

  [b]q[/b]            quit
  [b]r[/b]            reset the "since reset" counters (+Reset column)
  [b]↑/↓  k/j[/b]     select a session
  [b]enter[/b]        session detail
  [b]t[/b]            tag the selected session ([i]a b -c[/i]: add a, b; remove c)
  [b]/[/b]            filter sessions (words, #tag); enter keeps, esc clears
  [b]?[/b]            this help

Block = Claude's 5-hour billing window. Limit % is against the configured token
limit, else the largest completed block. "official" figures come from Claude
Code's statusLine when available; the others are local estimates.

[dim]esc / q / ? closes this help[/dim]"""


def _types_line(by_type: list[tuple[str, int]], width: int = 0) -> Text:
    """``in 1.23k  out 45.6k  cw …  cr …``; pairs that would not fit ``width`` are left out."""
    t = Text()
    short = {"input": "in", "output": "out", "cache write": "cw", "cache read": "cr"}
    for i, (label, n) in enumerate(by_type):
        part = f"{'  ' if i else ''}{short.get(label, label)} {fmt_tokens(n)}"
        if width and len(t.plain) + len(part) > width:
            break
        if i:
            t.append("  ")
        t.append(f"{short.get(label, label)} ", style="dim")
        t.append(fmt_tokens(n))
    return t


def _ago(seconds: float) -> str:
    age = fmt_age(seconds)
    return age if age == "now" else f"{age} ago"


Part = tuple[str, str]  # (text, style)


def _fit(t: Text, required: list[Part], optional: list[Part], width: int) -> None:
    """Append one line: the required parts, then each optional part that still fits."""
    used = sum(len(x) for x, _ in required)
    for text, style in required:
        t.append(text, style=style)
    for text, style in optional:
        if width <= 0 or used + len(text) <= width:
            t.append(text, style=style)
            used += len(text)
    t.append("\n")


def render_block(v: DashboardView, width: int, tz: Any = None) -> Text:
    """The current-block panel: one line per fact, most important first, never wrapped.

    Each line keeps its essential figures and drops decorations (clock times, sources,
    token types) that do not fit ``width``, so Burn, Projection and Official always show.
    """
    b = v.block
    t = Text()
    zone = tz if tz is not None else fmt.local_zone()
    if b is None:
        t.append("No active block", style="bold")
        t.append(" - nothing spent in the last 5 hours.\n", style="dim")
        return t
    left = f"{fmt_minutes(b.remaining_minutes)} left"
    pct = f" {fmt.percent(b.time_pct):>4}  "
    span = f"  ends {fmt.clock_zoned(b.end, zone)}"
    room = width - 7 - len(pct) - len(left) if width > 0 else 40
    bw = max(6, min(40, room - len(span))) if room - len(span) >= 6 else max(4, min(40, room))
    _fit(
        t,
        [("Time   ", "bold"), (bar(b.time_pct, bw), "cyan"), (pct, ""), (left, "bold")],
        [(span, "dim")],
        width,
    )
    colour = BURN_COLOURS.get(b.burn_level, "white")
    if b.burn_tpm is not None:
        rate = b.burn_indicator_tpm if b.burn_indicator_tpm is not None else b.burn_tpm
        opt: list[Part] = []
        if b.cost_per_hour is not None:
            opt.append((f"  {fmt_cost(b.cost_per_hour)}/h", ""))
        opt.append((f"  ({fmt_tokens(b.burn_tpm)}/min with cache)", "dim"))
        _fit(
            t,
            [
                ("Burn   ", "bold"),
                (f" {b.burn_level.upper()} ", f"bold reverse {colour}"),
                (f" {fmt_tokens(rate)} in+out tok/min", f"bold {colour}"),
            ],
            opt,
            width,
        )
    else:
        _fit(t, [("Burn   ", "bold"), ("-", "dim")], [], width)
    if b.projected_tokens is not None:
        req: list[Part] = [("Proj.  ", "bold"), (fmt_tokens(b.projected_tokens), "")]
        opt = []
        if b.projected_limit_pct is not None:
            over = b.projected_limit_pct > 100
            req.append(
                (f" {fmt.percent(b.projected_limit_pct)} of limit", "bold red" if over else "")
            )
        if b.projected_cost is not None:
            opt.append((f"  {fmt_cost(b.projected_cost)}", ""))
        opt.append((f"  by {fmt.clock_zoned(b.end, zone)}", "dim"))
        _fit(t, req, opt, width)
    else:
        _fit(t, [("Proj.  ", "bold"), ("-", "dim")], [], width)
    o = v.official
    if o is None:
        _fit(t, [("Official ", "bold")], [("not reported (local estimates)", "dim")], width)
    else:
        req = [("Official ", "bold")]
        opt = []
        if o.five_hour_pct is not None:
            req.append((f"5h {fmt.percent(o.five_hour_pct)}", ""))
        if o.seven_day_pct is not None:
            req.append(
                (
                    f"{'  ·  ' if o.five_hour_pct is not None else ''}7d {fmt.percent(o.seven_day_pct)}",
                    "",
                )
            )
        if o.five_hour_resets:
            opt.append((f" (5h resets {fmt.clock_zoned(o.five_hour_resets, zone)})", "dim"))
        if o.age_s is not None:
            opt.append((f"  [{_ago(o.age_s)}]", "dim"))
        _fit(t, req, opt, width)
    if b.limit_pct is not None and b.token_limit:
        style = "red" if b.limit_pct >= 90 else "yellow" if b.limit_pct >= 70 else "green"
        src = "config" if b.limit_source == "config" else "max block"
        _fit(
            t,
            [
                ("Limit  ", "bold"),
                (f"{fmt.percent(b.limit_pct)} ", style),
                (f"{fmt_tokens(b.tokens)} / {fmt_tokens(b.token_limit)}", ""),
            ],
            [(f" ({src})", "dim")],
            width,
        )
    else:
        _fit(t, [("Limit  ", "bold")], [("no limit known yet", "dim")], width)
    t.append("Tokens ", style="bold")
    t.append(f"{fmt_tokens(b.tokens)}  {fmt_cost(b.cost)}  ")
    rest = (
        max(0, width - 7 - len(f"{fmt_tokens(b.tokens)}  {fmt_cost(b.cost)}  ")) if width > 0 else 0
    )
    t.append_text(_types_line(b.by_type, rest))
    return t


def render_periods(v: DashboardView, width: int = 0, tz: Any = None) -> Text:
    """Today / week / since-reset panel (lines never wrap: token types drop first)."""
    t = Text()
    for p in (v.today, v.week):
        t.append(f"{p.label.capitalize():<6}", style="bold")
        t.append(f"{fmt_tokens(p.tokens):>8}  {fmt_cost(p.cost):>9}\n")
        t.append("  ")
        t.append_text(_types_line(p.by_type, max(0, width - 2) if width > 0 else 0))
        t.append("\n")
    t.append("Since reset", style="bold")
    if v.reset_at is not None:
        t.append(
            f" {fmt.clock(v.reset_at, tz if tz is not None else fmt.local_zone())}", style="dim"
        )
    t.append(f"\n  +{fmt_tokens(v.since_reset_tokens)} tokens  +{fmt_cost(v.since_reset_cost)}")
    return t


def session_cells(v: DashboardView, width: int, height: int) -> list[tuple[bool, list[str]]]:
    """The visible table rows (selected?, cells), scrolled to keep the selection in view."""
    rows = max(1, height - 1)
    sel = v.selected or 0
    first = max(0, min(sel - rows // 2, len(v.sessions) - rows))
    out = []
    for i, s in enumerate(v.sessions[first : first + rows], start=first):
        chosen = i == v.selected
        cells = ["▶" if chosen else " ", s.label, " ".join(f"#{x}" for x in s.tags)]
        if width >= 90:
            cells.append(s.project)
        age = (v.now - s.last_activity) if s.last_activity else None
        cells += [
            fmt_tokens(s.total_tokens),
            fmt_cost(s.cost),
            f"+{fmt_tokens(s.delta_tokens)}",
            fmt_age(age),
        ]
        out.append((chosen, cells))
    return out


def render_sessions(v: DashboardView, cells: list[tuple[bool, list[str]]], width: int) -> Any:
    """The active-sessions table (or a message when there is nothing to list)."""
    if not v.sessions:
        msg = "No active sessions (activity in the last 5 hours)."
        if v.filter_text:
            msg = f"No active session matches {v.filter_text!r} (esc in / clears)."
        return Text(msg, style="dim")
    table = Table(box=None, expand=True, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("", width=1, no_wrap=True)
    table.add_column("Session", ratio=3, no_wrap=True, overflow="ellipsis")
    table.add_column("Tags", ratio=2, no_wrap=True, overflow="ellipsis")
    if width >= 90:
        table.add_column("Project", ratio=2, no_wrap=True, overflow="ellipsis")
    table.add_column("Tokens", justify="right", no_wrap=True)
    table.add_column("Cost", justify="right", no_wrap=True)
    table.add_column("+Reset", justify="right", no_wrap=True)
    table.add_column("Last", justify="right", no_wrap=True)
    for chosen, row in cells:
        table.add_row(*row, style="reverse" if chosen else None)
    return table


def render_detail(s: SessionView, v: DashboardView, tz: Any = None) -> Text:
    t = Text()
    t.append(f"{s.label}\n", style="bold")
    fields = [
        ("Name", s.name or "-"),
        ("Claude title", s.title or "-"),
        ("Session", s.session_id),
        ("Project", s.project_path or "-"),
        ("Tags", " ".join(f"#{x}" for x in s.tags) or "-"),
        ("Description", s.description or "-"),
        ("First", fmt.date_time(s.first_activity, tz if tz is not None else fmt.local_zone())),
        ("Last", _ago(v.now - s.last_activity) if s.last_activity else "-"),
        ("Models", ", ".join(s.models) or "-"),
        ("Total", f"{fmt_tokens(s.total_tokens)} tokens  {fmt_cost(s.cost)}"),
        ("Since reset", f"+{fmt_tokens(s.delta_tokens)} tokens  +{fmt_cost(s.delta_cost)}"),
    ]
    for k, val in fields:
        t.append(f"{k:<13}", style="bold")
        t.append(f"{val}\n")
    t.append(f"{'By type':<13}", style="bold")
    t.append_text(_types_line(s.tokens_by_type()))
    t.append("\n\n")
    t.append("esc / enter / q closes", style="dim")
    return t


class HelpScreen(ModalScreen[None]):
    """The `?` overlay."""

    BINDINGS = [
        Binding("escape,q,question_mark,enter", "app.pop_screen", "close", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help-box", classes="dialog")


class DetailScreen(ModalScreen[None]):
    """Session detail (enter)."""

    BINDINGS = [Binding("escape,q,enter", "app.pop_screen", "close", show=False)]

    def __init__(self, content: Text) -> None:
        super().__init__()
        self._content = content

    def compose(self) -> ComposeResult:
        yield Static(self._content, id="detail-box", classes="dialog")


class TagScreen(ModalScreen[str | None]):
    """Tag editor (t): returns the typed text, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "cancel", show=False)]
    AUTO_FOCUS = "#tag-input"

    def __init__(self, session: SessionView) -> None:
        super().__init__()
        self._session = session

    def compose(self) -> ComposeResult:
        current = " ".join(f"#{x}" for x in self._session.tags) or "(none)"
        with Vertical(id="tag-box", classes="dialog"):
            yield Static(
                Text.assemble(
                    ("Tag ", "bold"),
                    (self._session.label, "bold cyan"),
                    f"\ncurrent: {current}\n",
                    ("words add tags, -word removes; enter saves, esc cancels", "dim"),
                )
            )
            yield Input(placeholder="tag1 tag2 -old", id="tag-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class WatchApp(App[int]):
    """The live dashboard."""

    TITLE = "tokmon watch"
    ENABLE_COMMAND_PALETTE = False
    AUTO_FOCUS = None  # keys go to the dashboard until `/` or `t` opens an input
    CSS = """
    Screen { layout: vertical; }
    Screen:inline { height: auto; min-height: 1; border: none; padding: 0; }
    #full { height: 1fr; }
    #top { height: 8; }
    #block { width: 3fr; height: 100%; border: round $primary; padding: 0 1; }
    #periods { width: 2fr; height: 100%; border: round $primary; padding: 0 1; }
    #spark { height: 1; padding: 0 1; }
    #weekly { height: 1; padding: 0 1; display: none; }
    #weekly.on { display: block; }
    #agents { height: auto; padding: 0 1; display: none; }
    #agents.on { display: block; }
    #sessions { height: 1fr; border: round $primary; padding: 0 1; }
    #header { height: 1; padding: 0 1; background: $boost; }
    #keys { height: 1; padding: 0 1; color: $text-muted; }
    #compact { height: 1; display: none; }
    #filter { dock: bottom; display: none; height: 3; }
    Screen.compact #full { display: none; }
    Screen.compact #compact { display: block; }
    Screen.compact #keys { display: none; }
    Screen.compact #header { display: none; }
    .dialog { background: $panel; border: thick $accent; padding: 1 2; width: auto;
              max-width: 90; height: auto; }
    HelpScreen, DetailScreen, TagScreen { align: center middle; }
    #tag-box { width: 70; }
    """
    BINDINGS = [
        Binding("q", "quit_app", "quit"),
        Binding("ctrl+c", "interrupt", "interrupt", show=False, priority=True),
        Binding("r", "reset", "reset"),
        Binding("up,k", "move(-1)", "up", show=False),
        Binding("down,j", "move(1)", "down", show=False),
        Binding("enter", "detail", "detail"),
        Binding("t", "tag", "tag"),
        Binding("slash", "filter", "filter"),
        Binding("question_mark", "help", "help"),
        Binding("escape", "clear_filter", "clear", show=False),
    ]

    def __init__(
        self,
        start_refresher: Callable[[WatchApp], Any],
        *,
        compact: bool = False,
        tag_writer: Callable[[str, list[str], list[str]], Any] | None = None,
        tz: Any = None,
    ) -> None:
        super().__init__()
        self.tz = tz if tz is not None else fmt.local_zone()
        self.state = DashboardState()
        self.snapshot: Snapshot | None = None
        self.force_compact = compact
        self._start_refresher = start_refresher
        self._tag_writer = tag_writer
        self.refresher: Any = None
        self._last_error: str | None = None
        self._shown: dict[str, Any] = {}
        self.weekly: Any = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static("tokmon watch - loading…", id="header")
        with Vertical(id="full"):
            with Horizontal(id="top"):
                yield Static(id="block")
                yield Static(id="periods")
            yield Static(id="spark")
            yield Static(id="weekly")
            yield Static(id="agents")
            yield Static(id="sessions")
        yield Static("loading…", id="compact")
        yield Static(
            "q quit  r reset  ↑↓/jk select  enter detail  t tag  / filter  ? help", id="keys"
        )
        yield Input(placeholder="filter: words or #tag (enter keeps, esc clears)", id="filter")

    def on_mount(self) -> None:
        self.query_one("#block", Static).border_title = "Current block"
        self.query_one("#periods", Static).border_title = "Today / week"
        self.query_one("#sessions", Static).border_title = "Active sessions"
        self._apply_layout()
        self.refresher = self._start_refresher(self)
        self.set_interval(1.0, self.redraw)
        from tokmon.limits.toasts import watch_alerts  # limit/budget alerts (docs/limits.md)

        watch_alerts(self)
        from tokmon.watch import weekly  # the 7-day window row (docs/watch.md)

        self.weekly = weekly.start(self)

    def on_resize(self, event: events.Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)
        self.call_after_refresh(self.redraw)

    def _apply_layout(self, w: int | None = None, h: int | None = None) -> None:
        if w is None or h is None:
            w, h = self.size
        small = self.force_compact or w < MIN_WIDTH or h < MIN_HEIGHT
        self.screen_stack[0].set_class(small, "compact")

    @property
    def compact_mode(self) -> bool:
        return self.screen_stack[0].has_class("compact")

    # ------------------------------------------------------------------ data
    def deliver(self, snap: Snapshot) -> None:
        """Called from the refresher thread; a no-op once the app is shutting down."""
        if not self.is_running:
            return
        try:
            self.call_from_thread(self._on_snapshot, snap)
        except RuntimeError:  # the event loop closed in between
            pass

    def _on_snapshot(self, snap: Snapshot) -> None:
        if snap.error:
            self._last_error = snap.error
            if self.snapshot is not None:  # keep the last good figures
                self.redraw()
                return
        else:
            self._last_error = None
        self.snapshot = snap
        self.state.apply_snapshot(snap)
        self.redraw()

    def current_view(self) -> DashboardView | None:
        if self.snapshot is None:
            return None
        v = self.state.view(self.snapshot, time.time())
        if self._last_error:
            v.error = self._last_error
        return v

    def _put(self, wid: str, renderable: Any, key: Any = None) -> None:
        """Update a widget only when its content changed (no needless repaints while idle)."""
        key = renderable if key is None else key
        if self._shown.get(wid) == key:
            return
        self._shown[wid] = key
        self.query_one(f"#{wid}", Static).update(renderable)

    def redraw(self) -> None:
        v = self.current_view()
        if v is None:
            return
        w = self.size.width
        if self.compact_mode:
            self._put("compact", compact_line(v, max(10, w - 1)))
            return
        head = Text()
        head.append("tokmon watch", style="bold")
        head.append(f"  {fmt.clock_zoned(time.time(), self.tz)}", style="dim")
        if v.updated_age_s >= STALE_S:
            head.append(f"  data {_ago(v.updated_age_s)}", style="yellow")
        if v.error:
            head.append(f"  refresh error: {v.error}", style="bold red")
        elif v.warnings:
            head.append(f"  {v.warnings[-1]}", style="yellow")
        self._put("header", head)
        block = self.query_one("#block", Static)
        self._put("block", render_block(v, block.content_size.width or w * 2 // 3, self.tz))
        periods = self.query_one("#periods", Static)
        self._put("periods", render_periods(v, periods.content_size.width or w // 3, self.tz))
        spark_w = max(10, w - 40)
        self._put(
            "spark",
            Text.assemble((v.spark(spark_w), "cyan"), " ", (v.spark_caption(spark_w), "dim")),
        )
        week_rows = self._draw_weekly(w)
        week_rows += self._draw_agents(v, w, self.size.height - 13 - week_rows)
        sess = self.query_one("#sessions", Static)
        title = f"Active sessions ({len(v.sessions)}"
        title += f" of {v.active_count}, filter: {v.filter_text})" if v.filter_text else ")"
        if sess.border_title != title:
            sess.border_title = title
        width = sess.size.width or w
        # The panel is as tall as its rows (no empty rows), up to the room that is left
        # below the block: header 1 + top 8 + sparkline 1 + keys 1 + panel borders 2.
        room = max(2, self.size.height - 13 - week_rows)
        cells = session_cells(v, width, room)
        want = (len(cells) + 1 if v.sessions else 1) + 2
        if sess.styles.height is None or sess.styles.height.value != want:
            sess.styles.height = want
        key = (width, v.filter_text, bool(v.sessions), tuple((c, tuple(r)) for c, r in cells))
        self._put("sessions", render_sessions(v, cells, width), key)

    def _draw_agents(self, v: DashboardView, w: int, room: int) -> int:
        """Per-agent rows (today / all time) under the sparkline when other agents have data;
        at most ``room - 4`` of them (the sessions panel keeps two rows), else one line of
        today's costs. Returns the rows used."""
        from tokmon.watch.model import agent_line

        row = self.query_one("#agents", Static)
        row.set_class(bool(v.agents), "on")
        if not v.agents:
            return 0
        width = max(10, w - 2)
        if len(v.agents) <= room - 4:
            lines = [agent_line(a, width) for a in v.agents]
        else:
            lines = [("agents today: " + " · ".join(
                f"{a.name} {fmt_cost(a.today_cost)}" for a in v.agents))[:width]]  # fmt: skip
        self._put("agents", Text("\n".join(lines)))
        return len(lines)

    def _draw_weekly(self, w: int) -> int:
        """The weekly-limit row under the sparkline; returns its height (0 while unknown)."""
        from tokmon.watch.weekly import render_weekly, weekly_view

        now = time.time()
        view = weekly_view(getattr(self.weekly, "status", None), now, self.tz)
        row = self.query_one("#weekly", Static)
        row.set_class(view is not None, "on")
        if view is None:
            return 0
        self._put("weekly", render_weekly(view, max(10, w - 2), now, self.tz))
        return 1

    async def _on_key(self, event: events.Key) -> None:
        """Keys typed right after ``/`` belong to the filter, even before it has focus.

        Focus moves asynchronously; under load the first letters of a filter used to reach
        the dashboard's bindings (``t`` opened the tag editor).  Textual calls every class's
        ``_on_key`` along the MRO (App's checks the bindings) unless the default is prevented.
        """
        box = self.query_one("#filter", Input)
        if (
            box.display
            and not box.has_focus
            and len(self.screen_stack) == 1
            and event.is_printable
            and event.character
        ):
            event.stop()
            event.prevent_default()
            self.screen.set_focus(box)
            box.insert_text_at_cursor(event.character)

    # ------------------------------------------------------------------ actions
    def action_quit_app(self) -> None:
        self.exit(0)

    def action_interrupt(self) -> None:
        self.exit(130)  # like KeyboardInterrupt elsewhere in the CLI

    def action_reset(self) -> None:
        self.state.request_reset()
        if self.refresher is not None:
            self.refresher.poke(reset=True)
        self.notify("counters reset", timeout=2)

    def action_move(self, delta: int) -> None:
        self.state.move(delta)
        self.redraw()

    def action_detail(self) -> None:
        v = self.current_view()
        s = v.selected_session if v else None
        if s is None or v is None:
            self.notify("no session selected", severity="warning", timeout=2)
            return
        self.push_screen(DetailScreen(render_detail(s, v, self.tz)))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.state.filter_text
        self.screen.set_focus(box)  # now, not deferred: keys typed right after "/" go to the box
        box.focus()
        # a modal closed just before (esc) restores its old focus after this; focus again then
        self.call_after_refresh(box.focus)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display or self.state.filter_text:
            box.value = ""
            box.display = False
            self.state.set_filter("")
            self.set_focus(None)
            self.redraw()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.state.set_filter(event.value)
            self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.state.set_filter(event.value)
            event.input.display = False
            self.set_focus(None)
            self.redraw()

    def action_tag(self) -> None:
        v = self.current_view()
        s = v.selected_session if v else None
        if s is None:
            self.notify("no session selected", severity="warning", timeout=2)
            return
        sid = s.session_id

        def done(text: str | None) -> None:
            if not text:
                return
            add, remove = parse_tag_input(text)
            if add or remove:
                self._write_tags(sid, add, remove)

        self.push_screen(TagScreen(s), done)

    def _write_tags(self, sid: str, add: list[str], remove: list[str]) -> None:
        if self._tag_writer is None:
            self.notify("tagging is unavailable", severity="error")
            return
        writer = self._tag_writer

        def work() -> None:
            try:
                rec = writer(sid, add, remove)
            except Exception as exc:  # noqa: BLE001 - shown to the user
                self.call_from_thread(self.notify, f"tag failed: {exc}", severity="error")
                return
            self.call_from_thread(self._tags_saved, sid, rec)

        self.run_worker(work, thread=True, exclusive=False, group="tags")

    def _tags_saved(self, sid: str, rec: Any) -> None:
        if self.snapshot is not None and isinstance(rec, dict):
            meta = dict(self.snapshot.metadata)
            meta[sid] = rec
            self.snapshot.metadata = meta
        tags = (
            " ".join(f"#{x}" for x in (rec or {}).get("tags", [])) if isinstance(rec, dict) else ""
        )
        self.notify(f"tags saved: {tags or '(none)'}", timeout=2)
        if self.refresher is not None:
            self.refresher.poke()
        self.redraw()

    def on_unmount(self) -> None:
        if self.refresher is not None:
            self.refresher.stop()
