/* The public API's guarantees across areas: size limits without overflow,
 * the thread-count bound, non-finite input to the matrix inverses,
 * non-converged raw series, and error messages that name the public
 * function the caller called (never an internal one). */
#include "h5test.h"

#include "flowexp/graphflow.h"

/* ---- sizes ------------------------------------------------------------------------------ */

START_TEST(test_numel_never_wraps)
{
    /* 2^16 x 2^16 x 2^16 x 2^16 is 2^64: it wrapped to 0 */
    const int big[4] = { 65536, 65536, 65536, 65536 };
    fxp_tensor t = fxp_tensor_wrap(NULL, 4, big);
    ck_assert_int_eq(fxp_tensor_numel(&t), -1);
    const int edge[2] = { 1 << 20, 1 << 20 }; /* exactly FXP_MAX_ELEMENTS */
    t = fxp_tensor_wrap(NULL, 2, edge);
    ck_assert_int_eq(fxp_tensor_numel(&t), FXP_MAX_ELEMENTS);
    const int over[2] = { (1 << 20) + 1, 1 << 20 };
    t = fxp_tensor_wrap(NULL, 2, over);
    ck_assert_int_eq(fxp_tensor_numel(&t), -1);
    t.shape[0] = -3;
    ck_assert_int_eq(fxp_tensor_numel(&t), -1);
    t.ndim = 99;
    ck_assert_int_eq(fxp_tensor_numel(&t), -1);
    const int small[3] = { 2, 3, 4 };
    t = fxp_tensor_wrap(NULL, 3, small);
    ck_assert_int_eq(fxp_tensor_numel(&t), 24);
    t = fxp_tensor_wrap(NULL, 0, NULL);
    ck_assert_int_eq(fxp_tensor_numel(&t), 1);
    fxp_tensor a;
    ck_assert_fails(fxp_tensor_alloc(NULL, &a, 4, big), FXP_EINVAL, NULL);
    ck_assert_ptr_null(a.data);
    /* the functions that size their work by numel refuse such a struct */
    float buf[4] = { 0 };
    fxp_tensor w1 = fxp_tensor_wrap(buf, 4, big), w2 = fxp_tensor_wrap(buf, 4, big);
    ck_assert_fails(fxp_tensor_copy(NULL, &w1, &w2), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_tensor_check_finite(NULL, &w1, "w1"), FXP_EINVAL, NULL);
}
END_TEST

/* Huge sizes to the raw-buffer functions are FXP_EINVAL before any buffer
 * is read (the buffers here hold 16 floats: a read past them would crash
 * or trip ASan). */
START_TEST(test_raw_huge_sizes)
{
    float x[16] = { 0 }, y[16] = { 0 }, k[16] = { 0 };
    const int H = 65536;
    ck_assert_fails(fxp_conv_exp(x, y, k, H, H, H, H, 3, 3, 6, 0), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_conv_exp(x, y, k, 1, 2147483647, 1, 1, 1, 1, 6, 0), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_conv_exp(x, y, k, 1, 1, 4096, 4096, 2147483647, 1, 6, 0), FXP_EINVAL,
                    NULL);
    ck_assert_fails(fxp_conv_exp(x, y, k, 1, 1 << 21, 2, 2, 1, 1, 6, 0), FXP_EINVAL, NULL);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "2^40"));
    ck_assert_fails(fxp_graph_conv_exp(x, y, k, k, k, H, H, H, 6, 0), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_graph_conv_exp(x, y, k, k, k, 1, 1 << 21, 1, 6, 0), FXP_EINVAL, NULL);
    ck_assert_fails(fxp_graph_conv_exp(x, y, k, k, k, 1, 2, 1 << 21, 6, 0), FXP_EINVAL, NULL);
    ck_assert(isnan(fxp_conv_exp_logdet(k, 1 << 21, H, H, 3, 3)));
    ck_assert(isnan(fxp_conv_exp_logdet(k, 1 << 16, 1, 1, 1 << 15 | 1, 1 << 15 | 1)));
    ck_assert(isnan(fxp_graph_conv_exp_logdet(k, 3, 1 << 21)));
    for (int i = 0; i < 16; i++) ck_assert(y[i] == 0.0f);
    /* the other functions of expm.h taking sizes */
    fxp_rng r;
    fxp_rng_seed(&r, 1);
        fxp_spectral_init(&r, y, -5);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "fxp_spectral_init: "));
    fxp_spectral_init(&r, y, (int64_t)1 << 62);
    for (int i = 0; i < 16; i++) ck_assert(y[i] == 0.0f);
    /* within the limit but beyond memory: the workspace is reserved first,
     * so this is FXP_ENOMEM, not a read of 2^38 floats from x */
    fxp_ctx *ctx = test_ctx(1);
    ck_assert_fails(fxp_conv_exp_ctx(ctx, x, y, k, 1 << 10, 1 << 8, 1 << 10, 1 << 10, 1, 1, 6, 0),
                    FXP_ENOMEM, ctx);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- threads ---------------------------------------------------------------------------- */

