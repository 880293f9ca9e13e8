/* The DenseNet of the image couplings as one tape op (see densenet.h).
 *
 * Per image, everything runs on the register tiles of conv_tiles.h:
 *   compact layout  [c][cs], cs >= H W (the 1x1 convolutions read and write
 *                   it; when cs == H W it is the tape's own NCHW image);
 *   padded layout   [c][ps], an (H+2) x (W+2) plane with zero borders (the
 *                   3x3 convolutions read it and write their outputs on the
 *                   padded-width grid of conv_tiles.h);
 *   channel-last    [position][c] copies for the kernel gradients, whose
 *                   tiles put input channels in the lanes (no sums across
 *                   lanes, partial gradients stay in registers).
 * The growing input h lives in one buffer F [N][cs]: layer l reads its first
 * n_l channels and writes its G new ones after them.
 *
 * Backward per image, from dy:
 *   do = dy (gated: da = dy, db = dy s(c), dc = dy b s(c)(1 - s(c)))
 *   dF = wo^T do,  dwo += do F^T,  dbo += sum do
 *   for l = D-1 .. 0:
 *     dg = dF[n_l : n_l + G] [g > 0]          (g: the layer's output in F)
 *     da = (w3_l^T * dg) [a_l > 0]             (the transposed 3x3 convolution)
 *     dw3_l += dg (x) a_l (per tap),  db3_l += sum dg
 *     dF[0 : n_l] += w1_l^T da,  dw1_l += da F[0 : n_l]^T,  db1_l += sum da
 *   dx += dF[0 : n_in]. */
#include <math.h>
#include <string.h>

#include "ops/conv_tiles.h"
#include "ops/densenet.h"
#include "ops/ops_internal.h"

#define VL FXP_VL

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* Shapes, layouts and tile choices of one call. */
typedef struct dn_geom {
    int B, n_in, G, D, n_o, n_out, gated, H, W, HW, N;
    int HP, WP, Q;       /* padded plane; grid positions of the 3x3 outputs */
    int qvc, qvg;        /* vectors of compact positions, of grid positions */
    int64_t cs, ps, off, lead; /* compact and padded plane strides; grid origin; alignment */
    int64_t ldn;         /* channel-last row stride: N rounded up to whole vectors */
    fxp__tile *t1, *t3, *t3t; /* per layer: 1x1 (and its transpose), 3x3, 3x3 transposed */
    fxp__tile to, tot;   /* output 1x1 and its transpose */
} dn_geom;

/* The cheapest tile (fxp__tile_choose); for compact layouts, if its span
 * does not divide the positions, the best tile for the widest span that
 * does (so that cs can be H W and the tape's images are used in place). */
static fxp__tile choose(int c_out, int qv, int compact)
{
    fxp__tile best = fxp__tile_choose(c_out, qv);
    if (!compact || qv % best.nv == 0) return best;
    for (int nv = best.nv - 1; nv >= 1; nv--) {
        if (qv % nv) continue;
        fxp__tile t = fxp__tile_choose(c_out, nv); /* the best tile of width nv */
        if (t.nv == nv) return t;
    }
    return best;
}

static int64_t tile_span(const fxp__tile *t, int qv) { return round_up(qv, t->nv) * VL; }

/* ---- per-image helpers ------------------------------------------------------------ */

/* d[j] = s[j], j < n: image rows are short (8 to 32 floats), where a call
 * to memcpy per row costs more than the copy. */
static inline void copy_row(float *restrict d, const float *restrict s, int n)
{
    for (int j = 0; j < n; j++) d[j] = s[j];
}

/* Rows of channels [0, c) from a compact buffer into a padded one's interior
 * (relu_src: only where src > 0, else 0; NULL: all). */
static void compact_to_padded(const dn_geom *g, int c, const float *src, const float *gate,
                              float *dst)
{
    for (int k = 0; k < c; k++)
        for (int r = 0; r < g->H; r++) {
            const float *s = src + k * g->cs + (int64_t)r * g->W;
            float *d = dst + k * g->ps + g->off + (int64_t)r * g->WP;
            if (gate) {
                const float *m = gate + k * g->cs + (int64_t)r * g->W;
                for (int j = 0; j < g->W; j++) d[j] = m[j] > 0 ? s[j] : 0.0f;
            } else {
                copy_row(d, s, g->W);
            }
        }
}

/* Rows of channels [0, c) from grid positions (plane stride ps) to a compact
 * buffer (or +=). */
static void grid_to_compact(const dn_geom *g, int c, const float *src, float *dst, int add)
{
    for (int k = 0; k < c; k++)
        for (int r = 0; r < g->H; r++) {
            const float *s = src + k * g->ps + (int64_t)r * g->WP;
            float *d = dst + k * g->cs + (int64_t)r * g->W;
            if (add)
                for (int j = 0; j < g->W; j++) d[j] += s[j];
            else
                copy_row(d, s, g->W);
        }
}

/* sum_i r[i], i < n: sixteen float partial sums (a single running sum waits
 * on the add latency), added pairwise in double. */
