#!/usr/bin/env bash
# Installs what is missing (nats-server and mosquitto among it), builds, and runs
# middleman-bench against middleman, nats-server and Mosquitto on loopback.
# Arguments go to middleman-bench: --quick (under 2 minutes), --smoke, --brokers,
# --scenarios, --out (docs/benchmarks.md). Results land in bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec build/bin/middleman-bench "$@"
