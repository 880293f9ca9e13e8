#!/bin/sh
# End-to-end runs of the image models through flowexp on a tiny dataset (8x8
# grey images written here in the IDX format): data, train (checkpoints, log,
# curves, refusing to overwrite a run), bit-identical resume, eval (JSON,
# IW <= ELBO), sample (figure, temperatures), verify and bench, and bad input.
# Usage: check-cli-imagemodel.sh path/to/flowexp
set -u
F=$1
T=$(mktemp -d /tmp/fxp-cli-imagemodel-XXXXXX) || exit 1
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
exists() { [ -s "$1" ] && ok "wrote $(basename "$1")" || fail "missing $1"; }
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

# ---- a tiny Fashion-MNIST-shaped dataset: 60 train + 10 test images of 8x8
mkdir -p "$T/fm"
$PY - "$T/fm" <<'PYEOF' || { echo "cannot write the test data"; exit 1; }
import struct, sys, random
d = sys.argv[1]
r = random.Random(7)
def write(name, n, rows=8, cols=8):
    with open("%s/%s-images-idx3-ubyte" % (d, name), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, rows, cols))
        for i in range(n):  # blobs of varying brightness: some structure to learn
            c = r.randrange(2, 6)
            f.write(bytes(min(255, max(0, int(200 * (abs(y - c) + abs(x - c) < 3) + r.gauss(20, 10))))
                          for y in range(rows) for x in range(cols)))
    with open("%s/%s-labels-idx1-ubyte" % (d, name), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(r.randrange(10) for _ in range(n)))
write("train", 60)
write("t10k", 10)
PYEOF
expect 0 "data fashion-mnist (tiny)" -- "$F" data fashion-mnist --from "$T/fm" --out "$T/d.h5" --valid 10

SMALL="--set subflows=2 --set depth=1 --set growth=4 --set intermediate=6 --set deq_subflows=1
       --set context_channels=4 --set context_depth=1 --set context_growth=4 --set eval_batch=16"
# shellcheck disable=SC2086
TRAIN() { "$F" train --data "$T/d.h5" --threads 1 --quiet --batch 8 --eval-every 3 "$@"; }

# ---- train, and its outputs
# shellcheck disable=SC2086
expect 0 "train flow-convexp" -- TRAIN --model flow-convexp $SMALL --out "$T/a" --steps 6
exists "$T/a/checkpoint.h5"; exists "$T/a/best.h5"; exists "$T/a/log.csv"
if "$F" version | grep -q "figures: cairo"; then
    exists "$T/a/curves.png"
fi
[ "$(wc -l < "$T/a/log.csv")" -eq 3 ] && ok "log.csv: header + 2 rows" || fail "log.csv: $(cat "$T/a/log.csv")"
head -1 "$T/a/log.csv" | grep -q "^step,epoch,train_bpd,valid_bpd,lr,seconds$" && ok "log header" \
    || fail "log header: $(head -1 "$T/a/log.csv")"
# shellcheck disable=SC2086
expect 2 "train refuses an existing run" -- TRAIN --model flow-convexp $SMALL --out "$T/a" --steps 6
grep -q -- "--resume" "$T/err" && ok "says --resume / --force" || fail "message: $(cat "$T/err")"
# shellcheck disable=SC2086
expect 0 "train --force" -- TRAIN --model flow-convexp $SMALL --out "$T/a" --steps 6 --force

# ---- resume: 3 steps, then 3 more == 6 at once (parameters and log, bit for bit)
# shellcheck disable=SC2086
expect 0 "train 3 steps" -- TRAIN --model flow-convexp $SMALL --out "$T/b" --steps 3
expect 0 "train --resume to 6" -- "$F" train --data "$T/d.h5" --threads 1 --quiet --out "$T/b" --resume --steps 6
$PY - "$T/a/checkpoint.h5" "$T/b/checkpoint.h5" <<'PYEOF' && ok "resume is bit-identical" || fail "resume differs"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = []
a["params"].visit(lambda n: names.append(n) if isinstance(a["params"][n], h5py.Dataset) else None)
assert names
for n in names:
    assert np.array_equal(a["params"][n][()], b["params"][n][()]), n
PYEOF
cut -d, -f1-5 "$T/a/log.csv" > "$T/la"; cut -d, -f1-5 "$T/b/log.csv" > "$T/lb"
cmp -s "$T/la" "$T/lb" && ok "resumed log.csv equals the uninterrupted one" || fail "logs differ: $(diff "$T/la" "$T/lb")"
expect 2 "resume takes no --model" -- "$F" train --data "$T/d.h5" --out "$T/b" --resume --model flow-convexp

# ---- SIGTERM: a checkpoint, exit 130, and the run resumes
# shellcheck disable=SC2086
"$F" train --data "$T/d.h5" --threads 1 --quiet --batch 8 --eval-every 3 --model flow-1x1 $SMALL \
    --out "$T/sig" --steps 1000000 >"$T/sigout" 2>"$T/err" &
