#!/bin/sh
# The umbrella header compiles alone as strict C11 (and as C++ if available).
# With a third argument (-I for <mpi.h>), also after <mpi.h>, where dist.h
# adds the typed constructor fxp_dist_new_comm.
cc=$1; inc=$2; mpi_inc=${3:-}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
printf '#include "flowexp.h"\nint main(void) { return fxp_version()[0] == 0; }\n' > "$tmp/t.c"
"$cc" -std=c11 -pedantic -Wall -Wextra -Werror -I"$inc" -c "$tmp/t.c" -o "$tmp/t.o" || exit 1
if command -v g++ >/dev/null 2>&1; then
    cp "$tmp/t.c" "$tmp/t.cpp"
    g++ -std=c++11 -pedantic -Wall -Wextra -Werror -I"$inc" -c "$tmp/t.cpp" -o "$tmp/t2.o" || exit 1
fi
echo "flowexp.h compiles alone with -std=c11 -pedantic -Werror"
[ -n "$mpi_inc" ] || exit 0
cat > "$tmp/m.c" <<'EOT'
#include <mpi.h>
#include "flowexp.h"
int open_world(fxp_ctx *ctx, fxp_dist **d);
int open_world(fxp_ctx *ctx, fxp_dist **d) { return fxp_dist_new_comm(ctx, MPI_COMM_WORLD, d); }
EOT
"$cc" -std=c11 -pedantic -Wall -Wextra -Werror -I"$inc" "$mpi_inc" -c "$tmp/m.c" -o "$tmp/m.o" || exit 1
if command -v g++ >/dev/null 2>&1; then
    # Open MPI's deprecated C++ bindings warn under -Wextra: leave them out
    cp "$tmp/m.c" "$tmp/m.cpp"
    g++ -std=c++11 -pedantic -Wall -Wextra -Werror -DOMPI_SKIP_MPICXX -DMPICH_SKIP_MPICXX \
        -I"$inc" "$mpi_inc" -c "$tmp/m.cpp" -o "$tmp/m2.o" || exit 1
fi
echo "after <mpi.h> too, with fxp_dist_new_comm"
