/* Core: context and errors, tensors, RNG, parameters, arena, tape, gradcheck. */
#include "testutil.h"

#include "core/internal.h"

START_TEST(test_status_strings)
{
    ck_assert_str_eq(fxp_strerror(FXP_OK), "success");
    ck_assert_str_eq(fxp_status_name(FXP_ESHAPE), "FXP_ESHAPE");
    ck_assert_str_eq(fxp_strerror(-999), "unknown status");
    for (int s = 0; s >= FXP_STATUS_MIN_; s--) {
        ck_assert_str_ne(fxp_status_name(s), "FXP_UNKNOWN");
        ck_assert_str_ne(fxp_strerror(s), "unknown status");
    }
    ck_assert_str_eq(fxp_version(), FXP_VERSION_STRING);
}
END_TEST

START_TEST(test_ctx_errors_are_per_context)
{
    fxp_ctx *a = test_ctx(1), *b = test_ctx(2);
    ck_assert_int_eq(fxp_ctx_threads(b), 2);
    ck_assert_fails(fxp_ctx_set_threads(a, 0), FXP_EINVAL, a);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(a), "fxp_ctx_set_threads"));
    ck_assert_int_eq(fxp_ctx_status(b), FXP_OK); /* b untouched */
    ck_assert_str_eq(fxp_ctx_error(b), "");
    fxp_ctx_clear_error(a);
    ck_assert_int_eq(fxp_ctx_status(a), FXP_OK);
    /* the convolution algorithm: per context, validated */
    ck_assert_int_eq(fxp_ctx_conv_algo(a), FXP_CONV_AUTO);
    ck_assert_ok(fxp_ctx_set_conv_algo(a, FXP_CONV_DIRECT));
    ck_assert_int_eq(fxp_ctx_conv_algo(a), FXP_CONV_DIRECT);
    ck_assert_int_eq(fxp_ctx_conv_algo(b), FXP_CONV_AUTO);
    ck_assert_fails(fxp_ctx_set_conv_algo(a, (fxp_conv_algo)7), FXP_EINVAL, a);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(a), "unknown convolution algorithm 7"));
    ck_assert_int_eq(fxp_ctx_conv_algo(a), FXP_CONV_DIRECT); /* unchanged */
    ck_assert_fails(fxp_ctx_set_conv_algo(NULL, FXP_CONV_AUTO), FXP_EINVAL, NULL);
    fxp_ctx_clear_error(a);
    fxp_ctx_free(a);
    fxp_ctx_free(b);
    fxp_ctx_free(NULL);
}
END_TEST

static int log_calls;
static void count_log(void *user, int level, const char *msg)
{
    (void)user;
    ck_assert_int_eq(level, FXP_LOG_ERROR);
    ck_assert_ptr_nonnull(strstr(msg, "thread count"));
    log_calls++;
}

