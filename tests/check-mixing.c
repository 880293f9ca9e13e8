/* The mixing layers (mixing.h) and the inverted wrapper (flow.h): round
 * trips and log-determinants against brute-force Jacobians, forwards
 * against double-precision references written from the documented
 * formulas (the authors' modules), inverses against dense solves, input and
 * parameter gradients in both directions, the LU and Householder
 * parametrisations, thread-count determinism, and errors. */
#include "testutil.h"

#include "expm_ref.h"

static const fxp_mixing_kind all_kinds[] = {
    FXP_MIXING_1X1,      FXP_MIXING_LU,      FXP_MIXING_HOUSEHOLDER,     FXP_MIXING_EMERGING,
    FXP_MIXING_WOODBURY, FXP_MIXING_CONVEXP, FXP_MIXING_CONVEXP_CIRCULAR
};
#define N_KINDS ((int)(sizeof all_kinds / sizeof all_kinds[0]))

static float *param(fxp_params *ps, const char *name)
{
    fxp_param *p = fxp_params_find(ps, name);
    ck_assert_msg(p != NULL, "no parameter %s", name);
    return fxp_param_value(p).data;
}

static int64_t param_numel(fxp_params *ps, const char *name)
{
    fxp_tensor v = fxp_param_value(fxp_params_find(ps, name));
    return fxp_tensor_numel(&v);
}

/* p += N(0, std^2) */
static void add_noise(fxp_params *ps, const char *name, float std, uint64_t seed)
{
    const int64_t n = param_numel(ps, name);
    float *v = param(ps, name), *e = malloc((size_t)n * sizeof(float));
    test_randn(e, (size_t)n, seed, std);
    for (int64_t i = 0; i < n; i++) v[i] += e[i];
    free(e);
}

/* A layer "mix" of the kind on C x H x W with parameters moved far from
 * their initialisation, so that logdets are far from 0 and every
 * parameter matters. */
static fxp_flow *make_layer(fxp_ctx *ctx, fxp_params *ps, fxp_mixing_kind kind, int C, int H,
                            int W, uint64_t seed)
{
    fxp_mixing_opts o;
    fxp_mixing_opts_default(&o, C, H, W);
    o.reflections = C;
    o.woodbury_rank = 3;
    fxp_rng rng;
    fxp_rng_seed(&rng, seed);
    fxp_flow *f = NULL;
    ck_assert_ok(fxp_mixing_new(ctx, ps, "mix", kind, &o, &rng, &f));
    switch (kind) {
    case FXP_MIXING_1X1: add_noise(ps, "mix/weight", 0.4f, seed + 1); break;
    case FXP_MIXING_LU:
        add_noise(ps, "mix/lower", 0.5f, seed + 1);
        add_noise(ps, "mix/upper", 0.5f, seed + 2);
        add_noise(ps, "mix/log_s", 0.6f, seed + 3);
        break;
    case FXP_MIXING_HOUSEHOLDER: break; /* V is N(0, 1) already */
    case FXP_MIXING_EMERGING:
        add_noise(ps, "mix/conv1x1/weight", 0.3f, seed + 1);
        for (int s = 0; s < 2; s++) {
            char kn[32], bn[32];
            snprintf(kn, sizeof kn, "mix/ar%d/weight", s);
            snprintf(bn, sizeof bn, "mix/ar%d/bias", s);
            add_noise(ps, kn, 0.3f, seed + 2 + s);
            add_noise(ps, bn, 0.5f, seed + 4 + s);
            float *k = param(ps, kn);
            for (int c = 0; c < C; c++) /* centre diagonal away from 1 and from 0 */
                k[4 * c * (C + 1) + 3] = (c % 2 ? -1.0f : 1.0f) * (0.6f + 0.45f * (float)(c + s));
        }
        break;
    case FXP_MIXING_WOODBURY:
        add_noise(ps, "mix/conv1x1/weight", 0.3f, seed + 1);
        add_noise(ps, "mix/U", 0.4f, seed + 2);
        add_noise(ps, "mix/V", 0.4f, seed + 3);
        break;
    case FXP_MIXING_CONVEXP:
    case FXP_MIXING_CONVEXP_CIRCULAR: {
        add_noise(ps, "mix/kernel", 0.5f, seed + 1);
        add_noise(ps, "mix/pre_bias", 0.5f, seed + 2);
        add_noise(ps, "mix/post_bias", 0.5f, seed + 3);
        /* converge the spectral-norm power iteration (training forwards) */
        fxp_tape *t;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        fxp_tape_set_grad_enabled(t, 0);
        const int shape[4] = { 1, C, H, W };
        float *x = malloc(sizeof(float) * C * H * W);
        test_randn(x, (size_t)(C * H * W), seed + 4, 1);
        fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
        fxp_flow_io io = { .training = 1 };
        for (int it = 0; it < 30; it++) {
            fxp_var *vx, *z, *ld;
            fxp_tape_reset(t);
            ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
            ck_assert_ok(fxp_flow_forward(f, t, &io, vx, &z, &ld));
        }
        free(x);
        fxp_tape_free(t);
        break;
    }
    }
    return f;
}

/* z = f(x) (dir 0) or f^-1(x) (dir 1) with gradients off; copies into z, ld. */
static void run(fxp_ctx *ctx, fxp_flow *f, int dir, const float *x, int B, int C, int H, int W,
                float *z, float *ld)
{
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, 0);
    const int shape[4] = { B, C, H, W };
    fxp_tensor tx = fxp_tensor_wrap((float *)x, 4, shape);
    fxp_var *vx, *vz, *vl;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
    if (dir == 0) ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &vz, &vl));
    else ck_assert_ok(fxp_flow_inverse(f, t, NULL, vx, &vz, &vl));
    memcpy(z, vz->value.data, sizeof(float) * B * C * H * W);
    if (ld) memcpy(ld, vl->value.data, sizeof(float) * B);
    fxp_tape_free(t);
}

