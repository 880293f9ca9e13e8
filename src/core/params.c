/* Named parameters and layer state in two flat blocks (see params.h). */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

struct fxp_param {
    char name[FXP_PARAM_NAME_MAX];
    int kind, ndim, shape[FXP_MAX_DIMS];
    size_t offset, size;
    fxp_params *owner;
};

struct fxp_params {
    fxp_ctx *ctx;
    fxp_param **entries;
    int n, cap;
    float *block[2];    /* [FXP_PARAM_TRAINABLE], [FXP_PARAM_STATE] */
    size_t used[2], capacity[2];
    float *grad;        /* same layout as block[FXP_PARAM_TRAINABLE] */
};

int fxp_params_new(fxp_ctx *ctx, fxp_params **out)
{
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate a parameter set");
    (*out)->ctx = ctx;
    return FXP_OK;
}

void fxp_params_free(fxp_params *ps)
{
    if (!ps) return;
    for (int i = 0; i < ps->n; i++) free(ps->entries[i]);
    free(ps->entries);
    free(ps->block[0]);
    free(ps->block[1]);
    free(ps->grad);
    free(ps);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= FXP_PARAM_NAME_MAX || s[0] == '/' || s[n - 1] == '/') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '/' || c == '-';
        if (!ok || (c == '/' && s[i + 1] == '/')) return 0;
    }
    return 1;
}

/* Grow block `kind` (and the gradient block with the trainable one) to hold
 * `need` floats; new memory is zeroed. */
static int reserve(fxp_params *ps, int kind, size_t need)
{
    if (need <= ps->capacity[kind]) return 0;
    size_t cap = ps->capacity[kind] ? ps->capacity[kind] : 1024;
    while (cap < need) cap *= 2;
    float *b = realloc(ps->block[kind], cap * sizeof(float));
    if (!b) return -1;
    memset(b + ps->capacity[kind], 0, (cap - ps->capacity[kind]) * sizeof(float));
    ps->block[kind] = b;
    if (kind == FXP_PARAM_TRAINABLE) {
        float *g = realloc(ps->grad, cap * sizeof(float));
        if (!g) return -1; /* block already grown: harmless, capacity not updated */
        memset(g + ps->capacity[kind], 0, (cap - ps->capacity[kind]) * sizeof(float));
        ps->grad = g;
    }
    ps->capacity[kind] = cap;
    return 0;
}

int fxp_params_add(fxp_params *ps, const char *name, int kind, int ndim, const int *shape,
                   fxp_param **out)
{
    FXP_API_SCOPE();
    if (!ps || !name) return FXP_ERR(ps ? ps->ctx : NULL, FXP_EINVAL, "ps or name is NULL");
    fxp_ctx *ctx = ps->ctx;
    if (!valid_name(name))
        return FXP_ERR(ctx, FXP_EINVAL, "invalid parameter name \"%s\"", name);
    if (kind != FXP_PARAM_TRAINABLE && kind != FXP_PARAM_STATE)
        return FXP_ERR(ctx, FXP_EINVAL, "parameter \"%s\": unknown kind %d", name, kind);
    int rc = fxp__check_shape(ctx, __func__, name, ndim, shape);
    if (rc < 0) return rc;
    if (fxp_params_find(ps, name))
        return FXP_ERR(ctx, FXP_EINVAL, "parameter \"%s\" is already registered", name);

    fxp_param *p = calloc(1, sizeof *p);
    if (!p) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate parameter \"%s\"", name);
    strcpy(p->name, name);
    p->kind = kind;
    p->ndim = ndim;
    p->size = 1;
    for (int i = 0; i < FXP_MAX_DIMS; i++) {
        p->shape[i] = i < ndim ? shape[i] : 1;
        p->size *= (size_t)p->shape[i];
    }
    p->offset = ps->used[kind];
    p->owner = ps;
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 32;
        fxp_param **e = realloc(ps->entries, (size_t)cap * sizeof *e);
        if (!e) {
            free(p);
            return FXP_ERR(ctx, FXP_ENOMEM, "cannot grow the parameter table");
        }
        ps->entries = e;
        ps->cap = cap;
    }
    if (reserve(ps, kind, ps->used[kind] + p->size) < 0) {
        free(p);
        return FXP_ERR(ctx, FXP_ENOMEM, "cannot grow the parameter block for \"%s\"", name);
    }
    ps->used[kind] += p->size;
    ps->entries[ps->n++] = p;
    if (out) *out = p;
    return FXP_OK;
}

int fxp_params_count(const fxp_params *ps) { return ps ? ps->n : 0; }

fxp_param *fxp_params_at(const fxp_params *ps, int i)
{
    return ps && i >= 0 && i < ps->n ? ps->entries[i] : NULL;
}

fxp_param *fxp_params_find(const fxp_params *ps, const char *name)
{
    if (!ps || !name) return NULL;
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->entries[i]->name, name) == 0) return ps->entries[i];
    return NULL;
}

size_t fxp_params_size(const fxp_params *ps, int kind)
{
    return ps && (kind == 0 || kind == 1) ? ps->used[kind] : 0;
}

float *fxp_params_data(const fxp_params *ps, int kind)
{
    return ps && (kind == 0 || kind == 1) ? ps->block[kind] : NULL;
}

float *fxp_params_grad_data(const fxp_params *ps) { return ps ? ps->grad : NULL; }

void fxp_params_zero_grad(fxp_params *ps)
{
    if (ps && ps->grad) memset(ps->grad, 0, ps->used[FXP_PARAM_TRAINABLE] * sizeof(float));
}

const char *fxp_param_name(const fxp_param *p) { return p->name; }
int fxp_param_kind(const fxp_param *p) { return p->kind; }
size_t fxp_param_offset(const fxp_param *p) { return p->offset; }

fxp_tensor fxp_param_value(const fxp_param *p)
{
    return fxp_tensor_wrap(p->owner->block[p->kind] + p->offset, p->ndim, p->shape);
}

float *fxp_param_grad(const fxp_param *p)
{
    return p->kind == FXP_PARAM_TRAINABLE ? p->owner->grad + p->offset : NULL;
}
