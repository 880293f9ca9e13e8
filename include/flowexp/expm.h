/* libflowexp: exponentials of linear maps — the convolution exponential, the
 * graph convolution exponential and the dense matrix exponential (Hoogeboom
 * et al. 2020, §2-3), computed implicitly by the power series
 *
 *     exp(M) x = sum_{i=0..T} t_i,   t_0 = x,   t_i = M t_{i-1} / i
 *
 * (the paper's Algorithm 2), which needs only products with M.  exp(M) is
 * always invertible with inverse exp(-M), and log|det exp(M)| = Tr M.
 *
 * Series length: a fixed T (the paper uses 6 terms in training and 13 in
 * evaluation), or adaptive: with opts.tol > 0 the series stops after the
 * first term i >= min_terms whose remainder bound falls below
 * tol * ||x||_2.  With a known bound mu >= ||M||_2 (opts.norm_bound, else
 * the operator's norm_bound; e.g. the spectral-normalisation coefficient)
 * the bound is certified: t_{i+k} = M^k t_i i! / (i+k)!, so
 *     ||sum_{k>i} t_k|| <= ||t_i|| sum_{k>=1} r^k = ||t_i|| r / (1 - r),
 *     r = mu / (i + 1) < 1
 * (since ||t_i|| <= mu^i ||x|| / i!, this follows the decay of
 * ||M||^i / i! and uses the actual size of the last term); without a bound
 * ||t_i|| itself is used (a heuristic).  Every call reports the number of
 * terms used, the last term's norm and the certified bound in an
 * fxp_expm_info.
 *
 * Gradients (tape ops below) use the adjoint recursion
 *     a_T = g_y,  a_{i-1} = g_y + M^T a_i / i,  g_x = a_0,
 *     dtheta += (1/i) d<a_i, M(theta) t_{i-1}>/dtheta,
 * i.e. T products with M^T and T parameter-gradient products, and save only
 * t_1 .. t_{T-1}: forward + backward hold T + 2 activation-sized buffers
 * besides the input and its gradient (plus the operator's transient
 * workspace, e.g. im2col for a convolution).
 *
 * Thread-safety: functions taking a context follow ctx.h; the raw-buffer
 * functions (fxp_conv_exp, ...) are thread-safe.
 */
#ifndef FLOWEXP_EXPM_H
#define FLOWEXP_EXPM_H

#include "flowexp/ops.h"
#include "flowexp/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

/* ==== series options and report ============================================ */

typedef struct fxp_expm_opts {
    int terms;          /* fixed series length T >= 1 (used when tol == 0) */
    double tol;         /* > 0: adaptive length (see above); 0: fixed */
    int min_terms;      /* adaptive: at least this many terms (>= 1) */
    int max_terms;      /* adaptive: at most this many (FXP_ECONVERGE beyond) */
    double norm_bound;  /* known bound on ||M||_2, 0 if unknown */
} fxp_expm_opts;

typedef struct fxp_expm_info {
    int terms;          /* T: terms t_1 .. t_T were added */
    double last_norm;   /* ||t_T||_2 over the whole batch */
    double error_bound; /* certified bound on ||y - exp(M) x||_2, or -1 if none */
} fxp_expm_info;

/* Fixed length T: {T, 0, 1, T, 0}. */
FXP_API fxp_expm_opts fxp_expm_fixed(int terms);

/* ==== the generic operator interface ========================================
 * A linear map M on vectors of `size` floats (the whole batch tensor), given
 * by callbacks on `self`:
 *   apply       y = M x                         (required)
 *   apply_t     y = M^T x                       (required by the tape op)
 *   param_grad  adds scale * d<g, M(theta) u>/dtheta to the gradients of
 *               whatever M depends on (NULL if nothing is trainable)
 *   trace       Tr M over the whole vector (NULL if unknown); for a batch of
 *               B identical per-example maps the per-example value is Tr M / B
 *   apply_term  optional fused series step: t = s M x, y += t and
 *               *sumsq = ||t||^2 (double; summed in an order that does not
 *               depend on the thread count) in one pass; NULL: apply, then
 *               one elementwise pass
 * and norm_bound >= ||M||_2 when known (0 if not): it certifies adaptive
 * truncation when the options carry no bound of their own.  The series
 * never passes aliasing x and y to apply / apply_t, nor x, t, y aliasing
 * each other to apply_term.  Callbacks return FXP_OK or a negative status
 * (with a message set through ctx). */
