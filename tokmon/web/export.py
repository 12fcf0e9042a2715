"""``tokmon report --html FILE``: the dashboard as one self-contained HTML file.

The page, its stylesheet, Chart.js and the data (the same service results the live page
fetches) are inlined; the file makes no network request and has no live updates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokmon.web.app import STATIC

#: session pages included (by cost); the others' rows still show in the table
DETAIL_SESSIONS = 30


def collect(service: Any) -> dict[str, Any]:
    """Every result the page needs, from a started :class:`Service`."""

    def call(method: str, params: Any = None) -> Any:
        return service.call(method, params)[0]

    summary = call("tokmon/summary")
    sessions = call("tokmon/sessions")
    top = sorted(sessions["sessions"], key=lambda r: -r["totalCost"])[:DETAIL_SESSIONS]
    return {
        "generatedAt": summary["generatedAt"],
        "summary": summary,
        "sessions": sessions,
        "blocks": call("tokmon/blocks"),
        "official": call("tokmon/official"),
        "limits": call("tokmon/limits"),
        "series": {
            f"{p}/{b}": call("tokmon/series", {"period": p, "by": b})
            for p in ("day", "week")
            for b in ("model", "project", "agent")
        },
        "sessionDetails": {
            r["sessionId"]: call("tokmon/session", {"sessionId": r["sessionId"]}) for r in top
        },
    }


def _script(code: str) -> str:
    # "</script" inside inline code would end the element early
    return "<script>" + code.replace("</script", "<\\/script") + "</script>"


def render(data: dict[str, Any]) -> str:
    """The HTML text: index.html with every asset and the data inline."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    css = (STATIC / "app.css").read_text(encoding="utf-8")
    chart = (STATIC / "chart.umd.min.js").read_text(encoding="utf-8")
    app = (STATIC / "app.js").read_text(encoding="utf-8")
    # JSON inside <script>: escape "<" so no session title can close the element
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    blob = blob.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    parts = {
        '<link rel="stylesheet" href="/static/app.css">': "<style>" + css + "</style>",
        '<script src="/static/chart.umd.min.js" defer></script>': "",
        '<script src="/static/app.js" defer></script>': "",
    }
    for old, new in parts.items():
        if old not in html:
            raise RuntimeError(f"index.html changed: {old!r} not found")
        html = html.replace(old, new, 1)
    tail = _script(chart) + _script("window.TOKMON_EMBED=" + blob + ";") + _script(app)
    return html.replace("</body>", tail + "\n</body>", 1)


def write_report(service: Any, path: Path) -> int:
    """Write the export to ``path`` (0600); returns its size in bytes."""
    from tokmon.fsutil import atomic_write

    text = render(collect(service)).encode("utf-8")
    atomic_write(path, text)
    return len(text)
