/* Convolution: im2col + GEMM kernels against naive loops on odd shapes,
 * gradient checks of fxp_conv2d, alpha/beta, determinism, errors. */
#include "testutil.h"

#include "ops/conv2d.h"
#include "ops/conv_tiles.h"
#include "ops/densenet.h"

/* Naive transposed convolution and weight gradient, straight from the
 * forward's definition y[n,o,i,j] = sum w[o,c,a,b] x[n,c,i+a-pa,j+b-pb]. */
static int src_index(const fxp__conv_shape *s, int i, int a, int n_, int pad, int *out)
{
    int v = i + a - pad;
    if (s->padding == FXP_PAD_CIRCULAR) v = ((v % n_) + n_) % n_;
    else if (v < 0 || v >= n_) return 0;
    *out = v;
    return 1;
}

static void naive_backward(const fxp__conv_shape *s, const float *x, const float *w,
                           const float *dy, double *dx, double *dw)
{
    const int H = s->h, W = s->w, pa = (s->kh - 1) / 2, pb = (s->kw - 1) / 2;
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->c_out; o++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    double g = dy[((n * s->c_out + o) * H + i) * W + j];
                    for (int c = 0; c < s->c_in; c++)
                        for (int a = 0; a < s->kh; a++)
                            for (int b = 0; b < s->kw; b++) {
                                int ii, jj;
                                if (!src_index(s, i, a, H, pa, &ii) || !src_index(s, j, b, W, pb, &jj))
                                    continue;
                                int wi = ((o * s->c_in + c) * s->kh + a) * s->kw + b;
                                int xi = ((n * s->c_in + c) * H + ii) * W + jj;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                }
}

static double rel_err_d(const float *a, const double *b, size_t n)
{
    double num = 0, den = 1e-12;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= num)) num = d; /* NaN propagates */
        den = fmax(den, fabs(b[i]));
    }
    return num / den;
}

static double dot(const float *a, const float *b, size_t n)
{
    double acc = 0;
    for (size_t i = 0; i < n; i++) acc += (double)a[i] * b[i];
    return acc;
}

/* Kernels against the naive loops on shape s: forward with and without bias,
 * the adjoint identity <conv(x), dy> = <x, conv^T(dy)>, dx and dW against
 * naive_backward, db against plain sums. */
static void check_shape_algo(fxp__conv_shape s, int threads, fxp_conv_algo algo)
{
    fxp_ctx *ctx = test_ctx(threads);
    ck_assert_ok(fxp_ctx_set_conv_algo(ctx, algo));
    const size_t nx = (size_t)s.n * s.c_in * s.h * s.w, ny = (size_t)s.n * s.c_out * s.h * s.w,
                 nw = (size_t)s.c_out * s.c_in * s.kh * s.kw;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(s.c_out * 4), *y = malloc(ny * 4),
          *yr = malloc(ny * 4), *dy = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4),
          *db = malloc(s.c_out * 4);
    double *dxr = calloc(nx, 8), *dwr = calloc(nw, 8);
    test_randn(x, nx, 1, 1);
    test_randn(w, nw, 2, 1);
    test_randn(b, (size_t)s.c_out, 3, 1);
    test_randn(dy, ny, 4, 1);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        fxp__conv2d_naive(&s, yr, x, w, with_bias ? b : NULL);
        ck_assert_ok(fxp__conv2d_forward(ctx, &s, y, x, w, with_bias ? b : NULL, 1, 0));
        ck_assert_msg(test_rel_err(y, yr, ny) < 1e-5,
                      "forward n=%d %dx%d image %dx%d kernel pad %d threads %d bias %d algo %d: %g",
                      s.n, s.h, s.w, s.kh, s.kw, s.padding, threads, with_bias, (int)algo,
                      test_rel_err(y, yr, ny));
    }
    naive_backward(&s, x, w, dy, dxr, dwr);
    memset(dx, 0, nx * 4);
    memset(dw, 0, nw * 4);
    ck_assert_ok(fxp__conv2d_backward_data(ctx, &s, dx, dy, w, 1, 0));
    ck_assert_ok(fxp__conv2d_backward_weight(ctx, &s, dw, dy, x, 1));
    ck_assert_msg(rel_err_d(dx, dxr, nx) < 1e-5, "backward data %dx%d image %dx%d kernel algo %d: %g",
                  s.h, s.w, s.kh, s.kw, (int)algo, rel_err_d(dx, dxr, nx));
    ck_assert_msg(rel_err_d(dw, dwr, nw) < 1e-5,
                  "backward weight %dx%d image %dx%d kernel algo %d: %g", s.h, s.w, s.kh, s.kw,
                  (int)algo, rel_err_d(dw, dwr, nw));
    /* y holds conv(x) + b here; the identity is for the linear part */
    fxp__conv2d_naive(&s, yr, x, w, NULL);
    const double lhs = dot(yr, dy, ny), rhs = dot(x, dx, nx);
    ck_assert_msg(fabs(lhs - rhs) < 1e-5 * (fabs(lhs) + sqrt((double)ny)),
                  "adjoint identity: <conv x, dy> = %.9g, <x, conv^T dy> = %.9g", lhs, rhs);
    memset(db, 0, s.c_out * 4);
    fxp__conv2d_backward_bias(ctx, &s, db, dy);
    for (int o = 0; o < s.c_out; o++) {
        double acc = 0;
        for (int n = 0; n < s.n; n++)
            for (int k = 0; k < s.h * s.w; k++) acc += dy[(n * s.c_out + o) * s.h * s.w + k];
        ck_assert_double_eq_tol(db[o], acc, 1e-4 * (1 + fabs(acc)));
    }
    free(x); free(w); free(b); free(y); free(yr); free(dy); free(dx); free(dw); free(db);
    free(dxr); free(dwr);
    fxp_ctx_free(ctx);
}

