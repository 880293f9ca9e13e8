/* Optimizers: Adam/Adamax against torch and hand-computed values, the
 * schedule, clipping, weight decay, determinism, errors. */
#include "testutil.h"

static fxp_params *params_with(fxp_ctx *ctx, int n, const float *values, fxp_param **p)
{
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    ck_assert_ok(fxp_params_add(ps, "w", FXP_PARAM_TRAINABLE, 1, &n, p));
    memcpy(fxp_param_value(*p).data, values, (size_t)n * sizeof(float));
    return ps;
}

/* The three gradients used by the torch reference below. */
static const float grads[3][3] = { { 0.1f, -0.2f, 0.3f }, { 0.05f, 0.4f, -0.1f }, { -0.3f, 0.0f, 0.2f } };

static void run3(fxp_optim_kind kind, double lr, double b2, float out[3])
{
    fxp_ctx *ctx = test_ctx(1);
    const float w0[3] = { 0.5f, -1.0f, 2.0f };
    fxp_param *p;
    fxp_params *ps = params_with(ctx, 3, w0, &p);
    fxp_optim_config cfg;
    fxp_optim_config_default(&cfg, kind);
    cfg.lr = lr;
    cfg.beta2 = b2;
    cfg.eps = 1e-7;
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, &cfg, &o));
    for (int s = 0; s < 3; s++) {
        memcpy(fxp_param_grad(p), grads[s], sizeof grads[s]);
        ck_assert_ok(fxp_optim_step(o, NULL));
    }
    ck_assert_int_eq(fxp_optim_steps(o), 3);
    memcpy(out, fxp_param_value(p).data, 3 * sizeof(float));
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}

/* Reference values from torch 1.13 (float64):
 *   p = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
 *   o = torch.optim.Adam([p], lr=0.01, betas=(0.9, 0.99), eps=1e-7)     # or
 *       torch.optim.Adamax([p], lr=0.01, betas=(0.9, 0.999), eps=1e-7)
 *   for g in [[0.1,-0.2,0.3],[0.05,0.4,-0.1],[-0.3,0.0,0.2]]:
 *       p.grad = torch.tensor(g, dtype=torch.float64); o.step()       */
START_TEST(test_against_torch)
{
    float w[3];
    const float adam[3] = { 0.48412556f, -0.996488669f, 1.97994996f };
    const float adamax[3] = { 0.484764441f, -0.994723137f, 1.98266392f };
    run3(FXP_OPTIM_ADAM, 0.01, 0.99, w);
    for (int i = 0; i < 3; i++) ck_assert_float_eq_tol(w[i], adam[i], 2e-6f);
    run3(FXP_OPTIM_ADAMAX, 0.01, 0.999, w);
    for (int i = 0; i < 3; i++) ck_assert_float_eq_tol(w[i], adamax[i], 2e-6f);
}
END_TEST

/* One parameter, hand-computed from the formulas in optim.h. */
START_TEST(test_hand_computed)
{
    const double b1 = 0.9, b2 = 0.999, lr = 0.1, eps = 1e-8, wd = 0.01;
    const float g[2] = { 2.0f, -1.0f };
    for (int kind = 0; kind < 2; kind++) {
        fxp_ctx *ctx = test_ctx(1);
        const float w0 = 1.0f;
        fxp_param *p;
        fxp_params *ps = params_with(ctx, 1, &w0, &p);
        fxp_optim_config cfg;
        fxp_optim_config_default(&cfg, (fxp_optim_kind)kind);
        cfg.lr = lr;
        cfg.eps = eps;
        cfg.weight_decay = wd;
        fxp_optim *o;
        ck_assert_ok(fxp_optim_new(ctx, ps, &cfg, &o));
        double w = 1, m = 0, v = 0;
        for (int s = 1; s <= 2; s++) {
            fxp_param_grad(p)[0] = g[s - 1];
            ck_assert_ok(fxp_optim_step(o, NULL));
            double gi = g[s - 1] + wd * w;
            m = b1 * m + (1 - b1) * gi;
            if (kind == FXP_OPTIM_ADAM) {
                v = b2 * v + (1 - b2) * gi * gi;
                w -= lr * (m / (1 - pow(b1, s))) / (sqrt(v / (1 - pow(b2, s))) + eps);
            } else {
                v = fmax(b2 * v, fabs(gi) + eps);
                w -= lr / (1 - pow(b1, s)) * m / v;
            }
            ck_assert_float_eq_tol(fxp_param_value(p).data[0], (float)w, 1e-6f);
            ck_assert_float_eq_tol(fxp_optim_m(o)[0], (float)m, 1e-7f);
        }
        fxp_optim_free(o);
        fxp_params_free(ps);
        fxp_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_schedule)
{
    fxp_optim_config c;
    fxp_optim_config_default(&c, FXP_OPTIM_ADAMAX);
    c.lr = 1e-3;
    c.warmup = FXP_WARMUP_LINEAR;
    c.warmup_units = 10;
    c.decay = 0.995;
    c.unit = 50; /* steps per epoch */
    /* epoch e uses min(1, (e+1)/10) * 0.995^e; step t is in epoch (t-1)/50 */
    for (int e = 0; e < 30; e += 7) {
        double want = 1e-3 * fmin(1.0, (e + 1) / 10.0) * pow(0.995, e);
        ck_assert_double_eq_tol(fxp_optim_schedule(&c, (int64_t)e * 50 + 1), want, 1e-15);
        ck_assert_double_eq_tol(fxp_optim_schedule(&c, (int64_t)e * 50 + 50), want, 1e-15);
    }
    c.warmup = FXP_WARMUP_QUADRATIC;
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 1), 1e-3 * 0.01, 1e-15);
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 151), 1e-3 * 0.16 * pow(0.995, 3), 1e-15);
    c.warmup = FXP_WARMUP_NONE;
    c.decay = 0.96;
    c.unit = 1000;
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 2500), 1e-3 * 0.96 * 0.96, 1e-15);
}
END_TEST

