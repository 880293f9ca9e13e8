/* The convolution exponential's series with every term of an image computed
 * while the image stays in cache (conv_series.c).
 *
 * M = conv(.; K) with zero padding, K [C, C, kh, kw] (kh, kw odd), x [N, C,
 * H, W].  The series of fxp_expm_conv with a fixed number of terms T and
 * s = +1 (exp(M)) or -1 (exp(-M)):
 *     t_0 = x,  t_i = (s / i) M t_{i-1},  y = t_0 + ... + t_T.
 * Its adjoint (dL/dy = g):
 *     b_T = (s / T) g,  b_{i-1} = (s / (i-1)) (g + M^T b_i),
 *     dL/dx = g + M^T b_1,  dL/dK = sum_i d<b_i, M t_{i-1}>/dK.
 * Instead of one convolution of the whole batch per term, each image (or,
 * when there are fewer images than threads, each block of output channels
 * of one image) runs all T terms on padded copies that stay in L1/L2; the
 * kernel is packed once per call.  Threads split images, or the channel
 * blocks of one image at a time when the batch is too small to split.
 * Results are fixed for a given thread count.  Scratch comes from the
 * context; nothing is allocated on the heap. */
#ifndef FXP_OPS_CONV_SERIES_H
#define FXP_OPS_CONV_SERIES_H

#include "ops/conv2d.h"

/* Nonzero when the fused kernels handle this shape and algorithm choice:
 * zero padding, c_in == c_out, odd kernel no larger than the padded image,
 * any algorithm but FXP_CONV_IM2COL. */
int fxp__conv_series_ok(const fxp_ctx *ctx, const fxp__conv_shape *s);

/* y = sum_{i=0..terms} t_i as above (y may alias x).  saved: NULL, or
 * saved[1..terms-1] receive t_1 .. t_{terms-1} ([N, C, H, W] each).
 * last_sumsq (may be NULL): ||t_terms||^2, summed in a fixed order.
 * FXP_ENUMERIC if y is not finite. */
int fxp__conv_series_forward(fxp_ctx *ctx, const fxp__conv_shape *s, const float *k, float sign,
                             int terms, const float *x, float *y, float *const *saved,
                             double *last_sumsq);

/* The adjoint above.  t[0] = x and t[1..terms-1] the saved terms, or
 * t == NULL to recompute them from x (then x must be given).  dx (may be
 * NULL) += dL/dx; dk (may be NULL) += dL/dK. */
int fxp__conv_series_backward(fxp_ctx *ctx, const fxp__conv_shape *s, const float *k, float sign,
                              int terms, const float *x, const float *const *t, const float *g,
                              float *dx, float *dk);

#endif