/* ---- names ---------------------------------------------------------------------- */

START_TEST(test_kind_names)
{
    for (int k = 0; k < FXP_MIXING_KINDS; k++) {
        fxp_mixing_kind back;
        const char *n = fxp_mixing_kind_name((fxp_mixing_kind)k);
        ck_assert_msg(n[0] != '\0', "kind %d has no name", k);
        ck_assert_ok(fxp_mixing_kind_parse(n, &back));
        ck_assert_int_eq(back, k);
    }
    fxp_mixing_kind k;
    ck_assert_ok(fxp_mixing_kind_parse("convexp-circular", &k));
    ck_assert_int_eq(k, FXP_MIXING_CONVEXP_CIRCULAR);
    ck_assert_fails(fxp_mixing_kind_parse("1x2", &k), FXP_EINVAL, NULL);
    ck_assert_msg(strstr(fxp_last_error(), "householder") != NULL, "%s", fxp_last_error());
    ck_assert_fails(fxp_mixing_kind_parse(NULL, &k), FXP_EINVAL, NULL);
    ck_assert_str_eq(fxp_mixing_kind_name((fxp_mixing_kind)99), "");
}
END_TEST

/* ---- fxp_flow_check for every kind and its inverted wrapper ---------------------- */

static void check_layer(fxp_ctx *ctx, fxp_flow *f, int C, int H, int W, int trivial_logdet,
                        const char *what)
{
    const int B = 3, shape[4] = { B, C, H, W }, n = B * C * H * W;
    float *x = malloc(sizeof(float) * n);
    test_randn(x, (size_t)n, 5, 1);
    fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
    fxp_flow_check_result r;
    ck_assert_ok(fxp_flow_check(ctx, f, NULL, &tx, 0, &r));
    const double scale = 1 + fabs(r.logdet);
    ck_assert_msg(r.roundtrip_err < 1e-4, "%s: round trip %g", what, r.roundtrip_err);
    ck_assert_msg(r.logdet_sum_err < 1e-4 * scale, "%s: logdets do not cancel (%g)", what,
                  r.logdet_sum_err);
    ck_assert_msg(r.logdet_err < 1e-3 * scale, "%s: logdet %g, brute force %g", what, r.logdet,
                  r.logdet_brute);
    if (trivial_logdet)
        ck_assert_msg(fabs(r.logdet) < 1e-5, "%s: logdet %g should be 0", what, r.logdet);
    else
        ck_assert_msg(fabs(r.logdet) > 0.5, "%s: logdet %g too close to 0 for a useful test",
                      what, r.logdet);
    free(x);
}

