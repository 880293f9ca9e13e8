/* The emerging convolution (see mixing.h): a 1x1 convolution, then two
 * square autoregressive 2x2 convolutions, each followed by a flip of both
 * spatial axes:  z = Flip(S_1(Flip(S_0(W x)))).  The autoregressive parts
 * are 3x3 same-padded convolutions with their last row and column zero
 * (square_ar.c), and Flip(S_1(Flip(.))) is S_1 in its reversed form (the
 * kernel rotated by 180 degrees, reading the down-right neighbours; the
 * bias is per channel), so neither direction moves data to flip it:
 *   z = S_1'(S_0(W x)),   x = W^-1 S_0^-1(S_1'^-1(z)),
 * the inverses being the sequential solves of square_ar.c. */
#include <math.h>
#include <stdlib.h>

#include "flows/mixing/mixing_internal.h"

typedef struct emerging_layer {
    fxp_flow base;
    int c, h, w;
    fxp_param *w1x1, *k[2], *b[2];
} emerging_layer;

/* The masked 3x3 kernel of part s (reversed for s = 1), its bias, and its
 * log|det| H W sum_c log|K[c, c, 1, 1]| (entry 4 c (C + 1) + 3 of
 * K [C, C, 2, 2]). */
static int ar_part(emerging_layer *l, fxp_tape *t, int s, fxp_var **k3, fxp_var **b,
                   fxp_var **ld)
{
    fxp_var *k;
    int rc;
    FXP_TRY(fxp_tape_param(t, &k, l->k[s]));
    FXP_TRY(fxp_tape_param(t, b, l->b[s]));
    FXP_TRY(fxp__square_ar_kernel(t, k, s == 1, k3));
    FXP_TRY(fxp__logabs_entries(t, ld, k, l->c, 3, 4 * (int64_t)(l->c + 1),
                                (float)l->h * (float)l->w, l->base.name));
out:
    return rc;
}

/* z = S_1'(S_0(W x)) = Flip(S_1(Flip(S_0(W x)))). */
static int emerging_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                            fxp_var **z, fxp_var **logdet)
{
    (void)io;
    emerging_layer *l = (emerging_layer *)f;
    fxp_var *h, *total, *k3, *b, *ld;
    int rc;
    FXP_TRY(fxp__mixing_check_x(f, x, l->c, l->h, l->w));
    FXP_TRY(fxp__conv1x1_apply(t, l->w1x1, 0, x, &h, &total));
    for (int s = 0; s < 2; s++) {
        FXP_TRY(ar_part(l, t, s, &k3, &b, &ld));
        FXP_TRY(fxp_conv2d(t, &h, h, k3, b, NULL));
        FXP_TRY(fxp_add(t, &total, total, ld));
    }
    FXP_TRY(fxp__mixing_logdet(t, x->value.shape[0], total, 1, logdet));
    *z = h;
out:
    return rc;
}

/* x = W^-1 S_0^-1(S_1'^-1(z)). */
static int emerging_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                            fxp_var **x, fxp_var **logdet)
{
    (void)io;
    emerging_layer *l = (emerging_layer *)f;
    fxp_var *h = z, *total, *k3, *b, *lds[2];
    int rc;
    FXP_TRY(fxp__mixing_check_x(f, z, l->c, l->h, l->w));
    for (int s = 1; s >= 0; s--) {
        FXP_TRY(ar_part(l, t, s, &k3, &b, &lds[s]));
        FXP_TRY(fxp__square_ar_solve(t, &h, h, k3, b, s == 1));
    }
    FXP_TRY(fxp__conv1x1_apply(t, l->w1x1, 1, h, x, &total));
    for (int s = 0; s < 2; s++) FXP_TRY(fxp_add(t, &total, total, lds[s]));
    FXP_TRY(fxp__mixing_logdet(t, z->value.shape[0], total, -1, logdet));
out:
    return rc;
}

static void emerging_free(fxp_flow *f) { free(f); }

static const fxp_flow_vtable emerging_vtable = { "emerging", emerging_forward, emerging_inverse,
                                                 emerging_free };

int fxp_emerging_new(fxp_ctx *ctx, fxp_params *ps, const char *name, int channels, int height,
                     int width, fxp_rng *rng, fxp_flow **out)
{
    if (!ps || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    int rc = fxp__mixing_check_dims(ctx, name, channels, height, width);
    if (rc < 0) return rc;
    emerging_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    const int C = channels, sq[2] = { C, C }, ks[4] = { C, C, 2, 2 };
    FXP_TRY(fxp__flow_init(&l->base, &emerging_vtable, ctx, name));
    l->c = C;
    l->h = height;
    l->w = width;
    static const char *const kn[2] = { "ar0/weight", "ar1/weight" }, *const bn[2] = { "ar0/bias",
                                                                                      "ar1/bias" };
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "conv1x1/weight", FXP_PARAM_TRAINABLE, 2, sq,
                                  &l->w1x1));
    for (int s = 0; s < 2; s++) {
        FXP_TRY(fxp__mixing_add_param(&l->base, ps, kn[s], FXP_PARAM_TRAINABLE, 4, ks, &l->k[s]));
        FXP_TRY(fxp__mixing_add_param(&l->base, ps, bn[s], FXP_PARAM_TRAINABLE, 1, &C, &l->b[s]));
    }
    FXP_TRY(fxp__random_orthogonal(ctx, rng, fxp_param_value(l->w1x1).data, C));
    for (int s = 0; s < 2; s++) { /* N(0, 1) / sqrt(4 C^2), plus I at the centre tap */
        float *k = fxp_param_value(l->k[s]).data;
        fxp_rng_normal(rng, k, (size_t)4 * C * C, 0, 1.0f / (2.0f * (float)C));
        for (int c = 0; c < C; c++) k[4 * (int64_t)c * (C + 1) + 3] += 1.0f;
    }
    *out = &l->base;
    return FXP_OK;
out:
    free(l);
    return rc;
}
