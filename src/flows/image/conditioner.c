/* Conditioner networks of the image couplings (image.h): PyTorch-initialised
 * convolutions, the DenseNet and DenseInResidualNet of the authors' §7.3, and
 * §8.3's three-convolution net. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/image/image_internal.h"
#include "ops/densenet.h"

int fxp__check_nchw(fxp_ctx *ctx, const char *who, const fxp_var *x, int channels)
{
    char s[64];
    const fxp_tensor *v = &x->value;
    if (v->ndim != 4 || (channels >= 0 && v->shape[1] != channels))
        return FXP_ERR(ctx, FXP_ESHAPE, "%s: x %s must be [B, %d, H, W]", who,
                       fxp_tensor_shape_str(v, s, sizeof s), channels);
    return FXP_OK;
}

static int add_param(fxp_params *ps, fxp_ctx *ctx, const char *prefix, const char *leaf, int nd,
                     const int *shape, fxp_param **p)
{
    char name[FXP_PARAM_NAME_MAX];
    int n = snprintf(name, sizeof name, "%s/%s", prefix, leaf);
    if (n < 0 || (size_t)n >= sizeof name)
        return FXP_ERR(ctx, FXP_EINVAL, "parameter name %s/%s too long", prefix, leaf);
    return fxp_params_add(ps, name, FXP_PARAM_TRAINABLE, nd, shape, p);
}

/* U(-bound, bound) into n floats. */
static void uniform_fill(fxp_rng *rng, float *x, size_t n, float bound)
{
    fxp_rng_uniform(rng, x, n);
    for (size_t i = 0; i < n; i++) x[i] = (2.0f * x[i] - 1.0f) * bound;
}

int fxp__conv_init(fxp__conv *c, fxp_ctx *ctx, fxp_params *ps, const char *prefix,
                   const char *wname, const char *bname, int out, int in, int k, int zero,
                   fxp_rng *rng)
{
    const int ws[4] = { out, in, k, k };
    int rc;
    FXP_TRY(add_param(ps, ctx, prefix, wname, 4, ws, &c->w));
    FXP_TRY(add_param(ps, ctx, prefix, bname, 1, &out, &c->b));
    if (!zero) {
        /* kaiming_uniform(a = sqrt 5) gives bound sqrt(6 / ((1 + 5) fan_in)) */
        const float bound = 1.0f / sqrtf((float)in * k * k);
        uniform_fill(rng, fxp_param_value(c->w).data, (size_t)out * in * k * k, bound);
        uniform_fill(rng, fxp_param_value(c->b).data, (size_t)out, bound);
    }
out:
    return rc;
}

int fxp__conv_apply(const fxp__conv *c, fxp_tape *t, fxp_var *x, int relu, fxp_var **y)
{
    fxp_var *w, *b;
    int rc;
    FXP_TRY(fxp_tape_param(t, &w, c->w));
    FXP_TRY(fxp_tape_param(t, &b, c->b));
    FXP_TRY(fxp_conv2d(t, y, x, w, b, NULL));
    if (relu) FXP_TRY(fxp_relu(t, y, *y));
out:
    return rc;
}

/* ---- DenseNet ------------------------------------------------------------------ */

