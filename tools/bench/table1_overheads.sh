#!/bin/sh
# Table 1's runtime columns: training-step time and the time to sample 100
# images of each mixing layer relative to the 1x1 convolution, at the paper's
# CIFAR10 architecture (random 3x32x32 images), measured with flowexp bench in
# alternating rounds (1x1, emerging, woodbury, convexp, 1x1, ...) so that a
# change of the machine's load hits every layer alike.
#
#   tools/bench/table1_overheads.sh [ROUNDS] [BATCH] [THREADS] > overheads.md
#
# Defaults: 2 rounds, training batch 16, 2 threads.  Each bench takes one
# warm-up step and 2 timed steps (median), and samples 100 images in chunks
# of 10.  Prints the raw numbers and a table of medians and ratios to 1x1.
set -eu
cd "$(dirname "$0")/../.."
rounds=${1:-2}
batch=${2:-16}
threads=${3:-2}
F=${FLOWEXP:-build/tools/flowexp/flowexp}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mixings="1x1 emerging woodbury convexp"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
echo "# Table 1 runtimes (flowexp bench, paper-size model, batch $batch, $threads threads)"
echo
echo "load before: $(uptime | sed 's/.*load average/load average/')"
echo
echo '```'
for r in $(seq 1 "$rounds"); do
    for m in $mixings; do
        j=$($F bench --model "flow-$m" --batch "$batch" --steps 2 --sample 100 --threads "$threads" --json)
        echo "round $r $m $j"
        echo "$m $(echo "$j" | sed 's/.*"train_step_s": \([^,]*\),.*"sample_s": \([^,]*\),.*"peak_rss_mb": \([^,]*\),.*"params": \([0-9]*\),.*/\1 \2 \3 \4/')" >> "$raw"
    done
done
echo '```'
echo
echo "load after: $(uptime | sed 's/.*load average/load average/')"
echo
awk '
{ n[$1]++; t[$1, n[$1]] = $2; s[$1, n[$1]] = $3; mem[$1] = $4; par[$1] = $5 }
function med(a, k, c,   i, j, v, x) { for (i = 1; i <= c; i++) v[i] = a[k, i];
    for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
    return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2 }
END {
    split("1x1 emerging woodbury convexp", M, " ");
    paper_t["1x1"] = "100.0%"; paper_t["emerging"] = "103.2%"; paper_t["woodbury"] = "133.2%"; paper_t["convexp"] = "104.6%";
    paper_s["1x1"] = "100.0%"; paper_s["emerging"] = "1223.5%"; paper_s["woodbury"] = "135.4%"; paper_s["convexp"] = "115.8%";
    bt = med(t, "1x1", n["1x1"]); bs = med(s, "1x1", n["1x1"]);
    print "| mixing | parameters | training step (s) | relative | paper | sample 100 (s) | relative | paper | peak RSS (MB) |";
    print "|---|---|---|---|---|---|---|---|---|";
    for (i = 1; i <= 4; i++) { k = M[i]; mt = med(t, k, n[k]); ms = med(s, k, n[k]);
        printf "| %s | %d | %.3f | %.1f%% | %s | %.3f | %.1f%% | %s | %.0f |\n", k, par[k], mt, 100 * mt / bt,
            paper_t[k], ms, 100 * ms / bs, paper_s[k], mem[k] }
}' "$raw"
