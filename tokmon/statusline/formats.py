"""Turn a line snapshot into segments and render them for each output format.

Pure functions over plain dicts (the fast snapshot, see ``snapshot.py``);
standard library only.  Time-dependent parts (time left, ages, expiry of a
block or of "today") are computed here at render time, so a snapshot stays
correct between refreshes.
"""

# No `from __future__ import annotations`: importing __future__ is a cost on the fast path.

import sys
import time

from tokmon import fmt

FORMATS = ("plain", "tmux", "starship", "bash", "zsh", "fish", "json", "claude")
LEVELS = ("normal", "warning", "critical")
DEFAULT_STYLES = {"normal": "", "warning": "yellow", "critical": "red,bold", "stale": "dim"}
PLACEHOLDER = "tokmon …"
STALE_MARK = "*"
SEPARATOR = " | "
BURN_GLYPHS = {"low": "▁", "medium": "▄", "high": "█"}
FIVE_HOURS = 5 * 3600.0

_ANSI = {
    "black": 30, "red": 31, "green": 32, "yellow": 33, "blue": 34, "magenta": 35, "cyan": 36,
    "white": 37, "default": 39, "grey": 90, "gray": 90, "bright-black": 90, "bright-red": 91,
    "bright-green": 92, "bright-yellow": 93, "bright-blue": 94, "bright-magenta": 95,
    "bright-cyan": 96, "bright-white": 97, "bold": 1, "dim": 2, "italic": 3, "underline": 4,
    "underscore": 4, "reverse": 7,
}  # fmt: skip


class TemplateError(ValueError):
    """A ``--template`` names an unknown field or is malformed."""


# --------------------------------------------------------------------------- numbers


def fmt_tokens(n: float | int | None) -> str:
    """1234 -> 1.23k, 999999 -> 1.00M (the shared rule, :func:`tokmon.fmt.tokens`)."""
    return fmt.tokens(n)


def fmt_cost(c: float | int | None) -> str:
    """$1,234.50 (the shared rule, :func:`tokmon.fmt.cost`)."""
    return fmt.cost(c)


def fmt_duration(seconds: float) -> str:
    """Seconds as 2h13m, 45m, 1d01h (the shared rule, :func:`tokmon.fmt.duration`)."""
    return fmt.duration(max(seconds, 0) / 60)


def fmt_age(seconds: float) -> str:
    """now, 3m, 2h, 4d (the shared rule, :func:`tokmon.fmt.age`)."""
    return fmt.age(seconds)


def fmt_ago(seconds: float) -> str:
    """``just now``, ``3m ago``: an age in a sentence (``now ago`` is no English)."""
    age = fmt.age(seconds)
    return "just now" if age == "now" else f"{age} ago"


def fmt_percent(p: float) -> str:
    return fmt.percent(p)


def _zone(snap: dict) -> object:
    """The snapshot's time zone (the engine's, from -z/config), else the system's."""
    try:
        return fmt.zone(snap.get("timezone") if isinstance(snap.get("timezone"), str) else None)
    except ValueError:
        return fmt.local_zone()


# --------------------------------------------------------------------------- levels


def level_for(percent: float | None, settings: dict) -> str:
    """normal / warning / critical against the configured thresholds."""
    if percent is None:
        return "normal"
    if percent >= float(settings.get("criticalPercent") or 95):
        return "critical"
    if percent >= float(settings.get("warningPercent") or 80):
        return "warning"
    return "normal"


def _worse(a: str, b: str) -> str:
    return a if LEVELS.index(a) >= LEVELS.index(b) else b


# --------------------------------------------------------------------------- segments