typedef struct fxp_linop {
    void *self;
    int64_t size;
    int (*apply)(void *self, struct fxp_ctx *ctx, const float *x, float *y);   /* y = M x */
    int (*apply_t)(void *self, struct fxp_ctx *ctx, const float *x, float *y); /* y = M^T x */
    int (*param_grad)(void *self, struct fxp_ctx *ctx, const float *u, const float *g,
                      float scale);
    double (*trace)(void *self);
    double norm_bound;
    int (*apply_term)(void *self, struct fxp_ctx *ctx, const float *x, float *t, float s, float *y,
                      double *sumsq);
} fxp_linop;

/* log|det exp(s M)| = s Tr M (s = -1 if negate else 1) through op->trace;
 * NaN with FXP_EINVAL in ctx if the operator has no trace callback. */
FXP_API double fxp_expm_linop_logdet(struct fxp_ctx *ctx, const fxp_linop *op, int negate);

/* y = exp(M) x (or exp(-M) x if negate) for a generic operator, no tape.
 * y may alias x. info may be NULL. */
FXP_API int fxp_expm_linop_apply(struct fxp_ctx *ctx, const fxp_linop *op, const float *x,
                                 float *y, int negate, const fxp_expm_opts *opts,
                                 fxp_expm_info *info);

/* Tape op for a generic operator: out = exp(s M) x, s = -1 if negate else 1.
 * `params` (n_params <= FXP_NODE_MAX_IN - 1) are the variables M depends on:
 * they make the node record when they require gradients, and op->param_grad
 * must add into their ->grad.  *op (and what op->self points to) must stay
 * valid until the tape is reset.  The backward reuses the saved terms as
 * workspace, so a tape holding this node can be back-propagated once
 * (FXP_ESTATE on a second fxp_tape_backward through it). */
FXP_API int fxp_expm_linop(fxp_tape *t, fxp_var **out, fxp_var *x, const fxp_linop *op,
                           int negate, int n_params, fxp_var *const *params,
                           const fxp_expm_opts *opts, fxp_expm_info *info);

/* ==== convolution exponential ================================================
 * M = the C->C cross-correlation with kernel K [C, C, kh, kw] (kh, kw odd),
 * stride 1, on x [N, C, H, W] with zero "same" padding or circular padding
 * (kh <= H, kw <= W).  For both paddings every diagonal entry of M's matrix is
 * the kernel centre, so
 *     log|det exp(M)| = Tr M = H W sum_c K[c, c, (kh-1)/2, (kw-1)/2]
 * per image.  The inverse is the same series with -K.  Tape op: gradients to
 * x and K; FXP_ESHAPE / FXP_EINVAL for mismatched shapes, even kernels, or a
 * circular kernel wider than the image (whose taps would wrap onto one
 * pixel, adding to the diagonal). */
FXP_API int fxp_expm_conv(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *kernel,
                          fxp_padding padding, int inverse, const fxp_expm_opts *opts,
                          fxp_expm_info *info);

/* Differentiable Tr M of a convolution: H W sum_c K[c,c,centre] (a scalar). */
FXP_API int fxp_conv_trace(fxp_tape *t, fxp_var **out, fxp_var *kernel, int h, int w);

/* ==== graph convolution exponential ==========================================
 * For node features X [B, N, F] and a normalised adjacency A_hat ([N, N]
 * shared, or [B, N, N] per graph):
 *     GCL(X) = X theta0 + A_hat X theta1,   theta0, theta1 [F, F]
 * (paper eq. 7).  With a zero diagonal in A_hat, Tr M = N Tr theta0 per
 * graph.  The inverse is the series with (-theta0, -theta1).
 * fxp_graph_normalize computes A_hat = D^-1/2 A D^-1/2 (D_ii = sum_j A_ij)
 * from A [N, N] or [B, N, N] with non-negative entries into adj_hat, which
 * must have the same shape and its own data (it may alias adj).  A node
 * without neighbours (D_ii = 0), a negative or non-finite entry, or a
 * non-zero diagonal entry is an error (FXP_EINVAL naming the node).
 * *max_degree, if non-NULL, receives the largest count of non-zero entries
 * in a row (the paper constrains ||theta0||_2 by 1 / max_degree). */
FXP_API int fxp_graph_normalize(struct fxp_ctx *ctx, const fxp_tensor *adj, fxp_tensor *adj_hat,
                                int *max_degree);

