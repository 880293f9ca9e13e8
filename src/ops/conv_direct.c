/* Direct 2-D convolution kernels, beside im2col + GEMM.
 *
 * Each image is copied into a padded buffer [C_in, H + kh - 1, W + kw - 1]
 * (zeros, or the wrapped image for circular padding).  Outputs are computed
 * on the padded-width grid q = r WP + c (WP = W + kw - 1), where the tap
 * (ky, kx) of every output reads the input at q + ky WP + kx: a block of
 * consecutive outputs reads contiguous floats for every tap, whatever the
 * image width, and no im2col matrix is built.  The grid's kw - 1 extra
 * columns per row are computed and dropped.  Register blocking: the forward
 * keeps 6 output channels x 48 positions of accumulators over the whole
 * reduction over (C_in, kh, kw); the weight gradient keeps 4 output
 * channels x 3 kernel columns x 16 lanes over the positions of up to 4
 * images.  The inner functions are compiled for AVX-512, AVX2 and baseline
 * x86-64 and picked when the library is loaded (FXP_CLONES), so a portable
 * build still uses wide vectors.
 *
 * The transposed convolution (dL/dx) is the forward with the kernel flipped
 * in space and its channel axes swapped.  Threads split images (forward) or
 * groups of images (weight gradient, with per-thread partial sums added in
 * thread order: fixed results for a given thread count). */
#include <string.h>

#include "blas/blas.h"
#include "ops/conv2d.h"

#define VEC 16     /* weight gradient: lanes per accumulator */
#define FLAT_CO 6   /* forward: output channels per block */
#define FLAT_NV 48  /* forward: output positions per block (three AVX-512 vectors) */


