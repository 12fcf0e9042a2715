#!/usr/bin/env bash
# The VS Code extension (integrations/vscode): install from the lockfile, strict type check,
# lint, unit tests, the integration test against the real Python server, `vsce package`, and
# the check of the .vsix contents.  Needs Node >= 20 and npm; tokmon importable by python3
# (or $TOKMON_PYTHON).  Idempotent, non-interactive.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../integrations/vscode"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node/npm not found: cannot test the VS Code extension" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "Node $(node -v) is too old for the VS Code extension's tooling (needs >= 20)" >&2
  exit 1
fi
# the corpora's tests fail when a corpus is missing only where the run is CI's (CI=true, as
# pytest's conftest decides); elsewhere they skip. CI=1 below is for npm and vitest.
case "${CI:-}" in
  1 | true | TRUE | True | yes) export TOKMON_CORPORA_REQUIRED=1 ;;
  *) export TOKMON_CORPORA_REQUIRED=0 ;;
esac
export npm_config_update_notifier=false CI=1
echo "-- npm ci"
npm ci --no-audit --no-fund --loglevel=error </dev/null
echo "-- tsc (strict)"
npx --no-install tsc --noEmit -p . </dev/null
echo "-- eslint"
npx --no-install eslint . </dev/null
echo "-- unit tests"
npx --no-install vitest run --project unit </dev/null
echo "-- integration test (real tokmon server over vscode-jsonrpc)"
npx --no-install vitest run --project integration </dev/null
echo "-- vsce package"
rm -f tokmon.vsix
npx --no-install vsce package --no-dependencies -o tokmon.vsix </dev/null
echo "-- .vsix contents"
npx --no-install vitest run --project vsix </dev/null
echo "-- the packaged bundle activated against the real server (stand-in vscode module)"
npx --no-install vitest run --project bundle </dev/null
