/* Matrix products through BLAS: matmul, dense layers, adjacency products. */
#include <string.h>

#include "blas/blas.h"
#include "ops/ops_internal.h"

/* ---- matmul -------------------------------------------------------------------
 * C[M,N] = op(A) op(B).  dA = dC op(B)^T (stored transposed if trans_a),
 * dB = op(A)^T dC (stored transposed if trans_b). */
typedef struct mm_saved {
    int ta, tb, m, n, k;
} mm_saved;

static int matmul_backward(fxp_tape *t, const fxp_node *n)
{
    const mm_saved *s = n->saved;
    fxp_var *a = n->in[0], *b = n->in[1];
    fxp_ctx *ctx = fxp_tape_ctx(t);
    const float *g = n->out->grad;
    const int lda = a->value.shape[1], ldb = b->value.shape[1];
    if (a->grad) {
        if (!s->ta) /* dA[M,K] += dC[M,N] op(B)^T */
            fxp__sgemm(ctx, 0, !s->tb, s->m, s->k, s->n, 1, g, s->n, b->value.data, ldb, 1,
                       a->grad, lda);
        else        /* dA[K,M] += op(B)[K,N] dC^T */
            fxp__sgemm(ctx, s->tb, 1, s->k, s->m, s->n, 1, b->value.data, ldb, g, s->n, 1,
                       a->grad, lda);
    }
    if (b->grad) {
        if (!s->tb) /* dB[K,N] += op(A)^T dC */
            fxp__sgemm(ctx, !s->ta, 0, s->k, s->n, s->m, 1, a->value.data, lda, g, s->n, 1,
                       b->grad, ldb);
        else        /* dB[N,K] += dC^T op(A) */
            fxp__sgemm(ctx, 1, s->ta, s->n, s->k, s->m, 1, g, s->n, a->value.data, lda, 1,
                       b->grad, ldb);
    }
    return FXP_OK;
}

