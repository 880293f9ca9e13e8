/* libflowexp: flow-layer constructors.
 *
 * Every constructor registers the layer's parameters in `ps` under
 * "<name>/<parameter>", draws their initial values from `rng`, and returns
 * the layer in *out (free it with fxp_flow_free, or hand it to a sequence or
 * a model, which take ownership).  The layers implement the fxp_flow
 * interface of flow.h.  Errors: FXP_EINVAL for bad options (naming the
 * option), FXP_ENOMEM.  Constructors are thread-safe for distinct `ps`; the
 * layers themselves are not (see flow.h).
 *
 * Sections are owned by different parts of the library; each is marked.
 */
#ifndef FLOWEXP_LAYERS_H
#define FLOWEXP_LAYERS_H

#include "flowexp/rng.h"
#include "flowexp/flow.h"
#include "flowexp/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

/* ==== graph layers ==========================================================
 * Node features x [B, N, F]; the adjacency (fxp_flow_io.adj, [N, N] shared by
 * the batch or [B, N, N] per graph) is used through its symmetric
 * normalisation A_hat = D^-1/2 A D^-1/2, D_ii = sum_j A_ij, computed by
 * fxp_graph_normalize (expm.h), which rejects negative or non-finite weights,
 * self-loops and isolated nodes with FXP_EINVAL.  All maps are shared across nodes, so every layer is
 * permutation equivariant: permuting the nodes of x and of the adjacency
 * (P x, P A P^T) permutes the output and leaves the logdet unchanged.  The
 * node count N may differ between calls. */

/* Conditioner networks of the graph affine coupling. */
typedef enum fxp_graph_cond {
    FXP_GRAPH_COND_MLP = 0, /* per-node MLP, ignores the graph ("baseline coupling flow") */
    FXP_GRAPH_COND_MP = 1,  /* message passing over A_hat (GNF coupling, Liu et al. 2019) */
    FXP_GRAPH_COND_ATTN = 2, /* dot-product self-attention over the edges (GNF's default) */
    FXP_GRAPH_COND_EDGE = 3  /* messages sum_j A_hat_ij MLP(h_i, h_j) (edge MLP) */
} fxp_graph_cond;

/* Hidden-layer nonlinearity of the conditioners. */
typedef enum fxp_graph_act {
    FXP_GRAPH_ACT_RELU = 0,
    FXP_GRAPH_ACT_TANH = 1,
    FXP_GRAPH_ACT_SOFTPLUS = 2
} fxp_graph_act;

typedef struct fxp_graph_coupling_opts {
    int features;          /* F, even, >= 2 */
    int swap;              /* 0: condition on the first half, transform the second; 1: reverse */
    fxp_graph_cond cond;
    int hidden;            /* conditioner width H >= 1 */
    int mlp_layers;        /* dense layers (each followed by the activation) per MLP, >= 1 */
    int rounds;            /* message-passing rounds (MP, ATTN), >= 1 */
    int heads;             /* attention heads (ATTN), dividing hidden */
    float scale_bound;     /* log-scale bound b > 0: s = b tanh(raw / b) */
    fxp_graph_act act;
} fxp_graph_coupling_opts;

/* Defaults: F = 2, swap 0, attention, H = 32, 2 layers, 1 round, 4 heads,
 * bound 2, ReLU. */
FXP_API void fxp_graph_coupling_opts_default(fxp_graph_coupling_opts *o);

