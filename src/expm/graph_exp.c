/* The graph convolution exponential: adjacency normalisation, the GCL
 * operator for the series, the tape op, the trace op, and the raw API. */
#include <math.h>
#include <string.h>

#include "blas/blas.h"
#include "expm/expm_internal.h"

int fxp_graph_normalize(fxp_ctx *ctx, const fxp_tensor *adj, fxp_tensor *adj_hat, int *max_degree)
{
    FXP_API_SCOPE();
    char s1[64], s2[64];
    if (!adj || !adj_hat || !adj->data || !adj_hat->data)
        return FXP_ERR(ctx, FXP_EINVAL, "adjacency or output is NULL");
    const int nd = adj->ndim;
    if (!((nd == 2 || nd == 3) && adj->shape[nd - 1] == adj->shape[nd - 2]) ||
        !fxp_tensor_same_shape(adj, adj_hat))
        return FXP_ERR(ctx, FXP_ESHAPE, "adjacency %s must be [N,N] or [B,N,N] (output %s)",
                       fxp_tensor_shape_str(adj, s1, sizeof s1),
                       fxp_tensor_shape_str(adj_hat, s2, sizeof s2));
    const int n = adj->shape[nd - 1], graphs = nd == 3 ? adj->shape[0] : 1;
    int maxdeg = 0;
    /* validate everything before writing (adj_hat may alias adj) */
    for (int g = 0; g < graphs; g++) {
        const float *a = adj->data + (int64_t)g * n * n;
        for (int i = 0; i < n; i++) {
            double d = 0;
            int deg = 0;
            for (int j = 0; j < n; j++) {
                const float v = a[(int64_t)i * n + j];
                if (!isfinite(v) || v < 0)
                    return FXP_ERR(ctx, FXP_EINVAL, "graph %d: entry A[%d,%d] = %g must be finite "
                                   "and >= 0", g, i, j, (double)v);
                if (i == j && v != 0)
                    return FXP_ERR(ctx, FXP_EINVAL,
                                   "graph %d: A[%d,%d] = %g: the layer's adjacency has no self "
                                   "loops (theta0 covers them)", g, i, i, (double)v);
                d += v;
                deg += v != 0;
            }
            if (d <= 0)
                return FXP_ERR(ctx, FXP_EINVAL, "graph %d: node %d has no neighbours", g, i);
            maxdeg = FXP_MAX(maxdeg, deg);
        }
    }
    double dinv[4096], *dv = dinv; /* D^-1/2 of one graph */
    fxp__arena_mark mark = ctx ? fxp__scratch_save(ctx) : (fxp__arena_mark){ 0, 0, 0 };
    if (n > 4096) {
        if (!ctx) return FXP_ERR(ctx, FXP_EINVAL, "more than 4096 nodes need a context");
        dv = fxp__scratch_alloc(ctx, (size_t)n * sizeof(double));
        if (!dv) return FXP_ENOMEM;
    }
    for (int g = 0; g < graphs; g++) {
        const float *a = adj->data + (int64_t)g * n * n;
        float *o = adj_hat->data + (int64_t)g * n * n;
        for (int i = 0; i < n; i++) {
            double d = 0;
            for (int j = 0; j < n; j++) d += a[(int64_t)i * n + j];
            dv[i] = 1.0 / sqrt(d);
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                o[(int64_t)i * n + j] = (float)(dv[i] * a[(int64_t)i * n + j] * dv[j]);
    }
    if (ctx) fxp__scratch_restore(ctx, mark);
    if (max_degree) *max_degree = maxdeg;
    return FXP_OK;
}

/* M: X -> X theta0 + A_hat X theta1 on [B, N, F].
 *
 * The adjacency product is the only part that is not one GEMM over all B N
 * rows.  With an adjacency shared by the batch it becomes one: in the
 * node-major layout X' [N, B F] (X'[i, b F + f] = X[b, i, f]) all graphs are
 * multiplied at once, A_hat X' [N, N] x [N, B F].  The operator keeps the
 * caller's [B, N, F] layout and transposes into and out of node-major
 * around that GEMM (two copies of B N F floats per product, cheap next to
 * the GEMMs).  Per-graph adjacencies use one [N, N] x [N, F] product per
 * graph. */
typedef struct graph_op {
    int b, n, f, shared;
    const float *adj, *th0, *th1;
    fxp_var *v0, *v1; /* gradient targets, or NULL */
    int complete;     /* every A[b] = c (J - I): see complete_apply */
    float c;
} graph_op;

/* A complete graph (every off-diagonal entry of A equal to c, a zero
 * diagonal; the normalised adjacency of a fully connected graph has
 * c = 1/(N-1)) needs no product with A: (A X)[i] = c (sum_j X[j] - X[i]),
 * O(N F) per graph instead of O(N^2 F).  The MoG experiments use such
 * graphs.  A is symmetric, so the transpose is the same. */
static int is_complete(const float *a, int n, int graphs, float *c)
{
    if (n < 2) return 0;
    const float v = a[1];
    for (int g = 0; g < graphs; g++)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (a[((int64_t)g * n + i) * n + j] != (i == j ? 0.0f : v)) return 0;
    *c = v;
    return 1;
}

/* out = A x for one complete graph, feature chunks of COMPLETE_CHUNK.  Only
 * F > SMALL_F gets here: fewer features take the one-pass complete_theta. */
#define COMPLETE_CHUNK 64
static void complete_graph(int n, int f, float c, const float *restrict x, float *restrict out)
{
    for (int f0 = 0; f0 < f; f0 += COMPLETE_CHUNK) {
        const int fc = FXP_MIN(COMPLETE_CHUNK, f - f0);
        float sum[COMPLETE_CHUNK];
        for (int k = 0; k < fc; k++) sum[k] = 0;
        for (int j = 0; j < n; j++)
            for (int k = 0; k < fc; k++) sum[k] += x[(int64_t)j * f + f0 + k];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < fc; k++)
                out[(int64_t)i * f + f0 + k] = c * (sum[k] - x[(int64_t)i * f + f0 + k]);
    }
}

