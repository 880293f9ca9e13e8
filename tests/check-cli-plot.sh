#!/bin/sh
# The figures of the flowexp program on a tiny run: `sample --figure/--png`
# and `plot curves|table` in every format (PNG signature and IHDR size, SVG
# root element, PDF header and trailer), the Table 4 script's figure from a
# made-up results.csv, and bad output paths (message, non-zero exit, nothing
# left behind).  In a build without cairo, every figure request must fail
# with a message naming cairo and write nothing.
#   check-cli-plot.sh path/to/flowexp SOURCE_ROOT
set -u
F=$1
SRC=$2
T=$(mktemp -d /tmp/fxp-plot-XXXXXX) || exit 1
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
fails=0
ok()   { printf 'ok   %s\n' "$1"; }
fail() { printf 'FAIL %s\n' "$1"; fails=$((fails + 1)); }
# expect STATUS DESCRIPTION -- command...: exit status and a non-empty stderr on failure
expect() {
    want=$1; what=$2; shift 3
    "$@" >"$T/out" 2>"$T/err"; got=$?
    if [ "$got" -ne "$want" ]; then fail "$what (exit $got, want $want): $(cat "$T/err")"; return; fi
    if [ "$want" -ne 0 ] && [ ! -s "$T/err" ]; then fail "$what: no message"; return; fi
    ok "$what"
}
# u32 FILE OFFSET: big-endian 32-bit integer
u32() { od -An -tu1 -j "$2" -N 4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'; }
# is_png FILE [W H]: PNG signature, IHDR, and its size if given
is_png() {
    [ "$(od -An -tx1 -N 8 "$1" | tr -d ' \n')" = 89504e470d0a1a0a ] || return 1
    [ "$(od -An -c -j 12 -N 4 "$1" | tr -d ' \n')" = IHDR ] || return 1
    [ $# -eq 1 ] || { [ "$(u32 "$1" 16)" = "$2" ] && [ "$(u32 "$1" 20)" = "$3" ]; }
}
is_svg() { head -c 400 "$1" | grep -q '<svg ' && tail -c 20 "$1" | grep -q '</svg>'; }
is_pdf() { [ "$(head -c 5 "$1")" = "%PDF-" ] && tail -c 16 "$1" | grep -q '%%EOF'; }
# is_fmt FILE EXT [W H]
is_fmt() {
    f=$1; e=$2; shift 2
    case $e in png) is_png "$f" "$@";; svg) is_svg "$f";; pdf) is_pdf "$f";; esac
}
no_temp() { # DIR: no temporary figure files left
    if ls -a "$1" | grep -q '\.tmp\.'; then fail "temporary file left in $1: $(ls -a "$1")"; else ok "nothing left in $1"; fi
}

# a tiny run: data, 40 steps of training (log.csv), a results table
expect 0 "data mog4" -- "$F" data mog --dataset mog4 --seed 3 --out "$T/d.h5" --n-train 256 --n-valid 64 --n-test 64 --entropy-samples 200
expect 0 "train 40 steps" -- "$F" train --model gnf-gce --data "$T/d.h5" --out "$T/run" --threads 1 --quiet --set batch=32 --set couplings=2 --set hidden=16 --steps 40 --seed 7 --eval-every 10
ck=$T/run/checkpoint.h5
mkdir "$T/t4"
cat > "$T/t4/results.csv" <<EOF
dataset,model,seed,nll_nats_per_node,entropy_per_node,best_step,steps_trained,step_budget
mog4,coupling,0,4.25,3.634,900,1000,1000
mog4,coupling,1,4.27,3.634,950,1000,1000
mog4,gnf,0,3.70,3.634,1000,1000,1000
mog4,gnf,1,3.68,3.634,1000,1000,1000
mog4,gnf-gce,0,3.67,3.634,1000,1000,1000
mog4,gnf-gce,1,3.69,3.634,1000,1000,1000
mog9,gnf,0,4.61,4.259,1000,1000,1000
mog9,gnf-gce,0,4.49,4.259,1000,900,1000
EOF

