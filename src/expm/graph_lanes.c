/* The graph convolution exponential without gradients, sixteen graphs per
 * SIMD vector (see expm_internal.h, fxp__graph_series_lanes).
 *
 * With one adjacency shared by the batch, every graph runs the same
 * arithmetic on its own N F numbers, so the graphs are put in the lanes of
 * a vector: state[e][l] = x[b0 + l][e] for e = node * F + feature.  A term
 * is then N F^2 (+ N^2 F for a general adjacency) vector FMAs with no
 * shuffles, and all T terms of a group of sixteen graphs run while its
 * state (3 N F vectors) is in L1/L2.  For few features the generic series'
 * per-term passes over the batch and its small matrix products cost far
 * more than this arithmetic. */
#include <math.h>
#include <string.h>

#include "expm/expm_internal.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* vectors stay inside this file */
#endif

#define LANES 16
typedef float v16 __attribute__((vector_size(64)));

/* W[n][k0 .. k0+kb) = sum_m A[n][m] X[m][k0 .. k0+kb), RB rows at a time. */
enum { RB = 4, KB = 4 };
static inline __attribute__((always_inline)) void adj_rows(int N, const int F, const float *A,
                                                           const v16 *X, v16 *W, int k0,
                                                           const int kb)
{
    int r0 = 0;
    for (; r0 + RB <= N; r0 += RB) {
        v16 w[RB][KB];
        for (int r = 0; r < RB; r++)
            for (int k = 0; k < kb; k++) w[r][k] = (v16){ 0 };
        for (int m = 0; m < N; m++)
            for (int r = 0; r < RB; r++) {
                const float a = A[(r0 + r) * N + m];
                for (int k = 0; k < kb; k++) w[r][k] += a * X[m * F + k0 + k];
            }
        for (int r = 0; r < RB; r++)
            for (int k = 0; k < kb; k++) W[(r0 + r) * F + k0 + k] = w[r][k];
    }
    for (; r0 < N; r0++) {
        v16 w[KB];
        for (int k = 0; k < kb; k++) w[k] = (v16){ 0 };
        for (int m = 0; m < N; m++) {
            const float a = A[r0 * N + m];
            for (int k = 0; k < kb; k++) w[k] += a * X[m * F + k0 + k];
        }
        for (int k = 0; k < kb; k++) W[r0 * F + k0 + k] = w[k];
    }
}

/* One group: T terms on X (t_0, overwritten), acc = sum of the terms.  P, Q:
 * complete graph: Y[n] = X[n] P + S Q with S = sum_n X[n] (P = t0 - c t1,
 * Q = c t1); otherwise Y = X P + (A X) Q (P = t0, Q = t1) with AX in W.
 * Z: workspace, N F vectors.  Inlined with F a constant for the small
 * feature counts, so that its loops unroll into straight vector code. */
static inline __attribute__((always_inline)) void
group_series_f(int N, const int F, const float *A, int complete, const float *P, const float *Q,
               float sign, int T, v16 *X, v16 *Z, v16 *W, v16 *acc)
{
    const int NF = N * F;
    for (int e = 0; e < NF; e++) acc[e] = X[e];
    for (int i = 1; i <= T; i++) {
        const float s = sign / (float)i;
        if (complete) {
            v16 S[FXP_GRAPH_LANES_MAX_F], sq[FXP_GRAPH_LANES_MAX_F];
            for (int k = 0; k < F; k++) S[k] = (v16){ 0 };
            for (int n = 0; n < N; n++)
                for (int k = 0; k < F; k++) S[k] += X[n * F + k];
            for (int j = 0; j < F; j++) {
                v16 v = (v16){ 0 };
                for (int k = 0; k < F; k++) v += S[k] * Q[k * F + j];
                sq[j] = v;
            }
            for (int n = 0; n < N; n++)
                for (int j = 0; j < F; j++) {
                    v16 v = sq[j];
                    for (int k = 0; k < F; k++) v += X[n * F + k] * P[k * F + j];
                    Z[n * F + j] = v;
                }
        } else {
            /* W = A X, RB rows of A by KB features at a time with their sums in
             * registers: each vector of X loaded serves RB rows */
            for (int k0 = 0; k0 < F; k0 += KB) {
                if (F - k0 >= KB)
                    adj_rows(N, F, A, X, W, k0, KB);
                else
                    adj_rows(N, F, A, X, W, k0, F % KB);
            }
            for (int n = 0; n < N; n++)
                for (int j = 0; j < F; j++) {
                    v16 v = (v16){ 0 };
                    for (int k = 0; k < F; k++)
                        v += X[n * F + k] * P[k * F + j] + W[n * F + k] * Q[k * F + j];
                    Z[n * F + j] = v;
                }
        }
        for (int e = 0; e < NF; e++) {
            X[e] = s * Z[e];
            acc[e] += X[e];
        }
    }
}

