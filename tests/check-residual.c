/* The residual-flow baseline (residual.h): LipSwish and its derivative
 * (values, gradients), spectral normalisation to a tolerance against the
 * brute-force operator norm, Russian-roulette weights and Poisson draws, the
 * log-determinant estimator unbiased on a small matrix (value and Neumann
 * gradient vector), and the residual block: exact log-determinant against
 * the brute-force Jacobian, round trips, the fixed-point inverse report,
 * the evaluation estimator against the exact value, the training
 * surrogate's gradient unbiased against the exact log-determinant's,
 * gradients of the output, errors. */
#include "flowtest.h"

/* ---- LipSwish ------------------------------------------------------------------------ */

static int swish_fn(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    return fxp_lipswish(t, out, in[0], in[1], *(const int *)user);
}

START_TEST(test_lipswish)
{
    fxp_ctx *ctx = test_ctx(1);
    enum { N = 40 };
    float x[N], beta[1] = { 0.3f };
    test_randn(x, N, 1, 3);
    const int sx[1] = { N }, sb[1] = { 1 };
    fxp_tensor tx = fxp_tensor_wrap(x, 1, sx), tb = fxp_tensor_wrap(beta, 1, sb);
    fxp_tape *t;
    fxp_var *vx, *vb, *y, *dy;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_tape_input(t, &vb, &tb, 0));
    ck_assert_ok(fxp_lipswish(t, &y, vx, vb, 0));
    ck_assert_ok(fxp_lipswish(t, &dy, vx, vb, 1));
    const double s = log1p(exp(0.3));
    for (int i = 0; i < N; i++) {
        const double sg = 1 / (1 + exp(-s * x[i]));
        ck_assert_double_eq_tol(y->value.data[i], x[i] * sg / 1.1, 1e-5);
        const double h = 1e-3, yp = (x[i] + h) / (1 + exp(-s * (x[i] + h))) / 1.1,
                     ym = (x[i] - h) / (1 + exp(-s * (x[i] - h))) / 1.1;
        ck_assert_double_eq_tol(dy->value.data[i], (yp - ym) / (2 * h), 1e-5);
        ck_assert_msg(fabs(dy->value.data[i]) <= 1.0, "LipSwish slope %g > 1", dy->value.data[i]);
    }
    fxp_tensor *ins[2] = { &tx, &tb };
    const int wrt_x[2] = { 1, 0 };
    for (int d = 0; d < 2; d++) {
        ck_assert_gradcheck(ctx, swish_fn, &d, 2, ins, wrt_x, 1e-3f, 2e-3);
        /* d/dbeta of sum_i r_i y_i against a double-precision difference of the
         * closed form (a float difference is too noisy for this small sum) */
        float r[N];
        test_randn(r, N, 6, 1);
        fxp_tape *t2;
        fxp_var *vx2, *vb2, *y2, *rv, *l;
        ck_assert_ok(fxp_tape_new(ctx, &t2));
        ck_assert_ok(fxp_tape_input(t2, &vx2, &tx, 0));
        ck_assert_ok(fxp_tape_input(t2, &vb2, &tb, 1));
        fxp_tensor tr = fxp_tensor_wrap(r, 1, sx);
        ck_assert_ok(fxp_tape_input(t2, &rv, &tr, 0));
        ck_assert_ok(fxp_lipswish(t2, &y2, vx2, vb2, d));
        ck_assert_ok(fxp_mul(t2, &l, y2, rv));
        ck_assert_ok(fxp_sum(t2, &l, l, FXP_AXES_ALL, 0));
        ck_assert_ok(fxp_tape_backward(t2, l, NULL));
        double lv[2];
        for (int k = 0; k < 2; k++) {
            const double bb = 0.3 + (k ? -1e-6 : 1e-6), ss = log1p(exp(bb));
            lv[k] = 0;
            for (int i = 0; i < N; i++) {
                const double z = ss * x[i], sg = 1 / (1 + exp(-z));
                lv[k] += r[i] * (d ? sg + z * sg * (1 - sg) : x[i] * sg) / 1.1;
            }
        }
        const double num = (lv[0] - lv[1]) / 2e-6;
        ck_assert_msg(fabs(vb2->grad[0] - num) < 1e-4 * fmax(1, fabs(num)),
                      "derivative %d: beta gradient %g, difference %g", d, vb2->grad[0], num);
        fxp_tape_free(t2);
    }
    const int s2[1] = { 2 };
    fxp_tensor bad = fxp_tensor_wrap(x, 1, s2);
    ck_assert_ok(fxp_tape_input(t, &vb, &bad, 0));
    ck_assert_fails(fxp_lipswish(t, &y, vx, vb, 0), FXP_ESHAPE, ctx);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- spectral normalisation to a tolerance ------------------------------------------- */

