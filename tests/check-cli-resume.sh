#!/bin/sh
# A run killed (SIGKILL) at random points and resumed each time ends exactly
# like an uninterrupted one: the same log.csv (apart from the wall-time
# column), bit-identical checkpoint.h5 and best.h5 parameters, and no
# temporary files left.  Also: stale temporaries are removed at start, a
# log without its header is repaired, and every garbled run-state value of a
# checkpoint is refused with a message.   Usage: check-cli-resume.sh flowexp
set -u
F=$1
# On a shared machine, spinning OpenMP threads make 2-thread runs many times
# slower (docs/performance.md, "Threads"); sleeping ones cost nothing here.
export OMP_WAIT_POLICY=passive
T=$(mktemp -d /tmp/fxp-resume-XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fails=0
ok()   { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; fails=$((fails + 1)); }
# expect STATUS DESCRIPTION -- command...
expect() {
    want=$1; what=$2; shift 3
    "$@" >"$T/out" 2>"$T/err"; got=$?
    if [ "$got" -ne "$want" ]; then fail "$what (exit $got, want $want): $(cat "$T/err")"; return; fi
    if [ "$want" -ne 0 ] && [ ! -s "$T/err" ]; then fail "$what: no message"; return; fi
    ok "$what"
}
hash_of() { "$F" info "$1" --json | sed 's/.*"parameters_fnv1a": "\([0-9a-f]*\)".*/\1/'; }
log_rows() { cut -d, -f1-5 "$1"; }   # without the wall-time column

"$F" data mog --dataset mog4 --seed 5 --out "$T/d.h5" --n-train 256 --n-valid 64 --n-test 64 \
    --entropy-samples 100 >/dev/null || { echo "cannot make data"; exit 1; }
# eval and checkpoint schedules that do not coincide: the running training
# loss and the log must survive a stop between them
run="--data $T/d.h5 --threads 1 --quiet --eval-every 10 --ckpt-every 7"
# an lr with more digits than a float holds: the checkpoint must keep them all
net="--model gnf-gce --seed 3 --set batch=32 --set couplings=2 --set hidden=16 --lr 0.0031234567890123"

t0=$(date +%s%N)
expect 0 "uninterrupted run" -- "$F" train $net $run --steps 240 --out "$T/ref"
ref_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

# kill -9 at pseudo-random points (seeded from the clock; printed), resume
seed=$(date +%N | sed 's/^0*//'); seed=${seed:-1}
echo "kill points seed: $seed"
kills=0
i=0
while [ $i -lt 8 ]; do
    i=$((i + 1))
    if [ -s "$T/run/checkpoint.h5" ]; then set -- --resume --data "$T/d.h5" --threads 1 --quiet --steps 240
    else set -- $net $run --steps 240; fi
    "$F" train "$@" --out "$T/run" >/dev/null 2>"$T/err" &
    pid=$!
    # 5-30% of a whole run's time (start-up included): most kills land mid-run
    delay=$(awk -v s="$seed" -v i="$i" -v ms="$ref_ms" 'BEGIN { srand(s + i); printf "%.3f", (0.05 + rand() * 0.25) * ms / 1000 }')
    sleep "$delay"
    if kill -KILL $pid 2>/dev/null; then kills=$((kills + 1)); fi
    wait $pid 2>/dev/null
    step=$("$F" info "$T/run/checkpoint.h5" --json 2>/dev/null | sed -n 's/.*"run": {"step": \([0-9]*\).*/\1/p')
    echo "kill $i after ${delay}s: checkpoint at step ${step:-none}"
done
ok "$kills SIGKILLs delivered"
if [ -s "$T/run/checkpoint.h5" ]; then
    expect 0 "final resume" -- "$F" train --resume --threads 1 --quiet --out "$T/run"
else
    expect 0 "final run (no checkpoint survived)" -- "$F" train $net $run --steps 240 --out "$T/run"
fi
if [ "$(log_rows "$T/ref/log.csv")" = "$(log_rows "$T/run/log.csv")" ]; then ok "log.csv identical"
else fail "log.csv differs: $(diff "$T/ref/log.csv" "$T/run/log.csv" | head -5)"; fi
for f in checkpoint.h5 best.h5; do
    a=$(hash_of "$T/ref/$f"); b=$(hash_of "$T/run/$f")
    [ -n "$a" ] && [ "$a" = "$b" ] && ok "$f parameters bit-identical ($a)" || fail "$f: $a vs $b"
done
ls "$T/run" | grep -q '\.tmp\.' && fail "temporaries left: $(ls "$T/run")" || ok "no temporaries left"

# stale temporaries: a dead writer's are removed, a live one's kept
touch "$T/run/checkpoint.h5.tmp.2147483646" "$T/run/log.csv.tmp.2147483646" \
      "$T/run/best.h5.tmp.$$" "$T/run/notes.tmp.2147483646"
expect 0 "resume removes stale temporaries" -- "$F" train --resume --threads 1 --out "$T/run" --steps 241
grep -q "removed 2 temporary" "$T/err" && ok "reported the removal" || fail "no report: $(cat "$T/err")"
[ ! -e "$T/run/checkpoint.h5.tmp.2147483646" ] && [ ! -e "$T/run/log.csv.tmp.2147483646" ] &&
    ok "dead writer's temporaries removed" || fail "stale temporaries kept"
[ -e "$T/run/best.h5.tmp.$$" ] && [ -e "$T/run/notes.tmp.2147483646" ] &&
    ok "live writer's and foreign files kept" || fail "removed too much"

# a log that lost its header (killed before the first flush) is repaired
"$F" train $net $run --out "$T/hdr" --steps 20 >/dev/null 2>&1
printf '' > "$T/hdr/log.csv"
expect 0 "resume with an empty log" -- "$F" train --resume --threads 1 --quiet --out "$T/hdr" --steps 30
head -1 "$T/hdr/log.csv" | grep -q '^step,epoch,train_nll' && ok "header restored" || fail "no header"
# rows beyond the checkpoint and a torn last line are dropped
printf '999,1,2,3,4,5\n1000,1,2' >> "$T/hdr/log.csv"
expect 0 "resume with rows after the checkpoint" -- "$F" train --resume --threads 1 --quiet --out "$T/hdr" --steps 40
grep -q '^999,\|^1000,' "$T/hdr/log.csv" && fail "rows after the checkpoint kept" || ok "rows after the checkpoint dropped"
[ "$(cut -d, -f1 "$T/hdr/log.csv" | tail -1)" = 40 ] && ok "log continues to step 40" || fail "log: $(tail -2 "$T/hdr/log.csv")"

# garbled run state: every value is validated (needs h5py to edit the file)
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    for kv in 'run.step=-5' 'run.step=12abc' 'run.step= 7' 'run.step=99999999999' \
              'run.best_step=10000' 'run.train_seconds=nan' 'run.train_seconds=-1' \
              'run.best_valid=nan' 'run.nodes=0' 'run.seed=-1' 'run.eval_every=0' \
              'run.window_steps=100000' 'run.entropy=inf' 'run.threads=100000' \
              'run.unknown=1' 'hidden=-4' 'kind=nope'; do
        rm -rf "$T/bad"; cp -r "$T/hdr" "$T/bad"
        /usr/bin/python3 - "$T/bad/checkpoint.h5" "$kv" <<'EOF'
import sys, h5py
key, value = sys.argv[2].split("=", 1)
with h5py.File(sys.argv[1], "r+") as f:
    f["config"].attrs[key] = value
EOF
        expect 1 "refuses $kv" -- "$F" train --resume --threads 1 --quiet --out "$T/bad" --steps 60
        key=${kv%%=*}
        grep -q "$key" "$T/err" && ok "  the message names $key" || fail "  message: $(cat "$T/err")"
    done
    # control characters in a stored name are refused, and never printed raw
    rm -rf "$T/bad"; cp -r "$T/hdr" "$T/bad"
    /usr/bin/python3 - "$T/bad/checkpoint.h5" <<'EOF'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["config"].attrs["run.dataset"] = "mog4\x1b[2J\x07"
EOF
    expect 1 "refuses a dataset name with control characters" -- "$F" train --resume --threads 1 --quiet --out "$T/bad"
    grep -q "$(printf '\033')" "$T/err" && fail "escape sequence printed" || ok "message escaped: $(cat "$T/err")"
    expect 1 "eval refuses it too" -- "$F" eval --checkpoint "$T/bad/checkpoint.h5" --data "$T/d.h5"
    expect 1 "info refuses it too" -- "$F" info "$T/bad/checkpoint.h5"
else
    echo "skip garbled run-state checks (no h5py)"
fi

echo "$fails failure(s)"
[ $fails -eq 0 ]
