/* The autoregressive functions f_AR of the Sylvester layers (sylvester.h):
 * the generalized one (§5.2, four masked heads) and the original Sylvester
 * form R2 tanh(R1 (u + b)) of the "without generalisation" ablation (§5.5). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/sylvester/sylvester_internal.h"

static const char *const head_names[4] = { "linear_t1", "linear_s1", "linear_t2", "linear_s2" };

static int prefixed(fxp_ctx *ctx, char *buf, size_t n, const char *prefix, const char *leaf)
{
    const int k = snprintf(buf, n, "%s/%s", prefix, leaf);
    return k < 0 || (size_t)k >= n ? FXP_ERR(ctx, FXP_EINVAL, "name %s/%s too long", prefix, leaf)
                                   : FXP_OK;
}

int fxp__far_init(fxp__far *f, fxp_ctx *ctx, fxp_params *ps, const char *prefix,
                  const fxp_sylvester_opts *o, fxp_rng *rng)
{
    memset(f, 0, sizeof *f);
    f->kind = o->f;
    f->c = o->channels;
    f->h = o->height;
    f->w = o->width;
    f->k = o->kernel;
    f->hidden = o->hidden;
    f->coeff = o->lipschitz;
    f->sn_eps = o->sn_eps;
    f->power_steps = o->power_steps;
    const int C = o->channels, k = o->kernel, H = o->height, W = o->width, nh = o->hidden;
    char p[FXP_PARAM_NAME_MAX];
    int rc = FXP_OK;
    if (f->kind == FXP_SYLV_F_GENERALIZED) {
        /* trunk: k x k C -> n_h and 1x1 n_h -> n_h, non-strict; heads strict */
        FXP_TRY(prefixed(ctx, p, sizeof p, prefix, "nn/0"));
        FXP_TRY(fxp__mconv_init(&f->nn0, ctx, ps, p, C, nh, k, 0, H, W, 0, rng));
        FXP_TRY(prefixed(ctx, p, sizeof p, prefix, "nn/2"));
        FXP_TRY(fxp__mconv_init(&f->nn2, ctx, ps, p, nh, nh, 1, 0, H, W, 0, rng));
        for (int i = 0; i < 4; i++) {
            FXP_TRY(prefixed(ctx, p, sizeof p, prefix, head_names[i]));
            /* t1 and s1 start at zero: f(u) = t2(u) and J_dd = 0 */
            FXP_TRY(fxp__mconv_init(&f->head[i], ctx, ps, p, nh, C, k, 1, H, W, i < 2, rng));
        }
        return FXP_OK;
    }
    /* ORIGINAL: d [C, C, k, k], diag1, diag2, b [C]; the strict mask and the
     * centre-diagonal selector are constants */
    const int ks[4] = { C, C, k, k };
    const size_t nk = (size_t)C * C * k * k;
    f->strict_mask = malloc(nk * sizeof *f->strict_mask);
    f->centre = calloc(nk, sizeof *f->centre);
    if (!f->strict_mask || !f->centre) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate the masks of %s", prefix);
        goto out;
    }
    FXP_TRY(fxp_ar_mask(f->strict_mask, C, C, k, k, 1));
    for (int c = 0; c < C; c++) f->centre[((size_t)c * C + c) * k * k + (k * k) / 2] = 1.0f;
    struct { const char *leaf; int nd; const int *shape; fxp_param **p; } reg[] = {
        { "d", 4, ks, &f->d }, { "diag1", 1, &C, &f->diag1 }, { "diag2", 1, &C, &f->diag2 },
        { "b", 1, &C, &f->b } };
    for (size_t i = 0; i < sizeof reg / sizeof reg[0]; i++) {
        FXP_TRY(prefixed(ctx, p, sizeof p, prefix, reg[i].leaf));
        FXP_TRY(fxp_params_add(ps, p, FXP_PARAM_TRAINABLE, reg[i].nd, reg[i].shape, reg[i].p));
    }
    /* the authors' init: d ~ N(0, 1 / (n_h^2 k^2)) as a standard deviation,
     * diag1 ~ N(0, 1), diag2 = b = 0 */
    fxp_rng_normal(rng, fxp_param_value(f->d).data, nk, 0, 1.0f / ((float)nh * nh * k * k));
    fxp_rng_normal(rng, fxp_param_value(f->diag1).data, (size_t)C, 0, 1);
    return FXP_OK;
