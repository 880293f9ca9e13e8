/* Generalized and convolutional Sylvester flows (sylvester.h): the
 * autoregressive masks (definition, strict AR property of f_AR by
 * perturbation, Jacobian triangularity and its diagonal), masked spectral
 * normalisation against the brute-force operator norm, every layer variant
 * (convolutional, both ablations, dense with Householder / LU / exponential
 * bases, the original Sylvester form) against brute-force Jacobians,
 * fixed-point inverses and their convergence report, gradients, errors. */
#include "flowtest.h"

#define B 2

/* ---- masks ------------------------------------------------------------------------ */

/* The §5.3 definition, written out independently of the library. */
static int ref_mask(int o, int c, int a, int b, int n_out, int n_in, int k, int strict)
{
    const int l = (k - 1) / 2;
    if (a < l || (a == l && b < l)) return 0;
    if (a != l || b != l) return 1;
    if (n_out >= n_in) {
        const int g = o / (n_out / n_in);
        return strict ? c < g : c <= g;
    }
    const int r = n_in / n_out;
    return strict ? c < o * r : c < (o + 1) * r;
}

START_TEST(test_mask_definition)
{
    const int cases[][3] = { { 12, 3, 3 }, { 3, 12, 3 }, { 4, 4, 3 }, { 6, 2, 5 }, { 2, 6, 1 },
                             { 8, 8, 1 } };
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        const int no = cases[n][0], ni = cases[n][1], k = cases[n][2];
        float *m = malloc((size_t)no * ni * k * k * sizeof *m);
        for (int strict = 0; strict < 2; strict++) {
            ck_assert_ok(fxp_ar_mask(m, no, ni, k, k, strict));
            int ones = 0;
            for (int o = 0; o < no; o++)
                for (int c = 0; c < ni; c++)
                    for (int a = 0; a < k; a++)
                        for (int b = 0; b < k; b++) {
                            const float v = m[(((size_t)o * ni + c) * k + a) * k + b];
                            ck_assert_msg(v == ref_mask(o, c, a, b, no, ni, k, strict),
                                          "mask %dx%d k%d strict %d at [%d,%d,%d,%d]", no, ni, k,
                                          strict, o, c, a, b);
                            ones += v == 1.0f;
                        }
            ck_assert_int_gt(ones, 0);
        }
        free(m);
    }
    /* the authors' example: 3x3, 1 -> 1, non-strict: rows below and the
     * centre row from the centre on */
    float m1[9];
    ck_assert_ok(fxp_ar_mask(m1, 1, 1, 3, 3, 0));
    const float want[9] = { 0, 0, 0, 0, 1, 1, 1, 1, 1 };
    for (int i = 0; i < 9; i++) ck_assert_float_eq(m1[i], want[i]);
    ck_assert_ok(fxp_ar_mask(m1, 1, 1, 3, 3, 1));
    ck_assert_float_eq(m1[4], 0);
    float m2[64];
    ck_assert_fails(fxp_ar_mask(m2, 4, 3, 1, 1, 0), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_ar_mask(m2, 2, 2, 2, 2, 0), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_ar_mask(NULL, 2, 2, 1, 1, 0), FXP_EINVAL, NULL);
}
END_TEST

/* A small Sylvester layer with every parameter perturbed (the t1, s1 heads
 * start at 0). */
static fxp_flow *make_layer(fxp_ctx *ctx, fxp_params **ps, const fxp_sylvester_opts *o, int dense,
                            uint64_t seed, float std)
{
    fxp_flow *f;
    fxp_rng rng;
    fxp_rng_seed(&rng, seed);
    ck_assert_ok(fxp_params_new(ctx, ps));
    if (dense) ck_assert_ok(fxp_sylvester_dense_new(ctx, *ps, "syl", o, &rng, &f));
    else ck_assert_ok(fxp_sylvester_new(ctx, *ps, "syl", o, &rng, &f));
    flowtest_perturb(*ps, seed + 1, std);
    return f;
}

/* Position of element (c, i, j) in the autoregressive order: pixels later in
 * raster order first, then channels in increasing order. */
static long order_key(int c, int i, int j, int C, int H, int W)
{
    return (long)(H * W - 1 - (i * W + j)) * C + c;
}

/* f_AR's output (c, i, j) must not change when any input at or after it in
 * the order changes (apart from its own diagonal, which must equal the
 * layer's J_dd), and must change for some earlier inputs. */
