"""Alert thresholds, fire-once state and the alert log.

Config (``[alerts]`` in the TOML config; absent table = no alerts)::

    [alerts]
    official = [80, 95, 100]   # official % of any window
    projected = [100]          # projected % at the window's reset
    block = [100]              # active 5-hour block: projected tokens, % of the token limit
    budgets = [80, 100]        # % of each [[budgets]] entry
    desktop = true             # desktop notification (Linux D-Bus, macOS, Windows)
    webhooks = ["slack://…", "discord://…", "ntfy://…", "json://host:port/path"]

Every crossing has a key (kind, window or budget, the window instance or period, the
threshold).  Firing is ``INSERT OR IGNORE`` on the unique key in the history database,
so whichever process sees the crossing first (server, CLI, statusline runner) owns it
and delivers it; the others, and the same process after a restart, see the row and stay
silent.  Delivery is at most once: a process killed mid-delivery does not retry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tokmon.limits import history

if TYPE_CHECKING:
    from tokmon.core.engine import Engine

_KEYS = {"official", "projected", "block", "budgets", "desktop", "webhooks", "terminal"}


class AlertConfigError(ValueError):
    """An invalid ``[alerts]`` table (one-line message)."""


@dataclass
class AlertConfig:
    """Validated ``[alerts]`` settings."""

    enabled: bool = False
    official: list[float] = field(default_factory=lambda: [80.0, 95.0, 100.0])
    projected: list[float] = field(default_factory=lambda: [100.0])
    block: list[float] = field(default_factory=list)
    budgets: list[float] = field(default_factory=lambda: [80.0, 100.0])
    desktop: bool = False
    terminal: bool = True
    webhooks: list[str] = field(default_factory=list)
    timezone: str | None = None  # the config's `timezone` (times in messages); None: system


def _thresholds(raw: Any, key: str) -> list[float]:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1000 for v in raw
    ):
        raise AlertConfigError(f"alerts.{key} must be a list of percentages (0 < p <= 1000)")
    return sorted({float(v) for v in raw})


def parse(raw: Any) -> AlertConfig:
    """Validate the ``alerts`` table of the config document."""
    if raw is None:
        return AlertConfig()
    if not isinstance(raw, Mapping):
        raise AlertConfigError("alerts must be a table ([alerts])")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise AlertConfigError(
            f"alerts: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    cfg = AlertConfig(enabled=True)
    for key in ("official", "projected", "block", "budgets"):
        if key in raw:
            setattr(cfg, key, _thresholds(raw[key], key))
    for key in ("desktop", "terminal"):
        if key in raw:
            if not isinstance(raw[key], bool):
                raise AlertConfigError(f"alerts.{key} must be true or false")
            setattr(cfg, key, raw[key])
    hooks = raw.get("webhooks", [])
    if isinstance(hooks, str):
        hooks = [hooks]
    if not isinstance(hooks, list) or not all(isinstance(h, str) and "://" in h for h in hooks):
        raise AlertConfigError("alerts.webhooks must be a list of notification URLs (scheme://…)")
    cfg.webhooks = list(hooks)
    return cfg


def load(config_path: Any) -> AlertConfig:
    from tokmon.budgets import BudgetError, read_sections

    try:
        doc = read_sections(config_path)
        cfg = parse(doc.get("alerts"))
    except BudgetError as exc:
        raise AlertConfigError(str(exc)) from exc
    tz = doc.get("timezone")
    cfg.timezone = tz if isinstance(tz, str) else None
    return cfg


# --------------------------------------------------------------------------- evaluation


def _inst(resets_at: float | None) -> str:
    return "none" if resets_at is None else str(int(round(resets_at / 60.0)) * 60)


def _fmt_time(ts: float | None, zone: str | None = None) -> str:
    """``Wed 14:03 UTC+14``: weekday and time in the config's zone, which it names."""
    if ts is None:
        return "?"
    from datetime import datetime

    from tokmon import fmt

    try:
        tz = fmt.zone(zone)
    except ValueError:  # a bad zone is reported by `config validate`; alerts still go out
        tz = fmt.local_zone()
    return f"{datetime.fromtimestamp(ts, tz).strftime('%a %H:%M')} {fmt.offset_label(ts, tz)}"


