/* Optimizers: Adam/Adamax against torch and hand-computed values, the
 * schedule, clipping, weight decay, a least-squares fit, resuming from saved
 * state, thread-count independence, errors. */
#include "testutil.h"

/* A parameter set holding one trainable vector "w" of n floats set to w0. */
static fxp_params *params_with(fxp_ctx *ctx, int n, const float *w0, fxp_param **p)
{
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    ck_assert_ok(fxp_params_add(ps, "w", FXP_PARAM_TRAINABLE, 1, &n, p));
    memcpy(fxp_param_value(*p).data, w0, (size_t)n * sizeof(float));
    return ps;
}

/* `steps` updates of an n-vector starting at w0 with the gradients
 * grads[s*n .. s*n+n-1]; the final values go to w, the reported norms (if
 * non-NULL) to norms[s]. */
static void run_steps(const fxp_optim_config *cfg, int n, const float *w0, int steps,
                      const float *grads, float *w, double *norms)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_param *p;
    fxp_params *ps = params_with(ctx, n, w0, &p);
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, cfg, &o));
    for (int s = 0; s < steps; s++) {
        memcpy(fxp_param_grad(p), grads + (size_t)s * n, (size_t)n * sizeof(float));
        ck_assert_ok(fxp_optim_step(o, norms ? &norms[s] : NULL));
    }
    ck_assert_int_eq(fxp_optim_steps(o), steps);
    memcpy(w, fxp_param_value(p).data, (size_t)n * sizeof(float));
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}

