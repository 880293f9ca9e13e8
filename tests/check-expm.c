/* The exponential of linear maps: equivalent-matrix tests against a double
 * Pade exponential, log-determinants against the explicit Jacobian, inverse
 * round trips, gradients (through spectral normalisation too), equivariance,
 * spectral-norm estimates, adaptive truncation, memory, and the raw-buffer
 * API.  The flow layers built on them are tested in check-expm-layers.c. */
#include "testutil.h"

#include "expm_util.h"
#include "expm/expm_internal.h"
#include "ops/conv_series.h"
#include "ops/conv_tiles.h"

/* ---- equivalent matrices and log-determinants ------------------------------------- */

START_TEST(test_conv_vs_pade_and_logdet)
{
    fxp_ctx *ctx = test_ctx(1);
    const int C = 2, H = 3, W = 4, n = C * H * W;
    for (int pad = 0; pad < 2; pad++) {
        float k[2 * 2 * 9], x[24], y[24];
        test_randn(k, 36, 10 + pad, 0.4f);
        test_randn(x, 24, 20 + pad, 1.0f);
        double *m = malloc(sizeof(double) * n * n), *e = malloc(sizeof(double) * n * n);
        conv_matrix(ctx, k, C, H, W, 3, 3, (fxp_padding)pad, m);
        ref_expm(m, e, n);
        double ref[24];
        for (int i = 0; i < n; i++) {
            ref[i] = 0;
            for (int j = 0; j < n; j++) ref[i] += e[i * n + j] * x[j];
        }
        const int xs[4] = { 1, C, H, W };
        fxp_expm_opts o = fxp_expm_fixed(30);
        fxp_expm_info info;
        /* both convolution algorithms (the direct one fuses the series step) */
        for (int algo = FXP_CONV_IM2COL; algo <= FXP_CONV_DIRECT; algo++) {
            ck_assert_ok(fxp_ctx_set_conv_algo(ctx, (fxp_conv_algo)algo));
            conv_exp_tape(ctx, x, xs, k, 3, 3, (fxp_padding)pad, 0, &o, y, &info);
            ck_assert_int_eq(info.terms, 30);
            ck_assert_msg(max_abs_diff_d(y, ref, n) < 1e-5, "pad %d algo %d: series vs Pade %g",
                          pad, algo, max_abs_diff_d(y, ref, n));
        }
        /* log|det exp(M)| = Tr M = H W sum_c K[c,c,1,1], also for circular padding */
        double trace = 0;
        for (int i = 0; i < n; i++) trace += m[i * n + i];
        const double formula = (double)H * W * (k[(0 * C + 0) * 9 + 4] + k[(1 * C + 1) * 9 + 4]);
        ck_assert_double_eq_tol(trace, formula, 1e-6);
        ck_assert_double_eq_tol(ref_logabsdet(e, n), formula, 1e-6);
        if (pad == 0)
            ck_assert_double_eq_tol(fxp_conv_exp_logdet(k, C, H, W, 3, 3), formula, 1e-6);
        free(m);
        free(e);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* Four cases cover the operator's paths: a random graph (dense products)
 * and a complete graph (the O(N F) path), each with F = 3 (loops for small
 * F) and F = 10 (BLAS). */
START_TEST(test_graph_vs_pade_and_logdet)
{
    enum { N = 5, FMAX = 10, NMAX = N * FMAX };
    for (int c = 0; c < 4; c++) {
        const int complete = c & 1, F = c < 2 ? 3 : 10, n = N * F;
        float adj[N * N], t0[FMAX * FMAX], t1[FMAX * FMAX], x[NMAX], y[NMAX];
        random_graph(adj, N, 1);
        if (complete)
            for (int i = 0; i < N * N; i++) adj[i] = i % (N + 1) ? 1.0f : 0.0f;
        test_randn(t0, (size_t)F * F, 2, 1.2f / (float)F);
        test_randn(t1, (size_t)F * F, 3, 1.2f / (float)F);
        test_randn(x, (size_t)n, 4, 1);
        static double m[NMAX * NMAX], e[NMAX * NMAX];
        double ref[NMAX];
        graph_matrix(adj, t0, t1, N, F, m);
        ref_expm(m, e, n);
        for (int i = 0; i < n; i++) {
            ref[i] = 0;
            for (int j = 0; j < n; j++) ref[i] += e[i * n + j] * x[j];
        }
        ck_assert_ok(fxp_graph_conv_exp(x, y, adj, t0, t1, 1, N, F, 30, 0));
        ck_assert_msg(max_abs_diff_d(y, ref, n) < 1e-5, "case %d: graph series vs Pade %g", c,
                      max_abs_diff_d(y, ref, n));
        const double ld = fxp_graph_conv_exp_logdet(t0, N, F);
        double tr0 = 0;
        for (int i = 0; i < F; i++) tr0 += t0[i * F + i];
        ck_assert_double_eq_tol(ld, N * tr0, 1e-6);
        ck_assert_double_eq_tol(ref_logabsdet(e, n), ld, 1e-5);
        /* the explicit M matches X theta0 + D^-1/2 A D^-1/2 X theta1 entry by entry */
        double deg[N] = { 0 };
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) deg[i] += adj[i * N + j];
        for (int i = 0; i < N; i++)
            for (int a = 0; a < F; a++)
                for (int j = 0; j < N; j++)
                    for (int b = 0; b < F; b++) {
                        double want = (i == j ? t0[b * F + a] : 0) +
                                      adj[i * N + j] / sqrt(deg[i] * deg[j]) * t1[b * F + a];
                        ck_assert_double_eq_tol(m[(i * F + a) * n + j * F + b], want, 1e-6);
                    }
    }
}
END_TEST

START_TEST(test_dense_vs_pade)
{
    fxp_ctx *ctx = test_ctx(1);
    const int d = 6, B = 3;
    float w[36], x[18];
    test_randn(w, 36, 5, 0.5f);
    test_randn(x, 18, 6, 1);
    double m[36], e[36];
    for (int i = 0; i < 36; i++) m[i] = w[i];
    ref_expm(m, e, d);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    int xs[2] = { B, d }, ws[2] = { d, d };
    fxp_tensor tx = fxp_tensor_wrap(x, 2, xs), tw = fxp_tensor_wrap(w, 2, ws);
    fxp_var *vx, *vw, *vy, *vt;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_tape_input(t, &vw, &tw, 0));
    fxp_expm_opts o = fxp_expm_fixed(30);
    ck_assert_ok(fxp_expm_dense(t, &vy, vx, vw, 0, &o, NULL));
    for (int b = 0; b < B; b++)
        for (int i = 0; i < d; i++) {
            double r = 0;
            for (int j = 0; j < d; j++) r += e[i * d + j] * x[b * d + j];
            ck_assert_double_eq_tol(vy->value.data[b * d + i], r, 1e-5);
        }
    ck_assert_ok(fxp_trace(t, &vt, vw));
    ck_assert_double_eq_tol(ref_logabsdet(e, d), vt->value.data[0], 1e-5);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

/* Rectangular kernels, a kernel taller than the image (zero padding), a
 * kernel exactly as tall and wide as the image (circular: the widest that
 * does not wrap onto itself); every diagonal entry of M is the centre tap. */
START_TEST(test_conv_kernel_shapes)
{
    fxp_ctx *ctx = test_ctx(1);
    const struct { int c, h, w, kh, kw; fxp_padding pad; } cs[3] = {
        { 2, 3, 4, 5, 3, FXP_PAD_ZERO },
        { 2, 3, 5, 3, 5, FXP_PAD_CIRCULAR },
        { 3, 2, 3, 1, 3, FXP_PAD_ZERO },
    };
    for (int ci = 0; ci < 3; ci++) {
        const int C = cs[ci].c, H = cs[ci].h, W = cs[ci].w, kh = cs[ci].kh, kw = cs[ci].kw;
        const int n = C * H * W, nk = C * C * kh * kw;
        float k[150], x[30], y[30];
        test_randn(k, (size_t)nk, 200 + ci, 0.3f);
        test_randn(x, (size_t)n, 210 + ci, 1);
        double *m = malloc(sizeof(double) * n * n), *e = malloc(sizeof(double) * n * n), ref[30];
        conv_matrix(ctx, k, C, H, W, kh, kw, cs[ci].pad, m);
        for (int c = 0; c < C; c++)
            for (int p = 0; p < H * W; p++) {
                const int i = c * H * W + p;
                ck_assert_msg(m[i * n + i] == k[((c * C + c) * kh + kh / 2) * kw + kw / 2],
                              "case %d: diagonal entry %d is not the kernel centre", ci, i);
            }
        ref_expm(m, e, n);
        for (int i = 0; i < n; i++) {
            ref[i] = 0;
            for (int j = 0; j < n; j++) ref[i] += e[i * n + j] * x[j];
        }
        const int xs[4] = { 1, C, H, W };
        fxp_expm_opts o = fxp_expm_fixed(25);
        for (int algo = FXP_CONV_IM2COL; algo <= FXP_CONV_DIRECT; algo++) {
            ck_assert_ok(fxp_ctx_set_conv_algo(ctx, (fxp_conv_algo)algo));
            conv_exp_tape(ctx, x, xs, k, kh, kw, cs[ci].pad, 0, &o, y, NULL);
            ck_assert_msg(max_abs_diff_d(y, ref, n) < 1e-5, "case %d algo %d: series vs Pade %g",
                          ci, algo, max_abs_diff_d(y, ref, n));
        }
        ck_assert_ok(fxp_ctx_set_conv_algo(ctx, FXP_CONV_AUTO));
        double centre = 0;
        for (int c = 0; c < C; c++) centre += k[((c * C + c) * kh + kh / 2) * kw + kw / 2];
        ck_assert_double_eq_tol(ref_logabsdet(e, n), (double)H * W * centre, 1e-5);
        if (cs[ci].pad == FXP_PAD_ZERO)
            ck_assert_double_eq_tol(fxp_conv_exp_logdet(k, C, H, W, kh, kw), (double)H * W * centre,
                                    1e-5);
        free(m);
        free(e);
    }
    /* circular with kh > H would put two taps on one pixel: rejected */
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    float x[12], k[18], u[12], v[12];
    test_randn(x, 12, 220, 1);
    test_randn(k, 18, 221, 0.3f);
    int xs[4] = { 1, 2, 2, 3 }, ks[4] = { 2, 2, 3, 1 };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, xs), tk = fxp_tensor_wrap(k, 4, ks);
    fxp_var *vx, *vk, *vy;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_tape_input(t, &vk, &tk, 0));
    ck_assert_fails(fxp_expm_conv(t, &vy, vx, vk, FXP_PAD_CIRCULAR, 0, NULL, NULL), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_spectral_norm_conv(t, &vy, vk, u, v, 2, 3, FXP_PAD_CIRCULAR, 0.9f, 1, NULL),
                    FXP_EINVAL, ctx);
    ck_assert_ok(fxp_expm_conv(t, &vy, vx, vk, FXP_PAD_ZERO, 0, NULL, NULL));
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