/* Every shape through both algorithms: im2col + GEMM and the direct kernels
 * (what FXP_CONV_AUTO picks depends on the channel counts). */
static void check_shape(fxp__conv_shape s, int threads)
{
    check_shape_algo(s, threads, FXP_CONV_IM2COL);
    check_shape_algo(s, threads, FXP_CONV_DIRECT);
}

START_TEST(test_kernels_vs_naive)
{
    /* batch 3, 5x7 images, kernels 1/3/5, 3x5, 5x1 and 5x7 (the whole
     * image), C_in != C_out */
    const int ks[6][2] = { { 1, 1 }, { 3, 3 }, { 5, 5 }, { 3, 5 }, { 5, 1 }, { 5, 7 } };
    for (int pad = 0; pad < 2; pad++)
        for (int k = 0; k < 6; k++)
            for (int threads = 1; threads <= 2; threads++) {
                fxp__conv_shape s = { 3, 4, 5, 7, 6, ks[k][0], ks[k][1], (fxp_padding)pad };
                check_shape(s, threads);
                s.n = 1; /* fewer images than threads: the BLAS-threaded path */
                check_shape(s, threads);
            }
}
END_TEST

START_TEST(test_kernels_odd_images)
{
    /* zero padding with kernels larger than the image, one-pixel-wide and
     * one-pixel-high images, more output than input channels */
    const fxp__conv_shape zs[5] = {
        { 2, 3, 2, 3, 4, 5, 7, FXP_PAD_ZERO }, { 3, 2, 6, 1, 3, 3, 3, FXP_PAD_ZERO },
        { 3, 2, 1, 6, 5, 3, 5, FXP_PAD_ZERO }, { 2, 1, 1, 1, 2, 3, 3, FXP_PAD_ZERO },
        { 4, 2, 6, 1, 3, 5, 1, FXP_PAD_CIRCULAR },
    };
    for (int i = 0; i < 5; i++)
        for (int threads = 1; threads <= 2; threads++) check_shape(zs[i], threads);
}
END_TEST

START_TEST(test_kernels_wide_images)
{
    /* rows wider than the direct kernels' 16-column blocks, with and
     * without a tail; a 5x5 kernel (wider than their 3-column weight
     * blocks); more channels than their 4-channel blocks */
    const fxp__conv_shape ws[4] = {
        { 2, 3, 6, 19, 5, 3, 3, FXP_PAD_ZERO }, { 2, 5, 4, 33, 6, 3, 3, FXP_PAD_CIRCULAR },
        { 1, 2, 3, 16, 9, 5, 5, FXP_PAD_ZERO }, { 3, 7, 5, 18, 7, 5, 3, FXP_PAD_CIRCULAR },
    };
    for (int i = 0; i < 4; i++)
        for (int threads = 1; threads <= 2; threads++) check_shape(ws[i], threads);
}
END_TEST

/* y = alpha conv(x) + beta y + bias (bias unscaled); dx = alpha conv^T(dy) +
 * beta dx; dW += alpha dY col^T; db += sums.  beta = 0 must ignore NaN in
 * the output. 3x3 and 1x1 kernels, 1 and 2 threads. */
