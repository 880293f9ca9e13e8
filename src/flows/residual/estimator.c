/* The power-series log-determinant estimators of residual flows
 * (residual.h): Russian-roulette weights, Poisson draws, the basic
 * estimator and the Neumann gradient vector. */
#include <math.h>
#include <string.h>

#include "core/internal.h"

double fxp_roulette_weight(double lambda, int n_exact, int k)
{
    if (k <= n_exact) return 1.0;
    /* P(N >= m) = 1 - e^-lambda sum_{i < m} lambda^i / i!,  m = k - n_exact */
    const int m = k - n_exact;
    double term = 1.0, sum = 1.0;
    for (int i = 1; i < m; i++) {
        term *= lambda / i;
        sum += term;
    }
    const double p = 1.0 - exp(-lambda) * sum;
    return p > 0 ? 1.0 / p : INFINITY;
}

int fxp_rng_poisson(fxp_rng *rng, double lambda)
{
    /* Knuth: the number of uniforms whose running product stays above e^-lambda */
    const double limit = exp(-lambda);
    double p = 1.0;
    int k = -1;
    do {
        float u;
        fxp_rng_uniform(rng, &u, 1);
        p *= u;
        k++;
    } while (p > limit && k < 1000);
    return k;
}

int fxp_logdet_series(fxp_ctx *ctx, fxp_vjp_fn vjp, void *user, int batch, int64_t dim,
                      const float *eps, int terms, int n_exact, double lambda, double *logdet,
                      float *neumann)
{
    FXP_API_SCOPE();
    if (!vjp || !eps || !logdet || batch < 1 || dim < 1 || terms < 1 || n_exact < 0 ||
        !(lambda > 0))
        return FXP_ERR(ctx, FXP_EINVAL,
                       "bad estimator arguments: batch %d, dim %lld, terms %d (>= 1), n_exact %d, "
                       "lambda %g (> 0), or a NULL pointer",
                       batch, (long long)dim, terms, n_exact, lambda);
    const int64_t n = (int64_t)batch * dim;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *a = fxp__scratch_alloc(ctx, (size_t)(2 * n) * sizeof(float)), *b;
    if (!a) return FXP_ENOMEM;
    b = a + n;
    int rc = FXP_OK;
    for (int i = 0; i < batch; i++) logdet[i] = 0;
    if (neumann) memcpy(neumann, eps, (size_t)n * sizeof(float));
    memcpy(a, eps, (size_t)n * sizeof(float));
    /* a = eps^T J^(k-1) -> b = eps^T J^k; tr_k = <b, eps> per example */
    for (int k = 1; k <= terms; k++) {
        if ((rc = vjp(user, a, b)) < 0) goto out;
        const double c = fxp_roulette_weight(lambda, n_exact, k);
        const double sgn = k % 2 ? 1.0 : -1.0;
        for (int i = 0; i < batch; i++) {
            const float *bi = b + (int64_t)i * dim, *ei = eps + (int64_t)i * dim;
            double tr = 0;
            for (int64_t d = 0; d < dim; d++) tr += (double)bi[d] * ei[d];
            logdet[i] += sgn * c * tr / k;
        }
        if (neumann) {
            const float s = (float)(-sgn * c);
            for (int64_t d = 0; d < n; d++) neumann[d] += s * b[d];
        }
        float *tmp = a;
        a = b;
        b = tmp;
    }
    for (int i = 0; i < batch; i++)
        if (!isfinite(logdet[i])) {
            rc = FXP_ERR(ctx, FXP_ENUMERIC, "the log-determinant estimate of example %d is not "
                                            "finite (is Lip(g) < 1?)", i);
            goto out;
        }
out:
    fxp__scratch_restore(ctx, mark);
    return rc;
}

int fxp_logdet_estimate(fxp_ctx *ctx, fxp_vjp_fn vjp, void *user, int batch, int64_t dim,
                        int n_exact, double lambda, fxp_rng *rng, double *logdet, int *terms_out)
{
    FXP_API_SCOPE();
    if (!rng || batch < 1 || dim < 1 || !(lambda > 0 && lambda <= 30) || n_exact < 0)
        return FXP_ERR(ctx, FXP_EINVAL, "bad estimator arguments: rng %s, batch %d, dim %lld, "
                                        "n_exact %d, lambda %g (0 < lambda <= 30)",
                       rng ? "set" : "NULL", batch, (long long)dim, n_exact, lambda);
    const int64_t n = (int64_t)batch * dim;
    fxp__arena_mark mark = fxp__scratch_save(ctx);
    float *eps = fxp__scratch_alloc(ctx, (size_t)n * sizeof(float));
    if (!eps) return FXP_ENOMEM;
    fxp_rng_normal(rng, eps, (size_t)n, 0, 1);
    const int terms = n_exact + fxp_rng_poisson(rng, lambda);
    int rc = FXP_OK;
    if (terms > 0) rc = fxp_logdet_series(ctx, vjp, user, batch, dim, eps, terms, n_exact, lambda,
                                          logdet, NULL);
    else
        for (int i = 0; i < batch; i++) logdet[i] = 0;
    if (terms_out) *terms_out = terms;
    fxp__scratch_restore(ctx, mark);
    return rc;
}