static double row_sum(const float *r, int64_t n)
{
    float part[16] = { 0 };
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) part[l] += r[i + l];
    for (; i < n; i++) part[i % 16] += r[i];
    double d[16];
    for (int l = 0; l < 16; l++) d[l] = part[l];
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++) d[l] += d[l + h];
    return d[0];
}

/* dst[p ld + k] = src[k sstride + p] for k < c, p < np (to channel-last). */
static void to_channel_last(int c, int64_t np, const float *src, int64_t sstride, float *dst,
                            int64_t ld)
{
    enum { BP = 64 };
    for (int64_t p0 = 0; p0 < np; p0 += BP) {
        const int64_t p1 = FXP_MIN(np, p0 + BP);
        for (int k = 0; k < c; k++) {
            const float *s = src + k * sstride;
            for (int64_t p = p0; p < p1; p++) dst[p * ld + k] = s[p];
        }
    }
}

/* One convolution over an image with tile t: every (channel tile, position
 * tile), each over all input channels.  The weights of output channel co
 * start at w + co wco (packed: wco = c_in kh kw, a.wci = kh kw t->co; a
 * 1x1 map's weight matrix read as its transpose: wco = 1, a.wci = its row
 * stride, and wtail, c_in t->co floats, for a copy of the last tile).  x at the
 * input grid origin (plane stride ips), outputs at the output grid origin
 * (plane stride ops); a holds the per-call fields.  Either out (= the
 * result) or acc (+= the result) is given.  (Blocking the input channels so
 * that a block stays in L1 measured no faster: the inputs stream from L2
 * well enough, and every block adds an epilogue.) */
static void conv_image(const fxp__tile *t, const float *w, int64_t wco, int c_out, int qv,
                       const float *x, const float *bias, const float *gate, float *out,
                       float *acc, float *wtail, fxp__tile_args a)
{
    const int nq = (qv + t->nv - 1) / t->nv;
    const int64_t span = (int64_t)t->nv * VL, wci = a.wci;
    const int32_t *mask = a.mask;
    for (int co0 = 0; co0 < c_out; co0 += t->co) {
        a.w = w + co0 * wco;
        a.wci = wci;
        a.bias = bias ? bias + co0 : NULL;
        a.nb = FXP_MIN(t->co, c_out - co0);
        if (wtail && a.nb < t->co) {
            /* a matrix read in place (wtail given): the tile reads t->co weights per
             * input channel, past the end of the last row here; a zero-padded copy of
             * this tile's */
            for (int ci = 0; ci < a.c_in; ci++)
                for (int o = 0; o < t->co; o++)
                    wtail[ci * t->co + o] = o < a.nb ? a.w[ci * wci + o] : 0.0f;
            a.w = wtail;
            a.wci = t->co;
        }
        const int64_t oo = co0 * a.ops;
        for (int q = 0; q < nq; q++) {
            const int64_t q0 = q * span;
            a.x = x + q0;
            a.gate = gate ? gate + oo + q0 : NULL;
            a.out = out ? out + oo + q0 : NULL;
            a.acc = acc ? acc + oo + q0 : NULL;
            a.mask = mask + q0;
            t->fn(&a);
        }
    }
}

/* ---- the call's shared state ------------------------------------------------------- */

typedef struct dn_call {
    dn_geom g;
    const fxp__densenet_vars *v;
    float **w1p, **w3p, **w3t;        /* packed kernels per layer (w3t: of the adjoint) */
    float *wop;
    int32_t *mask_c, *mask_g;         /* compact and grid lane masks */
    int64_t per_thread;               /* scratch floats per thread */
    float *scratch;
    int64_t wsz;                      /* floats of one kernel-gradient partial */
    float *part;                      /* per thread: the gradient partials */
    int64_t *w1o, *b1o, *w3o, *b3o;   /* offsets of dw1_l, db1_l, dw3_l ([G][9][n_l]), db3_l */
    int64_t woo, boo;                 /* offsets of dwo, dbo in a partial */
    const float *x;
    float *F, **A;                    /* the tape's h_D and a_l (or NULL) */
    float *y;
    const float *dy;
    float *dx;
    int recompute;
} dn_call;

static float sigmoidf(float v)
{
    return v >= 0 ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v));
}

/* Per-thread scratch (floats), in order: F, A (compact), Ap (padded), Gg
 * (grid), O (compact); backward adds dF, dA (compact), dGp (padded), dAg
 * (grid), Ft, At (channel-last) and Wt (the last tile of a weight matrix read
 * in place).  With base == NULL only the total is computed. */
typedef struct dn_bufs {
    float *F, *A, *Ap, *Gg, *O, *dF, *dA, *dGp, *dAg, *Ft, *At, *Wt;
} dn_bufs;