static void complete_apply(fxp_ctx *ctx, const graph_op *g, const float *x, float *out)
{
    const int n = g->n, f = g->f, B = g->b;
    const int64_t gs = (int64_t)n * f;
    const float c = g->c;
    FXP_PARALLEL_FOR(ctx->n_threads, B * gs > 65536,
        for (int b = 0; b < B; b++) complete_graph(n, f, c, x + b * gs, out + b * gs););
}

/* dst[i, b, :] = src[b, i, :] (to_node_major) or dst[b, i, :] = src[i, b, :].
 * Rows of F floats are copied by a plain loop: for the small F of graph
 * features a memcpy call per row cost more than the copy. */
static void copy_rows(int64_t rows, int F, int64_t s_stride, int64_t d_stride,
                      const float *restrict src, float *restrict dst)
{
    if (F == 2) {
        for (int64_t r = 0; r < rows; r++) {
            dst[r * d_stride] = src[r * s_stride];
            dst[r * d_stride + 1] = src[r * s_stride + 1];
        }
        return;
    }
    for (int64_t r = 0; r < rows; r++)
        for (int k = 0; k < F; k++) dst[r * d_stride + k] = src[r * s_stride + k];
}

static void node_major(fxp_ctx *ctx, int B, int N, int F, const float *src, float *dst,
                       int to_node_major)
{
    const int64_t total = (int64_t)B * N * F, bstride = (int64_t)N * F, nstride = F;
    FXP_PARALLEL_FOR(ctx->n_threads, total > 65536,
        for (int i = 0; i < N; i++) {
            /* graph-major row (b, i) is at b N F + i F; node-major (i, b) at i B F + b F */
            if (to_node_major)
                copy_rows(B, F, bstride, nstride, src + (int64_t)i * F, dst + (int64_t)i * B * F);
            else
                copy_rows(B, F, nstride, bstride, src + (int64_t)i * B * F, dst + (int64_t)i * F);
        });
}

/* out[b] = op(A[b]) x[b] for every graph (op = transpose if tr), [B, N, F],
 * overwriting out.  tmp: B N F floats of workspace, used only for a shared
 * adjacency with B > 1 (then out must not alias x either). */
