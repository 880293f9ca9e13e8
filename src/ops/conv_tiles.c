/* Register-tile kernels of the direct convolutions on the padded-width grid
 * (see conv_tiles.h).  The tiles are GCC vector extensions instantiated from
 * conv_tile.inc (forward and transposed maps), conv_wgrad.inc (kernel
 * gradient, positions in the lanes) and conv_outer.inc (kernel gradient,
 * channels in the lanes): once per shape compiled for AVX-512 ("wide"),
 * and a few narrower shapes for other x86-64 CPUs (FXP_CLONES). */
#include <string.h>

#include "ops/conv_tiles.h"

#define VL FXP_VL
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* vectors stay inside this file */
#endif

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), __may_alias__));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef int32_t v16iu __attribute__((vector_size(64), aligned(4), __may_alias__));

#define VINLINE static inline __attribute__((always_inline))
/* The register tiles' loops over channels and vectors must be unrolled
 * completely, or their accumulators live in memory. */
#if defined(__GNUC__) && !defined(__clang__)
#define UNROLL _Pragma("GCC unroll 16")
#else
#define UNROLL
#endif
/* Keep a loaded vector in a register: without it GCC folds the load into
 * each of its FMAs, three loads where one would do. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define VREG(v) __asm__("" : "+v"(v))
#else
#define VREG(v) (void)0
#endif
VINLINE v16 vzero(void) { return (v16){ 0 }; }
VINLINE v16 vsplat(float a) /* one broadcast (0 + a would be an addition: -0 + 0 = +0) */
{
#if defined(__GNUC__) && !defined(__clang__)
    const v16 t = { a };
    return __builtin_shuffle(t, (v16i){ 0 });
#else
    return (v16){ 0 } + a;
#endif
}
VINLINE v16 vload(const float *p) { return *(const v16u *)p; }
VINLINE void vstore(float *p, v16 v) { *(v16u *)p = v; }
/* v with the lanes whose mask word is 0 set to +0 (bitwise, so NaN too) */
VINLINE v16 vmask(v16 v, const int32_t *m) { return (v16)((v16i)v & *(const v16iu *)m); }
VINLINE v16 vmax(v16 a, v16 b) /* a > b ? a : b, lane by lane (NaN -> b, as the ReLU op) */
{
    const v16i m = a > b;
    return (v16)((m & (v16i)a) | (~m & (v16i)b));
}
/* v where g > 0, +0 elsewhere (the backward of a ReLU whose output is g) */
VINLINE v16 vgate(v16 v, v16 g) { return (v16)((v16i)v & (v16i)(g > 0)); }
VINLINE float vsum(v16 v) /* pairwise: 16 -> 8 -> 4 -> 2 -> 1 */
{
    float a[VL];
    memcpy(a, &v, sizeof a);
    for (int h = VL / 2; h >= 1; h /= 2)
        for (int l = 0; l < h; l++) a[l] += a[l + h];
    return a[0];
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__)
#define WIDE_ATTR __attribute__((target("avx512f")))
static int cpu_wide(void) { return __builtin_cpu_supports("avx512f"); }
#else
#define WIDE_ATTR
static int cpu_wide(void) { return 0; }
#endif

#define TILE_ATTR WIDE_ATTR
#define TILE_KEEP(v) VREG(v)
#define TILE_NAME tile_w1x16
#define TILE_CO 1
#define TILE_NV 16
#include "ops/conv_tile.inc"
#define TILE_NAME tile_w2x8
#define TILE_CO 2
#define TILE_NV 8
#include "ops/conv_tile.inc"
#define TILE_NAME tile_w3x6
#define TILE_CO 3
#define TILE_NV 6
#include "ops/conv_tile.inc"
#define TILE_NAME tile_w4x4
#define TILE_CO 4
#define TILE_NV 4
#include "ops/conv_tile.inc"
#define TILE_NAME tile_w4x5
#define TILE_CO 4
#define TILE_NV 5
#include "ops/conv_tile.inc"
#define TILE_NAME tile_w5x4
#define TILE_CO 5
#define TILE_NV 4
#include "ops/conv_tile.inc"
#define TILE_NAME tile_w6x3
#define TILE_CO 6
#define TILE_NV 3
#include "ops/conv_tile.inc"
#define TILE_NAME tile_w6x4
#define TILE_CO 6
#define TILE_NV 4
#include "ops/conv_tile.inc"
#define TILE_NAME tile_w8x3
#define TILE_CO 8
#define TILE_NV 3
#include "ops/conv_tile.inc"
#undef TILE_ATTR
#undef TILE_KEEP

#define TILE_ATTR FXP_CLONES
#define TILE_KEEP(v) (void)0
#define TILE_NAME tile_n1x4
#define TILE_CO 1
#define TILE_NV 4
#include "ops/conv_tile.inc"
#define TILE_NAME tile_n2x2
#define TILE_CO 2
#define TILE_NV 2
#include "ops/conv_tile.inc"
#define TILE_NAME tile_n3x2
#define TILE_CO 3
#define TILE_NV 2
#include "ops/conv_tile.inc"
#define TILE_NAME tile_n4x1
#define TILE_CO 4
#define TILE_NV 1
#include "ops/conv_tile.inc"
#undef TILE_ATTR
#undef TILE_KEEP

#define WG_ATTR WIDE_ATTR
#define WG_NAME wgrad_w
#define WG_CO 6
#define WG_KEEP(v) VREG(v)
#include "ops/conv_wgrad.inc"
#undef WG_ATTR
#define WG_ATTR FXP_CLONES
#define WG_NAME wgrad_n
#define WG_CO 2
#define WG_KEEP(v) (void)0
#include "ops/conv_wgrad.inc"
#undef WG_ATTR

