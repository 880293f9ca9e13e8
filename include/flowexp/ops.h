/* libflowexp: differentiable operations on tape variables.
 *
 * Every op has the form  int fxp_<op>(fxp_tape *t, fxp_var **out, inputs...,
 * options...): it allocates *out on the tape, computes it, and records a node
 * for the backward pass when gradients are enabled and an input requires one
 * (see tape.h).  Returns FXP_OK or a negative status with a message naming
 * the op and the shapes involved (FXP_ESHAPE for incompatible shapes,
 * FXP_EINVAL for bad options).  Inputs are never modified.
 *
 * Broadcasting (binary elementwise ops): shapes are aligned from the right as
 * in NumPy; a dimension of size 1 (or a missing leading dimension) is
 * broadcast.  The backward pass sums the gradient over broadcast dimensions.
 *
 * Threading: ops use the tape context's thread count; results are identical
 * for a given thread count.
 */
#ifndef FLOWEXP_OPS_H
#define FLOWEXP_OPS_H

#include "flowexp/tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise, binary (broadcasting) ---------------------------------- */
FXP_API int fxp_add(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b); /* a + b */
FXP_API int fxp_sub(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b); /* a - b */
FXP_API int fxp_mul(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b); /* a * b */
FXP_API int fxp_div(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b); /* a / b */

/* ---- elementwise, unary --------------------------------------------------- */
FXP_API int fxp_scale(fxp_tape *t, fxp_var **out, fxp_var *x, float s);      /* s x */
FXP_API int fxp_add_scalar(fxp_tape *t, fxp_var **out, fxp_var *x, float c); /* x + c */
FXP_API int fxp_exp(fxp_tape *t, fxp_var **out, fxp_var *x);
FXP_API int fxp_log(fxp_tape *t, fxp_var **out, fxp_var *x);      /* x > 0, else NaN/-Inf */
FXP_API int fxp_tanh(fxp_tape *t, fxp_var **out, fxp_var *x);
FXP_API int fxp_sigmoid(fxp_tape *t, fxp_var **out, fxp_var *x);  /* 1 / (1 + e^-x) */
FXP_API int fxp_relu(fxp_tape *t, fxp_var **out, fxp_var *x);     /* max(x, 0); grad 0 at 0 */
FXP_API int fxp_softplus(fxp_tape *t, fxp_var **out, fxp_var *x); /* log(1 + e^x), stable */
FXP_API int fxp_square(fxp_tape *t, fxp_var **out, fxp_var *x);   /* x^2 */

/* ---- reductions ------------------------------------------------------------
 * `axes` is a bit mask: bit i set reduces dimension i (FXP_AXIS(i)).
 * FXP_AXES_ALL reduces everything to a scalar (ndim 0, or all-ones shape
 * with keepdim).  FXP_AXES_FROM(k) reduces dimensions k..ndim-1, e.g. a
 * per-example sum of a [B, ...] tensor is FXP_AXES_FROM(1) -> [B]. */
#define FXP_AXIS(i) (1u << (i))
#define FXP_AXES_ALL 0x1fu
#define FXP_AXES_FROM(k) (0x1fu & ~((1u << (k)) - 1u))
FXP_API int fxp_sum(fxp_tape *t, fxp_var **out, fxp_var *x, unsigned axes, int keepdim);
FXP_API int fxp_mean(fxp_tape *t, fxp_var **out, fxp_var *x, unsigned axes, int keepdim);
/* log sum_k exp(x[..., k, ...]) over one dimension, computed stably. */
FXP_API int fxp_logsumexp(fxp_tape *t, fxp_var **out, fxp_var *x, int axis, int keepdim);

/* ---- linear algebra (cblas_sgemm) ------------------------------------------ */
/* out[M,N] = op(a) op(b), a and b 2-D; op(x) = x^T if trans_x. */
FXP_API int fxp_matmul(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b, int trans_a,
                       int trans_b);
/* out[..., N] = x[..., K] w[K, N] (+ bias[N] if bias != NULL): a dense layer
 * applied to every leading index (one GEMM with rows = prod(leading dims)). */