/* Per-graph adjacencies: the batch's matrix is block diagonal, one block per
 * graph; each block's exponential has log|det| = N Tr theta0. */
START_TEST(test_graph_per_graph_adjacency)
{
    fxp_ctx *ctx = test_ctx(1);
    const int B = 2, N = 4, F = 2, n = B * N * F;
    float adj[32], ahat[32], t0[4], t1[4], x[16], y[16], e1[16], y1[16];
    random_graph(adj, N, 230);
    random_graph(adj + 16, N, 231);
    int as[3] = { B, N, N };
    fxp_tensor ta = fxp_tensor_wrap(adj, 3, as), tah = fxp_tensor_wrap(ahat, 3, as);
    ck_assert_ok(fxp_graph_normalize(ctx, &ta, &tah, NULL));
    ck_assert(memcmp(ahat, ahat + 16, 16 * sizeof(float)) != 0);
    ahat[1] *= 1.7f; /* asymmetric (the op takes any A_hat), so A_hat^T is told apart */
    ahat[16 + 6] *= 0.5f;
    test_randn(t0, 4, 232, 0.5f);
    test_randn(t1, 4, 233, 0.5f);
    test_randn(x, 16, 234, 1);
    double m[256], e[256], blk[64], ref[16];
    for (int j = 0; j < n; j++) { /* one term: (I + M) e_j */
        memset(e1, 0, sizeof e1);
        e1[j] = 1;
        graph_exp_tape(ctx, e1, B, N, F, ahat, 1, t0, t1, 1, 0, y1);
        for (int i = 0; i < n; i++) m[i * n + j] = y1[i] - (i == j);
    }
    /* M X = X theta0 + A_hat X theta1 entry by entry, zero between graphs */
    for (int r = 0; r < n; r++)
        for (int q = 0; q < n; q++) {
            const int b = r / (N * F), i = r / F % N, a = r % F, j = q / F % N, c = q % F;
            const double want = q / (N * F) != b ? 0.0
                                : (i == j ? t0[c * F + a] : 0.0) +
                                      ahat[(b * N + i) * N + j] * (double)t1[c * F + a];
            ck_assert_double_eq_tol(m[r * n + q], want, 1e-6);
        }
    ref_expm(m, e, n);
    for (int i = 0; i < n; i++) {
        ref[i] = 0;
        for (int j = 0; j < n; j++) ref[i] += e[i * n + j] * x[j];
    }
    graph_exp_tape(ctx, x, B, N, F, ahat, 1, t0, t1, 30, 0, y);
    ck_assert_msg(max_abs_diff_d(y, ref, n) < 1e-5, "series vs Pade %g", max_abs_diff_d(y, ref, n));
    const int g = N * F;
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < g; i++)
            for (int j = 0; j < n; j++) {
                if (j / g == b) blk[i * g + j % g] = e[(b * g + i) * n + j];
                else ck_assert_double_eq_tol(e[(b * g + i) * n + j], 0, 1e-12);
            }
        ck_assert_double_eq_tol(ref_logabsdet(blk, g), N * (double)(t0[0] + t0[3]), 1e-5);
    }
    /* each graph matches the shared-adjacency op on its own */
    for (int b = 0; b < B; b++) {
        graph_exp_tape(ctx, x + b * g, 1, N, F, ahat + b * N * N, 0, t0, t1, 30, 0, y1);
        ck_assert_msg(test_rel_err(y1, y + b * g, (size_t)g) < 1e-6, "graph %d", b);
    }
    /* two copies of one adjacency: the per-graph path equals the shared one
     * (which runs all graphs in one node-major product) */
    float same[32], ys[16], yp[16];
    memcpy(same, ahat, 16 * sizeof(float));
    memcpy(same + 16, ahat, 16 * sizeof(float));
    graph_exp_tape(ctx, x, B, N, F, same, 1, t0, t1, 8, 1, yp);
    graph_exp_tape(ctx, x, B, N, F, ahat, 0, t0, t1, 8, 1, ys);
    ck_assert_msg(test_rel_err(ys, yp, 16) < 1e-6, "shared vs per-graph %g", test_rel_err(ys, yp, 16));
    /* permutation equivariance with a different permutation per graph */
    const int perm[2][4] = { { 2, 0, 3, 1 }, { 1, 3, 0, 2 } };
    float pa[32], px[16], py[16];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < N; j++)
                pa[(b * N + i) * N + j] = ahat[(b * N + perm[b][i]) * N + perm[b][j]];
            for (int f = 0; f < F; f++) px[(b * N + i) * F + f] = x[(b * N + perm[b][i]) * F + f];
        }
    graph_exp_tape(ctx, x, B, N, F, ahat, 1, t0, t1, 13, 0, y);
    graph_exp_tape(ctx, px, B, N, F, pa, 1, t0, t1, 13, 0, py);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++)
            for (int f = 0; f < F; f++)
                ck_assert_float_eq_tol(py[(b * N + i) * F + f], y[(b * N + perm[b][i]) * F + f],
                                       1e-5f);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- the generic operator interface --------------------------------------------- */

START_TEST(test_generic_linop)
{
    fxp_ctx *ctx = test_ctx(1);
    enum { n = 12 };
    float x[n], c[n], d[n], y[n];
    test_randn(x, n, 240, 1);
    test_randn(c, n, 241, 0.4f);
    test_randn(d, n, 242, 0.4f);
    int sh[1] = { n };
    fxp_tensor tx = fxp_tensor_wrap(x, 1, sh), tc = fxp_tensor_wrap(c, 1, sh),
               td = fxp_tensor_wrap(d, 1, sh);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_var *vx, *vc, *vd, *vy;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_tape_input(t, &vc, &tc, 0));
    ck_assert_ok(fxp_tape_input(t, &vd, &td, 0));
    fxp_linop *op;
    ck_assert_ok(shift_build(t, vc, vd, &op));
    /* explicit matrix, Pade exponential, and the trace as log-determinant */
    double m[n * n], e[n * n], ref[n];
    memset(m, 0, sizeof m);
    for (int i = 0; i < n; i++) {
        m[i * n + i] += c[i];
        m[i * n + (i + 1) % n] += d[i];
    }
    ref_expm(m, e, n);
    for (int i = 0; i < n; i++) {
        ref[i] = 0;
        for (int j = 0; j < n; j++) ref[i] += e[i * n + j] * x[j];
    }
    fxp_expm_opts o = fxp_expm_fixed(30);
    fxp_expm_info info;
    ck_assert_ok(fxp_expm_linop(t, &vy, vx, op, 0, 2, (fxp_var *[]){ vc, vd }, &o, &info));
    ck_assert_int_eq(info.terms, 30);
    ck_assert_msg(max_abs_diff_d(vy->value.data, ref, n) < 1e-5, "series vs Pade %g",
                  max_abs_diff_d(vy->value.data, ref, n));
    double tr = 0;
    for (int i = 0; i < n; i++) tr += c[i];
    ck_assert_double_eq_tol(fxp_expm_linop_logdet(ctx, op, 0), tr, 1e-6);
    ck_assert_double_eq_tol(fxp_expm_linop_logdet(ctx, op, 1), -tr, 1e-6);
    ck_assert_double_eq_tol(ref_logabsdet(e, n), tr, 1e-6);
    /* no-tape apply in place, and adaptive length certified by op->norm_bound */
    memcpy(y, x, sizeof y);
    ck_assert_ok(fxp_expm_linop_apply(ctx, op, y, y, 0, &o, NULL));
    ck_assert_msg(max_abs_diff_d(y, ref, n) < 1e-5, "in place %g", max_abs_diff_d(y, ref, n));
    fxp_expm_opts ad = { 0, 1e-6, 1, 50, 0 };
    ck_assert_ok(fxp_expm_linop_apply(ctx, op, x, y, 0, &ad, &info));
    ck_assert(info.error_bound >= 0 && info.terms < 30);
    double err = 0, xn = 0;
    for (int i = 0; i < n; i++) {
        err += (y[i] - ref[i]) * (y[i] - ref[i]);
        xn += (double)x[i] * x[i];
    }
    ck_assert_msg(sqrt(err) <= info.error_bound + 1e-6 * sqrt(xn), "error %g > bound %g",
                  sqrt(err), info.error_bound);
    /* errors: no trace callback, a negative norm bound */
    fxp_linop bad = *op;
    bad.trace = NULL;
    fxp_ctx_clear_error(ctx);
    ck_assert(isnan(fxp_expm_linop_logdet(ctx, &bad, 0)));
    ck_assert(fxp_ctx_error(ctx)[0] != 0);
    bad.norm_bound = -1;
    ck_assert_fails(fxp_expm_linop_apply(ctx, &bad, x, y, 0, &o, NULL), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_expm_linop(t, &vy, vx, &bad, 0, 2, (fxp_var *[]){ vc, vd }, &o, NULL),
                    FXP_EINVAL, ctx);
    fxp_tape_free(t);
    /* gradients through a user operator, forward and inverse */
    fxp_tensor *in[3] = { &tx, &tc, &td };
    ck_assert_gradcheck(ctx, shift_fn, (void *)(intptr_t)0, 3, in, NULL, 0, 1e-2);
    ck_assert_gradcheck(ctx, shift_fn, (void *)(intptr_t)1, 3, in, NULL, 0, 1e-2);
    fxp_ctx_free(ctx);
}
END_TEST

