/* Timing helpers shared by the benchmark programs (not part of the library). */
#ifndef FLOWEXP_BENCH_UTIL_H
#define FLOWEXP_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

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
