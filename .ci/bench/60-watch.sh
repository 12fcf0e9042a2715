#!/usr/bin/env bash
# `tokmon watch` (issue 6, 11): startup, append->screen latency next to `tokmon serve`'s
# append->push, idle CPU. Once on a copy of the real corpus (idle 30 s, as before) and once on
# the generated 500 MB corpus that 10-engine.sh leaves in $TOKMON_BENCH_DIR/corpus500 (generated
# here if missing). About 1.5 minutes in all.
# Both surfaces run the installed copy of 05-install.sh (the first line printed says so).
set -uo pipefail
dir="${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}/corpus500"
echo "-- real corpus copy"
python3 bench/bench_watch.py --idle 30
rc1=$?
echo "-- generated 500 MB corpus"
python3 bench/bench_watch.py --mb 500 --keep "$dir" --appends 20 --idle 15
rc2=$?
exit $(( rc1 || rc2 ))
