/* The image flow layers (image.h): normalize, squeeze, flip, actnorm, affine
 * coupling (both conditioners, both scale squashings, with a context) and
 * the split prior — round trips, log-determinants against the brute-force
 * Jacobian, gradients w.r.t. inputs and parameters in both directions,
 * squeeze's index map, data-dependent initialisation, errors. */
#include "flowtest.h"

#define B 2

static fxp_tensor rand_x(float *buf, int c, int h, int w, uint64_t seed, float std)
{
    const int shape[4] = { B, c, h, w };
    test_randn(buf, (size_t)B * c * h * w, seed, std);
    return fxp_tensor_wrap(buf, 4, shape);
}

START_TEST(test_fixed_maps)
{
    fxp_ctx *ctx = test_ctx(1);
    float x[B * 3 * 4 * 6];
    fxp_tensor tx = rand_x(x, 3, 4, 6, 1, 50);
    fxp_flow *f;
    ck_assert_ok(fxp_normalize_new(ctx, "norm", 128, 256, &f));
    flowtest_check(ctx, f, NULL, &tx, 1e-3, 1);
    fxp_flow_check_result r;
    ck_assert_ok(fxp_flow_check(ctx, f, NULL, &tx, 0, &r));
    ck_assert_double_eq_tol(r.logdet, -72 * log(256.0), 1e-3);
    fxp_flow_free(f);
    ck_assert_fails(fxp_normalize_new(ctx, "norm", 0, 0, &f), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_normalize_new(ctx, "norm", NAN, 1, &f), FXP_EINVAL, ctx);
    ck_assert_ok(fxp_squeeze_new(ctx, "sq", &f));
    flowtest_check(ctx, f, NULL, &tx, 1e-4, 0);
    fxp_flow_free(f);
    ck_assert_ok(fxp_flip_new(ctx, "flip", &f));
    flowtest_check(ctx, f, NULL, &tx, 1e-4, 0);
    fxp_flow_free(f);
    fxp_ctx_free(ctx);
}
END_TEST

/* The squeeze layer's exact index map (paper-notes §7.1): z[b, c*4 + dy*2 + dx,
 * i, j] = x[b, c, 2i + dy, 2j + dx]; and the flip's. */
