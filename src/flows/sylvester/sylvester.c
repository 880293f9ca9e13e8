/* Generalized Sylvester layers (sylvester.h): the basis change W = exp(M) Q,
 * the residual map z = x + W^-1 f(W x), its log-determinant and the
 * fixed-point inverse; convolutional on [B, C, H, W] and dense on [B, D]. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/mixing/mixing_internal.h"
#include "flows/sylvester/sylvester_internal.h"

typedef struct sylv_layer {
    fxp_flow base;
    fxp_sylvester_opts o;
    int dense;                        /* x is [B, D], read as [B, D, 1, 1] */
    fxp__far far;
    fxp_param *kernel, *ku, *kv;      /* exp(M) */
    fxp_param *V;                     /* Householder Q */
    fxp_param *lower, *upper, *log_s; /* LU Q */
    float *lu_const;                  /* [3, C, C]: strict lower, strict upper, identity */
    fxp_fixed_point_info info;
    fxp_tape *scratch;                /* the fixed-point iterations' activations */
} sylv_layer;

void fxp_sylvester_opts_default(fxp_sylvester_opts *o, int channels, int height, int width)
{
    *o = (fxp_sylvester_opts){ .channels = channels,
                               .height = height,
                               .width = width,
                               .kernel = 3,
                               .hidden = 528,
                               .f = FXP_SYLV_F_GENERALIZED,
                               .q = FXP_SYLV_Q_HOUSEHOLDER,
                               .reflections = 0,
                               .convexp = 1,
                               .lipschitz = 1.5f,
                               .convexp_coeff = 0.95f,
                               .sn_eps = 0.0f,
                               .power_steps = 1,
                               .terms_train = 9,
                               .terms_eval = 20,
                               .inverse_atol = 1e-4,
                               .inverse_max_iter = 0 };
}

void fxp_sylvester_dense_opts_default(fxp_sylvester_opts *o, int dim)
{
    fxp_sylvester_opts_default(o, dim, 1, 1);
    o->kernel = 1;
    o->hidden = 4 * dim;
    o->convexp = 0;
}

/* ---- the basis change ------------------------------------------------------------ */

/* The per-call pieces of W = exp(M) Q: Q and Q^-1 as [C, C, 1, 1] kernels
 * (NULL for Q = I) and K_hat (NULL without exp(M)). */
typedef struct basis {
    fxp_var *q, *qinv, *kh;
    int terms;
} basis;

static int make_q(sylv_layer *l, fxp_tape *t, fxp_var **q, fxp_var **qinv)
{
    const int C = l->o.channels, k4[4] = { C, C, 1, 1 }, cc[2] = { C, C };
    int rc = FXP_OK;
    fxp_var *a = NULL, *b = NULL;
    if (l->o.q == FXP_SYLV_Q_HOUSEHOLDER) {
        fxp_var *V;
        FXP_TRY(fxp_tape_param(t, &V, l->V));
        FXP_TRY(fxp__householder_matrix(t, V, 0, &a));
        FXP_TRY(fxp__householder_matrix(t, V, 1, &b));
    } else if (l->o.q == FXP_SYLV_Q_LU) {
        /* Q = (lower .* strict_lower + I) (upper .* strict_upper + diag(exp(log_s))) */
        fxp_var *lo, *up, *ls, *ml, *mu, *eye, *L, *U, *e;
        fxp_tensor ct = fxp_tensor_wrap(l->lu_const, 2, cc);
        FXP_TRY(fxp_tape_param(t, &lo, l->lower));
        FXP_TRY(fxp_tape_param(t, &up, l->upper));
        FXP_TRY(fxp_tape_param(t, &ls, l->log_s));
        FXP_TRY(fxp_tape_input(t, &ml, &ct, 0));
        ct.data += (size_t)C * C;
        FXP_TRY(fxp_tape_input(t, &mu, &ct, 0));
        ct.data += (size_t)C * C;
        FXP_TRY(fxp_tape_input(t, &eye, &ct, 0));
        FXP_TRY(fxp_mul(t, &L, lo, ml));
        FXP_TRY(fxp_add(t, &L, L, eye));
        FXP_TRY(fxp_exp(t, &e, ls));
        FXP_TRY(fxp_mul(t, &e, eye, e)); /* I[i, j] exp(log_s[j]) = diag */
        FXP_TRY(fxp_mul(t, &U, up, mu));
        FXP_TRY(fxp_add(t, &U, U, e));
        FXP_TRY(fxp_matmul(t, &a, L, U, 0, 0));
        FXP_TRY(fxp_inverse(t, &b, a));
    }
    if (a) {
        FXP_TRY(fxp_reshape(t, q, a, 4, k4));
        FXP_TRY(fxp_reshape(t, qinv, b, 4, k4));
    }
out:
    return rc;
}

