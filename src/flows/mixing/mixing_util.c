/* Helpers shared by the mixing layers (see mixing_internal.h): random
 * orthogonal matrices, Householder products, the per-pixel matrix map, the
 * 1x1 convolution, and a log|.| of selected entries as a tape op. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flows/mixing/mixing_internal.h"

int fxp__random_orthogonal(fxp_ctx *ctx, fxp_rng *rng, float *q, int c)
{
    double *a = malloc((size_t)c * c * sizeof(double));
    float *g = malloc((size_t)c * c * sizeof(float));
    if (!a || !g) {
        free(a);
        free(g);
        return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a %dx%d matrix", c, c);
    }
    fxp_rng_normal(rng, g, (size_t)c * c, 0, 1);
    for (int64_t i = 0; i < (int64_t)c * c; i++) a[i] = g[i];
    for (int j = 0; j < c; j++) { /* column j of a (stride c) */
        for (int p = 0; p < j; p++) {
            double d = 0;
            for (int i = 0; i < c; i++) d += a[(int64_t)i * c + j] * a[(int64_t)i * c + p];
            for (int i = 0; i < c; i++) a[(int64_t)i * c + j] -= d * a[(int64_t)i * c + p];
        }
        double n = 0;
        for (int i = 0; i < c; i++) n += a[(int64_t)i * c + j] * a[(int64_t)i * c + j];
        n = sqrt(n);
        for (int i = 0; i < c; i++) a[(int64_t)i * c + j] /= n;
    }
    for (int64_t i = 0; i < (int64_t)c * c; i++) q[i] = (float)a[i];
    free(a);
    free(g);
    return FXP_OK;
}

int fxp__householder_matrix(fxp_tape *t, fxp_var *V, int transpose, fxp_var **out)
{
    const int R = V->value.shape[0], C = V->value.shape[1];
    int rc, sq[2] = { C, C }, col[2] = { C, 1 };
    fxp_var *q;
    FXP_TRY(fxp__zeros(t, &q, 2, sq));
    for (int i = 0; i < C; i++) q->value.data[(int64_t)i * C + i] = 1.0f;
    for (int k = 0; k < R; k++) {
        const int r = transpose ? R - 1 - k : k;
        fxp_var *rest = V, *row, *tail, *v, *qv, *outer, *nrm;
        if (r > 0) FXP_TRY(fxp_split(t, &tail, &rest, V, 0, r));
        if (r < R - 1) FXP_TRY(fxp_split(t, &row, &tail, rest, 0, 1));
        else row = rest;
        FXP_TRY(fxp_reshape(t, &v, row, 2, col));
        /* Q <- Q H(v) = Q - 2 (Q v) v^T / (v^T v) */
        FXP_TRY(fxp_matmul(t, &qv, q, v, 0, 0));
        FXP_TRY(fxp_matmul(t, &outer, qv, v, 0, 1));
        FXP_TRY(fxp_matmul(t, &nrm, v, v, 1, 0));
        FXP_TRY(fxp_div(t, &outer, outer, nrm));
        FXP_TRY(fxp_scale(t, &outer, outer, 2.0f));
        FXP_TRY(fxp_sub(t, &q, q, outer));
    }
    *out = q;
out:
    return rc;
}

int fxp__mixing_add_param(fxp_flow *f, fxp_params *ps, const char *leaf, int kind, int ndim,
                          const int *shape, fxp_param **p)
{
    char pn[FXP_PARAM_NAME_MAX];
    int rc = fxp__flow_param_name(f, leaf, pn, sizeof pn);
    if (rc < 0) return rc;
    return fxp_params_add(ps, pn, kind, ndim, shape, p);
}

int fxp__mixing_check_dims(fxp_ctx *ctx, const char *layer, int c, int h, int w)
{
    const char *l = layer ? layer : "(null)";
    if (c < 1 || c > 4096)
        return FXP_ERR(ctx, FXP_EINVAL, "%s: channels = %d must be in 1..4096", l, c);
    if (h < 1) return FXP_ERR(ctx, FXP_EINVAL, "%s: height = %d must be >= 1", l, h);
    if (w < 1) return FXP_ERR(ctx, FXP_EINVAL, "%s: width = %d must be >= 1", l, w);
    if ((int64_t)h * w > (1 << 28))
        return FXP_ERR(ctx, FXP_EINVAL, "%s: height x width = %d x %d is beyond 2^28 pixels", l,
                       h, w);
    return FXP_OK;
}

