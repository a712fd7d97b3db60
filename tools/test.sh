#!/bin/bash
# Quick start, part two: installs what the tests need, builds with warnings
# as errors (plus an ASan+UBSan build), and runs the whole test suite:
# C unit tests (cmocka via ctest) on the sanitizer build; a bounded fuzz
# run of each protocol decoder; the integration
# tests against the sanitizer build (leak checks at exit); then the
# integration and browser tests against the release binary. Ends with one
# line totalling every runner's counts.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --test
t0=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== format check (clang-format)" >&2
clang-format --dry-run --Werror $(find core gis video dispatch web tests tools -name '*.[ch]' -not -path '*/node_modules/*')
make -s all CMAKE_FLAGS=-DCITYCMD_WERROR=ON
make -s asan CMAKE_FLAGS=-DCITYCMD_WERROR=ON
echo "== build: $((SECONDS - t0)) s" >&2

echo "== unit tests (ASan+UBSan)" >&2
(cd build/asan && ctest --output-on-failure --no-tests=error -j2) | tee -a "$log"

echo "== fuzzing the device protocol decoders (libFuzzer, 20 s each)" >&2
JOBS=2 tests/fuzz/run.sh 20 | tee -a "$log"

echo "== integration tests against build/asan/citycmd (ASan+UBSan, leak checks at exit)" >&2
# A small quarantine keeps ASan's own memory out of the RSS bounds the tests
# check; CITYCMD_MEMORY_FACTOR scales those bounds for shadow memory.
CITYCMD_BIN=build/asan/citycmd CITYCMD_MEMORY_FACTOR=2 \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=4 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  node --test tests/integration/http.test.mjs tests/integration/ws.test.mjs \
  tests/integration/redis.test.mjs tests/integration/lifecycle.test.mjs \
  tests/integration/admin.test.mjs tests/integration/auth.test.mjs \
  tests/integration/tls.test.mjs tests/integration/gis.test.mjs \
  tests/integration/incidents.test.mjs tests/integration/live.test.mjs \
  tests/integration/units.test.mjs tests/integration/gps.test.mjs \
  tests/integration/geofences.test.mjs tests/integration/routing.test.mjs \
  tests/integration/pipes.test.mjs tests/integration/cameras.test.mjs \
  tests/integration/onvif.test.mjs | tee -a "$log"
# The video test's server runs GStreamer, whose quarks outgrow GLib's first
# block of them (left behind on purpose; tests/lsan.supp): LeakSanitizer
# matches that only with whole stacks, which cost too much for the rest.
CITYCMD_BIN=build/asan/citycmd CITYCMD_MEMORY_FACTOR=2 \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=4:fast_unwind_on_malloc=0 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  node --test tests/integration/video.test.mjs | tee -a "$log"

echo "== integration and browser tests against build/citycmd" >&2
node --test tests/integration/*.test.mjs tests/browser/*.test.mjs | tee -a "$log"

# ctest: "100% tests passed, 0 tests failed out of 5"; node: "# pass N", "# fail N".
passed=$(awk '/tests passed, .* tests failed out of/ {n+=$NF-$4} /^# pass / {n+=$3} END {print n+0}' "$log")
failed=$(awk '/tests passed, .* tests failed out of/ {n+=$4} /^# fail / {n+=$3} END {print n+0}' "$log")
echo "== all tests finished in $((SECONDS - t0)) s" >&2
echo "tests: $passed passed, $failed failed"
