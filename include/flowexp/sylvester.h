/* libflowexp: generalized and convolutional Sylvester flows (Hoogeboom et
 * al. 2020, §4-5; the authors' models/transformations/sylvester/).
 *
 * A generalized Sylvester layer is the residual map
 *
 *     z = x + W^-1 f_AR(W x)
 *
 * with W any invertible linear map (the "basis change") and f_AR a smooth
 * autoregressive function whose Jacobian J is triangular in a fixed order of
 * the elements.  Then dz/dx = W^-1 (I + J) W and
 *
 *     log|det dz/dx| = sum_d log(1 + J_dd(u)),   u = W x,
 *
 * with no term from W.  The layer is invertible when 1 + J_dd > 0 everywhere
 * (guaranteed below by construction, |J_dd| < 1); its inverse solves
 * u + f_AR(u) = v = W z by fixed-point iteration (sampling only).
 *
 * Order of the elements ("reverse raster").  On an activation [C, H, W] the
 * element (c, i, j) comes before (c', i', j') in the autoregressive order
 * when the pixel (i, j) comes LATER in raster (row-major) order than
 * (i', j'), or at the same pixel when c < c'.  f_AR's output (c, i, j)
 * depends only on inputs strictly before it in this order, except through
 * the diagonal term of the final elementwise map (J_dd).  A flip of both
 * spatial axes between layers (fxp_flip_new) alternates the direction.
 *
 * Everything here mirrors the authors' modules parameter for parameter (the
 * names are given at each constructor) so that tools/convert_sylvester.py
 * maps their state_dict onto ours; docs/sylvester.md has the derivations,
 * the cross-check and the differences.
 *
 * Thread-safety: functions taking a context follow ctx.h; layers are not
 * thread-safe (flow.h).
 */
#ifndef FLOWEXP_SYLVESTER_H
#define FLOWEXP_SYLVESTER_H

#include "flowexp/flow.h"
#include "flowexp/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

/* ==== autoregressive masks (§5.3, the authors' triu_conv_mask) =============
 * Fill mask [n_out, n_in, kh, kw] (row-major) for a stride-1 "same"
 * cross-correlation out[o, i, j] = sum W[o, c, a, b] x[c, i + a - l, j + b - m]
 * with centre (l, m) = ((kh - 1) / 2, (kw - 1) / 2):
 *  - every tap above the centre row (a < l) and left of the centre in the
 *    centre row (a = l, b < m) is 0, so output (i, j) reads pixels at or
 *    after (i, j) in raster order;
 *  - at the centre tap channels are grouped by the ratio of the counts:
 *    n_out >= n_in, k = n_out / n_in: output channels g k .. g k + k - 1
 *      read input channels c <= g (strict: c < g);
 *    n_out < n_in, k = n_in / n_out: output channel g reads input channels
 *      c < (g + 1) k (strict: c < g k);
 *  - every other tap is 1.
 * A chain of such convolutions (first layer and hidden layers non-strict,
 * the last strict) is strictly autoregressive in the order above.  kh, kw
 * odd >= 1, n_out and n_in >= 1 with one dividing the other: FXP_EINVAL
 * (message in fxp_last_error()) otherwise.  Thread-safe. */
FXP_API int fxp_ar_mask(float *mask, int n_out, int n_in, int kh, int kw, int strict);

/* ==== spectral normalisation of a masked convolution (§3) ==================
 * W_hat = (W .* mask) / (max(1, sigma / coeff) + sn_eps), sigma the operator
 * 2-norm of the MASKED convolution on [1, C_in, h, w] with zero padding,
 * estimated by `power_steps` power iterations on the persistent vectors
 * u [C_out h w] and v [C_in h w] (updated in place), as
 * fxp_spectral_norm_conv (expm.h) does for W .* mask.  sn_eps >= 0: 1e-5
 * reproduces the authors' MaskedSpectralNormConv (which always divides by
 * factor + 1e-5); 0 is the clean soft constraint; the extra factor
 * f / (f + sn_eps) is held constant in the gradient.  Gradients reach w
 * (times the mask).  `mask` [C_out, C_in, kh, kw] must stay valid until the
 * tape is reset.  *sigma_out (may be NULL) receives sigma. */
FXP_API int fxp_spectral_norm_conv_masked(fxp_tape *t, fxp_var **out, fxp_var *w,
                                          const float *mask, float *u, float *v, int h, int w_,
                                          float coeff, int power_steps, float sn_eps,
                                          float *sigma_out);

/* ==== generalized Sylvester layers =========================================== */

/* The orthogonal / invertible channel map Q of the basis W = exp(M) Q. */
typedef enum fxp_sylvester_q {
    FXP_SYLV_Q_NONE = 0,        /* Q = I */
    FXP_SYLV_Q_HOUSEHOLDER = 1, /* Q = H(v_1) ... H(v_R), H(v) = I - 2 v v^T / v^T v, per pixel
                                   (the authors' Conv1x1Householder; R = C in the paper) */
    FXP_SYLV_Q_LU = 2           /* Q = L U per pixel, L unit lower triangular, U upper
                                   triangular with diagonal exp(log_s) (an invertible
                                   dense matrix; for the dense layers) */
} fxp_sylvester_q;

