/* Ops: gradient checks for every op, forward values against references,
 * thread-count determinism, and error paths. */
#include "testutil.h"

/* An owned test tensor filled with N(0, std^2) (or offset to stay positive). */
static fxp_tensor mk(int ndim, const int *shape, uint64_t seed, float std, float shift)
{
    fxp_tensor x;
    ck_assert_ok(fxp_tensor_alloc(NULL, &x, ndim, shape));
    test_randn(x.data, (size_t)fxp_tensor_numel(&x), seed, std);
    for (int64_t i = 0; i < fxp_tensor_numel(&x); i++) x.data[i] += shift;
    return x;
}

/* ---- gradient checks: one callback dispatching on an op id ------------------ */
enum {
    G_ADD, G_SUB, G_MUL, G_DIV, G_SCALE, G_ADDC, G_EXP, G_LOG, G_TANH, G_SIGMOID, G_RELU,
    G_SOFTPLUS, G_SQUARE, G_SUM_FROM1, G_SUM_AXIS1, G_SUM_ALL, G_MEAN_KEEP, G_MEAN_02, G_LSE0,
    G_LSE_LAST, G_MM00, G_MM01, G_MM10, G_MM11, G_LINEAR, G_LINEAR_NOB, G_ADJ_SHARED,
    G_ADJ_PER, G_RESHAPE, G_CAT1, G_CAT_LAST, G_SPLIT1, G_SPLIT_LAST, G_INTERLEAVE, G_SQUEEZE, G_UNSQUEEZE,
    G_FLIP, G_GAUSS, G_GAUSS_NULL
};

static int op_fn(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    const int op = (int)(intptr_t)user;
    fxp_var *a = in[0], *b = in[1], *c = in[2], *p, *q;
    int rc = FXP_OK;
    switch (op) {
    case G_ADD: return fxp_add(t, out, a, b);
    case G_SUB: return fxp_sub(t, out, a, b);
    case G_MUL: return fxp_mul(t, out, a, b);
    case G_DIV: return fxp_div(t, out, a, b);
    case G_SCALE: return fxp_scale(t, out, a, -1.7f);
    case G_ADDC: return fxp_add_scalar(t, out, a, 0.3f);
    case G_EXP: return fxp_exp(t, out, a);
    case G_LOG: return fxp_log(t, out, a);
    case G_TANH: return fxp_tanh(t, out, a);
    case G_SIGMOID: return fxp_sigmoid(t, out, a);
    case G_RELU: return fxp_relu(t, out, a);
    case G_SOFTPLUS: return fxp_softplus(t, out, a);
    case G_SQUARE: return fxp_square(t, out, a);
    case G_SUM_FROM1: return fxp_sum(t, out, a, FXP_AXES_FROM(1), 0);
    case G_SUM_AXIS1: return fxp_sum(t, out, a, FXP_AXIS(1), 0);
    case G_SUM_ALL: return fxp_sum(t, out, a, FXP_AXES_ALL, 0);
    case G_MEAN_KEEP: return fxp_mean(t, out, a, FXP_AXIS(0) | FXP_AXIS(2), 1);
    case G_MEAN_02: return fxp_mean(t, out, a, FXP_AXIS(0) | FXP_AXIS(2), 0);
    case G_LSE0: return fxp_logsumexp(t, out, a, 0, 0);
    case G_LSE_LAST: return fxp_logsumexp(t, out, a, a->value.ndim - 1, 1);
    case G_MM00: return fxp_matmul(t, out, a, b, 0, 0);
    case G_MM01: return fxp_matmul(t, out, a, b, 0, 1);
    case G_MM10: return fxp_matmul(t, out, a, b, 1, 0);
    case G_MM11: return fxp_matmul(t, out, a, b, 1, 1);
    case G_LINEAR: return fxp_linear(t, out, a, b, c);
    case G_LINEAR_NOB: return fxp_linear(t, out, a, b, NULL);
    case G_ADJ_SHARED:
    case G_ADJ_PER: return fxp_adj_matmul(t, out, a, b);
    case G_RESHAPE: {
        int s[2] = { 6, -1 };
        s[1] = (int)(fxp_tensor_numel(&a->value) / 6);
        if ((rc = fxp_reshape(t, &p, a, 2, s)) < 0) return rc;
        return fxp_square(t, out, p); /* nonlinear use so the view matters */
    }
    case G_CAT1: return fxp_concat(t, out, a, b, 1);
    case G_CAT_LAST: return fxp_concat(t, out, a, b, a->value.ndim - 1);
    case G_SPLIT1:
    case G_SPLIT_LAST: {
        int axis = op == G_SPLIT1 ? 1 : a->value.ndim - 1;
        if ((rc = fxp_split(t, &p, &q, a, axis, 1)) < 0) return rc;
        if ((rc = fxp_square(t, &q, q)) < 0) return rc;
        return fxp_concat(t, out, q, p, axis); /* both parts, in swapped order */
    }
    case G_INTERLEAVE: { /* even and odd channels, used differently */
        if ((rc = fxp_split_interleaved(t, &p, &q, a, 1)) < 0) return rc;
        if ((rc = fxp_square(t, &q, q)) < 0) return rc;
        return fxp_concat(t, out, q, p, 1);
    }
    case G_SQUEEZE: return fxp_squeeze2d(t, out, a);
    case G_UNSQUEEZE: return fxp_unsqueeze2d(t, out, a);
    case G_FLIP: return fxp_flip2d(t, out, a);
    case G_GAUSS: return fxp_gaussian_logpdf(t, out, a, b, c);
    case G_GAUSS_NULL: return fxp_gaussian_logpdf(t, out, a, NULL, NULL);
    }
    return FXP_EINVAL;
}

