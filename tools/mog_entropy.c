/* mog_entropy: the exact entropy per node of the MoG graph datasets by Monte
 * Carlo (fxp_mog_entropy), beside the separated-mode formula and the
 * per-node marginal bound; the numbers in docs/datasets.md come from
 *   build/tools/mog_entropy --samples 100000 --seed 1
 * Usage: mog_entropy [--samples N] [--seed S] [--threads T] [DATASET...]
 * (DATASET: mog4 mog9 mog16 ring; default all four). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowexp.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int usage(void)
{
    fprintf(stderr, "usage: mog_entropy [--samples N>=2] [--seed S] [--threads T>=1] "
                    "[mog4|mog9|mog16|ring ...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    long samples = 20000, threads = 0;
    unsigned long long seed = 1;
    fxp_mog_kind kinds[FXP_MOG_KINDS * 4];
    int n_kinds = 0;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--samples") && i + 1 < argc) {
            samples = strtol(argv[++i], &end, 10);
            if (*end || samples < 2 || samples > 100000000) return usage();
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], &end, 10);
            if (*end) return usage();
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = strtol(argv[++i], &end, 10);
            if (*end || threads < 1 || threads > 1024) return usage();
        } else if (argv[i][0] != '-' && n_kinds < FXP_MOG_KINDS * 4) {
            if (fxp_mog_parse(argv[i], &kinds[n_kinds]) < 0) {
                fprintf(stderr, "mog_entropy: %s\n", fxp_last_error());
                return 2;
            }
            n_kinds++;
        } else {
            return usage();
        }
    }
    if (!n_kinds)
        for (int k = 0; k < FXP_MOG_KINDS; k++) kinds[n_kinds++] = (fxp_mog_kind)k;
    fxp_ctx *ctx = NULL;
    if (fxp_ctx_new(&ctx) < 0 || (threads && fxp_ctx_set_threads(ctx, (int)threads) < 0)) {
        fprintf(stderr, "mog_entropy: %s\n", fxp_last_error());
        return 1;
    }
    printf("# entropy per node (nats): Monte Carlo with exact log p, %ld samples, seed %llu, "
           "%d threads\n", samples, seed, fxp_ctx_threads(ctx));
    printf("%-6s %3s %10s %9s %11s %9s %8s\n", "name", "N", "entropy", "stderr", "separated",
           "marginal", "seconds");
    for (int k = 0; k < n_kinds; k++) {
        double h, se, t0 = now();
        if (fxp_mog_entropy(ctx, kinds[k], seed, (int)samples, &h, &se) < 0) {
            fprintf(stderr, "mog_entropy: %s\n", fxp_last_error());
            fxp_ctx_free(ctx);
            return 1;
        }
        printf("%-6s %3d %10.5f %9.5f %11.5f %9.5f %8.2f\n", fxp_mog_name(kinds[k]),
               fxp_mog_nodes(kinds[k]), h, se, fxp_mog_entropy_separated(kinds[k]),
               fxp_mog_marginal_bound(kinds[k]), now() - t0);
    }
    fxp_ctx_free(ctx);
    return 0;
}
