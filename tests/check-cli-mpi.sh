#!/bin/sh
# flowexp under mpirun: data-parallel train and eval of a graph and an image
# model.  Two ranks against one process with the same global batch, seed and
# total threads (parameters within float rounding, the same log rows), all
# ranks bit-identical, only rank 0 writing files, uneven shards (3 ranks),
# --resume under MPI, parallel eval equal to serial eval, and faults: a rank
# that fails (bad file) or is killed ends the job non-zero within seconds and
# the last checkpoint stays intact.
# Skipped (77) without Open MPI's mpirun or without MPI in this flowexp.
# Usage: check-cli-mpi.sh path/to/flowexp
set -u
F=$1
command -v mpirun >/dev/null 2>&1 && mpirun --version 2>&1 | grep -q "Open MPI" ||
    { echo "Open MPI's mpirun not found: skipped"; exit 77; }
# one node, no network (see tests/check-dist.sh)
export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
T=$(mktemp -d /tmp/fxp-cli-mpi-XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fails=0
ok()   { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; fails=$((fails + 1)); }
MPI="timeout -k 5 240 mpirun --allow-run-as-root --oversubscribe --bind-to none"
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
expect() { # expect STATUS DESCRIPTION -- command...
    want=$1; what=$2; shift 3
    "$@" >"$T/out" 2>"$T/err"; got=$?
    if [ "$got" -ne "$want" ]; then fail "$what (exit $got, want $want): $(tail -3 "$T/err")"; return; fi
    ok "$what"
}
# compare A.h5 B.h5 TOL: /params equal within TOL relative to the largest value
compare() {
    $PY - "$1" "$2" "$3" <<'PYEOF'
import sys, h5py, numpy as np
a, b, tol = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), float(sys.argv[3])
names = []
a["params"].visit(lambda n: names.append(n) if isinstance(a["params"][n], h5py.Dataset) else None)
d = max(float(np.max(np.abs(a["params"][n][()] - b["params"][n][()]))) for n in names)
m = max(float(np.max(np.abs(a["params"][n][()]))) for n in names)
print("max |diff| %.3g (largest parameter %.3g)" % (d, m))
sys.exit(0 if d <= tol * m else 1)
PYEOF
}
"$F" version >/dev/null || exit 1
$MPI -np 2 "$F" version > "$T/v" 2>&1 || { echo "mpirun cannot start flowexp: skipped"; cat "$T/v"; exit 77; }
[ "$(grep -c flowexp "$T/v")" -eq 1 ] && ok "under mpirun only rank 0 prints" || fail "ranks print: $(cat "$T/v")"

# ---- graph model
"$F" data mog --dataset mog4 --seed 3 --out "$T/g.h5" --n-train 512 --n-valid 64 --n-test 64 \
    --entropy-samples 100 >/dev/null || { echo "cannot make data"; exit 1; }
GM="--model gnf-gce --quiet --seed 5 --set batch=32 --set couplings=2 --set hidden=16"
G="$GM --data $T/g.h5 --steps 20 --eval-every 10"
# shellcheck disable=SC2086
expect 0 "graph: one process, 2 threads" -- "$F" train $G --out "$T/g1" --threads 2
# shellcheck disable=SC2086
expect 0 "graph: 2 ranks x 1 thread" -- $MPI -np 2 "$F" train $G --out "$T/g2" --threads 1
grep -q "all 2 ranks hold bit-identical parameters" "$T/out" && ok "graph: ranks bit-identical" \
    || fail "graph: no identity report: $(cat "$T/out")"
# Adam divides by sqrt(v) + 1e-8: components whose gradient is rounding noise
# move by about +-lr either way, so parameters agree to about lr (3e-3), and
# the losses closely (docs/distributed.md)
compare "$T/g1/checkpoint.h5" "$T/g2/checkpoint.h5" 1e-2 > "$T/c" && ok "graph: 2 ranks = 1 process ($(cat "$T/c"))" \
    || fail "graph: parameters differ: $(cat "$T/c")"
$PY - "$T/g1/log.csv" "$T/g2/log.csv" <<'PYEOF' && ok "graph: validation NLL within 1e-3" || fail "graph: logs differ"
import sys
a, b = [[float(l.split(",")[3]) for l in open(f).readlines()[1:]] for f in sys.argv[1:]]
print(a, b)
sys.exit(len(a) != len(b) or any(abs(x - y) > 1e-3 for x, y in zip(a, b)))
PYEOF
[ "$(ls "$T/g1" | sort)" = "$(ls "$T/g2" | sort)" ] && ok "graph: the same files, written once" \
    || fail "graph: files differ: $(ls "$T/g1") vs $(ls "$T/g2")"
cut -d, -f1 "$T/g1/log.csv" > "$T/s1"; cut -d, -f1 "$T/g2/log.csv" > "$T/s2"
cmp -s "$T/s1" "$T/s2" && ok "graph: the same log rows" || fail "graph: log rows differ"
# shellcheck disable=SC2086
expect 0 "graph: 3 ranks (uneven shards of 32)" -- $MPI -np 3 "$F" train $G --out "$T/g3" --threads 1
compare "$T/g1/checkpoint.h5" "$T/g3/checkpoint.h5" 1e-2 > "$T/c" && ok "graph: 3 ranks = 1 process ($(cat "$T/c"))" \
    || fail "graph: 3 ranks differ: $(cat "$T/c")"