static void check_alpha_beta(int k, int threads)
{
    fxp_ctx *ctx = test_ctx(threads);
    fxp__conv_shape s = { 3, 2, 4, 5, 3, k, k, FXP_PAD_ZERO };
    const int nx = 120, ny = 180, nw = 3 * 2 * k * k;
    float x[120], w[54], b[3], y[180], y0[180], ref[180], dx[120], dx0[120], dxr[120], dy[180],
        dw[54], dw0[54], dwr[54], db[3];
    test_randn(x, nx, 1, 1);
    test_randn(w, nw, 2, 1);
    test_randn(b, 3, 6, 1);
    test_randn(y0, ny, 3, 1);
    test_randn(dy, ny, 4, 1);
    test_randn(dx0, nx, 5, 1);
    test_randn(dw0, nw, 7, 1);
    fxp__conv2d_naive(&s, ref, x, w, NULL);
    memcpy(y, y0, sizeof y);
    ck_assert_ok(fxp__conv2d_forward(ctx, &s, y, x, w, b, 0.5f, 2.0f));
    for (int i = 0; i < ny; i++)
        ck_assert_float_eq_tol(y[i], 0.5f * ref[i] + 2 * y0[i] + b[i / 20 % 3], 1e-4f);
    for (int i = 0; i < ny; i++) y[i] = NAN;
    ck_assert_ok(fxp__conv2d_forward(ctx, &s, y, x, w, NULL, 1.5f, 0.0f));
    for (int i = 0; i < ny; i++) ck_assert_float_eq_tol(y[i], 1.5f * ref[i], 1e-4f);

    memset(dxr, 0, sizeof dxr);
    ck_assert_ok(fxp__conv2d_backward_data(ctx, &s, dxr, dy, w, 1, 0));
    memcpy(dx, dx0, sizeof dx);
    ck_assert_ok(fxp__conv2d_backward_data(ctx, &s, dx, dy, w, -1.5f, 0.25f));
    for (int i = 0; i < nx; i++)
        ck_assert_float_eq_tol(dx[i], -1.5f * dxr[i] + 0.25f * dx0[i], 1e-4f);
    memcpy(dx, dx0, sizeof dx);
    ck_assert_ok(fxp__conv2d_backward_data(ctx, &s, dx, dy, w, 1, 1));
    for (int i = 0; i < nx; i++) ck_assert_float_eq_tol(dx[i], dxr[i] + dx0[i], 1e-4f);
    for (int i = 0; i < nx; i++) dx[i] = NAN;
    ck_assert_ok(fxp__conv2d_backward_data(ctx, &s, dx, dy, w, 2, 0));
    for (int i = 0; i < nx; i++) ck_assert_float_eq_tol(dx[i], 2 * dxr[i], 1e-4f);

    memset(dwr, 0, sizeof dwr);
    ck_assert_ok(fxp__conv2d_backward_weight(ctx, &s, dwr, dy, x, 1));
    memcpy(dw, dw0, sizeof dw);
    ck_assert_ok(fxp__conv2d_backward_weight(ctx, &s, dw, dy, x, 0.5f));
    for (int i = 0; i < nw; i++) ck_assert_float_eq_tol(dw[i], dw0[i] + 0.5f * dwr[i], 1e-4f);

    db[0] = 1;
    db[1] = 2;
    db[2] = 3;
    fxp__conv2d_backward_bias(ctx, &s, db, dy);
    for (int o = 0; o < 3; o++) {
        double acc = o + 1;
        for (int n = 0; n < 3; n++)
            for (int i = 0; i < 20; i++) acc += dy[(n * 3 + o) * 20 + i];
        ck_assert_double_eq_tol(db[o], acc, 1e-4);
    }
    fxp_ctx_free(ctx);
}

START_TEST(test_alpha_beta)
{
    for (int threads = 1; threads <= 2; threads++) {
        check_alpha_beta(3, threads);
        check_alpha_beta(1, threads);
    }
}
END_TEST

/* ---- the tape op ---------------------------------------------------------------- */
static float mask_buf[4 * 3 * 3 * 3];

static int conv_fn(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user)
{
    const int mode = (int)(intptr_t)user; /* bit0 bias, bit1 mask, bit2 circular */
    fxp_conv2d_opts o = { (mode & 4) ? FXP_PAD_CIRCULAR : FXP_PAD_ZERO,
                          (mode & 2) ? mask_buf : NULL };
    return fxp_conv2d(t, out, in[0], in[1], (mode & 1) ? in[2] : NULL, &o);
}