START_TEST(test_clipping)
{
    fxp_ctx *ctx = test_ctx(1);
    const float w0[2] = { 0, 0 };
    fxp_param *p;
    fxp_params *ps = params_with(ctx, 2, w0, &p);
    fxp_optim_config cfg;
    fxp_optim_config_default(&cfg, FXP_OPTIM_ADAM);
    cfg.clip_norm = 1.0;
    cfg.beta1 = 0; /* m = g: the update direction shows the clipped gradient */
    cfg.beta2 = 0;
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, &cfg, &o));
    fxp_param_grad(p)[0] = 3;
    fxp_param_grad(p)[1] = 4;
    double norm;
    ck_assert_ok(fxp_optim_step(o, &norm));
    ck_assert_double_eq_tol(norm, 5.0, 1e-12);
    /* with b1 = b2 = 0 the step is lr * g / (|g| + eps) = lr * sign: clipping
     * scales g and thereby m and v, leaving the ratio; check m instead */
    ck_assert_float_eq_tol(fxp_optim_m(o)[0], 0.6f, 1e-6f);
    ck_assert_float_eq_tol(fxp_optim_m(o)[1], 0.8f, 1e-6f);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_minimises_least_squares)
{
    /* minimise ||A w - b||^2 with the tape: loss must fall by 1000x */
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_param *p;
    int ws[2] = { 4, 1 };
    ck_assert_ok(fxp_params_new(ctx, &ps));
    ck_assert_ok(fxp_params_add(ps, "w", FXP_PARAM_TRAINABLE, 2, ws, &p));
    float ad[24], bd[6];
    test_randn(ad, 24, 1, 1);
    test_randn(bd, 6, 2, 1);
    int as[2] = { 6, 4 }, bs[2] = { 6, 1 };
    fxp_tensor A = fxp_tensor_wrap(ad, 2, as), B = fxp_tensor_wrap(bd, 2, bs);
    fxp_optim_config cfg;
    fxp_optim_config_default(&cfg, FXP_OPTIM_ADAM);
    cfg.lr = 0.05;
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, &cfg, &o));
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    /* the least-squares optimum, for reference: solve via many steps and
     * compare with the loss at the normal-equations solution */
    double first = 0, last = 0;
    for (int s = 0; s < 2000; s++) {
        fxp_var *va, *vb, *vw, *r, *l;
        fxp_tape_reset(t);
        fxp_params_zero_grad(ps);
        ck_assert_ok(fxp_tape_input(t, &va, &A, 0));
        ck_assert_ok(fxp_tape_input(t, &vb, &B, 0));
        ck_assert_ok(fxp_tape_param(t, &vw, p));
        ck_assert_ok(fxp_matmul(t, &r, va, vw, 0, 0));
        ck_assert_ok(fxp_sub(t, &r, r, vb));
        ck_assert_ok(fxp_square(t, &r, r));
        ck_assert_ok(fxp_sum(t, &l, r, FXP_AXES_ALL, 0));
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
        ck_assert_ok(fxp_optim_step(o, NULL));
        if (s == 0) first = l->value.data[0];
        last = l->value.data[0];
    }
    /* residual at the optimum: solve the 4x4 normal equations in double */
    double M[4][5] = { { 0 } };
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 6; k++) M[i][j] += (double)ad[k * 4 + i] * ad[k * 4 + j];
        for (int k = 0; k < 6; k++) M[i][4] += (double)ad[k * 4 + i] * bd[k];
    }
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 4; r++)
            if (r != c) {
                double f = M[r][c] / M[c][c];
                for (int k = 0; k < 5; k++) M[r][k] -= f * M[c][k];
            }
    double best = 0;
    for (int k = 0; k < 6; k++) {
        double r = -bd[k];
        for (int i = 0; i < 4; i++) r += ad[k * 4 + i] * M[i][4] / M[i][i];
        best += r * r;
    }
    ck_assert_msg(last < best + 1e-3 * (first - best), "loss %g, optimum %g, start %g", last,
                  best, first);
    fxp_tape_free(t);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

