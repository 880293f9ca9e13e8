/* The residual block flow of residual.h: g with Lipschitz-constrained
 * convolutions and LipSwish, the stochastic log-determinant (basic and
 * Neumann estimators), the exact log-determinant for checks, and the
 * fixed-point inverse. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flows/flow_internal.h"
#include "ops/conv2d.h"

typedef struct resblock {
    fxp_flow base;
    fxp_resblock_opts o;
    int k[3], cin[3], cout[3];
    fxp_param *w[3], *b[3], *u[3], *v[3], *beta[2];
    fxp_rng rng;              /* eps and N when io->rng is not set */
    fxp_fixed_point_info info;
    fxp_tape *scratch;        /* the fixed-point iterations' activations */
} resblock;

void fxp_resblock_opts_default(fxp_resblock_opts *o, int channels, int height, int width)
{
    *o = (fxp_resblock_opts){ .channels = channels,
                              .height = height,
                              .width = width,
                              .hidden = 528,
                              .coeff = 0.98f,
                              .sn_atol = 1e-3,
                              .sn_rtol = 1e-3,
                              .sn_max_iter = 200,
                              .lambda = 2.0,
                              .n_exact_train = 2,
                              .n_exact_eval = 20,
                              .inverse_atol = 1e-5,
                              .inverse_rtol = 1e-5,
                              .inverse_max_iter = 1000,
                              .logdet = FXP_RESBLOCK_ESTIMATE };
}

/* ---- g --------------------------------------------------------------------------- */

typedef struct gweights {
    fxp_var *w[3], *b[3], *beta[2];
} gweights;

/* The normalised weights of one call; power iterations written back only
 * in training. */
static int g_weights(resblock *l, fxp_tape *t, int training, gweights *gw)
{
    int rc = FXP_OK;
    for (int i = 0; i < 3; i++) {
        fxp_var *w;
        const int sp = l->k[i] > 1; /* kxk: operator norm at H x W; 1x1: the matrix */
        FXP_TRY(fxp_tape_param(t, &w, l->w[i]));
        FXP_TRY(fxp_tape_param(t, &gw->b[i], l->b[i]));
        FXP_TRY(fxp_spectral_norm_conv_tol(t, &gw->w[i], w, fxp_param_value(l->u[i]).data,
                                           fxp_param_value(l->v[i]).data,
                                           sp ? l->o.height : 1, sp ? l->o.width : 1, l->o.coeff,
                                           l->o.sn_atol, l->o.sn_rtol, l->o.sn_max_iter, training,
                                           NULL, NULL));
    }
    for (int i = 0; i < 2; i++) FXP_TRY(fxp_tape_param(t, &gw->beta[i], l->beta[i]));
out:
    return rc;
}

/* g(x) and the pre-activations a1, a2 of the two LipSwish layers. */
static int g_apply(const gweights *gw, fxp_tape *t, fxp_var *x, fxp_var **g, fxp_var **a1,
                   fxp_var **a2)
{
    int rc;
    fxp_var *h;
    FXP_TRY(fxp_conv2d(t, a1, x, gw->w[0], gw->b[0], NULL));
    FXP_TRY(fxp_lipswish(t, &h, *a1, gw->beta[0], 0));
    FXP_TRY(fxp_conv2d(t, a2, h, gw->w[1], gw->b[1], NULL));
    FXP_TRY(fxp_lipswish(t, &h, *a2, gw->beta[1], 0));
    FXP_TRY(fxp_conv2d(t, g, h, gw->w[2], gw->b[2], NULL));
out:
    return rc;
}

/* ---- vector-Jacobian products of g (no tape) ----------------------------------------
 * J = W2 D2 W1 D1 W0 with D_i = diag(LipSwish'(a_i)), so
 * v^T J = W0^T (d1 .* W1^T (d2 .* W2^T v)). */
typedef struct vjp_ctx {
    fxp_ctx *ctx;
    fxp__conv_shape s[3];
    const float *w[3], *d1, *d2;
    float *t1, *t2; /* [B, n_h, H, W] each */
} vjp_ctx;