def official_window(official: dict | None, key: str, now: float) -> dict | None:
    """An official 5 h / 7 d figure that is still current (its window not reset yet)."""
    if not isinstance(official, dict):
        return None
    window = official.get(key)
    if not isinstance(window, dict) or not isinstance(window.get("usedPercentage"), (int, float)):
        return None
    resets = window.get("resetsAt")
    if isinstance(resets, (int, float)) and resets <= now:
        return None
    observed = window.get("observedAt", official.get("observedAt"))
    if not isinstance(observed, (int, float)):
        observed = now
    return {"usedPercentage": float(window["usedPercentage"]), "resetsAt": resets,
            "observedAt": float(observed)}  # fmt: skip


def pace_eta(window: dict | None, length: float, tz: object = None) -> str:
    """``100%@HH:MM`` when the window's pace reaches 100% before its reset, else ``""``
    (pace = the average rate since the window opened; see docs/limits.md).  ``tz`` may be
    a function returning the zone: it is called only when there is a time to show."""
    if not window or not isinstance(window.get("resetsAt"), (int, float)):
        return ""
    used, elapsed = window["usedPercentage"], window["observedAt"] - (window["resetsAt"] - length)
    if used <= 0 or elapsed < 0.01 * length or used * length / elapsed < 100:
        return ""
    eta = window["resetsAt"] - length + elapsed * 100.0 / used
    at = min(eta, window["resetsAt"])
    if callable(tz) and not hasattr(tz, "utcoffset"):
        tz = tz()
    if tz is None:
        return "100%@" + time.strftime("%H:%M", time.localtime(at))
    return "100%@" + fmt.clock(at, tz)  # type: ignore[arg-type]


def active_block(snap: dict, now: float) -> dict | None:
    """The snapshot's block if it is still active at ``now``."""
    block = snap.get("block")
    if not isinstance(block, dict):
        return None
    end = float(block.get("end") or 0)
    last = float(block.get("lastEntry") or 0)
    if now >= end or now - last >= FIVE_HOURS:
        return None
    return block


_FOLD_CASE = sys.platform == "win32"


def match_session(snap: dict, now: float, cwd: str | None, session_id: str | None) -> dict | None:
    """Most recent active session of ``session_id`` or of ``cwd``'s project (or a parent)."""
    sessions = snap.get("sessions") or []
    if session_id:
        for row in sessions:
            if isinstance(row, dict) and row.get("sessionId") == session_id:
                return row
        return None
    if not cwd:
        return None
    cwd = cwd.rstrip("/\\") or cwd
    fold = _FOLD_CASE  # Windows paths are case-insensitive (c:\users\me = C:\Users\me)
    if fold:
        cwd = cwd.lower()
    best = None
    for row in sessions:
        if not isinstance(row, dict):
            continue
        project = str(row.get("projectPath") or "").rstrip("/\\")
        if fold:
            project = project.lower()
        if not project or now - float(row.get("lastActivity") or 0) >= FIVE_HOURS:
            continue
        if cwd == project or cwd.startswith(project + "/") or cwd.startswith(project + "\\"):
            if best is None or float(row.get("lastActivity") or 0) > float(
                best.get("lastActivity") or 0
            ):
                best = row
    return best


def _short(name: str, width: int = 24) -> str:
    name = " ".join(str(name).split())
    return name if len(name) <= width else name[: width - 1] + "…"


