#!/usr/bin/env bash
# TPM entry point: TPM runs every executable *.tmux at a plugin repository's root, so
# `set -g @plugin '<this repo>'` works; the plugin itself lives in integrations/tmux.
CURRENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$CURRENT_DIR/integrations/tmux/tokmon.tmux" "$@"