START_TEST(test_ctx_log_callback)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_ctx_set_threads(ctx, -3); /* no callback: silent */
    fxp_ctx_set_log(ctx, count_log, NULL, FXP_LOG_INFO);
    fxp_ctx_set_threads(ctx, -3);
    ck_assert_int_eq(log_calls, 1);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_tensor_basics)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_tensor t, v;
    int shape[4] = { 2, 3, 4, 5 };
    ck_assert_ok(fxp_tensor_alloc(ctx, &t, 4, shape));
    ck_assert_int_eq(fxp_tensor_numel(&t), 120);
    for (int i = 0; i < 120; i++) ck_assert_float_eq(t.data[i], 0.0f);
    char buf[64];
    ck_assert_str_eq(fxp_tensor_shape_str(&t, buf, sizeof buf), "[2,3,4,5]");
    int flat[2] = { 6, 20 };
    ck_assert_ok(fxp_tensor_reshape(ctx, &t, &v, 2, flat));
    ck_assert_ptr_eq(v.data, t.data);
    ck_assert_int_eq(v.owns, 0);
    int wrong[2] = { 7, 20 };
    ck_assert_fails(fxp_tensor_reshape(ctx, &t, &v, 2, wrong), FXP_ESHAPE, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "[2,3,4,5]"));
    ck_assert_ok(fxp_tensor_slice0(ctx, &t, &v, 1, 1));
    ck_assert_ptr_eq(v.data, t.data + 60);
    ck_assert_fails(fxp_tensor_slice0(ctx, &t, &v, 1, 2), FXP_EINVAL, ctx);
    int bad[2] = { 3, 0 };
    ck_assert_fails(fxp_tensor_alloc(ctx, &v, 2, bad), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_tensor_alloc(ctx, &v, 6, shape), FXP_EINVAL, ctx);
    t.data[7] = NAN;
    ck_assert_fails(fxp_tensor_check_finite(ctx, &t, "x"), FXP_ENUMERIC, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "index 7"));
    t.data[7] = INFINITY;
    ck_assert_fails(fxp_tensor_check_finite(ctx, &t, "x"), FXP_ENUMERIC, ctx);
    t.data[7] = 1;
    ck_assert_ok(fxp_tensor_check_finite(ctx, &t, "x"));
    fxp_tensor_release(&t);
    fxp_tensor_release(&t); /* idempotent */
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_rng_reproducible_and_resumable)
{
    enum { N = 1000 };
    float a[N], b[N], c[N];
    fxp_rng r1, r2;
    fxp_rng_seed(&r1, 42);
    fxp_rng_normal(&r1, a, N, 0, 1);
    fxp_rng saved = r1; /* the whole state */
    fxp_rng_normal(&r1, b, N, 0, 1);
    fxp_rng_seed(&r2, 42);
    fxp_rng_normal(&r2, c, N, 0, 1);
    ck_assert_mem_eq(a, c, sizeof a);
    r2 = saved;
    fxp_rng_normal(&r2, c, N, 0, 1);
    ck_assert_mem_eq(b, c, sizeof b);
    /* a different seed gives different numbers */
    fxp_rng_seed(&r2, 43);
    fxp_rng_normal(&r2, c, N, 0, 1);
    ck_assert(memcmp(a, c, sizeof a) != 0);
}
END_TEST

START_TEST(test_rng_same_for_any_thread_count)
{
    enum { N = 100003 };
    float *ref = malloc(N * sizeof(float)), *par = malloc(N * sizeof(float));
    fxp_rng a, b;
    fxp_rng_seed(&a, 11);
    fxp_rng_normal(&a, ref, N, 0.5f, 2.0f);
    for (int threads = 1; threads <= 3; threads++) {
        fxp_rng_seed(&b, 11);
        fxp_rng_normal_threads(&b, par, N, 0.5f, 2.0f, threads);
        ck_assert_mem_eq(ref, par, N * sizeof(float));
        ck_assert_uint_eq(b.counter, a.counter);
    }
    free(ref);
    free(par);
}
END_TEST

START_TEST(test_rng_moments)
{
    enum { N = 200000 };
    float *x = malloc(N * sizeof *x);
    fxp_rng r;
    fxp_rng_seed(&r, 7);
    fxp_rng_normal(&r, x, N, 2.0f, 3.0f);
    double m = 0, v = 0;
    for (int i = 0; i < N; i++) m += x[i];
    m /= N;
    for (int i = 0; i < N; i++) v += (x[i] - m) * (x[i] - m);
    v /= N - 1;
    ck_assert_double_eq_tol(m, 2.0, 0.03);
    ck_assert_double_eq_tol(v, 9.0, 0.15);
    fxp_rng_uniform(&r, x, N);
    m = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(x[i] > 0.0f && x[i] < 1.0f);
        m += x[i];
    }
    ck_assert_double_eq_tol(m / N, 0.5, 0.005);
    int perm[10], seen[10] = { 0 };
    for (int i = 0; i < 10; i++) perm[i] = i;
    fxp_rng_shuffle_int(&r, perm, 10);
    for (int i = 0; i < 10; i++) seen[perm[i]]++;
    for (int i = 0; i < 10; i++) ck_assert_int_eq(seen[i], 1);
    for (int i = 0; i < 1000; i++) ck_assert_uint_lt(fxp_rng_below(&r, 7), 7);
    free(x);
}
END_TEST