int fxp__densenet_init(fxp__densenet *d, fxp_ctx *ctx, fxp_params *ps, const char *prefix,
                       int n_in, int n_out, int depth, int growth, int gated, fxp_rng *rng)
{
    memset(d, 0, sizeof *d);
    d->depth = depth;
    d->gated = gated;
    d->n_out = n_out;
    d->c1 = calloc((size_t)depth, sizeof *d->c1);
    d->c3 = calloc((size_t)depth, sizeof *d->c3);
    if (!d->c1 || !d->c3) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a DenseNet");
    char p[FXP_PARAM_NAME_MAX];
    int rc = FXP_OK, n = n_in;
    for (int l = 0; l < depth; l++) {
        if (snprintf(p, sizeof p, "%s/layer/%d", prefix, l) >= (int)sizeof p)
            return FXP_ERR(ctx, FXP_EINVAL, "parameter prefix %s too long", prefix);
        FXP_TRY(fxp__conv_init(&d->c1[l], ctx, ps, p, "w1", "b1", n, n, 1, 0, rng));
        FXP_TRY(fxp__conv_init(&d->c3[l], ctx, ps, p, "w3", "b3", growth, n, 3, 0, rng));
        n += growth;
    }
    if (snprintf(p, sizeof p, "%s/out", prefix) >= (int)sizeof p)
        return FXP_ERR(ctx, FXP_EINVAL, "parameter prefix %s too long", prefix);
    FXP_TRY(fxp__conv_init(&d->out, ctx, ps, p, "w", "b", gated ? 3 * n_out : n_out, n, 1, 0, rng));
out:
    return rc;
}

/* h <- concat(h, relu(conv3(relu(conv1(h))))) per layer, then the output 1x1
 * (gated: a + b sigmoid(c) of its three channel blocks): one fused tape op
 * (ops/densenet.h). */
int fxp__densenet_apply(const fxp__densenet *d, fxp_tape *t, fxp_var *x, fxp_var **y)
{
    const int D = d->depth;
    fxp_var **p = fxp_tape_alloc(t, (size_t)4 * D * sizeof *p);
    if (!p) return FXP_ENOMEM;
    fxp__densenet_vars v = { D, 0, d->gated, p, p + D, p + 2 * D, p + 3 * D, NULL, NULL };
    int rc = FXP_OK;
    for (int l = 0; l < D; l++) {
        FXP_TRY(fxp_tape_param(t, &v.w1[l], d->c1[l].w));
        FXP_TRY(fxp_tape_param(t, &v.b1[l], d->c1[l].b));
        FXP_TRY(fxp_tape_param(t, &v.w3[l], d->c3[l].w));
        FXP_TRY(fxp_tape_param(t, &v.b3[l], d->c3[l].b));
    }
    FXP_TRY(fxp_tape_param(t, &v.wo, d->out.w));
    FXP_TRY(fxp_tape_param(t, &v.bo, d->out.b));
    v.growth = v.w3[0]->value.shape[0];
    FXP_TRY(fxp__densenet_op(t, y, x, &v, fxp_tape_save_memory(t)));
out:
    return rc;
}

void fxp__densenet_free(fxp__densenet *d)
{
    if (!d) return;
    free(d->c1);
    free(d->c3);
    d->c1 = d->c3 = NULL;
}

/* ---- coupling conditioners ------------------------------------------------------- */

int fxp__coupling_opts_check(fxp_ctx *ctx, const fxp_image_coupling_opts *o)
{
    if (!o) return FXP_ERR(ctx, FXP_EINVAL, "coupling options are NULL");
    const char *bad = NULL;
    if (o->channels < 2 || o->channels % 2) bad = "channels (even, >= 2)";
    else if (o->context < 0) bad = "context (>= 0)";
    else if (o->net != FXP_COND_DENSE && o->net != FXP_COND_CONV) bad = "net";
    else if (o->intermediate < 1) bad = "intermediate (>= 1)";
    else if (o->net == FXP_COND_DENSE && (o->depth < 1 || o->depth > 256)) bad = "depth (1..256)";
    else if (o->net == FXP_COND_DENSE && o->growth < 1) bad = "growth (>= 1)";
    else if (o->net == FXP_COND_DENSE && (o->n_densenets < 1 || o->n_densenets > 64))
        bad = "n_densenets (1..64)";
    else if (o->gated != 0 && o->gated != 1) bad = "gated (0 or 1)";
    else if (o->scale != FXP_SCALE_TANH2 && o->scale != FXP_SCALE_HALF_TANH) bad = "scale";
    if (bad)
        return FXP_ERR(ctx, FXP_EINVAL,
                       "bad coupling option %s: channels %d context %d net %d intermediate %d "
                       "depth %d growth %d n_densenets %d gated %d scale %d",
                       bad, o->channels, o->context, (int)o->net, o->intermediate, o->depth,
                       o->growth, o->n_densenets, o->gated, (int)o->scale);
    return FXP_OK;
}