out:
    fxp__far_free(f);
    return rc;
}

void fxp__far_free(fxp__far *f)
{
    if (!f) return;
    fxp__mconv_free(&f->nn0);
    fxp__mconv_free(&f->nn2);
    for (int i = 0; i < 4; i++) fxp__mconv_free(&f->head[i]);
    free(f->strict_mask);
    free(f->centre);
    f->strict_mask = f->centre = NULL;
}

/* ---- the kernel transpose d^P[o, c, a, b] = d[c, o, b, a] ------------------------ */

/* Backward: dL/dd[c, o, b, a] += dL/dout[o, c, a, b] (a permutation). */
static int ktrans_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    fxp_var *d = n->in[0];
    if (!d->grad) return FXP_OK;
    const int C = d->value.shape[0], k = d->value.shape[2];
    const float *g = n->out->grad;
    for (int o = 0; o < C; o++)
        for (int c = 0; c < C; c++)
            for (int a = 0; a < k; a++)
                for (int b = 0; b < k; b++)
                    d->grad[(((size_t)c * C + o) * k + b) * k + a] +=
                        g[(((size_t)o * C + c) * k + a) * k + b];
    return FXP_OK;
}

/* The authors' d.permute(1, 0, 3, 2) of a square kernel [C, C, k, k]. */
static int ktrans(fxp_tape *t, fxp_var **out, fxp_var *d)
{
    const int C = d->value.shape[0], k = d->value.shape[2];
    fxp_var *y;
    int rc = fxp_tape_var(t, &y, 4, d->value.shape);
    if (rc < 0) return rc;
    for (int o = 0; o < C; o++)
        for (int c = 0; c < C; c++)
            for (int a = 0; a < k; a++)
                for (int b = 0; b < k; b++)
                    y->value.data[(((size_t)o * C + c) * k + a) * k + b] =
                        d->value.data[(((size_t)c * C + o) * k + b) * k + a];
    if (fxp_tape_needs_grad(t, 1, &d) &&
        (rc = fxp_tape_record(t, "sylvester_kernel_transpose", ktrans_backward, y, 1, &d,
                              NULL)) < 0)
        return rc;
    *out = y;
    return FXP_OK;
}

/* A constant [C, C, k, k] array as a tape variable (no gradient). */
static int constant(fxp_tape *t, const float *data, const fxp_tensor *like, fxp_var **out)
{
    fxp_tensor c = fxp_tensor_wrap((float *)data, like->ndim, like->shape);
    return fxp_tape_input(t, out, &c, 0);
}

int fxp__far_weights(const fxp__far *f, fxp_tape *t, int training, fxp__far_w *w)
{
    memset(w, 0, sizeof *w);
    const int steps = training ? f->power_steps : 0;
    int rc;
    if (f->kind == FXP_SYLV_F_GENERALIZED) {
        fxp_var *hw[4], *hb[4];
        FXP_TRY(fxp__mconv_weight(&f->nn0, t, f->coeff, steps, f->sn_eps, &w->w0, &w->b0));
        FXP_TRY(fxp__mconv_weight(&f->nn2, t, f->coeff, steps, f->sn_eps, &w->w2, &w->b2));
        for (int i = 0; i < 4; i++)
            FXP_TRY(fxp__mconv_weight(&f->head[i], t, f->coeff, steps, f->sn_eps, &hw[i], &hb[i]));
        /* the four heads, each normalised on its own, run as one convolution */
        w->wh = hw[0];
        w->bh = hb[0];
        for (int i = 1; i < 4; i++) {
            FXP_TRY(fxp_concat(t, &w->wh, w->wh, hw[i], 0));
            FXP_TRY(fxp_concat(t, &w->bh, w->bh, hb[i], 0));
        }
        return FXP_OK;
    }
    const int C = f->c, c4[4] = { 1, C, 1, 1 };
    fxp_var *d, *m, *ctr, *dm, *dp, *d1, *d2, *t1, *t2, *b;
    FXP_TRY(fxp_tape_param(t, &d, f->d));
    FXP_TRY(constant(t, f->strict_mask, &d->value, &m));
    FXP_TRY(constant(t, f->centre, &d->value, &ctr));
    FXP_TRY(fxp_tape_param(t, &d1, f->diag1));
    FXP_TRY(fxp_tape_param(t, &d2, f->diag2));
    FXP_TRY(fxp_tanh(t, &t1, d1));
    FXP_TRY(fxp_tanh(t, &t2, d2));
    FXP_TRY(fxp_reshape(t, &t1, t1, 4, c4));
    FXP_TRY(fxp_reshape(t, &t2, t2, 4, c4));
    /* R1 = d .* mask + tanh(diag1) on the centre diagonal (the mask is 0 there) */
    FXP_TRY(fxp_mul(t, &dm, d, m));
    FXP_TRY(fxp_mul(t, &w->r1, ctr, t1));
    FXP_TRY(fxp_add(t, &w->r1, w->r1, dm));
    /* R2 = d^P .* mask + tanh(diag2) on the centre diagonal */
    FXP_TRY(ktrans(t, &dp, d));
    FXP_TRY(fxp_mul(t, &dp, dp, m));
    FXP_TRY(fxp_mul(t, &w->r2, ctr, t2));
    FXP_TRY(fxp_add(t, &w->r2, w->r2, dp));
    FXP_TRY(fxp_mul(t, &w->dd, t1, t2));
    FXP_TRY(fxp_tape_param(t, &b, f->b));
    FXP_TRY(fxp_reshape(t, &w->bias, b, 4, c4));
out:
    return rc;
}

