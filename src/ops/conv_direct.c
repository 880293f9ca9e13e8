/* Direct 2-D convolution for few channels, beside im2col + GEMM.
 *
 * With C_in * kh * kw small the im2col matrix is short and the per-image
 * GEMM [C_out, K] x [K, H W] has a tiny M and K, where BLAS spends its time
 * packing.  Here each image is first copied into a padded buffer
 * [C_in, H + kh - 1, W + kw - 1] (zeros, or the wrapped image for circular
 * padding); then every output row is a sum of C_in kh kw shifted input rows
 * scaled by one weight each, an axpy of length W that the compiler
 * vectorises.  Four output channels are computed together so that every
 * input row loaded serves four accumulators.  The inner functions are
 * compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time
 * (GCC target_clones), so a portable build still uses the wide vectors.
 *
 * The transposed convolution (dL/dx) is the same operation with the kernel
 * flipped in space and its channel axes swapped; the weight gradient is a
 * dot product per weight between an output-gradient plane and a shifted
 * padded input plane. */
#include <string.h>

#include "ops/conv2d.h"

#define CO_BLOCK 4
#define VEC 16


int fxp__conv_direct_pick(const fxp_ctx *ctx, const fxp__conv_shape *s)
{
    if (s->kh == 1 && s->kw == 1) return 0; /* 1x1 is one GEMM without im2col */
    switch (ctx ? ctx->conv_algo : FXP_CONV_AUTO) {
    case FXP_CONV_DIRECT: return 1;
    case FXP_CONV_IM2COL: return 0;
    default: break;
    }
    /* measured with bench_conv (docs/performance.md): direct wins while the
     * GEMM's K = C_in kh kw and M = C_out are small */
    return s->c_in * s->kh * s->kw <= FXP_CONV_DIRECT_MAX_K && s->c_out <= FXP_CONV_DIRECT_MAX_COUT;
}

/* xp[c, i, j] = x[c, i - ph, j - pw] inside, zero or wrapped outside. */
static void pad_image(const fxp__conv_shape *s, int c_in, const float *x, float *xp)
{
    const int H = s->h, W = s->w, ph = s->kh / 2, pw = s->kw / 2;
    const int HP = H + 2 * ph, WP = W + 2 * pw;
    const int circ = s->padding == FXP_PAD_CIRCULAR;
    for (int c = 0; c < c_in; c++) {
        const float *xc = x + (int64_t)c * H * W;
        float *pc = xp + (int64_t)c * HP * WP;
        for (int i = 0; i < HP; i++) {
            float *row = pc + (int64_t)i * WP;
            int si = i - ph;
            if (si < 0 || si >= H) {
                if (!circ) {
                    memset(row, 0, (size_t)WP * sizeof(float));
                    continue;
                }
                si = (si % H + H) % H;
            }
            const float *src = xc + (int64_t)si * W;
            memcpy(row + pw, src, (size_t)W * sizeof(float));
            for (int j = 0; j < pw; j++) {
                row[j] = circ ? src[W - pw + j] : 0.0f;
                row[pw + W + j] = circ ? src[j] : 0.0f;
            }
        }
    }
}

/* One image: y[co] = alpha sum_{ci,ky,kx} w[co,ci,ky,kx] xp[ci, r+ky, c+kx]
 * + beta y[co] (+ bias[co]).  wpk: the weights of each block of CO_BLOCK
 * output channels packed as [block][ci, ky, kx][CO_BLOCK] (zeros past
 * c_out).  The accumulators of one block of VEC columns and CO_BLOCK
 * channels stay in registers over the whole reduction; the last block of a
 * row may read up to VEC - 1 floats past the row (xp has that slack) and
 * stores only the valid columns. */
FXP_CLONES FXP_CONTRACT static void direct_image(int c_in, int c_out, int H, int W, int kh,
                                                 int kw, const float *restrict xp,
                                                 const float *restrict wpk, const float *bias,
                                                 float alpha, float beta, float *restrict y)
{
    const int WP = W + kw - 1, HP = H + kh - 1, taps = kh * kw;
    const int64_t HW = (int64_t)H * W, red = (int64_t)c_in * taps;
    for (int co0 = 0; co0 < c_out; co0 += CO_BLOCK) {
        const int nb = c_out - co0 < CO_BLOCK ? c_out - co0 : CO_BLOCK;
        const float *wb = wpk + (int64_t)(co0 / CO_BLOCK) * red * CO_BLOCK;
        for (int r = 0; r < H; r++)
            for (int c0 = 0; c0 < W; c0 += VEC) {
                float acc[CO_BLOCK][VEC] = { { 0 } };
                for (int ci = 0; ci < c_in; ci++)
                    for (int ky = 0; ky < kh; ky++) {
                        const float *xr = xp + ((int64_t)ci * HP + r + ky) * WP + c0;
                        const float *wt = wb + ((int64_t)ci * taps + ky * kw) * CO_BLOCK;
                        for (int kx = 0; kx < kw; kx++, wt += CO_BLOCK) {
                            const float w0 = wt[0], w1 = wt[1], w2 = wt[2], w3 = wt[3];
                            for (int l = 0; l < VEC; l++) {
                                const float v = xr[kx + l];
                                acc[0][l] += w0 * v;
                                acc[1][l] += w1 * v;
                                acc[2][l] += w2 * v;
                                acc[3][l] += w3 * v;
                            }
                        }
                    }
                const int cw = W - c0 < VEC ? W - c0 : VEC;
                for (int b = 0; b < nb; b++) {
                    float *yr = y + (co0 + b) * HW + (int64_t)r * W + c0;
                    const float bb = bias ? bias[co0 + b] : 0.0f;
                    if (beta == 0.0f)
                        for (int c = 0; c < cw; c++) yr[c] = alpha * acc[b][c] + bb;
                    else
                        for (int c = 0; c < cw; c++) yr[c] = alpha * acc[b][c] + beta * yr[c] + bb;
                }
            }
    }
}

