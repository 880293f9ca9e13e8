/* The graph convolution exponential as a flow layer (see layers.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flow_internal.h"

typedef struct gce_layer {
    fxp_flow base;
    fxp_graph_conv_exp_opts o;
    fxp_param *theta0, *theta1, *u0, *v0, *u1, *v1;
} gce_layer;

void fxp_graph_conv_exp_opts_default(fxp_graph_conv_exp_opts *o)
{
    *o = (fxp_graph_conv_exp_opts){ 2, 6, 13, 1.0f, 1.0f, 0 };
}

/* The normalised parameters and adjacency of one call; logdet scalar N Tr theta0_hat. */
static int gce_prepare(gce_layer *l, fxp_tape *t, const fxp_flow_io *io, const fxp_var *x,
                       fxp_tensor *ahat, fxp_var **th0, fxp_var **th1, fxp_var **ld)
{
    fxp_ctx *ctx = l->base.ctx;
    char s1[64];
    if (!io->adj)
        return FXP_ERR(ctx, FXP_EINVAL, "%s: the graph convolution exponential needs io->adj",
                       l->base.name);
    if (x->value.ndim != 3 || x->value.shape[2] != l->o.features)
        return FXP_ERR(ctx, FXP_ESHAPE, "%s: x %s must be [B, N, %d]", l->base.name,
                       fxp_tensor_shape_str(&x->value, s1, sizeof s1), l->o.features);
    *ahat = fxp_tensor_wrap(NULL, io->adj->ndim, io->adj->shape);
    ahat->data = fxp_tape_alloc(t, (size_t)fxp_tensor_numel(io->adj) * sizeof(float));
    if (!ahat->data) return FXP_ENOMEM;
    int rc, maxdeg = 1;
    FXP_TRY(fxp_graph_normalize(ctx, io->adj, ahat, &maxdeg));
    const int steps = io->training ? 1 : 0;
    const int deg = l->o.max_degree > 0 ? l->o.max_degree : maxdeg;
    fxp_var *w0, *w1, *tr;
    FXP_TRY(fxp_tape_param(t, &w0, l->theta0));
    FXP_TRY(fxp_tape_param(t, &w1, l->theta1));
    FXP_TRY(fxp_spectral_norm_dense(t, th0, w0, fxp_param_value(l->u0).data,
                                    fxp_param_value(l->v0).data, l->o.coeff0 / (float)deg,
                                    steps, NULL));
    FXP_TRY(fxp_spectral_norm_dense(t, th1, w1, fxp_param_value(l->u1).data,
                                    fxp_param_value(l->v1).data, l->o.coeff1, steps, NULL));
    FXP_TRY(fxp_trace(t, &tr, *th0));
    FXP_TRY(fxp_scale(t, ld, tr, (float)x->value.shape[1]));
out:
    return rc;
}

/* logdet [B] = zeros[B] + scalar (broadcast). */
static int per_graph(fxp_tape *t, const fxp_var *x, fxp_var *scalar, float sign, fxp_var **out)
{
    fxp_var *z;
    int rc;
    FXP_TRY(fxp__zeros(t, &z, 1, x->value.shape));
    if (sign < 0) FXP_TRY(fxp_scale(t, &scalar, scalar, -1.0f));
    FXP_TRY(fxp_add(t, out, z, scalar));
out:
    return rc;
}

static int gce_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x, fxp_var **z,
                       fxp_var **logdet)
{
    gce_layer *l = (gce_layer *)f;
    fxp_tensor ahat;
    fxp_var *th0, *th1, *ld;
    int rc;
    FXP_TRY(gce_prepare(l, t, io, x, &ahat, &th0, &th1, &ld));
    fxp_expm_opts o = fxp_expm_fixed(io->training ? l->o.terms_train : l->o.terms_eval);
    FXP_TRY(fxp_expm_graph(t, z, x, &ahat, th0, th1, 0, &o, NULL));
    FXP_TRY(per_graph(t, x, ld, 1, logdet));
out:
    return rc;
}