def build_segments(
    snap: dict,
    now: float | None = None,
    cwd: str | None = None,
    session_id: str | None = None,
    claude: dict | None = None,
    *,
    explain_times: bool = True,
) -> list[dict]:
    """Segments ``{"key","text","level","explain","fields"}`` in display order.

    ``claude`` carries figures from a Claude Code statusLine payload (see
    ``claude.py``); they take precedence for the session, context and official
    utilisation segments.  ``explain_times=False`` leaves the block's start time out of
    its explanation (a prompt that shows no explanation skips loading time zones).
    """
    now = time.time() if now is None else now
    settings = snap.get("settings") or {}
    official = (claude or {}).get("official") or snap.get("official")
    segs: list[dict] = []
    local = bool(snap.get("v"))  # False: no snapshot yet (Claude figures only)

    # --- current 5-hour block
    block = active_block(snap, now)
    five = official_window(official, "fiveHour", now)
    limit = settings.get("tokenLimit")
    fields: dict[str, str] = {"block_tokens": "", "block_cost": "", "block_percent": "",
                              "time_left": "", "burn": "", "five_hour": ""}  # fmt: skip
    parts = ["5h"]
    explain = []
    percent = None
    if five is not None:
        percent = five["usedPercentage"]
        fields["five_hour"] = fmt_percent(percent)
        fields["block_percent"] = f"{fmt_percent(percent)}[{fmt_age(now - five['observedAt'])}]"
        explain.append(
            f"{fmt_percent(percent)} = Claude's official 5-hour utilisation, observed "
            f"{fmt_ago(now - five['observedAt'])} (the [age] label)"
        )
    if block is not None:
        tokens = int(block.get("totalTokens") or 0)
        fields["block_tokens"] = fmt_tokens(tokens)
        fields["block_cost"] = fmt_cost(block.get("costUSD"))
        fields["time_left"] = fmt_duration(float(block["end"]) - now)
        fields["burn"] = BURN_GLYPHS.get(str(block.get("burnLevel")), "")
        if five is None and isinstance(limit, (int, float)) and limit > 0:
            percent = tokens * 100.0 / float(limit)
            fields["block_percent"] = "~" + fmt_percent(percent)
            explain.append(
                f"~{fmt_percent(percent)} = local estimate: {fmt.integer(tokens)} tokens of a "
                f"{fmt.integer(limit)}-token limit ({settings.get('tokenLimitSource') or 'config'})"
            )
        parts += [fields["block_tokens"], fields["block_cost"]]
        if fields["block_percent"]:
            parts.append(fields["block_percent"])
        parts.append(f"{fields['time_left']} left")
        if fields["burn"]:
            parts.append(fields["burn"])
        eta5 = pace_eta(five, FIVE_HOURS, lambda: _zone(snap))
        if eta5:
            parts.append(eta5)
        start = ""
        if explain_times:
            start = " since " + fmt.clock_zoned(float(block.get("start") or 0), _zone(snap))  # type: ignore[arg-type]
        explain.insert(
            0,
            f"current 5-hour block{start}, {fmt.integer(tokens)} tokens and "
            f"{fields['block_cost']} counted from the transcripts (estimate), "
            f"{fields['time_left']} left, burn rate {block.get('burnLevel')} "
            f"({fmt.integer(block.get('tokensPerMinuteForIndicator', block.get('tokensPerMinute')))} "
            "input+output tokens/min, "
            f"{fmt_cost(block.get('costPerHour'))}/h)",
        )
    else:
        if fields["block_percent"]:
            parts.append(fields["block_percent"])
        eta5 = pace_eta(five, FIVE_HOURS, lambda: _zone(snap))
        if eta5:
            parts.append(eta5)
        if local:
            parts.append("idle")
            explain.insert(0, "no active 5-hour block in the local transcripts")
    if len(parts) > 1:
        segs.append({"key": "block", "text": " ".join(parts),
                     "level": level_for(percent, settings),
                     "explain": "; ".join(explain), "fields": fields})  # fmt: skip

    # --- official 7-day utilisation (only known from Claude Code)
    seven = official_window(official, "sevenDay", now)
    if seven is not None:
        age = fmt_age(now - seven["observedAt"])
        pct = seven["usedPercentage"]
        eta7 = pace_eta(seven, 7 * 86400.0, lambda: _zone(snap))
        segs.append({"key": "seven_day", "text": f"7d {fmt_percent(pct)}[{age}]" + (f" {eta7}" if eta7 else ""),
                     "level": level_for(pct, settings),
                     "explain": "Claude's official 7-day utilisation, observed "
                                f"{fmt_ago(now - seven['observedAt'])}",
                     "fields": {"seven_day": fmt_percent(pct)}})  # fmt: skip

    # --- today
    today = snap.get("today") or {}
    if local:
        if float(today.get("until") or 0) > now:
            cost = float(today.get("totalCost") or 0)
            tokens = int(today.get("totalTokens") or 0)
            src = f"from the transcripts for {today.get('date')}"
        else:
            cost, tokens, src = 0.0, 0, "a new day with no usage recorded yet"
        segs.append({"key": "today", "text": f"today {fmt_cost(cost)}", "level": "normal",
                     "explain": f"today's cost {fmt_cost(cost)}, {fmt.integer(tokens)} tokens, {src} "
                                "(estimate)",
                     "fields": {"today_cost": fmt_cost(cost),
                                "today_tokens": fmt_tokens(tokens)}})  # fmt: skip

    # --- the session (Claude payload, or the active session of cwd's project)
    c_session = (claude or {}).get("session")
    row = None if c_session else match_session(snap, now, cwd, session_id)
    if c_session:
        name = _short(c_session.get("name") or c_session.get("model") or "session")
        cost_text = fmt_cost(c_session.get("costUSD"))
        segs.append({"key": "session", "text": f"{name} {cost_text}", "level": "normal",
                     "explain": f"this Claude Code session ({name}): {cost_text} as reported by "
                                "Claude Code's statusLine input",
                     "fields": {"session_name": name, "session_cost": cost_text}})  # fmt: skip
    elif row is not None:
        name = _short(row.get("name") or row.get("title") or row.get("projectName") or "session")
        cost_text = fmt_cost(row.get("totalCost"))
        segs.append({"key": "session", "text": f"{name} {cost_text}", "level": "normal",
                     "explain": f"active session {row.get('sessionId')} in "
                                f"{row.get('projectPath')}: {cost_text}, "
                                f"{fmt.integer(row.get('totalTokens'))} tokens (estimate)",
                     "fields": {"session_name": name, "session_cost": cost_text}})  # fmt: skip

    # --- context window (Claude payload, or the official record of the matched session)
    ctx = (claude or {}).get("context")
    ctx_src = "Claude Code's statusLine input"
    if ctx is None and row is not None and isinstance(official, dict):
        if official.get("sessionId") == row.get("sessionId"):
            ctx = official.get("contextWindow")
            ctx_src = (
                f"Claude Code, observed {fmt_ago(now - float(official.get('observedAt') or now))}"
            )
    if isinstance(ctx, dict) and isinstance(ctx.get("usedPercentage"), (int, float)):
        pct = float(ctx["usedPercentage"])
        segs.append({"key": "context", "text": f"ctx {fmt_percent(pct)}",
                     "level": level_for(pct, settings),
                     "explain": f"context window {fmt_percent(pct)} used ({ctx_src})",
                     "fields": {"context": fmt_percent(pct)}})  # fmt: skip
    agents = agents_segment(snap, now)
    if agents is not None:
        segs.append(agents)
    return segs


