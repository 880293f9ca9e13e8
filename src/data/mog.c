/* The MoG graph datasets: generators, exact log-densities and entropies
 * (see data.h for the definitions and docs/datasets.md for the numbers). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "flowexp/data.h"

#define SPACING 10.0
#define RING_RADIUS (5.0 * 1.41421356237309504880)

static const char *const names[FXP_MOG_KINDS] = { "mog4", "mog9", "mog16", "ring" };
static const int node_counts[FXP_MOG_KINDS] = { 4, 9, 16, 4 };

static int known(fxp_mog_kind kind) { return (int)kind >= 0 && (int)kind < FXP_MOG_KINDS; }

const char *fxp_mog_name(fxp_mog_kind kind) { return known(kind) ? names[kind] : NULL; }

int fxp_mog_parse(const char *name, fxp_mog_kind *kind)
{
    if (!kind) return FXP_ERR(NULL, FXP_EINVAL, "kind is NULL");
    for (int k = 0; k < FXP_MOG_KINDS; k++)
        if (name && !strcmp(name, names[k])) {
            *kind = (fxp_mog_kind)k;
            return FXP_OK;
        }
    return FXP_ERR(NULL, FXP_EINVAL, "unknown dataset \"%s\" (valid: mog4, mog9, mog16, ring)",
                   name ? name : "(null)");
}

int fxp_mog_nodes(fxp_mog_kind kind) { return known(kind) ? node_counts[kind] : 0; }

int fxp_mog_get_info(fxp_mog_kind kind, fxp_mog_info *info)
{
    FXP_API_SCOPE();
    if (!known(kind) || !info)
        return FXP_ERR(NULL, FXP_EINVAL, "unknown dataset kind %d or NULL info", (int)kind);
    info->name = names[kind];
    info->n_nodes = node_counts[kind];
    info->spacing = SPACING;
    info->radius = kind == FXP_MOG_RING ? RING_RADIUS : 0.0;
    info->rotation = kind == FXP_MOG_RING ? FXP_PI : 0.0;
    info->noise_std = 1.0;
    return FXP_OK;
}

int fxp_mog_modes(fxp_mog_kind kind, float *c)
{
    FXP_API_SCOPE();
    if (!known(kind) || !c)
        return FXP_ERR(NULL, FXP_EINVAL, "unknown dataset kind %d or NULL centres", (int)kind);
    switch (kind) {
    case FXP_MOG4:
    case FXP_MOG_RING: { /* GNF's OFFSETS_4; the ring: radius 5 sqrt 2, angles 45 + 90 k deg */
        static const float m[8] = { -5, 5, 5, 5, -5, -5, 5, -5 };
        memcpy(c, m, sizeof m);
        break;
    }
    case FXP_MOG9: { /* GNF's OFFSETS_9, in its order */
        static const float m[18] = { -5, 5, 5, 5, -5, -5, 5, -5, 15, 5,
                                     15, -5, -5, 15, 5, 15, 15, 15 };
        memcpy(c, m, sizeof m);
        break;
    }
    default: /* mog16: {-15, -5, 5, 15}^2, row by row (y outer, x inner) */
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                c[2 * (i * 4 + j)] = (float)(-15.0 + SPACING * j);
                c[2 * (i * 4 + j) + 1] = (float)(-15.0 + SPACING * i);
            }
    }
    return FXP_OK;
}

/* out [n, N, 2]: per graph a shuffle of the modes, 2N unit normals and (ring)
 * one uniform angle, all from rng in that order. */
