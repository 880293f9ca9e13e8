#!/bin/sh
# Install the library into a temporary root and build outside programs
# against it with pkg-config, linking only libflowexp.so; then run them:
# the example program and every ```c block of the README (each a complete
# program).  Also: every public header of the source tree is installed.
# Usage: check-install.sh BUILD_DIR SOURCE_DIR EXAMPLE.c [SANITIZE]
# SANITIZE: meson's b_sanitize ("none", "address,undefined", ...); an
# outside program linking a sanitized library must link the sanitizer
# runtime itself, first (-fsanitize=...), or the runtime refuses to start.
set -eu
build=$1
src=$2
example=$3
sanitize=${4:-none}
root=$(mktemp -d /tmp/fxp-install-XXXXXX)
trap 'rm -rf "$root"' EXIT
DESTDIR=$root meson install -C "$build" --no-rebuild --quiet >/dev/null
pc=$(find "$root" -name flowexp.pc | head -n 1)
[ -n "$pc" ] || { echo "flowexp.pc was not installed"; exit 1; }
libdir=$(dirname "$(find "$root" -name 'libflowexp.so' | head -n 1)")
export PKG_CONFIG_PATH=$(dirname "$pc")
prefix=$(pkg-config --variable=prefix flowexp)
incdir=$(pkg-config --define-variable=prefix="$root$prefix" --variable=includedir flowexp)
for h in "$src"/include/flowexp.h "$src"/include/flowexp/*.h; do
    rel=${h#"$src"/include/}
    [ -f "$incdir/$rel" ] || { echo "public header $rel was not installed"; exit 1; }
done
flags=$(pkg-config --define-variable=prefix="$root$prefix" --cflags --libs flowexp)
echo "pkg-config --cflags --libs flowexp: $flags"
san=""
[ "$sanitize" = none ] || [ -z "$sanitize" ] || san="-fsanitize=$sanitize"

# build NAME SOURCE: compile and link an outside program, then run it
build_run() {
    # the sanitizer runtime first, then the program, then the library
    cc $san -std=c11 -Wall -Wextra -Werror -o "$root/$1" "$2" $flags -lm
    echo "== $1 ($2): NEEDED $(readelf -d "$root/$1" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
    LD_LIBRARY_PATH=$libdir "$root/$1"
}
build_run raw_api "$example"
# the README's ```c blocks, one program each
awk -v dir="$root" '
    /^```c[[:space:]]*$/ { n++; f = sprintf("%s/readme_%d.c", dir, n); inside = 1; next }
    /^```/ { inside = 0; next }
    inside { print > f }
    END { print n + 0 > (dir "/readme_count") }
' "$src/README.md"
count=$(cat "$root/readme_count")
[ "$count" -ge 1 ] || { echo "no \`\`\`c block found in README.md"; exit 1; }
i=1
while [ "$i" -le "$count" ]; do
    build_run "readme_$i" "$root/readme_$i.c"
    i=$((i + 1))
done
echo "README: $count C example(s) built against the installed library and ran"