static int64_t layout_bufs(const dn_geom *g, int backward, float *base, dn_bufs *b)
{
    const int nmax = g->n_in + (g->D - 1) * g->G;
    const int64_t pimg = g->lead + (int64_t)nmax * g->ps + 3 * g->WP + 4 * VL; /* + read slack */
    const int64_t gimg = g->lead + (int64_t)nmax * g->ps + VL;
    const int64_t sizes[12] = {
        (int64_t)g->N * g->cs, (int64_t)nmax * g->cs, pimg, round_up(gimg, VL),
        (int64_t)g->n_o * g->cs,
        backward ? (int64_t)g->N * g->cs : 0, backward ? (int64_t)nmax * g->cs : 0,
        backward ? round_up(g->lead + (int64_t)g->G * g->ps + 3 * g->WP + 4 * VL, VL) : 0,
        backward ? round_up(gimg, VL) : 0,
        backward ? (int64_t)g->cs * g->ldn + 4 * VL : 0,
        backward ? (int64_t)(g->HP * g->WP + 3 * g->WP + VL) * g->ldn + 4 * VL : 0,
        backward ? (int64_t)FXP_MAX(g->N, g->n_o) * 8 : 0 };
    dn_bufs unused;
    if (!b) b = &unused;
    float **dst[12] = { &b->F, &b->A, &b->Ap, &b->Gg, &b->O, &b->dF, &b->dA, &b->dGp, &b->dAg,
                        &b->Ft, &b->At, &b->Wt };
    int64_t at = 0;
    for (int i = 0; i < 12; i++) {
        /* padded and grid buffers start at lead so that grid origins are aligned */
        const int lead = i == 2 || i == 3 || i == 7 || i == 8;
        if (base) *dst[i] = base + at + (lead ? g->lead : 0);
        at += round_up(sizes[i], VL);
    }
    return at;
}

/* The forward of image n with buffers b: F (compact) holding h_D, O the
 * output convolution, y[n] written; a_l saved to c->A[l] when non-NULL. */
static void forward_image(const dn_call *c, int n, const dn_bufs *b)
{
    const dn_geom *g = &c->g;
    const fxp__densenet_vars *v = c->v;
    const int64_t HW = g->HW;
    float *F = c->F && g->cs == HW ? c->F + (int64_t)n * g->N * HW : b->F;
    memcpy(F, c->x + (int64_t)n * g->n_in * HW, (size_t)g->n_in * HW * sizeof(float));
    if (g->cs != HW) /* compact planes with their tails zero */
        for (int k = g->n_in - 1; k >= 0; k--) {
            memmove(F + k * g->cs, F + k * HW, (size_t)HW * sizeof(float));
            memset(F + k * g->cs + HW, 0, (size_t)(g->cs - HW) * sizeof(float));
        }
    fxp__tile_args a1 = { .ips = g->cs, .ops = g->cs, .WP = g->W, .kh = 1, .kw = 1, .relu = 1,
                          .alpha = 1, .mask = c->mask_c };
    fxp__tile_args a3 = { .ips = g->ps, .ops = g->ps, .WP = g->WP, .kh = 3, .kw = 3, .relu = 1,
                          .alpha = 1, .mask = c->mask_g };
    for (int l = 0; l < g->D; l++) {
        const int nl = g->n_in + l * g->G;
        float *A = c->A && !c->recompute && g->cs == HW ? c->A[l] + (int64_t)n * nl * HW : b->A;
        a1.c_in = nl;
        a1.wci = g->t1[l].co;
        conv_image(&g->t1[l], c->w1p[l], nl, nl, g->qvc, F, v->b1[l]->value.data, NULL, A, NULL,
                   NULL, a1);
        if (c->A && !c->recompute && g->cs != HW)
            for (int k = 0; k < nl; k++)
                memcpy(c->A[l] + ((int64_t)n * nl + k) * HW, A + k * g->cs,
                       (size_t)HW * sizeof(float));
        compact_to_padded(g, nl, A, NULL, b->Ap);
        a3.c_in = nl;
        a3.wci = 9 * g->t3[l].co;
        conv_image(&g->t3[l], c->w3p[l], 9 * nl, g->G, g->qvg, b->Ap, v->b3[l]->value.data, NULL,
                   b->Gg, NULL, NULL, a3);
        grid_to_compact(g, g->G, b->Gg, F + nl * g->cs, 0);
    }
    fxp__tile_args ao = { .ips = g->cs, .ops = g->cs, .WP = g->W, .kh = 1, .kw = 1,
                          .wci = g->to.co,
                          .alpha = 1, .c_in = g->N, .mask = c->mask_c };
    conv_image(&g->to, c->wop, g->N, g->n_o, g->qvc, F, v->bo->value.data, NULL, b->O, NULL, NULL,
               ao);
    float *y = c->y + (int64_t)n * g->n_out * HW;
    for (int k = 0; k < g->n_out; k++) {
        const float *oa = b->O + k * g->cs;
        if (!g->gated) {
            memcpy(y + k * HW, oa, (size_t)HW * sizeof(float));
            continue;
        }
        const float *ob = oa + g->n_out * g->cs, *oc = oa + 2 * g->n_out * g->cs;
        for (int64_t p = 0; p < HW; p++) y[k * HW + p] = oa[p] + ob[p] * sigmoidf(oc[p]);
    }
    if (c->F && g->cs != HW)
        for (int k = 0; k < g->N; k++)
            memcpy(c->F + ((int64_t)n * g->N + k) * HW, F + k * g->cs, (size_t)HW * sizeof(float));
}

