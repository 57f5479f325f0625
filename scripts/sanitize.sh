#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer (with
# LeakSanitizer): installs what is missing, builds into build-asan/ and runs ctest
# there. Any sanitizer report fails the test that caused it. The soak runs for
# MIDDLEMAN_SOAK_SECONDS (20 here unless set). Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build-asan \
  CXXFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
  LDFLAGS="-fsanitize=address,undefined" \
  scripts/bootstrap.sh
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_stack_use_after_return=1:strict_init_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export MIDDLEMAN_SOAK_SECONDS="${MIDDLEMAN_SOAK_SECONDS:-20}"
ctest --test-dir build-asan --output-on-failure "$@"