FXP_CLONES FXP_CONTRACT static void group_series(int N, int F, const float *A, int complete,
                                                 const float *P, const float *Q, float sign,
                                                 int T, v16 *X, v16 *Z, v16 *W, v16 *acc)
{
    switch (F) {
    case 1: group_series_f(N, 1, A, complete, P, Q, sign, T, X, Z, W, acc); break;
    case 2: group_series_f(N, 2, A, complete, P, Q, sign, T, X, Z, W, acc); break;
    case 3: group_series_f(N, 3, A, complete, P, Q, sign, T, X, Z, W, acc); break;
    case 4: group_series_f(N, 4, A, complete, P, Q, sign, T, X, Z, W, acc); break;
    case 8: group_series_f(N, 8, A, complete, P, Q, sign, T, X, Z, W, acc); break;
    case 16: group_series_f(N, 16, A, complete, P, Q, sign, T, X, Z, W, acc); break;
    default: group_series_f(N, F, A, complete, P, Q, sign, T, X, Z, W, acc); break;
    }
}

int fxp__graph_series_lanes(fxp_ctx *ctx, const float *x, float *y, const float *adj,
                            int complete, float c, const float *t0, const float *t1, int B,
                            int N, int F, float sign, int T, double *norms)
{
    if (F < 1 || F > FXP_GRAPH_LANES_MAX_F)
        return fxp__err(ctx, FXP_EINVAL, "fxp_graph_conv_exp", "%d features (lanes: 1 to %d)", F,
                        FXP_GRAPH_LANES_MAX_F);
    const int NF = N * F, groups = (B + LANES - 1) / LANES;
    const int64_t size = (int64_t)B * NF;
    float P[FXP_GRAPH_LANES_MAX_F * FXP_GRAPH_LANES_MAX_F];
    float Q[FXP_GRAPH_LANES_MAX_F * FXP_GRAPH_LANES_MAX_F];
    for (int i = 0; i < F * F; i++) {
        P[i] = complete ? t0[i] - c * t1[i] : t0[i];
        Q[i] = complete ? c * t1[i] : t1[i];
    }
    /* threads split the groups when there is enough to split */
    const double work = (double)size * T * (F + (complete ? 2 : N));
    const int nt = work > 2e6 ? FXP_MIN(ctx->n_threads, groups) : 1;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    v16 *ws = fxp__scratch_alloc(ctx, (size_t)nt * 4 * NF * sizeof(v16));
    float *tmp = fxp__scratch_alloc(ctx, (size_t)size * sizeof(float));
    int *bad = fxp__scratch_alloc(ctx, (size_t)groups * sizeof(int));
    double *gss = fxp__scratch_alloc(ctx, (size_t)2 * groups * sizeof(double));
    if (!ws || !tmp || !bad || !gss) {
        fxp__scratch_restore(ctx, mark);
        return FXP_ENOMEM;
    }
    FXP_PARALLEL_FOR(nt, nt > 1,
        for (int g = 0; g < groups; g++) {
            v16 *X = ws + (int64_t)(nt > 1 ? fxp__omp_thread() : 0) * 4 * NF;
            v16 *Z = X + NF, *W = Z + NF, *acc = W + NF;
            const int b0 = g * LANES, nb = FXP_MIN(LANES, B - b0);
            int nonfinite = 0;
            double xss = 0, tss = 0;
            for (int e = 0; e < NF; e++) { /* into the lanes, checking x on the way */
                float lane[LANES] = { 0 };
                for (int l = 0; l < nb; l++) {
                    lane[l] = x[(int64_t)(b0 + l) * NF + e];
                    nonfinite |= !(fabsf(lane[l]) <= 3.40282347e38f);
                    xss += (double)lane[l] * lane[l];
                }
                memcpy(&X[e], lane, sizeof lane);
            }
            group_series(N, F, adj, complete, P, Q, sign, T, X, Z, W, acc);
            for (int e = 0; e < NF; e++) { /* out of the lanes; X holds the last term */
                float lane[LANES], last[LANES];
                memcpy(lane, &acc[e], sizeof lane);
                memcpy(last, &X[e], sizeof last);
                for (int l = 0; l < nb; l++) {
                    tmp[(int64_t)(b0 + l) * NF + e] = lane[l];
                    nonfinite |= !(fabsf(lane[l]) <= 3.40282347e38f) << 1;
                    tss += (double)last[l] * last[l];
                }
            }
            bad[g] = nonfinite;
            gss[2 * g] = xss;
            gss[2 * g + 1] = tss;
        });
    int any = 0;
    double xs = 0, ts = 0;
    for (int g = 0; g < groups; g++) { /* group order: fixed whatever the threads */
        any |= bad[g];
        xs += gss[2 * g];
        ts += gss[2 * g + 1];
    }
    if (norms) {
        norms[0] = sqrt(xs);
        norms[1] = sqrt(ts);
    }
    int rc = FXP_OK;
    if (any & 1)
        rc = fxp__check_finite_buf(ctx, "fxp_graph_conv_exp", "x", x, size);
    else if (any)
        rc = fxp__err(ctx, FXP_ENUMERIC, "fxp_graph_conv_exp",
                      "the series is not finite (%d terms; theta0 and theta1 are too large for "
                      "it)", T);
    if (rc >= 0) memcpy(y, tmp, (size_t)size * sizeof(float));
    fxp__scratch_restore(ctx, mark);
    return rc;
}