/* ||conv(.; w)||_2 on [1, ci, h, w] by power iteration on the formed matrix. */
static double brute_norm(const float *wt, int co, int ci, int k, int h, int w)
{
    const int n = ci * h * w, m = co * h * w, l = (k - 1) / 2;
    double *A = calloc((size_t)m * n, sizeof *A), *v = malloc((size_t)n * sizeof *v),
           *y = malloc((size_t)m * sizeof *y), s = 0;
    for (int o = 0; o < co; o++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                for (int c = 0; c < ci; c++)
                    for (int a = 0; a < k; a++)
                        for (int b = 0; b < k; b++) {
                            const int ii = i + a - l, jj = j + b - l;
                            if (ii >= 0 && ii < h && jj >= 0 && jj < w)
                                A[((size_t)(o * h + i) * w + j) * n + (c * h + ii) * w + jj] +=
                                    wt[(((size_t)o * ci + c) * k + a) * k + b];
                        }
    for (int i = 0; i < n; i++) v[i] = 1.0 + 0.01 * i;
    for (int it = 0; it < 3000; it++) {
        for (int r = 0; r < m; r++) {
            y[r] = 0;
            for (int c = 0; c < n; c++) y[r] += A[(size_t)r * n + c] * v[c];
        }
        double nv = 0;
        for (int c = 0; c < n; c++) {
            v[c] = 0;
            for (int r = 0; r < m; r++) v[c] += A[(size_t)r * n + c] * y[r];
            nv += v[c] * v[c];
        }
        nv = sqrt(nv);
        s = sqrt(nv);
        for (int c = 0; c < n; c++) v[c] /= nv;
    }
    free(A);
    free(v);
    free(y);
    return s;
}

START_TEST(test_spectral_norm_tol)
{
    fxp_ctx *ctx = test_ctx(1);
    enum { CO = 4, CI = 3, K = 3, H = 4, W = 4 };
    float wt[CO * CI * K * K], u[CO * H * W], v[CI * H * W], u0[CO * H * W];
    test_randn(wt, CO * CI * K * K, 2, 1);
    fxp_rng rng;
    fxp_rng_seed(&rng, 3);
    fxp_spectral_init(&rng, u, CO * H * W);
    fxp_spectral_init(&rng, v, CI * H * W);
    memcpy(u0, u, sizeof u);
    const double want = brute_norm(wt, CO, CI, K, H, W);
    const int ws[4] = { CO, CI, K, K };
    fxp_tensor tw = fxp_tensor_wrap(wt, 4, ws);
    fxp_tape *t;
    fxp_var *vw, *wh;
    float sigma;
    int iters;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vw, &tw, 1));
    /* without update: iterated on copies, u untouched */
    ck_assert_ok(fxp_spectral_norm_conv_tol(t, &wh, vw, u, v, H, W, 0.98f, 1e-6, 1e-6, 2000, 0,
                                            &sigma, &iters));
    ck_assert_msg(fabs(sigma - want) < 1e-4 * want, "sigma %g, brute force %g", sigma, want);
    ck_assert_int_gt(iters, 3);
    ck_assert_mem_eq(u, u0, sizeof u);
    const double got = brute_norm(wh->value.data, CO, CI, K, H, W);
    ck_assert_msg(fabs(got - 0.98) < 1e-3, "normalised norm %g", got);
    /* with update: written back, and a second call converges at once */
    ck_assert_ok(fxp_spectral_norm_conv_tol(t, &wh, vw, u, v, H, W, 0.98f, 1e-3, 1e-3, 200, 1,
                                            &sigma, &iters));
    ck_assert_msg(memcmp(u, u0, sizeof u) != 0, "u not updated");
    ck_assert_ok(fxp_spectral_norm_conv_tol(t, &wh, vw, u, v, H, W, 0.98f, 1e-3, 1e-3, 200, 1,
                                            &sigma, &iters));
    ck_assert_int_le(iters, 2);
    /* a 1x1 kernel is normalised as its matrix (u [CO], v [CI]) */
    const int w1[4] = { CO, CI, 1, 1 };
    fxp_tensor t1 = fxp_tensor_wrap(wt, 4, w1);
    ck_assert_ok(fxp_tape_input(t, &vw, &t1, 0));
    ck_assert_ok(fxp_spectral_norm_conv_tol(t, &wh, vw, u, v, 1, 1, 0.98f, 1e-7, 1e-7, 2000, 0,
                                            &sigma, NULL));
    const double want1 = brute_norm(wt, CO, CI, 1, 1, 1);
    ck_assert_msg(fabs(sigma - want1) < 1e-4 * want1, "1x1 sigma %g, matrix norm %g", sigma, want1);
    ck_assert_fails(fxp_spectral_norm_conv_tol(t, &wh, vw, u, v, 1, 1, 0.98f, -1, 0, 10, 0, NULL,
                                               NULL),
                    FXP_EINVAL, ctx);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- the estimator ---------------------------------------------------------------------- */