/* wpk as direct_image wants it, from w [c_out, c_in, kh, kw]. */
static void pack_weights(int c_in, int c_out, int taps, const float *w, float *wpk)
{
    const int64_t red = (int64_t)c_in * taps;
    const int blocks = (c_out + CO_BLOCK - 1) / CO_BLOCK;
    for (int blk = 0; blk < blocks; blk++)
        for (int64_t t = 0; t < red; t++)
            for (int b = 0; b < CO_BLOCK; b++) {
                const int co = blk * CO_BLOCK + b;
                wpk[((int64_t)blk * red + t) * CO_BLOCK + b] = co < c_out ? w[co * red + t] : 0.0f;
            }
}

/* One image: dw[co,ci,ky,kx] += alpha sum_{r,c} dy[co,r,c] xp[ci,r+ky,c+kx].
 * For each block of CO_BLOCK output channels, input channel and kernel row,
 * CO_BLOCK x KW_MAX accumulators of VEC lanes run over the image: every
 * gradient vector loaded serves kw weights and every input vector CO_BLOCK.
 * Kernels wider than KW_MAX and column tails use plain loops. */
#define KW_MAX 3
FXP_CLONES FXP_CONTRACT static void direct_weight_image(int c_in, int c_out, int H, int W, int kh,
                                                        int kw, const float *restrict xp,
                                                        const float *restrict dy, float alpha,
                                                        float *restrict dw)
{
    const int WP = W + kw - 1, HP = H + kh - 1, taps = kh * kw;
    const int64_t HW = (int64_t)H * W;
    const int Wv = kw <= KW_MAX ? W / VEC * VEC : 0; /* columns done by the blocked loop */
    for (int co0 = 0; co0 < c_out; co0 += CO_BLOCK) {
        const int nb = c_out - co0 < CO_BLOCK ? c_out - co0 : CO_BLOCK;
        for (int ci = 0; ci < c_in; ci++)
            for (int ky = 0; ky < kh; ky++) {
                float acc[CO_BLOCK][KW_MAX][VEC] = { { { 0 } } };
                double tail[CO_BLOCK][16] = { { 0 } };
                for (int r = 0; r < H; r++) {
                    const float *xr = xp + ((int64_t)ci * HP + r + ky) * WP;
                    const float *g[CO_BLOCK];
                    for (int b = 0; b < CO_BLOCK; b++)
                        g[b] = dy + (int64_t)(co0 + (b < nb ? b : 0)) * HW + (int64_t)r * W;
                    for (int c0 = 0; c0 < Wv; c0 += VEC)
                        for (int kx = 0; kx < KW_MAX; kx++) {
                            const float *xs = xr + c0 + (kx < kw ? kx : 0);
                            for (int l = 0; l < VEC; l++) {
                                const float v = xs[l];
                                acc[0][kx][l] += g[0][c0 + l] * v;
                                acc[1][kx][l] += g[1][c0 + l] * v;
                                acc[2][kx][l] += g[2][c0 + l] * v;
                                acc[3][kx][l] += g[3][c0 + l] * v;
                            }
                        }
                    for (int c = Wv; c < W; c++)
                        for (int kx = 0; kx < kw && kx < 16; kx++)
                            for (int b = 0; b < nb; b++)
                                tail[b][kx] += (double)g[b][c] * xr[c + kx];
                    if (kw > 16) /* very wide kernels: the rest directly */
                        for (int c = Wv; c < W; c++)
                            for (int kx = 16; kx < kw; kx++)
                                for (int b = 0; b < nb; b++)
                                    dw[((int64_t)(co0 + b) * c_in + ci) * taps + ky * kw + kx] +=
                                        alpha * g[b][c] * xr[c + kx];
                }
                for (int b = 0; b < nb; b++)
                    for (int kx = 0; kx < kw; kx++) {
                        double sum = kx < 16 ? tail[b][kx] : 0;
                        if (kx < KW_MAX)
                            for (int l = 0; l < VEC; l++) sum += acc[b][kx][l];
                        dw[((int64_t)(co0 + b) * c_in + ci) * taps + ky * kw + kx] +=
                            (float)(alpha * sum);
                    }
            }
    }
}

