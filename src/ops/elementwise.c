/* Elementwise ops: binary with NumPy broadcasting, and unary maps. */
#include <math.h>
#include <string.h>

#include "ops/ops_internal.h"

int fxp__ops_check_vars(fxp_tape *t, const char *op, int n, fxp_var *const *v)
{
    if (!t) return fxp__err(NULL, FXP_EINVAL, op, "tape is NULL");
    for (int i = 0; i < n; i++)
        if (!v[i] || !v[i]->value.data)
            return fxp__err(fxp_tape_ctx(t), FXP_EINVAL, op, "input %d is NULL", i);
    return FXP_OK;
}

/* ---- broadcasting ---------------------------------------------------------
 * Shapes are right-aligned and padded to 5 dims; a dimension of extent 1 in
 * an input has stride 0 in the output's index space. */
typedef struct bcast {
    int shape[FXP_MAX_DIMS];              /* output, padded with leading 1s */
    int64_t sa[FXP_MAX_DIMS], sb[FXP_MAX_DIMS];
    int ndim;                             /* output ndim */
    int same;                             /* a, b and out have one shape */
} bcast;

static void pad_strides(const fxp_tensor *x, const int *out_shape, int64_t *st)
{
    int off = FXP_MAX_DIMS - x->ndim;
    int64_t s = 1;
    for (int d = FXP_MAX_DIMS - 1; d >= 0; d--) {
        int ext = d >= off ? x->shape[d - off] : 1;
        st[d] = (ext == 1 && out_shape[d] != 1) ? 0 : s;
        s *= ext;
    }
}

static int bcast_init(fxp_tape *t, const char *op, const fxp_tensor *a, const fxp_tensor *b,
                      bcast *bc)
{
    bc->ndim = FXP_MAX(a->ndim, b->ndim);
    for (int d = 0; d < FXP_MAX_DIMS; d++) {
        int da = d - (FXP_MAX_DIMS - a->ndim), db = d - (FXP_MAX_DIMS - b->ndim);
        int ea = da >= 0 ? a->shape[da] : 1, eb = db >= 0 ? b->shape[db] : 1;
        if (ea != eb && ea != 1 && eb != 1) {
            char s1[64], s2[64];
            return fxp__err(fxp_tape_ctx(t), FXP_ESHAPE, op, "cannot broadcast %s with %s",
                            fxp_tensor_shape_str(a, s1, sizeof s1),
                            fxp_tensor_shape_str(b, s2, sizeof s2));
        }
        bc->shape[d] = FXP_MAX(ea, eb);
    }
    pad_strides(a, bc->shape, bc->sa);
    pad_strides(b, bc->shape, bc->sb);
    bc->same = fxp_tensor_same_shape(a, b);
    return FXP_OK;
}

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV } bin_kind;

static inline float bin_apply(bin_kind k, float a, float b)
{
    switch (k) {
    case BIN_ADD: return a + b;
    case BIN_SUB: return a - b;
    case BIN_MUL: return a * b;
    default: return a / b;
    }
}

/* Visit every output index i with its input offsets ia, ib (row-major). */
#define BCAST_LOOP(bc, BODY)                                                           \
    do {                                                                               \
        int64_t i = 0;                                                                 \
        for (int i0 = 0; i0 < (bc)->shape[0]; i0++)                                    \
            for (int i1 = 0; i1 < (bc)->shape[1]; i1++)                                \
                for (int i2 = 0; i2 < (bc)->shape[2]; i2++)                            \
                    for (int i3 = 0; i3 < (bc)->shape[3]; i3++) {                      \
                        int64_t ia = i0 * (bc)->sa[0] + i1 * (bc)->sa[1] +             \
                                     i2 * (bc)->sa[2] + i3 * (bc)->sa[3];              \
                        int64_t ib = i0 * (bc)->sb[0] + i1 * (bc)->sb[1] +             \
                                     i2 * (bc)->sb[2] + i3 * (bc)->sb[3];              \
                        for (int i4 = 0; i4 < (bc)->shape[4]; i4++, i++,               \
                                 ia += (bc)->sa[4], ib += (bc)->sb[4]) {               \
                            BODY;                                                      \
                        }                                                              \
                    }                                                                  \
    } while (0)

typedef struct bin_saved {
    bcast bc;
    bin_kind kind;
} bin_saved;

/* d(a+b) = (g, g); d(a-b) = (g, -g); d(ab) = (g b, g a); d(a/b) = (g/b, -g a/b^2);
 * each summed over the dimensions along which that input was broadcast. */
