#!/bin/sh
# End-to-end runs of the flowexp program on tiny budgets: data, train, eval,
# sample, info, exact resumption, SIGINT, run directories, and bad input
# (clear message, non-zero exit, no partial output).
# Usage: check-cli.sh path/to/flowexp
set -u
F=$1
# On a shared machine, spinning OpenMP threads make 2-thread runs many times
# slower (docs/performance.md, "Threads"); sleeping ones cost nothing here.
export OMP_WAIT_POLICY=passive
T=$(mktemp -d /tmp/fxp-cli-XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fails=0
ok()   { printf 'ok   %s\n' "$1"; }
nll()  { sed 's/.*"nll_nats_per_node": \([^,]*\),.*/\1/' "$1"; }
have_py=0; /usr/bin/python3 -c 'import json' 2>/dev/null && have_py=1
# valid_json FILE DESCRIPTION: python's parser accepts it (skipped without python)
valid_json() {
    if [ $have_py -eq 0 ]; then echo "skip $2 (no python3)"; return; fi
    /usr/bin/python3 -m json.tool "$1" >/dev/null 2>&1 && ok "$2" || fail "$2: $(cat "$1")"
}
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
small="--threads 1 --quiet --set batch=32 --set couplings=2 --set hidden=16"
common="--data $T/d.h5 $small"
expect 0 "train gnf-gce 40 steps" -- "$F" train --model gnf-gce $common --out "$T/full" --steps 40 --seed 7
for f in checkpoint.h5 best.h5 log.csv; do
    [ -s "$T/full/$f" ] && ok "wrote $f" || fail "missing $f"
done
[ "$(wc -l < "$T/full/log.csv")" -ge 3 ] && ok "log.csv has rows" || fail "log.csv rows"
expect 0 "eval --json" -- "$F" eval --checkpoint "$T/full/checkpoint.h5" --data "$T/d.h5" --split test --json
grep -q '"nll_nats_per_node"' "$T/out" && grep -q '"n_graphs": 64' "$T/out" && ok "eval JSON fields" || fail "eval JSON: $(cat "$T/out")"
valid_json "$T/out" "eval JSON parses"
full=$(nll "$T/out")
expect 0 "eval on the second file" -- "$F" eval --checkpoint "$T/full/checkpoint.h5" --data "$T/d2.h5" --json
[ "$(nll "$T/out")" = "$full" ] && ok "same seed, same data" || fail "data not deterministic"
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
[ "$(nll "$T/out")" = "$full" ] && ok "resume is bit-identical" || fail "resume differs: $(cat "$T/out") vs $full"

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

# ---- run directories and the options of a run ---------------------------------------
expect 2 "train refuses a directory holding a run" -- "$F" train --model gnf $common --out "$T/full" --steps 5
grep -q -- "--resume" "$T/err" && grep -q -- "--force" "$T/err" && ok "  and says how to go on" || fail "  message: $(cat "$T/err")"
[ "$(cut -d, -f1 "$T/full/log.csv" | tail -1)" = 40 ] && ok "  the run is untouched" || fail "  run changed"
cp -r "$T/full" "$T/forced"
expect 0 "--force starts over" -- "$F" train --model gnf $common --out "$T/forced" --steps 4 --eval-every 2 --force
[ "$(cut -d, -f1 "$T/forced/log.csv" | tail -1)" = 4 ] && ok "  with a new log" || fail "  log: $(cat "$T/forced/log.csv")"
expect 2 "--force with --resume" -- "$F" train --out "$T/forced" --resume --force
expect 2 "--out is a file" -- "$F" train --model gnf $common --out "$T/d.h5" --steps 2
# --eval-every and --data are part of the run: a resume keeps them
expect 0 "run with --eval-every 3" -- "$F" train --model gnf $common --out "$T/keep" --steps 9 --eval-every 3 --ckpt-every 2
expect 0 "resume without --data" -- "$F" train --out "$T/keep" --resume --quiet --threads 1 --steps 15
[ "$(cut -d, -f1 "$T/keep/log.csv" | tr '\n' ' ')" = "step 3 6 9 12 15 " ] && ok "  validation every 3 kept" ||
    fail "  log steps: $(cut -d, -f1 "$T/keep/log.csv" | tr '\n' ' ')"
expect 2 "resume with --eval-every" -- "$F" train --out "$T/keep" --resume --eval-every 5
expect 2 "resume with --seed" -- "$F" train --out "$T/keep" --resume --seed 4
"$F" data mog --dataset mog9 --seed 1 --out "$T/d9.h5" --n-train 64 --n-valid 32 --n-test 32 --entropy-samples 50 >/dev/null
expect 2 "resume on another dataset" -- "$F" train --out "$T/keep" --resume --data "$T/d9.h5"
expect 0 "info" -- "$F" info "$T/keep/checkpoint.h5"
grep -q "step 15 of 15" "$T/out" && grep -q "mog4" "$T/out" && grep -q "validation every 3" "$T/out" &&
    ok "  info shows dataset, progress and schedule" || fail "  info: $(cat "$T/out")"
expect 0 "info --json" -- "$F" info "$T/keep/best.h5" --json
valid_json "$T/out" "  info JSON parses"
grep -q '"best_valid_nll": [0-9]' "$T/out" && ok "  with the best validation NLL" || fail "  info JSON: $(cat "$T/out")"
expect 2 "info without a file" -- "$F" info
expect 1 "info on a data file" -- "$F" info "$T/d.h5"

# a fresh run that fails leaves nothing behind (huge values without actnorm:
# the gradient overflows at step 1)
if /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
    /usr/bin/python3 - "$T/huge.h5" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    for split in ("train", "valid"):
        f[split] = np.full((64, 4, 2), 3e38, dtype=np.float32)
EOF
    expect 1 "train fails at step 1" -- "$F" train --model gnf $small --set actnorm=0 --data "$T/huge.h5" --out "$T/failed" --steps 5
    [ ! -e "$T/failed" ] && ok "  no directory left" || fail "  left: $(ls -A "$T/failed")"
    mkdir "$T/mine"; echo notes > "$T/mine/notes.txt"
    expect 1 "train fails in an existing directory" -- "$F" train --model gnf $small --set actnorm=0 --data "$T/huge.h5" --out "$T/mine" --steps 5
    [ "$(ls -A "$T/mine")" = notes.txt ] && ok "  only the user's file is left" || fail "  left: $(ls -A "$T/mine")"
else
    echo "skip failing-run checks (no h5py)"
fi

# ---- configuration keys, config files ------------------------------------------------
expect 0 "--set help=1 lists the keys" -- "$F" train --model gnf-gce --set help=1
grep -q "gce_terms_train *6 .*series terms" "$T/out" && ok "  with defaults and meanings" || fail "  keys: $(head -3 "$T/out")"
[ "$(grep -c '^  [a-z_0-9]* ' "$T/out")" -ge 20 ] && ok "  every key" || fail "  too few keys"
expect 0 "--list-keys" -- "$F" train --model coupling --list-keys
expect 2 "--list-keys without --model" -- "$F" train --list-keys
"$F" train --help > "$T/help" 2>&1
grep -q OMP_NUM_THREADS "$T/help" && grep -q -- "--list-keys" "$T/help" && ! grep -q "help=1 lists" "$T/help" &&
    ok "train --help documents threads and --list-keys" || fail "train --help"
printf 'hidden = 16\ncouplings = 2 # two\n\n# comment\nbatch=16\n' > "$T/ok.cfg"
expect 0 "config file" -- "$F" train --model gnf $common --config "$T/ok.cfg" --out "$T/cfg" --steps 2
mkdir "$T/cfgdir"
expect 2 "--config naming a directory" -- "$F" train --model gnf $common --config "$T/cfgdir" --out "$T/x" --steps 2
printf 'hidden = 16\nbatch = 1\0 6\n' > "$T/nul.cfg"
expect 2 "config file with a NUL byte" -- "$F" train --model gnf $common --config "$T/nul.cfg" --out "$T/x" --steps 2
grep -q "nul.cfg:2" "$T/err" && ok "  names the line" || fail "  message: $(cat "$T/err")"
printf 'hidden = 16\nhidden = 8\n' > "$T/dup.cfg"
expect 2 "config file setting a key twice" -- "$F" train --model gnf $common --config "$T/dup.cfg" --out "$T/x" --steps 2
awk 'BEGIN { printf "hidden = "; for (i = 0; i < 5000; i++) printf "1"; printf "\n" }' > "$T/long.cfg"
expect 2 "config file with a 5000-byte line" -- "$F" train --model gnf $common --config "$T/long.cfg" --out "$T/x" --steps 2
printf '= 3\n' > "$T/nokey.cfg"
expect 2 "config line without a key" -- "$F" train --model gnf $common --config "$T/nokey.cfg" --out "$T/x" --steps 2
expect 2 "config file missing" -- "$F" train --model gnf $common --config "$T/none.cfg" --out "$T/x" --steps 2
[ ! -e "$T/x" ] && ok "no run directory after usage errors" || fail "run directory created"

# ---- eval: JSON escaping, data of another dataset -----------------------------------
q="$T/we\"ird\\dir"
mkdir "$q" && cp "$T/full/checkpoint.h5" "$q/c.h5" && cp "$T/d.h5" "$q/d.h5"
expect 0 "eval --json with a quote and a backslash in the paths" -- "$F" eval --checkpoint "$q/c.h5" --data "$q/d.h5" --json
valid_json "$T/out" "  the JSON parses"
expect 0 "eval of a MoG-4 model on MoG-9 graphs" -- "$F" eval --checkpoint "$T/full/checkpoint.h5" --data "$T/d9.h5" --json
grep -q "warning: the model was trained on mog4 but the data is mog9" "$T/err" && ok "  warns on stderr" || fail "  no warning: $(cat "$T/err")"
grep -q "4 nodes; these have 9" "$T/err" && ok "  and names the node counts" || fail "  no node warning"
grep -q '"warnings": \["' "$T/out" && ok "  and in the JSON" || fail "  JSON: $(cat "$T/out")"
expect 0 "eval on its own dataset" -- "$F" eval --checkpoint "$T/full/checkpoint.h5" --data "$T/d.h5"
[ ! -s "$T/err" ] && ok "  no warning" || fail "  unexpected: $(cat "$T/err")"

# ---- sample: checks before drawing, no partial output, bounded memory ----------------
if /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
    /usr/bin/python3 - "$T/f3.h5" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["test"] = np.zeros((10, 4, 3), dtype=np.float32)
EOF
    expect 1 "sample --png --data with 3 features" -- "$F" sample --checkpoint "$T/full/checkpoint.h5" --n 5 --out "$T/p.h5" --png "$T/p.png" --data "$T/f3.h5"
    grep -q "3 features" "$T/err" && ok "  names the feature counts" || fail "  message: $(cat "$T/err")"
fi
expect 2 "sample --data without --png" -- "$F" sample --checkpoint "$T/full/checkpoint.h5" --n 5 --out "$T/p.h5" --data "$T/d.h5"
expect 1 "sample whose --png cannot be written" -- "$F" sample --checkpoint "$T/full/checkpoint.h5" --n 5 --out "$T/p.h5" --png "$T/no/p.png"
[ ! -e "$T/p.h5" ] && [ ! -e "$T/p.png" ] && ok "  leaves neither file" || fail "  partial output"
touch "$T/s2.h5.tmp.2147483646" "$T/s2.h5.tmp.$$"
expect 0 "sample removes a killed sample's temporary" -- "$F" sample --checkpoint "$T/full/checkpoint.h5" --n 5 --out "$T/s2.h5"
[ ! -e "$T/s2.h5.tmp.2147483646" ] && [ -e "$T/s2.h5.tmp.$$" ] && ok "  and keeps a live one's" || fail "  temporaries: $(ls "$T" | grep s2)"
rm -f "$T/s2.h5.tmp.$$"
cp "$T/s.h5" "$T/keep.h5"
expect 1 "sample over an existing file fails" -- "$F" sample --checkpoint "$T/full/checkpoint.h5" --n 5 --out "$T/keep.h5" --png "$T/no/p.png"
cmp -s "$T/s.h5" "$T/keep.h5" && ok "  the old file is intact" || fail "  old file changed"
expect 1 "sample that cannot fit on disk fails at once" -- "$F" sample --checkpoint "$T/full/checkpoint.h5" --n 1000000000 --nodes 4096 --out "$T/huge.h5"
grep -q "free" "$T/err" && ok "  says so" || fail "  message: $(cat "$T/err")"
[ -z "$(ls "$T" | grep 'huge.h5.tmp')" ] && ok "  no temporary left" || fail "  temporary left"
# 300000 graphs under a 1 GB address-space limit: the whole draw held in
# memory (as before batching) needed several GB
# (AddressSanitizer reserves terabytes of address space: no limit under it)
limit="ulimit -v 1000000"
ldd "$F" 2>/dev/null | grep -q libasan && limit=true
( $limit && "$F" sample --checkpoint "$T/full/checkpoint.h5" --n 300000 --threads 1 --out "$T/many.h5" ) >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && grep -q "300000 graphs" "$T/out" && ok "sample 300000 graphs in 1 GB of address space" ||
    fail "sample under a memory limit: $(cat "$T/err")"
expect 0 "eval reads the big sample file" -- "$F" eval --checkpoint "$T/full/checkpoint.h5" --data "$T/many.h5" --split samples --json
grep -q '"n_graphs": 300000' "$T/out" && ok "  all 300000 graphs" || fail "  eval: $(cat "$T/out")"

echo "$fails failure(s)"
[ $fails -eq 0 ]