FXP_API int fxp_linear(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *w, fxp_var *bias);
/* Graph message passing with a dense adjacency: out[b] = adj[b] x[b] for
 * x [B, N, F]; adj is [N, N] (shared by the batch) or [B, N, N]. Gradients
 * flow to x and to adj. */
FXP_API int fxp_adj_matmul(fxp_tape *t, fxp_var **out, fxp_var *adj, fxp_var *x);

/* ---- shape ------------------------------------------------------------------ */
/* Same data, new shape (same element count). The output shares x's values. */
FXP_API int fxp_reshape(fxp_tape *t, fxp_var **out, fxp_var *x, int ndim, const int *shape);
/* Concatenate along `axis` (all other dimensions equal). */
FXP_API int fxp_concat(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b, int axis);
/* Split along `axis` into the first `size_a` entries and the rest. */
FXP_API int fxp_split(fxp_tape *t, fxp_var **out_a, fxp_var **out_b, fxp_var *x, int axis,
                      int size_a);
/* Split along `axis` (of even length) into the entries at even indices
 * (0, 2, 4, ...) and those at odd indices: out_even[..., k, ...] =
 * x[..., 2k, ...], out_odd[..., k, ...] = x[..., 2k + 1, ...] (NumPy's
 * x[:, ::2] and x[:, 1::2]). */
FXP_API int fxp_split_interleaved(fxp_tape *t, fxp_var **out_even, fxp_var **out_odd, fxp_var *x,
                                  int axis);
/* Space-to-depth on NCHW: [B,C,H,W] -> [B,4C,H/2,W/2] (H, W even), new
 * channel = c*4 + dy*2 + dx; fxp_unsqueeze2d is its exact inverse. */
FXP_API int fxp_squeeze2d(fxp_tape *t, fxp_var **out, fxp_var *x);
FXP_API int fxp_unsqueeze2d(fxp_tape *t, fxp_var **out, fxp_var *x);
/* Reverse both spatial axes of NCHW: out[b,c,i,j] = x[b,c,H-1-i,W-1-j]. */
FXP_API int fxp_flip2d(fxp_tape *t, fxp_var **out, fxp_var *x);

/* ---- convolution ------------------------------------------------------------ */
typedef enum fxp_padding {
    FXP_PAD_ZERO = 0,     /* zero "same" padding, (k-1)/2 on each side */
    FXP_PAD_CIRCULAR = 1  /* periodic boundary (exactly translation-equivariant) */
} fxp_padding;

typedef struct fxp_conv2d_opts {
    fxp_padding padding;
    const float *mask;    /* optional fixed [C_out, C_in, kh, kw] multiplier on
                             the weight (autoregressive convolutions); NULL: none.
                             Must stay valid until the tape is reset. */
} fxp_conv2d_opts;

/* 2-D cross-correlation, stride 1, "same" output size:
 *   out[n,o,i,j] = bias[o] + sum_{c,a,b} W[o,c,a,b] x[n,c, i+a-(kh-1)/2, j+b-(kw-1)/2]
 * with W = w (.* mask).  x [N,C_in,H,W], w [C_out,C_in,kh,kw] with kh, kw odd,
 * bias [C_out] or NULL, opts NULL = zero padding, no mask.  Computed by
 * im2col + GEMM (1x1 kernels skip im2col).  Circular padding needs
 * kh <= H and kw <= W. */
FXP_API int fxp_conv2d(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *w, fxp_var *bias,
                       const fxp_conv2d_opts *opts);

/* ---- densities ----------------------------------------------------------------- */
/* Diagonal Gaussian log-density summed per example:
 *   out[b] = sum_{i} [ -0.5 ((x_i - mu_i) / sigma_i)^2 - log sigma_i - 0.5 log(2 pi) ]
 * over all non-batch elements of x [B, ...], with sigma = exp(log_sigma).
 * mean and log_sigma broadcast against x (e.g. per channel [1,C,1,1]) and may
 * be NULL (0).  Output [B]. */
FXP_API int fxp_gaussian_logpdf(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *mean,
                                fxp_var *log_sigma);

#ifdef __cplusplus
}
#endif
#endif
