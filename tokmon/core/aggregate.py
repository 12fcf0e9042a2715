"""Roll records up per day / week / month / session / project / model (ccusage shapes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from tokmon.core.model import UsageRecord
from tokmon.core.records import SYNTHETIC_MODEL

if TYPE_CHECKING:  # the typed rows are imported where they are built: a warm report that
    # answers from its cache or the stored sums never defines their dataclasses (~5 ms)
    from tokmon.core.rows import (
        ModelBreakdown,
        PeriodKind,
        PeriodLabel,
        PeriodReport,
        SessionRow,
        Totals,
        Usage,
    )


class Acc:
    """Running token and cost sums for one group."""

    __slots__ = ("i", "o", "cc", "cr", "cost", "n", "models", "first", "last")

    def __init__(self) -> None:
        self.i = self.o = self.cc = self.cr = self.n = 0
        self.cost = 0.0
        self.models: dict[str, Acc] | None = None
        self.first = float("inf")
        self.last = float("-inf")

    def add(self, r: UsageRecord, by_model: bool = True) -> None:
        self.i += r.input_tokens
        self.o += r.output_tokens
        self.cc += r.cache_creation_tokens
        self.cr += r.cache_read_tokens
        self.cost += r.cost
        self.n += 1
        if r.ts < self.first:
            self.first = r.ts
        if r.ts > self.last:
            self.last = r.ts
        if by_model:
            if self.models is None:
                self.models = {}
            m = self.models.get(r.model)
            if m is None:
                m = self.models[r.model] = Acc()
            m.add(r, False)

    @property
    def total(self) -> int:
        return self.i + self.o + self.cc + self.cr

    def usage(self) -> Usage:
        """The sums as a typed :class:`~tokmon.core.rows.Usage`."""
        from tokmon.core.rows import Usage

        return Usage(self.i, self.o, self.cc, self.cr, self.cost)

    def model_names(self) -> tuple[str, ...]:
        return tuple(m for m in (self.models or {}) if m != SYNTHETIC_MODEL)

    def breakdowns(self) -> tuple[ModelBreakdown, ...]:
        """Per-model sums, most expensive first (the synthetic model left out)."""
        from tokmon.core.rows import ModelBreakdown

        rows = [
            ModelBreakdown(name, a.i, a.o, a.cc, a.cr, a.cost)
            for name, a in (self.models or {}).items()
            if name != SYNTHETIC_MODEL
        ]
        rows.sort(key=lambda r: -r.cost)
        return tuple(rows)


def group(
    records: Iterable[UsageRecord],
    key: Callable[[UsageRecord], str] | None = None,
    time_key: Callable[[float], str] | None = None,
) -> dict[str, Acc]:
    """Group by ``key(record)``, or by ``time_key(ts)`` memoised per 15 minutes (every zone
    offset is a multiple of 15 minutes), with per-model sub-sums. The hot loop of every
    report: each record is unpacked into named locals (as fast as indexing)."""
    cells: dict[tuple[str, str], list[float]] = {}
    get = cells.get
    memo: dict[int, str] = {}
    for r in records:
        # unpacked by field name (UsageRecord order): the fastest read of a tuple in CPython
        ts, _sid, _proj, model, i, o, cc, _c1h, cr, _key, cost, _disp = r
        if time_key is not None:
            b = int(ts // 900)
            k = memo.get(b)
            if k is None:
                k = memo[b] = time_key(b * 900)
        else:
            k = key(r)  # type: ignore[misc]
        ck = (k, model)
        c = get(ck)
        if c is None:
            cells[ck] = [i, o, cc, cr, cost, 1, ts, ts]
            continue
        c[0] += i
        c[1] += o
        c[2] += cc
        c[3] += cr
        c[4] += cost
        c[5] += 1
        if ts < c[6]:
            c[6] = ts
        if ts > c[7]:
            c[7] = ts
    out: dict[str, Acc] = {}
    for (k, model), c in cells.items():
        a = out.get(k)
        if a is None:
            a = out[k] = Acc()
            a.models = {}
        m = Acc()
        m.i, m.o, m.cc, m.cr, m.cost, m.n, m.first, m.last = (
            int(c[0]),
            int(c[1]),
            int(c[2]),
            int(c[3]),
            c[4],
            int(c[5]),
            c[6],
            c[7],
        )
        a.models[model] = m  # type: ignore[index]
        a.i += m.i
        a.o += m.o
        a.cc += m.cc
        a.cr += m.cr
        a.cost += m.cost
        a.n += m.n
        a.first = min(a.first, m.first)
        a.last = max(a.last, m.last)
    return out


def totals(records: Iterable[UsageRecord]) -> Acc:
    a = Acc()
    for r in records:
        a.add(r, False)
    return a


def totals_of(a: Acc) -> Totals:
    """A report's ``totals`` from summed records."""
    from tokmon.core.rows import Totals

    return Totals(a.i, a.o, a.cc, a.cr, a.cost)