static void check_ar_structure(const fxp_sylvester_opts *o)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_flow *f = make_layer(ctx, &ps, o, 0, 11, 0.2f);
    const int C = o->channels, H = o->height, W = o->width, D = C * H * W;
    const int shape[4] = { 1, C, H, W };
    float *u = malloc((size_t)D * sizeof *u), *base = malloc((size_t)D * sizeof *base),
          *dg = malloc((size_t)D * sizeof *dg);
    test_randn(u, (size_t)D, 5, 1);
    fxp_tensor tu = fxp_tensor_wrap(u, 4, shape);
    fxp_tape *t;
    fxp_var *vu, *out, *diag;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    ck_assert_ok(fxp_tape_input(t, &vu, &tu, 0));
    ck_assert_ok(fxp_sylvester_far(f, t, vu, &out, &diag));
    memcpy(base, out->value.data, (size_t)D * sizeof *base);
    memcpy(dg, diag->value.data, (size_t)D * sizeof *dg);
    long earlier_deps = 0;
    const float h = 1e-2f;
    for (int e = 0; e < D; e++) {
        const int ec = e / (H * W), ei = e / W % H, ej = e % W;
        const float keep = u[e];
        u[e] = keep + h;
        fxp_tape_reset(t);
        ck_assert_ok(fxp_tape_input(t, &vu, &tu, 0));
        ck_assert_ok(fxp_sylvester_far(f, t, vu, &out, &diag));
        const float *p = out->value.data;
        float plus_e = p[e];
        u[e] = keep - h;
        fxp_tape_reset(t);
        ck_assert_ok(fxp_tape_input(t, &vu, &tu, 0));
        ck_assert_ok(fxp_sylvester_far(f, t, vu, &out, &diag));
        const float minus_e = out->value.data[e];
        u[e] = keep + h;
        fxp_tape_reset(t);
        ck_assert_ok(fxp_tape_input(t, &vu, &tu, 0));
        ck_assert_ok(fxp_sylvester_far(f, t, vu, &out, &diag));
        p = out->value.data;
        for (int o2 = 0; o2 < D; o2++) {
            if (o2 == e) continue;
            const int oc = o2 / (H * W), oi = o2 / W % H, oj = o2 % W;
            const int allowed = order_key(ec, ei, ej, C, H, W) < order_key(oc, oi, oj, C, H, W);
            if (!allowed)
                ck_assert_msg(p[o2] == base[o2],
                              "output (%d,%d,%d) changed with input (%d,%d,%d) at or after it",
                              oc, oi, oj, ec, ei, ej);
            else
                earlier_deps += p[o2] != base[o2];
        }
        /* the diagonal of the Jacobian is the layer's J_dd */
        const double num = ((double)plus_e - minus_e) / (2.0 * h);
        ck_assert_msg(fabs(num - dg[e]) < 2e-3 + 2e-2 * fabs(dg[e]),
                      "J_dd at %d: layer %g, finite difference %g", e, dg[e], num);
        u[e] = keep;
    }
    ck_assert_msg(earlier_deps > D, "f_AR hardly depends on earlier inputs (%ld)", earlier_deps);
    fxp_tape_free(t);
    free(u);
    free(base);
    free(dg);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}

START_TEST(test_far_autoregressive)
{
    fxp_sylvester_opts o;
    /* n_h > C (groups of 3 units per channel), n_h < C, and the original form */
    fxp_sylvester_opts_default(&o, 3, 4, 5);
    o.hidden = 9;
    check_ar_structure(&o);
    fxp_sylvester_opts_default(&o, 4, 3, 3);
    o.hidden = 2;
    check_ar_structure(&o);
    fxp_sylvester_opts_default(&o, 3, 4, 4);
    o.f = FXP_SYLV_F_ORIGINAL;
    o.hidden = 2;
    check_ar_structure(&o);
}
END_TEST

/* ---- masked spectral normalisation ------------------------------------------------- */

/* ||A||_2 of the masked convolution on [1, ci, h, w] by forming A and
 * running power iteration on A^T A in double. */