/* 1 - tanh(a)^2 from th = tanh(a). */
static int dtanh(fxp_tape *t, fxp_var *th, fxp_var **out)
{
    int rc;
    FXP_TRY(fxp_square(t, out, th));
    FXP_TRY(fxp_scale(t, out, *out, -1.0f));
    FXP_TRY(fxp_add_scalar(t, out, *out, 1.0f));
out:
    return rc;
}

int fxp__far_eval(const fxp__far *f, const fxp__far_w *w, fxp_tape *t, fxp_var *u,
                  fxp_var **out, fxp_var **diag)
{
    int rc;
    fxp_var *h, *th, *dt;
    if (f->kind == FXP_SYLV_F_GENERALIZED) {
        fxp_var *t1, *s1, *t2, *s2, *rest, *a;
        FXP_TRY(fxp_conv2d(t, &h, u, w->w0, w->b0, NULL));
        FXP_TRY(fxp_relu(t, &h, h));
        FXP_TRY(fxp_conv2d(t, &h, h, w->w2, w->b2, NULL));
        FXP_TRY(fxp_relu(t, &h, h));
        FXP_TRY(fxp_conv2d(t, &h, h, w->wh, w->bh, NULL));
        FXP_TRY(fxp_split(t, &t1, &rest, h, 1, f->c));
        FXP_TRY(fxp_split(t, &s1, &rest, rest, 1, f->c));
        FXP_TRY(fxp_split(t, &t2, &s2, rest, 1, f->c));
        FXP_TRY(fxp_tanh(t, &s1, s1));
        FXP_TRY(fxp_tanh(t, &s2, s2));
        FXP_TRY(fxp_scale(t, &s2, s2, 0.5f));
        /* f = s2 tanh(s1 u + t1) + t2,  J_dd = s2 s1 (1 - tanh^2(s1 u + t1)) */
        FXP_TRY(fxp_mul(t, &a, s1, u));
        FXP_TRY(fxp_add(t, &a, a, t1));
        FXP_TRY(fxp_tanh(t, &th, a));
        FXP_TRY(fxp_mul(t, out, s2, th));
        FXP_TRY(fxp_add(t, out, *out, t2));
        FXP_TRY(dtanh(t, th, &dt));
        FXP_TRY(fxp_mul(t, diag, s2, s1));
        FXP_TRY(fxp_mul(t, diag, *diag, dt));
        return FXP_OK;
    }
    /* f = R2 tanh(R1 (u + b)),  J_dd = tanh(diag1) tanh(diag2) tanh'(R1 (u + b)) */
    FXP_TRY(fxp_add(t, &h, u, w->bias));
    FXP_TRY(fxp_conv2d(t, &h, h, w->r1, NULL, NULL));
    FXP_TRY(fxp_tanh(t, &th, h));
    FXP_TRY(fxp_conv2d(t, out, th, w->r2, NULL, NULL));
    FXP_TRY(dtanh(t, th, &dt));
    FXP_TRY(fxp_mul(t, diag, dt, w->dd));
out:
    return rc;
}