START_TEST(test_squeeze_index_map)
{
    fxp_ctx *ctx = test_ctx(1);
    enum { C = 3, H = 4, W = 6 };
    float x[B * C * H * W];
    for (int i = 0; i < B * C * H * W; i++) x[i] = (float)i;
    const int shape[4] = { B, C, H, W };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
    fxp_flow *sq, *fl;
    fxp_tape *t;
    fxp_var *vx, *z, *ld, *zf, *ldf;
    ck_assert_ok(fxp_squeeze_new(ctx, "sq", &sq));
    ck_assert_ok(fxp_flip_new(ctx, "fl", &fl));
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_flow_forward(sq, t, NULL, vx, &z, &ld));
    ck_assert_ok(fxp_flow_forward(fl, t, NULL, vx, &zf, &ldf));
    ck_assert_int_eq(z->value.shape[1], 4 * C);
    ck_assert_int_eq(z->value.shape[2], H / 2);
    ck_assert_int_eq(z->value.shape[3], W / 2);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    const float v = x[((b * C + c) * H + i) * W + j];
                    const int oc = c * 4 + (i % 2) * 2 + j % 2;
                    ck_assert_float_eq(
                        z->value.data[((b * 4 * C + oc) * (H / 2) + i / 2) * (W / 2) + j / 2], v);
                    ck_assert_float_eq(
                        zf->value.data[((b * C + c) * H + H - 1 - i) * W + W - 1 - j], v);
                }
    ck_assert_float_eq(ld->value.data[0], 0);
    /* odd sizes are rejected */
    const int odd[4] = { B, C, 3, 6 };
    fxp_tensor to = fxp_tensor_wrap(x, 4, odd);
    ck_assert_ok(fxp_tape_input(t, &vx, &to, 0));
    ck_assert_fails(fxp_flow_forward(sq, t, NULL, vx, &z, &ld), FXP_ESHAPE, ctx);
    fxp_tape_free(t);
    fxp_flow_free(sq);
    fxp_flow_free(fl);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_actnorm)
{
    fxp_ctx *ctx = test_ctx(1);
    enum { C = 3, H = 5, W = 4 };
    float x[B * C * H * W];
    fxp_tensor tx = rand_x(x, C, H, W, 3, 2);
    for (int i = 0; i < B * C * H * W; i++) x[i] += (float)(i / (H * W) % C) * 3.0f;
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_flow *f;
    ck_assert_ok(fxp_actnorm_new(ctx, ps, "an", C, &f));
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_var *vx, *z, *ld;
    fxp_flow_io train = { .training = 1 };
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    /* evaluation forwards do not initialise */
    ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
    ck_assert_float_eq(fxp_param_value(fxp_params_find(ps, "an/initialized")).data[0], 0);
    ck_assert_ok(fxp_flow_forward(f, t, &train, vx, &z, &ld));
    ck_assert_float_eq(fxp_param_value(fxp_params_find(ps, "an/initialized")).data[0], 1);
    for (int c = 0; c < C; c++) { /* zero mean, unit (N - 1) variance per channel */
        double s = 0, q = 0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < H * W; i++) s += z->value.data[(b * C + c) * H * W + i];
        s /= B * H * W;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < H * W; i++) {
                const double d = z->value.data[(b * C + c) * H * W + i] - s;
                q += d * d;
            }
        ck_assert_double_eq_tol(s, 0, 1e-5);
        ck_assert_double_eq_tol(q / (B * H * W - 1), 1, 1e-4);
    }
    /* a second training forward keeps the initialisation */
    const float t0 = fxp_param_value(fxp_params_find(ps, "an/translation")).data[0];
    x[0] += 100;
    ck_assert_ok(fxp_flow_forward(f, t, &train, vx, &z, &ld));
    ck_assert_float_eq(fxp_param_value(fxp_params_find(ps, "an/translation")).data[0], t0);
    flowtest_check(ctx, f, NULL, &tx, 1e-3, 1);
    flowtest_grads(ctx, f, NULL, &tx, 0, ps, 100, 1e-2f, 2e-2);
    flowtest_grads(ctx, f, NULL, &tx, 1, ps, 100, 1e-2f, 2e-2);
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    const int bad[4] = { B, C + 1, H, W };
    fxp_tensor tb = fxp_tensor_wrap(x, 4, bad);
    ck_assert_ok(fxp_tape_input(t, &vx, &tb, 0));
    ck_assert_fails(fxp_flow_forward(f, t, NULL, vx, &z, &ld), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_actnorm_new(ctx, ps, "an2", 0, &f), FXP_EINVAL, ctx);
    fxp_flow_free(f);
    fxp_tape_free(t);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* A small coupling of each kind; `ctxc` context channels. */
static fxp_flow *small_coupling(fxp_ctx *ctx, fxp_params *ps, fxp_cond_net net, int gated,
                                fxp_coupling_scale scale, int ctxc, int split)
{
    fxp_image_coupling_opts o;
    fxp_image_coupling_opts_default(&o, 4);
    o.net = net;
    o.intermediate = 5;
    o.depth = 2;
    o.growth = 3;
    o.n_densenets = 2;
    o.gated = gated;
    o.scale = scale;
    o.context = ctxc;
    fxp_rng rng;
    fxp_rng_seed(&rng, 21);
    fxp_flow *f;
    if (split) ck_assert_ok(fxp_split_prior_new(ctx, ps, "sp", &o, &rng, &f));
    else ck_assert_ok(fxp_image_coupling_new(ctx, ps, "cp", &o, &rng, &f));
    return f;
}

