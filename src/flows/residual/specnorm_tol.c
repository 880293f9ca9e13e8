/* Induced-norm spectral normalisation of a convolution with power iteration
 * to a tolerance (residual.h; the authors' InducedNormConv2d, 2 -> 2 norms). */
#include <math.h>
#include <string.h>

#include "ops/conv2d.h"

static double norm2(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* x <- x / max(||x||, 1e-12) (F.normalize). */
static void normalize(float *x, int64_t n)
{
    const float inv = (float)(1.0 / fmax(norm2(x, n), 1e-12));
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

/* ||a - b|| / sqrt(n) < atol + rtol max(a) (the authors' test). */
static int close_enough(const float *a, const float *b, int64_t n, double atol, double rtol)
{
    double d = 0, mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        const double e = (double)a[i] - b[i];
        d += e * e;
        if (a[i] > mx) mx = a[i];
    }
    return sqrt(d) / sqrt((double)n) < atol + rtol * mx;
}

int fxp_spectral_norm_conv_tol(fxp_tape *t, fxp_var **out, fxp_var *w, float *u, float *v,
                               int h, int w_, float coeff, double atol, double rtol, int max_iter,
                               int update, float *sigma_out, int *iters_out)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    if (!out || !w || !u || !v) return FXP_ERR(ctx, FXP_EINVAL, "out, w, u or v is NULL");
    char s1[64];
    if (w->value.ndim != 4)
        return FXP_ERR(ctx, FXP_ESHAPE, "kernel %s must be [C_out, C_in, kh, kw]",
                       fxp_tensor_shape_str(&w->value, s1, sizeof s1));
    if (!(atol >= 0) || !(rtol >= 0) || max_iter < 0 || max_iter > 100000)
        return FXP_ERR(ctx, FXP_EINVAL, "atol %g, rtol %g (>= 0), max_iter %d (0..100000)", atol,
                       rtol, max_iter);
    fxp__conv_shape s = { 1, w->value.shape[1], h, w_, w->value.shape[0], w->value.shape[2],
                          w->value.shape[3], FXP_PAD_ZERO };
    int rc = fxp__conv_check(ctx, __func__, &s);
    if (rc < 0) return rc;
    const int64_t nu = (int64_t)s.c_out * h * w_, nv = (int64_t)s.c_in * h * w_;
    const float *k = w->value.data;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *uu = fxp__scratch_alloc(ctx, (size_t)(2 * nu + 2 * nv) * sizeof(float));
    if (!uu) return FXP_ENOMEM;
    float *vv = uu + nu, *uo = vv + nv, *vo = uo + nu;
    memcpy(uu, u, (size_t)nu * sizeof(float));
    memcpy(vv, v, (size_t)nv * sizeof(float));
    int it = 0;
    /* u <- normalise(M v), v <- normalise(M^T u), to tolerance */
    while (it < max_iter) {
        memcpy(uo, uu, (size_t)nu * sizeof(float));
        memcpy(vo, vv, (size_t)nv * sizeof(float));
        if ((rc = fxp__conv2d_forward(ctx, &s, uu, vv, k, NULL, 1, 0)) < 0) goto out;
        normalize(uu, nu);
        if ((rc = fxp__conv2d_backward_data(ctx, &s, vv, uu, k, 1, 0)) < 0) goto out;
        normalize(vv, nv);
        it++;
        if (close_enough(uu, uo, nu, atol, rtol) && close_enough(vv, vo, nv, atol, rtol)) break;
    }
    if (update) {
        memcpy(u, uu, (size_t)nu * sizeof(float));
        memcpy(v, vv, (size_t)nv * sizeof(float));
    }
    if (iters_out) *iters_out = it;
    /* sigma = <u, M v> and the rescale with its gradient (no further steps) */
    rc = fxp_spectral_norm_conv(t, out, w, uu, vv, h, w_, FXP_PAD_ZERO, coeff, 0, sigma_out);
out:
    fxp__scratch_restore(ctx, mark);
    return rc;
}
