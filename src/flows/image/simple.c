/* Fixed image maps (image.h): normalize, squeeze, flip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flows/image/image_internal.h"

/* A [B] logdet filled with one constant (no gradient). */
static int const_logdet(fxp_tape *t, const fxp_var *x, double value, fxp_var **logdet)
{
    int rc = fxp__zeros(t, logdet, 1, x->value.shape);
    if (rc < 0) return rc;
    for (int b = 0; b < x->value.shape[0]; b++) (*logdet)->value.data[b] = (float)value;
    return FXP_OK;
}

/* ---- normalize: z = (x - shift) / scale, logdet = -D log scale ---------------------- */

typedef struct normalize_layer {
    fxp_flow base;
    float shift, scale;
} normalize_layer;

static int normalize_apply(fxp_flow *f, fxp_tape *t, fxp_var *x, int inverse, fxp_var **z,
                           fxp_var **logdet)
{
    normalize_layer *l = (normalize_layer *)f;
    const double d = (double)fxp_tensor_numel(&x->value) / x->value.shape[0];
    int rc;
    if (!inverse) {
        FXP_TRY(fxp_add_scalar(t, z, x, -l->shift));
        FXP_TRY(fxp_scale(t, z, *z, 1.0f / l->scale));
    } else {
        FXP_TRY(fxp_scale(t, z, x, l->scale));
        FXP_TRY(fxp_add_scalar(t, z, *z, l->shift));
    }
    FXP_TRY(const_logdet(t, x, (inverse ? d : -d) * log((double)l->scale), logdet));
out:
    return rc;
}

static int normalize_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                             fxp_var **z, fxp_var **logdet)
{
    (void)io;
    return normalize_apply(f, t, x, 0, z, logdet);
}

static int normalize_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                             fxp_var **x, fxp_var **logdet)
{
    (void)io;
    return normalize_apply(f, t, z, 1, x, logdet);
}

static void plain_destroy(fxp_flow *f) { free(f); }

static const fxp_flow_vtable normalize_vtable = { "normalize", normalize_forward,
                                                  normalize_inverse, plain_destroy };

int fxp_normalize_new(fxp_ctx *ctx, const char *name, float shift, float scale, fxp_flow **out)
{
    FXP_API_SCOPE();
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    if (!isfinite(shift) || !(scale > 0) || !isfinite(scale))
        return FXP_ERR(ctx, FXP_EINVAL, "shift %g must be finite and scale %g finite and > 0",
                       (double)shift, (double)scale);
    normalize_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    int rc = fxp__flow_init(&l->base, &normalize_vtable, ctx, name);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->shift = shift;
    l->scale = scale;
    *out = &l->base;
    return FXP_OK;
}

/* ---- squeeze and flip: permutations, logdet 0 -------------------------------------- */

static int squeeze_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                           fxp_var **z, fxp_var **logdet)
{
    (void)io;
    int rc = fxp__check_nchw(f->ctx, f->name, x, -1);
    if (rc >= 0) rc = fxp_squeeze2d(t, z, x);
    return rc < 0 ? rc : const_logdet(t, x, 0, logdet);
}

static int squeeze_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                           fxp_var **x, fxp_var **logdet)
{
    (void)io;
    int rc = fxp__check_nchw(f->ctx, f->name, z, -1);
    if (rc >= 0) rc = fxp_unsqueeze2d(t, x, z);
    return rc < 0 ? rc : const_logdet(t, z, 0, logdet);
}

static int flip_apply(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x, fxp_var **z,
                      fxp_var **logdet)
{
    (void)io;
    int rc = fxp__check_nchw(f->ctx, f->name, x, -1);
    if (rc >= 0) rc = fxp_flip2d(t, z, x);
    return rc < 0 ? rc : const_logdet(t, x, 0, logdet);
}

static const fxp_flow_vtable squeeze_vtable = { "squeeze", squeeze_forward, squeeze_inverse,
                                                plain_destroy };
static const fxp_flow_vtable flip_vtable = { "flip", flip_apply, flip_apply, plain_destroy };

static int plain_new(fxp_ctx *ctx, const char *name, const fxp_flow_vtable *vt, fxp_flow **out)
{
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    fxp_flow *f = calloc(1, sizeof *f);
    if (!f) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    int rc = fxp__flow_init(f, vt, ctx, name);
    if (rc < 0) {
        free(f);
        return rc;
    }
    *out = f;
    return FXP_OK;
}

int fxp_squeeze_new(fxp_ctx *ctx, const char *name, fxp_flow **out)
{
    FXP_API_SCOPE();
    return plain_new(ctx, name, &squeeze_vtable, out);
}

int fxp_flip_new(fxp_ctx *ctx, const char *name, fxp_flow **out)
{
    FXP_API_SCOPE();
    return plain_new(ctx, name, &flip_vtable, out);
}
