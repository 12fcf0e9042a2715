"""Dashboard view-model: which numbers `tokmon watch` shows, with no TUI import.

Everything here is pure (plain data in, plain data out) so it is unit-tested
without a terminal: formatting, sparkline buckets, the block/today/week panels,
session selection and filtering, and the "since reset" baselines.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tokmon import fmt
from tokmon.core.blocks import burn_level  # noqa: F401 - also part of this module's API

SPARK_CHARS = "▁▂▃▄▅▆▇█"
SPARK_MINUTES = 360  # the sparkline covers the last 6 hours, one bucket per minute
BURN_COLOURS = {"low": "green", "medium": "yellow", "high": "red"}
TOKEN_TYPES = (
    ("input", "inputTokens"),
    ("output", "outputTokens"),
    ("cache write", "cacheCreationInputTokens"),
    ("cache read", "cacheReadInputTokens"),
)


# --------------------------------------------------------------------------- formatting


def fmt_tokens(n: float | int | None) -> str:
    """Compact token count: 950, 12.3k, 4.56M, 1.20B (:func:`tokmon.fmt.tokens`)."""
    return fmt.tokens(n)


def fmt_cost(c: float | None) -> str:
    """Dollars with cents: $0.04, $1,234.50 (:func:`tokmon.fmt.cost`)."""
    return fmt.cost(c)


def fmt_minutes(m: float | None) -> str:
    """Duration in minutes as ``2h05m`` / ``7m`` / ``0m`` (:func:`tokmon.fmt.duration`)."""
    return fmt.duration(m)


def fmt_age(seconds: float | None) -> str:
    """How long ago: ``0s``, ``45s``, ``12m``, ``3h``, ``2d`` (:func:`tokmon.fmt.age`)."""
    return fmt.age(seconds)


def bar(pct: float | None, width: int) -> str:
    """A text progress bar of ``width`` cells (█ filled, ░ empty); over 100 % stays full."""
    width = max(1, width)
    if pct is None:
        return "░" * width
    filled = int(round(max(0.0, min(pct, 100.0)) / 100.0 * width))
    return "█" * filled + "░" * (width - filled)


def parse_iso(value: Any) -> float | None:
    """ISO-8601 (``...Z`` or offset) to epoch seconds; None when missing or invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def fmt_clock(ts: float | None, tz: Any = None) -> str:
    """Wall-clock ``HH:MM`` of an epoch time in ``tz`` (default: the system zone)."""
    return fmt.clock(ts, tz if tz is not None else fmt.local_zone())


# --------------------------------------------------------------------------- sparkline


