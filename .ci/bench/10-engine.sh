#!/usr/bin/env bash
# Engine speed and memory against ccusage 20.0.24 on the generated 500 MB corpus (issues 7, 12):
# cold daily (exact totals vs ccusage), peak RSS per GiB, warm daily/session/blocks and reports
# after a one-line append. The corpus is cached in $TOKMON_BENCH_DIR/corpus500 (shared with the
# server, watch and web benches). The 2 GB run is manual: docs/performance.md.
# tokmon: the installed copy of 05-install.sh, run as its console script (--in-place: the old
# way, `python3 -m tokmon` on this interpreter); the report's "measured:" line says which.
# Eleven runs: the cold ratio moved by +-10% between CI runs of one build with three (the median
# of three alternating pairs follows the machine's hour), and one CI run in three of seven gave
# ~0.5x where the others gave ~0.37x; eleven cost ~20 s more than seven. --calm: each cold pair
# waits (90 s at most in all) until other processes, e.g. what the test suite left running,
# keep under 0.3 of a core busy, and a pair during which they kept 0.3 busy is measured again;
# each cold run reads the corpus again just before it (pages the OS dropped are not read from
# disk by one tool for the other): both tools are measured on the same quiet machine with the
# corpus cached. Each cold run's walls, system CPU, faults, switches and the host's steal are
# printed: a slow run says where its time went.
set -euo pipefail
python3 bench/bench_engine.py --mb 500 --runs 11 --calm 0.3 --wait 90
