/* Models: a flow and a base density (see flow.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "flows/flow_internal.h"

struct fxp_model {
    fxp_ctx *ctx;
    fxp_flow *flow;
    fxp_base_kind base;
    int event_ndim;
    fxp_param *mean, *log_sigma; /* diagonal base only */
};

int fxp_model_new(fxp_ctx *ctx, fxp_params *ps, const char *name, fxp_flow *flow,
                  fxp_base_kind base, int event_ndim, const int *param_shape, fxp_model **out)
{
    FXP_API_SCOPE();
    int rc = FXP_OK;
    fxp_model *m = NULL;
    if (!out || !flow || !name) {
        rc = FXP_ERR(ctx, FXP_EINVAL, "out, flow or name is NULL");
        goto out;
    }
    if (event_ndim < 1 || event_ndim > FXP_MAX_DIMS - 1) {
        rc = FXP_ERR(ctx, FXP_EINVAL, "event_ndim %d outside [1, %d]", event_ndim,
                     FXP_MAX_DIMS - 1);
        goto out;
    }
    if (base != FXP_BASE_STANDARD_NORMAL && base != FXP_BASE_DIAG_NORMAL) {
        rc = FXP_ERR(ctx, FXP_EINVAL, "unknown base density %d", (int)base);
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a model");
        goto out;
    }
    m->ctx = ctx;
    m->flow = flow;
    m->base = base;
    m->event_ndim = event_ndim;
    if (base == FXP_BASE_DIAG_NORMAL) {
        char pname[FXP_PARAM_NAME_MAX];
        int shape[FXP_MAX_DIMS] = { 1 };
        if (!ps || !param_shape) {
            rc = FXP_ERR(ctx, FXP_EINVAL, "a diagonal base needs a parameter set and param_shape");
            goto out;
        }
        memcpy(shape + 1, param_shape, (size_t)event_ndim * sizeof(int));
        snprintf(pname, sizeof pname, "%s/base/mean", name);
        FXP_TRY(fxp_params_add(ps, pname, FXP_PARAM_TRAINABLE, event_ndim + 1, shape, &m->mean));
        snprintf(pname, sizeof pname, "%s/base/log_sigma", name);
        FXP_TRY(fxp_params_add(ps, pname, FXP_PARAM_TRAINABLE, event_ndim + 1, shape,
                               &m->log_sigma));
    }
    *out = m;
    return FXP_OK;
out:
    if (m) m->flow = NULL;
    fxp_model_free(m);
    fxp_flow_free(flow);
    return rc;
}

void fxp_model_free(fxp_model *m)
{
    FXP_API_SCOPE();
    if (!m) return;
    fxp_flow_free(m->flow);
    free(m);
}

fxp_flow *fxp_model_flow(const fxp_model *m) { return m ? m->flow : NULL; }

/* log p(x) = log N(f(x); mu, sigma) + log|det df/dx|. */
int fxp_model_log_prob(fxp_model *m, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                       fxp_var **log_prob)
{
    FXP_API_SCOPE();
    if (!m || !t || !x || !log_prob) return FXP_ERR(m ? m->ctx : NULL, FXP_EINVAL, "NULL argument");
    if (x->value.ndim != m->event_ndim + 1) {
        char s[64];
        return FXP_ERR(m->ctx, FXP_ESHAPE, "x is %s but the model expects [batch] + %d dims",
                       fxp_tensor_shape_str(&x->value, s, sizeof s), m->event_ndim);
    }
    int rc;
    fxp_var *z, *ld, *lp, *mu = NULL, *ls = NULL;
    FXP_TRY(fxp_flow_forward(m->flow, t, io, x, &z, &ld));
    if (m->base == FXP_BASE_DIAG_NORMAL) {
        FXP_TRY(fxp_tape_param(t, &mu, m->mean));
        FXP_TRY(fxp_tape_param(t, &ls, m->log_sigma));
    }
    FXP_TRY(fxp_gaussian_logpdf(t, &lp, z, mu, ls));
    FXP_TRY(fxp_add(t, log_prob, lp, ld));
out:
    return rc;
}

/* z = mu + sigma * eps; x = f^-1(z). */
int fxp_model_decode(fxp_model *m, fxp_tape *t, const fxp_flow_io *io, fxp_var *eps,
                     fxp_var **x)
{
    FXP_API_SCOPE();
    if (!m || !t || !eps || !x) return FXP_ERR(m ? m->ctx : NULL, FXP_EINVAL, "NULL argument");
    if (eps->value.ndim != m->event_ndim + 1) {
        char s[64];
        return FXP_ERR(m->ctx, FXP_ESHAPE, "eps is %s but the model expects [n] + %d dims",
                       fxp_tensor_shape_str(&eps->value, s, sizeof s), m->event_ndim);
    }
    int rc;
    fxp_var *z = eps, *ld;
    if (m->base == FXP_BASE_DIAG_NORMAL) {
        fxp_var *mu, *ls, *sigma;
        FXP_TRY(fxp_tape_param(t, &mu, m->mean));
        FXP_TRY(fxp_tape_param(t, &ls, m->log_sigma));
        FXP_TRY(fxp_exp(t, &sigma, ls));
        FXP_TRY(fxp_mul(t, &z, z, sigma));
        FXP_TRY(fxp_add(t, &z, z, mu));
    }
    FXP_TRY(fxp_flow_inverse(m->flow, t, io, z, x, &ld));
out:
    return rc;
}

/* eps ~ N(0, T^2 I), then decode. */
int fxp_model_sample(fxp_model *m, fxp_tape *t, const fxp_flow_io *io, int n,
                     const int *event_shape, float temperature, fxp_rng *rng, fxp_var **x)
{
    FXP_API_SCOPE();
    if (!m || !t || !event_shape || !rng || !x)
        return FXP_ERR(m ? m->ctx : NULL, FXP_EINVAL, "NULL argument");
    if (n < 1) return FXP_ERR(m->ctx, FXP_EINVAL, "n = %d samples (must be >= 1)", n);
    if (!(temperature >= 0.0f) || !(temperature < 1e30f))
        return FXP_ERR(m->ctx, FXP_EINVAL, "temperature %g must be finite and >= 0",
                       (double)temperature);
    int rc, shape[FXP_MAX_DIMS];
    shape[0] = n;
    memcpy(shape + 1, event_shape, (size_t)m->event_ndim * sizeof(int));
    fxp_var *eps;
    FXP_TRY(fxp_tape_var(t, &eps, m->event_ndim + 1, shape));
    fxp_rng_normal_threads(rng, eps->value.data, (size_t)fxp_tensor_numel(&eps->value), 0.0f,
                           temperature, m->ctx ? fxp_ctx_threads(m->ctx) : 1);
    FXP_TRY(fxp_model_decode(m, t, io, eps, x));
out:
    return rc;
}