static int basis_make(sylv_layer *l, fxp_tape *t, int training, basis *b)
{
    memset(b, 0, sizeof *b);
    int rc;
    FXP_TRY(make_q(l, t, &b->q, &b->qinv));
    if (l->o.convexp) {
        fxp_var *k;
        float sigma;
        FXP_TRY(fxp_tape_param(t, &k, l->kernel));
        FXP_TRY(fxp_spectral_norm_conv(t, &b->kh, k, fxp_param_value(l->ku).data,
                                       fxp_param_value(l->kv).data, l->o.height, l->o.width,
                                       FXP_PAD_ZERO, l->o.convexp_coeff,
                                       training ? l->o.power_steps : 0, &sigma));
        if (l->o.sn_eps > 0) { /* as fxp_convexp_opts.sn_eps */
            const double f = fmax(1.0, (double)sigma / l->o.convexp_coeff);
            FXP_TRY(fxp_scale(t, &b->kh, b->kh, (float)(f / (f + l->o.sn_eps))));
        }
    }
    b->terms = training ? l->o.terms_train : l->o.terms_eval;
out:
    return rc;
}

/* y = exp(M) Q x (forward) or Q^-1 exp(-M) x (inverse). */
static int basis_apply(const basis *b, fxp_tape *t, fxp_var *x, int inverse, fxp_var **y)
{
    int rc = FXP_OK;
    fxp_var *h = x;
    fxp_expm_opts eo = fxp_expm_fixed(b->terms);
    if (!inverse && b->q) FXP_TRY(fxp_conv2d(t, &h, h, b->q, NULL, NULL));
    if (b->kh) FXP_TRY(fxp_expm_conv(t, &h, h, b->kh, FXP_PAD_ZERO, inverse, &eo, NULL));
    if (inverse && b->qinv) FXP_TRY(fxp_conv2d(t, &h, h, b->qinv, NULL, NULL));
    *y = h;
out:
    return rc;
}

/* ---- forward and inverse ------------------------------------------------------------ */

static int check_in(sylv_layer *l, const fxp_var *x)
{
    const fxp_tensor *v = &x->value;
    const fxp_sylvester_opts *o = &l->o;
    char s[64];
    const int ok = l->dense ? v->ndim == 2 && v->shape[1] == o->channels
                            : v->ndim == 4 && v->shape[1] == o->channels &&
                                  v->shape[2] == o->height && v->shape[3] == o->width;
    if (ok) return FXP_OK;
    if (l->dense)
        return FXP_ERR(l->base.ctx, FXP_ESHAPE, "%s: x %s must be [B, %d]", l->base.name,
                       fxp_tensor_shape_str(v, s, sizeof s), o->channels);
    return FXP_ERR(l->base.ctx, FXP_ESHAPE, "%s: x %s must be [B, %d, %d, %d]", l->base.name,
                   fxp_tensor_shape_str(v, s, sizeof s), o->channels, o->height, o->width);
}

/* [B, D] <-> [B, D, 1, 1] for the dense layer; identity otherwise. */
static int to4(sylv_layer *l, fxp_tape *t, fxp_var *x, fxp_var **y)
{
    if (!l->dense) {
        *y = x;
        return FXP_OK;
    }
    const int s[4] = { x->value.shape[0], l->o.channels, 1, 1 };
    return fxp_reshape(t, y, x, 4, s);
}

static int from4(sylv_layer *l, fxp_tape *t, fxp_var *x, fxp_var **y)
{
    if (!l->dense) {
        *y = x;
        return FXP_OK;
    }
    const int s[2] = { x->value.shape[0], l->o.channels };
    return fxp_reshape(t, y, x, 2, s);
}

