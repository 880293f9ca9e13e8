/* Helpers for flow-layer implementations (src/flows/). */
#ifndef FXP_FLOW_INTERNAL_H
#define FXP_FLOW_INTERNAL_H

#include "core/internal.h"

/* Fill the common head of a layer; name must fit a parameter prefix. */
int fxp__flow_init(fxp_flow *f, const fxp_flow_vtable *vt, fxp_ctx *ctx, const char *name);

/* "<layer name>/<leaf>" into buf (FXP_EINVAL if it does not fit). */
int fxp__flow_param_name(const fxp_flow *f, const char *leaf, char *buf, size_t size);

/* A new variable of zeros (no gradient). */
int fxp__zeros(fxp_tape *t, fxp_var **out, int ndim, const int *shape);

/* *total = term if *total is NULL, else *total + term (on the tape). */
int fxp__logdet_accumulate(fxp_tape *t, fxp_var **total, fxp_var *term);

#endif
