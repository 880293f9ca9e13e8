/* The Woodbury transformation as the authors use it (see mixing.h): a 1x1
 * convolution, then z_row = h_row (I + U V)^T on every (image, channel)
 * plane read as a row of N = H W values.  Products go through U and V only
 * (rank r), never through the N x N matrix:
 *   forward  z = h + (h V^T) U^T
 *   inverse  h = z - ((z V^T) M^-T) U^T,  M = I_r + V U
 * since (I + U V)^-1 = I - U M^-1 V, and det(I_N + U V) = det M. */
#include <math.h>
#include <stdlib.h>

#include "flows/mixing/mixing_internal.h"

typedef struct woodbury_layer {
    fxp_flow base;
    int c, h, w, r;
    fxp_param *w1x1, *u, *v;
    float *eye; /* I_r */
} woodbury_layer;

/* U, V on the tape, M = I_r + V U and ld = C log|det M|. */
static int core(woodbury_layer *l, fxp_tape *t, fxp_var **u, fxp_var **v, fxp_var **m,
                fxp_var **ld)
{
    const int sq[2] = { l->r, l->r };
    fxp_tensor te = fxp_tensor_wrap(l->eye, 2, sq);
    fxp_var *eye;
    int rc;
    FXP_TRY(fxp_tape_param(t, u, l->u));
    FXP_TRY(fxp_tape_param(t, v, l->v));
    FXP_TRY(fxp_tape_input(t, &eye, &te, 0));
    FXP_TRY(fxp_matmul(t, m, *v, *u, 0, 0));
    FXP_TRY(fxp_add(t, m, *m, eye));
    FXP_TRY(fxp_logabsdet(t, ld, *m));
    FXP_TRY(fxp_scale(t, ld, *ld, (float)l->c));
out:
    return rc;
}

static int woodbury_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                            fxp_var **z, fxp_var **logdet)
{
    (void)io;
    woodbury_layer *l = (woodbury_layer *)f;
    fxp_var *h, *ld, *u, *v, *m, *ldw, *a;
    int rc;
    FXP_TRY(fxp__mixing_check_x(f, x, l->c, l->h, l->w));
    const int rows[2] = { x->value.shape[0] * l->c, l->h * l->w };
    FXP_TRY(fxp__conv1x1_apply(t, l->w1x1, 0, x, &h, &ld));
    FXP_TRY(core(l, t, &u, &v, &m, &ldw));
    FXP_TRY(fxp_reshape(t, &h, h, 2, rows));
    FXP_TRY(fxp_matmul(t, &a, h, v, 0, 1)); /* [B C, r] */
    FXP_TRY(fxp_matmul(t, &a, a, u, 0, 1)); /* [B C, N] */
    FXP_TRY(fxp_add(t, &h, h, a));
    FXP_TRY(fxp_reshape(t, z, h, 4, x->value.shape));
    FXP_TRY(fxp_add(t, &ld, ld, ldw));
    FXP_TRY(fxp__mixing_logdet(t, x->value.shape[0], ld, 1, logdet));
out:
    return rc;
}

static int woodbury_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                            fxp_var **x, fxp_var **logdet)
{
    (void)io;
    woodbury_layer *l = (woodbury_layer *)f;
    fxp_var *h, *ld, *u, *v, *m, *mi, *ldw, *a;
    int rc;
    FXP_TRY(fxp__mixing_check_x(f, z, l->c, l->h, l->w));
    const int rows[2] = { z->value.shape[0] * l->c, l->h * l->w };
    FXP_TRY(core(l, t, &u, &v, &m, &ldw));
    FXP_TRY(fxp_inverse(t, &mi, m));
    FXP_TRY(fxp_reshape(t, &h, z, 2, rows));
    FXP_TRY(fxp_matmul(t, &a, h, v, 0, 1));  /* [B C, r] */
    FXP_TRY(fxp_matmul(t, &a, a, mi, 0, 1)); /* times M^-T */
    FXP_TRY(fxp_matmul(t, &a, a, u, 0, 1));  /* [B C, N] */
    FXP_TRY(fxp_sub(t, &h, h, a));
    FXP_TRY(fxp_reshape(t, &h, h, 4, z->value.shape));
    FXP_TRY(fxp__conv1x1_apply(t, l->w1x1, 1, h, x, &ld));
    FXP_TRY(fxp_add(t, &ld, ld, ldw));
    FXP_TRY(fxp__mixing_logdet(t, z->value.shape[0], ld, -1, logdet));
out:
    return rc;
}

static void woodbury_free(fxp_flow *f)
{
    woodbury_layer *l = (woodbury_layer *)f;
    free(l->eye);
    free(l);
}

static const fxp_flow_vtable woodbury_vtable = { "woodbury", woodbury_forward, woodbury_inverse,
                                                 woodbury_free };

int fxp_woodbury_new(fxp_ctx *ctx, fxp_params *ps, const char *name, int channels, int height,
                     int width, int rank, fxp_rng *rng, fxp_flow **out)
{
    if (!ps || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    int rc = fxp__mixing_check_dims(ctx, name, channels, height, width);
    if (rc < 0) return rc;
    if (rank < 1 || rank > 4096)
        return FXP_ERR(ctx, FXP_EINVAL, "%s: rank = %d must be in 1..4096", name ? name : "(null)",
                       rank);
    woodbury_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    const int C = channels, N = height * width, sq[2] = { C, C }, us[2] = { N, rank },
              vs[2] = { rank, N };
    FXP_TRY(fxp__flow_init(&l->base, &woodbury_vtable, ctx, name));
    l->c = C;
    l->h = height;
    l->w = width;
    l->r = rank;
    l->eye = calloc((size_t)rank * rank, sizeof(float));
    if (!l->eye) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name);
        goto out;
    }
    for (int i = 0; i < rank; i++) l->eye[(int64_t)i * rank + i] = 1.0f;
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "conv1x1/weight", FXP_PARAM_TRAINABLE, 2, sq,
                                  &l->w1x1));
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "U", FXP_PARAM_TRAINABLE, 2, us, &l->u));
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "V", FXP_PARAM_TRAINABLE, 2, vs, &l->v));
    FXP_TRY(fxp__random_orthogonal(ctx, rng, fxp_param_value(l->w1x1).data, C));
    fxp_rng_normal(rng, fxp_param_value(l->u).data, (size_t)N * rank, 0, 1.0f / (float)N);
    fxp_rng_normal(rng, fxp_param_value(l->v).data, (size_t)N * rank, 0, 1.0f / (float)N);
    *out = &l->base;
    return FXP_OK;
out:
    free(l->eye);
    free(l);
    return rc;
}