/* Tape op: out = exp(s M) x (s = -1 if inverse), gradients to x, theta0 and
 * theta1 (not to the adjacency, which is data; its values must stay valid
 * until the tape is reset).  A shared adjacency with B > 1 is applied to
 * the whole batch by one [N, N] x [N, B F] product per term (node-major
 * layout inside the operator).  FXP_ESHAPE for mismatched shapes. */
FXP_API int fxp_expm_graph(fxp_tape *t, fxp_var **out, fxp_var *x, const fxp_tensor *adj_hat,
                           fxp_var *theta0, fxp_var *theta1, int inverse,
                           const fxp_expm_opts *opts, fxp_expm_info *info);

/* Differentiable trace of a square matrix (a scalar). */
FXP_API int fxp_trace(fxp_tape *t, fxp_var **out, fxp_var *m);

/* ==== dense matrix exponential ===============================================
 * x [B, d] -> rows exp(W) x_b (or exp(-W) x_b), W [d, d]; log|det| = Tr W. */
FXP_API int fxp_expm_dense(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *w, int inverse,
                           const fxp_expm_opts *opts, fxp_expm_info *info);

/* ==== spectral normalisation ==================================================
 * W_hat = W / max(1, sigma / coeff), sigma the largest singular value of the
 * linear map, estimated by power iteration on persistent vectors u (output
 * size) and v (input size) that belong to the layer (store them as
 * FXP_PARAM_STATE so checkpoints keep them; initialise them to normalised
 * N(0, I) draws, e.g. with fxp_spectral_init).  Each call first runs
 * `power_steps` iterations  v <- normalise(M^T u),  u <- normalise(M v)
 * (1 per training forward in the paper; 0 in evaluation), then
 * sigma = <u, M v> with u, v held constant; the gradient flows through sigma
 * into W.  This is the soft constraint of the authors' code (W is rescaled
 * only when sigma > coeff) without their extra 1e-5 in the denominator
 * (W / (factor + 1e-5)): we drop it, so W_hat = W exactly while
 * sigma <= coeff and ||W_hat|| = coeff exactly once sigma > coeff (with the
 * term every weight would shrink by 1e-5 per use and the bound would be
 * coeff / (1 + 1e-5 coeff / sigma)); the difference in any likelihood is
 * below float resolution.  *sigma_out (may be NULL) receives sigma.
 * The vectors u, v are updated in place by the power steps (not on the
 * tape); the op itself is not thread-safe for shared u, v.
 *
 * Convolution: M = conv(.; W) on [1, C_in, H, W] with the given padding, W
 * [C_out, C_in, kh, kw], u [C_out H W], v [C_in H W].  Dense: M = W
 * [rows, cols], u [rows], v [cols]. */
FXP_API int fxp_spectral_norm_conv(fxp_tape *t, fxp_var **out, fxp_var *w, float *u, float *v,
                                   int h, int w_, fxp_padding padding, float coeff,
                                   int power_steps, float *sigma_out);
FXP_API int fxp_spectral_norm_dense(fxp_tape *t, fxp_var **out, fxp_var *w, float *u, float *v,
                                    float coeff, int power_steps, float *sigma_out);

/* Fill a power-iteration vector with a normalised N(0, I) draw.  With a
 * NULL argument or n outside [1, FXP_MAX_ELEMENTS] it does nothing but set
 * fxp_last_error() (FXP_EINVAL). */
FXP_API void fxp_spectral_init(fxp_rng *rng, float *vec, int64_t n);

/* ==== small dense linear algebra (double precision LU) ========================= */

/* Differentiable log|det W| of a square matrix W [d, d] (a scalar);
 * d log|det W| / dW = W^-T.  FXP_ENUMERIC if W is singular. */
FXP_API int fxp_logabsdet(fxp_tape *t, fxp_var **out, fxp_var *w);

/* Differentiable inverse of a square matrix: out = W^-1;
 * dL/dW = -W^-T (dL/dout) W^-T.  FXP_ENUMERIC if W is singular. */
FXP_API int fxp_inverse(fxp_tape *t, fxp_var **out, fxp_var *w);

/* inv = W^-1 for W [d, d] (row-major, d <= 4096; inv may alias w), with
 * scratch from ctx (which must be non-NULL).  FXP_ENUMERIC (inv untouched)
 * if W holds NaN or Inf, is singular, or its inverse overflows float.
 * fxp_inverse and fxp_logabsdet refuse non-finite matrices the same way. */