int fxp_mog_sample(fxp_ctx *ctx, fxp_mog_kind kind, fxp_rng *rng, int n, float *out)
{
    FXP_API_SCOPE();
    const int N = fxp_mog_nodes(kind);
    if (!N || !rng || !out || n < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments (kind %d, n %d, rng %s, out %s)", (int)kind,
                       n, rng ? "set" : "NULL", out ? "set" : "NULL");
    float modes[2 * FXP_MOG_MAX_NODES], noise[2 * FXP_MOG_MAX_NODES], u;
    int perm[FXP_MOG_MAX_NODES];
    fxp_mog_modes(kind, modes);
    for (int g = 0; g < n; g++) {
        for (int i = 0; i < N; i++) perm[i] = i;
        fxp_rng_shuffle_int(rng, perm, (size_t)N);
        fxp_rng_normal(rng, noise, (size_t)2 * N, 0.0f, 1.0f);
        double cs = 1, sn = 0;
        if (kind == FXP_MOG_RING) { /* theta = pi u, as GNF's rotate=True */
            fxp_rng_uniform(rng, &u, 1);
            cs = cos(FXP_PI * u);
            sn = sin(FXP_PI * u);
        }
        float *x = out + (size_t)g * N * 2;
        for (int i = 0; i < N; i++) {
            const double mx = modes[2 * perm[i]], my = modes[2 * perm[i] + 1];
            x[2 * i] = (float)(cs * mx - sn * my) + noise[2 * i];
            x[2 * i + 1] = (float)(sn * mx + cs * my) + noise[2 * i + 1];
        }
    }
    return FXP_OK;
}

/* Potentials for the best assignment (Kuhn-Munkres with potentials, the
 * O(N^3) "Hungarian" algorithm, on the costs C_ij = -L_ij): on return
 *   L_ij + u_i + v_j <= 0 for all i, j,
 * with equality on a perfect matching (the most likely node-to-mode
 * assignment).  Arrays are 1-based as in the textbook formulation: u, v,
 * p (mode j's row) and way have N + 1 entries, index 0 a sentinel. */
