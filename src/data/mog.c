/* The MoG graph datasets: sampling, exact densities, entropies (see mog.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "flowexp/mog.h"

static const char *const names[] = { "mog4", "mog9", "mog16", "ring" };
static const int node_counts[] = { 4, 9, 16, 4 };

const char *fxp_mog_name(fxp_mog_kind kind)
{
    return kind >= FXP_MOG4 && kind <= FXP_MOG_RING ? names[kind] : NULL;
}

int fxp_mog_parse(const char *name, fxp_mog_kind *kind)
{
    for (int k = 0; k < 4; k++)
        if (name && !strcmp(name, names[k])) {
            *kind = (fxp_mog_kind)k;
            return FXP_OK;
        }
    return FXP_ERR(NULL, FXP_EINVAL, "unknown dataset \"%s\" (mog4, mog9, mog16, ring)",
                   name ? name : "(null)");
}

int fxp_mog_nodes(fxp_mog_kind kind)
{
    return kind >= FXP_MOG4 && kind <= FXP_MOG_RING ? node_counts[kind] : 0;
}

int fxp_mog_modes(fxp_mog_kind kind, float *c)
{
    if (!c || !fxp_mog_nodes(kind)) return FXP_ERR(NULL, FXP_EINVAL, "unknown kind or NULL");
    switch (kind) {
    case FXP_MOG4:
    case FXP_MOG_RING: { /* (-5,5), (5,5), (-5,-5), (5,-5): radius 5 sqrt 2 */
        const float m[8] = { -5, 5, 5, 5, -5, -5, 5, -5 };
        memcpy(c, m, sizeof m);
        break;
    }
    case FXP_MOG9: { /* GNF's order: the four of mog4, then the rest of {-5,5,15}^2 */
        const float m[18] = { -5, 5, 5, 5, -5, -5, 5, -5, 15, 5, 15, -5, -5, 15, 5, 15, 15, 15 };
        memcpy(c, m, sizeof m);
        break;
    }
    default: /* {-15, -5, 5, 15}^2, row by row */
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                c[2 * (i * 4 + j)] = -15.0f + 10.0f * j;
                c[2 * (i * 4 + j) + 1] = -15.0f + 10.0f * i;
            }
    }
    return FXP_OK;
}

