#!/bin/sh
# The paper's Table 1 (mixing layers in a generative flow) at a reduced,
# equal budget on Fashion-MNIST: the four mixing layers x 2 seeds, the same
# architecture (datasets/table1/fmnist.conf) and the same number of
# optimizer steps for every run, then the test-set -ELBO and importance-
# weighted NLL in bits/dim beside the paper's CIFAR10 numbers.
#
#   datasets/reproduce-table1.sh [OUT_DIR] [STEPS] [PARALLEL_RUNS]
#   datasets/reproduce-table1.sh --report OUT_DIR
#
# Defaults: runs/table1, 1200 steps of 64 images per run, 2 runs at a time
# with 1 thread each.  Evaluation: -ELBO on the whole test split (one
# dequantization sample per image) and the IW NLL with IW_K (default 20)
# samples on its first IW_N (default 500) images (the paper: 1000 samples).
# The budget is in steps, so the numbers do not depend on the machine's load.
# Writes OUT_DIR/results.csv, OUT_DIR/table1.md and OUT_DIR/table1.{png,pdf}.
# FLOWEXP=path/to/flowexp uses that program instead of building one.
set -eu
case ${FLOWEXP:-/} in /*) ;; *) FLOWEXP=$PWD/$FLOWEXP;; esac
cd "$(dirname "$0")/.."
. datasets/reproduce-common.sh
reproduce_report reproduce-table1 "$@"
[ "$report" -eq 0 ] || shift
out=${1:-runs/table1}
steps=${2:-1200}
parallel=${3:-2}
iw_k=${IW_K:-20}
iw_n=${IW_N:-500}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
reproduce_flowexp
mkdir -p "$out"
mixings="1x1 emerging woodbury convexp"
seeds="0 1"
csv=$out/results.csv

if [ $report -eq 0 ]; then
[ -s "$out/fmnist.h5" ] || $F data fashion-mnist --out "$out/fmnist.h5"
jobs=$out/jobs.txt
: > "$jobs"
for s in $seeds; do for m in $mixings; do echo "$m $s" >> "$jobs"; done; done

run_one() { # mixing seed
    dir=$out/$1-s$2
    if [ -s "$dir/result.json" ]; then return 0; fi
    growth=31
    [ "$1" = 1x1 ] && growth=32   # the paper: 64 for 1x1, 63 for the others
    start=$(date +%s)
    if $F train --model "flow-$1" --config datasets/table1/fmnist.conf --set growth=$growth \
            --data "$out/fmnist.h5" --out "$dir" --steps "$steps" --eval-every $(( steps / 10 > 0 ? steps / 10 : 1 )) \
            --valid-n 1000 --seed "$2" --threads 1 --quiet --force > "$dir.train.txt" 2>&1 &&
       $F eval --checkpoint "$dir/best.h5" --data "$out/fmnist.h5" --split test --json --quiet \
            --threads 1 > "$dir/elbo.json" &&
       $F eval --checkpoint "$dir/best.h5" --data "$out/fmnist.h5" --split test --json --quiet \
            --threads 1 --iw-samples "$iw_k" --n "$iw_n" > "$dir/iw.json"; then
        echo "{\"seconds\": $(( $(date +%s) - start ))}" > "$dir/time.json"
        cat "$dir/elbo.json" > "$dir/result.json"
        echo "done flow-$1 seed $2: $(cat "$dir/elbo.json") $(cat "$dir/iw.json")"
    else
        echo "FAILED flow-$1 seed $2 (see $dir.train.txt)"
    fi
}

i=0
while read -r m s; do
    run_one "$m" "$s" &
    i=$((i + 1))
    if [ $((i % parallel)) -eq 0 ]; then wait; fi
done < "$jobs"
wait

num() { sed -n "s/.*\"$2\": \([-+.0-9eE]*\).*/\1/p" "$1"; }
echo "dataset,model,seed,bpd_elbo,bpd_iw_test_subset,bpd_elbo_test_subset,iw_samples,iw_images,best_step,steps,seconds" > "$csv"
while read -r m s; do
    dir=$out/$m-s$s
    [ -s "$dir/result.json" ] || continue
    echo "fashion-mnist,$m,$s,$(num "$dir/elbo.json" bpd_elbo),$(num "$dir/iw.json" bpd_iw),$(num "$dir/iw.json" bpd_elbo),$iw_k,$iw_n,$(num "$dir/elbo.json" step),$steps,$(num "$dir/time.json" seconds)" >> "$csv"
done < "$jobs"
fi

# table: mean +- sample std over seeds beside the paper (CIFAR10, full budget)
awk -F, '
NR == 1 { next }
{ k = $2; n[k]++; e[k] += $4; ee[k] += $4 * $4; w[k] += $5; ww[k] += $5 * $5;
  we[k] += $6; t[k] += $11; K = $7; N = $8; S = $10 }
function ms(s, q, c,   m, v) { m = s / c; v = c > 1 ? (q - c * m * m) / (c - 1) : 0;
    if (v < 0) v = 0; return sprintf("%.4f +- %.4f", m, sqrt(v)) }
END {
    split("1x1 emerging woodbury convexp", M, " ");
    name["1x1"] = "1x1 conv."; name["emerging"] = "Emerging"; name["woodbury"] = "Woodbury";
    name["convexp"] = "Convolution exponential";
    pe["1x1"] = "3.285 +- 0.008"; pe["emerging"] = "3.245 +- 0.002";
    pe["woodbury"] = "3.247 +- 0.003"; pe["convexp"] = "3.237 +- 0.002";
    pn["1x1"] = "3.266 +- 0.007"; pn["emerging"] = "3.226 +- 0.002";
    pn["woodbury"] = "3.228 +- 0.003"; pn["convexp"] = "3.218 +- 0.003";
    printf "| mixing | -ELBO (test, ours) | -ELBO (test subset) | NLL, IW %d (test subset) | seeds | train + eval s / run | -ELBO (paper, CIFAR10) | NLL IW 1000 (paper) |\n", K;
    printf "|---|---|---|---|---|---|---|---|\n";
    for (i = 1; i <= 4; i++) {
        k = M[i];
        if (!n[k]) { printf "| %s | - | - | - | 0 | - | %s | %s |\n", name[k], pe[k], pn[k]; continue }
        printf "| %s | %s | %.4f | %s | %d | %.0f | %s | %s |\n", name[k], ms(e[k], ee[k], n[k]),
               we[k] / n[k], ms(w[k], ww[k], n[k]), n[k], t[k] / n[k], pe[k], pn[k];
    }
    printf "\nOurs: Fashion-MNIST, %d steps of 64 images per run; IW on the first %d test images.\n", S, N;
}' "$csv" > "$out/table1.md"
cat "$out/table1.md"

# figure: ours (Fashion-MNIST, IW NLL) and the paper (CIFAR10) in separate panels
awk -F, 'NR == 1 { print "dataset,model,seed,bpd"; next } { print $1 "," $2 "," $3 "," $5 }' \
    "$csv" > "$out/figure.csv"
if $F version | grep -q 'figures: none'; then
    echo "(this flowexp was built without cairo: no figure)"
else
    for ext in png pdf; do
        $F plot table --csv "$out/figure.csv" --value bpd --paper datasets/table1/paper.csv \
            --names datasets/table1/names.csv --title "Table 1: mixing layers (NLL, bits/dim)" \
            --ylabel "NLL (bits/dim)" --out "$out/table1.$ext"
    done
fi
