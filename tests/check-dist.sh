#!/bin/sh
# Runs check-dist (data-parallel training over MPI) under Open MPI's mpirun
# with 1, 2 and 3 ranks (3 oversubscribes a 2-core machine), and a second time
# with 2 ranks to check that a rerun repeats the final parameters bit for bit;
# then a rank that fails and calls MPI_Abort while its peer waits in a
# collective must end the job, non-zero, within seconds.
# Skipped (exit 77) without Open MPI's mpirun.
# Usage: check-dist.sh CHECK_DIST_EXE
set -u
exe=$1
if ! command -v mpirun >/dev/null 2>&1; then
    echo "mpirun not found: skipped"; exit 77
fi
if ! mpirun --version 2>&1 | grep -q "Open MPI"; then
    echo "mpirun is not Open MPI's: skipped"; exit 77
fi
# One node, no network: the shared-memory and self transports only, the ob1
# messaging layer (no UCX or libfabric probing), no single-copy (CMA) which
# containers often forbid; one OpenMP thread per rank (the program also sets
# its context to 1 thread).  --bind-to none: the machine is shared.
export OMPI_MCA_btl=self,vader
export OMPI_MCA_pml=ob1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMP_NUM_THREADS=1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
run() { # run K OUTFILE
    timeout -k 10 300 mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$1" "$exe" \
        >"$2" 2>"$2.err"
    rc=$?
    cat "$2" "$2.err"
    if [ $rc -ne 0 ]; then echo "check-dist with $1 rank(s) failed (status $rc)"; exit 1; fi
}
run 1 "$tmp/k1"
run 2 "$tmp/k2"
run 3 "$tmp/k3"
run 2 "$tmp/k2b"
a=$(grep -o 'fnv64 [0-9a-f]*' "$tmp/k2"); b=$(grep -o 'fnv64 [0-9a-f]*' "$tmp/k2b")
if [ -z "$a" ] || [ "$a" != "$b" ]; then
    echo "two runs with 2 ranks ended with different parameters: [$a] vs [$b]"; exit 1
fi
echo "a rerun with 2 ranks repeats the final parameters bit for bit"

start=$(date +%s)
timeout -k 10 120 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$exe" --abort \
    >"$tmp/abort" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
if [ $rc -eq 0 ] || [ $rc -eq 124 ] || [ $rc -eq 137 ] || ! grep -q "simulated failure" "$tmp/abort"; then
    cat "$tmp/abort"; echo "MPI_Abort on one rank did not end the job (status $rc)"; exit 1
fi
echo "MPI_Abort on rank 1 ended the job in ${secs} s with status $rc"