/* The backward of image n, adding kernel gradients to the partial d. */
static void backward_image(const dn_call *c, int n, const dn_bufs *b, float *d)
{
    const dn_geom *g = &c->g;
    const fxp__densenet_vars *v = c->v;
    const int64_t HW = g->HW, cs = g->cs;
    /* F: the saved h_D in compact layout, and channel-last */
    const float *F = c->F + (int64_t)n * g->N * HW;
    if (cs != HW) {
        for (int k = 0; k < g->N; k++) {
            memcpy(b->F + k * cs, F + k * HW, (size_t)HW * sizeof(float));
            memset(b->F + k * cs + HW, 0, (size_t)(cs - HW) * sizeof(float));
        }
        F = b->F;
    }
    to_channel_last(g->N, HW, F, cs, b->Ft, g->ldn);
    /* do from dy, with o recomputed for the gate */
    const float *dy = c->dy + (int64_t)n * g->n_out * HW;
    float *dO = b->O;
    if (g->gated) {
        fxp__tile_args ao = { .ips = cs, .ops = cs, .WP = g->W, .kh = 1, .kw = 1, .alpha = 1,
                              .wci = g->to.co,
                              .c_in = g->N, .mask = c->mask_c };
        conv_image(&g->to, c->wop, g->N, g->n_o, g->qvc, F, v->bo->value.data, NULL, dO, NULL,
                   NULL, ao);
        for (int k = 0; k < g->n_out; k++) {
            float *oa = dO + k * cs, *ob = oa + g->n_out * cs, *oc = oa + 2 * g->n_out * cs;
            for (int64_t p = 0; p < HW; p++) {
                const float gy = dy[k * HW + p], s = sigmoidf(oc[p]);
                oa[p] = gy;
                oc[p] = gy * ob[p] * s * (1.0f - s);
                ob[p] = gy * s;
            }
        }
    } else {
        for (int k = 0; k < g->n_out; k++) {
            memcpy(dO + k * cs, dy + k * HW, (size_t)HW * sizeof(float));
            memset(dO + k * cs + HW, 0, (size_t)(cs - HW) * sizeof(float));
        }
    }
    /* output convolution: dF = wo^T do, dwo += do F^T, dbo += sum do */
    float *dF = b->dF;
    fxp__tile_args at = { .ips = cs, .ops = cs, .WP = g->W, .kh = 1, .kw = 1, .alpha = 1,
                          .wci = g->N, /* wo [n_o, N] read as wo^T */
                          .c_in = g->n_o, .mask = c->mask_c };
    conv_image(&g->tot, v->wo->value.data, 1, g->N, g->qvc, dO, NULL, NULL, dF, NULL, b->Wt, at);
    fxp__outer_args oa = { dO, b->Ft, d + c->woo, cs, g->ldn, g->N, (int)HW, g->n_o, g->N };
    fxp__tile_outer(&oa);
    for (int k = 0; k < g->n_o; k++) {
        d[c->boo + k] += (float)row_sum(dO + k * cs, HW);
    }
    fxp__tile_args a1 = { .ips = cs, .ops = cs, .WP = g->W, .kh = 1, .kw = 1, .alpha = 1,
                          .mask = c->mask_c };
    fxp__tile_args a3t = { .ips = g->ps, .ops = g->ps, .WP = g->WP, .kh = 3, .kw = 3, .alpha = 1,
                           .c_in = g->G, .mask = c->mask_g };
    for (int l = g->D - 1; l >= 0; l--) {
        const int nl = g->n_in + l * g->G;
        /* a_l, compact, and padded */
        float *A = b->A;
        a1.c_in = nl;
        if (c->recompute) {
            a1.relu = 1;
            a1.wci = g->t1[l].co;
            conv_image(&g->t1[l], c->w1p[l], nl, nl, g->qvc, F, v->b1[l]->value.data, NULL, A,
                       NULL, NULL, a1);
            a1.relu = 0;
        } else {
            for (int k = 0; k < nl; k++) {
                memcpy(A + k * cs, c->A[l] + ((int64_t)n * nl + k) * HW,
                       (size_t)HW * sizeof(float));
                memset(A + k * cs + HW, 0, (size_t)(cs - HW) * sizeof(float));
            }
        }
        compact_to_padded(g, nl, A, NULL, b->Ap);
        /* dg = dF[n_l:] [g > 0], padded; db3 += sum dg */
        const float *Gl = F + nl * cs;
        compact_to_padded(g, g->G, dF + nl * cs, Gl, b->dGp);
        float *db3 = d + c->b3o[l];
        for (int k = 0; k < g->G; k++) {
            const float *r = b->dGp + k * g->ps + g->off;
            db3[k] += (float)row_sum(r, g->Q); /* zero at the padding columns */
        }
        /* dw3 += dg (x) a per tap (a channel-last, padded) */
        to_channel_last(nl, (int64_t)g->HP * g->WP, b->Ap, g->ps, b->At, g->ldn);
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                fxp__outer_args o3 = { b->dGp + g->off, b->At + (ky * g->WP + kx) * g->ldn,
                                       d + c->w3o[l] + (ky * 3 + kx) * nl, g->ps, g->ldn,
                                       9 * nl, g->Q, g->G, nl };
                fxp__tile_outer(&o3);
            }
        /* da = (w3^T * dg) [a > 0] on the grid, then compact */
        a3t.wci = 9 * g->t3t[l].co;
        conv_image(&g->t3t[l], c->w3t[l], 9 * g->G, nl, g->qvg, b->dGp, NULL, b->Ap + g->off,
                   b->dAg, NULL, NULL, a3t);
        grid_to_compact(g, nl, b->dAg, b->dA, 0);
        if (cs != HW)
            for (int k = 0; k < nl; k++)
                memset(b->dA + k * cs + HW, 0, (size_t)(cs - HW) * sizeof(float));
        /* dF[0:n_l] += w1^T da, dw1 += da F^T, db1 += sum da */
        a1.wci = nl; /* w1 [n_l, n_l] read as w1^T */
        conv_image(&g->t1[l], v->w1[l]->value.data, 1, nl, g->qvc, b->dA, NULL, NULL, NULL, dF,
                   b->Wt, a1);
        fxp__outer_args o1 = { b->dA, b->Ft, d + c->w1o[l], cs, g->ldn, nl, (int)HW, nl, nl };
        fxp__tile_outer(&o1);
        for (int k = 0; k < nl; k++) {
            d[c->b1o[l] + k] += (float)row_sum(b->dA + k * cs, HW);
        }
    }
    if (c->dx) {
        float *dx = c->dx + (int64_t)n * g->n_in * HW;
        for (int k = 0; k < g->n_in; k++)
            for (int64_t p = 0; p < HW; p++) dx[k * HW + p] += dF[k * cs + p];
    }
}