START_TEST(test_op_gradcheck)
{
    fxp_ctx *ctx = test_ctx(1);
    int sx[4] = { 2, 3, 4, 5 }, sw[4] = { 4, 3, 3, 3 }, sb[1] = { 4 };
    fxp_tensor x, w, b;
    ck_assert_ok(fxp_tensor_alloc(ctx, &x, 4, sx));
    ck_assert_ok(fxp_tensor_alloc(ctx, &w, 4, sw));
    ck_assert_ok(fxp_tensor_alloc(ctx, &b, 1, sb));
    test_randn(x.data, 120, 1, 1);
    test_randn(w.data, 108, 2, 0.5f);
    test_randn(b.data, 4, 3, 1);
    for (int i = 0; i < 108; i++) mask_buf[i] = (i * 7) % 3 ? 1.0f : 0.0f;
    fxp_tensor *in[3] = { &x, &w, &b };
    for (int mode = 0; mode < 8; mode++)
        ck_assert_gradcheck(ctx, conv_fn, (void *)(intptr_t)mode, (mode & 1) ? 3 : 2, in, NULL,
                            0, 1e-2);
    /* masked-out weights get exactly zero gradient */
    fxp_tape *t;
    fxp_var *vx, *vw, *y, *l;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    ck_assert_ok(fxp_tape_input(t, &vx, &x, 0));
    ck_assert_ok(fxp_tape_input(t, &vw, &w, 1));
    ck_assert_ok(conv_fn(t, (fxp_var *[]){ vx, vw, NULL }, &y, (void *)(intptr_t)2));
    ck_assert_ok(fxp_sum(t, &l, y, FXP_AXES_ALL, 0));
    ck_assert_ok(fxp_tape_backward(t, l, NULL));
    int nonzero = 0;
    for (int i = 0; i < 108; i++) {
        if (mask_buf[i] == 0.0f) ck_assert_float_eq(vw->grad[i], 0.0f);
        else nonzero += vw->grad[i] != 0.0f;
    }
    ck_assert_int_gt(nonzero, 50);
    fxp_tape_free(t);
    fxp_tensor_release(&x);
    fxp_tensor_release(&w);
    fxp_tensor_release(&b);
    fxp_ctx_free(ctx);
}
END_TEST

/* At 2 threads, repeated calls give bitwise equal results (dW partial sums
 * are reduced in a fixed order). */
START_TEST(test_deterministic)
{
    fxp_ctx *ctx = test_ctx(2);
    for (int k = 1; k <= 3; k += 2) {
        fxp__conv_shape s = { 9, 6, 9, 11, 5, k, k, FXP_PAD_ZERO };
        size_t nx = 9 * 6 * 99, ny = 9 * 5 * 99, nw = 5 * 6 * k * k;
        float *x = malloc(nx * 4), *dy = malloc(ny * 4), *w = malloc(nw * 4),
              *dw1 = calloc(nw, 4), *dw2 = calloc(nw, 4), *y1 = malloc(ny * 4),
              *y2 = malloc(ny * 4), *dx1 = calloc(nx, 4), *dx2 = calloc(nx, 4);
        test_randn(x, nx, 1, 1);
        test_randn(dy, ny, 2, 1);
        test_randn(w, nw, 3, 1);
        for (int rep = 0; rep < 3; rep++) {
            float *dw = rep ? dw2 : dw1, *y = rep ? y2 : y1, *dx = rep ? dx2 : dx1;
            memset(dw, 0, nw * 4);
            memset(dx, 0, nx * 4);
            ck_assert_ok(fxp__conv2d_forward(ctx, &s, y, x, w, NULL, 1, 0));
            ck_assert_ok(fxp__conv2d_backward_data(ctx, &s, dx, dy, w, 1, 1));
            ck_assert_ok(fxp__conv2d_backward_weight(ctx, &s, dw, dy, x, 1));
            if (!rep) continue;
            ck_assert_mem_eq(y1, y2, ny * 4);
            ck_assert_mem_eq(dx1, dx2, nx * 4);
            ck_assert_mem_eq(dw1, dw2, nw * 4);
        }
        free(x); free(dy); free(w); free(dw1); free(dw2); free(y1); free(y2); free(dx1);
        free(dx2);
    }
    fxp_ctx_free(ctx);
}
END_TEST

/* Only the inputs that require a gradient get one: x alone, then w alone. */
START_TEST(test_op_partial_grad)
{
    fxp_ctx *ctx = test_ctx(1);
    int sx[4] = { 2, 3, 4, 5 }, sw[4] = { 4, 3, 3, 3 };
    fxp__conv_shape s = { 2, 3, 4, 5, 4, 3, 3, FXP_PAD_ZERO };
    fxp_tensor x, w;
    ck_assert_ok(fxp_tensor_alloc(ctx, &x, 4, sx));
    ck_assert_ok(fxp_tensor_alloc(ctx, &w, 4, sw));
    test_randn(x.data, 120, 1, 1);
    test_randn(w.data, 108, 2, 1);
    float dx[120] = { 0 }, dw[108] = { 0 }, ones[160];
    for (int i = 0; i < 160; i++) ones[i] = 1;
    ck_assert_ok(fxp__conv2d_backward_data(ctx, &s, dx, ones, w.data, 1, 0));
    ck_assert_ok(fxp__conv2d_backward_weight(ctx, &s, dw, ones, x.data, 1));
    for (int which = 0; which < 2; which++) {
        fxp_tape *t;
        fxp_var *vx, *vw, *y, *l;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        ck_assert_ok(fxp_tape_input(t, &vx, &x, which == 0));
        ck_assert_ok(fxp_tape_input(t, &vw, &w, which == 1));
        ck_assert_ok(fxp_conv2d(t, &y, vx, vw, NULL, NULL));
        ck_assert_ok(fxp_sum(t, &l, y, FXP_AXES_ALL, 0));
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
        if (which == 0) {
            ck_assert_ptr_null(vw->grad);
            ck_assert_float_le(test_rel_err(vx->grad, dx, 120), 1e-6);
        } else {
            ck_assert_ptr_null(vx->grad);
            ck_assert_float_le(test_rel_err(vw->grad, dw, 108), 1e-6);
        }
        fxp_tape_free(t);
    }
    fxp_tensor_release(&x);
    fxp_tensor_release(&w);
    fxp_ctx_free(ctx);
}
END_TEST

