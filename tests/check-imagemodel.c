/* The Table-1 image models (imageflow.h) at a tiny size: configuration keys
 * and presets, every layer's round trip and logdet, the whole prior and
 * dequantiser flows against brute-force Jacobians, ELBO gradients, decoding
 * the forward's latents, sampling, and the batched importance-weighted
 * evaluation (IW <= ELBO, K = 1 equal, independent of batch and threads). */
#include "flowtest.h"

/* A tiny model: C x 8 x 8 images, 2 levels of 2 subflows. */
static void tiny_config(fxp_image_model_config *c, const char *preset, int channels, int deq)
{
    ck_assert_ok(fxp_image_model_config_preset(c, preset));
    c->channels = channels;
    c->height = c->width = 8;
    c->subflows = 2;
    c->depth = 1;
    c->growth = 4;
    c->intermediate = 6;
    c->dequantization = deq;
    c->deq_subflows = 2;
    c->context_channels = 4;
    c->context_depth = 1;
    c->context_growth = 3;
}

static fxp_image_model *tiny_model(fxp_ctx *ctx, fxp_params **ps, const char *preset,
                                   int channels, int deq, float perturb)
{
    fxp_image_model_config c;
    tiny_config(&c, preset, channels, deq);
    fxp_rng rng;
    fxp_rng_seed(&rng, 17);
    fxp_image_model *m;
    ck_assert_ok(fxp_params_new(ctx, ps));
    ck_assert_ok(fxp_image_model_new(ctx, *ps, &c, &rng, &m));
    if (perturb > 0) flowtest_perturb(*ps, 99, perturb);
    return m;
}

/* Random integer pixels [n, C, 8, 8]. */
static void rand_pixels(uint8_t *p, size_t n, uint64_t seed)
{
    fxp_rng r;
    fxp_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)fxp_rng_below(&r, 256);
}

START_TEST(test_config_keys)
{
    fxp_image_model_config c, d;
    for (int i = 0; fxp_image_model_preset_name(i); i++)
        ck_assert_ok(fxp_image_model_config_preset(&c, fxp_image_model_preset_name(i)));
    ck_assert_ok(fxp_image_model_config_preset(&c, "flow-1x1"));
    ck_assert_int_eq(c.growth, 64);
    ck_assert_str_eq(c.mixing, "1x1");
    ck_assert_ok(fxp_image_model_config_preset(&c, "flow-convexp"));
    ck_assert_int_eq(c.growth, 63);
    ck_assert_int_eq(c.levels, 2);
    ck_assert_int_eq(c.subflows, 10);
    ck_assert_fails(fxp_image_model_config_preset(&c, "flow-2x2"), FXP_EINVAL, NULL);
    /* every key round-trips through its text form */
    ck_assert_ok(fxp_image_model_config_preset(&d, "flow-1x1"));
    char buf[64];
    for (int i = 0; i < fxp_image_model_config_n_keys(); i++) {
        const char *k = fxp_image_model_config_key(i);
        ck_assert_ptr_nonnull(fxp_image_model_config_key_help(i));
        ck_assert_ok(fxp_image_model_config_get(&c, k, buf, sizeof buf));
        ck_assert_ok(fxp_image_model_config_set(&d, k, buf));
    }
    ck_assert_int_eq(memcmp(&c, &d, sizeof c), 0);
    ck_assert_ptr_null(fxp_image_model_config_key(fxp_image_model_config_n_keys()));
    ck_assert_fails(fxp_image_model_config_set(&c, "nope", "1"), FXP_ENOTFOUND, NULL);
    ck_assert_fails(fxp_image_model_config_set(&c, "mixing", "3x3"), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_image_model_config_set(&c, "levels", "1.5"), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_image_model_config_set(&c, "levels", "0"), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_image_model_config_set(&c, "lr", "x"), FXP_EINVAL, NULL);
    ck_assert_ok(fxp_image_model_config_set(&c, "dequantization", "uniform"));
    ck_assert_int_eq(c.dequantization, FXP_DEQUANT_UNIFORM);
    fxp_ctx *ctx = test_ctx(1);
    ck_assert_ok(fxp_image_model_config_validate(ctx, &c));
    c.height = 10; /* 10 is not a multiple of 4 (two squeezes) */
    ck_assert_fails(fxp_image_model_config_validate(ctx, &c), FXP_EINVAL, ctx);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_structure)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_image_model *m = tiny_model(ctx, &ps, "flow-convexp", 3, FXP_DEQUANT_VARIATIONAL, 0);
    int ls[3];
    fxp_image_model_latent_shape(m, ls);
    /* 3x8x8 -> squeeze 12x4x4 -> split 6x4x4 -> squeeze 24x2x2 */
    ck_assert_int_eq(ls[0], 24);
    ck_assert_int_eq(ls[1], 2);
    fxp_flow *pv = fxp_model_flow(fxp_image_model_prior(m));
    /* normalize, squeeze, mixing, 2 x (coupling, mixing), split, squeeze, 2 x (...) */
    ck_assert_int_eq(fxp_flow_seq_length(pv), 3 + 4 + 2 + 4);
    ck_assert_str_eq(fxp_flow_name(fxp_flow_seq_at(pv, 7)), "pv/flow/7/split");
    ck_assert_ptr_nonnull(fxp_params_find(ps, "pv/flow/2/mixing/kernel"));
    ck_assert_ptr_nonnull(fxp_params_find(ps, "pv/base/log_sigma"));
    ck_assert_ptr_nonnull(fxp_params_find(ps, "qu/context/down/w"));
    ck_assert_ptr_nonnull(fxp_params_find(ps, "qu/base/mean"));
    fxp_flow *q = fxp_image_model_dequantizer(m);
    ck_assert_int_eq(fxp_flow_seq_length(q), 1 + 1 + 2 * 2);
    fxp_image_model_free(m);
    fxp_params_free(ps);
    m = tiny_model(ctx, &ps, "flow-convexp", 1, FXP_DEQUANT_UNIFORM, 0);
    ck_assert_ptr_null(fxp_image_model_dequantizer(m));
    ck_assert_ptr_null(fxp_params_find(ps, "qu/base/mean"));
    fxp_image_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* Each layer of the prior on its actual input, then the whole prior flow
 * and the dequantiser flow with a context. */
