/* Helpers shared by the mixing layers (src/flows/mixing/): matrix builders,
 * the per-pixel matrix map, small tape ops and the square autoregressive
 * convolution's solve (square_ar.c). */
#ifndef FXP_MIXING_INTERNAL_H
#define FXP_MIXING_INTERNAL_H

#include "flows/flow_internal.h"

/* A random orthogonal c x c matrix into q (row-major): Gram-Schmidt on the
 * columns of a N(0, 1) matrix drawn from rng. */
int fxp__random_orthogonal(fxp_ctx *ctx, fxp_rng *rng, float *q, int c);

/* Q = H(v_1) H(v_2) ... H(v_R) from V [R, C] (row r = v_{r+1}),
 * H(v) = I - 2 v v^T / (v^T v), or its transpose H(v_R) ... H(v_1) if
 * `transpose`; built from tape ops so that gradients reach V. */
int fxp__householder_matrix(fxp_tape *t, fxp_var *V, int transpose, fxp_var **out);

/* Register "<layer name>/<leaf>" in ps. */
int fxp__mixing_add_param(fxp_flow *f, fxp_params *ps, const char *leaf, int kind, int ndim,
                          const int *shape, fxp_param **p);

/* FXP_EINVAL naming the layer unless 1 <= C <= 4096, H, W >= 1 and
 * H W <= 2^28. */
int fxp__mixing_check_dims(fxp_ctx *ctx, const char *layer, int c, int h, int w);

/* FXP_ESHAPE naming the layer unless x is [B, C, H, W]. */
int fxp__mixing_check_x(const fxp_flow *f, const fxp_var *x, int c, int h, int w);

/* out[b] = sign * s for b < B, from a scalar s (NULL: zeros). */
int fxp__mixing_logdet(fxp_tape *t, int batch, fxp_var *s, float sign, fxp_var **out);

/* out[b, o, i, j] = sum_c m[o, c] x[b, c, i, j] for a matrix m [C, C]. */
int fxp__pixel_map(fxp_tape *t, fxp_var *x, fxp_var *m, fxp_var **out);

/* The 1x1 convolution of a weight parameter W [C, C] on x [B, C, H, W]:
 * out = W x (or W^-1 x if inverse) per pixel, and *ld = H W log|det W| (a
 * scalar; the caller negates it for the inverse). */
int fxp__conv1x1_apply(fxp_tape *t, fxp_param *w, int inverse, fxp_var *x, fxp_var **out,
                       fxp_var **ld);

/* out (scalar) = scale * sum_{k < n} log|w[offset + k stride]| over the
 * flat data of w; d out / d w[i] = scale / w[i] at those entries.
 * FXP_ENUMERIC naming `what` if one of them is zero. */
int fxp__logabs_entries(fxp_tape *t, fxp_var **out, fxp_var *w, int n, int64_t offset,
                        int64_t stride, float scale, const char *what);

/* ---- square autoregressive convolution (square_ar.c) -----------------------
 * A 2x2 kernel K [C, C, 2, 2] with the autoregressive mask, as the 3x3
 * kernel of a same-padded convolution:
 *   K3[o, c, a, d] = K[o, c, a, d] m[o, c, a, d] for a, d < 2, 0 elsewhere,
 *   m = 1 except m[o, c, 1, 1] = (c <= o),
 * so conv(x; K3)[p] reads x at p and its up / left neighbours.  Reversed:
 * K3[o, c, 2 - a, 2 - d] instead (the kernel rotated by 180 degrees), the
 * same map conjugated by a flip of both spatial axes: conv(x; K3_rev) =
 * Flip(conv(Flip(x); K3)).  Gradients go back to K times the mask. */
int fxp__square_ar_kernel(fxp_tape *t, fxp_var *k2, int reversed, fxp_var **k3);

/* Tape op: x = A^-1 (z - bias) for A = conv(.; K3) (zero "same" padding),
 * K3 [C, C, 3, 3] as fxp__square_ar_kernel makes it with the same
 * `reversed` (only the three neighbour taps and the lower triangle of the
 * centre are read); z [B, C, H, W], bias [C] or NULL.  Gradients to z, K3
 * and bias (see square_ar.c). */
int fxp__square_ar_solve(fxp_tape *t, fxp_var **x, fxp_var *z, fxp_var *k3, fxp_var *bias,
                         int reversed);

/* The raw solve (no tape): transpose == 0: out = A^-1 (rhs - bias);
 * transpose != 0: out = A^-T rhs (bias ignored); A in the reversed form if
 * `reversed`.  Arrays as above; out must not alias rhs.  FXP_ENUMERIC if a
 * diagonal entry K3[c, c, 1, 1] is zero.  Threads over blocks of 8 images;
 * the result does not depend on the thread count. */
int fxp__square_ar_solve_raw(fxp_ctx *ctx, int transpose, int reversed, int batch, int c, int h,
                             int w, const float *k3, const float *rhs, const float *bias,
                             float *out);

#endif
