/* The convolution exponential's series, fused per image (see conv_series.h).
 *
 * Layout.  Every image lives in a padded buffer of C planes with plane
 * stride ps: plane c holds the image at rows ph .. ph+H-1, columns
 * pw .. pw+W-1 of an HP x WP grid (HP = H + kh - 1, WP = W + kw - 1), zeros
 * around it and after it.  Outputs are computed on the padded-width grid
 * q = r WP + c (r < H, c < WP), where the tap (ky, kx) reads the input at
 * q + ky WP + kx: contiguous floats for every tap (conv_direct.c uses the
 * same grid).  Output q belongs at q + off in the next padded buffer,
 * off = ph WP + pw, and the grid positions with c >= W fall exactly on the
 * padding columns, so a term is stored with those positions (and those past
 * the grid) zeroed by a mask and is at once the next term's padded input:
 * no copy or re-padding between terms.
 *
 * Register tiles (conv_series_tile.inc): TILE_CO output channels x TILE_NV
 * vectors of grid positions, accumulated over (ci, ky, kx) with one
 * broadcast weight per channel and one unaligned load per vector.  The tile
 * shape is chosen per call to waste the fewest lanes on the channel count
 * and grid length.  Vectors are GCC vector extensions of 16 floats: one
 * AVX-512 register where the CPU has AVX-512 (the "wide" tiles are compiled
 * for it and chosen at run time), two AVX2 registers otherwise ("narrow"
 * tiles, fewer accumulators).
 *
 * Threads run whole images (each its own buffers), or, when the batch is
 * too small to split evenly, the tiles of one image at a time with a
 * barrier between terms.  Reductions (the last term's norm, the kernel
 * gradient) are summed in an order fixed by the thread count. */
#include <math.h>
#include <string.h>

#include "ops/conv_series.h"
#include "ops/conv_tiles.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define VL FXP_VL

/* ---- geometry ------------------------------------------------------------------ */

typedef struct geom {
    int C, H, W, kh, kw, ph, pw, HP, WP;
    int Q, qv;            /* grid positions; rounded up to whole vectors */
    int co, nv, nco, nq;  /* tile shape; tiles along channels and along the grid */
    int64_t off, ps, img; /* grid origin in a plane; plane stride; floats per image buffer */
    int64_t lead;         /* floats before the first plane, so that grid origins are aligned */
    fxp__tile tile;
    int wco;              /* output channels per kernel-gradient block */
} geom;

static void geom_init(geom *g, const fxp__conv_shape *s)
{
    g->C = s->c_in;
    g->H = s->h;
    g->W = s->w;
    g->kh = s->kh;
    g->kw = s->kw;
    g->ph = s->kh / 2;
    g->pw = s->kw / 2;
    g->HP = s->h + s->kh - 1;
    g->WP = s->w + s->kw - 1;
    g->Q = s->h * g->WP;
    g->qv = (g->Q + VL - 1) / VL;
    g->tile = fxp__tile_choose(g->C, g->qv);
    g->co = g->tile.co;
    g->nv = g->tile.nv;
    g->nco = (g->C + g->co - 1) / g->co;
    g->nq = (g->qv + g->nv - 1) / g->nv;
    g->off = (int64_t)g->ph * g->WP + g->pw;
    const int64_t qr = (int64_t)g->nq * g->nv * VL; /* grid positions a term stores */
    int64_t ps = FXP_MAX((int64_t)g->HP * g->WP, g->off + qr);
    g->ps = (ps + VL - 1) / VL * VL;
    /* reads run up to (kh-1) WP + kw + 2 past the last stored grid position */
    const int64_t slack = ((int64_t)(g->kh - 1) * g->WP + g->kw + 2 * VL + VL - 1) / VL * VL;
    g->lead = (VL - g->off % VL) % VL;
    g->img = (g->lead + g->C * g->ps + slack + VL - 1) / VL * VL;
    g->wco = fxp__tile_wgrad_block();
}