/* Affine coupling over the feature axis.  With (x_a, x_b) the conditioning
 * and transformed halves of the features (x_a the first F/2 unless swap):
 *   z_a = x_a,  z_b = x_b * exp(s) + t,  (raw, t) = NN(x_a, A),
 *   s = b tanh(raw / b),  logdet[g] = sum_{nodes, features} s  (graph g).
 * NN, with widths H and the activation after every dense layer but the head:
 *   h = MLP_embed(x_a)                                       (per node)
 *   R rounds (all but FXP_GRAPH_COND_MLP):  h <- h + MLP_r([h, msg])
 *     MP:    msg = A_hat h
 *     ATTN:  msg_i = sum_j softmax_{j: A_ij > 0}(q_i . k_j / sqrt(H/heads)) v_j
 *            per head, with (q, k, v) = h (W_q, W_k, W_v)
 *     EDGE:  msg_i = sum_j A_hat_ij MLP_edge(h_i, h_j), whose first layer is
 *            h_i W_i + h_j W_j + c (memory B N^2 H per layer)
 *   (raw, t) = h W + c, zero-initialised so the layer starts as the identity.
 * Hidden weights are drawn N(0, gain^2 / fan_in) (gain sqrt 2 for ReLU, 1
 * otherwise), attention projections N(0, 1 / H), biases 0.  Parameters
 * "<name>/embed/<i>/{w,b}", "<name>/round/<r>/<i>/{w,b}",
 * "<name>/round/<r>/{q,k,v}", "<name>/round/<r>/edge/<i>/{w,b}",
 * "<name>/round/<r>/edge/src", "<name>/head/{w,b}" (w [in, out], b [out]).
 * All but FXP_GRAPH_COND_MLP need io->adj (FXP_EINVAL otherwise; see above
 * for invalid adjacencies).  FXP_ESHAPE if x is not [B, N, F] or the
 * adjacency is neither [N, N] nor [B, N, N]. */
FXP_API int fxp_graph_coupling_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                                   const fxp_graph_coupling_opts *opts, fxp_rng *rng,
                                   fxp_flow **out);

/* Activation normalisation for graphs: z = (x + bias) * exp(log_scale) with
 * bias and log_scale [1, 1, F] shared across nodes ("<name>/bias",
 * "<name>/log_scale", zero-initialised), logdet[g] = N sum_f log_scale_f.
 * Data-dependent initialisation: the first forward with io->training set
 * (while the state flag "<name>/initialized" [1] is 0) sets bias = -mean and
 * log_scale = -log(std + 1e-6) per feature over batch and nodes, so that the
 * output has zero mean and unit variance, and sets the flag (which a
 * checkpoint keeps).  Inverse: x = z * exp(-log_scale) - bias. */
FXP_API int fxp_graph_actnorm_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                                  int features, fxp_flow **out);

/* Invertible per-node linear map: z[b, n, :] = x[b, n, :] W with W [F, F]
 * ("<name>/weight") shared across nodes; logdet[g] = N log|det W|; inverse
 * x = z W^-1 (FXP_ENUMERIC if W is singular).  W starts as the identity, so
 * axis-aligned structure in the data survives until training moves it (a
 * random rotation, as in Glow, was worse on the MoG grids); rng is unused
 * and may be NULL. */
FXP_API int fxp_graph_linear_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                                 int features, fxp_rng *rng, fxp_flow **out);

/* ==== end of graph layers ================================================== */

/* ==== exponential layers (expm.h) ============================================
 * Layers built on the exponential of a linear map.  Their series use
 * terms_train terms in a training forward and terms_eval otherwise (the
 * paper: 6 and 13); spectral normalisation takes power_steps iterations per
 * training forward and none otherwise. */

/* -- graph convolution exponential (paper §3.1) --
 * z = exp(M) x with M X = X theta0_hat + A_hat X theta1_hat on node features
 * x [B, N, F], A_hat = D^-1/2 A D^-1/2 from io->adj ([N,N] or [B,N,N]; see
 * fxp_graph_normalize).  theta_hat are spectrally normalised (soft
 * constraint, one power step per training forward, see expm.h):
 * ||theta0_hat||_2 <= coeff0 / max_degree and ||theta1_hat||_2 <= coeff1 (the
 * paper's rule of thumb with coeff0 = coeff1 = 1), so ||M||_2 <= coeff0 /
 * max_degree + coeff1 since ||A_hat||_2 <= 1.  max_degree is the option if
 * set, else the largest number of neighbours in the call's adjacency; with
 * per-graph adjacencies of different degrees that is the batch's largest, so
 * set the option to make each graph's map independent of its batch.
 * logdet[g] = N Tr theta0_hat; the inverse is the series with (-theta0_hat,
 * -theta1_hat).  Parameters "<name>/theta0", "<name>/theta1" [F, F],
 * initialised N(0, 0.05^2); state "<name>/{u0,v0,u1,v1}" [F]. */