FXP_API int fxp_matrix_inverse(struct fxp_ctx *ctx, const float *w, float *inv, int d);

/* ==== raw-buffer API ============================================================
 * Contiguous row-major float32 buffers; 0 on success, a negative status
 * otherwise, with the message in fxp_last_error() (and the context's, for
 * the *_ctx variants), naming the function called.  On any error nothing is
 * written to y.  y may alias x (the result replaces x).  These create a
 * temporary context per call and use omp_get_max_threads() threads; the
 * *_ctx variants use the given context (its threads, its scratch memory, no
 * per-call allocation once warm).
 *
 * Checks, all before y is written:
 *   - sizes >= 1, and every buffer the sizes imply (x, the kernel or theta,
 *     the adjacency, the workspace) at most FXP_MAX_ELEMENTS elements, with
 *     overflow-checked products: FXP_EINVAL.  The workspace is reserved
 *     before the inputs are read, so sizes beyond memory are FXP_ENOMEM.
 *   - NaN/Inf in any input: FXP_ENUMERIC.
 *   - convergence: the series has a fixed number of terms T = `terms`, and
 *     its truncation error is about the first omitted term, at most
 *     ||M||_2^(T+1) ||x|| / (T+1)!.  The call fails with FXP_ECONVERGE when
 *     the last term added, ||t_T|| = ||M^T x|| / T!, exceeds
 *     FXP_EXPM_RAW_TOL times ||x|| (a non-converged result is never
 *     returned as success).  Since ||t_T|| <= ||M||_2^T ||x|| / T!, T terms
 *     assume a map norm ||M||_2 of at most about 1.4 for T = 6, 2.1 for
 *     T = 8, 2.9 for T = 10, 4.0 for T = 13 and 6.6 for T = 20 (the check
 *     uses the actual last term, so maps acting more weakly on x pass with
 *     larger norms); at that limit the omitted terms add up to at most
 *     about 0.5% of ||x||.  For a convolution,
 *     ||M||_2 <= sqrt(max_c sum_{c',i,j} |K[c,c',i,j]| *
 *                     max_c' sum_{c,i,j} |K[c,c',i,j]|)
 *     (the matrix's largest row and column sums); spectral normalisation
 *     bounds ||M||_2 directly.  The check reuses the norms the series
 *     computes anyway: it costs nothing.
 *     For the series with a certified remainder bound use the generic
 *     fxp_expm_linop_apply with opts.tol and opts.norm_bound. */
#define FXP_EXPM_RAW_TOL 1e-2

/* x, y: [n,c,h,w]; kernel: [c,c,kh,kw], cross-correlation, zero "same"
 * padding; y = exp(M) x with terms+1 series terms (i = 0..terms);
 * inverse != 0 gives exp(-M) x. */
FXP_API int fxp_conv_exp(const float *x, float *y, const float *kernel, int n, int c, int h,
                         int w, int kh, int kw, int terms, int inverse);
FXP_API int fxp_conv_exp_ctx(struct fxp_ctx *ctx, const float *x, float *y, const float *kernel,
                             int n, int c, int h, int w, int kh, int kw, int terms, int inverse);

/* log|det exp(M)| = h w sum_c kernel[c, c, (kh-1)/2, (kw-1)/2] (per image), in
 * double; NaN (with a message) on bad arguments. */
FXP_API double fxp_conv_exp_logdet(const float *kernel, int c, int h, int w, int kh, int kw);

/* x, y: [batch,nodes,features]; adj: [nodes,nodes] adjacency (zero
 * diagonal), normalised inside as D^-1/2 A D^-1/2; theta0, theta1:
 * [features,features]; GCL(X) = X theta0 + Ahat X theta1; y = exp(M) x with
 * terms+1 series terms, or exp(-M) x if inverse != 0. */
FXP_API int fxp_graph_conv_exp(const float *x, float *y, const float *adj, const float *theta0,
                               const float *theta1, int batch, int nodes, int features, int terms,
                               int inverse);
FXP_API int fxp_graph_conv_exp_ctx(struct fxp_ctx *ctx, const float *x, float *y,
                                   const float *adj, const float *theta0, const float *theta1,
                                   int batch, int nodes, int features, int terms, int inverse);

/* log|det exp(M)| = nodes * Tr theta0 per graph, in double; NaN on bad
 * arguments. */
FXP_API double fxp_graph_conv_exp_logdet(const float *theta0, int nodes, int features);

#ifdef __cplusplus
}
#endif
#endif