/* The autoregressive function. */
typedef enum fxp_sylvester_f {
    /* §5.2, the authors' GeneralizedSylvester.f_AR:
     *   h = relu(mconv_k(u; C -> n_h)), h = relu(mconv_1(h; n_h -> n_h))
     *   (non-strict masks), then four strict k x k heads n_h -> C:
     *   t1, s1 = tanh(.), t2, s2 = gamma tanh(.) with gamma = 0.5, and
     *   f(u) = s2 tanh(s1 u + t1) + t2,  J_dd = s2 s1 (1 - tanh^2(s1 u + t1)),
     *   |J_dd| < 0.5.  Every masked convolution is spectrally normalised
     *   (coefficient `lipschitz`); the t1 and s1 weights start at 0, so at
     *   initialisation f = t2(u) and J_dd = 0. */
    FXP_SYLV_F_GENERALIZED = 0,
    /* §5.5 "without generalisation" (the authors' AblationWithoutGeneralization),
     * the original Sylvester form f(u) = R2 tanh(R1 (u + b)) with k x k
     * convolutions R1 = d .* mask_strict + tanh(diag1) on the centre diagonal,
     * R2 = d^P .* mask_strict + tanh(diag2) on the centre diagonal, where
     * d^P[o, c, a, b] = d[c, o, b, a] (their d.permute(1, 0, 3, 2)) shares d
     * between R1 and R2;  J_dd = tanh(diag1_d) tanh(diag2_d) tanh'(R1 (u + b))_d,
     * |J_dd| < 1.  Init: d ~ N(0, (1 / (n_h^2 k^2))^2) (their std uses the
     * hidden width n_h, so d is tiny), diag1 ~ N(0, 1), diag2 = 0, b = 0. */
    FXP_SYLV_F_ORIGINAL = 1
} fxp_sylvester_f;

typedef struct fxp_sylvester_opts {
    int channels, height, width;  /* C, H, W >= 1 (fixed at creation) */
    int kernel;                   /* odd k: 3 for the convolutional layer, 1 for the dense one */
    int hidden;                   /* n_h, a multiple or divisor of C (paper: 528) */
    fxp_sylvester_f f;
    fxp_sylvester_q q;
    int reflections;              /* Householder R in 1..4096, 0: R = C */
    int convexp;                  /* 1: W = exp(M) Q with M a k x k convolution C -> C,
                                     spectrally normalised; 0: W = Q */
    float lipschitz;              /* spectral-norm coefficient of f_AR's masked
                                     convolutions (paper: 1.5) */
    float convexp_coeff;          /* ... of M (the authors' default 0.95) */
    float sn_eps;                 /* added to every rescaling factor (see
                                     fxp_spectral_norm_conv_masked): 1e-5 = the
                                     authors' code, 0 = the clean constraint */
    int power_steps;              /* power iterations per training forward (1) */
    int terms_train, terms_eval;  /* exp(M) series terms (9 / 20; nogen: 10 / 10) */
    double inverse_atol;          /* fixed point: stop when max |u_{k+1} - u_k| < atol
                                     (1e-4; the authors' no-basis ablation 1e-6) */
    int inverse_max_iter;         /* at most this many f_AR evaluations; 0: C H W (the
                                     authors' bound; at least 100) */
} fxp_sylvester_opts;

/* The paper's convolutional Sylvester layer for C x H x W: k = 3, n_h = 528,
 * FXP_SYLV_F_GENERALIZED, Householder Q with R = C, exp(M) on, lipschitz 1.5,
 * convexp_coeff 0.95, sn_eps 0, 1 power step, terms 9 / 20, atol 1e-4,
 * max_iter 0.
 * Ablations (Table 3): without the basis change q = NONE, convexp = 0,
 * inverse_atol = 1e-6; without generalisation f = ORIGINAL, terms 10 / 10. */
FXP_API void fxp_sylvester_opts_default(fxp_sylvester_opts *o, int channels, int height,
                                        int width);

