/* Register-tile kernels of the direct convolutions on the padded-width grid
 * (conv_tiles.c), shared by the fused convolution-exponential series
 * (conv_series.c) and the fused DenseNet (densenet.c).
 *
 * Grid.  An image of C planes, each an HP x WP array with plane stride ps
 * (HP = H + kh - 1, WP = W + kw - 1 for a padded input; HP = H, WP = W for
 * a plain one and a 1x1 kernel).  The output at grid position q = r WP + c
 * (r < H, c < WP) of a kh x kw correlation reads the input at
 * q + ky WP + kx for tap (ky, kx): every tap reads contiguous floats, so a
 * tile of NV vectors of FXP_VL consecutive grid positions needs one
 * unaligned load per vector and tap.  Positions with c >= W (and past the
 * grid) are computed and dropped through a lane mask.
 *
 * Vectors are FXP_VL = 16 floats: one AVX-512 register where the CPU has
 * AVX-512 ("wide" tiles, compiled for it and chosen at run time), two AVX2
 * registers otherwise ("narrow" tiles with fewer accumulators). */
#ifndef FXP_OPS_CONV_TILES_H
#define FXP_OPS_CONV_TILES_H

#include "core/internal.h"

#define FXP_VL 16

/* One tile: TILE_CO output channels x TILE_NV vectors of grid positions.
 *   acc[o][l] = sum_{ci < c_in, ky, kx} w[ci wci + (ky kw + kx) TILE_CO + o]
 *                                       x[ci ips + ky WP + kx + l]
 *   v = alpha (acc + add) + bias[o];  v = max(v, 0) if relu;
 *   v = 0 where gate <= 0 or mask == 0;
 *   out = v;  acc_buf += v;  *ss = sum of v^2
 * for the nb <= TILE_CO valid channels (add, gate, out, acc_buf at
 * [o ops + l]).  Every pointer but x, w and mask may be NULL (not used). */
typedef struct fxp__tile_args {
    const float *x;      /* input at the tile's first grid position, plane 0 */
    const float *w;      /* weights of the tile's channels: packed (fxp__tile_pack, wci =
                          * kh kw TILE_CO), or for a 1x1 map whose weights for one input
                          * channel are contiguous over the output channels, the weight
                          * matrix itself (wci = its row stride) */
    int64_t wci;
    const float *bias;   /* per channel, from the tile's first */
    const float *add;
    const float *gate;
    float *out;
    float *acc;
    const int32_t *mask; /* per lane: -1 keep, 0 drop */
    double *ss;
    int64_t ips, ops;    /* plane strides of x and of add/gate/out/acc */
    int c_in, WP, kh, kw, nb, relu;
    float alpha;
} fxp__tile_args;

typedef void (*fxp__tile_fn)(const fxp__tile_args *a);

typedef struct fxp__tile {
    int co, nv; /* output channels, vectors */
    fxp__tile_fn fn;
} fxp__tile;

/* The tile with the least estimated time for c_out channels over qv
 * vectors of grid positions (per tap: co nv FMAs, co + nv loads, some loop
 * overhead; lanes past c_out or past qv are wasted). */
fxp__tile fxp__tile_choose(int c_out, int qv);

/* Floats of packed weights for c_out x c_in x taps with tile t. */
int64_t fxp__tile_packed_size(const fxp__tile *t, int c_out, int c_in, int taps);

/* wpk[tile][ci][tap][o] = w[co, ci, tap] for w [c_out, c_in, kh kw]
 * (read with wci = taps t->co)
 * (zeros past c_out).  transposed: w is [c_in', c_out', kh kw] of a square
 * or rectangular map and the packed kernel is that of its adjoint:
 * w[ci, co, kh kw - 1 - tap] (c_out, c_in are those of the adjoint). */
void fxp__tile_pack(const fxp__tile *t, int c_out, int c_in, int taps, const float *w,
                    int transposed, float *wpk);

/* Kernel gradient with the grid positions in the lanes (conv_series.c):
 *   dw[co, ci, ky, kx] += sum_{i < terms} sum_{q < qv} b[i stride + co ps + q]
 *                                                 xp[i stride + ci ps + q + ky WP + kx]
 * for co in [co0, co0 + nb), every ci < c; b zero at dropped positions. */
typedef struct fxp__wgrad_args {
    const float *xp, *b;
    float *dw;
    int64_t stride, ps, qv;
    int terms, c, WP, kh, kw, co0, nb;
} fxp__wgrad_args;

/* Output channels per call of fxp__tile_wgrad (the co0 step). */
int fxp__tile_wgrad_block(void);
void fxp__tile_wgrad(const fxp__wgrad_args *a);

/* Kernel gradient with the input channels in the lanes:
 *   d[co ldd + ci] += sum_{p < np} g[co gs + p] xt[p ldx + ci]
 * for co < nco, ci < nci (g: the output gradient, plane stride gs; xt: the
 * input in channel-last layout, row stride ldx >= nci rounded up to FXP_VL
 * and readable there).  For a kh x kw kernel call it once per tap with xt
 * shifted by the tap's offset. */
typedef struct fxp__outer_args {
    const float *g, *xt;
    float *d;
    int64_t gs, ldx, ldd;
    int np, nco, nci;
} fxp__outer_args;
void fxp__tile_outer(const fxp__outer_args *a);

/* Tests only (not thread-safe, process-wide): the number of tile shapes
 * usable on this CPU and forcing one of them (0 .. kinds-1; the first ones
 * are those for CPUs without AVX-512; the gradient kernels follow the same
 * width), or the automatic choice (-1). */
int fxp__tile_kinds(void);
void fxp__tile_force(int kind);

#endif
