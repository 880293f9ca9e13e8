#!/bin/sh
# End-to-end runs of the Tables 2-3 models through flowexp on a tiny dataset
# (8x8 grey images written here in the IDX format): train each of
# sylvester, sylvester-nobasis, sylvester-nogen, resflow, resflow-half and
# coupling-flow with uniform and variational dequantization, eval (JSON; the
# residual flow says its log-det is an estimate and refuses an IW NLL),
# sample (through the fixed-point inverses), bit-identical resume of the
# residual flow (its estimator's draws come from the step's stream), verify
# (the residual blocks' estimator against the exact log-det), bench, and
# bad configurations.  Usage: check-cli-sylvester.sh path/to/flowexp
set -u
F=$1
T=$(mktemp -d /tmp/fxp-cli-sylvester-XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
fails=0
ok()   { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; fails=$((fails + 1)); }
expect() { # expect STATUS DESCRIPTION -- command...
    want=$1; what=$2; shift 3
    "$@" >"$T/out" 2>"$T/err"; got=$?
    if [ "$got" -ne "$want" ]; then fail "$what (exit $got, want $want): $(tail -3 "$T/err")"; return; fi
    if [ "$want" -ne 0 ] && [ ! -s "$T/err" ]; then fail "$what: no message"; return; fi
    ok "$what"
}
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

mkdir -p "$T/fm"
$PY - "$T/fm" <<'PYEOF' || { echo "cannot write the test data"; exit 1; }
import struct, sys, random
d = sys.argv[1]
r = random.Random(7)
def write(name, n, rows=8, cols=8):
    with open("%s/%s-images-idx3-ubyte" % (d, name), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, rows, cols))
        for i in range(n):
            c = r.randrange(2, 6)
            f.write(bytes(min(255, max(0, int(200 * (abs(y - c) + abs(x - c) < 3) + r.gauss(20, 10))))
                          for y in range(rows) for x in range(cols)))
    with open("%s/%s-labels-idx1-ubyte" % (d, name), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(r.randrange(10) for _ in range(n)))
write("train", 40)
write("t10k", 8)
PYEOF
expect 0 "data fashion-mnist (tiny)" -- "$F" data fashion-mnist --from "$T/fm" --out "$T/d.h5" --valid 8

# 1x8x8 images: levels 2 (4x4x4 -> split 2 -> 8x2x2), hidden 8 fits 4 and 8
SMALL="--set levels=2 --set subflows=2 --set hidden=8 --set depth=1 --set growth=4 --set intermediate=6
       --set deq_subflows=1 --set context_channels=4 --set context_depth=1 --set context_growth=4
       --set eval_batch=8"
# shellcheck disable=SC2086
TRAIN() { "$F" train --data "$T/d.h5" --threads 1 --quiet --batch 8 --eval-every 2 "$@"; }

for m in sylvester sylvester-nobasis sylvester-nogen resflow resflow-half coupling-flow; do
    for deq in variational uniform; do
        # shellcheck disable=SC2086
        expect 0 "train $m ($deq)" -- TRAIN --model $m $SMALL --set dequantization=$deq --out "$T/$m-$deq" --steps 4
    done
    grep -q "^trained $m" "$T/out" && ok "$m: trained" || fail "$m: $(cat "$T/out")"
    [ "$(wc -l < "$T/$m-uniform/log.csv")" -eq 3 ] && ok "$m: log.csv" || fail "$m log: $(cat "$T/$m-uniform/log.csv")"
    expect 0 "sample $m" -- "$F" sample --checkpoint "$T/$m-variational/checkpoint.h5" --out "$T/s-$m.h5" --n 3 --threads 1
    $PY -c "import h5py,sys; s=h5py.File(sys.argv[1])['samples'][()]; assert s.shape==(3,1,8,8) and s.min()>=0 and s.max()<=255" "$T/s-$m.h5" \
        && ok "$m: samples [3,1,8,8]" || fail "$m: samples file"
done