START_TEST(test_flow_check)
{
    fxp_ctx *ctx = test_ctx(1);
    const int C = 3, H = 3, W = 4;
    for (int i = 0; i < N_KINDS; i++) {
        fxp_mixing_kind kind = all_kinds[i];
        for (int inverted = 0; inverted < 2; inverted++) {
            fxp_params *ps;
            ck_assert_ok(fxp_params_new(ctx, &ps));
            fxp_flow *f = make_layer(ctx, ps, kind, C, H, W, 100 + i);
            char what[64];
            snprintf(what, sizeof what, "%s%s", inverted ? "inverted " : "",
                     fxp_mixing_kind_name(kind));
            if (inverted) {
                fxp_flow *inner = f;
                ck_assert_ok(fxp_flow_inverted_new(ctx, "inv", inner, &f));
                ck_assert_str_eq(fxp_flow_kind(f), "inverted");
                ck_assert_str_eq(fxp_flow_name(f), "inv");
                ck_assert_ptr_eq(fxp_flow_inverted_inner(f), inner);
                /* its forward is the inner inverse, exactly */
                const int n = 2 * C * H * W;
                float x[72], a[72], b[72], la[2], lb[2];
                test_randn(x, (size_t)n, 6, 1);
                run(ctx, f, 0, x, 2, C, H, W, a, la);
                run(ctx, inner, 1, x, 2, C, H, W, b, lb);
                ck_assert_msg(!memcmp(a, b, sizeof(float) * n) && la[1] == lb[1],
                              "%s: forward differs from the inner inverse", what);
            } else {
                ck_assert_ptr_null(fxp_flow_inverted_inner(f));
            }
            check_layer(ctx, f, C, H, W, kind == FXP_MIXING_HOUSEHOLDER, what);
            fxp_flow_free(f);
            fxp_params_free(ps);
        }
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- forwards against references written from the formulas ---------------------- */

/* out[b, :, p] = M in[b, :, p] per pixel, M [C, C] in double. */
static void ref_pixel(const double *m, const double *in, double *out, int B, int C, int HW)
{
    for (int b = 0; b < B; b++)
        for (int o = 0; o < C; o++)
            for (int p = 0; p < HW; p++) {
                double s = 0;
                for (int c = 0; c < C; c++) s += m[o * C + c] * in[((int64_t)b * C + c) * HW + p];
                out[((int64_t)b * C + o) * HW + p] = s;
            }
}

/* The authors' SquareAutoRegressiveConv2d: conv2d(x, K .* mask, b,
 * padding 1) with the last row and column cropped, then Flip2d. */
static void ref_sar_flip(const float *k, const float *bias, const double *in, double *out, int B,
                         int C, int H, int W)
{
    double *tmp = malloc(sizeof(double) * B * C * H * W);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < C; o++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    double s = bias[o];
                    for (int c = 0; c < C; c++)
                        for (int a = 0; a < 2; a++)
                            for (int d = 0; d < 2; d++) {
                                const int ii = i + a - 1, jj = j + d - 1;
                                if (ii < 0 || jj < 0) continue;
                                if (a == 1 && d == 1 && c > o) continue; /* mask */
                                s += k[((o * C + c) * 2 + a) * 2 + d] *
                                     in[(((int64_t)b * C + c) * H + ii) * W + jj];
                            }
                    tmp[(((int64_t)b * C + o) * H + i) * W + j] = s;
                }
    for (int bc = 0; bc < B * C; bc++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                out[((int64_t)bc * H + i) * W + j] =
                    tmp[((int64_t)bc * H + H - 1 - i) * W + W - 1 - j];
    free(tmp);
}

static double max_abs_diff_ref(const float *a, const double *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

static void to_double(const float *a, double *b, int n)
{
    for (int i = 0; i < n; i++) b[i] = a[i];
}

/* The layer's C x C matrix per pixel (1x1, LU, Householder), from its
 * parameters; returns log|det| of it. */
static double ref_matrix(fxp_params *ps, fxp_mixing_kind kind, const char *wname, int C, double *m)
{
    if (kind == FXP_MIXING_LU) {
        const float *P = param(ps, "mix/perm"), *lo = param(ps, "mix/lower"),
                    *up = param(ps, "mix/upper"), *sg = param(ps, "mix/sign"),
                    *ls = param(ps, "mix/log_s");
        double *L = calloc((size_t)C * C, sizeof(double)),
               *U = calloc((size_t)C * C, sizeof(double)),
               *Pd = malloc(sizeof(double) * C * C), *PL = malloc(sizeof(double) * C * C);
        for (int i = 0; i < C; i++)
            for (int j = 0; j < C; j++) {
                L[i * C + j] = j < i ? lo[i * C + j] : i == j;
                U[i * C + j] = j > i ? up[i * C + j] : i == j ? sg[i] * exp(ls[i]) : 0;
            }
        to_double(P, Pd, C * C);
        ref_matmul(Pd, L, PL, C);
        ref_matmul(PL, U, m, C);
        free(L); free(U); free(Pd); free(PL);
    } else if (kind == FXP_MIXING_HOUSEHOLDER) {
        const float *V = param(ps, "mix/V");
        const int R = (int)(param_numel(ps, "mix/V") / C);
        double *h = malloc(sizeof(double) * C * C), *t = malloc(sizeof(double) * C * C);
        for (int i = 0; i < C * C; i++) m[i] = i % (C + 1) == 0;
        for (int r = 0; r < R; r++) { /* m <- m H(v_r) */
            const float *v = V + r * C;
            double vv = 0;
            for (int i = 0; i < C; i++) vv += (double)v[i] * v[i];
            for (int i = 0; i < C; i++)
                for (int j = 0; j < C; j++) h[i * C + j] = (i == j) - 2.0 * v[i] * v[j] / vv;
            ref_matmul(m, h, t, C);
            memcpy(m, t, sizeof(double) * C * C);
        }
        free(h); free(t);
    } else {
        to_double(param(ps, wname), m, C * C);
    }
    return ref_logabsdet(m, C);
}

/* z and logdet of the layer by the documented formulas, in double. */
static double ref_forward(fxp_params *ps, fxp_mixing_kind kind, const float *x, double *z, int B,
                          int C, int H, int W)
{
    const int HW = H * W, n = B * C * HW;
    double *m = malloc(sizeof(double) * C * C), *xd = malloc(sizeof(double) * n),
           *h = malloc(sizeof(double) * n);
    to_double(x, xd, n);
    const char *wname = kind == FXP_MIXING_1X1 ? "mix/weight" : "mix/conv1x1/weight";
    double ld = HW * ref_matrix(ps, kind, wname, C, m);
    if (kind == FXP_MIXING_HOUSEHOLDER) ld = 0;
    ref_pixel(m, xd, z, B, C, HW);
    if (kind == FXP_MIXING_EMERGING) {
        for (int s = 0; s < 2; s++) {
            char kn[32], bn[32];
            snprintf(kn, sizeof kn, "mix/ar%d/weight", s);
            snprintf(bn, sizeof bn, "mix/ar%d/bias", s);
            const float *k = param(ps, kn);
            memcpy(h, z, sizeof(double) * n);
            ref_sar_flip(k, param(ps, bn), h, z, B, C, H, W);
            for (int c = 0; c < C; c++)
                ld += HW * log(fabs((double)k[((c * C + c) * 2 + 1) * 2 + 1]));
        }
    } else if (kind == FXP_MIXING_WOODBURY) {
        const float *U = param(ps, "mix/U"), *V = param(ps, "mix/V");
        const int r = (int)(param_numel(ps, "mix/U") / HW);
        double *A = malloc(sizeof(double) * HW * HW); /* I + U V */
        for (int i = 0; i < HW; i++)
            for (int j = 0; j < HW; j++) {
                double s = i == j;
                for (int k = 0; k < r; k++) s += (double)U[i * r + k] * V[k * HW + j];
                A[i * HW + j] = s;
            }
        memcpy(h, z, sizeof(double) * n);
        for (int row = 0; row < B * C; row++) /* z_row = h_row (I + U V)^T */
            for (int i = 0; i < HW; i++) {
                double s = 0;
                for (int j = 0; j < HW; j++) s += A[i * HW + j] * h[(int64_t)row * HW + j];
                z[(int64_t)row * HW + i] = s;
            }
        ld += C * ref_logabsdet(A, HW); /* det(I_N + U V) = det(I_r + V U) */
        free(A);
    }
    free(m); free(xd); free(h);
    return ld;
}

START_TEST(test_reference_forward)
{
    fxp_ctx *ctx = test_ctx(1);
    const int B = 2, C = 3, H = 4, W = 5, n = B * C * H * W;
    for (int i = 0; i <= FXP_MIXING_WOODBURY; i++) {
        fxp_mixing_kind kind = all_kinds[i];
        fxp_params *ps;
        ck_assert_ok(fxp_params_new(ctx, &ps));
        fxp_flow *f = make_layer(ctx, ps, kind, C, H, W, 200 + i);
        float x[120], z[120], ld[2];
        double zr[120];
        test_randn(x, (size_t)n, 7, 1);
        run(ctx, f, 0, x, B, C, H, W, z, ld);
        const double ldr = ref_forward(ps, kind, x, zr, B, C, H, W);
        double err = max_abs_diff_ref(z, zr, n), zmax = 0;
        for (int k = 0; k < n; k++) zmax = fmax(zmax, fabs(zr[k]));
        ck_assert_msg(err < 1e-5 * (1 + zmax), "%s: forward differs from the reference by %g",
                      fxp_mixing_kind_name(kind), err);
        for (int b = 0; b < B; b++)
            ck_assert_msg(fabs(ld[b] - ldr) < 1e-5 * (1 + fabs(ldr)), "%s: logdet %g, reference %g",
                          fxp_mixing_kind_name(kind), ld[b], ldr);
        fxp_flow_free(f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- inverses against dense solves ---------------------------------------------- */

/* x = A^-1 b for a dense n x n A (copied), LU with partial pivoting. */
static void dense_solve(const double *a_in, const double *b, double *x, int n)
{
    double *a = malloc(sizeof(double) * n * n);
    memcpy(a, a_in, sizeof(double) * n * n);
    memcpy(x, b, sizeof(double) * n);
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(a[i * n + k]) > fabs(a[p * n + k])) p = i;
        for (int j = 0; j < n; j++) {
            double t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t;
        }
        double t = x[k]; x[k] = x[p]; x[p] = t;
        for (int i = k + 1; i < n; i++) {
            const double m = a[i * n + k] / a[k * n + k];
            for (int j = k; j < n; j++) a[i * n + j] -= m * a[k * n + j];
            x[i] -= m * x[k];
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        for (int j = i + 1; j < n; j++) x[i] -= a[i * n + j] * x[j];
        x[i] /= a[i * n + i];
    }
    free(a);
}

/* The documented affine map as a dense matrix J [D, D] and offset f(0),
 * from the double reference (exact: probing a linear map). */
static double dense_map(fxp_params *ps, fxp_mixing_kind kind, int C, int H, int W, double *J,
                        double *f0)
{
    const int D = C * H * W;
    float *probe = calloc((size_t)(D + 1) * D, sizeof(float));
    double *z = malloc(sizeof(double) * (D + 1) * D);
    for (int j = 0; j < D; j++) probe[(int64_t)(j + 1) * D + j] = 1.0f;
    ref_forward(ps, kind, probe, z, D + 1, C, H, W);
    for (int i = 0; i < D; i++) {
        f0[i] = z[i];
        for (int j = 0; j < D; j++) J[(int64_t)i * D + j] = z[(int64_t)(j + 1) * D + i] - z[i];
    }
    free(probe);
    free(z);
    return ref_logabsdet(J, D);
}

static void dense_inverse_case(fxp_ctx *ctx, fxp_mixing_kind kind, int C, int H, int W,
                               uint64_t seed)
{
    const int D = C * H * W, B = 11; /* B: one full block of 8 images and a partial one */
    fxp_params *ps;
    ck_assert_ok(fxp_params_new(ctx, &ps));
    fxp_flow *f = make_layer(ctx, ps, kind, C, H, W, seed);
    double *J = malloc(sizeof(double) * D * D), *f0 = malloc(sizeof(double) * D),
           *rhs = malloc(sizeof(double) * D), *xr = malloc(sizeof(double) * D);
    float *z = malloc(sizeof(float) * B * D), *x = malloc(sizeof(float) * B * D), ld[11];
    const double ldj = dense_map(ps, kind, C, H, W, J, f0);
    test_randn(z, (size_t)B * D, seed + 10, 2);
    run(ctx, f, 1, z, B, C, H, W, x, ld);
    double worst = 0;
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < D; i++) rhs[i] = z[(int64_t)b * D + i] - f0[i];
        dense_solve(J, rhs, xr, D);
        double xmax = 1;
        for (int i = 0; i < D; i++) xmax = fmax(xmax, fabs(xr[i]));
        worst = fmax(worst, max_abs_diff_ref(x + (int64_t)b * D, xr, D) / xmax);
        ck_assert_msg(fabs(ld[b] + ldj) < 1e-4 * (1 + fabs(ldj)), "%s %dx%dx%d: inverse logdet %g, "
                      "dense %g", fxp_mixing_kind_name(kind), C, H, W, ld[b], -ldj);
    }
    ck_assert_msg(worst < 2e-5, "%s %dx%dx%d: inverse differs from the dense solve by %g",
                  fxp_mixing_kind_name(kind), C, H, W, worst);
    ck_assert_msg(fabs(ldj) > 0.5 || kind == FXP_MIXING_HOUSEHOLDER, "logdet %g too small", ldj);
    free(J); free(f0); free(rhs); free(xr); free(z); free(x);
    fxp_flow_free(f);
    fxp_params_free(ps);
}

START_TEST(test_dense_inverse)
{
    fxp_ctx *ctx = test_ctx(1);
    for (int i = 0; i <= FXP_MIXING_WOODBURY; i++)
        dense_inverse_case(ctx, all_kinds[i], 3, 3, 4, 300 + i);
    /* emerging: odd H != W, a channel count past the register block (5),
     * a single row / column */
    dense_inverse_case(ctx, FXP_MIXING_EMERGING, 3, 3, 5, 310);
    dense_inverse_case(ctx, FXP_MIXING_EMERGING, 2, 5, 3, 311);
    dense_inverse_case(ctx, FXP_MIXING_EMERGING, 5, 3, 2, 312);
    dense_inverse_case(ctx, FXP_MIXING_EMERGING, 1, 1, 7, 313);
    dense_inverse_case(ctx, FXP_MIXING_WOODBURY, 2, 3, 5, 314);
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- gradients -------------------------------------------------------------------- */

typedef struct gc_user {
    fxp_flow *f;
    int dir; /* 0 forward, 1 inverse */
} gc_user;

/* [B, D + 1]: the output flattened per example, then the logdet. */
static int flow_fn(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    const gc_user *u = user;
    fxp_var *z, *ld;
    int rc = u->dir ? fxp_flow_inverse(u->f, t, NULL, in[0], &z, &ld)
                    : fxp_flow_forward(u->f, t, NULL, in[0], &z, &ld);
    if (rc < 0) return rc;
    const int B = z->value.shape[0], D = (int)(fxp_tensor_numel(&z->value) / B),
              zs[2] = { B, D }, ls[2] = { B, 1 };
    if ((rc = fxp_reshape(t, &z, z, 2, zs)) < 0) return rc;
    if ((rc = fxp_reshape(t, &ld, ld, 2, ls)) < 0) return rc;
    return fxp_concat(t, out, z, ld, 1);
}

/* L = sum_i r_i z_i + 0.7 sum_b ld_b; with backward, parameter gradients in ps. */
static double param_loss(fxp_ctx *ctx, fxp_flow *f, int dir, fxp_tensor *x, fxp_params *ps,
                         int backward)
{
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    fxp_tape_set_grad_enabled(t, backward);
    fxp_var *vx, *z, *ld, *s, *l, *vr, *zf;
    ck_assert_ok(fxp_tape_input(t, &vx, x, 0));
    if (dir) ck_assert_ok(fxp_flow_inverse(f, t, NULL, vx, &z, &ld));
    else ck_assert_ok(fxp_flow_forward(f, t, NULL, vx, &z, &ld));
    const int n = (int)fxp_tensor_numel(&z->value);
    float *r = malloc(sizeof(float) * n);
    test_randn(r, (size_t)n, 999, 1);
    fxp_tensor tr = fxp_tensor_wrap(r, 1, &n);
    ck_assert_ok(fxp_tape_input(t, &vr, &tr, 0));
    ck_assert_ok(fxp_reshape(t, &zf, z, 1, &n));
    ck_assert_ok(fxp_mul(t, &s, zf, vr));
    ck_assert_ok(fxp_sum(t, &s, s, FXP_AXES_ALL, 0));
    ck_assert_ok(fxp_sum(t, &l, ld, FXP_AXES_ALL, 0));
    ck_assert_ok(fxp_scale(t, &l, l, 0.7f));
    ck_assert_ok(fxp_add(t, &l, l, s));
    const double v = l->value.data[0];
    if (backward) {
        fxp_params_zero_grad(ps);
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
    }
    free(r);
    fxp_tape_free(t);
    return v;
}

/* Central differences over every trainable parameter. */
static void param_gradcheck(fxp_ctx *ctx, fxp_flow *f, int dir, fxp_tensor *x, fxp_params *ps,
                            const char *what)
{
    param_loss(ctx, f, dir, x, ps, 1);
    const size_t n = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
    float *g = malloc(n * sizeof(float)), *w = fxp_params_data(ps, FXP_PARAM_TRAINABLE);
    memcpy(g, fxp_params_grad_data(ps), n * sizeof(float));
    double worst = 0, scale = 1e-3;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(g[i]));
    for (size_t i = 0; i < n; i++) {
        const float w0 = w[i], h = 1e-2f * fmaxf(1.0f, fabsf(w0));
        w[i] = w0 + h;
        const double lp = param_loss(ctx, f, dir, x, ps, 0);
        w[i] = w0 - h;
        const double lm = param_loss(ctx, f, dir, x, ps, 0);
        w[i] = w0;
        const double num = (lp - lm) / (2.0 * h);
        const double e = fabs(num - g[i]) / fmax(1e-2 * scale, fmax(fabs(num), fabs(g[i])));
        if (e > worst) {
            worst = e;
            at = i;
        }
    }
    ck_assert_msg(worst < 2e-2, "%s: parameter gradients: worst relative error %g at %zu of %zu",
                  what, worst, at, n);
    free(g);
}

START_TEST(test_gradients)
{
    fxp_ctx *ctx = test_ctx(1);
    const int B = 2, C = 2, H = 3, W = 3, shape[4] = { B, C, H, W };
    for (int i = 0; i < N_KINDS; i++) {
        fxp_params *ps;
        ck_assert_ok(fxp_params_new(ctx, &ps));
        fxp_flow *f = make_layer(ctx, ps, all_kinds[i], C, H, W, 400 + i);
        for (int dir = 0; dir < 2; dir++) {
            char what[64];
            snprintf(what, sizeof what, "%s %s", fxp_mixing_kind_name(all_kinds[i]),
                     dir ? "inverse" : "forward");
            float x[36];
            test_randn(x, 36, 401, 1);
            fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
            fxp_tensor *in[1] = { &tx };
            gc_user u = { f, dir };
            fxp_gradcheck_result gr;
            ck_assert_ok(fxp_gradcheck(ctx, flow_fn, &u, 1, in, NULL, 0, &gr));
            ck_assert_msg(gr.max_rel_err < 1e-2, "%s: input gradient rel err %g (index %lld: "
                          "analytic %g numeric %g)", what, gr.max_rel_err,
                          (long long)gr.worst_index, gr.worst_analytic, gr.worst_numeric);
            param_gradcheck(ctx, f, dir, &tx, ps, what);
        }
        fxp_flow_free(f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- the parametrisations ---------------------------------------------------------- */

START_TEST(test_lu_parametrisation)
{
    fxp_ctx *ctx = test_ctx(1);
    const int C = 6;
    fxp_params *ps;
    fxp_flow *f;
    fxp_rng rng;
    fxp_rng_seed(&rng, 500);
    ck_assert_ok(fxp_params_new(ctx, &ps));
    ck_assert_ok(fxp_conv1x1_lu_new(ctx, ps, "mix", C, 2, 3, &rng, &f));
    ck_assert_int_eq(fxp_param_kind(fxp_params_find(ps, "mix/perm")), FXP_PARAM_STATE);
    ck_assert_int_eq(fxp_param_kind(fxp_params_find(ps, "mix/sign")), FXP_PARAM_STATE);
    const float *P = param(ps, "mix/perm"), *sg = param(ps, "mix/sign"),
                *lo = param(ps, "mix/lower"), *up = param(ps, "mix/upper");
    int nonidentity = 0;
    for (int i = 0; i < C; i++) {
        int row = 0, col = 0;
        for (int j = 0; j < C; j++) {
            ck_assert(P[i * C + j] == 0.0f || P[i * C + j] == 1.0f);
            row += P[i * C + j] == 1.0f;
            col += P[j * C + i] == 1.0f;
            if (j >= i) ck_assert(lo[i * C + j] == 0.0f);
            if (j <= i) ck_assert(up[i * C + j] == 0.0f);
        }
        ck_assert_int_eq(row, 1);
        ck_assert_int_eq(col, 1);
        ck_assert(sg[i] == 1.0f || sg[i] == -1.0f);
        nonidentity += P[i * C + i] != 1.0f;
    }
    ck_assert_msg(nonidentity > 0, "pivoting of a random orthogonal matrix left P = I");
    /* P L (U + diag(sign exp(log_s))) reconstructs an orthogonal matrix */
    double W[36], WT[36], I[36];
    ref_matrix(ps, FXP_MIXING_LU, NULL, C, W);
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) WT[i * C + j] = W[j * C + i];
    ref_matmul(W, WT, I, C);
    for (int i = 0; i < C * C; i++)
        ck_assert_msg(fabs(I[i] - (i % (C + 1) == 0)) < 1e-5, "W W^T - I = %g at %d",
                      I[i] - (i % (C + 1) == 0), i);
    /* masked entries get no gradient */
    float x[36];
    const int shape[4] = { 1, C, 2, 3 };
    test_randn(x, 36, 501, 1);
    fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
    param_loss(ctx, f, 0, &tx, ps, 1);
    const float *glo = fxp_param_grad(fxp_params_find(ps, "mix/lower")),
                *gup = fxp_param_grad(fxp_params_find(ps, "mix/upper"));
    double gsum = 0;
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) {
            if (j >= i) ck_assert(glo[i * C + j] == 0.0f);
            if (j <= i) ck_assert(gup[i * C + j] == 0.0f);
            gsum += fabs(glo[i * C + j]) + fabs(gup[i * C + j]);
        }
    ck_assert(gsum > 0);
    fxp_flow_free(f);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

/* The layer's map at one pixel, probed with unit vectors: an orthogonal
 * matrix, for R = C and for fewer reflections; logdet exactly 0. */
START_TEST(test_householder_orthogonal)
{
    fxp_ctx *ctx = test_ctx(1);
    const int C = 5;
    for (int R = 1; R <= C; R += 2) {
        fxp_params *ps;
        fxp_flow *f;
        fxp_rng rng;
        fxp_rng_seed(&rng, 600 + R);
        ck_assert_ok(fxp_params_new(ctx, &ps));
        ck_assert_ok(fxp_householder1x1_new(ctx, ps, "mix", C, 1, 2, R, &rng, &f));
        ck_assert_int_eq(param_numel(ps, "mix/V"), R * C);
        float x[50] = { 0 }, z[50], ld[5];
        for (int c = 0; c < C; c++) x[c * 2 * C + c * 2] = 1.0f; /* image c: e_c at pixel 0 */
        run(ctx, f, 0, x, C, C, 1, 2, z, ld);
        double Q[25], QtQ[25] = { 0 };
        for (int c = 0; c < C; c++) {
            ck_assert(ld[c] == 0.0f);
            for (int o = 0; o < C; o++) Q[o * C + c] = z[c * 2 * C + o * 2];
        }
        for (int i = 0; i < C; i++)
            for (int j = 0; j < C; j++)
                for (int k = 0; k < C; k++) QtQ[i * C + j] += Q[k * C + i] * Q[k * C + j];
        for (int i = 0; i < C * C; i++)
            ck_assert_msg(fabs(QtQ[i] - (i % (C + 1) == 0)) < 1e-5, "R=%d: Q^T Q - I = %g", R,
                          QtQ[i] - (i % (C + 1) == 0));
        double ref[25];
        const double ldr = ref_matrix(ps, FXP_MIXING_HOUSEHOLDER, NULL, C, ref);
        ck_assert(fabs(ldr) < 1e-9);
        for (int i = 0; i < C * C; i++) ck_assert(fabs(Q[i] - ref[i]) < 1e-6);
        fxp_flow_free(f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------ */

/* Outputs and logdets are identical with 1 and 2 threads (the emerging
 * solve splits whole images between threads; the other kernels too);
 * parameter gradients are identical between two runs with 2 threads and
 * agree with 1 thread up to rounding (the convolution weight gradient adds
 * per-thread partial sums, fixed for a given thread count). */
START_TEST(test_threads)
{
    fxp_ctx *ctx = test_ctx(1);
    enum { B = 19, C = 4, H = 5, W = 6, N = B * C * H * W };
    const int shape[4] = { B, C, H, W }, threads[3] = { 1, 2, 2 };
    static float x[N], z[3][N], xi[3][N], ld[3][B], ldi[3][B];
    test_randn(x, N, 700, 1);
    for (int i = 0; i < N_KINDS; i++) {
        fxp_params *ps;
        ck_assert_ok(fxp_params_new(ctx, &ps));
        fxp_flow *f = make_layer(ctx, ps, all_kinds[i], C, H, W, 700 + i);
        const size_t np = fxp_params_size(ps, FXP_PARAM_TRAINABLE);
        float *g[3][2];
        fxp_tensor tx = fxp_tensor_wrap(x, 4, shape);
        for (int k = 0; k < 3; k++) {
            ck_assert_ok(fxp_ctx_set_threads(ctx, threads[k]));
            run(ctx, f, 0, x, B, C, H, W, z[k], ld[k]);
            run(ctx, f, 1, x, B, C, H, W, xi[k], ldi[k]);
            for (int dir = 0; dir < 2; dir++) {
                param_loss(ctx, f, dir, &tx, ps, 1);
                g[k][dir] = malloc(np * sizeof(float));
                memcpy(g[k][dir], fxp_params_grad_data(ps), np * sizeof(float));
            }
        }
        ck_assert_ok(fxp_ctx_set_threads(ctx, 1));
        const char *kn = fxp_mixing_kind_name(all_kinds[i]);
        for (int k = 1; k < 3; k++) {
            ck_assert_msg(!memcmp(z[0], z[k], sizeof z[0]), "%s: forward depends on threads", kn);
            ck_assert_msg(!memcmp(xi[0], xi[k], sizeof xi[0]), "%s: inverse depends on threads",
                          kn);
            ck_assert_msg(!memcmp(ld[0], ld[k], sizeof ld[0]) &&
                              !memcmp(ldi[0], ldi[k], sizeof ldi[0]),
                          "%s: logdet depends on threads", kn);
        }
        for (int dir = 0; dir < 2; dir++) {
            const char *dn = dir ? "inverse" : "forward";
            ck_assert_msg(!memcmp(g[1][dir], g[2][dir], np * sizeof(float)),
                          "%s: %s gradients differ between two runs with 2 threads", kn, dn);
            ck_assert_msg(test_rel_err(g[1][dir], g[0][dir], np) < 1e-5,
                          "%s: %s gradients with 1 and 2 threads differ by %g", kn, dn,
                          test_rel_err(g[1][dir], g[0][dir], np));
            for (int k = 0; k < 3; k++) free(g[k][dir]);
        }
        fxp_flow_free(f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* ---- errors --------------------------------------------------------------------------- */

static void expect_option_error(fxp_ctx *ctx, fxp_mixing_kind kind, const fxp_mixing_opts *o,
                                const char *option)
{
    fxp_params *ps;
    fxp_flow *f = NULL;
    fxp_rng rng;
    fxp_rng_seed(&rng, 1);
    ck_assert_ok(fxp_params_new(ctx, &ps));
    ck_assert_fails(fxp_mixing_new(ctx, ps, "bad", kind, o, &rng, &f), FXP_EINVAL, ctx);
    ck_assert_msg(strstr(fxp_ctx_error(ctx), option) != NULL, "message \"%s\" does not name %s",
                  fxp_ctx_error(ctx), option);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(fxp_params_count(ps), 0);
    fxp_params_free(ps);
}

START_TEST(test_option_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_mixing_opts d, o;
    fxp_mixing_opts_default(&d, 4, 3, 4);
    ck_assert_int_eq(d.reflections, 4);
    ck_assert_int_eq(d.woodbury_rank, 24);
    ck_assert_int_eq(d.convexp_kernel, 3);
    ck_assert_int_eq(d.convexp_terms_train, 6);
    ck_assert_int_eq(d.convexp_terms_eval, 13);
    o = d, o.reflections = -1;
    expect_option_error(ctx, FXP_MIXING_HOUSEHOLDER, &o, "reflections");
    o = d, o.woodbury_rank = 0;
    expect_option_error(ctx, FXP_MIXING_WOODBURY, &o, "woodbury_rank");
    o = d, o.convexp_kernel = 2;
    expect_option_error(ctx, FXP_MIXING_CONVEXP, &o, "convexp_kernel");
    o = d, o.convexp_kernel = 5;
    expect_option_error(ctx, FXP_MIXING_CONVEXP_CIRCULAR, &o, "convexp_kernel");
    o = d, o.convexp_coeff = 0;
    expect_option_error(ctx, FXP_MIXING_CONVEXP, &o, "convexp_coeff");
    o = d, o.convexp_coeff = NAN;
    expect_option_error(ctx, FXP_MIXING_CONVEXP, &o, "convexp_coeff");
    o = d, o.convexp_power_steps = -1;
    expect_option_error(ctx, FXP_MIXING_CONVEXP, &o, "convexp_power_steps");
    o = d, o.convexp_terms_train = 0;
    expect_option_error(ctx, FXP_MIXING_CONVEXP, &o, "convexp_terms_train");
    o = d, o.convexp_terms_eval = 1001;
    expect_option_error(ctx, FXP_MIXING_CONVEXP_CIRCULAR, &o, "convexp_terms_eval");
    for (int i = 0; i < N_KINDS; i++) {
        o = d, o.channels = 0;
        expect_option_error(ctx, all_kinds[i], &o, "channels =");
        o = d, o.width = -2;
        expect_option_error(ctx, all_kinds[i], &o, "width =");
        o = d, o.height = 0;
        expect_option_error(ctx, all_kinds[i], &o, "height =");
    }
    expect_option_error(ctx, (fxp_mixing_kind)99, &d, "kind");
    /* options another kind uses are not checked */
    o = d, o.woodbury_rank = 0, o.convexp_kernel = 2;
    fxp_params *ps;
    fxp_flow *f;
    fxp_rng rng;
    fxp_rng_seed(&rng, 2);
    ck_assert_ok(fxp_params_new(ctx, &ps));
    ck_assert_ok(fxp_mixing_new(ctx, ps, "ok", FXP_MIXING_HOUSEHOLDER, &o, &rng, &f));
    fxp_flow_free(f);
    ck_assert_fails(fxp_mixing_new(ctx, NULL, "x", FXP_MIXING_1X1, &d, &rng, &f), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_mixing_new(ctx, ps, "x", FXP_MIXING_1X1, NULL, &rng, &f), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_householder1x1_new(ctx, ps, "h", 3, 2, 2, 4097, &rng, &f), FXP_EINVAL, ctx);
    /* reflections 0: R = C */
    o = d, o.reflections = 0;
    ck_assert_ok(fxp_mixing_new(ctx, ps, "h0", FXP_MIXING_HOUSEHOLDER, &o, &rng, &f));
    ck_assert_int_eq(param_numel(ps, "h0/V"), 4 * 4);
    fxp_flow_free(f);
    ck_assert_fails(fxp_woodbury_new(ctx, ps, "w", 3, 2, 2, -1, &rng, &f), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_emerging_new(ctx, ps, "e", 3, 0, 2, &rng, &f), FXP_EINVAL, ctx);
    /* the inverted wrapper */
    ck_assert_fails(fxp_flow_inverted_new(ctx, "inv", NULL, &f), FXP_EINVAL, ctx);
    fxp_flow *inner;
    ck_assert_ok(fxp_conv1x1_new(ctx, ps, "in", 2, 2, 2, &rng, &inner));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    /* fails, and frees inner */
    ck_assert_fails(fxp_flow_inverted_new(ctx, longname, inner, &f), FXP_EINVAL, ctx);
    fxp_params_free(ps);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_shape_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    const int bad[][4] = { { 2, 2, 3, 4 }, { 2, 3, 4, 3 }, { 2, 3, 3, 5 } };
    float data[120] = { 0 };
    for (int i = 0; i < N_KINDS; i++) {
        fxp_params *ps;
        ck_assert_ok(fxp_params_new(ctx, &ps));
        fxp_flow *f = make_layer(ctx, ps, all_kinds[i], 3, 3, 4, 800 + i);
        fxp_tape *t;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        for (int k = 0; k < 4; k++) {
            fxp_tensor tx = k < 3 ? fxp_tensor_wrap(data, 4, bad[k])
                                  : fxp_tensor_wrap(data, 3, bad[0] + 1);
            fxp_var *vx, *z, *ld;
            ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
            ck_assert_fails(fxp_flow_forward(f, t, NULL, vx, &z, &ld), FXP_ESHAPE, ctx);
            ck_assert_msg(strstr(fxp_ctx_error(ctx), "mix") != NULL, "%s", fxp_ctx_error(ctx));
            ck_assert_fails(fxp_flow_inverse(f, t, NULL, vx, &z, &ld), FXP_ESHAPE, ctx);
            ck_assert_msg(strstr(fxp_ctx_error(ctx), "mix") != NULL, "%s", fxp_ctx_error(ctx));
        }
        fxp_tape_free(t);
        fxp_flow_free(f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* Singular maps: a zero on the emerging layer's triangular diagonal, a
 * singular 1x1 matrix. */
START_TEST(test_singular)
{
    fxp_ctx *ctx = test_ctx(1);
    const int shape[4] = { 1, 3, 2, 2 };
    float data[12];
    test_randn(data, 12, 900, 1);
    fxp_tensor tx = fxp_tensor_wrap(data, 4, shape);
    for (int kind = 0; kind < 2; kind++) {
        fxp_params *ps;
        ck_assert_ok(fxp_params_new(ctx, &ps));
        fxp_flow *f =
            make_layer(ctx, ps, kind ? FXP_MIXING_1X1 : FXP_MIXING_EMERGING, 3, 2, 2, 901);
        if (kind) memset(param(ps, "mix/weight"), 0, 9 * sizeof(float));
        else param(ps, "mix/ar1/weight")[4 * 1 * 4 + 3] = 0.0f; /* K[1, 1, 1, 1] */
        fxp_tape *t;
        fxp_var *vx, *z, *ld;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        ck_assert_ok(fxp_tape_input(t, &vx, &tx, 0));
        ck_assert_fails(fxp_flow_forward(f, t, NULL, vx, &z, &ld), FXP_ENUMERIC, ctx);
        ck_assert_fails(fxp_flow_inverse(f, t, NULL, vx, &z, &ld), FXP_ENUMERIC, ctx);
        ck_assert_msg(strstr(fxp_ctx_error(ctx), "singular") || strstr(fxp_ctx_error(ctx), "zero"),
                      "%s", fxp_ctx_error(ctx));
        fxp_tape_free(t);
        fxp_flow_free(f);
        fxp_params_free(ps);
    }
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *mixing_suite(void)
{
    Suite *s = suite_create("mixing");
    TCase *tc = tcase_create("mixing");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_kind_names);
    tcase_add_test(tc, test_flow_check);
    tcase_add_test(tc, test_reference_forward);
    tcase_add_test(tc, test_dense_inverse);
    tcase_add_test(tc, test_gradients);
    tcase_add_test(tc, test_lu_parametrisation);
    tcase_add_test(tc, test_householder_orthogonal);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_option_errors);
    tcase_add_test(tc, test_shape_errors);
    tcase_add_test(tc, test_singular);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(mixing_suite)