/* max_i |a_i - b_i| over n floats */
static double max_abs_diff(const float *a, const float *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* The three gradients used by the torch references below. */
static const float torch_w0[3] = { 0.5f, -1.0f, 2.0f };
static const float torch_g[3][3] = {
    { 0.1f, -0.2f, 0.3f }, { 0.05f, 0.4f, -0.1f }, { -0.3f, 0.0f, 0.2f }
};

/* Reference values from torch 1.13 (float64), rerun with /usr/bin/python3:
 *   import torch
 *   gs = [[0.1,-0.2,0.3],[0.05,0.4,-0.1],[-0.3,0.0,0.2]]
 *   def run(opt, clip=None, sched=False, **kw):
 *       p = torch.tensor([0.5,-1.0,2.0], dtype=torch.float64, requires_grad=True)
 *       o = opt([p], **kw)
 *       s = torch.optim.lr_scheduler.LambdaLR(o, lambda e: min(1.0,(e+1)/2)*0.9**e)
 *       for g in gs:
 *           p.grad = torch.tensor(g, dtype=torch.float64)
 *           if clip: torch.nn.utils.clip_grad_norm_([p], clip)
 *           o.step()
 *           if sched: s.step()
 *       return p.tolist()
 *   run(torch.optim.Adam,   lr=0.01, betas=(0.9,0.99),  eps=1e-7)
 *   run(torch.optim.Adamax, lr=0.01, betas=(0.9,0.999), eps=1e-7)
 *   run(torch.optim.Adam,   clip=0.38, sched=True, lr=0.05, betas=(0.8,0.95),
 *       eps=1e-6, weight_decay=0.1)                 # and the same with Adamax
 * The second pair clips step 2 only (norms 0.374, 0.415, 0.361) and uses
 * lr_t = 0.05 min(1, t/2) 0.9^(t-1), i.e. linear warm-up over 2 units and
 * decay 0.9 per unit, unit = 1 step. */
START_TEST(test_against_torch)
{
    const float plain[2][3] = { { 0.48412556007741797f, -0.996488668914756f, 1.9799499574580806f },
                                { 0.48476444121510553f, -0.9947231373236648f, 1.9826639238472665f } };
    const float full[2][3] = { { 0.4399293441215041f, -0.9722373946796563f, 1.903793421734758f },
                               { 0.4431364202852121f, -0.9729014711212359f, 1.9189549130976735f } };
    const double torch_norms[3] = { 0.37416573867739417, 0.4153311931459038, 0.36055512754639896 };
    for (int kind = 0; kind < 2; kind++) {
        fxp_optim_config c;
        float w[3];
        double norms[3];
        fxp_optim_config_default(&c, (fxp_optim_kind)kind);
        c.lr = 0.01;
        c.beta2 = kind == FXP_OPTIM_ADAM ? 0.99 : 0.999;
        c.eps = 1e-7;
        run_steps(&c, 3, torch_w0, 3, &torch_g[0][0], w, NULL);
        ck_assert_msg(max_abs_diff(w, plain[kind], 3) < 2e-6, "kind %d: plain differs by %g",
                      kind, max_abs_diff(w, plain[kind], 3));

        fxp_optim_config_default(&c, (fxp_optim_kind)kind);
        c.lr = 0.05;
        c.beta1 = 0.8;
        c.beta2 = 0.95;
        c.eps = 1e-6;
        c.weight_decay = 0.1;
        c.clip_norm = 0.38;
        c.warmup = FXP_WARMUP_LINEAR;
        c.warmup_units = 2;
        c.decay = 0.9;
        run_steps(&c, 3, torch_w0, 3, &torch_g[0][0], w, norms);
        ck_assert_msg(max_abs_diff(w, full[kind], 3) < 2e-6, "kind %d: clipped/decayed differs by %g",
                      kind, max_abs_diff(w, full[kind], 3));
        for (int s = 0; s < 3; s++) ck_assert_double_eq_tol(norms[s], torch_norms[s], 1e-7);
    }
}
END_TEST

/* Adam and Adamax over 3 parameters for 3 steps, against the formulas of
 * optim.h evaluated in double: betas (0.8, 0.95), eps 1e-3 (large enough to
 * matter), weight decay 0.05, linear warm-up over 2 steps and decay 0.9 per
 * step.  Gradients that drop to 0 make Adamax's max pick the decayed b2 u. */
START_TEST(test_hand_computed)
{
    const double b1 = 0.8, b2 = 0.95, eps = 1e-3, wd = 0.05, lr = 0.1;
    const float w0[3] = { 1.0f, -0.5f, 0.25f };
    const float g[3][3] = { { 1.0f, -0.5f, 2.0f }, { -2.0f, 0.25f, 0.0f }, { 0.5f, 0.0f, 0.0f } };
    for (int kind = 0; kind < 2; kind++) {
        fxp_ctx *ctx = test_ctx(1);
        fxp_param *p;
        fxp_params *ps = params_with(ctx, 3, w0, &p);
        fxp_optim_config cfg;
        fxp_optim_config_default(&cfg, (fxp_optim_kind)kind);
        cfg.lr = lr;
        cfg.beta1 = b1;
        cfg.beta2 = b2;
        cfg.eps = eps;
        cfg.weight_decay = wd;
        cfg.warmup = FXP_WARMUP_LINEAR;
        cfg.warmup_units = 2;
        cfg.decay = 0.9;
        fxp_optim *o;
        ck_assert_ok(fxp_optim_new(ctx, ps, &cfg, &o));
        double w[3] = { w0[0], w0[1], w0[2] }, m[3] = { 0 }, v[3] = { 0 };
        for (int s = 1; s <= 3; s++) {
            const double lr_t = lr * fmin(1.0, s / 2.0) * pow(0.9, s - 1);
            ck_assert_double_eq_tol(fxp_optim_lr(o), lr_t, 1e-15);
            memcpy(fxp_param_grad(p), g[s - 1], sizeof g[s - 1]);
            ck_assert_ok(fxp_optim_step(o, NULL));
            for (int i = 0; i < 3; i++) {
                const double gi = g[s - 1][i] + wd * w[i];
                m[i] = b1 * m[i] + (1 - b1) * gi;
                if (kind == FXP_OPTIM_ADAM) {
                    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                    w[i] -= lr_t * (m[i] / (1 - pow(b1, s))) / (sqrt(v[i] / (1 - pow(b2, s))) + eps);
                } else {
                    v[i] = fmax(b2 * v[i], fabs(gi) + eps);
                    w[i] -= lr_t / (1 - pow(b1, s)) * m[i] / v[i];
                }
                ck_assert_msg(fabs(fxp_param_value(p).data[i] - w[i]) < 1e-6,
                              "kind %d step %d w[%d] = %.9g, want %.9g", kind, s, i,
                              fxp_param_value(p).data[i], w[i]);
                ck_assert_double_eq_tol(fxp_optim_m(o)[i], m[i], 1e-6 * fmax(1, fabs(m[i])));
                ck_assert_double_eq_tol(fxp_optim_v(o)[i], v[i], 1e-6 * fmax(1, fabs(v[i])));
            }
        }
        if (kind == FXP_OPTIM_ADAMAX) /* the max took b2 u for the zero gradients */
            ck_assert_double_eq_tol(v[2], pow(b2, 2) * (2.0 + wd * w0[2] + eps), 1e-12);
        ck_assert_int_eq(fxp_optim_steps(o), 3);
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
    ck_assert_double_eq(c.lr, 2e-3);
    ck_assert_double_eq(c.eps, 1e-7);
    ck_assert_double_eq(fxp_optim_schedule(&c, 1), 2e-3);
    ck_assert_double_eq(fxp_optim_schedule(&c, 100000), 2e-3);
    /* Table 1: epoch e uses min(1, (e+1)/10) 0.995^e; 50 steps per epoch,
     * step t is in epoch (t-1)/50 */
    c.lr = 1e-3;
    c.warmup = FXP_WARMUP_LINEAR;
    c.warmup_units = 10;
    c.decay = 0.995;
    c.unit = 50;
    for (int e = 0; e < 30; e += 3) {
        double want = 1e-3 * fmin(1.0, (e + 1) / 10.0) * pow(0.995, e);
        ck_assert_double_eq_tol(fxp_optim_schedule(&c, (int64_t)e * 50 + 1), want, 1e-15);
        ck_assert_double_eq_tol(fxp_optim_schedule(&c, (int64_t)e * 50 + 50), want, 1e-15);
    }
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 1), 1e-4, 1e-18);
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 51), 2e-4 * 0.995, 1e-18);
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 451), 1e-3 * pow(0.995, 9), 1e-18);
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 5001), 1e-3 * pow(0.995, 100), 1e-18);
    /* quadratic: the square of the linear factor */
    c.warmup = FXP_WARMUP_QUADRATIC;
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 1), 1e-3 * 0.01, 1e-18);
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 151), 1e-3 * 0.16 * pow(0.995, 3), 1e-18);
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 300), 1e-3 * 0.36 * pow(0.995, 5), 1e-18);
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 451), 1e-3 * pow(0.995, 9), 1e-18);
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 751), 1e-3 * pow(0.995, 15), 1e-18);
    /* none: decay only, per unit of 1000 steps */
    c.warmup = FXP_WARMUP_NONE;
    c.decay = 0.96;
    c.unit = 1000;
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 1000), 1e-3, 1e-18);
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 1001), 1e-3 * 0.96, 1e-18);
    ck_assert_double_eq_tol(fxp_optim_schedule(&c, 2500), 1e-3 * 0.96 * 0.96, 1e-18);
}
END_TEST