/* ---- set-up: shapes, tiles, packed kernels, scratch --------------------------------- */

/* FXP_ESHAPE unless every parameter fits x (names the layer and the tensor). */
static int check_shapes(fxp_ctx *ctx, const fxp_var *x, const fxp__densenet_vars *v)
{
    char s1[64], s2[64];
    if (x->value.ndim != 4 || v->depth < 1 || v->growth < 1)
        return FXP_ERR(ctx, FXP_ESHAPE, "x %s must be [B, C, H, W] (depth %d, growth %d)",
                       fxp_tensor_shape_str(&x->value, s1, sizeof s1), v->depth, v->growth);
    int n = x->value.shape[1];
    for (int l = 0; l < v->depth; l++, n += v->growth) {
        const int s1x1[4] = { n, n, 1, 1 }, s3[4] = { v->growth, n, 3, 3 };
        const fxp_var *p[4] = { v->w1[l], v->b1[l], v->w3[l], v->b3[l] };
        const int *shapes[4] = { s1x1, s1x1, s3, s3 };
        const int nds[4] = { 4, 1, 4, 1 };
        for (int i = 0; i < 4; i++) {
            int ok = p[i] && p[i]->value.data && p[i]->value.ndim == nds[i];
            for (int d = 0; ok && d < nds[i]; d++) ok = p[i]->value.shape[d] == shapes[i][d];
            if (!ok)
                return FXP_ERR(ctx, FXP_ESHAPE,
                               "DenseNet layer %d: %s is %s for input %s (expected %s)", l,
                               (const char *[]){ "w1", "b1", "w3", "b3" }[i],
                               p[i] ? fxp_tensor_shape_str(&p[i]->value, s1, sizeof s1) : "NULL",
                               fxp_tensor_shape_str(&x->value, s2, sizeof s2),
                               (const char *[]){ "[n, n, 1, 1]", "[n]", "[growth, n, 3, 3]",
                                                 "[growth]" }[i]);
        }
    }
    const fxp_var *wo = v->wo, *bo = v->bo;
    if (!wo || !bo || wo->value.ndim != 4 || wo->value.shape[1] != n ||
        wo->value.shape[2] != 1 || wo->value.shape[3] != 1 || bo->value.ndim != 1 ||
        bo->value.shape[0] != wo->value.shape[0] || (v->gated && wo->value.shape[0] % 3))
        return FXP_ERR(ctx, FXP_ESHAPE,
                       "DenseNet output: weight %s and bias %s must be [n_o, %d, 1, 1] and [n_o]%s",
                       wo ? fxp_tensor_shape_str(&wo->value, s1, sizeof s1) : "NULL",
                       bo ? fxp_tensor_shape_str(&bo->value, s2, sizeof s2) : "NULL", n,
                       v->gated ? " with n_o a multiple of 3 (gated)" : "");
    return FXP_OK;
}

static void geom_init(dn_geom *g, const fxp_var *x, const fxp__densenet_vars *v)
{
    g->B = x->value.shape[0];
    g->n_in = x->value.shape[1];
    g->H = x->value.shape[2];
    g->W = x->value.shape[3];
    g->HW = g->H * g->W;
    g->G = v->growth;
    g->D = v->depth;
    g->N = g->n_in + g->D * g->G;
    g->gated = v->gated;
    g->n_o = v->wo->value.shape[0];
    g->n_out = g->gated ? g->n_o / 3 : g->n_o;
    g->HP = g->H + 2;
    g->WP = g->W + 2;
    g->Q = g->H * g->WP;
    g->qvc = (g->HW + VL - 1) / VL;
    g->qvg = (g->Q + VL - 1) / VL;
    g->off = g->WP + 1;
    g->lead = (VL - g->off % VL) % VL;
    g->ldn = round_up(g->N, VL);
}

