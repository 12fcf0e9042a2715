#!/usr/bin/env bash
# `tokmon serve` (issues 3, 12): append->push latency, RSS after indexing, bytes a save writes per
# appended line, idle CPU. Once on the real corpus (read only: the appends go to a private second
# config dir) and once on the generated 500 MB corpus cached by 10-engine.sh. The 2 GB run is
# manual: docs/performance.md.
# The server is the installed copy of 05-install.sh (its "measured:" line says so).
set -uo pipefail
corpus="${TOKMON_TEST_CORPUS:-../shared/corpus/claude-real}"
echo "-- real corpus"
python3 bench/bench_server.py --corpus "$corpus" --idle 30
rc1=$?
echo "-- generated 500 MB corpus"
python3 bench/bench_server.py --mb 500 --idle 30
rc2=$?
exit $(( rc1 || rc2 ))