/* sum_{c,i,j} log(1 + diag) per example, times sign. */
static int diag_logdet(fxp_tape *t, fxp_var *diag, float sign, fxp_var **logdet)
{
    int rc;
    fxp_var *a;
    FXP_TRY(fxp_add_scalar(t, &a, diag, 1.0f));
    FXP_TRY(fxp_log(t, &a, a));
    FXP_TRY(fxp_sum(t, logdet, a, FXP_AXES_FROM(1), 0));
    if (sign < 0) FXP_TRY(fxp_scale(t, logdet, *logdet, -1.0f));
out:
    return rc;
}

static int sylv_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                        fxp_var **z, fxp_var **logdet)
{
    sylv_layer *l = (sylv_layer *)f;
    int rc;
    basis b;
    fxp__far_w w;
    fxp_var *x4, *u, *fu, *diag, *y;
    FXP_TRY(check_in(l, x));
    FXP_TRY(to4(l, t, x, &x4));
    FXP_TRY(basis_make(l, t, io->training, &b));
    FXP_TRY(basis_apply(&b, t, x4, 0, &u));
    FXP_TRY(fxp__far_weights(&l->far, t, io->training, &w));
    FXP_TRY(fxp__far_eval(&l->far, &w, t, u, &fu, &diag));
    FXP_TRY(basis_apply(&b, t, fu, 1, &y));
    FXP_TRY(fxp_add(t, &y, x4, y));
    FXP_TRY(from4(l, t, y, z));
    FXP_TRY(diag_logdet(t, diag, 1, logdet));
out:
    return rc;
}

/* max |a - b| (NaN propagates), in *max_abs max |a|, and in *settled
 * whether every element has either |a_i - b_i| < atol or a change at float
 * resolution, |a_i - b_i| <= 4 eps (|a_i| + |b_i|): an iterate that rounding
 * alone moves cannot get closer (the authors' 1e-6 of the no-basis ablation
 * is below the float spacing of values above ~8). */
static double max_abs_diff(const float *a, const float *b, int64_t n, double atol, int *settled,
                           double *max_abs)
{
    double m = 0, mx = 0;
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
        ok &= d < atol || d <= 4.0 * FLT_EPSILON * (fabs((double)a[i]) + fabs((double)b[i]));
        mx = fmax(mx, fabs((double)a[i]));
    }
    *settled = ok;
    *max_abs = mx;
    return m;
}

/* Iterations without a new smallest change after which an iteration whose
 * changes are within STALL_ULPS float spacings of the largest value counts
 * as settled at float resolution (rounding makes short cycles of a few
 * spacings that no further iteration removes). */
#define STALL_ITERS 20
#define STALL_ULPS 64.0

/* Solve u + f(u) = v: u_0 = v, u_{k+1} = v - f(u_k) until max |u_{k+1} - u_k|
 * < atol (returning u_k, the authors' choice).  u must hold v on entry. */
