#!/bin/sh
# flowexp train and data with their output on a full disk: a clear message
# naming the cause and exit status 1, never a crash (HDF5 1.10 used to
# crash at exit after its failed close of the half-written file), and no
# temporary left behind.  The full disk is a file size limit (`ulimit -f`,
# with SIGXFSZ ignored so that write() fails with EFBIG), and, when we are
# root and may mount, also a tiny tmpfs (ENOSPC).
# Usage: check-diskfull.sh path/to/flowexp
set -u
F=$1
T=$(mktemp -d /tmp/fxp-full-XXXXXX) || exit 1
mnt=""
trap '[ -n "$mnt" ] && umount "$mnt" 2>/dev/null; rm -rf "$T"' EXIT
fails=0
ok()   { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; fails=$((fails + 1)); }

"$F" data mog --dataset mog4 --seed 1 --out "$T/d.h5" --n-train 64 --n-valid 16 --n-test 16 \
    --entropy-samples 50 >/dev/null || { echo "cannot make the dataset"; exit 1; }
train="train --model gnf --data $T/d.h5 --threads 1 --quiet --steps 4 --set batch=16 --set hidden=16"

# run DESCRIPTION DIR LIMIT_BLOCKS -- args: expect exit 1, the cause named, no temporaries
run() {
    what=$1; dir=$2; blocks=$3; shift 4
    ( trap '' XFSZ; [ "$blocks" = none ] || ulimit -f "$blocks"; exec "$F" "$@" ) \
        >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" -ne 1 ]; then fail "$what: exit $got, want 1: $(cat "$T/err")"; return; fi
    if ! grep -q -e "File too large" -e "No space left on device" "$T/err"; then
        fail "$what: the message does not name the cause: $(cat "$T/err")"; return
    fi
    if find "$dir" -name '*.tmp.*' | grep -q .; then fail "$what: temporary left behind"; return; fi
    ok "$what"
}

for blocks in 2 8 64 512; do  # (0 would stop the error message itself)
    run "train, file size limit $blocks blocks" "$T" "$blocks" -- $train --out "$T/run$blocks"
done
run "data, file size limit 64 blocks" "$T" 64 -- data mog --dataset mog4 --out "$T/big.h5" \
    --n-train 20000 --n-valid 16 --n-test 16 --entropy-samples 50

if [ "$(id -u)" -eq 0 ] && mkdir -p "$T/mnt" && mount -t tmpfs -o size=256k tmpfs "$T/mnt" 2>/dev/null; then
    mnt="$T/mnt"
    run "train on a full tmpfs" "$mnt" none -- $train --out "$mnt/run"
    umount "$mnt" && mnt=""
else
    echo "skip tmpfs (not root, or mounting is not permitted)"
fi

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
