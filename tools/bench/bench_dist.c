/* The cost of the data-parallel reductions (flowexp/dist.h) against plain
 * MPI_Allreduce, for gradient blocks of realistic sizes.  Run under mpirun:
 *
 *   mpirun -np 2 build/tools/bench/bench_dist [--sizes 1e5,1e6,1e7] [--reps 20]
 *                                             [--threads 1]
 *
 * Per size and method: the median and the minimum over --reps calls of the
 * slowest rank's time (each call starts after a barrier), after two warm-up
 * calls; on a shared machine the minimum is the cost without preemption.
 * Methods: fxp_dist_grad_mean (fixed order), fxp_dist_grad_weighted (fixed
 * order, plus the count exchange), MPI_Allreduce(SUM) in place followed by
 * the 1/K scaling (what a non-deterministic implementation would do), and
 * fxp_dist_bcast_params (the start-of-run broadcast). */
#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowexp.h"

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { M_MEAN, M_WEIGHTED, M_ALLREDUCE, M_BCAST, M_COUNT };
static const char *method_name[M_COUNT] = { "fxp_dist_grad_mean", "fxp_dist_grad_weighted",
                                            "MPI_Allreduce+scale", "fxp_dist_bcast_params" };

static void die(int rank, const char *what)
{
    fprintf(stderr, "bench_dist (rank %d): %s: %s\n", rank, what, fxp_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    double sizes[16] = { 1e5, 1e6, 1e7 };
    int n_sizes = 3, reps = 20, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            n_sizes = 0;
            for (char *tok = strtok(argv[++i], ","); tok && n_sizes < 16; tok = strtok(NULL, ","))
                sizes[n_sizes++] = atof(tok);
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            if (rank == 0)
                fprintf(stderr, "usage: mpirun -np K %s [--sizes 1e5,1e6,1e7] [--reps 20] "
                        "[--threads 1]\n", argv[0]);
            MPI_Finalize();
            return 2;
        }
    }
    if (reps < 1 || reps > 10000 || threads < 1 || threads > 256 || n_sizes < 1) {
        if (rank == 0) fprintf(stderr, "%s: bad --reps, --threads or --sizes\n", argv[0]);
        MPI_Finalize();
        return 2;
    }
    for (int s = 0; s < n_sizes; s++)
        if (!(sizes[s] >= 1 && sizes[s] <= 1e9)) {
            if (rank == 0) fprintf(stderr, "%s: sizes must be in 1..1e9\n", argv[0]);
            MPI_Finalize();
            return 2;
        }

    fxp_ctx *ctx;
    fxp_dist *d;
    if (fxp_ctx_new(&ctx) < 0 || fxp_ctx_set_threads(ctx, threads) < 0) die(rank, "context");
    if (fxp_dist_new_comm(ctx, MPI_COMM_WORLD, &d) < 0) die(rank, "fxp_dist_new");
    if (rank == 0)
        printf("%d ranks x %d thread(s); %d calls, slowest rank\n"
               "%10s %8s  %-24s %10s %10s %10s\n", size, threads, reps, "floats", "MB",
               "method", "median ms", "min ms", "GB/s(min)");
    double *t = malloc((size_t)reps * sizeof *t);
    for (int s = 0; s < n_sizes; s++) {
        const int n = (int)sizes[s];
        fxp_params *ps;
        fxp_param *p;
        if (fxp_params_new(ctx, &ps) < 0 ||
            fxp_params_add(ps, "g", FXP_PARAM_TRAINABLE, 1, &n, &p) < 0)
            die(rank, "parameters");
        if (fxp_dist_bcast_params(d, ps, 0) < 0) die(rank, "fxp_dist_bcast_params");
        float *g = fxp_params_grad_data(ps);
        fxp_rng rng;
        fxp_rng_seed(&rng, (uint64_t)rank);
        fxp_rng_normal(&rng, g, (size_t)n, 0.0f, 1.0f); /* averaging keeps them finite */
        for (int m = 0; m < M_COUNT; m++) {
            for (int r = -2; r < reps; r++) {
                MPI_Barrier(MPI_COMM_WORLD);
                const double t0 = MPI_Wtime();
                int rc = 0;
                switch (m) {
                case M_MEAN: rc = fxp_dist_grad_mean(d, ps); break;
                case M_WEIGHTED: rc = fxp_dist_grad_weighted(d, ps, 1 + rank); break;
                case M_ALLREDUCE:
                    rc = MPI_Allreduce(MPI_IN_PLACE, g, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                    for (int i = 0; i < n; i++) g[i] *= 1.0f / (float)size;
                    break;
                case M_BCAST: rc = fxp_dist_bcast_params(d, ps, 0); break;
                }
                double dt = MPI_Wtime() - t0, slowest;
                if (rc != 0) die(rank, method_name[m]);
                MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
                if (r >= 0) t[r] = slowest;
            }
            qsort(t, (size_t)reps, sizeof *t, cmp_double);
            const double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
            if (rank == 0)
                printf("%10d %8.1f  %-24s %10.3f %10.3f %10.2f\n", n, n * 4e-6, method_name[m],
                       med * 1e3, t[0] * 1e3, n * 4e-9 / t[0]);
        }
        fxp_params_free(ps);
    }
    free(t);
    fxp_dist_free(d);
    fxp_ctx_free(ctx);
    MPI_Finalize();
    return 0;
}
