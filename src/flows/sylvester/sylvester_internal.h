/* Internal pieces of the Sylvester flows (src/flows/sylvester/): masked,
 * spectrally normalised convolutions and the autoregressive functions f_AR
 * of sylvester.h. */
#ifndef FXP_SYLVESTER_INTERNAL_H
#define FXP_SYLVESTER_INTERNAL_H

#include "flows/flow_internal.h"
#include "flowexp/sylvester.h"

/* ---- masked convolution with spectral normalisation (masks.c) ---------------
 * The authors' MaskedConv2d under MaskedSpectralNormConv: parameters
 * "<prefix>/weight" [c_out, c_in, k, k], "<prefix>/bias" [c_out], state
 * "<prefix>/weight_u" [c_out h w] and "<prefix>/weight_v" [c_in h w]; the
 * mask (fxp_ar_mask) is owned here. */
typedef struct fxp__mconv {
    int c_in, c_out, k, h, w;
    fxp_param *wt, *b, *u, *v;
    float *mask;
} fxp__mconv;

/* Register and initialise (kaiming-normal weights, fan in, gain sqrt 2, or
 * zeros if zero_weight; bias 0; u, v normalised N(0, I) draws). */
int fxp__mconv_init(fxp__mconv *m, fxp_ctx *ctx, fxp_params *ps, const char *prefix, int c_in,
                    int c_out, int k, int strict, int h, int w, int zero_weight, fxp_rng *rng);
void fxp__mconv_free(fxp__mconv *m);

/* The normalised weight W_hat (fxp_spectral_norm_conv_masked) and the bias
 * variable, on tape t. */
int fxp__mconv_weight(const fxp__mconv *m, fxp_tape *t, float coeff, int power_steps,
                      float sn_eps, fxp_var **w_hat, fxp_var **bias);

/* ---- the autoregressive functions (far.c) ------------------------------------ */
typedef struct fxp__far {
    fxp_sylvester_f kind;
    int c, h, w, k, hidden;
    float coeff, sn_eps;
    int power_steps;
    /* GENERALIZED: the trunk and the heads t1, s1, t2, s2 */
    fxp__mconv nn0, nn2, head[4];
    /* ORIGINAL */
    fxp_param *d, *diag1, *diag2, *b;
    float *strict_mask; /* [C, C, k, k] */
    float *centre;      /* [C, C, k, k]: 1 at (c, c, centre) */
} fxp__far;

/* The weights of one call, on a tape (so that they are computed, and the
 * power iterations run, once per layer call). */
typedef struct fxp__far_w {
    fxp_var *w0, *b0, *w2, *b2, *wh, *bh; /* GENERALIZED: heads fused [4C, n_h, k, k], [4C] */
    fxp_var *r1, *r2, *bias, *dd;          /* ORIGINAL: dd = tanh(diag1) tanh(diag2) [1,C,1,1] */
} fxp__far_w;

/* Register f's parameters under "<prefix>/..." (sylvester.h names). */
int fxp__far_init(fxp__far *f, fxp_ctx *ctx, fxp_params *ps, const char *prefix,
                  const fxp_sylvester_opts *o, fxp_rng *rng);
void fxp__far_free(fxp__far *f);

/* The weights for a call; `training` runs the power iterations. */
int fxp__far_weights(const fxp__far *f, fxp_tape *t, int training, fxp__far_w *w);

/* out = f(u) and diag = J_dd(u), both [B, C, H, W] like u. */
int fxp__far_eval(const fxp__far *f, const fxp__far_w *w, fxp_tape *t, fxp_var *u,
                  fxp_var **out, fxp_var **diag);

#endif