/* The generic series (here: circular padding) reuses its saved terms as
 * workspace, so a second backward is refused; the fused series (zero
 * padding, fixed terms) only reads them, so a second backward adds the same
 * gradients again. */
START_TEST(test_second_backward)
{
    fxp_ctx *ctx = test_ctx(1);
    float x[24], k[36];
    test_randn(x, 24, 250, 1);
    test_randn(k, 36, 251, 0.3f);
    int xs[4] = { 1, 2, 3, 4 }, ks[4] = { 2, 2, 3, 3 };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, xs), tk = fxp_tensor_wrap(k, 4, ks);
    for (int pad = 0; pad < 2; pad++) {
        fxp_tape *t;
        fxp_var *vx, *vk, *vy, *l;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        ck_assert_ok(fxp_tape_input(t, &vx, &tx, 1));
        ck_assert_ok(fxp_tape_input(t, &vk, &tk, 1));
        ck_assert_ok(fxp_expm_conv(t, &vy, vx, vk, (fxp_padding)pad, 0, NULL, NULL));
        ck_assert_ok(fxp_sum(t, &l, vy, FXP_AXES_ALL, 0));
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
        if (pad == FXP_PAD_CIRCULAR) {
            ck_assert_fails(fxp_tape_backward(t, l, NULL), FXP_ESTATE, ctx);
        } else {
            float gx[24], gk[36];
            memcpy(gx, vx->grad, sizeof gx);
            memcpy(gk, vk->grad, sizeof gk);
            memset(vx->grad, 0, sizeof gx);
            memset(vk->grad, 0, sizeof gk);
            memset(l->grad, 0, sizeof(float));
            memset(vy->grad, 0, sizeof(float) * 24);
            ck_assert_ok(fxp_tape_backward(t, l, NULL));
            ck_assert_mem_eq(gx, vx->grad, sizeof gx);
            ck_assert_mem_eq(gk, vk->grad, sizeof gk);
        }
        fxp_tape_free(t);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- the fused series kernels (ops/conv_series.c) against double loops -------------- */

/* out = conv(in; k) in double, zero padding (transposed: the kernel of M^T). */
static void naive_conv_d(const fxp__conv_shape *s, const double *in, const float *k, int transposed,
                         double *out)
{
    const int C = s->c_in, H = s->h, W = s->w, kh = s->kh, kw = s->kw, ph = kh / 2, pw = kw / 2;
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < C; o++)
            for (int r = 0; r < H; r++)
                for (int c = 0; c < W; c++) {
                    double acc = 0;
                    for (int i = 0; i < C; i++)
                        for (int a = 0; a < kh; a++)
                            for (int b = 0; b < kw; b++) {
                                const int rr = r + a - ph, cc = c + b - pw;
                                if (rr < 0 || rr >= H || cc < 0 || cc >= W) continue;
                                const float w =
                                    transposed ? k[((i * C + o) * kh + kh - 1 - a) * kw + kw - 1 - b]
                                               : k[((o * C + i) * kh + a) * kw + b];
                                acc += w * in[(((size_t)n * C + i) * H + rr) * W + cc];
                            }
                    out[(((size_t)n * C + o) * H + r) * W + c] = acc;
                }
}

/* The series and its adjoint (conv_series.h) in double: y, dx, dk. */
static void naive_series_d(const fxp__conv_shape *s, const float *x, const float *k, float sign,
                           int T, const float *g, double *y, double *dx, double *dk)
{
    const size_t n = (size_t)s->n * s->c_in * s->h * s->w;
    const int C = s->c_in, H = s->h, W = s->w, kh = s->kh, kw = s->kw;
    double *t = malloc(sizeof(double) * n * (T + 1)), *b = malloc(sizeof(double) * n * (T + 1));
    double *tmp = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) y[i] = t[i] = x[i];
    for (int i = 1; i <= T; i++) {
        naive_conv_d(s, t + (i - 1) * n, k, 0, t + i * n);
        for (size_t j = 0; j < n; j++) y[j] += t[i * n + j] *= (double)sign / i;
    }
    for (size_t j = 0; j < n; j++) b[T * n + j] = (double)sign / T * g[j];
    for (int i = T; i >= 1; i--) { /* b[i-1] = (s/(i-1)) (g + M^T b_i); b[0] = dL/dx */
        naive_conv_d(s, b + i * n, k, 1, tmp);
        for (size_t j = 0; j < n; j++)
            b[(i - 1) * n + j] = (i > 1 ? (double)sign / (i - 1) : 1.0) * (g[j] + tmp[j]);
    }
    memcpy(dx, b, sizeof(double) * n);
    memset(dk, 0, sizeof(double) * C * C * kh * kw);
    for (int i = 1; i <= T; i++)
        for (int m = 0; m < s->n; m++)
            for (int o = 0; o < C; o++)
                for (int ci = 0; ci < C; ci++)
                    for (int a = 0; a < kh; a++)
                        for (int bb = 0; bb < kw; bb++)
                            for (int r = 0; r < H; r++)
                                for (int c = 0; c < W; c++) {
                                    const int rr = r + a - kh / 2, cc = c + bb - kw / 2;
                                    if (rr < 0 || rr >= H || cc < 0 || cc >= W) continue;
                                    dk[((o * C + ci) * kh + a) * kw + bb] +=
                                        b[i * n + (((size_t)m * C + o) * H + r) * W + c] *
                                        t[(i - 1) * n + (((size_t)m * C + ci) * H + rr) * W + cc];
                                }
    free(t);
    free(b);
    free(tmp);
}

static double rel_err_fd(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / (den + 1e-30));
}

/* Forward (with and without saved terms), backward from saved and from
 * recomputed terms, against the double loops; the same thread count gives
 * the same bits. */