int fxp_mog_sample(fxp_ctx *ctx, fxp_mog_kind kind, fxp_rng *rng, int n, float *out)
{
    const int N = fxp_mog_nodes(kind);
    if (!N || !rng || !out || n < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments (kind %d, n %d)", (int)kind, n);
    float modes[32], noise[32], angle;
    int perm[16];
    fxp_mog_modes(kind, modes);
    for (int g = 0; g < n; g++) {
        for (int i = 0; i < N; i++) perm[i] = i;
        fxp_rng_shuffle_int(rng, perm, (size_t)N);
        fxp_rng_normal(rng, noise, (size_t)2 * N, 0, 1);
        double cs = 1, sn = 0;
        if (kind == FXP_MOG_RING) {
            fxp_rng_uniform(rng, &angle, 1);
            cs = cos(2 * FXP_PI * angle);
            sn = sin(2 * FXP_PI * angle);
        }
        float *x = out + (size_t)g * N * 2;
        for (int i = 0; i < N; i++) {
            const float mx = modes[2 * perm[i]], my = modes[2 * perm[i] + 1];
            x[2 * i] = (float)(cs * mx - sn * my) + noise[2 * i];
            x[2 * i + 1] = (float)(sn * mx + cs * my) + noise[2 * i + 1];
        }
    }
    return FXP_OK;
}

/* log perm(W) with W_ij = exp(L[i*N + j]): rows are scaled by their maxima,
 * then f[mask] = sum_{j in mask} f[mask \ j] W'_{k j}, k = |mask| - 1, over
 * subsets of modes; f is a caller buffer of 2^N doubles. */
static double log_permanent(const double *L, int N, double *f)
{
    double shift = 0, w[256];
    for (int i = 0; i < N; i++) {
        double m = -INFINITY;
        for (int j = 0; j < N; j++) m = fmax(m, L[i * N + j]);
        shift += m;
        for (int j = 0; j < N; j++) w[i * N + j] = exp(L[i * N + j] - m);
    }
    const unsigned full = (1u << N) - 1u;
    f[0] = 1.0;
    for (unsigned mask = 1; mask <= full; mask++) {
        const int k = __builtin_popcount(mask) - 1;
        double s = 0;
        for (unsigned rest = mask; rest; rest &= rest - 1) {
            const int j = __builtin_ctz(rest);
            s += f[mask & ~(1u << j)] * w[k * N + j];
        }
        f[mask] = s;
    }
    return shift + log(f[full]);
}

/* log p(x | rotation) = -ln N! + log perm(W): W_ij = N(x_i; R mu_j, I). */
static double log_p_rotated(const float *x, const float *modes, int N, double cs, double sn,
                            double *f)
{
    double L[256], lfact = 0;
    for (int i = 2; i <= N; i++) lfact += log((double)i);
    for (int j = 0; j < N; j++) {
        const double mx = cs * modes[2 * j] - sn * modes[2 * j + 1];
        const double my = sn * modes[2 * j] + cs * modes[2 * j + 1];
        for (int i = 0; i < N; i++) {
            const double dx = x[2 * i] - mx, dy = x[2 * i + 1] - my;
            L[i * N + j] = -0.5 * (dx * dx + dy * dy) - log(2 * FXP_PI);
        }
    }
    return log_permanent(L, N, f) - lfact;
}

int fxp_mog_log_prob(fxp_ctx *ctx, fxp_mog_kind kind, const float *x, int n, double *logp)
{
    const int N = fxp_mog_nodes(kind);
    if (!N || !x || !logp || n < 1)
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments (kind %d, n %d)", (int)kind, n);
    float modes[32];
    fxp_mog_modes(kind, modes);
    const int nt = ctx ? ctx->n_threads : 1;
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        double *f = malloc(((size_t)1 << N) * sizeof(double));
        if (!f) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int g = 0; g < n; g++) {
            if (!f) continue;
            const float *xg = x + (size_t)g * N * 2;
            if (kind != FXP_MOG_RING) {
                logp[g] = log_p_rotated(xg, modes, N, 1, 0, f);
                continue;
            }
            /* (N / 2 pi) Int over one period = mean over a uniform periodic grid */
            const int K = FXP_MOG_RING_QUAD;
            double m = -INFINITY, lv[FXP_MOG_RING_QUAD];
            for (int k = 0; k < K; k++) {
                const double th = 2 * FXP_PI / N * (k + 0.5) / K;
                lv[k] = log_p_rotated(xg, modes, N, cos(th), sin(th), f);
                m = fmax(m, lv[k]);
            }
            double s = 0;
            for (int k = 0; k < K; k++) s += exp(lv[k] - m);
            logp[g] = m + log(s / K);
        }
        free(f);
    }
    if (failed) return FXP_ERR(ctx, FXP_ENOMEM, "cannot allocate the permanent's table");
    return FXP_OK;
}

int fxp_mog_entropy(fxp_ctx *ctx, fxp_mog_kind kind, uint64_t seed, int n_samples,
                    double *entropy, double *std_error)
{
    const int N = fxp_mog_nodes(kind);
    if (!N || n_samples < 2 || !entropy)
        return FXP_ERR(ctx, FXP_EINVAL, "bad arguments (kind %d, %d samples, need >= 2)",
                       (int)kind, n_samples);
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
    double mean = 0, var = 0;
    for (int i = 0; i < n_samples; i++) mean += -lp[i] / N;
    mean /= n_samples;
    for (int i = 0; i < n_samples; i++) var += (-lp[i] / N - mean) * (-lp[i] / N - mean);
    var /= n_samples - 1;
    *entropy = mean;
    if (std_error) *std_error = sqrt(var / n_samples);
out:
    free(x);
    free(lp);
    return rc;
}

double fxp_mog_entropy_separated(fxp_mog_kind kind)
{
    const int N = fxp_mog_nodes(kind);
    if (!N) return NAN;
    double lf = 0;
    for (int i = 2; i <= N; i++) lf += log((double)i);
    double h = log(2 * FXP_PI * exp(1.0)) + lf / N;
    if (kind == FXP_MOG_RING) /* + rotation: ln(2pi/N) - (0.5 ln(2 pi e) - ln(r sqrt N)) per graph */
        h += (log(2 * FXP_PI / N) - 0.5 * log(2 * FXP_PI * exp(1.0)) + log(5 * sqrt(2.0) * sqrt(N))) / N;
    return h;
}

double fxp_mog_marginal_bound(fxp_mog_kind kind)
{
    const int N = fxp_mog_nodes(kind);
    return N ? log(2 * FXP_PI * exp(1.0)) + log((double)N) : NAN;
}