START_TEST(test_thread_bound)
{
    fxp_ctx *ctx = test_ctx(2);
    ck_assert_fails(fxp_ctx_set_threads(ctx, 1000000), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "1000000"));
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "1024"));
    ck_assert_int_eq(fxp_ctx_threads(ctx), 2); /* unchanged */
    ck_assert_fails(fxp_ctx_set_threads(ctx, FXP_MAX_THREADS + 1), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_ctx_set_threads(ctx, 0), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_ctx_set_threads(ctx, -5), FXP_EINVAL, ctx);
    ck_assert_ok(fxp_ctx_set_threads(ctx, FXP_MAX_THREADS));
    ck_assert_int_le(fxp_ctx_threads(ctx), FXP_MAX_THREADS);
    ck_assert_ok(fxp_ctx_set_threads(ctx, 1));
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- matrix inverses -------------------------------------------------------------------- */

START_TEST(test_inverse_non_finite)
{
    fxp_ctx *ctx = test_ctx(1);
    const float bad[3][4] = { { 1, 0, 0, NAN }, { INFINITY, 0, 0, 1 }, { 1, 2, -INFINITY, 3 } };
    float inv[4] = { 7, 7, 7, 7 };
    for (int k = 0; k < 3; k++) {
        ck_assert_fails(fxp_matrix_inverse(ctx, bad[k], inv, 2), FXP_ENUMERIC, ctx);
        ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), k == 0 ? "NaN" : "Inf"));
        for (int i = 0; i < 4; i++) ck_assert(inv[i] == 7.0f);
    }
    /* an inverse beyond float range */
    const float tiny[4] = { 1e-39f, 0, 0, 1e-39f }; /* inverse 1e39 */
    ck_assert_fails(fxp_matrix_inverse(ctx, tiny, inv, 2), FXP_ENUMERIC, ctx);
    const float ok[4] = { 2, 0, 0, 4 };
    ck_assert_ok(fxp_matrix_inverse(ctx, ok, inv, 2));
    ck_assert(inv[0] == 0.5f && inv[3] == 0.25f);
    /* the tape ops */
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    const int shape[2] = { 2, 2 };
    float w[4] = { 1, NAN, 0, 1 };
    fxp_tensor wt = fxp_tensor_wrap(w, 2, shape);
    fxp_var *wv, *out;
    ck_assert_ok(fxp_tape_input(t, &wv, &wt, 1));
    ck_assert_fails(fxp_inverse(t, &out, wv), FXP_ENUMERIC, ctx);
    ck_assert_fails(fxp_logabsdet(t, &out, wv), FXP_ENUMERIC, ctx);
    w[1] = INFINITY;
    ck_assert_fails(fxp_logabsdet(t, &out, wv), FXP_ENUMERIC, ctx);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- convergence of the raw series -------------------------------------------------------- */

/* A kernel scaled x30 returned success with a round-trip error of 4.7e10:
 * now FXP_ECONVERGE, y untouched; the unscaled kernel converges and round
 * trips. */