static void check_fused(fxp__conv_shape s, int T, float sign, int threads)
{
    fxp_ctx *ctx = test_ctx(threads);
    const size_t n = (size_t)s.n * s.c_in * s.h * s.w, nk = (size_t)s.c_in * s.c_in * s.kh * s.kw;
    float *x = malloc(n * 4), *k = malloc(nk * 4), *g = malloc(n * 4), *y = malloc(n * 4),
          *y2 = malloc(n * 4), *dx = malloc(n * 4), *dk = malloc(nk * 4), *dx2 = malloc(n * 4),
          *dk2 = malloc(nk * 4), *terms = malloc(n * 4 * (T > 1 ? T - 1 : 1));
    double *yr = malloc(n * 8), *dxr = malloc(n * 8), *dkr = malloc(nk * 8);
    test_randn(x, n, 300 + T, 1);
    test_randn(k, nk, 301, 0.6f / sqrtf((float)s.c_in * s.kh * s.kw));
    test_randn(g, n, 302, 1);
    naive_series_d(&s, x, k, sign, T, g, yr, dxr, dkr);
    float *saved[64];
    saved[0] = x;
    for (int i = 1; i < T; i++) saved[i] = terms + (size_t)(i - 1) * n;
    double ss;
    ck_assert_ok(fxp__conv_series_forward(ctx, &s, k, sign, T, x, y, saved, &ss));
    ck_assert_msg(rel_err_fd(y, yr, n) < 2e-6, "forward %dx%dx%dx%d k%dx%d T=%d thr %d: %g", s.n,
                  s.c_in, s.h, s.w, s.kh, s.kw, T, threads, rel_err_fd(y, yr, n));
    ck_assert_msg(ss > 0 && isfinite(ss), "last term norm %g", ss);
    ck_assert_ok(fxp__conv_series_forward(ctx, &s, k, sign, T, x, y2, NULL, NULL));
    ck_assert_mem_eq(y, y2, n * 4);
    double *td = malloc(n * 8), *tn = malloc(n * 8);
    for (size_t i = 0; i < n; i++) td[i] = x[i];
    for (int i = 1; i < T; i++) { /* the saved t_i against the double recursion */
        naive_conv_d(&s, td, k, 0, tn);
        for (size_t j = 0; j < n; j++) td[j] = tn[j] * sign / i;
        ck_assert_msg(rel_err_fd(saved[i], td, n) < 2e-6, "saved t_%d: %g", i,
                      rel_err_fd(saved[i], td, n));
    }
    free(td);
    free(tn);
    for (int mode = 0; mode < 2; mode++) { /* saved terms, recomputed terms */
        float *ddx = mode ? dx2 : dx, *ddk = mode ? dk2 : dk;
        for (size_t i = 0; i < n; i++) ddx[i] = 0.5f; /* += onto what is there */
        for (size_t i = 0; i < nk; i++) ddk[i] = -0.25f;
        ck_assert_ok(fxp__conv_series_backward(ctx, &s, k, sign, T, x,
                                               mode ? NULL : (const float *const *)saved, g, ddx,
                                               ddk));
        for (size_t i = 0; i < n; i++) ddx[i] -= 0.5f;
        for (size_t i = 0; i < nk; i++) ddk[i] += 0.25f;
        ck_assert_msg(rel_err_fd(ddx, dxr, n) < 1e-5,
                      "dx mode %d %dx%dx%dx%d k%dx%d T=%d thr %d: %g", mode, s.n, s.c_in, s.h,
                      s.w, s.kh, s.kw, T, threads, rel_err_fd(ddx, dxr, n));
        ck_assert_msg(rel_err_fd(ddk, dkr, nk) < 1e-5,
                      "dk mode %d %dx%dx%dx%d k%dx%d T=%d thr %d: %g", mode, s.n, s.c_in, s.h,
                      s.w, s.kh, s.kw, T, threads, rel_err_fd(ddk, dkr, nk));
    }
    /* only one of the two gradients */
    memset(dx2, 0, n * 4);
    memset(dk2, 0, nk * 4);
    ck_assert_ok(fxp__conv_series_backward(ctx, &s, k, sign, T, x, (const float *const *)saved, g,
                                           dx2, NULL));
    ck_assert_ok(fxp__conv_series_backward(ctx, &s, k, sign, T, x, (const float *const *)saved, g,
                                           NULL, dk2));
    ck_assert_msg(rel_err_fd(dx2, dxr, n) < 1e-5, "dx alone: %g", rel_err_fd(dx2, dxr, n));
    ck_assert_msg(rel_err_fd(dk2, dkr, nk) < 1e-5, "dk alone: %g", rel_err_fd(dk2, dkr, nk));
    /* the same thread count, the same bits */
    memset(dx2, 0, n * 4);
    memset(dk2, 0, nk * 4);
    for (size_t i = 0; i < n; i++) dx[i] = 0;
    for (size_t i = 0; i < nk; i++) dk[i] = 0;
    ck_assert_ok(fxp__conv_series_backward(ctx, &s, k, sign, T, x, (const float *const *)saved, g,
                                           dx, dk));
    ck_assert_ok(fxp__conv_series_backward(ctx, &s, k, sign, T, x, (const float *const *)saved, g,
                                           dx2, dk2));
    ck_assert_mem_eq(dx, dx2, n * 4);
    ck_assert_mem_eq(dk, dk2, nk * 4);
    free(x); free(k); free(g); free(y); free(y2); free(dx); free(dk); free(dx2); free(dk2);
    free(terms); free(yr); free(dxr); free(dkr);
    fxp_ctx_free(ctx);
}

/* Odd shapes, kernels 1x1 to 5x5, 1 to 3 threads; calls under 20 MFLOP run
 * on one thread, the larger ones split images (4 x 24 x 12 x 12) or the
 * tiles of one image (3 x 32 x 16 x 16 on 2 threads, 1 x 20 x 9 x 9 is
 * under the threshold). */
START_TEST(test_fused_series_vs_naive)
{
    const struct { fxp__conv_shape s; int T; } cases[] = {
        { { 3, 5, 5, 7, 5, 3, 3, FXP_PAD_ZERO }, 6 },
        { { 1, 7, 6, 5, 7, 5, 5, FXP_PAD_ZERO }, 3 },
        { { 2, 1, 9, 4, 1, 3, 1, FXP_PAD_ZERO }, 2 },
        { { 4, 13, 3, 3, 13, 3, 5, FXP_PAD_ZERO }, 1 },
        { { 2, 4, 3, 3, 4, 1, 1, FXP_PAD_ZERO }, 6 },
        { { 3, 32, 16, 16, 32, 3, 3, FXP_PAD_ZERO }, 2 },
        { { 1, 20, 9, 9, 20, 3, 3, FXP_PAD_ZERO }, 4 },
        { { 4, 24, 12, 12, 24, 3, 3, FXP_PAD_ZERO }, 6 }, /* threads split the images */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int threads = 1; threads <= 3; threads++)
            check_fused(cases[c].s, cases[c].T, c % 2 ? -1.0f : 1.0f, threads);
}
END_TEST

/* Every register-tile shape (those of this CPU), forced. */
START_TEST(test_fused_series_every_tile)
{
    const int kinds = fxp__tile_kinds();
    ck_assert_int_ge(kinds, 1);
    for (int kind = 0; kind < kinds; kind++) {
        fxp__tile_force(kind);
        check_fused((fxp__conv_shape){ 2, 11, 7, 6, 11, 3, 3, FXP_PAD_ZERO }, 3, 1.0f, 2);
        check_fused((fxp__conv_shape){ 1, 3, 5, 4, 3, 5, 3, FXP_PAD_ZERO }, 2, -1.0f, 1);
    }
    fxp__tile_force(-1);
}
END_TEST

/* ---- inverse round trip ------------------------------------------------------------- */

