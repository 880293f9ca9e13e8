/* libflowexp: mixing layers of image flows — the layers that mix channels
 * (and space) between the couplings of a generative flow, as compared in
 * the paper's Table 1, and a constructor that picks one by name.
 *
 * All layers act on NCHW images x [B, C, H, W] with C, H, W fixed at
 * creation (FXP_ESHAPE, naming the layer, for any other shape; the batch B
 * may vary between calls), implement the fxp_flow interface of flow.h
 * (forward, inverse, a [B] logdet; gradients on or off) and register their
 * parameters in `ps` under "<name>/...", drawn from `rng`.  They mirror the
 * authors' modules (models/transformations/ in their code) parameter for
 * parameter, so a state_dict of theirs maps one to one onto ours (see each
 * layer).  Results are deterministic for a given thread count.  Costs below
 * are per call for a batch of B.  C is at most 4096.
 *
 * Constructors return FXP_OK and *out (free with fxp_flow_free, or hand to a
 * sequence or model), FXP_EINVAL naming the bad option, or FXP_ENOMEM.  They
 * are thread-safe for distinct `ps`; the layers are not (flow.h).  Inverses
 * fail with FXP_ENUMERIC when the layer's matrix is singular (a zero on a
 * triangular diagonal, a singular 1x1 or Woodbury core).
 */
#ifndef FLOWEXP_MIXING_H
#define FLOWEXP_MIXING_H

#include "flowexp/rng.h"
#include "flowexp/flow.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

/* ---- 1x1 convolution (Glow; the authors' Conv1x1) ------------------------
 *   z[b, :, i, j] = W x[b, :, i, j]     (z[:, o] = sum_c W[o, c] x[:, c])
 *   logdet = H W log|det W|             (LU in double)
 *   inverse: x = W^-1 z, logdet = -H W log|det W|
 * Parameter "<name>/weight" W [C, C] (the authors' `W`), initialised to a
 * random orthogonal matrix (Gram-Schmidt of a Gaussian matrix).
 * Cost: one C x C x (B H W) GEMM each way, plus an O(C^3) LU / inverse. */
FXP_API int fxp_conv1x1_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name, int channels,
                            int height, int width, fxp_rng *rng, fxp_flow **out);

/* ---- 1x1 convolution with an LU parametrisation (Glow, Kingma & Dhariwal
 * 2018) ---------------------------------------------------------------------
 *   W = P L (U + diag(sign .* exp(log_s)))
 * with P a fixed permutation matrix, L unit lower triangular (the strictly
 * lower part of the parameter "lower"; its other entries are ignored and get
 * no gradient), U strictly upper triangular ("upper", likewise), and fixed
 * signs.  z = W x per pixel as for fxp_conv1x1_new;
 *   logdet = H W sum_c log_s[c]
 *   inverse: x = W^-1 z (explicit inverse of the composed W, differentiable).
 * Parameters: "<name>/lower", "<name>/upper" [C, C] and "<name>/log_s" [C]
 * (trainable); state "<name>/perm" [C, C] (P, 0/1 entries) and
 * "<name>/sign" [C] (+-1), saved by checkpoints.  Initialised from the
 * pivoted LU of a random orthogonal matrix Q = P L U0, log_s = log|diag U0|,
 * sign = sign(diag U0), upper = the strictly upper part of U0.
 * Cost: as fxp_conv1x1_new, with the logdet O(C) instead of O(C^3). */
FXP_API int fxp_conv1x1_lu_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                               int channels, int height, int width, fxp_rng *rng, fxp_flow **out);

/* ---- Householder 1x1 convolution (the authors' Conv1x1Householder) -------
 *   Q = H(v_1) H(v_2) ... H(v_R),  H(v) = I - 2 v v^T / (v^T v)
 * (multiplied left to right), z = Q x per pixel; Q is orthogonal, so
 * logdet = 0 and the inverse is x = Q^T z.  Parameter "<name>/V" [R, C]
 * (row r is v_{r+1}; the authors' `V`), initialised N(0, 1).
 * reflections R in 1..4096, or 0 for R = C (R = C spans all orthogonal matrices of determinant
 * (-1)^C).  Cost: one GEMM each way plus O(R C^2) to build Q. */
FXP_API int fxp_householder1x1_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                                   int channels, int height, int width, int reflections,
                                   fxp_rng *rng, fxp_flow **out);

/* ---- emerging convolution (Hoogeboom, van den Berg & Welling 2019; the
 * authors' Emerging) -----------------------------------------------------------
 *   z = Flip(S_1(Flip(S_0(W x))))
 * W the 1x1 convolution above, Flip the reversal of both spatial axes
 * (fxp_flip2d), and S_k a square autoregressive 2x2 convolution:
 *   S(x)[o, i, j] = b[o] + sum_{c, a, d in {0,1}} K[o, c, a, d] m[o, c, a, d]
 *                          x[c, i + a - 1, j + d - 1]     (zero outside)
 * whose mask m is 1 except at the tap [1, 1] (the pixel itself), where it is
 * lower triangular including the diagonal (output o sees inputs c <= o).
 * In raster order (row, column, channel) its matrix is triangular, so
 *   logdet = H W (log|det W| + sum_k sum_c log|K_k[c, c, 1, 1]|).
 * (Each S is computed as a 3x3 same-padded convolution whose last row and
 * column are zero; Flip(S_1(Flip(.))) as S_1 with its kernel rotated by 180
 * degrees, so no data is flipped.)  The inverse undoes each part in reverse
 * order; S^-1 is a sequential solve: pixels in raster order, channels in
 * order, in double precision, vectorised across 8 images at a time and
 * threaded over blocks of 8 images, with the same result for any thread
 * count (pixels on one anti-diagonal are independent too, but the batch
 * gives the threads enough work).  Its gradient (for an inverse recorded
 * on a tape) is the transposed solve in reverse order: dL/dz = A^-T g,
 * dL/dK = -(the convolution weight gradient of A^-T g against x), dL/db =
 * -sum A^-T g.
 * Parameters "<name>/conv1x1/weight" [C, C] (as fxp_conv1x1_new),
 * "<name>/ar0/weight", "<name>/ar1/weight" [C, C, 2, 2] (K of S_0, S_1,
 * used times the mask, so masked entries are ignored and get no gradient),
 * "<name>/ar0/bias", "<name>/ar1/bias" [C] (b); in the authors' state_dict
 * transformations.0.W, transformations.1.weight / .bias and
 * transformations.3.weight / .bias (their `mask` buffer is fixed).  Initialisation
 * as the authors': K ~ N(0, 1) / sqrt(4 C^2) plus 1 on K[c, c, 1, 1], b = 0.
 * Cost: forward a 1x1 GEMM and two 3x3 convolutions (4 of whose 9 taps are
 * non-zero); inverse about 2 x 3.5 C multiply-adds per element in double,
 * sequential within an image (docs/performance.md has measurements). */