def _window_label(length: object) -> str:
    if isinstance(length, (int, float)) and length > 0:
        return {18000: "5h", 604800: "7d"}.get(
            int(round(float(length))), fmt_duration(float(length))
        )
    return "?"


def _f(value: object) -> float:
    """A number from the snapshot, else 0 (a damaged snapshot never raises)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def agents_segment(snap: dict, now: float) -> dict | None:
    """The agents active in the last 5 hours with today's cost (estimates, from their logs),
    and Codex's official rate limits (``[age]`` = official, as Claude's 5 h figure)."""
    agents = snap.get("agents")
    parts: list[str] = []
    explain: list[str] = []
    fields = {"agents_list": "", "codex_primary": "", "codex_secondary": ""}
    if isinstance(agents, dict):
        today_raw = snap.get("today")
        today: dict = today_raw if isinstance(today_raw, dict) else {}
        day_ok = _f(today.get("until")) > now
        for name, row in agents.items():
            if not isinstance(row, dict) or now - _f(row.get("lastActivity")) >= FIVE_HOURS:
                continue
            cost = _f(row.get("todayCost")) if day_ok else 0.0
            parts.append(f"{name} {fmt_cost(cost)}")
            explain.append(f"{name}: active {fmt_ago(now - _f(row.get('lastActivity')))}, "
                           f"today {fmt_cost(cost)} (estimate from its logs)")  # fmt: skip
    fields["agents_list"] = ", ".join(parts)
    limits = snap.get("agentLimits")
    limits = limits.get("codex") if isinstance(limits, dict) else None
    official: list[str] = []
    if isinstance(limits, dict):
        for window in ("primary", "secondary"):
            w = limits.get(window)
            if not isinstance(w, dict) or not isinstance(w.get("usedPercent"), (int, float)):
                continue
            resets = w.get("resetsAt")
            if isinstance(resets, (int, float)) and resets <= now:
                continue  # that window has reset since: the figure is no longer current
            age = fmt_age(now - (_f(w.get("observedAt")) or now))
            label = _window_label(w.get("length"))
            text = f"{label} {fmt_percent(float(w['usedPercent']))}[{age}]"
            fields["codex_" + window] = fmt_percent(float(w["usedPercent"]))
            official.append(text)
            explain.append(f"Codex {window} window ({label}) {fmt_percent(float(w['usedPercent']))} "
                           f"used: official (Codex's rate_limits), observed "
                           f"{fmt_ago(now - (_f(w.get('observedAt')) or now))}")  # fmt: skip
    if official:
        parts.append("codex " + " ".join(official))
    if not parts or (
        not official and fields["agents_list"].startswith("claude ") and len(parts) == 1
    ):
        return None  # nothing, or Claude Code alone: `today` already says what it cost
    pcts = [float(limits[w]["usedPercent"]) for w in ("primary", "secondary")
            if isinstance(limits, dict) and fields["codex_" + w]]  # fmt: skip
    settings_raw = snap.get("settings")
    settings: dict = settings_raw if isinstance(settings_raw, dict) else {}
    return {"key": "agents", "text": " · ".join(parts),
            "level": level_for(max(pcts) if pcts else None, settings),
            "explain": "; ".join(explain), "fields": fields}  # fmt: skip


#: which segments give way first when the line must fit a width (the block never does)
DROP_ORDER = ("agents", "today", "seven_day", "session", "context")


def fit(segs: list[dict], width: int | None) -> list[dict]:
    """Drop low-priority segments until the plain line fits ``width`` columns."""
    if not width or width <= 0:
        return segs
    segs = list(segs)
    for key in DROP_ORDER:
        if len(SEPARATOR.join(s["text"] for s in segs)) <= width:
            break
        segs = [s for s in segs if s["key"] != key]
    return segs


def line_level(segs: list[dict]) -> str:
    level = "normal"
    for seg in segs:
        level = _worse(seg["level"], level)
    return level


# --------------------------------------------------------------------------- styles


def _ansi_codes(style: str) -> str:
    codes: list[str] = []
    for token in style.replace(" ", ",").split(","):
        token = token.strip().lower()
        if not token:
            continue
        if token.startswith("fg="):
            token = token[3:]
        if token in _ANSI:
            codes.append(str(_ANSI[token]))
        elif token.removeprefix("colour").removeprefix("color").isdigit():
            codes.append(f"38;5;{int(token.removeprefix('colour').removeprefix('color'))}")
        elif token.startswith("#") and len(token) == 7:
            try:
                r, g, b = (int(token[i : i + 2], 16) for i in (1, 3, 5))
            except ValueError:
                continue
            codes.append(f"38;2;{r};{g};{b}")
    return ";".join(codes)


def _tmux_style(style: str) -> str:
    out = []
    for token in style.replace(" ", ",").split(","):
        token = token.strip()
        if not token:
            continue
        if "=" in token or token in ("bold", "dim", "italics", "underscore", "reverse",
                                     "blink", "default", "none"):  # fmt: skip
            out.append(token)
        elif token == "italic":
            out.append("italics")
        else:
            out.append("fg=" + token)
    return ",".join(out)


def escape(text: str, fmt: str) -> str:
    """Escape text so the target treats it literally."""
    if fmt == "tmux":
        return text.replace("#", "##")
    if fmt == "zsh":
        return text.replace("%", "%%")
    return text


def styled(text: str, style: str, fmt: str) -> str:
    """Wrap already-escaped ``text`` in ``style`` using the format's own colour syntax."""
    if not style or not text or fmt in ("plain", "json"):
        return text
    if fmt == "tmux":
        spec = _tmux_style(style)
        return f"#[{spec}]{text}#[default]" if spec else text
    codes = _ansi_codes(style)
    if not codes:
        return text
    on, off = f"\033[{codes}m", "\033[0m"
    if fmt == "bash":  # readline's non-printing markers (what \[ \] become)
        on, off = f"\001{on}\002", f"\001{off}\002"
    elif fmt == "zsh":
        on, off = f"%{{{on}%}}", f"%{{{off}%}}"
    return f"{on}{text}{off}"