START_TEST(test_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    int sx[4] = { 1, 3, 4, 4 }, sw_even[4] = { 2, 3, 2, 2 }, sw_c[4] = { 2, 5, 3, 3 },
        sw_big[4] = { 2, 3, 5, 5 }, sb[1] = { 3 };
    fxp_tensor x, we, wc, wb, b;
    ck_assert_ok(fxp_tensor_alloc(ctx, &x, 4, sx));
    ck_assert_ok(fxp_tensor_alloc(ctx, &we, 4, sw_even));
    ck_assert_ok(fxp_tensor_alloc(ctx, &wc, 4, sw_c));
    ck_assert_ok(fxp_tensor_alloc(ctx, &wb, 4, sw_big));
    ck_assert_ok(fxp_tensor_alloc(ctx, &b, 1, sb));
    fxp_var *vx, *ve, *vc, *vb, *vbias, *y;
    ck_assert_ok(fxp_tape_input(t, &vx, &x, 0));
    ck_assert_ok(fxp_tape_input(t, &ve, &we, 0));
    ck_assert_ok(fxp_tape_input(t, &vc, &wc, 0));
    ck_assert_ok(fxp_tape_input(t, &vb, &wb, 0));
    ck_assert_ok(fxp_tape_input(t, &vbias, &b, 0));
    ck_assert_fails(fxp_conv2d(t, &y, vx, ve, NULL, NULL), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "odd"));
    ck_assert_fails(fxp_conv2d(t, &y, vx, vc, NULL, NULL), FXP_ESHAPE, ctx);
    fxp_conv2d_opts circ = { FXP_PAD_CIRCULAR, NULL };
    ck_assert_fails(fxp_conv2d(t, &y, vx, vb, NULL, &circ), FXP_EINVAL, ctx);
    ck_assert_ok(fxp_conv2d(t, &y, vx, vb, NULL, NULL)); /* zero padding is fine */
    ck_assert_fails(fxp_conv2d(t, &y, vx, vb, vbias, NULL), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp_conv2d(t, &y, vx, NULL, NULL, NULL), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_conv2d(t, &y, NULL, vb, NULL, NULL), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_conv2d(t, NULL, vx, vb, NULL, NULL), FXP_EINVAL, ctx);
    ck_assert_fails(fxp_conv2d(t, &y, vbias, vb, NULL, NULL), FXP_ESHAPE, ctx); /* x 1-D */
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "[3]"));
    /* the kernel-level check names the caller */
    fxp__conv_shape zero = { 0, 3, 4, 4, 2, 3, 3, FXP_PAD_ZERO };
    ck_assert_fails(fxp__conv_check(ctx, "caller_fn", &zero), FXP_EINVAL, ctx);
    ck_assert_ptr_nonnull(strstr(fxp_ctx_error(ctx), "caller_fn"));
    fxp__conv_shape badpad = { 1, 3, 4, 4, 2, 3, 3, (fxp_padding)7 };
    ck_assert_fails(fxp__conv_check(ctx, "caller_fn", &badpad), FXP_EINVAL, ctx);
    fxp_tensor_release(&x);
    fxp_tensor_release(&we);
    fxp_tensor_release(&wc);
    fxp_tensor_release(&wb);
    fxp_tensor_release(&b);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST


/* ---- the fused DenseNet (ops/densenet.c) against the same network of single ops ---- */