static void gradcheck(int op, int n, fxp_tensor *x0, fxp_tensor *x1, fxp_tensor *x2, double tol)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_tensor dummy;
    int one = 1;
    ck_assert_ok(fxp_tensor_alloc(ctx, &dummy, 1, &one));
    fxp_tensor *inputs[3] = { x0, x1 ? x1 : &dummy, x2 ? x2 : &dummy };
    fxp_gradcheck_result r;
    ck_assert_ok(fxp_gradcheck(ctx, op_fn, (void *)(intptr_t)op, n, inputs, NULL, 0, &r));
    ck_assert_msg(r.max_rel_err < tol,
                  "op %d: rel err %.3g at input %d[%lld]: analytic %.6g numeric %.6g", op,
                  r.max_rel_err, r.worst_input, (long long)r.worst_index, r.worst_analytic,
                  r.worst_numeric);
    fxp_tensor_release(&dummy);
    fxp_ctx_free(ctx);
}

START_TEST(test_grad_binary_broadcast)
{
    int s4[4] = { 2, 3, 4, 5 }, c4[4] = { 1, 3, 1, 1 }, s1[1] = { 3 }, s2[2] = { 2, 3 },
        a3[3] = { 2, 1, 4 }, b2[2] = { 3, 1 };
    struct { int na; const int *sa; int nb; const int *sb; } cases[] = {
        { 4, s4, 4, s4 }, { 4, s4, 4, c4 }, { 4, c4, 4, s4 }, { 2, s2, 1, s1 }, { 3, a3, 2, b2 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int op = G_ADD; op <= G_DIV; op++) {
            fxp_tensor a = mk(cases[k].na, cases[k].sa, 10 + k, 1, 0);
            /* keep divisors away from 0 */
            fxp_tensor b = mk(cases[k].nb, cases[k].sb, 20 + k, 0.3f, op == G_DIV ? 1.5f : 0);
            gradcheck(op, 2, &a, &b, NULL, 1e-2);
            fxp_tensor_release(&a);
            fxp_tensor_release(&b);
        }
}
END_TEST

START_TEST(test_grad_unary)
{
    int s[3] = { 2, 3, 5 };
    for (int op = G_SCALE; op <= G_SQUARE; op++) {
        fxp_tensor a = mk(3, s, 30 + op, 1, op == G_LOG ? 3.0f : 0);
        if (op == G_RELU) /* keep away from the kink at 0 */
            for (int i = 0; i < 30; i++) a.data[i] += a.data[i] > 0 ? 0.1f : -0.1f;
        gradcheck(op, 1, &a, NULL, NULL, 1e-2);
        fxp_tensor_release(&a);
    }
}
END_TEST

START_TEST(test_grad_reductions)
{
    int s[3] = { 3, 4, 5 };
    for (int op = G_SUM_FROM1; op <= G_LSE_LAST; op++) {
        fxp_tensor a = mk(3, s, 40 + op, 1, 0);
        gradcheck(op, 1, &a, NULL, NULL, 1e-2);
        fxp_tensor_release(&a);
    }
}
END_TEST

START_TEST(test_grad_matmul)
{
    int sa[4][2] = { { 3, 4 }, { 3, 4 }, { 4, 3 }, { 4, 3 } };
    int sb[4][2] = { { 4, 5 }, { 5, 4 }, { 4, 5 }, { 5, 4 } };
    for (int k = 0; k < 4; k++) {
        fxp_tensor a = mk(2, sa[k], 50 + k, 1, 0), b = mk(2, sb[k], 60 + k, 1, 0);
        gradcheck(G_MM00 + k, 2, &a, &b, NULL, 1e-2);
        fxp_tensor_release(&a);
        fxp_tensor_release(&b);
    }
    int sx[3] = { 2, 3, 4 }, sw[2] = { 4, 5 }, sbias[1] = { 5 };
    fxp_tensor x = mk(3, sx, 70, 1, 0), w = mk(2, sw, 71, 1, 0), bias = mk(1, sbias, 72, 1, 0);
    gradcheck(G_LINEAR, 3, &x, &w, &bias, 1e-2);
    gradcheck(G_LINEAR_NOB, 2, &x, &w, NULL, 1e-2);
    fxp_tensor_release(&x);
    fxp_tensor_release(&w);
    fxp_tensor_release(&bias);
}
END_TEST

START_TEST(test_grad_adjacency)
{
    int sx[3] = { 3, 4, 2 }, sa[2] = { 4, 4 }, sp[3] = { 3, 4, 4 };
    fxp_tensor x = mk(3, sx, 80, 1, 0), a = mk(2, sa, 81, 1, 0), ap = mk(3, sp, 82, 1, 0);
    gradcheck(G_ADJ_SHARED, 2, &a, &x, NULL, 1e-2);
    gradcheck(G_ADJ_PER, 2, &ap, &x, NULL, 1e-2);
    fxp_tensor_release(&ap);
    fxp_tensor_release(&a);
    fxp_tensor_release(&x);
    /* large enough for the GEMM path (N*N*F >= 4096) */
    int bx[3] = { 2, 16, 20 }, ba[2] = { 16, 16 };
    fxp_tensor X = mk(3, bx, 83, 1, 0), A = mk(2, ba, 84, 0.3f, 0);
    gradcheck(G_ADJ_SHARED, 2, &A, &X, NULL, 1e-2);
    fxp_tensor_release(&A);
    fxp_tensor_release(&X);
}
END_TEST

/* fxp_split_interleaved: x[:, 0::2] and x[:, 1::2]; odd lengths rejected. */
START_TEST(test_split_interleaved)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    float x[2 * 6 * 3];
    for (int i = 0; i < 36; i++) x[i] = (float)i;
    const int s3[3] = { 2, 6, 3 };
    fxp_tensor tx = fxp_tensor_wrap(x, 3, s3);
    fxp_var *vx, *e, *o;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_split_interleaved(t, &e, &o, vx, 1));
    ck_assert_int_eq(e->value.shape[1], 3);
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 3; i++) {
                ck_assert_float_eq(e->value.data[(b * 3 + k) * 3 + i], x[(b * 6 + 2 * k) * 3 + i]);
                ck_assert_float_eq(o->value.data[(b * 3 + k) * 3 + i],
                                   x[(b * 6 + 2 * k + 1) * 3 + i]);
            }
    ck_assert_fails(fxp_split_interleaved(t, &e, &o, vx, 2), FXP_EINVAL, ctx);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_grad_shape_ops)
{
    int s4[4] = { 2, 3, 4, 2 }, t4[4] = { 2, 1, 4, 2 }, u4[4] = { 2, 3, 4, 3 },
        q4[4] = { 2, 8, 2, 3 };
    fxp_tensor a = mk(4, s4, 90, 1, 0), b = mk(4, t4, 91, 1, 0), c = mk(4, u4, 92, 1, 0),
               d = mk(4, q4, 93, 1, 0);
    gradcheck(G_RESHAPE, 1, &a, NULL, NULL, 1e-2);
    gradcheck(G_CAT1, 2, &a, &b, NULL, 1e-2);
    gradcheck(G_CAT_LAST, 2, &a, &c, NULL, 1e-2);
    gradcheck(G_SPLIT1, 1, &a, NULL, NULL, 1e-2);
    gradcheck(G_SPLIT_LAST, 1, &a, NULL, NULL, 1e-2);
    gradcheck(G_INTERLEAVE, 1, &d, NULL, NULL, 1e-2);
    gradcheck(G_SQUEEZE, 1, &a, NULL, NULL, 1e-2);
    gradcheck(G_UNSQUEEZE, 1, &d, NULL, NULL, 1e-2);
    gradcheck(G_FLIP, 1, &c, NULL, NULL, 1e-2);
    fxp_tensor_release(&a);
    fxp_tensor_release(&b);
    fxp_tensor_release(&c);
    fxp_tensor_release(&d);
}
END_TEST

