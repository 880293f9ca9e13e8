/* libflowexp: generative flows for images with dequantization — the paper's
 * Table-1 model (the authors' `Flow` with a variational dequantiser), its
 * configuration, objectives (ELBO, importance-weighted NLL), sampling and
 * evaluation.
 *
 * Data.  Images are 8-bit: x in {0, ..., 255}^D, D = C H W, passed as float
 * tensors [B, C, H, W] holding the integer pixel values.  The model is a
 * density p(v) over continuous v in [0, 256)^D, and the discrete model is
 * P(x) = int_{[0,1)^D} p(x + u) du >= E_{u ~ q(u|x)}[log p(x + u) - log q(u|x)]
 * (the ELBO) for a dequantiser q:
 *   uniform      u ~ U[0, 1)^D, log q = 0;
 *   variational  u = sigmoid(a), a = g^-1(z; h(x)), z ~ N(mu_q, sigma_q^2)
 *                per channel, g a flow conditioned on a context h(x)
 *                (Flow++ / the authors' `--dequantize_distribution flow`).
 *
 * The prior flow p(v) ("pv/..."), for an input C x H x W (the paper: 3 x 32 x 32):
 *   normalize((v - 128) / 256) -> squeeze -> mixing
 *   -> for level l < levels: subflows x [coupling, mixing],
 *      then (l < levels - 1 and splitprior) split prior -> squeeze
 *   -> per-channel diagonal Gaussian base (learned mean and log-sigma).
 * With splitprior off no level but the first squeezes (the authors' code).
 * The paper's CIFAR10 model: levels 2, subflows 10, DenseNet depth 8, growth
 * 64 (1x1) or 63 (other mixings), intermediate 64, gated, split prior,
 * variational dequantisation; sizes 12x16x16 -> split 6x16x16 -> 24x8x8.
 *
 * The variational dequantiser ("qu/..."):
 *   context h(x): (x - 128) / 256 -> DenseNet(C -> K, depth_c, growth_c)
 *     -> 2x2 convolution with stride 2 (K -> K) -> DenseNet(K -> K, ...):
 *     K x H/2 x W/2 (the paper: K = 32, depth 4, growth 32);
 *   g: squeeze -> mixing^-1 -> deq_subflows x [coupling with context,
 *     mixing^-1] (the mixing layers inverted, so sampling runs each in its
 *     cheap forward direction), base per-channel diagonal Gaussian over
 *     4C x H/2 x W/2;
 *   log q(u|x) = log N(z) - log|det da/dz| - sum log sigmoid'(a).
 * Its couplings use the same sizes as the prior's.
 *
 * The Sylvester-table models (Tables 2-3; the authors'
 * experiment_sylvester_network.py and models/distributions/specific_models/):
 * the prior sees v in [0, 256)^D directly (no normalize layer: the first
 * ActNorm's data-dependent initialisation does the scaling), then
 *   squeeze -> for level l < levels: subflows x BLOCK,
 *   then (l < levels - 1) a split prior (if splitprior, and l >= 1 or
 *   split_level0) and a squeeze (always)
 *   -> per-channel diagonal Gaussian base, where BLOCK is
 *   sylvester:          [actnorm, Sylvester layer (sylvester.h: k = 3, n_h =
 *                        hidden, W = exp(M) Q), flip]
 *   sylvester-nobasis:  [actnorm, Sylvester layer without W, flip]
 *   sylvester-nogen:    [actnorm, original-form Sylvester layer with W, flip]
 *   resflow:            [actnorm, residual block (residual.h)]
 *   coupling:           [actnorm, 1x1 convolution, affine coupling with
 *                        §8.3's conditioner (3x3 -> 1x1 -> 3x3, width hidden)
 *                        and log s = 0.5 tanh]
 * The split priors' couplings and the dequantiser use the DenseNet sizes
 * (intermediate 64 for the Sylvester models, 528 for the residual and
 * coupling ones, as the authors' README commands) and the dequantiser the
 * `mixing` layer (1x1).  The paper's CIFAR10 sizes: levels 3, subflows 16
 * (8 for "resflow-half"), 12x16x16 -> 6x16x16 -> 24x8x8 -> 12x8x8 -> 48x4x4
 * (coupling: 12x16x16 -> 48x8x8 -> 24x8x8 -> 96x4x4).  The residual flow's
 * log-densities are stochastic estimates (residual.h), and in training the
 * log-determinant is the Neumann gradient surrogate, not a likelihood.
 *
 * Numbers.  Log-densities are in nats per image; bits per dimension is
 * -log p / (D ln 2).  Training draws one u per image; evaluation in
 * evaluation mode (13 series terms for the convolution exponential, no
 * power iterations).
 *
 * Thread-safety: as flow.h (one model per thread at a time).
 */
