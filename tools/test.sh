#!/bin/bash
# Quick start, part two: installs what the tests need, builds with warnings
# as errors (plus an ASan+UBSan build), and runs the whole test suite:
# C unit tests (cmocka via ctest) on the sanitizer build, then the
# integration and browser tests (node:test) against the real binary, and the
# API and WebSocket integration tests once more against the sanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --test
t0=$SECONDS
echo "== format check (clang-format)" >&2
clang-format --dry-run --Werror $(find core gis video dispatch web tests tools -name '*.[ch]' -not -path '*/node_modules/*')
make -s all CMAKE_FLAGS=-DCITYCMD_WERROR=ON
make -s asan CMAKE_FLAGS=-DCITYCMD_WERROR=ON
echo "== build: $((SECONDS - t0)) s" >&2

echo "== unit tests (ASan+UBSan)" >&2
(cd build/asan && ctest --output-on-failure -j2)

echo "== integration tests against build/asan/citycmd (ASan+UBSan)" >&2
CITYCMD_BIN=build/asan/citycmd ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
  node --test tests/integration/http.test.mjs tests/integration/ws.test.mjs

echo "== integration and browser tests against build/citycmd" >&2
node --test tests/integration/*.test.mjs tests/browser/*.test.mjs
echo "== all tests passed in $((SECONDS - t0)) s" >&2
