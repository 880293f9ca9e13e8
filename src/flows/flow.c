/* Flow-layer dispatch and sequential composition (see flow.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "flows/flow_internal.h"

static int check_call(fxp_flow *f, fxp_tape *t, fxp_var *in, void *out, void *logdet,
                      const char *func)
{
    if (!f || !f->vt) return fxp__err(NULL, FXP_EINVAL, func, "flow is NULL");
    if (!t || !in || !out || !logdet)
        return fxp__err(f->ctx, FXP_EINVAL, func, "%s: NULL tape, input or output", f->name);
    if (in->value.ndim < 1)
        return fxp__err(f->ctx, FXP_ESHAPE, func, "%s: input must have a batch dimension",
                        f->name);
    return FXP_OK;
}

static int check_logdet(fxp_flow *f, const fxp_var *x, const fxp_var *ld, const char *func)
{
    if (!ld || ld->value.ndim != 1 || ld->value.shape[0] != x->value.shape[0])
        return fxp__err(f->ctx, FXP_EINTERNAL, func,
                        "%s (%s): layer returned a logdet that is not [%d]", f->name,
                        f->vt->kind, x->value.shape[0]);
    return FXP_OK;
}

static const fxp_flow_io no_io = { .training = 0 };

int fxp_flow_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x, fxp_var **z,
                     fxp_var **logdet)
{
    int rc = check_call(f, t, x, z, logdet, __func__);
    if (rc < 0) return rc;
    rc = f->vt->forward(f, t, io ? io : &no_io, x, z, logdet);
    if (rc < 0) return rc;
    return check_logdet(f, x, *logdet, __func__);
}

int fxp_flow_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z, fxp_var **x,
                     fxp_var **logdet)
{
    int rc = check_call(f, t, z, x, logdet, __func__);
    if (rc < 0) return rc;
    if (!f->vt->inverse)
        return FXP_ERR(f->ctx, FXP_EUNSUPPORTED, "%s (%s) has no inverse", f->name, f->vt->kind);
    rc = f->vt->inverse(f, t, io ? io : &no_io, z, x, logdet);
    if (rc < 0) return rc;
    return check_logdet(f, z, *logdet, __func__);
}

void fxp_flow_free(fxp_flow *f)
{
    if (f && f->vt && f->vt->destroy) f->vt->destroy(f);
}

const char *fxp_flow_kind(const fxp_flow *f) { return f && f->vt ? f->vt->kind : ""; }
const char *fxp_flow_name(const fxp_flow *f) { return f ? f->name : ""; }

int fxp__flow_init(fxp_flow *f, const fxp_flow_vtable *vt, fxp_ctx *ctx, const char *name)
{
    memset(f, 0, sizeof *f);
    f->vt = vt;
    f->ctx = ctx;
    if (!name || strlen(name) >= FXP_PARAM_NAME_MAX - 32)
        return FXP_ERR(ctx, FXP_EINVAL, "layer name is NULL or longer than %d characters",
                       FXP_PARAM_NAME_MAX - 33);
    strcpy(f->name, name);
    return FXP_OK;
}

int fxp__flow_param_name(const fxp_flow *f, const char *leaf, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", f->name, leaf);
    if (n < 0 || (size_t)n >= size)
        return FXP_ERR(f->ctx, FXP_EINVAL, "parameter name %s/%s too long", f->name, leaf);
    return FXP_OK;
}

int fxp__zeros(fxp_tape *t, fxp_var **out, int ndim, const int *shape)
{
    int rc = fxp_tape_var(t, out, ndim, shape);
    if (rc < 0) return rc;
    memset((*out)->value.data, 0, (size_t)fxp_tensor_numel(&(*out)->value) * sizeof(float));
    return FXP_OK;
}

int fxp__logdet_accumulate(fxp_tape *t, fxp_var **total, fxp_var *term)
{
    if (!*total) {
        *total = term;
        return FXP_OK;
    }
    return fxp_add(t, total, *total, term);
}

/* ---- sequence ------------------------------------------------------------------ */

typedef struct seq_flow {
    fxp_flow base;
    fxp_flow **children;
    int n, cap;
} seq_flow;

/* forward: x_0 = x, x_{k+1} = f_k(x_k); logdet = sum_k logdet_k. */
static int seq_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                       fxp_var **z, fxp_var **logdet)
{
    seq_flow *s = (seq_flow *)f;
    fxp_var *h = x, *total = NULL, *ld;
    int rc;
    for (int i = 0; i < s->n; i++) {
        if ((rc = fxp_flow_forward(s->children[i], t, io, h, &h, &ld)) < 0) return rc;
        if ((rc = fxp__logdet_accumulate(t, &total, ld)) < 0) return rc;
    }
    if (!total && (rc = fxp__zeros(t, &total, 1, x->value.shape)) < 0) return rc;
    *z = h;
    *logdet = total;
    return FXP_OK;
}