static void adj_apply(fxp_ctx *ctx, const graph_op *g, int tr, const float *x, float *out,
                      float *tmp)
{
    const int64_t gs = (int64_t)g->n * g->f, as = (int64_t)g->n * g->n;
    const int n = g->n, f = g->f, B = g->b;
    if (g->complete) {
        complete_apply(ctx, g, x, out);
        return;
    }
    if (g->shared && B > 1) { /* out = X', tmp = A X' (node-major), out = tmp back */
        node_major(ctx, B, n, f, x, out, 1);
        fxp__sgemm(ctx, tr, 0, n, B * f, n, 1, g->adj, n, out, B * f, 0, tmp, B * f);
        node_major(ctx, B, n, f, tmp, out, 0);
        return;
    }
    FXP_PARALLEL_FOR(ctx->n_threads, B * gs > 16384,
        for (int b = 0; b < B; b++) {
            const float *a = g->adj + (g->shared ? 0 : b * as), *xb = x + b * gs;
            float *yb = out + b * gs;
            if ((int64_t)n * n * f >= 4096) {
                fxp__sgemm_serial(tr, 0, n, f, n, 1, a, n, xb, f, 0, yb, f);
                continue;
            }
            memset(yb, 0, (size_t)gs * sizeof(float));
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    const float aij = tr ? a[(int64_t)j * n + i] : a[(int64_t)i * n + j];
                    for (int k = 0; k < f; k++) yb[(int64_t)i * f + k] += aij * xb[(int64_t)j * f + k];
                }
        });
}

/* Feature counts up to SMALL_F use plain loops for the [F, F] products
 * below: a BLAS call with k = F = 2 spends its time packing, not
 * multiplying.  (Measured with bench_expm: graph F = 2 fwd+bwd.) */
#define SMALL_F 8

/* y[r] = x[r] op(t0) + ax[r] op(t1) for each of the rows (op = transpose
 * if trans). */
static void small_theta(fxp_ctx *ctx, int64_t rows, int f, int trans, const float *restrict x,
                        const float *restrict ax, const float *t0, const float *t1,
                        float *restrict y)
{
    float a0[SMALL_F * SMALL_F], a1[SMALL_F * SMALL_F]; /* op(t) as [k][j] */
    for (int k = 0; k < f; k++)
        for (int j = 0; j < f; j++) {
            a0[k * f + j] = trans ? t0[j * f + k] : t0[k * f + j];
            a1[k * f + j] = trans ? t1[j * f + k] : t1[k * f + j];
        }
    if (f == 2) {
        FXP_PARALLEL_FOR(ctx->n_threads, rows * f > 65536,
            for (int64_t r = 0; r < rows; r++) {
                const float x0 = x[2 * r], x1 = x[2 * r + 1], b0 = ax[2 * r], b1 = ax[2 * r + 1];
                y[2 * r] = x0 * a0[0] + x1 * a0[2] + b0 * a1[0] + b1 * a1[2];
                y[2 * r + 1] = x0 * a0[1] + x1 * a0[3] + b0 * a1[1] + b1 * a1[3];
            });
        return;
    }
    FXP_PARALLEL_FOR(ctx->n_threads, rows * f > 65536,
        for (int64_t r = 0; r < rows; r++)
            for (int j = 0; j < f; j++) {
                float acc = 0;
                for (int k = 0; k < f; k++)
                    acc += x[r * f + k] * a0[k * f + j] + ax[r * f + k] * a1[k * f + j];
                y[r * f + j] = acc;
            });
}

/* d[k, j] += scale sum_r u[r, k] gr[r, j].  Serial with a fixed summation
 * order (so the result does not depend on the thread count): blocks of
 * OUTER_BLOCK rows are summed in float with four rows in flight (independent
 * chains, so the loop is not bound by the add latency), blocks in double. */
#define OUTER_BLOCK 256
static void outer_acc(int64_t rows, int f, const float *u, const float *gr, double *acc)
{
    const int ff = f * f;
    for (int64_t r0 = 0; r0 < rows; r0 += OUTER_BLOCK) {
        const int64_t r1 = FXP_MIN(rows, r0 + OUTER_BLOCK);
        float part[4][SMALL_F * SMALL_F] = { { 0 } };
        int64_t r = r0;
        if (f == 2) { /* named accumulators stay in registers */
            float a00[4] = { 0 }, a01[4] = { 0 }, a10[4] = { 0 }, a11[4] = { 0 };
            for (; r + 4 <= r1; r += 4)
                for (int l = 0; l < 4; l++) {
                    const float u0 = u[2 * (r + l)], u1 = u[2 * (r + l) + 1];
                    const float g0 = gr[2 * (r + l)], g1 = gr[2 * (r + l) + 1];
                    a00[l] += u0 * g0;
                    a01[l] += u0 * g1;
                    a10[l] += u1 * g0;
                    a11[l] += u1 * g1;
                }
            for (int l = 0; l < 4; l++) {
                part[l][0] = a00[l];
                part[l][1] = a01[l];
                part[l][2] = a10[l];
                part[l][3] = a11[l];
            }
        }
        for (; r + 4 <= r1; r += 4)
            for (int l = 0; l < 4; l++)
                for (int k = 0; k < f; k++) {
                    const float uk = u[(r + l) * f + k];
                    for (int j = 0; j < f; j++) part[l][k * f + j] += uk * gr[(r + l) * f + j];
                }
        for (; r < r1; r++)
            for (int k = 0; k < f; k++)
                for (int j = 0; j < f; j++) part[0][k * f + j] += u[r * f + k] * gr[r * f + j];
        for (int i = 0; i < ff; i++)
            acc[i] += (double)part[0][i] + part[1][i] + part[2][i] + part[3][i];
    }
}

