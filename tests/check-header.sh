#!/bin/sh
# Every public header (include/flowexp.h and every include/flowexp/*.h,
# found by globbing, so new headers are covered without editing this file)
# compiles alone, included twice, as strict C11 and, if g++ is present, as
# C++11; and flowexp.h includes every header of include/flowexp/.
# With a third argument (-I for <mpi.h>), flowexp.h also compiles after
# <mpi.h>, where dist.h adds the typed constructor fxp_dist_new_comm.
# Usage: check-header.sh CC INCLUDE_DIR [-IMPI_INCLUDE_DIR]
cc=$1; inc=$2; mpi_inc=${3:-}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
have_cxx=0
command -v g++ >/dev/null 2>&1 && have_cxx=1
fails=0; n=0
for h in "$inc"/flowexp.h "$inc"/flowexp/*.h; do
    rel=${h#"$inc"/}
    n=$((n + 1))
    printf '#include "%s"\n#include "%s"\nint main(void) { return 0; }\n' "$rel" "$rel" > "$tmp/t.c"
    if ! "$cc" -std=c11 -pedantic -Wall -Wextra -Werror -I"$inc" -c "$tmp/t.c" -o "$tmp/t.o" \
            2>"$tmp/err"; then
        echo "FAIL $rel does not compile alone as C11:"; head -n 5 "$tmp/err"; fails=$((fails + 1))
    fi
    if [ "$have_cxx" -eq 1 ]; then
        cp "$tmp/t.c" "$tmp/t.cpp"
        if ! g++ -std=c++11 -pedantic -Wall -Wextra -Werror -I"$inc" -c "$tmp/t.cpp" -o "$tmp/t2.o" \
                2>"$tmp/err"; then
            echo "FAIL $rel does not compile alone as C++11:"; head -n 5 "$tmp/err"; fails=$((fails + 1))
        fi
    fi
    case $rel in
    flowexp/*)
        grep -q "^#include \"$rel\"" "$inc/flowexp.h" || {
            echo "FAIL flowexp.h does not include $rel"; fails=$((fails + 1)); } ;;
    esac
done
[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "$n public headers compile alone with -std=c11 -pedantic -Werror$([ "$have_cxx" -eq 1 ] && echo ' and as C++11'), and flowexp.h includes them all"
[ -n "$mpi_inc" ] || exit 0
cat > "$tmp/m.c" <<'EOT'
#include <mpi.h>
#include "flowexp.h"
int open_world(fxp_ctx *ctx, fxp_dist **d);
int open_world(fxp_ctx *ctx, fxp_dist **d) { return fxp_dist_new_comm(ctx, MPI_COMM_WORLD, d); }
EOT
"$cc" -std=c11 -pedantic -Wall -Wextra -Werror -I"$inc" "$mpi_inc" -c "$tmp/m.c" -o "$tmp/m.o" || exit 1
if [ "$have_cxx" -eq 1 ]; then
    # Open MPI's deprecated C++ bindings warn under -Wextra: leave them out
    cp "$tmp/m.c" "$tmp/m.cpp"
    g++ -std=c++11 -pedantic -Wall -Wextra -Werror -DOMPI_SKIP_MPICXX -DMPICH_SKIP_MPICXX \
        -I"$inc" "$mpi_inc" -c "$tmp/m.cpp" -o "$tmp/m2.o" || exit 1
fi
echo "flowexp.h after <mpi.h> too, with fxp_dist_new_comm"