START_TEST(test_inverse_round_trip)
{
    fxp_ctx *ctx = test_ctx(2);
    const int xs[4] = { 3, 4, 6, 5 };
    float x[360], y[360], z[360], k[144];
    test_randn(x, 360, 1, 1);
    test_randn(k, 144, 2, 0.5f / 6); /* ||M|| around 0.5 */
    for (int pad = 0; pad < 2; pad++) {
        fxp_expm_opts o = fxp_expm_fixed(13);
        fxp_expm_info info;
        conv_exp_tape(ctx, x, xs, k, 3, 3, (fxp_padding)pad, 0, &o, y, &info);
        ck_assert_int_eq(info.terms, 13);
        ck_assert(info.last_norm > 0 && info.last_norm < 1e-6);
        conv_exp_tape(ctx, y, xs, k, 3, 3, (fxp_padding)pad, 1, &o, z, &info);
        ck_assert_msg(test_rel_err(z, x, 360) < 1e-5, "round trip %g", test_rel_err(z, x, 360));
    }
    float adj[16], t0[4], t1[4], g[2 * 4 * 2], gy[16], gz[16];
    random_graph(adj, 4, 3);
    test_randn(t0, 4, 4, 0.3f);
    test_randn(t1, 4, 5, 0.3f);
    test_randn(g, 16, 6, 1);
    ck_assert_ok(fxp_graph_conv_exp_ctx(ctx, g, gy, adj, t0, t1, 2, 4, 2, 13, 0));
    ck_assert_ok(fxp_graph_conv_exp_ctx(ctx, gy, gz, adj, t0, t1, 2, 4, 2, 13, 1));
    ck_assert_msg(test_rel_err(gz, g, 16) < 1e-5, "graph round trip %g", test_rel_err(gz, g, 16));
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- gradient checks -------------------------------------------------------------- */

static float g_adj_hat[2 * 4 * 4];
static int g_adj_shape[3];
static int g_adj_nd;

enum { GC_CONV, GC_CONV_CIRC_INV, GC_GRAPH, GC_DENSE, GC_SN_CONV, GC_SN_DENSE, GC_LOGDET,
       GC_INVERSE, GC_CONV_TRACE };

static float sn_u[64], sn_v[64];

static int expm_fn(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    const int kind = (int)(intptr_t)user;
    fxp_expm_opts o = fxp_expm_fixed(6);
    fxp_tensor ah = fxp_tensor_wrap(g_adj_hat, g_adj_nd, g_adj_shape);
    fxp_var *y;
    int rc;
    switch (kind) {
    case GC_CONV: return fxp_expm_conv(t, out, in[0], in[1], FXP_PAD_ZERO, 0, &o, NULL);
    case GC_CONV_CIRC_INV: return fxp_expm_conv(t, out, in[0], in[1], FXP_PAD_CIRCULAR, 1, &o, NULL);
    case GC_GRAPH: return fxp_expm_graph(t, out, in[0], &ah, in[1], in[2], 0, &o, NULL);
    case GC_DENSE: return fxp_expm_dense(t, out, in[0], in[1], 1, &o, NULL);
    case GC_SN_CONV: /* 0 power steps: u, v fixed across evaluations */
        if ((rc = fxp_spectral_norm_conv(t, &y, in[0], sn_u, sn_v, 3, 3, FXP_PAD_ZERO, 0.3f, 0,
                                         NULL)) < 0)
            return rc;
        return fxp_square(t, out, y);
    case GC_SN_DENSE:
        if ((rc = fxp_spectral_norm_dense(t, &y, in[0], sn_u, sn_v, 0.3f, 0, NULL)) < 0) return rc;
        return fxp_square(t, out, y);
    case GC_LOGDET: return fxp_logabsdet(t, out, in[0]);
    case GC_INVERSE: return fxp_inverse(t, out, in[0]);
    case GC_CONV_TRACE: return fxp_conv_trace(t, out, in[0], 3, 4);
    }
    return FXP_EINVAL;
}

START_TEST(test_gradients)
{
    fxp_ctx *ctx = test_ctx(1);
    float x[2 * 2 * 3 * 4], k[2 * 2 * 9];
    int xs[4] = { 2, 2, 3, 4 }, ks[4] = { 2, 2, 3, 3 };
    test_randn(x, 48, 1, 1);
    test_randn(k, 36, 2, 0.3f);
    fxp_tensor tx = fxp_tensor_wrap(x, 4, xs), tk = fxp_tensor_wrap(k, 4, ks);
    fxp_tensor *conv_in[2] = { &tx, &tk };
    ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_CONV, 2, conv_in, NULL, 0, 1e-2);
    ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_CONV_CIRC_INV, 2, conv_in, NULL, 0, 1e-2);

    /* graph: shared and per-graph adjacency */
    float adj[16], gx[2 * 4 * 2], t0[4], t1[4];
    random_graph(adj, 4, 7);
    test_randn(gx, 16, 8, 1);
    test_randn(t0, 4, 9, 0.4f);
    test_randn(t1, 4, 10, 0.4f);
    int gs[3] = { 2, 4, 2 }, ts[2] = { 2, 2 };
    fxp_tensor tg = fxp_tensor_wrap(gx, 3, gs), tt0 = fxp_tensor_wrap(t0, 2, ts),
               tt1 = fxp_tensor_wrap(t1, 2, ts);
    fxp_tensor *graph_in[3] = { &tg, &tt0, &tt1 };
    int as[2] = { 4, 4 };
    fxp_tensor ta = fxp_tensor_wrap(adj, 2, as), tah = fxp_tensor_wrap(g_adj_hat, 2, as);
    ck_assert_ok(fxp_graph_normalize(ctx, &ta, &tah, NULL));
    g_adj_hat[1] *= 1.7f; /* asymmetric, so that A_hat^T is exercised */
    g_adj_nd = 2;
    memcpy(g_adj_shape, as, sizeof as);
    ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_GRAPH, 3, graph_in, NULL, 0, 1e-2);
    float adj2[32];
    random_graph(adj2, 4, 11);
    random_graph(adj2 + 16, 4, 12);
    int as3[3] = { 2, 4, 4 };
    fxp_tensor ta3 = fxp_tensor_wrap(adj2, 3, as3), tah3 = fxp_tensor_wrap(g_adj_hat, 3, as3);
    ck_assert_ok(fxp_graph_normalize(ctx, &ta3, &tah3, NULL));
    g_adj_hat[1] *= 1.7f;
    g_adj_hat[16 + 6] *= 0.5f;
    g_adj_nd = 3;
    memcpy(g_adj_shape, as3, sizeof as3);
    ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_GRAPH, 3, graph_in, NULL, 0, 1e-2);

    /* a complete graph (the O(N F) path) with F = 10 (BLAS products) */
    enum { CF = 10 };
    static float cx[2 * 4 * CF], c0[CF * CF], c1[CF * CF];
    test_randn(cx, 2 * 4 * CF, 15, 1);
    test_randn(c0, CF * CF, 16, 0.1f);
    test_randn(c1, CF * CF, 17, 0.1f);
    int cgs[3] = { 2, 4, CF }, cts[2] = { CF, CF };
    fxp_tensor tcg = fxp_tensor_wrap(cx, 3, cgs), tc0 = fxp_tensor_wrap(c0, 2, cts),
               tc1 = fxp_tensor_wrap(c1, 2, cts);
    fxp_tensor *complete_in[3] = { &tcg, &tc0, &tc1 };
    for (int i = 0; i < 16; i++) adj[i] = i % 5 ? 1.0f : 0.0f;
    ck_assert_ok(fxp_graph_normalize(ctx, &ta, &tah, NULL));
    g_adj_nd = 2;
    memcpy(g_adj_shape, as, sizeof as);
    ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_GRAPH, 3, complete_in, NULL, 0, 1e-2);

    float dx[3 * 4], w[16];
    int dxs[2] = { 3, 4 }, ws[2] = { 4, 4 };
    test_randn(dx, 12, 13, 1);
    test_randn(w, 16, 14, 0.4f);
    fxp_tensor tdx = fxp_tensor_wrap(dx, 2, dxs), tw = fxp_tensor_wrap(w, 2, ws);
    fxp_tensor *dense_in[2] = { &tdx, &tw };
    ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_DENSE, 2, dense_in, NULL, 0, 1e-2);

    /* spectral normalisation, with sigma > coeff so the rescaling is active */
    fxp_rng r;
    fxp_rng_seed(&r, 3);
    float kk[2 * 2 * 9];
    test_randn(kk, 36, 15, 1);
    fxp_spectral_init(&r, sn_u, 18);
    fxp_spectral_init(&r, sn_v, 18);
    {
        fxp_tape *t;
        fxp_var *vk, *y;
        float sigma;
        fxp_tensor tkk = fxp_tensor_wrap(kk, 4, ks);
        ck_assert_ok(fxp_tape_new(ctx, &t));
        ck_assert_ok(fxp_tape_input(t, &vk, &tkk, 0));
        ck_assert_ok(fxp_spectral_norm_conv(t, &y, vk, sn_u, sn_v, 3, 3, FXP_PAD_ZERO, 0.3f, 50,
                                            &sigma));
        ck_assert(sigma > 0.3f);
        fxp_tape_free(t);
        fxp_tensor *sn_in[1] = { &tkk };
        ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_SN_CONV, 1, sn_in, NULL, 0, 1e-2);
    }
    fxp_spectral_init(&r, sn_u, 4);
    fxp_spectral_init(&r, sn_v, 4);
    {
        fxp_tape *t;
        fxp_var *vw, *y;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        ck_assert_ok(fxp_tape_input(t, &vw, &tw, 0));
        ck_assert_ok(fxp_spectral_norm_dense(t, &y, vw, sn_u, sn_v, 0.3f, 50, NULL));
        fxp_tape_free(t);
        fxp_tensor *sn_in[1] = { &tw };
        ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_SN_DENSE, 1, sn_in, NULL, 0, 1e-2);
    }
    for (int i = 0; i < 4; i++) w[i * 5] += 2.0f; /* well conditioned */
    fxp_tensor *m_in[1] = { &tw };
    ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_LOGDET, 1, m_in, NULL, 0, 1e-2);
    ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_INVERSE, 1, m_in, NULL, 0, 1e-2);
    fxp_tensor *k_in[1] = { &tk };
    ck_assert_gradcheck(ctx, expm_fn, (void *)(intptr_t)GC_CONV_TRACE, 1, k_in, NULL, 0, 1e-2);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- equivariance (Theorem 1) -------------------------------------------------------- */

START_TEST(test_graph_permutation_equivariance)
{
    const int N = 6, F = 3, B = 2;
    float adj[36], padj[36], t0[9], t1[9], x[36], px[36], y[36], py[36];
    random_graph(adj, N, 21);
    test_randn(t0, 9, 22, 0.4f);
    test_randn(t1, 9, 23, 0.4f);
    test_randn(x, 36, 24, 1);
    const int perm[6] = { 3, 0, 5, 1, 4, 2 };
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) padj[i * N + j] = adj[perm[i] * N + perm[j]];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++)
            for (int f = 0; f < F; f++) px[(b * N + i) * F + f] = x[(b * N + perm[i]) * F + f];
    ck_assert_ok(fxp_graph_conv_exp(x, y, adj, t0, t1, B, N, F, 13, 0));
    ck_assert_ok(fxp_graph_conv_exp(px, py, padj, t0, t1, B, N, F, 13, 0));
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++)
            for (int f = 0; f < F; f++)
                ck_assert_float_eq_tol(py[(b * N + i) * F + f], y[(b * N + perm[i]) * F + f], 1e-5f);
}
END_TEST