static double brute_norm(const float *wt, const float *mask, int co, int ci, int k, int h, int w)
{
    const int n = ci * h * w, m = co * h * w, l = (k - 1) / 2;
    double *A = calloc((size_t)m * n, sizeof *A);
    for (int o = 0; o < co; o++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                for (int c = 0; c < ci; c++)
                    for (int a = 0; a < k; a++)
                        for (int b = 0; b < k; b++) {
                            const int ii = i + a - l, jj = j + b - l;
                            if (ii < 0 || ii >= h || jj < 0 || jj >= w) continue;
                            const size_t e = (((size_t)o * ci + c) * k + a) * k + b;
                            A[((size_t)(o * h + i) * w + j) * n + (c * h + ii) * w + jj] +=
                                (double)wt[e] * mask[e];
                        }
    double *v = malloc((size_t)n * sizeof *v), *y = malloc((size_t)m * sizeof *y), s = 0;
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

START_TEST(test_masked_spectral_norm)
{
    fxp_ctx *ctx = test_ctx(1);
    enum { CO = 6, CI = 3, K = 3, H = 4, W = 5 };
    float wt[CO * CI * K * K], mask[CO * CI * K * K], u[CO * H * W], v[CI * H * W];
    test_randn(wt, sizeof wt / sizeof *wt, 3, 1);
    ck_assert_ok(fxp_ar_mask(mask, CO, CI, K, K, 0));
    fxp_rng rng;
    fxp_rng_seed(&rng, 4);
    fxp_spectral_init(&rng, u, CO * H * W);
    fxp_spectral_init(&rng, v, CI * H * W);
    const double want = brute_norm(wt, mask, CO, CI, K, H, W);
    const int ws[4] = { CO, CI, K, K };
    fxp_tensor tw = fxp_tensor_wrap(wt, 4, ws);
    fxp_tape *t;
    fxp_var *vw, *wh;
    float sigma;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vw, &tw, 1));
    ck_assert_ok(fxp_spectral_norm_conv_masked(t, &wh, vw, mask, u, v, H, W, 1.5f, 300, 0,
                                               &sigma));
    ck_assert_msg(fabs(sigma - want) < 1e-3 * want, "sigma %g, brute force %g", sigma, want);
    ck_assert_msg(want > 1.5, "test needs an active constraint (norm %g)", want);
    /* the normalised masked operator has norm coeff; masked taps stay zero */
    const double got = brute_norm(wh->value.data, mask, CO, CI, K, H, W);
    ck_assert_msg(fabs(got - 1.5) < 2e-3, "normalised norm %g", got);
    for (int i = 0; i < CO * CI * K * K; i++)
        if (mask[i] == 0) ck_assert_float_eq(wh->value.data[i], 0);
    /* the authors' +1e-5 */
    fxp_var *wh2;
    ck_assert_ok(fxp_spectral_norm_conv_masked(t, &wh2, vw, mask, u, v, H, W, 1.5f, 0, 1e-5f,
                                               NULL));
    const double f = sigma / 1.5;
    for (int i = 0; i < CO * CI * K * K; i++)
        ck_assert_msg(fabs(wh2->value.data[i] - wt[i] * mask[i] / (f + 1e-5)) <
                          1e-6 * fabs(wt[i]) + 1e-9,
                      "sn_eps scaling at %d", i);
    ck_assert_fails(fxp_spectral_norm_conv_masked(t, &wh2, vw, mask, u, v, H, W, 1.5f, 0, -1,
                                                  NULL),
                    FXP_EINVAL, ctx);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- layers: round trips, brute-force Jacobians, inverses ------------------------------ */

static void check_variant(const fxp_sylvester_opts *o, int dense, double tol, int grads)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_flow *f = make_layer(ctx, &ps, o, dense, 21, 0.2f);
    const int C = o->channels, H = o->height, W = o->width, D = C * H * W;
    float *x = malloc((size_t)B * D * sizeof *x);
    test_randn(x, (size_t)B * D, 8, 1);
    const int s4[4] = { B, C, H, W }, s2[2] = { B, C };
    fxp_tensor tx = dense ? fxp_tensor_wrap(x, 2, s2) : fxp_tensor_wrap(x, 4, s4);
    flowtest_check(ctx, f, NULL, &tx, tol, 1);
    fxp_fixed_point_info info;
    ck_assert_ok(fxp_sylvester_last_inverse(f, &info));
    ck_assert_int_ge(info.calls, 1);
    ck_assert_int_eq(info.converged, 1);
    ck_assert_int_ge(info.iterations, 2);
    ck_assert_msg(info.residual < o->inverse_atol, "residual %g", info.residual);
    if (grads) flowtest_grads(ctx, f, NULL, &tx, 0, ps, 60, 1e-3f, 2e-2);
    free(x);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}

START_TEST(test_conv_sylvester)
{
    fxp_sylvester_opts o;
    fxp_sylvester_opts_default(&o, 2, 4, 4);
    o.hidden = 4;
    check_variant(&o, 0, 2e-3, 1);
}
END_TEST