def bucket_usage(
    records: Sequence[Any], now: float, minutes: int = SPARK_MINUTES, bucket_s: float = 60.0
) -> list[int]:
    """Tokens per bucket for the ``minutes`` before ``now`` (oldest first).

    ``records`` must be sorted by ``ts`` (as ``engine.records`` is); only the tail is
    visited. Records after ``now`` fall into the last bucket.
    """
    n = max(1, int(minutes * 60 / bucket_s))
    start = now - n * bucket_s
    out = [0] * n
    lo = bisect.bisect_left(records, start, key=lambda r: r.ts)
    for rec in records[lo:]:
        i = int((rec.ts - start) // bucket_s)
        out[min(max(i, 0), n - 1)] += int(rec.total_tokens)
    return out


def downsample(values: Sequence[int], n: int) -> list[int]:
    """Sum ``values`` into ``n`` consecutive groups (the newest value stays last)."""
    n = max(1, n)
    if len(values) <= n:
        return list(values)
    out = [0] * n
    size = len(values) / n
    for i, v in enumerate(values):
        out[min(int(i / size), n - 1)] += v
    return out


def spark_cells(n: int, width: int) -> int:
    """The most cells <= ``width`` that split ``n`` buckets evenly (equal time per bar)."""
    width = max(1, width)
    if n <= width:
        return max(1, n)
    for cells in range(width, 0, -1):
        if n % cells == 0:
            return cells
    return 1  # pragma: no cover - 1 always divides


def sparkline(values: Sequence[int | float]) -> str:
    """Unicode sparkline; zero buckets show the lowest bar, any non-zero at least level 2."""
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return SPARK_CHARS[0] * len(values)
    steps = len(SPARK_CHARS) - 1
    chars = []
    for v in values:
        if v <= 0:
            chars.append(SPARK_CHARS[0])
        else:
            chars.append(SPARK_CHARS[max(1, int(math.ceil(v / top * steps)))])
    return "".join(chars)


# --------------------------------------------------------------------------- data in


@dataclass
class Snapshot:
    """What the background refresher hands to the UI after each refresh."""

    summary: Mapping[str, Any]
    taken_at: float
    minute_usage: list[int] = field(default_factory=list)  # SPARK_MINUTES buckets ending taken_at
    metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    session_totals: Mapping[str, tuple[int, float]] | None = None  # filled for a reset
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


def session_totals(records: Iterable[Any]) -> dict[str, tuple[int, float]]:
    """Total tokens and cost per session (the baseline a reset records)."""
    out: dict[str, list[float]] = {}
    for r in records:
        acc = out.setdefault(r.session_id, [0, 0.0])
        acc[0] += r.total_tokens
        acc[1] += r.cost or 0.0
    return {k: (int(v[0]), float(v[1])) for k, v in out.items()}


# --------------------------------------------------------------------------- data out


@dataclass
class SessionView:
    """One row of the active-sessions table."""

    session_id: str
    label: str
    name: str | None
    title: str | None
    project: str
    project_path: str
    tags: list[str]
    description: str | None
    total_tokens: int
    cost: float
    delta_tokens: int
    delta_cost: float
    last_activity: float | None
    first_activity: float | None
    models: list[str]
    row: Mapping[str, Any]

    def tokens_by_type(self) -> list[tuple[str, int]]:
        keys = (
            ("input", "inputTokens"),
            ("output", "outputTokens"),
            ("cache write", "cacheCreationTokens"),
            ("cache read", "cacheReadTokens"),
        )
        return [(label, int(self.row.get(k) or 0)) for label, k in keys]


@dataclass
class BlockView:
    """The current 5-hour block."""

    start: float
    end: float
    time_pct: float
    remaining_minutes: float
    tokens: int
    cost: float
    by_type: list[tuple[str, int]]
    token_limit: int | None
    limit_source: str | None
    limit_pct: float | None
    burn_tpm: float | None
    burn_indicator_tpm: float | None
    burn_level: str
    cost_per_hour: float | None
    projected_tokens: int | None
    projected_cost: float | None
    projected_limit_pct: float | None
    models: list[str]


@dataclass
class OfficialView:
    """Claude Code's own utilisation figures (from the statusLine), when known."""

    five_hour_pct: float | None
    five_hour_resets: float | None
    seven_day_pct: float | None
    seven_day_resets: float | None
    age_s: float | None


@dataclass
class PeriodView:
    label: str
    tokens: int
    cost: float
    by_type: list[tuple[str, int]]


@dataclass
class AgentRow:
    """One agent's today / all-time figures (the Summary's ``agents``)."""

    name: str
    today_tokens: int
    today_cost: float
    total_tokens: int
    total_cost: float


def agent_rows(summary: Mapping[str, Any]) -> list[AgentRow]:
    """Per-agent rows in the Summary's order; empty for a Claude-only summary."""
    per = summary.get("agents")
    if not isinstance(per, Mapping):
        return []
    out = []
    for name, body in per.items():
        if not isinstance(body, Mapping):
            continue
        today_raw, total_raw = body.get("today"), body.get("totals")
        today: Mapping[str, Any] = today_raw if isinstance(today_raw, Mapping) else {}
        total: Mapping[str, Any] = total_raw if isinstance(total_raw, Mapping) else {}
        out.append(AgentRow(str(name), _int(today.get("totalTokens")),
                            _float(today.get("totalCost")) or 0.0,
                            _int(total.get("totalTokens")),
                            _float(total.get("totalCost")) or 0.0))  # fmt: skip
    return out


def agent_line(r: AgentRow, width: int = 0) -> str:
    """``codex      today   1.20M    $0.45   all time  71.2M   $20.92`` (cut to ``width``)."""
    text = (f"{r.name[:10]:<10} today {fmt_tokens(r.today_tokens):>7} {fmt_cost(r.today_cost):>9}"
            f"   all time {fmt_tokens(r.total_tokens):>7} {fmt_cost(r.total_cost):>10}")  # fmt: skip
    return text[:width] if width > 0 else text


@dataclass
class DashboardView:
    """Everything one frame of the dashboard shows."""

    now: float
    block: BlockView | None
    today: PeriodView
    week: PeriodView
    official: OfficialView | None
    sessions: list[SessionView]
    active_count: int
    selected: int | None
    filter_text: str
    reset_at: float | None
    since_reset_tokens: int
    since_reset_cost: float
    spark_values: list[int]
    spark_minutes: int
    updated_age_s: float
    warnings: list[str]
    error: str | None
    agents: list[AgentRow] = field(default_factory=list)  # only when other agents have data

    @property
    def selected_session(self) -> SessionView | None:
        if self.selected is None or not (0 <= self.selected < len(self.sessions)):
            return None
        return self.sessions[self.selected]

    def spark(self, width: int) -> str:
        return sparkline(downsample(self.spark_values, spark_cells(len(self.spark_values), width)))

    def spark_caption(self, width: int) -> str:
        """``Last 6h · 4m/bar · peak 1.20M`` for a sparkline drawn in ``width`` cells."""
        n = len(self.spark_values)
        cells = spark_cells(n, width)
        per = max(1, n // max(1, cells))
        peak = max(downsample(self.spark_values, cells), default=0)
        return f"Last {n // 60}h · {per}m/bar · peak {fmt_tokens(peak)}"


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def _float(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def block_view(summary: Mapping[str, Any], now: float) -> BlockView | None:
    """The active block panel, with time-dependent numbers recomputed for ``now``."""
    b = summary.get("activeBlock")
    if not isinstance(b, Mapping):
        return None
    start = parse_iso(b.get("startTime"))
    end = parse_iso(b.get("endTime"))
    if start is None:
        return None
    if end is None:
        end = start + 5 * 3600
    span = max(1.0, end - start)
    time_pct = max(0.0, min(100.0, (now - start) / span * 100.0))
    remaining = max(0.0, (end - now) / 60.0)
    counts = b.get("tokenCounts") or {}
    by_type = [(label, _int(counts.get(k))) for label, k in TOKEN_TYPES]
    tokens = _int(b.get("totalTokens")) or sum(v for _, v in by_type)
    limit_info = summary.get("tokenLimit") or {}
    limit = _int(limit_info.get("tokens")) or None
    limit_pct = _float(b.get("limitPercent"))
    if limit_pct is None and limit:
        limit_pct = tokens / limit * 100.0
    burn = b.get("burnRate") or {}
    proj = b.get("projection") or {}
    burn_tpm = _float(burn.get("tokensPerMinute"))
    indicator = _float(burn.get("tokensPerMinuteForIndicator"))
    level = b.get("burnLevel")
    if level not in BURN_COLOURS:
        level = burn_level(indicator)
    projected = _int(proj.get("totalTokens")) if proj else None
    if projected is None and burn_tpm is not None:
        projected = int(tokens + burn_tpm * remaining)
    projected_pct = projected / limit * 100.0 if (projected is not None and limit) else None
    return BlockView(
        start=start,
        end=end,
        time_pct=time_pct,
        remaining_minutes=remaining,
        tokens=tokens,
        cost=_float(b.get("costUSD")) or 0.0,
        by_type=by_type,
        token_limit=limit,
        limit_source=limit_info.get("source"),
        limit_pct=limit_pct,
        burn_tpm=burn_tpm,
        burn_indicator_tpm=indicator,
        burn_level=level,
        cost_per_hour=_float(burn.get("costPerHour")),
        projected_tokens=projected,
        projected_cost=_float(proj.get("totalCost")) if proj else None,
        projected_limit_pct=projected_pct,
        models=[str(m) for m in (b.get("models") or []) if m != "<synthetic>"],
    )


def period_view(label: str, period: Any) -> PeriodView:
    p = period if isinstance(period, Mapping) else {}
    keys = (
        ("input", "inputTokens"),
        ("output", "outputTokens"),
        ("cache write", "cacheCreationTokens"),
        ("cache read", "cacheReadTokens"),
    )
    by_type = [(lab, _int(p.get(k))) for lab, k in keys]
    tokens = _int(p.get("totalTokens")) or sum(v for _, v in by_type)
    return PeriodView(label, tokens, _float(p.get("totalCost")) or 0.0, by_type)


def _pct_and_reset(obj: Any) -> tuple[float | None, float | None]:
    if not isinstance(obj, Mapping):
        return None, None
    pct = None
    for k in ("usedPercentage", "used_percentage", "percent", "utilization"):
        if k in obj:
            pct = _float(obj.get(k))
            break
    reset = None
    for k in ("resetsAt", "resets_at"):
        if k in obj:
            v = obj.get(k)
            reset = parse_iso(v) if isinstance(v, str) else _float(v)
            break
    return pct, reset


def official_view(off: Any, now: float) -> OfficialView | None:
    """Official 5 h / 7 d utilisation from ``summary["official"]``, tolerant of key styles."""
    if not isinstance(off, Mapping):
        return None
    limits = off.get("rateLimits") or off.get("rate_limits") or off
    five = limits.get("fiveHour") or limits.get("five_hour")
    seven = limits.get("sevenDay") or limits.get("seven_day")
    fp, fr = _pct_and_reset(five)
    sp, sr = _pct_and_reset(seven)
    if fp is None and sp is None:
        return None
    at = None
    for k in ("observedAt", "updatedAt", "updated_at", "ts"):
        if k in off:
            v = off.get(k)
            at = parse_iso(v) if isinstance(v, str) else _float(v)
            break
    return OfficialView(fp, fr, sp, sr, (now - at) if at is not None else None)


def session_label(row: Mapping[str, Any], meta: Mapping[str, Any] | None) -> str:
    """Name shown for a session: user name > Claude title > project name > short id."""
    from tokmon.sessions import label

    return label(row, meta)


def session_view(
    row: Mapping[str, Any],
    meta: Mapping[str, Any] | None,
    baseline: Mapping[str, tuple[int, float]] | None,
) -> SessionView:
    from tokmon.sessions import merge_one

    merged = merge_one(row, meta) if meta else row  # a row may come merged already
    sid = str(row.get("sessionId", ""))
    total = _int(row.get("totalTokens"))
    cost = _float(row.get("totalCost")) or 0.0
    if baseline is None:
        d_tok, d_cost = 0, 0.0
    else:
        b_tok, b_cost = baseline.get(sid, (0, 0.0))
        d_tok, d_cost = max(0, total - b_tok), max(0.0, cost - b_cost)
    tags = merged.get("tags") or []
    return SessionView(
        session_id=sid,
        label=session_label(row, meta),
        name=merged.get("name") if merged.get("nameSource", "user") == "user" else None,
        title=row.get("title"),
        project=str(row.get("projectName") or ""),
        project_path=str(row.get("projectPath") or ""),
        tags=[str(t) for t in tags],
        description=merged.get("description"),
        total_tokens=total,
        cost=cost,
        delta_tokens=d_tok,
        delta_cost=d_cost,
        last_activity=parse_iso(row.get("lastActivity")),
        first_activity=parse_iso(row.get("firstActivity")),
        models=[str(m) for m in (row.get("modelsUsed") or []) if m != "<synthetic>"],
        row=row,
    )


def _disambiguate(sessions: list[SessionView]) -> None:
    """Sessions sharing a label (same project, no name) get their short id appended."""
    counts: dict[str, int] = {}
    for x in sessions:
        counts[x.label.lower()] = counts.get(x.label.lower(), 0) + 1
    for x in sessions:
        if counts[x.label.lower()] > 1:
            x.label = f"{x.label} · {x.session_id[:8]}"


def matches(s: SessionView, query: str) -> bool:
    """Every whitespace-separated term must match; ``#x`` matches a tag starting with x."""
    for term in query.lower().split():
        if term.startswith("#") and len(term) > 1:
            if not any(t.lower().startswith(term[1:]) for t in s.tags):
                return False
            continue
        hay = " ".join(
            [s.label, s.name or "", s.title or "", s.project_path, s.session_id, *s.tags]
        ).lower()
        if term not in hay:
            return False
    return True


# --------------------------------------------------------------------------- state


class DashboardState:
    """UI state that survives refreshes: selection, filter and the reset baseline."""

    def __init__(self) -> None:
        self.filter_text = ""
        self.selected_id: str | None = None
        self.reset_at: float | None = None
        self.baseline_sessions: dict[str, tuple[int, float]] | None = None
        self.baseline_total: tuple[int, float] = (0, 0.0)
        self.reset_pending = True  # the first snapshot sets the "since start" baseline
        self._visible: list[str] = []
        # the last snapshot's session views (they do not depend on the clock; the dashboard
        # redraws every second): (snapshot, baseline, views), compared by identity
        self._views: tuple[Snapshot, Any, list[SessionView]] | None = None

    # ---- reset
    def request_reset(self) -> None:
        """Ask for a new baseline; the next snapshot carrying session totals applies it."""
        self.reset_pending = True

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Take a baseline from ``snap`` if a reset is pending and the snapshot carries one."""
        if self.reset_pending and snap.session_totals is not None:
            self.baseline_sessions = dict(snap.session_totals)
            totals = snap.summary.get("totals") or {}
            self.baseline_total = (
                _int(totals.get("totalTokens")),
                _float(totals.get("totalCost")) or 0.0,
            )
            self.reset_at = snap.taken_at
            self.reset_pending = False

    # ---- filter / selection
    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()

    def move(self, delta: int) -> None:
        """Move the selection by ``delta`` rows within the visible (filtered) list."""
        if not self._visible:
            self.selected_id = None
            return
        try:
            i = self._visible.index(self.selected_id) if self.selected_id else -1
        except ValueError:
            i = -1
        if i < 0:
            i = 0 if delta >= 0 else len(self._visible) - 1
        else:
            i = max(0, min(len(self._visible) - 1, i + delta))
        self.selected_id = self._visible[i]

    def select(self, session_id: str | None) -> None:
        self.selected_id = session_id

    # ---- build a frame
    def view(self, snap: Snapshot, now: float) -> DashboardView:
        s = snap.summary
        meta = snap.metadata or {}
        kept = self._views
        if kept is not None and kept[0] is snap and kept[1] is self.baseline_sessions:
            sessions_all = kept[2]
        else:
            rows = [r for r in (s.get("activeSessions") or []) if isinstance(r, Mapping)]
            sessions_all = [
                session_view(r, meta.get(str(r.get("sessionId"))), self.baseline_sessions)
                for r in rows
            ]
            _disambiguate(sessions_all)
            self._views = (snap, self.baseline_sessions, sessions_all)
        sessions = [x for x in sessions_all if matches(x, self.filter_text)]
        self._visible = [x.session_id for x in sessions]
        selected: int | None = None
        if sessions:
            if self.selected_id in self._visible:
                selected = self._visible.index(self.selected_id)
            else:
                selected = 0
                self.selected_id = sessions[0].session_id
        totals = s.get("totals") or {}
        if self.baseline_sessions is None:
            d_tok, d_cost = 0, 0.0
        else:
            d_tok = max(0, _int(totals.get("totalTokens")) - self.baseline_total[0])
            d_cost = max(0.0, (_float(totals.get("totalCost")) or 0.0) - self.baseline_total[1])
        # Shift the minute buckets so the sparkline ends at `now`, not at snapshot time.
        spark = list(snap.minute_usage)
        shift = int(max(0.0, now - snap.taken_at) // 60)
        if shift and spark:
            spark = (spark[shift:] + [0] * min(shift, len(spark)))[-len(snap.minute_usage) :]
        return DashboardView(
            now=now,
            block=block_view(s, now),
            today=period_view("today", s.get("today")),
            week=period_view("week", s.get("week")),
            official=official_view(s.get("official"), now),
            sessions=sessions,
            active_count=len(sessions_all),
            selected=selected,
            filter_text=self.filter_text,
            reset_at=self.reset_at,
            since_reset_tokens=d_tok,
            since_reset_cost=d_cost,
            spark_values=spark,
            spark_minutes=len(snap.minute_usage),
            updated_age_s=max(0.0, now - snap.taken_at),
            warnings=list(snap.warnings),
            error=snap.error,
            agents=agent_rows(s),
        )


def parse_tag_input(text: str) -> tuple[list[str], list[str]]:
    """``"a, b -c"`` -> (add ["a", "b"], remove ["c"]); commas or spaces separate tags."""
    add: list[str] = []
    remove: list[str] = []
    for tok in text.replace(",", " ").split():
        tok = tok.strip().lstrip("#")
        if tok.startswith("-") and len(tok) > 1:
            name = tok[1:].lstrip("#")
            if name and name not in remove:
                remove.append(name)
        elif tok and tok != "-" and tok not in add:
            add.append(tok)
    return add, remove


def compact_line(v: DashboardView, width: int) -> str:
    """Plain single-line summary (``--compact`` and tiny terminals).

    Parts are added in priority order and dropped whole (never cut mid-word) when
    they do not fit; the sparkline fills what room is left.
    """
    parts: list[str] = []
    b = v.block
    if b is None:
        parts.append("no active block")
    else:
        lim = f" {b.limit_pct:.0f}%" if b.limit_pct is not None else ""
        parts.append(f"blk {fmt_tokens(b.tokens)}{lim}")
        parts.append(f"{fmt_minutes(b.remaining_minutes)} left")
        if b.burn_tpm is not None:  # the level's own basis: input+output tokens per minute
            rate = b.burn_indicator_tpm if b.burn_indicator_tpm is not None else b.burn_tpm
            parts.append(f"{fmt_tokens(rate)}/m {b.burn_level}")
        if b.projected_tokens is not None:
            parts.append(f"→{fmt_tokens(b.projected_tokens)}")
    if v.official and v.official.five_hour_pct is not None:
        parts.append(f"5h {v.official.five_hour_pct:.0f}%")
    parts.append(f"today {fmt_tokens(v.today.tokens)} {fmt_cost(v.today.cost)}")
    parts.append(f"+{fmt_tokens(v.since_reset_tokens)}")
    sep = " │ "
    line = ""
    for part in parts:
        cand = part if not line else line + sep + part
        if width > 0 and len(cand) > width:
            continue
        line = cand
    room = width - len(line) - len(sep)
    if room >= 6:
        line += sep + v.spark(min(room, 24))
    return line if line or width <= 0 else parts[0][:width]