static int vjp(void *user, const float *v, float *out)
{
    vjp_ctx *c = user;
    const int64_t nh = (int64_t)c->s[1].n * c->s[1].c_in * c->s[1].h * c->s[1].w;
    int rc;
    const int nt = c->ctx->n_threads;
    float *t1 = c->t1, *t2 = c->t2;
    const float *d1 = c->d1, *d2 = c->d2;
    if ((rc = fxp__conv2d_backward_data(c->ctx, &c->s[2], t2, v, c->w[2], 1, 0)) < 0) return rc;
    FXP_PARALLEL_FOR(nt, nh > (1 << 15), for (int64_t i = 0; i < nh; i++) t2[i] *= d2[i];);
    if ((rc = fxp__conv2d_backward_data(c->ctx, &c->s[1], t1, t2, c->w[1], 1, 0)) < 0) return rc;
    FXP_PARALLEL_FOR(nt, nh > (1 << 15), for (int64_t i = 0; i < nh; i++) t1[i] *= d1[i];);
    return fxp__conv2d_backward_data(c->ctx, &c->s[0], out, c->t1, c->w[0], 1, 0);
}

/* Set up the products for `batch` examples from example `first` of the
 * derivatives d1, d2; the buffers come from tape t. */
static int vjp_init(resblock *l, fxp_tape *t, const gweights *gw, const fxp_var *d1,
                    const fxp_var *d2, int first, int batch, vjp_ctx *c)
{
    const int H = l->o.height, W = l->o.width, nh = l->o.hidden;
    const int64_t per = (int64_t)nh * H * W;
    c->ctx = l->base.ctx;
    for (int i = 0; i < 3; i++) {
        c->s[i] = (fxp__conv_shape){ batch, l->cin[i], H, W, l->cout[i], l->k[i], l->k[i],
                                     FXP_PAD_ZERO };
        c->w[i] = gw->w[i]->value.data;
    }
    c->d1 = d1->value.data + first * per;
    c->d2 = d2->value.data + first * per;
    c->t1 = fxp_tape_alloc(t, (size_t)(2 * batch * per) * sizeof(float));
    if (!c->t1) return FXP_ENOMEM;
    c->t2 = c->t1 + batch * per;
    return FXP_OK;
}

/* log|det(I + J)| of each example by D products with unit vectors (rows of
 * J) and an LU in double. */
static double lu_logabsdet(double *a, int d)
{
    double s = 0;
    for (int k = 0; k < d; k++) {
        int p = k;
        for (int i = k + 1; i < d; i++)
            if (fabs(a[(size_t)i * d + k]) > fabs(a[(size_t)p * d + k])) p = i;
        if (a[(size_t)p * d + k] == 0) return -INFINITY;
        if (p != k)
            for (int j = 0; j < d; j++) {
                const double tmp = a[(size_t)k * d + j];
                a[(size_t)k * d + j] = a[(size_t)p * d + j];
                a[(size_t)p * d + j] = tmp;
            }
        const double piv = a[(size_t)k * d + k];
        s += log(fabs(piv));
        for (int i = k + 1; i < d; i++) {
            const double m = a[(size_t)i * d + k] / piv;
            if (m != 0)
                for (int j = k + 1; j < d; j++) a[(size_t)i * d + j] -= m * a[(size_t)k * d + j];
        }
    }
    return s;
}

static int exact_logdet(resblock *l, fxp_tape *t, const gweights *gw, const fxp_var *d1,
                        const fxp_var *d2, int batch, double *out)
{
    fxp_ctx *ctx = l->base.ctx;
    const int64_t D = (int64_t)l->o.channels * l->o.height * l->o.width;
    if (D > 4096)
        return FXP_ERR(ctx, FXP_EINVAL, "%s: the exact log-determinant needs D <= 4096 (D = %lld)",
                       l->base.name, (long long)D);
    /* examples in chunks whose Jacobians fit 2^24 doubles; one product per
     * row r of J for the whole chunk */
    const int chunk = (int)FXP_MAX(1, FXP_MIN((int64_t)batch, ((int64_t)1 << 24) / (D * D)));
    double *jac = malloc((size_t)(chunk * D * D) * sizeof *jac);
    float *e = fxp_tape_alloc(t, (size_t)(2 * chunk * D) * sizeof(float)), *rows = e + chunk * D;
    if (!jac || !e) {
        free(jac);
        return FXP_ERR(ctx, FXP_ENOMEM, "%s: cannot allocate %d %lldx%lld Jacobians", l->base.name,
                       chunk, (long long)D, (long long)D);
    }
    int rc = FXP_OK;
    for (int b0 = 0; b0 < batch; b0 += chunk) {
        const int nb = FXP_MIN(chunk, batch - b0);
        vjp_ctx c;
        FXP_TRY(vjp_init(l, t, gw, d1, d2, b0, nb, &c));
        for (int64_t r = 0; r < D; r++) {
            memset(e, 0, (size_t)(nb * D) * sizeof(float));
            for (int b = 0; b < nb; b++) e[b * D + r] = 1.0f;
            FXP_TRY(vjp(&c, e, rows)); /* row r of each example's J */
            for (int b = 0; b < nb; b++)
                for (int64_t j = 0; j < D; j++)
                    jac[((int64_t)b * D + r) * D + j] = rows[b * D + j] + (r == j);
        }
        for (int b = 0; b < nb; b++) out[b0 + b] = lu_logabsdet(jac + (int64_t)b * D * D, (int)D);
    }
out:
    free(jac);
    return rc;
}

