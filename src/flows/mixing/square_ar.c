/* The square autoregressive convolution of the emerging layer: its masked
 * 3x3 kernel, and the sequential solve that inverts it (and its transpose,
 * for gradients through the inverse).
 *
 * The map A x = conv(x; K3) with K3 zero in its last row and column reads
 * x at the pixel itself and at its up-left, up and left neighbours:
 *   (A x)[o, p] = sum_{t, c} K_t[o, c] x[c, p + off_t] + sum_{c <= o} Kc[o, c] x[c, p]
 * with taps t = [0,0], [0,1], [1,0] at offsets off_t = (-1,-1), (-1,0),
 * (0,-1) and the centre Kc = K3[:, :, 1, 1] lower triangular.  In raster
 * order (row, column, channel) A is lower triangular with diagonal
 * Kc[c, c], so A x = r is solved pixel by pixel, channel by channel:
 *   x[o, p] = (r[o, p] - sum_t sum_c K_t[o, c] x[c, p + off_t]
 *              - sum_{c < o} Kc[o, c] x[c, p]) / Kc[o, o].
 *
 * The reversed form A' = F A F, F reversing both spatial axes, is the
 * convolution with the kernel rotated by 180 degrees (zero in its first row
 * and column, reading the down-right neighbours).  The emerging layer's
 * Flip(S(Flip(.))) is exactly that, so it needs no flips: A'^-1 = F A^-1 F
 * is the same solve on pixel-reversed data.
 *
 * The transposed system A^T y = g has the same structure after reversing
 * the pixel order and the channel order (its neighbours sit at -off_t, its
 * centre is upper triangular), so one kernel solves all four cases: the
 * transpose runs on flipped data with the weights transposed and flipped,
 * and A'^-T = F A^-T F undoes one of the two pixel reversals.
 *
 * Layout: a block of SAR_NB images is copied, in double, to
 * xs[pixel][channel][SAR_NB], so every multiply-add is a vector over the
 * block's images (their solves are independent); blocks of images go to
 * OpenMP threads.  Each image's arithmetic does not depend on the block it
 * falls in or on the thread count, so results are identical for any number
 * of threads.  Images in a partial last block share it with zero padding.
 * Pixels on one anti-diagonal are independent as well, but the batch
 * already gives the threads enough independent work. */
#include <math.h>
#include <string.h>

#include "flows/mixing/mixing_internal.h"
#include "ops/conv2d.h"

#define SAR_NB 8 /* images per block: the vector width of the solve */
#define SAR_OB 4 /* output channels per register block of the neighbour sums */

/* ---- the masked 3x3 kernel ----------------------------------------------------- */

static inline float sar_mask(int o, int c, int a, int d)
{
    return a == 1 && d == 1 ? (float)(c <= o) : 1.0f;
}

/* Index in a 3x3 kernel of tap [a, d] of the 2x2 one (rotated if reversed). */
static inline int tap3(int a, int d, int reversed)
{
    return reversed ? (2 - a) * 3 + 2 - d : a * 3 + d;
}

/* dL/dK[o,c,a,d] += m[o,c,a,d] dL/dK3[o,c,tap3(a,d)]. */
static int kernel_backward(fxp_tape *t, const fxp_node *nd)
{
    (void)t;
    fxp_var *k2 = nd->in[0];
    if (!k2->grad) return FXP_OK;
    const int C = k2->value.shape[0], rev = *(const int *)nd->saved;
    const float *g = nd->out->grad;
    for (int o = 0; o < C; o++)
        for (int c = 0; c < C; c++)
            for (int a = 0; a < 2; a++)
                for (int d = 0; d < 2; d++)
                    k2->grad[((o * C + c) * 2 + a) * 2 + d] +=
                        sar_mask(o, c, a, d) * g[(o * C + c) * 9 + tap3(a, d, rev)];
    return FXP_OK;
}

