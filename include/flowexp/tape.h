/* libflowexp: reverse-mode automatic differentiation on a tape.
 *
 * A tape is a Wengert list.  Each op (fxp_add, fxp_conv2d, ... in ops.h)
 * allocates its output variable from the tape's arena, computes it, and — if
 * gradients are enabled and some input requires a gradient — records a node
 * {backward function, inputs, output, saved data}.  fxp_tape_backward() walks
 * the nodes in reverse order; each backward function ADDS its contribution to
 * the gradients of its inputs (x->grad += ...), so a variable used twice
 * receives the sum.
 *
 * Memory: variables, nodes, saved data and gradients all live in the tape's
 * arena.  fxp_tape_reset() forgets them in O(1) and keeps the memory, so a
 * training loop allocates only during its first step.
 *
 * Parameters (params.h) enter a tape with fxp_tape_param(): the variable's
 * value is a view of the parameter block and its gradient accumulates
 * straight into the parameter's gradient block (zero it with
 * fxp_params_zero_grad before each step).
 *
 * No-grad mode (fxp_tape_set_grad_enabled(t, 0)) runs the same ops without
 * recording anything: use it for evaluation and sampling.
 *
 * Writing an op with a hand-written backward
 * ------------------------------------------
 *     static int scale_backward(fxp_tape *t, const fxp_node *n) {
 *         const float s = *(const float *)n->saved;
 *         fxp_var *x = n->in[0];
 *         if (x->grad)                        // dL/dx += s * dL/dy
 *             for (int64_t i = 0; i < fxp_tensor_numel(&x->value); i++)
 *                 x->grad[i] += s * n->out->grad[i];
 *         return FXP_OK;
 *     }
 *     int my_scale(fxp_tape *t, fxp_var **out, fxp_var *x, float s) {
 *         fxp_var *y;
 *         int rc = fxp_tape_var(t, &y, x->value.ndim, x->value.shape);
 *         if (rc < 0) return rc;
 *         for (int64_t i = 0; i < fxp_tensor_numel(&x->value); i++)
 *             y->value.data[i] = s * x->value.data[i];
 *         if (fxp_tape_needs_grad(t, 1, &x)) {      // save only when recording
 *             float *saved = fxp_tape_alloc(t, sizeof *saved);
 *             if (!saved) return FXP_ENOMEM;
 *             *saved = s;
 *             rc = fxp_tape_record(t, "my_scale", scale_backward, y, 1, &x, saved);
 *             if (rc < 0) return rc;
 *         }
 *         *out = y;
 *         return FXP_OK;
 *     }
 * Backward functions see a non-NULL in[k]->grad exactly for the inputs that
 * require a gradient, and out->grad is always non-NULL.  Check your backward
 * with fxp_gradcheck().
 */
#ifndef FLOWEXP_TAPE_H
#define FLOWEXP_TAPE_H

#include "flowexp/common.h"
#include "flowexp/tensor.h"
#include "flowexp/params.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fxp_ctx;
typedef struct fxp_tape fxp_tape;

/* A variable: a value, and the gradient of the loss w.r.t. it (same shape;
 * NULL until backward if it requires no gradient). */
typedef struct fxp_var {
    fxp_tensor value;
    float *grad;
    int requires_grad;
} fxp_var;

#define FXP_NODE_MAX_IN 6

typedef struct fxp_node fxp_node;
typedef int (*fxp_backward_fn)(fxp_tape *t, const fxp_node *node);

struct fxp_node {
    const char *name;            /* op name, for error messages */
    fxp_backward_fn backward;
    fxp_var *out;
    fxp_var *in[FXP_NODE_MAX_IN];
    int n_in;
    void *saved;                 /* op-specific, from fxp_tape_alloc */
};

/* Create / free a tape bound to a context (the context must outlive it). */
FXP_API int fxp_tape_new(struct fxp_ctx *ctx, fxp_tape **out);
FXP_API void fxp_tape_free(fxp_tape *t);

/* Forget all variables and nodes; keep (and consolidate) the memory. Every
 * fxp_var and fxp_tape_alloc pointer from this tape becomes invalid. */
FXP_API void fxp_tape_reset(fxp_tape *t);

FXP_API struct fxp_ctx *fxp_tape_ctx(const fxp_tape *t);

/* Gradient recording on (default) or off. */
FXP_API void fxp_tape_set_grad_enabled(fxp_tape *t, int enabled);
FXP_API int fxp_tape_grad_enabled(const fxp_tape *t);

