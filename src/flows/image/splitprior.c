/* The split prior of multi-scale image flows (image.h): a coupling, then
 * half of the channels factored out under N(0, I). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/image/image_internal.h"

typedef struct split_layer {
    fxp_flow base;
    fxp__coupling c;
} split_layer;

/* x -> y = coupling(x) -> (z = y1, eps = y2); logdet = ld_c + log N(eps). */
static int split_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                         fxp_var **z, fxp_var **logdet)
{
    split_layer *l = (split_layer *)f;
    const int C = l->c.o.channels;
    fxp_var *y, *ldc, *eps, *lp;
    int rc;
    FXP_TRY(fxp__coupling_apply(&l->c, t, io, x, 0, f->name, &y, &ldc));
    FXP_TRY(fxp_split(t, z, &eps, y, 1, C / 2));
    FXP_TRY(fxp_gaussian_logpdf(t, &lp, eps, NULL, NULL));
    FXP_TRY(fxp_add(t, logdet, ldc, lp));
    if (io->latents) {
        fxp_latents *lat = io->latents;
        if (lat->n >= FXP_LATENTS_MAX) {
            rc = FXP_ERR(f->ctx, FXP_EINVAL, "%s: io->latents is full (%d parts)", f->name,
                         FXP_LATENTS_MAX);
            goto out;
        }
        lat->z[lat->n] = eps;
        lat->log_prob[lat->n] = lp;
        lat->n++;
    }
out:
    return rc;
}

/* z -> x = coupling^-1(concat(z, eps)); logdet = -(ld_c(x) + log N(eps)). */
static int split_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                         fxp_var **x, fxp_var **logdet)
{
    split_layer *l = (split_layer *)f;
    const int C = l->c.o.channels;
    fxp_var *eps = NULL, *y, *ldc, *lp;
    char s1[64], s2[64];
    int rc;
    FXP_TRY(fxp__check_nchw(f->ctx, f->name, z, C / 2));
    if (io->latents && io->latents->n > 0) {
        eps = io->latents->z[--io->latents->n];
        if (!fxp_tensor_same_shape(&eps->value, &z->value)) {
            rc = FXP_ERR(f->ctx, FXP_ESHAPE, "%s: factored-out part %s from io->latents does not "
                                             "match z %s", f->name,
                         fxp_tensor_shape_str(&eps->value, s1, sizeof s1),
                         fxp_tensor_shape_str(&z->value, s2, sizeof s2));
            goto out;
        }
    } else {
        if (!io->rng) {
            rc = FXP_ERR(f->ctx, FXP_EINVAL, "%s: the inverse needs io->rng (or io->latents) to "
                                             "draw the factored-out channels", f->name);
            goto out;
        }
        if (!(io->temperature >= 0) || !isfinite(io->temperature)) {
            rc = FXP_ERR(f->ctx, FXP_EINVAL, "%s: temperature %g must be finite and >= 0",
                         f->name, (double)io->temperature);
            goto out;
        }
        FXP_TRY(fxp_tape_var(t, &eps, 4, z->value.shape));
        fxp_rng_normal_threads(io->rng, eps->value.data, (size_t)fxp_tensor_numel(&eps->value),
                               0.0f, io->temperature, fxp_ctx_threads(f->ctx));
    }
    FXP_TRY(fxp_concat(t, &y, z, eps, 1));
    FXP_TRY(fxp__coupling_apply(&l->c, t, io, y, 1, f->name, x, &ldc));
    FXP_TRY(fxp_gaussian_logpdf(t, &lp, eps, NULL, NULL));
    FXP_TRY(fxp_sub(t, logdet, ldc, lp));
out:
    return rc;
}

static void split_destroy(fxp_flow *f)
{
    fxp__coupling_free(&((split_layer *)f)->c);
    free(f);
}

static const fxp_flow_vtable split_vtable = { "split_prior", split_forward, split_inverse,
                                              split_destroy };

int fxp_split_prior_new(fxp_ctx *ctx, fxp_params *ps, const char *name,
                        const fxp_image_coupling_opts *coupling, fxp_rng *rng, fxp_flow **out)
{
    FXP_API_SCOPE();
    if (!ps || !coupling || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    split_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    char p[FXP_PARAM_NAME_MAX];
    int rc;
    FXP_TRY(fxp__flow_init(&l->base, &split_vtable, ctx, name));
    FXP_TRY(fxp__flow_param_name(&l->base, "coupling", p, sizeof p));
    FXP_TRY(fxp__coupling_init(&l->c, ctx, ps, p, coupling, rng));
    *out = &l->base;
    return FXP_OK;
out:
    fxp__coupling_free(&l->c);
    free(l);
    return rc;
}
