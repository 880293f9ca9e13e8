/* The fxp_conv2d tape op: shape checks, optional weight mask, forward and
 * backward through the kernels of conv2d.h. */
#include <string.h>

#include "ops/conv2d.h"
#include "ops/ops_internal.h"

typedef struct conv_saved {
    fxp__conv_shape s;
    const float *w_used; /* w, or w .* mask in tape memory */
    const float *mask;
} conv_saved;

/* dL/dx = conv^T(dL/dy; W); dL/dW = dL/dy (x) col(x) (.* mask); dL/db = sums of dL/dy. */
static int conv_backward(fxp_tape *t, const fxp_node *n)
{
    const conv_saved *sv = n->saved;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    fxp_var *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
    const float *g = n->out->grad;
    int rc;
    if (x->grad && (rc = fxp__conv2d_backward_data(ctx, &sv->s, x->grad, g, sv->w_used, 1, 1)) < 0)
        return rc;
    if (w->grad) {
        if (!sv->mask) {
            if ((rc = fxp__conv2d_backward_weight(ctx, &sv->s, w->grad, g, x->value.data, 1)) < 0)
                return rc;
        } else {
            const int64_t nw = fxp_tensor_numel(&w->value);
            fxp__arena_mark m = fxp__scratch_save(ctx);
            float *tmp = fxp__scratch_alloc(ctx, (size_t)nw * sizeof(float));
            if (!tmp) return FXP_ENOMEM;
            memset(tmp, 0, (size_t)nw * sizeof(float));
            rc = fxp__conv2d_backward_weight(ctx, &sv->s, tmp, g, x->value.data, 1);
            if (rc >= 0)
                for (int64_t i = 0; i < nw; i++) w->grad[i] += tmp[i] * sv->mask[i];
            fxp__scratch_restore(ctx, m);
            if (rc < 0) return rc;
        }
    }
    if (b && b->grad) fxp__conv2d_backward_bias(ctx, &sv->s, b->grad, g);
    return FXP_OK;
}

int fxp_conv2d(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *w, fxp_var *bias,
               const fxp_conv2d_opts *opts)
{
    FXP_API_SCOPE();
    fxp_var *in[3] = { x, w, bias };
    int rc = fxp__ops_check_vars(t, __func__, 2, in);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64], s2[64];
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    if (x->value.ndim != 4 || w->value.ndim != 4 || w->value.shape[1] != x->value.shape[1])
        return FXP_ERR(ctx, FXP_ESHAPE,
                       "input %s and weight %s do not fit (expected [N,C,H,W] and [O,C,kh,kw])",
                       fxp__vshape(x, s1, sizeof s1), fxp__vshape(w, s2, sizeof s2));
    fxp__conv_shape s = { x->value.shape[0], x->value.shape[1], x->value.shape[2],
                          x->value.shape[3], w->value.shape[0], w->value.shape[2],
                          w->value.shape[3], opts ? opts->padding : FXP_PAD_ZERO };
    if ((rc = fxp__conv_check(ctx, __func__, &s)) < 0) return rc;
    if (bias && (bias->value.ndim != 1 || bias->value.shape[0] != s.c_out))
        return FXP_ERR(ctx, FXP_ESHAPE, "bias %s must be [%d]", fxp__vshape(bias, s1, sizeof s1),
                       s.c_out);
    const int64_t nw = fxp_tensor_numel(&w->value);
    const float *mask = opts ? opts->mask : NULL, *w_used = w->value.data;
    const int nin = bias ? 3 : 2;
    const int need = fxp_tape_needs_grad(t, nin, in);
    if (mask) {
        float *wm = fxp_tape_alloc(t, (size_t)nw * sizeof(float));
        if (!wm) return FXP_ENOMEM;
        for (int64_t i = 0; i < nw; i++) wm[i] = w->value.data[i] * mask[i];
        w_used = wm;
    }
    int oshape[4] = { s.n, s.c_out, s.h, s.w };
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, 4, oshape)) < 0) return rc;
    if ((rc = fxp__conv2d_forward(ctx, &s, y->value.data, x->value.data, w_used,
                                  bias ? bias->value.data : NULL, 1, 0)) < 0)
        return rc;
    if (need) {
        conv_saved *sv = fxp_tape_alloc(t, sizeof *sv);
        if (!sv) return FXP_ENOMEM;
        sv->s = s;
        sv->w_used = w_used;
        sv->mask = mask;
        if ((rc = fxp_tape_record(t, "fxp_conv2d", conv_backward, y, nin, in, sv)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}