FXP_API int fxp_emerging_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name, int channels,
                             int height, int width, fxp_rng *rng, fxp_flow **out);

/* ---- Woodbury transformation (Lu & Huang 2020, reduced as the authors use
 * it: a 1x1 convolution, then a spatial Woodbury map; no channel part) ------
 * With N = H W and each (image, channel) plane read as a row x [N]:
 *   h = W x (1x1 convolution),  z_row = h_row (I_N + U V)^T
 *   logdet = H W log|det W| + C log|det(I_r + V U)|
 *   inverse: h_row = z_row (I_N - U (I_r + V U)^-1 V)^T, then x = W^-1 h.
 * Parameters "<name>/conv1x1/weight" [C, C] (as fxp_conv1x1_new),
 * "<name>/U" [N, r] and "<name>/V" [r, N], initialised N(0, 1) / N (the
 * authors' conv1x1.W, woodbury_spatial.U, woodbury_spatial.V).  Rank r in
 * 1..4096 (the authors: 24).
 * Cost: 4 B C N r flops each way (products with U and V, never forming the
 * N x N matrix) plus O(r^2 N + r^3). */
FXP_API int fxp_woodbury_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name, int channels,
                             int height, int width, int rank, fxp_rng *rng, fxp_flow **out);

/* ---- choosing a mixing layer by name -------------------------------------- */

typedef enum fxp_mixing_kind {
    FXP_MIXING_1X1 = 0,              /* "1x1"               fxp_conv1x1_new */
    FXP_MIXING_LU = 1,               /* "lu"                fxp_conv1x1_lu_new */
    FXP_MIXING_HOUSEHOLDER = 2,      /* "householder"       fxp_householder1x1_new */
    FXP_MIXING_EMERGING = 3,         /* "emerging"          fxp_emerging_new */
    FXP_MIXING_WOODBURY = 4,         /* "woodbury"          fxp_woodbury_new */
    FXP_MIXING_CONVEXP = 5,          /* "convexp"           fxp_convexp_new, zero padding */
    FXP_MIXING_CONVEXP_CIRCULAR = 6  /* "convexp-circular"  fxp_convexp_new, circular padding */
} fxp_mixing_kind;
#define FXP_MIXING_KINDS 7

typedef struct fxp_mixing_opts {
    int channels, height, width;  /* C, H, W >= 1 */
    int reflections;              /* householder: R in 1..4096, 0: R = C */
    int woodbury_rank;            /* woodbury: r in 1..4096 */
    /* convexp, convexp-circular (layers.h, fxp_convexp_opts): */
    int convexp_kernel;           /* odd k in 1..63 (circular: k <= H and k <= W) */
    float convexp_coeff;          /* spectral-norm coefficient, finite > 0 */
    float convexp_sn_eps;         /* fxp_convexp_opts.sn_eps, finite >= 0 */
    int convexp_power_steps;      /* power iterations per training forward, 0..1000 */
    int convexp_terms_train;      /* series terms in training, 1..1000 */
    int convexp_terms_eval;       /* series terms otherwise, 1..1000 */
} fxp_mixing_opts;

/* Defaults for a C x H x W input: R = C reflections, Woodbury rank 24, and
 * the ConvExp defaults of fxp_convexp_opts_default (k = 3, coeff 0.9,
 * 1 power step, 6 / 13 terms; its biases and 1x1 mixer stay on). */
FXP_API void fxp_mixing_opts_default(fxp_mixing_opts *o, int channels, int height, int width);

/* Kind names as listed in fxp_mixing_kind ("" for an unknown kind), and the
 * reverse lookup (FXP_EINVAL listing the valid names for an unknown one). */
FXP_API const char *fxp_mixing_kind_name(fxp_mixing_kind kind);
FXP_API int fxp_mixing_kind_parse(const char *name, fxp_mixing_kind *kind);

/* Create a mixing layer of the given kind named `name`, with the options
 * that kind uses (the others are ignored, not validated).  Parameters are
 * registered as each constructor above says ("<name>/..."; for the convexp
 * kinds see fxp_convexp_new in layers.h).  FXP_EINVAL naming the kind or the
 * bad option. */
FXP_API int fxp_mixing_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                           fxp_mixing_kind kind, const fxp_mixing_opts *opts, fxp_rng *rng,
                           fxp_flow **out);

#ifdef __cplusplus
}
#endif
#endif
