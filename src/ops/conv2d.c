/* 2-D convolution kernels by im2col + GEMM (see conv2d.h), and the naive
 * reference.  Threads: when the batch has at least as many images as
 * threads, images are split statically across OpenMP threads, each running
 * serial GEMMs on its own im2col buffer (small per-image GEMMs do not scale
 * inside BLAS); otherwise images run one after another with BLAS threads. */
#include <math.h>
#include <string.h>

#include "blas/blas.h"
#include "ops/im2col.h"

int fxp__conv_check(fxp_ctx *ctx, const char *func, const fxp__conv_shape *s)
{
    if (s->n < 1 || s->c_in < 1 || s->h < 1 || s->w < 1 || s->c_out < 1 || s->kh < 1 || s->kw < 1)
        return fxp__err(ctx, FXP_EINVAL, func,
                        "sizes must be >= 1 (n=%d c_in=%d h=%d w=%d c_out=%d kernel %dx%d)", s->n,
                        s->c_in, s->h, s->w, s->c_out, s->kh, s->kw);
    if (s->kh % 2 == 0 || s->kw % 2 == 0)
        return fxp__err(ctx, FXP_EINVAL, func, "kernel %dx%d: sizes must be odd", s->kh, s->kw);
    if (s->padding != FXP_PAD_ZERO && s->padding != FXP_PAD_CIRCULAR)
        return fxp__err(ctx, FXP_EINVAL, func, "unknown padding %d", (int)s->padding);
    if (s->padding == FXP_PAD_CIRCULAR && (s->kh > s->h || s->kw > s->w))
        return fxp__err(ctx, FXP_EINVAL, func,
                        "circular padding needs the kernel (%dx%d) to fit the image (%dx%d)",
                        s->kh, s->kw, s->h, s->w);
    return FXP_OK;
}

static int is_1x1(const fxp__conv_shape *s) { return s->kh == 1 && s->kw == 1; }

/* Threads to split images over (1: run images serially with BLAS threads). */
static int image_threads(const fxp_ctx *ctx, const fxp__conv_shape *s)
{
    return ctx->n_threads > 1 && s->n >= ctx->n_threads ? ctx->n_threads : 1;
}

/* Per image: Y[c_out, HW] = alpha W[c_out, K] col(x)[K, HW] + beta Y (+ bias). */
int fxp__conv2d_forward(fxp_ctx *ctx, const fxp__conv_shape *s, float *y, const float *x,
                        const float *w, const float *bias, float alpha, float beta)
{
    if (fxp__conv_direct_pick(ctx, s, 0))
        return fxp__conv_direct_forward(ctx, s, y, x, w, bias, alpha, beta);
    const int64_t HW = (int64_t)s->h * s->w, K = (int64_t)s->c_in * s->kh * s->kw;
    const int64_t xs = s->c_in * HW, ys = s->c_out * HW;
    const int nt = image_threads(ctx, s);
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *col = NULL;
    if (!is_1x1(s)) {
        col = fxp__scratch_alloc(ctx, (size_t)(nt * K * HW) * sizeof(float));
        if (!col) return FXP_ENOMEM;
    }
    const int N = s->n;
    FXP_PARALLEL_FOR(nt, nt > 1,
        for (int n = 0; n < N; n++) {
            const float *src = x + n * xs;
            float *dst = y + n * ys;
            if (col) {
                float *mine = col + (nt > 1 ? (int64_t)fxp__omp_thread() : 0) * K * HW;
                fxp__im2col(s, src, mine);
                src = mine;
            }
            if (nt > 1)
                fxp__sgemm_serial(0, 0, s->c_out, (int)HW, (int)K, alpha, w, (int)K, src, (int)HW,
                                  beta, dst, (int)HW);
            else
                fxp__sgemm(ctx, 0, 0, s->c_out, (int)HW, (int)K, alpha, w, (int)K, src, (int)HW, beta,
                           dst, (int)HW);
            if (bias)
                for (int o = 0; o < s->c_out; o++) {
                    float *r = dst + o * HW;
                    for (int64_t i = 0; i < HW; i++) r[i] += bias[o];
                }
        });
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}

