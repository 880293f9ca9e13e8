/* Per-channel activation normalisation with data-dependent initialisation
 * (image.h; the authors' ActNorm of the Sylvester-table models). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flows/image/image_internal.h"

typedef struct actnorm_layer {
    fxp_flow base;
    int channels;
    fxp_param *t, *s, *init;
} actnorm_layer;

/* t_c = mean, s_c = log(std + 1e-8) over (B, H, W), std with N - 1 (double sums). */
static int data_init(actnorm_layer *l, const fxp_var *x)
{
    const int B = x->value.shape[0], C = l->channels;
    const int64_t hw = (int64_t)x->value.shape[2] * x->value.shape[3], n = B * hw;
    float *t = fxp_param_value(l->t).data, *s = fxp_param_value(l->s).data;
    if (n < 2)
        return FXP_ERR(l->base.ctx, FXP_EINVAL,
                       "%s: data-dependent initialisation needs at least 2 values per channel",
                       l->base.name);
    for (int c = 0; c < C; c++) {
        double sum = 0, sq = 0;
        for (int b = 0; b < B; b++) {
            const float *p = x->value.data + ((int64_t)b * C + c) * hw;
            for (int64_t i = 0; i < hw; i++) sum += p[i];
        }
        const double mean = sum / n;
        for (int b = 0; b < B; b++) {
            const float *p = x->value.data + ((int64_t)b * C + c) * hw;
            for (int64_t i = 0; i < hw; i++) sq += (p[i] - mean) * (p[i] - mean);
        }
        t[c] = (float)mean;
        s[c] = (float)log(sqrt(sq / (n - 1)) + 1e-8);
        if (!isfinite(t[c]) || !isfinite(s[c]))
            return FXP_ERR(l->base.ctx, FXP_ENUMERIC,
                           "%s: data-dependent initialisation of channel %d is not finite",
                           l->base.name, c);
    }
    fxp_param_value(l->init).data[0] = 1.0f;
    return FXP_OK;
}

/* forward z = (x - t) e^{-s}, logdet = -HW sum s; inverse x = z e^{s} + t. */
static int actnorm_apply(actnorm_layer *l, fxp_tape *t, fxp_var *x, int inverse, fxp_var **z,
                         fxp_var **logdet)
{
    const int C = l->channels, s4[4] = { 1, C, 1, 1 };
    fxp_var *tv, *sv, *t4, *s4v, *e, *ld, *zeros;
    int rc;
    FXP_TRY(fxp_tape_param(t, &tv, l->t));
    FXP_TRY(fxp_tape_param(t, &sv, l->s));
    FXP_TRY(fxp_reshape(t, &t4, tv, 4, s4));
    FXP_TRY(fxp_reshape(t, &s4v, sv, 4, s4));
    if (!inverse) {
        FXP_TRY(fxp_scale(t, &e, s4v, -1.0f));
        FXP_TRY(fxp_exp(t, &e, e));
        FXP_TRY(fxp_sub(t, z, x, t4));
        FXP_TRY(fxp_mul(t, z, *z, e));
    } else {
        FXP_TRY(fxp_exp(t, &e, s4v));
        FXP_TRY(fxp_mul(t, z, x, e));
        FXP_TRY(fxp_add(t, z, *z, t4));
    }
    FXP_TRY(fxp_sum(t, &ld, sv, FXP_AXES_ALL, 0));
    FXP_TRY(fxp_scale(t, &ld, ld,
                      (inverse ? 1.0f : -1.0f) * (float)x->value.shape[2] * x->value.shape[3]));
    FXP_TRY(fxp__zeros(t, &zeros, 1, x->value.shape));
    FXP_TRY(fxp_add(t, logdet, zeros, ld));
out:
    return rc;
}

static int actnorm_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                           fxp_var **z, fxp_var **logdet)
{
    actnorm_layer *l = (actnorm_layer *)f;
    int rc = fxp__check_nchw(f->ctx, f->name, x, l->channels);
    if (rc < 0) return rc;
    if (io->training && fxp_param_value(l->init).data[0] == 0.0f && (rc = data_init(l, x)) < 0)
        return rc;
    return actnorm_apply(l, t, x, 0, z, logdet);
}

static int actnorm_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                           fxp_var **x, fxp_var **logdet)
{
    (void)io;
    actnorm_layer *l = (actnorm_layer *)f;
    int rc = fxp__check_nchw(f->ctx, f->name, z, l->channels);
    return rc < 0 ? rc : actnorm_apply(l, t, z, 1, x, logdet);
}

static void actnorm_destroy(fxp_flow *f) { free(f); }

static const fxp_flow_vtable actnorm_vtable = { "actnorm", actnorm_forward, actnorm_inverse,
                                                actnorm_destroy };

int fxp_actnorm_new(fxp_ctx *ctx, fxp_params *ps, const char *name, int channels, fxp_flow **out)
{
    FXP_API_SCOPE();
    if (!ps || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    if (channels < 1) return FXP_ERR(ctx, FXP_EINVAL, "channels = %d (must be >= 1)", channels);
    actnorm_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    char pn[FXP_PARAM_NAME_MAX];
    const int one = 1;
    int rc;
    FXP_TRY(fxp__flow_init(&l->base, &actnorm_vtable, ctx, name));
    l->channels = channels;
    FXP_TRY(fxp__flow_param_name(&l->base, "translation", pn, sizeof pn));
    FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_TRAINABLE, 1, &channels, &l->t));
    FXP_TRY(fxp__flow_param_name(&l->base, "log_scale", pn, sizeof pn));
    FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_TRAINABLE, 1, &channels, &l->s));
    FXP_TRY(fxp__flow_param_name(&l->base, "initialized", pn, sizeof pn));
    FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_STATE, 1, &one, &l->init));
    *out = &l->base;
    return FXP_OK;
out:
    free(l);
    return rc;
}
