/* libflowexp: residual flows — the "Residual Block Flow" baseline of the
 * paper's Table 2 (Chen et al. 2019, as the authors run it: their
 * models/transformations/iresnet/, §10 of docs/paper-notes).
 *
 * A residual block is y = x + g(x) with g a Lipschitz-constrained network,
 * Lip(g) < 1, so that the map is invertible (by fixed-point iteration) and
 *
 *     log|det(I + J_g)| = sum_{k>=1} (-1)^{k+1} tr(J_g^k) / k
 *
 * converges.  Its trace is estimated without bias with Hutchinson's
 * estimator (one Gaussian vector eps per example) and a Russian-roulette
 * truncation of the series (Chen et al. 2019):
 *
 *     logdet ~ sum_{k=1}^{n_exact + N} (-1)^{k+1} c_k eps^T J^k eps / k,
 *     N ~ Poisson(lambda),  c_k = 1 for k <= n_exact,
 *     c_k = 1 / P(N >= k - n_exact) otherwise,
 *
 * whose expectation over eps and N is the exact log-determinant.  Training
 * uses the Neumann gradient estimator: with
 *
 *     w = eps + sum_{k=1}^{n_exact + N} (-1)^k c_k (eps^T J^k)   (no gradient),
 *
 * the surrogate w^T J eps has the gradient (in parameters and in x) whose
 * expectation is that of the log-determinant, d logdet = tr((I + J)^-1 dJ).
 * Its VALUE is not the log-determinant: a training loss that contains it is
 * not a likelihood (evaluation uses the basic estimator above).
 *
 * Thread-safety: as flow.h and ops.h.
 */
#ifndef FLOWEXP_RESIDUAL_H
#define FLOWEXP_RESIDUAL_H

#include "flowexp/flow.h"
#include "flowexp/rng.h"
#include "flowexp/sylvester.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

/* ==== LipSwish ================================================================
 * The authors' Swish: y = x sigmoid(s x) / 1.1 with s = softplus(beta) and a
 * learnable beta [1] (init 0.5); Lip(y) <= 1 for every s > 0.  With
 * `derivative` != 0 the op computes dy/dx = (sigma + s x sigma (1 - sigma))
 * / 1.1, sigma = sigmoid(s x), instead (the diagonal Jacobian, itself
 * differentiable: the Neumann surrogate needs its gradient).  Gradients to
 * x and beta; the beta gradient is summed in fixed chunks (deterministic for
 * any thread count).  FXP_ESHAPE unless beta has one element. */
FXP_API int fxp_lipswish(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *beta, int derivative);

/* ==== induced-norm spectral normalisation to a tolerance ======================
 * The authors' InducedNormConv2d with domain = codomain = 2: W_hat =
 * W / max(1, sigma / coeff) (no extra epsilon), sigma the operator 2-norm
 * of the convolution on [1, C_in, h, w] with zero padding, or for 1x1
 * kernels the C_out x C_in matrix norm (u [C_out], v [C_in]; pass h = w_ = 1).
 * Power iteration from the stored u [C_out h w], v [C_in h w]:
 *     u <- normalise(M v),  v <- normalise(M^T u)
 * until ||u - u_old|| / sqrt(n_u) < atol + rtol max(u) and likewise for v
 * (max of the signed entries, as theirs), or max_iter steps; then sigma =
 * <u, M v> with u, v constant and the gradient through sigma.  With `update`
 * the new u, v are written back (training forwards); without, they are
 * iterated on copies and the stored ones stay as they are (see
 * docs/sylvester.md: theirs also writes back in evaluation).  *iters_out and
 * *sigma_out may be NULL. */
FXP_API int fxp_spectral_norm_conv_tol(fxp_tape *t, fxp_var **out, fxp_var *w, float *u, float *v,
                                       int h, int w_, float coeff, double atol, double rtol,
                                       int max_iter, int update, float *sigma_out,
                                       int *iters_out);

/* ==== the power-series log-determinant estimator ==============================
 * c_k of the Russian roulette above: 1 for k <= n_exact, else
 * 1 / P(N >= k - n_exact) with P(N >= m) = 1 - e^-lambda sum_{i<m} lambda^i/i!
 * (the authors' poisson_1mcdf).  lambda > 0, k >= 1. */
FXP_API double fxp_roulette_weight(double lambda, int n_exact, int k);

/* A Poisson(lambda) draw (Knuth's product of uniforms; lambda <= 30). */
FXP_API int fxp_rng_poisson(fxp_rng *rng, double lambda);

/* out = v^T J for a batch of `batch` examples of `dim` values each (J acts
 * per example); returns FXP_OK or a negative status. */
typedef int (*fxp_vjp_fn)(void *user, const float *v, float *out);

/* The estimator for given eps [batch, dim] and `terms` = n_exact + N:
 *   logdet[b] = sum_{k=1}^{terms} (-1)^{k+1} c_k (eps_b^T J^k eps_b) / k
 * (double), and if neumann != NULL the Neumann vector
 *   neumann[b] = eps_b + sum_{k=1}^{terms} (-1)^k c_k (eps_b^T J^k)
 * (float [batch, dim]).  `terms` vector-Jacobian products; scratch from
 * ctx. */
FXP_API int fxp_logdet_series(struct fxp_ctx *ctx, fxp_vjp_fn vjp, void *user, int batch,
                              int64_t dim, const float *eps, int terms, int n_exact,
                              double lambda, double *logdet, float *neumann);

