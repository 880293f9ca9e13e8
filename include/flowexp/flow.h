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

/* Per-call inputs other than the data. */
typedef struct fxp_flow_io {
    int training;              /* training forward (see above) */
    const fxp_tensor *adj;     /* graphs: adjacency [N,N] (shared) or [B,N,N], zero
                                  diagonal, symmetric weights >= 0; NULL for images */
    fxp_var *context;          /* optional conditioning features; NULL if unused */
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

/* ---- composition ------------------------------------------------------------ */

/* An empty sequence named `name`. Children run in order in forward and in
 * reverse order in inverse; logdets add up. */
FXP_API int fxp_flow_seq_new(struct fxp_ctx *ctx, const char *name, fxp_flow **out);
/* Append a layer; the sequence takes ownership (also on failure). */
FXP_API int fxp_flow_seq_append(fxp_flow *seq, fxp_flow *child);
FXP_API int fxp_flow_seq_length(const fxp_flow *seq);
FXP_API fxp_flow *fxp_flow_seq_at(const fxp_flow *seq, int i);

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
 * x = f^-1(z). Uses `rng`. */
FXP_API int fxp_model_sample(fxp_model *m, fxp_tape *t, const fxp_flow_io *io, int n,
                             const int *event_shape, float temperature, fxp_rng *rng,
                             fxp_var **x);

#ifdef __cplusplus
}
#endif
#endif
