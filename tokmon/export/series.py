"""The metric series both exporters publish, computed from the engine's deduplicated records.

Counters are sums over the whole ledger (never increments kept in memory), so a restart,
a second exporter or a backfill gives the same values and nothing is counted twice. Label
sets are bounded: agent (``claude`` and the other agents tokmon reads), model, token type,
machine, and a project label capped to ``export.top_projects`` named projects plus
``other``. The named set is sticky (kept in the state dir): a project that once got its own
label keeps it, one that arrives later when the set is full stays in ``other``, so no
counter ever moves between series and goes backwards.
Per-session series are opt-in and limited to sessions active in the last 7 days.

The cost counter never goes down: a price-table or ``cost_mode`` change reprices the whole
ledger, and a repricing that lowers a series' cost would read as a counter reset (Prometheus's
``increase()`` would then count the whole total again). :class:`CostFloor` keeps, per series,
the last published value and an offset set at each repricing to the smallest one that keeps
the series monotonic (state dir, ``metrics-cost-<ledger>.json``); between repricings the
offsets are fixed, so increases are exactly the new spend, and a repricing upwards clears them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tokmon.core.aggregate import project_name
from tokmon.core.machines import MachineMap, engine_machine_map, local_machine

if TYPE_CHECKING:
    from tokmon.core.engine import Engine

log = logging.getLogger("tokmon.export")

AGENT = "claude"
OTHER = "other"
DEFAULT_TOP_PROJECTS = 20
SESSION_WINDOW = 7 * 86400
# token type labels (Claude Code's own type names), in the order of the group sums below
TOKEN_TYPES = ("input", "output", "cacheCreation", "cacheRead")


@dataclass
class Gauge:
    """One gauge sample: metric name (without prefix), help, labels, value."""

    name: str
    help: str
    labels: dict[str, str]
    value: float


# Extra gauge providers: fn(engine) -> gauges. Budgets (issue 15) plug in here; so can
# modules named in TOKMON_METRICS_PROVIDERS ("pkg.module:function", comma-separated).
GaugeProvider = Callable[[Any], Iterable[Gauge]]
GAUGE_PROVIDERS: list[GaugeProvider] = []


def register_gauges(fn: GaugeProvider) -> GaugeProvider:
    """Add a gauge provider (e.g. budget use); usable as a decorator."""
    if fn not in GAUGE_PROVIDERS:
        GAUGE_PROVIDERS.append(fn)
    return fn


def _env_providers(env: Any) -> list[GaugeProvider]:
    out: list[GaugeProvider] = []
    spec = (env or os.environ).get("TOKMON_METRICS_PROVIDERS", "")
    for item in filter(None, (s.strip() for s in spec.split(","))):
        mod_name, _, fn_name = item.partition(":")
        try:
            import importlib

            out.append(getattr(importlib.import_module(mod_name), fn_name or "gauges"))
        except Exception as exc:  # a broken plugin must not break the metrics
            log.warning("TOKMON_METRICS_PROVIDERS: cannot load %s: %s", item, exc)
    return out


class ProjectLabels:
    """The sticky set of projects that get their own label (state file, 0600)."""

    def __init__(self, path: Path | None, limit: int) -> None:
        self.path = path
        self.limit = max(0, limit)
        self.named: set[str] = set()
        if path is not None:
            try:
                doc = orjson.loads(path.read_bytes())
                self.named = {str(p) for p in doc.get("projects", [])}
            except (OSError, ValueError, AttributeError, TypeError):
                self.named = set()

    def assign(self, totals: dict[str, int]) -> dict[str, str]:
        """project -> label; new projects join (largest first) while the set has room."""
        added = False
        for proj in sorted(totals, key=lambda p: (-totals[p], p)):
            if proj in self.named:
                continue
            if len(self.named) >= self.limit:
                break
            self.named.add(proj)
            added = True
        if added and self.path is not None:
            from tokmon.fsutil import atomic_write

            try:
                atomic_write(self.path, orjson.dumps({"projects": sorted(self.named)}), fsync=False)
            except OSError as exc:
                log.warning("cannot save %s: %s", self.path, exc)
        return {p: (p if p in self.named else OTHER) for p in totals}


CostKey = tuple[str, str, str, str]


class CostFloor:
    """Published cost values kept monotonic across repricings (see the module doc).

    ``path`` None keeps the state in memory only (a non-persistent engine).
    """

    VERSION = 1

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.prices: str | None = None
        self.rows: dict[CostKey, tuple[float, float]] = {}  # key -> (last published, offset)
        self._stamp: tuple[int, int] | None = None
        self._loaded = False

    def _load(self) -> None:
        if self.path is None:
            return
        stamp = _stamp(self.path)
        if self._loaded and stamp == self._stamp:
            return
        self._loaded, self._stamp = True, stamp
        if stamp is None:
            return
        try:
            doc = orjson.loads(self.path.read_bytes())
            if doc.get("version") != self.VERSION:
                raise ValueError("unknown version")
            rows: dict[CostKey, tuple[float, float]] = {}
            for a, m, p, mach, last, off in doc["series"]:
                rows[(str(a), str(m), str(p), str(mach))] = (float(last), float(off))
            prices = doc.get("prices")
            self.prices = prices if isinstance(prices, str) else None
            self.rows = rows
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable %s (%s)", self.path, exc)

    def _save(self) -> None:
        if self.path is None:
            return
        from tokmon.fsutil import atomic_write

        doc = {
            "version": self.VERSION,
            "prices": self.prices,
            "series": [[*k, last, off] for k, (last, off) in sorted(self.rows.items())],
        }
        try:
            atomic_write(self.path, orjson.dumps(doc), fsync=False)
            self._stamp = _stamp(self.path)
        except OSError as exc:
            log.warning("cannot save %s: %s", self.path, exc)

    def apply(self, cost: dict[CostKey, float], prices: str) -> dict[CostKey, float]:
        """The values to publish for the ledger's ``cost`` sums priced under ``prices``."""
        self._load()
        repriced = self.prices is not None and self.prices != prices
        out: dict[CostKey, float] = {}
        changed = repriced or self.prices is None
        for k, c in cost.items():
            prev = self.rows.get(k)
            if prev is None:
                out[k] = c
                self.rows[k] = (c, 0.0)
                changed = True
                continue
            last, off = prev
            if repriced:
                off = max(0.0, last - c)
            v = c + off
            if v < last:  # float rounding of a re-ordered sum, or a record moved machine
                off += last - v
                v = last
            out[k] = v
            if (v, off) != prev:
                self.rows[k] = (v, off)
                changed = True
        self.prices = prices
        if changed:
            self._save()
        return out