int fxp__mixing_check_x(const fxp_flow *f, const fxp_var *x, int c, int h, int w)
{
    const fxp_tensor *v = &x->value;
    char s1[64];
    if (v->ndim != 4 || v->shape[1] != c || v->shape[2] != h || v->shape[3] != w)
        return FXP_ERR(f->ctx, FXP_ESHAPE, "%s (%s): x %s must be [B, %d, %d, %d]", f->name,
                       f->vt->kind, fxp_tensor_shape_str(v, s1, sizeof s1), c, h, w);
    return FXP_OK;
}

int fxp__mixing_logdet(fxp_tape *t, int batch, fxp_var *s, float sign, fxp_var **out)
{
    fxp_var *z;
    int rc;
    FXP_TRY(fxp__zeros(t, &z, 1, &batch));
    if (!s) {
        *out = z;
        return FXP_OK;
    }
    if (sign != 1.0f) FXP_TRY(fxp_scale(t, &s, s, sign));
    FXP_TRY(fxp_add(t, out, z, s));
out:
    return rc;
}

int fxp__pixel_map(fxp_tape *t, fxp_var *x, fxp_var *m, fxp_var **out)
{
    const int C = m->value.shape[0], k4[4] = { C, C, 1, 1 };
    fxp_var *k;
    int rc;
    FXP_TRY(fxp_reshape(t, &k, m, 4, k4));
    FXP_TRY(fxp_conv2d(t, out, x, k, NULL, NULL));
out:
    return rc;
}

int fxp__conv1x1_apply(fxp_tape *t, fxp_param *w, int inverse, fxp_var *x, fxp_var **out,
                       fxp_var **ld)
{
    fxp_var *m, *mi;
    int rc;
    FXP_TRY(fxp_tape_param(t, &m, w));
    FXP_TRY(fxp_logabsdet(t, ld, m));
    FXP_TRY(fxp_scale(t, ld, *ld, (float)x->value.shape[2] * (float)x->value.shape[3]));
    if (inverse) {
        FXP_TRY(fxp_inverse(t, &mi, m));
        m = mi;
    }
    FXP_TRY(fxp__pixel_map(t, x, m, out));
out:
    return rc;
}

/* ---- scale * sum log|selected entries| ------------------------------------- */

typedef struct logabs_saved {
    int n;
    int64_t offset, stride;
    float scale;
} logabs_saved;

/* d/dw_i scale log|w_i| = scale / w_i. */
static int logabs_backward(fxp_tape *t, const fxp_node *nd)
{
    (void)t;
    const logabs_saved *s = nd->saved;
    fxp_var *w = nd->in[0];
    if (!w->grad) return FXP_OK;
    const float g = nd->out->grad[0];
    for (int k = 0; k < s->n; k++) {
        const int64_t i = s->offset + k * s->stride;
        w->grad[i] += (float)((double)g * s->scale / w->value.data[i]);
    }
    return FXP_OK;
}

int fxp__logabs_entries(fxp_tape *t, fxp_var **out, fxp_var *w, int n, int64_t offset,
                        int64_t stride, float scale, const char *what)
{
    fxp_ctx *ctx = fxp_tape_ctx(t);
    const int64_t numel = fxp_tensor_numel(&w->value);
    if (n < 1 || offset < 0 || stride < 0 || offset + (int64_t)(n - 1) * stride >= numel)
        return FXP_ERR(ctx, FXP_EINTERNAL, "%s: entries out of range", what);
    double acc = 0;
    for (int k = 0; k < n; k++) {
        const float v = w->value.data[offset + k * stride];
        if (v == 0.0f)
            return FXP_ERR(ctx, FXP_ENUMERIC, "%s: entry %d is zero (the map is singular)",
                           what, k);
        acc += log(fabs((double)v));
    }
    fxp_var *y;
    int rc;
    FXP_TRY(fxp_tape_var(t, &y, 0, NULL));
    y->value.data[0] = (float)(scale * acc);
    if (fxp_tape_needs_grad(t, 1, &w)) {
        logabs_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = (logabs_saved){ n, offset, stride, scale };
        FXP_TRY(fxp_tape_record(t, "logabs_entries", logabs_backward, y, 1, &w, s));
    }
    *out = y;
out:
    return rc;
}
