/* Autoregressive convolution masks (§5.3), spectral normalisation of a
 * masked convolution operator (§3), and the masked convolution unit of the
 * Sylvester layers' f_AR. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/sylvester/sylvester_internal.h"

int fxp_ar_mask(float *mask, int n_out, int n_in, int kh, int kw, int strict)
{
    if (!mask) return FXP_ERR(NULL, FXP_EINVAL, "mask is NULL");
    if (n_out < 1 || n_in < 1 || kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0)
        return FXP_ERR(NULL, FXP_EINVAL,
                       "n_out = %d, n_in = %d (>= 1), kernel %dx%d (odd) are not a valid mask",
                       n_out, n_in, kh, kw);
    if (n_out % n_in != 0 && n_in % n_out != 0)
        return FXP_ERR(NULL, FXP_EINVAL,
                       "%d output and %d input channels: one count must divide the other "
                       "(the channel groups of the centre tap)",
                       n_out, n_in);
    const int l = (kh - 1) / 2, m = (kw - 1) / 2;
    const int64_t taps = (int64_t)kh * kw;
    for (int o = 0; o < n_out; o++)
        for (int c = 0; c < n_in; c++) {
            float *p = mask + ((int64_t)o * n_in + c) * taps;
            for (int a = 0; a < kh; a++)
                for (int b = 0; b < kw; b++)
                    p[a * kw + b] = (a < l || (a == l && b < m)) ? 0.0f : 1.0f;
            /* the centre tap: channel groups (see sylvester.h) */
            int sees;
            if (n_out >= n_in) {
                const int g = o / (n_out / n_in);
                sees = strict ? c < g : c <= g;
            } else {
                const int k = n_in / n_out;
                sees = strict ? c < o * k : c < (o + 1) * k;
            }
            p[l * kw + m] = sees ? 1.0f : 0.0f;
        }
    return FXP_OK;
}

int fxp_spectral_norm_conv_masked(fxp_tape *t, fxp_var **out, fxp_var *w, const float *mask,
                                  float *u, float *v, int h, int w_, float coeff, int power_steps,
                                  float sn_eps, float *sigma_out)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    if (!w || !mask || !out) return FXP_ERR(ctx, FXP_EINVAL, "w, mask or out is NULL");
    if (!(sn_eps >= 0 && sn_eps <= 1))
        return FXP_ERR(ctx, FXP_EINVAL, "sn_eps = %g outside [0, 1]", (double)sn_eps);
    int rc;
    fxp_var *mv, *wm;
    float sigma;
    /* the mask as a constant of the tape: gradients reach w times the mask */
    fxp_tensor mt = fxp_tensor_wrap((float *)mask, w->value.ndim, w->value.shape);
    FXP_TRY(fxp_tape_input(t, &mv, &mt, 0));
    FXP_TRY(fxp_mul(t, &wm, w, mv));
    FXP_TRY(fxp_spectral_norm_conv(t, out, wm, u, v, h, w_, FXP_PAD_ZERO, coeff, power_steps,
                                   &sigma));
    if (sn_eps > 0) { /* W / (f + eps) = (W / f) f / (f + eps), the factor held constant */
        const double f = fmax(1.0, (double)sigma / coeff);
        FXP_TRY(fxp_scale(t, out, *out, (float)(f / (f + sn_eps))));
    }
    if (sigma_out) *sigma_out = sigma;
out:
    return rc;
}

static int add_param(fxp_params *ps, fxp_ctx *ctx, const char *prefix, const char *leaf,
                     int kind, int nd, const int *shape, fxp_param **p)
{
    char name[FXP_PARAM_NAME_MAX];
    const int n = snprintf(name, sizeof name, "%s/%s", prefix, leaf);
    if (n < 0 || (size_t)n >= sizeof name)
        return FXP_ERR(ctx, FXP_EINVAL, "parameter name %s/%s too long", prefix, leaf);
    return fxp_params_add(ps, name, kind, nd, shape, p);
}

int fxp__mconv_init(fxp__mconv *m, fxp_ctx *ctx, fxp_params *ps, const char *prefix, int c_in,
                    int c_out, int k, int strict, int h, int w, int zero_weight, fxp_rng *rng)
{
    memset(m, 0, sizeof *m);
    m->c_in = c_in;
    m->c_out = c_out;
    m->k = k;
    m->h = h;
    m->w = w;
    const int ws[4] = { c_out, c_in, k, k };
    const int nu = c_out * h * w, nv = c_in * h * w;
    const size_t nw = (size_t)c_out * c_in * k * k;
    int rc;
    if (!(m->mask = malloc(nw * sizeof *m->mask)))
        return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate the mask of %s", prefix);
    FXP_TRY(fxp_ar_mask(m->mask, c_out, c_in, k, k, strict));
    FXP_TRY(add_param(ps, ctx, prefix, "weight", FXP_PARAM_TRAINABLE, 4, ws, &m->wt));
    FXP_TRY(add_param(ps, ctx, prefix, "bias", FXP_PARAM_TRAINABLE, 1, &c_out, &m->b));
    FXP_TRY(add_param(ps, ctx, prefix, "weight_u", FXP_PARAM_STATE, 1, &nu, &m->u));
    FXP_TRY(add_param(ps, ctx, prefix, "weight_v", FXP_PARAM_STATE, 1, &nv, &m->v));
    /* kaiming_normal_: std = gain / sqrt(fan_in), gain sqrt 2, fan_in = c_in k k */
    if (!zero_weight)
        fxp_rng_normal(rng, fxp_param_value(m->wt).data, nw, 0,
                       sqrtf(2.0f / (float)(c_in * k * k)));
    fxp_spectral_init(rng, fxp_param_value(m->v).data, nv);
    fxp_spectral_init(rng, fxp_param_value(m->u).data, nu);
    return FXP_OK;
out:
    fxp__mconv_free(m);
    return rc;
}

void fxp__mconv_free(fxp__mconv *m)
{
    if (!m) return;
    free(m->mask);
    m->mask = NULL;
}

int fxp__mconv_weight(const fxp__mconv *m, fxp_tape *t, float coeff, int power_steps,
                      float sn_eps, fxp_var **w_hat, fxp_var **bias)
{
    fxp_var *w;
    int rc;
    FXP_TRY(fxp_tape_param(t, &w, m->wt));
    FXP_TRY(fxp_tape_param(t, bias, m->b));
    FXP_TRY(fxp_spectral_norm_conv_masked(t, w_hat, w, m->mask, fxp_param_value(m->u).data,
                                          fxp_param_value(m->v).data, m->h, m->w, coeff,
                                          power_steps, sn_eps, NULL));
out:
    return rc;
}
