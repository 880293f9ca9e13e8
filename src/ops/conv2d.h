/* Internal 2-D convolution kernels (no tape).  Shared by the fxp_conv2d op,
 * the convolution exponential and spectral normalisation.
 *
 * Shapes: x [n, c_in, h, w], w [c_out, c_in, kh, kw] (kh, kw odd), y and dy
 * [n, c_out, h, w]; stride 1, "same" output; padding FXP_PAD_ZERO or
 * FXP_PAD_CIRCULAR.  Scratch comes from the context; no kernel calls malloc.
 */
#ifndef FXP_OPS_CONV2D_H
#define FXP_OPS_CONV2D_H

#include "core/internal.h"
#include "flowexp/ops.h"

typedef struct fxp__conv_shape {
    int n, c_in, h, w, c_out, kh, kw;
    fxp_padding padding;
} fxp__conv_shape;

/* Validate a shape (sizes >= 1, odd kernel, circular needs kh <= h, kw <= w);
 * FXP_EINVAL with a message naming `func` otherwise. */
int fxp__conv_check(fxp_ctx *ctx, const char *func, const fxp__conv_shape *s);

/* y = alpha * conv(x; w) + beta * y (+ bias[o] if bias != NULL, added once,
 * unscaled).  With beta == 0, y need not be initialised.  y must not alias x. */
int fxp__conv2d_forward(fxp_ctx *ctx, const fxp__conv_shape *s, float *y, const float *x,
                        const float *w, const float *bias, float alpha, float beta);

/* dx = alpha * conv^T(dy; w) + beta * dx: the adjoint of the forward map in x
 * (the transposed convolution).  Used for dL/dx and for power iteration. */
int fxp__conv2d_backward_data(fxp_ctx *ctx, const fxp__conv_shape *s, float *dx,
                              const float *dy, const float *w, float alpha, float beta);

/* dw += alpha * sum_n dy[n] (x) im2col(x[n])^T  (dL/dw of the forward map). */
int fxp__conv2d_backward_weight(fxp_ctx *ctx, const fxp__conv_shape *s, float *dw,
                                const float *dy, const float *x, float alpha);

/* db[o] += sum_{n,i,j} dy[n,o,i,j]. */
void fxp__conv2d_backward_bias(fxp_ctx *ctx, const fxp__conv_shape *s, float *db,
                               const float *dy);

/* Direct kernels (conv_direct.c): same contracts as the im2col versions
 * above, which call them when fxp__conv_direct_pick says so (weight: 1 for
 * the weight gradient, 0 otherwise): never for 1x1 kernels; always under
 * FXP_CONV_DIRECT; under FXP_CONV_AUTO while both C_in kh kw and
 * C_out kh kw are at most FXP_CONV_DIRECT_MAX_K (forward, transposed;
 * FXP_CONV_DIRECT_MAX_K_AVX512 when OpenBLAS runs AVX-512 GEMM kernels) or
 * FXP_CONV_DIRECT_MAX_K_WEIGHT (weight gradient). */
#define FXP_CONV_DIRECT_MAX_K 1728
#define FXP_CONV_DIRECT_MAX_K_AVX512 108
#define FXP_CONV_DIRECT_MAX_K_WEIGHT 108
int fxp__conv_direct_pick(const fxp_ctx *ctx, const fxp__conv_shape *s, int weight);
int fxp__conv_direct_forward(fxp_ctx *ctx, const fxp__conv_shape *s, float *y, const float *x,
                             const float *w, const float *bias, float alpha, float beta);
/* A series step in one pass: t = alpha conv(x; w) (no bias), y += t,
 * *sumsq = ||t||^2 (per-image sums added in image order). */
int fxp__conv_direct_term(fxp_ctx *ctx, const fxp__conv_shape *s, float *t, const float *x,
                          const float *w, float alpha, float *y, double *sumsq);
int fxp__conv_direct_backward_data(fxp_ctx *ctx, const fxp__conv_shape *s, float *dx,
                                   const float *dy, const float *w, float alpha, float beta);
int fxp__conv_direct_backward_weight(fxp_ctx *ctx, const fxp__conv_shape *s, float *dw,
                                     const float *dy, const float *x, float alpha);

/* Plain six-loop reference used by tests (double accumulation); same
 * semantics as fxp__conv2d_forward with alpha = 1, beta = 0. */
void fxp__conv2d_naive(const fxp__conv_shape *s, float *y, const float *x, const float *w,
                       const float *bias);

#endif
