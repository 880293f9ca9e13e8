/* Small dense linear algebra in double precision: LU with partial pivoting,
 * log|det|, and inverses (for the 1x1 channel mixers). */
#include <math.h>
#include <string.h>

#include "blas/blas.h"
#include "expm/expm_internal.h"

/* In-place LU of a [d, d] (row-major, double) with row pivots piv; returns
 * the number of row swaps, or -1 if a pivot is exactly zero. */
static int lu(double *a, int d, int *piv)
{
    int swaps = 0;
    for (int k = 0; k < d; k++) {
        int p = k;
        for (int i = k + 1; i < d; i++)
            if (fabs(a[(int64_t)i * d + k]) > fabs(a[(int64_t)p * d + k])) p = i;
        piv[k] = p;
        if (a[(int64_t)p * d + k] == 0.0) return -1;
        if (p != k) {
            swaps++;
            for (int j = 0; j < d; j++) {
                double t = a[(int64_t)k * d + j];
                a[(int64_t)k * d + j] = a[(int64_t)p * d + j];
                a[(int64_t)p * d + j] = t;
            }
        }
        for (int i = k + 1; i < d; i++) {
            double f = a[(int64_t)i * d + k] /= a[(int64_t)k * d + k];
            for (int j = k + 1; j < d; j++) a[(int64_t)i * d + j] -= f * a[(int64_t)k * d + j];
        }
    }
    return swaps;
}

/* inv = A^-1 from the LU factors (solving for each unit vector); b: d
 * doubles of workspace. */
static void lu_inverse(const double *lu_, const int *piv, int d, double *inv, double *b)
{
    for (int c = 0; c < d; c++) { /* solve A x = e_c for each column */
        for (int i = 0; i < d; i++) b[i] = i == c;
        for (int k = 0; k < d; k++) { /* apply the row swaps */
            double t = b[k];
            b[k] = b[piv[k]];
            b[piv[k]] = t;
        }
        for (int i = 0; i < d; i++) /* L y = b (unit diagonal) */
            for (int j = 0; j < i; j++) b[i] -= lu_[(int64_t)i * d + j] * b[j];
        for (int i = d - 1; i >= 0; i--) { /* U x = y */
            for (int j = i + 1; j < d; j++) b[i] -= lu_[(int64_t)i * d + j] * b[j];
            b[i] /= lu_[(int64_t)i * d + i];
        }
        for (int i = 0; i < d; i++) inv[(int64_t)i * d + c] = b[i];
    }
}

int fxp_matrix_inverse(fxp_ctx *ctx, const float *w, float *inv, int d)
{
    FXP_API_SCOPE();
    if (!ctx) return FXP_ERR(NULL, FXP_EINVAL, "ctx is NULL");
    if (!w || !inv || d < 1 || d > 4096)
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments (w %p, inv %p, d = %d, must be 1..4096)",
                       (const void *)w, (void *)inv, d);
    int rc = fxp__check_finite_buf(ctx, __func__, "the matrix", w, (int64_t)d * d);
    if (rc < 0) return rc;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    double *a = fxp__scratch_alloc(ctx, ((size_t)d * d * 2 + d) * sizeof(double));
    int *piv = fxp__scratch_alloc(ctx, (size_t)d * sizeof(int));
    if (!a || !piv) {
        rc = FXP_ENOMEM;
        goto out;
    }
    for (int64_t i = 0; i < (int64_t)d * d; i++) a[i] = w[i];
    if (lu(a, d, piv) < 0) {
        rc = FXP_ERR(ctx, FXP_ENUMERIC, "matrix (%dx%d) is singular", d, d);
        goto out;
    }
    double *res = a + (int64_t)d * d;
    lu_inverse(a, piv, d, res, res + (int64_t)d * d);
    /* a nearly singular matrix can have an inverse beyond float range */
    for (int64_t i = 0; i < (int64_t)d * d; i++)
        if (!isfinite((float)res[i])) {
            rc = FXP_ERR(ctx, FXP_ENUMERIC, "matrix (%dx%d) is numerically singular: its inverse "
                         "has entries beyond float range", d, d);
            goto out;
        }
    for (int64_t i = 0; i < (int64_t)d * d; i++) inv[i] = (float)res[i];
out:
    fxp__scratch_restore(ctx, mark);
    return rc;
}