#ifndef FLOWEXP_IMAGEFLOW_H
#define FLOWEXP_IMAGEFLOW_H

#include "flowexp/flow.h"
#include "flowexp/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

typedef enum fxp_image_model_kind {
    FXP_IMAGE_FLOW = 0,               /* "flow": the Table-1 multi-scale coupling flow with
                                         mixing layers */
    FXP_IMAGE_SYLVESTER = 1,          /* "sylvester": convolutional Sylvester flow (Table 2) */
    FXP_IMAGE_SYLVESTER_NOBASIS = 2,  /* "sylvester-nobasis": ... without the basis change
                                         (Table 3) */
    FXP_IMAGE_SYLVESTER_NOGEN = 3,    /* "sylvester-nogen": ... without generalisation, the
                                         original Sylvester form (Table 3) */
    FXP_IMAGE_RESFLOW = 4,            /* "resflow": residual block flow (Table 2) */
    FXP_IMAGE_COUPLING = 5            /* "coupling": the baseline coupling flow (Table 2) */
} fxp_image_model_kind;

typedef enum fxp_dequant_kind {
    FXP_DEQUANT_UNIFORM = 0,    /* "uniform" */
    FXP_DEQUANT_VARIATIONAL = 1 /* "variational" */
} fxp_dequant_kind;

typedef enum fxp_optim_choice { FXP_OPT_ADAMAX = 0, FXP_OPT_ADAM = 1 } fxp_optim_choice;

/* The mixing layer between couplings, chosen by name. */
#define FXP_MIXING_NAME_MAX 24

/* Every field has a text key (the same name) for config files, --set and
 * checkpoints; fxp_image_model_config_key_help gives its meaning. */
typedef struct fxp_image_model_config {
    /* architecture */
    fxp_image_model_kind kind;
    char mixing[FXP_MIXING_NAME_MAX]; /* 1x1 | lu | householder | emerging | woodbury |
                                          convexp | convexp-circular */
    int channels, height, width;       /* data shape C, H, W (H, W divisible by 2^levels') */
    int levels, subflows, splitprior;
    int depth, growth, intermediate, gated, n_densenets; /* coupling conditioners */
    fxp_dequant_kind dequantization;
    int deq_subflows;                  /* couplings of the dequantiser flow */
    int context_channels, context_depth, context_growth;
    float convexp_coeff;               /* spectral-norm coefficient of convexp mixing */
    float convexp_sn_eps;              /* see fxp_convexp_opts.sn_eps (1e-5: the authors') */
    int convexp_terms_train, convexp_terms_eval, convexp_power_steps;
    int reflections;                   /* householder mixing: R (0: C) */
    int woodbury_rank;
    float normalize_shift, normalize_scale;
    /* the Sylvester-table models (kinds other than "flow"; see below) */
    int hidden;                        /* width of f_AR, of the residual blocks' g and of the
                                          baseline couplings' networks (paper: 528) */
    int split_level0;                  /* 1: split priors after level 0 too (Sylvester,
                                          residual); 0: from level 1 on (the coupling and
                                          ablation models' quirk) */
    float lipschitz;                   /* spectral-norm coefficient of f_AR's masked
                                          convolutions (1.5) */
    double sylvester_atol;             /* fixed-point inverse tolerance (1e-4; 1e-6 nobasis) */
    int sylvester_max_iter;            /* ... at most this many iterations (0: C H W) */
    float resflow_coeff;               /* Lipschitz bound of each convolution of g (0.98) */
    double resflow_sn_atol, resflow_sn_rtol; /* power-iteration tolerances (1e-3, 1e-3) */
    int resflow_sn_max_iter;           /* (200) */
    double resflow_lambda;             /* Poisson rate of the Russian roulette (2) */
    int resflow_exact_train, resflow_exact_eval; /* exact series terms (2, 20) */
    double resflow_inverse_atol, resflow_inverse_rtol; /* fixed point (1e-5, 1e-5) */
    int resflow_inverse_max_iter;      /* (1000) */
    /* training (used by the training tools, not by the model) */
    int batch;                         /* images per step */
    int epochs;                        /* passes over the training split (if train_steps = 0) */
    int train_steps;                   /* > 0: total optimizer steps, overriding epochs */
    fxp_optim_choice optimizer;        /* adamax | adam */
    double lr, beta1, beta2, eps, weight_decay, clip_norm;
    int warmup;                        /* warm-up epochs (0: none) */
    int warmup_quadratic;              /* 0: linear (Table 1), 1: quadratic (Sylvester runs) */
    double lr_decay;                   /* per epoch */
    int augment;                       /* 0/1: the paper's flips and shifts on training batches */
    int eval_batch;                    /* images (x samples) per evaluation forward */
} fxp_image_model_config;

