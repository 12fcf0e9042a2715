#!/usr/bin/env bash
# Team export (issue 16): Debian's prometheus server for tests/test_export_prometheus.py
# (the Python deps prometheus-client / opentelemetry-* come from pyproject).
set -euo pipefail
if ! command -v prometheus >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    install='apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus'
    sudo=""
    if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
    if command -v flock >/dev/null 2>&1; then
      flock /tmp/apt.lock $sudo sh -c "$install" </dev/null
    else
      $sudo sh -c "$install" </dev/null
    fi
  else
    echo "prometheus is not installed and apt-get is unavailable: export tests will fail under CI" >&2
  fi
fi
prometheus --version 2>&1 | head -1 || true
python3 -c "import prometheus_client, opentelemetry.sdk, opentelemetry.proto; print('export deps ok')"
