/* Helpers shared by the op implementations in src/ops/. */
#ifndef FXP_OPS_INTERNAL_H
#define FXP_OPS_INTERNAL_H

#include "core/internal.h"

/* Elements above which elementwise loops use OpenMP threads: a pass over
 * 256k floats takes about 0.1 ms on one core.  Below that a parallel region
 * gains a few microseconds on an idle machine and, on a loaded one, can wait
 * a scheduler time slice (milliseconds) for a descheduled worker. */
#define FXP_PAR_THRESHOLD 262144

/* Check that op inputs are non-NULL; FXP_EINVAL naming the op otherwise. */
int fxp__ops_check_vars(fxp_tape *t, const char *op, int n, fxp_var *const *v);

/* The tape's context (for errors and threads). */
static inline fxp_ctx *fxp__tctx(fxp_tape *t) { return fxp_tape_ctx(t); }

/* Shape string of a variable into a caller buffer. */
static inline char *fxp__vshape(const fxp_var *v, char *buf, size_t n)
{
    return fxp_tensor_shape_str(&v->value, buf, n);
}

#endif