START_TEST(test_raw_series_convergence)
{
    enum { N = 2, C = 3, H = 5, W = 4, SIZE = N * C * H * W, KS = C * C * 9 };
    float x[SIZE], y[SIZE], z[SIZE], k[KS], k30[KS];
    test_randn(x, SIZE, 1, 1);
    test_randn(k, KS, 2, 0.1f);
    for (int i = 0; i < KS; i++) k30[i] = 30 * k[i];
    ck_assert_ok(fxp_conv_exp(x, y, k, N, C, H, W, 3, 3, 13, 0));
    ck_assert_ok(fxp_conv_exp(y, z, k, N, C, H, W, 3, 3, 13, 1));
    ck_assert_msg(test_rel_err(z, x, SIZE) < 1e-5, "round trip %g", test_rel_err(z, x, SIZE));
    for (int i = 0; i < SIZE; i++) y[i] = 5;
    for (int terms = 6; terms <= 20; terms += 7) {
        ck_assert_fails(fxp_conv_exp(x, y, k30, N, C, H, W, 3, 3, terms, 0), FXP_ECONVERGE, NULL);
        ck_assert_ptr_nonnull(strstr(fxp_last_error(), "not converged"));
        for (int i = 0; i < SIZE; i++) ck_assert(y[i] == 5.0f);
    }
    /* the graph exponential, likewise */
    float adj[9] = { 0, 1, 1, 1, 0, 1, 1, 1, 0 }, t0[4], t1[4], t0b[4], t1b[4], g[2 * 3 * 2], gy[12];
    test_randn(t0, 4, 3, 0.3f);
    test_randn(t1, 4, 4, 0.3f);
    test_randn(g, 12, 5, 1);
    for (int i = 0; i < 4; i++) {
        t0b[i] = 40 * t0[i];
        t1b[i] = 40 * t1[i];
    }
    ck_assert_ok(fxp_graph_conv_exp(g, gy, adj, t0, t1, 2, 3, 2, 13, 0));
    ck_assert_fails(fxp_graph_conv_exp(g, gy, adj, t0b, t1b, 2, 3, 2, 13, 0), FXP_ECONVERGE, NULL);
    /* x = 0 is exact with any map */
    float zero[SIZE] = { 0 };
    ck_assert_ok(fxp_conv_exp(zero, y, k30, N, C, H, W, 3, 3, 6, 0));
    for (int i = 0; i < SIZE; i++) ck_assert(y[i] == 0.0f);
}
END_TEST

/* ---- messages name the public function called ----------------------------------------- */

/* The message (thread's and, if given, the context's) starts with "<func>: "
 * and names no internal function. */
static void assert_named(const char *func, fxp_ctx *ctx)
{
    char want[128];
    snprintf(want, sizeof want, "%s: ", func);
    const char *msgs[2] = { fxp_last_error(), ctx ? fxp_ctx_error(ctx) : fxp_last_error() };
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(!strncmp(msgs[k], want, strlen(want)), "expected \"%s...\", got \"%s\"", want,
                      msgs[k]);
        ck_assert_msg(!strstr(msgs[k], "fxp__"), "internal name in \"%s\"", msgs[k]);
    }
}