int fxp_matmul(fxp_tape *t, fxp_var **out, fxp_var *a, fxp_var *b, int trans_a, int trans_b)
{
    FXP_API_SCOPE();
    fxp_var *in[2] = { a, b };
    int rc = fxp__ops_check_vars(t, __func__, 2, in);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64], s2[64];
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    if (a->value.ndim != 2 || b->value.ndim != 2)
        return FXP_ERR(ctx, FXP_ESHAPE, "operands must be 2-D, got %s and %s",
                       fxp__vshape(a, s1, sizeof s1), fxp__vshape(b, s2, sizeof s2));
    mm_saved sv = { trans_a != 0, trans_b != 0, 0, 0, 0 };
    sv.m = a->value.shape[sv.ta ? 1 : 0];
    sv.k = a->value.shape[sv.ta ? 0 : 1];
    int kb = b->value.shape[sv.tb ? 1 : 0];
    sv.n = b->value.shape[sv.tb ? 0 : 1];
    if (kb != sv.k)
        return FXP_ERR(ctx, FXP_ESHAPE, "inner dimensions differ: op(a) of %s%s is [%d,%d], "
                       "op(b) of %s%s is [%d,%d]", fxp__vshape(a, s1, sizeof s1),
                       sv.ta ? "^T" : "", sv.m, sv.k, fxp__vshape(b, s2, sizeof s2),
                       sv.tb ? "^T" : "", kb, sv.n);
    fxp_var *y;
    int shape[2] = { sv.m, sv.n };
    if ((rc = fxp_tape_var(t, &y, 2, shape)) < 0) return rc;
    fxp__sgemm(ctx, sv.ta, sv.tb, sv.m, sv.n, sv.k, 1, a->value.data, a->value.shape[1],
               b->value.data, b->value.shape[1], 0, y->value.data, sv.n);
    if (fxp_tape_needs_grad(t, 2, in)) {
        mm_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = sv;
        if ((rc = fxp_tape_record(t, "fxp_matmul", matmul_backward, y, 2, in, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}

/* ---- linear ---------------------------------------------------------------------
 * Y[R,N] = X[R,K] W[K,N] + bias, R = product of x's leading dims.
 * dX = dY W^T, dW = X^T dY, dbias = column sums of dY. */
typedef struct lin_saved {
    int r, k, n;
} lin_saved;

static int linear_backward(fxp_tape *t, const fxp_node *nd)
{
    const lin_saved *s = nd->saved;
    fxp_var *x = nd->in[0], *w = nd->in[1], *b = nd->n_in > 2 ? nd->in[2] : NULL;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    const float *g = nd->out->grad;
    if (x->grad)
        fxp__sgemm(ctx, 0, 1, s->r, s->k, s->n, 1, g, s->n, w->value.data, s->n, 1, x->grad,
                   s->k);
    if (w->grad)
        fxp__sgemm(ctx, 1, 0, s->k, s->n, s->r, 1, x->value.data, s->k, g, s->n, 1, w->grad,
                   s->n);
    if (b && b->grad)
        for (int i = 0; i < s->r; i++)
            for (int j = 0; j < s->n; j++) b->grad[j] += g[(int64_t)i * s->n + j];
    return FXP_OK;
}

int fxp_linear(fxp_tape *t, fxp_var **out, fxp_var *x, fxp_var *w, fxp_var *bias)
{
    FXP_API_SCOPE();
    fxp_var *in[3] = { x, w, bias };
    int rc = fxp__ops_check_vars(t, __func__, bias ? 3 : 2, in);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64], s2[64];
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    const int nd = x->value.ndim;
    if (nd < 1 || w->value.ndim != 2 || w->value.shape[0] != x->value.shape[nd - 1])
        return FXP_ERR(ctx, FXP_ESHAPE, "x %s does not fit weight %s (expected [..., K] x [K, N])",
                       fxp__vshape(x, s1, sizeof s1), fxp__vshape(w, s2, sizeof s2));
    lin_saved sv = { (int)(fxp_tensor_numel(&x->value) / x->value.shape[nd - 1]),
                     w->value.shape[0], w->value.shape[1] };
    if (bias && (fxp_tensor_numel(&bias->value) != sv.n || bias->value.ndim < 1 ||
                 bias->value.shape[bias->value.ndim - 1] != sv.n))
        return FXP_ERR(ctx, FXP_ESHAPE, "bias %s must hold [%d] for weight %s",
                       fxp__vshape(bias, s1, sizeof s1), sv.n, fxp__vshape(w, s2, sizeof s2));
    int shape[FXP_MAX_DIMS];
    memcpy(shape, x->value.shape, sizeof shape);
    shape[nd - 1] = sv.n;
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, nd, shape)) < 0) return rc;
    float *py = y->value.data;
    if (bias) {
        for (int i = 0; i < sv.r; i++) memcpy(py + (int64_t)i * sv.n, bias->value.data,
                                              (size_t)sv.n * sizeof(float));
    }
    fxp__sgemm(ctx, 0, 0, sv.r, sv.n, sv.k, 1, x->value.data, sv.k, w->value.data, sv.n,
               bias ? 1.0f : 0.0f, py, sv.n);
    int nin = bias ? 3 : 2;
    if (fxp_tape_needs_grad(t, nin, in)) {
        lin_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = sv;
        if ((rc = fxp_tape_record(t, "fxp_linear", linear_backward, y, nin, in, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}

/* ---- adjacency products ------------------------------------------------------------
 * Y[b] = A[b] X[b] for X [B,N,F], A shared [N,N] or per graph [B,N,N].
 * dX[b] = A[b]^T dY[b]; dA[b] = dY[b] X[b]^T (shared A: summed over b). Small
 * products (N*N*F below a threshold) use plain loops, larger ones serial
 * GEMMs, both parallel over graphs. */
typedef struct adj_saved {
    int b, n, f, shared;
} adj_saved;

#define ADJ_GEMM_MIN 4096 /* N*N*F above which a per-graph GEMM beats loops */

static void adj_product(int tr, int n, int f, const float *a, const float *x, float *y)
{
    /* y[N,F] += op(A) x, op(A) = A or A^T */
    if ((int64_t)n * n * f >= ADJ_GEMM_MIN) {
        fxp__sgemm_serial(tr, 0, n, f, n, 1, a, n, x, f, 1, y, f);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            const float aij = tr ? a[(int64_t)j * n + i] : a[(int64_t)i * n + j];
            if (aij == 0.0f) continue;
            for (int k = 0; k < f; k++) y[(int64_t)i * f + k] += aij * x[(int64_t)j * f + k];
        }
}

static void adj_outer(int n, int f, const float *g, const float *x, float *da)
{
    /* dA[N,N] += G[N,F] X[N,F]^T */
    if ((int64_t)n * n * f >= ADJ_GEMM_MIN) {
        fxp__sgemm_serial(0, 1, n, n, f, 1, g, f, x, f, 1, da, n);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0;
            for (int k = 0; k < f; k++) acc += g[(int64_t)i * f + k] * x[(int64_t)j * f + k];
            da[(int64_t)i * n + j] += acc;
        }
}

static int adj_backward(fxp_tape *t, const fxp_node *nd)
{
    const adj_saved *s = nd->saved;
    fxp_var *a = nd->in[0], *x = nd->in[1];
    const float *g = nd->out->grad;
    const int64_t gsz = (int64_t)s->n * s->f, asz = (int64_t)s->n * s->n;
    const int nt = fxp_tape_ctx(t)->n_threads, B = s->b;
    if (x->grad) {
        FXP_PARALLEL_FOR(nt, B * gsz > FXP_PAR_THRESHOLD,
            for (int b = 0; b < B; b++)
                adj_product(1, s->n, s->f, a->value.data + (s->shared ? 0 : b * asz), g + b * gsz,
                            x->grad + b * gsz););
    }
    if (a->grad) {
        if (s->shared) { /* fixed order over b: deterministic */
            for (int b = 0; b < B; b++)
                adj_outer(s->n, s->f, g + b * gsz, x->value.data + b * gsz, a->grad);
        } else {
            FXP_PARALLEL_FOR(nt, B * gsz > FXP_PAR_THRESHOLD,
                for (int b = 0; b < B; b++)
                    adj_outer(s->n, s->f, g + b * gsz, x->value.data + b * gsz, a->grad + b * asz););
        }
    }
    return FXP_OK;
}

int fxp_adj_matmul(fxp_tape *t, fxp_var **out, fxp_var *adj, fxp_var *x)
{
    FXP_API_SCOPE();
    fxp_var *in[2] = { adj, x };
    int rc = fxp__ops_check_vars(t, __func__, 2, in);
    if (rc < 0) return rc;
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64], s2[64];
    if (!out) return FXP_ERR(ctx, FXP_EINVAL, "out is NULL");
    if (x->value.ndim != 3)
        return FXP_ERR(ctx, FXP_ESHAPE, "x must be [B, N, F], got %s", fxp__vshape(x, s1, sizeof s1));
    adj_saved sv = { x->value.shape[0], x->value.shape[1], x->value.shape[2], 0 };
    const fxp_tensor *A = &adj->value;
    if (A->ndim == 2 && A->shape[0] == sv.n && A->shape[1] == sv.n) sv.shared = 1;
    else if (!(A->ndim == 3 && A->shape[0] == sv.b && A->shape[1] == sv.n && A->shape[2] == sv.n))
        return FXP_ERR(ctx, FXP_ESHAPE, "adjacency %s must be [%d,%d] or [%d,%d,%d] for x %s",
                       fxp__vshape(adj, s1, sizeof s1), sv.n, sv.n, sv.b, sv.n, sv.n,
                       fxp__vshape(x, s2, sizeof s2));
    fxp_var *y;
    if ((rc = fxp_tape_var(t, &y, 3, x->value.shape)) < 0) return rc;
    memset(y->value.data, 0, (size_t)fxp_tensor_numel(&y->value) * sizeof(float));
    const int64_t gsz = (int64_t)sv.n * sv.f, asz = (int64_t)sv.n * sv.n;
    const int nt = ctx->n_threads, B = sv.b;
    FXP_PARALLEL_FOR(nt, B * gsz > FXP_PAR_THRESHOLD,
        for (int b = 0; b < B; b++)
            adj_product(0, sv.n, sv.f, A->data + (sv.shared ? 0 : b * asz), x->value.data + b * gsz,
                        y->value.data + b * gsz););
    if (fxp_tape_needs_grad(t, 2, in)) {
        adj_saved *s = fxp_tape_alloc(t, sizeof *s);
        if (!s) return FXP_ENOMEM;
        *s = sv;
        if ((rc = fxp_tape_record(t, "fxp_adj_matmul", adj_backward, y, 2, in, s)) < 0) return rc;
    }
    *out = y;
    return FXP_OK;
}
