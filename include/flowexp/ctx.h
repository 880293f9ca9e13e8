/* libflowexp: the context — threads, random numbers, scratch memory, errors.
 *
 * An fxp_ctx owns everything that would otherwise be global: the thread count
 * used by OpenMP kernels and by OpenBLAS, the default random stream, the
 * scratch workspace kernels draw from, the last error, and an optional log
 * callback.  Two contexts in one process never interfere, except that
 * OpenBLAS keeps one process-wide thread pool (calls from two contexts with
 * different thread counts at the same moment are correct but may run with
 * either count).
 *
 * A context is not thread-safe: use one context per calling thread.
 */
#ifndef FLOWEXP_CTX_H
#define FLOWEXP_CTX_H

#include "flowexp/common.h"
#include "flowexp/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fxp_ctx fxp_ctx;

/* Log levels for the optional callback. The library logs nothing unless a
 * callback is installed. */
enum { FXP_LOG_ERROR = 0, FXP_LOG_WARN = 1, FXP_LOG_INFO = 2, FXP_LOG_DEBUG = 3 };
typedef void (*fxp_log_fn)(void *user, int level, const char *message);

/* Create a context.  Threads default to omp_get_max_threads() at creation
 * (OMP_NUM_THREADS is honoured); the random stream is seeded with 0.
 * Returns FXP_OK and *out, or FXP_ENOMEM (message in fxp_last_error()). */
FXP_API int fxp_ctx_new(fxp_ctx **out);

/* Free a context and its workspace. fxp_ctx_free(NULL) is a no-op. */
FXP_API void fxp_ctx_free(fxp_ctx *ctx);

/* The most threads a context may use.  libgomp exits the process (or
 * crashes) when it cannot create the threads a region asks for, so the count
 * is bounded here; more threads than cores only slows kernels down. */
#define FXP_MAX_THREADS 1024

/* Threads for OpenMP kernels and OpenBLAS calls made through this context:
 * 1 <= n <= FXP_MAX_THREADS, FXP_EINVAL otherwise (the context keeps its
 * count).  fxp_ctx_new's default, omp_get_max_threads(), is clamped to the
 * same range.  Results are deterministic for a given n. */
FXP_API int fxp_ctx_set_threads(fxp_ctx *ctx, int n);
FXP_API int fxp_ctx_threads(const fxp_ctx *ctx);

/* How kh x kw convolutions (kh*kw > 1) are computed, for every convolution
 * run through this context (ops, layers, exponentials, spectral norm):
 *   FXP_CONV_AUTO    (default) direct kernels (register-blocked, AVX-512 /
 *                    AVX2 / baseline picked at load) where they measured
 *                    faster than im2col + OpenBLAS (docs/performance.md):
 *                    forward and transposed maps while C_in*kh*kw and
 *                    C_out*kh*kw are at most 1728 (3x3 up to 192 channels),
 *                    or at most 108 when OpenBLAS runs its AVX-512 GEMM
 *                    kernels; weight gradients while both are at most 108;
 *                    im2col + GEMM otherwise and for 1x1 kernels
 *   FXP_CONV_IM2COL  always im2col + GEMM
 *   FXP_CONV_DIRECT  always the direct kernels
 * Both compute the same map; results differ by float rounding only.
 * FXP_EINVAL for any other value. */
typedef enum fxp_conv_algo { FXP_CONV_AUTO = 0, FXP_CONV_IM2COL = 1, FXP_CONV_DIRECT = 2 } fxp_conv_algo;
FXP_API int fxp_ctx_set_conv_algo(fxp_ctx *ctx, fxp_conv_algo algo);
FXP_API fxp_conv_algo fxp_ctx_conv_algo(const fxp_ctx *ctx);

/* The context's random stream (owned by the context). */
FXP_API fxp_rng *fxp_ctx_rng(fxp_ctx *ctx);

/* The last error raised through this context: its status (0 if none) and
 * message ("" if none), e.g. "fxp_conv2d: input [2,3,5,5] has 3 channels but
 * the kernel [4,2,3,3] expects 2". The message is overwritten by the next
 * error; fxp_ctx_clear_error resets both. */
FXP_API int fxp_ctx_status(const fxp_ctx *ctx);
FXP_API const char *fxp_ctx_error(const fxp_ctx *ctx);
FXP_API void fxp_ctx_clear_error(fxp_ctx *ctx);

/* Install a log callback receiving messages up to `max_level`
 * (FXP_LOG_*). fn == NULL removes it. */
FXP_API void fxp_ctx_set_log(fxp_ctx *ctx, fxp_log_fn fn, void *user, int max_level);

/* Bytes currently reserved by the context's scratch workspace (it grows to
 * the largest request seen and is then reused without further allocation). */
FXP_API size_t fxp_ctx_scratch_bytes(const fxp_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
