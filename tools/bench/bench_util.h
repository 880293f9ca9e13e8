/* Timing helpers shared by the benchmark programs (not part of the library). */
#ifndef FLOWEXP_BENCH_UTIL_H
#define FLOWEXP_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowexp.h"

/* The benchmarks' shared command line:
 *   [--threads 1,2] [--quick] [--json FILE] [--algo auto|im2col|direct] */
typedef struct bench_args {
    int threads[8], n_threads, quick;
    fxp_conv_algo algo;
    const char *json;
} bench_args;

static inline const char *bench_algo_name(fxp_conv_algo a)
{
    return a == FXP_CONV_AUTO ? "auto" : a == FXP_CONV_IM2COL ? "im2col" : "direct";
}

/* 0 on success; otherwise prints a message and returns the exit status 2. */
static inline int bench_parse_args(int argc, char **argv, bench_args *a)
{
    *a = (bench_args){ { 1, 2 }, 2, 0, FXP_CONV_AUTO, NULL };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            a->quick = 1;
        } else if (!strcmp(argv[i], "--algo") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "auto")) a->algo = FXP_CONV_AUTO;
            else if (!strcmp(v, "im2col")) a->algo = FXP_CONV_IM2COL;
            else if (!strcmp(v, "direct")) a->algo = FXP_CONV_DIRECT;
            else {
                fprintf(stderr, "%s: --algo must be auto, im2col or direct\n", argv[0]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            a->n_threads = 0;
            for (char *tok = strtok(argv[++i], ","); tok && a->n_threads < 8; tok = strtok(NULL, ","))
                a->threads[a->n_threads++] = atoi(tok);
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            a->json = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--threads 1,2] [--quick] [--json FILE] "
                    "[--algo auto|im2col|direct]\n", argv[0]);
            return 2;
        }
    }
    if (a->n_threads < 1) {
        fprintf(stderr, "%s: --threads needs at least one count\n", argv[0]);
        return 2;
    }
    for (int k = 0; k < a->n_threads; k++)
        if (a->threads[k] < 1 || a->threads[k] > 256) {
            fprintf(stderr, "%s: bad thread count %d\n", argv[0], a->threads[k]);
            return 2;
        }
    return 0;
}

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Run fn(arg) after `warmup` calls until at least min_reps repetitions and
 * min_time seconds (at most max_reps); return the median seconds and the
 * minimum through *best. */
static inline double bench_median(void (*fn)(void *), void *arg, int warmup, int min_reps,
                                  double min_time, double *best)
{
    enum { MAX_REPS = 400 };
    double t[MAX_REPS];
    int n = 0;
    for (int i = 0; i < warmup; i++) fn(arg);
    double start = bench_now();
    while (n < MAX_REPS && (n < min_reps || bench_now() - start < min_time)) {
        double t0 = bench_now();
        fn(arg);
        t[n++] = bench_now() - t0;
    }
    qsort(t, (size_t)n, sizeof t[0], bench_cmp_double);
    if (best) *best = t[0];
    return t[n / 2];
}

#endif