/* y = the DenseNet of densenet.h from fxp_conv2d, fxp_relu, fxp_concat, fxp_split, ... */
static void densenet_ref(fxp_tape *t, fxp_var *x, const fxp__densenet_vars *v, fxp_var **y)
{
    fxp_var *h = x, *a, *o;
    for (int l = 0; l < v->depth; l++) {
        ck_assert_ok(fxp_conv2d(t, &a, h, v->w1[l], v->b1[l], NULL));
        ck_assert_ok(fxp_relu(t, &a, a));
        ck_assert_ok(fxp_conv2d(t, &a, a, v->w3[l], v->b3[l], NULL));
        ck_assert_ok(fxp_relu(t, &a, a));
        ck_assert_ok(fxp_concat(t, &h, h, a, 1));
    }
    ck_assert_ok(fxp_conv2d(t, &o, h, v->wo, v->bo, NULL));
    if (v->gated) {
        const int n = v->wo->value.shape[0] / 3;
        fxp_var *ga, *gbc, *gb, *gc;
        ck_assert_ok(fxp_split(t, &ga, &gbc, o, 1, n));
        ck_assert_ok(fxp_split(t, &gb, &gc, gbc, 1, n));
        ck_assert_ok(fxp_sigmoid(t, &gc, gc));
        ck_assert_ok(fxp_mul(t, &gb, gb, gc));
        ck_assert_ok(fxp_add(t, &o, ga, gb));
    }
    *y = o;
}

enum { DN_MAXP = 4 * 8 + 2 };

/* Parameters of a DenseNet as tape inputs (requires_grad) over the arrays
 * vals[i], with shapes; returns the count. */
static int densenet_params(fxp_tape *t, int n_in, int depth, int growth, int n_o, float **vals,
                           fxp_var **w1, fxp_var **b1, fxp_var **w3, fxp_var **b3, fxp_var **wo,
                           fxp_var **bo, fxp_var **all)
{
    int k = 0, n = n_in;
    for (int l = 0; l < depth; l++, n += growth) {
        int s1[4] = { n, n, 1, 1 }, sb1[1] = { n }, s3[4] = { growth, n, 3, 3 };
        int sb3[1] = { growth };
        fxp_tensor t1 = fxp_tensor_wrap(vals[k], 4, s1), tb1 = fxp_tensor_wrap(vals[k + 1], 1, sb1);
        fxp_tensor t3 = fxp_tensor_wrap(vals[k + 2], 4, s3);
        fxp_tensor tb3 = fxp_tensor_wrap(vals[k + 3], 1, sb3);
        ck_assert_ok(fxp_tape_input(t, &w1[l], &t1, 1));
        ck_assert_ok(fxp_tape_input(t, &b1[l], &tb1, 1));
        ck_assert_ok(fxp_tape_input(t, &w3[l], &t3, 1));
        ck_assert_ok(fxp_tape_input(t, &b3[l], &tb3, 1));
        all[k] = w1[l];
        all[k + 1] = b1[l];
        all[k + 2] = w3[l];
        all[k + 3] = b3[l];
        k += 4;
    }
    int so[4] = { n_o, n, 1, 1 }, sbo[1] = { n_o };
    fxp_tensor to = fxp_tensor_wrap(vals[k], 4, so), tbo = fxp_tensor_wrap(vals[k + 1], 1, sbo);
    ck_assert_ok(fxp_tape_input(t, wo, &to, 1));
    ck_assert_ok(fxp_tape_input(t, bo, &tbo, 1));
    all[k] = *wo;
    all[k + 1] = *bo;
    return k + 2;
}

static double rel_err_ff(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den + 1e-30));
}

/* Values and every gradient of sum(r y) through the fused op against the
 * reference, on one shape; the same thread count gives the same bits. */