expect 0 "graph: --resume under MPI" -- $MPI -np 2 "$F" train --resume --out "$T/g2" --steps 30 --quiet --threads 1
grep -q "^30," "$T/g2/log.csv" && ok "graph: resumed to step 30" || fail "graph: log $(tail -1 "$T/g2/log.csv")"
"$F" eval --checkpoint "$T/g1/checkpoint.h5" --data "$T/g.h5" --split test --json > "$T/e1" 2>/dev/null
$MPI -np 2 "$F" eval --checkpoint "$T/g1/checkpoint.h5" --data "$T/g.h5" --split test --json > "$T/e2" 2>/dev/null
$PY -c "import json,sys; a,b=[json.load(open(f))['nll_nats_per_node'] for f in sys.argv[1:]]; sys.exit(abs(a-b)>1e-9*max(1,abs(a)))" "$T/e1" "$T/e2" \
    && ok "graph: eval on 2 ranks = 1 process" || fail "graph eval: $(cat "$T/e1") vs $(cat "$T/e2")"

# ---- image model (tiny 8x8 images)
mkdir -p "$T/fm"
$PY - "$T/fm" <<'PYEOF' || { echo "cannot write test images"; exit 1; }
import struct, sys, random
d, r = sys.argv[1], random.Random(3)
for name, n in (("train", 70), ("t10k", 12)):
    with open("%s/%s-images-idx3-ubyte" % (d, name), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 8, 8) + bytes(r.randrange(256) for _ in range(n * 64)))
    with open("%s/%s-labels-idx1-ubyte" % (d, name), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(r.randrange(10) for _ in range(n)))
PYEOF
"$F" data fashion-mnist --from "$T/fm" --out "$T/i.h5" --valid 10 >/dev/null || { echo "no image data"; exit 1; }
I="--model flow-convexp --data $T/i.h5 --quiet --seed 2 --batch 8 --steps 6 --eval-every 3
   --set subflows=2 --set depth=1 --set growth=4 --set intermediate=6 --set deq_subflows=1
   --set context_channels=4 --set context_depth=1 --set context_growth=4 --set eval_batch=16"
# shellcheck disable=SC2086
expect 0 "image: one process" -- "$F" train $I --out "$T/i1" --threads 2
# shellcheck disable=SC2086
expect 0 "image: 2 ranks" -- $MPI -np 2 "$F" train $I --out "$T/i2" --threads 1
grep -q "all 2 ranks hold bit-identical parameters" "$T/out" && ok "image: ranks bit-identical" \
    || fail "image: no identity report: $(cat "$T/out")"
compare "$T/i1/checkpoint.h5" "$T/i2/checkpoint.h5" 1e-4 > "$T/c" && ok "image: 2 ranks = 1 process ($(cat "$T/c"))" \
    || fail "image: parameters differ: $(cat "$T/c")"
"$F" eval --checkpoint "$T/i1/checkpoint.h5" --data "$T/i.h5" --json --iw-samples 3 --quiet > "$T/e1" 2>/dev/null
$MPI -np 2 "$F" eval --checkpoint "$T/i1/checkpoint.h5" --data "$T/i.h5" --json --iw-samples 3 --quiet > "$T/e2" 2>/dev/null
$PY -c "import json,sys; a,b=[json.load(open(f)) for f in sys.argv[1:]]; sys.exit(any(abs(a[k]-b[k])>1e-9 for k in ('bpd_elbo','bpd_iw')) or a['n_images']!=b['n_images'])" "$T/e1" "$T/e2" \
    && ok "image: eval on 2 ranks = 1 process (same noise per image)" || fail "image eval: $(cat "$T/e1") vs $(cat "$T/e2")"

# ---- faults: a rank that fails, a rank that is killed
start=$(date +%s)
# shellcheck disable=SC2086
$MPI -np 1 "$F" train $G --out "$T/f1" --threads 1 : -np 1 "$F" train $GM --data "$T/missing.h5" --steps 20 --out "$T/f1" --threads 1 \
    >"$T/out" 2>"$T/err"; st=$?
el=$(( $(date +%s) - start ))
[ $st -ne 0 ] && ok "a failing rank ends the job (exit $st, ${el} s)" || fail "exit 0 with a failing rank"
[ $el -lt 60 ] && ok "  within seconds" || fail "  took ${el} s"
grep -q "missing.h5" "$T/err" && ok "  the failing rank's message is shown" || fail "  message: $(tail -3 "$T/err")"
# shellcheck disable=SC2086
$MPI -np 2 "$F" train $GM --data "$T/g.h5" --steps 100000 --eval-every 20 --out "$T/k" --threads 1 >"$T/out" 2>"$T/err" &
job=$!
i=0
while [ ! -s "$T/k/checkpoint.h5" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1
# a rank: a flowexp process of this run (not timeout or mpirun); /proc, since
# a minimal Debian has no pgrep
victim=""
for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) || continue
    case $cmd in timeout*|mpirun*|*/mpirun*|orterun*|prterun*) continue ;; esac
    case $cmd in *flowexp\ train*"--out $T/k "*) victim=${p#/proc/} ;; esac
done
[ -n "$victim" ] && kill -9 "$victim" || fail "no rank process of the run found to kill"
start=$(date +%s)
wait $job; st=$?
el=$(( $(date +%s) - start ))
[ $st -ne 0 ] && ok "a killed rank ends the job (exit $st, ${el} s)" || fail "exit 0 after a kill"
[ $el -lt 60 ] && ok "  within seconds" || fail "  took ${el} s"
"$F" info "$T/k/checkpoint.h5" >/dev/null 2>&1 && ok "  the last checkpoint is intact" || fail "  checkpoint unreadable"

[ "$fails" -eq 0 ] && echo "all MPI CLI checks passed" || echo "$fails MPI CLI check(s) failed"
[ "$fails" -eq 0 ]
