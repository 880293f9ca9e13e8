#!/bin/sh
# Build the libFuzzer targets (tests/fuzz/) with clang, AddressSanitizer and
# UBSan into build-fuzz/, and fuzz each target on a copy of its seed corpus.
#   scripts/fuzz.sh [RUNS [libFuzzer options...]]
# RUNS: executions per target (default 10000, CI's short run).  Exit status 1
# if any target crashed, leaked, hung (-timeout, 20 s) or ran out of memory:
# keep the input it wrote (build-fuzz/fuzz-<target>/crash-*) in
# tests/fuzz/crashes/<target>/ once fixed.  The long runs (10^6 executions per
# target) used -fork=1 -ignore_crashes=1 to go on past HDF5's own bugs; see
# tests/fuzz/README.md.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-10000}
[ $# -gt 0 ] && shift
scripts/setup.sh fuzz
if [ ! -f build-fuzz/build.ninja ]; then
    # no OpenMP: clang's runtime is not libgomp, and the readers fuzzed do not use threads
    # -O1: the time goes into libhdf5 (not instrumented) anyway
    CC=clang-14 meson setup build-fuzz --buildtype=plain -Doptimization=1 -Dfuzz=true \
        -Dopenmp=disabled -Dtools=false -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C build-fuzz tests/fuzz/fuzz-checkpoint tests/fuzz/fuzz-dataset tests/fuzz/fuzz-images >/dev/null
# The same options as the test suite (tests/meson.build): leaks of HDF5's own
# are suppressed, allocation failures return NULL as malloc does.
export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp
status=0
for t in checkpoint dataset images; do
    work=build-fuzz/fuzz-$t
    rm -rf "$work"
    mkdir -p "$work/corpus"
    cp tests/fuzz/corpus/$t/* "$work/corpus/"
    log=$work/log.txt
    if build-fuzz/tests/fuzz/fuzz-$t -runs="$runs" -seed=1 -timeout=20 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/corpus" >"$log" 2>&1; then
        echo "fuzz-$t: $(sed -n 's/^stat::number_of_executed_units: *//p' "$log") executions, no crash"
    else
        echo "fuzz-$t: FAILED (see $log)"; tail -n 30 "$log"; status=1
    fi
done
exit $status