/* A generalized Sylvester layer on x [B, C, H, W]:
 *     u = exp(M) Q x,   z = x + Q^-1 exp(-M) f(u),
 *     logdet = sum_{c,i,j} log(1 + J_dd(u))
 * (each factor dropped when its option is off).  exp(M) is the series of
 * expm.h with terms_train terms in a training forward and terms_eval
 * otherwise, M = conv(.; K_hat), K_hat the spectrally normalised kernel
 * (coefficient convexp_coeff, zero padding, as fxp_convexp_new).  In a
 * training forward every spectral normalisation takes `power_steps` power
 * iterations.
 *
 * Inverse (sampling): v = exp(M) Q z, then u_0 = v, u_{k+1} = v - f(u_k)
 * until every element has |u_{k+1} - u_k| < inverse_atol over the whole
 * batch, or a change at float resolution (<= 4 FLT_EPSILON (|u_{k+1}| +
 * |u_k|), which rounding alone causes; or settled at float resolution, see
 * fxp_fixed_point_info), returning u_k as the authors, then
 * x = Q^-1 exp(-M) u and logdet = -sum log(1 +
 * J_dd(u)).  Each sweep fixes at least the next element of the order to
 * within the contraction |J_dd| < 1 of its own diagonal, so the iteration
 * converges; FXP_ECONVERGE (naming the layer, the iterations and the
 * residual) if it has not after inverse_max_iter evaluations.
 * fxp_sylvester_last_inverse reports the iterations and residual of the
 * latest inverse.  The inverse records no gradients (it is for sampling).
 *
 * Parameters, as the authors' state_dict (theirs in parentheses):
 *   "<name>/kernel" [C, C, k, k] (kernel_orig), init N(0, 1) / (C C k k)
 *     for GENERALIZED, N(0, 1) / (C k k) for ORIGINAL (as theirs); state
 *     "<name>/kernel_u", "<name>/kernel_v" [C H W] (kernel_u, kernel_v);
 *   "<name>/conv1x1/V" [R, C] (conv1x1.V), N(0, 1);
 *   LU: "<name>/lower", "<name>/upper" [C, C] (strict parts used; init
 *     N(0, 1 / C)), "<name>/log_s" [C] (init 0);
 *   GENERALIZED: "<name>/nn/0/{weight,bias}" [n_h, C, k, k] (nn.0.weight_orig,
 *     nn.0.bias), "<name>/nn/2/{weight,bias}" [n_h, n_h, 1, 1],
 *     "<name>/linear_{t1,s1,t2,s2}/{weight,bias}" [C, n_h, k, k], with
 *     state "<name>/<conv>/weight_u" [C_out H W] and "<name>/<conv>/weight_v"
 *     [C_in H W] for each of the six; weights kaiming-normal (fan in, gain
 *     sqrt 2; t1 and s1 then zeroed), biases 0;
 *   ORIGINAL: "<name>/d" [C, C, k, k], "<name>/diag1", "<name>/diag2",
 *     "<name>/b" [C].
 * FXP_ESHAPE for an input other than [B, C, H, W]; FXP_EINVAL for bad
 * options (naming the option). */
FXP_API int fxp_sylvester_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                              const fxp_sylvester_opts *opts, fxp_rng *rng, fxp_flow **out);

/* Defaults of a dense generalized Sylvester layer on vectors x [B, D]: the
 * options of fxp_sylvester_opts_default for C = D, H = W = 1 with kernel 1
 * and n_h = 4 D (a masked MLP in the MADE sense: unit h of the hidden layers
 * belongs to input element h / 4), q = HOUSEHOLDER, convexp = 0.  Other
 * choices of W: q = LU, or q = NONE with convexp = 1 (W = exp(A) with A a
 * spectrally normalised D x D matrix, the "dense exponential").  The
 * original Sylvester flow of Berg et al. (2018), z = x + A tanh(B x + b)
 * with A = Q' R, B = R' Q'^T, Q' orthogonal and R, R' triangular, is
 * f = ORIGINAL with q = HOUSEHOLDER: z = x + Q^T R2 tanh(R1 (Q x + b)), so
 * their Q' is our Q^T (and their bias sits after R1, ours before, as in the
 * authors' ablation). */
FXP_API void fxp_sylvester_dense_opts_default(fxp_sylvester_opts *o, int dim);

/* The layer of fxp_sylvester_new on vectors: x [B, D] is read as
 * [B, D, 1, 1]; opts->channels = D, height = width = 1 and kernel = 1 are
 * required (FXP_EINVAL otherwise).  Same parameters and behaviour. */
FXP_API int fxp_sylvester_dense_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                                    const fxp_sylvester_opts *opts, fxp_rng *rng,
                                    fxp_flow **out);

/* The report of a fixed-point inverse (Sylvester and residual layers). */
typedef struct fxp_fixed_point_info {
    int calls;          /* inverses run since the layer was created */
    int iterations;     /* of the latest one: evaluations of f (or g) */
    double residual;    /* its final max |x_{k+1} - x_k| (Sylvester) or the largest
                           (dx)^2 / (atol + rtol |y|) (residual blocks) */
    int converged;      /* 1 if it met its tolerance; 2 (Sylvester layers) if it settled at
                           float resolution: no smaller change in 20 iterations, and the
                           change within 64 float spacings of the largest value; 0 if not */
} fxp_fixed_point_info;

/* The latest inverse's report of a layer made by fxp_sylvester_new or
 * fxp_sylvester_dense_new (FXP_EINVAL for other layers). */
FXP_API int fxp_sylvester_last_inverse(const fxp_flow *f, fxp_fixed_point_info *info);

/* The autoregressive function's output f(u) and diagonal J_dd(u), both
 * [B, C, H, W] (for [B, D] layers: [B, D]), in evaluation mode, on tape t
 * (gradients to u and the parameters when recording): for tests of the
 * autoregressive structure and for the cross-check. */
FXP_API int fxp_sylvester_far(fxp_flow *f, fxp_tape *t, fxp_var *u, fxp_var **out,
                              fxp_var **diag);

#ifdef __cplusplus
}
#endif
#endif
