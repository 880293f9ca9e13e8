/* libflowexp: the flow framework — layers, composition, base densities,
 * models.
 *
 * A flow layer is a bijection x -> z with a tractable log-determinant.  Layers
 * are objects behind a small vtable; every layer works on tape variables, so
 * the same code trains (gradients on) and evaluates or samples (gradients
 * off).  Layers know nothing about the data's shape beyond what they
 * transform: image layers take NCHW [B, C, H, W], graph layers [B, N, F] plus
 * an adjacency in fxp_flow_io.
 *
 * Conventions
 *  - forward: z = f(x) and logdet[b] = log|det df/dx| for example b, a [B]
 *    variable (zeros for volume-preserving layers).
 *  - inverse: x = f^-1(z) and logdet[b] = log|det df^-1/dz| = -(forward
 *    logdet at x).
 *  - Parameters and layer state are registered in an fxp_params under
 *    "<layer name>/<parameter>" when the layer is created; initial values are
 *    drawn from the rng passed to the constructor.  Layer names are the
 *    checkpoint paths ("flow/3/gce").
 *  - io->training != 0 marks a training forward: spectral-norm power
 *    iterations advance and data-dependent initialisations run.  Evaluation
 *    and sampling pass training = 0.
 * Layers are not thread-safe; a layer may be used by one tape at a time.
 */
#ifndef FLOWEXP_FLOW_H
#define FLOWEXP_FLOW_H

#include "flowexp/rng.h"
#include "flowexp/tape.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;

/* The parts that multi-scale flows factor out (split priors, layers.h /
 * image.h).  A dimension-reducing layer maps x to a smaller z and adds the
 * log-density of the part it factors out to its logdet, so a flow's logdet
 * plus the base log-density of z is log p(x).  When fxp_flow_io.latents is
 * set:
 *  - forward APPENDS each factored-out part in its standardised form (the
 *    N(0, I) variable eps the layer's prior is a change of variables of) to
 *    z[], and the log-density that the layer added to its logdet to
 *    log_prob[] ([B] each);
 *  - inverse POPS them (the last appended first) instead of drawing new
 *    ones, so inverse(forward(x)) reproduces x exactly, and a caller can
 *    decode given noise.
 * Without latents, inverse draws eps from io->rng scaled by io->temperature
 * (FXP_EINVAL if io->rng is NULL). */
#define FXP_LATENTS_MAX 32
typedef struct fxp_latents {
    int n;                               /* entries in use */
    fxp_var *z[FXP_LATENTS_MAX];         /* factored-out eps, [B, ...] */
    fxp_var *log_prob[FXP_LATENTS_MAX];  /* [B]: the density term in the layer's logdet */
} fxp_latents;

/* Per-call inputs other than the data.  Zero-initialise it and set what is
 * used: { .training = 1 } for a training forward of an image flow. */
typedef struct fxp_flow_io {
    int training;              /* training forward (see above) */
    const fxp_tensor *adj;     /* graphs: adjacency [N,N] (shared) or [B,N,N], zero
                                  diagonal, symmetric weights >= 0; NULL for images */
    fxp_var *context;          /* optional conditioning features; NULL if unused */
    fxp_latents *latents;      /* optional: factored-out parts (see above) */
    fxp_rng *rng;              /* inverse of dimension-reducing layers without latents:
                                  draws their factored-out parts */
    float temperature;         /* ... scaled by this (1 = the model; used with rng only) */
} fxp_flow_io;

typedef struct fxp_flow fxp_flow;

typedef struct fxp_flow_vtable {
    const char *kind; /* "graph_conv_exp", "affine_coupling", "seq", ... */
    int (*forward)(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x, fxp_var **z,
                   fxp_var **logdet);
    int (*inverse)(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z, fxp_var **x,
                   fxp_var **logdet);
    void (*destroy)(fxp_flow *f); /* frees the layer itself */
} fxp_flow_vtable;

/* The common head of every layer object (layers embed it first). */
struct fxp_flow {
    const fxp_flow_vtable *vt;
    struct fxp_ctx *ctx;
    char name[FXP_PARAM_NAME_MAX];
};

/* Dispatch with argument checks (NULLs, batch size of logdet). */
FXP_API int fxp_flow_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                             fxp_var **z, fxp_var **logdet);
FXP_API int fxp_flow_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                             fxp_var **x, fxp_var **logdet);
/* fxp_flow_free(NULL) is a no-op. */
FXP_API void fxp_flow_free(fxp_flow *f);
FXP_API const char *fxp_flow_kind(const fxp_flow *f);
FXP_API const char *fxp_flow_name(const fxp_flow *f);

/* ---- checking a layer ------------------------------------------------------- */

typedef struct fxp_flow_check_result {
    int dims;               /* D: elements per example of x */
    double roundtrip_err;   /* max |f^-1(f(x)) - x| / max(1, max |x|) over the batch */
    double logdet_sum_err;  /* max_b |logdet_f(x_b) + logdet_f^-1(f(x)_b)| */
    double logdet;          /* example 0: the layer's logdet minus the log-densities of
                               the parts it factored out (latents) */
    double logdet_brute;    /* example 0: log|det J| of x -> (z, factored-out eps), J by
                               central differences, LU in double */
    double logdet_err;      /* |logdet - logdet_brute| */
    double jacobian_max;    /* max |J_ij|, for scaling tolerances */
    int kink_columns;       /* columns where the two step sizes disagreed (see below) */
} fxp_flow_check_result;

