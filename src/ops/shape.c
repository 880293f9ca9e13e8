/* Shape ops: reshape, concat, split, squeeze/unsqueeze (space-to-depth), flip. */
#include <string.h>

#include "ops/ops_internal.h"

/* ---- reshape: a view; dx += dy elementwise (same layout). */
static int reshape_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    fxp_var *x = n->in[0];
    if (!x->grad) return FXP_OK;
    const int64_t total = fxp_tensor_numel(&x->value);
    for (int64_t i = 0; i < total; i++) x->grad[i] += n->out->grad[i];
    return FXP_OK;
}

int fxp_reshape(fxp_tape *t, fxp_var **out, fxp_var *x, int ndim, const int *shape)
{
    FXP_API_SCOPE();
    int rc = fxp__ops_check_vars(t, __func__, 1, &x);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    fxp_tensor view;
    if ((rc = fxp_tensor_reshape(ctx, &x->value, &view, ndim, shape)) < 0) return rc;
    fxp_var *y = fxp_tape_alloc(t, sizeof *y);
    if (!y) return FXP_ENOMEM;
    memset(y, 0, sizeof *y);
    y->value = view;
    if ((rc = fxp_tape_record(t, "fxp_reshape", reshape_backward, y, 1, &x, NULL)) < 0) return rc;
    *out = y;
    return FXP_OK;
}

/* ---- concat / split ------------------------------------------------------------
 * Along `axis`, a tensor is [outer, len * inner]: each of the `outer` rows of
 * the output is a row of a followed by a row of b. */
typedef struct cat_saved {
    int64_t outer, la, lb; /* row lengths in elements */
} cat_saved;

static int concat_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    const cat_saved *s = n->saved;
    fxp_var *a = n->in[0], *b = n->in[1];
    const float *g = n->out->grad;
    for (int64_t o = 0; o < s->outer; o++) {
        const float *row = g + o * (s->la + s->lb);
        if (a->grad)
            for (int64_t i = 0; i < s->la; i++) a->grad[o * s->la + i] += row[i];
        if (b->grad)
            for (int64_t i = 0; i < s->lb; i++) b->grad[o * s->lb + i] += row[s->la + i];
    }
    return FXP_OK;
}