/* inverse: children in reverse order. */
static int seq_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                       fxp_var **x, fxp_var **logdet)
{
    seq_flow *s = (seq_flow *)f;
    fxp_var *h = z, *total = NULL, *ld;
    int rc;
    for (int i = s->n - 1; i >= 0; i--) {
        if ((rc = fxp_flow_inverse(s->children[i], t, io, h, &h, &ld)) < 0) return rc;
        if ((rc = fxp__logdet_accumulate(t, &total, ld)) < 0) return rc;
    }
    if (!total && (rc = fxp__zeros(t, &total, 1, z->value.shape)) < 0) return rc;
    *x = h;
    *logdet = total;
    return FXP_OK;
}

static void seq_destroy(fxp_flow *f)
{
    seq_flow *s = (seq_flow *)f;
    for (int i = 0; i < s->n; i++) fxp_flow_free(s->children[i]);
    free(s->children);
    free(s);
}

static const fxp_flow_vtable seq_vtable = { "seq", seq_forward, seq_inverse, seq_destroy };

int fxp_flow_seq_new(fxp_ctx *ctx, const char *name, fxp_flow **out)
{
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    seq_flow *s = calloc(1, sizeof *s);
    if (!s) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a sequence");
    int rc = fxp__flow_init(&s->base, &seq_vtable, ctx, name);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = &s->base;
    return FXP_OK;
}

int fxp_flow_seq_append(fxp_flow *seq, fxp_flow *child)
{
    if (!seq || seq->vt != &seq_vtable || !child) {
        fxp_flow_free(child);
        return FXP_ERR(seq ? seq->ctx : NULL, FXP_EINVAL, "not a sequence, or child is NULL");
    }
    seq_flow *s = (seq_flow *)seq;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        fxp_flow **c = realloc(s->children, (size_t)cap * sizeof *c);
        if (!c) {
            fxp_flow_free(child);
            return FXP_ERR(seq->ctx, FXP_ENOMEM, "cannot grow sequence %s", seq->name);
        }
        s->children = c;
        s->cap = cap;
    }
    s->children[s->n++] = child;
    return FXP_OK;
}

int fxp_flow_seq_length(const fxp_flow *seq)
{
    return seq && seq->vt == &seq_vtable ? ((const seq_flow *)seq)->n : 0;
}

fxp_flow *fxp_flow_seq_at(const fxp_flow *seq, int i)
{
    if (!seq || seq->vt != &seq_vtable) return NULL;
    const seq_flow *s = (const seq_flow *)seq;
    return i >= 0 && i < s->n ? s->children[i] : NULL;
}

/* ---- inverted layer ------------------------------------------------------------ */

typedef struct inverted_flow {
    fxp_flow base;
    fxp_flow *inner;
} inverted_flow;

static int inverted_forward(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *x,
                            fxp_var **z, fxp_var **logdet)
{
    return fxp_flow_inverse(((inverted_flow *)f)->inner, t, io, x, z, logdet);
}

static int inverted_inverse(fxp_flow *f, fxp_tape *t, const fxp_flow_io *io, fxp_var *z,
                            fxp_var **x, fxp_var **logdet)
{
    return fxp_flow_forward(((inverted_flow *)f)->inner, t, io, z, x, logdet);
}

static void inverted_destroy(fxp_flow *f)
{
    fxp_flow_free(((inverted_flow *)f)->inner);
    free(f);
}

static const fxp_flow_vtable inverted_vtable = { "inverted", inverted_forward, inverted_inverse,
                                                 inverted_destroy };

int fxp_flow_inverted_new(fxp_ctx *ctx, const char *name, fxp_flow *inner, fxp_flow **out)
{
    if (!inner || !out) {
        fxp_flow_free(inner);
        return FXP_ERR(ctx, FXP_EINVAL, "inner layer or out is NULL");
    }
    inverted_flow *w = calloc(1, sizeof *w);
    if (!w) {
        fxp_flow_free(inner);
        return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate an inverted layer");
    }
    int rc = fxp__flow_init(&w->base, &inverted_vtable, ctx, name);
    if (rc < 0) {
        fxp_flow_free(inner);
        free(w);
        return rc;
    }
    w->inner = inner;
    *out = &w->base;
    return FXP_OK;
}

fxp_flow *fxp_flow_inverted_inner(const fxp_flow *f)
{
    return f && f->vt == &inverted_vtable ? ((const inverted_flow *)f)->inner : NULL;
}