def price_key(engine: Any) -> str:
    """What the ledger's costs were computed with (price table and ``cost_mode``)."""
    fn = getattr(engine, "_price_key", None)
    if callable(fn):
        return str(fn())
    return f"{getattr(engine.prices, 'signature', '')}|{_cfg(engine.config, 'cost_mode', '')}"


@dataclass
class Series:
    """One consistent set of samples."""

    tokens: dict[tuple[str, str, str, str, str], int] = field(default_factory=dict)
    cost: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    responses: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    session_tokens: dict[tuple[str, str, str], int] = field(default_factory=dict)
    gauges: list[Gauge] = field(default_factory=list)
    machine: str = ""
    first_ts: float | None = None


class SeriesSource:
    """Computes :class:`Series` from an engine; counters are cached per engine version."""

    def __init__(
        self,
        engine: Engine,
        *,
        per_session: bool = False,
        top_projects: int | None = None,
        env: Any = None,
    ) -> None:
        self.engine = engine
        self.env = env if env is not None else getattr(engine, "env", os.environ)
        self.per_session = per_session
        cfg = engine.config
        limit = (
            top_projects
            if top_projects is not None
            else _cfg(cfg, "export.top_projects", DEFAULT_TOP_PROJECTS)
        )
        state = engine.paths.state_dir / "metrics-projects.json" if engine.persist else None
        self.projects = ProjectLabels(state, int(limit))
        # one floor per ledger (per set of roots): another ledger's values are no floor here
        floor_file = f"metrics-cost-{engine.ledger_file.stem}.json" if engine.persist else None
        self.floor = CostFloor(engine.paths.state_dir / floor_file if floor_file else None)
        self.machine = local_machine(self.env, cfg)
        self.providers = _env_providers(self.env)
        self._cached: tuple[Any, Series] | None = None

    def counters(self) -> Series:
        """The counter part (cached until the engine's records change)."""
        eng = self.engine
        recs = eng.records
        mm = engine_machine_map(eng)
        mm_key = os.fspath(mm.path), _stamp(mm.path)
        store = getattr(eng, "agents", None)
        agents_version = getattr(store, "version", None)
        key = (eng.version, len(recs), mm_key, price_key(eng), agents_version)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        by_agent = agent_records(eng)
        s = _counters(by_agent, mm, self.machine, self.projects, self.per_session)
        s.cost = self.floor.apply(s.cost, price_key(eng))
        self._cached = (key, s)
        return s

    def collect(self, now: float | None = None) -> Series:
        """Counters plus the current gauges."""
        now = time.time() if now is None else now
        c = self.counters()
        s = Series(c.tokens, c.cost, c.responses, c.session_tokens, [], c.machine, c.first_ts)
        s.gauges = self.gauges(now)
        return s

    def gauges(self, now: float) -> list[Gauge]:
        eng = self.engine
        out: list[Gauge] = []
        summ = eng.summary(now=now)
        act = summ.active_block
        blk = act.block if act is not None else None
        br = blk.burn_rate if blk is not None else None
        m = {"machine": self.machine}
        out += [
            Gauge(
                "block_active", "1 while a 5-hour billing block is active", m, 1.0 if blk else 0.0
            ),
            Gauge(
                "block_tokens",
                "tokens in the active 5-hour block",
                m,
                float(blk.total_tokens if blk is not None else 0),
            ),
            Gauge(
                "block_cost_usd",
                "cost of the active 5-hour block (USD)",
                m,
                float(blk.cost if blk is not None and not blk.is_gap else 0.0),
            ),
            Gauge(
                "block_burn_rate_tokens_per_minute",
                "active block burn rate (tokens/min)",
                m,
                float(br.tokens_per_minute if br is not None else 0.0),
            ),
            Gauge(
                "block_remaining_minutes",
                "minutes until the active block ends",
                m,
                float(act.remaining_minutes if act is not None else 0.0),
            ),
        ]
        lim = summ.token_limit.tokens
        if lim:
            out.append(
                Gauge(
                    "block_limit_tokens",
                    "block token limit (config token_limit; max: the largest completed block)",
                    m,
                    float(lim),
                )  # fmt: skip
            )
        if act is not None and act.limit_percent is not None:
            out.append(
                Gauge(
                    "block_limit_percent",
                    "active block tokens as % of token_limit",
                    m,
                    float(act.limit_percent),
                )
            )
        off = summ.official
        for window, w in (
            ("5h", off.five_hour if off else None),
            ("7d", off.seven_day if off else None),
        ):
            if w is not None:
                lab = {"window": window}
                out.append(
                    Gauge(
                        "official_used_percent",
                        "official plan utilisation reported by Claude Code (%)",
                        lab,
                        float(w.used_percentage),
                    )
                )
                if w.resets_at:
                    out.append(
                        Gauge(
                            "official_resets_at_seconds",
                            "when the official window resets (unix time)",
                            lab,
                            float(w.resets_at),
                        )
                    )
                if w.observed_at:
                    out.append(
                        Gauge(
                            "official_observed_at_seconds",
                            "when the official figure was observed (unix time)",
                            lab,
                            float(w.observed_at),
                        )
                    )
        out += budget_gauges(eng, self.env, self.machine, now)
        recs = eng.records
        if recs:
            out.append(
                Gauge(
                    "last_activity_timestamp_seconds",
                    "time of the newest response",
                    m,
                    float(recs[-1].ts),
                )
            )
        for fn in (*GAUGE_PROVIDERS, *self.providers):
            try:
                out.extend(fn(eng))
            except Exception as exc:
                log.warning("metrics provider %r failed: %s", fn, exc)
        return out


