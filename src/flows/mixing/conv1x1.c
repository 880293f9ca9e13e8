/* Channel mixers applied per pixel (see mixing.h): the 1x1 convolution
 * with a free matrix, its LU parametrisation, and the Householder product. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flows/mixing/mixing_internal.h"

/* ---- 1x1 convolution ----------------------------------------------------------- */

typedef struct conv1x1_layer {
    fxp_flow base;
    int c, h, w;
    fxp_param *weight;
} conv1x1_layer;

static int conv1x1_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                           fxp_var **z, fxp_var **logdet)
{
    (void)io;
    conv1x1_layer *l = (conv1x1_layer *)f;
    fxp_var *ld;
    int rc;
    FXP_TRY(fxp__mixing_check_x(f, x, l->c, l->h, l->w));
    FXP_TRY(fxp__conv1x1_apply(t, l->weight, 0, x, z, &ld));
    FXP_TRY(fxp__mixing_logdet(t, x->value.shape[0], ld, 1, logdet));
out:
    return rc;
}

static int conv1x1_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                           fxp_var **x, fxp_var **logdet)
{
    (void)io;
    conv1x1_layer *l = (conv1x1_layer *)f;
    fxp_var *ld;
    int rc;
    FXP_TRY(fxp__mixing_check_x(f, z, l->c, l->h, l->w));
    FXP_TRY(fxp__conv1x1_apply(t, l->weight, 1, z, x, &ld));
    FXP_TRY(fxp__mixing_logdet(t, z->value.shape[0], ld, -1, logdet));
out:
    return rc;
}

static void layer_free(fxp_flow *f) { free(f); }

static const fxp_flow_vtable conv1x1_vtable = { "conv1x1", conv1x1_forward, conv1x1_inverse,
                                                layer_free };

int fxp_conv1x1_new(fxp_ctx *ctx, fxp_params *ps, const char *name, int channels, int height,
                    int width, fxp_rng *rng, fxp_flow **out)
{
    if (!ps || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    int rc = fxp__mixing_check_dims(ctx, name, channels, height, width);
    if (rc < 0) return rc;
    conv1x1_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    const int shape[2] = { channels, channels };
    FXP_TRY(fxp__flow_init(&l->base, &conv1x1_vtable, ctx, name));
    l->c = channels;
    l->h = height;
    l->w = width;
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "weight", FXP_PARAM_TRAINABLE, 2, shape,
                                  &l->weight));
    FXP_TRY(fxp__random_orthogonal(ctx, rng, fxp_param_value(l->weight).data, channels));
    *out = &l->base;
    return FXP_OK;
out:
    free(l);
    return rc;
}

/* ---- LU-parametrised 1x1 convolution -------------------------------------------- */

typedef struct lu_layer {
    fxp_flow base;
    int c, h, w;
    fxp_param *perm, *sign, *lower, *upper, *log_s;
    float *eye, *lmask, *umask; /* [C, C] constants: I, strictly lower / upper ones */
} lu_layer;

/* W = P (L .* lmask + I) (U .* umask + diag(sign .* exp(log_s))) and
 * ld = H W sum log_s. */
static int lu_weight(lu_layer *l, fxp_tape *t, fxp_var **w, fxp_var **ld)
{
    const int C = l->c, sq[2] = { C, C }, row[2] = { 1, C };
    fxp_tensor te = fxp_tensor_wrap(l->eye, 2, sq), tl = fxp_tensor_wrap(l->lmask, 2, sq),
               tu = fxp_tensor_wrap(l->umask, 2, sq);
    fxp_var *eye, *lm, *um, *p, *sg, *lo, *up, *ls, *s, *m;
    int rc;
    FXP_TRY(fxp_tape_input(t, &eye, &te, 0));
    FXP_TRY(fxp_tape_input(t, &lm, &tl, 0));
    FXP_TRY(fxp_tape_input(t, &um, &tu, 0));
    FXP_TRY(fxp_tape_param(t, &p, l->perm));
    FXP_TRY(fxp_tape_param(t, &sg, l->sign));
    FXP_TRY(fxp_tape_param(t, &lo, l->lower));
    FXP_TRY(fxp_tape_param(t, &up, l->upper));
    FXP_TRY(fxp_tape_param(t, &ls, l->log_s));
    FXP_TRY(fxp_mul(t, &lo, lo, lm));
    FXP_TRY(fxp_add(t, &lo, lo, eye));
    FXP_TRY(fxp_mul(t, &up, up, um));
    FXP_TRY(fxp_exp(t, &s, ls));
    FXP_TRY(fxp_mul(t, &s, s, sg));
    FXP_TRY(fxp_reshape(t, &s, s, 2, row));
    FXP_TRY(fxp_mul(t, &s, s, eye)); /* diag(s): s broadcast over rows, times I */
    FXP_TRY(fxp_add(t, &up, up, s));
    FXP_TRY(fxp_matmul(t, &m, p, lo, 0, 0));
    FXP_TRY(fxp_matmul(t, w, m, up, 0, 0));
    FXP_TRY(fxp_sum(t, ld, ls, FXP_AXES_ALL, 0));
    FXP_TRY(fxp_scale(t, ld, *ld, (float)l->h * (float)l->w));
out:
    return rc;
}