int fxp__square_ar_kernel(fxp_tape *t, fxp_var *k2, int reversed, fxp_var **k3)
{
    const fxp_tensor *v = &k2->value;
    char s1[64];
    if (v->ndim != 4 || v->shape[1] != v->shape[0] || v->shape[2] != 2 || v->shape[3] != 2)
        return FXP_ERR(fxp_tape_ctx(t), FXP_ESHAPE, "kernel %s must be [C, C, 2, 2]",
                       fxp_tensor_shape_str(v, s1, sizeof s1));
    const int C = v->shape[0], shape[4] = { C, C, 3, 3 };
    fxp_var *y;
    int rc;
    FXP_TRY(fxp__zeros(t, &y, 4, shape));
    for (int o = 0; o < C; o++)
        for (int c = 0; c < C; c++)
            for (int a = 0; a < 2; a++)
                for (int d = 0; d < 2; d++)
                    y->value.data[(o * C + c) * 9 + tap3(a, d, reversed)] =
                        sar_mask(o, c, a, d) * v->data[((o * C + c) * 2 + a) * 2 + d];
    if (fxp_tape_needs_grad(t, 1, &k2)) {
        int *rev = fxp_tape_alloc(t, sizeof *rev);
        if (!rev) return FXP_ENOMEM;
        *rev = reversed != 0;
        FXP_TRY(fxp_tape_record(t, "square_ar_kernel", kernel_backward, y, 1, &k2, rev));
    }
    *k3 = y;
out:
    return rc;
}

/* ---- the solve -------------------------------------------------------------------- */

/* A vector of SAR_NB doubles (one per image of a block).  GNU C vector
 * types (GCC, Clang) map it onto one AVX-512 register, two AVX2 ones, or
 * four SSE2 ones in the clones FXP_CLONES compiles; elsewhere a struct with
 * plain loops.  xs is 64-byte aligned and every vector in it starts at a
 * multiple of SAR_NB doubles. */
#if defined(__GNUC__)
typedef double sar_vec __attribute__((vector_size(SAR_NB * sizeof(double)), may_alias));
#define SAR_ZERO(v) ((v) = (sar_vec){ 0 })
#define SAR_LOAD(v, p) ((v) = *(const sar_vec *)(const void *)(p))
#define SAR_STORE(p, v) (*(sar_vec *)(void *)(p) = (v))
#define SAR_FMA(acc, w, x) ((acc) += (w) * (x))      /* acc += w x, w a scalar */
#define SAR_SOLVE(r, acc, d) ((r) = ((r) - (acc)) / (d)) /* r = (r - acc) / d */
#else
typedef struct sar_vec {
    double v[SAR_NB];
} sar_vec;
#define SAR_ZERO(x) memset(&(x), 0, sizeof(sar_vec))
#define SAR_LOAD(x, p) memcpy(&(x), (p), sizeof(sar_vec))
#define SAR_STORE(p, x) memcpy((p), &(x), sizeof(sar_vec))
#define SAR_FMA(acc, w, x)                                                   \
    do {                                                                     \
        for (int l_ = 0; l_ < SAR_NB; l_++) (acc).v[l_] += (w) * (x).v[l_];  \
    } while (0)
#define SAR_SOLVE(r, acc, d)                                                 \
    do {                                                                     \
        for (int l_ = 0; l_ < SAR_NB; l_++) (r).v[l_] = ((r).v[l_] - (acc).v[l_]) / (d); \
    } while (0)
#endif

/* One block: solve in place on xs [H W][C][SAR_NB] (holding the right-hand
 * side).  wn [4][Cp][C]: the taps [0,0], [0,1], [1,0] and the centre [1,1]
 * (row o = output channel; rows C .. Cp-1 zero, Cp = C rounded up to
 * SAR_OB; of the centre only the lower triangle is read), diag [C] the
 * centre's diagonal.  Output channels go in blocks of SAR_OB: a block's
 * sums over the three neighbours and over the channels solved before it
 * at this pixel are independent vector multiply-adds (SAR_OB accumulator
 * chains); the small triangle inside the block is then solved channel by
 * channel. */