if "$F" version | grep -q 'figures: none'; then
    # ---- built without cairo: every figure request says so, and writes nothing
    expect 1 "sample --figure without cairo" -- "$F" sample --checkpoint "$ck" --n 5 --out "$T/s.h5" --figure "$T/s.png"
    grep -q 'sample figure.*without cairo' "$T/err" && ok "message names the figure and cairo" || fail "message: $(cat "$T/err")"
    [ ! -e "$T/s.h5" ] && [ ! -e "$T/s.png" ] && ok "no work done, no file" || fail "files written without cairo"
    expect 1 "plot curves without cairo" -- "$F" plot curves --log "$T/run/log.csv" --out "$T/c.svg"
    grep -q 'learning curves.*without cairo' "$T/err" && ok "message names the curves and cairo" || fail "message: $(cat "$T/err")"
    expect 1 "plot table without cairo" -- "$F" plot table --csv "$T/t4/results.csv" --out "$T/t.pdf"
    grep -q 'results figure.*without cairo' "$T/err" && ok "message names the table and cairo" || fail "message: $(cat "$T/err")"
    expect 0 "sample without a figure still works" -- "$F" sample --checkpoint "$ck" --n 5 --out "$T/s.h5"
    ls "$T" | grep -qE '\.(png|svg|pdf)' && fail "a figure was written" || ok "no figure files"
    echo "$fails failure(s)"
    [ $fails -eq 0 ]
    exit
fi

# ---- sample: --figure in every format, --png, single graphs, colours
for e in png svg pdf; do
    expect 0 "sample --figure s.$e" -- "$F" sample --checkpoint "$ck" --n 60 --out "$T/s.h5" --figure "$T/s.$e" --data "$T/d.h5" --figure-size 800x700 --graphs 4 --color-nodes
    is_fmt "$T/s.$e" $e 800 700 && ok "valid $e, 800 x 700" || fail "bad $e: $(head -c 60 "$T/s.$e" | od -c | head -2)"
done
expect 0 "sample --png (default size)" -- "$F" sample --checkpoint "$ck" --n 50 --out "$T/s.h5" --png "$T/p.png" --data "$T/d.h5"
is_png "$T/p.png" && [ "$(u32 "$T/p.png" 16)" = 900 ] && ok "--png: a PNG 900 wide" || fail "--png: not a 900-wide PNG"
expect 0 "sample --figure without --data" -- "$F" sample --checkpoint "$ck" --n 50 --out "$T/s.h5" --figure "$T/m.png"
is_png "$T/m.png" && [ "$(u32 "$T/m.png" 16)" = 560 ] && ok "model-only figure: one panel, 560 wide" || fail "model-only figure"
expect 0 "sample --format pdf, no extension" -- "$F" sample --checkpoint "$ck" --n 20 --out "$T/s.h5" --figure "$T/fig" --format pdf
is_pdf "$T/fig" && ok "format from --format" || fail "--format pdf ignored"
expect 2 "sample: unknown figure extension" -- "$F" sample --checkpoint "$ck" --n 5 --out "$T/x.h5" --figure "$T/x.gif"
expect 2 "sample: format contradicts extension" -- "$F" sample --checkpoint "$ck" --n 5 --out "$T/x.h5" --figure "$T/x.png" --format svg
expect 2 "sample: --png and --figure" -- "$F" sample --checkpoint "$ck" --n 5 --out "$T/x.h5" --figure "$T/x.png" --png "$T/y.png"
expect 2 "sample: --graphs without a figure" -- "$F" sample --checkpoint "$ck" --n 5 --out "$T/x.h5" --graphs 3
expect 2 "sample: --graphs out of range" -- "$F" sample --checkpoint "$ck" --n 5 --out "$T/x.h5" --figure "$T/x.png" --graphs 99
expect 2 "sample: bad --figure-size" -- "$F" sample --checkpoint "$ck" --n 5 --out "$T/x.h5" --figure "$T/x.png" --figure-size 800
expect 1 "sample: figure too small" -- "$F" sample --checkpoint "$ck" --n 5 --out "$T/x.h5" --figure "$T/x.png" --figure-size 100x100 --graphs 8
[ ! -e "$T/x.png" ] && ok "no figure after usage errors" || fail "figure written after an error"

# ---- plot curves
for e in png svg pdf; do
    expect 0 "plot curves $e" -- "$F" plot curves --log "$T/run/log.csv" --out "$T/c.$e" --reference 3.64 --reference-label "dataset entropy" --title "gnf-gce on mog4" --size 640x400
    is_fmt "$T/c.$e" $e 640 400 && ok "valid $e, 640 x 400" || fail "bad curves $e"
