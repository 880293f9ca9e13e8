/* Densities: the diagonal Gaussian log-density, composed from tape ops so
 * that its gradients with respect to x, the mean and log-sigma follow. */
#include <math.h>

#include "ops/ops_internal.h"

/* out[b] = sum_i -0.5 ((x_i - mu_i) e^{-ls_i})^2 - ls_i - 0.5 log(2 pi). */
int fxp_gaussian_logpdf(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *mean,
                        fxp_var *log_sigma)
{
    FXP_API_SCOPE();
    int rc = fxp__ops_check_vars(t, __func__, 1, &x);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64], s2[64];
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    if (x->value.ndim < 1) return FXP_ERR(ctx, FXP_ESHAPE, "x needs a batch dimension");
    fxp_var *d = x, *z, *q, *s, *inv;
    if (mean) {
        FXP_TRY(fxp_sub(t, &d, x, mean));
        if (!fxp_tensor_same_shape(&d->value, &x->value)) goto badshape;
    }
    z = d;
    if (log_sigma) {
        FXP_TRY(fxp_scale(t, &inv, log_sigma, -1.0f));
        FXP_TRY(fxp_exp(t, &inv, inv));
        FXP_TRY(fxp_mul(t, &z, d, inv));
        if (!fxp_tensor_same_shape(&z->value, &x->value)) goto badshape;
    }
    FXP_TRY(fxp_square(t, &q, z));
    FXP_TRY(fxp_scale(t, &q, q, -0.5f));
    if (log_sigma) FXP_TRY(fxp_sub(t, &q, q, log_sigma));
    s = q; /* x [B] has no event dimensions to sum */
    if (x->value.ndim > 1) FXP_TRY(fxp_sum(t, &s, q, FXP_AXES_FROM(1), 0));
    {
        const double per_example = (double)fxp_tensor_numel(&x->value) / x->value.shape[0];
        FXP_TRY(fxp_add_scalar(t, out, s, (float)(-0.5 * log(2.0 * FXP_PI) * per_example)));
    }
out:
    return rc;
badshape:
    return FXP_ERR(ctx, FXP_ESHAPE, "mean/log_sigma %s do not broadcast to x %s",
                   mean ? fxp__vshape(mean, s1, sizeof s1) : fxp__vshape(log_sigma, s1, sizeof s1),
                   fxp__vshape(x, s2, sizeof s2));
}