FXP_CLONES FXP_CONTRACT static void solve_block(int C, int H, int W, const double *restrict wn,
                                                const double *restrict diag,
                                                double *restrict xs)
{
    const int64_t pix = (int64_t)C * SAR_NB; /* doubles per pixel */
    const int Cp = (C + SAR_OB - 1) / SAR_OB * SAR_OB;
    const int64_t tap = (int64_t)Cp * C;
    const double *wc = wn + 3 * tap;
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            double *xp = xs + ((int64_t)i * W + j) * pix;
            const double *nb[3] = { i > 0 && j > 0 ? xp - (W + 1) * pix : NULL,
                                    i > 0 ? xp - W * pix : NULL, j > 0 ? xp - pix : NULL };
            for (int o0 = 0; o0 < C; o0 += SAR_OB) {
                sar_vec acc[SAR_OB], v;
                for (int b = 0; b < SAR_OB; b++) SAR_ZERO(acc[b]);
                for (int tp = 0; tp < 3; tp++) { /* sum_t K_t x[p + off_t] */
                    if (!nb[tp]) continue;
                    const double *w = wn + tp * tap + (int64_t)o0 * C;
                    for (int c = 0; c < C; c++) {
                        SAR_LOAD(v, nb[tp] + (int64_t)c * SAR_NB);
                        for (int b = 0; b < SAR_OB; b++) SAR_FMA(acc[b], w[(int64_t)b * C + c], v);
                    }
                }
                const double *w = wc + (int64_t)o0 * C;
                for (int c = 0; c < o0; c++) { /* + sum_{c < o0} Kc x[p], solved already */
                    SAR_LOAD(v, xp + (int64_t)c * SAR_NB);
                    for (int b = 0; b < SAR_OB; b++) SAR_FMA(acc[b], w[(int64_t)b * C + c], v);
                }
                const int ob = C - o0 < SAR_OB ? C - o0 : SAR_OB;
                for (int b = 0; b < ob; b++) { /* the triangle inside the block */
                    sar_vec r;
                    for (int b2 = 0; b2 < b; b2++) {
                        SAR_LOAD(v, xp + (int64_t)(o0 + b2) * SAR_NB);
                        SAR_FMA(acc[b], w[(int64_t)b * C + o0 + b2], v);
                    }
                    SAR_LOAD(r, xp + (int64_t)(o0 + b) * SAR_NB);
                    SAR_SOLVE(r, acc[b], diag[o0 + b]);
                    SAR_STORE(xp + (int64_t)(o0 + b) * SAR_NB, r);
                }
            }
        }
}

/* Copy images n0 .. n0+nb-1 of src [B, C, H, W] (minus bias[c]) into xs,
 * zero-padding the block; with pflip / cflip, pixel p / channel c go to
 * HW-1-p / C-1-c.  Tiles of SAR_TILE pixels keep the written part of xs
 * in L1 while every image and channel contributes one contiguous run (a
 * pixel-by-pixel order would read 8 C lines at a stride of C H W floats,
 * which for 12 x 16 x 16 images all fall into four cache sets). */
#define SAR_TILE 16
static void load_block(int C, int64_t HW, const float *src, const float *bias, int nb, int pflip,
                       int cflip, double *xs)
{
    const int64_t img = C * HW;
    for (int64_t p0 = 0; p0 < HW; p0 += SAR_TILE) {
        const int64_t p1 = p0 + SAR_TILE < HW ? p0 + SAR_TILE : HW;
        for (int l = 0; l < SAR_NB; l++)
            for (int c = 0; c < C; c++) {
                const int64_t cd = cflip ? C - 1 - c : c;
                const double b = bias ? bias[c] : 0.0;
                const float *s = src + l * img + c * HW;
                for (int64_t p = p0; p < p1; p++) {
                    const int64_t pd = pflip ? HW - 1 - p : p;
                    xs[(pd * C + cd) * SAR_NB + l] = l < nb ? (double)s[p] - b : 0.0;
                }
            }
    }
}