static void assignment_potentials(const double *L, int N, double *u, double *v)
{
    int p[FXP_MOG_MAX_NODES + 1], way[FXP_MOG_MAX_NODES + 1];
    double minv[FXP_MOG_MAX_NODES + 1];
    char used[FXP_MOG_MAX_NODES + 1];
    for (int j = 0; j <= N; j++) u[j] = v[j] = 0, p[j] = way[j] = 0;
    for (int i = 1; i <= N; i++) {
        int j0 = 0;
        p[0] = i;
        for (int j = 0; j <= N; j++) minv[j] = INFINITY, used[j] = 0;
        do { /* grow an alternating tree from row i until it reaches a free column */
            used[j0] = 1;
            const int i0 = p[j0];
            double delta = INFINITY;
            int j1 = 0;
            for (int j = 1; j <= N; j++) {
                if (used[j]) continue;
                const double cur = -L[(i0 - 1) * N + (j - 1)] - u[i0] - v[j];
                if (cur < minv[j]) minv[j] = cur, way[j] = j0;
                if (minv[j] < delta) delta = minv[j], j1 = j;
            }
            for (int j = 0; j <= N; j++) {
                if (used[j]) u[p[j]] += delta, v[j] -= delta;
                else minv[j] -= delta;
            }
            j0 = j1;
        } while (p[j0] != 0);
        do { /* augment along the path */
            const int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
}

/* log perm(W) for W_ij = exp(L[i*N + j]) (L [N, N], row i = node, column j =
 * mode).  With the assignment potentials above, w_ij = exp(L_ij + u_i + v_j)
 * <= 1 has a perfect matching of ones, so 1 <= perm(w) <= N! and
 *   log perm(W) = log perm(w) - sum_i u_i - sum_j v_j
 * is safe from underflow whatever x is (only terms below e^-745 relative to
 * the best assignment are lost).  perm(w) by the subset dynamic programme,
 * over subsets S of modes in increasing order, row k = |S| - 1:
 *   f(S) = sum_{j in S} f(S \ {j}) w_{k, j},   f({}) = 1,   perm(w) = f(all),
 * where every f(S) <= |S|! (up to rounding of the potentials).  f: 2^N
 * doubles of scratch. */
static double log_permanent(const double *L, int N, double *f)
{
    double u[FXP_MOG_MAX_NODES + 1], v[FXP_MOG_MAX_NODES + 1], shift = 0;
    double w[FXP_MOG_MAX_NODES * FXP_MOG_MAX_NODES];
    assignment_potentials(L, N, u, v);
    for (int i = 0; i < N; i++) shift += u[i + 1] + v[i + 1];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) w[i * N + j] = exp(L[i * N + j] + u[i + 1] + v[j + 1]);
    const unsigned full = (1u << N) - 1u;
    f[0] = 1.0;
    for (unsigned S = 1; S <= full; S++) {
        const double *wk = w + (size_t)(__builtin_popcount(S) - 1) * N;
        double s = 0;
        for (unsigned rest = S; rest; rest &= rest - 1u) {
            const int j = __builtin_ctz(rest);
            s += f[S & ~(1u << j)] * wk[j];
        }
        f[S] = s;
    }
    return log(f[full]) - shift;
}

/* log p(x | theta) = log perm(W(theta)) - ln N!, W_ij = N(x_i; R(theta) mu_j, I_2). */
static double log_p_given_rotation(const float *x, const float *modes, int N, double cs, double sn,
                                   double log_nfact, double *f)
{
    double L[FXP_MOG_MAX_NODES * FXP_MOG_MAX_NODES];
    for (int j = 0; j < N; j++) {
        const double mx = cs * modes[2 * j] - sn * modes[2 * j + 1];
        const double my = sn * modes[2 * j] + cs * modes[2 * j + 1];
        for (int i = 0; i < N; i++) {
            const double dx = x[2 * i] - mx, dy = x[2 * i + 1] - my;
            L[i * N + j] = -0.5 * (dx * dx + dy * dy) - log(2 * FXP_PI);
        }
    }
    return log_permanent(L, N, f) - log_nfact;
}

/* log p(x) of one graph; for the ring the rotation average
 * (N/2pi) Int_0^{2pi/N} p(x|theta) dtheta is the mean over the periodic grid
 * theta_q = (2pi/N) (q + 1/2) / Q, combined by log-sum-exp. */
static double log_p_graph(fxp_mog_kind kind, const float *x, const float *modes, int N,
                          double log_nfact, double *f)
{
    if (kind != FXP_MOG_RING) return log_p_given_rotation(x, modes, N, 1, 0, log_nfact, f);
    const int Q = FXP_MOG_RING_QUAD;
    double lv[FXP_MOG_RING_QUAD], m = -INFINITY, s = 0;
    for (int q = 0; q < Q; q++) {
        const double th = 2 * FXP_PI / N * (q + 0.5) / Q;
        lv[q] = log_p_given_rotation(x, modes, N, cos(th), sin(th), log_nfact, f);
        m = fmax(m, lv[q]);
    }
    if (m == -INFINITY) return m;
    for (int q = 0; q < Q; q++) s += exp(lv[q] - m);
    return m + log(s / Q);
}

int fxp_mog_log_prob(fxp_ctx *ctx, fxp_mog_kind kind, const float *x, int n, double *logp)
{
    FXP_API_SCOPE();
    const int N = fxp_mog_nodes(kind);
    if (!ctx) return FXP_ERR(NULL, FXP_EINVAL, "ctx is NULL");
    if (!N || !x || !logp || n < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments (kind %d, n %d, x %s, logp %s)", (int)kind,
                       n, x ? "set" : "NULL", logp ? "set" : "NULL");
    for (size_t i = 0; i < (size_t)n * N * 2; i++)
        if (!isfinite(x[i]))
            return FXP_ERR(ctx, FXP_ENUMERIC, "x holds a non-finite value at flat index %zu "
                           "(graph %zu)", i, i / ((size_t)N * 2));
    float modes[2 * FXP_MOG_MAX_NODES];
    fxp_mog_modes(kind, modes);
    double log_nfact = 0;
    for (int i = 2; i <= N; i++) log_nfact += log((double)i);
    const int nt = ctx->n_threads > 0 ? ctx->n_threads : 1;
    const size_t table = (size_t)1 << N;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    double *f_all = fxp__scratch_alloc(ctx, (size_t)nt * table * sizeof(double));
    if (!f_all) return FXP_ENOMEM;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8)
    for (int g = 0; g < n; g++)
        logp[g] = log_p_graph(kind, x + (size_t)g * N * 2, modes, N, log_nfact,
                              f_all + (size_t)fxp__omp_thread() * table);
    fxp__scratch_restore(ctx, mark);
    return FXP_OK;
}