pid=$!
for _ in $(seq 1 80); do  # the handler is in place once the first row is logged
    [ "$(cat "$T/sig/log.csv" 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.25
done
kill -TERM $pid; wait $pid; st=$?
[ $st -eq 130 ] && ok "SIGTERM exits 130" || fail "SIGTERM exit $st: $(cat "$T/err")"
grep -q "interrupted; resume with --resume" "$T/err" && ok "says how to resume" || fail "message: $(cat "$T/err")"
exists "$T/sig/checkpoint.h5"
expect 0 "resume after SIGTERM" -- "$F" train --data "$T/d.h5" --threads 1 --quiet --out "$T/sig" --resume --steps 1

# ---- eval
expect 0 "eval --json --iw-samples 4" -- "$F" eval --checkpoint "$T/a/best.h5" --data "$T/d.h5" --split test --iw-samples 4 --json --quiet --threads 1
$PY - "$T/out" <<'PYEOF' && ok "eval JSON: fields, IW <= ELBO" || fail "eval JSON: $(cat "$T/out")"
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("bpd_elbo", "bpd_iw", "iw_samples", "n_images"):
    assert k in r, k
assert r["iw_samples"] == 4 and r["n_images"] == 10
assert 0 < r["bpd_iw"] <= r["bpd_elbo"] < 20, r
PYEOF
expect 1 "eval: a missing split is named" -- "$F" eval --checkpoint "$T/a/best.h5" --data "$T/d.h5" --split nope
expect 2 "eval: --iw-samples 0" -- "$F" eval --checkpoint "$T/a/best.h5" --data "$T/d.h5" --iw-samples 0

# ---- sample
expect 0 "sample with temperatures" -- "$F" sample --checkpoint "$T/a/best.h5" --out "$T/s.h5" --n 5 --temperatures 0.5,1 --threads 1
$PY -c "import h5py,sys; s=h5py.File(sys.argv[1])['samples'][()]; assert s.shape==(10,1,8,8) and s.min()>=0 and s.max()<=255" "$T/s.h5" \
    && ok "samples [10,1,8,8] in 0..255" || fail "samples file"
if "$F" version | grep -q "figures: cairo"; then
    expect 0 "sample --png grid" -- "$F" sample --checkpoint "$T/a/best.h5" --out "$T/s2.h5" --n 4 --temperatures 0.7,1 --png "$T/g.png"
    exists "$T/g.png"
    expect 1 "sample --png into a missing directory" -- "$F" sample --checkpoint "$T/a/best.h5" --out "$T/s3.h5" --png "$T/none/g.png"
    [ ! -e "$T/s3.h5" ] && ok "nothing written when the figure cannot be" || fail "s3.h5 left behind"
fi
expect 2 "sample: bad --temperatures" -- "$F" sample --checkpoint "$T/a/best.h5" --out "$T/s4.h5" --temperatures 0.5,x

# ---- info
expect 0 "info on an image checkpoint" -- "$F" info "$T/a/checkpoint.h5" --json
$PY -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['family']=='image' and r['model']=='flow-convexp' and r['step']==6" "$T/out" \
    && ok "info JSON: family, model, step" || fail "info: $(cat "$T/out")"

# ---- uniform dequantization
# shellcheck disable=SC2086
expect 0 "train uniform dequantization" -- TRAIN --model flow-convexp $SMALL --set dequantization=uniform --out "$T/u" --steps 3

# ---- verify and bench
for m in flow-1x1 flow-lu flow-householder flow-emerging flow-woodbury flow-convexp; do
    expect 0 "verify $m" -- "$F" verify --model "$m" --quiet
    grep -q "all layers hold" "$T/out" && ok "verify $m: all layers hold" || fail "verify: $(cat "$T/out")"
done
# shellcheck disable=SC2086
expect 0 "train flow-emerging (sampling through the sequential inverse)" -- TRAIN --model flow-emerging $SMALL --out "$T/e" --steps 3
expect 0 "sample flow-emerging" -- "$F" sample --checkpoint "$T/e/checkpoint.h5" --out "$T/se.h5" --n 3
expect 0 "verify gnf-gce" -- "$F" verify --model gnf-gce --quiet
# shellcheck disable=SC2086
expect 0 "bench --json" -- "$F" bench --model flow-convexp $SMALL --set height=8 --set width=8 --set channels=1 --batch 4 --steps 2 --threads 1 --json
$PY - "$T/out" <<'PYEOF' && ok "bench JSON fields" || fail "bench JSON: $(cat "$T/out")"
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("train_step_s", "sample_s", "peak_rss_mb", "params"):
    assert k in r and r[k] > 0, k
PYEOF
expect 2 "verify: unknown model" -- "$F" verify --model flow-3x3

# ---- bad input
expect 2 "train: unknown --set key" -- "$F" train --model flow-convexp --data "$T/d.h5" --out "$T/x" --set nope=1
expect 2 "train: bad mixing" -- "$F" train --model flow-convexp --data "$T/d.h5" --out "$T/x" --set mixing=3x3
expect 1 "train: missing data file" -- "$F" train --model flow-convexp --data "$T/none.h5" --out "$T/x"
[ ! -e "$T/x" ] && ok "no run directory left" || fail "run directory left: $(ls "$T/x")"
printf 'depth = 2\nbogus line\n' > "$T/bad.conf"
expect 2 "train: malformed --config" -- "$F" train --model flow-convexp --data "$T/d.h5" --out "$T/x" --config "$T/bad.conf"
expect 2 "train: --config is a directory" -- "$F" train --model flow-convexp --data "$T/d.h5" --out "$T/x" --config "$T"

[ "$fails" -eq 0 ] && echo "all image CLI checks passed" || echo "$fails image CLI check(s) failed"
[ "$fails" -eq 0 ]