static void small_outer(int64_t rows, int f, float scale, const float *u, const float *gr,
                        float *d)
{
    double acc[SMALL_F * SMALL_F] = { 0 };
    outer_acc(rows, f, u, gr, acc);
    for (int i = 0; i < f * f; i++) d[i] += (float)(scale * acc[i]);
}

/* sum[k] = sum_i xb[i, k] over the n nodes of one graph (f <= SMALL_F),
 * four nodes in flight so the adds do not wait on each other. */
static inline void graph_sum(int n, int f, const float *restrict xb, float *restrict sum)
{
    if (f == 2) {
        float p0[4] = { 0 }, p1[4] = { 0 };
        int i = 0;
        for (; i + 4 <= n; i += 4)
            for (int l = 0; l < 4; l++) {
                p0[l] += xb[2 * (i + l)];
                p1[l] += xb[2 * (i + l) + 1];
            }
        for (; i < n; i++) {
            p0[0] += xb[2 * i];
            p1[0] += xb[2 * i + 1];
        }
        sum[0] = (p0[0] + p0[1]) + (p0[2] + p0[3]);
        sum[1] = (p1[0] + p1[1]) + (p1[2] + p1[3]);
        return;
    }
    for (int k = 0; k < f; k++) sum[k] = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < f; k++) sum[k] += xb[(int64_t)i * f + k];
}

/* Complete graphs with F <= SMALL_F in one pass: A X = c (S - X) with
 * S = sum_j X[j] per graph, so
 *     Y[i] = X[i] (op(th0) - c op(th1)) + c S op(th1)
 * (op = transpose if trans): a per-row F x F product plus a per-graph row.
 * With yacc (a fused series step): y = s Y, yacc += y, gss[b] = ||y[b]||^2. */
static void complete_theta(fxp_ctx *ctx, const graph_op *g, int trans, const float *x, float *y,
                           float s, float *yacc, double *gss)
{
    const int n = g->n, f = g->f, B = g->b;
    const int64_t gs = (int64_t)n * f;
    float p[SMALL_F * SMALL_F], q[SMALL_F * SMALL_F]; /* [k][j] */
    for (int k = 0; k < f; k++)
        for (int j = 0; j < f; j++) {
            const float t0 = trans ? g->th0[j * f + k] : g->th0[k * f + j];
            const float t1 = trans ? g->th1[j * f + k] : g->th1[k * f + j];
            p[k * f + j] = t0 - g->c * t1;
            q[k * f + j] = g->c * t1;
        }
    FXP_PARALLEL_FOR(ctx->n_threads, B * gs > 65536,
        for (int b = 0; b < B; b++) {
            const float *xb = x + b * gs;
            float *yb = y + b * gs;
            float sum[SMALL_F], sq[SMALL_F] = { 0 };
            graph_sum(n, f, xb, sum);
            for (int k = 0; k < f; k++)
                for (int j = 0; j < f; j++) sq[j] += sum[k] * q[k * f + j];
            if (yacc && f == 2) {
                float *ab = yacc + b * gs, part0 = 0, part1 = 0;
                for (int i = 0; i < n; i++) {
                    const float x0 = xb[2 * i], x1 = xb[2 * i + 1];
                    const float v0 = s * (x0 * p[0] + x1 * p[2] + sq[0]);
                    const float v1 = s * (x0 * p[1] + x1 * p[3] + sq[1]);
                    yb[2 * i] = v0;
                    yb[2 * i + 1] = v1;
                    ab[2 * i] += v0;
                    ab[2 * i + 1] += v1;
                    part0 += v0 * v0;
                    part1 += v1 * v1;
                }
                gss[b] = (double)part0 + part1;
                continue;
            }
            if (yacc) {
                float *ab = yacc + b * gs, part = 0;
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < f; j++) {
                        float acc = sq[j];
                        for (int k = 0; k < f; k++) acc += xb[(int64_t)i * f + k] * p[k * f + j];
                        const float v = s * acc;
                        yb[(int64_t)i * f + j] = v;
                        ab[(int64_t)i * f + j] += v;
                        part += v * v;
                    }
                gss[b] = part;
                continue;
            }
            if (f == 2) {
                for (int i = 0; i < n; i++) {
                    const float x0 = xb[2 * i], x1 = xb[2 * i + 1];
                    yb[2 * i] = x0 * p[0] + x1 * p[2] + sq[0];
                    yb[2 * i + 1] = x0 * p[1] + x1 * p[3] + sq[1];
                }
                continue;
            }
            for (int i = 0; i < n; i++)
                for (int j = 0; j < f; j++) {
                    float acc = sq[j];
                    for (int k = 0; k < f; k++) acc += xb[(int64_t)i * f + k] * p[k * f + j];
                    yb[(int64_t)i * f + j] = acc;
                }
        });
}