/* Presets by model name: "flow-1x1", "flow-lu", "flow-householder",
 * "flow-emerging", "flow-woodbury", "flow-convexp" (the paper's Table-1
 * architecture with that mixing layer: growth 64 for 1x1, 63 otherwise; 3 x
 * 32 x 32 input; Adamax lr 1e-3, eps 1e-7, batch 256, 1000 epochs, linear
 * warm-up 10, decay 0.995, augmentation on), and the Tables 2-3 models
 * "sylvester", "sylvester-nobasis", "sylvester-nogen", "resflow",
 * "resflow-half", "coupling-flow" (levels 3, subflows 16 (resflow-half 8),
 * hidden 528, split prior, variational dequantisation with 1x1 mixing,
 * DenseNet depth 8, growth 64, not gated, intermediate 64 (Sylvester) or 528;
 * Sylvester: convexp coefficient 0.95, 9 / 20 terms (nogen 10 / 10), 1 power
 * step, lipschitz 1.5, inverse atol 1e-4 (nobasis 1e-6); split_level0 1
 * except coupling-flow and sylvester-nogen (the authors' quirk; nobasis
 * keeps 1 because the authors' Ablation skeleton would put 96 channels
 * against 528 hidden units, which no mask fits); Adam (0.9, 0.99), eps 1e-7,
 * lr 1e-3, quadratic warm-up 10, decay 0.995, gradient clipping 1, batch
 * 256, 1000 epochs, augmentation on).  FXP_EINVAL for other names.
 * fxp_image_model_preset_name(i) enumerates them (NULL past the end). */
FXP_API int fxp_image_model_config_preset(fxp_image_model_config *cfg, const char *name);
FXP_API const char *fxp_image_model_preset_name(int i);

/* Key/value access as for the graph models (graphflow.h): values are text
 * (numbers; names for kind "flow", mixing, dequantization "uniform" |
 * "variational", optimizer "adamax" | "adam").  set: FXP_ENOTFOUND for an
 * unknown key, FXP_EINVAL for a malformed or out-of-range value (cfg
 * unchanged), message in fxp_last_error().  get: the text form (numbers
 * with %.9g, exact round trip).  key(i) / key_help(i) for i < n_keys()
 * (NULL outside).  Thread-safe. */
FXP_API int fxp_image_model_config_n_keys(void);
FXP_API const char *fxp_image_model_config_key(int i);
FXP_API const char *fxp_image_model_config_key_help(int i);
FXP_API int fxp_image_model_config_set(fxp_image_model_config *cfg, const char *key,
                                       const char *value);
FXP_API int fxp_image_model_config_get(const fxp_image_model_config *cfg, const char *key,
                                       char *buf, size_t size);

/* Every field in range and the shapes consistent (even channels after the
 * first squeeze, H and W divisible by the squeezes, a known mixing name, for
 * the generalized Sylvester kinds a hidden width that every level's channel
 * count divides or is divided by): FXP_EINVAL naming the first problem. */
FXP_API int fxp_image_model_config_validate(struct fxp_ctx *ctx,
                                            const fxp_image_model_config *cfg);

typedef struct fxp_image_model fxp_image_model;

/* Build the model of cfg (validated first) with parameters registered in ps
 * ("pv/flow/<i>/<layer>", "pv/base/{mean,log_sigma}", "qu/context/...",
 * "qu/flow/<i>/<layer>", "qu/base/{mean,log_sigma}"; docs/checkpoints.md
 * lists them) and drawn from rng. */
FXP_API int fxp_image_model_new(struct fxp_ctx *ctx, fxp_params *ps,
                                const fxp_image_model_config *cfg, fxp_rng *rng,
                                fxp_image_model **out);
FXP_API void fxp_image_model_free(fxp_image_model *m);

/* The prior p(v) (its flow is a flat sequence: fxp_flow_seq_at walks the
 * layers), and the dequantiser's flow g (a flat sequence from the a side
 * [B, C, H, W] to the z side; NULL for uniform dequantisation). */
FXP_API fxp_model *fxp_image_model_prior(const fxp_image_model *m);
FXP_API fxp_flow *fxp_image_model_dequantizer(const fxp_image_model *m);
FXP_API const fxp_image_model_config *fxp_image_model_get_config(const fxp_image_model *m);

/* 0 for the residual flow, whose log-densities are stochastic estimates
 * (residual.h), 1 for every other kind (and 0 for NULL). */
FXP_API int fxp_image_model_logdet_is_exact(const fxp_image_model *m);

/* Shape [C', H', W'] of the prior's top latent (the base density's event). */
FXP_API void fxp_image_model_latent_shape(const fxp_image_model *m, int shape[3]);

/* The dequantiser's context h(x) [B, K, H/2, W/2] for x [B, C, H, W]
 * (FXP_EINVAL for uniform dequantisation). */
