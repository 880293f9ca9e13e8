/* Internal pieces of the exponential (src/expm/). */
#ifndef FXP_EXPM_INTERNAL_H
#define FXP_EXPM_INTERNAL_H

#include "core/internal.h"

/* Validate options: FXP_EINVAL naming the field. */
int fxp__expm_check_opts(fxp_ctx *ctx, const char *func, const fxp_expm_opts *o);

/* Default options when the caller passes NULL: 6 fixed terms. */
const fxp_expm_opts *fxp__expm_opts_or_default(const fxp_expm_opts *o);

/* Reject NaN/Inf in n floats of `what` (FXP_ENUMERIC). */
int fxp__check_finite_buf(fxp_ctx *ctx, const char *func, const char *what, const float *p,
                          int64_t n);

/* term = s m (m may be term), y += term; returns ||term||^2 summed in
 * chunks of 16384 floats in chunk order (fixed whatever the thread count).
 * The series' elementwise pass, also the fallback of fused operators. */
double fxp__expm_add_term(fxp_ctx *ctx, int64_t n, float s, const float *m, float *term, float *y);

/* The raw-buffer functions' series: y = exp(s M) x with `terms` fixed
 * terms (y must not alias x), then FXP_ECONVERGE unless the last term's
 * norm is at most FXP_EXPM_RAW_TOL times the input's. */
int fxp__expm_raw(fxp_ctx *ctx, const fxp_linop *op, const float *x, float *y, int negate,
                  int terms);

/* The raw functions' convergence test, for series run elsewhere (the fused
 * kernels): FXP_ECONVERGE, reported as func, unless last_norm <=
 * FXP_EXPM_RAW_TOL xnorm. */
int fxp__expm_raw_converged(fxp_ctx *ctx, const char *func, int terms, double last_norm,
                            double xnorm);

/* Graph convolution exponential without gradients for one adjacency A [N, N]
 * shared by the B graphs and F <= FXP_GRAPH_LANES_MAX_F features
 * (graph_lanes.c): y = sum_{i=0..T} t_i, t_i = (sign / i) M t_{i-1},
 * M X = X t0 + A X t1, sixteen graphs per SIMD vector.  complete != 0: A is
 * c (J - I) (adj is not read).  y may alias x; nothing is written to y on
 * error (FXP_ENUMERIC for NaN/Inf in x, naming its index, or a non-finite
 * result; FXP_ENOMEM).  norms (may be NULL): ||x|| and ||t_T|| (the last
 * term), summed in a fixed order, for a convergence check. */
#define FXP_GRAPH_LANES_MAX_F 16
int fxp__graph_series_lanes(fxp_ctx *ctx, const float *x, float *y, const float *adj,
                            int complete, float c, const float *t0, const float *t1, int B,
                            int N, int F, float sign, int T, double *norms);

#endif