int fxp__conv_series_ok(const fxp_ctx *ctx, const fxp__conv_shape *s)
{
    if (ctx && ctx->conv_algo == FXP_CONV_IM2COL) return 0;
    return s->padding == FXP_PAD_ZERO && s->c_in == s->c_out && s->kh % 2 == 1 &&
           s->kw % 2 == 1 && s->n >= 1 && s->c_in >= 1 && s->h >= 1 && s->w >= 1;
}

/* mask[q] = -1 for grid positions inside the image, 0 for the dropped
 * columns and past the grid (length nq nv VL). */
static void make_mask(const geom *g, int32_t *mask)
{
    const int64_t qr = (int64_t)g->nq * g->nv * VL;
    for (int64_t q = 0; q < qr; q++) mask[q] = q < g->Q && q % g->WP < g->W ? -1 : 0;
}

/* The kernel of M (or of M^T), packed for the tile. */
static void pack_kernel(const geom *g, const float *k, int transposed, float *wpk)
{
    fxp__tile_pack(&g->tile, g->C, g->C, g->kh * g->kw, k, transposed, wpk);
}

/* Channels [c0, c1) of an [C, H, W] image into the interior of a padded
 * buffer (its borders stay as they are: zero). */
static void pad_in(const geom *g, const float *x, float *buf, int c0, int c1)
{
    for (int c = c0; c < c1; c++)
        for (int r = 0; r < g->H; r++)
            memcpy(buf + c * g->ps + g->off + (int64_t)r * g->WP,
                   x + ((int64_t)c * g->H + r) * g->W, (size_t)g->W * sizeof(float));
}

/* The interior of channels [c0, c1) out to an [C, H, W] image (add: +=). */
static void pad_out(const geom *g, const float *buf, float *x, int c0, int c1, int add)
{
    for (int c = c0; c < c1; c++)
        for (int r = 0; r < g->H; r++) {
            const float *src = buf + c * g->ps + g->off + (int64_t)r * g->WP;
            float *dst = x + ((int64_t)c * g->H + r) * g->W;
            if (add)
                for (int j = 0; j < g->W; j++) dst[j] += src[j];
            else
                memcpy(dst, src, (size_t)g->W * sizeof(float));
        }
}

/* [lo, hi) of n items for part `i` of `parts` (static, contiguous). */
static void split(int n, int i, int parts, int *lo, int *hi)
{
    *lo = (int)((int64_t)n * i / parts);
    *hi = (int)((int64_t)n * (i + 1) / parts);
}

static void team_barrier(int nth)
{
#ifdef _OPENMP
    if (nth > 1) {
#pragma omp barrier
    }
#else
    (void)nth;
#endif
}

/* One series term over the tiles [t0, t1) of an image: out = alpha (M in
 * (+ add)), acc += out, ss[tile] = ||out tile||^2. */
static void run_tiles(const geom *g, const float *wpk, const int32_t *mask, const float *in,
                      const float *add, float *out, float *acc, float alpha, double *ss, int t0,
                      int t1)
{
    const int taps = g->kh * g->kw;
    fxp__tile_args a = { .ips = g->ps, .ops = g->ps, .c_in = g->C, .WP = g->WP, .kh = g->kh,
                         .kw = g->kw, .alpha = alpha, .wci = (int64_t)taps * g->co };
    for (int tl = t0; tl < t1; tl++) {
        const int ct = tl / g->nq, qt = tl % g->nq;
        const int co0 = ct * g->co;
        const int64_t q0 = (int64_t)qt * g->nv * VL;
        const int64_t at = co0 * g->ps + g->off + q0;
        a.x = in + q0;
        a.w = wpk + (int64_t)ct * g->C * taps * g->co;
        a.add = add ? add + at : NULL;
        a.out = out ? out + at : NULL;
        a.acc = acc ? acc + at : NULL;
        a.mask = mask + q0;
        a.ss = ss ? ss + tl : NULL;
        a.nb = FXP_MIN(g->co, g->C - co0);
        g->tile.fn(&a);
    }
}

/* ---- forward ----------------------------------------------------------------------- */

typedef struct fwd_job {
    const geom *g;
    const float *wpk;
    const int32_t *mask;
    const float *x;
    float *y;
    float *const *saved;
    double *ss; /* [N][nco nq]: the last term's tile norms */
    float sign;
    int terms;
} fwd_job;

