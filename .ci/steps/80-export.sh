#!/bin/sh
# Team export (issue 16): Debian's prometheus server for tests/test_export_prometheus.py.
set -eu
if command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
flock /tmp/apt.lock $SUDO sh -c 'apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus' </dev/null
