#!/bin/sh
# End-to-end runs of `flowexp data cifar10` and `flowexp data fashion-mnist`
# on tiny files written here in the official formats: the summary line, and
# for missing, truncated or malformed input a message naming the file, exit
# status 1 (2 for usage errors) and no output file left behind.
# Usage: check-cli-images.sh path/to/flowexp
set -u
F=$1
T=$(mktemp -d /tmp/fxp-cli-images-XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
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
# stdout (or stderr) of the last command contains a string
says()    { grep -qF -- "$1" "$T/out" && ok "prints: $1" || fail "\"$1\" not in: $(cat "$T/out")"; }
names()   { grep -qF -- "$1" "$T/err" && ok "message names: $1" || fail "\"$1\" not in: $(cat "$T/err")"; }
# no output file and no temporary next to it
nothing() {
    if [ -e "$1" ] || ls "$(dirname "$1")" | grep -q '\.tmp\.'; then fail "output left behind: $1"
    else ok "no output left: $(basename "$1")"; fi
}

# bytes N VALUE: N copies of the byte VALUE (0..255)
bytes() { head -c "$1" /dev/zero | tr '\000' "\\$(printf '%03o' "$2")"; }
# be32 V: a big-endian uint32
be32() { printf "\\$(printf '%03o' $(($1 >> 24 & 255)))\\$(printf '%03o' $(($1 >> 16 & 255)))\\$(printf '%03o' $(($1 >> 8 & 255)))\\$(printf '%03o' $(($1 & 255)))"; }

# ---- CIFAR10: 2 records per file, label = file number, pixels = 10 * file + record
cifar() { # cifar DIR: the six files
    mkdir -p "$1"
    k=1
    for name in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
        for r in 0 1; do bytes 1 $((k % 10)); bytes 3072 $((10 * k + r)); done > "$1/$name.bin"
        k=$((k + 1))
    done
}
cifar "$T/c"
expect 0 "data cifar10" -- "$F" data cifar10 --from "$T/c" --out "$T/c.h5" --valid 3
says "train/valid/test 7/3/2 images of [3,32,32]"
[ -s "$T/c.h5" ] && ok "wrote c.h5" || fail "no c.h5"
cp "$T/c.h5" "$T/c.keep"
expect 0 "data cifar10 --help" -- "$F" data cifar10 --help
expect 2 "cifar10: --from is required" -- "$F" data cifar10 --out "$T/x.h5"
expect 2 "cifar10: --out is required" -- "$F" data cifar10 --from "$T/c"
expect 2 "cifar10: --valid 0" -- "$F" data cifar10 --from "$T/c" --out "$T/x.h5" --valid 0
expect 2 "cifar10: --valid not a number" -- "$F" data cifar10 --from "$T/c" --out "$T/x.h5" --valid ten
expect 2 "cifar10: unknown option" -- "$F" data cifar10 --from "$T/c" --out "$T/x.h5" --seed 1
expect 2 "data: unknown dataset" -- "$F" data imagenet --from "$T/c" --out "$T/x.h5"
nothing "$T/x.h5"
expect 1 "cifar10: --valid as large as the training set" -- "$F" data cifar10 --from "$T/c" --out "$T/x.h5" --valid 10
names "10"; nothing "$T/x.h5"
expect 1 "cifar10: missing directory" -- "$F" data cifar10 --from "$T/none" --out "$T/x.h5"
names "$T/none/data_batch_1.bin"; nothing "$T/x.h5"
cifar "$T/c2"; rm "$T/c2/data_batch_4.bin"
expect 1 "cifar10: missing file" -- "$F" data cifar10 --from "$T/c2" --out "$T/x.h5"
names "data_batch_4.bin"; nothing "$T/x.h5"
cifar "$T/c3"; head -c 5000 "$T/c/data_batch_2.bin" > "$T/c3/data_batch_2.bin"
expect 1 "cifar10: truncated file" -- "$F" data cifar10 --from "$T/c3" --out "$T/x.h5"
names "data_batch_2.bin is truncated"; nothing "$T/x.h5"
cifar "$T/c4"; { bytes 1 12; bytes 3072 0; } >> "$T/c4/test_batch.bin"
expect 1 "cifar10: label out of range" -- "$F" data cifar10 --from "$T/c4" --out "$T/x.h5" --valid 3
names "test_batch.bin: record 2 has label 12"; nothing "$T/x.h5"
: > "$T/c4/test_batch.bin"
expect 1 "cifar10: empty file" -- "$F" data cifar10 --from "$T/c4" --out "$T/x.h5"
names "test_batch.bin is empty"; nothing "$T/x.h5"
# a failed conversion leaves an existing output as it was
expect 1 "cifar10: failure over an existing file" -- "$F" data cifar10 --from "$T/c4" --out "$T/c.h5"
cmp -s "$T/c.h5" "$T/c.keep" && ok "existing output untouched" || fail "existing output changed"
expect 1 "cifar10: unwritable output" -- "$F" data cifar10 --from "$T/c" --out "$T/no/dir/x.h5"
[ ! -e "$T/no" ] && ok "no output directory created" || fail "output directory created"

# ---- Fashion-MNIST: IDX files, 5 training and 4 test images of 28 x 28
idx_images() { be32 2051; be32 "$1"; be32 28; be32 28; bytes $(($1 * 784)) "$2"; }
idx_labels() { be32 2049; be32 "$1"; bytes "$1" "$2"; }
fashion() { # fashion DIR gz|plain
    mkdir -p "$1"
    idx_images 5 7 > "$1/train-images-idx3-ubyte"
    idx_labels 5 3 > "$1/train-labels-idx1-ubyte"
    idx_images 4 9 > "$1/t10k-images-idx3-ubyte"
    idx_labels 4 4 > "$1/t10k-labels-idx1-ubyte"
    if [ "$2" = gz ]; then gzip -n "$1"/*-ubyte; fi
}
fashion "$T/f" plain
expect 0 "data fashion-mnist (plain files)" -- "$F" data fashion-mnist --from "$T/f" --out "$T/f.h5" --valid 2
says "train/valid/test 3/2/4 images of [1,28,28]"
fashion "$T/fz" gz
expect 0 "data fashion-mnist (gzip files)" -- "$F" data fashion-mnist --from "$T/fz" --out "$T/fz.h5" --valid 1
says "train/valid/test 4/1/4 images of [1,28,28]"
expect 0 "data fashion-mnist --help" -- "$F" data fashion-mnist --help
says "/usr/share/datasets/fashion-mnist"
expect 2 "fashion-mnist: --out is required" -- "$F" data fashion-mnist --from "$T/f"
expect 1 "fashion-mnist: --valid too large" -- "$F" data fashion-mnist --from "$T/f" --out "$T/x.h5" --valid 5
names "train-images-idx3-ubyte holds 5"; nothing "$T/x.h5"
fashion "$T/f2" gz; rm "$T/f2/t10k-labels-idx1-ubyte.gz"
expect 1 "fashion-mnist: missing file" -- "$F" data fashion-mnist --from "$T/f2" --out "$T/x.h5" --valid 2
names "t10k-labels-idx1-ubyte.gz"; nothing "$T/x.h5"
fashion "$T/f3" plain; head -c 3000 "$T/f/train-images-idx3-ubyte" > "$T/f3/train-images-idx3-ubyte"
expect 1 "fashion-mnist: truncated images" -- "$F" data fashion-mnist --from "$T/f3" --out "$T/x.h5" --valid 2
names "train-images-idx3-ubyte is truncated"; nothing "$T/x.h5"
fashion "$T/f4" gz; z="$T/fz/t10k-images-idx3-ubyte.gz"
head -c $(($(wc -c < "$z") - 10)) "$z" > "$T/f4/t10k-images-idx3-ubyte.gz"
expect 1 "fashion-mnist: truncated gzip" -- "$F" data fashion-mnist --from "$T/f4" --out "$T/x.h5" --valid 2
names "t10k-images-idx3-ubyte.gz is truncated"; nothing "$T/x.h5"
fashion "$T/f5" plain; idx_images 5 7 > "$T/f5/train-labels-idx1-ubyte"
expect 1 "fashion-mnist: images file given as labels" -- "$F" data fashion-mnist --from "$T/f5" --out "$T/x.h5" --valid 2
names "train-labels-idx1-ubyte: IDX data of rank 3"; nothing "$T/x.h5"
fashion "$T/f6" plain; printf 'x' >> "$T/f6/t10k-labels-idx1-ubyte"
expect 1 "fashion-mnist: trailing bytes" -- "$F" data fashion-mnist --from "$T/f6" --out "$T/x.h5" --valid 2
names "t10k-labels-idx1-ubyte has trailing bytes"; nothing "$T/x.h5"
fashion "$T/f7" plain; idx_labels 6 3 > "$T/f7/train-labels-idx1-ubyte"
expect 1 "fashion-mnist: label count differs" -- "$F" data fashion-mnist --from "$T/f7" --out "$T/x.h5" --valid 2
names "holds 5 images but"; nothing "$T/x.h5"
fashion "$T/f8" plain; idx_labels 4 11 > "$T/f8/t10k-labels-idx1-ubyte"
expect 1 "fashion-mnist: label out of range" -- "$F" data fashion-mnist --from "$T/f8" --out "$T/x.h5" --valid 2
names "label 0 is 11"; nothing "$T/x.h5"
fashion "$T/f9" plain; printf 'GIF89a not an IDX file' > "$T/f9/train-images-idx3-ubyte"
expect 1 "fashion-mnist: not an IDX file" -- "$F" data fashion-mnist --from "$T/f9" --out "$T/x.h5" --valid 2
names "train-images-idx3-ubyte is not an IDX file"; nothing "$T/x.h5"

# ---- the real data, when Debian's dataset-fashion-mnist is installed
if [ -d /usr/share/datasets/fashion-mnist ]; then
    expect 0 "data fashion-mnist from /usr/share/datasets/fashion-mnist" -- "$F" data fashion-mnist --out "$T/real.h5"
    says "train/valid/test 50000/10000/10000 images of [1,28,28]"
    rm -f "$T/real.h5"
else
    echo "skip real Fashion-MNIST: /usr/share/datasets/fashion-mnist is not installed"
fi

echo "$fails failure(s)"
[ $fails -eq 0 ]