START_TEST(test_flows_check)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_image_model *m = tiny_model(ctx, &ps, "flow-convexp", 1, FXP_DEQUANT_VARIATIONAL, 0.05f);
    uint8_t px[2 * 64];
    rand_pixels(px, sizeof px, 3);
    float v[2 * 64];
    for (int i = 0; i < 128; i++) v[i] = px[i] + 0.5f;
    const int shape[4] = { 2, 1, 8, 8 };
    fxp_tensor tv = fxp_tensor_wrap(v, 4, shape);
    fxp_flow *pv = fxp_model_flow(fxp_image_model_prior(m));
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    fxp_var *h, *ld;
    ck_assert_ok(fxp_tape_input(t, &h, &tv, 0));
    for (int i = 0; i < fxp_flow_seq_length(pv); i++) {
        fxp_flow *f = fxp_flow_seq_at(pv, i);
        fxp_flow_check_result r;
        ck_assert_ok(fxp_flow_check(ctx, f, NULL, &h->value, 0, &r));
        ck_assert_msg(r.roundtrip_err < 1e-4 && r.logdet_err < 2e-3 * fmax(1, fabs(r.logdet)),
                      "%s: round trip %g, logdet %g vs %g", fxp_flow_name(f), r.roundtrip_err,
                      r.logdet, r.logdet_brute);
        ck_assert_ok(fxp_flow_forward(f, t, NULL, h, &h, &ld));
    }
    flowtest_check(ctx, pv, NULL, &tv, 2e-2, 1);
    /* the dequantiser's flow g with the context of these images */
    fxp_var *vx, *cx;
    for (int i = 0; i < 128; i++) v[i] = px[i];
    ck_assert_ok(fxp_tape_input(t, &vx, &tv, 0));
    ck_assert_ok(fxp_image_model_context(m, t, vx, &cx));
    ck_assert_int_eq(cx->value.shape[1], 4);
    ck_assert_int_eq(cx->value.shape[2], 4);
    float a[128];
    test_randn(a, 128, 5, 1);
    fxp_tensor ta = fxp_tensor_wrap(a, 4, shape);
    fxp_flow_io io = { .context = cx };
    flowtest_check(ctx, fxp_image_model_dequantizer(m), &io, &ta, 5e-3, 1);
    fxp_tape_free(t);
    fxp_image_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* ELBO gradients w.r.t. parameters, with the dequantisation noise fixed (the
 * rng is copied for every evaluation). */
