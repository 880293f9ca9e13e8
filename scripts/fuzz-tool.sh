#!/bin/sh
# Build the libFuzzer targets of the flowexp tool's parsers (tests/fuzz/
# fuzz_config.c: config files; fuzz_args.c: command-line options) with
# clang-14, AddressSanitizer and UBSan into build-fuzz-tool/, and fuzz each on
# a copy of its seed corpus.
#   scripts/fuzz-tool.sh [RUNS [libFuzzer options...]]
# RUNS: executions per target (default 10000).  Exit status 1 if a target
# crashed, leaked or hung: keep the input it wrote (build-fuzz-tool/<target>/
# crash-*) in tests/fuzz/crashes/<target>/ once fixed; the normal test suite
# replays those (meson test fuzz-replay-<target>).
set -eu
cd "$(dirname "$0")/.."
runs=${1:-10000}
[ $# -gt 0 ] && shift
command -v clang-14 >/dev/null || {
    echo "fuzz-tool: needs clang-14 (apt-get install clang-14)" >&2
    exit 2
}
B=build-fuzz-tool
# The library instrumented too (coverage feedback inside
# fxp_graph_model_config_set), without OpenMP: clang's runtime is not libgomp.
if [ ! -f $B/lib/build.ninja ]; then
    CC=clang-14 meson setup $B/lib --buildtype=debugoptimized -Dopenmp=disabled -Dtools=false \
        -Dtests=false -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C $B/lib libflowexp.a >/dev/null
flags="-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Iinclude -I$B/lib -Itools/flowexp"
libs="$B/lib/libflowexp.a $(pkg-config --libs openblas hdf5 zlib) -lm"
clang-14 $flags tests/fuzz/fuzz_config.c tools/flowexp/config.c $libs -o $B/fuzz-config
clang-14 $flags tests/fuzz/fuzz_args.c tools/flowexp/args.c -lm -o $B/fuzz-args

export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for t in config args; do
    work=$B/$t
    rm -rf "$work"
    mkdir -p "$work/corpus"
    cp tests/fuzz/corpus/$t/* "$work/corpus/"
    log=$work/log.txt
    if $B/fuzz-$t -runs="$runs" -seed=1 -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
            -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/corpus" >"$log" 2>&1; then
        echo "fuzz-$t: $(sed -n 's/^stat::number_of_executed_units: *//p' "$log") executions," \
             "$(ls "$work/corpus" | wc -l) corpus inputs, no crash"
    else
        echo "fuzz-$t: FAILED (see $log)"
        tail -n 30 "$log"
        status=1
    fi
done
exit $status