int fxp_mog_entropy(fxp_ctx *ctx, fxp_mog_kind kind, uint64_t seed, int n_samples,
                    double *entropy, double *std_error)
{
    FXP_API_SCOPE();
    const int N = fxp_mog_nodes(kind);
    if (!ctx) return FXP_ERR(NULL, FXP_EINVAL, "ctx is NULL");
    if (!N || n_samples < 2 || !entropy)
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments (kind %d, %d samples: need >= 2, entropy %s)",
                       (int)kind, n_samples, entropy ? "set" : "NULL");
    float *x = malloc((size_t)n_samples * N * 2 * sizeof(float));
    double *lp = malloc((size_t)n_samples * sizeof(double));
    int rc = FXP_OK;
    if (!x || !lp) {
        rc = FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate %d samples", n_samples);
        goto out;
    }
    fxp_rng rng;
    fxp_rng_seed(&rng, seed);
    FXP_TRY(fxp_mog_sample(ctx, kind, &rng, n_samples, x));
    FXP_TRY(fxp_mog_log_prob(ctx, kind, x, n_samples, lp));
    /* mean and unbiased variance of h_g = -log p(x_g) / N, in sample order */
    double mean = 0, var = 0;
    for (int i = 0; i < n_samples; i++) mean += -lp[i] / N;
    mean /= n_samples;
    for (int i = 0; i < n_samples; i++) var += (-lp[i] / N - mean) * (-lp[i] / N - mean);
    var /= n_samples - 1;
    if (!isfinite(mean)) {
        rc = FXP_ERR(ctx, FXP_ENUMERIC, "non-finite log-density in the Monte-Carlo sample");
        goto out;
    }
    *entropy = mean;
    if (std_error) *std_error = sqrt(var / n_samples);
out:
    free(x);
    free(lp);
    return rc;
}

double fxp_mog_entropy_separated(fxp_mog_kind kind)
{
    FXP_API_SCOPE();
    const int N = fxp_mog_nodes(kind);
    if (!N) return NAN;
    const double h_gauss = log(2 * FXP_PI * exp(1.0)); /* entropy of N(0, I_2) */
    double log_nfact = 0;
    for (int i = 2; i <= N; i++) log_nfact += log((double)i);
    double h = h_gauss + log_nfact / N;
    if (kind == FXP_MOG_RING)
        h += (log(2 * FXP_PI / N) - 0.5 * h_gauss + log(RING_RADIUS * sqrt((double)N))) / N;
    return h;
}

double fxp_mog_marginal_bound(fxp_mog_kind kind)
{
    FXP_API_SCOPE();
    const int N = fxp_mog_nodes(kind);
    return N ? log(2 * FXP_PI * exp(1.0)) + log((double)N) : NAN;
}

int fxp_graph_complete_adjacency(fxp_ctx *ctx, int n, fxp_tensor *adj)
{
    FXP_API_SCOPE();
    if (!adj || n < 1) return FXP_ERR(ctx, FXP_EINVAL, "need n >= 1 (got %d) and an output", n);
    const int shape[2] = { n, n };
    int rc = fxp_tensor_alloc(ctx, adj, 2, shape);
    if (rc < 0) return rc;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) adj->data[(size_t)i * n + j] = i != j ? 1.0f : 0.0f;
    return FXP_OK;
}

fxp_rng fxp_mog_split_rng(uint64_t seed, fxp_data_split split)
{
    fxp_rng root, s;
    fxp_rng_seed(&root, seed);
    s = fxp_rng_split(&root);
    for (int k = 0; k < (int)split; k++) s = fxp_rng_split(&root);
    return s;
}