typedef struct fxp_graph_conv_exp_opts {
    int features;                 /* F >= 1 */
    int terms_train, terms_eval;  /* series terms, >= 1 */
    float coeff0, coeff1;         /* > 0 */
    int max_degree;               /* >= 1: fixed degree for the theta0 bound; 0: per call */
} fxp_graph_conv_exp_opts;

/* Defaults: F = 2, terms 6 / 13, coeff0 = coeff1 = 1, max_degree 0 (per call). */
FXP_API void fxp_graph_conv_exp_opts_default(fxp_graph_conv_exp_opts *o);
FXP_API int fxp_graph_conv_exp_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                                   const fxp_graph_conv_exp_opts *opts, fxp_rng *rng,
                                   fxp_flow **out);

/* -- convolution exponential layer (paper §3, the authors' ConvExp) --
 * On x [B, C, H, W] (H, W fixed at creation):
 *   h = x + pre_bias;  h = Q h (per pixel, C x C);  h = exp(M) h;  z = h + post_bias
 * with M = conv(.; K_hat), K_hat the spectrally normalised kernel
 * (||M||_2 <= coeff at this (C, H, W)), and
 *   logdet = H W log|det Q| + H W sum_c K_hat[c, c, centre].
 * Q: FXP_MIXER_PLAIN, a free matrix initialised to a random orthogonal one
 * (logdet by LU); FXP_MIXER_HOUSEHOLDER, Q = H(v_1) ... H(v_R) with
 * H(v) = I - 2 v v^T / v^T v (orthogonal, logdet 0); FXP_MIXER_NONE.
 * Parameters "<name>/kernel" [C,C,k,k] (init N(0,1)/(C k k)),
 * "<name>/pre_bias", "<name>/post_bias" [1,C,H,W] (if biases; init 0),
 * "<name>/mixer" [C,C] or [R,C]; state "<name>/u", "<name>/v" [C H W]. */
typedef enum fxp_mixer_kind {
    FXP_MIXER_NONE = 0,
    FXP_MIXER_PLAIN = 1,
    FXP_MIXER_HOUSEHOLDER = 2
} fxp_mixer_kind;

typedef struct fxp_convexp_opts {
    int channels, height, width;  /* C, H, W >= 1 */
    int kernel;                   /* odd kernel size k (3 in the paper) */
    fxp_padding padding;          /* FXP_PAD_ZERO (paper) or FXP_PAD_CIRCULAR */
    int biases;                   /* nonzero: per-element pre/post biases */
    fxp_mixer_kind mixer;
    int reflections;              /* R for FXP_MIXER_HOUSEHOLDER, >= 1 */
    float coeff;                  /* spectral-norm coefficient, > 0 (paper: 0.9) */
    int power_steps;              /* per training forward, >= 0 (paper: 1) */
    int terms_train, terms_eval;  /* series terms, >= 1 (paper: 6 / 13) */
    float sn_eps;                 /* >= 0: K_hat = K / (max(1, sigma / coeff) + sn_eps); 0 is
                                     the clean constraint, 1e-5 reproduces the authors' code
                                     (which always shrinks K by that much); the extra factor
                                     is held constant in the gradient */
} fxp_convexp_opts;

/* Defaults for a C x H x W input: k = 3, zero padding, biases on, plain 1x1
 * mixer if C <= 64 else Householder with 64 reflections (as the authors),
 * coeff 0.9, 1 power step, terms 6 / 13, sn_eps 0. */
FXP_API void fxp_convexp_opts_default(fxp_convexp_opts *o, int channels, int height, int width);
FXP_API int fxp_convexp_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name,
                            const fxp_convexp_opts *opts, fxp_rng *rng, fxp_flow **out);

/* ==== end of exponential layers ============================================= */

#ifdef __cplusplus
}
#endif
#endif
