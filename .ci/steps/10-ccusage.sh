# Install the reference analyzer ccusage 20.0.24 (npm) into <repo>/.cache/ccusage, idempotently.
# Used by tests/test_ccusage_parity.py and bench/bench_engine.py (found there by default, or via
# env TOKMON_CCUSAGE). Sourced by .ci/run from the repo root.
CCUSAGE_VERSION="20.0.24"
CCUSAGE_DIR=".cache/ccusage"
CCUSAGE_BIN="$CCUSAGE_DIR/node_modules/.bin/ccusage"
if [ -x "$CCUSAGE_BIN" ] && "$CCUSAGE_BIN" --version 2>/dev/null | grep -q "$CCUSAGE_VERSION"; then
    echo "ccusage $CCUSAGE_VERSION already installed in $CCUSAGE_DIR"
else
    mkdir -p "$CCUSAGE_DIR"
    npm install --prefix "$CCUSAGE_DIR" --no-audit --no-fund --loglevel=error \
        "ccusage@$CCUSAGE_VERSION" </dev/null
    "$CCUSAGE_BIN" --version
fi
