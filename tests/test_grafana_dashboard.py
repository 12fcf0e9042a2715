"""integrations/grafana/tokmon.json as Grafana reads it (no Grafana server here: it is not in
Debian's archive nor on PyPI/npm, and its licence keeps it out of the test deps).

What a Grafana import needs of the JSON, checked by hand: a current schema version (datasource
references as objects), unique panel ids, a 24-column grid without overlaps, one Prometheus
datasource reference through the ``datasource`` variable, targets with unique refIds, and
every ``$variable`` a query uses defined in the templating list (or one of Grafana's own).
Each panel's PromQL runs against a real Prometheus in test_export_prometheus.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from conftest import REPO

DASHBOARD = REPO / "integrations" / "grafana" / "tokmon.json"
# Grafana's core panel plugins this dashboard may use
PANEL_TYPES = {"stat", "gauge", "timeseries", "barchart", "bargauge", "table", "piechart", "text"}
BUILTINS = {"__range", "__rate_interval", "__interval", "__interval_ms", "__range_s"}
VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@pytest.fixture(scope="module")
def dash() -> dict[str, Any]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def variables(text: str) -> set[str]:
    return {a or b for a, b in VAR.findall(text)}


def test_top_level(dash: dict[str, Any]) -> None:
    # 36 made datasource references objects ({type, uid}); 39 is Grafana 10.4 / 11.0
    assert isinstance(dash["schemaVersion"], int) and 36 <= dash["schemaVersion"] <= 41
    assert dash["uid"] == "tokmon-team" and len(dash["uid"]) <= 40
    assert dash["title"] and isinstance(dash["panels"], list)
    assert "id" not in dash or dash["id"] is None  # an import must not overwrite another board
    assert dash["time"]["from"].startswith("now-") and dash["time"]["to"] == "now"
    # nothing refers to an import input that is not declared
    text = json.dumps(dash)
    declared = {i["name"] for i in dash.get("__inputs", [])}
    assert {m for m in re.findall(r"\$\{(DS_\w+)\}", text)} <= declared


def test_panels_grid_and_datasource(dash: dict[str, Any]) -> None:
    panels = dash["panels"]
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids)
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        assert p["type"] in PANEL_TYPES, p["type"]
        assert p["title"].strip()
        g = p["gridPos"]
        assert all(isinstance(g[k], int) for k in ("x", "y", "w", "h")), g
        assert 0 <= g["x"] and 1 <= g["w"] and g["x"] + g["w"] <= 24 and g["h"] >= 1, g
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]
        ds = {"type": "prometheus", "uid": "${datasource}"}
        assert p["datasource"] == ds, p["title"]
        targets = p["targets"]
        assert targets, p["title"]
        refs = [t["refId"] for t in targets]
        assert len(set(refs)) == len(refs), p["title"]
        for t in targets:
            assert t.get("datasource", ds) == ds
            assert t["expr"].strip()
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
            assert t["expr"].count("{") == t["expr"].count("}"), t["expr"]


def test_every_variable_is_defined(dash: dict[str, Any]) -> None:
    tvars = dash["templating"]["list"]
    names = [v["name"] for v in tvars]
    assert len(set(names)) == len(names)
    ds = next(v for v in tvars if v["name"] == "datasource")
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    defined = set(names) | BUILTINS
    # variables used before they are defined would resolve to nothing on the first load
    seen: set[str] = set()
    for v in tvars:
        q = v.get("query")
        text = q["query"] if isinstance(q, dict) else str(q or "")
        assert variables(text) <= seen, (v["name"], variables(text) - seen)
        if v["type"] == "custom":
            values = [x.strip() for x in str(q).split(",")]
            assert {o["value"] for o in v["options"]} == set(values)
            assert v["current"]["value"] in values
        seen.add(v["name"])
    for p in dash["panels"]:
        for t in p["targets"]:
            used = variables(t["expr"])
            assert used <= defined, (p["title"], used - defined)
            # the person filter follows the "Person label" choice (user / user_name)
            if "user" in used:
                assert '$person=~"$user"' in t["expr"], t["expr"]