/* Tiles of every convolution, and the plane strides their spans need. */
static void choose_tiles(dn_geom *g)
{
    int64_t cs = (int64_t)g->qvc * VL, grid = (int64_t)g->qvg * VL;
    for (int l = 0; l < g->D; l++) {
        const int nl = g->n_in + l * g->G;
        g->t1[l] = choose(nl, g->qvc, 1);
        g->t3[l] = choose(g->G, g->qvg, 0);
        g->t3t[l] = choose(nl, g->qvg, 0);
        cs = FXP_MAX(cs, tile_span(&g->t1[l], g->qvc));
        grid = FXP_MAX(grid, FXP_MAX(tile_span(&g->t3[l], g->qvg), tile_span(&g->t3t[l], g->qvg)));
    }
    g->to = choose(g->n_o, g->qvc, 1);
    g->tot = choose(g->N, g->qvc, 1);
    cs = FXP_MAX(cs, FXP_MAX(tile_span(&g->to, g->qvc), tile_span(&g->tot, g->qvc)));
    g->cs = cs;
    g->ps = round_up(FXP_MAX((int64_t)g->HP * g->WP, g->off + grid), VL);
}

/* Everything a call needs from scratch (NULL on ENOMEM): tiles, packed
 * kernels, masks, per-thread buffers and (backward) gradient partials. */
static int call_init(fxp_ctx *ctx, dn_call *c, const fxp_var *x, const fxp__densenet_vars *v,
                     int backward, int threads)  /* c->recompute set by the caller */
{
    dn_geom *g = &c->g;
    const int D = v->depth;
    geom_init(g, x, v);
    c->v = v;
    g->t1 = fxp__scratch_alloc(ctx, (size_t)3 * D * sizeof(fxp__tile));
    void **ptrs = fxp__scratch_alloc(ctx, (size_t)3 * D * sizeof(float *));
    int64_t *offs = fxp__scratch_alloc(ctx, (size_t)4 * D * sizeof(int64_t));
    if (!g->t1 || !ptrs || !offs) return FXP_ENOMEM;
    g->t3 = g->t1 + D;
    g->t3t = g->t1 + 2 * D;
    choose_tiles(g);
    c->w1p = (float **)ptrs;
    c->w3p = c->w1p + D;
    c->w3t = c->w1p + 2 * D;
    c->w1o = offs;
    c->b1o = offs + D;
    c->w3o = offs + 2 * D;
    c->b3o = offs + 3 * D;
    int64_t wsz = 0;
    for (int l = 0; l < D; l++) {
        const int nl = g->n_in + l * g->G;
        const int64_t s1 = fxp__tile_packed_size(&g->t1[l], nl, nl, 1);
        const int64_t s3 = fxp__tile_packed_size(&g->t3[l], g->G, nl, 9);
        const int64_t s3t = fxp__tile_packed_size(&g->t3t[l], nl, g->G, 9);
        /* the backward needs the forward kernels only to recompute a_l */
        const int need1 = !backward || c->recompute, need3 = !backward;
        c->w1p[l] = need1 ? fxp__scratch_alloc(ctx, (size_t)s1 * sizeof(float)) : NULL;
        c->w3p[l] = need3 ? fxp__scratch_alloc(ctx, (size_t)s3 * sizeof(float)) : NULL;
        c->w3t[l] = backward ? fxp__scratch_alloc(ctx, (size_t)s3t * sizeof(float)) : NULL;
        if ((need1 && !c->w1p[l]) || (need3 && !c->w3p[l]) ||
            (backward && !c->w3t[l]))
            return FXP_ENOMEM;
        if (need1) fxp__tile_pack(&g->t1[l], nl, nl, 1, v->w1[l]->value.data, 0, c->w1p[l]);
        if (need3) fxp__tile_pack(&g->t3[l], g->G, nl, 9, v->w3[l]->value.data, 0, c->w3p[l]);
        if (backward)
            fxp__tile_pack(&g->t3t[l], nl, g->G, 9, v->w3[l]->value.data, 1, c->w3t[l]);
        c->w1o[l] = wsz;
        c->b1o[l] = wsz += (int64_t)nl * nl;
        c->w3o[l] = wsz += nl;
        c->b3o[l] = wsz += (int64_t)9 * g->G * nl;
        wsz += g->G;
    }
    c->woo = wsz;
    c->boo = wsz += (int64_t)g->n_o * g->N;
    c->wsz = round_up(wsz + g->n_o, VL);
    const int needo = !backward || g->gated; /* the gated backward recomputes o */
    c->wop = needo ? fxp__scratch_alloc(ctx, (size_t)fxp__tile_packed_size(&g->to, g->n_o, g->N,
                                                                          1) * sizeof(float))
                   : NULL;
    c->mask_c = fxp__scratch_alloc(ctx, (size_t)g->cs * sizeof(int32_t));
    c->mask_g = fxp__scratch_alloc(ctx, (size_t)g->ps * sizeof(int32_t));
    if ((needo && !c->wop) || !c->mask_c || !c->mask_g)
        return FXP_ENOMEM;
    if (needo) fxp__tile_pack(&g->to, g->n_o, g->N, 1, v->wo->value.data, 0, c->wop);
    for (int64_t q = 0; q < g->cs; q++) c->mask_c[q] = q < g->HW ? -1 : 0;
    for (int64_t q = 0; q < g->ps; q++) c->mask_g[q] = q < g->Q && q % g->WP < g->W ? -1 : 0;
    c->per_thread = layout_bufs(g, backward, NULL, NULL);
    c->scratch = fxp__scratch_alloc(ctx, (size_t)threads * c->per_thread * sizeof(float));
    c->part = backward ? fxp__scratch_alloc(ctx, (size_t)threads * c->wsz * sizeof(float)) : NULL;
    if (!c->scratch || (backward && !c->part)) return FXP_ENOMEM;
    return FXP_OK;
}