START_TEST(test_conv_shift_equivariance)
{
    fxp_ctx *ctx = test_ctx(1);
    const int C = 2, H = 20, W = 20, n = C * H * W;
    const int xs[4] = { 1, C, H, W };
    float *x = calloc(n, 4), *sx = calloc(n, 4), *y = malloc(n * 4), *sy = malloc(n * 4), k[36];
    test_randn(k, 36, 30, 0.3f);
    fxp_expm_opts o = fxp_expm_fixed(6);
    /* circular: any cyclic shift, exactly up to rounding */
    test_randn(x, (size_t)n, 31, 1);
    const int di = 7, dj = 3;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                sx[(c * H + (i + di) % H) * W + (j + dj) % W] = x[(c * H + i) * W + j];
    conv_exp_tape(ctx, x, xs, k, 3, 3, FXP_PAD_CIRCULAR, 0, &o, y, NULL);
    conv_exp_tape(ctx, sx, xs, k, 3, 3, FXP_PAD_CIRCULAR, 0, &o, sy, NULL);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                ck_assert_float_eq_tol(sy[(c * H + (i + di) % H) * W + (j + dj) % W],
                                       y[(c * H + i) * W + j], 1e-5f);
    /* zero padding: content in the centre stays 6 pixels away from the border
     * after 6 terms, so a shift by one pixel commutes */
    memset(x, 0, n * 4);
    memset(sx, 0, n * 4);
    for (int c = 0; c < C; c++)
        for (int i = 8; i < 11; i++)
            for (int j = 8; j < 11; j++) {
                x[(c * H + i) * W + j] = (float)(1 + c + i * 0.1 + j * 0.01);
                sx[(c * H + i + 1) * W + j + 1] = x[(c * H + i) * W + j];
            }
    conv_exp_tape(ctx, x, xs, k, 3, 3, FXP_PAD_ZERO, 0, &o, y, NULL);
    conv_exp_tape(ctx, sx, xs, k, 3, 3, FXP_PAD_ZERO, 0, &o, sy, NULL);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H - 1; i++)
            for (int j = 0; j < W - 1; j++)
                ck_assert_float_eq_tol(sy[(c * H + i + 1) * W + j + 1], y[(c * H + i) * W + j], 1e-5f);
    free(x); free(sx); free(y); free(sy);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- spectral norm against the true operator norm ------------------------------------ */

START_TEST(test_spectral_norm_estimate)
{
    fxp_ctx *ctx = test_ctx(1);
    const int C = 2, H = 4, W = 4, n = C * H * W;
    float k[36], u[32], v[32], sigma;
    test_randn(k, 36, 40, 1);
    for (int pad = 0; pad < 2; pad++) {
        double *m = malloc(sizeof(double) * n * n);
        conv_matrix(ctx, k, C, H, W, 3, 3, (fxp_padding)pad, m);
        const double truth = ref_sigma_max(m, n, n);
        fxp_rng r;
        fxp_rng_seed(&r, 41);
        fxp_spectral_init(&r, u, n);
        fxp_spectral_init(&r, v, n);
        fxp_tape *t;
        fxp_var *vk, *y;
        int ks[4] = { C, C, 3, 3 };
        fxp_tensor tk = fxp_tensor_wrap(k, 4, ks);
        ck_assert_ok(fxp_tape_new(ctx, &t));
        ck_assert_ok(fxp_tape_input(t, &vk, &tk, 0));
        ck_assert_ok(fxp_spectral_norm_conv(t, &y, vk, u, v, H, W, (fxp_padding)pad, 0.9f, 300,
                                            &sigma));
        ck_assert_msg(fabs(sigma - truth) < 1e-3 * truth, "pad %d: sigma %g, true %g", pad,
                      (double)sigma, truth);
        /* the normalised operator has norm coeff */
        conv_matrix(ctx, y->value.data, C, H, W, 3, 3, (fxp_padding)pad, m);
        ck_assert_double_eq_tol(ref_sigma_max(m, n, n), 0.9, 1e-3);
        fxp_tape_free(t);
        free(m);
    }
    /* dense: a 5 x 3 matrix */
    float w[15], du[5], dv[3];
    test_randn(w, 15, 42, 1);
    double md[15];
    for (int i = 0; i < 15; i++) md[i] = w[i];
    fxp_rng r;
    fxp_rng_seed(&r, 43);
    fxp_spectral_init(&r, du, 5);
    fxp_spectral_init(&r, dv, 3);
    fxp_tape *t;
    fxp_var *vw, *y;
    int ws[2] = { 5, 3 };
    fxp_tensor tw = fxp_tensor_wrap(w, 2, ws);
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vw, &tw, 0));
    ck_assert_ok(fxp_spectral_norm_dense(t, &y, vw, du, dv, 100.0f, 200, &sigma));
    ck_assert_double_eq_tol(sigma, ref_sigma_max(md, 5, 3), 1e-4);
    ck_assert_float_eq(y->value.data[0], w[0]); /* sigma < coeff: unchanged */
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- adaptive truncation: the certified bound holds ------------------------------------ */

START_TEST(test_adaptive_terms)
{
    fxp_ctx *ctx = test_ctx(1);
    const int xs[4] = { 2, 3, 8, 8 }, n = 384;
    float x[384], y[384], yref[384], k[81], u[192], v[192], sigma;
    test_randn(x, n, 50, 1);
    test_randn(k, 81, 51, 0.2f);
    fxp_rng r;
    fxp_rng_seed(&r, 52);
    fxp_spectral_init(&r, u, 192);
    fxp_spectral_init(&r, v, 192);
    fxp_tape *t;
    fxp_var *vk, *y2;
    int ks[4] = { 3, 3, 3, 3 };
    fxp_tensor tk = fxp_tensor_wrap(k, 4, ks);
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vk, &tk, 0));
    ck_assert_ok(fxp_spectral_norm_conv(t, &y2, vk, u, v, 8, 8, FXP_PAD_ZERO, 100.f, 200, &sigma));
    fxp_tape_free(t);
    fxp_expm_opts fixed = fxp_expm_fixed(40);
    conv_exp_tape(ctx, x, xs, k, 3, 3, FXP_PAD_ZERO, 0, &fixed, yref, NULL);
    for (int pass = 0; pass < 2; pass++) {
        double tol = pass ? 1e-7 : 1e-3;
        fxp_expm_opts o = { 0, tol, 1, 60, 1.01 * sigma };
        fxp_expm_info info;
        conv_exp_tape(ctx, x, xs, k, 3, 3, FXP_PAD_ZERO, 0, &o, y, &info);
        ck_assert(info.terms >= 1 && info.terms < 40);
        ck_assert(info.error_bound >= 0);
        double err = 0, xn = 0;
        for (int i = 0; i < n; i++) {
            err += (double)(y[i] - yref[i]) * (y[i] - yref[i]);
            xn += (double)x[i] * x[i];
        }
        err = sqrt(err);
        ck_assert_msg(info.error_bound <= tol * sqrt(xn), "bound %g above tol", info.error_bound);
        ck_assert_msg(err <= info.error_bound + 1e-5 * sqrt(xn), "error %g > bound %g (terms %d)",
                      err, info.error_bound, info.terms);
    }
    /* a tolerance that cannot be met within max_terms is reported */
    fxp_expm_opts bad = { 0, 1e-30, 1, 3, 0 };
    fxp_tape *t2;
    fxp_var *vx, *vk2, *vy;
    fxp_tensor tx = fxp_tensor_wrap(x, 4, xs);
    ck_assert_ok(fxp_tape_new(ctx, &t2));
    ck_assert_ok(fxp_tape_input(t2, &vx, &tx, 0));
    ck_assert_ok(fxp_tape_input(t2, &vk2, &tk, 0));
    ck_assert_fails(fxp_expm_conv(t2, &vy, vx, vk2, FXP_PAD_ZERO, 0, &bad, NULL), FXP_ECONVERGE, ctx);
    fxp_tape_free(t2);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- memory: forward + backward hold terms + 2 activation buffers ---------------------- */

START_TEST(test_memory_terms_plus_two)
{
    fxp_ctx *ctx = test_ctx(1);
    const int xs[4] = { 16, 8, 16, 16 }, T = 6;
    const size_t act = 16 * 8 * 256 * sizeof(float);
    float *x = malloc(act), k[576];
    test_randn(x, act / 4, 60, 1);
    test_randn(k, 576, 61, 0.05f);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    int ks[4] = { 8, 8, 3, 3 };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, xs), tk = fxp_tensor_wrap(k, 4, ks);
    fxp_var *vx, *vk, *y, *l;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    ck_assert_ok(fxp_tape_input(t, &vk, &tk, 1));
    fxp_expm_opts o = fxp_expm_fixed(T);
    ck_assert_ok(fxp_expm_conv(t, &y, vx, vk, FXP_PAD_ZERO, 0, &o, NULL));
    ck_assert_ok(fxp_sum(t, &l, y, FXP_AXES_ALL, 0));
    size_t before = fxp_tape_bytes_in_use(t);
    ck_assert_ok(fxp_tape_backward(t, l, NULL));
    const size_t tape_peak = fxp_tape_bytes_peak(t);
    /* tape: y, t_1..t_{T-1}, dL/dy = T + 1 buffers (+ small kernel-sized items);
     * scratch: one buffer for a_i (and im2col for one image per thread) */
    const size_t slack = 64 * 1024;
    ck_assert_msg(tape_peak <= (size_t)(T + 1) * act + slack, "tape peak %zu > %zu", tape_peak,
                  (size_t)(T + 1) * act + slack);
    const size_t im2col = (size_t)8 * 9 * 256 * sizeof(float);
    ck_assert_msg(fxp_ctx_scratch_bytes(ctx) <= 1 * act + im2col + 2 * 1024 * 1024,
                  "scratch %zu", fxp_ctx_scratch_bytes(ctx));
    ck_assert_uint_gt(before, (size_t)T * act);
    fxp_tape_free(t);
    free(x);
    fxp_ctx_free(ctx);
}
END_TEST


/* Memory-saving backpropagation: the fused series keeps no terms on the tape
 * and recomputes them; the gradients keep their bits. */
