#!/bin/sh
# The paper's Tables 2 and 3 at a reduced, equal budget on Fashion-MNIST:
# Table 2 = the coupling baseline, residual block flows (full and "equal
# memory" depth) and the convolutional Sylvester flow, each with uniform and
# variational dequantization; Table 3 = the Sylvester flow without
# generalisation and without the basis change (variational).  One seed each,
# the same configuration (datasets/table23/fmnist.conf) and number of steps
# for every run; then test -ELBO (and the IW NLL, not for the residual flows,
# whose log-determinant is a stochastic estimate) beside the paper's CIFAR10
# numbers, and each model's training step time and peak memory from
# flowexp bench.
#
#   datasets/reproduce-table23.sh [OUT_DIR] [STEPS] [PARALLEL_RUNS]
#   datasets/reproduce-table23.sh --report OUT_DIR
#
# --report also works on the concatenated results.csv of several seeds' runs
# (header once): the tables then give means and seed spread.
#
# Defaults: runs/table23, 1500 steps of 32 images, 2 runs at a time with 1
# thread each; -ELBO on the first ELBO_N (2000) test images, IW with IW_K (20)
# samples on the first IW_N (500).  Writes OUT_DIR/results.csv, table23.md
# and table23.{png,pdf}.  FLOWEXP=path/to/flowexp uses that program; SEED=S
# trains with seed S (default 0; one seed per OUT_DIR).
set -eu
case ${FLOWEXP:-/} in /*) ;; *) FLOWEXP=$PWD/$FLOWEXP;; esac
cd "$(dirname "$0")/.."
. datasets/reproduce-common.sh
reproduce_report reproduce-table23 "$@"
[ "$report" -eq 0 ] || shift
out=${1:-runs/table23}
steps=${2:-1500}
parallel=${3:-2}
elbo_n=${ELBO_N:-2000}
iw_k=${IW_K:-20}
iw_n=${IW_N:-500}
seed=${SEED:-0}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
reproduce_flowexp
mkdir -p "$out"
csv=$out/results.csv
jobs="coupling-flow,uniform coupling-flow,variational resflow,uniform resflow,variational
      resflow-half,uniform resflow-half,variational sylvester,uniform sylvester,variational
      sylvester-nogen,variational sylvester-nobasis,variational"
num() { sed -n "s/.*\"$2\": \([-+.0-9eE]*\).*/\1/p" "$1"; }

if [ $report -eq 0 ]; then
[ -s "$out/fmnist.h5" ] || $F data fashion-mnist --out "$out/fmnist.h5"
run_one() { # model dequantization
    dir=$out/$1-$2
    if [ -s "$dir/result.json" ]; then return 0; fi
    extra=""
    [ "$1" = resflow-half ] && extra="--set subflows=2"
    start=$(date +%s)
    # shellcheck disable=SC2086
    if $F train --model "$1" --config datasets/table23/fmnist.conf --set dequantization="$2" $extra \
            --data "$out/fmnist.h5" --out "$dir" --steps "$steps" --eval-every $(( steps / 10 > 0 ? steps / 10 : 1 )) \
            --valid-n 1000 --seed "$seed" --threads 1 --quiet --force > "$dir.train.txt" 2>&1 &&
       $F eval --checkpoint "$dir/best.h5" --data "$out/fmnist.h5" --split test --n "$elbo_n" \
            --json --quiet --threads 1 > "$dir/elbo.json"; then
        case $1 in
        resflow*) echo '{}' > "$dir/iw.json" ;;
        *) $F eval --checkpoint "$dir/best.h5" --data "$out/fmnist.h5" --split test --n "$iw_n" \
               --iw-samples "$iw_k" --json --quiet --threads 1 > "$dir/iw.json" ;;
        esac
        echo "{\"seconds\": $(( $(date +%s) - start ))}" > "$dir/time.json"
        cp "$dir/elbo.json" "$dir/result.json"
        echo "done $1 $2: $(cat "$dir/elbo.json")"
    else
        echo "FAILED $1 $2 (see $dir.train.txt)"
    fi
}
i=0
for j in $jobs; do
    run_one "${j%,*}" "${j#*,}" &
    i=$((i + 1))
    if [ $((i % parallel)) -eq 0 ]; then wait; fi
done
wait
# step time and peak memory of each model at the table's size (one thread, batch 32)
for m in coupling-flow resflow resflow-half sylvester sylvester-nogen sylvester-nobasis; do
    [ -s "$out/bench-$m.json" ] && continue
    extra=""
    [ "$m" = resflow-half ] && extra="--set subflows=2"
    # shellcheck disable=SC2086
    $F bench --model "$m" $(grep -v '^#' datasets/table23/fmnist.conf | sed -n 's/^\([a-z_0-9]*\) *= *\([^ ]*\)$/--set \1=\2/p' | grep -v 'batch=\|warmup=\|eval_batch=') \
        --set channels=1 --set height=28 --set width=28 --set dequantization=variational $extra \
        --batch 32 --steps 3 --threads 1 --json > "$out/bench-$m.json" || rm -f "$out/bench-$m.json"
