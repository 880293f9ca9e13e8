/* The convolution exponential flow layer as the authors build it (see
 * layers.h): biases, a 1x1 channel mixer, exp of a spectrally normalised
 * convolution. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/mixing/mixing_internal.h"

typedef struct convexp_layer {
    fxp_flow base;
    fxp_convexp_opts o;
    fxp_param *kernel, *pre, *post, *mixer, *u, *v;
} convexp_layer;

void fxp_convexp_opts_default(fxp_convexp_opts *o, int channels, int height, int width)
{
    *o = (fxp_convexp_opts){ channels, height, width, 3, FXP_PAD_ZERO, 1,
                             channels <= 64 ? FXP_MIXER_PLAIN : FXP_MIXER_HOUSEHOLDER,
                             channels <= 64 ? channels : 64, 0.9f, 1, 6, 13, 0.0f };
}

/* The per-pixel C x C map (inverse if `inverse`) as a [C,C,1,1] kernel, and
 * its H W log|det| (0 for orthogonal mixers) as a scalar or NULL. */
static int mixer_kernel(convexp_layer *l, fxp_tape *t, int inverse, fxp_var **k, fxp_var **ld)
{
    const int C = l->o.channels, k4[4] = { C, C, 1, 1 };
    fxp_var *m, *q = NULL;
    int rc;
    *ld = NULL;
    FXP_TRY(fxp_tape_param(t, &m, l->mixer));
    if (l->o.mixer == FXP_MIXER_PLAIN) {
        FXP_TRY(fxp_logabsdet(t, ld, m));
        FXP_TRY(fxp_scale(t, ld, *ld, (float)l->o.height * l->o.width));
        if (inverse) FXP_TRY(fxp_inverse(t, &q, m));
        else q = m;
    } else {
        FXP_TRY(fxp__householder_matrix(t, m, inverse, &q));
    }
    FXP_TRY(fxp_reshape(t, k, q, 4, k4));
out:
    return rc;
}

static int check_x(convexp_layer *l, const fxp_var *x)
{
    const fxp_tensor *v = &x->value;
    char s1[64];
    if (v->ndim != 4 || v->shape[1] != l->o.channels || v->shape[2] != l->o.height ||
        v->shape[3] != l->o.width)
        return FXP_ERR(l->base.ctx, FXP_ESHAPE, "%s: x %s must be [B, %d, %d, %d]", l->base.name,
                       fxp_tensor_shape_str(v, s1, sizeof s1), l->o.channels, l->o.height,
                       l->o.width);
    return FXP_OK;
}

/* K_hat and its trace term H W sum_c K_hat[c,c,centre]. */
static int kernel_hat(convexp_layer *l, fxp_tape *t, const fxp_flow_io *io, fxp_var **kh,
                      fxp_var **tr)
{
    fxp_var *k;
    int rc;
    float sigma;
    FXP_TRY(fxp_tape_param(t, &k, l->kernel));
    FXP_TRY(fxp_spectral_norm_conv(t, kh, k, fxp_param_value(l->u).data,
                                   fxp_param_value(l->v).data, l->o.height, l->o.width,
                                   l->o.padding, l->o.coeff, io->training ? l->o.power_steps : 0,
                                   &sigma));
    if (l->o.sn_eps > 0) { /* K / (f + eps) = (K / f) f / (f + eps) */
        const double f = fmax(1.0, (double)sigma / l->o.coeff);
        FXP_TRY(fxp_scale(t, kh, *kh, (float)(f / (f + l->o.sn_eps))));
    }
    FXP_TRY(fxp_conv_trace(t, tr, *kh, l->o.height, l->o.width));
out:
    return rc;
}

static int finish_logdet(fxp_tape *t, const fxp_var *x, fxp_var *tr, fxp_var *ldm, float sign,
                         fxp_var **logdet)
{
    fxp_var *z, *s = tr;
    int rc;
    if (ldm) FXP_TRY(fxp_add(t, &s, s, ldm));
    if (sign < 0) FXP_TRY(fxp_scale(t, &s, s, -1.0f));
    FXP_TRY(fxp__zeros(t, &z, 1, x->value.shape));
    FXP_TRY(fxp_add(t, logdet, z, s));
out:
    return rc;
}

static int convexp_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                           fxp_var **z, fxp_var **logdet)
{
    convexp_layer *l = (convexp_layer *)f;
    fxp_var *h = x, *b, *k, *kh, *tr, *ldm = NULL;
    int rc;
    FXP_TRY(check_x(l, x));
    if (l->o.biases) {
        FXP_TRY(fxp_tape_param(t, &b, l->pre));
        FXP_TRY(fxp_add(t, &h, h, b));
    }
    if (l->o.mixer != FXP_MIXER_NONE) {
        FXP_TRY(mixer_kernel(l, t, 0, &k, &ldm));
        FXP_TRY(fxp_conv2d(t, &h, h, k, NULL, NULL));
    }
    FXP_TRY(kernel_hat(l, t, io, &kh, &tr));
    fxp_expm_opts o = fxp_expm_fixed(io->training ? l->o.terms_train : l->o.terms_eval);
    FXP_TRY(fxp_expm_conv(t, &h, h, kh, l->o.padding, 0, &o, NULL));
    if (l->o.biases) {
        FXP_TRY(fxp_tape_param(t, &b, l->post));
        FXP_TRY(fxp_add(t, &h, h, b));
    }
    FXP_TRY(finish_logdet(t, x, tr, ldm, 1, logdet));
    *z = h;
out:
    return rc;
}