static int gce_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z, fxp_var **x,
                       fxp_var **logdet)
{
    gce_layer *l = (gce_layer *)f;
    fxp_tensor ahat;
    fxp_var *th0, *th1, *ld;
    int rc;
    FXP_TRY(gce_prepare(l, t, io, z, &ahat, &th0, &th1, &ld));
    fxp_expm_opts o = fxp_expm_fixed(io->training ? l->o.terms_train : l->o.terms_eval);
    FXP_TRY(fxp_expm_graph(t, x, z, &ahat, th0, th1, 1, &o, NULL));
    FXP_TRY(per_graph(t, z, ld, -1, logdet));
out:
    return rc;
}

static void gce_destroy(fxp_flow *f) { free(f); }

static const fxp_flow_vtable gce_vtable = { "graph_conv_exp", gce_forward, gce_inverse,
                                            gce_destroy };

int fxp_graph_conv_exp_new(fxp_ctx *ctx, fxp_params *ps, const char *name,
                           const fxp_graph_conv_exp_opts *opts, fxp_rng *rng, fxp_flow **out)
{
    FXP_API_SCOPE();
    if (!ps || !opts || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    const fxp_graph_conv_exp_opts *o = opts;
    if (o->features < 1 || o->terms_train < 1 || o->terms_eval < 1 || o->terms_train > 1000 ||
        o->terms_eval > 1000 || !(o->coeff0 > 0) || !(o->coeff1 > 0) || !isfinite(o->coeff0) ||
        !isfinite(o->coeff1) || o->max_degree < 0)
        return FXP_ERR(ctx, FXP_EINVAL,
                       "bad options (features %d, terms %d/%d in [1,1000], coeff0 %g, coeff1 %g "
                       "finite and > 0, max_degree %d >= 0)",
                       o->features, o->terms_train, o->terms_eval, (double)o->coeff0,
                       (double)o->coeff1, o->max_degree);
    gce_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    int rc;
    char pn[FXP_PARAM_NAME_MAX];
    const int F = o->features, ff[2] = { F, F };
    FXP_TRY(fxp__flow_init(&l->base, &gce_vtable, ctx, name));
    l->o = *o;
    struct { const char *leaf; int kind, nd; const int *shape; fxp_param **p; } reg[] = {
        { "theta0", FXP_PARAM_TRAINABLE, 2, ff, &l->theta0 },
        { "theta1", FXP_PARAM_TRAINABLE, 2, ff, &l->theta1 },
        { "u0", FXP_PARAM_STATE, 1, &F, &l->u0 }, { "v0", FXP_PARAM_STATE, 1, &F, &l->v0 },
        { "u1", FXP_PARAM_STATE, 1, &F, &l->u1 }, { "v1", FXP_PARAM_STATE, 1, &F, &l->v1 },
    };
    for (size_t i = 0; i < sizeof reg / sizeof reg[0]; i++) {
        FXP_TRY(fxp__flow_param_name(&l->base, reg[i].leaf, pn, sizeof pn));
        FXP_TRY(fxp_params_add(ps, pn, reg[i].kind, reg[i].nd, reg[i].shape, reg[i].p));
    }
    /* values only after all registrations (the blocks may move while growing) */
    fxp_rng_normal(rng, fxp_param_value(l->theta0).data, (size_t)F * F, 0, 0.05f);
    fxp_rng_normal(rng, fxp_param_value(l->theta1).data, (size_t)F * F, 0, 0.05f);
    fxp_spectral_init(rng, fxp_param_value(l->u0).data, F);
    fxp_spectral_init(rng, fxp_param_value(l->v0).data, F);
    fxp_spectral_init(rng, fxp_param_value(l->u1).data, F);
    fxp_spectral_init(rng, fxp_param_value(l->v1).data, F);
    *out = &l->base;
    return FXP_OK;
out:
    free(l);
    return rc;
}