static fxp_image_model *g_m;
static fxp_tensor g_x;

static double elbo_sum(fxp_ctx *ctx, int backward, fxp_params *ps)
{
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, backward);
    fxp_rng rng;
    fxp_rng_seed(&rng, 8);
    fxp_var *x, *e, *s;
    ck_assert_ok(fxp_tape_input(t, &x, &g_x, 0));
    ck_assert_ok(fxp_image_model_elbo(g_m, t, 0, x, &rng, &e, NULL));
    ck_assert_ok(fxp_sum(t, &s, e, FXP_AXES_ALL, 0));
    const double v = s->value.data[0];
    if (backward) {
        fxp_params_zero_grad(ps);
        ck_assert_ok(fxp_tape_backward(t, s, NULL));
    }
    fxp_tape_free(t);
    return v;
}

START_TEST(test_elbo_gradients)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    g_m = tiny_model(ctx, &ps, "flow-convexp", 1, FXP_DEQUANT_VARIATIONAL, 0.05f);
    uint8_t px[2 * 64];
    float x[128];
    rand_pixels(px, sizeof px, 4);
    for (int i = 0; i < 128; i++) x[i] = px[i];
    const int shape[4] = { 2, 1, 8, 8 };
    g_x = fxp_tensor_wrap(x, 4, shape);
    elbo_sum(ctx, 1, ps);
    const size_t np = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    float *g = malloc(np * sizeof *g), *w = fxp_params_data(ps, FXP_PARAM_TRAINABLE);
    memcpy(g, fxp_params_grad_data(ps), np * sizeof *g);
    double gmax = 0;
    for (size_t i = 0; i < np; i++) gmax = fmax(gmax, fabs(g[i]));
    fxp_rng r;
    fxp_rng_seed(&r, 1);
    int misses = 0, checks = 80;
    for (int k = 0; k < checks; k++) {
        const size_t i = (size_t)fxp_rng_below(&r, np);
        double best = INFINITY;
        for (float h = 1e-2f; h > 1e-4f && best > 0.03; h /= 4) {
            const float w0 = w[i], hh = h * fmaxf(1, fabsf(w0));
            w[i] = w0 + hh;
            const double lp = elbo_sum(ctx, 0, ps);
            w[i] = w0 - hh;
            const double lm = elbo_sum(ctx, 0, ps);
            w[i] = w0;
            const double num = (lp - lm) / (2.0 * hh);
            best = fmin(best, fabs(num - g[i]) / fmax(1e-2 * gmax, fmax(fabs(num), fabs(g[i]))));
        }
        misses += best > 0.03;
    }
    ck_assert_msg(misses <= checks / 20, "%d of %d ELBO parameter gradients off", misses, checks);
    free(g);
    fxp_image_model_free(g_m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* log q(u|x) from the ELBO (sampling direction: z -> a -> u) against the
 * density of the same u through the forward direction:
 *   log q(u) = log N(g(logit u)) + log|dg/da| - sum log(u (1 - u)). */
START_TEST(test_log_q)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_image_model *m = tiny_model(ctx, &ps, "flow-convexp", 1, FXP_DEQUANT_VARIATIONAL, 0.05f);
    uint8_t px[2 * 64];
    float x[128];
    rand_pixels(px, sizeof px, 12);
    for (int i = 0; i < 128; i++) x[i] = px[i];
    const int shape[4] = { 2, 1, 8, 8 }, zs[4] = { 2, 4, 4, 4 };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    fxp_var *vx, *elbo, *lq, *cx, *eps, *mu, *ls, *sg, *z, *a, *lda, *a2, *z2, *ld2, *lpz;
    fxp_rng r;
    fxp_rng_seed(&r, 31);
    fxp_rng r2 = r;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_image_model_elbo(m, t, 0, vx, &r, &elbo, &lq));
    /* the same u, by hand */
    ck_assert_ok(fxp_image_model_context(m, t, vx, &cx));
    ck_assert_ok(fxp_tape_var(t, &eps, 4, zs));
    fxp_rng_normal(&r2, eps->value.data, 128, 0, 1);
    ck_assert_ok(fxp_tape_param(t, &mu, fxp_params_find(ps, "qu/base/mean")));
    ck_assert_ok(fxp_tape_param(t, &ls, fxp_params_find(ps, "qu/base/log_sigma")));
    ck_assert_ok(fxp_exp(t, &sg, ls));
    ck_assert_ok(fxp_mul(t, &z, eps, sg));
    ck_assert_ok(fxp_add(t, &z, z, mu));
    fxp_flow_io io = { .context = cx };
    fxp_flow *g = fxp_image_model_dequantizer(m);
    ck_assert_ok(fxp_flow_inverse(g, t, &io, z, &a, &lda));
    double lsum[2] = { 0, 0 };
    ck_assert_ok(fxp_tape_var(t, &a2, 4, shape));
    for (int i = 0; i < 128; i++) { /* a2 = logit(sigmoid(a)) in double */
        const double u = 1.0 / (1.0 + exp(-(double)a->value.data[i]));
        a2->value.data[i] = (float)log(u / (1 - u));
        lsum[i / 64] += log(u * (1 - u));
    }
    ck_assert_ok(fxp_flow_forward(g, t, &io, a2, &z2, &ld2));
    ck_assert_ok(fxp_gaussian_logpdf(t, &lpz, z2, mu, ls));
    for (int b = 0; b < 2; b++) {
        const double ref = lpz->value.data[b] + ld2->value.data[b] - lsum[b];
        ck_assert_msg(fabs(ref - lq->value.data[b]) < 2e-3 * fmax(1, fabs(ref)),
                      "image %d: log q %g, through the forward %g", b, (double)lq->value.data[b],
                      ref);
    }
    fxp_tape_free(t);
    fxp_image_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* Decoding the forward's latents gives the input back; samples have the
 * data's shape; temperature 0 is deterministic. */
