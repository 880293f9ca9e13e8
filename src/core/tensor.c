/* Dense float32 tensors: allocation, views, checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

int64_t fxp_tensor_numel(const fxp_tensor *t)
{
    if (!t || t->ndim < 0 || t->ndim > FXP_MAX_DIMS) return -1;
    return fxp__numel(t->ndim, t->shape);
}

int64_t fxp__numel(int ndim, const int *dims)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n = fxp__mul_limit(n, dims[i]);
    return n;
}

int fxp__check_shape(fxp_ctx *ctx, const char *func, const char *what, int ndim,
                     const int *shape)
{
    if (ndim < 0 || ndim > FXP_MAX_DIMS)
        return fxp__err(ctx, FXP_EINVAL, func, "%s: ndim %d outside [0, %d]", what, ndim,
                        FXP_MAX_DIMS);
    if (ndim > 0 && !shape) return fxp__err(ctx, FXP_EINVAL, func, "%s: shape is NULL", what);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return fxp__err(ctx, FXP_EINVAL, func, "%s: dimension %d is %d (must be >= 1)",
                            what, i, shape[i]);
        if ((n = fxp__mul_limit(n, shape[i])) < 0)
            return fxp__err(ctx, FXP_EINVAL, func, "%s: more than 2^40 elements", what);
    }
    return FXP_OK;
}

static void set_shape(fxp_tensor *t, int ndim, const int *shape)
{
    t->ndim = ndim;
    for (int i = 0; i < FXP_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
}

int fxp_tensor_alloc(fxp_ctx *ctx, fxp_tensor *t, int ndim, const int *shape)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(ctx, FXP_EINVAL, "t is NULL");
    memset(t, 0, sizeof *t);
    int rc = fxp__check_shape(ctx, __func__, "tensor", ndim, shape);
    if (rc < 0) return rc;
    set_shape(t, ndim, shape);
    size_t n = (size_t)fxp_tensor_numel(t);
    t->data = calloc(n, sizeof(float));
    if (!t->data) {
        memset(t, 0, sizeof *t);
        return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate %zu floats", n);
    }
    t->owns = 1;
    return FXP_OK;
}

void fxp_tensor_release(fxp_tensor *t)
{
    if (!t) return;
    if (t->owns) free(t->data);
    memset(t, 0, sizeof *t);
}

fxp_tensor fxp_tensor_wrap(float *data, int ndim, const int *shape)
{
    fxp_tensor t;
    memset(&t, 0, sizeof t);
    if (ndim < 0) ndim = 0;
    if (ndim > FXP_MAX_DIMS) ndim = FXP_MAX_DIMS;
    set_shape(&t, shape ? ndim : 0, shape);
    t.data = data;
    return t;
}

int fxp_tensor_reshape(fxp_ctx *ctx, const fxp_tensor *t, fxp_tensor *view, int ndim,
                       const int *shape)
{
    FXP_API_SCOPE();
    int rc = fxp__check_shape(ctx, __func__, "new shape", ndim, shape);
    if (rc < 0) return rc;
    fxp_tensor v = fxp_tensor_wrap(t->data, ndim, shape);
    if (fxp_tensor_numel(&v) != fxp_tensor_numel(t)) {
        char a[64], b[64];
        return FXP_ERR(ctx, FXP_ESHAPE, "cannot view %s as %s (element counts differ)",
                       fxp_tensor_shape_str(t, a, sizeof a), fxp_tensor_shape_str(&v, b, sizeof b));
    }
    *view = v;
    return FXP_OK;
}

int fxp_tensor_slice0(fxp_ctx *ctx, const fxp_tensor *t, fxp_tensor *view, int start, int count)
{
    char a[64];
    if (t->ndim < 1) return FXP_ERR(ctx, FXP_ESHAPE, "cannot slice a scalar");
    if (start < 0 || count < 1 || start + count > t->shape[0])
        return FXP_ERR(ctx, FXP_EINVAL, "rows [%d, %d) outside %s", start, start + count,
                       fxp_tensor_shape_str(t, a, sizeof a));
    fxp_tensor v = fxp_tensor_wrap(t->data, t->ndim, t->shape);
    int64_t row = fxp_tensor_numel(t) / t->shape[0];
    v.shape[0] = count;
    v.data = t->data + (int64_t)start * row;
    *view = v;
    return FXP_OK;
}

int fxp_tensor_same_shape(const fxp_tensor *a, const fxp_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

char *fxp_tensor_shape_str(const fxp_tensor *t, char *buf, size_t size)
{
    if (!buf || size == 0) return buf;
    size_t n = 0;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, size - FXP_MIN(n, size), "[");
    for (int i = 0; i < t->ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ",%d" : "%d", t->shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

int fxp_tensor_check_finite(fxp_ctx *ctx, const fxp_tensor *t, const char *what)
{
    int64_t n = fxp_tensor_numel(t);
    if (n < 0) return FXP_ERR(ctx, FXP_EINVAL, "%s has an impossible shape", what ? what : "tensor");
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(t->data[i]))
            return FXP_ERR(ctx, FXP_ENUMERIC, "%s holds %s at flat index %lld",
                           what ? what : "tensor", isnan(t->data[i]) ? "NaN" : "Inf",
                           (long long)i);
    return FXP_OK;
}

int fxp_tensor_copy(fxp_ctx *ctx, fxp_tensor *dst, const fxp_tensor *src)
{
    if (!dst || !src || fxp_tensor_numel(src) < 0)
        return FXP_ERR(ctx, FXP_EINVAL, "NULL tensor or an impossible shape");
    if (fxp_tensor_numel(dst) != fxp_tensor_numel(src)) {
        char a[64], b[64];
        return FXP_ERR(ctx, FXP_ESHAPE, "cannot copy %s into %s",
                       fxp_tensor_shape_str(src, a, sizeof a), fxp_tensor_shape_str(dst, b, sizeof b));
    }
    if (dst->data != src->data)
        memmove(dst->data, src->data, (size_t)fxp_tensor_numel(src) * sizeof(float));
    return FXP_OK;
}

void fxp_tensor_fill(fxp_tensor *t, float v)
{
    int64_t n = fxp_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) t->data[i] = v;
}