static void store_block(int C, int64_t HW, const double *xs, int nb, int pflip, int cflip,
                        float *dst)
{
    const int64_t img = C * HW;
    for (int64_t p0 = 0; p0 < HW; p0 += SAR_TILE) {
        const int64_t p1 = p0 + SAR_TILE < HW ? p0 + SAR_TILE : HW;
        for (int l = 0; l < nb; l++)
            for (int c = 0; c < C; c++) {
                const int64_t cd = cflip ? C - 1 - c : c;
                float *d = dst + l * img + c * HW;
                for (int64_t p = p0; p < p1; p++) {
                    const int64_t pd = pflip ? HW - 1 - p : p;
                    d[p] = (float)xs[(pd * C + cd) * SAR_NB + l];
                }
            }
    }
}

int fxp__square_ar_solve_raw(fxp_ctx *ctx, int transpose, int reversed, int batch, int C, int H,
                             int W, const float *k3, const float *rhs, const float *bias,
                             float *out)
{
    const int64_t HW = (int64_t)H * W;
    for (int c = 0; c < C; c++)
        if (k3[(c * C + c) * 9 + 4] == 0.0f)
            return FXP_ERR(ctx, FXP_ENUMERIC,
                           "diagonal entry %d of the centre tap is zero: the square "
                           "autoregressive convolution is not invertible",
                           c);
    const int nblk = (batch + SAR_NB - 1) / SAR_NB;
    const int nt = FXP_MIN(ctx->n_threads, nblk);
    const int Cp = (C + SAR_OB - 1) / SAR_OB * SAR_OB;
    const int64_t per = HW * C * SAR_NB, tap = (int64_t)Cp * C;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    const int64_t packed = (4 * tap + C + 7) / 8 * 8; /* keeps xs 64-byte aligned */
    double *wn = fxp__scratch_alloc(ctx, (size_t)(packed + (int64_t)nt * per) * sizeof(double));
    if (!wn) return FXP_ENOMEM;
    double *diag = wn + 4 * tap, *xs = wn + packed;
    /* Pack: forward wn[t][o][c] = K3[o, c, tap t]; transposed and flipped
     * wn[t][o][c] = K3[C-1-c, C-1-o, tap t].  Taps [0,0], [0,1], [1,0],
     * [1,1], or [2,2], [2,1], [1,2], [1,1] in the reversed form. */
    static const int taps[2][4] = { { 0, 1, 3, 4 }, { 8, 7, 5, 4 } };
    memset(wn, 0, (size_t)(4 * tap) * sizeof(double));
    for (int tp = 0; tp < 4; tp++)
        for (int o = 0; o < C; o++)
            for (int c = 0; c < C; c++) {
                const int oo = transpose ? C - 1 - c : o, ci = transpose ? C - 1 - o : c;
                wn[tp * tap + (int64_t)o * C + c] =
                    k3[((int64_t)oo * C + ci) * 9 + taps[reversed != 0][tp]];
            }
    for (int c = 0; c < C; c++) diag[c] = wn[3 * tap + (int64_t)c * C + c];
    const int64_t img = (int64_t)C * HW;
    const float *bs = transpose ? NULL : bias;
    const int pflip = (transpose != 0) != (reversed != 0), cflip = transpose != 0;
    FXP_PARALLEL_FOR(nt, nt > 1,
        for (int blk = 0; blk < nblk; blk++) {
            double *mine = xs + (nt > 1 ? fxp__omp_thread() : 0) * per;
            const int n0 = blk * SAR_NB, nb = FXP_MIN(SAR_NB, batch - n0);
            load_block(C, HW, rhs + n0 * img, bs, nb, pflip, cflip, mine);
            solve_block(C, H, W, wn, diag, mine);
            store_block(C, HW, mine, nb, pflip, cflip, out + n0 * img);
        });
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}