/* Image n with buffers P0, P1 (terms, in turn) and Y (the sum), as part
 * `tid` of a team of `nth` threads sharing the image (nth = 1: alone). */
static void fwd_image(const fwd_job *j, int n, float *P0, float *P1, float *Y, int tid, int nth)
{
    const geom *g = j->g;
    const int64_t chw = (int64_t)g->C * g->H * g->W, ntl = (int64_t)g->nco * g->nq;
    int c0, c1, t0, t1;
    split(g->C, tid, nth, &c0, &c1);
    split((int)ntl, tid, nth, &t0, &t1);
    pad_in(g, j->x + n * chw, P0, c0, c1);
    pad_in(g, j->x + n * chw, Y, c0, c1);
    team_barrier(nth);
    float *buf[2] = { P0, P1 };
    for (int i = 1; i <= j->terms; i++) {
        float *src = buf[(i - 1) & 1], *dst = i < j->terms ? buf[i & 1] : NULL;
        run_tiles(g, j->wpk, j->mask, src, NULL, dst, Y, j->sign / (float)i,
                  i == j->terms ? j->ss + n * ntl : NULL, t0, t1);
        team_barrier(nth);
        if (j->saved && dst) pad_out(g, dst, j->saved[i] + n * chw, c0, c1, 0);
    }
    pad_out(g, Y, j->y + n * chw, c0, c1, 0);
}

/* Threads to use and whether they split images (1) or the tiles of each
 * image (0): none for a call under about 20 MFLOP (a few tenths of a
 * millisecond on one core: there a parallel region gains little and, on a
 * loaded machine, can wait milliseconds for a descheduled worker); images
 * when they divide evenly or are many, or when an image's term is too small
 * for a barrier per term to pay. */
static int plan_threads(const fxp_ctx *ctx, const geom *g, int N, int terms, int *by_image)
{
    const int nt = ctx->n_threads;
    const double flop = 2.0 * g->C * g->C * g->kh * g->kw * g->Q; /* one term, one image */
    *by_image = 1;
    if (nt <= 1 || flop * N * terms < 2e7) return 1;
    if (N % nt == 0 || N >= 4 * nt) return nt;
    if (flop < 4e6) return N >= nt ? nt : FXP_MAX(1, N);
    *by_image = 0;
    return nt;
}

static void zero_buffers(float *p, int64_t n) { memset(p, 0, (size_t)n * sizeof(float)); }

int fxp__conv_series_forward(fxp_ctx *ctx, const fxp__conv_shape *s, const float *k, float sign,
                             int terms, const float *x, float *y, float *const *saved,
                             double *last_sumsq)
{
    geom g;
    geom_init(&g, s);
    const int N = s->n, taps = s->kh * s->kw;
    const int64_t ntl = (int64_t)g.nco * g.nq;
    int by_image;
    const int nt = plan_threads(ctx, &g, N, terms, &by_image);
    const int sets = by_image ? nt : 1;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *wpk = fxp__scratch_alloc(ctx, (size_t)ntl / g.nq * g.C * taps * g.co * sizeof(float));
    int32_t *mask = fxp__scratch_alloc(ctx, (size_t)g.nq * g.nv * VL * sizeof(int32_t));
    double *ss = fxp__scratch_alloc(ctx, (size_t)N * ntl * sizeof(double));
    float *bufs = fxp__scratch_alloc(ctx, (size_t)sets * 3 * g.img * sizeof(float));
    if (!wpk || !mask || !ss || !bufs) {
        fxp__scratch_restore(ctx, mark);
        return FXP_ERR(ctx, FXP_ENOMEM, "no scratch for the series (%d x %d x %d x %d)", N,
                       s->c_in, s->h, s->w);
    }
    pack_kernel(&g, k, 0, wpk);
    make_mask(&g, mask);
    fwd_job j = { &g, wpk, mask, x, y, saved, ss, sign, terms };
    if (by_image) {
        FXP_PARALLEL_FOR(nt, nt > 1,
            for (int tid = 0; tid < nt; tid++) {
                float *b = bufs + (int64_t)tid * 3 * g.img;
                int n0, n1;
                split(N, tid, nt, &n0, &n1);
                if (n0 < n1) zero_buffers(b, 3 * g.img);
                for (int n = n0; n < n1; n++)
                    fwd_image(&j, n, b + g.lead, b + g.lead + g.img, b + g.lead + 2 * g.img, 0, 1);
            });
    } else {
        zero_buffers(bufs, 3 * g.img);
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
        {
            const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
            for (int n = 0; n < N; n++) {
                fwd_image(&j, n, bufs + g.lead, bufs + g.lead + g.img,
                          bufs + g.lead + 2 * g.img, tid, nth);
                team_barrier(nth);
            }
        }
#else
        for (int n = 0; n < N; n++)
            fwd_image(&j, n, bufs + g.lead, bufs + g.lead + g.img, bufs + g.lead + 2 * g.img, 0, 1);
#endif
    }
    double tot = 0;
    for (int64_t i = 0; i < (int64_t)N * ntl; i++) tot += ss[i];
    fxp__scratch_restore(ctx, mark);
    if (!isfinite(tot) || fxp__has_nonfinite(y, (int64_t)N * s->c_in * s->h * s->w))
        return FXP_ERR(ctx, FXP_ENUMERIC,
                       "the exponential of the convolution is not finite (%d terms; the kernel's "
                       "norm is too large for the series)", terms);
    if (last_sumsq) *last_sumsq = tot;
    return FXP_OK;
}