START_TEST(test_coupling_identity_at_init)
{
    fxp_ctx *ctx = test_ctx(1);
    float x[B * 4 * 4 * 4];
    fxp_tensor tx = rand_x(x, 4, 4, 4, 5, 1);
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_flow *f = small_coupling(ctx, ps, FXP_COND_DENSE, 1, FXP_SCALE_TANH2, 0, 0);
    fxp_tape *t;
    fxp_var *vx, *z, *ld;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
    for (int i = 0; i < B * 64; i++) ck_assert_float_eq(z->value.data[i], x[i]);
    ck_assert_float_eq(ld->value.data[0], 0);
    /* the names documented in image.h */
    ck_assert_ptr_nonnull(fxp_params_find(ps, "cp/nn/first/w"));
    ck_assert_ptr_nonnull(fxp_params_find(ps, "cp/nn/dense/1/layer/1/w3"));
    ck_assert_ptr_nonnull(fxp_params_find(ps, "cp/nn/dense/0/out/b"));
    ck_assert_ptr_nonnull(fxp_params_find(ps, "cp/nn/last/w"));
    /* gated: the DenseNet's output layer has 3 I channels */
    ck_assert_int_eq(fxp_param_value(fxp_params_find(ps, "cp/nn/dense/0/out/w")).shape[0], 15);
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_coupling_kinds)
{
    fxp_ctx *ctx = test_ctx(1);
    float x[B * 4 * 4 * 4], c[B * 2 * 4 * 4];
    fxp_tensor tx = rand_x(x, 4, 4, 4, 7, 1);
    fxp_tensor tc = rand_x(c, 2, 4, 4, 8, 1);
    const struct { fxp_cond_net net; int gated; fxp_coupling_scale sc; int ctxc; } kinds[] = {
        { FXP_COND_DENSE, 1, FXP_SCALE_TANH2, 0 },
        { FXP_COND_DENSE, 0, FXP_SCALE_TANH2, 2 },
        { FXP_COND_CONV, 0, FXP_SCALE_HALF_TANH, 0 },
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fxp_params *ps;
        ck_assert_ok(fxp_params_new(ctx, &ps));
        fxp_flow *f = small_coupling(ctx, ps, kinds[k].net, kinds[k].gated, kinds[k].sc,
                                     kinds[k].ctxc, 0);
        flowtest_perturb(ps, 100 + k, 0.3f);
        fxp_tape *t;
        fxp_var *vc = NULL;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        if (kinds[k].ctxc) ck_assert_ok(fxp_tape_input(t, &vc, &tc, 0));
        fxp_flow_io io = { .context = vc };
        flowtest_check(ctx, f, &io, &tx, 2e-3, 1);
        flowtest_grads(ctx, f, &io, &tx, 0, ps, 60, 1e-2f, 3e-2);
        flowtest_grads(ctx, f, &io, &tx, 1, ps, 60, 1e-2f, 3e-2);
        if (kinds[k].ctxc) { /* the context is required and must fit */
            fxp_var *vx, *z, *ld;
            ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
            ck_assert_fails(fxp_flow_forward(f, t, NULL, vx, &z, &ld), FXP_EINVAL, ctx);
            fxp_flow_io wrong = { .context = vx };
            ck_assert_fails(fxp_flow_forward(f, t, &wrong, vx, &z, &ld), FXP_ESHAPE, ctx);
        }
        fxp_tape_free(t);
        fxp_flow_free(f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST


/* Memory-saving backpropagation (fxp_tape_set_save_memory): the same
 * gradient bits, a smaller tape. */
START_TEST(test_coupling_save_memory)
{
    fxp_ctx *ctx = test_ctx(2);
    float x[B * 4 * 4 * 4], r[B * 4 * 4 * 4];
    fxp_tensor tx = rand_x(x, 4, 4, 4, 31, 1), tr = rand_x(r, 4, 4, 4, 32, 1);
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_flow *f = small_coupling(ctx, ps, FXP_COND_DENSE, 1, FXP_SCALE_TANH2, 0, 0);
    flowtest_perturb(ps, 33, 0.3f);
    const size_t np = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    float *g[2], *gx[2];
    size_t peak[2];
    for (int save = 0; save < 2; save++) {
        fxp_tape *t;
        fxp_var *vx, *vr, *z, *ld, *l, *s;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        fxp_tape_set_save_memory(t, save);
        ck_assert_int_eq(fxp_tape_save_memory(t), save);
        fxp_params_zero_grad(ps);
        ck_assert_ok(fxp_tape_input(t, &vx, &tx, 1));
        ck_assert_ok(fxp_tape_input(t, &vr, &tr, 0));
        ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
        ck_assert_ok(fxp_mul(t, &l, z, vr));
        ck_assert_ok(fxp_sum(t, &l, l, FXP_AXES_ALL, 0));
        ck_assert_ok(fxp_sum(t, &s, ld, FXP_AXES_ALL, 0));
        ck_assert_ok(fxp_add(t, &l, l, s));
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
        peak[save] = fxp_tape_bytes_peak(t);
        g[save] = malloc(np * 4);
        gx[save] = malloc(sizeof x);
        memcpy(g[save], fxp_params_grad_data(ps), np * 4);
        memcpy(gx[save], vx->grad, sizeof x);
        fxp_tape_free(t);
    }
    ck_assert_mem_eq(g[0], g[1], np * 4);
    ck_assert_mem_eq(gx[0], gx[1], sizeof x);
    ck_assert_msg(peak[1] < peak[0], "tape peak %zu with memory saving, %zu without", peak[1],
                  peak[0]);
    double norm = 0;
    for (size_t i = 0; i < np; i++) norm += fabs(g[0][i]);
    ck_assert_msg(norm > 0, "no gradient reached the parameters");
    for (int i = 0; i < 2; i++) {
        free(g[i]);
        free(gx[i]);
    }
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_split_prior)
{
    fxp_ctx *ctx = test_ctx(1);
    float x[B * 4 * 4 * 4];
    fxp_tensor tx = rand_x(x, 4, 4, 4, 9, 1);
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_flow *f = small_coupling(ctx, ps, FXP_COND_DENSE, 1, FXP_SCALE_TANH2, 0, 1);
    ck_assert_ptr_nonnull(fxp_params_find(ps, "sp/coupling/nn/last/w"));
    flowtest_perturb(ps, 5, 0.3f);
    /* the checked logdet excludes the factored-out density; its Jacobian is
     * that of x -> (z, eps) */
    flowtest_check(ctx, f, NULL, &tx, 2e-3, 1);
    flowtest_grads(ctx, f, NULL, &tx, 0, ps, 60, 1e-2f, 3e-2);
    fxp_tape *t;
    fxp_var *vx, *z, *ld, *xr, *ldr, *xr2, *ldr2;
    fxp_latents lat = { 0 };
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    fxp_flow_io io = { .latents = &lat };
    ck_assert_ok(fxp_flow_forward(f, t, &io, vx, &z, &ld));
    ck_assert_int_eq(lat.n, 1);
    ck_assert_int_eq(z->value.shape[1], 2);
    /* logdet = coupling logdet + log N(eps): the density term is reported */
    double q = 0;
    for (int i = 0; i < 32; i++) q += (double)lat.z[0]->value.data[i] * lat.z[0]->value.data[i];
    ck_assert_double_eq_tol(lat.log_prob[0]->value.data[0], -16 * log(2 * 3.14159265358979) - 0.5 * q,
                            1e-3);
    /* inverse without latents: needs an rng; temperature 0 puts eps at 0 */
    ck_assert_fails(fxp_flow_inverse(f, t, NULL, z, &xr, &ldr), FXP_EINVAL, ctx);
    fxp_rng r1, r2;
    fxp_rng_seed(&r1, 3);
    fxp_rng_seed(&r2, 4);
    fxp_flow_io s1 = { .rng = &r1, .temperature = 0 }, s2 = { .rng = &r2, .temperature = 0 };
    ck_assert_ok(fxp_flow_inverse(f, t, &s1, z, &xr, &ldr));
    ck_assert_ok(fxp_flow_inverse(f, t, &s2, z, &xr2, &ldr2));
    for (int i = 0; i < B * 64; i++) ck_assert_float_eq(xr->value.data[i], xr2->value.data[i]);
    s1.temperature = 1;
    ck_assert_ok(fxp_flow_inverse(f, t, &s1, z, &xr2, &ldr2));
    ck_assert_msg(test_rel_err(xr->value.data, xr2->value.data, B * 64) > 1e-2,
                  "temperature 1 draws nothing");
    s1.temperature = -1;
    ck_assert_fails(fxp_flow_inverse(f, t, &s1, z, &xr2, &ldr2), FXP_EINVAL, ctx);
    /* latents of the wrong shape */
    lat.n = 1;
    lat.z[0] = vx;
    ck_assert_fails(fxp_flow_inverse(f, t, &io, z, &xr2, &ldr2), FXP_ESHAPE, ctx);
    fxp_tape_free(t);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_coupling_options)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_rng rng;
    fxp_rng_seed(&rng, 1);
    fxp_flow *f;
    fxp_image_coupling_opts o;
    fxp_image_coupling_opts_default(&o, 3);
    ck_assert_fails(fxp_image_coupling_new(ctx, ps, "a", &o, &rng, &f), FXP_EINVAL, ctx);
    fxp_image_coupling_opts_default(&o, 4);
    o.depth = 0;
    ck_assert_fails(fxp_image_coupling_new(ctx, ps, "b", &o, &rng, &f), FXP_EINVAL, ctx);
    fxp_image_coupling_opts_default(&o, 4);
    o.context = -1;
    ck_assert_fails(fxp_split_prior_new(ctx, ps, "c", &o, &rng, &f), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_image_coupling_new(ctx, ps, "d", NULL, &rng, &f), FXP_EINVAL, ctx);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *image_suite(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("layers");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fixed_maps);
    tcase_add_test(tc, test_squeeze_index_map);
    tcase_add_test(tc, test_actnorm);
    tcase_add_test(tc, test_coupling_identity_at_init);
    tcase_add_test(tc, test_coupling_kinds);
    tcase_add_test(tc, test_coupling_save_memory);
    tcase_add_test(tc, test_split_prior);
    tcase_add_test(tc, test_coupling_options);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(image_suite)