def candidates(
    cfg: AlertConfig,
    status: Mapping[str, Any] | None = None,
    budgets: Sequence[Mapping[str, Any]] = (),
    block: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every crossing the current figures show, each with its fire-once key."""
    out: list[dict[str, Any]] = []
    for w in (status or {}).get("windows", []):
        if w.get("basis") != "official" or w.get("officialPercent") is None:
            continue  # estimates never fire official alerts
        used = float(w["usedPercent"])
        wid = f"{w['source']}:{w['window']}:{_inst(w.get('resetsAt'))}"
        for thr in cfg.official:
            if used >= thr:
                out.append({"key": f"official:{wid}:{thr:g}", "kind": "official",
                            "subject": f"{w['label']} at {used:.0f}%", "threshold": thr,
                            "value": used,
                            "message": f"{w['label']} limit is at {used:.0f}% (threshold "
                                       f"{thr:g}%), resets {_fmt_time(w.get('resetsAt'), cfg.timezone)}"})  # fmt: skip
        proj = w.get("projectedPercent")
        if proj is not None:
            for thr in cfg.projected:
                if proj >= thr > used:
                    eta = w.get("eta")
                    out.append({"key": f"projected:{wid}:{thr:g}", "kind": "projected",
                                "subject": f"{w['label']} projected {proj:.0f}%", "threshold": thr,
                                "value": proj,
                                "message": f"{w['label']}: {used:.0f}% used, {proj:.0f}% at this "
                                           f"pace by the reset; {thr:g}% around "
                                           f"{_fmt_time(eta, cfg.timezone) if eta else 'the reset'}"})  # fmt: skip
    if block and cfg.block:
        limit = block.get("limit")
        proj = block.get("projectedTokens")
        if limit and proj is not None:
            pct = proj * 100.0 / limit
            for thr in cfg.block:
                if pct >= thr:
                    out.append({"key": f"block:{block.get('start')}:{thr:g}", "kind": "block",
                                "subject": f"5-hour block projected {pct:.0f}%", "threshold": thr,
                                "value": pct,
                                "message": f"the current 5-hour block is projected to reach "
                                           f"{int(proj):,} tokens, {pct:.0f}% of the "
                                           f"{int(limit):,}-token limit (estimate)"})  # fmt: skip
    for b in budgets:
        for thr in cfg.budgets:
            if b["percent"] >= thr:
                unit = (
                    f"${b['used']:.2f} of ${b['limit']:.2f}"
                    if b["unit"] == "usd"
                    else f"{int(b['used']):,} of {int(b['limit']):,} tokens"
                )
                out.append({"key": f"budget:{b['name']}:{b['periodKey']}:{thr:g}", "kind": "budget",
                            "subject": f"budget {b['name']} at {b['percent']:.0f}%",
                            "threshold": thr, "value": b["percent"],
                            "message": f"budget {b['name']} ({b['period']}): {unit} "
                                       f"({b['percent']:.0f}%, threshold {thr:g}%)"})  # fmt: skip
    return out


def fire(
    paths: Any,
    cfg: AlertConfig,
    cands: Sequence[Mapping[str, Any]],
    env: Mapping[str, str] | None = None,
    now: float | None = None,
    deliver: bool = True,
) -> list[dict[str, Any]]:
    """Claim every new crossing (unique key) and deliver the ones this process won."""
    if not cands:
        return []
    now = history.now() if now is None else now
    won: list[dict[str, Any]] = []
    with history.opened(paths) as con:
        with history.transaction(con):
            for c in cands:
                cur = con.execute(
                    "INSERT OR IGNORE INTO alerts(key, ts, kind, subject, threshold, value, "
                    "message, status, owner) VALUES(?,?,?,?,?,?,?,?,?)",
                    (
                        c["key"],
                        now,
                        c["kind"],
                        c["subject"],
                        c["threshold"],
                        c.get("value"),
                        c["message"],
                        "pending",
                        os.getpid(),
                    ),
                )
                if cur.rowcount == 1:
                    won.append(dict(c, ts=now))
        for a in won:
            result: dict[str, str] = {}
            if deliver:
                from tokmon.limits.notifiers import deliver as send

                result = send(a, cfg, env)
            ok = all(v.startswith("sent") for v in result.values())
            a["channels"] = result
            a["status"] = "sent" if ok else "failed"
            con.execute(
                "UPDATE alerts SET status=?, channels=? WHERE key=?",
                (a["status"], json.dumps(result), a["key"]),
            )
    return won


def log(paths: Any, limit: int = 50, after_id: int = 0) -> list[dict[str, Any]]:
    """Fired alerts, newest first (``after_id``: only rows with a larger id, oldest first)."""
    with history.opened(paths) as con:
        if after_id:
            rows = con.execute(
                "SELECT id, key, ts, kind, subject, threshold, value, message, "
                "status, channels FROM alerts WHERE id>? ORDER BY id",
                (after_id,),
            )
        else:
            rows = con.execute(
                "SELECT id, key, ts, kind, subject, threshold, value, message, "
                "status, channels FROM alerts ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        out = []
        for r in rows.fetchall():
            try:
                ch = json.loads(r[9]) if r[9] else {}
            except ValueError:
                ch = {}
            out.append({"id": r[0], "key": r[1], "ts": r[2], "kind": r[3], "subject": r[4],
                        "threshold": r[5], "value": r[6], "message": r[7], "status": r[8],
                        "channels": ch})  # fmt: skip
    return out


def block_input(engine: Engine, now: float | None = None) -> dict[str, Any] | None:
    """The active block's projection and token limit, for block alerts."""
    try:
        s = engine.summary(now=now)
    except Exception:
        return None
    from tokmon.core.timeutil import iso

    act = s.active_block
    lim = s.token_limit.tokens
    proj = act.block.projection if act is not None else None
    if act is None or proj is None or not lim:
        return None
    return {
        "start": iso(act.block.start),  # the block's id, as in the Summary's JSON
        "projectedTokens": proj.total_tokens,
        "limit": lim,
    }