/* The reported norm is the raw one; the parameters move exactly as they do
 * without clipping when the gradients are pre-scaled by clip / (norm + 1e-6)
 * (bitwise), and differently from unclipped gradients. */
START_TEST(test_clipping)
{
    const float g[3][3] = { { 0.3f, 0.4f, -0.2f }, { 3.0f, -4.0f, 1.0f }, { -1.5f, 0.5f, 1.0f } };
    float scaled[3][3];
    double raw[3];
    for (int s = 0; s < 3; s++) {
        raw[s] = sqrt((double)g[s][0] * g[s][0] + (double)g[s][1] * g[s][1] +
                      (double)g[s][2] * g[s][2]);
        const float f = raw[s] > 1.0 ? (float)(1.0 / (raw[s] + 1e-6)) : 1.0f;
        for (int i = 0; i < 3; i++) scaled[s][i] = g[s][i] * f;
    }
    for (int kind = 0; kind < 2; kind++) {
        fxp_optim_config c;
        fxp_optim_config_default(&c, (fxp_optim_kind)kind);
        c.lr = 0.1;
        float clipped[3], prescaled[3], unclipped[3], loose[3];
        double norms[3];
        c.clip_norm = 1.0;
        run_steps(&c, 3, torch_w0, 3, &g[0][0], clipped, norms);
        for (int s = 0; s < 3; s++) ck_assert_double_eq_tol(norms[s], raw[s], 1e-12);
        ck_assert_double_gt(norms[1], 5.0);
        c.clip_norm = 0;
        run_steps(&c, 3, torch_w0, 3, &scaled[0][0], prescaled, NULL);
        run_steps(&c, 3, torch_w0, 3, &g[0][0], unclipped, NULL);
        ck_assert_mem_eq(clipped, prescaled, sizeof clipped);
        ck_assert_msg(max_abs_diff(clipped, unclipped, 3) > 1e-3, "clipping had no effect");
        /* a bound above every norm changes nothing */
        c.clip_norm = 10;
        run_steps(&c, 3, torch_w0, 3, &g[0][0], loose, NULL);
        ck_assert_mem_eq(loose, unclipped, sizeof loose);
    }
    /* the 1e-6 in the factor shows on small gradients: norm 5e-6 clipped to
     * 1e-6 scales by 1e-6 / 6e-6 = 1/6 (not 1/5); m = (1 - b1) g / 6 */
    fxp_optim_config c;
    fxp_optim_config_default(&c, FXP_OPTIM_ADAM);
    c.clip_norm = 1e-6;
    fxp_ctx *ctx = test_ctx(1);
    const float w0[2] = { 0, 0 };
    fxp_param *p;
    fxp_params *ps = params_with(ctx, 2, w0, &p);
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, &c, &o));
    fxp_param_grad(p)[0] = 3e-6f;
    fxp_param_grad(p)[1] = -4e-6f;
    double norm;
    ck_assert_ok(fxp_optim_step(o, &norm));
    ck_assert_double_eq_tol(norm, 5e-6, 1e-12);
    ck_assert_double_eq_tol(fxp_optim_m(o)[0], 0.1 * 3e-6 / 6, 1e-6 * 0.1 * 3e-6 / 6);
    ck_assert_double_eq_tol(fxp_optim_m(o)[1], -0.1 * 4e-6 / 6, 1e-6 * 0.1 * 4e-6 / 6);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_weight_decay)
{
    /* decay wd adds wd * theta to the gradient: bitwise the same as feeding
     * g + wd * theta without decay */
    const float wd = 0.25f;
    for (int kind = 0; kind < 2; kind++) {
        fxp_ctx *ctx = test_ctx(1);
        fxp_param *pa, *pb;
        fxp_params *psa = params_with(ctx, 3, torch_w0, &pa), *psb = params_with(ctx, 3, torch_w0, &pb);
        fxp_optim_config c;
        fxp_optim_config_default(&c, (fxp_optim_kind)kind);
        c.lr = 0.05;
        fxp_optim *oa, *ob;
        ck_assert_ok(fxp_optim_new(ctx, psb, &c, &ob));
        c.weight_decay = wd;
        ck_assert_ok(fxp_optim_new(ctx, psa, &c, &oa));
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < 3; i++) {
                fxp_param_grad(pa)[i] = torch_g[s][i];
                fxp_param_grad(pb)[i] = torch_g[s][i] + wd * fxp_param_value(pb).data[i];
            }
            ck_assert_ok(fxp_optim_step(oa, NULL));
            ck_assert_ok(fxp_optim_step(ob, NULL));
        }
        ck_assert_mem_eq(fxp_param_value(pa).data, fxp_param_value(pb).data, 3 * sizeof(float));
        ck_assert_msg(max_abs_diff(fxp_param_value(pa).data, torch_w0, 3) > 0.1, "no movement");
        /* with a zero gradient, decay alone shrinks every |theta| */
        float prev[3];
        for (int s = 0; s < 5; s++) {
            memcpy(prev, fxp_param_value(pa).data, sizeof prev);
            fxp_params_zero_grad(psa);
            ck_assert_ok(fxp_optim_step(oa, NULL));
            for (int i = 0; i < 3; i++)
                ck_assert_float_lt(fabsf(fxp_param_value(pa).data[i]), fabsf(prev[i]));
        }
        fxp_optim_free(oa);
        fxp_optim_free(ob);
        fxp_params_free(psa);
        fxp_params_free(psb);
        fxp_ctx_free(ctx);
    }
    /* decay is added after clipping and is not clipped; the norm excludes it */
    fxp_ctx *ctx = test_ctx(1);
    const float w0[2] = { 1, 2 };
    fxp_param *p;
    fxp_params *ps = params_with(ctx, 2, w0, &p);
    fxp_optim_config c;
    fxp_optim_config_default(&c, FXP_OPTIM_ADAM);
    c.clip_norm = 1;
    c.weight_decay = 0.5;
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, &c, &o));
    fxp_param_grad(p)[0] = 3;
    fxp_param_grad(p)[1] = 4;
    double norm;
    ck_assert_ok(fxp_optim_step(o, &norm));
    ck_assert_double_eq_tol(norm, 5.0, 1e-12);
    ck_assert_double_eq_tol(fxp_optim_m(o)[0], 0.1 * (3 / (5 + 1e-6) + 0.5), 1e-7);
    ck_assert_double_eq_tol(fxp_optim_m(o)[1], 0.1 * (4 / (5 + 1e-6) + 1.0), 1e-7);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_minimises_least_squares)
{
    /* minimise ||A w - b||^2 (A 6x4, b 6x1) with the tape: the loss must come
     * within 1e-3 of the way from its start to the least-squares optimum */
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
    /* the optimum: Gauss-Jordan on the normal equations [A^T A | A^T b] in
     * double */
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
    ck_assert_double_gt(first - best, 1.0);
    ck_assert_msg(last < best + 1e-3 * (first - best), "loss %g, optimum %g, start %g", last,
                  best, first);
    fxp_tape_free(t);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* Saving m, v and the step count and restoring them into a new optimizer
 * continues bitwise as if never interrupted (the warm-up makes the step
 * count matter). */
START_TEST(test_resume)
{
    for (int kind = 0; kind < 2; kind++) {
        fxp_ctx *ctx = test_ctx(1);
        fxp_param *pa, *pb;
        fxp_params *psa = params_with(ctx, 3, torch_w0, &pa), *psb = params_with(ctx, 3, torch_w0, &pb);
        fxp_optim_config c;
        fxp_optim_config_default(&c, (fxp_optim_kind)kind);
        c.lr = 0.05;
        c.warmup = FXP_WARMUP_QUADRATIC;
        c.warmup_units = 4;
        fxp_optim *oa, *ob, *oc;
        ck_assert_ok(fxp_optim_new(ctx, psa, &c, &oa));
        ck_assert_ok(fxp_optim_new(ctx, psb, &c, &ob));
        for (int s = 0; s < 4; s++) {
            memcpy(fxp_param_grad(pa), torch_g[s % 3], sizeof torch_g[0]);
            ck_assert_ok(fxp_optim_step(oa, NULL));
            if (s == 2) { /* b: checkpoint after 2 steps, resume in a new optimizer */
                ck_assert_ok(fxp_optim_new(ctx, psb, &c, &oc));
                ck_assert_uint_eq(fxp_optim_state_size(oc), 3);
                memcpy(fxp_optim_m(oc), fxp_optim_m(ob), 3 * sizeof(float));
                memcpy(fxp_optim_v(oc), fxp_optim_v(ob), 3 * sizeof(float));
                ck_assert_ok(fxp_optim_set_steps(oc, fxp_optim_steps(ob)));
                ck_assert_double_eq(fxp_optim_lr(oc), fxp_optim_lr(ob));
                fxp_optim_free(ob);
                ob = oc;
            }
            memcpy(fxp_param_grad(pb), torch_g[s % 3], sizeof torch_g[0]);
            ck_assert_ok(fxp_optim_step(ob, NULL));
        }
        ck_assert_int_eq(fxp_optim_steps(ob), 4);
        ck_assert_mem_eq(fxp_param_value(pa).data, fxp_param_value(pb).data, 3 * sizeof(float));
        ck_assert_mem_eq(fxp_optim_m(oa), fxp_optim_m(ob), 3 * sizeof(float));
        ck_assert_mem_eq(fxp_optim_v(oa), fxp_optim_v(ob), 3 * sizeof(float));
        fxp_optim_free(oa);
        fxp_optim_free(ob);
        fxp_params_free(psa);
        fxp_params_free(psb);
        fxp_ctx_free(ctx);
    }
}
END_TEST

#define BIG_N 100003

/* Three steps on BIG_N parameters (clipping active: norms ~316 > 10); writes
 * the parameters, then the three norms, to out. */
static void big_run(int threads, fxp_optim_kind kind, float *out)
{
    fxp_ctx *ctx = test_ctx(threads);
    fxp_params *ps;
    fxp_param *p;
    int n = BIG_N;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    ck_assert_ok(fxp_params_add(ps, "w", FXP_PARAM_TRAINABLE, 1, &n, &p));
    test_randn(fxp_param_value(p).data, (size_t)n, 3, 1);
    fxp_optim_config cfg;
    fxp_optim_config_default(&cfg, kind);
    cfg.clip_norm = 10;
    cfg.weight_decay = 1e-3;
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, &cfg, &o));
    double norm[3];
    for (int s = 0; s < 3; s++) {
        test_randn(fxp_param_grad(p), (size_t)n, 10 + s, 1);
        ck_assert_ok(fxp_optim_step(o, &norm[s]));
    }
    ck_assert_double_gt(norm[0], 10);
    memcpy(out, fxp_param_value(p).data, (size_t)n * sizeof(float));
    memcpy(out + n, norm, sizeof norm);
    fxp_optim_free(o);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}