START_TEST(test_roulette_and_poisson)
{
    ck_assert_double_eq(fxp_roulette_weight(2, 2, 1), 1);
    ck_assert_double_eq(fxp_roulette_weight(2, 2, 2), 1);
    /* k = 3: 1 / P(N >= 1) = 1 / (1 - e^-2); k = 4: 1 / (1 - 3 e^-2) */
    ck_assert_double_eq_tol(fxp_roulette_weight(2, 2, 3), 1 / (1 - exp(-2.0)), 1e-12);
    ck_assert_double_eq_tol(fxp_roulette_weight(2, 2, 4), 1 / (1 - 3 * exp(-2.0)), 1e-12);
    ck_assert_double_eq_tol(fxp_roulette_weight(2, 20, 22), 1 / (1 - 3 * exp(-2.0)), 1e-12);
    fxp_rng rng;
    fxp_rng_seed(&rng, 9);
    double s1 = 0, s2 = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        const int k = fxp_rng_poisson(&rng, 2.0);
        s1 += k;
        s2 += (double)k * k;
    }
    const double mean = s1 / n, var = s2 / n - mean * mean;
    ck_assert_msg(fabs(mean - 2) < 4 * sqrt(2.0 / n), "Poisson mean %g", mean);
    ck_assert_msg(fabs(var - 2) < 0.1, "Poisson variance %g", var);
}
END_TEST

typedef struct mat_op {
    int batch, d;
    const double *j; /* [d, d] shared by the batch */
} mat_op;

static int mat_vjp(void *user, const float *v, float *out)
{
    const mat_op *m = user;
    for (int b = 0; b < m->batch; b++)
        for (int c = 0; c < m->d; c++) {
            double s = 0;
            for (int r = 0; r < m->d; r++) s += (double)v[b * m->d + r] * m->j[r * m->d + c];
            out[b * m->d + c] = (float)s;
        }
    return FXP_OK;
}

/* log|det A| and A^-1 (Gauss-Jordan, double). */
static double logdet_inverse(const double *a_in, double *inv, int d)
{
    double a[64], s = 0;
    memcpy(a, a_in, (size_t)d * d * sizeof *a);
    for (int i = 0; i < d * d; i++) inv[i] = i / d == i % d;
    for (int k = 0; k < d; k++) {
        int p = k;
        for (int i = k + 1; i < d; i++)
            if (fabs(a[i * d + k]) > fabs(a[p * d + k])) p = i;
        for (int j = 0; j < d; j++) {
            double x = a[k * d + j];
            a[k * d + j] = a[p * d + j];
            a[p * d + j] = x;
            x = inv[k * d + j];
            inv[k * d + j] = inv[p * d + j];
            inv[p * d + j] = x;
        }
        const double piv = a[k * d + k];
        s += log(fabs(piv));
        for (int j = 0; j < d; j++) {
            a[k * d + j] /= piv;
            inv[k * d + j] /= piv;
        }
        for (int i = 0; i < d; i++) {
            if (i == k) continue;
            const double m = a[i * d + k];
            for (int j = 0; j < d; j++) {
                a[i * d + j] -= m * a[k * d + j];
                inv[i * d + j] -= m * inv[k * d + j];
            }
        }
    }
    return s;
}

