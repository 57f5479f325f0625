#!/usr/bin/env bash
# Builds the libFuzzer targets with clang under ASan and UBSan into build-fuzz/ and
# runs each for FUZZ_SECONDS (default 60) on a temporary copy of its seed corpus
# (docs/fuzzing.md). The repository stays unchanged. Exits non-zero if any target
# crashes, breaks a property or reports a sanitizer error; crash inputs are kept
# under build-fuzz/artifacts/<target>/ and their paths printed.
#
#   FUZZ_SECONDS=600 scripts/fuzz.sh                # longer
#   FUZZ_TARGETS="fuzz_codec" scripts/fuzz.sh       # some targets only
set -euo pipefail
cd "$(dirname "$0")/.."

# clang-14: the compiler; libclang-rt-14-dev: libFuzzer and the sanitizer runtimes
# (only Recommended by clang-14, so absent after --no-install-recommends);
# llvm-14: llvm-symbolizer, for readable stack traces. The rest builds the broker.
packages=(
  clang-14 libclang-rt-14-dev llvm-14
  cmake ninja-build pkg-config
  qt6-base-dev qt6-websockets-dev libtomlplusplus-dev libssl-dev
)
scripts/install-packages.sh "${packages[@]}"

seconds="${FUZZ_SECONDS:-60}"
targets=(${FUZZ_TARGETS:-fuzz_codec fuzz_session fuzz_frames fuzz_websocket})
# -max_len per target: a codec frame; a few broker frames around max_frame_size
# (2048 in the harness, so 1009 is reachable); a few raw WebSocket frames; an
# upgrade request or a few client frames (past the 200-byte and 256-byte small limits).
declare -A max_len=([fuzz_codec]=4096 [fuzz_session]=8192 [fuzz_frames]=4096 [fuzz_websocket]=4096)

CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMIDDLEMAN_FUZZ=ON >/dev/null
cmake --build build-fuzz --target "${targets[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer-14 || true)}"
export QT_QPA_PLATFORM=offscreen

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
summary=()
for target in "${targets[@]}"; do
  corpus="$work/corpus-$target"
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"$target"/* "$corpus"/
  artifacts="build-fuzz/artifacts/$target"
  mkdir -p "$artifacts"
  log="$work/$target.log"
  echo "== $target: ${seconds}s, -max_len=${max_len[$target]}"
  status=0
  build-fuzz/bin/"$target" "$corpus" -max_total_time="$seconds" -max_len="${max_len[$target]}" \
    -timeout=30 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n1; }
  executions="$(stat number_of_executed_units)"
  speed="$(stat average_exec_per_sec)"
  size="$(find "$corpus" -type f | wc -l)"
  if [ "$status" -ne 0 ] || grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:" "$log"; then
    failed=1
    echo "!! $target FAILED (exit $status); last lines of its log:"
    tail -n 40 "$log"
    grep -E "Test unit written to|artifact_prefix" "$log" | sed 's/^/!! crash artifact: /' || true
  fi
  line="$target: executions=${executions:-?} exec/s=${speed:-?} corpus=$size files (from $(ls tests/fuzz/corpus/"$target" | wc -l) seeds)"
  echo "$line"
  summary+=("$line")
done
echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzzing found failures; see the artifacts above (docs/fuzzing.md: make each a regression fixture)"
  exit 1
fi