START_TEST(test_ablations)
{
    fxp_sylvester_opts o;
    fxp_sylvester_opts_default(&o, 2, 4, 4); /* without the basis change */
    o.hidden = 6;
    o.q = FXP_SYLV_Q_NONE;
    o.convexp = 0;
    o.inverse_atol = 1e-6;
    check_variant(&o, 0, 2e-3, 1);
    fxp_sylvester_opts_default(&o, 2, 4, 4); /* without generalisation */
    o.f = FXP_SYLV_F_ORIGINAL;
    o.hidden = 4;
    o.terms_train = o.terms_eval = 10;
    check_variant(&o, 0, 2e-3, 1);
}
END_TEST

START_TEST(test_dense_variants)
{
    fxp_sylvester_opts o;
    fxp_sylvester_dense_opts_default(&o, 6); /* Householder */
    check_variant(&o, 1, 1e-3, 1);
    o.q = FXP_SYLV_Q_LU;
    check_variant(&o, 1, 1e-3, 1);
    o.q = FXP_SYLV_Q_NONE; /* dense exponential */
    o.convexp = 1;
    check_variant(&o, 1, 1e-3, 1);
    fxp_sylvester_dense_opts_default(&o, 5); /* the original Sylvester flow */
    o.f = FXP_SYLV_F_ORIGINAL;
    check_variant(&o, 1, 1e-3, 1);
}
END_TEST

/* The inverse reports its iterations, and fails clearly when capped. */
START_TEST(test_inverse_convergence)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_sylvester_opts o;
    fxp_sylvester_opts_default(&o, 3, 4, 4);
    o.hidden = 6;
    fxp_params *ps;
    fxp_flow *f = make_layer(ctx, &ps, &o, 0, 31, 0.3f);
    const int D = 3 * 4 * 4, shape[4] = { B, 3, 4, 4 };
    float x[B * 48];
    test_randn(x, B * D, 2, 1);
    fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
    fxp_tape *t;
    fxp_var *vx, *z, *ld, *xr, *ldr;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
    ck_assert_ok(fxp_flow_inverse(f, t, NULL, z, &xr, &ldr));
    fxp_fixed_point_info info;
    ck_assert_ok(fxp_sylvester_last_inverse(f, &info));
    ck_assert_int_eq(info.converged, 1);
    ck_assert_int_eq(info.calls, 1);
    const int iters = info.iterations;
    ck_assert_msg(iters >= 3 && iters < D, "iterations %d", iters);
    double err = 0;
    for (int i = 0; i < B * D; i++) err = fmax(err, fabs(xr->value.data[i] - x[i]));
    ck_assert_msg(err < 1e-3, "round trip error %g", err);
    /* a tighter tolerance needs more iterations and gives a closer inverse */
    fxp_flow_free(f);
    fxp_params_free(ps);
    o.inverse_atol = 1e-6;
    f = make_layer(ctx, &ps, &o, 0, 31, 0.3f);
    ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
    ck_assert_ok(fxp_flow_inverse(f, t, NULL, z, &xr, &ldr));
    ck_assert_ok(fxp_sylvester_last_inverse(f, &info));
    ck_assert_int_gt(info.iterations, iters);
    double err2 = 0;
    for (int i = 0; i < B * D; i++) err2 = fmax(err2, fabs(xr->value.data[i] - x[i]));
    ck_assert_msg(err2 < err && err2 < 2e-5, "round trip error %g (atol 1e-4: %g)", err2, err);
    fxp_flow_free(f);
    fxp_params_free(ps);
    /* a tolerance below float resolution: the iteration stops once rounding
     * alone moves the iterate */
    o.inverse_atol = 1e-12;
    f = make_layer(ctx, &ps, &o, 0, 31, 0.3f);
    ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
    ck_assert_ok(fxp_flow_inverse(f, t, NULL, z, &xr, &ldr));
    ck_assert_ok(fxp_sylvester_last_inverse(f, &info));
    ck_assert_int_eq(info.converged, 1);
    ck_assert_msg(info.iterations < D && info.residual < 1e-5, "iterations %d residual %g",
                  info.iterations, info.residual);
    fxp_flow_free(f);
    fxp_params_free(ps);
    /* capped at 2 iterations: FXP_ECONVERGE naming the layer */
    o.inverse_atol = 1e-6;
    o.inverse_max_iter = 2;
    f = make_layer(ctx, &ps, &o, 0, 31, 0.3f);
    ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
    ck_assert_fails(fxp_flow_inverse(f, t, NULL, z, &xr, &ldr), FXP_ECONVERGE, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "syl"));
    ck_assert_ok(fxp_sylvester_last_inverse(f, &info));
    ck_assert_int_eq(info.converged, 0);
    ck_assert_int_eq(info.iterations, 2);
    ck_assert_msg(info.residual >= 1e-4, "residual %g", info.residual);
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* At initialisation f = t2(u) and J_dd = 0 (the t1, s1 heads are zero): the
 * logdet is exactly 0 and the layer is not the identity. */