/* On a 6x6 matrix J (||J|| <= 0.8, not symmetric): the mean of many
 * estimates is log det(I + J) within its standard error, for the training
 * (2 exact terms) and evaluation (20) settings; and the Neumann vector w
 * gives w^T dJ eps with mean tr((I + J)^-1 dJ) = d log det. */
START_TEST(test_estimator_unbiased)
{
    fxp_ctx *ctx = test_ctx(1);
    enum { D = 6, BATCH = 50 };
    double j[D * D], a[D * D], inv[D * D], dj[D * D];
    float raw[D * D];
    test_randn(raw, D * D, 12, 1);
    double fro = 0;
    for (int i = 0; i < D * D; i++) fro += raw[i] * raw[i];
    /* ||J||_2 <= 0.5 ||raw / ||raw||_F||_F + 0.3 = 0.8, and a clearly non-zero log det */
    for (int i = 0; i < D * D; i++) j[i] = 0.5 * raw[i] / sqrt(fro) + 0.3 * (i / D == i % D);
    for (int i = 0; i < D * D; i++) a[i] = j[i] + (i / D == i % D);
    const double exact = logdet_inverse(a, inv, D);
    test_randn(raw, D * D, 13, 1);
    for (int i = 0; i < D * D; i++) dj[i] = raw[i];
    double dexact = 0; /* tr((I + J)^-1 dJ) */
    for (int r = 0; r < D; r++)
        for (int c = 0; c < D; c++) dexact += inv[r * D + c] * dj[c * D + r];
    mat_op m = { BATCH, D, j };
    fxp_rng rng;
    fxp_rng_seed(&rng, 5);
    const int n_exact[2] = { 2, 20 }, rounds[2] = { 400, 100 };
    for (int s = 0; s < 2; s++) {
        double s1 = 0, s2 = 0, g1 = 0, g2 = 0;
        long n = 0;
        for (int r = 0; r < rounds[s]; r++) {
            double ld[BATCH];
            float eps[BATCH * D], w[BATCH * D];
            fxp_rng_normal(&rng, eps, BATCH * D, 0, 1);
            const int terms = n_exact[s] + fxp_rng_poisson(&rng, 2.0);
            ck_assert_ok(fxp_logdet_series(ctx, mat_vjp, &m, BATCH, D, eps, terms, n_exact[s], 2.0,
                                           ld, w));
            for (int b = 0; b < BATCH; b++) {
                double g = 0; /* w^T dJ eps */
                for (int p = 0; p < D; p++)
                    for (int q = 0; q < D; q++) g += w[b * D + p] * dj[p * D + q] * eps[b * D + q];
                s1 += ld[b];
                s2 += ld[b] * ld[b];
                g1 += g;
                g2 += g * g;
                n++;
            }
        }
        const double mean = s1 / n, se = sqrt((s2 / n - mean * mean) / n);
        const double gm = g1 / n, gse = sqrt((g2 / n - gm * gm) / n);
        ck_assert_msg(fabs(mean - exact) < 4 * se, "n_exact %d: mean %g +- %g, exact %g",
                      n_exact[s], mean, se, exact);
        ck_assert_msg(se < 0.02 && fabs(exact) > 0.5, "standard error %g too large to test "
                                                      "(exact %g)", se, exact);
        ck_assert_msg(fabs(gm - dexact) < 4 * gse, "Neumann gradient %g +- %g, exact %g", gm, gse,
                      dexact);
    }
    /* a truncated series without the roulette is biased: the test can fail */
    double s1 = 0;
    for (int r = 0; r < 200; r++) {
        double ld[BATCH];
        float eps[BATCH * D];
        fxp_rng_normal(&rng, eps, BATCH * D, 0, 1);
        ck_assert_ok(fxp_logdet_series(ctx, mat_vjp, &m, BATCH, D, eps, 1, 1, 2.0, ld, NULL));
        for (int b = 0; b < BATCH; b++) s1 += ld[b];
    }
    ck_assert_msg(fabs(s1 / (200 * BATCH) - exact) > 0.05, "one term is not biased enough");
    /* the convenience drawing eps and N */
    double ld[BATCH];
    int terms;
    ck_assert_ok(fxp_logdet_estimate(ctx, mat_vjp, &m, BATCH, D, 2, 2.0, &rng, ld, &terms));
    ck_assert_int_ge(terms, 2);
    ck_assert_fails(fxp_logdet_estimate(ctx, mat_vjp, &m, BATCH, D, 2, 0.0, &rng, ld, &terms),
                    FXP_EINVAL, ctx);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- the residual block -------------------------------------------------------------- */

enum { C = 2, H = 3, W = 3, HID = 4, BB = 2 };

static fxp_flow *make_block(fxp_ctx *ctx, fxp_params **ps, fxp_resblock_opts *o, float scale,
                            uint64_t seed)
{
    fxp_flow *f;
    fxp_rng rng;
    fxp_rng_seed(&rng, seed);
    ck_assert_ok(fxp_params_new(ctx, ps));
    ck_assert_ok(fxp_resblock_new(ctx, *ps, "res", o, &rng, &f));
    /* larger weights than PyTorch's init, so the constraint is active */
    float *w = fxp_params_data(*ps, FXP_PARAM_TRAINABLE);
    for (size_t i = 0; i < fxp_params_size(*ps, FXP_PARAM_TRAINABLE); i++) w[i] *= scale;
    return f;
}

START_TEST(test_block_exact)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_resblock_opts o;
    fxp_resblock_opts_default(&o, C, H, W);
    o.hidden = HID;
    o.logdet = FXP_RESBLOCK_EXACT;
    fxp_params *ps;
    fxp_flow *f = make_block(ctx, &ps, &o, 3, 8);
    float x[BB * C * H * W];
    test_randn(x, BB * C * H * W, 4, 1);
    const int shape[4] = { BB, C, H, W };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
    flowtest_check(ctx, f, NULL, &tx, 1e-3, 1);
    fxp_fixed_point_info info;
    ck_assert_ok(fxp_resblock_last_inverse(f, &info));
    ck_assert_int_eq(info.converged, 1);
    ck_assert_int_ge(info.iterations, 3);
    ck_assert_msg(info.residual < 1, "criterion %g", info.residual);
    /* the evaluation estimator against the exact value */
    fxp_rng rng;
    fxp_rng_seed(&rng, 99);
    fxp_resblock_logdet_stats st;
    ck_assert_ok(fxp_resblock_logdet_check(ctx, f, &tx, 400, &rng, &st));
    ck_assert_msg(fabs(st.mean - st.exact) < 4 * st.stderr_mean + 1e-4,
                  "estimate %g +- %g, exact %g", st.mean, st.stderr_mean, st.exact);
    ck_assert_msg(fabs(st.exact) > 0.05, "exact logdet %g too small to test", st.exact);
    ck_assert_msg(st.stderr_mean > 0, "no spread");
    /* an estimate in the flow agrees within its spread */
    ck_assert_ok(fxp_resblock_set_logdet(f, FXP_RESBLOCK_ESTIMATE));
    fxp_tape *t;
    fxp_var *vx, *z, *ld;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
    ck_assert_msg(fabs(ld->value.data[0] - st.exact) < 10 * st.stderr_mean * sqrt(400.0),
                  "estimate %g far from %g", ld->value.data[0], st.exact);
    /* capped inverse: FXP_ECONVERGE */
    fxp_flow_free(f);
    fxp_params_free(ps);
    o.inverse_max_iter = 1;
    f = make_block(ctx, &ps, &o, 3, 8);
    ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
    fxp_var *xr, *ldr;
    ck_assert_fails(fxp_flow_inverse(f, t, NULL, z, &xr, &ldr), FXP_ECONVERGE, ctx);
    ck_assert_ok(fxp_resblock_last_inverse(f, &info));
    ck_assert_int_eq(info.converged, 0);
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* sum_i r_i z_i of a training forward (z only). */
static double z_loss(fxp_ctx *ctx, fxp_flow *f, const fxp_tensor *x, fxp_params *ps, int backward,
                     float *gx)
{
    fxp_tape *t;
    fxp_var *vx, *z, *ld, *r, *l;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, backward);
    ck_assert_ok(fxp_tape_input(t, &vx, x, backward));
    fxp_flow_io io = { .training = 0 };
    ck_assert_ok(fxp_flow_forward(f, t, &io, vx, &z, &ld));
    ck_assert_ok(fxp_tape_var(t, &r, 4, z->value.shape));
    test_randn(r->value.data, (size_t)fxp_tensor_numel(&r->value), 5, 1);
    ck_assert_ok(fxp_mul(t, &l, z, r));
    ck_assert_ok(fxp_sum(t, &l, l, FXP_AXES_ALL, 0));
    const double v = l->value.data[0];
    if (backward) {
        fxp_params_zero_grad(ps);
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
        memcpy(gx, vx->grad, (size_t)fxp_tensor_numel(x) * sizeof *gx);
    }
    fxp_tape_free(t);
    return v;
}