FXP_API int fxp_image_model_context(fxp_image_model *m, fxp_tape *t, fxp_var *x,
                                    fxp_var **context);

/* log p(v) [B] in nats of continuous v [B, C, H, W] under the prior.
 * training selects training mode (see flow.h). */
FXP_API int fxp_image_model_log_density(fxp_image_model *m, fxp_tape *t, int training,
                                        fxp_var *v, fxp_var **log_p);

/* The ELBO [B] (nats) of integer-valued x [B, C, H, W] with one u per image
 * drawn from rng (which then also feeds the residual flow's log-determinant
 * estimators): log p(x + u) - log q(u|x).  *log_q (may be NULL) receives
 * log q(u|x) [B].  Differentiable w.r.t. every parameter (reparametrised). */
FXP_API int fxp_image_model_elbo(fxp_image_model *m, fxp_tape *t, int training, fxp_var *x,
                                 fxp_rng *rng, fxp_var **elbo, fxp_var **log_q);

/* The same with the dequantisation noise given: `noise` is eps
 * [B, 4C, H/2, W/2] ~ N(0, I) for the variational dequantiser (z = mu_q +
 * sigma_q eps) or u [B, C, H, W] in [0, 1) for the uniform one (FXP_ESHAPE
 * otherwise).  Evaluation with common random numbers, cross-checks, data-
 * parallel training.  rng drives the stochastic log-determinant estimators
 * of residual blocks (may be NULL for every other model; NULL there uses a
 * stream of the layer's own, which checkpoints do not keep). */
FXP_API int fxp_image_model_elbo_noise(fxp_image_model *m, fxp_tape *t, int training,
                                       fxp_rng *rng, fxp_var *x, fxp_var *noise,
                                       fxp_var **elbo, fxp_var **log_q);

/* n samples v [n, C, H, W] (continuous; floor and clamp to 0..255 for
 * pixels): the base draw and every split prior's draw scaled by
 * `temperature` (1 = the model), then the prior's inverse, in evaluation
 * mode. */
FXP_API int fxp_image_model_sample(fxp_image_model *m, fxp_tape *t, int n, float temperature,
                                   fxp_rng *rng, fxp_var **v);

/* The prior's inverse from given noise: the top eps [n, C', H', W'] (then
 * z = mean + sigma eps) and the split priors' eps through latents (popped
 * as flow.h says; NULL or empty: drawn at temperature 0, i.e. zeros). */
FXP_API int fxp_image_model_decode(fxp_image_model *m, fxp_tape *t, fxp_var *eps,
                                   fxp_latents *latents, fxp_var **v);

/* Evaluation of n images (uint8 [n, C, H, W]) with K = iw_samples >= 1
 * dequantisation samples each, in evaluation mode:
 *   bpd_elbo = -mean over images and samples of the ELBO / (D ln 2),
 *   bpd_iw   = -mean over images of (logsumexp_k ELBO_k - ln K) / (D ln 2)
 * (the importance-weighted bound, <= the ELBO's bound and equal for K = 1),
 * with the standard error over images of each.  Work is done in forwards of
 * at most `batch` (image, sample) rows, on the context's threads.  The noise
 * of (image first_index + i, sample k) comes from the stream seed with its
 * own counter range, so results do not depend on batch size or thread
 * count, and shards of a set evaluated separately (first_index = the shard's
 * offset, e.g. one per MPI rank) combine through `sums` into exactly the
 * whole set's numbers: the means are sums[0] / n_images and sums[2] /
 * n_images, the standard errors follow from sums[1] and sums[3].
 * progress (may be NULL) is called after each forward with the images done.

 * The residual flow: iw_samples must be 1 (FXP_EUNSUPPORTED otherwise: its
 * log-densities are stochastic estimates, and an importance-weighted bound
 * needs exact determinants); its estimators draw from a stream of (seed,
 * the forward's first row), so its result depends on `batch`. */
typedef struct fxp_image_eval {
    double bpd_elbo, bpd_iw;
    double bpd_elbo_stderr, bpd_iw_stderr;
    int iw_samples;
    int64_t n_images;
    double sums[4]; /* over images: bpd_elbo, bpd_elbo^2, bpd_iw, bpd_iw^2 */
} fxp_image_eval;
typedef void (*fxp_eval_progress_fn)(void *user, int64_t done, int64_t total);
FXP_API int fxp_image_model_evaluate(fxp_image_model *m, const uint8_t *pixels, int n,
                                     int64_t first_index, int iw_samples, int batch,
                                     uint64_t seed, fxp_eval_progress_fn progress, void *user,
                                     fxp_image_eval *out);

/* Means and standard errors of `e` from its sums and n_images (after adding
 * the sums and counts of several shards). */
FXP_API void fxp_image_eval_finish(fxp_image_eval *e);

#ifdef __cplusplus
}
#endif
#endif