/* Complete graphs: dth0 += scale U^T G and, with (A U)[i] = c (S_U - U[i]),
 * dth1 += scale c (sum_b S_U[b]^T S_G[b] - U^T G): one pass over U and G. */
static void complete_param_grad(const graph_op *g, const float *u, const float *gr, float scale)
{
    const int n = g->n, f = g->f, B = g->b;
    const int64_t gs = (int64_t)n * f;
    double ug[SMALL_F * SMALL_F] = { 0 }, ss[SMALL_F * SMALL_F] = { 0 };
    outer_acc((int64_t)B * n, f, u, gr, ug);
    if (g->v1 && g->v1->grad)
        for (int b = 0; b < B; b++) {
            float su[SMALL_F], sg[SMALL_F];
            graph_sum(n, f, u + b * gs, su);
            graph_sum(n, f, gr + b * gs, sg);
            for (int k = 0; k < f; k++)
                for (int j = 0; j < f; j++) ss[k * f + j] += (double)su[k] * sg[j];
        }
    for (int i = 0; i < f * f; i++) {
        if (g->v0 && g->v0->grad) g->v0->grad[i] += (float)(scale * ug[i]);
        if (g->v1 && g->v1->grad) g->v1->grad[i] += (float)(scale * g->c * (ss[i] - ug[i]));
    }
}

/* Y = X th0 + (A X) th1 (trans = 0), or Y = X th0^T + (A^T X) th1^T (trans = 1).
 * The series never passes aliasing x and y. */
static int graph_apply_any(void *self, fxp_ctx *ctx, const float *x, float *y, int trans)
{
    const graph_op *g = self;
    const int rows = g->b * g->n, f = g->f;
    if (g->complete && f <= SMALL_F) {
        complete_theta(ctx, g, trans, x, y, 1, NULL, NULL);
        return FXP_OK;
    }
    fxp__arena_mark m = fxp__scratch_save(ctx);
    float *ax = fxp__scratch_alloc(ctx, (size_t)rows * f * sizeof(float));
    if (!ax) return FXP_ENOMEM;
    adj_apply(ctx, g, trans, x, ax, y); /* y is free workspace until the GEMMs below */
    if (f <= SMALL_F) {
        small_theta(ctx, rows, f, trans, x, ax, g->th0, g->th1, y);
    } else {
        fxp__sgemm(ctx, 0, trans, rows, f, f, 1, x, f, g->th0, f, 0, y, f);
        fxp__sgemm(ctx, 0, trans, rows, f, f, 1, ax, f, g->th1, f, 1, y, f);
    }
    fxp__scratch_restore(ctx, m);
    return FXP_OK;
}

static int graph_apply(void *self, fxp_ctx *ctx, const float *x, float *y)
{
    return graph_apply_any(self, ctx, x, y, 0);
}

/* The fused series step for complete graphs with few features (per-graph
 * sums of squares added in graph order); otherwise the product and the
 * series' own pass. */
