#!/bin/sh
# End-to-end runs of the flowexp program on tiny budgets: data, train, eval,
# sample, exact resumption, SIGINT, and bad input (clear message, non-zero
# exit, no partial output).  Usage: check-cli.sh path/to/flowexp
set -u
F=$1
T=$(mktemp -d /tmp/fxp-cli-XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fails=0
ok()   { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; fails=$((fails + 1)); }
# expect STATUS DESCRIPTION -- command...: exit status and a non-empty stderr on failure
expect() {
    want=$1; what=$2; shift 3
    "$@" >"$T/out" 2>"$T/err"; got=$?
    if [ "$got" -ne "$want" ]; then fail "$what (exit $got, want $want): $(cat "$T/err")"; return; fi
    if [ "$want" -ne 0 ] && [ ! -s "$T/err" ]; then fail "$what: no message"; return; fi
    ok "$what"
}

expect 0 "help" -- "$F" help
expect 0 "train --help" -- "$F" train --help
expect 2 "no command" -- "$F"
expect 2 "unknown command" -- "$F" frobnicate
expect 0 "data mog4" -- "$F" data mog --dataset mog4 --seed 3 --out "$T/d.h5" --n-train 256 --n-valid 64 --n-test 64 --entropy-samples 200
expect 2 "data: unknown dataset" -- "$F" data mog --dataset mog5 --out "$T/x.h5"
expect 2 "data: missing --out" -- "$F" data mog --dataset mog4
expect 1 "data: unwritable directory" -- "$F" data mog --dataset mog4 --out "$T/none/x.h5" --n-train 8 --n-valid 8 --n-test 8 --entropy-samples 10
[ ! -e "$T/none" ] && ok "no partial output directory" || fail "partial output"
ls "$T" | grep -q tmp && fail "temporary file left behind" || ok "no temporary files"

# same data twice from one seed: identical eval-relevant content
expect 0 "data again" -- "$F" data mog --dataset mog4 --seed 3 --out "$T/d2.h5" --n-train 256 --n-valid 64 --n-test 64 --entropy-samples 200

# training, evaluation, sampling
common="--data $T/d.h5 --threads 1 --quiet --set batch=32 --set couplings=2 --set hidden=16"
expect 0 "train gnf-gce 40 steps" -- "$F" train --model gnf-gce $common --out "$T/full" --steps 40 --seed 7
for f in checkpoint.h5 best.h5 log.csv; do
    [ -s "$T/full/$f" ] && ok "wrote $f" || fail "missing $f"
done
[ "$(wc -l < "$T/full/log.csv")" -ge 3 ] && ok "log.csv has rows" || fail "log.csv rows"
expect 0 "eval --json" -- "$F" eval --checkpoint "$T/full/checkpoint.h5" --data "$T/d.h5" --split test --json
grep -q '"nll_nats_per_node"' "$T/out" && grep -q '"n_graphs": 64' "$T/out" && ok "eval JSON fields" || fail "eval JSON: $(cat "$T/out")"
full=$(cat "$T/out")
expect 0 "eval on the second file" -- "$F" eval --checkpoint "$T/full/checkpoint.h5" --data "$T/d2.h5" --json
[ "$(cat "$T/out")" = "$full" ] && ok "same seed, same data" || fail "data not deterministic"
if "$F" version | grep -q 'figures: none'; then
    expect 0 "sample (no figures in this build)" -- "$F" sample --checkpoint "$T/full/checkpoint.h5" --n 50 --out "$T/s.h5"
else
    expect 0 "sample with png" -- "$F" sample --checkpoint "$T/full/checkpoint.h5" --n 50 --out "$T/s.h5" --png "$T/s.png" --data "$T/d.h5"
    head -c 8 "$T/s.png" | od -An -c | grep -q 'P   N   G' && ok "PNG signature" || fail "not a PNG"
fi
expect 0 "eval accepts the sample file" -- "$F" eval --checkpoint "$T/full/checkpoint.h5" --data "$T/s.h5" --split samples --json

# exact resumption: 20 + 20 steps equal 40 steps
expect 0 "train first half" -- "$F" train --model gnf-gce $common --out "$T/half" --steps 20 --seed 7
expect 0 "resume to 40" -- "$F" train --data "$T/d.h5" --threads 1 --quiet --out "$T/half" --steps 40 --resume
expect 0 "eval resumed" -- "$F" eval --checkpoint "$T/half/checkpoint.h5" --data "$T/d.h5" --split test --json
[ "$(cat "$T/out")" = "$full" ] && ok "resume is bit-identical" || fail "resume differs: $(cat "$T/out") vs $full"

# SIGINT saves a checkpoint and exits 130; it resumes
"$F" train --model gnf $common --out "$T/int" --steps 1000000 --seed 1 >/dev/null 2>"$T/err" &
pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    [ -s "$T/int/checkpoint.h5" ] && break; sleep 0.5
done
sleep 0.5
kill -INT $pid; wait $pid; st=$?
[ $st -eq 130 ] && ok "SIGINT exits 130" || fail "SIGINT exit $st: $(cat "$T/err")"
expect 0 "resume after SIGINT" -- "$F" train --data "$T/d.h5" --threads 1 --quiet --out "$T/int" --resume --time-limit 1

# bad input
expect 2 "train: missing --data" -- "$F" train --model gnf --out "$T/x"
expect 2 "train: unknown flag" -- "$F" train --model gnf --data "$T/d.h5" --out "$T/x" --bogus 1
expect 2 "train: bad model" -- "$F" train --model resnet --data "$T/d.h5" --out "$T/x"
expect 2 "train: bad --set key" -- "$F" train --model gnf --data "$T/d.h5" --out "$T/x" --set nosuch=1
expect 2 "train: bad --set value" -- "$F" train --model gnf --data "$T/d.h5" --out "$T/x" --set hidden=-3
expect 2 "train: non-numeric steps" -- "$F" train --model gnf --data "$T/d.h5" --out "$T/x" --steps ten
expect 1 "train: missing data file" -- "$F" train --model gnf --data "$T/nope.h5" --out "$T/x"
printf 'not hdf5' > "$T/text.h5"
expect 1 "train: not an HDF5 file" -- "$F" train --model gnf --data "$T/text.h5" --out "$T/x"
expect 1 "eval: split missing" -- "$F" eval --checkpoint "$T/full/checkpoint.h5" --data "$T/d.h5" --split nope
expect 1 "eval: data is a checkpoint (no such split)" -- "$F" eval --checkpoint "$T/full/checkpoint.h5" --data "$T/full/checkpoint.h5"
head -c 3000 "$T/full/checkpoint.h5" > "$T/cut.h5"
expect 1 "eval: truncated checkpoint" -- "$F" eval --checkpoint "$T/cut.h5" --data "$T/d.h5"
expect 1 "eval: data file as checkpoint" -- "$F" eval --checkpoint "$T/d.h5" --data "$T/d.h5"
expect 2 "train --resume without a checkpoint" -- "$F" train --data "$T/d.h5" --out "$T/empty" --resume
expect 1 "sample: missing checkpoint" -- "$F" sample --checkpoint "$T/nope.h5" --n 5 --out "$T/y.h5"
expect 1 "sample: unwritable output" -- "$F" sample --checkpoint "$T/full/checkpoint.h5" --n 5 --out "$T/no/dir/y.h5"
[ ! -e "$T/y.h5" ] && ok "no output after failures" || fail "output written after failure"

echo "$fails failure(s)"
[ $fails -eq 0 ]
