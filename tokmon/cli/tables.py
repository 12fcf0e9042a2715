"""The report tables (daily, weekly, monthly, session, blocks) in a full and a compact layout.

The full layout is printed when it fits the terminal, and always to pipes and files; a
narrower terminal (or ``--compact``) gets fewer columns and a one-line hint, like ccusage.
Numbers, dates and ids are never wrapped or cut; only text columns (models, projects) wrap.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from tokmon import fmt
from tokmon.cli.render import id_length, print_fitted, short_model, zone_title

if TYPE_CHECKING:
    from tokmon.cli.context import Context

LABEL = {"daily": ("date", "Date"), "weekly": ("week", "Week"), "monthly": ("month", "Month"),
         "session": ("sessionId", "Session")}  # fmt: skip
ROWS = {"daily": "daily", "weekly": "weekly", "monthly": "monthly", "session": "sessions"}
SHORT_ID = 8  # session ids print as their first 8 characters; `session --id` accepts them
# Two-line headers (like ccusage's) keep the full table narrow enough for 100 columns.
TOKEN_COLS = (("Input", "inputTokens"), ("Output", "outputTokens"),
              ("Cache\ncreate", "cacheCreationTokens"), ("Cache\nread", "cacheReadTokens"),
              ("Total\ntokens", "totalTokens"))  # fmt: skip
COMPACT_COLS = (("Input", "inputTokens"), ("Output", "outputTokens"))


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _project_label(r: dict[str, Any], aliases: dict[str, str]) -> str:
    from tokmon.cli.reports import project_key

    proj = str(r.get("projectName") or "")
    path = str(r.get("projectPath") or "")
    proj = aliases.get(proj) or aliases.get(project_key(path)) or proj
    label = r.get("name") or r.get("title") or ""
    tags = " ".join(f"#{x}" for x in r.get("tags") or [])
    return " ".join(x for x in (proj, label and f"· {label}", tags) if x)


def period_table(
    ctx: Context,
    kind: str,
    data: dict[str, Any],
    tz: tzinfo,
    *,
    breakdown: bool = False,
    compact: bool = False,
    aliases: dict[str, str] | None = None,
) -> None:
    """daily / weekly / monthly / session rows with a totals footer."""
    aliases = aliases or {}
    rows = data[ROWS[kind]]
    tot = data["totals"]
    id_len = id_length([str(r["sessionId"]) for r in rows]) if kind == "session" else SHORT_ID
    by_agent = bool(rows) and "agent" in rows[0]  # --agent all: an agent column

    def build(narrow: bool) -> Any:
        from rich import box
        from rich.table import Table

        key, title = LABEL[kind]
        who = "All agents'" if by_agent else "Claude Code"
        t = Table(title=f"{who} token usage: {kind}", box=box.SIMPLE_HEAVY, show_footer=True)
        t.add_column(title, footer="Total", no_wrap=True)
        if by_agent:
            t.add_column("Agent", no_wrap=True)
        if kind == "session":
            t.add_column("Project / name", overflow="fold", max_width=18 if narrow else 40)
        if not (narrow and kind == "session"):  # a narrow session table keeps the project
            t.add_column("Models", overflow="fold", max_width=16)
        cols = COMPACT_COLS if narrow else TOKEN_COLS
        for col, k in cols:
            t.add_column(col, justify="right", footer=fmt.integer(tot[k]), no_wrap=True)
        t.add_column(
            "Cost\n(USD)", justify="right", footer=fmt.cost(tot["totalCost"]), no_wrap=True
        )
        if kind == "session":
            t.add_column("Last activity", no_wrap=True)
        for r in rows:
            cells = [str(r[key])[:id_len] if kind == "session" else str(r[key])]
            if by_agent:
                cells.append(str(r["agent"]))
            if kind == "session":
                cells.append(_esc(_project_label(r, aliases)))
            if not (narrow and kind == "session"):
                cells.append(", ".join(short_model(m) for m in r["modelsUsed"]))
            cells += [fmt.integer(r[k]) for _, k in cols]
            cells.append(fmt.cost(r["totalCost"]))
            if kind == "session":
                cells.append(fmt.date_time(fmt.epoch(r.get("lastActivity")), tz))
            t.add_row(*cells)
            if breakdown:
                for m in r["modelBreakdowns"]:
                    sub = (
                        ["", f"└ {short_model(m['modelName'])}"]
                        if narrow and kind == "session"
                        else (
                            ["", "", f"└ {short_model(m['modelName'])}"]
                            if kind == "session"
                            else ["", f"└ {short_model(m['modelName'])}"]
                        )
                    )
                    if by_agent:
                        sub.insert(1, "")
                    m_tot = (m["inputTokens"] + m["outputTokens"] + m["cacheCreationTokens"]
                             + m["cacheReadTokens"])  # fmt: skip
                    vals = {**m, "totalTokens": m_tot}
                    sub += [fmt.integer(vals[k]) for _, k in cols]
                    sub.append(fmt.cost(m["cost"]))
                    if kind == "session":
                        sub.append("")
                    t.add_row(*sub, style="dim")
        if kind == "session":
            t.caption = zone_title(tz)
        return t

    print_fitted(
        ctx,
        lambda: build(False),
        lambda: build(True),
        "cache, total tokens, models" if kind == "session" else "cache and total tokens",
        kind,
        force_compact=compact,
    )
    if not rows:
        ctx.stdout.write("No usage in this range.\n")


def _burn_text(b: dict[str, Any]) -> str:
    parts = []
    if b.get("burnRate") and b.get("projection"):
        p = b["projection"]
        parts.append(f"{fmt.integer(b['burnRate']['tokensPerMinute'])} tok/min → "
                     f"{fmt.integer(p['totalTokens'])} ({fmt.cost(p['totalCost'])}), "
                     f"{fmt.duration(p['remainingMinutes'])} left")  # fmt: skip
    if b.get("tokenLimitStatus"):
        s = b["tokenLimitStatus"]
        parts.append(f"[{fmt.percent(s['percentUsed'])} of {fmt.integer(s['limit'])}: "
                     f"{s['status']}]")  # fmt: skip
    return " ".join(parts)


def blocks_table(
    ctx: Context, blocks: list[dict[str, Any]], tz: tzinfo, *, compact: bool = False
) -> None:
    """5-hour blocks; start and end in the chosen zone, named in the caption."""

    def build(narrow: bool) -> Any:
        from rich import box
        from rich.markup import escape
        from rich.table import Table

        t = Table(
            title="Claude Code 5-hour billing blocks", box=box.SIMPLE_HEAVY, caption=zone_title(tz)
        )
        cols = ["Start", "End", "Status"] + ([] if narrow else ["Models", "Entries"])
        cols += ["Tokens", "Cost (USD)"] + ([] if narrow else ["Burn / projection"])
        for col in cols:
            right = col in ("Entries", "Tokens", "Cost (USD)")
            wrap = col in ("Models", "Burn / projection")
            t.add_column(
                col,
                justify="right" if right else "left",
                no_wrap=not wrap,
                overflow="fold",
                max_width=36 if col == "Burn / projection" else None,
            )
        for b in blocks:
            start = fmt.epoch(b["startTime"])
            end = fmt.epoch(b["endTime"])
            if b["isGap"]:
                cells = [fmt.date_time(start, tz), fmt.date_time(end, tz), "gap"]
                cells += [""] * (len(cols) - 3)
                t.add_row(*cells, style="dim")
                continue
            cells = [fmt.date_time(start, tz), fmt.date_time(end, tz),
                     "ACTIVE" if b["isActive"] else "done"]  # fmt: skip
            if not narrow:
                cells += [", ".join(short_model(m) for m in b["models"]), fmt.integer(b["entries"])]
            cells += [fmt.integer(b["totalTokens"]), fmt.cost(b["costUSD"])]
            if not narrow:
                cells.append(escape(_burn_text(b)))
            t.add_row(*cells, style="bold" if b["isActive"] else None)
        return t

    print_fitted(
        ctx,
        lambda: build(False),
        lambda: build(True),
        "models, entries and burn rate",
        "blocks",
        force_compact=compact,
    )
    if not blocks:
        ctx.stdout.write("No blocks in this range.\n")