START_TEST(test_decode_and_sample)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_image_model *m = tiny_model(ctx, &ps, "flow-convexp", 3, FXP_DEQUANT_UNIFORM, 0.05f);
    uint8_t px[2 * 192];
    rand_pixels(px, sizeof px, 6);
    float v[2 * 192];
    for (int i = 0; i < 384; i++) v[i] = px[i] + 0.25f;
    const int shape[4] = { 2, 3, 8, 8 };
    fxp_tensor tv = fxp_tensor_wrap(v, 4, shape);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    fxp_model *pv = fxp_image_model_prior(m);
    fxp_latents lat = { 0 };
    fxp_flow_io io = { .latents = &lat };
    fxp_var *vx, *z, *ld, *eps, *mu, *ls, *xr;
    ck_assert_ok(fxp_tape_input(t, &vx, &tv, 0));
    ck_assert_ok(fxp_flow_forward(fxp_model_flow(pv), t, &io, vx, &z, &ld));
    ck_assert_int_eq(lat.n, 1);
    /* eps = (z - mu) / sigma */
    ck_assert_ok(fxp_tape_param(t, &mu, fxp_params_find(ps, "pv/base/mean")));
    ck_assert_ok(fxp_tape_param(t, &ls, fxp_params_find(ps, "pv/base/log_sigma")));
    ck_assert_ok(fxp_sub(t, &eps, z, mu));
    ck_assert_ok(fxp_scale(t, &ls, ls, -1));
    ck_assert_ok(fxp_exp(t, &ls, ls));
    ck_assert_ok(fxp_mul(t, &eps, eps, ls));
    ck_assert_ok(fxp_image_model_decode(m, t, eps, &lat, &xr));
    ck_assert_msg(test_rel_err(xr->value.data, v, 384) < 1e-5, "decode error %g",
                  test_rel_err(xr->value.data, v, 384));
    fxp_var *s1, *s2;
    fxp_rng r1, r2;
    fxp_rng_seed(&r1, 1);
    fxp_rng_seed(&r2, 2);
    ck_assert_ok(fxp_image_model_sample(m, t, 3, 0, &r1, &s1));
    ck_assert_ok(fxp_image_model_sample(m, t, 3, 0, &r2, &s2));
    ck_assert_int_eq(s1->value.shape[0], 3);
    ck_assert_int_eq(s1->value.shape[1], 3);
    ck_assert_int_eq(s1->value.shape[3], 8);
    for (int i = 0; i < 3 * 192; i++) ck_assert_float_eq(s1->value.data[i], s2->value.data[i]);
    ck_assert_ok(fxp_image_model_sample(m, t, 3, 1, &r2, &s2));
    ck_assert_msg(test_rel_err(s1->value.data, s2->value.data, 576) > 1e-3, "T = 1 draws nothing");
    ck_assert_fails(fxp_image_model_sample(m, t, 3, -1, &r2, &s2), FXP_EINVAL, ctx);
    /* wrong shapes are named */
    ck_assert_fails(fxp_image_model_log_density(m, t, 0, z, &ld), FXP_ESHAPE, ctx);
    fxp_tape_free(t);
    fxp_image_model_free(m);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* IW-NLL <= ELBO bound per image (Jensen) and on average; K = 1 equal; the
 * result independent of the batch size and the thread count. */