done
expect 0 "plot curves, default size" -- "$F" plot curves --log "$T/run/log.csv" --out "$T/c2.png"
is_png "$T/c2.png" 760 480 && ok "760 x 480 by default" || fail "default curves size"
printf 'step,epoch,train_bpd,valid_bpd,lr,seconds\n100,1,4.2,4.1,0.001,3\n200,2,3.9,,0.001,6\n300,3,3.7,3.65,0.001,9\n' > "$T/bpd.csv"
expect 0 "plot curves from a bits/dim log" -- "$F" plot curves --log "$T/bpd.csv" --out "$T/b.png" --reference 3.35 --reference-label "paper"
printf 'step,loss\n1,2\n' > "$T/bad.csv"
expect 1 "plot curves: not a training log" -- "$F" plot curves --log "$T/bad.csv" --out "$T/x.png"
grep -q 'train_nll' "$T/err" && ok "message names the columns" || fail "message: $(cat "$T/err")"
expect 1 "plot curves: missing log" -- "$F" plot curves --log "$T/nope.csv" --out "$T/x.png"
expect 2 "plot curves: missing --out" -- "$F" plot curves --log "$T/run/log.csv"
expect 2 "plot curves: label without reference" -- "$F" plot curves --log "$T/run/log.csv" --out "$T/x.png" --reference-label x
expect 2 "plot curves: --ymin above --ymax" -- "$F" plot curves --log "$T/run/log.csv" --out "$T/x.png" --ymin 5 --ymax 4
expect 2 "plot: unknown figure" -- "$F" plot histogram
expect 0 "plot --help" -- "$F" plot --help
[ ! -e "$T/x.png" ] && ok "no figure after failures" || fail "figure written after a failure"

# ---- plot table (formats defined in the README) and the Table 4 script
for e in png svg pdf; do
    expect 0 "plot table $e" -- "$F" plot table --csv "$T/t4/results.csv" --paper "$SRC/datasets/table4/paper.csv" --names "$SRC/datasets/table4/names.csv" --reference-column entropy_per_node --out "$T/t.$e" --size 900x450
    is_fmt "$T/t.$e" $e 900 450 && ok "valid $e, 900 x 450" || fail "bad table $e"
done
expect 0 "plot table, default size" -- "$F" plot table --csv "$T/t4/results.csv" --out "$T/t2.png"
is_png "$T/t2.png" $((120 + 2 * 230)) 480 && ok "120 + 230 per dataset wide" || fail "default table size"
printf 'dataset,model,value\nmog4,gnf\n' > "$T/badpaper.csv"
expect 1 "plot table: malformed paper file" -- "$F" plot table --csv "$T/t4/results.csv" --paper "$T/badpaper.csv" --out "$T/x.png"
grep -q 'badpaper.csv:2' "$T/err" && ok "message names file and line" || fail "message: $(cat "$T/err")"
expect 0 "reproduce-table4.sh --report" -- env FLOWEXP="$F" sh "$SRC/datasets/reproduce-table4.sh" --report "$T/t4"
is_png "$T/t4/table4.png" && is_pdf "$T/t4/table4.pdf" && [ -s "$T/t4/table4.md" ] && ok "table4.md, .png and .pdf" || fail "Table 4 report: $(ls "$T/t4")"
grep -q '3.690 +- 0.014' "$T/t4/table4.md" && ok "table4.md has our gnf mean" || fail "table4.md: $(cat "$T/t4/table4.md")"

# ---- bad output paths: a message, non-zero exit, nothing left behind
expect 1 "figure in a missing directory" -- "$F" plot curves --log "$T/run/log.csv" --out "$T/none/c.png"
grep -q "$T/none/c.png" "$T/err" && ok "message names the path" || fail "message: $(cat "$T/err")"
[ ! -e "$T/none" ] && ok "no directory created" || fail "directory created"
: > "$T/plain"
expect 1 "figure under a regular file" -- "$F" plot table --csv "$T/t4/results.csv" --out "$T/plain/t.svg"
mkdir "$T/adir"
expect 1 "figure onto a directory" -- "$F" sample --checkpoint "$ck" --n 5 --out "$T/s.h5" --figure "$T/adir"  --format pdf
no_temp "$T"
no_temp "$T/adir"
# an unwritable directory (root may write anywhere: use sysfs, if it refuses)
mkdir "$T/ro" && chmod 555 "$T/ro"
if ! ( : > "$T/ro/probe" ) 2>/dev/null; then
    expect 1 "figure in an unwritable directory" -- "$F" plot curves --log "$T/run/log.csv" --out "$T/ro/c.pdf"
    [ -z "$(ls -A "$T/ro")" ] && ok "nothing left in it" || fail "left in it: $(ls -A "$T/ro")"
elif [ -d /sys ] && ! ( : > /sys/fxp-probe ) 2>/dev/null; then
    expect 1 "figure in an unwritable directory (/sys)" -- "$F" plot curves --log "$T/run/log.csv" --out /sys/fxp-curves.png
    ls -a /sys | grep -q fxp- && fail "left something in /sys" || ok "nothing left in /sys"
else
    echo "skip unwritable directory: every directory is writable here"
fi

echo "$fails failure(s)"
[ $fails -eq 0 ]
