/* Reductions: sum and mean over chosen axes, logsumexp over one axis. */
#include <math.h>
#include <string.h>

#include "ops/ops_internal.h"

/* x viewed as 5-D (leading 1s); `ostride` maps an input index to its output
 * offset (0 along reduced axes). */
typedef struct red_plan {
    int shape[FXP_MAX_DIMS];
    int64_t ostride[FXP_MAX_DIMS];
    int64_t n_out, n_in;
    int suffix;        /* reduced axes are exactly the trailing ones: out[o] = sum of block o */
    float scale;       /* 1 for sum, 1/count for mean */
} red_plan;

static int red_plan_init(fxp_tape *t, const char *op, const fxp_var *x, unsigned axes,
                         int keepdim, int mean, red_plan *p, int *ondim, int *oshape)
{
    const int nd = x->value.ndim;
    const unsigned dims = (1u << nd) - 1u, hi = axes >> nd;
    const unsigned sel = axes & dims;
    /* Bits above ndim are accepted only as the tail of FXP_AXES_ALL /
     * FXP_AXES_FROM(k), which set every bit up to the top. */
    if ((axes & ~FXP_AXES_ALL) || (hi != 0 && hi != (FXP_AXES_ALL >> nd)) || (sel == 0 && nd > 0)) {
        char s[64];
        return fxp__err(fxp_tape_ctx(t), FXP_EINVAL, op, "axes mask 0x%x does not fit %s", axes,
                        fxp_tensor_shape_str(&x->value, s, sizeof s));
    }
    const int off = FXP_MAX_DIMS - nd;
    int64_t count = 1;
    *ondim = 0;
    for (int d = 0; d < FXP_MAX_DIMS; d++) p->shape[d] = d >= off ? x->value.shape[d - off] : 1;
    int64_t s = 1;
    for (int d = FXP_MAX_DIMS - 1; d >= 0; d--) {
        int red = d >= off && (sel & (1u << (d - off)));
        p->ostride[d] = red ? 0 : s;
        if (red) count *= p->shape[d];
        else s *= p->shape[d];
    }
    for (int d = 0; d < nd; d++) {
        if (sel & (1u << d)) {
            if (keepdim) oshape[(*ondim)++] = 1;
        } else {
            oshape[(*ondim)++] = x->value.shape[d];
        }
    }
    int first_red = nd;
    for (int d = 0; d < nd; d++)
        if (sel & (1u << d)) {
            first_red = d;
            break;
        }
    p->suffix = sel == (dims & ~((1u << first_red) - 1u));
    p->n_in = fxp_tensor_numel(&x->value);
    p->n_out = p->n_in / count;
    p->scale = mean ? 1.0f / (float)count : 1.0f;
    return FXP_OK;
}

#define RED_LOOP(p, BODY)                                                              \
    do {                                                                               \
        int64_t i = 0;                                                                 \
        for (int i0 = 0; i0 < (p)->shape[0]; i0++)                                     \
            for (int i1 = 0; i1 < (p)->shape[1]; i1++)                                 \
                for (int i2 = 0; i2 < (p)->shape[2]; i2++)                             \
                    for (int i3 = 0; i3 < (p)->shape[3]; i3++) {                       \
                        int64_t o = i0 * (p)->ostride[0] + i1 * (p)->ostride[1] +      \
                                    i2 * (p)->ostride[2] + i3 * (p)->ostride[3];       \
                        for (int i4 = 0; i4 < (p)->shape[4]; i4++, i++,                \
                                 o += (p)->ostride[4]) {                               \
                            BODY;                                                      \
                        }                                                              \
                    }                                                                  \
    } while (0)

/* d sum / dx_i = g[o(i)]; mean scales by 1/count. */
static int red_backward(fxp_tape *t, const fxp_node *n)
{
    const red_plan *p = n->saved;
    fxp_var *x = n->in[0];
    if (!x->grad) return FXP_OK;
    const float *g = n->out->grad;
    float *gx = x->grad;
    const float sc = p->scale;
    if (p->suffix) {
        const int64_t blk = p->n_in / p->n_out, n_out = p->n_out;
        const int nt = fxp_tape_ctx(t)->n_threads;
        FXP_PARALLEL_FOR(nt, p->n_in > FXP_PAR_THRESHOLD,
            for (int64_t o = 0; o < n_out; o++)
                for (int64_t j = 0; j < blk; j++) gx[o * blk + j] += sc * g[o];);
        return FXP_OK;
    }
    RED_LOOP(p, gx[i] += sc * g[o]);
    return FXP_OK;
}