START_TEST(test_init)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_sylvester_opts o;
    fxp_sylvester_opts_default(&o, 2, 4, 4);
    o.hidden = 4;
    fxp_params *ps;
    fxp_flow *f = make_layer(ctx, &ps, &o, 0, 41, 0);
    const int shape[4] = { B, 2, 4, 4 };
    float x[B * 32];
    test_randn(x, B * 32, 2, 1);
    fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
    fxp_tape *t;
    fxp_var *vx, *z, *ld;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
    ck_assert_float_eq(ld->value.data[0], 0);
    ck_assert_float_eq(ld->value.data[1], 0);
    double d = 0;
    for (int i = 0; i < B * 32; i++) d = fmax(d, fabs(z->value.data[i] - x[i]));
    ck_assert_msg(d > 1e-3, "layer is the identity at init");
    /* parameter names mirror the authors' state_dict */
    const char *names[] = { "syl/kernel",          "syl/kernel_u",        "syl/conv1x1/V",
                            "syl/nn/0/weight",     "syl/nn/0/weight_v",   "syl/nn/2/bias",
                            "syl/linear_t1/weight", "syl/linear_s2/weight_u" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        ck_assert_msg(fxp_params_find(ps, names[i]) != NULL, "no parameter %s", names[i]);
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_flow *f;
    fxp_rng rng;
    fxp_rng_seed(&rng, 1);
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_sylvester_opts o;
    fxp_sylvester_opts_default(&o, 12, 4, 4);
    o.hidden = 20; /* neither divides the other */
    ck_assert_fails(fxp_sylvester_new(ctx, ps, "a", &o, &rng, &f), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "hidden"));
    fxp_sylvester_opts_default(&o, 2, 4, 4);
    o.kernel = 2;
    ck_assert_fails(fxp_sylvester_new(ctx, ps, "a", &o, &rng, &f), FXP_EINVAL, ctx);
    fxp_sylvester_opts_default(&o, 2, 4, 4);
    o.inverse_atol = 0;
    ck_assert_fails(fxp_sylvester_new(ctx, ps, "a", &o, &rng, &f), FXP_EINVAL, ctx);
    fxp_sylvester_opts_default(&o, 2, 4, 4);
    ck_assert_fails(fxp_sylvester_dense_new(ctx, ps, "a", &o, &rng, &f), FXP_EINVAL, ctx);
    o.hidden = 4;
    ck_assert_ok(fxp_sylvester_new(ctx, ps, "b", &o, &rng, &f));
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
    fxp_fixed_point_info info;
    ck_assert_fails(fxp_sylvester_last_inverse(other, &info), FXP_EINVAL, ctx);
    fxp_flow_free(other);
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- the Tables 2-3 image models ------------------------------------------------------ */

/* The layer kinds of a prior, joined by spaces. */
static void layer_kinds(fxp_image_model *m, char *buf, size_t n)
{
    fxp_flow *pv = fxp_model_flow(fxp_image_model_prior(m));
    buf[0] = 0;
    for (int i = 0; i < fxp_flow_seq_length(pv); i++) {
        const char *k = fxp_flow_kind(fxp_flow_seq_at(pv, i));
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", i ? " " : "", k);
    }
}