START_TEST(test_params_registry)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_param *w, *u, *b;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    int s1[2] = { 3, 4 }, s2[1] = { 5 }, s3[1] = { 2 };
    ck_assert_ok(fxp_params_add(ps, "layer0/w", FXP_PARAM_TRAINABLE, 2, s1, &w));
    ck_assert_ok(fxp_params_add(ps, "layer0/u", FXP_PARAM_STATE, 1, s2, &u));
    ck_assert_ok(fxp_params_add(ps, "layer0/b", FXP_PARAM_TRAINABLE, 1, s3, &b));
    ck_assert_uint_eq(fxp_params_size(ps, FXP_PARAM_TRAINABLE), 14);
    ck_assert_uint_eq(fxp_params_size(ps, FXP_PARAM_STATE), 5);
    ck_assert_uint_eq(fxp_param_offset(b), 12);
    ck_assert_ptr_eq(fxp_param_value(b).data, fxp_params_data(ps, FXP_PARAM_TRAINABLE) + 12);
    ck_assert_ptr_eq(fxp_param_grad(b), fxp_params_grad_data(ps) + 12);
    ck_assert_ptr_null(fxp_param_grad(u));
    ck_assert_ptr_eq(fxp_params_find(ps, "layer0/u"), u);
    ck_assert_ptr_null(fxp_params_find(ps, "layer0/x"));
    ck_assert_fails(fxp_params_add(ps, "layer0/w", FXP_PARAM_TRAINABLE, 2, s1, NULL),
                    FXP_EINVAL, ctx);
    ck_assert_fails(fxp_params_add(ps, "bad//name", FXP_PARAM_TRAINABLE, 2, s1, NULL),
                    FXP_EINVAL, ctx);
    ck_assert_fails(fxp_params_add(ps, "x y", FXP_PARAM_TRAINABLE, 2, s1, NULL), FXP_EINVAL, ctx);
    /* growth past the first block keeps values */
    fxp_param_value(w).data[5] = 3.5f;
    char name[32];
    for (int i = 0; i < 300; i++) {
        int big[1] = { 100 };
        snprintf(name, sizeof name, "grow/%d", i);
        ck_assert_ok(fxp_params_add(ps, name, FXP_PARAM_TRAINABLE, 1, big, NULL));
    }
    ck_assert_float_eq(fxp_param_value(w).data[5], 3.5f);
    ck_assert_float_eq(fxp_param_value(fxp_params_find(ps, "grow/299")).data[99], 0.0f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_arena_reuse)
{
    fxp__arena a;
    fxp__arena_init(&a);
    /* step 1 spills over several chunks; after reset one chunk holds it all */
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < 10; i++) ck_assert_ptr_nonnull(fxp__arena_alloc(&a, 700000));
        if (step > 0) ck_assert_int_eq(a.n_chunks, 1);
        fxp__arena_reset(&a);
        ck_assert_uint_eq(a.in_use, 0);
    }
    size_t reserved = fxp__arena_reserved(&a);
    for (int step = 0; step < 100; step++) {
        fxp__arena_mark m = fxp__arena_save(&a);
        char *p = fxp__arena_alloc(&a, 1000);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 64, 0);
        fxp__arena_restore(&a, m);
    }
    ck_assert_uint_eq(fxp__arena_reserved(&a), reserved);
    fxp__arena_destroy(&a);
}
END_TEST

