/* Internal pieces of the image layers (src/flows/image/): convolution
 * parameters and the conditioner networks of the affine couplings, also
 * used by the variational dequantiser's context network (src/models/). */
#ifndef FXP_IMAGE_INTERNAL_H
#define FXP_IMAGE_INTERNAL_H

#include "flows/flow_internal.h"
#include "flowexp/image.h"

/* A stride-1 "same" convolution's parameters: w [out, in, k, k], b [out]. */
typedef struct fxp__conv {
    fxp_param *w, *b;
} fxp__conv;

/* Register "<prefix>/<wname>" and "<prefix>/<bname>" and draw them as
 * PyTorch's Conv2d default (U(+-1/sqrt(in k k)) for both), or zeros. */
int fxp__conv_init(fxp__conv *c, fxp_ctx *ctx, fxp_params *ps, const char *prefix,
                   const char *wname, const char *bname, int out, int in, int k, int zero,
                   fxp_rng *rng);

/* y = conv(x) + b (optionally followed by ReLU). */
int fxp__conv_apply(const fxp__conv *c, fxp_tape *t, fxp_var *x, int relu, fxp_var **y);

/* DenseNet(n_in -> n_out, depth, growth[, gated]) of image.h; parameters
 * "<prefix>/layer/<l>/{w1,b1,w3,b3}" and "<prefix>/out/{w,b}". */
typedef struct fxp__densenet {
    int depth, gated, n_out;
    fxp__conv *c1, *c3; /* depth each */
    fxp__conv out;
} fxp__densenet;

int fxp__densenet_init(fxp__densenet *d, fxp_ctx *ctx, fxp_params *ps, const char *prefix,
                       int n_in, int n_out, int depth, int growth, int gated, fxp_rng *rng);
int fxp__densenet_apply(const fxp__densenet *d, fxp_tape *t, fxp_var *x, fxp_var **y);
void fxp__densenet_free(fxp__densenet *d);

/* A coupling conditioner (FXP_COND_DENSE or FXP_COND_CONV) from c_in to
 * c_out channels with its last layer zero-initialised. */
typedef struct fxp__cond {
    fxp_cond_net net;
    int n_dense;
    fxp__conv first, last;      /* DENSE: 1x1 in/out; CONV: the two 3x3 */
    fxp__conv mid;              /* CONV: the 1x1 */
    fxp__densenet *dense;       /* DENSE: n_dense of them */
} fxp__cond;

int fxp__cond_init(fxp__cond *n, fxp_ctx *ctx, fxp_params *ps, const char *prefix, int c_in,
                   int c_out, const fxp_image_coupling_opts *o, fxp_rng *rng);
int fxp__cond_apply(const fxp__cond *n, fxp_tape *t, fxp_var *x, fxp_var **y);
void fxp__cond_free(fxp__cond *n);

/* Validate coupling options (FXP_EINVAL naming the option). */
int fxp__coupling_opts_check(fxp_ctx *ctx, const fxp_image_coupling_opts *o);

/* An affine coupling as a struct the split prior embeds (coupling.c). */
typedef struct fxp__coupling {
    fxp_image_coupling_opts o;
    fxp__cond nn;
} fxp__coupling;

int fxp__coupling_init(fxp__coupling *c, fxp_ctx *ctx, fxp_params *ps, const char *prefix,
                       const fxp_image_coupling_opts *o, fxp_rng *rng);
/* z = coupling(x) (inverse != 0: coupling^-1), logdet [B] of that direction;
 * `who` names the layer in messages. */
int fxp__coupling_apply(const fxp__coupling *c, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                        int inverse, const char *who, fxp_var **z, fxp_var **logdet);
void fxp__coupling_free(fxp__coupling *c);

/* FXP_ESHAPE unless x is [B, channels, H, W] (channels < 0: any). */
int fxp__check_nchw(fxp_ctx *ctx, const char *who, const fxp_var *x, int channels);

#endif