/* Gradients of z = x + g(x) w.r.t. x and every parameter (through the
 * spectral normalisation and LipSwish) against central differences. */
START_TEST(test_block_output_gradients)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_resblock_opts o;
    fxp_resblock_opts_default(&o, C, H, W);
    o.hidden = HID;
    o.sn_atol = o.sn_rtol = 1e-7; /* sigma converged: differences see the same u, v */
    o.sn_max_iter = 3000;
    fxp_params *ps;
    fxp_flow *f = make_block(ctx, &ps, &o, 3, 17);
    float x[BB * C * H * W], gx[BB * C * H * W];
    test_randn(x, BB * C * H * W, 4, 1);
    const int shape[4] = { BB, C, H, W };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
    z_loss(ctx, f, &tx, ps, 1, gx);
    const size_t np = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    float *gp = malloc(np * sizeof *gp), *w = fxp_params_data(ps, FXP_PARAM_TRAINABLE);
    memcpy(gp, fxp_params_grad_data(ps), np * sizeof *gp);
    int bad = 0;
    double scale = 0; /* differences of a float loss: errors relative to the largest gradient */
    for (size_t i = 0; i < np; i++) scale = fmax(scale, fabs(gp[i]));
    for (int i = 0; i < BB * C * H * W; i++) scale = fmax(scale, fabs(gx[i]));
    for (size_t i = 0; i < np + BB * C * H * W; i++) {
        float *p = i < np ? &w[i] : &x[i - np];
        const double g = i < np ? gp[i] : gx[i - np];
        const float keep = *p, h = 1e-2f * fmaxf(1, fabsf(keep));
        *p = keep + h;
        const double lp = z_loss(ctx, f, &tx, ps, 0, NULL);
        *p = keep - h;
        const double lm = z_loss(ctx, f, &tx, ps, 0, NULL);
        *p = keep;
        const double num = (lp - lm) / (2.0 * h);
        bad += fabs(num - g) > 1e-2 * fmax(1e-2 * scale, fmax(fabs(num), fabs(g)));
    }
    ck_assert_msg(bad == 0, "%d gradients off", bad);
    free(gp);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* The training surrogate's gradient, averaged over draws, is the gradient of
 * the exact log-determinant (w.r.t. an input element and a parameter). */