START_TEST(test_grad_gaussian)
{
    int sx[4] = { 2, 3, 2, 2 }, sc[4] = { 1, 3, 1, 1 };
    fxp_tensor x = mk(4, sx, 100, 1, 0), m = mk(4, sc, 101, 1, 0), ls = mk(4, sc, 102, 0.3f, 0);
    gradcheck(G_GAUSS, 3, &x, &m, &ls, 1e-2);
    gradcheck(G_GAUSS_NULL, 1, &x, NULL, NULL, 1e-2);
    fxp_tensor_release(&x);
    fxp_tensor_release(&m);
    fxp_tensor_release(&ls);
}
END_TEST

/* ---- forward values ------------------------------------------------------------ */

static fxp_var *input(fxp_tape *t, fxp_tensor *x)
{
    fxp_var *v;
    ck_assert_ok(fxp_tape_input(t, &v, x, 0));
    return v;
}

START_TEST(test_values)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_var *y, *y2;
    /* squeeze index map on an arange tensor, and its exact inverse */
    int s[4] = { 2, 3, 4, 6 };
    fxp_tensor a = mk(4, s, 1, 1, 0);
    for (int i = 0; i < 144; i++) a.data[i] = (float)i;
    fxp_var *va = input(t, &a);
    ck_assert_ok(fxp_squeeze2d(t, &y, va));
    ck_assert_int_eq(y->value.shape[1], 12);
    ck_assert_int_eq(y->value.shape[2], 2);
    ck_assert_int_eq(y->value.shape[3], 3);
    /* out[n=1, c*4+dy*2+dx = 2*4+1*2+0 = 10, i=1, j=2] = x[1, 2, 3, 4] */
    ck_assert_float_eq(y->value.data[((1 * 12 + 10) * 2 + 1) * 3 + 2],
                       a.data[((1 * 3 + 2) * 4 + 3) * 6 + 4]);
    ck_assert_ok(fxp_unsqueeze2d(t, &y2, y));
    ck_assert_mem_eq(y2->value.data, a.data, 144 * sizeof(float));
    ck_assert_ok(fxp_flip2d(t, &y, va));
    ck_assert_float_eq(y->value.data[0], a.data[23]);
    /* logsumexp without overflow; softplus tails */
    int two[1] = { 2 };
    fxp_tensor big = mk(1, two, 2, 0, 1000);
    ck_assert_ok(fxp_logsumexp(t, &y, input(t, &big), 0, 0));
    ck_assert_float_eq_tol(y->value.data[0], 1000.0f + logf(2.0f), 1e-3f);
    big.data[0] = -100;
    big.data[1] = 100;
    ck_assert_ok(fxp_softplus(t, &y, input(t, &big)));
    ck_assert(y->value.data[0] > 0 && isfinite(y->value.data[0]));
    ck_assert_float_eq_tol(y->value.data[1], 100.0f, 1e-4f);
    ck_assert_ok(fxp_sigmoid(t, &y, input(t, &big)));
    ck_assert(y->value.data[0] >= 0 && y->value.data[1] == 1.0f);
    /* reductions: sum over axis 1 of [2,3] arange = [3, 12]; mean all keepdim */
    int s23[2] = { 2, 3 };
    fxp_tensor m = mk(2, s23, 3, 0, 0);
    for (int i = 0; i < 6; i++) m.data[i] = (float)i;
    ck_assert_ok(fxp_sum(t, &y, input(t, &m), FXP_AXIS(1), 0));
    ck_assert_int_eq(y->value.ndim, 1);
    ck_assert_float_eq(y->value.data[0], 3.0f);
    ck_assert_float_eq(y->value.data[1], 12.0f);
    ck_assert_ok(fxp_mean(t, &y, input(t, &m), FXP_AXES_ALL, 1));
    ck_assert_int_eq(y->value.ndim, 2);
    ck_assert_float_eq(y->value.data[0], 2.5f);
    ck_assert_ok(fxp_sum(t, &y, input(t, &m), FXP_AXIS(0), 0));
    ck_assert_float_eq(y->value.data[2], 7.0f);
    /* gaussian: log N(0; 0, 1) per element */
    ck_assert_ok(fxp_gaussian_logpdf(t, &y, input(t, &m), NULL, NULL));
    ck_assert_float_eq_tol(y->value.data[0], -0.5f * (0 + 1 + 4) - 3 * 0.9189385f, 1e-5f);
    fxp_tensor_release(&a);
    fxp_tensor_release(&big);
    fxp_tensor_release(&m);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- a deliberately wrong backward must be caught ------------------------------ */