/* Exactly the reverse order: - post, exp(-M), Q^-1, - pre. */
static int convexp_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                           fxp_var **x, fxp_var **logdet)
{
    convexp_layer *l = (convexp_layer *)f;
    fxp_var *h = z, *b, *k, *kh, *tr, *ldm = NULL;
    int rc;
    FXP_TRY(check_x(l, z));
    if (l->o.biases) {
        FXP_TRY(fxp_tape_param(t, &b, l->post));
        FXP_TRY(fxp_sub(t, &h, h, b));
    }
    FXP_TRY(kernel_hat(l, t, io, &kh, &tr));
    fxp_expm_opts o = fxp_expm_fixed(io->training ? l->o.terms_train : l->o.terms_eval);
    FXP_TRY(fxp_expm_conv(t, &h, h, kh, l->o.padding, 1, &o, NULL));
    if (l->o.mixer != FXP_MIXER_NONE) {
        FXP_TRY(mixer_kernel(l, t, 1, &k, &ldm));
        FXP_TRY(fxp_conv2d(t, &h, h, k, NULL, NULL));
    }
    if (l->o.biases) {
        FXP_TRY(fxp_tape_param(t, &b, l->pre));
        FXP_TRY(fxp_sub(t, &h, h, b));
    }
    FXP_TRY(finish_logdet(t, z, tr, ldm, -1, logdet));
    *x = h;
out:
    return rc;
}

static void convexp_destroy(fxp_flow *f) { free(f); }

static const fxp_flow_vtable convexp_vtable = { "convexp", convexp_forward, convexp_inverse,
                                                convexp_destroy };

int fxp_convexp_new(fxp_ctx *ctx, fxp_params *ps, const char *name, const fxp_convexp_opts *opts,
                    fxp_rng *rng, fxp_flow **out)
{
    if (!ps || !opts || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    const fxp_convexp_opts *o = opts;
    if (o->channels < 1 || o->height < 1 || o->width < 1 || o->kernel < 1 || o->kernel % 2 == 0 ||
        (o->padding != FXP_PAD_ZERO && o->padding != FXP_PAD_CIRCULAR) ||
        (o->padding == FXP_PAD_CIRCULAR && (o->kernel > o->height || o->kernel > o->width)) ||
        o->mixer < FXP_MIXER_NONE || o->mixer > FXP_MIXER_HOUSEHOLDER ||
        (o->mixer == FXP_MIXER_HOUSEHOLDER && o->reflections < 1) || !(o->coeff > 0) ||
        !isfinite(o->coeff) || !(o->sn_eps >= 0 && o->sn_eps <= 1) ||
        o->power_steps < 0 || o->terms_train < 1 || o->terms_eval < 1 || o->terms_train > 1000 ||
        o->terms_eval > 1000)
        return FXP_ERR(ctx, FXP_EINVAL,
                       "bad options: C=%d H=%d W=%d kernel %d (odd; <= H, W if circular), "
                       "mixer %d (R=%d), coeff %g finite > 0, sn_eps %g in [0, 1], "
                       "power_steps %d >= 0, terms %d/%d in [1,1000]",
                       o->channels, o->height, o->width, o->kernel, (int)o->mixer, o->reflections,
                       (double)o->coeff, (double)o->sn_eps, o->power_steps, o->terms_train,
                       o->terms_eval);
    convexp_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    int rc;
    char pn[FXP_PARAM_NAME_MAX];
    const int C = o->channels, k = o->kernel;
    const int ks[4] = { C, C, k, k }, bs[4] = { 1, C, o->height, o->width },
              ms[2] = { o->mixer == FXP_MIXER_HOUSEHOLDER ? o->reflections : C, C };
    const int uv = C * o->height * o->width;
    FXP_TRY(fxp__flow_init(&l->base, &convexp_vtable, ctx, name));
    l->o = *o;
    struct { const char *leaf; int kind, nd; const int *shape; fxp_param **p; int on; } reg[] = {
        { "kernel", FXP_PARAM_TRAINABLE, 4, ks, &l->kernel, 1 },
        { "pre_bias", FXP_PARAM_TRAINABLE, 4, bs, &l->pre, o->biases },
        { "post_bias", FXP_PARAM_TRAINABLE, 4, bs, &l->post, o->biases },
        { "mixer", FXP_PARAM_TRAINABLE, 2, ms, &l->mixer, o->mixer != FXP_MIXER_NONE },
        { "u", FXP_PARAM_STATE, 1, &uv, &l->u, 1 },
        { "v", FXP_PARAM_STATE, 1, &uv, &l->v, 1 },
    };
    for (size_t i = 0; i < sizeof reg / sizeof reg[0]; i++) {
        if (!reg[i].on) continue;
        FXP_TRY(fxp__flow_param_name(&l->base, reg[i].leaf, pn, sizeof pn));
        FXP_TRY(fxp_params_add(ps, pn, reg[i].kind, reg[i].nd, reg[i].shape, reg[i].p));
    }
    fxp_rng_normal(rng, fxp_param_value(l->kernel).data, (size_t)C * C * k * k, 0,
                   1.0f / (float)(C * k * k));
    if (o->mixer == FXP_MIXER_PLAIN)
        FXP_TRY(fxp__random_orthogonal(ctx, rng, fxp_param_value(l->mixer).data, C));
    if (o->mixer == FXP_MIXER_HOUSEHOLDER)
        fxp_rng_normal(rng, fxp_param_value(l->mixer).data, (size_t)ms[0] * C, 0, 1);
    fxp_spectral_init(rng, fxp_param_value(l->u).data, uv);
    fxp_spectral_init(rng, fxp_param_value(l->v).data, uv);
    *out = &l->base;
    return FXP_OK;
out:
    free(l);
    return rc;
}
