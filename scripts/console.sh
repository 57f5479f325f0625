#!/usr/bin/env bash
# Installs what is missing, builds, and runs the console (the broker in a window).
# Arguments go to middleman-console, e.g. scripts/console.sh --listen 127.0.0.1:9000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec build/bin/middleman-console "$@"