static void big_run(int threads, float *out)
{
    fxp_ctx *ctx = test_ctx(threads);
    fxp_params *ps;
    fxp_param *p;
    int n = 100003;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    ck_assert_ok(fxp_params_add(ps, "w", FXP_PARAM_TRAINABLE, 1, &n, &p));
    test_randn(fxp_param_value(p).data, (size_t)n, 3, 1);
    fxp_optim_config cfg;
    fxp_optim_config_default(&cfg, FXP_OPTIM_ADAM);
    cfg.clip_norm = 10;
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, &cfg, &o));
    double norm[3];
    for (int s = 0; s < 3; s++) {
        test_randn(fxp_param_grad(p), (size_t)n, 10 + s, 1);
        ck_assert_ok(fxp_optim_step(o, &norm[s]));
    }
    memcpy(out, fxp_param_value(p).data, (size_t)n * sizeof(float));
    memcpy(out + n, norm, sizeof norm);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}

START_TEST(test_thread_independent)
{
    size_t bytes = 100003 * sizeof(float) + 3 * sizeof(double);
    float *a = malloc(bytes), *b = malloc(bytes);
    big_run(1, a);
    big_run(2, b);
    ck_assert_mem_eq(a, b, bytes);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    const float w0[2] = { 1, 2 };
    fxp_param *p;
    fxp_params *ps = params_with(ctx, 2, w0, &p);
    fxp_optim *o;
    fxp_optim_config c, d;
    fxp_optim_config_default(&d, FXP_OPTIM_ADAM);
    c = d; c.lr = 0;
    ck_assert_fails(fxp_optim_new(ctx, ps, &c, &o), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "lr"));
    c = d; c.beta1 = 1;
    ck_assert_fails(fxp_optim_new(ctx, ps, &c, &o), FXP_EINVAL, ctx);
    c = d; c.beta2 = -0.1;
    ck_assert_fails(fxp_optim_new(ctx, ps, &c, &o), FXP_EINVAL, ctx);
    c = d; c.eps = 0;
    ck_assert_fails(fxp_optim_new(ctx, ps, &c, &o), FXP_EINVAL, ctx);
    c = d; c.weight_decay = -1;
    ck_assert_fails(fxp_optim_new(ctx, ps, &c, &o), FXP_EINVAL, ctx);
    c = d; c.clip_norm = NAN;
    ck_assert_fails(fxp_optim_new(ctx, ps, &c, &o), FXP_EINVAL, ctx);
    c = d; c.warmup = FXP_WARMUP_LINEAR; c.warmup_units = 0;
    ck_assert_fails(fxp_optim_new(ctx, ps, &c, &o), FXP_EINVAL, ctx);
    c = d; c.decay = 1.5;
    ck_assert_fails(fxp_optim_new(ctx, ps, &c, &o), FXP_EINVAL, ctx);
    c = d; c.unit = 0;
    ck_assert_fails(fxp_optim_new(ctx, ps, &c, &o), FXP_EINVAL, ctx);
    ck_assert_ok(fxp_optim_new(ctx, ps, &d, &o));
    /* a non-finite gradient leaves everything as it was */
    fxp_param_grad(p)[0] = 1;
    fxp_param_grad(p)[1] = NAN;
    ck_assert_fails(fxp_optim_step(o, NULL), FXP_ENUMERIC, ctx);
    ck_assert_float_eq(fxp_param_value(p).data[0], 1.0f);
    ck_assert_float_eq(fxp_optim_m(o)[0], 0.0f);
    ck_assert_int_eq(fxp_optim_steps(o), 0);
    ck_assert_fails(fxp_optim_set_steps(o, -1), FXP_EINVAL, ctx);
    /* the parameter set may not grow under the optimizer */
    int one = 1;
    ck_assert_ok(fxp_params_add(ps, "late", FXP_PARAM_TRAINABLE, 1, &one, NULL));
    fxp_param_grad(p)[1] = 0;
    ck_assert_fails(fxp_optim_step(o, NULL), FXP_ESTATE, ctx);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_against_torch);
    tcase_add_test(tc, test_hand_computed);
    tcase_add_test(tc, test_schedule);
    tcase_add_test(tc, test_clipping);
    tcase_add_test(tc, test_minimises_least_squares);
    tcase_add_test(tc, test_thread_independent);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(optim_suite)
