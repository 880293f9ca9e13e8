/* Reverse-mode autodiff tape (see tape.h). */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

struct fxp_tape {
    fxp_ctx *ctx;
    fxp__arena arena;   /* variables, saved data, gradients */
    fxp_node *nodes;    /* kept across resets; only the count is reset */
    int n_nodes, cap_nodes;
    int grad_enabled;
    int save_memory;
};

int fxp_tape_new(fxp_ctx *ctx, fxp_tape **out)
{
    FXP_API_SCOPE();
    if (!ctx || !out) return FXP_ERR(ctx, FXP_EINVAL, "ctx or out is NULL");
    fxp_tape *t = calloc(1, sizeof *t);
    if (!t) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a tape");
    t->ctx = ctx;
    t->grad_enabled = 1;
    fxp__arena_init(&t->arena);
    *out = t;
    return FXP_OK;
}

void fxp_tape_free(fxp_tape *t)
{
    FXP_API_SCOPE();
    if (!t) return;
    fxp__arena_destroy(&t->arena);
    free(t->nodes);
    free(t);
}

void fxp_tape_reset(fxp_tape *t)
{
    FXP_API_SCOPE();
    fxp__arena_reset(&t->arena);
    t->n_nodes = 0;
}

fxp_ctx *fxp_tape_ctx(const fxp_tape *t) { return t->ctx; }
void fxp_tape_set_grad_enabled(fxp_tape *t, int enabled) { t->grad_enabled = enabled != 0; }
int fxp_tape_grad_enabled(const fxp_tape *t) { return t->grad_enabled; }
void fxp_tape_set_save_memory(fxp_tape *t, int enabled) { t->save_memory = enabled != 0; }
int fxp_tape_save_memory(const fxp_tape *t) { return t->save_memory; }
int fxp_tape_n_nodes(const fxp_tape *t) { return t->n_nodes; }
size_t fxp_tape_bytes_in_use(const fxp_tape *t) { return t->arena.in_use; }
size_t fxp_tape_bytes_peak(const fxp_tape *t) { return t->arena.peak; }

void *fxp_tape_alloc(fxp_tape *t, size_t bytes)
{
    FXP_API_SCOPE();
    void *p = fxp__arena_alloc(&t->arena, bytes);
    if (!p) FXP_ERR(t->ctx, FXP_ENOMEM, "tape arena: cannot allocate %zu bytes", bytes);
    return p;
}

int fxp_tape_var(fxp_tape *t, fxp_var **out, int ndim, const int *shape)
{
    FXP_API_SCOPE();
    int rc = fxp__check_shape(t->ctx, __func__, "variable", ndim, shape);
    if (rc < 0) return rc;
    fxp_var *v = fxp_tape_alloc(t, sizeof *v);
    if (!v) return FXP_ENOMEM;
    memset(v, 0, sizeof *v);
    v->value = fxp_tensor_wrap(NULL, ndim, shape);
    v->value.data = fxp_tape_alloc(t, (size_t)fxp_tensor_numel(&v->value) * sizeof(float));
    if (!v->value.data) return FXP_ENOMEM;
    *out = v;
    return FXP_OK;
}

int fxp_tape_input(fxp_tape *t, fxp_var **out, const fxp_tensor *x, int requires_grad)
{
    FXP_API_SCOPE();
    if (!x || !x->data) return FXP_ERR(t->ctx, FXP_EINVAL, "input tensor is NULL or has no data");
    int rc = fxp__check_shape(t->ctx, __func__, "input", x->ndim, x->shape);
    if (rc < 0) return rc;
    fxp_var *v = fxp_tape_alloc(t, sizeof *v);
    if (!v) return FXP_ENOMEM;
    memset(v, 0, sizeof *v);
    v->value = fxp_tensor_wrap(x->data, x->ndim, x->shape);
    v->requires_grad = requires_grad && t->grad_enabled;
    *out = v;
    return FXP_OK;
}

int fxp_tape_param(fxp_tape *t, fxp_var **out, fxp_param *p)
{
    FXP_API_SCOPE();
    if (!p) return FXP_ERR(t->ctx, FXP_EINVAL, "parameter is NULL");
    fxp_var *v = fxp_tape_alloc(t, sizeof *v);
    if (!v) return FXP_ENOMEM;
    memset(v, 0, sizeof *v);
    v->value = fxp_param_value(p);
    if (fxp_param_kind(p) == FXP_PARAM_TRAINABLE && t->grad_enabled) {
        v->requires_grad = 1;
        v->grad = fxp_param_grad(p); /* accumulates into the parameter block */
    }
    *out = v;
    return FXP_OK;
}

