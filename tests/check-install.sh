#!/bin/sh
# Install the library into a temporary root and build an outside program
# against it with pkg-config, linking only libflowexp.so; then run it.
# Usage: check-install.sh BUILD_DIR EXAMPLE.c
set -eu
build=$1
example=$2
root=$(mktemp -d /tmp/fxp-install-XXXXXX)
trap 'rm -rf "$root"' EXIT
DESTDIR=$root meson install -C "$build" --no-rebuild --quiet >/dev/null
pc=$(find "$root" -name flowexp.pc | head -n 1)
[ -n "$pc" ] || { echo "flowexp.pc was not installed"; exit 1; }
libdir=$(dirname "$(find "$root" -name 'libflowexp.so' | head -n 1)")
export PKG_CONFIG_PATH=$(dirname "$pc")
prefix=$(pkg-config --variable=prefix flowexp)
flags=$(pkg-config --define-variable=prefix="$root$prefix" --cflags --libs flowexp)
echo "pkg-config --cflags --libs flowexp: $flags"
cc -std=c11 -Wall -Wextra -Werror -o "$root/raw_api" "$example" $flags -lm
# the program needs nothing but libflowexp.so (and what it links itself)
readelf -d "$root/raw_api" | grep NEEDED
LD_LIBRARY_PATH=$libdir "$root/raw_api"