static int fixed_point(sylv_layer *l, const fxp__far_w *w, fxp_var *v, fxp_var *u)
{
    fxp_ctx *ctx = l->base.ctx;
    const int64_t n = fxp_tensor_numel(&v->value);
    const int64_t D = n / v->value.shape[0];
    const int max_iter = l->o.inverse_max_iter > 0
                             ? l->o.inverse_max_iter
                             : (int)FXP_MAX(100, FXP_MIN(D, (int64_t)1 << 30));
    int rc = FXP_OK;
    if (!l->scratch) {
        FXP_TRY(fxp_tape_new(ctx, &l->scratch));
        fxp_tape_set_grad_enabled(l->scratch, 0);
    }
    double diff = INFINITY, best = INFINITY;
    int it, best_it = 0, stalled = 0;
    l->info.calls++;
    l->info.converged = 0;
    for (it = 1; it <= max_iter; it++) {
        fxp_var *ui, *fu, *diag;
        fxp_tape_reset(l->scratch);
        FXP_TRY(fxp_tape_input(l->scratch, &ui, &u->value, 0));
        FXP_TRY(fxp__far_eval(&l->far, w, l->scratch, ui, &fu, &diag));
        float *nu = fu->value.data; /* v - f(u), in place */
        const float *vv = v->value.data;
        for (int64_t i = 0; i < n; i++) nu[i] = vv[i] - nu[i];
        int settled;
        double mx;
        diff = max_abs_diff(nu, u->value.data, n, l->o.inverse_atol, &settled, &mx);
        if (isnan(diff)) {
            l->info.iterations = it;
            l->info.residual = diff;
            rc = FXP_ERR(ctx, FXP_ENUMERIC, "%s: the fixed-point iteration produced NaN at "
                                            "iteration %d", l->base.name, it);
            goto out;
        }
        if (settled) break;
        if (diff < best) {
            best = diff;
            best_it = it;
        } else if (it - best_it >= STALL_ITERS && diff <= STALL_ULPS * FLT_EPSILON * mx) {
            stalled = 1;
            break;
        }
        memcpy(u->value.data, nu, (size_t)n * sizeof(float));
    }
    l->info.iterations = it > max_iter ? max_iter : it;
    l->info.residual = diff;
    if (it > max_iter) {
        rc = FXP_ERR(ctx, FXP_ECONVERGE,
                     "%s: the fixed-point inverse did not converge in %d iterations "
                     "(max |u_{k+1} - u_k| = %.3g, tolerance %.3g)",
                     l->base.name, max_iter, diff, l->o.inverse_atol);
        goto out;
    }
    l->info.converged = stalled ? 2 : 1;
out:
    if (l->scratch) fxp_tape_reset(l->scratch);
    return rc;
}

static int sylv_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                        fxp_var **x, fxp_var **logdet)
{
    sylv_layer *l = (sylv_layer *)f;
    const int grad = fxp_tape_grad_enabled(t);
    int rc;
    basis b;
    fxp__far_w w;
    fxp_var *z4, *v, *u, *fu, *diag, *y;
    FXP_TRY(check_in(l, z));
    fxp_tape_set_grad_enabled(t, 0); /* sampling only: no gradients */
    FXP_TRY(to4(l, t, z, &z4));
    FXP_TRY(basis_make(l, t, io->training, &b));
    FXP_TRY(basis_apply(&b, t, z4, 0, &v));
    FXP_TRY(fxp__far_weights(&l->far, t, io->training, &w));
    FXP_TRY(fxp_tape_var(t, &u, 4, v->value.shape));
    memcpy(u->value.data, v->value.data, (size_t)fxp_tensor_numel(&v->value) * sizeof(float));
    FXP_TRY(fixed_point(l, &w, v, u));
    FXP_TRY(fxp__far_eval(&l->far, &w, t, u, &fu, &diag));
    FXP_TRY(basis_apply(&b, t, u, 1, &y));
    FXP_TRY(from4(l, t, y, x));
    FXP_TRY(diag_logdet(t, diag, -1, logdet));
out:
    fxp_tape_set_grad_enabled(t, grad);
    return rc;
}

static void sylv_destroy(fxp_flow *f)
{
    sylv_layer *l = (sylv_layer *)f;
    fxp__far_free(&l->far);
    free(l->lu_const);
    fxp_tape_free(l->scratch);
    free(l);
}

static const fxp_flow_vtable sylv_vtable = { "sylvester", sylv_forward, sylv_inverse,
                                             sylv_destroy };
static const fxp_flow_vtable sylv_dense_vtable = { "sylvester_dense", sylv_forward,
                                                   sylv_inverse, sylv_destroy };

/* ---- construction ---------------------------------------------------------------- */