START_TEST(test_thread_independent)
{
    const size_t bytes = BIG_N * sizeof(float) + 3 * sizeof(double);
    float *a = malloc(bytes), *b = malloc(bytes);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    for (int kind = 0; kind < 2; kind++) {
        big_run(1, (fxp_optim_kind)kind, a);
        big_run(2, (fxp_optim_kind)kind, b);
        ck_assert_mem_eq(a, b, bytes);
    }
    free(a);
    free(b);
}
END_TEST

/* cfg with one field broken must fail with FXP_EINVAL and a message that
 * contains `name`. */
#define CK_BAD_CFG(ctx, ps, cfg, name)                                        \
    do {                                                                     \
        fxp_optim *o_ = NULL;                                                \
        ck_assert_fails(fxp_optim_new((ctx), (ps), &(cfg), &o_), FXP_EINVAL, (ctx)); \
        ck_assert_msg(strstr(fxp_ctx_error(ctx), (name)) != NULL,            \
                      "message \"%s\" does not name %s", fxp_ctx_error(ctx), (name)); \
        ck_assert_ptr_null(o_);                                              \
    } while (0)

START_TEST(test_config_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    const float w0[2] = { 1, 2 };
    fxp_param *p;
    fxp_params *ps = params_with(ctx, 2, w0, &p);
    fxp_optim_config c, d;
    fxp_optim_config_default(&d, FXP_OPTIM_ADAM);
    c = d; c.kind = (fxp_optim_kind)7;          CK_BAD_CFG(ctx, ps, c, "kind");
    c = d; c.lr = 0;                            CK_BAD_CFG(ctx, ps, c, "lr =");
    c = d; c.lr = -1e-3;                        CK_BAD_CFG(ctx, ps, c, "lr =");
    c = d; c.lr = NAN;                          CK_BAD_CFG(ctx, ps, c, "lr =");
    c = d; c.beta1 = 1;                         CK_BAD_CFG(ctx, ps, c, "beta1 =");
    c = d; c.beta1 = -0.1;                      CK_BAD_CFG(ctx, ps, c, "beta1 =");
    c = d; c.beta2 = 1;                         CK_BAD_CFG(ctx, ps, c, "beta2 =");
    c = d; c.beta2 = -0.1;                      CK_BAD_CFG(ctx, ps, c, "beta2 =");
    c = d; c.eps = 0;                           CK_BAD_CFG(ctx, ps, c, "eps =");
    c = d; c.eps = -1e-8;                       CK_BAD_CFG(ctx, ps, c, "eps =");
    c = d; c.weight_decay = -1;                 CK_BAD_CFG(ctx, ps, c, "weight_decay =");
    c = d; c.clip_norm = -1;                    CK_BAD_CFG(ctx, ps, c, "clip_norm =");
    c = d; c.clip_norm = NAN;                   CK_BAD_CFG(ctx, ps, c, "clip_norm =");
    c = d; c.warmup = (fxp_warmup)9;            CK_BAD_CFG(ctx, ps, c, "warmup 9");
    c = d; c.warmup = FXP_WARMUP_LINEAR;    c.warmup_units = 0;  CK_BAD_CFG(ctx, ps, c, "warmup_units =");
    c = d; c.warmup = FXP_WARMUP_QUADRATIC; c.warmup_units = -3; CK_BAD_CFG(ctx, ps, c, "warmup_units =");
    c = d; c.decay = 0;                         CK_BAD_CFG(ctx, ps, c, "decay = 0");
    c = d; c.decay = 1.5;                       CK_BAD_CFG(ctx, ps, c, "decay = 1.5");
    c = d; c.unit = 0;                          CK_BAD_CFG(ctx, ps, c, "unit =");
    /* warmup_units is ignored without a warm-up; decay 1 and clip 0 are valid */
    fxp_optim *o;
    c = d; c.warmup_units = 0; c.decay = 1; c.clip_norm = 0;
    ck_assert_ok(fxp_optim_new(ctx, ps, &c, &o));
    fxp_optim_free(o);
    /* NULL arguments */
    ck_assert_fails(fxp_optim_new(ctx, NULL, &d, &o), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_optim_new(ctx, ps, NULL, &o), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_optim_new(ctx, ps, &d, NULL), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_optim_new(NULL, ps, &d, &o), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_optim_step(NULL, NULL), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_optim_set_steps(NULL, 1), FXP_EINVAL, NULL);
    fxp_optim_free(NULL);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_state_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    const float w0[2] = { 1, 2 };
    fxp_param *p;
    fxp_params *ps = params_with(ctx, 2, w0, &p);
    fxp_optim_config d;
    fxp_optim_config_default(&d, FXP_OPTIM_ADAM);
    fxp_optim *o;
    ck_assert_ok(fxp_optim_new(ctx, ps, &d, &o));
    double norm = 0;
    /* a NaN gradient before any step: nothing moves */
    fxp_param_grad(p)[0] = 1;
    fxp_param_grad(p)[1] = NAN;
    ck_assert_fails(fxp_optim_step(o, &norm), FXP_ENUMERIC, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "gradient norm"));
    ck_assert(isnan(norm));
    ck_assert_mem_eq(fxp_param_value(p).data, w0, sizeof w0);
    ck_assert_float_eq(fxp_optim_m(o)[0], 0.0f);
    ck_assert_float_eq(fxp_optim_v(o)[0], 0.0f);
    ck_assert_int_eq(fxp_optim_steps(o), 0);
    /* an Inf gradient after a good step: parameters, m, v, step unchanged */
    fxp_param_grad(p)[1] = -0.5f;
    ck_assert_ok(fxp_optim_step(o, NULL));
    float w[2], m[2], v[2];
    memcpy(w, fxp_param_value(p).data, sizeof w);
    memcpy(m, fxp_optim_m(o), sizeof m);
    memcpy(v, fxp_optim_v(o), sizeof v);
    const double lr = fxp_optim_lr(o);
    fxp_param_grad(p)[0] = INFINITY;
    ck_assert_fails(fxp_optim_step(o, &norm), FXP_ENUMERIC, ctx);
    ck_assert(isinf(norm));
    ck_assert_mem_eq(fxp_param_value(p).data, w, sizeof w);
    ck_assert_mem_eq(fxp_optim_m(o), m, sizeof m);
    ck_assert_mem_eq(fxp_optim_v(o), v, sizeof v);
    ck_assert_int_eq(fxp_optim_steps(o), 1);
    ck_assert_double_eq(fxp_optim_lr(o), lr);
    /* set_steps */
    ck_assert_fails(fxp_optim_set_steps(o, -1), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "steps = -1"));
    ck_assert_int_eq(fxp_optim_steps(o), 1);
    ck_assert_ok(fxp_optim_set_steps(o, 0));
    ck_assert_int_eq(fxp_optim_steps(o), 0);
    /* the parameter set may not grow under the optimizer */
    int one = 1;
    ck_assert_ok(fxp_params_add(ps, "late", FXP_PARAM_TRAINABLE, 1, &one, NULL));
    p = fxp_params_find(ps, "w");
    fxp_param_grad(p)[0] = 1;
    memcpy(w, fxp_param_value(p).data, sizeof w);
    ck_assert_fails(fxp_optim_step(o, NULL), FXP_ESTATE, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "from 2 to 3"));
    ck_assert_mem_eq(fxp_param_value(p).data, w, sizeof w);
    ck_assert_int_eq(fxp_optim_steps(o), 0);
    ck_assert_uint_eq(fxp_optim_state_size(o), 2);
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
    tcase_add_test(tc, test_weight_decay);
    tcase_add_test(tc, test_minimises_least_squares);
    tcase_add_test(tc, test_resume);
    tcase_add_test(tc, test_thread_independent);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_state_errors);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(optim_suite)