static int bad_square_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    fxp_var *x = n->in[0];
    if (x->grad)
        for (int64_t i = 0; i < fxp_tensor_numel(&x->value); i++)
            x->grad[i] += 1.5f * 2.0f * x->value.data[i] * n->out->grad[i];
    return FXP_OK;
}

static int bad_square(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    (void)user;
    fxp_var *x = in[0], *y;
    int rc = fxp_square(t, &y, x); /* correct values, wrong derivative below */
    if (rc < 0) return rc;
    fxp_var *z;
    if ((rc = fxp_tape_var(t, &z, y->value.ndim, y->value.shape)) < 0) return rc;
    memcpy(z->value.data, y->value.data, (size_t)fxp_tensor_numel(&y->value) * sizeof(float));
    if ((rc = fxp_tape_record(t, "bad_square", bad_square_backward, z, 1, &x, NULL)) < 0) return rc;
    *out = z;
    return FXP_OK;
}

START_TEST(test_gradcheck_catches_wrong_backward)
{
    fxp_ctx *ctx = test_ctx(1);
    int s[1] = { 5 };
    fxp_tensor x = mk(1, s, 7, 1, 0);
    fxp_tensor *in[1] = { &x };
    fxp_gradcheck_result r;
    ck_assert_ok(fxp_gradcheck(ctx, bad_square, NULL, 1, in, NULL, 0, &r));
    ck_assert_msg(r.max_rel_err > 0.2, "wrong backward passed: %g", r.max_rel_err);
    fxp_tensor_release(&x);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- same results for 1 and 2 threads ------------------------------------------ */
static void run_big(int threads, float *out_vals, float *out_grad)
{
    fxp_ctx *ctx = test_ctx(threads);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    int s[3] = { 8, 64, 128 }, c[3] = { 1, 64, 1 };
    fxp_tensor x = mk(3, s, 5, 1, 0), w = mk(3, c, 6, 1, 0);
    fxp_var *vx, *vw, *y, *l;
    ck_assert_ok(fxp_tape_input(t, &vx, &x, 1));
    ck_assert_ok(fxp_tape_input(t, &vw, &w, 1));
    ck_assert_ok(fxp_mul(t, &y, vx, vw));
    ck_assert_ok(fxp_tanh(t, &y, y));
    ck_assert_ok(fxp_add(t, &y, y, vx));
    ck_assert_ok(fxp_softplus(t, &y, y));
    ck_assert_ok(fxp_sum(t, &l, y, FXP_AXES_FROM(1), 0));
    ck_assert_ok(fxp_sum(t, &l, l, FXP_AXES_ALL, 0));
    ck_assert_ok(fxp_tape_backward(t, l, NULL));
    memcpy(out_vals, y->value.data, sizeof(float) * 65536);
    memcpy(out_grad, vw->grad, sizeof(float) * 64);
    fxp_tensor_release(&x);
    fxp_tensor_release(&w);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}

START_TEST(test_thread_determinism)
{
    float *v1 = malloc(65536 * sizeof(float)), *v2 = malloc(65536 * sizeof(float));
    float g1[64], g2[64];
    run_big(1, v1, g1);
    run_big(2, v2, g2);
    ck_assert_mem_eq(v1, v2, 65536 * sizeof(float));
    ck_assert_mem_eq(g1, g2, sizeof g1);
    free(v1);
    free(v2);
}
END_TEST

/* ---- errors ---------------------------------------------------------------------- */
START_TEST(test_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    int s23[2] = { 2, 3 }, s24[2] = { 2, 4 }, s4[4] = { 1, 2, 3, 3 }, s3[3] = { 2, 3, 2 };
    fxp_tensor a = mk(2, s23, 1, 1, 0), b = mk(2, s24, 2, 1, 0), im = mk(4, s4, 3, 1, 0),
               g = mk(3, s3, 4, 1, 0);
    fxp_var *va = input(t, &a), *vb = input(t, &b), *vi = input(t, &im), *vg = input(t, &g), *y,
            *y2;
    ck_assert_fails(fxp_add(t, &y, va, vb), FXP_ESHAPE, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "[2,3]"));
    ck_assert_fails(fxp_mul(t, &y, va, NULL), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_matmul(t, &y, va, vb, 0, 0), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_linear(t, &y, va, vb, NULL), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_adj_matmul(t, &y, va, vg), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_adj_matmul(t, &y, va, va), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_concat(t, &y, va, vb, 0), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_concat(t, &y, va, vb, 2), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_split(t, &y, &y2, va, 1, 3), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_split(t, &y, &y2, va, 5, 1), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_squeeze2d(t, &y, vi), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_squeeze2d(t, &y, va), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_unsqueeze2d(t, &y, vi), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_sum(t, &y, va, FXP_AXIS(3), 0), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_logsumexp(t, &y, va, 2, 0), FXP_EINVAL, ctx);
    int bad[1] = { 7 };
    ck_assert_fails(fxp_reshape(t, &y, va, 1, bad), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_gaussian_logpdf(t, &y, va, vb, NULL), FXP_ESHAPE, ctx);
    fxp_tensor_release(&a);
    fxp_tensor_release(&b);
    fxp_tensor_release(&im);
    fxp_tensor_release(&g);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_grad_binary_broadcast);
    tcase_add_test(tc, test_grad_unary);
    tcase_add_test(tc, test_grad_reductions);
    tcase_add_test(tc, test_grad_matmul);
    tcase_add_test(tc, test_grad_adjacency);
    tcase_add_test(tc, test_grad_shape_ops);
    tcase_add_test(tc, test_split_interleaved);
    tcase_add_test(tc, test_grad_gaussian);
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_gradcheck_catches_wrong_backward);
    tcase_add_test(tc, test_thread_determinism);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(ops_suite)
