/* flowexp under MPI (dist.h). */
#include <stdio.h>
#include <stdlib.h>

#include "dist.h"
#include "tool_config.h"

#if FLOWEXP_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_ranks = 1, g_inited = 0;
static fxp_dist *g_dist;

/* Started by a launcher: Open MPI, MPICH/PMI, PMIx, or Slurm's srun. */
static int launched_by_mpi(void)
{
    static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK",
                                        "MPI_LOCALNRANKS" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int tool_dist_init(int *argc, char ***argv)
{
#if FLOWEXP_HAVE_MPI
    if (!launched_by_mpi()) return 0;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        fprintf(stderr, "flowexp: MPI_Init failed\n");
        return -1;
    }
    g_inited = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_ranks);
#else
    (void)argc;
    (void)argv;
    if (launched_by_mpi() && getenv("OMPI_COMM_WORLD_SIZE") &&
        atoi(getenv("OMPI_COMM_WORLD_SIZE")) > 1) {
        fprintf(stderr, "flowexp: started by an MPI launcher, but this flowexp was built without "
                        "MPI (meson option mpi; Debian: libopenmpi-dev): every rank would train "
                        "alone\n");
        return -1;
    }
#endif
    return 0;
}

void tool_dist_finish(void)
{
    fxp_dist_free(g_dist);
    g_dist = NULL;
#if FLOWEXP_HAVE_MPI
    if (g_inited) MPI_Finalize();
#endif
    g_inited = 0;
}

int tool_rank(void) { return g_rank; }
int tool_ranks(void) { return g_ranks; }

fxp_dist *tool_dist(fxp_ctx *ctx)
{
#if FLOWEXP_HAVE_MPI
    if (g_ranks > 1 && !g_dist) {
        MPI_Comm world = MPI_COMM_WORLD;
        if (fxp_dist_new(ctx, &world, &g_dist) < 0) {
            fprintf(stderr, "flowexp (rank %d): %s\n", g_rank, fxp_last_error());
            tool_dist_fail(1);
        }
    }
#else
    (void)ctx;
#endif
    return g_dist;
}

int tool_dist_fail(int code)
{
#if FLOWEXP_HAVE_MPI
    if (g_ranks > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    }
#endif
    return code;
}

void tool_shard(int64_t n, int64_t *off, int64_t *count)
{
    fxp_dist_shard(n, g_ranks, g_rank, off, count);
}