int fxp__conv_direct_pick(const fxp_ctx *ctx, const fxp__conv_shape *s, int weight)
{
    if (s->kh == 1 && s->kw == 1) return 0; /* 1x1 is one GEMM without im2col */
    switch (ctx ? ctx->conv_algo : FXP_CONV_AUTO) {
    case FXP_CONV_DIRECT: return 1;
    case FXP_CONV_IM2COL: return 0;
    default: break;
    }
    /* Measured with bench_conv and compare_peer.py (docs/performance.md).
     * Forward and transposed maps: against OpenBLAS's AVX2 GEMM the direct
     * kernels win for C = 3 ... 96 (3x3); against its AVX-512 GEMM up to
     * C = 12 in the series (at C = 48 single kernels win, the series loses).  Weight gradient: the direct one wins at few channels
     * only.  Beyond the measured range GEMM's cache blocking is the safer
     * choice. */
    const int64_t kin = (int64_t)s->c_in * s->kh * s->kw, kout = (int64_t)s->c_out * s->kh * s->kw;
    const int64_t kmax = weight ? FXP_CONV_DIRECT_MAX_K_WEIGHT
                         : fxp__blas_has_avx512_gemm() ? FXP_CONV_DIRECT_MAX_K_AVX512
                                                       : FXP_CONV_DIRECT_MAX_K;
    return kin <= kmax && kout <= kmax;
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
 * + beta y[co] (+ bias[co]).
 *
 * Output positions are taken on the padded-width grid, q = r WP + c with
 * WP = W + kw - 1: there every tap (ky, kx) reads the input at the constant
 * offset q + ky WP + kx, so a block of FLAT_NV consecutive positions reads
 * contiguous floats for every tap, whatever the image width.  Positions with
 * c >= W are computed and dropped (a (kw-1)/WP share of the work).  Each
 * block keeps FLAT_CO x FLAT_NV accumulators in registers over the whole
 * reduction over (ci, ky, kx).  wpk: weights packed per block of FLAT_CO
 * output channels as [block][ci, ky, kx][FLAT_CO] (zeros past c_out).  Valid
 * positions read only their own padded plane; dropped ones may read up to
 * FLAT_NV + kw floats past the last plane (the caller's slack). */
FXP_CLONES FXP_CONTRACT static void direct_image(int c_in, int c_out, int H, int W, int kh,
                                                 int kw, const float *restrict xp,
                                                 const float *restrict wpk, const float *bias,
                                                 float alpha, float beta, float *restrict y,
                                                 float *restrict yacc, double *ss)
{
    const int WP = W + kw - 1, HP = H + kh - 1, taps = kh * kw, Q = H * WP;
    const int64_t plane = (int64_t)HP * WP, HW = (int64_t)H * W, red = (int64_t)c_in * taps;
    for (int co0 = 0; co0 < c_out; co0 += FLAT_CO) {
        const int nb = c_out - co0 < FLAT_CO ? c_out - co0 : FLAT_CO;
        const float *wb = wpk + (int64_t)(co0 / FLAT_CO) * red * FLAT_CO;
        for (int q0 = 0; q0 < Q; q0 += FLAT_NV) {
            float acc[FLAT_CO][FLAT_NV] = { { 0 } };
            const float *wt = wb;
            for (int ci = 0; ci < c_in; ci++) {
                const float *xc = xp + ci * plane + q0;
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++, wt += FLAT_CO) {
                        const float *xs = xc + ky * WP + kx;
                        const float w0 = wt[0], w1 = wt[1], w2 = wt[2], w3 = wt[3], w4 = wt[4],
                                    w5 = wt[5];
                        for (int l = 0; l < FLAT_NV; l++) {
                            const float v = xs[l];
                            acc[0][l] += w0 * v;
                            acc[1][l] += w1 * v;
                            acc[2][l] += w2 * v;
                            acc[3][l] += w3 * v;
                            acc[4][l] += w4 * v;
                            acc[5][l] += w5 * v;
                        }
                    }
            }
            /* scatter the valid positions, one row segment at a time */
            const int qn = Q - q0 < FLAT_NV ? Q - q0 : FLAT_NV;
            for (int b = 0; b < nb; b++) {
                float *yb = y + (co0 + b) * HW;
                const float bb = bias ? bias[co0 + b] : 0.0f;
                int l = 0, r = q0 / WP, c = q0 % WP;
                while (l < qn) {
                    if (c >= W) { /* dropped columns up to the next row */
                        l += WP - c;
                        c = 0;
                        r++;
                        continue;
                    }
                    const int len = W - c < qn - l ? W - c : qn - l;
                    float *yr = yb + (int64_t)r * W + c;
                    const float *ab = acc[b] + l;
                    if (yacc) { /* a series term: t = alpha acc, yacc += t, ||t||^2 */
                        float *ya = yacc + (co0 + b) * HW + (int64_t)r * W + c;
                        float part = 0;
                        for (int j = 0; j < len; j++) {
                            const float v = alpha * ab[j];
                            yr[j] = v;
                            ya[j] += v;
                            part += v * v;
                        }
                        *ss += part;
                    } else if (beta == 0.0f)
                        for (int j = 0; j < len; j++) yr[j] = alpha * ab[j] + bb;
                    else
                        for (int j = 0; j < len; j++) yr[j] = alpha * ab[j] + beta * yr[j] + bb;
                    l += len;
                    c += len;
                }
            }
        }
    }
}

/* wpk as direct_image wants it, from w [c_out, c_in, kh, kw]. */
static void pack_weights(int c_in, int c_out, int taps, const float *w, float *wpk)
{
    const int64_t red = (int64_t)c_in * taps;
    const int blocks = (c_out + FLAT_CO - 1) / FLAT_CO;
    for (int blk = 0; blk < blocks; blk++)
        for (int64_t t = 0; t < red; t++)
            for (int b = 0; b < FLAT_CO; b++) {
                const int co = blk * FLAT_CO + b;
                wpk[((int64_t)blk * red + t) * FLAT_CO + b] = co < c_out ? w[co * red + t] : 0.0f;
            }
}

/* gf[co, q] = dy[co, r, c] at q = r WP + c for c < W, zero elsewhere and up
 * to qp (the gradient on the forward's padded-width grid). */
static void flat_grad(int c_out, int H, int W, int WP, int64_t qp, const float *dy, float *gf)
{
    for (int co = 0; co < c_out; co++) {
        float *g = gf + co * qp;
        const float *d = dy + (int64_t)co * H * W;
        memset(g, 0, (size_t)qp * sizeof(float));
        for (int r = 0; r < H; r++)
            memcpy(g + (int64_t)r * WP, d + (int64_t)r * W, (size_t)W * sizeof(float));
    }
}

/* ng images: dw[co,ci,ky,kx] += alpha sum_n sum_q gf[n,co,q] xp[n,ci, q + ky WP + kx],
 * the forward's map read backwards on the padded-width grid (gf is zero at
 * the dropped positions, so what they read does not matter).  For each block
 * of WCO output channels, input channel, kernel row and group of WKX kernel
 * columns, WCO x WKX accumulators of VEC lanes run over the positions of all
 * ng images (so their final sum across lanes is paid once per group): each
 * gradient vector loaded serves WKX weights and each input vector WCO. */
#define WCO 4
#define WKX 3 /* written out below */
FXP_CLONES FXP_CONTRACT static void direct_weight_images(int ng, int c_in, int c_out, int H, int W,
                                                         int kh, int kw, const float *restrict xp,
                                                         int64_t xstride, const float *restrict gf,
                                                         int64_t gstride, int64_t qp, float alpha,
                                                         float *restrict dw)
{
    const int WP = W + kw - 1, HP = H + kh - 1, taps = kh * kw;
    const int64_t plane = (int64_t)HP * WP;
    for (int co0 = 0; co0 < c_out; co0 += WCO) {
        const int nb = c_out - co0 < WCO ? c_out - co0 : WCO;
        const float *g0 = gf + (int64_t)co0 * qp, *g1 = gf + (int64_t)(co0 + (nb > 1)) * qp;
        const float *g2 = gf + (int64_t)(co0 + (nb > 2 ? 2 : 0)) * qp;
        const float *g3 = gf + (int64_t)(co0 + (nb > 3 ? 3 : 0)) * qp;
        for (int ci = 0; ci < c_in; ci++)
            for (int ky = 0; ky < kh; ky++)
                for (int kx0 = 0; kx0 < kw; kx0 += WKX) {
                    float acc[WCO][WKX][VEC] = { { { 0 } } };
                    for (int n = 0; n < ng; n++) { /* images share one reduction */
                        const float *xr = xp + n * xstride + ci * plane + (int64_t)ky * WP + kx0;
                        const int64_t go = n * gstride;
                        for (int64_t q0 = 0; q0 < qp; q0 += VEC)
                            for (int l = 0; l < VEC; l++) { /* 7 vector loads, 12 FMAs */
                                const float a0 = g0[go + q0 + l], a1 = g1[go + q0 + l];
                                const float a2 = g2[go + q0 + l], a3 = g3[go + q0 + l];
                                const float v0 = xr[q0 + l], v1 = xr[q0 + 1 + l];
                                const float v2 = xr[q0 + 2 + l];
                                acc[0][0][l] += a0 * v0;
                                acc[0][1][l] += a0 * v1;
                                acc[0][2][l] += a0 * v2;
                                acc[1][0][l] += a1 * v0;
                                acc[1][1][l] += a1 * v1;
                                acc[1][2][l] += a1 * v2;
                                acc[2][0][l] += a2 * v0;
                                acc[2][1][l] += a2 * v1;
                                acc[2][2][l] += a2 * v2;
                                acc[3][0][l] += a3 * v0;
                                acc[3][1][l] += a3 * v1;
                                acc[3][2][l] += a3 * v2;
                            }
                    }
                    for (int b = 0; b < nb; b++)
                        for (int j = 0; j < WKX && kx0 + j < kw; j++) {
                            float *a = acc[b][j]; /* pairwise: 16 -> 8 -> 4 -> 2 -> 1 */
                            for (int h = VEC / 2; h >= 1; h /= 2)
                                for (int l = 0; l < h; l++) a[l] += a[l + h];
                            dw[((int64_t)(co0 + b) * c_in + ci) * taps + ky * kw + kx0 + j] +=
                                alpha * a[0];
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
                          float beta, float *yacc, double *sumsq)
{
    const int nt = image_threads(ctx, s), taps = s->kh * s->kw;
    const int64_t pimg = padded_size(s, c_in), ps = pimg + FLAT_NV + s->kw; /* + slack */
    const int64_t HW = (int64_t)s->h * s->w;
    const int64_t wsz = (int64_t)((c_out + FLAT_CO - 1) / FLAT_CO) * FLAT_CO * c_in * taps;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *wpk = fxp__scratch_alloc(ctx, (size_t)wsz * sizeof(float));
    float *buf = fxp__scratch_alloc(ctx, (size_t)(nt * ps) * sizeof(float));
    double *img_ss = yacc ? fxp__scratch_alloc(ctx, (size_t)s->n * sizeof(double)) : NULL;
    if (!wpk || !buf || (yacc && !img_ss)) {
        fxp__scratch_restore(ctx, mark);
        return FXP_ENOMEM;
    }
    pack_weights(c_in, c_out, taps, w, wpk);
    const int N = s->n;
    FXP_PARALLEL_FOR(nt, nt > 1,
        for (int n = 0; n < N; n++) {
            float *xp = buf + (nt > 1 ? (int64_t)fxp__omp_thread() : 0) * ps;
            pad_image(s, c_in, x + n * c_in * HW, xp);
            memset(xp + pimg, 0, (size_t)(ps - pimg) * sizeof(float));
            if (img_ss) img_ss[n] = 0;
            direct_image(c_in, c_out, s->h, s->w, s->kh, s->kw, xp, wpk, bias, alpha, beta,
                         y + n * c_out * HW, yacc ? yacc + n * c_out * HW : NULL,
                         img_ss ? img_ss + n : NULL);
        });
    if (img_ss) { /* image order: the same sum for every thread count */
        double t = 0;
        for (int n = 0; n < N; n++) t += img_ss[n];
        *sumsq = t;
    }
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}

int fxp__conv_direct_forward(fxp_ctx *ctx, const fxp__conv_shape *s, float *y, const float *x,
                             const float *w, const float *bias, float alpha, float beta)
{
    return direct_forward(ctx, s, s->c_in, s->c_out, y, x, w, bias, alpha, beta, NULL, NULL);
}

int fxp__conv_direct_term(fxp_ctx *ctx, const fxp__conv_shape *s, float *t, const float *x,
                          const float *w, float alpha, float *y, double *sumsq)
{
    return direct_forward(ctx, s, s->c_in, s->c_out, t, x, w, NULL, alpha, 0, y, sumsq);
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
    const int rc = direct_forward(ctx, s, s->c_out, s->c_in, dx, dy, wt, NULL, alpha, beta, NULL,
                                  NULL);
    fxp__scratch_restore(ctx, mark);
    return rc;
}

/* Images per shared reduction in the weight gradient (their padded inputs
 * and gradient grids are prepared together): 4 keeps the workspace near
 * im2col's (threads x 4 x 2 images against threads x kh kw images). */
#define WGROUP 4

int fxp__conv_direct_backward_weight(fxp_ctx *ctx, const fxp__conv_shape *s, float *dw,
                                     const float *dy, const float *x, float alpha)
{
    const int WP = s->w + s->kw - 1, N = s->n, G = FXP_MIN(WGROUP, s->n);
    const int groups = (N + G - 1) / G;
    const int nt = ctx->n_threads > 1 && groups > 1 ? FXP_MIN(ctx->n_threads, groups) : 1;
    const int64_t HW = (int64_t)s->h * s->w;
    const int64_t qp = ((int64_t)s->h * WP + VEC - 1) / VEC * VEC; /* grid, whole vectors */
    /* reads reach qp - 1 + (kh-1) WP + kw + WKX - 2 past a plane's start */
    const int64_t pimg = padded_size(s, s->c_in), ps = pimg + VEC + s->kw + WKX;
    const int64_t gs = (int64_t)s->c_out * qp, ws = (int64_t)s->c_out * s->c_in * s->kh * s->kw;
    /* per thread: G padded images, G gradient grids and (threads > 1) a
     * partial dw, added in thread order so the result is fixed for a given
     * thread count */
    const int64_t per = G * (ps + gs) + (nt > 1 ? ws : 0);
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *buf = fxp__scratch_alloc(ctx, (size_t)(nt * per) * sizeof(float));
    if (!buf) return FXP_ENOMEM;
    for (int tid = 0; tid < nt; tid++) {
        for (int i = 0; i < G; i++)
            memset(buf + tid * per + i * ps + pimg, 0, (size_t)(ps - pimg) * sizeof(float));
        if (nt > 1) memset(buf + tid * per + G * (ps + gs), 0, (size_t)ws * sizeof(float));
    }
    FXP_PARALLEL_FOR(nt, nt > 1,
        for (int grp = 0; grp < groups; grp++) {
            float *xp = buf + (nt > 1 ? fxp__omp_thread() : 0) * per, *gf = xp + G * ps;
            const int n0 = grp * G, ng = FXP_MIN(G, N - n0);
            for (int i = 0; i < ng; i++) {
                pad_image(s, s->c_in, x + (n0 + i) * s->c_in * HW, xp + i * ps);
                flat_grad(s->c_out, s->h, s->w, WP, qp, dy + (n0 + i) * s->c_out * HW, gf + i * gs);
            }
            direct_weight_images(ng, s->c_in, s->c_out, s->h, s->w, s->kh, s->kw, xp, ps, gf, gs,
                                 qp, alpha, nt > 1 ? xp + G * (ps + gs) : dw);
        });
    if (nt > 1)
        for (int tid = 0; tid < nt; tid++) {
            const float *part = buf + tid * per + G * (ps + gs);
            for (int64_t i = 0; i < ws; i++) dw[i] += part[i];
        }
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}
