"""Queries: reports, summary, session rows and blocks over the engine's records."""

from __future__ import annotations

import operator
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from tokmon.core import aggregate
from tokmon.core.blocks import (
    burn_level,
    compute_blocks,
    limit_status,
    max_completed_tokens,
)
from tokmon.core.model import UsageRecord
from tokmon.core.timeutil import WEEKDAYS, DateKeyer, parse_day, resolve_tz
from tokmon.leanclass import replace

if TYPE_CHECKING:  # the typed rows are imported where a report is built (see aggregate)
    from tokmon.core.model_blocks import Block
    from tokmon.core.rollups import Rollups, SessionPart
    from tokmon.core.rows import (
        JSON,
        JSONObject,
        PeriodKind,
        PeriodLabel,
        PeriodReport,
        PeriodRow,
        Report,
        SessionReport,
        SessionRow,
        Totals,
    )
    from tokmon.core.summary_rows import Summary

from tokmon import lazylog
from tokmon.core.engine.state import Changes, EngineState
from tokmon.core.ledger import LedgerDB

_T = TypeVar("_T")
log = lazylog.getLogger("tokmon.core.engine")

ALL = "all"  # the agent filter that means every agent

CLAUDE = "claude"

FUTURE_SLACK = 86400.0  # records dated further ahead than this are "far future" (flagged)


