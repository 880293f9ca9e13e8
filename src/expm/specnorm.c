/* Spectral normalisation of convolution operators and dense matrices by
 * power iteration on persistent vectors (see expm.h). */
#include <math.h>
#include <string.h>

#include "blas/blas.h"
#include "expm/expm_internal.h"
#include "ops/conv2d.h"

void fxp_spectral_init(fxp_rng *rng, float *vec, int64_t n)
{
    FXP_API_SCOPE();
    if (!rng || !vec || n < 1 || n > FXP_MAX_ELEMENTS) {
        FXP_ERR(NULL, FXP_EINVAL, "rng %p, vec %p, n = %lld: need both and 1 <= n <= 2^40",
                (void *)rng, (void *)vec, (long long)n);
        return;
    }
    fxp_rng_normal(rng, vec, (size_t)n, 0, 1);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)vec[i] * vec[i];
    const float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
    for (int64_t i = 0; i < n; i++) vec[i] *= inv;
}

static void normalize(float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    const float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* W_hat = W / f, f = max(1, sigma/coeff).  When f > 1:
 * dL/dW = g / f - (coeff / sigma^2) <g, W> dsigma/dW, with dsigma/dW saved. */
typedef struct sn_saved {
    double sigma, coeff;
    int64_t n;
    const float *dsigma; /* NULL when f == 1 */
} sn_saved;

static int sn_backward(fxp_tape *t, const fxp_node *node)
{
    (void)t;
    const sn_saved *s = node->saved;
    fxp_var *w = node->in[0];
    if (!w->grad) return FXP_OK;
    const float *g = node->out->grad;
    if (!s->dsigma) {
        for (int64_t i = 0; i < s->n; i++) w->grad[i] += g[i];
        return FXP_OK;
    }
    const double inv_f = s->coeff / s->sigma;
    const double c = s->coeff / (s->sigma * s->sigma) * dot(g, w->value.data, s->n);
    for (int64_t i = 0; i < s->n; i++)
        w->grad[i] += (float)(inv_f * g[i] - c * s->dsigma[i]);
    return FXP_OK;
}

/* Shared tail: rescale into a new variable and record the node. dsigma is
 * computed by the caller's callback only when a gradient is needed. */
static int sn_finish(fxp_tape *t, fxp_var **out, fxp_var *w, double sigma, double coeff,
                     float *dsigma)
{
    const int64_t n = fxp_tensor_numel(&w->value);
    const double f = fmax(1.0, sigma / coeff);
    fxp_var *y;
    int rc = fxp_tape_var(t, &y, w->value.ndim, w->value.shape);
    if (rc < 0) return rc;
    const float inv = (float)(1.0 / f);
    for (int64_t i = 0; i < n; i++) y->value.data[i] = w->value.data[i] * inv;
    if (fxp_tape_needs_grad(t, 1, &w)) {
        sn_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = (sn_saved){ sigma, coeff, n, f > 1.0 ? dsigma : NULL };
        if ((rc = fxp_tape_record(t, "fxp_spectral_norm", sn_backward, y, 1, &w, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}

static int sn_check(fxp_ctx *ctx, const char *func, fxp_var *w, const float *u, const float *v,
                    float coeff, int steps)
{
    if (!w || !u || !v) return fxp__err(ctx, FXP_EINVAL, func, "w, u or v is NULL");
    if (!(coeff > 0) || !isfinite(coeff))
        return fxp__err(ctx, FXP_EINVAL, func, "coeff = %g must be finite and > 0", (double)coeff);
    if (steps < 0 || steps > 10000)
        return fxp__err(ctx, FXP_EINVAL, func, "power_steps = %d outside [0, 10000]", steps);
    return FXP_OK;
}

int fxp_spectral_norm_conv(fxp_tape *t, fxp_var **out, fxp_var *w, float *u, float *v, int h,
                           int w_, fxp_padding padding, float coeff, int power_steps,
                           float *sigma_out)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    int rc = sn_check(ctx, __func__, w, u, v, coeff, power_steps);
    if (rc < 0) return rc;
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    char s1[64];
    if (w->value.ndim != 4)
        return FXP_ERR(ctx, FXP_ESHAPE, "kernel %s must be [C_out, C_in, kh, kw]",
                       fxp_tensor_shape_str(&w->value, s1, sizeof s1));
    fxp__conv_shape s = { 1, w->value.shape[1], h, w_, w->value.shape[0], w->value.shape[2],
                          w->value.shape[3], padding };
    if ((rc = fxp__conv_check(ctx, __func__, &s)) < 0) return rc;
    const int ud[3] = { s.c_out, h, w_ }, vd[3] = { s.c_in, h, w_ };
    const int64_t nu = fxp__numel(3, ud), nv = fxp__numel(3, vd);
    if (nu < 0 || nv < 0)
        return FXP_ERR(ctx, FXP_EINVAL, "images of %dx%d with %d and %d channels exceed 2^40 "
                       "elements", h, w_, s.c_in, s.c_out);
    const float *k = w->value.data;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *mv = fxp__scratch_alloc(ctx, (size_t)nu * sizeof(float));
    if (!mv) return FXP_ENOMEM;
    /* v <- normalise(M^T u), u <- normalise(M v) */
    for (int it = 0; it < power_steps; it++) {
        if ((rc = fxp__conv2d_backward_data(ctx, &s, v, u, k, 1, 0)) < 0) goto out;
        normalize(v, nv);
        if ((rc = fxp__conv2d_forward(ctx, &s, u, v, k, NULL, 1, 0)) < 0) goto out;
        normalize(u, nu);
    }
    if ((rc = fxp__conv2d_forward(ctx, &s, mv, v, k, NULL, 1, 0)) < 0) goto out;
    const double sigma = dot(u, mv, nu);
    if (sigma_out) *sigma_out = (float)sigma;
    float *dsigma = NULL;
    if (fxp_tape_needs_grad(t, 1, &w) && sigma > coeff) {
        /* dsigma/dW = d<u, conv(v; W)>/dW: the weight gradient with dy = u, x = v */
        const int64_t nw = fxp_tensor_numel(&w->value);
        dsigma = fxp_tape_alloc(t, (size_t)nw * sizeof(float));
        if (!dsigma) {
            rc = FXP_ENOMEM;
            goto out;
        }
        memset(dsigma, 0, (size_t)nw * sizeof(float));
        if ((rc = fxp__conv2d_backward_weight(ctx, &s, dsigma, u, v, 1)) < 0) goto out;
    }
    rc = sn_finish(t, out, w, sigma, coeff, dsigma);
out:
    fxp__scratch_restore(ctx, mark);
    return rc;
}

int fxp_spectral_norm_dense(fxp_tape *t, fxp_var **out, fxp_var *w, float *u, float *v,
                            float coeff, int power_steps, float *sigma_out)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    int rc = sn_check(ctx, __func__, w, u, v, coeff, power_steps);
    if (rc < 0) return rc;
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    char s1[64];
    if (w->value.ndim != 2)
        return FXP_ERR(ctx, FXP_ESHAPE, "matrix %s must be 2-D",
                       fxp_tensor_shape_str(&w->value, s1, sizeof s1));
    const int rows = w->value.shape[0], cols = w->value.shape[1];
    const float *m = w->value.data;
    /* v <- normalise(W^T u), u <- normalise(W v); sigma = u^T W v */
    for (int it = 0; it < power_steps; it++) {
        for (int j = 0; j < cols; j++) {
            double acc = 0;
            for (int i = 0; i < rows; i++) acc += (double)m[(int64_t)i * cols + j] * u[i];
            v[j] = (float)acc;
        }
        normalize(v, cols);
        for (int i = 0; i < rows; i++) u[i] = (float)dot(m + (int64_t)i * cols, v, cols);
        normalize(u, rows);
    }
    double sigma = 0;
    for (int i = 0; i < rows; i++) sigma += u[i] * dot(m + (int64_t)i * cols, v, cols);
    if (sigma_out) *sigma_out = (float)sigma;
    float *dsigma = NULL;
    if (fxp_tape_needs_grad(t, 1, &w) && sigma > coeff) {
        dsigma = fxp_tape_alloc(t, (size_t)rows * cols * sizeof(float));
        if (!dsigma) return FXP_ENOMEM;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) dsigma[(int64_t)i * cols + j] = u[i] * v[j];
    }
    return sn_finish(t, out, w, sigma, coeff, dsigma);
}