/* A constant [B] variable holding sign * vals. */
static int const_logdet(fxp_tape *t, const double *vals, int batch, double sign, fxp_var **out)
{
    int rc = fxp_tape_var(t, out, 1, &batch);
    if (rc < 0) return rc;
    for (int b = 0; b < batch; b++) (*out)->value.data[b] = (float)(sign * vals[b]);
    return FXP_OK;
}

/* The logdet of y = x + g(x) at the x that gave a1, a2: the training
 * surrogate, the evaluation estimate or the exact value (times sign). */
static int block_logdet(resblock *l, fxp_tape *t, const fxp_flow_io *io, int training,
                        const gweights *gw, fxp_var *a1, fxp_var *a2, float sign,
                        fxp_var **logdet)
{
    const int B = a1->value.shape[0];
    const int C = l->o.channels, H = l->o.height, W = l->o.width;
    const int64_t D = (int64_t)C * H * W;
    fxp_rng *rng = io->rng ? io->rng : &l->rng;
    fxp_var *d1, *d2;
    vjp_ctx c;
    int rc;
    double *ld = fxp_tape_alloc(t, (size_t)B * sizeof *ld);
    if (!ld) return FXP_ENOMEM;
    FXP_TRY(fxp_lipswish(t, &d1, a1, gw->beta[0], 1));
    FXP_TRY(fxp_lipswish(t, &d2, a2, gw->beta[1], 1));
    if (l->o.logdet == FXP_RESBLOCK_EXACT) {
        FXP_TRY(exact_logdet(l, t, gw, d1, d2, B, ld));
        return const_logdet(t, ld, B, sign, logdet);
    }
    FXP_TRY(vjp_init(l, t, gw, d1, d2, 0, B, &c));
    if (!training) {
        FXP_TRY(fxp_logdet_estimate(l->base.ctx, vjp, &c, B, D, l->o.n_exact_eval, l->o.lambda,
                                    rng, ld, NULL));
        return const_logdet(t, ld, B, sign, logdet);
    }
    /* the Neumann surrogate w^T J eps: w without gradient, J eps on the tape */
    const int shape[4] = { B, C, H, W };
    fxp_var *eps, *w, *j;
    FXP_TRY(fxp_tape_var(t, &eps, 4, shape));
    FXP_TRY(fxp_tape_var(t, &w, 4, shape));
    fxp_rng_normal(rng, eps->value.data, (size_t)(B * D), 0, 1);
    const int terms = l->o.n_exact_train + fxp_rng_poisson(rng, l->o.lambda);
    FXP_TRY(fxp_logdet_series(l->base.ctx, vjp, &c, B, D, eps->value.data, terms,
                              l->o.n_exact_train, l->o.lambda, ld, w->value.data));
    FXP_TRY(fxp_conv2d(t, &j, eps, gw->w[0], NULL, NULL));
    FXP_TRY(fxp_mul(t, &j, j, d1));
    FXP_TRY(fxp_conv2d(t, &j, j, gw->w[1], NULL, NULL));
    FXP_TRY(fxp_mul(t, &j, j, d2));
    FXP_TRY(fxp_conv2d(t, &j, j, gw->w[2], NULL, NULL));
    FXP_TRY(fxp_mul(t, &j, j, w));
    FXP_TRY(fxp_sum(t, logdet, j, FXP_AXES_FROM(1), 0));
    if (sign < 0) FXP_TRY(fxp_scale(t, logdet, *logdet, -1.0f));
out:
    return rc;
}

/* ---- forward and inverse ------------------------------------------------------------ */

static int check_x(resblock *l, const fxp_var *x)
{
    const fxp_tensor *v = &x->value;
    char s[64];
    if (v->ndim == 4 && v->shape[1] == l->o.channels && v->shape[2] == l->o.height &&
        v->shape[3] == l->o.width)
        return FXP_OK;
    return FXP_ERR(l->base.ctx, FXP_ESHAPE, "%s: x %s must be [B, %d, %d, %d]", l->base.name,
                   fxp_tensor_shape_str(v, s, sizeof s), l->o.channels, l->o.height, l->o.width);
}

