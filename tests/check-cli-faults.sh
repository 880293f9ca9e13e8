#!/bin/sh
# flowexp on a full disk: training and sampling into small tmpfs mounts end
# with a message and exit status 1 (never a signal), leave no temporaries,
# keep what a resume needs, and a run resumes once there is space again.
# Needs root (mount); skipped (exit 77) otherwise.
# Usage: check-cli-faults.sh path/to/flowexp
set -u
F=$1
export OMP_WAIT_POLICY=passive
T=$(mktemp -d /tmp/fxp-faults-XXXXXX) || exit 1
M="$T/mnt"
mkdir "$M"
cleanup() { umount "$M" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
if ! mount -t tmpfs -o size=300k tmpfs "$M" 2>/dev/null; then
    echo "skip: cannot mount a tmpfs (not root?)"
    exit 77
fi
umount "$M"
fails=0
ok()   { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; fails=$((fails + 1)); }
mnt()  { umount "$M" 2>/dev/null; mount -t tmpfs -o "size=$1" tmpfs "$M"; }
no_temporaries() {
    if find "$M" -name '*.tmp.*' | grep -q .; then fail "$1: temporaries left: $(find "$M" -name '*.tmp.*')"
    else ok "$1: no temporaries"; fi
}

"$F" data mog --dataset mog4 --seed 2 --out "$T/d.h5" --n-train 256 --n-valid 64 --n-test 64 \
    --entropy-samples 100 >/dev/null || { echo "cannot make data"; exit 1; }
run="--model gnf-gce --data $T/d.h5 --threads 1 --quiet --seed 1 --set batch=32 --set couplings=2 --set hidden=16"

# no room for the first checkpoint: a clean failure, and the run leaves nothing
mnt 300k
"$F" train $run --out "$M/r" --steps 200 --eval-every 5 >/dev/null 2>"$T/err"; st=$?
[ $st -eq 1 ] && ok "300 kB: exit 1" || fail "300 kB: exit $st: $(cat "$T/err")"
grep -q "free" "$T/err" && ok "  the message names the space: $(cat "$T/err")" || fail "  message: $(cat "$T/err")"
[ ! -e "$M/r" ] && ok "  no run directory left" || fail "  left: $(ls -A "$M/r")"
no_temporaries "300 kB"

# room for a few checkpoints only: the last good checkpoint stays, and the run
# resumes to the end once there is space
mnt 700k
"$F" train $run --out "$M/r" --steps 200 --eval-every 5 >/dev/null 2>"$T/err"; st=$?
[ $st -eq 1 ] && ok "700 kB: exit 1" || fail "700 kB: exit $st: $(cat "$T/err")"
[ -s "$M/r/checkpoint.h5" ] && ok "  checkpoint.h5 kept" || fail "  no checkpoint"
no_temporaries "700 kB"
"$F" info "$M/r/checkpoint.h5" >/dev/null 2>&1 && ok "  the checkpoint is valid" || fail "  checkpoint unreadable"
mount -o remount,size=4m "$M"
"$F" train --resume --threads 1 --quiet --out "$M/r" >/dev/null 2>"$T/err"; st=$?
[ $st -eq 0 ] && ok "resume after space was freed" || fail "resume: exit $st: $(cat "$T/err")"
[ "$(cut -d, -f1 "$M/r/log.csv" | tail -1)" = 200 ] && ok "  the log reaches step 200" || fail "  log: $(tail -2 "$M/r/log.csv")"
# the same run without faults: identical log and parameters
"$F" train $run --out "$T/ref" --steps 200 --eval-every 5 >/dev/null 2>&1
[ "$(cut -d, -f1-5 "$T/ref/log.csv")" = "$(cut -d, -f1-5 "$M/r/log.csv")" ] && ok "  log as without the fault" ||
    fail "  log differs: $(diff "$T/ref/log.csv" "$M/r/log.csv" | head -4)"

# every size from nearly nothing to enough: exit 0 or 1, never a signal
for kb in 40 120 200 260 380 460 540 620 760 900 1100; do
    mnt ${kb}k
    "$F" train $run --out "$M/r" --steps 60 --eval-every 3 >/dev/null 2>"$T/err"; st=$?
    if [ $st -le 1 ]; then ok "$kb kB: exit $st"; else fail "$kb kB: exit $st: $(cat "$T/err")"; fi
    no_temporaries "$kb kB"
done

# sampling: the space is reserved up front, so the failure is immediate
mnt 300k
"$F" train $run --out "$T/s" --steps 4 >/dev/null 2>&1
"$F" sample --checkpoint "$T/s/checkpoint.h5" --n 100000 --threads 1 --out "$M/s.h5" >/dev/null 2>"$T/err"; st=$?
[ $st -eq 1 ] && grep -q "free" "$T/err" && ok "sample that does not fit: exit 1, $(cat "$T/err")" ||
    fail "sample: exit $st: $(cat "$T/err")"
[ -z "$(ls -A "$M")" ] && ok "  nothing left" || fail "  left: $(ls -A "$M")"
"$F" sample --checkpoint "$T/s/checkpoint.h5" --n 1000 --threads 1 --out "$M/s.h5" >/dev/null 2>"$T/err" &&
    ok "sample that fits" || fail "sample: $(cat "$T/err")"

echo "$fails failure(s)"
[ $fails -eq 0 ]