static int binary_backward(fxp_tape *t, const fxp_node *n)
{
    const bin_saved *s = n->saved;
    fxp_var *va = n->in[0], *vb = n->in[1];
    const float *a = va->value.data, *b = vb->value.data, *g = n->out->grad;
    float *ga = va->grad, *gb = vb->grad;
    const bin_kind k = s->kind;
    const int64_t total = fxp_tensor_numel(&n->out->value);
    if (s->bc.same) {
        const int nt = fxp_tape_ctx(t)->n_threads;
        FXP_PARALLEL_FOR(nt, total > FXP_PAR_THRESHOLD,
            for (int64_t i = 0; i < total; i++) {
                float gi = g[i];
                if (ga) ga[i] += k == BIN_MUL ? gi * b[i] : k == BIN_DIV ? gi / b[i] : gi;
                if (gb)
                    gb[i] += k == BIN_ADD ? gi
                             : k == BIN_SUB ? -gi
                             : k == BIN_MUL ? gi * a[i]
                                            : -gi * a[i] / (b[i] * b[i]);
            });
        return FXP_OK;
    }
    /* broadcast: a serial scatter-add keeps the summation order fixed */
    BCAST_LOOP(&s->bc, {
        float gi = g[i];
        if (ga) ga[ia] += k == BIN_MUL ? gi * b[ib] : k == BIN_DIV ? gi / b[ib] : gi;
        if (gb)
            gb[ib] += k == BIN_ADD ? gi
                      : k == BIN_SUB ? -gi
                      : k == BIN_MUL ? gi * a[ia]
                                     : -gi * a[ia] / (b[ib] * b[ib]);
    });
    return FXP_OK;
}