/* The same with eps ~ N(0, I) and N ~ Poisson(lambda) drawn from rng (one N
 * for the batch, as the authors); *terms_out (may be NULL) receives
 * n_exact + N. */
FXP_API int fxp_logdet_estimate(struct fxp_ctx *ctx, fxp_vjp_fn vjp, void *user, int batch,
                                int64_t dim, int n_exact, double lambda, fxp_rng *rng,
                                double *logdet, int *terms_out);

/* ==== the residual block ========================================================== */

typedef enum fxp_resblock_logdet {
    FXP_RESBLOCK_ESTIMATE = 0, /* the stochastic estimators above */
    FXP_RESBLOCK_EXACT = 1     /* log|det(I + J)| from the full Jacobian (D vector-Jacobian
                                  products and an LU per example; D <= 4096): for checks */
} fxp_resblock_logdet;

typedef struct fxp_resblock_opts {
    int channels, height, width;  /* C, H, W >= 1 (fixed at creation) */
    int hidden;                   /* width of g (the authors: 528) */
    float coeff;                  /* Lipschitz bound of each convolution (0.98) */
    double sn_atol, sn_rtol;      /* power-iteration tolerances (1e-3, 1e-3) */
    int sn_max_iter;              /* (200) */
    double lambda;                /* Poisson rate of the roulette (2) */
    int n_exact_train;            /* exact terms in training (2) */
    int n_exact_eval;             /* exact terms in evaluation (20) */
    double inverse_atol, inverse_rtol; /* fixed point: stop when every element has
                                          (x_{k+1} - x_k)^2 < atol + rtol |y| (1e-5, 1e-5) */
    int inverse_max_iter;         /* (1000) */
    fxp_resblock_logdet logdet;
} fxp_resblock_opts;

/* The authors' block for C x H x W: hidden 528, coeff 0.98, tolerances
 * 1e-3 / 1e-3 in at most 200 steps, lambda 2, 2 / 20 exact terms, inverse
 * 1e-5 / 1e-5 in at most 1000 iterations, ESTIMATE. */
FXP_API void fxp_resblock_opts_default(fxp_resblock_opts *o, int channels, int height, int width);

/* A residual block y = x + g(x) on x [B, C, H, W] with
 *     g = conv3x3(C -> n_h) -> LipSwish -> conv1x1(n_h -> n_h) -> LipSwish
 *         -> conv3x3(n_h -> C),
 * every convolution with a bias and spectrally normalised to `coeff`
 * (fxp_spectral_norm_conv_tol, u and v written back in training only), so
 * Lip(g) <= coeff^3 < 1.  logdet:
 *   training forward: the Neumann surrogate w^T J eps (see above) with
 *     n_exact_train exact terms (its value is NOT the log-determinant);
 *   evaluation forward and inverse: the basic estimator with n_exact_eval
 *     exact terms, an unbiased estimate without gradient;
 *   FXP_RESBLOCK_EXACT: the exact value without gradient.
 * eps and N come from io->rng when it is set, else from the layer's own
 * stream (split off the constructor's rng).
 * Inverse (sampling): x_0 = y - g(y), x_{k+1} = y - g(x_k) until every
 * element satisfies (x_{k+1} - x_k)^2 < inverse_atol + inverse_rtol |y|
 * (the authors' test), FXP_ECONVERGE after inverse_max_iter iterations;
 * fxp_resblock_last_inverse reports it.  No gradients through the inverse.
 * Parameters, as the authors' state_dict (iresblock_module.nnet.<i>.*):
 *   "<name>/nnet/{0,2,4}/weight" [out, in, k, k], ".../bias" [out]
 *   (PyTorch's default init: U(+-1/sqrt(fan_in)) for both), state
 *   ".../u", ".../v" ([out H W] and [in H W], or [out] and [in] for the
 *   1x1), and "<name>/nnet/{1,3}/beta" [1] (init 0.5).
 * FXP_ESHAPE for an input other than [B, C, H, W]; FXP_EINVAL for bad
 * options. */
FXP_API int fxp_resblock_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                             const fxp_resblock_opts *opts, fxp_rng *rng, fxp_flow **out);

/* Switch a block between the estimators and the exact log-determinant
 * (FXP_EINVAL if f is not a residual block). */
FXP_API int fxp_resblock_set_logdet(fxp_flow *f, fxp_resblock_logdet mode);

/* The latest inverse's report (fxp_fixed_point_info in sylvester.h). */
FXP_API int fxp_resblock_last_inverse(const fxp_flow *f, fxp_fixed_point_info *info);

/* How good is the evaluation estimator on this input: for example 0 of
 * x [B, C, H, W], the exact log-determinant and the mean and standard error
 * of `draws` (>= 2) independent evaluation estimates drawn from rng, in
 * evaluation mode, without changing the layer. */
typedef struct fxp_resblock_logdet_stats {
    double exact, mean, stderr_mean;
    int draws;
} fxp_resblock_logdet_stats;
FXP_API int fxp_resblock_logdet_check(struct fxp_ctx *ctx, fxp_flow *f, const fxp_tensor *x,
                                      int draws, fxp_rng *rng, fxp_resblock_logdet_stats *out);

#ifdef __cplusplus
}
#endif
#endif