/* log|det W| = sum_i log|U_ii|; d/dW = W^-T (saved in the forward). */
static int logabsdet_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    fxp_var *w = n->in[0];
    if (!w->grad) return FXP_OK;
    const float *inv_t = n->saved, g = n->out->grad[0];
    const int64_t nn = fxp_tensor_numel(&w->value);
    for (int64_t i = 0; i < nn; i++) w->grad[i] += g * inv_t[i];
    return FXP_OK;
}

int fxp_logabsdet(fxp_tape *t, fxp_var **out, fxp_var *w)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64];
    if (!out || !w) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    if (w->value.ndim != 2 || w->value.shape[0] != w->value.shape[1] || w->value.shape[0] > 4096)
        return FXP_ERR(ctx, FXP_ESHAPE, "matrix %s must be square (at most 4096)",
                       fxp_tensor_shape_str(&w->value, s1, sizeof s1));
    const int d = w->value.shape[0];
    int rc = fxp__check_finite_buf(ctx, __func__, "the matrix", w->value.data, (int64_t)d * d);
    if (rc < 0) return rc;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    double *a = fxp__scratch_alloc(ctx, ((size_t)d * d * 2 + d) * sizeof(double));
    int *piv = fxp__scratch_alloc(ctx, (size_t)d * sizeof(int));
    if (!a || !piv) {
        rc = FXP_ENOMEM;
        goto out;
    }
    for (int64_t i = 0; i < (int64_t)d * d; i++) a[i] = w->value.data[i];
    if (lu(a, d, piv) < 0) {
        rc = FXP_ERR(ctx, FXP_ENUMERIC, "matrix %s is singular",
                     fxp_tensor_shape_str(&w->value, s1, sizeof s1));
        goto out;
    }
    double acc = 0;
    for (int i = 0; i < d; i++) acc += log(fabs(a[(int64_t)i * d + i]));
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, 0, NULL)) < 0) goto out;
    y->value.data[0] = (float)acc;
    if (fxp_tape_needs_grad(t, 1, &w)) {
        float *inv_t = fxp_tape_alloc(t, (size_t)d * d * sizeof(float));
        if (!inv_t) {
            rc = FXP_ENOMEM;
            goto out;
        }
        double *res = a + (int64_t)d * d;
        lu_inverse(a, piv, d, res, res + (int64_t)d * d);
        for (int i = 0; i < d; i++) /* W^-T */
            for (int j = 0; j < d; j++) inv_t[(int64_t)i * d + j] = (float)res[(int64_t)j * d + i];
        if ((rc = fxp_tape_record(t, "fxp_logabsdet", logabsdet_backward, y, 1, &w, inv_t)) < 0)
            goto out;
    }
    *out = y;
out:
    fxp__scratch_restore(ctx, mark);
    return rc;
}

/* out = Y = W^-1; dL/dW = -W^-T G W^-T = -Y^T (G Y^T) with G = dL/dout:
 * two [d, d] GEMMs through a scratch product. */
static int inverse_backward(fxp_tape *t, const fxp_node *n)
{
    fxp_var *w = n->in[0];
    if (!w->grad) return FXP_OK;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    const int d = w->value.shape[0];
    const float *y = n->out->value.data, *g = n->out->grad;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *gyt = fxp__scratch_alloc(ctx, (size_t)d * d * sizeof(float));
    if (!gyt) return FXP_ENOMEM;
    fxp__sgemm(ctx, 0, 1, d, d, d, 1, g, d, y, d, 0, gyt, d);         /* G Y^T */
    fxp__sgemm(ctx, 1, 0, d, d, d, -1, y, d, gyt, d, 1, w->grad, d);  /* -= Y^T (G Y^T) */
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}

int fxp_inverse(fxp_tape *t, fxp_var **out, fxp_var *w)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64];
    if (!out || !w) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    if (w->value.ndim != 2 || w->value.shape[0] != w->value.shape[1] || w->value.shape[0] > 4096)
        return FXP_ERR(ctx, FXP_ESHAPE, "matrix %s must be square (at most 4096)",
                       fxp_tensor_shape_str(&w->value, s1, sizeof s1));
    fxp_var *y;
    int rc = fxp_tape_var(t, &y, 2, w->value.shape);
    if (rc < 0) return rc;
    if ((rc = fxp_matrix_inverse(ctx, w->value.data, y->value.data, w->value.shape[0])) < 0)
        return rc;
    if ((rc = fxp_tape_record(t, "fxp_inverse", inverse_backward, y, 1, &w, NULL)) < 0) return rc;
    *out = y;
    return FXP_OK;
}