static int rb_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x, fxp_var **z,
                      fxp_var **logdet)
{
    resblock *l = (resblock *)f;
    gweights gw;
    fxp_var *g, *a1, *a2;
    int rc;
    FXP_TRY(check_x(l, x));
    FXP_TRY(g_weights(l, t, io->training, &gw));
    FXP_TRY(g_apply(&gw, t, x, &g, &a1, &a2));
    FXP_TRY(fxp_add(t, z, x, g));
    FXP_TRY(block_logdet(l, t, io, io->training, &gw, a1, a2, 1, logdet));
out:
    return rc;
}

static int rb_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *y, fxp_var **x,
                      fxp_var **logdet)
{
    resblock *l = (resblock *)f;
    fxp_ctx *ctx = f->ctx;
    const int grad = fxp_tape_grad_enabled(t);
    gweights gw;
    fxp_var *g, *a1, *a2, *xv, *prev;
    int rc;
    FXP_TRY(check_x(l, y));
    fxp_tape_set_grad_enabled(t, 0); /* sampling only: no gradients */
    FXP_TRY(g_weights(l, t, io->training, &gw));
    if (!l->scratch) {
        FXP_TRY(fxp_tape_new(ctx, &l->scratch));
        fxp_tape_set_grad_enabled(l->scratch, 0);
    }
    const int64_t n = fxp_tensor_numel(&y->value);
    const float *yv = y->value.data;
    FXP_TRY(fxp_tape_var(t, &xv, 4, y->value.shape));
    FXP_TRY(fxp_tape_var(t, &prev, 4, y->value.shape));
    memcpy(prev->value.data, yv, (size_t)n * sizeof(float));
    /* x_0 = y - g(y), x_{k+1} = y - g(x_k) until (x_{k+1} - x_k)^2 < atol + rtol |y| */
    int evals = 0;
    double crit = INFINITY;
    l->info.calls++;
    l->info.converged = 0;
    for (;;) {
        fxp_var *in;
        fxp_tape_reset(l->scratch);
        FXP_TRY(fxp_tape_input(l->scratch, &in, &prev->value, 0));
        FXP_TRY(g_apply(&gw, l->scratch, in, &g, &a1, &a2));
        evals++;
        crit = 0;
        for (int64_t i = 0; i < n; i++) {
            const float nx = yv[i] - g->value.data[i];
            const double dlt = (double)nx - prev->value.data[i];
            const double q = dlt * dlt / (l->o.inverse_atol + l->o.inverse_rtol * fabs(yv[i]));
            if (!(q <= crit)) crit = q; /* NaN propagates */
            xv->value.data[i] = nx;
        }
        if (isnan(crit)) {
            rc = FXP_ERR(ctx, FXP_ENUMERIC, "%s: the fixed-point inverse produced NaN",
                         f->name);
            goto out;
        }
        if (crit < 1) break;
        if (evals >= l->o.inverse_max_iter) {
            l->info.iterations = evals;
            l->info.residual = crit;
            rc = FXP_ERR(ctx, FXP_ECONVERGE,
                         "%s: the fixed-point inverse did not converge in %d iterations (largest "
                         "(dx)^2 / (atol + rtol |y|) = %.3g, needs < 1)",
                         f->name, evals, crit);
            goto out;
        }
        memcpy(prev->value.data, xv->value.data, (size_t)n * sizeof(float));
    }
    l->info.iterations = evals;
    l->info.residual = crit;
    l->info.converged = 1;
    /* the logdet at x (the estimator of evaluation, or the exact value) */
    FXP_TRY(g_apply(&gw, t, xv, &g, &a1, &a2));
    FXP_TRY(block_logdet(l, t, io, 0, &gw, a1, a2, -1, logdet));
    *x = xv;
out:
    if (l->scratch) fxp_tape_reset(l->scratch);
    fxp_tape_set_grad_enabled(t, grad);
    return rc;
}

static void rb_destroy(fxp_flow *f)
{
    fxp_tape_free(((resblock *)f)->scratch);
    free(f);
}

static const fxp_flow_vtable resblock_vtable = { "resblock", rb_forward, rb_inverse,
                                                 rb_destroy };

/* ---- construction and queries ----------------------------------------------------- */