static void check_densenet(int B, int n_in, int H, int W, int depth, int growth, int n_out,
                           int gated, int threads, int recompute)
{
    fxp_ctx *ctx = test_ctx(threads);
    const int N = n_in + depth * growth, n_o = gated ? 3 * n_out : n_out;
    float *vals[DN_MAXP];
    size_t sizes[DN_MAXP];
    int k = 0, n = n_in;
    for (int l = 0; l < depth; l++, n += growth) {
        sizes[k] = (size_t)n * n;
        sizes[k + 1] = n;
        sizes[k + 2] = (size_t)growth * n * 9;
        sizes[k + 3] = growth;
        k += 4;
    }
    sizes[k] = (size_t)n_o * N;
    sizes[k + 1] = n_o;
    const int np = k + 2;
    for (int i = 0; i < np; i++) {
        vals[i] = malloc(sizes[i] * 4);
        /* weights ~ 1/sqrt(fan-in): activations stay O(1); biases give both ReLU sides */
        const size_t fan = i == np - 2 ? (size_t)N : i % 4 == 0 ? sizes[i] / (sizes[i + 1])
                           : i % 4 == 2 ? sizes[i] / sizes[i + 1] : 1;
        test_randn(vals[i], sizes[i], 700 + i, 1.0f / sqrtf((float)fan));
    }
    const size_t nx = (size_t)B * n_in * H * W, ny = (size_t)B * n_out * H * W;
    float *x = malloc(nx * 4), *r = malloc(ny * 4);
    test_randn(x, nx, 690, 1);
    test_randn(r, ny, 691, 1);
    int xs[4] = { B, n_in, H, W }, ys[4] = { B, n_out, H, W };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, xs), tr = fxp_tensor_wrap(r, 4, ys);
    float *grads[2][DN_MAXP + 1], *yv[2];
    for (int pass = 0; pass < 3; pass++) { /* reference, fused, fused again */
        fxp_tape *t;
        ck_assert_ok(fxp_tape_new(ctx, &t));
        fxp_var *vx, *vr, *w1[8], *b1[8], *w3[8], *b3[8], *wo, *bo, *all[DN_MAXP], *y, *l;
        ck_assert_ok(fxp_tape_input(t, &vx, &tx, 1));
        ck_assert_ok(fxp_tape_input(t, &vr, &tr, 0));
        densenet_params(t, n_in, depth, growth, n_o, vals, w1, b1, w3, b3, &wo, &bo, all);
        fxp__densenet_vars v = { depth, growth, gated, w1, b1, w3, b3, wo, bo };
        if (pass == 0)
            densenet_ref(t, vx, &v, &y);
        else
            ck_assert_ok(fxp__densenet_op(t, &y, vx, &v, recompute));
        ck_assert_ok(fxp_mul(t, &l, y, vr));
        ck_assert_ok(fxp_sum(t, &l, l, FXP_AXES_ALL, 0));
        ck_assert_ok(fxp_tape_backward(t, l, NULL));
        const int slot = pass == 0 ? 0 : 1;
        if (pass == 2) { /* the same bits as the first fused pass */
            ck_assert_mem_eq(yv[1], y->value.data, ny * 4);
            ck_assert_mem_eq(grads[1][np], vx->grad, nx * 4);
            for (int i = 0; i < np; i++) ck_assert_mem_eq(grads[1][i], all[i]->grad, sizes[i] * 4);
        } else {
            yv[slot] = malloc(ny * 4);
            memcpy(yv[slot], y->value.data, ny * 4);
            grads[slot][np] = malloc(nx * 4);
            memcpy(grads[slot][np], vx->grad, nx * 4);
            for (int i = 0; i < np; i++) {
                ck_assert_ptr_nonnull(all[i]->grad);
                grads[slot][i] = malloc(sizes[i] * 4);
                memcpy(grads[slot][i], all[i]->grad, sizes[i] * 4);
            }
        }
        fxp_tape_free(t);
    }
    const char *names[4] = { "w1", "b1", "w3", "b3" };
    ck_assert_msg(rel_err_ff(yv[1], yv[0], ny) < 1e-5, "y: %g (B%d n%d %dx%d D%d G%d thr %d)",
                  rel_err_ff(yv[1], yv[0], ny), B, n_in, H, W, depth, growth, threads);
    ck_assert_msg(rel_err_ff(grads[1][np], grads[0][np], nx) < 1e-5, "dx: %g",
                  rel_err_ff(grads[1][np], grads[0][np], nx));
    for (int i = 0; i < np; i++)
        ck_assert_msg(rel_err_ff(grads[1][i], grads[0][i], sizes[i]) < 1e-5,
                      "d%s of layer %d: %g (B%d n%d %dx%d D%d G%d gated %d thr %d recompute %d)",
                      i >= np - 2 ? (i == np - 2 ? "wo" : "bo") : names[i % 4], i / 4,
                      rel_err_ff(grads[1][i], grads[0][i], sizes[i]), B, n_in, H, W, depth, growth,
                      gated, threads, recompute);
    for (int s = 0; s < 2; s++) {
        free(yv[s]);
        for (int i = 0; i <= np; i++) free(grads[s][i]);
    }
    for (int i = 0; i < np; i++) free(vals[i]);
    free(x);
    free(r);
    fxp_ctx_free(ctx);
}

/* Odd sizes (images of 5x7, 3x1, 1x1; channel counts that fill no tile),
 * whole-vector images (8x8, 16x16: the tape's buffers used in place), gated
 * and plain outputs, 1 to 3 threads, stored and recomputed activations. */
START_TEST(test_densenet_vs_ops)
{
    for (int threads = 1; threads <= 3; threads++)
        for (int rec = 0; rec < 2; rec++) {
            check_densenet(3, 5, 5, 7, 3, 4, 5, 1, threads, rec);
            check_densenet(2, 4, 8, 8, 2, 6, 4, 0, threads, rec);
            check_densenet(4, 3, 3, 1, 2, 3, 2, 1, threads, rec);
            check_densenet(1, 2, 1, 1, 1, 1, 1, 0, threads, rec);
        }
    check_densenet(2, 16, 16, 16, 2, 13, 16, 1, 2, 0);
}
END_TEST