static const fxp__tile wide_tiles[] = { { 1, 16, tile_w1x16 }, { 2, 8, tile_w2x8 },
                                        { 3, 6, tile_w3x6 },   { 4, 4, tile_w4x4 },
                                        { 4, 5, tile_w4x5 },   { 5, 4, tile_w5x4 },
                                        { 6, 3, tile_w6x3 },   { 6, 4, tile_w6x4 },
                                        { 8, 3, tile_w8x3 } };
static const fxp__tile narrow_tiles[] = { { 1, 4, tile_n1x4 }, { 2, 2, tile_n2x2 },
                                          { 3, 2, tile_n3x2 }, { 4, 1, tile_n4x1 } };


#define OUT_ATTR WIDE_ATTR
#define OUT_NAME outer_w
#define OUT_CO 6
#define OUT_NV 4
#define OUT_KEEP(v) VREG(v)
#include "ops/conv_outer.inc"
#undef OUT_ATTR
#define OUT_ATTR FXP_CLONES
#define OUT_NAME outer_n
#define OUT_CO 2
#define OUT_NV 2
#define OUT_KEEP(v) (void)0
#include "ops/conv_outer.inc"
#undef OUT_ATTR

#define N_WIDE (int)(sizeof wide_tiles / sizeof *wide_tiles)
#define N_NARROW (int)(sizeof narrow_tiles / sizeof *narrow_tiles)

/* Test hook: -1 = choose, else an index into narrow_tiles then wide_tiles. */
static int forced_tile = -1;

int fxp__tile_kinds(void) { return cpu_wide() ? N_NARROW + N_WIDE : N_NARROW; }

void fxp__tile_force(int kind) { forced_tile = kind >= 0 && kind < fxp__tile_kinds() ? kind : -1; }

static int use_wide(void) { return forced_tile >= 0 ? forced_tile >= N_NARROW : cpu_wide(); }

fxp__tile fxp__tile_choose(int c_out, int qv)
{
    if (forced_tile >= 0)
        return forced_tile < N_NARROW ? narrow_tiles[forced_tile]
                                      : wide_tiles[forced_tile - N_NARROW];
    const int wide = cpu_wide(), nk = wide ? N_WIDE : N_NARROW;
    const fxp__tile *kinds = wide ? wide_tiles : narrow_tiles;
    fxp__tile best = kinds[0];
    double best_cost = 0;
    for (int i = 0; i < nk; i++) {
        const int nco = (c_out + kinds[i].co - 1) / kinds[i].co;
        const int nq = (qv + kinds[i].nv - 1) / kinds[i].nv;
        const int fma = kinds[i].co * kinds[i].nv, ld = kinds[i].co + kinds[i].nv;
        const double cost = (double)nco * nq * ((fma > ld ? fma : ld) + 3);
        if (i == 0 || cost < best_cost) {
            best_cost = cost;
            best = kinds[i];
        }
    }
    return best;
}

int64_t fxp__tile_packed_size(const fxp__tile *t, int c_out, int c_in, int taps)
{
    return (int64_t)(c_out + t->co - 1) / t->co * t->co * c_in * taps;
}

void fxp__tile_pack(const fxp__tile *t, int c_out, int c_in, int taps, const float *w,
                    int transposed, float *wpk)
{
    const int CO = t->co, ntl = (c_out + CO - 1) / CO;
    const int64_t row = (int64_t)c_in * taps; /* one output channel's weights */
    for (int tl = 0; tl < ntl; tl++) {
        float *dst = wpk + tl * row * CO;
        const int co0 = tl * CO, nb = FXP_MIN(CO, c_out - co0);
        if (!transposed) { /* w[co, ci, k]: nb rows read side by side */
            for (int64_t i = 0; i < row; i++, dst += CO)
                for (int o = 0; o < CO; o++) dst[o] = o < nb ? w[(co0 + o) * row + i] : 0.0f;
            continue;
        }
        for (int ci = 0; ci < c_in; ci++) { /* w[ci, co, taps - 1 - k]: one block of nb taps */
            const float *src = w + ((int64_t)ci * c_out + co0) * taps;
            for (int k = 0; k < taps; k++, dst += CO)
                for (int o = 0; o < CO; o++) dst[o] = o < nb ? src[o * taps + taps - 1 - k] : 0.0f;
        }
    }
}

int fxp__tile_wgrad_block(void) { return use_wide() ? 6 : 2; }

void fxp__tile_wgrad(const fxp__wgrad_args *a)
{
    if (use_wide())
        wgrad_w(a);
    else
        wgrad_n(a);
}

void fxp__tile_outer(const fxp__outer_args *a)
{
    const int wide = use_wide(), CO = wide ? 6 : 2, NC = (wide ? 4 : 2) * VL;
    for (int co0 = 0; co0 < a->nco; co0 += CO)
        for (int ci0 = 0; ci0 < a->nci; ci0 += NC) {
            const int nb = FXP_MIN(CO, a->nco - co0), nc = FXP_MIN(NC, a->nci - ci0);
            const float *g = a->g + co0 * a->gs;
            float *d = a->d + co0 * a->ldd + ci0;
            if (wide)
                outer_w(g, a->gs, a->xt + ci0, a->ldx, a->np, nb, nc, d, a->ldd);
            else
                outer_n(g, a->gs, a->xt + ci0, a->ldx, a->np, nb, nc, d, a->ldd);
        }
}