/* Check a layer (or a whole flow) numerically on x [B, ...] (gradients off,
 * io->training ignored: evaluation mode), without changing parameters or
 * layer state:
 *  - round trip: z = f(x), x' = f^-1(z) with the factored-out parts of z
 *    fed back through fxp_flow_io.latents; the logdets of both directions
 *    must cancel;
 *  - log-determinant: the D x D Jacobian of example 0's map
 *    x -> (z, eps_1, ..., eps_k) by central differences with the steps
 *    h' = h * max(1, rms(x_0)) (h <= 0: 1e-2) and h'/4, all 4D perturbed
 *    copies in one forward of batch 4D, and its log|det| by LU with
 *    partial pivoting in double, against the layer's logdet.  Where the two
 *    steps agree (to 1% of the column's scale) Richardson extrapolation
 *    removes their O(h^2) error; where they do not, a kink (ReLU) lies
 *    within h' of x_0 and the column from the smaller step is used
 *    (counted in kink_columns).
 * io supplies the adjacency or context the layer needs (its latents, rng
 * and temperature are ignored); a context [B, ...] is used as is for the
 * round trip and its first row is repeated for the 2D perturbed copies; a
 * per-graph adjacency [B, N, N] likewise.
 * Cost: one forward of batch 4D + one of batch B and one inverse; memory
 * O(D^2) doubles (FXP_EINVAL for D > 4096).  The result says how well the
 * identities hold; choosing tolerances is the caller's (errors of the
 * differences scale with h^2 and with float rounding / h). */
FXP_API int fxp_flow_check(struct fxp_ctx *ctx, fxp_flow *f, const fxp_flow_io *io,
                           const fxp_tensor *x, float h, fxp_flow_check_result *result);

/* ---- composition ------------------------------------------------------------ */

/* An empty sequence named `name`. Children run in order in forward and in
 * reverse order in inverse; logdets add up. */
FXP_API int fxp_flow_seq_new(struct fxp_ctx *ctx, const char *name, fxp_flow **out);
/* Append a layer; the sequence takes ownership (also on failure). */
FXP_API int fxp_flow_seq_append(fxp_flow *seq, fxp_flow *child);
FXP_API int fxp_flow_seq_length(const fxp_flow *seq);
FXP_API fxp_flow *fxp_flow_seq_at(const fxp_flow *seq, int i);

/* A layer run backwards (the authors' ReverseTransformation): its forward
 * is inner's inverse and its inverse is inner's forward, with their logdets
 * (so the conventions above still hold for the wrapper).  Use it where a
 * flow should run a layer in its cheap direction when sampling, e.g. the
 * mixing layers inside a variational dequantiser.  It registers no
 * parameters (inner's keep their names); io is passed through unchanged.
 * Takes ownership of inner (also on failure); FXP_EINVAL if inner or out is
 * NULL or the name is too long.  Kind "inverted". */
FXP_API int fxp_flow_inverted_new(struct fxp_ctx *ctx, const char *name, fxp_flow *inner,
                                  fxp_flow **out);
/* The wrapped layer of an inverted layer (NULL for other layers). */
FXP_API fxp_flow *fxp_flow_inverted_inner(const fxp_flow *f);

/* ---- base densities and models ---------------------------------------------- */

typedef enum fxp_base_kind {
    FXP_BASE_STANDARD_NORMAL = 0, /* N(0, I) */
    FXP_BASE_DIAG_NORMAL = 1      /* N(mu, diag(sigma^2)), mu and log sigma learned,
                                     initialised to 0, shared along broadcast dims */
} fxp_base_kind;

typedef struct fxp_model fxp_model;

/* A model p(x) = p_base(f(x)) |det df/dx| over examples with event_ndim
 * dimensions (e.g. 2 for graphs [N, F], 3 for images [C, H, W]).  For
 * FXP_BASE_DIAG_NORMAL, `param_shape` (event_ndim entries) is the shape of the
 * learned mean and log-sigma: each entry 1 (shared along that dimension) or
 * the event's size, e.g. {1, F} per feature for graphs (so the node count may
 * vary between calls) or {C, 1, 1} per channel for images; they are
 * registered as "<name>/base/mean" and "<name>/base/log_sigma" with a leading
 * 1 for the batch.  For FXP_BASE_STANDARD_NORMAL param_shape is ignored (may
 * be NULL).  The model takes ownership of `flow` (also on failure). */
FXP_API int fxp_model_new(struct fxp_ctx *ctx, fxp_params *ps, const char *name, fxp_flow *flow,
                          fxp_base_kind base, int event_ndim, const int *param_shape,
                          fxp_model **out);
FXP_API void fxp_model_free(fxp_model *m);
FXP_API fxp_flow *fxp_model_flow(const fxp_model *m);

/* log p(x) per example: out [B] (nats). */
FXP_API int fxp_model_log_prob(fxp_model *m, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                               fxp_var **log_prob);

/* Draw n examples of shape `event_shape` (event_ndim from fxp_model_new):
 * z ~ base with its scale multiplied by `temperature` (1 = the model), then
 * x = f^-1(z). Uses `rng` (and io->rng, io->temperature for the layers that
 * draw in their inverse: pass the same stream and temperature there). */
FXP_API int fxp_model_sample(fxp_model *m, fxp_tape *t, const fxp_flow_io *io, int n,
                             const int *event_shape, float temperature, fxp_rng *rng,
                             fxp_var **x);

/* x = f^-1(z) for the base draw z = mu + sigma eps given as eps [n, event]
 * (standard normal noise; z = eps for the standard normal base). */
FXP_API int fxp_model_decode(fxp_model *m, fxp_tape *t, const fxp_flow_io *io, fxp_var *eps,
                             fxp_var **x);

#ifdef __cplusplus
}
#endif
#endif
