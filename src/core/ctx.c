/* The context: threads, RNG, scratch workspace, error state, logging. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#if FXP_HAVE_OPENMP
#include <omp.h>
#endif

int fxp_ctx_new(fxp_ctx **out)
{
    FXP_API_SCOPE();
    if (!out) return FXP_ERR(NULL, FXP_EINVAL, "out is NULL");
    *out = NULL;
    fxp_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return FXP_ERR(NULL, FXP_ENOMEM, "cannot allocate a context");
#if FXP_HAVE_OPENMP
    ctx->n_threads = omp_get_max_threads();
#else
    ctx->n_threads = 1;
#endif
    if (ctx->n_threads < 1) ctx->n_threads = 1;
    if (ctx->n_threads > FXP_MAX_THREADS) ctx->n_threads = FXP_MAX_THREADS;
    fxp_rng_seed(&ctx->rng, 0);
    fxp__arena_init(&ctx->scratch);
    ctx->log_level = FXP_LOG_WARN;
    *out = ctx;
    return FXP_OK;
}

void fxp_ctx_free(fxp_ctx *ctx)
{
    FXP_API_SCOPE();
    if (!ctx) return;
    fxp__arena_destroy(&ctx->scratch);
    free(ctx);
}

int fxp_ctx_set_threads(fxp_ctx *ctx, int n)
{
    if (!ctx) return FXP_ERR(NULL, FXP_EINVAL, "ctx is NULL");
    if (n < 1 || n > FXP_MAX_THREADS)
        return FXP_ERR(ctx, FXP_EINVAL, "thread count %d outside [1, %d]", n, FXP_MAX_THREADS);
#if !FXP_HAVE_OPENMP
    n = 1;
#endif
    ctx->n_threads = n;
    return FXP_OK;
}

int fxp_ctx_threads(const fxp_ctx *ctx) { return ctx ? ctx->n_threads : 1; }

int fxp_ctx_set_conv_algo(fxp_ctx *ctx, fxp_conv_algo algo)
{
    if (!ctx) return FXP_ERR(NULL, FXP_EINVAL, "ctx is NULL");
    if (algo != FXP_CONV_AUTO && algo != FXP_CONV_IM2COL && algo != FXP_CONV_DIRECT)
        return FXP_ERR(ctx, FXP_EINVAL, "unknown convolution algorithm %d (auto 0, im2col 1, "
                       "direct 2)", (int)algo);
    ctx->conv_algo = algo;
    return FXP_OK;
}

fxp_conv_algo fxp_ctx_conv_algo(const fxp_ctx *ctx) { return ctx ? ctx->conv_algo : FXP_CONV_AUTO; }

fxp_rng *fxp_ctx_rng(fxp_ctx *ctx) { return ctx ? &ctx->rng : NULL; }

int fxp_ctx_status(const fxp_ctx *ctx) { return ctx ? ctx->status : FXP_EINVAL; }

const char *fxp_ctx_error(const fxp_ctx *ctx) { return ctx ? ctx->errmsg : "ctx is NULL"; }

void fxp_ctx_clear_error(fxp_ctx *ctx)
{
    if (!ctx) return;
    ctx->status = FXP_OK;
    ctx->errmsg[0] = '\0';
}

void fxp_ctx_set_log(fxp_ctx *ctx, fxp_log_fn fn, void *user, int max_level)
{
    if (!ctx) return;
    ctx->log_fn = fn;
    ctx->log_user = user;
    ctx->log_level = max_level;
}

size_t fxp_ctx_scratch_bytes(const fxp_ctx *ctx) { return ctx ? fxp__arena_reserved(&ctx->scratch) : 0; }

void *fxp__scratch_alloc(fxp_ctx *ctx, size_t bytes)
{
    void *p = fxp__arena_alloc(&ctx->scratch, bytes);
    if (!p) FXP_ERR(ctx, FXP_ENOMEM, "cannot reserve %zu bytes of scratch memory", bytes);
    return p;
}

fxp__arena_mark fxp__scratch_save(const fxp_ctx *ctx) { return fxp__arena_save(&ctx->scratch); }

void fxp__scratch_restore(fxp_ctx *ctx, fxp__arena_mark m) { fxp__arena_restore(&ctx->scratch, m); }

int fxp__omp_thread(void)
{
#if FXP_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#define SUMSQ_CHUNK 16384

/* Sum of squares of x[lo, hi) in double, eight independent partial sums
 * (a single running sum is bound by the add latency). */
static double chunk_sumsq(const float *x, int64_t lo, int64_t hi)
{
    double acc[8] = { 0 };
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += (double)x[i + l] * x[i + l];
    for (; i < hi; i++) acc[0] += (double)x[i] * x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Chunks of SUMSQ_CHUNK floats, summed in chunk order whatever the thread
 * count; groups of 256 chunks keep the partial sums on the stack. */
double fxp__sumsq(const fxp_ctx *ctx, const float *x, int64_t n)
{
    const int64_t nchunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    const int nt = ctx ? ctx->n_threads : 1;
    double part[256], total = 0;
    for (int64_t c0 = 0; c0 < nchunks; c0 += 256) {
        const int64_t c1 = FXP_MIN(nchunks, c0 + 256);
        FXP_PARALLEL_FOR(nt, c1 - c0 > 1,
            for (int64_t c = c0; c < c1; c++)
                part[c - c0] = chunk_sumsq(x, c * SUMSQ_CHUNK, FXP_MIN(n, (c + 1) * SUMSQ_CHUNK)););
        for (int64_t c = c0; c < c1; c++) total += part[c - c0];
    }
    return total;
}

int fxp__has_nonfinite(const float *x, int64_t n)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= !isfinite(x[i]);
    return bad;
}