int fxp__cond_init(fxp__cond *n, fxp_ctx *ctx, fxp_params *ps, const char *prefix, int c_in,
                   int c_out, const fxp_image_coupling_opts *o, fxp_rng *rng)
{
    memset(n, 0, sizeof *n);
    n->net = o->net;
    const int I = o->intermediate;
    char p[FXP_PARAM_NAME_MAX];
    int rc = FXP_OK;
    if (o->net == FXP_COND_CONV) {
        FXP_TRY(fxp__conv_init(&n->first, ctx, ps, prefix, "w1", "b1", I, c_in, 3, 0, rng));
        FXP_TRY(fxp__conv_init(&n->mid, ctx, ps, prefix, "w2", "b2", I, I, 1, 0, rng));
        FXP_TRY(fxp__conv_init(&n->last, ctx, ps, prefix, "w3", "b3", c_out, I, 3, 1, rng));
        return FXP_OK;
    }
    if (snprintf(p, sizeof p, "%s/first", prefix) >= (int)sizeof p)
        return FXP_ERR(ctx, FXP_EINVAL, "parameter prefix %s too long", prefix);
    FXP_TRY(fxp__conv_init(&n->first, ctx, ps, p, "w", "b", I, c_in, 1, 0, rng));
    n->dense = calloc((size_t)o->n_densenets, sizeof *n->dense);
    if (!n->dense) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate %s", prefix);
    n->n_dense = o->n_densenets;
    for (int d = 0; d < o->n_densenets; d++) {
        if (snprintf(p, sizeof p, "%s/dense/%d", prefix, d) >= (int)sizeof p)
            return FXP_ERR(ctx, FXP_EINVAL, "parameter prefix %s too long", prefix);
        FXP_TRY(fxp__densenet_init(&n->dense[d], ctx, ps, p, I, I, o->depth, o->growth, o->gated,
                                   rng));
    }
    if (snprintf(p, sizeof p, "%s/last", prefix) >= (int)sizeof p)
        return FXP_ERR(ctx, FXP_EINVAL, "parameter prefix %s too long", prefix);
    FXP_TRY(fxp__conv_init(&n->last, ctx, ps, p, "w", "b", c_out, I, 1, 1, rng));
out:
    return rc;
}

int fxp__cond_apply(const fxp__cond *n, fxp_tape *t, fxp_var *x, fxp_var **y)
{
    fxp_var *h, *d;
    int rc;
    if (n->net == FXP_COND_CONV) {
        FXP_TRY(fxp__conv_apply(&n->first, t, x, 1, &h));
        FXP_TRY(fxp__conv_apply(&n->mid, t, h, 1, &h));
        FXP_TRY(fxp__conv_apply(&n->last, t, h, 0, y));
        return FXP_OK;
    }
    FXP_TRY(fxp__conv_apply(&n->first, t, x, 0, &h));
    for (int i = 0; i < n->n_dense; i++) { /* residual DenseNets */
        FXP_TRY(fxp__densenet_apply(&n->dense[i], t, h, &d));
        FXP_TRY(fxp_add(t, &h, h, d));
    }
    FXP_TRY(fxp__conv_apply(&n->last, t, h, 0, y));
out:
    return rc;
}

void fxp__cond_free(fxp__cond *n)
{
    if (!n) return;
    for (int i = 0; i < n->n_dense; i++) fxp__densenet_free(&n->dense[i]);
    free(n->dense);
    n->dense = NULL;
    n->n_dense = 0;
}
