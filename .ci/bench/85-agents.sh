#!/usr/bin/env bash
# All agents on a mixed 500 MB corpus (Claude + Codex + Gemini), tokmon cold and warm side by side
# with ccusage 20.0.24's all-agent daily --json, totals checked against the generator (issue 14).
# The corpus is generated once (~10 s) and reused; 2 alternating runs keep this under ~3 min.
# tokmon is the installed copy of 05-install.sh (the report says so).
set -euo pipefail
dir="${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}/agents500"
python3 bench/bench_agents.py --mb 500 --keep "$dir" --runs 2
