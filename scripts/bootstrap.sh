#!/usr/bin/env bash
# Installs whatever Debian packages are missing, then configures and builds into build/.
# Idempotent: a second run installs nothing and rebuilds only what changed.
# BUILD_DIR chooses another build directory; CXXFLAGS and LDFLAGS, read by cmake
# when it first configures one, other flags (as scripts/sanitize.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build g++ pkg-config
  qt6-base-dev qt6-websockets-dev
  libtomlplusplus-dev
  libssl-dev libssl3 openssl
  fonts-dejavu-core
  libboost-dev nats-server mosquitto
)
scripts/install-packages.sh "${packages[@]}"

build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build"
