/* Affine coupling over channels with a DenseInResidualNet or three-conv
 * conditioner (image.h, the authors' §7.2 Coupling and §8.3 PlainCoupling). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/image/image_internal.h"

void fxp_image_coupling_opts_default(fxp_image_coupling_opts *o, int channels)
{
    *o = (fxp_image_coupling_opts){ channels, 0, FXP_COND_DENSE, 64, 8, 64, 1, 1, FXP_SCALE_TANH2 };
}

int fxp__coupling_init(fxp__coupling *c, fxp_ctx *ctx, fxp_params *ps, const char *prefix,
                       const fxp_image_coupling_opts *o, fxp_rng *rng)
{
    memset(c, 0, sizeof *c);
    int rc = fxp__coupling_opts_check(ctx, o);
    if (rc < 0) return rc;
    c->o = *o;
    char p[FXP_PARAM_NAME_MAX];
    if (snprintf(p, sizeof p, "%s/nn", prefix) >= (int)sizeof p)
        return FXP_ERR(ctx, FXP_EINVAL, "parameter prefix %s too long", prefix);
    return fxp__cond_init(&c->nn, ctx, ps, p, o->channels / 2 + o->context, o->channels, o, rng);
}

void fxp__coupling_free(fxp__coupling *c)
{
    if (c) fxp__cond_free(&c->nn);
}

/* h = NN([x1, context]); log s = squash(h[:, 0::2]), t = h[:, 1::2];
 * forward z2 = x2 e^{log s} + t, inverse x2 = (z2 - t) e^{-log s};
 * logdet = +-sum log s. */
int fxp__coupling_apply(const fxp__coupling *c, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                        int inverse, const char *who, fxp_var **z, fxp_var **logdet)
{
    fxp_ctx *ctx = fxp_tape_ctx(t);
    const int C = c->o.channels;
    fxp_var *x1, *x2, *in, *h, *hs, *ht, *ls, *es, *y2;
    int rc;
    FXP_TRY(fxp__check_nchw(ctx, who, x, C));
    FXP_TRY(fxp_split(t, &x1, &x2, x, 1, C / 2));
    in = x1;
    if (c->o.context > 0) {
        const fxp_var *cv = io ? io->context : NULL;
        if (!cv) {
            rc = FXP_ERR(ctx, FXP_EINVAL, "%s needs a context [B, %d, H, W] in io->context", who,
                         c->o.context);
            goto out;
        }
        const fxp_tensor *v = &cv->value;
        if (v->ndim != 4 || v->shape[0] != x->value.shape[0] || v->shape[1] != c->o.context ||
            v->shape[2] != x->value.shape[2] || v->shape[3] != x->value.shape[3]) {
            char s1[64], s2[64];
            rc = FXP_ERR(ctx, FXP_ESHAPE, "%s: context %s does not fit x %s (%d channels)", who,
                         fxp_tensor_shape_str(v, s1, sizeof s1),
                         fxp_tensor_shape_str(&x->value, s2, sizeof s2), c->o.context);
            goto out;
        }
        FXP_TRY(fxp_concat(t, &in, x1, io->context, 1));
    }
    FXP_TRY(fxp__cond_apply(&c->nn, t, in, &h));
    FXP_TRY(fxp_split_interleaved(t, &hs, &ht, h, 1));
    if (c->o.scale == FXP_SCALE_TANH2) {
        FXP_TRY(fxp_scale(t, &ls, hs, 0.5f));
        FXP_TRY(fxp_tanh(t, &ls, ls));
        FXP_TRY(fxp_scale(t, &ls, ls, 2.0f));
    } else {
        FXP_TRY(fxp_tanh(t, &ls, hs));
        FXP_TRY(fxp_scale(t, &ls, ls, 0.5f));
    }
    if (!inverse) {
        FXP_TRY(fxp_exp(t, &es, ls));
        FXP_TRY(fxp_mul(t, &y2, x2, es));
        FXP_TRY(fxp_add(t, &y2, y2, ht));
    } else {
        fxp_var *nls;
        FXP_TRY(fxp_scale(t, &nls, ls, -1.0f));
        FXP_TRY(fxp_exp(t, &es, nls));
        FXP_TRY(fxp_sub(t, &y2, x2, ht));
        FXP_TRY(fxp_mul(t, &y2, y2, es));
    }
    FXP_TRY(fxp_concat(t, z, x1, y2, 1));
    FXP_TRY(fxp_sum(t, logdet, ls, FXP_AXES_FROM(1), 0));
    if (inverse) FXP_TRY(fxp_scale(t, logdet, *logdet, -1.0f));
out:
    return rc;
}

/* ---- the public layer ----------------------------------------------------------- */

typedef struct coupling_layer {
    fxp_flow base;
    fxp__coupling c;
} coupling_layer;

static int coupling_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                            fxp_var **z, fxp_var **logdet)
{
    return fxp__coupling_apply(&((coupling_layer *)f)->c, t, io, x, 0, f->name, z, logdet);
}

static int coupling_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                            fxp_var **x, fxp_var **logdet)
{
    return fxp__coupling_apply(&((coupling_layer *)f)->c, t, io, z, 1, f->name, x, logdet);
}

static void coupling_destroy(fxp_flow *f)
{
    fxp__coupling_free(&((coupling_layer *)f)->c);
    free(f);
}

static const fxp_flow_vtable coupling_vtable = { "image_coupling", coupling_forward,
                                                 coupling_inverse, coupling_destroy };

int fxp_image_coupling_new(fxp_ctx *ctx, fxp_params *ps, const char *name,
                           const fxp_image_coupling_opts *opts, fxp_rng *rng, fxp_flow **out)
{
    FXP_API_SCOPE();
    if (!ps || !opts || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    coupling_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    int rc;
    FXP_TRY(fxp__flow_init(&l->base, &coupling_vtable, ctx, name));
    FXP_TRY(fxp__coupling_init(&l->c, ctx, ps, name, opts, rng));
    *out = &l->base;
    return FXP_OK;
out:
    fxp__coupling_free(&l->c);
    free(l);
    return rc;
}