/* Memory-saving backpropagation (off by default).  Ops that can recompute
 * what their backward needs from their own inputs then keep only those
 * inputs on the tape and recompute the rest during fxp_tape_backward: the
 * convolution exponential (fxp_expm_conv with a fixed number of terms and
 * zero padding) its series terms, the image couplings' DenseNets the
 * activations inside each dense layer.  Gradients are bit-identical for a
 * given thread count; the backward costs one more convolution per series
 * term and per dense layer's 1x1 convolution, and the tape of an image flow
 * holds several times less.  The setting applies to ops recorded after it
 * is changed. */
FXP_API void fxp_tape_set_save_memory(fxp_tape *t, int enabled);
FXP_API int fxp_tape_save_memory(const fxp_tape *t);

/* A new variable with uninitialised values, requiring no gradient. */
FXP_API int fxp_tape_var(fxp_tape *t, fxp_var **out, int ndim, const int *shape);

/* A variable over existing data (no copy; the data must stay alive until the
 * tape is reset). requires_grad != 0 asks for x's gradient: after backward
 * it is in (*out)->grad. */
FXP_API int fxp_tape_input(fxp_tape *t, fxp_var **out, const fxp_tensor *x, int requires_grad);

/* A variable viewing a parameter. Trainable parameters require a gradient
 * (when recording) that accumulates into the parameter's gradient block. */
FXP_API int fxp_tape_param(fxp_tape *t, fxp_var **out, fxp_param *p);

/* Nonzero iff recording is on and one of the n inputs requires a gradient,
 * i.e. iff fxp_tape_record would record a node. */
FXP_API int fxp_tape_needs_grad(const fxp_tape *t, int n_in, fxp_var *const *in);

/* Record a node producing `out` from n_in <= FXP_NODE_MAX_IN inputs. Sets
 * out->requires_grad. Does nothing (and succeeds) when no gradient is
 * needed. `name` must be a string constant. */
FXP_API int fxp_tape_record(fxp_tape *t, const char *name, fxp_backward_fn backward,
                            fxp_var *out, int n_in, fxp_var *const *in, void *saved);

/* Arena memory (64-byte aligned) valid until fxp_tape_reset; NULL (and an
 * FXP_ENOMEM error in the context) if out of memory. */
FXP_API void *fxp_tape_alloc(fxp_tape *t, size_t bytes);

/* Back-propagate from `loss`. If seed is NULL, loss must hold one element and
 * its gradient is seeded with 1; otherwise seed holds numel(loss) values.
 * Gradients of earlier backward calls on the same tape are added to. */
FXP_API int fxp_tape_backward(fxp_tape *t, fxp_var *loss, const float *seed);

/* Nodes recorded since the last reset, arena bytes in use now, and the
 * largest arena footprint seen since the tape was created. */
FXP_API int fxp_tape_n_nodes(const fxp_tape *t);
FXP_API size_t fxp_tape_bytes_in_use(const fxp_tape *t);
FXP_API size_t fxp_tape_bytes_peak(const fxp_tape *t);

/* ---- gradient checking ------------------------------------------------- */

/* Builds the function under test on tape t from n inputs; writes its output. */
typedef int (*fxp_gradcheck_fn)(fxp_tape *t, fxp_var *const *in, fxp_var **out, void *user);

typedef struct fxp_gradcheck_result {
    double max_abs_err;   /* max |analytic - numeric| over checked elements */
    double max_rel_err;   /* max |a - n| / max(|a|, |n|, floor), see below */
    int worst_input;      /* input holding the worst element */
    int64_t worst_index;  /* its flat index */
    double worst_analytic, worst_numeric;
} fxp_gradcheck_result;

/* Compare backward() with central finite differences of
 *     L = sum_i r_i * out_i,  r_i ~ N(0,1) fixed,
 * for every element of every input whose wrt[k] is nonzero (wrt NULL: all).
 * eps is the step (0: 1e-2 scaled by max(1,|x|)). The relative error uses
 * floor = 1e-3 * max|numeric| + 1e-6 so that tiny gradients do not dominate.
 * Inputs are perturbed in place and restored. The function runs 2 * (number
 * of checked elements) + 1 times, so keep inputs tiny. */
FXP_API int fxp_gradcheck(struct fxp_ctx *ctx, fxp_gradcheck_fn fn, void *user, int n_in,
                          fxp_tensor *const *inputs, const int *wrt, float eps,
                          fxp_gradcheck_result *result);

#ifdef __cplusplus
}
#endif
#endif