static int lu_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x, fxp_var **z,
                      fxp_var **logdet)
{
    (void)io;
    lu_layer *l = (lu_layer *)f;
    fxp_var *w, *ld;
    int rc;
    FXP_TRY(fxp__mixing_check_x(f, x, l->c, l->h, l->w));
    FXP_TRY(lu_weight(l, t, &w, &ld));
    FXP_TRY(fxp__pixel_map(t, x, w, z));
    FXP_TRY(fxp__mixing_logdet(t, x->value.shape[0], ld, 1, logdet));
out:
    return rc;
}

static int lu_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z, fxp_var **x,
                      fxp_var **logdet)
{
    (void)io;
    lu_layer *l = (lu_layer *)f;
    fxp_var *w, *wi, *ld;
    int rc;
    FXP_TRY(fxp__mixing_check_x(f, z, l->c, l->h, l->w));
    FXP_TRY(lu_weight(l, t, &w, &ld));
    FXP_TRY(fxp_inverse(t, &wi, w));
    FXP_TRY(fxp__pixel_map(t, z, wi, x));
    FXP_TRY(fxp__mixing_logdet(t, z->value.shape[0], ld, -1, logdet));
out:
    return rc;
}

static void lu_free(fxp_flow *f)
{
    lu_layer *l = (lu_layer *)f;
    free(l->eye);
    free(l);
}

static const fxp_flow_vtable lu_vtable = { "conv1x1_lu", lu_forward, lu_inverse, lu_free };

/* Q = P L U by LU with partial pivoting (in double), written into the
 * layer's parameters: perm = P, lower = L's strict lower part, upper = U's
 * strict upper part, sign and log_s from U's diagonal. */
static int lu_init(fxp_ctx *ctx, lu_layer *l, const float *q)
{
    const int C = l->c;
    double *a = malloc((size_t)C * C * sizeof(double));
    int *rows = malloc((size_t)C * sizeof(int));
    if (!a || !rows) {
        free(a);
        free(rows);
        return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a %dx%d matrix", C, C);
    }
    for (int64_t i = 0; i < (int64_t)C * C; i++) a[i] = q[i];
    for (int i = 0; i < C; i++) rows[i] = i;
    for (int k = 0; k < C; k++) { /* rows[] A = L U, so A = P L U with P[rows[i], i] = 1 */
        int p = k;
        for (int i = k + 1; i < C; i++)
            if (fabs(a[(int64_t)i * C + k]) > fabs(a[(int64_t)p * C + k])) p = i;
        if (p != k) {
            for (int j = 0; j < C; j++) {
                double tmp = a[(int64_t)k * C + j];
                a[(int64_t)k * C + j] = a[(int64_t)p * C + j];
                a[(int64_t)p * C + j] = tmp;
            }
            int tr = rows[k];
            rows[k] = rows[p];
            rows[p] = tr;
        }
        for (int i = k + 1; i < C; i++) {
            const double m = a[(int64_t)i * C + k] /= a[(int64_t)k * C + k];
            for (int j = k + 1; j < C; j++) a[(int64_t)i * C + j] -= m * a[(int64_t)k * C + j];
        }
    }
    float *P = fxp_param_value(l->perm).data, *lo = fxp_param_value(l->lower).data,
          *up = fxp_param_value(l->upper).data, *sg = fxp_param_value(l->sign).data,
          *ls = fxp_param_value(l->log_s).data;
    for (int i = 0; i < C; i++) {
        P[(int64_t)rows[i] * C + i] = 1.0f;
        for (int j = 0; j < C; j++) {
            const double v = a[(int64_t)i * C + j];
            if (j < i) lo[(int64_t)i * C + j] = (float)v;
            if (j > i) up[(int64_t)i * C + j] = (float)v;
        }
        const double d = a[(int64_t)i * C + i]; /* nonzero: Q is orthogonal */
        sg[i] = d < 0 ? -1.0f : 1.0f;
        ls[i] = (float)log(fabs(d));
    }
    free(a);
    free(rows);
    return FXP_OK;
}