START_TEST(test_block_neumann_gradient)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_resblock_opts o;
    fxp_resblock_opts_default(&o, C, H, W);
    o.hidden = HID;
    o.sn_atol = o.sn_rtol = 1e-7; /* sigma converged: differences see the same u, v */
    o.sn_max_iter = 3000;
    fxp_params *ps;
    fxp_flow *f = make_block(ctx, &ps, &o, 3, 17);
    float x[C * H * W];
    test_randn(x, C * H * W, 4, 1);
    const int shape[4] = { 1, C, H, W };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
    fxp_param *bias = fxp_params_find(ps, "res/nnet/0/bias");
    ck_assert_ptr_nonnull(bias);
    const size_t pi = fxp_param_offset(bias) + 1;
    float *w = fxp_params_data(ps, FXP_PARAM_TRAINABLE);
    /* the exact gradients by central differences of the exact logdet */
    fxp_tape *t;
    fxp_var *vx, *z, *ld;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_resblock_set_logdet(f, FXP_RESBLOCK_EXACT));
    double want[2];
    for (int k = 0; k < 2; k++) {
        float *p = k == 0 ? &x[3] : &w[pi];
        const float keep = *p, h = 1e-2f;
        double v[2];
        for (int s = 0; s < 2; s++) {
            *p = keep + (s ? -h : h);
            fxp_tape_reset(t);
            ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
            ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
            v[s] = ld->value.data[0];
        }
        *p = keep;
        want[k] = (v[0] - v[1]) / (2.0 * h);
    }
    ck_assert_ok(fxp_resblock_set_logdet(f, FXP_RESBLOCK_ESTIMATE));
    /* the mean of the surrogate's tape gradients over many training draws */
    fxp_rng rng;
    fxp_rng_seed(&rng, 7);
    fxp_flow_io io = { .training = 1, .rng = &rng };
    double s1[2] = { 0 }, s2[2] = { 0 };
    const int n = 1500;
    for (int i = 0; i < n; i++) {
        fxp_var *l;
        fxp_tape_reset(t);
        fxp_params_zero_grad(ps);
        ck_assert_ok(fxp_tape_input(t, &vx, &tx, 1));
        ck_assert_ok(fxp_flow_forward(f, t, &io, vx, &z, &ld));
        ck_assert_ok(fxp_sum(t, &l, ld, FXP_AXES_ALL, 0));
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
        const double g[2] = { vx->grad[3], fxp_params_grad_data(ps)[pi] };
        for (int k = 0; k < 2; k++) {
            s1[k] += g[k];
            s2[k] += g[k] * g[k];
        }
    }
    for (int k = 0; k < 2; k++) {
        const double m = s1[k] / n, se = sqrt((s2[k] / n - m * m) / n);
        ck_assert_msg(fabs(m - want[k]) < 4 * se + 2e-3 * fabs(want[k]),
                      "gradient %d: Neumann mean %g +- %g, exact %g", k, m, se, want[k]);
        ck_assert_msg(fabs(want[k]) > 4 * se, "gradient %d (%g) too small to test (se %g)", k,
                      want[k], se);
    }
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_block_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_flow *f;
    fxp_rng rng;
    fxp_rng_seed(&rng, 1);
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_resblock_opts o;
    fxp_resblock_opts_default(&o, 2, 4, 4);
    o.coeff = 1.0f;
    ck_assert_fails(fxp_resblock_new(ctx, ps, "a", &o, &rng, &f), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "coeff"));
    fxp_resblock_opts_default(&o, 2, 4, 4);
    o.lambda = 0;
    ck_assert_fails(fxp_resblock_new(ctx, ps, "a", &o, &rng, &f), FXP_EINVAL, ctx);
    fxp_resblock_opts_default(&o, 2, 4, 4);
    o.hidden = 4;
    ck_assert_ok(fxp_resblock_new(ctx, ps, "b", &o, &rng, &f));
    ck_assert_ptr_nonnull(fxp_params_find(ps, "b/nnet/2/u"));
    ck_assert_int_eq(fxp_param_value(fxp_params_find(ps, "b/nnet/2/u")).shape[0], 4);
    ck_assert_int_eq(fxp_param_value(fxp_params_find(ps, "b/nnet/0/u")).shape[0], 4 * 16);
    ck_assert_float_eq(fxp_param_value(fxp_params_find(ps, "b/nnet/3/beta")).data[0], 0.5f);
    const int bad[4] = { 1, 2, 4, 5 };
    float x[40] = { 0 };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, bad);
    fxp_tape *t;
    fxp_var *vx, *z, *ld;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_fails(fxp_flow_forward(f, t, NULL, vx, &z, &ld), FXP_ESHAPE, ctx);
    fxp_flow *other;
    ck_assert_ok(fxp_flip_new(ctx, "flip", &other));
    ck_assert_fails(fxp_resblock_set_logdet(other, FXP_RESBLOCK_EXACT), FXP_EINVAL, ctx);
    fxp_fixed_point_info info;
    ck_assert_fails(fxp_resblock_last_inverse(other, &info), FXP_EINVAL, ctx);
    fxp_flow_free(other);
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *residual_suite(void)
{
    Suite *s = suite_create("residual");
    TCase *tc = tcase_create("residual");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_lipswish);
    tcase_add_test(tc, test_spectral_norm_tol);
    tcase_add_test(tc, test_roulette_and_poisson);
    tcase_add_test(tc, test_estimator_unbiased);
    tcase_add_test(tc, test_block_exact);
    tcase_add_test(tc, test_block_output_gradients);
    tcase_add_test(tc, test_block_neumann_gradient);
    tcase_add_test(tc, test_block_errors);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(residual_suite)