/* Every tile shape of this CPU, forced, on one odd and one whole-vector shape. */
START_TEST(test_densenet_every_tile)
{
    for (int kind = 0; kind < fxp__tile_kinds(); kind++) {
        fxp__tile_force(kind);
        check_densenet(2, 5, 5, 6, 2, 7, 3, 1, 2, kind % 2);
        check_densenet(2, 9, 8, 8, 1, 5, 4, 0, 1, 0);
    }
    fxp__tile_force(-1);
}
END_TEST

START_TEST(test_densenet_errors)
{
    fxp_ctx *ctx = test_ctx(1);
    fxp_tape *t;
    ck_assert_ok(fxp_tape_new(ctx, &t));
    float x[2 * 3 * 4 * 4] = { 0 }, w1[9] = { 0 }, b1[3] = { 0 }, w3[2 * 3 * 9] = { 0 };
    float b3[2] = { 0 };
    float wo[3 * 5] = { 0 }, bo[3] = { 0 };
    int xs[4] = { 2, 3, 4, 4 }, s1[4] = { 3, 3, 1, 1 }, sb1[1] = { 3 }, s3[4] = { 2, 3, 3, 3 };
    int sb3[1] = { 2 }, so[4] = { 3, 5, 1, 1 }, sbo[1] = { 3 }, bad[4] = { 2, 2, 3, 3 };
    fxp_tensor tx = fxp_tensor_wrap(x, 4, xs), t1 = fxp_tensor_wrap(w1, 4, s1),
               tb1 = fxp_tensor_wrap(b1, 1, sb1), t3 = fxp_tensor_wrap(w3, 4, s3),
               tb3 = fxp_tensor_wrap(b3, 1, sb3), to = fxp_tensor_wrap(wo, 4, so),
               tbo = fxp_tensor_wrap(bo, 1, sbo), tbad = fxp_tensor_wrap(w3, 4, bad);
    fxp_var *vx, *v1, *vb1, *v3, *vb3, *vo, *vbo, *vbad, *y;
    ck_assert_ok(fxp_tape_input(t, &vx, &tx, 1));
    ck_assert_ok(fxp_tape_input(t, &v1, &t1, 1));
    ck_assert_ok(fxp_tape_input(t, &vb1, &tb1, 1));
    ck_assert_ok(fxp_tape_input(t, &v3, &t3, 1));
    ck_assert_ok(fxp_tape_input(t, &vb3, &tb3, 1));
    ck_assert_ok(fxp_tape_input(t, &vo, &to, 1));
    ck_assert_ok(fxp_tape_input(t, &vbo, &tbo, 1));
    ck_assert_ok(fxp_tape_input(t, &vbad, &tbad, 1));
    fxp__densenet_vars v = { 1, 2, 1, &v1, &vb1, &v3, &vb3, vo, vbo };
    ck_assert_ok(fxp__densenet_op(t, &y, vx, &v, 0));
    ck_assert_int_eq(y->value.shape[1], 1);
    fxp__densenet_vars b = v;
    b.w3 = &vbad; /* [2, 2, 3, 3] for a 3-channel input */
    ck_assert_fails(fxp__densenet_op(t, &y, vx, &b, 0), FXP_ESHAPE, ctx);
    b = v;
    b.gated = 0;
    b.wo = v1; /* [3, 3, 1, 1]: the output conv must read 5 channels */
    ck_assert_fails(fxp__densenet_op(t, &y, vx, &b, 0), FXP_ESHAPE, ctx);
    b = v;
    b.growth = 3; /* w3 has 2 output channels */
    ck_assert_fails(fxp__densenet_op(t, &y, vx, &b, 0), FXP_ESHAPE, ctx);
    ck_assert_fails(fxp__densenet_op(t, &y, vx, NULL, 0), FXP_EINVAL, ctx);
    fxp_tape_free(t);
    fxp_ctx_free(ctx);
}
END_TEST

static Suite *conv_suite(void)
{
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_kernels_vs_naive);
    tcase_add_test(tc, test_kernels_odd_images);
    tcase_add_test(tc, test_kernels_wide_images);
    tcase_add_test(tc, test_alpha_beta);
    tcase_add_test(tc, test_op_gradcheck);
    tcase_add_test(tc, test_op_partial_grad);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_densenet_vs_ops);
    tcase_add_test(tc, test_densenet_every_tile);
    tcase_add_test(tc, test_densenet_errors);
    suite_add_tcase(s, tc);
    return s;
}

FXP_TEST_MAIN(conv_suite)