# --------------------------------------------------------------------------- render


def template_fields(segs: list[dict], fmt: str, styles: dict[str, str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key in ("block", "seven_day", "today", "session", "context", "agents"):
        fields[key] = ""
    for name in ("block_tokens", "block_cost", "block_percent", "time_left", "burn", "five_hour",
                 "seven_day_percent", "today_cost", "today_tokens", "session_name",
                 "session_cost", "context_percent", "agents_list", "codex_primary", "codex_secondary"):  # fmt: skip
        fields[name] = ""
    for seg in segs:
        fields[seg["key"]] = styled(escape(seg["text"], fmt), styles.get(seg["level"], ""), fmt)
        for name, value in seg["fields"].items():
            name = {"seven_day": "seven_day_percent", "context": "context_percent"}.get(name, name)
            fields[name] = escape(value, fmt)
    return fields


def render(
    segs: list[dict],
    fmt: str,
    styles: dict[str, str] | None = None,
    template: str | None = None,
    stale: bool = False,
) -> str:
    """One line of text in ``fmt`` (not ``json``: see :func:`render_json`)."""
    styles = {**DEFAULT_STYLES, **(styles or {})}
    if template is not None:
        fields = template_fields(segs, fmt, styles)
        try:
            text = template.format_map(fields)
        except KeyError as exc:
            raise TemplateError(
                f"unknown template field {exc.args[0]!r} (known: {', '.join(sorted(fields))})"
            ) from None
        except (ValueError, IndexError) as exc:
            raise TemplateError(f"bad template: {exc}") from None
        text = " ".join(text.split())
    else:
        sep = escape(SEPARATOR, fmt)
        text = sep.join(
            styled(escape(seg["text"], fmt), styles.get(seg["level"], ""), fmt) for seg in segs
        )
    if stale and text:
        text += styled(STALE_MARK, styles.get("stale", ""), fmt)
    return text


def render_placeholder(fmt: str, styles: dict[str, str] | None = None) -> str:
    styles = {**DEFAULT_STYLES, **(styles or {})}
    return styled(escape(PLACEHOLDER, fmt), styles.get("stale", ""), fmt)


def json_payload(segs: list[dict] | None, snap: dict | None, now: float, stale: bool) -> dict:
    """The ``--format json`` object (also used by editors and scripts)."""
    if segs is None or snap is None:
        return {"placeholder": True, "text": PLACEHOLDER, "level": "normal", "stale": True,
                "generatedAt": None, "ageSeconds": None, "segments": []}  # fmt: skip
    generated = float(snap.get("generatedAt") or 0)
    return {
        "placeholder": False,
        "text": render(segs, "plain", stale=stale),
        "level": line_level(segs),
        "stale": stale,
        "generatedAt": generated,
        "ageSeconds": round(now - generated, 3),
        "segments": [
            {"key": s["key"], "text": s["text"], "level": s["level"], "fields": s["fields"]}
            for s in segs
        ],
    }
