/* libflowexp: flow layers for images (NCHW) — the building blocks of the
 * paper's generative flows (Table 1, §7 of the authors' code; Tables 2-3).
 *
 * Every layer follows flow.h: forward x -> z with logdet[b] = log|det dz/dx|
 * per image, inverse z -> x with the negated logdet, parameters registered
 * in the fxp_params under "<name>/<leaf>" (the checkpoint paths).  Inputs
 * are [B, C, H, W]; layers created for C channels reject other channel
 * counts with FXP_ESHAPE naming the layer; H and W may vary between calls
 * unless a layer says otherwise.  Constructors validate their options
 * (FXP_EINVAL naming the option).  D = C H W below.
 */
#ifndef FLOWEXP_IMAGE_H
#define FLOWEXP_IMAGE_H

#include "flowexp/flow.h"
#include "flowexp/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

/* ---- fixed maps ------------------------------------------------------------- */

/* z = (x - shift) / scale elementwise, logdet = -D log(scale) (the paper's
 * Table-1 flow uses shift 128, scale 256 on raw pixel values, so its
 * logdet is -D ln 256).  No parameters.  scale > 0, both finite. */
FXP_API int fxp_normalize_new(struct fxp_ctx *ctx, const char *name, float shift, float scale,
                              fxp_flow **out);

/* Space-to-depth: [B, C, H, W] -> [B, 4C, H/2, W/2] with new channel
 * c*4 + dy*2 + dx for the pixel (2i + dy, 2j + dx) (fxp_squeeze2d); the
 * inverse is depth-to-space.  logdet 0; H and W must be even. */
FXP_API int fxp_squeeze_new(struct fxp_ctx *ctx, const char *name, fxp_flow **out);

/* Reverse both spatial axes: z[b, c, i, j] = x[b, c, H-1-i, W-1-j]; its own
 * inverse; logdet 0. */
FXP_API int fxp_flip_new(struct fxp_ctx *ctx, const char *name, fxp_flow **out);

/* ---- activation normalisation ------------------------------------------------ */

/* Per-channel affine map z = (x - t_c) exp(-s_c), logdet = -H W sum_c s_c,
 * with "<name>/translation" t and "<name>/log_scale" s, both [C] (init 0),
 * and the state flag "<name>/initialized" [1].  Data-dependent
 * initialisation (as the authors' ActNorm): the first forward with
 * io->training set while the flag is 0 sets t_c to the mean and s_c to
 * log(std + 1e-8) of channel c over (B, H, W), std with Bessel's
 * correction (N - 1), so that the output has zero mean and unit variance
 * per channel, then sets the flag (kept in checkpoints).  Inverse:
 * x = z exp(s) + t. */
FXP_API int fxp_actnorm_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name, int channels,
                            fxp_flow **out);

/* ---- affine coupling ------------------------------------------------------------ */

/* Conditioner networks NN: [B, C_in, H, W] -> [B, C_out, H, W]. */
typedef enum fxp_cond_net {
    /* §7.3 DenseInResidualNet: h = 1x1 conv (C_in -> I); n_densenets times
     * h = h + DenseNet(h); out = 1x1 conv (I -> C_out), zero-initialised.
     * DenseNet(n -> I, depth, growth): depth dense layers, each
     *   h = concat(h, relu(conv3x3(relu(conv1x1(h; n -> n)); n -> growth)))
     * (n grows by `growth` per layer), then a 1x1 conv to I, or with `gated`
     * a 1x1 conv to 3I split into (a, b, c) giving a + b sigmoid(c). */
    FXP_COND_DENSE = 0,
    /* §8.3 PlainCoupling's NN: 3x3 conv (C_in -> I), ReLU, 1x1 conv (I -> I),
     * ReLU, 3x3 conv (I -> C_out) zero-initialised. */
    FXP_COND_CONV = 1
} fxp_cond_net;