START_TEST(test_models)
{
    fxp_ctx *ctx = test_ctx(1);
    struct {
        const char *preset, *kinds;
        int latent[3];
    } cases[] = {
        /* CIFAR10 shape, one block per level: split after levels 0 and 1 */
        { "sylvester", "squeeze actnorm sylvester flip split_prior squeeze actnorm sylvester flip "
                       "split_prior squeeze actnorm sylvester flip", { 48, 4, 4 } },
        { "sylvester-nobasis", NULL, { 48, 4, 4 } },
        /* the coupling / ablation quirk: no split after level 0 */
        { "sylvester-nogen", NULL, { 96, 4, 4 } },
        { "resflow", "squeeze actnorm resblock split_prior squeeze actnorm resblock split_prior "
                     "squeeze actnorm resblock", { 48, 4, 4 } },
        { "coupling-flow", "squeeze actnorm conv1x1 image_coupling squeeze actnorm conv1x1 "
                           "image_coupling split_prior squeeze actnorm conv1x1 image_coupling",
          { 96, 4, 4 } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fxp_image_model_config cfg;
        ck_assert_ok(fxp_image_model_config_preset(&cfg, cases[c].preset));
        ck_assert_int_eq(cfg.levels, 3);
        ck_assert_int_eq(cfg.subflows, 16);
        ck_assert_int_eq(cfg.hidden, 528);
        ck_assert_int_eq(cfg.optimizer, FXP_OPT_ADAM);
        ck_assert_double_eq(cfg.clip_norm, 1.0);
        ck_assert_int_eq(cfg.warmup_quadratic, 1);
        ck_assert_ok(fxp_image_model_config_validate(ctx, &cfg));
        cfg.subflows = 1;
        cfg.hidden = 12;
        cfg.depth = 1;
        cfg.growth = 4;
        cfg.intermediate = 4;
        cfg.dequantization = FXP_DEQUANT_UNIFORM;
        fxp_params *ps;
        fxp_image_model *m;
        fxp_rng rng;
        fxp_rng_seed(&rng, 1);
        ck_assert_ok(fxp_params_new(ctx, &ps));
        ck_assert_ok(fxp_image_model_new(ctx, ps, &cfg, &rng, &m));
        int lat[3];
        fxp_image_model_latent_shape(m, lat);
        for (int i = 0; i < 3; i++)
            ck_assert_msg(lat[i] == cases[c].latent[i], "%s: latent [%d,%d,%d]", cases[c].preset,
                          lat[0], lat[1], lat[2]);
        if (cases[c].kinds) {
            char k[512];
            layer_kinds(m, k, sizeof k);
            ck_assert_msg(!strcmp(k, cases[c].kinds), "%s: layers %s", cases[c].preset, k);
        }
        ck_assert_int_eq(fxp_image_model_logdet_is_exact(m),
                         strcmp(cases[c].preset, "resflow") != 0);
        fxp_image_model_free(m);
        fxp_params_free(ps);
    }
    fxp_image_model_config cfg;
    ck_assert_ok(fxp_image_model_config_preset(&cfg, "resflow-half"));
    ck_assert_int_eq(cfg.subflows, 8);
    ck_assert_int_eq(cfg.intermediate, 528);
    ck_assert_ok(fxp_image_model_config_preset(&cfg, "sylvester-nobasis"));
    ck_assert_double_eq(cfg.sylvester_atol, 1e-6);
    ck_assert_int_eq(cfg.intermediate, 64);
    ck_assert_ok(fxp_image_model_config_preset(&cfg, "sylvester-nogen"));
    ck_assert_int_eq(cfg.convexp_terms_train, 10);
    /* a hidden width that fits no level's channel groups */
    ck_assert_ok(fxp_image_model_config_preset(&cfg, "sylvester"));
    ck_assert_ok(fxp_image_model_config_set(&cfg, "hidden", "36"));
    ck_assert_fails(fxp_image_model_config_validate(ctx, &cfg), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "hidden"));
    /* keys round-trip */
    char buf[64];
    ck_assert_ok(fxp_image_model_config_set(&cfg, "kind", "resflow"));
    ck_assert_ok(fxp_image_model_config_get(&cfg, "kind", buf, sizeof buf));
    ck_assert_str_eq(buf, "resflow");
    ck_assert_ok(fxp_image_model_config_set(&cfg, "resflow_lambda", "3"));
    ck_assert_double_eq(cfg.resflow_lambda, 3);
    ck_assert_fails(fxp_image_model_config_set(&cfg, "resflow_coeff", "1.5"), FXP_EINVAL, NULL);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *sylvester_suite(void)
{
    Suite *s = suite_create("sylvester");
    TCase *tc = tcase_create("sylvester");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_mask_definition);
    tcase_add_test(tc, test_far_autoregressive);
    tcase_add_test(tc, test_masked_spectral_norm);
    tcase_add_test(tc, test_conv_sylvester);
    tcase_add_test(tc, test_ablations);
    tcase_add_test(tc, test_dense_variants);
    tcase_add_test(tc, test_inverse_convergence);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_models);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(sylvester_suite)