BUDGET_GAUGES = ("budget_used_ratio", "budget_used", "budget_limit", "budget_projected_ratio")


def budget_gauges(engine: Any, env: Any, machine: str, now: float) -> list[Gauge]:
    """The config's ``[[budgets]]`` in their current period (the figures of `tokmon limits`):
    used / limit, used, limit (USD or tokens, label ``unit``) and the projected ratio."""
    from tokmon import budgets as budgets_mod

    path = getattr(engine.config, "path", None) or engine.paths.config_file
    try:
        blist = budgets_mod.load(path)
        if not blist:
            return []
        rows = budgets_mod.engine_usage(engine, blist, now, env=env)
    except Exception as exc:  # a bad [[budgets]] entry must not break the metrics
        log.warning("budget gauges: %s", exc)
        return []
    out: list[Gauge] = []
    for b in rows:
        lab = {
            "budget": str(b["name"]),
            "period": b["period"],
            "unit": b["unit"],
            "machine": machine,
        }
        limit = float(b["limit"])
        out += [
            Gauge("budget_used_ratio", "budget use in its current period (1 = the limit)", lab,
                  float(b["used"]) / limit),
            Gauge("budget_used", "budget use in its current period (USD or tokens: unit)", lab,
                  float(b["used"])),
            Gauge("budget_limit", "budget limit (USD or tokens: unit)", lab, limit),
            Gauge("budget_projected_ratio", "use projected at the period's end / limit", lab,
                  float(b["projected"]) / limit),
        ]  # fmt: skip
    return out