/* Images split into contiguous blocks, one per thread; each thread zeroes
 * its buffers once (their borders and tails must read as zeros). */
static void run_images(fxp_ctx *ctx, dn_call *c, int backward)
{
    const int B = c->g.B, nt = FXP_MIN(ctx->n_threads, B);
    FXP_PARALLEL_FOR(nt, nt > 1,
        for (int tid = 0; tid < nt; tid++) {
            float *base = c->scratch + (int64_t)tid * c->per_thread;
            memset(base, 0, (size_t)c->per_thread * sizeof(float));
            dn_bufs b;
            layout_bufs(&c->g, backward, base, &b);
            float *d = backward ? c->part + (int64_t)tid * c->wsz : NULL;
            if (d) memset(d, 0, (size_t)c->wsz * sizeof(float));
            const int n0 = (int)((int64_t)B * tid / nt), n1 = (int)((int64_t)B * (tid + 1) / nt);
            for (int n = n0; n < n1; n++) {
                if (backward)
                    backward_image(c, n, &b, d);
                else
                    forward_image(c, n, &b);
            }
        });
}

static int threads_for(const fxp_ctx *ctx, int B) { return FXP_MAX(1, FXP_MIN(ctx->n_threads, B)); }

/* ---- the tape op -------------------------------------------------------------------- */

typedef struct dn_saved {
    fxp__densenet_vars v; /* arrays copied to the tape */
    float *F, **A;
    int recompute;
} dn_saved;

/* Add partial p (layout of dn_call) to the parameters' gradients. */
static void add_partial(const dn_call *c, const float *p)
{
    const dn_geom *g = &c->g;
    const fxp__densenet_vars *v = c->v;
    for (int l = 0; l < g->D; l++) {
        const int nl = g->n_in + l * g->G;
        if (v->w1[l]->grad)
            for (int64_t i = 0; i < (int64_t)nl * nl; i++) v->w1[l]->grad[i] += p[c->w1o[l] + i];
        if (v->b1[l]->grad)
            for (int i = 0; i < nl; i++) v->b1[l]->grad[i] += p[c->b1o[l] + i];
        if (v->w3[l]->grad) /* [G][tap][n_l] -> [G][n_l][tap] */
            for (int o = 0; o < g->G; o++)
                for (int k = 0; k < 9; k++)
                    for (int ci = 0; ci < nl; ci++)
                        v->w3[l]->grad[((int64_t)o * nl + ci) * 9 + k] +=
                            p[c->w3o[l] + ((int64_t)o * 9 + k) * nl + ci];
        if (v->b3[l]->grad)
            for (int i = 0; i < g->G; i++) v->b3[l]->grad[i] += p[c->b3o[l] + i];
    }
    if (v->wo->grad)
        for (int64_t i = 0; i < (int64_t)g->n_o * g->N; i++) v->wo->grad[i] += p[c->woo + i];
    if (v->bo->grad)
        for (int i = 0; i < g->n_o; i++) v->bo->grad[i] += p[c->boo + i];
}

/* A zeroed gradient for a parameter that needs one and has none yet: the
 * node lists only x and one parameter as inputs, so the tape did not give
 * the others their buffers (parameters from fxp_tape_param and outputs of
 * other ops have theirs already). */
static int ensure_grad(fxp_tape *t, fxp_var *p)
{
    if (!p->requires_grad || p->grad) return FXP_OK;
    const size_t bytes = (size_t)fxp_tensor_numel(&p->value) * sizeof(float);
    if (!(p->grad = fxp_tape_alloc(t, bytes))) return FXP_ENOMEM;
    memset(p->grad, 0, bytes);
    return FXP_OK;
}

