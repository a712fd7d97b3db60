#!/bin/sh
# Builds the libFuzzer harnesses with clang and runs each for SECONDS.
#   tests/fuzz/run.sh SECONDS
# The build goes to build/fuzz (CITYCMD_FUZZ_BUILD overrides it). Each fuzzer
# starts from a copy of its seed corpus in a temporary directory, so the tree
# is not modified; inputs that crash are kept in BUILD/fuzz-crashes/NAME/.
# Exits non-zero when a fuzzer crashes (or the build fails).
set -eu

secs=${1:?usage: tests/fuzz/run.sh SECONDS}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${CITYCMD_FUZZ_BUILD:-$root/build/fuzz}
fuzzers="gt06 teltonika osmand"

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCITYCMD_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Debug -DCITYCMD_WEB=OFF >/dev/null
cmake --build "$build" -j"${JOBS:-1}" --target fuzz_gt06 fuzz_teltonika fuzz_osmand

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
status=0
ok=0
bad=0
for name in $fuzzers; do
    mkdir -p "$work/$name/corpus" "$work/$name/crashes"
    cp "$root/tests/fuzz/corpus/$name/"* "$work/$name/corpus/"
    echo "== fuzz_$name for ${secs}s"
    if "$build/fuzz/fuzz_$name" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$work/$name/crashes/" "$work/$name/corpus" >"$work/$name/log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units)' "$work/$name/log" || true
        ok=$((ok + 1))
    else
        status=1
        bad=$((bad + 1))
        tail -n 40 "$work/$name/log"
        mkdir -p "$build/fuzz-crashes/$name"
        cp "$work/$name/crashes/"* "$build/fuzz-crashes/$name/" 2>/dev/null || true
        echo "fuzz_$name FAILED: inputs in $build/fuzz-crashes/$name/"
    fi
done
# Counted with the other runners' totals by tools/test.sh.
echo "# pass $ok"
echo "# fail $bad"
exit $status