static int binary(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b, bin_kind k,
                  const char *op)
{
    fxp_var *in[2] = { a, b };
    int rc = fxp__ops_check_vars(t, op, 2, in);
    if (rc < 0) return rc;
    if (!out) return fxp__err(fxp_tape_ctx(t), FXP_EINVAL, op, "out is NULL");
    bcast bc;
    if ((rc = bcast_init(t, op, &a->value, &b->value, &bc)) < 0) return rc;
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, bc.ndim, bc.shape + (FXP_MAX_DIMS - bc.ndim))) < 0) return rc;
    const float *pa = a->value.data, *pb = b->value.data;
    float *py = y->value.data;
    const int64_t total = fxp_tensor_numel(&y->value);
    if (bc.same) {
        const int nt = fxp_tape_ctx(t)->n_threads;
        FXP_PARALLEL_FOR(nt, total > FXP_PAR_THRESHOLD,
            for (int64_t i = 0; i < total; i++) py[i] = bin_apply(k, pa[i], pb[i]););
    } else {
        BCAST_LOOP(&bc, py[i] = bin_apply(k, pa[ia], pb[ib]));
    }
    if (fxp_tape_needs_grad(t, 2, in)) {
        bin_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        s->bc = bc;
        s->kind = k;
        if ((rc = fxp_tape_record(t, op, binary_backward, y, 2, in, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}

int fxp_add(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b)
{
    FXP_API_SCOPE();
    return binary(t, out, a, b, BIN_ADD, __func__);
}
int fxp_sub(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b)
{
    FXP_API_SCOPE();
    return binary(t, out, a, b, BIN_SUB, __func__);
}
int fxp_mul(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b)
{
    FXP_API_SCOPE();
    return binary(t, out, a, b, BIN_MUL, __func__);
}
int fxp_div(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b)
{
    FXP_API_SCOPE();
    return binary(t, out, a, b, BIN_DIV, __func__);
}

/* ---- unary maps -------------------------------------------------------------
 * y = f(x); the backward uses dy/dx expressed through x or y (whichever the
 * map's derivative needs), and the scalar parameter c of scale/add_scalar. */
typedef enum { UN_SCALE, UN_ADDC, UN_EXP, UN_LOG, UN_TANH, UN_SIGMOID, UN_RELU, UN_SOFTPLUS,
               UN_SQUARE } un_kind;

typedef struct un_saved {
    un_kind kind;
    float c;
} un_saved;

static inline float un_apply(un_kind k, float x, float c)
{
    switch (k) {
    case UN_SCALE: return c * x;
    case UN_ADDC: return x + c;
    case UN_EXP: return expf(x);
    case UN_LOG: return logf(x);
    case UN_TANH: return tanhf(x);
    case UN_SIGMOID: return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
    case UN_RELU: return x > 0 ? x : 0.0f;
    case UN_SOFTPLUS: return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
    default: return x * x;
    }
}

/* dy/dx: c; 1; y; 1/x; 1 - y^2; y (1 - y); [x > 0]; sigmoid(x); 2x. */
static inline float un_deriv(un_kind k, float x, float y, float c)
{
    switch (k) {
    case UN_SCALE: return c;
    case UN_ADDC: return 1.0f;
    case UN_EXP: return y;
    case UN_LOG: return 1.0f / x;
    case UN_TANH: return 1.0f - y * y;
    case UN_SIGMOID: return y * (1.0f - y);
    case UN_RELU: return x > 0 ? 1.0f : 0.0f;
    case UN_SOFTPLUS: return un_apply(UN_SIGMOID, x, 0);
    default: return 2.0f * x;
    }
}

static int unary_backward(fxp_tape *t, const fxp_node *n)
{
    const un_saved *s = n->saved;
    fxp_var *x = n->in[0];
    if (!x->grad) return FXP_OK;
    const float *px = x->value.data, *py = n->out->value.data, *g = n->out->grad;
    float *gx = x->grad;
    const int64_t total = fxp_tensor_numel(&x->value);
    const int nt = fxp_tape_ctx(t)->n_threads;
    const un_kind k = s->kind;
    const float c = s->c;
    FXP_PARALLEL_FOR(nt, total > FXP_PAR_THRESHOLD,
        for (int64_t i = 0; i < total; i++) gx[i] += g[i] * un_deriv(k, px[i], py[i], c););
    return FXP_OK;
}

static int unary(fxp_tape *t, fxp_var **out, fxp_var *x, un_kind k, float c, const char *op)
{
    int rc = fxp__ops_check_vars(t, op, 1, &x);
    if (rc < 0) return rc;
    if (!out) return fxp__err(fxp_tape_ctx(t), FXP_EINVAL, op, "out is NULL");
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, x->value.ndim, x->value.shape)) < 0) return rc;
    const float *px = x->value.data;
    float *py = y->value.data;
    const int64_t total = fxp_tensor_numel(&x->value);
    const int nt = fxp_tape_ctx(t)->n_threads;
    FXP_PARALLEL_FOR(nt, total > FXP_PAR_THRESHOLD,
        for (int64_t i = 0; i < total; i++) py[i] = un_apply(k, px[i], c););
    if (fxp_tape_needs_grad(t, 1, &x)) {
        un_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        s->kind = k;
        s->c = c;
        if ((rc = fxp_tape_record(t, op, unary_backward, y, 1, &x, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}

int fxp_scale(fxp_tape *t, fxp_var **out, fxp_var *x, float s)
{
    FXP_API_SCOPE();
    return unary(t, out, x, UN_SCALE, s, __func__);
}
int fxp_add_scalar(fxp_tape *t, fxp_var **out, fxp_var *x, float c)
{
    FXP_API_SCOPE();
    return unary(t, out, x, UN_ADDC, c, __func__);
}
int fxp_exp(fxp_tape *t, fxp_var **out, fxp_var *x)
{
    FXP_API_SCOPE();
    return unary(t, out, x, UN_EXP, 0, __func__);
}
int fxp_log(fxp_tape *t, fxp_var **out, fxp_var *x)
{
    FXP_API_SCOPE();
    return unary(t, out, x, UN_LOG, 0, __func__);
}
int fxp_tanh(fxp_tape *t, fxp_var **out, fxp_var *x)
{
    FXP_API_SCOPE();
    return unary(t, out, x, UN_TANH, 0, __func__);
}
int fxp_sigmoid(fxp_tape *t, fxp_var **out, fxp_var *x)
{
    FXP_API_SCOPE();
    return unary(t, out, x, UN_SIGMOID, 0, __func__);
}
int fxp_relu(fxp_tape *t, fxp_var **out, fxp_var *x)
{
    FXP_API_SCOPE();
    return unary(t, out, x, UN_RELU, 0, __func__);
}
int fxp_softplus(fxp_tape *t, fxp_var **out, fxp_var *x)
{
    FXP_API_SCOPE();
    return unary(t, out, x, UN_SOFTPLUS, 0, __func__);
}
int fxp_square(fxp_tape *t, fxp_var **out, fxp_var *x)
{
    FXP_API_SCOPE();
    return unary(t, out, x, UN_SQUARE, 0, __func__);
}
