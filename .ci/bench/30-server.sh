#!/usr/bin/env bash
# `tokmon serve` (issue 3): append->push latency, RSS after indexing, idle CPU.
# Once on a copy of the real corpus (typical size) and once on a generated 500 MB corpus.
set -uo pipefail
base="${TOKMON_BENCH_DIR:-${TMPDIR:-/tmp}/tokmon-bench}"
corpus="${TOKMON_TEST_CORPUS:-../shared/corpus/claude-real}"
real="$base/server-real"
rm -rf "$real" && mkdir -p "$base" && cp -r "$corpus" "$real"
echo "-- real corpus copy"
python3 bench/bench_server.py --corpus "$real" --idle 30
rc1=$?
rm -rf "$real"
echo "-- generated 500 MB corpus"
python3 bench/bench_server.py --mb 500 --keep "$base/server500" --idle 30
rc2=$?
exit $(( rc1 || rc2 ))