done
echo "dataset,model,seed,bpd_elbo,bpd_iw,iw_samples,steps,seconds,train_step_s,peak_rss_mb" > "$csv"
for j in $jobs; do
    m=${j%,*}; d=${j#*,}; dir=$out/$m-$d
    [ -s "$dir/result.json" ] || continue
    b=$out/bench-$m.json
    echo "fashion-mnist $d,$m,$seed,$(num "$dir/elbo.json" bpd_elbo),$(num "$dir/iw.json" bpd_iw),$iw_k,$steps,$(num "$dir/time.json" seconds),$( [ -s "$b" ] && num "$b" train_step_s),$( [ -s "$b" ] && num "$b" peak_rss_mb)" >> "$csv"
done
fi

awk -F, '
NR == 1 { next }
{ split($1, dq, " "); k = $2 "," dq[2]; n[k]++; e[k] += $4; e2[k] += $4 * $4; t[$2] = $9; mem[$2] = $10
  S = $7; if (!($3 in seen)) { seen[$3] = 1; seeds = seeds (seeds == "" ? "" : ", ") $3 }
  if ($5 != "") { nw[k]++; w[k] += $5 } }
END {
    split("coupling-flow resflow resflow-half sylvester", T2, " ");
    name["coupling-flow"] = "Baseline coupling flow"; name["resflow"] = "Residual block flows";
    name["resflow-half"] = "... with equal memory budget"; name["sylvester"] = "Convolutional Sylvester flows";
    name["sylvester-nogen"] = "Without generalisation (f_AR)"; name["sylvester-nobasis"] = "Without basis change";
    p["coupling-flow,uniform"] = "3.38 / 3.35"; p["coupling-flow,variational"] = "3.27 / 3.25";
    p["resflow,uniform"] = "3.37 / -"; p["resflow,variational"] = "3.26 / -";
    p["resflow-half,uniform"] = "3.44 / -"; p["resflow-half,variational"] = "3.35 / -";
    p["sylvester,uniform"] = "3.32 / 3.29"; p["sylvester,variational"] = "3.21 / 3.19";
    p["sylvester-nogen,variational"] = "3.44 / 3.42"; p["sylvester-nobasis,variational"] = "3.27 / 3.25";
    f = "%s / %s";
    print "Table 2 (bits/dim; ours: Fashion-MNIST, -ELBO / IW NLL; paper: CIFAR10 -ELBO / NLL)\n";
    print "| model | unif. deq. (ours) | var. deq. (ours) | unif. (paper) | var. (paper) | step (s) | peak memory (MB) |";
    print "|---|---|---|---|---|---|---|";
    for (i = 1; i <= 4; i++) { m = T2[i];
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", name[m],
            cell(m ",uniform"), cell(m ",variational"), p[m ",uniform"], p[m ",variational"], t[m], mem[m] }
    print "\nTable 3 (variational dequantization; bits/dim)\n";
    print "| model | ours (-ELBO / IW NLL) | paper (-ELBO / NLL) | step (s) | peak memory (MB) |";
    print "|---|---|---|---|---|";
    split("sylvester sylvester-nogen sylvester-nobasis", T3, " ");
    for (i = 1; i <= 3; i++) { m = T3[i];
        printf "| %s | %s | %s | %s | %s |\n", name[m], cell(m ",variational"), p[m ",variational"], t[m], mem[m] }
    printf "\n%d steps of 32 images per run; seeds %s (means; ± the sample standard deviation\nof the -ELBO over seeds when there are several).\n", S, seeds;
}
function cell(k,   m, sd) {
    if (!(k in n)) return "-"
    m = e[k] / n[k]
    sd = n[k] > 1 ? sprintf(" ± %.3f", sqrt((e2[k] - n[k] * m * m > 0 ? e2[k] - n[k] * m * m : 0) / (n[k] - 1))) : ""
    return sprintf("%.4f%s / %s", m, sd, nw[k] ? sprintf("%.4f", w[k] / nw[k]) : "-")
}
' "$csv" > "$out/table23.md"
cat "$out/table23.md"

awk -F, 'NR == 1 { print "dataset,model,seed,bpd"; next } { print $1 "," $2 "," $3 "," $4 }' "$csv" > "$out/figure.csv"
if $F version | grep -q 'figures: none'; then
    echo "(this flowexp was built without cairo: no figure)"
else
    for ext in png pdf; do
        $F plot table --csv "$out/figure.csv" --value bpd --paper datasets/table23/paper.csv \
            --names datasets/table23/names.csv --title "Tables 2-3: residual transformations (-ELBO, bits/dim)" \
            --ylabel "-ELBO (bits/dim)" --out "$out/table23.$ext"
    done
fi