static int image_threads(const fxp_ctx *ctx, const fxp__conv_shape *s)
{
    return ctx->n_threads > 1 && s->n >= 2 ? FXP_MIN(ctx->n_threads, s->n) : 1;
}

static int64_t padded_size(const fxp__conv_shape *s, int c_in)
{
    return (int64_t)c_in * (s->h + s->kh - 1) * (s->w + s->kw - 1);
}

/* The forward map with c_in/c_out and the weights given (the transposed
 * map calls it with the transformed kernel). */
static int direct_forward(fxp_ctx *ctx, const fxp__conv_shape *s, int c_in, int c_out, float *y,
                          const float *x, const float *w, const float *bias, float alpha,
                          float beta)
{
    const int nt = image_threads(ctx, s), taps = s->kh * s->kw;
    const int64_t ps = padded_size(s, c_in) + VEC; /* + slack for the last column block */
    const int64_t HW = (int64_t)s->h * s->w;
    const int64_t wsz = (int64_t)((c_out + CO_BLOCK - 1) / CO_BLOCK) * CO_BLOCK * c_in * taps;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *wpk = fxp__scratch_alloc(ctx, (size_t)wsz * sizeof(float));
    float *buf = fxp__scratch_alloc(ctx, (size_t)(nt * ps) * sizeof(float));
    if (!wpk || !buf) {
        fxp__scratch_restore(ctx, mark);
        return FXP_ENOMEM;
    }
    pack_weights(c_in, c_out, taps, w, wpk);
    const int N = s->n;
    FXP_PARALLEL_FOR(nt, nt > 1,
        for (int n = 0; n < N; n++) {
            float *xp = buf + (nt > 1 ? (int64_t)fxp__omp_thread() : 0) * ps;
            pad_image(s, c_in, x + n * c_in * HW, xp);
            memset(xp + ps - VEC, 0, VEC * sizeof(float));
            direct_image(c_in, c_out, s->h, s->w, s->kh, s->kw, xp, wpk, bias, alpha, beta,
                         y + n * c_out * HW);
        });
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}

int fxp__conv_direct_forward(fxp_ctx *ctx, const fxp__conv_shape *s, float *y, const float *x,
                             const float *w, const float *bias, float alpha, float beta)
{
    return direct_forward(ctx, s, s->c_in, s->c_out, y, x, w, bias, alpha, beta);
}

int fxp__conv_direct_backward_data(fxp_ctx *ctx, const fxp__conv_shape *s, float *dx,
                                   const float *dy, const float *w, float alpha, float beta)
{
    const int taps = s->kh * s->kw;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *wt = fxp__scratch_alloc(ctx, (size_t)s->c_in * s->c_out * taps * sizeof(float));
    if (!wt) return FXP_ENOMEM;
    /* wt[ci, co, ky, kx] = w[co, ci, kh-1-ky, kw-1-kx] */
    for (int co = 0; co < s->c_out; co++)
        for (int ci = 0; ci < s->c_in; ci++)
            for (int t = 0; t < taps; t++)
                wt[((int64_t)ci * s->c_out + co) * taps + t] =
                    w[((int64_t)co * s->c_in + ci) * taps + (taps - 1 - t)];
    const int rc = direct_forward(ctx, s, s->c_out, s->c_in, dx, dy, wt, NULL, alpha, beta);
    fxp__scratch_restore(ctx, mark);
    return rc;
}

int fxp__conv_direct_backward_weight(fxp_ctx *ctx, const fxp__conv_shape *s, float *dw,
                                     const float *dy, const float *x, float alpha)
{
    const int nt = image_threads(ctx, s);
    const int64_t ps = padded_size(s, s->c_in), HW = (int64_t)s->h * s->w;
    const int64_t ws = (int64_t)s->c_out * s->c_in * s->kh * s->kw;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    /* per thread: a padded image and (threads > 1) a partial dw, added in
     * thread order so the result is fixed for a given thread count */
    float *buf = fxp__scratch_alloc(ctx, (size_t)(nt * (ps + (nt > 1 ? ws : 0))) * sizeof(float));
    if (!buf) return FXP_ENOMEM;
    const int N = s->n;
    if (nt > 1) {
        for (int tid = 0; tid < nt; tid++) memset(buf + tid * (ps + ws) + ps, 0, (size_t)ws * sizeof(float));
    }
    FXP_PARALLEL_FOR(nt, nt > 1,
        for (int n = 0; n < N; n++) {
            const int64_t tid = nt > 1 ? fxp__omp_thread() : 0;
            float *xp = buf + tid * (ps + (nt > 1 ? ws : 0));
            pad_image(s, s->c_in, x + n * s->c_in * HW, xp);
            direct_weight_image(s->c_in, s->c_out, s->h, s->w, s->kh, s->kw, xp,
                                dy + n * s->c_out * HW, alpha, nt > 1 ? xp + ps : dw);
        });
    if (nt > 1)
        for (int tid = 0; tid < nt; tid++) {
            const float *part = buf + tid * (ps + ws) + ps;
            for (int64_t i = 0; i < ws; i++) dw[i] += part[i];
        }
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}