static int graph_apply_term(void *self, fxp_ctx *ctx, const float *x, float *t, float s, float *y,
                            double *sumsq)
{
    const graph_op *g = self;
    const int64_t size = (int64_t)g->b * g->n * g->f;
    if (!(g->complete && g->f <= SMALL_F)) {
        const int rc = graph_apply_any(self, ctx, x, t, 0);
        if (rc < 0) return rc;
        *sumsq = fxp__expm_add_term(ctx, size, s, t, t, y);
        return FXP_OK;
    }
    fxp__arena_mark m = fxp__scratch_save(ctx);
    double *gss = fxp__scratch_alloc(ctx, (size_t)g->b * sizeof(double));
    if (!gss) return FXP_ENOMEM;
    complete_theta(ctx, g, 0, x, t, s, y, gss);
    double tot = 0;
    for (int b = 0; b < g->b; b++) tot += gss[b];
    *sumsq = tot;
    fxp__scratch_restore(ctx, m);
    return FXP_OK;
}

static int graph_apply_t(void *self, fxp_ctx *ctx, const float *x, float *y)
{
    return graph_apply_any(self, ctx, x, y, 1);
}

/* dth0 += scale U^T G, dth1 += scale (A U)^T G (U, G as [B N, F]). */
static int graph_param_grad(void *self, fxp_ctx *ctx, const float *u, const float *gr, float scale)
{
    const graph_op *g = self;
    const int rows = g->b * g->n, f = g->f;
    if (g->complete && f <= SMALL_F) {
        complete_param_grad(g, u, gr, scale);
        return FXP_OK;
    }
    if (g->v0 && g->v0->grad) {
        if (f <= SMALL_F) small_outer(rows, f, scale, u, gr, g->v0->grad);
        else fxp__sgemm(ctx, 1, 0, f, f, rows, scale, u, f, gr, f, 1, g->v0->grad, f);
    }
    if (g->v1 && g->v1->grad) {
        fxp__arena_mark m = fxp__scratch_save(ctx);
        float *au = fxp__scratch_alloc(ctx, (size_t)rows * f * sizeof(float));
        float *tmp = au;
        if (g->shared && g->b > 1) tmp = fxp__scratch_alloc(ctx, (size_t)rows * f * sizeof(float));
        if (!au || !tmp) return FXP_ENOMEM;
        adj_apply(ctx, g, 0, u, au, tmp);
        if (f <= SMALL_F) small_outer(rows, f, scale, au, gr, g->v1->grad);
        else fxp__sgemm(ctx, 1, 0, f, f, rows, scale, au, f, gr, f, 1, g->v1->grad, f);
        fxp__scratch_restore(ctx, m);
    }
    return FXP_OK;
}

/* Tr M = sum_graphs (N Tr th0 + Tr A_hat[b] Tr th1); the second term is 0
 * for adjacencies from fxp_graph_normalize (no self loops). */
static double graph_trace(void *self)
{
    const graph_op *g = self;
    double t0 = 0, t1 = 0, ta = 0;
    for (int i = 0; i < g->f; i++) {
        t0 += g->th0[(int64_t)i * g->f + i];
        t1 += g->th1[(int64_t)i * g->f + i];
    }
    const int na = g->shared ? 1 : g->b;
    for (int b = 0; b < na; b++)
        for (int i = 0; i < g->n; i++) ta += g->adj[((int64_t)b * g->n + i) * g->n + i];
    if (g->shared) ta *= g->b;
    return (double)g->b * g->n * t0 + ta * t1;
}

static int graph_check(fxp_ctx *ctx, const char *func, const fxp_tensor *x, const fxp_tensor *a,
                       const fxp_tensor *t0, const fxp_tensor *t1, graph_op *g)
{
    char s1[64], s2[64], s3[64];
    if (x->ndim != 3)
        return fxp__err(ctx, FXP_ESHAPE, func, "x %s must be [B, N, F]",
                        fxp_tensor_shape_str(x, s1, sizeof s1));
    const int B = x->shape[0], N = x->shape[1], F = x->shape[2];
    int shared = a->ndim == 2 && a->shape[0] == N && a->shape[1] == N;
    if (!shared && !(a->ndim == 3 && a->shape[0] == B && a->shape[1] == N && a->shape[2] == N))
        return fxp__err(ctx, FXP_ESHAPE, func,
                        "adjacency %s must be [%d,%d] or [%d,%d,%d] for x %s",
                        fxp_tensor_shape_str(a, s1, sizeof s1), N, N, B, N, N,
                        fxp_tensor_shape_str(x, s2, sizeof s2));
    if (t0->ndim != 2 || t0->shape[0] != F || t0->shape[1] != F || !fxp_tensor_same_shape(t0, t1))
        return fxp__err(ctx, FXP_ESHAPE, func, "theta0 %s and theta1 %s must be [%d,%d]",
                        fxp_tensor_shape_str(t0, s1, sizeof s1),
                        fxp_tensor_shape_str(t1, s3, sizeof s3), F, F);
    *g = (graph_op){ B, N, F, shared, a->data, t0->data, t1->data, NULL, NULL, 0, 0 };
    g->complete = is_complete(a->data, N, shared ? 1 : B, &g->c);
    return FXP_OK;
}