int fxp_resblock_new(fxp_ctx *ctx, fxp_params *ps, const char *name,
                     const fxp_resblock_opts *opts, fxp_rng *rng, fxp_flow **out)
{
    FXP_API_SCOPE();
    if (!ps || !opts || !rng || !out) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    const fxp_resblock_opts *o = opts;
    const char *bad = NULL;
    if (o->channels < 1 || o->channels > 4096) bad = "channels (1..4096)";
    else if (o->height < 1 || o->width < 1 || (int64_t)o->height * o->width > (1 << 28))
        bad = "height, width (>= 1)";
    else if (o->hidden < 1 || o->hidden > (1 << 16)) bad = "hidden (1..65536)";
    else if (!(o->coeff > 0 && o->coeff < 1)) bad = "coeff (0 < coeff < 1 for an invertible block)";
    else if (!(o->sn_atol >= 0) || !(o->sn_rtol >= 0) || o->sn_max_iter < 1 ||
             o->sn_max_iter > 100000)
        bad = "sn_atol, sn_rtol (>= 0), sn_max_iter (1..100000)";
    else if (!(o->lambda > 0 && o->lambda <= 30)) bad = "lambda (0 < lambda <= 30)";
    else if (o->n_exact_train < 1 || o->n_exact_train > 1000 || o->n_exact_eval < 1 ||
             o->n_exact_eval > 1000)
        bad = "n_exact_train, n_exact_eval (1..1000)";
    else if (!(o->inverse_atol > 0) || !(o->inverse_rtol >= 0) || o->inverse_max_iter < 1)
        bad = "inverse_atol (> 0), inverse_rtol (>= 0), inverse_max_iter (>= 1)";
    else if (o->logdet != FXP_RESBLOCK_ESTIMATE && o->logdet != FXP_RESBLOCK_EXACT) bad = "logdet";
    if (bad)
        return FXP_ERR(ctx, FXP_EINVAL,
                       "bad residual block option %s: C=%d H=%d W=%d hidden %d coeff %g "
                       "sn %g/%g/%d lambda %g exact %d/%d inverse %g/%g/%d",
                       bad, o->channels, o->height, o->width, o->hidden, (double)o->coeff,
                       o->sn_atol, o->sn_rtol, o->sn_max_iter, o->lambda, o->n_exact_train,
                       o->n_exact_eval, o->inverse_atol, o->inverse_rtol, o->inverse_max_iter);
    resblock *l = calloc(1, sizeof *l);
    if (!l) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate layer %s", name ? name : "");
    int rc;
    char pn[FXP_PARAM_NAME_MAX], leaf[32];
    FXP_TRY(fxp__flow_init(&l->base, &resblock_vtable, ctx, name));
    l->o = *o;
    const int C = o->channels, nh = o->hidden, HW = o->height * o->width, one = 1;
    const int ks[3] = { 3, 1, 3 }, ci[3] = { C, nh, nh }, co[3] = { nh, nh, C };
    for (int i = 0; i < 3; i++) {
        l->k[i] = ks[i];
        l->cin[i] = ci[i];
        l->cout[i] = co[i];
        const int ws[4] = { co[i], ci[i], ks[i], ks[i] };
        const int nu = ks[i] > 1 ? co[i] * HW : co[i], nv = ks[i] > 1 ? ci[i] * HW : ci[i];
        struct { const char *leaf; int kind, nd; const int *shape; fxp_param **p; } reg[] = {
            { "weight", FXP_PARAM_TRAINABLE, 4, ws, &l->w[i] },
            { "bias", FXP_PARAM_TRAINABLE, 1, &co[i], &l->b[i] },
            { "u", FXP_PARAM_STATE, 1, &nu, &l->u[i] },
            { "v", FXP_PARAM_STATE, 1, &nv, &l->v[i] } };
        for (int r = 0; r < 4; r++) {
            snprintf(leaf, sizeof leaf, "nnet/%d/%s", 2 * i, reg[r].leaf);
            FXP_TRY(fxp__flow_param_name(&l->base, leaf, pn, sizeof pn));
            FXP_TRY(fxp_params_add(ps, pn, reg[r].kind, reg[r].nd, reg[r].shape, reg[r].p));
        }
        /* PyTorch's Conv2d default (kaiming_uniform a = sqrt 5): U(+-1/sqrt(fan_in)) */
        const float bound = 1.0f / sqrtf((float)ci[i] * ks[i] * ks[i]);
        const size_t nw = (size_t)co[i] * ci[i] * ks[i] * ks[i];
        float *wv = fxp_param_value(l->w[i]).data, *bv = fxp_param_value(l->b[i]).data;
        fxp_rng_uniform(rng, wv, nw);
        for (size_t e = 0; e < nw; e++) wv[e] = (2 * wv[e] - 1) * bound;
        fxp_rng_uniform(rng, bv, (size_t)co[i]);
        for (int e = 0; e < co[i]; e++) bv[e] = (2 * bv[e] - 1) * bound;
        fxp_spectral_init(rng, fxp_param_value(l->u[i]).data, nu);
        fxp_spectral_init(rng, fxp_param_value(l->v[i]).data, nv);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(leaf, sizeof leaf, "nnet/%d/beta", 2 * i + 1);
        FXP_TRY(fxp__flow_param_name(&l->base, leaf, pn, sizeof pn));
        FXP_TRY(fxp_params_add(ps, pn, FXP_PARAM_TRAINABLE, 1, &one, &l->beta[i]));
        fxp_param_value(l->beta[i]).data[0] = 0.5f;
    }
    l->rng = fxp_rng_split(rng);
    *out = &l->base;
    return FXP_OK;
out:
    free(l);
    return rc;
}