static int check_opts(fxp_ctx *ctx, const fxp_sylvester_opts *o)
{
    const char *bad = NULL;
    if (o->channels < 1 || o->channels > 4096) bad = "channels (1..4096)";
    else if (o->height < 1 || o->width < 1 || (int64_t)o->height * o->width > (1 << 28))
        bad = "height, width (>= 1)";
    else if (o->kernel < 1 || o->kernel > 15 || o->kernel % 2 == 0) bad = "kernel (odd, 1..15)";
    else if (o->f != FXP_SYLV_F_GENERALIZED && o->f != FXP_SYLV_F_ORIGINAL) bad = "f";
    else if (o->hidden < 1 || o->hidden > (1 << 16)) bad = "hidden (1..65536)";
    else if (o->f == FXP_SYLV_F_GENERALIZED && o->hidden % o->channels && o->channels % o->hidden)
        bad = "hidden (a multiple or a divisor of channels)";
    else if (o->q < FXP_SYLV_Q_NONE || o->q > FXP_SYLV_Q_LU) bad = "q";
    else if (o->reflections < 0 || o->reflections > 4096) bad = "reflections (0..4096)";
    else if (o->convexp != 0 && o->convexp != 1) bad = "convexp (0 or 1)";
    else if (!(o->lipschitz > 0) || !isfinite(o->lipschitz)) bad = "lipschitz (finite > 0)";
    else if (!(o->convexp_coeff > 0) || !isfinite(o->convexp_coeff))
        bad = "convexp_coeff (finite > 0)";
    else if (!(o->sn_eps >= 0 && o->sn_eps <= 1)) bad = "sn_eps (0..1)";
    else if (o->power_steps < 0 || o->power_steps > 1000) bad = "power_steps (0..1000)";
    else if (o->terms_train < 1 || o->terms_train > 1000 || o->terms_eval < 1 ||
             o->terms_eval > 1000)
        bad = "terms_train, terms_eval (1..1000)";
    else if (!(o->inverse_atol > 0) || !isfinite(o->inverse_atol)) bad = "inverse_atol (> 0)";
    else if (o->inverse_max_iter < 0) bad = "inverse_max_iter (>= 0)";
    if (bad)
        return FXP_ERR(ctx, FXP_EINVAL,
                       "bad Sylvester option %s: C=%d H=%d W=%d kernel %d hidden %d f %d q %d "
                       "R %d convexp %d lipschitz %g convexp_coeff %g sn_eps %g power_steps %d "
                       "terms %d/%d atol %g max_iter %d",
                       bad, o->channels, o->height, o->width, o->kernel, o->hidden, (int)o->f,
                       (int)o->q, o->reflections, o->convexp, (double)o->lipschitz,
                       (double)o->convexp_coeff, (double)o->sn_eps, o->power_steps,
                       o->terms_train, o->terms_eval, o->inverse_atol, o->inverse_max_iter);
    return FXP_OK;
}

static int layer_new(fxp_ctx *ctx, fxp_params *ps, const char *name, const fxp_sylvester_opts *o,
                     fxp_rng *rng, int dense, fxp_flow **out)
{
    if (!ps || !o || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    int rc = check_opts(ctx, o);
    if (rc < 0) return rc;
    if (dense && (o->height != 1 || o->width != 1 || o->kernel != 1))
        return FXP_ERR(ctx, FXP_EINVAL, "a dense Sylvester layer needs height = width = 1 and "
                                        "kernel 1 (got %dx%d, kernel %d)",
                       o->height, o->width, o->kernel);
    sylv_layer *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    char pn[FXP_PARAM_NAME_MAX];
    const int C = o->channels, k = o->kernel, R = o->reflections ? o->reflections : C;
    const int ks[4] = { C, C, k, k }, vs[2] = { R, C }, cc[2] = { C, C };
    const int nuv = C * o->height * o->width;
    FXP_TRY(fxp__flow_init(&l->base, dense ? &sylv_dense_vtable : &sylv_vtable, ctx, name));
    l->o = *o;
    l->dense = dense;
    if (o->convexp) {
        FXP_TRY(fxp__flow_param_name(&l->base, "kernel", pn, sizeof pn));
        FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_TRAINABLE, 4, ks, &l->kernel));
        FXP_TRY(fxp__flow_param_name(&l->base, "kernel_u", pn, sizeof pn));
        FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_STATE, 1, &nuv, &l->ku));
        FXP_TRY(fxp__flow_param_name(&l->base, "kernel_v", pn, sizeof pn));
        FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_STATE, 1, &nuv, &l->kv));
        /* theirs: randn / prod(kernel shape) for GeneralizedSylvester, randn /
         * prod(kernel shape[1:]) for the ablation without generalisation */
        const float scale =
            o->f == FXP_SYLV_F_GENERALIZED ? (float)C * C * k * k : (float)C * k * k;
        fxp_rng_normal(rng, fxp_param_value(l->kernel).data, (size_t)C * C * k * k, 0,
                       1.0f / scale);
        fxp_spectral_init(rng, fxp_param_value(l->kv).data, nuv);
        fxp_spectral_init(rng, fxp_param_value(l->ku).data, nuv);
    }
    if (o->q == FXP_SYLV_Q_HOUSEHOLDER) {
        FXP_TRY(fxp__flow_param_name(&l->base, "conv1x1/V", pn, sizeof pn));
        FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_TRAINABLE, 2, vs, &l->V));
        fxp_rng_normal(rng, fxp_param_value(l->V).data, (size_t)R * C, 0, 1);
    } else if (o->q == FXP_SYLV_Q_LU) {
        FXP_TRY(fxp__flow_param_name(&l->base, "lower", pn, sizeof pn));
        FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_TRAINABLE, 2, cc, &l->lower));
        FXP_TRY(fxp__flow_param_name(&l->base, "upper", pn, sizeof pn));
        FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_TRAINABLE, 2, cc, &l->upper));
        FXP_TRY(fxp__flow_param_name(&l->base, "log_s", pn, sizeof pn));
        FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_TRAINABLE, 1, &C, &l->log_s));
        const float sd = 1.0f / sqrtf((float)C);
        fxp_rng_normal(rng, fxp_param_value(l->lower).data, (size_t)C * C, 0, sd);
        fxp_rng_normal(rng, fxp_param_value(l->upper).data, (size_t)C * C, 0, sd);
        if (!(l->lu_const = calloc((size_t)3 * C * C, sizeof *l->lu_const))) {
            rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", l->base.name);
            goto out;
        }
        for (int i = 0; i < C; i++)
            for (int j = 0; j < C; j++) {
                const size_t e = (size_t)i * C + j;
                l->lu_const[e] = j < i;
                l->lu_const[(size_t)C * C + e] = j > i;
                l->lu_const[(size_t)2 * C * C + e] = j == i;
            }
    }
    FXP_TRY(fxp__far_init(&l->far, ctx, ps, l->base.name, o, rng));
    *out = &l->base;
    return FXP_OK;
