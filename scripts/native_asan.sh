#!/usr/bin/env bash
# Build the native scanner with AddressSanitizer + UndefinedBehaviorSanitizer in a copy of
# the tree and run its differential and hostile tests (and the parser's, and the warm check's
# for the native stat check) against that build.
# Not part of CI (Linux, gcc or clang). Usage: scripts/native_asan.sh [python] [pytest args]
set -euo pipefail
PY=${1:-python3}
shift || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
git -C "$ROOT" ls-files -co --exclude-standard -z | (cd "$ROOT" && xargs -0 cp --parents -t "$WORK")
cd "$WORK"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
TOKMON_NATIVE_CFLAGS="$flags" "$PY" setup.py -q build_ext --inplace 2>&1 | grep -v -i "warn" || true
so=$(ls tokmon/_native/_scan*.so)
asan=$("${CC:-gcc}" -print-file-name=libasan.so)
ubsan=$("${CC:-gcc}" -print-file-name=libubsan.so)
nm -D "$so" | grep -c __asan_report >/dev/null || { echo "not instrumented: $so" >&2; exit 1; }
nm -D tokmon/_native/_stat*.so | grep -c __asan_report >/dev/null || { echo "not instrumented: _stat" >&2; exit 1; }
echo "sanitized build: $so (preloading $asan $ubsan)"
# Python itself is not instrumented: its allocations are not tracked (leak checks off)
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONPATH="$WORK"
export TOKMON_HYPOTHESIS_EXAMPLES=${TOKMON_HYPOTHESIS_EXAMPLES:-3000}
"$PY" -c "import tokmon._native._scan as m, sys; assert m.__file__.startswith('$WORK'), m.__file__; print('module:', m.__file__)"
"$PY" -m pytest -q -p no:cacheprovider -o addopts="" tests/test_native_scan.py tests/test_parser.py \
    tests/test_scan_buffers.py tests/test_warm_check.py tests/test_cellsums.py \
    tests/test_native_whole.py tests/test_stage_batches.py tests/test_native_walk.py \
    tests/test_block_spans.py "$@"
if [ -n "${TOKMON_ASAN_CORPUS:-}" ]; then  # and every file of a corpus (e.g. a generated one)
    "$PY" - "$TOKMON_ASAN_CORPUS" <<'PYEOF'
import sys
from pathlib import Path

from tokmon.core import parser
from tokmon.core.scan import scan_file

assert parser.native_scanner() is not None
paths = sorted(Path(sys.argv[1]).rglob("*.jsonl"))
rows = sum(len(scan_file(str(p), 0).rows) for p in paths)
print(f"scanned {len(paths)} files natively under the sanitizers: {rows} rows")
PYEOF
fi