/* The log-scale squashing of the coupling. */
typedef enum fxp_coupling_scale {
    FXP_SCALE_TANH2 = 0,   /* log s = 2 tanh(h / 2), range (-2, 2): Table 1 (§7.2) */
    FXP_SCALE_HALF_TANH = 1 /* log s = 0.5 tanh(h), range (-0.5, 0.5): §8.3 */
} fxp_coupling_scale;

typedef struct fxp_image_coupling_opts {
    int channels;             /* C, even, >= 2 */
    int context;              /* channels of io->context concatenated to the NN input (0: none) */
    fxp_cond_net net;
    int intermediate;         /* I >= 1 (paper: 64 for Table 1, 528 in §8) */
    int depth, growth;        /* DenseNet depth >= 1 and growth >= 1 (paper: 8, 64 or 63) */
    int n_densenets;          /* >= 1 residual DenseNets (paper: 1) */
    int gated;                /* 0/1: gated final 1x1 of each DenseNet */
    fxp_coupling_scale scale;
} fxp_image_coupling_opts;

/* Defaults for C channels: FXP_COND_DENSE, I = 64, depth 8, growth 64, one
 * DenseNet, gated, FXP_SCALE_TANH2, no context (the paper's Table-1 coupling). */
FXP_API void fxp_image_coupling_opts_default(fxp_image_coupling_opts *o, int channels);

/* Affine coupling over channels (§7.2, no alternation: the mixing layers
 * shuffle channels between couplings).  With x1 = x[:, :C/2], x2 = x[:, C/2:]:
 *   h = NN(x1)  (or NN(concat(x1, context)) with a context),
 *   log s = squash(h[:, 0::2]),  t = h[:, 1::2]  (interleaved: even channels
 *   of the NN output are the scale, odd channels the shift),
 *   z = concat(x1, x2 exp(log s) + t),  logdet = sum log s.
 * Inverse x2 = (z2 - t) exp(-log s).  The zero-initialised last layer makes
 * the layer the identity at initialisation.  Other convolutions are
 * initialised as PyTorch's Conv2d default: weights and biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)).  Parameters (w [out, in, k, k], b [out]):
 *   FXP_COND_DENSE: "<name>/nn/first/{w,b}", for d < n_densenets and layer
 *   l < depth "<name>/nn/dense/<d>/layer/<l>/{w1,b1,w3,b3}" (1x1 and 3x3),
 *   "<name>/nn/dense/<d>/out/{w,b}", "<name>/nn/last/{w,b}";
 *   FXP_COND_CONV: "<name>/nn/{w1,b1,w2,b2,w3,b3}".
 * With opts->context > 0 every call needs io->context [B, context, H, W]
 * (FXP_EINVAL / FXP_ESHAPE otherwise). */
FXP_API int fxp_image_coupling_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                                   const fxp_image_coupling_opts *opts, fxp_rng *rng,
                                   fxp_flow **out);

/* ---- split prior ------------------------------------------------------------------ */

/* The authors' SplitPrior (§7.4): a full affine coupling over C channels
 * (its own conditioner, "<name>/coupling/..."), then the last C/2 channels
 * x2 are factored out under N(0, I) and the first C/2 continue:
 *   forward  [B, C, H, W] -> z = y[:, :C/2],  y = coupling(x),
 *            logdet = coupling logdet + log N(y[:, C/2:]; 0, I);
 *   inverse  [B, C/2, H, W] -> x = coupling^-1(concat(z, eps)), eps from
 *            io->latents if set (see flow.h), else drawn N(0, T^2 I) from
 *            io->rng with T = io->temperature; logdet = -(the forward's).
 * With io->latents, forward appends eps = y[:, C/2:] and its log-density.
 * Equivalent to a conditional Gaussian p(x2 | x1) through the coupling. */
FXP_API int fxp_split_prior_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                                const fxp_image_coupling_opts *coupling, fxp_rng *rng,
                                fxp_flow **out);

#ifdef __cplusplus
}
#endif
#endif
