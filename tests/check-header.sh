#!/bin/sh
# The umbrella header compiles alone as strict C11 (and as C++ if available).
cc=$1; inc=$2
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
printf '#include "flowexp.h"\nint main(void) { return fxp_version()[0] == 0; }\n' > "$tmp/t.c"
"$cc" -std=c11 -pedantic -Wall -Wextra -Werror -I"$inc" -c "$tmp/t.c" -o "$tmp/t.o" || exit 1
if command -v g++ >/dev/null 2>&1; then
    cp "$tmp/t.c" "$tmp/t.cpp"
    g++ -std=c++11 -pedantic -Wall -Wextra -Werror -I"$inc" -c "$tmp/t.cpp" -o "$tmp/t2.o" || exit 1
fi
echo "flowexp.h compiles alone with -std=c11 -pedantic -Werror"