/* Per image: dcol[K, HW] = W^T dY; dx = beta dx + alpha col2im(dcol). */
int fxp__conv2d_backward_data(fxp_ctx *ctx, const fxp__conv_shape *s, float *dx,
                              const float *dy, const float *w, float alpha, float beta)
{
    if (fxp__conv_direct_pick(ctx, s, 0))
        return fxp__conv_direct_backward_data(ctx, s, dx, dy, w, alpha, beta);
    const int64_t HW = (int64_t)s->h * s->w, K = (int64_t)s->c_in * s->kh * s->kw;
    const int64_t xs = s->c_in * HW, ys = s->c_out * HW;
    const int nt = image_threads(ctx, s);
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *col = NULL;
    if (!is_1x1(s)) {
        col = fxp__scratch_alloc(ctx, (size_t)(nt * K * HW) * sizeof(float));
        if (!col) return FXP_ENOMEM;
    }
    const int N = s->n;
    FXP_PARALLEL_FOR(nt, nt > 1,
        for (int n = 0; n < N; n++) {
            float *dst = dx + n * xs;
            const float *g = dy + n * ys;
            if (!col) { /* 1x1: dx = alpha W^T dY + beta dx directly */
                if (nt > 1)
                    fxp__sgemm_serial(1, 0, (int)K, (int)HW, s->c_out, alpha, w, (int)K, g, (int)HW,
                                      beta, dst, (int)HW);
                else
                    fxp__sgemm(ctx, 1, 0, (int)K, (int)HW, s->c_out, alpha, w, (int)K, g, (int)HW,
                               beta, dst, (int)HW);
                continue;
            }
            float *mine = col + (nt > 1 ? (int64_t)fxp__omp_thread() : 0) * K * HW;
            if (nt > 1)
                fxp__sgemm_serial(1, 0, (int)K, (int)HW, s->c_out, alpha, w, (int)K, g, (int)HW, 0,
                                  mine, (int)HW);
            else
                fxp__sgemm(ctx, 1, 0, (int)K, (int)HW, s->c_out, alpha, w, (int)K, g, (int)HW, 0, mine,
                           (int)HW);
            if (beta == 0.0f) memset(dst, 0, (size_t)xs * sizeof(float));
            else if (beta != 1.0f)
                for (int64_t i = 0; i < xs; i++) dst[i] *= beta;
            fxp__col2im(s, mine, dst);
        });
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}

/* dW[c_out, K] += alpha sum_n dY[n] col(x[n])^T.  With image threads every
 * thread accumulates its own partial sum, and the partials are added in
 * thread order, so the result is fixed for a given thread count. */
int fxp__conv2d_backward_weight(fxp_ctx *ctx, const fxp__conv_shape *s, float *dw,
                                const float *dy, const float *x, float alpha)
{
    if (fxp__conv_direct_pick(ctx, s, 1))
        return fxp__conv_direct_backward_weight(ctx, s, dw, dy, x, alpha);
    const int64_t HW = (int64_t)s->h * s->w, K = (int64_t)s->c_in * s->kh * s->kw;
    const int64_t xs = s->c_in * HW, ys = s->c_out * HW, ws = s->c_out * K;
    const int nt = image_threads(ctx, s);
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *col = NULL, *part = NULL;
    if (!is_1x1(s)) {
        col = fxp__scratch_alloc(ctx, (size_t)(nt * K * HW) * sizeof(float));
        if (!col) return FXP_ENOMEM;
    }
    if (nt > 1) {
        part = fxp__scratch_alloc(ctx, (size_t)(nt * ws) * sizeof(float));
        if (!part) {
            fxp__scratch_restore(ctx, mark);
            return FXP_ENOMEM;
        }
        memset(part, 0, (size_t)(nt * ws) * sizeof(float));
    }
    const int N = s->n;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int tid = nt > 1 ? fxp__omp_thread() : 0;
        float *acc = part ? part + tid * ws : dw;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *src = x + n * xs;
            if (col) {
                float *mine = col + tid * K * HW;
                fxp__im2col(s, src, mine);
                src = mine;
            }
            if (part)
                fxp__sgemm_serial(0, 1, s->c_out, (int)K, (int)HW, alpha, dy + n * ys, (int)HW,
                                  src, (int)HW, 1, acc, (int)K);
            else
                fxp__sgemm(ctx, 0, 1, s->c_out, (int)K, (int)HW, alpha, dy + n * ys, (int)HW, src,
                           (int)HW, 1, acc, (int)K);
        }
    }
    if (part)
        for (int tid = 0; tid < nt; tid++)
            for (int64_t i = 0; i < ws; i++) dw[i] += part[tid * ws + i];
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}

void fxp__conv2d_backward_bias(fxp_ctx *ctx, const fxp__conv_shape *s, float *db, const float *dy)
{
    (void)ctx;
    const int64_t HW = (int64_t)s->h * s->w;
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->c_out; o++) {
            const float *r = dy + ((int64_t)n * s->c_out + o) * HW;
            double acc = 0;
            for (int64_t i = 0; i < HW; i++) acc += r[i];
            db[o] += (float)acc;
        }
}

void fxp__conv2d_naive(const fxp__conv_shape *s, float *y, const float *x, const float *w,
                       const float *bias)
{
    const int H = s->h, W = s->w, pa = (s->kh - 1) / 2, pb = (s->kw - 1) / 2;
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->c_out; o++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    double acc = bias ? bias[o] : 0.0;
                    for (int c = 0; c < s->c_in; c++)
                        for (int a = 0; a < s->kh; a++)
                            for (int b = 0; b < s->kw; b++) {
                                int ii = i + a - pa, jj = j + b - pb;
                                if (s->padding == FXP_PAD_CIRCULAR) {
                                    ii = ((ii % H) + H) % H;
                                    jj = ((jj % W) + W) % W;
                                } else if (ii < 0 || ii >= H || jj < 0 || jj >= W) {
                                    continue;
                                }
                                acc += (double)w[((o * s->c_in + c) * s->kh + a) * s->kw + b] *
                                       x[(((int64_t)n * s->c_in + c) * H + ii) * W + jj];
                            }
                    y[(((int64_t)n * s->c_out + o) * H + i) * W + j] = (float)acc;
                }
}