int fxp_conv1x1_lu_new(fxp_ctx *ctx, fxp_params *ps, const char *name, int channels, int height,
                       int width, fxp_rng *rng, fxp_flow **out)
{
    if (!ps || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    int rc = fxp__mixing_check_dims(ctx, name, channels, height, width);
    if (rc < 0) return rc;
    lu_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    const int C = channels, sq[2] = { C, C };
    float *q = NULL;
    FXP_TRY(fxp__flow_init(&l->base, &lu_vtable, ctx, name));
    l->c = C;
    l->h = height;
    l->w = width;
    l->eye = calloc((size_t)3 * C * C, sizeof(float));
    q = malloc((size_t)C * C * sizeof(float));
    if (!l->eye || !q) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name);
        goto out;
    }
    l->lmask = l->eye + (int64_t)C * C;
    l->umask = l->lmask + (int64_t)C * C;
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) {
            l->eye[(int64_t)i * C + j] = (float)(i == j);
            l->lmask[(int64_t)i * C + j] = (float)(j < i);
            l->umask[(int64_t)i * C + j] = (float)(j > i);
        }
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "lower", FXP_PARAM_TRAINABLE, 2, sq, &l->lower));
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "upper", FXP_PARAM_TRAINABLE, 2, sq, &l->upper));
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "log_s", FXP_PARAM_TRAINABLE, 1, &C, &l->log_s));
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "perm", FXP_PARAM_STATE, 2, sq, &l->perm));
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "sign", FXP_PARAM_STATE, 1, &C, &l->sign));
    FXP_TRY(fxp__random_orthogonal(ctx, rng, q, C));
    FXP_TRY(lu_init(ctx, l, q));
    free(q);
    *out = &l->base;
    return FXP_OK;
out:
    free(q);
    free(l->eye);
    free(l);
    return rc;
}

/* ---- Householder 1x1 convolution ------------------------------------------------- */

typedef struct householder_layer {
    fxp_flow base;
    int c, h, w, r;
    fxp_param *v;
} householder_layer;

static int householder_map(fxp_flow *f, fxp_tape *t, fxp_var *x, int inverse, fxp_var **y,
                           fxp_var **logdet)
{
    householder_layer *l = (householder_layer *)f;
    fxp_var *v, *q;
    int rc;
    FXP_TRY(fxp__mixing_check_x(f, x, l->c, l->h, l->w));
    FXP_TRY(fxp_tape_param(t, &v, l->v));
    FXP_TRY(fxp__householder_matrix(t, v, inverse, &q)); /* Q or Q^T = Q^-1 */
    FXP_TRY(fxp__pixel_map(t, x, q, y));
    FXP_TRY(fxp__mixing_logdet(t, x->value.shape[0], NULL, 1, logdet));
out:
    return rc;
}

static int householder_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                               fxp_var **z, fxp_var **logdet)
{
    (void)io;
    return householder_map(f, t, x, 0, z, logdet);
}

static int householder_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                               fxp_var **x, fxp_var **logdet)
{
    (void)io;
    return householder_map(f, t, z, 1, x, logdet);
}

static const fxp_flow_vtable householder_vtable = { "householder1x1", householder_forward,
                                                    householder_inverse, layer_free };

int fxp_householder1x1_new(fxp_ctx *ctx, fxp_params *ps, const char *name, int channels,
                           int height, int width, int reflections, fxp_rng *rng, fxp_flow **out)
{
    if (!ps || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    int rc = fxp__mixing_check_dims(ctx, name, channels, height, width);
    if (rc < 0) return rc;
    if (reflections < 0 || reflections > 4096)
        return FXP_ERR(ctx, FXP_EINVAL, "%s: reflections = %d must be in 1..4096 (or 0: C)",
                       name ? name : "", reflections);
    if (reflections == 0) reflections = channels;
    householder_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    const int shape[2] = { reflections, channels };
    FXP_TRY(fxp__flow_init(&l->base, &householder_vtable, ctx, name));
    l->c = channels;
    l->h = height;
    l->w = width;
    l->r = reflections;
    FXP_TRY(fxp__mixing_add_param(&l->base, ps, "V", FXP_PARAM_TRAINABLE, 2, shape, &l->v));
    fxp_rng_normal(rng, fxp_param_value(l->v).data, (size_t)reflections * channels, 0, 1);
    *out = &l->base;
    return FXP_OK;
out:
    free(l);
    return rc;
}
