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

#endif
