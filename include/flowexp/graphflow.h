/* libflowexp: normalizing flows for node features of graphs (paper §6.3,
 * Table 4).
 *
 * Three model kinds over node features x [N, F] of a graph with adjacency A:
 *   "coupling"  baseline coupling flow: affine couplings over the feature
 *               axis whose conditioners are per-node MLPs (they ignore the
 *               graph);
 *   "gnf"       graph normalizing flow (Liu et al. 2019): the conditioners
 *               pass messages over D^-1/2 A D^-1/2;
 *   "gnf-gce"   GNF with a graph convolution exponential layer preceding
 *               every coupling layer (the paper's method).
 * The flow is, for c = 0 .. couplings-1:
 *   [actnorm] [per-node linear] [graph conv. exp. (gnf-gce)] coupling(swap = c mod 2)
 * and the base density is i.i.d. per node (standard normal, or a diagonal
 * normal with per-feature mean and log-sigma of shape {1, F}), so the
 * likelihood is permutation invariant and N may vary between calls.
 *
 * The configuration also carries the training hyper-parameters that go with
 * a model (batch, steps, learning-rate schedule), so that one config file or
 * checkpoint describes a whole run.  Every field has a key (see
 * fxp_graph_model_config_key) and a text form, for config files and
 * checkpoints.
 */
#ifndef FLOWEXP_GRAPHFLOW_H
#define FLOWEXP_GRAPHFLOW_H

#include "flowexp/layers.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

typedef enum fxp_graph_model_kind {
    FXP_GRAPH_MODEL_COUPLING = 0, /* "coupling" */
    FXP_GRAPH_MODEL_GNF = 1,      /* "gnf" */
    FXP_GRAPH_MODEL_GNF_GCE = 2   /* "gnf-gce" */
} fxp_graph_model_kind;

typedef struct fxp_graph_model_config {
    /* architecture                                                   key */
    fxp_graph_model_kind kind;  /*                                    kind */
    int features;               /* F (even)                           features */
    int couplings;              /* coupling layers, alternating halves couplings */
    int hidden;                 /* conditioner width                  hidden */
    int mlp_layers;             /* dense layers per conditioner MLP   mlp_layers */
    int rounds;                 /* message-passing rounds (gnf*)      rounds */
    fxp_graph_cond messages;    /* gnf*: mean | attention | edge       messages */
    int heads;                  /* attention heads (divide hidden)    heads */
    float scale_bound;          /* bound of the coupling log-scale    scale_bound */
    fxp_graph_act act;          /* relu | tanh | softplus             act */
    int actnorm;                /* 0/1: actnorm before each coupling  actnorm */
    int linear;                 /* 0/1: per-node F x F linear map too linear */
    int gce_terms_train;        /* series terms in training (gnf-gce) gce_terms_train */
    int gce_terms_eval;         /* series terms in evaluation         gce_terms_eval */
    float gce_coeff0;           /* ||theta0||_2 <= coeff0 / max degree gce_coeff0 */
    float gce_coeff1;           /* ||theta1||_2 <= coeff1             gce_coeff1 */
    int gce_max_degree;         /* 0: the call's; >= 1 fixed (layers.h) gce_max_degree */
    fxp_base_kind base;         /* normal | diag                      base */
    /* training (used by the training tools, not by the model)           */
    int batch;                  /* graphs per step                    batch */
    int train_steps;            /* optimizer steps                    train_steps */
    double lr;                  /* Adam learning rate                 lr */
    double lr_decay;            /* multiplied in every decay_every    lr_decay */
    int decay_every;            /* steps per decay unit               decay_every */
    int warmup;                 /* linear warm-up units (0: none)     warmup */
    double clip_norm;           /* gradient-norm clipping (0: off)    clip_norm */
} fxp_graph_model_config;

/* The tuned defaults for one kind (see the comment at the top of
 * src/models/graph_models.c for how they were chosen).  Unknown kinds give
 * the "gnf" defaults with cfg->kind set as given (fxp_graph_model_new then
 * rejects it). */
FXP_API void fxp_graph_model_config_default(fxp_graph_model_config *cfg,
                                            fxp_graph_model_kind kind);

/* Kind names: "coupling", "gnf", "gnf-gce" ("" for unknown kinds); and the
 * reverse lookup (FXP_EINVAL for an unknown name). */
FXP_API const char *fxp_graph_model_kind_name(fxp_graph_model_kind kind);
FXP_API int fxp_graph_model_kind_parse(const char *name, fxp_graph_model_kind *kind);

/* Key/value access.  Keys are the names in the struct comment; values are
 * text: integers, floats (parsed with strtod, printed with the fewest
 * digits that read back as the same float or double, so that a get/set
 * round trip is exact), and names for kind ("coupling" | "gnf" |
 * "gnf-gce"), messages ("mean" = FXP_GRAPH_COND_MP, "attention" =
 * FXP_GRAPH_COND_ATTN, "edge" = FXP_GRAPH_COND_EDGE), act ("relu" | "tanh" |
 * "softplus") and base ("normal" | "diag").  fxp_graph_model_config_set parses and range-checks one value:
 * FXP_ENOTFOUND for an unknown key, FXP_EINVAL for a malformed or
 * out-of-range value (cfg unchanged); the message is in fxp_last_error().
 * Setting "kind" changes only the kind field (the other fields keep their
 * values; start from fxp_graph_model_config_default for a kind's defaults).
 * fxp_graph_model_config_get writes the text form into buf (always
 * NUL-terminated; FXP_EINVAL if it does not fit).
 * Keys are enumerated by index: fxp_graph_model_config_key(i) for
 * i = 0 .. fxp_graph_model_config_n_keys()-1 (NULL outside), and
 * fxp_graph_model_config_key_help(i) says in one line what key i means
 * (with its named values; NULL outside).  The strings are static.
 * Thread-safe. */
FXP_API int fxp_graph_model_config_n_keys(void);
FXP_API const char *fxp_graph_model_config_key(int i);
FXP_API const char *fxp_graph_model_config_key_help(int i);
FXP_API int fxp_graph_model_config_set(fxp_graph_model_config *cfg, const char *key,
                                       const char *value);
FXP_API int fxp_graph_model_config_get(const fxp_graph_model_config *cfg, const char *key,
                                       char *buf, size_t size);

/* Check every field (FXP_EINVAL naming the first bad key and value). */
FXP_API int fxp_graph_model_config_validate(struct fxp_ctx *ctx,
                                            const fxp_graph_model_config *cfg);

/* Build the model of `cfg` (validated first): its parameters are registered
 * in ps under "flow/<i>/<layer>" (layer i of the flow: "actnorm", "gce" or
 * "coupling") and "model/base/{mean,log_sigma}", initialised from rng.  The
 * model takes examples x [B, N, F] with the adjacency in fxp_flow_io.adj
 * ([N, N] or [B, N, N]; the "coupling" kind ignores it) and
 * fxp_model_log_prob gives log p(x) per graph (sum over nodes).  Free with
 * fxp_model_free. */
FXP_API int fxp_graph_model_new(struct fxp_ctx *ctx, fxp_params *ps,
                                const fxp_graph_model_config *cfg, fxp_rng *rng,
                                fxp_model **out);

#ifdef __cplusplus
}
#endif
#endif