def _cfg(cfg: Any, key: str, default: Any) -> Any:
    try:
        v = cfg.get(key)
    except Exception:
        return default
    return default if v is None else v


def _stamp(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def agent_records(engine: Any) -> list[tuple[str, list[Any]]]:
    """``(agent, records)``: Claude Code's (the ledger's) first, then every other agent with
    data when the engine reads them (``serve``, ``export``)."""
    out: list[tuple[str, list[Any]]] = [(AGENT, engine.records)]
    store = getattr(engine, "agents", None)
    if store is not None:
        try:
            out += [(a, store.records(a)) for a in store.agents_with_data()]
        except Exception as exc:  # one unreadable agent store must not break the metrics
            log.warning("metrics: cannot read the other agents' records: %s", exc)
    return out


def _counters(
    by_agent: list[tuple[str, list[Any]]],
    mm: MachineMap,
    local: str,
    projects: ProjectLabels,
    per_session: bool,
) -> Series:
    s = Series(machine=local)
    firsts = [float(recs[0].ts) for _, recs in by_agent if recs]
    if firsts:
        s.first_ts = min(firsts)
    machine_of = mm.machine_of
    has_imports = bool(mm.rows)
    # one pass: sums per (agent, model, project path, machine); labels are applied to groups
    groups: dict[tuple[str, str, str, str], list[float]] = {}
    for agent, recs in by_agent:
        imported = has_imports and agent == AGENT  # ledger imports hold Claude records only
        for r in recs:
            mach = machine_of(r, local) if imported else local
            gk = (agent, r.model, r.project, mach)
            g = groups.get(gk)
            if g is None:
                g = groups[gk] = [0, 0, 0, 0, 0.0, 0]
            g[0] += r.input_tokens
            g[1] += r.output_tokens
            g[2] += r.cache_creation_tokens
            g[3] += r.cache_read_tokens
            g[4] += r.cost
            g[5] += 1
    names = {path: project_name(path) for _, _, path, _ in groups}
    by_proj: dict[str, int] = {}
    for (_, _, path, _), g in groups.items():
        n = names[path]
        by_proj[n] = by_proj.get(n, 0) + int(g[0] + g[1] + g[2] + g[3])
    label = projects.assign(by_proj)
    tokens, cost, resp = s.tokens, s.cost, s.responses
    for (agent, model, path, mach), g in groups.items():
        proj = label[names[path]]
        ck = (agent, model, proj, mach)
        cost[ck] = cost.get(ck, 0.0) + g[4]
        resp[ck] = resp.get(ck, 0) + int(g[5])
        for tname, v in zip(TOKEN_TYPES, g[:4], strict=False):
            tk = (agent, model, tname, proj, mach)
            tokens[tk] = tokens.get(tk, 0) + int(v)
    if per_session:
        cutoff = time.time() - SESSION_WINDOW
        sess = s.session_tokens
        for agent, recs in by_agent:
            imported = has_imports and agent == AGENT
            recent = {r.session_id for r in recs if r.ts >= cutoff}
            for r in recs:
                if r.session_id in recent:
                    mach = machine_of(r, local) if imported else local
                    sk = (r.session_id, label[names[r.project]], mach)
                    sess[sk] = sess.get(sk, 0) + r.total_tokens
    return s
