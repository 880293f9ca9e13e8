/* The dense matrix exponential flow on vectors: rows x_b -> exp(W) x_b. */
#include "blas/blas.h"
#include "expm/expm_internal.h"

/* M acts on X [B, d] row-wise: M X = X W^T, M^T X = X W. */
typedef struct dense_op {
    int b, d;
    const float *w;
    fxp_var *wvar;
} dense_op;

static int dense_apply(void *self, fxp_ctx *ctx, const float *x, float *y)
{
    const dense_op *o = self;
    fxp__sgemm(ctx, 0, 1, o->b, o->d, o->d, 1, x, o->d, o->w, o->d, 0, y, o->d);
    return FXP_OK;
}

static int dense_apply_t(void *self, fxp_ctx *ctx, const float *x, float *y)
{
    const dense_op *o = self;
    fxp__sgemm(ctx, 0, 0, o->b, o->d, o->d, 1, x, o->d, o->w, o->d, 0, y, o->d);
    return FXP_OK;
}

/* Tr M = B Tr W (one copy of W per row of X). */
static double dense_trace(void *self)
{
    const dense_op *o = self;
    double acc = 0;
    for (int i = 0; i < o->d; i++) acc += o->w[(int64_t)i * o->d + i];
    return (double)o->b * acc;
}

/* d<G, U W^T>/dW = G^T U. */
static int dense_param_grad(void *self, fxp_ctx *ctx, const float *u, const float *g, float scale)
{
    const dense_op *o = self;
    if (o->wvar && o->wvar->grad)
        fxp__sgemm(ctx, 1, 0, o->d, o->d, o->b, scale, g, o->d, u, o->d, 1, o->wvar->grad, o->d);
    return FXP_OK;
}

int fxp_expm_dense(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *w, int inverse,
                   const fxp_expm_opts *opts, fxp_expm_info *info)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64], s2[64];
    if (!out || !x || !w) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    if (x->value.ndim != 2 || w->value.ndim != 2 || w->value.shape[0] != x->value.shape[1] ||
        w->value.shape[1] != x->value.shape[1])
        return FXP_ERR(ctx, FXP_ESHAPE, "x %s and W %s do not fit (expected [B, d] and [d, d])",
                       fxp_tensor_shape_str(&x->value, s1, sizeof s1),
                       fxp_tensor_shape_str(&w->value, s2, sizeof s2));
    dense_op *o = fxp_tape_alloc(t, sizeof *o);
    fxp_linop *op = fxp_tape_alloc(t, sizeof *op);
    if (!o || !op) return FXP_ENOMEM;
    *o = (dense_op){ x->value.shape[0], x->value.shape[1], w->value.data, w };
    *op = (fxp_linop){ .self = o, .size = fxp_tensor_numel(&x->value), .apply = dense_apply,
                       .apply_t = dense_apply_t, .param_grad = dense_param_grad,
                       .trace = dense_trace };
    return fxp_expm_linop(t, out, x, op, inverse, 1, &w, opts, info);
}