/* ---- backward ------------------------------------------------------------------------ */

typedef struct bwd_job {
    const geom *g;
    const float *wpk, *wpt; /* the kernel of M, of M^T, packed */
    const int32_t *mask;
    const float *x;
    const float *const *t;
    const float *g_out;
    float *dx;
    float sign;
    int terms, need_dk;
} bwd_job;

/* Buffers of one image: XP[0..T-1] (the padded terms t_i), B[0..T-1]
 * (b_{i+1}), Gp (padded g), A0 (dL/dx). */
static int64_t bwd_buffers(int terms) { return 2 * (int64_t)terms + 2; }

/* Image n as part `tid` of `nth` threads; dw: the kernel gradient partial
 * (+=) this image adds to. */
static void bwd_image(const bwd_job *j, int n, float *base, float *dw, int tid, int nth)
{
    const geom *g = j->g;
    const int T = j->terms;
    const int64_t chw = (int64_t)g->C * g->H * g->W, ntl = (int64_t)g->nco * g->nq;
#define XP(i) (base + (int64_t)(i) * g->img)
#define B(i) (base + (int64_t)(T + (i)) * g->img)
    float *Gp = base + 2 * (int64_t)T * g->img, *A0 = Gp + g->img;
    int c0, c1, t0, t1;
    split(g->C, tid, nth, &c0, &c1);
    split((int)ntl, tid, nth, &t0, &t1);
    pad_in(g, j->g_out + n * chw, Gp, c0, c1);
    if (j->need_dk) {
        pad_in(g, j->x + n * chw, XP(0), c0, c1);
        if (j->t)
            for (int i = 1; i < T; i++) pad_in(g, j->t[i] + n * chw, XP(i), c0, c1);
    }
    /* b_T = (s / T) g over whole planes (the zero borders stay zero) */
    const float sT = j->sign / (float)T;
    for (int64_t p = c0 * g->ps; p < c1 * g->ps; p++) B(T - 1)[p] = sT * Gp[p];
    team_barrier(nth);
    if (j->need_dk && !j->t)
        for (int i = 1; i < T; i++) { /* recompute t_i = (s / i) M t_{i-1} */
            run_tiles(g, j->wpk, j->mask, XP(i - 1), NULL, XP(i), NULL, j->sign / (float)i, NULL,
                      t0, t1);
            team_barrier(nth);
        }
    for (int i = T; i >= 2; i--) { /* b_{i-1} = (s / (i-1)) (g + M^T b_i) */
        run_tiles(g, j->wpt, j->mask, B(i - 1), Gp, B(i - 2), NULL, j->sign / (float)(i - 1),
                  NULL, t0, t1);
        team_barrier(nth);
    }
    if (j->need_dk) {
        fxp__wgrad_args a = { XP(0), B(0) + g->off, dw, g->img, g->ps, (int64_t)g->qv * VL, T,
                              g->C, g->WP, g->kh, g->kw, 0, 0 };
        const int nblk = (g->C + g->wco - 1) / g->wco;
        int b0, b1;
        split(nblk, tid, nth, &b0, &b1);
        for (int blk = b0; blk < b1; blk++) {
            a.co0 = blk * g->wco;
            a.nb = FXP_MIN(g->wco, g->C - a.co0);
            fxp__tile_wgrad(&a);
        }
    }
    if (j->dx) { /* dL/dx = g + M^T b_1 */
        run_tiles(g, j->wpt, j->mask, B(0), Gp, A0, NULL, 1.0f, NULL, t0, t1);
        team_barrier(nth);
        pad_out(g, A0, j->dx + n * chw, c0, c1, 1);
    }
    team_barrier(nth); /* the buffers are reused by the next image */
#undef XP
#undef B
}

