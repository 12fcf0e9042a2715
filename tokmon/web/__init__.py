"""The local web dashboard (``tokmon web``) and the self-contained HTML export.

``app.py`` holds the Starlette app (secret + Host checks, JSON API over the service layer, SSE
push of the service's notifications), ``server.py`` runs it with uvicorn next to the file
watcher, ``export.py`` writes ``tokmon report --html``. The page itself lives in ``static/``
(plain JS + Chart.js, bundled; no request ever leaves the machine). See docs/web.md.
"""
