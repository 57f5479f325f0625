#!/usr/bin/env bash
# Installs what is missing, builds, and runs the broker (default: ws://127.0.0.1:8765,
# with a generated service key and client key printed at start). Extra arguments go
# to the broker, e.g. scripts/run.sh --config resources/middleman.example.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec build/bin/middleman "$@"
