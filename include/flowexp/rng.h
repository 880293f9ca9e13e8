/* libflowexp: counter-based random numbers (Philox4x32-10).
 *
 * A stream is (seed, counter).  Every draw of n values consumes ceil(n/4)
 * Philox blocks and value i depends only on (seed, counter, i), so results
 * never depend on the thread count, and the two 64-bit words of the state are
 * all a checkpoint needs to save to resume a stream exactly.
 */
#ifndef FLOWEXP_RNG_H
#define FLOWEXP_RNG_H

#include "flowexp/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fxp_rng {
    uint64_t seed;    /* the key */
    uint64_t counter; /* index of the next unused 128-bit Philox block */
} fxp_rng;

/* Seed a stream (counter reset to 0). */
FXP_API void fxp_rng_seed(fxp_rng *rng, uint64_t seed);

/* out[i] ~ U(0,1), never exactly 0 or 1 (24-bit resolution). */
FXP_API void fxp_rng_uniform(fxp_rng *rng, float *out, size_t n);

/* out[i] ~ N(mean, std^2) by Box-Muller (computed in double). */
FXP_API void fxp_rng_normal(fxp_rng *rng, float *out, size_t n, float mean, float std);

/* The same draws as fxp_rng_normal, computed by `threads` OpenMP threads
 * (each block of four values depends only on its index, so the result is
 * bitwise identical for any thread count). */
FXP_API void fxp_rng_normal_threads(fxp_rng *rng, float *out, size_t n, float mean, float std,
                                    int threads);

/* One uniform 64-bit integer. */
FXP_API uint64_t fxp_rng_u64(fxp_rng *rng);

/* A uniform integer in [0, n) without modulo bias; n >= 1. */
FXP_API uint64_t fxp_rng_below(fxp_rng *rng, uint64_t n);

/* Uniform random permutation of perm[0..n-1] (Fisher-Yates), in place. */
FXP_API void fxp_rng_shuffle_int(fxp_rng *rng, int *perm, size_t n);

/* An independent stream derived from this one (consumes one block); used to
 * give each layer or worker its own reproducible stream. */
FXP_API fxp_rng fxp_rng_split(fxp_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