int fxp_expm_graph(fxp_tape *t, fxp_var **out, fxp_var *x, const fxp_tensor *adj_hat,
                   fxp_var *theta0, fxp_var *theta1, int inverse, const fxp_expm_opts *opts,
                   fxp_expm_info *info)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    if (!out || !x || !adj_hat || !adj_hat->data || !theta0 || !theta1)
        return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    graph_op *g = fxp_tape_alloc(t, sizeof *g);
    fxp_linop *op = fxp_tape_alloc(t, sizeof *op);
    if (!g || !op) return FXP_ENOMEM;
    int rc = graph_check(ctx, __func__, &x->value, adj_hat, &theta0->value, &theta1->value, g);
    if (rc < 0) return rc;
    g->v0 = theta0;
    g->v1 = theta1;
    *op = (fxp_linop){ .self = g, .size = fxp_tensor_numel(&x->value), .apply = graph_apply,
                       .apply_term = graph_apply_term,
                       .apply_t = graph_apply_t, .param_grad = graph_param_grad,
                       .trace = graph_trace };
    fxp_var *params[2] = { theta0, theta1 };
    return fxp_expm_linop(t, out, x, op, inverse, 2, params, opts, info);
}

/* ---- trace of a square matrix: dTr/dm = I. */
static int trace_backward(fxp_tape *t, const fxp_node *n)
{
    (void)t;
    fxp_var *m = n->in[0];
    if (!m->grad) return FXP_OK;
    const int d = m->value.shape[0];
    for (int i = 0; i < d; i++) m->grad[(int64_t)i * d + i] += n->out->grad[0];
    return FXP_OK;
}

int fxp_trace(fxp_tape *t, fxp_var **out, fxp_var *m)
{
    FXP_API_SCOPE();
    if (!t) return FXP_ERR(NULL, FXP_EINVAL, "tape is NULL");
    fxp_ctx *ctx = fxp_tape_ctx(t);
    char s1[64];
    if (!out || !m) return FXP_ERR(ctx, FXP_EINVAL, "NULL argument");
    if (m->value.ndim != 2 || m->value.shape[0] != m->value.shape[1])
        return FXP_ERR(ctx, FXP_ESHAPE, "matrix %s is not square",
                       fxp_tensor_shape_str(&m->value, s1, sizeof s1));
    const int d = m->value.shape[0];
    double acc = 0;
    for (int i = 0; i < d; i++) acc += m->value.data[(int64_t)i * d + i];
    fxp_var *y;
    int rc = fxp_tape_var(t, &y, 0, NULL);
    if (rc < 0) return rc;
    y->value.data[0] = (float)acc;
    if ((rc = fxp_tape_record(t, "fxp_trace", trace_backward, y, 1, &m, NULL)) < 0) return rc;
    *out = y;
    return FXP_OK;
}

/* ---- raw-buffer API ---------------------------------------------------------------- */