int fxp_concat(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b, int axis)
{
    FXP_API_SCOPE();
    fxp_var *in[2] = { a, b };
    int rc = fxp__ops_check_vars(t, __func__, 2, in);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64], s2[64];
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    const int nd = a->value.ndim;
    int ok = nd == b->value.ndim && axis >= 0 && axis < nd;
    for (int d = 0; ok && d < nd; d++)
        if (d != axis && a->value.shape[d] != b->value.shape[d]) ok = 0;
    if (!ok)
        return FXP_ERR(ctx, FXP_ESHAPE, "cannot concatenate %s and %s along axis %d",
                       fxp__vshape(a, s1, sizeof s1), fxp__vshape(b, s2, sizeof s2), axis);
    cat_saved sv = { 1, a->value.shape[axis], b->value.shape[axis] };
    for (int d = 0; d < axis; d++) sv.outer *= a->value.shape[d];
    for (int d = axis + 1; d < nd; d++) {
        sv.la *= a->value.shape[d];
        sv.lb *= a->value.shape[d];
    }
    int shape[FXP_MAX_DIMS];
    memcpy(shape, a->value.shape, sizeof shape);
    shape[axis] += b->value.shape[axis];
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, nd, shape)) < 0) return rc;
    for (int64_t o = 0; o < sv.outer; o++) {
        float *row = y->value.data + o * (sv.la + sv.lb);
        memcpy(row, a->value.data + o * sv.la, (size_t)sv.la * sizeof(float));
        memcpy(row + sv.la, b->value.data + o * sv.lb, (size_t)sv.lb * sizeof(float));
    }
    if (fxp_tape_needs_grad(t, 2, in)) {
        cat_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = sv;
        if ((rc = fxp_tape_record(t, "fxp_concat", concat_backward, y, 2, in, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}

typedef struct split_saved {
    int64_t outer, len, start, total; /* this part: elements [start, start+len) of each row */
} split_saved;

/* dx[o, start + i] += dy_part[o, i]. */
static int split_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    const split_saved *s = n->saved;
    fxp_var *x = n->in[0];
    if (!x->grad) return FXP_OK;
    for (int64_t o = 0; o < s->outer; o++)
        for (int64_t i = 0; i < s->len; i++)
            x->grad[o * s->total + s->start + i] += n->out->grad[o * s->len + i];
    return FXP_OK;
}

static int split_part(fxp_tape *t, fxp_var **out, fxp_var *x, int axis, int from, int count)
{
    int rc, shape[FXP_MAX_DIMS];
    memcpy(shape, x->value.shape, sizeof shape);
    shape[axis] = count;
    split_saved sv = { 1, count, from, x->value.shape[axis] };
    for (int d = 0; d < axis; d++) sv.outer *= x->value.shape[d];
    for (int d = axis + 1; d < x->value.ndim; d++) {
        sv.len *= x->value.shape[d];
        sv.start *= x->value.shape[d];
        sv.total *= x->value.shape[d];
    }
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, x->value.ndim, shape)) < 0) return rc;
    for (int64_t o = 0; o < sv.outer; o++)
        memcpy(y->value.data + o * sv.len, x->value.data + o * sv.total + sv.start,
               (size_t)sv.len * sizeof(float));
    if (fxp_tape_needs_grad(t, 1, &x)) {
        split_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = sv;
        if ((rc = fxp_tape_record(t, "fxp_split", split_backward, y, 1, &x, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}

int fxp_split(fxp_tape *t, fxp_var **out_a, fxp_var **out_b, fxp_var *x, int axis, int size_a)
{
    FXP_API_SCOPE();
    int rc = fxp__ops_check_vars(t, __func__, 1, &x);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64];
    if (!out_a || !out_b) return FXP_ERR(ctx, FXP_EINVAL, "output pointer is NULL");
    if (axis < 0 || axis >= x->value.ndim || size_a < 1 || size_a >= x->value.shape[axis])
        return FXP_ERR(ctx, FXP_EINVAL, "cannot split %s along axis %d after %d entries",
                       fxp__vshape(x, s1, sizeof s1), axis, size_a);
    if ((rc = split_part(t, out_a, x, axis, 0, size_a)) < 0) return rc;
    return split_part(t, out_b, x, axis, size_a, x->value.shape[axis] - size_a);
}

/* ---- squeeze / unsqueeze / flip -----------------------------------------------
 * All three are permutations of elements: out[perm(i)] = x[i].  The op
 * computes the map on the fly; its backward applies the transpose
 * (gx[i] += gy[perm(i)]). */
typedef enum { PERM_SQUEEZE, PERM_UNSQUEEZE, PERM_FLIP } perm_kind;

typedef struct perm_saved {
    perm_kind kind;
    int b, c, h, w; /* of the input */
} perm_saved;

/* Offset in the output of input element (n, c, i, j). */
static inline int64_t perm_index(const perm_saved *s, int n, int c, int i, int j)
{
    switch (s->kind) {
    case PERM_SQUEEZE: { /* [B,C,H,W] -> [B,4C,H/2,W/2], channel c*4 + dy*2 + dx */
        int oc = c * 4 + (i & 1) * 2 + (j & 1), oh = s->h / 2, ow = s->w / 2;
        return (((int64_t)n * 4 * s->c + oc) * oh + i / 2) * ow + j / 2;
    }
    case PERM_UNSQUEEZE: { /* [B,C,H,W] -> [B,C/4,2H,2W], inverse of the above */
        int oc = c / 4, dy = (c / 2) & 1, dx = c & 1;
        return (((int64_t)n * (s->c / 4) + oc) * 2 * s->h + 2 * i + dy) * 2 * s->w + 2 * j + dx;
    }
    default: /* flip both spatial axes */
        return (((int64_t)n * s->c + c) * s->h + (s->h - 1 - i)) * s->w + (s->w - 1 - j);
    }
}

static int perm_backward(fxp_tape *t, const fxp_node *nd)
{
    const perm_saved *s = nd->saved;
    fxp_var *x = nd->in[0];
    if (!x->grad) return FXP_OK;
    const float *g = nd->out->grad;
    const int B = s->b, nt = fxp_tape_ctx(t)->n_threads;
    FXP_PARALLEL_FOR(nt, fxp_tensor_numel(&x->value) > FXP_PAR_THRESHOLD,
        for (int n = 0; n < B; n++)
            for (int c = 0; c < s->c; c++)
                for (int i = 0; i < s->h; i++)
                    for (int j = 0; j < s->w; j++)
                        x->grad[(((int64_t)n * s->c + c) * s->h + i) * s->w + j] +=
                            g[perm_index(s, n, c, i, j)];);
    return FXP_OK;
}

static int permute(fxp_tape *t, fxp_var **out, fxp_var *x, perm_kind kind, const char *op)
{
    int rc = fxp__ops_check_vars(t, op, 1, &x);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64];
    if (!out) return fxp__err(ctx, FXP_EINVAL, op, "out is NULL");
    const int *sh = x->value.shape;
    if (x->value.ndim != 4)
        return fxp__err(ctx, FXP_ESHAPE, op, "x must be NCHW, got %s", fxp__vshape(x, s1, sizeof s1));
    if (kind == PERM_SQUEEZE && (sh[2] % 2 || sh[3] % 2))
        return fxp__err(ctx, FXP_ESHAPE, op, "height and width of %s must be even",
                        fxp__vshape(x, s1, sizeof s1));
    if (kind == PERM_UNSQUEEZE && sh[1] % 4)
        return fxp__err(ctx, FXP_ESHAPE, op, "channels of %s must be a multiple of 4",
                        fxp__vshape(x, s1, sizeof s1));
    perm_saved sv = { kind, sh[0], sh[1], sh[2], sh[3] };
    int oshape[4] = { sh[0], sh[1], sh[2], sh[3] };
    if (kind == PERM_SQUEEZE) {
        oshape[1] *= 4;
        oshape[2] /= 2;
        oshape[3] /= 2;
    } else if (kind == PERM_UNSQUEEZE) {
        oshape[1] /= 4;
        oshape[2] *= 2;
        oshape[3] *= 2;
    }
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, 4, oshape)) < 0) return rc;
    const int B = sv.b, nt = ctx->n_threads;
    FXP_PARALLEL_FOR(nt, fxp_tensor_numel(&x->value) > FXP_PAR_THRESHOLD,
        for (int n = 0; n < B; n++)
            for (int c = 0; c < sv.c; c++)
                for (int i = 0; i < sv.h; i++)
                    for (int j = 0; j < sv.w; j++)
                        y->value.data[perm_index(&sv, n, c, i, j)] =
                            x->value.data[(((int64_t)n * sv.c + c) * sv.h + i) * sv.w + j];);
    if (fxp_tape_needs_grad(t, 1, &x)) {
        perm_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = sv;
        if ((rc = fxp_tape_record(t, op, perm_backward, y, 1, &x, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}

int fxp_squeeze2d(fxp_tape *t, fxp_var **out, fxp_var *x)
{
    FXP_API_SCOPE();
    return permute(t, out, x, PERM_SQUEEZE, __func__);
}
int fxp_unsqueeze2d(fxp_tape *t, fxp_var **out, fxp_var *x)
{
    FXP_API_SCOPE();
    return permute(t, out, x, PERM_UNSQUEEZE, __func__);
}
int fxp_flip2d(fxp_tape *t, fxp_var **out, fxp_var *x)
{
    FXP_API_SCOPE();
    return permute(t, out, x, PERM_FLIP, __func__);
}

/* ---- interleaved split ------------------------------------------------------------
 * Along an axis of even length L viewed as [outer, L, inner]:
 * even[o, k, i] = x[o, 2k, i] and odd[o, k, i] = x[o, 2k + 1, i]. */
typedef struct inter_saved {
    int64_t outer, half, inner;
    int parity; /* 0: this output holds the even entries, 1: the odd */
} inter_saved;

static void inter_copy(const inter_saved *s, const float *x, float *y)
{
    for (int64_t o = 0; o < s->outer; o++)
        for (int64_t k = 0; k < s->half; k++)
            memcpy(y + (o * s->half + k) * s->inner,
                   x + (o * 2 * s->half + 2 * k + s->parity) * s->inner,
                   (size_t)s->inner * sizeof(float));
}

/* dx[o, 2k + parity, i] += dy[o, k, i]. */
static int inter_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    const inter_saved *s = n->saved;
    fxp_var *x = n->in[0];
    if (!x->grad) return FXP_OK;
    for (int64_t o = 0; o < s->outer; o++)
        for (int64_t k = 0; k < s->half; k++) {
            float *gx = x->grad + (o * 2 * s->half + 2 * k + s->parity) * s->inner;
            const float *gy = n->out->grad + (o * s->half + k) * s->inner;
            for (int64_t i = 0; i < s->inner; i++) gx[i] += gy[i];
        }
    return FXP_OK;
}

int fxp_split_interleaved(fxp_tape *t, fxp_var **out_even, fxp_var **out_odd, fxp_var *x,
                          int axis)
{
    FXP_API_SCOPE();
    int rc = fxp__ops_check_vars(t, __func__, 1, &x);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64];
    if (!out_even || !out_odd) return FXP_ERR(ctx, FXP_EINVAL, "output pointer is NULL");
    if (axis < 0 || axis >= x->value.ndim || x->value.shape[axis] % 2)
        return FXP_ERR(ctx, FXP_EINVAL, "cannot split %s into even and odd entries of axis %d",
                       fxp__vshape(x, s1, sizeof s1), axis);
    inter_saved sv = { 1, x->value.shape[axis] / 2, 1, 0 };
    for (int d = 0; d < axis; d++) sv.outer *= x->value.shape[d];
    for (int d = axis + 1; d < x->value.ndim; d++) sv.inner *= x->value.shape[d];
    int shape[FXP_MAX_DIMS];
    memcpy(shape, x->value.shape, sizeof shape);
    shape[axis] /= 2;
    fxp_var **outs[2] = { out_even, out_odd };
    for (int p = 0; p < 2; p++) {
        fxp_var *y;
        sv.parity = p;
        if ((rc = fxp_tape_var(t, &y, x->value.ndim, shape)) < 0) return rc;
        inter_copy(&sv, x->value.data, y->value.data);
        if (fxp_tape_needs_grad(t, 1, &x)) {
            inter_saved *s = fxp_tape_alloc(t, sizeof *s);
            if (!s) return FXP_ENOMEM;
            *s = sv;
            if ((rc = fxp_tape_record(t, "fxp_split_interleaved", inter_backward, y, 1, &x, s)) < 0)
                return rc;
        }
        *outs[p] = y;
    }
    return FXP_OK;
}