START_TEST(test_conv_save_memory)
{
    fxp_ctx *ctx = test_ctx(2);
    enum { N = 3, C = 4, H = 6, W = 5, NX = N * C * H * W };
    float x[NX], k[C * C * 9], gx[2][NX], gk[2][C * C * 9];
    size_t peak[2];
    test_randn(x, NX, 260, 1);
    test_randn(k, C * C * 9, 261, 0.2f);
    int xs[4] = { N, C, H, W }, ks[4] = { C, C, 3, 3 };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, xs), tk = fxp_tensor_wrap(k, 4, ks);
    fxp_expm_opts o = fxp_expm_fixed(6);
    for (int save = 0; save < 2; save++) {
        fxp_tape *t;
        fxp_var *vx, *vk, *y, *l;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        fxp_tape_set_save_memory(t, save);
        ck_assert_ok(fxp_tape_input(t, &vx, &tx, 1));
        ck_assert_ok(fxp_tape_input(t, &vk, &tk, 1));
        ck_assert_ok(fxp_expm_conv(t, &y, vx, vk, FXP_PAD_ZERO, 0, &o, NULL));
        ck_assert_ok(fxp_square(t, &l, y));
        ck_assert_ok(fxp_sum(t, &l, l, FXP_AXES_ALL, 0));
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
        peak[save] = fxp_tape_bytes_peak(t);
        memcpy(gx[save], vx->grad, sizeof gx[save]);
        memcpy(gk[save], vk->grad, sizeof gk[save]);
        fxp_tape_free(t);
    }
    ck_assert_mem_eq(gx[0], gx[1], sizeof gx[0]);
    ck_assert_mem_eq(gk[0], gk[1], sizeof gk[0]);
    /* five saved terms of NX floats fewer */
    ck_assert_msg(peak[0] - peak[1] >= 5 * NX * sizeof(float), "tape peaks %zu and %zu", peak[0],
                  peak[1]);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- raw-buffer API -------------------------------------------------------------------- */

START_TEST(test_raw_api_matches_and_aliases)
{
    fxp_ctx *ctx = test_ctx(1);
    const int xs[4] = { 2, 3, 5, 4 };
    float x[120], y[120], yt[120], k[81];
    test_randn(x, 120, 70, 1);
    test_randn(k, 81, 71, 0.2f);
    ck_assert_ok(fxp_conv_exp(x, y, k, 2, 3, 5, 4, 3, 3, 6, 0));
    fxp_expm_opts o = fxp_expm_fixed(6);
    conv_exp_tape(ctx, x, xs, k, 3, 3, FXP_PAD_ZERO, 0, &o, yt, NULL);
    ck_assert_mem_eq(y, yt, sizeof y);
    float a[120];
    memcpy(a, x, sizeof a);
    ck_assert_ok(fxp_conv_exp(a, a, k, 2, 3, 5, 4, 3, 3, 6, 0)); /* y aliases x */
    ck_assert_mem_eq(a, y, sizeof a);
    ck_assert_ok(fxp_conv_exp_ctx(ctx, x, a, k, 2, 3, 5, 4, 3, 3, 20, 0));
    ck_assert_ok(fxp_conv_exp_ctx(ctx, a, a, k, 2, 3, 5, 4, 3, 3, 20, 1));
    ck_assert_msg(test_rel_err(a, x, 120) < 1e-5, "round trip %g", test_rel_err(a, x, 120));
    /* graph: raw vs tape op (the raw path runs sixteen graphs per vector: the same series,
     * other rounding) */
    float adj[25], ah[25], t0[4], t1[4], g[3 * 5 * 2], gy[30];
    random_graph(adj, 5, 72);
    test_randn(t0, 4, 73, 0.3f);
    test_randn(t1, 4, 74, 0.3f);
    test_randn(g, 30, 75, 1);
    ck_assert_ok(fxp_graph_conv_exp(g, gy, adj, t0, t1, 3, 5, 2, 6, 0));
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    int as[2] = { 5, 5 }, gs[3] = { 3, 5, 2 }, ts[2] = { 2, 2 };
    fxp_tensor ta = fxp_tensor_wrap(adj, 2, as), tah = fxp_tensor_wrap(ah, 2, as);
    int maxdeg = 0;
    ck_assert_ok(fxp_graph_normalize(ctx, &ta, &tah, &maxdeg));
    ck_assert_int_ge(maxdeg, 1);
    fxp_tensor tg = fxp_tensor_wrap(g, 3, gs), tt0 = fxp_tensor_wrap(t0, 2, ts),
               tt1 = fxp_tensor_wrap(t1, 2, ts);
    fxp_var *vg, *v0, *v1, *vy;
    ck_assert_ok(fxp_tape_input(t, &vg, &tg, 0));
    ck_assert_ok(fxp_tape_input(t, &v0, &tt0, 0));
    ck_assert_ok(fxp_tape_input(t, &v1, &tt1, 0));
    ck_assert_ok(fxp_expm_graph(t, &vy, vg, &tah, v0, v1, 0, &o, NULL));
    ck_assert_msg(test_rel_err(gy, vy->value.data, 30) < 1e-6, "graph raw vs tape %g",
                  test_rel_err(gy, vy->value.data, 30));
    fxp_tape_free(t);
    float gz[30];
    ck_assert_ok(fxp_graph_conv_exp(gy, gz, adj, t0, t1, 3, 5, 2, 13, 1));
    ck_assert_msg(test_rel_err(gz, g, 30) < 1e-4, "graph inverse %g", test_rel_err(gz, g, 30));
    ck_assert_ok(fxp_graph_conv_exp(gy, gy, adj, t0, t1, 3, 5, 2, 13, 1)); /* y aliases x */
    ck_assert_mem_eq(gy, gz, sizeof gz);
    fxp_ctx_free(ctx);
}
END_TEST


/* The raw graph exponential's lane kernel (graph_lanes.c: sixteen graphs per
 * vector) against the tape op's generic series on odd shapes: partial lane
 * groups, 1 to 17 features (17: the generic path), complete and random
 * graphs, 1 to 13 terms, both signs, and threads splitting the groups. */