# ---- eval: exact log-dets have an IW NLL, the residual flow's estimate does not
expect 0 "eval sylvester --iw-samples 3 --json" -- "$F" eval --checkpoint "$T/sylvester-variational/best.h5" --data "$T/d.h5" --iw-samples 3 --json --quiet --threads 1
$PY - "$T/out" <<'PYEOF' && ok "sylvester eval JSON: IW <= ELBO, exact log-det" || fail "eval JSON: $(cat "$T/out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model"] == "sylvester" and r["logdet"] == "exact", r
assert 0 < r["bpd_iw"] <= r["bpd_elbo"] < 20, r
PYEOF
expect 0 "eval resflow" -- "$F" eval --checkpoint "$T/resflow-variational/best.h5" --data "$T/d.h5" --quiet --threads 1
grep -q "stochastic estimate" "$T/out" && ok "resflow eval says the log-det is an estimate" || fail "resflow eval: $(cat "$T/out")"
expect 0 "eval resflow --json" -- "$F" eval --checkpoint "$T/resflow-uniform/best.h5" --data "$T/d.h5" --quiet --threads 1 --json
$PY - "$T/out" <<'PYEOF' && ok "resflow eval JSON: no IW, stochastic log-det" || fail "eval JSON: $(cat "$T/out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["bpd_iw"] is None and r["logdet"] == "stochastic estimate" and 0 < r["bpd_elbo"] < 20, r
PYEOF
expect 2 "eval resflow refuses --iw-samples" -- "$F" eval --checkpoint "$T/resflow-uniform/best.h5" --data "$T/d.h5" --iw-samples 4
grep -q "exact" "$T/err" && ok "says an IW NLL needs exact log-dets" || fail "message: $(cat "$T/err")"

# ---- resume of the residual flow: 2 + 2 steps == 4 at once, bit for bit
# shellcheck disable=SC2086
expect 0 "train resflow 2 steps" -- TRAIN --model resflow $SMALL --out "$T/r2" --steps 2
expect 0 "train resflow --resume to 4" -- "$F" train --data "$T/d.h5" --threads 1 --quiet --out "$T/r2" --resume --steps 4
$PY - "$T/resflow-variational/checkpoint.h5" "$T/r2/checkpoint.h5" <<'PYEOF' && ok "resflow resume is bit-identical" || fail "resflow resume differs"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = []
a["params"].visit(lambda n: names.append(n) if isinstance(a["params"][n], h5py.Dataset) else None)
assert names
for n in names:
    assert np.array_equal(a["params"][n][()], b["params"][n][()]), n
PYEOF

# ---- verify (one level keeps the brute-force Jacobians quick) and bench
for m in sylvester sylvester-nobasis sylvester-nogen resflow coupling-flow; do
    expect 0 "verify $m" -- "$F" verify --model "$m" --quiet --set levels=1 --set subflows=2 --set height=4 --set width=4
    grep -q "all layers hold" "$T/out" && ok "verify $m: all layers hold" || fail "verify $m: $(cat "$T/out")"
done
expect 0 "verify resflow (verbose)" -- "$F" verify --model resflow --set levels=1 --set subflows=1 --set height=4 --set width=4
grep -q "logdet estimator" "$T/out" && ok "verify resflow checks the estimator" || fail "verify: $(cat "$T/out")"
# shellcheck disable=SC2086
expect 0 "bench sylvester --json" -- "$F" bench --model sylvester $SMALL --set height=8 --set width=8 --set channels=1 --batch 4 --steps 1 --threads 1 --json
$PY - "$T/out" <<'PYEOF' && ok "bench JSON fields" || fail "bench JSON: $(cat "$T/out")"
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("train_step_s", "sample_s", "peak_rss_mb", "params", "tape_peak_mb"):
    assert k in r and r[k] > 0, k
PYEOF
# shellcheck disable=SC2086
expect 0 "bench resflow" -- "$F" bench --model resflow $SMALL --set height=8 --set width=8 --set channels=1 --batch 4 --steps 1 --threads 1

# ---- bad configurations
expect 2 "train sylvester: hidden that fits no mask" -- "$F" train --model sylvester --data "$T/d.h5" --out "$T/x" --set levels=2 --set hidden=12
grep -q "hidden units" "$T/err" && ok "names the channel / hidden mismatch" || fail "message: $(cat "$T/err")"
expect 2 "train resflow: coefficient >= 1" -- "$F" train --model resflow --data "$T/d.h5" --out "$T/x" --set resflow_coeff=1.5
expect 2 "train sylvester: levels the image cannot hold" -- "$F" train --model sylvester --data "$T/d.h5" --out "$T/x" --set levels=4
[ ! -e "$T/x" ] && ok "no run directory left" || fail "run directory left: $(ls "$T/x")"

[ "$fails" -eq 0 ] && echo "all Sylvester / residual CLI checks passed" || echo "$fails Sylvester / residual CLI check(s) failed"
[ "$fails" -eq 0 ]