int fxp__conv_series_backward(fxp_ctx *ctx, const fxp__conv_shape *s, const float *k, float sign,
                              int terms, const float *x, const float *const *t, const float *g,
                              float *dx, float *dk)
{
    if (!dx && !dk) return FXP_OK;
    if (terms > 1000) return FXP_ERR(ctx, FXP_EINVAL, "terms = %d > 1000", terms);
    geom ge;
    geom_init(&ge, s);
    const int N = s->n, taps = s->kh * s->kw;
    const int64_t ws = (int64_t)ge.C * ge.C * taps;
    int by_image;
    const int nt = plan_threads(ctx, &ge, N, 3 * terms, &by_image);
    const int sets = by_image ? nt : 1;
    const int64_t per = bwd_buffers(terms) * ge.img;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    const size_t wsz = (size_t)ge.nco * ge.C * taps * ge.co * sizeof(float);
    float *wpk = fxp__scratch_alloc(ctx, wsz), *wpt = fxp__scratch_alloc(ctx, wsz);
    int32_t *mask = fxp__scratch_alloc(ctx, (size_t)ge.nq * ge.nv * VL * sizeof(int32_t));
    float *bufs = fxp__scratch_alloc(ctx, (size_t)sets * per * sizeof(float));
    float *part = dk ? fxp__scratch_alloc(ctx, (size_t)sets * ws * sizeof(float)) : NULL;
    if (!wpk || !wpt || !mask || !bufs || (dk && !part)) {
        fxp__scratch_restore(ctx, mark);
        return FXP_ERR(ctx, FXP_ENOMEM, "no scratch for the series' backward (%d x %d x %d x %d)",
                       N, s->c_in, s->h, s->w);
    }
    pack_kernel(&ge, k, 0, wpk);
    pack_kernel(&ge, k, 1, wpt);
    make_mask(&ge, mask);
    if (part) memset(part, 0, (size_t)sets * ws * sizeof(float));
    bwd_job j = { &ge, wpk, wpt, mask, x, t, g, dx, sign, terms, dk != NULL };
    if (by_image) {
        FXP_PARALLEL_FOR(nt, nt > 1,
            for (int tid = 0; tid < nt; tid++) {
                float *b = bufs + (int64_t)tid * per;
                int n0, n1;
                split(N, tid, nt, &n0, &n1);
                if (n0 < n1) zero_buffers(b, per);
                for (int n = n0; n < n1; n++)
                    bwd_image(&j, n, b + ge.lead, part ? part + (int64_t)tid * ws : NULL, 0, 1);
            });
    } else {
        zero_buffers(bufs, per);
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
        {
            const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
            for (int n = 0; n < N; n++) bwd_image(&j, n, bufs + ge.lead, part, tid, nth);
        }
#else
        for (int n = 0; n < N; n++) bwd_image(&j, n, bufs + ge.lead, part, 0, 1);
#endif
    }
    if (dk) /* partials in thread order: fixed for a given thread count */
        for (int p = 0; p < sets; p++)
            for (int64_t i = 0; i < ws; i++) dk[i] += part[(int64_t)p * ws + i];
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}
