/* flowexp under MPI (dist.c): data-parallel training and evaluation.
 *
 * When flowexp is started by an MPI launcher (mpirun, mpiexec, srun: the
 * environment names a rank) and this build has MPI, main() initialises MPI
 * and every subcommand sees tool_ranks() > 1.  Without MPI, or started
 * directly, tool_ranks() is 1 and nothing changes.
 *
 * Faults: a rank that fails prints its message (prefixed with its rank) and
 * calls tool_dist_fail(), which aborts the whole job (MPI_Abort), so mpirun
 * exits non-zero within seconds instead of leaving its peers blocked in a
 * collective.  Checkpoints are written by rank 0 only, atomically, so the
 * last complete one survives any fault. */
#ifndef FLOWEXP_TOOL_DIST_H
#define FLOWEXP_TOOL_DIST_H

#include "flowexp.h"

/* From main(): initialise MPI if launched by an MPI launcher (0), or do
 * nothing; -1 if MPI was asked for and could not start. */
int tool_dist_init(int *argc, char ***argv);
/* From main(), at exit (MPI_Finalize). */
void tool_dist_finish(void);

int tool_rank(void);  /* 0 .. tool_ranks()-1 (0 without MPI) */
int tool_ranks(void); /* 1 without MPI */

/* The library's handle over MPI_COMM_WORLD (NULL with one rank); created on
 * first use with ctx for errors. */
fxp_dist *tool_dist(fxp_ctx *ctx);

/* With more than one rank: abort the job with exit status `code` after the
 * caller printed why.  With one rank: returns code. */
int tool_dist_fail(int code);

/* Rows [*off, *off + *count) of a global batch of n that this rank takes. */
void tool_shard(int64_t n, int64_t *off, int64_t *count);

#endif