int fxp_tape_needs_grad(const fxp_tape *t, int n_in, fxp_var *const *in)
{
    if (!t->grad_enabled) return 0;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->requires_grad) return 1;
    return 0;
}

int fxp_tape_record(fxp_tape *t, const char *name, fxp_backward_fn backward, fxp_var *out,
                    int n_in, fxp_var *const *in, void *saved)
{
    FXP_API_SCOPE();
    if (n_in < 0 || n_in > FXP_NODE_MAX_IN)
        return FXP_ERR(t->ctx, FXP_EINVAL, "%s: %d inputs (at most %d)", name, n_in,
                       FXP_NODE_MAX_IN);
    if (!fxp_tape_needs_grad(t, n_in, in)) {
        out->requires_grad = 0;
        return FXP_OK;
    }
    if (!backward) return FXP_ERR(t->ctx, FXP_EINVAL, "%s: no backward function", name);
    if (t->n_nodes == t->cap_nodes) {
        int cap = t->cap_nodes ? 2 * t->cap_nodes : 256;
        fxp_node *n = realloc(t->nodes, (size_t)cap * sizeof *n);
        if (!n) return FXP_ERR(t->ctx, FXP_ENOMEM, "cannot grow the tape to %d nodes", cap);
        t->nodes = n;
        t->cap_nodes = cap;
    }
    fxp_node *node = &t->nodes[t->n_nodes++];
    memset(node, 0, sizeof *node);
    node->name = name;
    node->backward = backward;
    node->out = out;
    node->n_in = n_in;
    for (int i = 0; i < n_in; i++) node->in[i] = in[i];
    node->saved = saved;
    out->requires_grad = 1;
    return FXP_OK;
}

/* Give v a zeroed gradient buffer if it requires one and has none yet. */
static int ensure_grad(fxp_tape *t, fxp_var *v)
{
    if (!v || !v->requires_grad || v->grad) return FXP_OK;
    size_t bytes = (size_t)fxp_tensor_numel(&v->value) * sizeof(float);
    v->grad = fxp_tape_alloc(t, bytes);
    if (!v->grad) return FXP_ENOMEM;
    memset(v->grad, 0, bytes);
    return FXP_OK;
}

int fxp_tape_backward(fxp_tape *t, fxp_var *loss, const float *seed)
{
    FXP_API_SCOPE();
    if (!loss) return FXP_ERR(t->ctx, FXP_EINVAL, "loss is NULL");
    if (!loss->requires_grad)
        return FXP_ERR(t->ctx, FXP_ESTATE,
                       "loss does not depend on anything that requires a gradient "
                       "(or it was computed with gradients disabled)");
    int64_t n = fxp_tensor_numel(&loss->value);
    if (!seed && n != 1)
        return FXP_ERR(t->ctx, FXP_ESHAPE,
                       "loss has %lld elements; pass a seed gradient for non-scalar outputs",
                       (long long)n);
    /* Every variable that takes part gets its buffer before the walk, so
     * backward functions only test in[k]->grad for NULL. */
    int rc;
    for (int i = 0; i < t->n_nodes; i++) {
        fxp_node *node = &t->nodes[i];
        if ((rc = ensure_grad(t, node->out)) < 0) return rc;
        for (int k = 0; k < node->n_in; k++)
            if ((rc = ensure_grad(t, node->in[k])) < 0) return rc;
    }
    if ((rc = ensure_grad(t, loss)) < 0) return rc;
    for (int64_t i = 0; i < n; i++) loss->grad[i] += seed ? seed[i] : 1.0f;

    for (int i = t->n_nodes - 1; i >= 0; i--) {
        const fxp_node *node = &t->nodes[i];
        rc = node->backward(t, node);
        if (rc < 0) {
            if (fxp_ctx_status(t->ctx) != rc)
                FXP_ERR(t->ctx, rc, "backward of %s failed", node->name);
            return rc;
        }
    }
    return FXP_OK;
}