static int densenet_backward(fxp_tape *t, const fxp_node *node)
{
    const dn_saved *sv = node->saved;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    fxp_var *x = node->in[0];
    for (int l = 0; l < sv->v.depth; l++)
        if (ensure_grad(t, sv->v.w1[l]) < 0 || ensure_grad(t, sv->v.b1[l]) < 0 ||
            ensure_grad(t, sv->v.w3[l]) < 0 || ensure_grad(t, sv->v.b3[l]) < 0)
            return FXP_ENOMEM;
    if (ensure_grad(t, sv->v.wo) < 0 || ensure_grad(t, sv->v.bo) < 0) return FXP_ENOMEM;
    const int nt = threads_for(ctx, x->value.shape[0]);
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    dn_call c;
    memset(&c, 0, sizeof c);
    c.recompute = sv->recompute;
    int rc = call_init(ctx, &c, x, &sv->v, 1, nt);
    if (rc < 0) {
        fxp__scratch_restore(ctx, mark);
        return FXP_ERR(ctx, FXP_ENOMEM, "no scratch for the DenseNet backward");
    }
    c.x = x->value.data;
    c.F = sv->F;
    c.A = sv->A;
    c.recompute = sv->recompute;
    c.dy = node->out->grad;
    c.dx = x->grad;
    run_images(ctx, &c, 1);
    for (int p = 0; p < nt; p++) add_partial(&c, c.part + (int64_t)p * c.wsz); /* thread order */
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}

int fxp__densenet_op(fxp_tape *t, fxp_var **out, fxp_var *x, const fxp__densenet_vars *v,
                     int recompute)
{
    fxp_var *in1[1] = { x };
    int rc = fxp__ops_check_vars(t, __func__, 1, in1);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    if (!out || !v) return FXP_ERR(ctx, FXP_EINVAL, "out or the parameters are NULL");
    if ((rc = check_shapes(ctx, x, v)) < 0) return rc;
    /* the node's inputs: x and one parameter that needs a gradient (the
     * backward reaches all of them through the saved copy of v) */
    fxp_var *in[2] = { x, NULL };
    int need = fxp_tape_needs_grad(t, 1, in1);
    const int D = v->depth;
    for (int l = 0; l < D && !in[1]; l++) {
        fxp_var *p[4] = { v->w1[l], v->b1[l], v->w3[l], v->b3[l] };
        for (int i = 0; i < 4 && !in[1]; i++)
            if (fxp_tape_needs_grad(t, 1, &p[i])) in[1] = p[i];
    }
    if (!in[1] && fxp_tape_needs_grad(t, 1, &v->wo)) in[1] = v->wo;
    if (!in[1] && fxp_tape_needs_grad(t, 1, &v->bo)) in[1] = v->bo;
    need = need || in[1];
    dn_geom g0;
    geom_init(&g0, x, v);
    const int yshape[4] = { g0.B, g0.n_out, g0.H, g0.W };
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, 4, yshape)) < 0) return rc;
    dn_saved *sv = NULL;
    if (need) {
        sv = fxp_tape_alloc(t, sizeof *sv);
        fxp_var **arr = fxp_tape_alloc(t, (size_t)4 * D * sizeof *arr);
        if (!sv || !arr) return FXP_ENOMEM;
        sv->v = *v;
        sv->v.w1 = memcpy(arr, v->w1, (size_t)D * sizeof *arr);
        sv->v.b1 = memcpy(arr + D, v->b1, (size_t)D * sizeof *arr);
        sv->v.w3 = memcpy(arr + 2 * D, v->w3, (size_t)D * sizeof *arr);
        sv->v.b3 = memcpy(arr + 3 * D, v->b3, (size_t)D * sizeof *arr);
        sv->recompute = recompute != 0;
        sv->F = fxp_tape_alloc(t, (size_t)g0.B * g0.N * g0.HW * sizeof(float));
        sv->A = NULL;
        if (!sv->F) return FXP_ENOMEM;
        if (!recompute) {
            if (!(sv->A = fxp_tape_alloc(t, (size_t)D * sizeof *sv->A))) return FXP_ENOMEM;
            for (int l = 0; l < D; l++) {
                const int64_t nl = g0.n_in + (int64_t)l * g0.G;
                if (!(sv->A[l] = fxp_tape_alloc(t, (size_t)g0.B * nl * g0.HW * sizeof(float))))
                    return FXP_ENOMEM;
            }
        }
    }
    const int nt = threads_for(ctx, g0.B);
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    dn_call c;
    memset(&c, 0, sizeof c);
    if ((rc = call_init(ctx, &c, x, v, 0, nt)) < 0) {
        fxp__scratch_restore(ctx, mark);
        return FXP_ERR(ctx, FXP_ENOMEM, "no scratch for the DenseNet forward");
    }
    c.x = x->value.data;
    c.F = sv ? sv->F : NULL;
    c.A = sv ? sv->A : NULL;
    c.recompute = recompute;
    c.y = y->value.data;
    run_images(ctx, &c, 0);
    fxp__scratch_restore(ctx, mark);
    if (need && (rc = fxp_tape_record(t, "fxp_densenet", densenet_backward, y, in[1] ? 2 : 1, in,
                                       sv)) < 0)
        return rc;
    *out = y;
    return FXP_OK;
}