#define ASSERT_FAILS_NAMED(func, args, code, ctx)                            \
    do {                                                                     \
        ck_assert_fails(func args, code, ctx);                               \
        assert_named(#func, ctx);                                            \
    } while (0)

static char logged[1024];
static void log_fn(void *user, int level, const char *message)
{
    (void)user;
    if (level == FXP_LOG_ERROR) snprintf(logged, sizeof logged, "%s", message);
}

START_TEST(test_messages_name_public_function)
{
    fxp_ctx *ctx = test_ctx(1);
    float x[24], y[24], k[9], nan_k[9];
    test_randn(x, 24, 1, 1);
    test_randn(k, 9, 2, 0.1f);
    memcpy(nan_k, k, sizeof k);
    nan_k[4] = NAN;
    /* raised in fxp_conv_exp_ctx (called by fxp_conv_exp) */
    ASSERT_FAILS_NAMED(fxp_conv_exp, (x, y, nan_k, 2, 1, 3, 4, 3, 3, 6, 0), FXP_ENUMERIC, NULL);
    /* raised in the shared convolution check */
    ASSERT_FAILS_NAMED(fxp_conv_exp_ctx, (ctx, x, y, k, 2, 1, 3, 4, 2, 2, 6, 0), FXP_EINVAL, ctx);
    /* raised in fxp_graph_normalize (called inside) */
    float isolated[9] = { 0, 1, 0, 1, 0, 0, 0, 0, 0 }, t[4] = { 0.1f, 0, 0, 0.1f };
    ASSERT_FAILS_NAMED(fxp_graph_conv_exp, (x, y, isolated, t, t, 2, 3, 2, 6, 0), FXP_EINVAL, NULL);
    ASSERT_FAILS_NAMED(fxp_graph_conv_exp_ctx, (ctx, x, y, isolated, t, t, 2, 3, 2, 6, 0),
                       FXP_EINVAL, ctx);
    /* raised by the series */
    float k30[9];
    for (int i = 0; i < 9; i++) k30[i] = 300 * k[i];
    ASSERT_FAILS_NAMED(fxp_conv_exp, (x, y, k30, 2, 1, 3, 4, 3, 3, 6, 0), FXP_ECONVERGE, NULL);
    /* files: raised in the HDF5 helpers and static checks */
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    const int shape[1] = { 3 };
    ck_assert_ok(fxp_params_add(ps, "w", FXP_PARAM_TRAINABLE, 1, shape, NULL));
    const fxp_checkpoint c = { ps, NULL, 0, NULL, NULL, 0, NULL, NULL };
    ASSERT_FAILS_NAMED(fxp_checkpoint_save, (ctx, in_dir("no/dir/c.h5"), &c), FXP_EIO, ctx);
    ASSERT_FAILS_NAMED(fxp_checkpoint_load, (ctx, in_dir("missing.h5"), &c), FXP_EIO, ctx);
    const fxp_mog_dataset_config dc = { FXP_MOG4, 1, 4, 2, 2, 4 };
    ck_assert_ok(fxp_mog_dataset_write(ctx, in_dir("d.h5"), &dc, NULL, NULL));
    ASSERT_FAILS_NAMED(fxp_checkpoint_load, (ctx, in_dir("d.h5"), &c), FXP_EFORMAT, ctx);
    char buf[64];
    ASSERT_FAILS_NAMED(fxp_checkpoint_config, (ctx, in_dir("d.h5"), "k", buf, sizeof buf),
                       FXP_EFORMAT, ctx);
    fxp_tensor out;
    ASSERT_FAILS_NAMED(fxp_dataset_read, (ctx, in_dir("missing.h5"), "train", &out), FXP_EIO, ctx);
    ASSERT_FAILS_NAMED(fxp_dataset_read, (ctx, in_dir("d.h5"), "nothing", &out), FXP_ENOTFOUND,
                       ctx);
    write_text(in_dir("text.h5"), "not HDF5");
    ASSERT_FAILS_NAMED(fxp_h5_read_array, (ctx, in_dir("text.h5"), "x", &out), FXP_EFORMAT, ctx);
    ASSERT_FAILS_NAMED(fxp_h5_read_attr, (ctx, in_dir("d.h5"), "nokey", buf, sizeof buf),
                       FXP_ENOTFOUND, ctx);
    /* a model's forward with the wrong feature count: raised in a layer */
    fxp_graph_model_config cfg;
    fxp_graph_model_config_default(&cfg, FXP_GRAPH_MODEL_GNF_GCE);
    cfg.hidden = 8;
    fxp_params *mps;
    ck_assert_ok(fxp_params_new(ctx, &mps));
    fxp_rng rng;
    fxp_rng_seed(&rng, 1);
    fxp_model *m;
    ck_assert_ok(fxp_graph_model_new(ctx, mps, &cfg, &rng, &m));
    fxp_tape *tp;
    ck_assert_ok(fxp_tape_new(ctx, &tp));
    const int xs[3] = { 2, 3, 3 }, as[2] = { 3, 3 };
    float adj[9] = { 0, 1, 1, 1, 0, 1, 1, 1, 0 }, xb[18];
    test_randn(xb, 18, 3, 1);
    fxp_tensor xt = fxp_tensor_wrap(xb, 3, xs), at = fxp_tensor_wrap(adj, 2, as);
    fxp_var *xv, *lp;
    ck_assert_ok(fxp_tape_input(tp, &xv, &xt, 0));
    const fxp_flow_io io = { .training = 1, .adj = &at };
    ASSERT_FAILS_NAMED(fxp_model_log_prob, (m, tp, &io, xv, &lp), FXP_ESHAPE, ctx);
    fxp_var *z, *ld;
    ASSERT_FAILS_NAMED(fxp_flow_forward, (fxp_model_flow(m), tp, &io, xv, &z, &ld), FXP_ESHAPE,
                       ctx);
    /* a bad optimizer configuration (static check) */
    fxp_optim_config oc;
    fxp_optim_config_default(&oc, FXP_OPTIM_ADAM);
    oc.beta1 = 2;
    fxp_optim *o;
    ASSERT_FAILS_NAMED(fxp_optim_new, (ctx, ps, &oc, &o), FXP_EINVAL, ctx);
    /* the log callback sees the same name */
    fxp_ctx_set_log(ctx, log_fn, NULL, FXP_LOG_ERROR);
    logged[0] = '\0';
    ASSERT_FAILS_NAMED(fxp_checkpoint_load, (ctx, in_dir("missing.h5"), &c), FXP_EIO, ctx);
    ck_assert_str_eq(logged, fxp_ctx_error(ctx));
    fxp_tape_free(tp);
    fxp_model_free(m);
    fxp_params_free(mps);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
    tcase_add_test(tc, test_numel_never_wraps);
    tcase_add_test(tc, test_raw_huge_sizes);
    tcase_add_test(tc, test_thread_bound);
    tcase_add_test(tc, test_inverse_non_finite);
    tcase_add_test(tc, test_raw_series_convergence);
    tcase_add_test(tc, test_messages_name_public_function);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(api_suite)