/* The example op from tape.h, and a deliberately broken twin. */
static int scale_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    const float s = *(const float *)n->saved;
    fxp_var *x = n->in[0];
    if (x->grad)
        for (int64_t i = 0; i < fxp_tensor_numel(&x->value); i++) x->grad[i] += s * n->out->grad[i];
    return FXP_OK;
}

static int broken_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    fxp_var *x = n->in[0];
    if (x->grad) /* forgets the factor s */
        for (int64_t i = 0; i < fxp_tensor_numel(&x->value); i++) x->grad[i] += n->out->grad[i];
    return FXP_OK;
}

static int scale_op(fxp_tape *t, fxp_var **out, fxp_var *x, float s, fxp_backward_fn bw)
{
    fxp_var *y;
    int rc = fxp_tape_var(t, &y, x->value.ndim, x->value.shape);
    if (rc < 0) return rc;
    for (int64_t i = 0; i < fxp_tensor_numel(&x->value); i++) y->value.data[i] = s * x->value.data[i];
    if (fxp_tape_needs_grad(t, 1, &x)) {
        float *saved = fxp_tape_alloc(t, sizeof *saved);
        if (!saved) return FXP_ENOMEM;
        *saved = s;
        rc = fxp_tape_record(t, "scale", bw, y, 1, &x, saved);
        if (rc < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}

/* f(x) = 3 * (x scaled by 2) used twice: checks accumulation into x. */
static int twice_fn(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    fxp_backward_fn bw = user ? broken_backward : scale_backward;
    fxp_var *a, *b;
    int rc = scale_op(t, &a, in[0], 2.0f, bw);
    if (rc < 0) return rc;
    rc = scale_op(t, &b, a, 3.0f, bw);
    if (rc < 0) return rc;
    return scale_op(t, out, b, 0.5f, bw);
}

START_TEST(test_tape_backward_and_gradcheck)
{
    fxp_ctx *ctx = test_ctx(1);
    float xd[6];
    test_randn(xd, 6, 1, 1.0f);
    int shape[2] = { 2, 3 };
    fxp_tensor x = fxp_tensor_wrap(xd, 2, shape);
    fxp_tensor *inputs[1] = { &x };
    ck_assert_gradcheck(ctx, twice_fn, NULL, 1, inputs, NULL, 0, 1e-3);
    /* The checker must catch a wrong backward. */
    fxp_gradcheck_result gr;
    ck_assert_ok(fxp_gradcheck(ctx, twice_fn, (void *)1, 1, inputs, NULL, 0, &gr));
    ck_assert_msg(gr.max_rel_err > 0.5, "broken backward not detected: %g", gr.max_rel_err);

    /* no-grad mode records nothing; backward then refuses */
    fxp_tape *t;
    fxp_var *v, *y;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    ck_assert_ok(fxp_tape_input(t, &v, &x, 1));
    ck_assert_ok(twice_fn(t, &v, &y, NULL));
    ck_assert_int_eq(fxp_tape_n_nodes(t), 0);
    ck_assert_fails(fxp_tape_backward(t, y, NULL), FXP_ESTATE, ctx);
    fxp_tape_reset(t);
    fxp_tape_set_grad_enabled(t, 1);
    ck_assert_ok(fxp_tape_input(t, &v, &x, 1));
    ck_assert_ok(twice_fn(t, &v, &y, NULL));
    ck_assert_int_eq(fxp_tape_n_nodes(t), 3);
    ck_assert_fails(fxp_tape_backward(t, y, NULL), FXP_ESHAPE, ctx); /* 6 elements, no seed */
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_tape_param_grads_accumulate)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_params *ps;
    fxp_param *p;
    fxp_tape *t;
    int shape[1] = { 4 };
    ck_assert_ok(fxp_params_new(ctx, &ps));
    ck_assert_ok(fxp_params_add(ps, "w", FXP_PARAM_TRAINABLE, 1, shape, &p));
    for (int i = 0; i < 4; i++) fxp_param_value(p).data[i] = (float)i;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    float seed[4] = { 1, 1, 1, 1 };
    size_t peak = 0;
    for (int step = 0; step < 3; step++) {
        fxp_var *w, *y;
        fxp_tape_reset(t);
        ck_assert_ok(fxp_tape_param(t, &w, p));
        ck_assert_ok(scale_op(t, &y, w, 2.0f, scale_backward));
        ck_assert_ok(fxp_tape_backward(t, y, seed));
        if (step == 1) peak = fxp_tape_bytes_peak(t);
    }
    /* three backward passes without zeroing: 3 * 2 */
    for (int i = 0; i < 4; i++) ck_assert_float_eq(fxp_param_grad(p)[i], 6.0f);
    ck_assert_uint_eq(fxp_tape_bytes_peak(t), peak); /* steady state: no growth */
    fxp_params_zero_grad(ps);
    ck_assert_float_eq(fxp_param_grad(p)[3], 0.0f);
    fxp_tape_free(t);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* dist.h outside mpirun (the MPI runs are check-dist.c): the shard split is
 * pure, and without MPI (or before MPI_Init) no handle can be had. */
START_TEST(test_dist_without_mpi)
{
    fxp_ctx *ctx = test_ctx(1);
    int64_t off, cnt, next = 0;
    for (int r = 0; r < 4; r++) {
        fxp_dist_shard(10, 4, r, &off, &cnt);
        ck_assert_int_eq(off, next);
        ck_assert_int_eq(cnt, r < 2 ? 3 : 2);
        next += cnt;
    }
    ck_assert_int_eq(next, 10);
    fxp_dist *d = (fxp_dist *)1;
    const int comm = 0; /* never read: both failures come first */
    ck_assert_fails(fxp_dist_new(ctx, &comm, &d), fxp_dist_available() ? FXP_ESTATE
                                                                         : FXP_EUNSUPPORTED, ctx);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(fxp_dist_rank(NULL), 0);
    ck_assert_int_eq(fxp_dist_size(NULL), 1);
    fxp_dist_free(NULL);
    if (!fxp_dist_available()) {
        fxp_params *ps;
        ck_assert_ok(fxp_params_new(ctx, &ps));
        double x = 1;
        int failed = 0;
        ck_assert_fails(fxp_dist_grad_mean(NULL, ps), FXP_EUNSUPPORTED, NULL);
        ck_assert_fails(fxp_dist_grad_weighted(NULL, ps, 1), FXP_EUNSUPPORTED, NULL);
        ck_assert_fails(fxp_dist_bcast_params(NULL, ps, 0), FXP_EUNSUPPORTED, NULL);
        ck_assert_fails(fxp_dist_bcast(NULL, &x, 1, FXP_DIST_DOUBLE, 0), FXP_EUNSUPPORTED, NULL);
        ck_assert_fails(fxp_dist_sum(NULL, &x, 1), FXP_EUNSUPPORTED, NULL);
        ck_assert_fails(fxp_dist_params_identical(NULL, ps, &failed), FXP_EUNSUPPORTED, NULL);
        ck_assert_fails(fxp_dist_agree(NULL, 0, &failed), FXP_EUNSUPPORTED, NULL);
        ck_assert_int_eq(failed, -1);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_status_strings);
    tcase_add_test(tc, test_ctx_errors_are_per_context);
    tcase_add_test(tc, test_ctx_log_callback);
    tcase_add_test(tc, test_tensor_basics);
    tcase_add_test(tc, test_rng_reproducible_and_resumable);
    tcase_add_test(tc, test_rng_same_for_any_thread_count);
    tcase_add_test(tc, test_rng_moments);
    tcase_add_test(tc, test_params_registry);
    tcase_add_test(tc, test_arena_reuse);
    tcase_add_test(tc, test_tape_backward_and_gradcheck);
    tcase_add_test(tc, test_tape_param_grads_accumulate);
    tcase_add_test(tc, test_dist_without_mpi);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(core_suite)