START_TEST(test_graph_lanes_vs_tape)
{
    const struct { int b, n, f, t, threads; } cases[] = {
        { 1, 2, 1, 1, 1 },  { 17, 5, 2, 6, 2 },  { 33, 13, 3, 13, 1 }, { 16, 4, 5, 6, 3 },
        { 40, 7, 8, 4, 2 }, { 5, 9, 16, 6, 1 },  { 3, 6, 17, 6, 2 },   { 200, 40, 16, 6, 2 },
        { 70, 33, 4, 6, 3 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int kind = 0; kind < 2; kind++)
            for (int inverse = 0; inverse < 2; inverse++) {
                const int B = cases[c].b, N = cases[c].n, F = cases[c].f;
                fxp_ctx *ctx = test_ctx(cases[c].threads);
                const size_t nx = (size_t)B * N * F;
                float *x = malloc(nx * 4), *y = malloc(nx * 4), *adj = malloc((size_t)N * N * 4);
                float *ah = malloc((size_t)N * N * 4), *t0 = malloc((size_t)F * F * 4);
                float *t1 = malloc((size_t)F * F * 4);
                test_randn(x, nx, 400 + c, 1);
                /* the raw function insists on convergence: a small map for 1 term */
                const float sc = (cases[c].t < 3 ? 0.01f : 0.4f) / sqrtf((float)F);
                test_randn(t0, (size_t)F * F, 401 + c, sc);
                test_randn(t1, (size_t)F * F, 402 + c, sc);
                if (kind) {
                    float r[64 * 64];
                    test_randn(r, (size_t)N * N, 403 + c, 1);
                    for (int i = 0; i < N; i++)
                        for (int j = 0; j <= i; j++) {
                            float v = i == j ? 0.0f : fabsf(r[i * N + j]) > 0.5f ? 1.0f : 0.0f;
                            if (j == i - 1) v = 1.0f;
                            adj[i * N + j] = adj[j * N + i] = v;
                        }
                } else {
                    for (int i = 0; i < N * N; i++) adj[i] = i % (N + 1) ? 1.0f : 0.0f;
                }
                ck_assert_ok(fxp_graph_conv_exp_ctx(ctx, x, y, adj, t0, t1, B, N, F,
                                                    cases[c].t, inverse));
                int as[2] = { N, N }, xs[3] = { B, N, F }, ts[2] = { F, F };
                fxp_tensor ta = fxp_tensor_wrap(adj, 2, as), tah = fxp_tensor_wrap(ah, 2, as);
                ck_assert_ok(fxp_graph_normalize(ctx, &ta, &tah, NULL));
                fxp_tensor tx = fxp_tensor_wrap(x, 3, xs), tt0 = fxp_tensor_wrap(t0, 2, ts),
                           tt1 = fxp_tensor_wrap(t1, 2, ts);
                fxp_tape *t;
                fxp_var *vx, *v0, *v1, *vy;
                ck_assert_ok(fxp_tape_new(ctx, &t));
                fxp_tape_set_grad_enabled(t, 0);
                ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
                ck_assert_ok(fxp_tape_input(t, &v0, &tt0, 0));
                ck_assert_ok(fxp_tape_input(t, &v1, &tt1, 0));
                fxp_expm_opts o = fxp_expm_fixed(cases[c].t);
                fxp_expm_info info;
                ck_assert_ok(fxp_expm_graph(t, &vy, vx, &tah, v0, v1, inverse, &o, &info));
                /* the kernel's norms for a convergence check: ||x|| and ||t_T|| */
                if (F <= FXP_GRAPH_LANES_MAX_F) {
                    double norms[2], xss = 0;
                    float *y2 = malloc(nx * 4);
                    ck_assert_ok(fxp__graph_series_lanes(ctx, x, y2, ah, !kind, ah[1], t0, t1, B,
                                                         N, F, inverse ? -1.0f : 1.0f,
                                                         cases[c].t, norms));
                    for (size_t i = 0; i < nx; i++) xss += (double)x[i] * x[i];
                    ck_assert_double_eq_tol(norms[0], sqrt(xss), 1e-6 * sqrt(xss));
                    ck_assert_double_eq_tol(norms[1], info.last_norm,
                                            1e-4 * info.last_norm + 1e-30);
                    free(y2);
                }
                ck_assert_msg(test_rel_err(y, vy->value.data, nx) < 2e-6,
                              "B%d N%d F%d T%d kind %d inverse %d threads %d: %g", B, N, F,
                              cases[c].t, kind, inverse, cases[c].threads,
                              test_rel_err(y, vy->value.data, nx));
                /* the same thread count, the same bits; y may alias x */
                float *z = malloc(nx * 4);
                memcpy(z, x, nx * 4);
                ck_assert_ok(fxp_graph_conv_exp_ctx(ctx, z, z, adj, t0, t1, B, N, F, cases[c].t,
                                                    inverse));
                ck_assert_mem_eq(z, y, nx * 4);
                fxp_tape_free(t);
                free(x); free(y); free(adj); free(ah); free(t0); free(t1); free(z);
                fxp_ctx_free(ctx);
            }
}
END_TEST

#define SENTINEL 12345.0f

static void fill(float *y, int n)
{
    for (int i = 0; i < n; i++) y[i] = SENTINEL;
}

static void untouched(const float *y, int n)
{
    for (int i = 0; i < n; i++) ck_assert_float_eq(y[i], SENTINEL);
}

#define RAW_FAILS(expr, y, n)                                                      \
    do {                                                                           \
        fill(y, n);                                                                \
        int rc_ = (expr);                                                          \
        ck_assert_msg(rc_ < 0, "%s succeeded", #expr);                             \
        ck_assert_msg(fxp_last_error()[0] != 0, "%s: no message", #expr);          \
        untouched(y, n);                                                           \
    } while (0)

START_TEST(test_raw_api_errors)
{
    float x[60], y[60], k[81], kbad[36] = { 0 }, adj[9], t[4];
    test_randn(x, 60, 80, 1);
    test_randn(k, 81, 81, 0.1f);
    RAW_FAILS(fxp_conv_exp(x, y, k, 0, 3, 4, 5, 3, 3, 6, 0), y, 60);
    RAW_FAILS(fxp_conv_exp(x, y, k, 1, 3, 4, 5, 3, -3, 6, 0), y, 60);
    RAW_FAILS(fxp_conv_exp(x, y, kbad, 1, 3, 4, 5, 2, 2, 6, 0), y, 60);
    RAW_FAILS(fxp_conv_exp(x, y, k, 1, 3, 4, 5, 3, 3, 0, 0), y, 60);
    RAW_FAILS(fxp_conv_exp(NULL, y, k, 1, 3, 4, 5, 3, 3, 6, 0), y, 60);
    RAW_FAILS(fxp_conv_exp(x, y, NULL, 1, 3, 4, 5, 3, 3, 6, 0), y, 60);
    x[17] = NAN;
    RAW_FAILS(fxp_conv_exp(x, y, k, 1, 3, 4, 5, 3, 3, 6, 0), y, 60);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "x holds NaN"));
    x[17] = 0;
    k[4] = INFINITY;
    RAW_FAILS(fxp_conv_exp(x, y, k, 1, 3, 4, 5, 3, 3, 6, 0), y, 60);
    k[4] = 0;
    ck_assert(isnan(fxp_conv_exp_logdet(k, 3, 4, 5, 2, 3)));
    ck_assert(fxp_last_error()[0] != 0);
    ck_assert(isnan(fxp_conv_exp_logdet(NULL, 3, 4, 5, 3, 3)));
    ck_assert(isnan(fxp_conv_exp_logdet(k, 3, 0, 5, 3, 3)));
    k[4] = NAN; /* the centre of K[0,0] */
    ck_assert(isnan(fxp_conv_exp_logdet(k, 3, 4, 5, 3, 3)) && fxp_last_error()[0] != 0);
    k[4] = 0;
    ck_assert_int_lt(fxp_conv_exp(x, NULL, k, 1, 3, 4, 5, 3, 3, 6, 0), 0);
    RAW_FAILS(fxp_conv_exp(x, y, k, 1, 3, 4, 5, 3, 3, 1001, 0), y, 60);
    ck_assert_ok(fxp_conv_exp(x, y, k, 1, 3, 4, 5, 3, 3, 6, 0));
    /* graph: an isolated node, a self loop, bad sizes, NULL, terms < 1 */
    float g[2 * 3 * 2];
    test_randn(g, 12, 82, 1);
    test_randn(t, 4, 83, 0.1f);
    const float isolated[9] = { 0, 1, 0, 1, 0, 0, 0, 0, 0 };
    RAW_FAILS(fxp_graph_conv_exp(g, y, isolated, t, t, 2, 3, 2, 6, 0), y, 12);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "node 2 has no neighbours"));
    const float loop[9] = { 1, 1, 1, 1, 0, 1, 1, 1, 0 };
    RAW_FAILS(fxp_graph_conv_exp(g, y, loop, t, t, 2, 3, 2, 6, 0), y, 12);
    for (int i = 0; i < 9; i++) adj[i] = i % 4 ? 1.0f : 0.0f;
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, t, t, 0, 3, 2, 6, 0), y, 12);
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, t, t, 2, 3, 2, 0, 0), y, 12);
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, NULL, t, 2, 3, 2, 6, 0), y, 12);
    g[3] = NAN;
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, t, t, 2, 3, 2, 6, 0), y, 12);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "x holds NaN at flat index 3"));
    g[3] = 0;
    float thuge[4] = { 1e30f, 0, 0, 1e30f }; /* finite, but the series overflows */
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, thuge, t, 2, 3, 2, 6, 0), y, 12);
    ck_assert_ptr_nonnull(strstr(fxp_last_error(), "not finite"));
    float tinf[4] = { 0.1f, INFINITY, 0, 0.1f };
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, t, tinf, 2, 3, 2, 6, 0), y, 12);
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, tinf, t, 2, 3, 2, 6, 0), y, 12);
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, t, t, 2, 3, 0, 6, 0), y, 12);
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, t, t, 2, -3, 2, 6, 0), y, 12);
    RAW_FAILS(fxp_graph_conv_exp(g, y, NULL, t, t, 2, 3, 2, 6, 0), y, 12);
    ck_assert_int_lt(fxp_graph_conv_exp(g, NULL, adj, t, t, 2, 3, 2, 6, 0), 0);
    adj[1] = NAN;
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, t, t, 2, 3, 2, 6, 0), y, 12);
    adj[1] = -1;
    RAW_FAILS(fxp_graph_conv_exp(g, y, adj, t, t, 2, 3, 2, 6, 0), y, 12);
    adj[1] = 1;
    ck_assert(isnan(fxp_graph_conv_exp_logdet(tinf, 3, 2)) && fxp_last_error()[0] != 0);
    ck_assert_ok(fxp_graph_conv_exp(g, y, adj, t, t, 2, 3, 2, 6, 0));
    ck_assert(isnan(fxp_graph_conv_exp_logdet(t, 0, 2)));
    ck_assert(isnan(fxp_graph_conv_exp_logdet(NULL, 3, 2)));
}
END_TEST

static Suite *expm_suite(void)
{
    Suite *s = suite_create("expm");
    TCase *tc = tcase_create("expm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_conv_vs_pade_and_logdet);
    tcase_add_test(tc, test_graph_vs_pade_and_logdet);
    tcase_add_test(tc, test_dense_vs_pade);
    tcase_add_test(tc, test_conv_kernel_shapes);
    tcase_add_test(tc, test_graph_per_graph_adjacency);
    tcase_add_test(tc, test_generic_linop);
    tcase_add_test(tc, test_second_backward);
    tcase_add_test(tc, test_fused_series_vs_naive);
    tcase_add_test(tc, test_fused_series_every_tile);
    tcase_add_test(tc, test_inverse_round_trip);
    tcase_add_test(tc, test_gradients);
    tcase_add_test(tc, test_graph_permutation_equivariance);
    tcase_add_test(tc, test_conv_shift_equivariance);
    tcase_add_test(tc, test_spectral_norm_estimate);
    tcase_add_test(tc, test_adaptive_terms);
    tcase_add_test(tc, test_memory_terms_plus_two);
    tcase_add_test(tc, test_conv_save_memory);
    tcase_add_test(tc, test_raw_api_matches_and_aliases);
    tcase_add_test(tc, test_raw_api_errors);
    tcase_add_test(tc, test_graph_lanes_vs_tape);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(expm_suite)