/* ---- the tape op ------------------------------------------------------------------- */

/* x = A^-1 (z - b).  With g = dL/dx and y = A^-T g:
 *   dL/dz = y,   dL/db = -sum_{n, pixels} y,
 *   dL/dK3 = -sum_n y (x) x, the convolution weight gradient of y against x
 * (from dx = -A^-1 (dA) x). */
static int solve_backward(fxp_tape *t, const fxp_node *nd)
{
    const int rev = *(const int *)nd->saved;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    fxp_var *z = nd->in[0], *k3 = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
    const fxp_tensor *x = &nd->out->value;
    const int B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t n = fxp_tensor_numel(x);
    int rc;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *y = fxp__scratch_alloc(ctx, (size_t)(n + 9 * C * C + C) * sizeof(float));
    if (!y) return FXP_ENOMEM;
    float *dk = y + n, *db = dk + 9 * C * C;
    FXP_TRY(fxp__square_ar_solve_raw(ctx, 1, rev, B, C, H, W, k3->value.data, nd->out->grad, NULL,
                                     y));
    if (z->grad)
        for (int64_t i = 0; i < n; i++) z->grad[i] += y[i];
    const fxp__conv_shape s = { B, C, H, W, C, 3, 3, FXP_PAD_ZERO };
    if (k3->grad) {
        memset(dk, 0, (size_t)(9 * C * C) * sizeof(float));
        FXP_TRY(fxp__conv2d_backward_weight(ctx, &s, dk, y, x->data, 1));
        for (int i = 0; i < 9 * C * C; i++) k3->grad[i] -= dk[i];
    }
    if (b && b->grad) {
        memset(db, 0, (size_t)C * sizeof(float));
        fxp__conv2d_backward_bias(ctx, &s, db, y);
        for (int c = 0; c < C; c++) b->grad[c] -= db[c];
    }
out:
    fxp__scratch_restore(ctx, mark);
    return rc;
}

int fxp__square_ar_solve(fxp_tape *t, fxp_var **x, fxp_var *z, fxp_var *k3, fxp_var *bias,
                         int reversed)
{
    fxp_ctx *ctx = fxp_tape_ctx(t);
    const fxp_tensor *zv = &z->value, *kv = &k3->value;
    char s1[64], s2[64];
    if (zv->ndim != 4 || kv->ndim != 4 || kv->shape[0] != zv->shape[1] ||
        kv->shape[1] != zv->shape[1] || kv->shape[2] != 3 || kv->shape[3] != 3 ||
        (bias && (bias->value.ndim != 1 || bias->value.shape[0] != zv->shape[1])))
        return FXP_ERR(ctx, FXP_ESHAPE, "z %s, kernel %s (and bias) do not fit [B,C,H,W], "
                       "[C,C,3,3], [C]", fxp_tensor_shape_str(zv, s1, sizeof s1),
                       fxp_tensor_shape_str(kv, s2, sizeof s2));
    fxp_var *y, *in[3] = { z, k3, bias };
    int rc;
    FXP_TRY(fxp_tape_var(t, &y, 4, zv->shape));
    FXP_TRY(fxp__square_ar_solve_raw(ctx, 0, reversed, zv->shape[0], zv->shape[1], zv->shape[2],
                                     zv->shape[3], kv->data, zv->data,
                                     bias ? bias->value.data : NULL, y->value.data));
    if (fxp_tape_needs_grad(t, bias ? 3 : 2, in)) {
        int *rev = fxp_tape_alloc(t, sizeof *rev);
        if (!rev) return FXP_ENOMEM;
        *rev = reversed != 0;
        FXP_TRY(fxp_tape_record(t, "square_ar_solve", solve_backward, y, bias ? 3 : 2, in, rev));
    }
    *x = y;
out:
    return rc;
}