class Queries(EngineState):
    """Reports, summary, sessions and blocks over the merged records."""

    def _db(self) -> LedgerDB:
        """The ledger database (opened on first use; a report before any refresh)."""
        if self.db is None:
            changes = Changes()
            self._sync(changes)
            for w in changes.warnings:
                self._late_warning(w)
        assert self.db is not None
        return self.db

    @property
    def records(self) -> list[UsageRecord]:
        """Every deduplicated Claude record sorted by time (loads the whole history: queries
        that need a part load it by index)."""
        if self._sorted is None:
            self._sorted = self._db().records()
        return self._sorted

    def record_count(self) -> int:
        """How many deduplicated Claude records the ledger holds (without loading them)."""
        return self._db().count()

    def records_since(self, ts: float) -> list[UsageRecord]:
        """Claude records with ``ts`` or later, oldest first, by the time index (a part of
        the cached full list when it is loaded): what a caller that reads the last days
        needs, without loading the history."""
        if self._sorted is not None:
            import bisect

            return self._sorted[bisect.bisect_left(self._sorted, ts, key=_ts_of) :]
        return self._records_where("ts >= ?", (ts,))

    def _records_where(self, where: str, args: tuple[object, ...]) -> list[UsageRecord]:
        """Records by an indexed condition (the cached full list when it is loaded)."""
        return self._db().records(where, args)

    @property
    def titles(self) -> dict[str, str]:
        """Claude's own session titles: ``custom-title`` beats ``ai-title``."""
        return self._titles_of(None)

    def _titles_of(self, ids: Iterable[str] | None) -> dict[str, str]:
        """:attr:`titles` of these sessions only, read by key from the database the sums are
        read from (None: of every session, the ledger's)."""
        db = self._db()
        pairs = (self.ledger.titles if ids is None else db.titles_of(ids)).items()
        out = {}
        for sid, t in pairs:
            v = t and (t.get("custom-title") or t.get("ai-title"))
            if v:
                out[sid] = v
        return out

    def agent_names(self) -> list[str]:
        """``claude`` and every other agent that has records (registry order)."""
        return [CLAUDE] + (self.agents.agents_with_data() if self.agents is not None else [])

    def records_of(self, agent: str | None) -> list[UsageRecord]:
        """Records of one agent, oldest first (None: Claude Code)."""
        if agent is None or agent == CLAUDE:
            return self.records
        if self.agents is None or agent not in self.agents.readers:
            raise ValueError(f"unknown agent {agent!r} (known: {', '.join(self.known_agents())})")
        return self.agents.records(agent)

    def known_agents(self) -> list[str]:
        """Every agent name ``--agent`` accepts (besides ``all``)."""
        return [CLAUDE] + (list(self.agents.readers) if self.agents is not None else [])

    def _tz_name(self, tz: str | None) -> str | None:
        return tz if tz is not None else self.config.get("timezone")

    def _filtered(
        self,
        since: str | None = None,
        until: str | None = None,
        project: str | None = None,
        tz: str | None = None,
        session: str | None = None,
        agent: str | None = None,
    ) -> list[UsageRecord]:
        if agent is None or agent == CLAUDE:
            recs = self._claude_filtered(since, until, tz, session)
        else:
            recs = self.records_of(agent)
        if self.record_filter is not None:
            recs = [r for r in recs if self.record_filter(r)]
        if project:
            recs = [r for r in recs if _project_matches(r.project, project)]
        if session:
            recs = [r for r in recs if r.session_id == session]
        if since or until:
            keyer = DateKeyer(resolve_tz(self._tz_name(tz)))
            lo = parse_day(since) if since else "0000-00-00"
            hi = parse_day(until) if until else "9999-99-99"
            recs = [r for r in recs if lo <= keyer.day(r.ts) <= hi]
        return recs

    def _stored(self, agent: str | None) -> Rollups | None:
        """The stored sums, when they can answer for ``agent`` (Claude Code, no record filter
        such as one machine's records)."""
        if self.record_filter is not None or agent not in (None, CLAUDE):
            return None
        self._db()
        return self._roll()

    def _stored_blocks(self) -> Rollups | None:
        """The stored sums when they hold Claude Code's blocks (blocks of an hour or more:
        :attr:`Rollups.keeps_blocks`; else the blocks are grouped from the records)."""
        roll = self._stored(None)
        return roll if roll is not None and roll.keeps_blocks else None

    def stored_counts(self) -> tuple[int, int] | None:
        """Claude Code's ``(sessions, records)`` from the stored sums, without loading a
        record (None: the sums cannot answer; count :attr:`records` then)."""
        roll = self._stored(None)
        return None if roll is None else roll.counts(CLAUDE)

    def recent_projects(self) -> list[str]:
        """Claude Code's session projects (cwd), most recently active first: from the stored
        sums (no record loaded), or from the records when those cannot answer."""
        roll = self._stored(None)
        if roll is not None:
            return roll.recent_projects(CLAUDE)
        project: dict[str, str] = {}
        last: dict[str, float] = {}
        for r in self.records:  # sorted by time: the last cwd seen per session wins
            last[r.session_id] = r.ts
            if r.project:
                project[r.session_id] = r.project
        latest: dict[str, float] = {}
        for sid, proj in project.items():
            latest[proj] = max(latest.get(proj, float("-inf")), last[sid])
        return sorted(latest, key=lambda p: (-latest[p], p))

    def _claude_filtered(
        self, since: str | None, until: str | None, tz: str | None, session: str | None
    ) -> list[UsageRecord]:
        """Claude records narrowed by index (session, a time range with a day of margin for
        every zone); the exact date test follows in :meth:`_filtered`."""
        if self._sorted is not None and not session:
            return self._sorted
        conds: list[str] = []
        args: list[object] = []
        if session:
            conds.append("session = ?")
            args.append(session)
        if since:
            conds.append("ts >= ?")
            args.append(_day_ts(parse_day(since)) - 2 * 86400)
        if until:
            conds.append("ts < ?")
            args.append(_day_ts(parse_day(until)) + 3 * 86400)
        if not conds:
            return self.records
        return self._records_where(" AND ".join(conds), tuple(args))

    def _recent_blocks(self, now: float) -> list[Block]:
        """The last blocks up to ``now`` from the records since the last gap longer than a
        block (so the current block is the one :meth:`blocks` finds, without all history)."""
        if self._sorted is not None:
            return self.blocks(now)
        ck = ("recent-blocks", int(now))
        if ck in self._cache:
            return self._cache[ck]  # type: ignore[no-any-return]
        roll = self._stored_blocks()
        if roll is not None:  # only an active block can matter: its last record is that recent
            live: list[Block] = roll.blocks(CLAUDE, now, since=now - self.block_seconds)
            self._cache[ck] = live
            return live
        db = self._db()
        span = max(2 * self.block_seconds, 86400.0)
        while True:
            lo = now - span
            recs = db.records("ts >= ?", (lo,))
            prev = db.last_before(lo)
            first = recs[0].ts if recs else now
            if prev is None or first - prev > self.block_seconds:
                break
            if span > 64 * 86400:  # never idle for a block in two months: take everything
                recs = self.records
                break
            span *= 4
        got = compute_blocks(recs, now, self.block_seconds)
        self._cache[ck] = got
        return got

    def blocks(self, now: float | None = None) -> list[Block]:
        """All billing blocks (gaps included) of all records."""
        now = time.time() if now is None else now
        ck = ("blocks", int(now))
        if ck not in self._cache:
            roll = self._stored_blocks()
            self._cache[ck] = (
                roll.blocks(CLAUDE, now)
                if roll is not None and self._sorted is None
                else self._blocks.blocks(self.records, now)
            )
        return self._cache[ck]  # type: ignore[no-any-return]

    def token_limit(
        self, now: float | None = None, override: int | str | None = None
    ) -> tuple[int | None, str | None]:
        """The block token limit and where it came from."""
        lim = override if override is not None else self.config.token_limit
        if lim is None:
            return None, None
        if lim == "max":
            roll = self._stored_blocks()
            if roll is not None and self._sorted is None:
                v = roll.max_completed_tokens(CLAUDE, time.time() if now is None else now)
            else:
                v = max_completed_tokens(self.blocks(now))
            return v, "max-completed-block" if v else None
        return int(lim), "config"

    def session_rows(
        self,
        since: str | None = None,
        until: str | None = None,
        project: str | None = None,
        tz: str | None = None,
        now: float | None = None,
        agent: str | None = None,
        only: Iterable[str] | None = None,
    ) -> list[SessionRow]:
        """SessionRows (see docs/architecture.md), most recent first.

        ``agent``: one agent's sessions (None: Claude Code's), or ``"all"``: every agent's,
        each row with its ``agent``. ``only``: just these sessions' rows, whole (the other
        filters must be unset), read from the stored sums by id: what a push carries."""
        now = time.time() if now is None else now
        ids = None if only is None else set(only)
        titles = self.titles if ids is None else self._titles_of(ids)
        rows: list[SessionRow] = []
        for name in self.agent_names() if agent == ALL else [agent]:
            roll = self._stored(name)
            if roll is not None:
                groups, projects = (
                    roll.sessions(CLAUDE, self._tz_name(tz), since, until, project)
                    if ids is None
                    else roll.sessions(CLAUDE, only=ids)
                )
                part = aggregate.session_rows_of(groups, projects, titles, now, self.block_seconds)
            else:
                recs = self._filtered(since, until, project, tz, agent=name)
                if ids is not None:
                    recs = [r for r in recs if r.session_id in ids]
                part = aggregate.session_rows(recs, titles, now, self.block_seconds)
            if agent == ALL:
                part = [replace(r, agent=name or CLAUDE) for r in part]
            rows += part
        rows.sort(key=lambda r: r.last_activity, reverse=True)
        return rows

    def report(self, kind: str, **opts: Any) -> Report:
        """A ccusage-compatible report: daily, weekly, monthly, session or blocks.

        ``agent``: one agent's report (default Claude Code: the ccusage shapes), or
        ``"all"``: every agent's rows, each with an ``agent`` column (blocks: Claude only).
        """
        from tokmon.core.rows_blocks import BlocksReport

        agent = opts.get("agent")
        if agent == ALL:
            if kind == "blocks":
                raise ValueError("5-hour blocks are Claude Code's: use --agent claude")
            return self._all_agents_report(kind, opts)
        if kind == "blocks" and agent not in (None, CLAUDE):
            raise ValueError("5-hour blocks are Claude Code's: use --agent claude")
        roll = self._stored(agent)
        if roll is not None:
            got = self._stored_report(roll, kind, opts)
            if got is not None:
                return got
        tz = resolve_tz(self._tz_name(opts.get("timezone")))
        recs = self._filtered(
            opts.get("since"),
            opts.get("until"),
            opts.get("project"),
            opts.get("timezone"),
            opts.get("session_id"),
            agent,
        )
        keyer = DateKeyer(tz)
        order = opts.get("order") or "asc"
        if kind == "daily":
            return aggregate.period_report(recs, keyer.day, "date", "daily", order)
        if kind == "monthly":
            return aggregate.period_report(recs, keyer.month, "month", "monthly", order)
        if kind == "weekly":
            sow = WEEKDAYS.index(opts.get("start_of_week") or "sunday")
            return aggregate.period_report(
                recs, lambda ts: keyer.week(ts, sow), "week", "weekly", order
            )
        if kind == "session":
            now = opts.get("now") or time.time()
            rows = aggregate.session_rows(recs, self.titles, now, self.block_seconds)
            if not opts.get("include_empty") and not opts.get("session_id"):
                rows = [r for r in rows if r.total_tokens]  # 0-token sessions: only if asked
            rows.sort(key=lambda r: -r.total_cost)
            from tokmon.core.rows import SessionReport

            return SessionReport(rows, aggregate.totals_of(aggregate.totals(recs)))
        if kind == "blocks":
            return BlocksReport(self._blocks_report(recs, opts))
        raise ValueError(f"unknown report {kind!r}")

    def session_report_until(self, now: float) -> float | None:
        """Until when :meth:`session_report_json` at ``now`` stays the answer while the data
        does not change (its ``isActive`` flags follow the clock; see
        :meth:`~tokmon.core.rollups.Rollups.active_until`); None: not answered from the
        stored sums."""
        roll = self._stored(None)
        if roll is None:
            return None
        return roll.active_until(CLAUDE, now, self.block_seconds)

    def session_report_json(
        self, extra: Mapping[str, JSON] | None = None, **opts: Any
    ) -> JSONObject | None:
        """``session --json`` (the report's ``to_json()``: rows and totals) straight from the
        stored sums, without typed rows in between; None when they cannot answer (a filter,
        another agent, a record filter: then :meth:`report` does). ``extra``: keys added to
        every row after its own (their values shared by all rows)."""
        if any(opts.get(k) for k in ("since", "until", "project", "session_id")):
            return None
        roll = self._stored(opts.get("agent"))
        if roll is None:
            return None
        rows, totals = roll.session_json(
            CLAUDE,
            self.titles,
            opts.get("now") or time.time(),
            self.block_seconds,
            bool(opts.get("include_empty")),
            extra,
        )
        return {"sessions": cast("list[JSON]", rows), "totals": totals}

    def session_report_parts(
        self,
        now: float,
        extra: Mapping[str, JSON] | None = None,
        only: Iterable[str] | None = None,
        agent: str | None = None,
    ) -> list[SessionPart] | None:
        """The unfiltered ``session --json`` per session (:meth:`Rollups.session_parts`: the
        (first, id) order, each session's JSON row, cost and sums) from the stored sums;
        ``only``: just these sessions (their titles only are read). None: the stored sums
        cannot answer (another agent, a record filter)."""
        roll = self._stored(agent)
        if roll is None:
            return None
        if only is None:
            return roll.session_parts(CLAUDE, self.titles, now, self.block_seconds, extra)
        ids = set(only)
        titles = self._titles_of(ids)  # of these sessions only
        return roll.session_parts(CLAUDE, titles, now, self.block_seconds, extra, only=ids)

    def _stored_report(self, roll: Rollups, kind: str, opts: dict[str, Any]) -> Report | None:
        """A Claude report from the stored sums (None: a filter they cannot answer)."""
        from tokmon.core.rows_blocks import BlocksReport

        tzname = self._tz_name(opts.get("timezone"))
        since, until, project = opts.get("since"), opts.get("until"), opts.get("project")
        sid = opts.get("session_id")
        if kind in _PERIODS:
            label, list_name = _PERIODS[kind]
            groups = roll.periods(
                kind,
                CLAUDE,
                tzname,
                since=since,
                until=until,
                project=project,
                session_id=sid,
                start_of_week=opts.get("start_of_week"),
            )
            return aggregate.period_rows(groups, label, list_name, opts.get("order") or "asc")
        if kind == "session" and not sid:
            now = opts.get("now") or time.time()
            groups, projects = roll.sessions(CLAUDE, tzname, since, until, project)
            rows = aggregate.session_rows_of(groups, projects, self.titles, now, self.block_seconds)
            if not opts.get("include_empty"):
                rows = [r for r in rows if r.total_tokens]  # 0-token sessions: only if asked
            rows.sort(key=lambda r: -r.total_cost)
            from tokmon.core.rows import SessionReport

            return SessionReport(rows, aggregate.totals_of(_sum(groups.values())))
        if kind == "blocks" and roll.keeps_blocks and not (since or until or project or sid):
            now = opts.get("now") or time.time()
            return BlocksReport(self._shape_blocks(roll.blocks(CLAUDE, now), opts))
        return None

    def _all_agents_report(self, kind: str, opts: dict[str, Any]) -> PeriodReport | SessionReport:
        """Every agent's rows with their ``agent`` set (the column after the period or session
        id), sorted like the single-agent report; ``totals`` over all agents, per agent in
        ``agents``."""
        from tokmon.core.rows import PeriodReport, SessionReport

        if kind not in ("daily", "weekly", "monthly", "session"):
            raise KeyError(kind)
        per_agent: dict[str, Totals] = {}
        period_rows: list[PeriodRow] = []
        session_rows: list[SessionRow] = []
        period: PeriodReport | None = None
        recs: list[UsageRecord] = []
        names = self.agent_names()
        for name in names:
            part = self.report(kind, **{**opts, "agent": name})
            if isinstance(part, SessionReport):
                session_rows += [replace(r, agent=name) for r in part.rows]
            elif isinstance(part, PeriodReport):
                period = part
                period_rows += [replace(r, agent=name) for r in part.rows]
            else:  # pragma: no cover - blocks are refused above
                raise ValueError(kind)
            per_agent[name] = part.totals
            recs += self._filtered(
                opts.get("since"),
                opts.get("until"),
                opts.get("project"),
                opts.get("timezone"),
                opts.get("session_id"),
                name,
            )
        totals = aggregate.totals_of(aggregate.totals(recs))
        if kind == "session":
            session_rows.sort(key=lambda r: -r.total_cost)
            return SessionReport(session_rows, totals, per_agent)
        rank = {n: i for i, n in enumerate(names)}
        period_rows.sort(key=lambda r: rank[str(r.agent)])
        period_rows.sort(key=lambda r: r.label, reverse=opts.get("order") == "desc")
        assert period is not None  # at least Claude Code's report
        return PeriodReport(period.kind, period_rows, totals, per_agent)

    def _blocks_report(self, recs: list[UsageRecord], opts: dict[str, Any]) -> list[Block]:
        now = opts.get("now") or time.time()
        return self._shape_blocks(compute_blocks(recs, now, self.block_seconds), opts)

    def _shape_blocks(self, blocks: list[Block], opts: dict[str, Any]) -> list[Block]:
        """The blocks report's options: active / recent, the token limit, the order."""
        now = opts.get("now") or time.time()
        limit, _ = self.token_limit(now, opts.get("token_limit"))
        if opts.get("active"):
            blocks = [b for b in blocks if b.is_active]
        elif opts.get("recent"):
            cutoff = now - 3 * 86400
            blocks = [b for b in blocks if b.is_active or b.end >= cutoff]
        if limit:
            for b in blocks:
                if b.is_active:
                    b.token_limit_status = limit_status(b, limit)
        if opts.get("order") == "desc":
            blocks.reverse()
        return blocks

    def _period_sums(self, key: tuple[Any, ...]) -> list[aggregate.Acc]:
        """[today, week, month, all-time] sums, kept up to date from record deltas.

        ``key`` is (zone, day start, week start, month start, day end, week end, month end):
        each period counts ``start <= ts < end`` (future-dated records stay out).
        """
        _, d0, w0, m0, d1, w1, m1 = key
        bounds = ((d0, d1), (w0, w1), (m0, m1), (float("-inf"), float("inf")))
        roll = self._stored(None)
        if roll is not None:
            return self._stored_period_sums(roll, key, bounds)
        per = self._periods
        if per is not None and per["key"] == key and "accs" in per:
            accs = per["accs"]
            for old, new in self._deltas:
                for sign, r in ((-1, old), (1, new)):
                    if r is None:
                        continue
                    ts = r.ts
                    for acc, (lo, hi) in zip(accs, bounds, strict=True):
                        if lo <= ts < hi:
                            _acc_apply(acc, r, sign)
            self._deltas = []
            return accs  # type: ignore[no-any-return]
        db = self._db()
        accs = []
        for lo, hi in bounds:
            n, i, o, cc, cr, cost = db.sums(lo, hi)
            acc = aggregate.Acc()
            acc.n, acc.i, acc.o, acc.cc, acc.cr, acc.cost = n, i, o, cc, cr, cost
            accs.append(acc)
        self._periods = {"key": key, "accs": accs}
        self._deltas = []
        return accs

    def _stored_period_sums(
        self, roll: Rollups, key: tuple[Any, ...], bounds: tuple[tuple[float, float], ...]
    ) -> list[aggregate.Acc]:
        """[today, week, month, all-time] from the stored sums, exact: today, week and month
        read once per period key as integer sums (cost in picodollars, as stored), then kept
        current from the record deltas of each refresh (what changed, not the month's
        buckets); all time from the per-model totals (a few rows) per version."""
        from tokmon.core.rollups import PICO

        per = self._periods
        if per is None or per["key"] != key or "ints" not in per:
            ints = [roll.period_ints(CLAUDE, lo, hi) for lo, hi in bounds[:3]]
            self._periods = {"key": key, "ints": ints}
        else:
            ints = per["ints"]
            for old, new in self._deltas:
                for sign, r in ((-1, old), (1, new)):
                    if r is None:
                        continue
                    ts = r.ts
                    for s, (lo, hi) in zip(ints, bounds, strict=False):
                        if lo <= ts < hi:
                            s[0] += sign * r.input_tokens
                            s[1] += sign * r.output_tokens
                            s[2] += sign * r.cache_creation_tokens
                            s[3] += sign * r.cache_read_tokens
                            s[4] += sign * round(r.cost * PICO)
                            s[5] += sign
        self._deltas = []
        ck = ("total", key[0])
        if ck not in self._cache:
            self._cache[ck] = roll.totals(CLAUDE)
        out = []
        for s in ints:
            acc = aggregate.Acc()
            acc.i, acc.o, acc.cc, acc.cr, acc.n = s[0], s[1], s[2], s[3], s[5]
            acc.cost = s[4] / PICO
            out.append(acc)
        return [*out, self._cache[ck]]

    def _recent_session_rows(self, now: float) -> list[SessionRow]:
        """Rows of the Claude sessions with a record in the last block length (most recent
        first): from the stored per-session sums when they can answer (a few indexed reads,
        whatever the history and the sessions' length), else from those sessions' records."""
        lo, hi = now - self.block_seconds, now + FUTURE_SLACK
        roll = self._stored(None)
        if roll is not None and self._sorted is None:
            recent = roll.active_sessions(CLAUDE, lo, hi)
            if not recent:
                return []
            groups, projects = roll.sessions(CLAUDE, only=recent)
            titles = {}
            for sid in recent:  # Claude's titles of these sessions only (custom beats ai)
                t = self.ledger.titles.get(sid) or {}
                v = t.get("custom-title") or t.get("ai-title")
                if v:
                    titles[sid] = v
            rows = aggregate.session_rows_of(groups, projects, titles, now, self.block_seconds)
            rows.sort(key=lambda r: (r.first_activity, r.session_id))  # the records' order
        else:
            recent = {r.session_id for r in self._records_where("ts > ? AND ts <= ?", (lo, hi))}
            rows = (
                aggregate.session_rows(
                    self._db().records_of_sessions(sorted(recent)),
                    self.titles,
                    now,
                    self.block_seconds,
                )
                if recent
                else []
            )
        rows.sort(key=lambda r: r.last_activity, reverse=True)
        return rows

    def active_index(self, now: float | None = None) -> list[tuple[str, float, str]]:
        """``(session id, last activity, project)`` of the Claude sessions :meth:`summary`
        lists as active at ``now``, most recent first, without building their rows (a few
        indexed reads of the stored sums): what a push needs to tell which sessions are in
        the active set and when the next one leaves it."""
        now = time.time() if now is None else now
        out: list[tuple[str, float, str]] = []
        roll = self._stored(None)
        if roll is not None and self._sorted is None:
            recent = roll.active_sessions(CLAUDE, now - self.block_seconds, now + FUTURE_SLACK)
            if recent:
                groups, projects = roll.sessions(CLAUDE, only=recent)
                out = [
                    (sid, a.last, projects.get(sid, ""))
                    for sid, a in groups.items()
                    if now - a.last < self.block_seconds
                ]
        else:
            out = [
                (r.session_id, r.last_activity, r.project_path)
                for r in self._recent_session_rows(now)
                if r.is_active
            ]
        out.sort(key=lambda t: (-t[1], t[0]))
        return out

    def summary(
        self,
        now: float | None = None,
        cwd: str | None = None,
        tz: str | None = None,
        active_rows: bool = True,
    ) -> Summary:
        """The Summary every live surface shows (see docs/architecture.md); with
        ``active_rows=False`` its ``active_sessions`` stay empty and ``project_session`` None
        (a caller that reads :meth:`active_index` instead builds no row)."""
        from tokmon.core.summary_rows import (
            ActiveBlock,
            AgentToday,
            Official,
            PeriodUsage,
            Summary,
            TokenLimit,
        )
        from tokmon.fmt import zone_name

        now = time.time() if now is None else now
        tzname = self._tz_name(tz)
        tzinfo = resolve_tz(tzname)
        keyer = DateKeyer(tzinfo)
        today, week, month = keyer.day(now), keyer.week(now), keyer.month(now)
        from datetime import date as _date
        from datetime import datetime as _dt
        from datetime import timedelta as _td

        def _start(day: _date) -> float:
            return _dt(day.year, day.month, day.day, tzinfo=tzinfo).timestamp()

        dd, wd = _date.fromisoformat(today), _date.fromisoformat(week)
        md = _date.fromisoformat(month + "-01")
        next_month = _date(md.year + md.month // 12, md.month % 12 + 1, 1)
        bounds = (
            _start(dd),
            _start(wd),
            _start(md),
            _start(dd + _td(days=1)),
            _start(wd + _td(days=7)),
            _start(next_month),
        )
        acc_d, acc_w, acc_m, all_acc = self._period_sums((tzname, *bounds))
        blocks = self._recent_blocks(now)
        current: Block | None = None
        for b in reversed(blocks):  # skip blocks that start in the future (clock skew)
            if b.is_active:
                current = b
                break
            if b.start <= now:
                break
        limit, source = self.token_limit(now)
        active: ActiveBlock | None = None
        if current is not None:
            br = current.burn_rate
            proj = current.projection
            proj_pct = proj.total_tokens / limit * 100 if (proj and limit) else None
            active = ActiveBlock(
                current,
                remaining_minutes=max(0.0, (current.end - now) / 60),
                burn_level=burn_level(br.tokens_per_minute_for_indicator if br else None, proj_pct),
                limit_percent=(current.total_tokens / limit * 100) if limit else None,
            )
        rows = self._recent_session_rows(now) if active_rows else []
        live = [r for r in rows if r.is_active]
        official = None
        try:
            from tokmon.core import official as official_mod

            official = Official.parse(official_mod.latest(self.paths))
        except Exception:  # the official store is optional; never break a summary
            official = None

        today_p = PeriodUsage("date", today, acc_d.usage())
        all_usage = all_acc.usage()
        agents: dict[str, AgentToday] | None = None
        others = self.agent_names()[1:]
        if others:  # only with other agents' data: a Claude-only summary keeps its shape
            agents = {CLAUDE: AgentToday(today_p, all_usage)}
            for name in others:
                recs_a = self.records_of(name)
                day = aggregate.Acc()
                for r in recs_a:
                    if bounds[0] <= r.ts < bounds[3]:
                        _acc_apply(day, r, 1)
                agents[name] = AgentToday(
                    PeriodUsage("date", today, day.usage()), aggregate.totals(recs_a).usage()
                )
        return Summary(
            generated_at=now,
            timezone=tzname or zone_name(tzinfo),  # the real zone, never "local"
            today=today_p,
            week=PeriodUsage("week", week, acc_w.usage()),
            month=PeriodUsage("month", month, acc_m.usage()),
            totals=all_usage,
            active_block=active,
            token_limit=TokenLimit(limit, source),
            official=official,
            active_sessions=live,
            project_session=project_session(live, cwd) if cwd else None,
            agents=agents,
        )


_PERIODS: dict[str, tuple[PeriodLabel, PeriodKind]] = {
    "daily": ("date", "daily"),
    "weekly": ("week", "weekly"),
    "monthly": ("month", "monthly"),
}


def _sum(accs: Iterable[aggregate.Acc]) -> aggregate.Acc:
    total = aggregate.Acc()
    for a in accs:
        total.i += a.i
        total.o += a.o
        total.cc += a.cc
        total.cr += a.cr
        total.cost += a.cost
        total.n += a.n
    return total


def _day_ts(day: str) -> float:
    """UTC midnight of a YYYY-MM-DD day (callers add a margin for every zone)."""
    from datetime import datetime, timezone

    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp()


def _acc_apply(acc: aggregate.Acc, r: UsageRecord, sign: int) -> None:
    acc.i += sign * r.input_tokens
    acc.o += sign * r.output_tokens
    acc.cc += sign * r.cache_creation_tokens
    acc.cr += sign * r.cache_read_tokens
    acc.cost += sign * r.cost
    acc.n += sign


def _ts_of(r: UsageRecord) -> float:
    return r.ts


def _project_matches(path: str, wanted: str) -> bool:
    return path == wanted or aggregate.project_name(path) == wanted


def _is_within(child: str, parent: str) -> bool:
    if not parent:
        return False
    try:
        c, p = os.path.normcase(os.path.abspath(child)), os.path.normcase(os.path.abspath(parent))
        return c == p or os.path.commonpath([c, p]) == p
    except ValueError:
        return False


def project_session(rows: list[SessionRow], cwd: str) -> SessionRow | None:
    """The most recent session whose project is ``cwd`` or contains it (rows sorted recent first)."""
    return closest_project(rows, cwd, operator.attrgetter("project_path"))


def closest_project(items: Iterable[_T], cwd: str, project_of: Callable[[_T], str]) -> _T | None:
    """The first of ``items`` whose project is ``cwd`` or the deepest dir above it (the most
    recent of those, when ``items`` come most recent first)."""
    best: _T | None = None
    best_len = -1
    for it in items:
        proj = project_of(it)
        if len(proj) > best_len and _is_within(cwd, proj):
            best, best_len = it, len(proj)
    return best