static resblock *as_resblock(const fxp_flow *f)
{
    return f && f->vt == &resblock_vtable ? (resblock *)f : NULL;
}

int fxp_resblock_set_logdet(fxp_flow *f, fxp_resblock_logdet mode)
{
    resblock *l = as_resblock(f);
    if (!l) return FXP_ERR(f ? f->ctx : NULL, FXP_EINVAL, "%s is not a residual block",
                           f ? f->name : "(null)");
    if (mode != FXP_RESBLOCK_ESTIMATE && mode != FXP_RESBLOCK_EXACT)
        return FXP_ERR(f->ctx, FXP_EINVAL, "%s: unknown log-determinant mode %d", f->name,
                       (int)mode);
    l->o.logdet = mode;
    return FXP_OK;
}

int fxp_resblock_last_inverse(const fxp_flow *f, fxp_fixed_point_info *info)
{
    resblock *l = as_resblock(f);
    if (!l || !info)
        return FXP_ERR(f ? f->ctx : NULL, FXP_EINVAL, "%s is not a residual block (or info is "
                                                      "NULL)", f ? f->name : "(null)");
    *info = l->info;
    return FXP_OK;
}

int fxp_resblock_logdet_check(fxp_ctx *ctx, fxp_flow *f, const fxp_tensor *x, int draws,
                              fxp_rng *rng, fxp_resblock_logdet_stats *out)
{
    FXP_API_SCOPE();
    resblock *l = as_resblock(f);
    if (!l || !x || !x->data || !rng || !out || draws < 2)
        return FXP_ERR(ctx, FXP_EINVAL, "not a residual block, a NULL argument, or draws = %d "
                                        "(>= 2)", draws);
    fxp_tape *t = NULL;
    fxp_tensor x0;
    gweights gw;
    fxp_var *vx, *g, *a1, *a2, *d1, *d2;
    vjp_ctx c;
    int rc;
    const int64_t D = (int64_t)l->o.channels * l->o.height * l->o.width;
    FXP_TRY(fxp_tensor_slice0(ctx, x, &x0, 0, 1));
    FXP_TRY(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    FXP_TRY(fxp_tape_input(t, &vx, &x0, 0));
    FXP_TRY(check_x(l, vx));
    FXP_TRY(g_weights(l, t, 0, &gw));
    FXP_TRY(g_apply(&gw, t, vx, &g, &a1, &a2));
    FXP_TRY(fxp_lipswish(t, &d1, a1, gw.beta[0], 1));
    FXP_TRY(fxp_lipswish(t, &d2, a2, gw.beta[1], 1));
    FXP_TRY(exact_logdet(l, t, &gw, d1, d2, 1, &out->exact));
    FXP_TRY(vjp_init(l, t, &gw, d1, d2, 0, 1, &c));
    double s1 = 0, s2 = 0;
    for (int i = 0; i < draws; i++) {
        double e;
        FXP_TRY(fxp_logdet_estimate(ctx, vjp, &c, 1, D, l->o.n_exact_eval, l->o.lambda, rng, &e,
                                    NULL));
        s1 += e;
        s2 += e * e;
    }
    out->draws = draws;
    out->mean = s1 / draws;
    out->stderr_mean = sqrt(fmax(0, (s2 - s1 * s1 / draws) / (draws - 1)) / draws);
out:
    fxp_tape_free(t);
    return rc;
}