START_TEST(test_evaluate)
{
    for (int deq = 0; deq < 2; deq++) {
        fxp_ctx *ctx = test_ctx(1);
        fxp_params *ps;
        fxp_image_model *m = tiny_model(ctx, &ps, "flow-convexp", 1, deq, 0.05f);
        enum { N = 5 };
        uint8_t px[N * 64];
        rand_pixels(px, sizeof px, 9);
        fxp_image_eval e1, e4, e4b, e4t;
        ck_assert_ok(fxp_image_model_evaluate(m, px, N, 0, 1, 4, 3, NULL, NULL, &e1));
        ck_assert_double_eq_tol(e1.bpd_iw, e1.bpd_elbo, 1e-9);
        ck_assert_ok(fxp_image_model_evaluate(m, px, N, 0, 4, 7, 3, NULL, NULL, &e4));
        ck_assert_msg(e4.bpd_iw < e4.bpd_elbo, "IW %g not below ELBO %g", e4.bpd_iw, e4.bpd_elbo);
        ck_assert_msg(isfinite(e4.bpd_elbo) && e4.bpd_elbo > 0 && e4.bpd_elbo_stderr > 0,
                      "bpd %g +- %g", e4.bpd_elbo, e4.bpd_elbo_stderr);
        ck_assert_int_eq(e4.n_images, N);
        ck_assert_int_eq(e4.iw_samples, 4);
        ck_assert_ok(fxp_image_model_evaluate(m, px, N, 0, 4, 20, 3, NULL, NULL, &e4b));
        ck_assert_double_eq_tol(e4b.bpd_iw, e4.bpd_iw, 1e-5);
        ck_assert_double_eq_tol(e4b.bpd_elbo, e4.bpd_elbo, 1e-5);
        /* two shards (images 0-1 and 2-4) combine into the whole set's numbers */
        fxp_image_eval a, b, ab;
        ck_assert_ok(fxp_image_model_evaluate(m, px, 2, 0, 4, 7, 3, NULL, NULL, &a));
        ck_assert_ok(fxp_image_model_evaluate(m, px + 2 * 64, 3, 2, 4, 7, 3, NULL, NULL, &b));
        ab = a;
        ab.n_images += b.n_images;
        for (int i = 0; i < 4; i++) ab.sums[i] += b.sums[i];
        fxp_image_eval_finish(&ab);
        ck_assert_double_eq_tol(ab.bpd_iw, e4.bpd_iw, 1e-9);
        ck_assert_double_eq_tol(ab.bpd_elbo, e4.bpd_elbo, 1e-9);
        ck_assert_double_eq_tol(ab.bpd_elbo_stderr, e4.bpd_elbo_stderr, 1e-9);
        ck_assert_ok(fxp_ctx_set_threads(ctx, 2));
        ck_assert_ok(fxp_image_model_evaluate(m, px, N, 0, 4, 7, 3, NULL, NULL, &e4t));
        ck_assert_double_eq_tol(e4t.bpd_iw, e4.bpd_iw, 1e-5);
        /* with uniform noise the first sample's ELBO is the K = 1 value */
        ck_assert_fails(fxp_image_model_evaluate(m, px, 0, 0, 4, 7, 3, NULL, NULL, &e4t), FXP_EINVAL,
                        ctx);
        fxp_image_model_free(m);
        fxp_params_free(ps);
        fxp_ctx_free(ctx);
    }
}
END_TEST

static Suite *imagemodel_suite(void)
{
    Suite *s = suite_create("imagemodel");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_config_keys);
    tcase_add_test(tc, test_structure);
    tcase_add_test(tc, test_flows_check);
    tcase_add_test(tc, test_elbo_gradients);
    tcase_add_test(tc, test_log_q);
    tcase_add_test(tc, test_decode_and_sample);
    tcase_add_test(tc, test_evaluate);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(imagemodel_suite)