int fxp_graph_conv_exp_ctx(fxp_ctx *ctx, const float *x, float *y, const float *adj,
                           const float *theta0, const float *theta1, int batch, int nodes,
                           int features, int terms, int inverse)
{
    FXP_API_SCOPE();
    if (!ctx) return FXP_ERR(NULL, FXP_EINVAL, "ctx is NULL");
    if (!x || !y || !adj || !theta0 || !theta1)
        return FXP_ERR(ctx, FXP_EINVAL, "x, y, adj, theta0 or theta1 is NULL");
    if (batch < 1 || nodes < 1 || features < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "sizes must be >= 1 (batch %d, nodes %d, features %d)",
                       batch, nodes, features);
    if (terms < 1 || terms > 1000)
        return FXP_ERR(ctx, FXP_EINVAL, "terms = %d outside [1, 1000]", terms);
    /* every buffer within FXP_MAX_ELEMENTS, checked before anything is read */
    const int xd[3] = { batch, nodes, features };
    const int64_t size = fxp__numel(3, xd), fs = fxp__mul_limit(features, features),
                  as = fxp__mul_limit(nodes, nodes);
    if (size < 0 || fs < 0 || as < 0)
        return FXP_ERR(ctx, FXP_EINVAL, "sizes batch %d, nodes %d, features %d: x (batch nodes "
                       "features), adj (nodes^2) or theta (features^2) exceeds 2^40 elements",
                       batch, nodes, features);
    int rc;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *ahat = fxp__scratch_alloc(ctx, (size_t)as * sizeof(float));
    float *tmp = ahat ? fxp__scratch_alloc(ctx, (size_t)size * sizeof(float)) : NULL;
    if (!ahat || !tmp) {
        fxp__scratch_restore(ctx, mark);
        return FXP_ENOMEM;
    }
    if ((rc = fxp__check_finite_buf(ctx, __func__, "x", x, size)) < 0 ||
        (rc = fxp__check_finite_buf(ctx, __func__, "theta0", theta0, fs)) < 0 ||
        (rc = fxp__check_finite_buf(ctx, __func__, "theta1", theta1, fs)) < 0) {
        fxp__scratch_restore(ctx, mark);
        return rc;
    }
    int shape[2] = { nodes, nodes };
    fxp_tensor a = fxp_tensor_wrap((float *)adj, 2, shape), ah = fxp_tensor_wrap(ahat, 2, shape);
    rc = fxp_graph_normalize(ctx, &a, &ah, NULL);
    if (rc >= 0 && features <= FXP_GRAPH_LANES_MAX_F) { /* sixteen graphs per SIMD vector */
        float c = 0;
        double norms[2] = { 0, 0 };
        const int complete = is_complete(ahat, nodes, 1, &c);
        rc = fxp__graph_series_lanes(ctx, x, tmp, ahat, complete, c, theta0, theta1, batch, nodes,
                                     features, inverse ? -1.0f : 1.0f, terms, norms);
        if (rc >= 0) rc = fxp__expm_raw_converged(ctx, __func__, terms, norms[1], norms[0]);
    } else if (rc >= 0) {
        graph_op g = { batch, nodes, features, 1, ahat, theta0, theta1, NULL, NULL, 0, 0 };
        g.complete = is_complete(ahat, nodes, 1, &g.c);
        fxp_linop op = { .self = &g, .size = size, .apply = graph_apply,
                         .apply_t = graph_apply_t, .apply_term = graph_apply_term };
        rc = fxp__expm_raw(ctx, &op, x, tmp, inverse, terms);
    }
    if (rc >= 0) memcpy(y, tmp, (size_t)size * sizeof(float));
    fxp__scratch_restore(ctx, mark);
    return rc;
}

int fxp_graph_conv_exp(const float *x, float *y, const float *adj, const float *theta0,
                       const float *theta1, int batch, int nodes, int features, int terms,
                       int inverse)
{
    FXP_API_SCOPE();
    fxp_ctx *ctx;
    int rc = fxp_ctx_new(&ctx);
    if (rc < 0) return rc;
    rc = fxp_graph_conv_exp_ctx(ctx, x, y, adj, theta0, theta1, batch, nodes, features, terms,
                                inverse);
    fxp_ctx_free(ctx);
    return rc;
}

double fxp_graph_conv_exp_logdet(const float *theta0, int nodes, int features)
{
    FXP_API_SCOPE();
    if (!theta0 || nodes < 1 || features < 1) {
        FXP_ERR(NULL, FXP_EINVAL, "bad arguments (theta0 %p, nodes %d, features %d)",
                (const void *)theta0, nodes, features);
        return NAN;
    }
    const int64_t fs = fxp__mul_limit(features, features);
    if (fs < 0) {
        FXP_ERR(NULL, FXP_EINVAL, "features = %d: theta0 would exceed 2^40 elements", features);
        return NAN;
    }
    if (fxp__check_finite_buf(NULL, __func__, "theta0", theta0, fs) < 0) return NAN;
    double acc = 0;
    for (int i = 0; i < features; i++) acc += theta0[(int64_t)i * features + i];
    return (double)nodes * acc;
}