def period_report(
    records: Sequence[UsageRecord],
    time_key: Callable[[float], str],
    label: PeriodLabel,
    list_name: PeriodKind,
    order: str = "asc",
) -> PeriodReport:
    """Rows per ``time_key`` period plus totals, like ``ccusage claude daily``."""
    return period_rows(group(records, time_key=time_key), label, list_name, order)


def period_rows(
    groups: dict[str, Acc], label: PeriodLabel, list_name: PeriodKind, order: str = "asc"
) -> PeriodReport:
    """The period report of groups already summed (by :func:`group` or from stored sums)."""
    from tokmon.core.rows import PeriodReport, PeriodRow

    total = Acc()
    for a in groups.values():
        total.i += a.i
        total.o += a.o
        total.cc += a.cc
        total.cr += a.cr
        total.cost += a.cost
    rows = []
    for k in sorted(groups, reverse=(order == "desc")):
        a = groups[k]
        rows.append(PeriodRow(label, k, a.usage(), a.model_names(), a.breakdowns()))
    return PeriodReport(list_name, rows, totals_of(total))


def project_name(path: str) -> str:
    """The last component of a cwd, with / or \\ separators whatever this OS uses
    (``C:\\Users\\me\\proj`` -> ``proj`` on Linux too)."""
    base = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] if path else ""
    return base or path or "unknown"


def session_rows(
    records: Sequence[UsageRecord],
    titles: dict[str, str] | None = None,
    now: float | None = None,
    active_seconds: float = 5 * 3600,
) -> list[SessionRow]:
    """One SessionRow per session id (subagents roll up by their parent's sessionId)."""
    projects: dict[str, str] = {}
    for r in records:  # the session's project is the cwd of its latest line that has one
        if r.project:
            projects[r.session_id] = r.project
    return session_rows_of(
        group(records, lambda r: r.session_id), projects, titles, now, active_seconds
    )


def session_rows_of(
    groups: dict[str, Acc],
    projects: dict[str, str],
    titles: dict[str, str] | None = None,
    now: float | None = None,
    active_seconds: float = 5 * 3600,
) -> list[SessionRow]:
    """Session rows of per-session sums (by :func:`group` or from stored sums) and each
    session's project path."""
    from tokmon.core.rows import SessionRow

    titles = titles or {}
    rows = []
    for sid, a in groups.items():
        proj = projects.get(sid, "")
        rows.append(
            SessionRow(
                session_id=sid,
                project_path=proj,
                usage=a.usage(),
                first_activity=a.first,
                last_activity=a.last,
                models_used=a.model_names(),
                model_breakdowns=a.breakdowns(),
                project_name=project_name(proj),
                entries=a.n,
                title=titles.get(sid),
                is_active=now is not None and now - a.last < active_seconds,
            )
        )
    return rows
