"""`tokmon stats` with other agents' data: the per-agent table renders (table and JSON)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import need_agents_corpus, run_tokmon

# Codex total after its two documented double counts are removed (docs/agents/codex.md)
CODEX_TOTAL = 71_217_150
AMP_TOTAL = 114_201  # the corpus README's reference


def test_stats_shows_every_agent_with_data(env: dict[str, str], tmp_path: Path) -> None:
    src = need_agents_corpus()
    for name in ("codex", "amp"):
        shutil.copytree(src / name, tmp_path / name)
    e = {
        **env,
        "CODEX_HOME": str(tmp_path / "codex"),
        "AMP_DATA_DIR": str(tmp_path / "amp"),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "no-claude"),
    }
    (tmp_path / "no-claude" / "projects").mkdir(parents=True)
    table = run_tokmon(["stats"], e)
    assert table.returncode == 0, table.stderr
    assert "Traceback" not in table.stderr
    rows = {ln.split()[0]: ln.split() for ln in table.stdout.splitlines() if ln.strip()}
    assert f"{CODEX_TOTAL:,}" in rows["codex"] and f"{AMP_TOTAL:,}" in rows["amp"]
    data = json.loads(run_tokmon(["stats", "--json"], e).stdout)
    assert data["agents"]["codex"]["totals"]["totalTokens"] == CODEX_TOTAL
    assert data["agents"]["amp"]["totals"]["totalTokens"] == AMP_TOTAL