static int reduce(fxp_tape *t, fxp_var **out, fxp_var *x, unsigned axes, int keepdim, int mean,
                  const char *op)
{
    int rc = fxp__ops_check_vars(t, op, 1, &x);
    if (rc < 0) return rc;
    if (!out) return fxp__err(fxp_tape_ctx(t), FXP_EINVAL, op, "out is NULL");
    red_plan plan;
    int ondim = 0, oshape[FXP_MAX_DIMS];
    if ((rc = red_plan_init(t, op, x, axes, keepdim, mean, &plan, &ondim, oshape)) < 0) return rc;
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, ondim, oshape)) < 0) return rc;
    float *py = y->value.data;
    const float *px = x->value.data;
    if (plan.suffix) {
        const int64_t blk = plan.n_in / plan.n_out, n_out = plan.n_out;
        const int nt = fxp_tape_ctx(t)->n_threads;
        FXP_PARALLEL_FOR(nt, plan.n_in > FXP_PAR_THRESHOLD,
            for (int64_t o = 0; o < n_out; o++) {
                double acc = 0;
                for (int64_t j = 0; j < blk; j++) acc += px[o * blk + j];
                py[o] = (float)(acc * plan.scale);
            });
    } else {
        memset(py, 0, (size_t)plan.n_out * sizeof(float));
        RED_LOOP(&plan, py[o] += px[i]);
        for (int64_t o = 0; o < plan.n_out; o++) py[o] *= plan.scale;
    }
    if (fxp_tape_needs_grad(t, 1, &x)) {
        red_plan *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = plan;
        if ((rc = fxp_tape_record(t, op, red_backward, y, 1, &x, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}

int fxp_sum(fxp_tape *t, fxp_var **out, fxp_var *x, unsigned axes, int keepdim)
{
    FXP_API_SCOPE();
    return reduce(t, out, x, axes, keepdim, 0, __func__);
}

int fxp_mean(fxp_tape *t, fxp_var **out, fxp_var *x, unsigned axes, int keepdim)
{
    FXP_API_SCOPE();
    return reduce(t, out, x, axes, keepdim, 1, __func__);
}

/* ---- logsumexp ------------------------------------------------------------------
 * x viewed as [outer, A, inner]: y[o, k] = m + log sum_a exp(x[o, a, k] - m),
 * m = max_a x[o, a, k].  dy/dx[o, a, k] = exp(x[o, a, k] - y[o, k]) (softmax). */
typedef struct lse_saved {
    int64_t outer, len, inner;
} lse_saved;

static int lse_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    const lse_saved *s = n->saved;
    fxp_var *x = n->in[0];
    if (!x->grad) return FXP_OK;
    const float *px = x->value.data, *py = n->out->value.data, *g = n->out->grad;
    for (int64_t o = 0; o < s->outer; o++)
        for (int64_t a = 0; a < s->len; a++)
            for (int64_t k = 0; k < s->inner; k++) {
                int64_t i = (o * s->len + a) * s->inner + k, j = o * s->inner + k;
                x->grad[i] += g[j] * expf(px[i] - py[j]);
            }
    return FXP_OK;
}

int fxp_logsumexp(fxp_tape *t, fxp_var **out, fxp_var *x, int axis, int keepdim)
{
    FXP_API_SCOPE();
    int rc = fxp__ops_check_vars(t, __func__, 1, &x);
    if (rc < 0) return rc;
    if (!out) return FXP_ERR(fxp_tape_ctx(t), FXP_EINVAL, "out is NULL");
    const int nd = x->value.ndim;
    if (axis < 0 || axis >= nd) {
        char s[64];
        return FXP_ERR(fxp_tape_ctx(t), FXP_EINVAL, "axis %d outside %s", axis,
                       fxp__vshape(x, s, sizeof s));
    }
    lse_saved sv = { 1, x->value.shape[axis], 1 };
    int oshape[FXP_MAX_DIMS], ondim = 0;
    for (int d = 0; d < nd; d++) {
        if (d < axis) sv.outer *= x->value.shape[d];
        if (d > axis) sv.inner *= x->value.shape[d];
        if (d != axis) oshape[ondim++] = x->value.shape[d];
        else if (keepdim) oshape[ondim++] = 1;
    }
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, ondim, oshape)) < 0) return rc;
    const float *px = x->value.data;
    for (int64_t o = 0; o < sv.outer; o++)
        for (int64_t k = 0; k < sv.inner; k++) {
            float m = -INFINITY;
            for (int64_t a = 0; a < sv.len; a++) m = fmaxf(m, px[(o * sv.len + a) * sv.inner + k]);
            double acc = 0;
            if (isfinite(m))
                for (int64_t a = 0; a < sv.len; a++)
                    acc += exp((double)px[(o * sv.len + a) * sv.inner + k] - m);
            y->value.data[o * sv.inner + k] = isfinite(m) ? (float)(m + log(acc)) : m;
        }
    if (fxp_tape_needs_grad(t, 1, &x)) {
        lse_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = sv;
        if ((rc = fxp_tape_record(t, "fxp_logsumexp", lse_backward, y, 1, &x, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}