out:
    free(l->lu_const);
    free(l);
    return rc;
}

int fxp_sylvester_new(fxp_ctx *ctx, fxp_params *ps, const char *name,
                      const fxp_sylvester_opts *opts, fxp_rng *rng, fxp_flow **out)
{
    FXP_API_SCOPE();
    return layer_new(ctx, ps, name, opts, rng, 0, out);
}

int fxp_sylvester_dense_new(fxp_ctx *ctx, fxp_params *ps, const char *name,
                            const fxp_sylvester_opts *opts, fxp_rng *rng, fxp_flow **out)
{
    FXP_API_SCOPE();
    return layer_new(ctx, ps, name, opts, rng, 1, out);
}

static sylv_layer *as_sylvester(const fxp_flow *f)
{
    return f && (f->vt == &sylv_vtable || f->vt == &sylv_dense_vtable) ? (sylv_layer *)f : NULL;
}

int fxp_sylvester_last_inverse(const fxp_flow *f, fxp_fixed_point_info *info)
{
    sylv_layer *l = as_sylvester(f);
    if (!l || !info)
        return FXP_ERR(f ? f->ctx : NULL, FXP_EINVAL,
                       "%s is not a Sylvester layer (or info is NULL)", f ? f->name : "(null)");
    *info = l->info;
    return FXP_OK;
}

int fxp_sylvester_far(fxp_flow *f, fxp_tape *t, fxp_var *u, fxp_var **out, fxp_var **diag)
{
    FXP_API_SCOPE();
    sylv_layer *l = as_sylvester(f);
    if (!l || !t || !u || !out || !diag)
        return FXP_ERR(f ? f->ctx : NULL, FXP_EINVAL, "not a Sylvester layer, or a NULL argument");
    int rc;
    fxp__far_w w;
    fxp_var *u4, *o4, *d4;
    FXP_TRY(check_in(l, u));
    FXP_TRY(to4(l, t, u, &u4));
    FXP_TRY(fxp__far_weights(&l->far, t, 0, &w));
    FXP_TRY(fxp__far_eval(&l->far, &w, t, u4, &o4, &d4));
    FXP_TRY(from4(l, t, o4, out));
    FXP_TRY(from4(l, t, d4, diag));
out:
    return rc;
}
