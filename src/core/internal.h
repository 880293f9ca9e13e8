/* Internal declarations shared by the library's translation units.
 * Non-static internal symbols carry the fxp__ prefix and hidden visibility. */
#ifndef FXP_INTERNAL_H
#define FXP_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "flowexp.h"

/* ---- errors ---------------------------------------------------------------
 * FXP_ERR(ctx, code, fmt, ...) records "<function>: <message>" in ctx (may be
 * NULL) and in the thread's last-error buffer, logs it at FXP_LOG_ERROR, and
 * evaluates to `code`.  Usage: return FXP_ERR(ctx, FXP_ESHAPE, "x is %s", s); */
#define FXP_ERR(ctx, code, ...) fxp__err((ctx), (code), __func__, __VA_ARGS__)
int fxp__err(fxp_ctx *ctx, int code, const char *func, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
void fxp__log(fxp_ctx *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The public function that messages name.  A public function that calls
 * other fallible code (internal helpers, static functions, callbacks, other
 * public functions) opens with
 *     FXP_API_SCOPE();
 * and until it returns, every message raised on the calling thread names it
 * ("fxp_checkpoint_load: ..."), whichever function raised the error: the
 * user sees the function they called, never fxp__h5_open or a static
 * helper.  Scopes nest; the outermost wins (fxp_conv_exp's errors, raised
 * in fxp_conv_exp_ctx, name fxp_conv_exp).  The scope ends through the
 * cleanup attribute (GCC, Clang) on every return path; with other
 * compilers it is a no-op and messages name the raising function. */
#if defined(__GNUC__)
#define FXP_API_SCOPE()                                                      \
    const char *fxp__api_prev_ __attribute__((cleanup(fxp__api_leave), unused)) = \
        fxp__api_enter(__func__)
#else
#define FXP_API_SCOPE() ((void)0)
#endif
const char *fxp__api_enter(const char *func);
void fxp__api_leave(const char **prev);

/* Evaluate a status expression; on failure jump to the function's `out:`
 * label with `rc` holding the status. */
#define FXP_TRY(expr)                                                        \
    do {                                                                     \
        rc = (expr);                                                         \
        if (rc < 0) goto out;                                                \
    } while (0)

#define FXP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FXP_MAX(a, b) ((a) > (b) ? (a) : (b))
#define FXP_PI 3.14159265358979323846
#define FXP_LN2 0.69314718055994530942

/* ---- hot loops in a portable build ----------------------------------------
 * FXP_CLONES compiles a function for AVX-512, AVX2 and baseline x86-64 and
 * picks one when the library is loaded (GCC target_clones, an ifunc), so a
 * build without -march=native still runs wide vectors where the CPU has
 * them.  FXP_CONTRACT lets a function fuse multiply-adds (ISO C mode turns
 * that off): results change by float rounding only, NaN and Inf propagate
 * the same way. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__)
#define FXP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FXP_CLONES
#endif
#if defined(__GNUC__) && !defined(__clang__)
#define FXP_CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define FXP_CONTRACT
#endif

/* ---- parallel loops --------------------------------------------------------
 * FXP_PARALLEL_FOR(nt, par, for-statement) runs the for statement on nt
 * OpenMP threads (static schedule) when par is true and nt > 1, and as a
 * plain serial loop otherwise.  Prefer it to "#pragma omp parallel for
 * if (...)": a region whose if() clause is false still enters libgomp, and
 * libgomp 12 ends every region with a futex system call (1-2 us on these
 * virtual machines), which made tiny graph workloads spend half their time in
 * the kernel.  The statement is expanded twice; it must not contain
 * preprocessor directives, and its iterations must be independent. */
#ifdef _OPENMP
#define FXP_PARALLEL_FOR(nt, par, ...)                                      \
    do {                                                                     \
        const int fxp__nt_ = (par) ? (nt) : 1;                              \
        if (fxp__nt_ > 1) {                                                  \
            _Pragma("omp parallel for num_threads(fxp__nt_) schedule(static)") \
            __VA_ARGS__                                                      \
        } else {                                                             \
            __VA_ARGS__                                                      \
        }                                                                    \
    } while (0)
#else
#define FXP_PARALLEL_FOR(nt, par, ...)                                      \
    do {                                                                     \
        (void)(nt), (void)(par);                                            \
        __VA_ARGS__                                                          \
    } while (0)
#endif

/* ---- arena ----------------------------------------------------------------
 * A chunked bump allocator with marks.  Allocations are 64-byte aligned.
 * fxp__arena_reset() releases everything and, if more than one chunk was
 * needed, replaces them by one chunk of the total size, so a loop that
 * allocates the same amounts every step stops calling malloc after its first
 * step. */
typedef struct fxp__arena_chunk {
    char *base;
    size_t size, used;
} fxp__arena_chunk;

typedef struct fxp__arena {
    fxp__arena_chunk *chunks;
    int n_chunks, cap_chunks, cur;
    size_t in_use, peak;
} fxp__arena;

typedef struct fxp__arena_mark {
    int cur;
    size_t used, in_use;
} fxp__arena_mark;

void fxp__arena_init(fxp__arena *a);
void fxp__arena_destroy(fxp__arena *a);
void *fxp__arena_alloc(fxp__arena *a, size_t bytes);
void fxp__arena_reset(fxp__arena *a);
fxp__arena_mark fxp__arena_save(const fxp__arena *a);
void fxp__arena_restore(fxp__arena *a, fxp__arena_mark m);
size_t fxp__arena_reserved(const fxp__arena *a);

/* ---- context ---------------------------------------------------------------*/
#define FXP_ERRMSG_MAX 1024

struct fxp_ctx {
    int n_threads;
    fxp_conv_algo conv_algo;
    fxp_rng rng;
    fxp__arena scratch;  /* kernel workspace: use through fxp__scratch_* */
    int status;
    char errmsg[FXP_ERRMSG_MAX];
    fxp_log_fn log_fn;
    void *log_user;
    int log_level;
};

/* Scratch memory for leaf kernels, used stack-like:
 *     fxp__arena_mark m = fxp__scratch_save(ctx);
 *     float *col = fxp__scratch_alloc(ctx, bytes);   // NULL -> FXP_ENOMEM set
 *     ...
 *     fxp__scratch_restore(ctx, m);
 * Nested kernels may take their own scratch between save and restore. */
void *fxp__scratch_alloc(fxp_ctx *ctx, size_t bytes);
fxp__arena_mark fxp__scratch_save(const fxp_ctx *ctx);
void fxp__scratch_restore(fxp_ctx *ctx, fxp__arena_mark m);

/* ---- tensors ---------------------------------------------------------------*/
/* a * b for a, b >= 0, or -1 if either is negative or the product exceeds
 * FXP_MAX_ELEMENTS (checked without overflow; -1 propagates). */
static inline int64_t fxp__mul_limit(int64_t a, int64_t b)
{
    if (a < 0 || b < 0) return -1;
    if (a != 0 && b > FXP_MAX_ELEMENTS / a) return -1;
    return a * b;
}

/* The product of n dimensions with fxp__mul_limit (-1: too large or negative). */
int64_t fxp__numel(int n, const int *dims);

/* Validate ndim/shape for creation: FXP_EINVAL naming `what` otherwise. */
int fxp__check_shape(fxp_ctx *ctx, const char *func, const char *what, int ndim,
                     const int *shape);

/* ---- threads ---------------------------------------------------------------*/
/* The calling thread's number inside an OpenMP region (0 outside, or
 * without OpenMP). */
int fxp__omp_thread(void);

/* ---- numbers ---------------------------------------------------------------*/
/* sum_i x_i^2 in double, summed in fixed chunks (chunk sums in order), so
 * the result does not depend on the thread count. */
double fxp__sumsq(const fxp_ctx *ctx, const float *x, int64_t n);

/* Nonzero if any of the n floats is NaN or Inf. */
int fxp__has_nonfinite(const float *x, int64_t n);

#endif
